"""A scripted stand-in for a model process, at the one seam where speed matters.

:class:`FakeWorker` has :class:`desktop_app.engine.worker.ModelWorker`'s public surface
(``start``, ``generate``, ``stop``, ``close``, ``wait_loaded``, ``alive``, ``pid``,
``loaded``, ``entry``) and replays a script of protocol events, so session and window
tests run the real threads, the real deque and the real Qt event loop without llama.cpp.

A script is a list of items, or a function of the request returning one:

* an event (``Loading``, ``PromptSent``, ``Delta``, ``Finished``, ``Failed``) is yielded;
* a number is a pause in seconds (a slow token);
* :data:`WAIT_FOR_STOP` blocks until ``stop()`` is called (bounded, so a test can't hang);
* a ``threading.Event`` blocks until the test sets it (or ``stop()``; bounded too).

As ModelWorker does, the first ``generate`` loads the model (``Loading``, ``Loaded``), a
``stop()`` ends the stream with ``Finished(finish_reason=cancelled)`` carrying what was
produced so far, and ``Failed`` events carry the partial result.
"""

from __future__ import annotations

import itertools
import multiprocessing
import threading
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.protocol import (
    Delta,
    EmbeddingError,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Loaded,
    Loading,
    PromptSent,
    TokenLogprob,
)
from desktop_app.models.catalog import Catalog, ModelEntry

WAIT_FOR_STOP = object()
STOP_WAIT_LIMIT_S = 30.0

Script = Sequence[Any] | Callable[[GenerationRequest], Sequence[Any]]
_pids = itertools.count(900_000)


def answer_script(answer: str, *, thinking: str = "", chunk: int = 4,
                  thinking_s: float | None = None, delay: float = 0.0,
                  finish_reason: FinishReason = FinishReason.STOP) -> list[Any]:
    """A reply streamed a few characters per Delta (thinking first), then Finished."""
    items: list[Any] = [PromptSent(text="<prompt>", n_tokens=3,
                                   starts_in_thinking=bool(thinking), seed=1)]
    thinking_tokens = answer_tokens = 0
    elapsed = 0.0
    for part, is_thinking in ((thinking, True), (answer, False)):
        for start in range(0, len(part), chunk):
            piece = part[start:start + chunk]
            if is_thinking:
                thinking_tokens += 1
            else:
                answer_tokens += 1
            elapsed += 0.01
            if delay:
                items.append(delay)
            items.append(Delta(thinking=piece if is_thinking else "",
                               answer="" if is_thinking else piece,
                               thinking_tokens=thinking_tokens, answer_tokens=answer_tokens,
                               elapsed_s=elapsed))
    items.append(Finished(result=GenerationResult(
        model="", role="", thinking=thinking, answer=answer,
        thinking_tokens=thinking_tokens, answer_tokens=answer_tokens,
        ttft_s=0.01, tokens_per_s=50.0,
        thinking_s=thinking_s if thinking_s is not None else (0.5 if thinking else None),
        finish_reason=finish_reason)))
    return items


def token_script(texts: list[str], *, thinking: int = 0, figures: bool = True
                 ) -> Callable[[GenerationRequest], list[Any]]:
    """One Delta per token, with its figures when the request asks for them (the chosen
    token at -0.2, an alternative "alt"); the first ``thinking`` tokens are thinking. A
    raw request (a branch) gets its prompt back as sent, unsplit, as the engine does."""
    def script(request: GenerationRequest) -> list[Any]:
        items: list[Any] = [PromptSent(text=request.prompt if request.raw else "<p>", n_tokens=3,
                                  starts_in_thinking=thinking > 0 and not request.raw, seed=1)]
        for index, text in enumerate(texts):
            is_thinking = index < thinking and not request.raw
            top = ((text, -0.2), ("alt", -1.9)) if request.top_logprobs and figures else ()
            shown = "" if text == "</think>" and not request.raw else text  # the engine splits
            items.append(Delta(thinking=shown if is_thinking else "",
                               answer="" if is_thinking else shown,
                               thinking_tokens=min(index + 1, thinking) if not request.raw else 0,
                               answer_tokens=max(0, index + 1 - (0 if request.raw else thinking)),
                               elapsed_s=0.01 * index,
                               logprob=TokenLogprob(text, -0.2, top)
                               if request.top_logprobs and figures else None))
        items.append(Finished(result=GenerationResult(model="", role="",
                                                      finish_reason=FinishReason.STOP)))
        return items
    return script


