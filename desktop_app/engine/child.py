"""The model process: loads one GGUF and turns commands into events.

:func:`worker_main` is the process entry point (spawned by ``engine.ModelWorker``): it
receives :class:`~desktop_app.engine.protocol.Generate` / ``Shutdown`` commands and sends events
back. :func:`run_generation` is one generation as a plain generator of events: prompt
building, the backend's token stream, UTF-8 reassembly, stop sequences, the thinking
split and the figures. It imports only the protocol, its backend and the text helpers.
"""

from __future__ import annotations

import codecs
import os
import random
import signal
import sys
import time
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from desktop_app.engine import sentences as S
from desktop_app.engine.cores import ThreadTuner, UpProbes
from desktop_app.engine.llama.native_setup import (
    AVOID_KERNELS_ENV,
    CHOSEN_KERNELS_ENV,
    NativeSetup,
    inject_crash,
    kernel_variant,
)
from desktop_app.engine.prompting import BuiltPrompt, PromptError, build_prompt
from desktop_app.engine.protocol import (
    Delta,
    Embed,
    Embedded,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    Generate,
    GenerateMany,
    GenerationRequest,
    GenerationResult,
    Loaded,
    Loading,
    PromptSent,
    Shutdown,
    TokenLogprob,
)
from desktop_app.models.catalog import ModelEntry, ensure_local
from desktop_app.models.sources import CatalogError
from desktop_app.text.i18n import _
from desktop_app.text.markers import StopMatcher
from desktop_app.text.thinking import THINKING, ThinkingSplitter, get_format

if TYPE_CHECKING:  # the backend loads llama.cpp: only the model process imports it
    from desktop_app.engine.llama.backend import LlamaModel


def peak_rss_mb() -> float | None:
    """This process's peak resident memory in MB (None where the OS does not say)."""
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def prompt_tokens(model: LlamaModel, built: BuiltPrompt) -> list[int]:
    """Tokens of a built prompt; a BOS the template wrote is not doubled by the tokenizer."""
    return model.tokenize_continuing(model.without_template_bos(built.text))


