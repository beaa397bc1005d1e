"""The worker process: loads one GGUF with llama-cpp-python and streams generations.

:func:`worker_main` is the process entry point (spawned by :class:`ModelWorker`).
:func:`run_generation` is the generation loop itself, a plain generator of events that
also runs in-process (the benchmark compares it against a bare llama-cpp-python loop).
"""

from __future__ import annotations

import codecs
import os
import random
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from desktop_app.catalog import CatalogError, ModelEntry, ensure_local
from desktop_app.protocol import (
    Delta,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    Generate,
    GenerationRequest,
    GenerationResult,
    Loaded,
    Loading,
    PromptSent,
    Shutdown,
)
from desktop_app.prompting import PromptError, build_prompt
from desktop_app.text.thinking import THINKING, ThinkingSplitter

GGUF_MAGIC = b"GGUF"


class StopMatcher:
    """Finds stop sequences in streamed text, holding back only a possible partial match."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return ``(text safe to show, stopped)``."""
        if not self.stops:
            return text, False
        buffer = self._held + text
        first = -1
        for stop in self.stops:
            index = buffer.find(stop)
            if index != -1 and (first == -1 or index < first):
                first = index
        if first != -1:
            self._held = ""
            return buffer[:first], True
        hold = 0
        for stop in self.stops:
            for size in range(min(len(stop) - 1, len(buffer)), hold, -1):
                if buffer.endswith(stop[:size]):
                    hold = size
                    break
        self._held = buffer[len(buffer) - hold:] if hold else ""
        return (buffer[: len(buffer) - hold] if hold else buffer), False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def check_gguf(path: Path) -> None:
    """Raise ValueError with a clear sentence if the file is not a GGUF model."""
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ValueError(f"Cannot read the model file {path}: {exc.strerror or exc}.") from None
    if magic != GGUF_MAGIC:
        raise ValueError(f"{path.name} is not a GGUF model file (it does not start with 'GGUF').")


def load_model(path: Path, entry: ModelEntry, n_threads: int) -> Any:
    """Load a GGUF with llama-cpp-python using an explicit thread count."""
    check_gguf(path)
    from llama_cpp import Llama

    try:
        return Llama(
            model_path=str(path),
            n_ctx=entry.context_length,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_gpu_layers=0,
            verbose=False,
        )
    except ValueError as exc:
        raise ValueError(
            f"llama.cpp could not load {path.name}: the file is damaged or not a model it "
            f"can read ({exc})."
        ) from None


def _token_text(llm: Any, token_id: int) -> str:
    if token_id < 0:
        return ""
    try:
        return str(llm._model.token_get_text(token_id))
    except Exception:
        return ""


class _PrefillAbort:
    """Lets Stop interrupt a long prompt evaluation, via llama.cpp's abort callback.

    Armed only until the first token: the callback runs between graph nodes, which is
    cheap for one prefill but would tax every decoded token.
    """

    def __init__(self, llm: Any, should_stop: Callable[[], bool]):
        import llama_cpp

        self._llama_cpp = llama_cpp
        self._ctx = llm._ctx.ctx
        self.aborted = False
        self._callback = llama_cpp.ggml_abort_callback(lambda _data: bool(should_stop()))
        self._armed = True
        llama_cpp.llama_set_abort_callback(self._ctx, self._callback, None)

    def disarm(self) -> None:
        if self._armed:
            self._armed = False
            self._llama_cpp.llama_set_abort_callback(
                self._ctx, self._llama_cpp.ggml_abort_callback(0), None)


def _until_aborted(stream: Iterator[int], guard: _PrefillAbort) -> Iterator[int]:
    """Tokens from ``stream``; an abort during prompt evaluation ends it quietly."""
    try:
        yield from stream
    except RuntimeError as exc:
        if "llama_decode returned 2" in str(exc) or guard._armed:
            guard.aborted = True
            return
        raise


