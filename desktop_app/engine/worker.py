"""The engine: every loaded model lives in its own worker process.

The parent side speaks plain data and generators. :class:`ModelWorker` owns one
process (spawned, so a crash or a corrupt GGUF ends that pane only) and turns its
messages into events:

    Loading -> Loaded -> PromptSent -> Delta* -> Finished      (or Failed at any point)

``ModelWorker.generate(request)`` is a blocking generator of those events; the GUI runs
it in a thread per pane, the CLI multiplexes several workers with :func:`run_comparison`.
``stop()`` is safe from any thread and ends the stream within a token.

Cores are shared: ``cores.ThreadBudget`` splits the free cores among the panes that
are generating at the same moment and re-balances as they finish, so a comparison is
not slower than running its models one after another.
"""

from __future__ import annotations

import multiprocessing
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from dataclasses import replace
from enum import Enum
from multiprocessing.connection import Connection, wait
from typing import Any

from desktop_app.engine.cores import ThreadBudget, default_budget
from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.llama.native_setup import (
    NativeSetup,
    current_setup,
    fallback,
    machine_key,
    needs_probe,
    remember_crash,
    remember_safe,
    signal_name,
)
from desktop_app.engine.protocol import (
    Delta,
    Embed,
    Embedded,
    EmbeddingError,
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
)
from desktop_app.engine.sentences import localize
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.devices import GpuLayers
from desktop_app.text.i18n import _

# ------------------------------------------------------------------------------ worker


def localize_event(event: Any) -> Any:
    """``event`` from the model's process as this process reads it: a Failed's message (and
    its result's error) and a Loading's detail in the current language; others unchanged."""
    if isinstance(event, Failed):
        if event.result is not None and event.result.error:
            event.result.error = localize(event.result.error)
        return replace(event, message=localize(event.message))
    if isinstance(event, Loading):
        return replace(event, detail=localize(event.detail))
    return event


def _describe_exit(exitcode: int | None) -> tuple[FailureKind, str]:
    if exitcode is not None and exitcode < 0:
        signum = -exitcode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        if signum == getattr(signal, "SIGKILL", 9):
            return (FailureKind.CRASH, _("The model's worker process was killed ({signal}); it "
                                         "may have run out of memory. Retry, or pick a smaller "
                                         "model.").format(signal=name))
        return (FailureKind.CRASH,
                _("The model's worker process crashed ({signal}).").format(signal=name))
    return (FailureKind.CRASH, _("The model's worker process ended unexpectedly (exit code "
                                 "{code}).").format(code=exitcode))


def _end_process(proc: Any, conn: Connection | None, timeout: float) -> None:
    """Wait ``timeout`` for a model process to end, then end it by force, and release
    it and its pipe (a process that already died is only reaped)."""
    if proc is not None:
        proc.join(timeout)
        if proc.is_alive():
            proc.terminate()
            proc.join(1.0)
        if proc.is_alive():
            proc.kill()
            proc.join(1.0)
        try:
            proc.close()
        except ValueError:
            pass
    if conn is not None:
        conn.close()


class FromCatalog(Enum):
    """A setting not given to :class:`ModelWorker`: the model's catalog entry decides."""

    SETTING = "the catalog's setting"