class _Reply:
    """Turns one sequence's tokens into split, stop-checked Delta events and its result."""

    def __init__(self, entry: ModelEntry, request: GenerationRequest, built: BuiltPrompt,
                 model: LlamaModel, started: float, sequence: int = 0):
        fmt = get_format(entry.prompt.thinking if entry.prompt.supports_thinking
                         and not request.raw else "none")
        self.model = model
        self.special = fmt.special_tokens
        self.splitter = ThinkingSplitter(fmt, prefilled=built.starts_in_thinking,
                                         keep_blanks=request.raw)
        self.stopper = StopMatcher(built.stop)
        self.decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self.ignore_eos = request.ignore_eos
        self.sequence = sequence
        self.started = started
        self.result = GenerationResult(model=entry.id, role=entry.role)
        self.written: list[str] = []  # the reply as decoded, joined once at the end
        self.thinking_tokens = self.answer_tokens = self.generated = 0
        self.first_token_at: float | None = None
        self.last_token_at = started
        self.thinking_closed_at: float | None = None
        self.finish_reason = FinishReason.LENGTH
        # budget forcing: what the format writes to end thinking when its budget is spent
        self.budget = request.thinking_budget if fmt.budget_forcing else None
        self.close_text = request.budget_message + fmt.budget_close
        self.budget_forced = False
        # thinking tokens counted when the thinking opened (its tag is not part of the budget)
        self.thinking_opened: int | None = 0 if self.splitter.in_thinking else None

    def over_budget(self) -> bool:
        """Still thinking with the thinking budget spent: time to close it (once)."""
        if self.budget is None or self.budget_forced or not self.splitter.in_thinking:
            return False
        return self.thinking_tokens - (self.thinking_opened or 0) >= self.budget

    def close_thinking(self) -> list[int]:
        """The tokens that end the thinking, so that the model writes its answer next."""
        self.budget_forced = True
        return self.model.tokenize(self.close_text, add_special=False)

    def _emit(self, segments: list[tuple[str, str]]) -> tuple[str, str]:
        thinking = "".join(text for kind, text in segments if kind == THINKING)
        answer = "".join(text for kind, text in segments if kind != THINKING)
        self.result.thinking += thinking
        self.result.answer += answer
        return thinking, answer

    def add(self, token: int, now: float,
            logprob: TokenLogprob | None = None) -> tuple[Delta | None, bool]:
        """One sampled token: its Delta (None at end of generation) and whether it ended."""
        if self.first_token_at is None:
            self.first_token_at = now
        if not self.ignore_eos and self.model.is_eog(token):
            self.finish_reason = FinishReason.STOP
            return None, True
        self.generated += 1
        self.last_token_at = now
        splitter = self.splitter
        was_thinking = splitter.in_thinking
        text = self.decoder.decode(self.model.piece(token, self.special))
        self.written.append(text)
        shown, stopped = self.stopper.feed(text)
        segments = splitter.feed(shown) if shown else []
        if was_thinking or splitter.in_thinking:
            self.thinking_tokens += 1
        else:
            self.answer_tokens += 1
        if was_thinking and not splitter.in_thinking and self.thinking_closed_at is None:
            self.thinking_closed_at = now
        if not was_thinking and splitter.in_thinking and self.thinking_opened is None:
            self.thinking_opened = self.thinking_tokens
        thinking, answer = self._emit(segments)
        if stopped:
            self.finish_reason = FinishReason.STOP
        return Delta(thinking=thinking, answer=answer, thinking_tokens=self.thinking_tokens,
                     answer_tokens=self.answer_tokens, elapsed_s=now - self.started,
                     sequence=self.sequence, logprob=logprob), stopped

    def finish(self, reason: FinishReason | None = None) -> Iterator[Event]:
        """The held-back tail (if any) and the Finished event."""
        if reason is not None:
            self.finish_reason = reason
        rest = self.decoder.decode(b"", final=True)
        self.written.append(rest)
        self.result.reply_text = "".join(self.written)
        tail = rest + self.stopper.flush()
        segments = (self.splitter.feed(tail) if tail else []) + self.splitter.finish()
        thinking, answer = self._emit(segments)
        now = time.perf_counter()
        if thinking or answer:
            yield Delta(thinking=thinking, answer=answer, thinking_tokens=self.thinking_tokens,
                        answer_tokens=self.answer_tokens, elapsed_s=now - self.started,
                        sequence=self.sequence)
        result = self.result
        result.thinking_tokens, result.answer_tokens = self.thinking_tokens, self.answer_tokens
        result.finish_reason = self.finish_reason
        result.total_s = now - self.started
        first, last = self.first_token_at, self.last_token_at
        if first is not None:
            result.ttft_s = first - self.started
            if self.generated > 1 and last > first:
                result.tokens_per_s = (self.generated - 1) / (last - first)
        if self.splitter.saw_thinking:
            result.thinking_s = (self.thinking_closed_at or last) - (first or self.started)
        result.thinking_unterminated = self.splitter.in_thinking
        result.peak_rss_mb = peak_rss_mb()
        result.placement = self.model.placement.describe(self.model.n_threads)
        yield Finished(result=result, sequence=self.sequence)


def _prepare(model: LlamaModel, entry: ModelEntry, request: GenerationRequest,
             result: GenerationResult) -> tuple[BuiltPrompt, list[int]] | Failed:
    """The prompt text and tokens, or a Failed event saying in one sentence why not."""
    try:
        built = build_prompt(
            entry,
            request.prompt,
            chat_template=model.chat_template,
            bos_token=model.bos_text,
            eos_token=model.eos_text,
            history=request.history,
            system_prompt=request.system_prompt,
            thinking=request.thinking,
            raw=request.raw,
            document_template=request.document_template,
            extra_stop=request.stop,
        )
    except PromptError as exc:
        result.error = str(exc)
        return Failed(message=str(exc), kind=FailureKind.ERROR, result=result)
    tokens = prompt_tokens(model, built)
    if len(tokens) >= model.n_ctx - 1:
        message = _(S.PROMPT_TOO_LONG).format(tokens=len(tokens), model=entry.name,
                                               n_ctx=model.n_ctx)
        result.error = message
        return Failed(message=message, kind=FailureKind.ERROR, result=result)
    return built, tokens


