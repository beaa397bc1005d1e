"""Runs one pane's generation off the GUI thread.

A :class:`GenerationRun` iterates ``ModelWorker.generate()`` in a plain Python thread and
appends every event to a deque. The GUI thread drains the deque with a ~16 ms timer
(see ``pane.Pane``), so however fast tokens arrive the widgets are touched at most once
per frame. Every exception in the thread becomes a :class:`Failed` event: nothing ever
raises into Qt, and nothing blocking ever runs on the GUI thread.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

from desktop_app.engine import ModelWorker
from desktop_app.protocol import Failed, Finished, GenerationRequest


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


# ------------------------------------------------------------------ results to the GUI

_log = logging.getLogger(__name__)
_Owner = TypeVar("_Owner", bound=QObject)


class _Dispatcher(QObject):
    """One parentless object in the GUI thread, alive for the whole process: worker
    threads only ever emit on it, never on a widget that may be deleted meanwhile."""

    call = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.call.connect(self._run, Qt.ConnectionType.QueuedConnection)

    def _run(self, deliver: Callable[[], Any]) -> None:
        try:
            deliver()
        except Exception:  # noqa: BLE001 - never raise into Qt's event loop
            _log.exception("a background result could not be shown")


_dispatcher: _Dispatcher | None = None


def _get_dispatcher() -> _Dispatcher:
    global _dispatcher
    if _dispatcher is None or not shiboken6.isValid(_dispatcher):
        _dispatcher = _Dispatcher()
        app = QCoreApplication.instance()
        if app is not None and _dispatcher.thread() is not app.thread():
            _dispatcher.moveToThread(app.thread())
    return _dispatcher


class GuiPost(Generic[_Owner]):
    """Hand results from a worker thread to a Qt object on the GUI thread, safely.

    Create it on the GUI thread; from any thread, ``post(fn, *args)`` runs
    ``fn(owner, *args)`` on the GUI thread, or nothing if ``owner`` has been deleted by
    then. The owner is held only weakly and ``fn`` should be an unbound function
    (``Pane._show``), so a worker thread never holds the last reference to a Qt object,
    whose C++ side would then be destroyed on the wrong thread.
    """

    def __init__(self, owner: _Owner):
        self._owner = weakref.ref(owner)
        self._dispatcher = _get_dispatcher()

    def __call__(self, fn: Callable[..., Any], *args: Any) -> None:
        ref = self._owner

        def deliver() -> None:
            owner = ref()
            if owner is not None and shiboken6.isValid(owner):
                fn(owner, *args)

        try:
            self._dispatcher.call.emit(deliver)
        except RuntimeError:  # the application has already been torn down
            pass


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
