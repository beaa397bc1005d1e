"""The model manager's "Fits?" column and its "Recommended for this machine" bar, and the
words the window shows for a model's role, state and download progress (the core's labels
stay English: the command line shows them).

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
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QTableWidgetItem, QWidget

from desktop_app.models.catalog import ROLES, Availability, Catalog, ModelEntry
from desktop_app.models.download import DownloadProgress
from desktop_app.models.fit import EntryFit, FitVerdict, Machine, entry_fit
from desktop_app.models.recommend import Recommendation, recommend_trio
from desktop_app.models.trios import load_trios, mix_note
from desktop_app.text.i18n import N_, _
from desktop_app.text.units import format_bytes, format_duration
from desktop_app.ui import a11y, theme
from desktop_app.ui.tasks import Task

MEASURING = "…"
MEASURING_TIP = N_("Measuring this computer's memory and GPU…")
# Each verdict's badge: a symbol and a word (colour is never the only signal), and the
# verdict in words for a screen reader and the tooltip's first line.
FIT_BADGES: dict[FitVerdict, tuple[str, str, str]] = {
    FitVerdict.FITS: ("✓", N_("Fits"), N_("Fits")),
    FitVerdict.TIGHT: ("!", N_("Tight"), N_("Tight")),
    FitVerdict.TOO_LARGE: ("✗", N_("Too large"), N_("Too large for this machine")),
    FitVerdict.UNKNOWN: ("?", "", N_("Size unknown")),
    FitVerdict.REMOTE: ("⇄", N_("Server"), N_("On a server")),
}
ROLE_WORDS = {"base": N_("base"), "instruct": N_("instruct"), "reasoning": N_("reasoning")}
ROLE_MODELS = {"base": N_("base model"), "instruct": N_("instruct model"),
               "reasoning": N_("reasoning model")}


def role_word(role: str) -> str:
    """A role (``base``, ``instruct``, ``reasoning``) in the window's language."""
    return _(ROLE_WORDS[role]) if role in ROLE_WORDS else role


def role_model(role: str) -> str:
    """``base model``, ``instruct model``, ``reasoning model`` in the window's language."""
    return _(ROLE_MODELS[role]) if role in ROLE_MODELS else role


def role_box(current: str = "instruct") -> QComboBox:
    """A role picker: each role in words, its id (``base``…) as the item's data."""
    box = QComboBox()
    for role in ROLES:
        box.addItem(role_word(role), role)
    box.setCurrentIndex(max(0, box.findData(current)))
    return a11y.describe(box, _("Role"), _("Base, instruct or reasoning model"))


def state_word(state: Availability) -> str:
    """A model's availability in the window's language (the catalog's one label table)."""
    return _(state.label)


def progress_words(progress: DownloadProgress) -> str:
    """``downloading 42% at 12.3 MB/s, 8 s left`` in the window's language."""
    if progress.phase == "connecting":
        return _("connecting…")
    fraction = progress.fraction
    done = (_("{percent}%").format(percent=round(100 * fraction)) if fraction is not None
            else format_bytes(progress.done))
    if progress.phase == "verifying":
        return _("verifying {done}").format(done=done)
    speed = format_bytes(progress.speed)
    if progress.eta is None:
        return _("downloading {done} at {speed}/s").format(done=done, speed=speed)
    return _("downloading {done} at {speed}/s, {left} left").format(
        done=done, speed=speed, left=format_duration(progress.eta))


def fit_words(measured: Measured | None, model_id: str) -> str:
    """Whether the model fits, in words (what a screen reader says for the badge)."""
    found = measured.fits.get(model_id) if measured is not None else None
    if found is None:
        return _("fit not measured yet") if measured is None else _(FIT_BADGES[FitVerdict.UNKNOWN][2])
    return _(FIT_BADGES[found.verdict][2])


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
                        else _(MEASURING_TIP))
        item.setData(Qt.ItemDataRole.AccessibleTextRole, fit_words(measured, model_id))
        return item
    symbol, word, words = FIT_BADGES[found.verdict]
    item = QTableWidgetItem(f"{symbol} {_(word)}" if word else symbol)
    item.setToolTip(found.tooltip())  # "<label>: <reason>" and the figures, translated
    item.setData(Qt.ItemDataRole.AccessibleTextRole, _(words))
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
        self.button = QPushButton(_("Recommended for this &machine"))
        self.button.setEnabled(False)
        self.button.setToolTip(_(MEASURING_TIP))
        self.label = QLabel(_(MEASURING_TIP))
        a11y.describe(self.label, _("Recommended models"))
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
            self.button.setToolTip(_("Download these three (what is not here yet) and put "
                                     "them in the panes.\nChosen for {machine}.").format(
                machine=trio.machine.describe()))
        elif measured.problem:
            self.label.setText(measured.problem)
        else:
            machine = measured.machine.describe() if measured.machine else _("this computer")
            self.label.setText(_("No base, instruct and reasoning models of the catalog fit "
                                 "together with room to spare on {machine}; the starter "
                                 "models and models on a server still run.").format(
                machine=machine))
        self.button.setToolTip(self.button.toolTip() if trio else self.label.text())
        self.button.setAccessibleDescription(self.button.toolTip())

    def _pressed(self) -> None:
        if self.recommendation is not None:
            self.chosen.emit(self.recommendation.ids)  # its panes' thinking: .panes
