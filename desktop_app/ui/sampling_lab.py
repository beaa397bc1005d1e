"""The next-token explorer's sampling lab: sliders for temperature, top-k, top-p and min-p
that reshape each model's next-token distribution live, and a seeded "Sample ×100".

The distribution is the one the explorer already received (every token's log-probability
from a local model); :class:`desktop_app.engine.sampling.NextTokenDistribution` runs
the sampler's chain over it, so a slider never asks a model anything: dragging costs a
few milliseconds of numpy on the GUI thread, and no decode. Drawn here: the controls
(:class:`SamplingLab`) and one model's reshaped distribution as list rows
(:func:`lab_rows`, :func:`lab_summary`).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFontMetrics
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QWidget,
)

from desktop_app.engine.protocol import Sampling
from desktop_app.engine.sampling import LabRow, LabView
from desktop_app.session.tokens import shown_token
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.ui import a11y

DRAWS = 100  # draws per press of "Sample ×100"
MAX_BAR = 20  # characters of a probability bar at 100 %, where the list has room
NAME_WIDTH = (5, 14)  # characters of a token's text in a row: at least, at most
FIGURES = 6 + 8 + 6  # the model's and the sampled percentages, the draws


def _percent(p: float) -> str:
    """``41.2%``, ``<0.1%``, ``0%`` (a token the chain cut is exactly 0)."""
    if p <= 0:
        return "0%"
    if p < 0.001:
        return "<0.1%"
    return f"{p * 100:.1f}%" if p < 0.9995 else "100%"


def row_widths(width: int, metrics: QFontMetrics) -> tuple[int, int]:
    """``(name, bar)``: the characters a row's token and bar may take in ``width`` pixels
    of text: the figures always, the token as much as fits, the bar what is left."""
    characters = width // max(1, metrics.horizontalAdvance("0"))
    name = max(NAME_WIDTH[0], min(NAME_WIDTH[1], characters - FIGURES - 1))
    room = width - metrics.horizontalAdvance("0" * (name + FIGURES + 1))
    return name, max(0, min(MAX_BAR, room // max(1, metrics.horizontalAdvance("█"))))


def header(name: int) -> str:
    # TRANSLATORS: column headings over fixed-width rows: keep each short (6, 7, 5 letters)
    token, model, sampled, drawn = _("token"), _("model"), _("sampled"), _("drawn")
    return f"{token:<{name}}{model:>6}{sampled:>8}{drawn:>6}"


def row_text(row: LabRow, *, other: int = 0, name: int = NAME_WIDTH[1], bar: int = 0) -> str:
    """One list row: the token (``name`` characters), its probability under the model,
    then after the lab's chain, how many of the draws picked it, and a ``bar``-character
    bar of the sampled probability. ``other``: the row stands for that many tokens."""
    if other:
        more = ngettext("{n} more", "{n} more", other).format(n=f"{other:,}")
        text = next((t for t in (more, f"+{other:,}") if len(t) <= name), _("others"))
    else:
        text = shown_token(row.text)
        if len(text) > name:
            text = text[: name - 1] + "…"
    drawn = "" if row.drawn is None else str(row.drawn)
    blocks = "█" * round(row.sampled * bar) if row.sampled > 0 else ""
    return (f"{text:<{name}}{_percent(row.model):>6}{_percent(row.sampled):>8}"
            f"{drawn:>6} {blocks}").rstrip()


def lab_summary(view: LabView, *, complete: bool, vocabulary: int) -> str:
    """``14 of 262,144 tokens kept · entropy 2.31 bits (model 3.02) · ≈ 4.9 candidates
    (model 8.1)``; for a server's few tokens, says that is all there is to reshape."""
    if complete:
        kept = ngettext("{kept} of {n} token kept", "{kept} of {n} tokens kept", vocabulary)
    else:
        kept = ngettext("{kept} of the {n} the server sent kept",
                        "{kept} of the {n} the server sent kept", vocabulary)
    return " · ".join((
        kept.format(kept=f"{view.kept:,}", n=f"{vocabulary:,}"),
        _("entropy {bits} bits (model {model})").format(
            bits=number(view.entropy_bits, 2), model=number(view.model_entropy_bits, 2)),
        _("≈ {n} candidates (model {model})").format(
            n=number(view.effective, 1), model=number(view.model_effective, 1))))


SLIDER_NAMES = {"Temperature": N_("Temperature")}  # Top-k, Top-p, Min-p: named as such


