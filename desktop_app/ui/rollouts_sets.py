"""The practice-set run window: a set × the window's models × N rollouts, as a table.

Each row is one model on one problem: correct of N, accuracy and its 95 % Wilson interval,
and whether best-of-N by the longest answer picked a correct one (Goodhart); a bar chart
shows the accuracies with their intervals. The run saves as JSON and CSV (the same files as
``triptych rollouts --set NAME --save``) and the chart as PNG or SVG.

The run is :func:`desktop_app.rollouts.sets.run_set` on a ``run_task`` thread, with model
processes of its own that the thread closes when it ends; rows reach only a live window.
Every control has an accessible name, the chart describes its bars in words, a finished run
is announced, and Escape closes the window.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.protocol import GenerationRequest, Sampling
from desktop_app.models.catalog import ModelEntry
from desktop_app.rollouts.goodhart import Proxy
from desktop_app.rollouts.run import MAX_ROLLOUTS, rollout_seeds
from desktop_app.rollouts.sets import SetRow, SetRun, run_set
from desktop_app.text.escape import visible_controls
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.ui import a11y
from desktop_app.ui.practice import load_sets
from desktop_app.ui.rollouts_chart import AccuracyChart, Bar
from desktop_app.ui.tasks import Task, run_task
from desktop_app.verify import PracticeSet

COLUMNS = (N_("Model"), N_("Problem"), N_("Correct"), N_("Accuracy"), N_("95% interval"),
           N_("Longest pick"))
DEFAULT_SET_ROLLOUTS = 4


def _stop_all(workers: list[Any], task: list[Task]) -> None:
    """When the window goes: cancel its run and stop its models (the run's thread closes them)."""
    for item in task:
        item.cancel()
    for worker in workers:
        worker.stop()


class SetRunView(QWidget):
    """A window: pick a set and N, run it on the given models, read the table."""

    runFinished = Signal(object)  # the SetRun

    def __init__(self, entries: Sequence[ModelEntry], make_worker: Any,
                 sets: Sequence[PracticeSet] | None = None, parent: QWidget | None = None):
        super().__init__(parent, Qt.WindowType.Window)
        self.entries = list(entries)
        self.make_worker = make_worker
        self.sets = list(sets) if sets is not None else []
        self.task: Task | None = None
        self.loading: Task | None = None
        self.rows: list[SetRow] = []
        self.outcome: SetRun | None = None
        self._workers: list[Any] = []
        self._task_box: list[Task] = []
        self._stopped = False
        self.destroyed.connect(functools.partial(_stop_all, self._workers, self._task_box))
        self.setWindowTitle(_("Rollouts on a practice set"))
        self.resize(960, 640)
        self.announcer = a11y.Announcer(self)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

        layout = QVBoxLayout(self)
        names = ", ".join(visible_controls(entry.name) for entry in self.entries)
        intro = QLabel(_("Every checkable problem × {models} × N rollouts.").format(
            models=names or _("no model")))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        controls = QHBoxLayout()
        self.set_picker = QComboBox()
        a11y.describe(self.set_picker, _("Practice set"))
        self.count = QSpinBox()
        self.count.setRange(1, MAX_ROLLOUTS)
        self.count.setValue(DEFAULT_SET_ROLLOUTS)
        self.count.setPrefix("×")
        tip = _("Rollouts per model and problem, 1 to {most}").format(most=MAX_ROLLOUTS)
        self.count.setToolTip(tip)
        a11y.describe(self.count, _("Number of rollouts"), tip)
        self.run_button = QPushButton(_("Run"))
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton(_("Stop"))
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.save_button = QPushButton(_("Save JSON + CSV…"))
        self.save_button.setEnabled(False)
        self.save_button.clicked.connect(self._save_dialog)
        self.export_button = QPushButton(_("Export chart…"))
        self.export_button.clicked.connect(self._export_dialog)
        for widget in (self.set_picker, self.count, self.run_button, self.stop_button,
                       self.save_button, self.export_button):
            controls.addWidget(widget)
        controls.addStretch(1)
        layout.addLayout(controls)
        self.status = QLabel(_("Pick a set and press Run.") if sets is not None
                             else _("Loading the practice sets…"))
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                            | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        a11y.describe(self.status, _("Status"))
        self.status.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab reaches it, to hear it
        layout.addWidget(self.status)
        split = QSplitter(Qt.Orientation.Vertical)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels([_(column) for column in COLUMNS])
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; the arrows move in it
        a11y.describe(self.table, _("Results"), _("One row per model and problem"))
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.chart = AccuracyChart()
        split.addWidget(self.table)
        split.addWidget(self.chart)
        split.setSizes([360, 240])
        layout.addWidget(split, 1)
        self.use_sets(self.sets)
        if sets is None:  # reading HumanEval and the Hub cache takes a while: not on this thread
            self.run_button.setEnabled(False)
            self.loading = run_task(self, lambda _task: load_sets(), on_success=self._loaded,
                                    name="set-run-sets")

    def _loaded(self, loaded: tuple[list[PracticeSet], str | None]) -> None:
        sets, error = loaded
        self.loading = None
        self.use_sets(sets)
        if not self.running:
            self.status.setText(visible_controls(error) if error
                                else _("Pick a set and press Run."))

    @property
    def running(self) -> bool:
        return self.task is not None

    def use_sets(self, sets: Sequence[PracticeSet]) -> None:
        """The sets to offer (default: the shipped ones, loaded in the background)."""
        if self.loading is not None:  # sets given now win over the ones still loading
            self.loading.detach()
            self.loading = None
            if not self.running:
                self.status.setText(_("Pick a set and press Run."))
        self.run_button.setEnabled(not self.running)
        self.sets = list(sets)
        self.set_picker.clear()
        for practice_set in self.sets:
            self.set_picker.addItem(practice_set.name)

    def run(self) -> bool:
        if self.running or not self.entries or not self.sets:
            return False
        practice_set = self.sets[self.set_picker.currentIndex()]
        seeds = rollout_seeds(None, self.count.value())
        self.rows = []
        self.outcome = None
        self._stopped = False
        self.table.setRowCount(0)
        self.chart.set_bars([])
        workers = [self.make_worker(entry) for entry in self.entries]
        self._workers[:] = workers

        def request_for(entry: ModelEntry, problem: Any) -> GenerationRequest:
            return GenerationRequest(problem.prompt, sampling=Sampling.for_entry(entry))

        def work(task: Task) -> SetRun:
            try:
                return run_set(practice_set, workers, request_for, seeds,
                               should_stop=task.cancelled.is_set, on_row=task.report)
            finally:
                for worker in workers:
                    worker.close()

        self.task = run_task(self, work, on_success=self._finished, on_failure=self._failed,
                             on_progress=self._add_row, name="set-run")
        self._task_box[:] = [self.task]
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.save_button.setEnabled(False)
        self.status.setText(ngettext(
            "Running {set}: {n} rollout per model and problem…",
            "Running {set}: {n} rollouts per model and problem…", len(seeds)).format(
                set=practice_set.name, n=len(seeds)))
        return True

    def stop(self) -> None:
        if self.task is not None:
            self._stopped = True
            self.task.cancel()
        for worker in self._workers:
            worker.stop()

    def _add_row(self, row: SetRow) -> None:
        self.rows.append(row)
        table = row.table_row()
        picked = table["pick_longest_correct"]
        cells = [row.run.model, row.problem.id, f"{row.run.correct}/{row.run.n}",
                 "–" if table["accuracy"] is None else number(table["accuracy"], 2),
                 # TRANSLATORS: a 95 % interval, low to high (a semicolon where a comma
                 # is the decimal sign)
                 _("[{low}, {high}]").format(low=number(table["ci_low"], 2),
                                             high=number(table["ci_high"], 2)),
                 "–" if picked is None else ("✓" if picked else "✗")]
        if row.run.error:
            cells[-1] = visible_controls(row.run.error)[:120]
        index = self.table.rowCount()
        self.table.insertRow(index)
        for column, text in enumerate(cells):
            item = QTableWidgetItem(visible_controls(text))
            if picked is not None and column == len(cells) - 1 and not row.run.error:
                item.setToolTip(_("The longest answer was correct") if picked
                                else _("The longest answer was wrong"))
                item.setData(Qt.ItemDataRole.AccessibleTextRole, item.toolTip())
            self.table.setItem(index, column, item)
        self.table.resizeColumnsToContents()
        self.chart.set_bars([Bar(f"{r.run.model} · {r.problem.id}", t["accuracy"] or 0.0,
                                 t["ci_low"], t["ci_high"])
                             for r, t in ((r, r.table_row()) for r in self.rows)])

    def _finished(self, outcome: SetRun) -> None:
        self.task = None
        self.outcome = outcome
        self._idle()
        figures = "; ".join(f"{model}: {figure.describe()}"
                            for model, figure in outcome.gamed(Proxy.LONGEST).items()) \
            or _("nothing to compare")
        said = _("{set}: stopped. Goodhart — {figures}.") if self._stopped \
            else _("{set}: done. Goodhart — {figures}.")
        self.status.setText(said.format(set=outcome.set_name, figures=figures))
        self.announcer.say(self.status.text())
        self.save_button.setEnabled(bool(outcome.rows))
        self.runFinished.emit(outcome)

    def _failed(self, exc: BaseException) -> None:
        self.task = None
        self._idle()
        self.status.setText(visible_controls(_("The set run failed: {error}").format(
            error=exc))[:300])
        self.runFinished.emit(None)

    def _idle(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)

    def save(self, basename: str | Path) -> tuple[Path, Path] | None:
        if self.outcome is None:
            return None
        return self.outcome.save(basename)

    def _save_dialog(self) -> None:
        path, _kind = QFileDialog.getSaveFileName(self, _("Save the set run (JSON and CSV)"),
                                                  "set-run")
        if path:
            try:
                written = self.save(Path(path).with_suffix(""))
            except OSError as exc:
                self.status.setText(visible_controls(_("Could not save: {error}").format(
                    error=exc)))
                return
            if written:
                self.status.setText(_("Saved {first} and {second}.").format(
                    first=written[0].name, second=written[1].name))

    def _export_dialog(self) -> None:
        path, _kind = QFileDialog.getSaveFileName(
            self, _("Export the accuracy chart"), "accuracy.png",
            f"{_('PNG image')} (*.png);;{_('SVG image')} (*.svg)")
        if path:
            try:
                self.chart.export(path)
            except OSError as exc:
                self.status.setText(visible_controls(_("Could not export: {error}").format(
                    error=exc)))

    def closeEvent(self, event: Any) -> None:
        self.stop()
        super().closeEvent(event)


def open_set_runs(window: Any) -> SetRunView:
    """The set-run window for a main window's panes' models (one per distinct model)."""
    from desktop_app.session.generation import default_worker_factory

    entries: list[ModelEntry] = []
    for pane in window.panes:
        if pane.entry is not None and pane.entry.id not in {e.id for e in entries}:
            entries.append(pane.entry)
    view = SetRunView(entries, window.worker_factory or default_worker_factory, parent=window)
    view.show()
    return view
