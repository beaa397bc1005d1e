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

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
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
from desktop_app.text.units import format_bytes
from desktop_app.ui import theme
from desktop_app.ui.add_server import AddServerDialog, ServerWatch
from desktop_app.ui.fit_badges import Measured, RecommendBar, fit_item, measure
from desktop_app.ui.lesson_pack import LessonPackOpener
from desktop_app.ui.screen_fit import fit_dialog
from desktop_app.ui.stage_trios import StageTrioBar
from desktop_app.ui.tasks import Task, run_task
from desktop_app.ui.widgets import ButtonRows

CLOSE_WAIT_MS = 300  # closing the window waits this long for cancelled work, then lets go
COLUMNS = ("Name", "Role", "Family", "Size", "Quantization", "Licence", "Fits?", "State")
STATE_COLUMN = COLUMNS.index("State")
FIT_COLUMN = COLUMNS.index("Fits?")
CAPPED_COLUMNS = (COLUMNS.index("Family"), COLUMNS.index("Licence"))
CAPPED_CHARS = 12  # their widest, in average characters (the whole text is the tooltip)


class HubFilePicker(QDialog):
    """Pick one GGUF file of a Hub repo, its role and a display name."""

    def __init__(self, repo_id: str, files: list[hub.HubFile], parent: QWidget | None = None):
        super().__init__(parent)
        self.repo_id = repo_id
        self.files = files
        self.setWindowTitle(f"Add from {repo_id}")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"GGUF files in <b>{repo_id}</b>:"))
        self.file_list = QListWidget()
        for file in files:
            size = format_bytes(file.size) if file.size is not None else "unknown size"
            item = QListWidgetItem(f"{file.filename}    {size}")
            item.setData(Qt.ItemDataRole.UserRole, file)
            self.file_list.addItem(item)
        if files:
            self.file_list.setCurrentRow(0)
        layout.addWidget(self.file_list)
        form = QFormLayout()
        self.role_box = QComboBox()
        self.role_box.addItems(list(cat.ROLES))
        self.role_box.setCurrentText("instruct")
        self.name_edit = QLineEdit()
        self.name_edit.setPlaceholderText("(from the file name)")
        form.addRow("Role:", self.role_box)
        form.addRow("Name:", self.name_edit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add to my models")
        self.ok_button.setEnabled(bool(files))
        layout.addWidget(buttons)

    def choice(self) -> hub.HubFile | None:
        item = self.file_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None


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
        self.setWindowTitle("Models")
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

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
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

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.hide()
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)

        self.download_button = QPushButton("Download")
        self.cancel_button = QPushButton("Cancel")
        self.remove_button = QPushButton("Remove")
        self.verify_button = QPushButton("Verify")
        self.add_hub_button = QPushButton("Add from Hub…")
        self.add_server_button = QPushButton("Add server…")
        self.import_button = QPushButton("Import file…")
        self.pack_button = QPushButton()
        self.close_button = QPushButton("Close")
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
            self._show_offline(
                "Offline: Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set). "
                "Models that are ready can be used; downloads are off."
            )
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
            values = (entry.name, entry.role, entry.family, format_bytes(size) if size else "—",
                      entry.quantization or "—", entry.license, "", self.state_text(entry.id))
            for column, value in enumerate(values):
                item = (fit_item(self.measured, entry.id) if column == FIT_COLUMN
                        else QTableWidgetItem(str(value)))
                item.setData(Qt.ItemDataRole.UserRole, entry.id)
                if column in CAPPED_COLUMNS:
                    item.setToolTip(str(value))
                elif column != FIT_COLUMN:
                    item.setToolTip(entry.description or entry.source.describe())
                self.table.setItem(row, column, item)
        self._fit_columns()
        if selected:
            self.select_model(selected)
        self._update_buttons()

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

    def take_recommendation(self, ids: list[str]) -> None:
        """The recommended trio: queue downloads of what is not here, select the first, and
        hand the ids to the window (``trioChosen``) for its panes."""
        fetch = [i for i in ids if i in self.catalog.entries
                 and isinstance(self.catalog.entries[i].source, HubSource)
                 and cat.state_of(self.catalog.entries[i]) != cat.Availability.READY]
        if fetch and self.offline:
            self._error("Downloads are off: Hugging Face Hub access is switched off "
                        "(HF_HUB_OFFLINE is set).")
            return
        for model_id in fetch:
            self.download(model_id)
        if ids:
            self.select_model(fetch[0] if fetch else ids[0])
        names = ", ".join(self.catalog.entries[i].name for i in ids if i in self.catalog.entries)
        self.status.setText(f"Downloading {len(fetch)} of the recommended models; the panes "
                            f"now use {names}." if fetch else f"The panes now use {names}.")
        chosen = self.recommend.recommendation
        if chosen is not None and chosen.trio is not None and chosen.ids == list(ids):
            self.stagesChosen.emit([list(pane) for pane in chosen.panes])
        else:
            self.trioChosen.emit(list(ids))

    def take_stages(self, panes: list[list[Any]]) -> None:
        """A stage trio: download what is not here, and hand the panes to the window."""
        ids = list(dict.fromkeys(str(model_id) for model_id, _ in panes))
        fetch = [i for i in ids if isinstance(self.catalog.entries[i].source, HubSource)
                 and cat.state_of(self.catalog.entries[i]) != cat.Availability.READY]
        if fetch and self.offline:
            self._error("Downloads are off: Hugging Face Hub access is switched off "
                        "(HF_HUB_OFFLINE is set).")
            return
        for model_id in fetch:
            self.download(model_id)
        trio = self.stage_trios.trio
        name = trio.name if trio is not None else ", ".join(ids)
        self.status.setText(f"Downloading {len(fetch)} model(s); the panes now show {name}."
                            if fetch else f"The panes now show {name}.")
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

    def state_text(self, model_id: str) -> str:
        """What the State column says for this model."""
        if model_id in self._live:
            return self._live[model_id]
        entry = self.catalog.entries.get(model_id)
        if entry is None:
            return ""
        state = cat.availability(entry)
        text = state.label
        if state == "not-downloaded":
            kept = dl.partial_bytes(entry)
            if kept:
                text += f" ({format_bytes(kept)} kept, will resume)"
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
            self._error("Downloads are off: Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set).")
            return
        self._queue.append((kind, model_id))
        self._live[model_id] = "queued"
        self._set_state_cell(model_id)
        self._update_buttons()
        self._next()

    def cancel(self, model_id: str | None = None) -> None:
        """Cancel a queued or running job (the running download keeps its partial file)."""
        if self._current is not None and model_id in (None, self._current[1]):
            self._current[2].cancel()
            self._live[self._current[1]] = "cancelling…"
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
        return [model_id for _, model_id in self._queue]

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
        self._live[model_id] = "connecting…" if kind == "pull" else "verifying…"
        self._set_state_cell(model_id)
        self.progress.setValue(0)
        self.progress.show()
        self.status.setText(f"{'Downloading' if kind == 'pull' else 'Verifying'} {entry.name}…")

    def _job_progress(self, progress: dl.DownloadProgress) -> None:
        if self._current is None or self._current[2].cancelled.is_set():
            return
        text = progress.describe()
        self._live[progress.model_id] = text
        self._set_state_cell(progress.model_id)
        fraction = progress.fraction
        if fraction is None:
            self.progress.setRange(0, 0)
        else:
            self.progress.setRange(0, 1000)
            self.progress.setValue(int(1000 * fraction))
        self.status.setText(f"{progress.model_id}: {text}")

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
        else:
            self.last_error = None
            self.status.setText(f"{model_id} is {state}.")
        self.modelsChanged.emit()
        self.measure_fit()  # a downloaded model's header gives exact figures
        self._next()

    def _job_failed(self, kind: str, model_id: str, message: str, cancelled: bool) -> None:
        self._finish_job(model_id)
        if cancelled:
            kept = dl.partial_bytes(self.catalog.get(model_id))
            self.status.setText(
                f"Cancelled {model_id}; {format_bytes(kept)} kept, Download resumes it."
                if kept else f"Cancelled {model_id}."
            )
        else:
            self._error(message)
            if "damaged" in message:
                self.modelsChanged.emit()
        self._next()

    # -------------------------------------------------------------- remove etc.

    def _confirm_remove(self, model_id: str) -> None:
        entry = self.catalog.get(model_id)
        what = ("remove it from your catalog (the file stays where it is)"
                if isinstance(entry.source, FileSource) else
                "remove it from your catalog (the server is untouched)"
                if isinstance(entry.source, RemoteSource) else "delete its downloaded file")
        answer = QMessageBox.question(self, "Remove model", f"Remove {entry.name}? This will {what}.")
        if answer == QMessageBox.StandardButton.Yes:
            self.remove_model(model_id)

    def remove_model(self, model_id: str) -> bool:
        """Delete the model's file (or its catalog entry for an imported file). Quick: GUI thread."""
        if model_id in self._live:
            self._error(f"Cancel the download of {model_id} before removing it.")
            return False
        entry = self.catalog.get(model_id)
        try:
            if isinstance(entry.source, RemoteSource):
                if not user_catalog.remove_model(entry.id):
                    raise hub.DownloadError(f"'{entry.id}' is listed in {entry.origin}; edit "
                                           f"that catalog to remove it.")
            else:
                dl.remove(entry)
        except (hub.DownloadError, OSError) as exc:
            self._error(str(exc))
            return False
        if isinstance(entry.source, FileSource | RemoteSource):
            self.reload_catalog()
        else:
            self.refresh()
        self.status.setText(f"Removed {entry.name}.")
        self.modelsChanged.emit()
        return True

    def reload_catalog(self) -> None:
        self.catalog = cat.load_catalog()
        self.stage_trios.set_catalog(self.catalog)  # what each trio has to download
        self.refresh()
        self.measure_fit()  # new models to judge; the probe's answer is kept

    def _ask_import(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a GGUF model", "", "GGUF models (*.gguf)")
        if not path:
            return
        role, ok = QInputDialog.getItem(self, "Import model", "Role of this model:", list(cat.ROLES), 1, False)
        if ok:
            self.import_file(path, role)

    def import_file(self, path: str, role: str, name: str | None = None) -> Task:
        """Import a GGUF file in the background: it is hashed (seconds for a big file),
        then its header is read and its size and hash recorded, so a file damaged later is
        not shown as ready (size, checked on every look) and fails Verify (hash)."""
        file = Path(path).expanduser()

        def work(task: Task) -> ModelEntry:
            if not file.is_file():
                raise hub.DownloadError(f"Cannot import {file}: there is no such file.")
            if not has_magic(file):  # before hashing: a wrong file is said at once
                raise hub.DownloadError(f"Cannot import {file}: it is not a GGUF model file.")
            digest = dl.sha256_file(file, cancel=task.cancelled)
            return user_catalog.import_model(file, role, name, sha256=digest)

        self.status.setText(f"Importing {file.name}: checking and hashing it…")
        return self._start(work, self._imported)

    def _imported(self, entry: ModelEntry) -> None:
        self.reload_catalog()
        self.select_model(entry.id)
        self.status.setText(f"Imported {entry.name} as a {entry.role} model.")
        self.imported = entry
        self.modelsChanged.emit()

    def _ask_hub_repo(self) -> None:
        repo_id, ok = QInputDialog.getText(self, "Add from the Hugging Face Hub",
                                           "Repository id (owner/name):")
        if ok and repo_id.strip():
            self.add_from_hub(repo_id.strip())

    def add_from_hub(self, repo_id: str) -> None:
        """List the repo's GGUF files in the background, then open :class:`HubFilePicker`."""
        self.status.setText(f"Listing the GGUF files of {repo_id}…")
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
            self._error(f"{repo_id} has no GGUF files.")
            return
        self.status.setText(f"{len(files)} GGUF file(s) in {repo_id}.")
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
                picker.repo_id, choice.filename, picker.role_box.currentText(),
                name=picker.name_edit.text().strip() or None, size=choice.size, sha256=choice.sha256,
            )
        except (hub.DownloadError, OSError) as exc:
            self._error(str(exc))
            return
        self.reload_catalog()
        self.select_model(entry.id)
        self.status.setText(f"Added {entry.name}; press Download to get it.")
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
        self.status.setText(f"Added {', '.join(entry.name for entry in added)}.")
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
                    self._error(f"Internal error: {type(exc).__name__}: {exc}")
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
            self._show_offline(
                f"The Hugging Face Hub ({hub.hub_endpoint()}) cannot be reached, so downloads "
                "will fail; models that are ready can still be used."
            )

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
