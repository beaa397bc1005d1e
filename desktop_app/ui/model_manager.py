"""The model manager window: what is here, download (queued), cancel, verify, remove, add,
whether each model fits this machine and which three to get (:mod:`desktop_app.ui.fit_badges`),
and installing a lesson pack (:mod:`desktop_app.ui.lesson_pack`).

Every slow step (download, hashing, listing a Hub repo, probing the network, measuring the
machine, unpacking) runs as a
background task (:func:`desktop_app.ui.tasks.run_task`) that calls the core functions of
:mod:`desktop_app.models.download`; results come back on the GUI thread, which never blocks. One
download or verification runs at a time; the others wait as ``queued``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QFileDialog,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.models import catalog as cat
from desktop_app.models import download as dl
from desktop_app.models import hub, user_catalog
from desktop_app.models.catalog import Catalog, ModelEntry
from desktop_app.models.gguf import has_magic
from desktop_app.models.sources import FileSource, HubSource, PackageSource, RemoteSource
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.text.units import format_bytes
from desktop_app.ui import a11y, theme
from desktop_app.ui.add_server import AddServerDialog, HubFilePicker, ServerWatch
from desktop_app.ui.fit_badges import (
    Measured,
    RecommendBar,
    fit_item,
    fit_words,
    measure,
    progress_words,
    role_model,
    role_word,
    state_word,
)
from desktop_app.ui.lesson_pack import LessonPackOpener
from desktop_app.ui.screen_fit import fit_dialog
from desktop_app.ui.stage_trios import StageTrioBar
from desktop_app.ui.tasks import Task, run_task
from desktop_app.ui.widgets import ButtonRows

CLOSE_WAIT_MS = 300  # closing the window waits this long for cancelled work, then lets go
# The headers (English, as tests and code name them; shown through _()).
COLUMNS = (N_("Name"), N_("Role"), N_("Family"), N_("Size"), N_("Quantization"), N_("Licence"),
           N_("Fits?"), N_("State"))
STATE_COLUMN = COLUMNS.index("State")
FIT_COLUMN = COLUMNS.index("Fits?")
CAPPED_COLUMNS = (COLUMNS.index("Family"), COLUMNS.index("Licence"))
CAPPED_CHARS = 12  # their widest, in average characters (the whole text is the tooltip)


class ModelManagerDialog(QDialog):
    """Lists the catalog's models and gets their files.

    ``modelsChanged`` is emitted whenever a model becomes ready, is removed, or is added
    to the catalog; the main window reloads its model choices then. ``panes``: the models
    of the window's panes, which the "Fits?" column judges each model beside (default: the
    window's default panes). ``trioChosen`` carries the recommended trio's ids when the
    user takes it; the window puts them in its panes. ``point_size``: the window's text
    size (zoom, presentation mode), which the dialog takes, fitted to the screen.
    """

    modelsChanged = Signal()
    trioChosen = Signal(list)
    stagesChosen = Signal(list)  # [(model id, thinking), ...]: a stage trio, pane by pane
    SIZE = (1060, 600)

    def __init__(self, catalog: Catalog | None = None, parent: QWidget | None = None, *,
                 guidance: str = "", panes: Sequence[str] | None = None,
                 point_size: float | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Models"))
        self.catalog = catalog if catalog is not None else cat.load_catalog()
        self.last_error: str | None = None
        self.imported: ModelEntry | None = None  # the last file imported
        self.offline = hub.is_offline()
        self.hub_picker: HubFilePicker | None = None
        self._queue: list[tuple[str, str]] = []  # (kind, model id), kind "pull" | "verify"
        self._current: tuple[str, str, Task] | None = None
        self._live: dict[str, str] = {}  # model id -> state text while queued / running
        self._tasks: set[Task] = set()
        self.panes = list(panes) if panes is not None else cat.default_pane_ids(self.catalog)
        self.measured: Measured | None = None
        self._fit_asked = 0

        layout = QVBoxLayout(self)
        self.banner = QLabel()
        self.banner.setWordWrap(True)
        theme.style(self.banner, lambda: f"QLabel {{ {theme.notice_style()} }}")
        self.banner.hide()
        layout.addWidget(self.banner)
        self.guidance = QLabel(guidance)  # why it opened by itself (first run), if it did
        self.guidance.setWordWrap(True)
        self.guidance.setTextFormat(Qt.TextFormat.PlainText)
        self.guidance.setVisible(bool(guidance))
        layout.addWidget(self.guidance)

        self.table = a11y.describe(
            QTableWidget(0, len(COLUMNS)), _("Models"),
            _("Arrow keys pick a model; Enter downloads it (or goes to its buttons), "
              "Delete removes it, Tab reaches the buttons, Escape closes"))
        self.table.setHorizontalHeaderLabels([_(column) for column in COLUMNS])
        self.table.setTabKeyNavigation(False)  # Tab leaves the table for the buttons
        self.table.installEventFilter(self)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(False)  # a long family is elided, not a row twice as tall
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for column in CAPPED_COLUMNS:  # long words ("Gemma Terms of Use") elided, not the name
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(STATE_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        layout.addWidget(self.table)
        self.stage_trios = StageTrioBar(self.catalog)  # one model's stages: offered first
        self.stage_trios.chosen.connect(self.take_stages)
        layout.addWidget(self.stage_trios)
        self.recommend = RecommendBar()
        self.recommend.chosen.connect(self.take_recommendation)
        layout.addWidget(self.recommend)

        self.progress = a11y.describe(QProgressBar(), _("Progress"),
                                      _("How far the current download or check has got"))
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                            | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        a11y.describe(self.status, _("Status"))
        a11y.describe(self.banner, _("Hub access"))
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.download_button = QPushButton(_("&Download"))
        self.cancel_button = QPushButton(_("&Cancel"))
        self.remove_button = QPushButton(_("&Remove"))
        self.verify_button = QPushButton(_("&Verify"))
        self.add_hub_button = QPushButton(_("Add from &Hub…"))
        self.add_server_button = QPushButton(_("Add &server…"))
        self.import_button = QPushButton(_("&Import file…"))
        self.pack_button = QPushButton()
        self.close_button = QPushButton(_("C&lose"))
        for button, tip in (
                (self.download_button, _("Download the selected model (queued behind others)")),
                (self.cancel_button, _("Stop the selected model's download; what came is kept")),
                (self.remove_button, _("Delete the selected model's file, or take it off "
                                       "your list")),
                (self.verify_button, _("Check the selected model's file against its checksum")),
                (self.add_hub_button, _("Add a model file from a Hugging Face Hub repository")),
                (self.add_server_button, _("Add the models of a server, such as the "
                                           "teacher's room")),
                (self.import_button, _("Add a GGUF file from this computer"))):
            button.setToolTip(tip)
            button.setAccessibleDescription(tip)
        self.buttons = ButtonRows(
            (self.download_button, self.cancel_button, self.remove_button, self.verify_button),
            (self.add_hub_button, self.add_server_button, self.import_button, self.pack_button,
             self.close_button))
        layout.addWidget(self.buttons)
        self.download_button.clicked.connect(lambda: self._on_selected(self.download))
        self.cancel_button.clicked.connect(lambda: self._on_selected(self.cancel))
        self.remove_button.clicked.connect(lambda: self._on_selected(self._confirm_remove))
        self.verify_button.clicked.connect(lambda: self._on_selected(self.verify))
        self.add_hub_button.clicked.connect(self._ask_hub_repo)
        self.add_server_button.clicked.connect(self.ask_server)
        self.server_dialog: AddServerDialog | None = None
        self.server_watch = ServerWatch(self)  # a server's answer refreshes its models' state
        self.server_watch.answered.connect(lambda _endpoint: self.refresh())
        self.import_button.clicked.connect(self._ask_import)
        self.lesson_pack = LessonPackOpener(self, self.pack_button, self.progress)
        self.lesson_pack.said.connect(self.status.setText)
        self.lesson_pack.failed.connect(self._error)
        self.lesson_pack.installed.connect(self._pack_installed)
        self.close_button.clicked.connect(self.close)

        if self.offline:
            self._show_offline(_(
                "Offline: Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set). "
                "Models that are ready can be used; downloads are off."))
        else:
            self._start(lambda task: hub.hub_reachable(), self._probed)
        if point_size:
            theme.apply_point_size(self, point_size)
        fit_dialog(self, self.SIZE)
        self.refresh()
        self.measure_fit()

    # ------------------------------------------------------------------ table

    def refresh(self) -> None:
        """Rebuild the rows (cheap: no hashing, no network)."""
        selected = self.selected_id()
        self.table.setRowCount(0)
        for entry in self.catalog:
            row = self.table.rowCount()
            self.table.insertRow(row)
            size = entry.size or cat.read_states().get(entry.id, {}).get("size")
            values = (entry.name, role_word(entry.role), entry.family,
                      format_bytes(size) if size else "—", entry.quantization or "—",
                      entry.license, "", self.state_text(entry.id))
            for column, value in enumerate(values):
                item = (fit_item(self.measured, entry.id) if column == FIT_COLUMN
                        else QTableWidgetItem(str(value)))
                item.setData(Qt.ItemDataRole.UserRole, entry.id)
                if column in CAPPED_COLUMNS:
                    item.setToolTip(str(value))
                elif column != FIT_COLUMN:
                    item.setToolTip(entry.description or entry.source.describe())
                self.table.setItem(row, column, item)
            self._describe_row(row)
        self._fit_columns()
        if selected:
            self.select_model(selected)
        self._update_buttons()

    def row_summary(self, model_id: str) -> str:
        """One row in words, for a screen reader: name, role, size, state, fit."""
        entry = self.catalog.entries.get(model_id)
        if entry is None:
            return ""
        size = entry.size or cat.read_states().get(entry.id, {}).get("size")
        return _("{name}, {role}, {size}, {state}, {fit}").format(
            name=entry.name, role=role_model(entry.role),
            size=format_bytes(size) if size else _("size unknown"),
            state=self.state_text(model_id), fit=fit_words(self.measured, model_id))

    def _describe_row(self, row: int) -> None:
        """Every cell of ``row`` describes the whole row (whichever cell has focus)."""
        first = self.table.item(row, 0)
        if first is None:
            return
        summary = self.row_summary(first.data(Qt.ItemDataRole.UserRole))
        for column in range(self.table.columnCount()):
            item = self.table.item(row, column)
            if item is not None:
                item.setData(Qt.ItemDataRole.AccessibleDescriptionRole, summary)

    def eventFilter(self, watched: Any, event: Any) -> bool:  # Qt's name
        """The table by keyboard: Enter downloads the selected model (or, when it is here,
        goes to its first button that can act), Delete removes it."""
        if watched is self.table and event.type() == QEvent.Type.KeyPress:
            key = event.key()
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
                self.activate_selected()
                return True
            if key == Qt.Key.Key_Delete and self.remove_button.isEnabled():
                self.remove_button.click()
                return True
        return super().eventFilter(watched, event)

    def activate_selected(self) -> None:
        """Enter on a row: Download if it can, else focus Cancel, Verify or Remove."""
        if self.download_button.isEnabled():
            self.download_button.click()
            return
        for button in (self.cancel_button, self.verify_button, self.remove_button):
            if button.isEnabled():
                button.setFocus(Qt.FocusReason.TabFocusReason)
                return

    def _fit_columns(self) -> None:
        """Family and Licence as wide as their text, up to an eighth of the table each (a
        projector's width goes to the names and states)."""
        cap = max(CAPPED_CHARS * self.table.fontMetrics().averageCharWidth(),
                  self.table.viewport().width() // 8)
        for column in CAPPED_COLUMNS:
            self.table.resizeColumnToContents(column)
            self.table.setColumnWidth(column, min(self.table.columnWidth(column), cap))

    def resizeEvent(self, event: Any) -> None:  # Qt's name
        super().resizeEvent(event)
        self._fit_columns()

    def measure_fit(self) -> Task:
        """Work out, off the GUI thread, whether each model fits this machine beside the
        panes, and the recommended trio; the column and the bar show it when done."""
        self._fit_asked += 1
        asked = self._fit_asked
        return self._start(measure(self.catalog, self.panes),
                           lambda measured: self._fit_measured(measured, asked))

    def _fit_measured(self, measured: Measured, asked: int) -> None:
        if asked != self._fit_asked:
            return  # a later measurement (after a download, a new model) is on its way
        self.measured = measured
        self.recommend.show_measured(measured)
        self.refresh()

    def _download_missing(self, ids: list[str]) -> list[str] | None:
        """Start downloading those of ``ids`` the Hub has and this laptop lacks; returns
        them, or None (said in the dialog) when downloads are switched off."""
        fetch = [i for i in ids if i in self.catalog.entries
                 and isinstance(self.catalog.entries[i].source, HubSource)
                 and cat.state_of(self.catalog.entries[i]) != cat.Availability.READY]
        if fetch and self.offline:
            self._error(_("Downloads are off: Hugging Face Hub access is switched off "
                          "(HF_HUB_OFFLINE is set)."))
            return None
        for model_id in fetch:
            self.download(model_id)
        return fetch

    def take_recommendation(self, ids: list[str]) -> None:
        """The recommended trio: queue downloads of what is not here, select the first, and
        hand the ids to the window (``trioChosen``) for its panes."""
        fetch = self._download_missing(ids)
        if fetch is None:
            return
        if ids:
            self.select_model(fetch[0] if fetch else ids[0])
        names = ", ".join(self.catalog.entries[i].name for i in ids if i in self.catalog.entries)
        self.status.setText(ngettext(
            "Downloading {n} of the recommended models; the panes now use {names}.",
            "Downloading {n} of the recommended models; the panes now use {names}.",
            len(fetch)).format(n=len(fetch), names=names) if fetch
            else _("The panes now use {names}.").format(names=names))
        chosen = self.recommend.recommendation
        if chosen is not None and chosen.trio is not None and chosen.ids == list(ids):
            self.stagesChosen.emit([list(pane) for pane in chosen.panes])
        else:
            self.trioChosen.emit(list(ids))

    def take_stages(self, panes: list[list[Any]]) -> None:
        """A stage trio: download what is not here, and hand the panes to the window."""
        ids = list(dict.fromkeys(str(model_id) for model_id, _thinking in panes))
        fetch = self._download_missing(ids)
        if fetch is None:
            return
        trio = self.stage_trios.trio
        name = trio.name if trio is not None else ", ".join(ids)
        self.status.setText(ngettext(
            "Downloading {n} model; the panes now show {name}.",
            "Downloading {n} models; the panes now show {name}.",
            len(fetch)).format(n=len(fetch), name=name) if fetch
            else _("The panes now show {name}.").format(name=name))
        self.stagesChosen.emit(panes)

    def _pack_installed(self, result: Any) -> None:
        self.reload_catalog()
        if result.models:
            self.select_model(result.models[0])
        self.status.setText(result.describe())
        self.modelsChanged.emit()

    def _row_of(self, model_id: str) -> int | None:
        for row in range(self.table.rowCount()):
            item = self.table.item(row, 0)
            if item is not None and item.data(Qt.ItemDataRole.UserRole) == model_id:
                return row
        return None

    def _set_state_cell(self, model_id: str) -> None:
        row = self._row_of(model_id)
        if row is not None:
            item = self.table.item(row, STATE_COLUMN)
            if item is not None:
                item.setText(self.state_text(model_id))
                self._describe_row(row)

    def state_text(self, model_id: str) -> str:
        """What the State column says for this model."""
        if model_id in self._live:
            return self._live[model_id]
        entry = self.catalog.entries.get(model_id)
        if entry is None:
            return ""
        state = cat.availability(entry)
        text = state_word(state)
        if state == "not-downloaded":
            kept = dl.partial_bytes(entry)
            if kept:
                text = _("{state} ({size} kept, will resume)").format(
                    state=text, size=format_bytes(kept))
        return text

    def select_model(self, model_id: str) -> None:
        row = self._row_of(model_id)
        if row is not None:
            self.table.selectRow(row)

    def selected_id(self) -> str | None:
        items = self.table.selectedItems()
        return items[0].data(Qt.ItemDataRole.UserRole) if items else None

    def _on_selected(self, action: Callable[[str], Any]) -> None:
        model_id = self.selected_id()
        if model_id:
            action(model_id)

    def _update_buttons(self) -> None:
        model_id = self.selected_id()
        entry = self.catalog.entries.get(model_id) if model_id else None
        busy = model_id is not None and (model_id in self._live)
        state = cat.availability(entry) if entry else ""
        is_hub = entry is not None and isinstance(entry.source, HubSource)
        self.download_button.setEnabled(
            bool(entry) and is_hub and not busy and not self.offline and state != "ready"
        )
        self.cancel_button.setEnabled(busy)
        self.remove_button.setEnabled(bool(entry) and not busy and (
            (is_hub and (state == "ready" or dl.partial_bytes(entry) > 0))  # type: ignore[arg-type]
            or isinstance(entry.source, FileSource | RemoteSource)  # type: ignore[union-attr]
            or (isinstance(entry.source, PackageSource) and entry.source.assemble  # type: ignore[union-attr]
                and cat.assembled_path(entry).exists())  # type: ignore[arg-type]
        ))
        self.verify_button.setEnabled(bool(entry) and not busy and state in ("ready", "damaged")
                                      and not isinstance(entry.source, RemoteSource))  # type: ignore[union-attr]
        self.add_hub_button.setEnabled(not self.offline)

    # ------------------------------------------------------------------ queue

    def download(self, model_id: str) -> None:
        """Queue a download (it starts at once if nothing else is running)."""
        self._enqueue("pull", model_id)

    def verify(self, model_id: str) -> None:
        """Queue a checksum verification."""
        self._enqueue("verify", model_id)

    def _enqueue(self, kind: str, model_id: str) -> None:
        if model_id not in self.catalog.entries or model_id in self._live:
            return
        if kind == "pull" and self.offline:
            self._error(_("Downloads are off: Hugging Face Hub access is switched off "
                          "(HF_HUB_OFFLINE is set)."))
            return
        self._queue.append((kind, model_id))
        self._live[model_id] = _("queued")
        self._set_state_cell(model_id)
        self._update_buttons()
        self._next()

    def cancel(self, model_id: str | None = None) -> None:
        """Cancel a queued or running job (the running download keeps its partial file)."""
        if self._current is not None and model_id in (None, self._current[1]):
            self._current[2].cancel()
            self._live[self._current[1]] = _("cancelling…")
            self._set_state_cell(self._current[1])
            return
        for job in list(self._queue):
            if job[1] == model_id:
                self._queue.remove(job)
                self._live.pop(model_id, None)
                self._set_state_cell(model_id)
        self._update_buttons()

    def is_busy(self) -> bool:
        return self._current is not None or bool(self._queue)

    def queued_ids(self) -> list[str]:
        return [model_id for _kind, model_id in self._queue]

    def _next(self) -> None:
        if self._current is not None or not self._queue:
            return
        kind, model_id = self._queue.pop(0)
        entry = self.catalog.get(model_id)

        def work(task: Task) -> Any:
            if kind == "pull":
                return dl.pull(entry, progress=task.report, cancel=task.cancelled)
            return dl.verify(entry, progress=task.report, cancel=task.cancelled)

        task = self._start(work, lambda result: self._job_done(kind, model_id, result),
                           lambda message, cancelled: self._job_failed(kind, model_id, message, cancelled),
                           self._job_progress)
        self._current = (kind, model_id, task)
        self._live[model_id] = _("connecting…") if kind == "pull" else _("verifying…")
        self._set_state_cell(model_id)
        self.progress.setValue(0)
        self.progress.setAccessibleName(
            (_("Download of {name}") if kind == "pull" else _("Check of {name}")).format(
                name=entry.name))
        self.progress.show()
        self.status.setText((_("Downloading {name}…") if kind == "pull"
                             else _("Verifying {name}…")).format(name=entry.name))

    def _job_progress(self, progress: dl.DownloadProgress) -> None:
        if self._current is None or self._current[2].cancelled.is_set():
            return
        text = progress_words(progress)
        self._live[progress.model_id] = text
        self._set_state_cell(progress.model_id)
        fraction = progress.fraction
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * fraction))
        self.status.setText(_("{model}: {progress}").format(model=progress.model_id,
                                                             progress=text))

    def _finish_job(self, model_id: str) -> None:
        self._current = None
        self._live.pop(model_id, None)
        self.progress.hide()
        self.progress.setRange(0, 1000)
        self._set_state_cell(model_id)
        self._update_buttons()

    def _job_done(self, kind: str, model_id: str, result: object) -> None:
        self._finish_job(model_id)
        state = self.state_text(model_id)
        if kind == "verify" and result is False:
            self._error(cat.missing_message(self.catalog.get(model_id), "damaged"))
            a11y.announce(self.table, _("Check of {model} failed: {reason}").format(
                model=model_id, reason=self.last_error))
        else:
            self.last_error = None
            self.status.setText(_("{model} is {state}.").format(model=model_id, state=state))
            a11y.announce(self.table, (_("Download finished: {model} is {state}.")
                                       if kind == "pull" else
                                       _("Check finished: {model} is {state}.")).format(
                model=model_id, state=state))
        self.modelsChanged.emit()
        self.measure_fit()  # a downloaded model's header gives exact figures
        self._next()

    def _job_failed(self, kind: str, model_id: str, message: str, cancelled: bool) -> None:
        self._finish_job(model_id)
        if cancelled:
            kept = dl.partial_bytes(self.catalog.get(model_id))
            self.status.setText(
                _("Cancelled {model}; {size} kept, Download resumes it.").format(
                    model=model_id, size=format_bytes(kept))
                if kept else _("Cancelled {model}.").format(model=model_id))
            a11y.announce(self.table, self.status.text())
        else:
            self._error(message)
            a11y.announce(self.table, (_("Download of {model} failed: {reason}")
                                       if kind == "pull" else
                                       _("Check of {model} failed: {reason}")).format(
                model=model_id, reason=message))
            if "damaged" in message:
                self.modelsChanged.emit()
        self._next()

    # -------------------------------------------------------------- remove etc.

    def _confirm_remove(self, model_id: str) -> None:
        entry = self.catalog.get(model_id)
        question = (_("Remove {name}? This will remove it from your catalog (the file stays "
                      "where it is).") if isinstance(entry.source, FileSource) else
                    _("Remove {name}? This will remove it from your catalog (the server is "
                      "untouched).") if isinstance(entry.source, RemoteSource) else
                    _("Remove {name}? This will delete its downloaded file."))
        answer = QMessageBox.question(self, _("Remove model"), question.format(name=entry.name))
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_model(model_id)

    def remove_model(self, model_id: str) -> bool:
        """Delete the model's file (or its catalog entry for an imported file). Quick: GUI thread."""
        if model_id in self._live:
            self._error(_("Cancel the download of {model} before removing it.").format(
                model=model_id))
            return False
        entry = self.catalog.get(model_id)
        try:
            if isinstance(entry.source, RemoteSource):
                if not user_catalog.remove_model(entry.id):
                    raise hub.DownloadError(_("'{model}' is listed in {catalog}; edit that "
                                              "catalog to remove it.").format(
                        model=entry.id, catalog=entry.origin))
            else:
                dl.remove(entry)
        except (hub.DownloadError, OSError) as exc:
            self._error(str(exc))
            return False
        if isinstance(entry.source, FileSource | RemoteSource):
            self.reload_catalog()
        else:
            self.refresh()
        self.status.setText(_("Removed {name}.").format(name=entry.name))
        a11y.announce(self.table, self.status.text())
        self.modelsChanged.emit()
        return True

    def reload_catalog(self) -> None:
        self.catalog = cat.load_catalog()
        self.stage_trios.set_catalog(self.catalog)  # what each trio has to download
        self.refresh()
        self.measure_fit()  # new models to judge; the probe's answer is kept

    def _ask_import(self) -> None:
        path, _filter = QFileDialog.getOpenFileName(self, _("Import a GGUF model"), "",
                                                    _("GGUF models (*.gguf)"))
        if not path:
            return
        words = [role_word(role) for role in cat.ROLES]
        word, ok = QInputDialog.getItem(self, _("Import model"), _("Role of this model:"),
                                        words, 1, False)
        if ok and word in words:
            self.import_file(path, cat.ROLES[words.index(word)])

    def import_file(self, path: str, role: str, name: str | None = None) -> Task:
        """Import a GGUF file in the background: it is hashed (seconds for a big file),
        then its header is read and its size and hash recorded, so a file damaged later is
        not shown as ready (size, checked on every look) and fails Verify (hash)."""
        file = Path(path).expanduser()

        def work(task: Task) -> ModelEntry:
            if not file.is_file():
                raise hub.DownloadError(_("Cannot import {file}: there is no such file.")
                                        .format(file=file))
            if not has_magic(file):  # before hashing: a wrong file is said at once
                raise hub.DownloadError(_("Cannot import {file}: it is not a GGUF model file.")
                                        .format(file=file))
            digest = dl.sha256_file(file, cancel=task.cancelled)
            return user_catalog.import_model(file, role, name, sha256=digest)

        self.status.setText(_("Importing {file}: checking and hashing it…").format(file=file.name))
        return self._start(work, self._imported)

    def _imported(self, entry: ModelEntry) -> None:
        self.reload_catalog()
        self.select_model(entry.id)
        self.status.setText(_("Imported {name} as a {role}.").format(
            name=entry.name, role=role_model(entry.role)))
        self.imported = entry
        self.modelsChanged.emit()

    def _ask_hub_repo(self) -> None:
        repo_id, ok = QInputDialog.getText(self, _("Add from the Hugging Face Hub"),
                                           _("Repository id (owner/name):"))
        if ok and repo_id.strip():
            self.add_from_hub(repo_id.strip())

    def add_from_hub(self, repo_id: str) -> None:
        """List the repo's GGUF files in the background, then open :class:`HubFilePicker`."""
        self.status.setText(_("Listing the GGUF files of {repo}…").format(repo=repo_id))
        self.add_hub_button.setEnabled(False)
        self._start(lambda task: hub.list_repo_ggufs(repo_id),
                    lambda files: self._show_hub_files(repo_id, files),
                    self._listing_failed)

    def _listing_failed(self, message: str, _cancelled: bool) -> None:
        self._error(message)
        self._update_buttons()

    def _show_hub_files(self, repo_id: str, files: list[hub.HubFile]) -> None:
        self._update_buttons()
        if not files:
            self._error(_("{repo} has no GGUF files.").format(repo=repo_id))
            return
        self.status.setText(ngettext("{n} GGUF file in {repo}.", "{n} GGUF files in {repo}.",
                                     len(files)).format(n=len(files), repo=repo_id))
        self.hub_picker = HubFilePicker(repo_id, files, self)
        self.hub_picker.accepted.connect(self._add_hub_choice)
        self.hub_picker.open()

    def _add_hub_choice(self) -> None:
        picker = self.hub_picker
        choice = picker.choice() if picker else None
        if picker is None or choice is None:
            return
        try:
            entry = user_catalog.add_hub_model(
                picker.repo_id, choice.filename, picker.role(),
                name=picker.name_edit.text().strip() or None, size=choice.size, sha256=choice.sha256,
            )
        except (hub.DownloadError, OSError) as exc:
            self._error(str(exc))
            return
        self.reload_catalog()
        self.select_model(entry.id)
        self.status.setText(_("Added {name}; press Download to get it.").format(name=entry.name))
        self.modelsChanged.emit()

    def ask_server(self) -> AddServerDialog:
        """Open :class:`AddServerDialog`; what it adds lands in the table."""
        self.server_dialog = AddServerDialog(self)
        self.server_dialog.accepted.connect(self._server_models_added)
        self.server_dialog.open()
        return self.server_dialog

    def _server_models_added(self) -> None:
        added = self.server_dialog.added if self.server_dialog else []
        if not added:
            return
        self.reload_catalog()
        self.select_model(added[0].id)
        self.status.setText(_("Added {names}.").format(
            names=", ".join(entry.name for entry in added)))
        self.modelsChanged.emit()

    # ------------------------------------------------------------------ plumbing

    def _start(self, fn: Callable[[Task], Any], on_success: Callable[[Any], Any],
               on_failure: Callable[[str, bool], Any] | None = None,
               on_progress: Callable[[Any], Any] | None = None) -> Task:
        """Run ``fn`` in the background; ``on_failure(message, cancelled)``. A failure in
        handling an outcome is shown in the status line, never raised into Qt."""
        failed = on_failure or (lambda message, _cancelled: self._error(message))

        def guarded(callback: Callable[..., Any]) -> Callable[..., None]:
            def call(*args: Any) -> None:
                try:
                    callback(*args)
                except Exception as exc:  # noqa: BLE001
                    self._error(_("Internal error: {error}").format(
                        error=f"{type(exc).__name__}: {exc}"))
            return call

        def failure(exc: BaseException) -> None:
            if isinstance(exc, hub.DownloadCancelled):
                failed(str(exc), True)
            elif isinstance(exc, hub.DownloadError):
                failed(str(exc), False)
            else:  # a worker must never take the app down
                failed(f"{type(exc).__name__}: {exc}", False)

        self._tasks = {t for t in self._tasks if t.running}
        task = run_task(self, fn, on_success=guarded(on_success), on_failure=guarded(failure),
                        on_progress=guarded(on_progress) if on_progress else None,
                        name="models")
        self._tasks.add(task)
        return task

    def _probed(self, reachable: object) -> None:
        if not reachable and not self.offline:
            self._show_offline(_(
                "The Hugging Face Hub ({address}) cannot be reached, so downloads will fail; "
                "models that are ready can still be used.").format(address=hub.hub_endpoint()))

    def _show_offline(self, text: str) -> None:
        self.banner.setText(text)
        self.banner.show()

    def _error(self, message: str) -> None:
        self.last_error = message
        theme.rich_text(self.status, lambda: (
            f"<span style='color:{theme.fail_color()}'>{escape.html(message)}</span>"))

    def shutdown(self, timeout_ms: int = 5000) -> bool:
        """Cancel everything and wait, ``timeout_ms`` at most in all, for the worker
        threads to end; True if they all did. A thread that outlives this (a download
        stuck on a dead connection ends at its read timeout) finds nobody to report to."""
        self._queue.clear()
        self.server_watch.close()
        unpacking = self.lesson_pack.stop()
        if unpacking is not None:
            self._tasks.add(unpacking)
        for task in self._tasks:
            task.cancel()
            task.detach()
        deadline = time.monotonic() + timeout_ms / 1000
        for task in list(self._tasks):
            task.wait(max(0.0, deadline - time.monotonic()))
        self._tasks = {t for t in self._tasks if t.running}
        self._current = None
        self._live.clear()
        return not self._tasks

    def closeEvent(self, event: Any) -> None:  # Qt name
        self.shutdown(CLOSE_WAIT_MS)
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self.shutdown(CLOSE_WAIT_MS)  # the GUI thread: wait briefly, never for a download
        super().done(result)