def run_generation(
    model: LlamaModel,
    entry: ModelEntry,
    request: GenerationRequest,
    *,
    should_stop: Callable[[], bool] = lambda: False,
    threads: Callable[[], int] | None = None,
    ceiling: Callable[[], int] | None = None,
) -> Iterator[Event]:
    """Generate for one request, yielding PromptSent, Delta events and Finished (or Failed).

    ``threads`` returns the pane's current share of the free cores and ``ceiling`` its
    share of every core (both re-read every token); the tuner starts at the first and
    picks the fastest count up to the second from measured per-token time.
    """
    from desktop_app.engine.llama.backend import DecodeEnd

    started = time.perf_counter()
    prepared = _prepare(model, entry, request, GenerationResult(model=entry.id, role=entry.role))
    if isinstance(prepared, Failed):
        yield prepared
        return
    built, tokens = prepared
    tokens, reply_from = _resumed_tokens(model, request, built, tokens)
    sampling = request.sampling
    seed = sampling.seed if sampling.seed is not None else random.randrange(2**31)
    reply = _Reply(entry, request, built, model, started)
    reply.result.prompt_sent, reply.result.prompt_tokens, reply.result.seed = (
        built.text, len(tokens), seed)
    reply.result.prompt_notes = built.notes
    yield PromptSent(text=built.text, n_tokens=len(tokens),
                     starts_in_thinking=built.starts_in_thinking, seed=seed, notes=built.notes,
                     tokens=model.describe(tokens))
    if should_stop():
        yield from reply.finish(FinishReason.CANCELLED)
        return
    limits = _limits(threads, ceiling)
    tuner = (ThreadTuner(limits()[1], start=limits()[0], fastest=_FASTEST, up_probes=_UP)
             if threads is not None else None)
    if tuner is not None:  # before the prompt is evaluated: prefill uses the share too
        model.set_threads(tuner.threads)
    sampler = model.sampler(sampling, seed)
    for token in tokens[reply_from:]:
        sampler.accept(token)  # Continue: the reply so far, as if just generated
    generated: list[int] = []
    stream = model.stream(tokens, sampler, min(sampling.max_tokens, model.n_ctx - len(tokens)),
                          should_stop)
    stream.top_k_logprobs = max(0, request.top_logprobs)
    stream.whole = request.whole_distribution
    if reply.over_budget():  # a budget of 0 with a template that opens the thinking
        stream.forced.extend(reply.close_thinking())
    try:
        for token in stream:
            now = time.perf_counter()
            logprob = _token_logprob(model, token, stream.last_logprobs, reply.special)
            delta, ended = reply.add(token, now, logprob)
            if delta is not None:
                generated.append(token)
                yield delta
            if ended:
                break
            if reply.over_budget():
                stream.forced.extend(reply.close_thinking())
            if should_stop():
                reply.finish_reason = FinishReason.CANCELLED
                break
            if tuner is not None:
                start, most = limits()
                tuner.set_ceiling(most, start)
                model.set_threads(tuner.observe(now))
    finally:
        sampler.close()
    reply.result.prompt_cached = len(tokens) - stream.evaluated if stream.evaluated else 0
    if stream.ended is DecodeEnd.ABORTED:
        reply.finish_reason = FinishReason.CANCELLED
    elif stream.ended is DecodeEnd.CONTEXT_FULL:
        reply.finish_reason = FinishReason.LENGTH
    ending = list(reply.finish())  # the reply's text is complete once it has finished
    _written[model] = Written(built.text + reply.result.reply_text, tokens + generated,
                              reply_from)
    yield from ending


