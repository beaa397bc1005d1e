"""The model manager's "Open lesson pack…": install a teacher's pack with no network.

The pack is checked and installed by :func:`desktop_app.models.pack.unpack`, in the
background (the manager's :func:`~desktop_app.ui.tasks.run_task`), with its progress in the
manager's bar; the button turns into Cancel while it runs, and the outcome is one sentence:
what was installed, or why nothing was.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QProgressBar, QPushButton, QWidget

from desktop_app.models.pack import Installed, PackProgress, unpack
from desktop_app.ui.tasks import Task
from desktop_app.verify.practice import problem_count

OPEN_TEXT = "Open lesson pack…"
CANCEL_TEXT = "Cancel unpacking"
OPEN_TIP = ("Install a lesson pack (a .zip made with 'triptych pack'): its models, practice "
            "sets and prepared prompts, each file checked against its SHA-256 first.")

Start = Callable[..., Task]  # the manager's _start(work, on_success, on_failure, on_progress)


class LessonPackOpener(QObject):
    """Drives ``button``: asks for a pack, unpacks it through ``start`` with progress in
    ``bar``, reports through ``say`` (information) and ``fail`` (an error sentence).
    ``installed`` carries the :class:`Installed` report."""

    installed = Signal(object)

    def __init__(self, parent: QWidget, button: QPushButton, bar: QProgressBar, start: Start,
                 say: Callable[[str], None], fail: Callable[[str], None]):
        super().__init__(parent)
        self.parent_widget = parent
        self.button, self.bar, self.start = button, bar, start
        self.say, self.fail = say, fail
        self.task: Task | None = None
        self.last: Installed | None = None
        button.setText(OPEN_TEXT)
        button.setToolTip(OPEN_TIP)
        button.clicked.connect(self._clicked)

    @property
    def running(self) -> bool:
        return self.task is not None

    def _clicked(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.say("Cancelling: nothing from the pack will be installed…")
            return
        path, _ = QFileDialog.getOpenFileName(self.parent_widget, "Open a lesson pack", "",
                                              "Lesson packs (*.zip)")
        if path:
            self.open(path)

    def open(self, path: str | Path) -> Task:
        """Check and install the pack at ``path`` in the background."""
        pack = Path(path).expanduser()

        def work(task: Task) -> Installed:
            return unpack(pack, check_practice=problem_count, progress=task.report,
                          cancel=task.cancelled)

        self.button.setText(CANCEL_TEXT)
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.show()
        self.say(f"Checking {pack.name}: every file against its SHA-256…")
        self.task = self.start(work, self._done, self._failed, self._progress)
        return self.task

    def _progress(self, progress: PackProgress) -> None:
        if self.task is None or self.task.cancelled.is_set():
            return
        fraction = progress.fraction
        self.bar.setValue(int(1000 * fraction) if fraction is not None else 0)
        self.say(progress.describe())

    def _finish(self) -> None:
        self.task = None
        self.button.setText(OPEN_TEXT)
        self.bar.hide()

    def _done(self, result: Installed) -> None:
        self._finish()
        self.last = result
        self.say(result.describe())
        self.installed.emit(result)

    def _failed(self, message: str, cancelled: bool) -> None:
        self._finish()
        if cancelled:
            self.say("Cancelled: nothing from the pack was installed.")
        else:
            self.fail(message)

    def shutdown(self, *_args: Any) -> None:
        if self.task is not None:
            self.task.cancel()