def letter_embedding(text: str) -> list[float]:
    """A stand-in embedding: the text's counts of a to z (and one for everything else)."""
    counts = [0.0] * 27
    for char in text.casefold():
        counts[ord(char) - ord("a") if "a" <= char <= "z" else 26] += 1.0
    return counts


class FakeWorker:
    """Replays a script of events with ModelWorker's public surface."""

    def __init__(self, entry: ModelEntry, n_threads: int | None = None, budget: Any = None,
                 *, script: Script | None = None, load_s: float = 0.01,
                 fail_load: Failed | None = None,
                 embedder: Callable[[str], Sequence[float]] | None = None):
        self.entry = entry
        self.embedder = embedder or letter_embedding
        self.embedded: list[str] = []
        self.script: Script = script if script is not None else answer_script("Hello.")
        self.load_s = load_s
        self.fail_load = fail_load
        self.requests: list[GenerationRequest] = []
        self._stop = threading.Event()
        self._started = False
        self._closed = False
        self._loaded: Loaded | None = None
        self._pid = next(_pids)
        self._pipe: tuple[Connection, Connection] | None = None

    # -- lifecycle (as ModelWorker)

    @property
    def pid(self) -> int | None:
        return self._pid if self._started else None

    @property
    def alive(self) -> bool:
        return self._started and not self._closed

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    @property
    def connection(self) -> Connection:
        """A real pipe that nothing is ever written to: the script's events are all
        :attr:`buffered`, so a caller that waited on it instead would wait forever."""
        if self._pipe is None:
            self._pipe = multiprocessing.Pipe(duplex=False)
        return self._pipe[0]

    @property
    def buffered(self) -> bool:
        """A scripted event is always ready without reading a pipe."""
        return True

    def start(self) -> None:
        self._started = True

    def stop(self) -> None:
        self._stop.set()

    def close(self, timeout: float = 2.0) -> None:
        self._closed = True
        self._stop.set()
        if self._pipe is not None:
            for end in self._pipe:
                end.close()
            self._pipe = None

    def kill(self) -> None:
        """The process dies (as a SIGKILL would): the stream fails as a crash."""
        self._closed = True
        self._stop.set()

    def wait_loaded(self, abandon: Callable[[], bool] | None = None) -> Iterator[Event]:
        if self._loaded is not None:
            return
        self.start()
        yield Loading(model_id=self.entry.id)
        if self.load_s:
            time.sleep(self.load_s)
        if self.fail_load is not None:
            yield self.fail_load
            return
        self._loaded = Loaded(model_id=self.entry.id, load_s=self.load_s, n_ctx=2048,
                              n_threads=1, model_path="fake.gguf", has_chat_template=True)
        yield self._loaded

    # -- embeddings

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's vector from :attr:`embedder` (default: :func:`letter_embedding`),
        unit length as the real one's; a failed load raises as ModelWorker's does."""
        for event in self.wait_loaded():
            if isinstance(event, Failed):
                raise EmbeddingError(event.message)
        if self._closed:
            raise EmbeddingError("The model's worker stopped.")
        self.embedded.extend(texts)
        vectors = []
        for text in texts:
            vector = [float(x) for x in self.embedder(text)]
            norm = sum(x * x for x in vector) ** 0.5 or 1.0
            vectors.append([x / norm for x in vector])
        return vectors

    # -- generation

    def generate(self, request: GenerationRequest) -> Generator[Event, None, None]:
        self.requests.append(request)
        self._stop.clear()
        produced = GenerationResult(model=self.entry.id, role=self.entry.role)
        for event in self.wait_loaded():
            if isinstance(event, Failed):
                yield replace(event, result=produced)
                return
            yield event
        script = self.script(request) if callable(self.script) else self.script
        for item in script:
            if self._closed:
                yield Failed(message="The model's worker process was killed (SIGKILL).",
                             kind=FailureKind.CRASH, result=produced)
                return
            if self._stop.is_set():
                break
            if item is WAIT_FOR_STOP:
                self._stop.wait(STOP_WAIT_LIMIT_S)
                continue
            if isinstance(item, threading.Event):  # a gate the test opens
                deadline = time.monotonic() + STOP_WAIT_LIMIT_S
                while not item.wait(0.01) and not self._stop.is_set():
                    if time.monotonic() > deadline:
                        break
                continue
            if isinstance(item, int | float):
                self._stop.wait(item)
                continue
            if isinstance(item, Delta):
                produced.thinking += item.thinking
                produced.answer += item.answer
                produced.thinking_tokens = item.thinking_tokens
                produced.answer_tokens = item.answer_tokens
            elif isinstance(item, PromptSent):
                produced.prompt_sent = item.text
            elif isinstance(item, Finished):
                yield Finished(result=replace(item.result, model=self.entry.id,
                                              role=self.entry.role, load_s=self.load_s))
                return
            elif isinstance(item, Failed):
                yield replace(item, result=item.result or produced)
                return
            yield item
        if self._closed:
            yield Failed(message="The model's worker process was killed (SIGKILL).",
                         kind=FailureKind.CRASH, result=produced)
            return
        produced.finish_reason = (FinishReason.CANCELLED if self._stop.is_set()
                                  else FinishReason.LENGTH)
        yield Finished(result=produced)

    def generate_many(self, request: GenerationRequest,
                      seeds: Sequence[int | None]) -> Generator[Event, None, None]:
        """As ModelWorker.generate_many: the script once per seed (the request it sees
        carries that seed, and lands in ``requests``), the sequences' events interleaved
        and tagged; one PromptSent."""
        streams = {index: iter(self.generate(replace(request, sampling=replace(
                       request.sampling, seed=seed))))
                   for index, seed in enumerate(seeds)}
        prompt_sent = False
        while streams:
            for index in list(streams):
                try:
                    event = next(streams[index])
                except StopIteration:
                    del streams[index]
                    continue
                if isinstance(event, PromptSent):
                    if not prompt_sent:
                        prompt_sent = True
                        yield event
                    continue
                if isinstance(event, Loading | Loaded):
                    yield event
                    continue
                if isinstance(event, Delta):
                    yield replace(event, sequence=index)
                elif isinstance(event, Finished):
                    del streams[index]
                    yield Finished(result=replace(event.result, seed=seeds[index]),
                                   sequence=index)
                elif isinstance(event, Failed):
                    yield event
                    return


class FakeEngine:
    """Makes FakeWorkers (pass ``engine.worker`` as a ``worker_factory``) and keeps them.

    ``scripts`` maps a model id to its script; others get ``default``. Each generation
    reads the script current at that moment."""

    def __init__(self, default: Script | None = None, **worker_options: Any):
        self.default = default
        self.scripts: dict[str, Script] = {}
        self.workers: list[FakeWorker] = []
        self.options = worker_options

    def script_for(self, entry: ModelEntry, request: GenerationRequest) -> Sequence[Any]:
        """The script as it is now (tests change it between sends)."""
        script = self.scripts.get(entry.id, self.default)
        if script is None:
            return answer_script("Hello.")
        return script(request) if callable(script) else script

    def worker(self, entry: ModelEntry) -> FakeWorker:
        made = FakeWorker(entry, script=lambda request: self.script_for(entry, request),
                          **self.options)
        self.workers.append(made)
        return made


def fake_catalog(folder: Path) -> Catalog:
    """The bundled catalog's base, instruct and a reasoning entry, each pointing at a
    placeholder file in ``folder`` so they count as ready without any download: with a
    FakeEngine nothing ever reads the file."""
    from desktop_app.models.catalog import load_catalog
    from desktop_app.models.sources import FileSource

    catalog = load_catalog()
    picked: dict[str, ModelEntry] = {}
    for role in ("base", "instruct", "reasoning"):
        entry = next((e for e in catalog if e.role == role and e.starter), None)
        entry = entry or next(e for e in catalog if e.role == role)
        path = folder / f"{entry.id}.gguf"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"GGUF placeholder")
        picked[entry.id] = replace(entry, source=FileSource(path=str(path)))
    return Catalog(entries=picked)


def send_and_wait(qtbot: Any, pane: Any, prompt: str, problem: Any = None,
                  timeout_ms: int = 10_000) -> Any:
    """Send ``prompt`` to a window pane and wait, on the real Qt event loop, until its
    turn has ended; returns the turn's widget."""
    with qtbot.waitSignal(pane.runFinished, timeout=timeout_ms):
        assert pane.send(prompt, problem)
    return pane.turns[-1]


def run_to_end(session: Any, timeout: float = 10.0) -> list[Any]:
    """Poll a PaneSession as the window's frame timer does, until its generation has
    ended; returns the steps it reported."""
    steps: list[Any] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new, ended = session.poll()
        steps.extend(new)
        if ended:
            return steps
        time.sleep(0.005)
    raise AssertionError("the generation did not end")


def _the_fake_is_a_model_handle(entry: ModelEntry) -> ModelHandle:
    """mypy checks the fake against the real seam here: drift fails the suite's lint."""
    return FakeWorker(entry)
