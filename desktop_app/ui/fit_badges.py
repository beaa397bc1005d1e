"""The model manager's "Fits?" column and its "Recommended for this machine" bar.

Both come from one measurement taken off the GUI thread (:func:`measure`): the device
probe (a child process), RAM from psutil, the engine's core count, GGUF headers of what is
downloaded; then :func:`desktop_app.models.fit.entry_fit` per catalog entry, against the
window's panes, and :func:`desktop_app.models.recommend.recommend_trio`. The window only
shows the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QTableWidgetItem, QWidget

from desktop_app.models.catalog import Catalog, ModelEntry
from desktop_app.models.fit import EntryFit, FitVerdict, Machine, entry_fit
from desktop_app.models.recommend import Recommendation, recommend_trio
from desktop_app.models.trios import load_trios, mix_note
from desktop_app.ui import theme
from desktop_app.ui.tasks import Task

MEASURING = "…"
MEASURING_TIP = "Measuring this computer's memory and GPU…"


@dataclass
class Measured:
    """What :func:`measure` found: the machine, each model's verdict, the trio."""

    machine: Machine | None = None
    fits: dict[str, EntryFit] = field(default_factory=dict)
    recommendation: Recommendation | None = None
    problem: str = ""


def measure(catalog: Catalog, pane_ids: Sequence[str]) -> Callable[[Task], Measured]:
    """The background work: ``pane_ids`` are the window's panes (whose models the others
    are judged beside). Never raises: a failure is ``problem``, a sentence."""
    entries = list(catalog)
    panes: list[ModelEntry] = [catalog.entries[i] for i in pane_ids if i in catalog.entries]
    trios = load_trios(catalog)  # a stage trio that fits is recommended first

    def work(_task: Task) -> Measured:
        from desktop_app.engine.cores import physical_cores
        from desktop_app.engine.llama import devices

        try:
            machine = Machine.measure(devices.probe().gpus, physical_cores())
            fits = {entry.id: entry_fit(entry, panes, machine) for entry in entries}
            return Measured(machine, fits, recommend_trio(entries, machine, trios))
        except Exception as exc:  # noqa: BLE001 - the column says so; the manager carries on
            return Measured(problem=f"This computer's memory could not be measured ({exc}).")

    return work


def _color(verdict: FitVerdict) -> str:
    return {FitVerdict.FITS: theme.ok_color(), FitVerdict.TIGHT: theme.warn_color(),
            FitVerdict.TOO_LARGE: theme.fail_color()}.get(verdict, theme.muted_fg())


def fit_item(measured: Measured | None, model_id: str) -> QTableWidgetItem:
    """The "Fits?" cell of one model: the verdict, its colour, the figures as its tooltip."""
    found = measured.fits.get(model_id) if measured is not None else None
    if found is None:
        item = QTableWidgetItem("?" if measured is not None else MEASURING)
        item.setToolTip(measured.problem if measured is not None and measured.problem
                        else MEASURING_TIP)
        return item
    item = QTableWidgetItem(found.verdict.short)
    item.setToolTip(found.tooltip())
    item.setForeground(QBrush(QColor(_color(found.verdict))))
    return item


class RecommendBar(QWidget):
    """ "Recommended for this machine": a button and the trio it stands for. ``chosen``
    carries the trio's ids (base, instruct, reasoning) when the button is pressed."""

    chosen = Signal(list)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.button = QPushButton("Recommended for this machine")
        self.button.setEnabled(False)
        self.button.setToolTip(MEASURING_TIP)
        self.label = QLabel(MEASURING_TIP)
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        theme.style(self.label, lambda: f"color: {theme.muted_fg()};")
        layout.addWidget(self.button)
        layout.addWidget(self.label, 1)
        self.recommendation: Recommendation | None = None
        self.button.clicked.connect(self._pressed)

    def show_measured(self, measured: Measured) -> None:
        trio = self.recommendation = measured.recommendation
        self.button.setEnabled(trio is not None)
        if trio is not None:
            note = mix_note([(entry, True) for entry in trio.entries])
            self.label.setText(f"{trio.describe()} {note}".strip())
            self.button.setToolTip("Download these three (what is not here yet) and put them "
                                   f"in the panes.\nChosen for {trio.machine.describe()}.")
        elif measured.problem:
            self.label.setText(measured.problem)
        else:
            machine = measured.machine.describe() if measured.machine else "this computer"
            self.label.setText(f"No base, instruct and reasoning models of the catalog fit "
                               f"together with room to spare on {machine}; the starter "
                               "models and models on a server still run.")
        self.button.setToolTip(self.button.toolTip() if trio else self.label.text())

    def _pressed(self) -> None:
        if self.recommendation is not None:
            self.chosen.emit(self.recommendation.ids)  # its panes' thinking: .panes