class ModelWorker:
    """One model in its own process. Create, :meth:`start`, :meth:`generate`, :meth:`close`."""

    def __init__(self, entry: ModelEntry, *, n_threads: int | None = None,
                 budget: ThreadBudget | None = None,
                 gpu_layers: GpuLayers | FromCatalog = FromCatalog.SETTING):
        """``gpu_layers``: the entry's catalog setting unless given (the command line's
        ``--gpu-layers``): None = auto (all layers on a GPU build), 0 = CPU only, N layers."""
        self.entry = entry
        self.gpu_layers: GpuLayers = (entry.gpu_layers if isinstance(gpu_layers, FromCatalog)
                                      else gpu_layers)
        self.budget = budget or default_budget()
        self._initial_threads = n_threads or self.budget.cores
        self._fixed_threads = n_threads
        ctx = multiprocessing.get_context("spawn")
        self._ctx = ctx
        self._stop_event = ctx.Event()
        self._threads = ctx.Value("i", self._initial_threads, lock=False)
        self._ceiling = ctx.Value("i", self._initial_threads, lock=False)
        self._conn: Connection | None = None
        self._inbox: deque[Any] = deque()  # the rest of a batch of Deltas (see _receive)
        self._process: Any = None
        self._loaded: Loaded | None = None
        self._load_failure: Failed | None = None
        self._lock = threading.Lock()
        self._closed = False
        key = machine_key()  # read once: both look the record up under it
        self.setup: NativeSetup = current_setup(key)  # how llama.cpp runs here (native_setup)
        self._probe = needs_probe(self.setup, key)
        self._crashed: tuple[NativeSetup, str] | None = None  # a rung that died, unconfirmed
        # the rung below a crash in a generation is confirmed only by that command finishing
        # (a crash of the prompt itself, on every setting, is not the buffers' fault)
        self._retrying = False
        self._kernels = ""  # the CPU-kernel library the process loaded (dispatch builds)
        self._generations = 0  # generations this process has started
        self._exitcode: int | None = None

    # -- lifecycle

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def alive(self) -> bool:
        try:
            return self._process is not None and self._process.is_alive()
        except ValueError:  # closed: not alive
            return False

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    def start(self) -> None:
        """Spawn the process; it starts loading the model at once. Returns immediately."""
        with self._lock:
            if self._process is not None or self._closed:
                return
            from desktop_app.engine.child import worker_main

            parent_conn, child_conn = self._ctx.Pipe(duplex=True)
            self._process = self._ctx.Process(
                target=worker_main,
                args=(child_conn, self._stop_event, (self._threads, self._ceiling), self.entry,
                      self.gpu_layers, self.setup, self._probe),
                name=f"triptych-{self.entry.id}",
                daemon=True,
            )
            self._process.start()
            child_conn.close()
            self._conn = parent_conn

    def set_threads(self, n_threads: int, ceiling: int | None = None) -> None:
        """Change the thread count to start from (and the most to try, ``ceiling``); a
        generating worker picks it up at its next token."""
        self._threads.value = self._fixed_threads or max(1, n_threads)
        self._ceiling.value = self._fixed_threads or max(self._threads.value, ceiling or 0)

    def stop(self) -> None:
        """Ask the current generation to stop (thread-safe, returns immediately)."""
        self._stop_event.set()

    def close(self, timeout: float = 2.0) -> None:
        """End the process (politely, then by force) and release its resources."""
        with self._lock:  # a fallback restarting the process meanwhile sees it closed
            if self._closed:
                return
            self._closed = True
            proc, conn = self._process, self._conn
        self._stop_event.set()
        if conn is not None:
            try:
                conn.send(Shutdown())
            except (OSError, EOFError, BrokenPipeError):
                pass
        _end_process(proc, conn, timeout)

    def __enter__(self) -> ModelWorker:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- protocol

    @property
    def connection(self) -> Connection:
        assert self._conn is not None, "start() first"
        return self._conn

    @property
    def buffered(self) -> bool:
        """The rest of a batch of Deltas waits in the inbox (no pipe read needed)."""
        return bool(self._inbox)

    def _receive(self) -> Any:
        """The next message, or a Failed event if the process died. The child sends a
        frame's Deltas as one list (worker_process.send_batched): they come out one by one."""
        if self._inbox:
            return self._inbox.popleft()
        try:
            message = self.connection.recv()
            if isinstance(message, list):
                self._inbox.extend(localize_event(item) for item in message[1:])
                return localize_event(message[0])
            return localize_event(message)
        except (EOFError, OSError, ConnectionResetError):
            proc = self._process
            if proc is not None:
                proc.join(2.0)
            self._exitcode = proc.exitcode if proc is not None else None
            kind, message = _describe_exit(self._exitcode)
            return Failed(message=message, kind=kind)

    # -- a native crash: one rung down (native_setup)

    def _fall_back(self, in_generation: bool = False) -> Loading | None:
        """The process died of a crash signal before showing anything: start it again one
        rung down the ladder (extra buffers off, then another kernel library), and say so
        in a Loading event; None when there is no rung left, the death was no crash, or
        the command being retried crashed again (once per command)."""
        died_of = signal_name(self._exitcode)
        if in_generation and self._retrying:  # the same command crashed on the lower rung
            self._crashed, self._retrying = None, False
            return None
        lower = fallback(self.setup, self._kernels, died_of) if died_of else None
        if lower is None or died_of is None or self._closed:
            return None
        self._crashed = (self.setup, died_of)
        self._retrying = in_generation
        with self._lock:
            if self._closed:
                return None
            _end_process(self._process, self._conn, 1.0)  # it died: reap it
            self._process = self._conn = None
            self._inbox.clear()
            self._loaded = self._load_failure = None
            self._generations = 0
            self._exitcode = None
            self.setup, self._probe = lower, True
        self.start()
        if not lower.extra_buffers:
            detail = _("loading again without its extra weight buffers (AMX, repacking): "
                       "llama.cpp crashed with them on this CPU ({cause})").format(cause=died_of)
        else:
            detail = _("loading again without its {kernels} kernels: llama.cpp crashed with "
                       "them on this CPU ({cause})").format(kernels=lower.avoid_kernels[-1],
                                                           cause=died_of)
        return Loading(self.entry.id, detail)

    def _works(self, finished: bool = False) -> None:
        """The process got through its probe (``finished``: its first command): the setting
        it runs with is safe here, and a rung above that crashed is remembered."""
        if self._retrying and not finished:
            return  # the probe passed, but the command that crashed has not run yet
        self._retrying = False
        if self._crashed is not None:
            crashed, died_of = self._crashed
            remember_crash(crashed, self.setup, died_of)
            self._crashed = None
        elif self._probe:
            remember_safe(self.setup)

    def wait_loaded(self, abandon: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Events until the model is loaded (nothing if it already is).

        With ``abandon``, stop waiting as soon as it returns True; the model keeps
        loading in its process and a later call picks up where this one left off.
        """
        if self._loaded is not None:
            return
        if self._load_failure is not None:
            yield self._load_failure
            return
        self.start()
        while True:
            if self._conn is None or self._closed:  # closed meanwhile (say, mid-fallback)
                yield Failed(message=_("The model was closed."), kind=FailureKind.ERROR)
                return
            if abandon is not None:
                try:
                    while not self.connection.poll(0.05):
                        if abandon():
                            return
                except (OSError, EOFError):  # closed from another thread while waiting
                    continue
            message = self._receive()
            if isinstance(message, Loading) and message.kernels:
                self._kernels = message.kernels
            if isinstance(message, Loaded):
                self._loaded = message
                if message.probed:
                    self._works()
                yield message
                return
            if isinstance(message, Failed):
                again = self._fall_back() if message.kind is FailureKind.CRASH else None
                if again is not None:
                    yield again
                    continue
                self._load_failure = message
                yield message
                return
            yield message

    def generate(self, request: GenerationRequest) -> Generator[Event, None, None]:
        """Stream one generation's events. Blocking; run it off the GUI thread."""
        yield from self._run(Generate(request), 1)

    def generate_many(self, request: GenerationRequest,
                      seeds: Sequence[int | None]) -> Generator[Event, None, None]:
        """Sample ``len(seeds)`` sequences from one prompt at once (its KV cache shared).

        Deltas and Finished events carry their ``sequence`` index; the stream ends after
        every sequence's Finished, or at the first Failed. ``stop()`` ends them all.
        """
        yield from self._run(GenerateMany(request, tuple(seeds)), max(1, len(seeds)))

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's embedding (mean-pooled, unit length), from llama.cpp's embedding mode
        in the model's process. Blocking; run it off the GUI thread. Raises
        :class:`EmbeddingError` when the model cannot."""
        for event in self.wait_loaded():
            if isinstance(event, Failed):
                raise EmbeddingError(event.message)
        self.budget.acquire(self)
        try:
            try:
                self.connection.send(Embed(tuple(texts)))
            except (OSError, BrokenPipeError):
                pass  # the receive below reports how the process died
            message = self._receive()
        finally:
            self.budget.release(self)
        if isinstance(message, Failed):
            if message.kind.process_gone:
                self._load_failure = message
            raise EmbeddingError(message.message)
        if not isinstance(message, Embedded):
            raise EmbeddingError(f"{self.entry.name} answered an embedding with {type(message).__name__}.")
        return [list(vector) for vector in message.vectors]

    def _run(self, command: Generate | GenerateMany, finals: int) -> Generator[Event, None, None]:
        collectors: dict[int, ResultCollector] = {}

        def collector(sequence: int = 0) -> ResultCollector:
            return collectors.setdefault(sequence, ResultCollector(self.entry))

        self._stop_event.clear()  # a stop from here on, even while loading, counts
        while True:
            for event in self.wait_loaded(abandon=self._stop_event.is_set):
                if isinstance(event, Failed):
                    yield replace(event, result=collector().fail(event.message))
                    return
                yield event
            if self._stop_event.is_set():  # stopped before the prompt went out: don't send it
                for sequence in range(finals):
                    collector(sequence).result.finish_reason = FinishReason.CANCELLED
                    yield Finished(result=collector(sequence).result, sequence=sequence)
                return
            again = yield from self._stream(command, finals, collector)
            if again is None:
                return
            collectors.clear()
            yield again  # loading again one rung down; then the same command once more

    def _stream(self, command: Generate | GenerateMany, finals: int,
                collector: Callable[[int], ResultCollector]
                ) -> Generator[Event, None, Loading | None]:
        """Send one command and stream its events. Returns a Loading event when the
        process died of a native crash before its first token ever reached the window
        and is starting again one rung down (the caller sends the command again)."""
        self.budget.acquire(self)  # sets this worker's threads and ceiling (_rebalance)
        remaining = finals
        first_generation = self._generations == 0
        self._generations += 1
        shown = False
        try:
            try:
                self.connection.send(command)
            except (OSError, BrokenPipeError):
                pass  # the receive below reports how the process died
            while True:
                message = self._receive()
                sequence = getattr(message, "sequence", 0)
                if isinstance(message, PromptSent):
                    for index in range(finals):
                        collector(index).add(message)
                else:
                    collector(sequence).add(message)
                if isinstance(message, Failed):
                    remaining = 0
                    if message.kind.process_gone:
                        self._load_failure = message  # this process is gone
                        again = (self._fall_back(in_generation=True)
                                 if first_generation and not shown
                                 and message.kind is FailureKind.CRASH else None)
                        if again is not None:
                            return again
                    yield replace(message, result=collector(0).fail(message.message))
                    return None
                if isinstance(message, Delta | Finished):
                    shown = True  # something reached the caller: no silent retry now
                if isinstance(message, Finished):
                    remaining -= 1
                    if self._loaded is not None:
                        message.result.load_s = self._loaded.load_s
                    if first_generation:
                        self._works(finished=True)
                yield message
                if remaining == 0:
                    return None
        finally:
            self.budget.release(self)
            if remaining:
                self._abandon_generation(remaining)

    def _abandon_generation(self, finals: int = 1, timeout: float = 5.0) -> None:
        """The caller stopped reading mid-stream: stop the model and drain what it still
        sends (up to ``finals`` ends), so the next generation does not read leftovers."""
        self._stop_event.set()
        self._inbox.clear()  # Deltas of the abandoned generation (a batch holds nothing else)
        deadline = time.monotonic() + timeout
        conn = self._conn
        try:
            while conn is not None and time.monotonic() < deadline:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    break
                message = conn.recv()
                if isinstance(message, Failed):
                    return
                if isinstance(message, Finished):
                    finals -= 1
                    if finals <= 0:
                        return
        except (EOFError, OSError):
            pass
        # No end in sight (or the process died): this worker cannot be trusted any more.
        self._load_failure = Failed(message=_("The model's worker stopped responding; retry."),
                                    kind=FailureKind.CRASH)
        proc = self._process
        if proc is not None and proc.is_alive():
            proc.kill()


def decided_setup(entry: ModelEntry) -> NativeSetup:
    """How llama.cpp runs on this machine; not known yet, a model process for ``entry``
    finds out now (it probes a batch, falling back if that crashes). For code that runs
    llama.cpp outside our model processes (the bench's baselines, the tests' peers)."""
    key = machine_key()
    setup = current_setup(key)
    if not needs_probe(setup, key):
        return setup
    with ModelWorker(entry, n_threads=1) as worker:
        for _event in worker.wait_loaded():
            pass
        return worker.setup


def open_worker(entry: ModelEntry, **settings: Any) -> ModelHandle:
    """The worker for *entry*: a :class:`ModelWorker` process, or for a model on a server a
    ``backends.remote.RemoteWorker`` (same surface, same events; no process)."""
    from desktop_app.models.sources import RemoteSource

    if isinstance(entry.source, RemoteSource):
        from desktop_app.engine.remote import RemoteWorker

        return RemoteWorker(entry, **settings)
    return ModelWorker(entry, **settings)


class ResultCollector:
    """Accumulates a generation's events so a crash still reports what was produced."""

    def __init__(self, entry: ModelEntry):
        self.result = GenerationResult(model=entry.id, role=entry.role)

    def add(self, event: Any) -> None:
        result = self.result
        if isinstance(event, Loaded):
            result.load_s = event.load_s
        elif isinstance(event, PromptSent):
            result.prompt_sent = event.text
            result.prompt_notes = event.notes
            result.prompt_tokens = event.n_tokens
            result.seed = event.seed
        elif isinstance(event, Delta):
            result.thinking += event.thinking
            result.answer += event.answer
            result.thinking_tokens = event.thinking_tokens
            result.answer_tokens = event.answer_tokens

    def fail(self, message: str) -> GenerationResult:
        self.result.error = message
        self.result.finish_reason = FinishReason.ERROR
        return self.result


# -------------------------------------------------------------------------- comparison


def run_comparison(
    workers: Sequence[ModelHandle], requests: Sequence[GenerationRequest]
) -> Iterator[tuple[int, Event]]:
    """Run every worker's request at once; yield ``(pane index, event)`` as they come.

    No threads: each worker's generator is advanced only when it has an event ready (one
    already received, or data on its pipe), so one slow or dead pane never holds up the
    others, and the tail of a batch of Deltas never waits for the next message.
    """
    streams = {index: worker.generate(request)
               for index, (worker, request) in enumerate(zip(workers, requests))}
    for worker in workers:
        worker.start()  # all panes load at the same time
    pending = dict(streams)
    # Prime every generator up to its first blocking receive.
    ready_indexes = list(pending)
    send_now: list[int] = []
    while pending:
        for index in ready_indexes:
            stream = pending.get(index)
            if stream is None:
                continue
            try:
                event = next(stream)
            except StopIteration:
                del pending[index]
                continue
            yield index, event
            if isinstance(event, Finished | Failed):
                pending.pop(index, None)
                stream.close()
            elif isinstance(event, Loaded):
                send_now.append(index)  # its next step sends the request: nothing to wait for
        if not pending:
            break
        if send_now:
            ready_indexes, send_now = send_now, []
            continue
        if buffered := [index for index in pending if workers[index].buffered]:
            ready_indexes = buffered
            continue
        by_conn = {workers[index].connection: index for index in pending}
        ready = wait(list(by_conn), timeout=0.5)
        ready_indexes = [by_conn[conn] for conn in ready]  # type: ignore[index]
        # A dead process makes its pipe readable (EOF), so crashes surface here too.