def _limits(threads: Callable[[], int] | None,
            ceiling: Callable[[], int] | None) -> Callable[[], tuple[int, int]]:
    """(threads to start from, most threads to try), read afresh at each call."""

    def read() -> tuple[int, int]:
        start = threads() if threads is not None else 1
        return start, max(start, ceiling() if ceiling is not None else start)

    return read


@dataclass
class Written:
    """A model's last reply as tokens: the prompt's and the reply's as generated. A
    Continue of that reply gets them back: its text tokenized again can split otherwise
    ("S" + "unsets"), or gain a tokenizer's leading space, and then the model would not
    go on from where it stopped."""

    text: str  # the prompt and the reply, as written
    tokens: list[int]
    reply_from: int  # where the reply's tokens begin (the prompt's end)


_written: weakref.WeakKeyDictionary[LlamaModel, Written] = weakref.WeakKeyDictionary()


def _resumed_tokens(model: LlamaModel, request: GenerationRequest, built: BuiltPrompt,
                    tokens: list[int]) -> tuple[list[int], int]:
    """The prompt's tokens and where the model's own reply begins in them: a Continue's
    (``reply_so_far``) as generated when this model wrote it last, else as tokenized;
    a prompt that continues no reply has none (its end)."""
    reply = request.reply_so_far
    if not reply or not built.text.endswith(reply):
        return tokens, len(tokens)
    last = _written.get(model)
    if last is not None and last.text == built.text:
        return list(last.tokens), last.reply_from
    head = replace(built, text=built.text[: len(built.text) - len(reply)])
    return tokens, min(len(tokens), len(prompt_tokens(model, head)))


def _token_logprob(model: LlamaModel, token: int, top: Any, special: bool) -> TokenLogprob | None:
    """The protocol's form of the backend's top-k figures (None when not asked for)."""
    if top is None:
        return None

    def text(t: int) -> str:
        return model.piece(t, special).decode("utf-8", "replace")

    sampled = top.sampled
    return TokenLogprob(
        token=text(token), logprob=top.chosen_logprob,
        top=tuple((text(t), p) for t, p in zip(top.tokens, top.logprobs)),
        top_sampled=() if sampled is None else tuple(
            (text(int(t)), float(p)) for t, p in zip(sampled.ids, sampled.logprobs)),
        sampled_logprob=None if sampled is None else sampled.chosen_logprob,
        whole=b"" if top.whole is None else top.whole.tobytes())


