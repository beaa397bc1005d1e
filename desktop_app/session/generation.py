"""A pane's model process as the session sees it, and one generation run on it.

:class:`GenerationRun` runs the blocking event stream of one request on a plain thread
that only appends to a deque, so the thread that owns the conversation (the window's,
once a frame) applies the events and nothing else touches them. Closing a worker joins
its process, so it happens on a background thread too (:func:`close_in_background`),
and the window waits for those, bounded, when it quits.

No Qt in this module.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.protocol import (
    Event,
    Failed,
    FailureKind,
    Finished,
    GenerationRequest,
)
from desktop_app.models.catalog import ModelEntry
from desktop_app.text.i18n import _

WorkerFactory = Callable[[ModelEntry], ModelHandle]


def default_worker_factory(entry: ModelEntry) -> ModelHandle:
    """A real model process, or a served model's client (imported here so the fake-engine
    tests never load it)."""
    from desktop_app.engine.worker import open_worker

    return open_worker(entry)


class RunEnded:
    """Appended after the stream's last event: the generation thread has ended."""


class GenerationRun:
    """One generation on one worker, on a plain thread that only appends to :attr:`events`.

    Every exception becomes a :class:`Failed` event, so a bug in the engine never leaves a
    pane "Generating…"; the stream is always closed so an abandoned one is drained."""

    def __init__(self, worker: ModelHandle, request: GenerationRequest):
        self.worker = worker
        self.request = request
        self.events: deque[Event | RunEnded] = deque()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"pane-{worker.entry.id}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def stopping(self) -> bool:
        """A stop was asked for (the stream may still deliver a few events)."""
        return self._stop.is_set()

    def stop(self) -> None:
        """Cooperative stop: returns at once; the stream ends within a token."""
        self._stop.set()
        try:
            self.worker.stop()
        except Exception:  # noqa: BLE001 - a dead worker is stopped already
            pass

    def _run(self) -> None:
        stream = None
        try:
            stream = self.worker.generate(self.request)
            for event in stream:
                self.events.append(event)
                if isinstance(event, Finished | Failed):
                    break
                if self._stop.is_set():
                    self.worker.stop()  # a stop that raced generate()'s start
        except Exception as exc:  # noqa: BLE001 - every failure becomes data for the pane
            self.events.append(Failed(message=_("Internal error: {error}").format(error=exc),
                                      kind=FailureKind.ERROR))
        finally:
            if stream is not None and hasattr(stream, "close"):
                try:
                    stream.close()
                except Exception:  # noqa: BLE001
                    pass
            self.events.append(RunEnded())


_closing: list[threading.Thread] = []
_closing_lock = threading.Lock()


def close_in_background(worker: ModelHandle | None, timeout: float = 2.0) -> None:
    """Close a worker (joins its process) without blocking the caller."""
    if worker is None:
        return

    def close() -> None:
        try:
            worker.close(timeout)
        except Exception:  # noqa: BLE001 - it is going away either way
            pass

    thread = threading.Thread(target=close, name=f"close-{worker.entry.id}", daemon=True)
    with _closing_lock:
        _closing[:] = [t for t in _closing if t.is_alive()]
        _closing.append(thread)
    thread.start()


def wait_for_closing(timeout: float = 5.0) -> bool:
    """Wait (bounded) for background closes to finish; True if all did."""
    deadline = time.monotonic() + timeout
    with _closing_lock:
        threads = list(_closing)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _closing_lock:
        _closing[:] = [t for t in _closing if t.is_alive()]
        return not _closing
