"""Runs one pane's generation off the GUI thread.

A :class:`GenerationRun` iterates ``ModelWorker.generate()`` in a plain Python thread and
appends every event to a deque. The GUI thread drains the deque with a ~16 ms timer
(see ``pane.Pane``), so however fast tokens arrive the widgets are touched at most once
per frame. Every exception in the thread becomes a :class:`Failed` event: nothing ever
raises into Qt, and nothing blocking ever runs on the GUI thread.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any

from desktop_app.engine import (
    Failed,
    Finished,
    GenerationRequest,
    ModelWorker,
)


class RunDone:
    """Sentinel appended when the thread has ended (after Finished/Failed)."""


class GenerationRun:
    """One generation on one worker; events land in :attr:`events` (thread-safe deque)."""

    def __init__(self, worker: ModelWorker, request: GenerationRequest):
        self.worker = worker
        self.request = request
        self.events: deque[Any] = deque()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"pane-{worker.entry.id}",
                                       daemon=True)

    def start(self) -> None:
        self.thread.start()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Cooperative stop: returns immediately; the stream ends within a token."""
        self._stop.set()
        try:
            self.worker.stop()
        except Exception:
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
                    self.worker.stop()  # covers a stop that raced generate()'s start
        except Exception as exc:  # every failure becomes data for the pane
            self.events.append(Failed(message=f"Internal error: {exc}", kind="error"))
        finally:
            if stream is not None:
                try:
                    stream.close()
                except Exception:
                    pass
            self.events.append(RunDone())


# ------------------------------------------------------------------ closing workers

_closing: list[threading.Thread] = []
_closing_lock = threading.Lock()


def close_in_background(worker: ModelWorker | None, timeout: float = 2.0) -> None:
    """Close a worker (joins its process) without blocking the GUI thread."""
    if worker is None:
        return

    def _close() -> None:
        try:
            worker.close(timeout)
        except Exception:
            pass

    thread = threading.Thread(target=_close, name=f"close-{worker.entry.id}", daemon=True)
    with _closing_lock:
        _closing[:] = [t for t in _closing if t.is_alive()]
        _closing.append(thread)
    thread.start()


def wait_for_closing(timeout: float = 5.0) -> bool:
    """Wait (bounded) for background closes to finish; True if all did."""
    import time

    deadline = time.monotonic() + timeout
    with _closing_lock:
        threads = list(_closing)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _closing_lock:
        _closing[:] = [t for t in _closing if t.is_alive()]
        return not _closing
