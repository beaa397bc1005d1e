"""The one way background work reaches the window: :func:`run_task`.

``run_task(owner, work, on_success=..., on_failure=..., on_progress=...)`` runs
``work(task)`` on a plain Python thread (joinable, so nothing outlives a test or the
app unnoticed). Its outcome and any ``task.report(value)`` come back on the GUI thread,
to the callbacks, and only while ``owner`` (a widget) is alive: a result for a pane
that was removed, or a dialog that was closed, is dropped.

The worker thread never holds a callback or a Qt object: it only knows the task's
number and emits on one long-lived dispatcher object, and the callbacks wait in a
registry that only the GUI thread touches. So the last reference to a widget is never
dropped on the wrong thread.

(Streaming tokens is not a task: a pane polls its session's events once per frame.)
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import shiboken6
from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal

_log = logging.getLogger(__name__)

_SUCCESS, _FAILURE, _PROGRESS = "success", "failure", "progress"


class Task:
    """A handle on one background job: ``cancel`` it, ``report`` progress, ``wait``."""

    def __init__(self, task_id: int, name: str):
        self.id = task_id
        self.name = name
        self.cancelled = threading.Event()
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        """Ask the work to stop (it reads ``task.cancelled``); returns at once."""
        self.cancelled.set()

    def detach(self) -> None:
        """GUI thread: deliver nothing more from this task (its owner has moved on)."""
        _registry.pop(self.id, None)

    def report(self, value: Any) -> None:
        """From the worker thread: hand ``value`` to ``on_progress`` on the GUI thread."""
        _emit(self.id, _PROGRESS, value)

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Join the thread (never call this on the GUI thread without a short timeout)."""
        thread = self._thread
        if thread is not None and thread.ident is not None:
            thread.join(timeout)
        return not self.running

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread


@dataclass
class _Callbacks:
    owner: weakref.ref[QObject]
    on_success: Callable[[Any], Any] | None
    on_failure: Callable[[BaseException], Any] | None
    on_progress: Callable[[Any], Any] | None


class _Dispatcher(QObject):
    """Parentless, in the GUI thread, alive for the whole process: threads only ever
    emit on it, never on a widget that may be deleted meanwhile."""

    delivered = Signal(int, str, object)

    def __init__(self) -> None:
        super().__init__()
        self.delivered.connect(_deliver, Qt.ConnectionType.QueuedConnection)


_dispatcher: _Dispatcher | None = None
_registry: dict[int, _Callbacks] = {}  # GUI thread only
_tasks: dict[int, Task] = {}
_tasks_lock = threading.Lock()
_ids = itertools.count(1)


def _get_dispatcher() -> _Dispatcher:
    global _dispatcher
    if _dispatcher is None or not shiboken6.isValid(_dispatcher):
        _dispatcher = _Dispatcher()
        app = QCoreApplication.instance()
        if app is not None and _dispatcher.thread() is not app.thread():
            _dispatcher.moveToThread(app.thread())
    return _dispatcher


def _emit(task_id: int, kind: str, payload: Any) -> None:
    dispatcher = _dispatcher
    if dispatcher is None:
        return
    try:
        dispatcher.delivered.emit(task_id, kind, payload)
    except RuntimeError:  # the application has been torn down already
        pass


def _deliver(task_id: int, kind: str, payload: Any) -> None:
    """On the GUI thread: call the task's callback if its owner is still alive."""
    callbacks = _registry.get(task_id) if kind == _PROGRESS else _registry.pop(task_id, None)
    if callbacks is None:
        return
    owner = callbacks.owner()
    if owner is None or not shiboken6.isValid(owner):
        _registry.pop(task_id, None)
        return
    callback: Callable[[Any], Any] | None = {
        _SUCCESS: callbacks.on_success, _FAILURE: callbacks.on_failure,
        _PROGRESS: callbacks.on_progress}[kind]
    if callback is None:
        if kind == _FAILURE:
            _log.error("background task failed: %s", payload)
        return
    try:
        callback(payload)
    except Exception:  # noqa: BLE001 - never raise into Qt's event loop
        _log.exception("a background result could not be shown")


def run_task(owner: QObject, work: Callable[[Task], Any], *,
             on_success: Callable[[Any], Any] | None = None,
             on_failure: Callable[[BaseException], Any] | None = None,
             on_progress: Callable[[Any], Any] | None = None,
             name: str = "task") -> Task:
    """Run ``work(task)`` off the GUI thread; call it on the GUI thread only.

    ``on_success(result)`` / ``on_failure(exception)`` / ``on_progress(value)`` run on the
    GUI thread while ``owner`` is alive, never after it is deleted."""
    _get_dispatcher()
    task = Task(next(_ids), name)
    _registry[task.id] = _Callbacks(weakref.ref(owner), on_success, on_failure, on_progress)

    def run() -> None:
        try:
            result = work(task)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes data
            _emit(task.id, _FAILURE, exc)
        else:
            _emit(task.id, _SUCCESS, result)
        finally:
            with _tasks_lock:
                _tasks.pop(task.id, None)

    thread = threading.Thread(target=run, name=f"triptych-{name}-{task.id}", daemon=True)
    task._thread = thread
    with _tasks_lock:
        _tasks[task.id] = task
    thread.start()
    return task


def running_tasks() -> list[Task]:
    with _tasks_lock:
        return [task for task in _tasks.values() if task.running]


def wait_for_tasks(tasks: list[Task] | None = None, timeout: float = 5.0) -> bool:
    """Join tasks (default: all running ones) for at most ``timeout`` s; True if all ended."""
    deadline = time.monotonic() + timeout
    for task in tasks if tasks is not None else running_tasks():
        task.wait(max(0.0, deadline - time.monotonic()))
    return all(not task.running for task in (tasks if tasks is not None else running_tasks()))