def run_generation(
    llm: Any,
    entry: ModelEntry,
    request: GenerationRequest,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    threads: Callable[[], int] | None = None,
) -> Iterator[Event]:
    """Generate for one request, yielding PromptSent, Delta events and Finished (or Failed)."""
    import llama_cpp

    started = time.perf_counter()
    result = GenerationResult(model=entry.id, role=entry.role)
    try:
        built = build_prompt(
            entry,
            request.prompt,
            chat_template=llm.metadata.get("tokenizer.chat_template"),
            bos_token=_token_text(llm, llm.token_bos()),
            eos_token=_token_text(llm, llm.token_eos()),
            history=request.history,
            system_prompt=request.system_prompt,
            thinking=request.thinking,
            raw=request.raw,
            document_template=request.document_template,
            extra_stop=request.stop,
        )
    except PromptError as exc:
        result.error = str(exc)
        yield Failed(message=str(exc), kind=FailureKind.ERROR, result=result)
        return
    to_tokenize = built.text
    bos_text = _token_text(llm, llm.token_bos())
    if bos_text and to_tokenize.startswith(bos_text) and llm._model.add_bos_token():
        to_tokenize = to_tokenize[len(bos_text):]  # the tokenizer adds BOS itself
    tokens = llm.tokenize(to_tokenize.encode("utf-8"), add_bos=True, special=True)
    n_ctx = llm.n_ctx()
    if len(tokens) >= n_ctx - 1:
        message = (f"The prompt is {len(tokens)} tokens, more than {entry.name}'s context "
                   f"of {n_ctx}; shorten it or clear the conversation.")
        result.error = message
        yield Failed(message=message, kind=FailureKind.ERROR, result=result)
        return
    sampling = request.sampling
    seed = sampling.seed if sampling.seed is not None else random.randrange(2**31)
    llm.set_seed(seed)
    result.prompt_sent, result.prompt_tokens, result.seed = built.text, len(tokens), seed
    yield PromptSent(text=built.text, n_tokens=len(tokens),
                     starts_in_thinking=built.starts_in_thinking, seed=seed)

    fmt = entry.prompt.thinking if entry.prompt.supports_thinking and not request.raw else "none"
    splitter = ThinkingSplitter(fmt, prefilled=built.starts_in_thinking)
    stopper = StopMatcher(built.stop)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    special = fmt == "gpt-oss-channels"
    vocab = llm._model.vocab
    budget = min(sampling.max_tokens, n_ctx - len(tokens))
    current_threads = None
    if threads is not None:  # before the prompt is evaluated: prefill uses the share too
        current_threads = threads()
        llm._ctx.set_n_threads(current_threads, current_threads)

    thinking_tokens = answer_tokens = generated = 0
    first_token_at: float | None = None
    last_token_at = started
    thinking_closed_at: float | None = None
    finish_reason = FinishReason.LENGTH

    def emit(segments: list[tuple[str, str]]) -> tuple[str, str]:
        thinking = "".join(text for kind, text in segments if kind == THINKING)
        answer = "".join(text for kind, text in segments if kind != THINKING)
        result.thinking += thinking
        result.answer += answer
        return thinking, answer

    if should_stop():
        finish_reason = FinishReason.CANCELLED
    else:
        abort_guard = _PrefillAbort(llm, should_stop)
        stream = llm.generate(
            tokens,
            top_k=int(sampling.top_k),
            top_p=float(sampling.top_p),
            min_p=float(sampling.min_p),
            temp=float(sampling.temperature),
            repeat_penalty=float(sampling.repeat_penalty),
            reset=True,
        )
        try:
            for token in _until_aborted(stream, abort_guard):
                now = time.perf_counter()
                if first_token_at is None:
                    first_token_at = now
                    abort_guard.disarm()  # from here on the per-token check is enough
                if not request.ignore_eos and llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish_reason = FinishReason.STOP
                    break
                generated += 1
                last_token_at = now
                was_thinking = splitter.in_thinking
                text = decoder.decode(llm.detokenize([token], special=special))
                shown, stopped = stopper.feed(text)
                segments = splitter.feed(shown) if shown else []
                if was_thinking or splitter.in_thinking:
                    thinking_tokens += 1
                else:
                    answer_tokens += 1
                if was_thinking and not splitter.in_thinking and thinking_closed_at is None:
                    thinking_closed_at = now
                thinking, answer = emit(segments)
                yield Delta(thinking=thinking, answer=answer, thinking_tokens=thinking_tokens,
                            answer_tokens=answer_tokens, elapsed_s=now - started)
                if stopped:
                    finish_reason = FinishReason.STOP
                    break
                if should_stop():
                    finish_reason = FinishReason.CANCELLED
                    break
                if generated >= budget:
                    finish_reason = FinishReason.LENGTH
                    break
                if threads is not None:
                    wanted = threads()
                    if wanted != current_threads:
                        current_threads = wanted
                        llm._ctx.set_n_threads(wanted, wanted)
        finally:
            stream.close()
            abort_guard.disarm()
        if abort_guard.aborted:
            finish_reason = FinishReason.CANCELLED
    tail = decoder.decode(b"", final=True) + stopper.flush()
    segments = (splitter.feed(tail) if tail else []) + splitter.finish()
    thinking, answer = emit(segments)
    if thinking or answer:
        yield Delta(thinking=thinking, answer=answer, thinking_tokens=thinking_tokens,
                    answer_tokens=answer_tokens, elapsed_s=time.perf_counter() - started)
    result.thinking_tokens, result.answer_tokens = thinking_tokens, answer_tokens
    result.finish_reason = finish_reason
    result.total_s = time.perf_counter() - started
    if first_token_at is not None:
        result.ttft_s = first_token_at - started
        if generated > 1 and last_token_at > first_token_at:
            result.tokens_per_s = (generated - 1) / (last_token_at - first_token_at)
    if splitter.saw_thinking:
        end = thinking_closed_at or last_token_at
        result.thinking_s = end - (first_token_at or started)
    result.thinking_unterminated = splitter.in_thinking
    result.peak_rss_mb = peak_rss_mb()
    yield Finished(result=result)