class SamplingLab(QGroupBox):
    """The lab's controls. ``changed`` fires on every slider move; :meth:`sampling` is
    the chain they set (the repetition penalty has nothing to act on before the first
    token, so it is off); :attr:`draws` and :attr:`seed` what the histogram draws."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(_("Sampling lab: reshape the distribution (no new decode)"), parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(8, 4, 8, 4)
        grid.setVerticalSpacing(2)
        self.values: dict[str, QLabel] = {}
        self.temperature = self._slider(grid, 0, 0, "Temperature", 0, 200, 100,
                                        _("0 always takes the top token; above 1 flattens"))
        self.top_k = self._slider(grid, 0, 1, "Top-k", 0, 100, 0,
                                  _("Keep only the k likeliest tokens (0: off)"))
        self.top_p = self._slider(grid, 1, 0, "Top-p", 0, 100, 100,
                                  _("Keep the likeliest tokens until they add up to p (1: off)"))
        self.min_p = self._slider(grid, 1, 1, "Min-p", 0, 100, 0,
                                  _("Drop tokens less likely than p × the top one (0: off)"))
        self.draws = 0  # 0: no histogram yet
        self.seed_box = QSpinBox()
        self.seed_box.setRange(0, 2**31 - 1)
        self.seed_box.setValue(1)
        self.seed_box.setToolTip(_("The draws' seed: the same seed draws the same tokens"))
        a11y.describe(self.seed_box, _("Seed"),
                      _("The draws' seed: the same seed draws the same tokens"))
        self.seed_box.valueChanged.connect(self.changed)
        self.sample_button = QPushButton(_("Sample ×{n}").format(n=DRAWS))
        self.sample_button.setToolTip(_("Draw {n} tokens from exactly the distribution "
                                        "shown (again: the next seed)").format(n=DRAWS))
        self.sample_button.clicked.connect(self.sample)
        self.reset_button = QPushButton(_("Model's own"))
        self.reset_button.setToolTip(_("Temperature 1 and no cut: the model's distribution"))
        self.reset_button.clicked.connect(self.reset)
        buttons = QHBoxLayout()
        buttons.addWidget(self.sample_button)
        buttons.addSpacing(8)
        seed_label = QLabel(_("&Seed"))
        seed_label.setBuddy(self.seed_box)
        buttons.addWidget(seed_label)
        buttons.addWidget(self.seed_box)
        buttons.addStretch(1)
        buttons.addWidget(self.reset_button)
        grid.addLayout(buttons, 2, 0, 1, 4)
        self._show_values()

    def _slider(self, grid: QGridLayout, row: int, column: int, name: str, low: int, high: int,
                value: int, tip: str) -> QSlider:
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(low, high)
        slider.setValue(value)
        slider.setToolTip(tip)
        slider.setPageStep(10)
        a11y.describe(slider, _(SLIDER_NAMES[name]) if name in SLIDER_NAMES else name, tip)
        label = QLabel()
        label.setToolTip(tip)
        self.values[name] = label
        grid.addWidget(label, row, 2 * column)
        grid.addWidget(slider, row, 2 * column + 1)
        grid.setColumnStretch(2 * column + 1, 1)
        slider.valueChanged.connect(self._moved)
        return slider

    def sampling(self) -> Sampling:
        return Sampling(temperature=self.temperature.value() / 100, top_k=self.top_k.value(),
                        top_p=self.top_p.value() / 100, min_p=self.min_p.value() / 100,
                        repeat_penalty=1.0)

    @property
    def seed(self) -> int:
        return self.seed_box.value()

    def _show_values(self) -> None:
        s = self.sampling()
        self.values["Temperature"].setText(_("Temperature {value}").format(
            value=number(s.temperature, 2)))
        self.values["Top-k"].setText(_("Top-k {value}").format(
            value=s.top_k if s.top_k else _("off")))
        self.values["Top-p"].setText(_("Top-p {value}").format(value=number(s.top_p, 2)))
        self.values["Min-p"].setText(_("Min-p {value}").format(value=number(s.min_p, 2)))

    def _moved(self) -> None:
        self._show_values()
        self.changed.emit()

    def sample(self) -> None:
        """Draw (again: with the next seed); the histogram then follows the sliders."""
        if self.draws:
            self.seed_box.blockSignals(True)
            self.seed_box.setValue(self.seed + 1)
            self.seed_box.blockSignals(False)
        self.draws = DRAWS
        self.changed.emit()

    def reset(self) -> None:
        for slider, value in ((self.temperature, 100), (self.top_k, 0), (self.top_p, 100),
                              (self.min_p, 0)):
            slider.blockSignals(True)
            slider.setValue(value)
            slider.blockSignals(False)
        self._moved()