def run_many(
    model: LlamaModel,
    entry: ModelEntry,
    request: GenerationRequest,
    seeds: tuple[int | None, ...],
    *,
    should_stop: Callable[[], bool] = lambda: False,
    threads: Callable[[], int] | None = None,
    ceiling: Callable[[], int] | None = None,
) -> Iterator[Event]:
    """Sample ``len(seeds)`` sequences from one prompt at once (see ``GenerateMany``).

    Yields one PromptSent (with the first sequence's seed), Deltas tagged with their
    sequence, and one Finished per sequence as each ends; a Failed ends them all.
    """
    from desktop_app.engine.llama.backend import DecodeEnd

    started = time.perf_counter()
    if not 1 <= len(seeds) <= model.n_sequences:
        message = _(S.TOO_MANY_SEQUENCES).format(most=model.n_sequences)
        yield Failed(message=message, kind=FailureKind.ERROR,
                     result=GenerationResult(model=entry.id, role=entry.role, error=message))
        return
    prepared = _prepare(model, entry, request, GenerationResult(model=entry.id, role=entry.role))
    if isinstance(prepared, Failed):
        yield prepared
        return
    built, tokens = prepared
    chosen = [seed if seed is not None else random.randrange(2**31) for seed in seeds]
    replies = [_Reply(entry, request, built, model, started, sequence=index)
               for index in range(len(chosen))]
    for reply, seed in zip(replies, chosen):
        reply.result.prompt_sent, reply.result.prompt_tokens, reply.result.seed = (
            built.text, len(tokens), seed)
        reply.result.prompt_notes = built.notes
    yield PromptSent(text=built.text, n_tokens=len(tokens),
                     starts_in_thinking=built.starts_in_thinking, seed=chosen[0],
                     notes=built.notes)
    if should_stop():
        for reply in replies:
            yield from reply.finish(FinishReason.CANCELLED)
        return
    limits = _limits(threads, ceiling)
    tuner = (ThreadTuner(limits()[1], start=limits()[0], fastest=_FASTEST_MANY,
                         up_probes=_UP_MANY) if threads is not None else None)
    if tuner is not None:
        model.set_threads(tuner.threads)
    samplers = [model.sampler(request.sampling, seed) for seed in chosen]
    room = (model.n_ctx - len(tokens)) // len(chosen)  # the sequences share the context
    stream = model.many(tokens, samplers, min(request.sampling.max_tokens, room), should_stop)
    stream.top_k_logprobs = max(0, request.top_logprobs)
    for index, reply in enumerate(replies):  # a budget of 0 with a pre-filled <think>
        if reply.over_budget():
            stream.forced[index] = reply.close_thinking()
    live = set(range(len(replies)))
    cancelled = False
    try:
        for sequence, token in stream:
            now = time.perf_counter()
            reply = replies[sequence]
            logprob = _token_logprob(model, token, stream.last_logprobs.get(sequence),
                                     reply.special)
            delta, ended = reply.add(token, now, logprob)
            if delta is not None:
                yield delta
            if not ended and reply.over_budget():
                stream.forced.setdefault(sequence, []).extend(reply.close_thinking())
            if ended:
                stream.finish(sequence)
                live.discard(sequence)
                reply.result.prompt_cached = len(tokens) - stream.evaluated
                yield from reply.finish()
                if not live:
                    break
            if should_stop():
                cancelled = True
                break
            if tuner is not None and sequence == max(live, default=sequence):
                start, most = limits()
                tuner.set_ceiling(most, start)
                model.set_threads(tuner.observe(now))  # once per step of every sequence
    finally:
        for sampler in samplers:
            sampler.close()
    reason = (FinishReason.CANCELLED if cancelled or stream.ended is DecodeEnd.ABORTED
              else FinishReason.LENGTH)
    for sequence in sorted(live):
        replies[sequence].result.prompt_cached = len(tokens) - stream.evaluated if stream.evaluated else 0
        yield from replies[sequence].finish(reason)


WORKER_NICENESS = 5


def _yield_to_the_window() -> None:
    """Run below the app's priority: with every core busy generating, the GUI thread
    still gets the CPU the moment it needs it.

    Reconsidered for issue 11 with one core kept busy by another process: once the
    thread count fits the free cores, nice 5 against nice 0 made no difference beyond
    run-to-run noise (1 thread: 36-55 tok/s either way; the collapse came from the
    second thread), while three streaming panes stalled the GUI thread 45-108 ms at
    nice 0 against 20-33 ms at nice 5 (and 2). So the worker stays at nice 5.
    """
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):  # Windows has no nice(); never fatal
        pass


def _redirect_native_stderr(entry: ModelEntry, append: bool = False) -> None:
    """Send llama.cpp's own console chatter to a per-model log file, not the user's terminal
    (``append``: a process started again after a crash keeps the crashed one's lines)."""
    from desktop_app import paths

    try:
        log_dir = paths.data_dir() / "logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        # one log per model, rewritten at each start so it never grows without bound
        log = open(log_dir / f"worker-{entry.id}.log", "ab" if append else "wb",  # noqa: SIM115
                   buffering=0)
        os.dup2(log.fileno(), 2)
    except OSError:
        pass