WORKER_NICENESS = 5


def _yield_to_the_window() -> None:
    """Run below the app's priority: with every core busy generating, the GUI thread
    still gets the CPU the moment it needs it (the models' total throughput is the same)."""
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # Windows has no nice(); never fatal
        pass


def _redirect_native_stderr(entry: ModelEntry) -> None:
    """Send llama.cpp's own console chatter to a per-model log file, not the user's terminal."""
    from desktop_app import paths

    try:
        log_dir = paths.data_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        # one log per model, rewritten at each start so it never grows without bound
        log = open(log_dir / f"worker-{entry.id}.log", "wb", buffering=0)  # noqa: SIM115
        os.dup2(log.fileno(), 2)
    except OSError:
        pass


def worker_main(conn: Any, stop_event: Any, threads_value: Any, entry: ModelEntry) -> None:
    """Process entry point: load the model, then serve generate requests until shutdown."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    _redirect_native_stderr(entry)
    _yield_to_the_window()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        conn.send(Loading(entry.id, "preparing the model file"))
        try:
            path = ensure_local(entry)
        except CatalogError as exc:
            conn.send(Failed(message=str(exc), kind=FailureKind.MISSING))
            return
        conn.send(Loading(entry.id, f"loading {path.name}"))
        started = time.perf_counter()
        try:
            llm = load_model(path, entry, max(1, int(threads_value.value)))
        except MemoryError:
            conn.send(Failed(message=f"Not enough memory to load {entry.name}.", kind=FailureKind.OOM))
            return
        except Exception as exc:  # report every load failure as data
            conn.send(Failed(message=str(exc) or type(exc).__name__, kind=FailureKind.LOAD))
            return
        conn.send(Loaded(model_id=entry.id, load_s=time.perf_counter() - started,
                         n_ctx=llm.n_ctx(), n_threads=int(threads_value.value),
                         model_path=str(path),
                         has_chat_template="tokenizer.chat_template" in llm.metadata))
        while True:
            try:
                message = conn.recv()
            except (EOFError, OSError):
                return
            if isinstance(message, Shutdown):
                return
            if not isinstance(message, Generate):
                continue
            request: GenerationRequest = message.request
            try:
                for event in run_generation(llm, entry, request, should_stop=stop_event.is_set,
                                            threads=lambda: max(1, int(threads_value.value))):
                    conn.send(event)
            except MemoryError:
                conn.send(Failed(message=f"{entry.name} ran out of memory while generating.",
                                 kind=FailureKind.OOM))
            except (BrokenPipeError, EOFError):
                return
            except Exception as exc:
                conn.send(Failed(message=f"Generation failed: {exc}", kind=FailureKind.ERROR))
    except (BrokenPipeError, EOFError, OSError):
        return  # the app went away
