"""The main window's exports (File → Export as Markdown / HTML): the comparison as data,
written to a file the user picks; a failure is one sentence in the status bar. And the
memory-fit check's background work, which the window shows as a banner.

A mixin of :class:`desktop_app.ui.main_window.MainWindow` (its panes, status bar and
status-bar offer), kept apart so the window's module stays about the window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QFileDialog, QStatusBar, QWidget

from desktop_app.text.i18n import _
from desktop_app.ui import export
from desktop_app.ui.export_votes import rlhf_export


class WindowExport:
    """Export the window's panes (``self.panes``) as Markdown or a self-contained HTML
    handout."""

    panes: list[Any]  # the window's panes (ui.pane.Pane)

    if TYPE_CHECKING:  # the window's own (Qt's statusBar; MainWindow.offer)
        def statusBar(self) -> QStatusBar: ...
        def offer(self, message: str, label: str, action: Any) -> None: ...

    def export_data(self) -> list[dict[str, Any]]:
        return [pane.export_data() for pane in self.panes]

    def export_markdown(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(export.to_markdown(self.export_data(), rlhf=rlhf_export(self)), encoding="utf-8")
        return path

    def export_html(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(export.to_html(self.export_data(), rlhf=rlhf_export(self)), encoding="utf-8")
        return path

    def export_markdown_dialog(self) -> None:
        self._export_dialog(_("Export as Markdown"), "comparison.md",
                            _("Markdown (*.md)"), self.export_markdown)

    def export_html_dialog(self) -> None:
        self._export_dialog(_("Export as HTML"), "comparison.html", _("HTML (*.html)"),
                            self.export_html)

    def _export_dialog(self, title: str, name: str, kinds: str, write: Any) -> None:
        parent = self if isinstance(self, QWidget) else None
        path, _kind = QFileDialog.getSaveFileName(parent, title, name, kinds)
        if path:
            self._export_to(path, write)

    def _export_to(self, path: str, write: Any) -> bool:
        """Write an export; a failure (read-only folder, full disk) is said in the status
        bar, never raised into Qt."""
        try:
            write(path)
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            self.statusBar().showMessage(
                _("Could not save {path}: {reason}").format(path=path, reason=reason), 10000)
            return False
        folder = Path(path).resolve().parent
        self.offer(_("Saved {path}").format(path=path), _("Open folder"),
                   lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))))
        return True


def fit_warning_work(entries: list[Any], catalog: Any) -> Callable[[Any], str]:
    """The memory-fit warning for the panes' ready models (desktop_app.models.fit), as
    work for a background task: it probes GPUs and reads GGUF headers, so never on the GUI
    thread. "" when all fit, or when the warning can't be computed."""
    from desktop_app.engine.llama import devices
    from desktop_app.models.fit import fit_check
    from desktop_app.models.sources import RemoteSource

    pairs = [(entry, None) for entry in entries]

    def work(_task: Any) -> str:
        local = any(not isinstance(entry.source, RemoteSource) for entry in entries)
        try:
            gpus = devices.probe().gpus if local else ()
            return fit_check(pairs, catalog=catalog, devices=gpus).warning or ""
        except Exception:  # noqa: BLE001 - a warning that can't be computed is none
            return ""

    return work