def _loaded_kernels() -> str:
    """The CPU-kernel library ggml loaded in this process (a dispatch build), or ""."""
    chosen = os.environ.get(CHOSEN_KERNELS_ENV)
    if chosen:  # the runtime hook chose it (it opened the others to score them)
        return chosen
    try:
        import psutil

        return kernel_variant([m.path for m in psutil.Process().memory_maps()])
    except Exception:  # noqa: BLE001 - psutil cannot read the maps here: nothing to say
        return ""


def worker_main(conn: Any, stop_event: Any, threads: tuple[Any, Any], entry: ModelEntry,
                gpu_layers: int | None = None, setup: NativeSetup | None = None,
                probe: bool = False) -> None:
    """Process entry point: load the model, then serve commands until Shutdown.

    ``gpu_layers``: None offloads every layer when the build can (auto), 0 keeps the
    model on the CPU, N offloads N layers. ``setup``: how llama.cpp may run here
    (``native_setup``); ``probe``: decode a test batch before saying it is loaded, so a
    setting that crashes this CPU crashes now, where the parent can fall back.
    """
    setup = setup or NativeSetup()
    threads_value = threads[0]  # the count to start from; threads[1]: the most to try
    if setup.avoid_kernels:  # read by the bundle's runtime hook when llama.cpp loads
        os.environ[AVOID_KERNELS_ENV] = ",".join(setup.avoid_kernels)
    from desktop_app.engine.llama.backend import LlamaModel

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is the parent's to handle
    _redirect_native_stderr(entry, append=bool(setup.crashed_with))
    _yield_to_the_window()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        conn.send(Loading(entry.id, _(S.PREPARING)))
        try:
            path = ensure_local(entry)
        except CatalogError as exc:
            conn.send(Failed(message=str(exc), kind=FailureKind.MISSING))
            return
        conn.send(Loading(entry.id, _(S.LOADING_FILE).format(file=path.name),
                          kernels=_loaded_kernels()))
        started = time.perf_counter()
        n_threads = max(1, int(threads_value.value))
        inject_crash("kernels", setup)
        inject_crash("load", setup)
        try:
            model = LlamaModel(path, n_ctx=entry.context_length, n_threads=n_threads,
                               gpu_layers=gpu_layers, extra_buffers=setup.extra_buffers)
            model.placement = replace(model.placement, note=setup.note())
            if probe:
                inject_crash("probe", setup)
                model.probe()
        except MemoryError:
            conn.send(Failed(message=_(S.NO_MEMORY_TO_LOAD).format(model=entry.name),
                             kind=FailureKind.OOM))
            return
        except Exception as exc:  # noqa: BLE001 - every load failure is reported as data
            conn.send(Failed(message=str(exc) or type(exc).__name__, kind=FailureKind.LOAD))
            return
        conn.send(Loaded(model_id=entry.id, load_s=time.perf_counter() - started,
                         n_ctx=model.n_ctx, n_threads=n_threads, model_path=str(path),
                         has_chat_template=model.chat_template is not None,
                         placement=model.placement.describe(n_threads),
                         gpu_layers=model.placement.gpu_layers, probed=probe))
        _serve(conn, stop_event, threads, entry, model, setup)
    except (BrokenPipeError, EOFError, OSError):
        return  # the app went away


# The best per-token time this process's model has shown at each thread count (one
# sequence; several at once): every generation's ThreadTuner shares it, so only a
# slowdown makes a generation probe fewer threads.
_FASTEST: dict[int, float] = {}
_FASTEST_MANY: dict[int, float] = {}
# ... and how its probes of a thread more than the free cores went (cores.UpProbes)
_UP = UpProbes()
_UP_MANY = UpProbes()
FRAME_S = 1 / 60  # Deltas are sent at most about once a frame (see send_batched)


