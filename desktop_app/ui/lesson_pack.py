"""The model manager's "Open lesson pack…": install a teacher's pack with no network.

The pack is checked and installed by :func:`desktop_app.models.pack.unpack`, in the
background (:func:`~desktop_app.ui.tasks.run_task`), with its progress in the
manager's bar; the button turns into Cancel while it runs, and the outcome is one sentence:
what was installed, or why nothing was.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QProgressBar, QPushButton, QWidget

from desktop_app.models.hub import DownloadCancelled, DownloadError
from desktop_app.models.pack import Installed, PackProgress, unpack
from desktop_app.text.i18n import N_, _
from desktop_app.ui.tasks import Task, run_task
from desktop_app.verify.practice import problem_count

OPEN_TEXT = N_("Open lesson pack…")
CANCEL_TEXT = N_("Cancel unpacking")
OPEN_TIP = N_("Install a lesson pack (a .zip made with 'triptych pack'): its models, practice "
              "sets and prepared prompts, each file checked against its SHA-256 first.")



class LessonPackOpener(QObject):
    """Drives ``button``: asks for a pack and unpacks it in the background, with its
    progress in ``bar``. ``said`` carries information (progress, the result), ``failed`` an
    error sentence, ``installed`` the :class:`Installed` report. It holds nothing of the
    dialog but these two widgets, so closing the dialog frees it."""

    installed = Signal(object)
    said = Signal(str)
    failed = Signal(str)

    def __init__(self, parent: QWidget, button: QPushButton, bar: QProgressBar):
        super().__init__(parent)
        self.button, self.bar = button, bar
        self.task: Task | None = None
        self.last: Installed | None = None
        button.setText(_(OPEN_TEXT))
        button.setToolTip(_(OPEN_TIP))
        button.setAccessibleDescription(_(OPEN_TIP))
        button.clicked.connect(self._clicked)

    @property
    def running(self) -> bool:
        return self.task is not None

    def _clicked(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.said.emit(_("Cancelling: nothing from the pack will be installed…"))
            return
        owner = self.parent()
        path, _kind = QFileDialog.getOpenFileName(
            owner if isinstance(owner, QWidget) else None, _("Open a lesson pack"), "",
            f"{_('Lesson packs')} (*.zip)")
        if path:
            self.open(path)

    def open(self, path: str | Path) -> Task:
        """Check and install the pack at ``path`` in the background."""
        pack = Path(path).expanduser()

        def work(task: Task) -> Installed:
            return unpack(pack, check_practice=problem_count, progress=task.report,
                          cancel=task.cancelled)

        self.button.setText(_(CANCEL_TEXT))
        self.button.setAccessibleDescription(_("Stops unpacking; nothing from the pack is "
                                               "installed"))
        self.bar.setRange(0, 1000)
        self.bar.setValue(0)
        self.bar.show()
        self.said.emit(_("Checking {pack}: every file against its SHA-256…").format(
            pack=pack.name))
        self.task = run_task(self, work, on_success=self._done, on_failure=self._failed,
                             on_progress=self._progress, name="lesson-pack")
        return self.task

    def _progress(self, progress: PackProgress) -> None:
        if self.task is None or self.task.cancelled.is_set():
            return
        fraction = progress.fraction
        self.bar.setValue(int(1000 * fraction) if fraction is not None else 0)
        self.said.emit(progress.describe())

    def _finish(self) -> None:
        self.task = None
        self.button.setText(_(OPEN_TEXT))
        self.button.setAccessibleDescription(_(OPEN_TIP))
        self.bar.hide()

    def _done(self, result: Installed) -> None:
        self._finish()
        self.last = result
        self.said.emit(result.describe())
        self.installed.emit(result)

    def _failed(self, exc: BaseException) -> None:
        self._finish()
        if isinstance(exc, DownloadCancelled):
            self.said.emit(_("Cancelled: nothing from the pack was installed."))
        elif isinstance(exc, DownloadError):  # PackError, a full disk: one sentence
            self.failed.emit(str(exc))
        else:  # a worker must never take the app down
            self.failed.emit(f"{type(exc).__name__}: {exc}")

    def stop(self) -> Task | None:
        """Cancel a running unpack (it rolls back) and report nothing more; the task, for
        the caller to wait on."""
        task, self.task = self.task, None
        if task is not None:
            task.cancel()
            task.detach()
        return task