def send_batched(conn: Any, events: Iterator[Event]) -> None:
    """Send a generation's events up the pipe, the Deltas of one frame as one list.

    Every message wakes the app's process, which then competes for the cores llama.cpp's
    threads are using: one message per token cost a 2-core laptop 4-6 % of its decode
    speed. A Delta goes at once when the last message left a frame ago or more (a slow
    model: every token, as before); otherwise it waits for the next event, at most one
    token's time. Every other event (PromptSent, Finished, Failed) goes at once, after
    the Deltas before it.
    """
    pending: list[Event] = []
    last_sent = 0.0
    for event in events:
        now = time.monotonic()
        if isinstance(event, Delta):
            pending.append(event)
            if now - last_sent < FRAME_S:
                continue
        if pending:
            conn.send(pending if len(pending) > 1 else pending[0])
            pending = []
            last_sent = now
        if not isinstance(event, Delta):
            conn.send(event)
            last_sent = now
    if pending:
        conn.send(pending if len(pending) > 1 else pending[0])


def _serve(conn: Any, stop_event: Any, shared: tuple[Any, Any], entry: ModelEntry,
           model: LlamaModel, setup: NativeSetup) -> None:
    first = True
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if isinstance(message, Shutdown):
            return
        def threads() -> int:
            return max(1, int(shared[0].value))

        def ceiling() -> int:
            return max(threads(), int(shared[1].value))

        if isinstance(message, Embed):
            try:
                conn.send(run_embedding(entry, message.texts, threads()))
            except (BrokenPipeError, EOFError):
                return
            continue
        if isinstance(message, Generate):
            events = run_generation(model, entry, message.request, should_stop=stop_event.is_set,
                                    threads=threads, ceiling=ceiling)
        elif isinstance(message, GenerateMany):
            events = run_many(model, entry, message.request, message.seeds,
                              should_stop=stop_event.is_set, threads=threads, ceiling=ceiling)
        else:
            continue
        if first:
            inject_crash("decode", setup)
            first = False
        try:
            send_batched(conn, events)
        except MemoryError:
            conn.send(Failed(message=_(S.OOM_GENERATING).format(model=entry.name),
                             kind=FailureKind.OOM))
        except (BrokenPipeError, EOFError):
            return
        except Exception as exc:  # noqa: BLE001 - a generation's failure is data for its pane
            conn.send(Failed(message=_(S.GENERATION_FAILED).format(error=exc),
                             kind=FailureKind.ERROR))


# ------------------------------------------------------------------------- embeddings

EMBED_CONTEXT = 512  # tokens of each text embedded (longer texts are truncated)
_EMBEDDERS: dict[str, Any] = {}


def run_embedding(entry: ModelEntry, texts: tuple[str, ...], n_threads: int) -> Embedded | Failed:
    """Each text's embedding from llama.cpp's own embedding mode (``Llama(embedding=True)``,
    mean-pooled over the text's tokens, unit length). The embedding context is opened on the
    first request (the weights are memory-mapped: the generating model's pages are shared)
    and kept, on the CPU."""
    try:
        embedder = _EMBEDDERS.get(entry.id)
        if embedder is None:
            import llama_cpp

            embedder = llama_cpp.Llama(
                model_path=str(ensure_local(entry)), embedding=True, n_ctx=EMBED_CONTEXT,
                n_batch=EMBED_CONTEXT, n_ubatch=EMBED_CONTEXT, n_gpu_layers=0,
                n_threads=n_threads, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN,
                verbose=False)
            _EMBEDDERS[entry.id] = embedder
        vectors = embedder.embed([text if text.strip() else " " for text in texts],
                                 normalize=True, truncate=True) if texts else []
        return Embedded(tuple(tuple(float(x) for x in vector) for vector in vectors))
    except MemoryError:
        return Failed(message=_(S.OOM_EMBEDDING).format(model=entry.name),
                      kind=FailureKind.OOM)
    except Exception as exc:  # noqa: BLE001 - reported to the caller as data
        return Failed(message=_(S.CANNOT_EMBED).format(model=entry.name, error=exc),
                      kind=FailureKind.ERROR)
