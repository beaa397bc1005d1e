"""View → Blind quiz: the panes answer under neutral labels, shuffled; the class guesses.

The bar above the panes holds one guess per pane (base / instruct / reasoning), Reveal and
the score. Starting the quiz clears the panes, shuffles them (``session/quiz.py``, which
``triptych quiz`` shares) and makes each pane blind (:meth:`Pane.set_blind`): its badge
shows "Pane A", its picker, settings and role colour are hidden, and the names its model
could write are masked, in the stream, the fold and the export. Leaving the quiz puts the
panes back in their order with their models shown, and their turns as written (the names
unmasked, the text sent shown: :meth:`TurnWidget.unblind`).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QWidget,
)

from desktop_app.models.trios import stage
from desktop_app.session.quiz import STAGES, Quiz, Reveal
from desktop_app.text.i18n import N_, _
from desktop_app.ui import a11y, theme

NO_GUESS = N_("guess…")
INTRO = N_("Blind quiz: which stage wrote each pane? Names are masked and the text sent is "
           "hidden (its chat template would tell); the thinking fold is shown as is.")
# the stages as the guesses and the reveal name them (the quiz's own words stay English)
STAGE_NAMES = {"base": N_("base"), "instruct": N_("instruct"), "reasoning": N_("reasoning")}


def pane_label(label: str) -> str:
    """``Pane A`` (the quiz's neutral label) in the window's language."""
    return _("Pane {letter}").format(letter=label.rsplit(" ", 1)[-1])


def stage_name(stage: str) -> str:
    return _(STAGE_NAMES[stage]) if stage in STAGE_NAMES else stage


def reveal_lines(shown: Reveal) -> list[str]:
    """The truth per pane beside the guess, then the score: :meth:`Reveal.lines` and
    :meth:`Reveal.headline` (the command line's, in English) in the window's language."""
    lines = []
    for pane, guess in shown.rows:
        values = {"pane": pane_label(pane.label), "stage": stage_name(pane.stage),
                  "name": pane.name, "family": pane.family}
        if guess is None:
            lines.append(_("{pane}: {stage} ({name}, {family}) — no guess ✗").format(**values))
        elif guess == pane.stage:
            lines.append(_("{pane}: {stage} ({name}, {family}) — you guessed {guess} ✓")
                         .format(guess=stage_name(guess), **values))
        else:
            lines.append(_("{pane}: {stage} ({name}, {family}) — you guessed {guess} ✗")
                         .format(guess=stage_name(guess), **values))
    lines.append(_("Score: {score} of {total}").format(score=shown.score, total=shown.total))
    return lines


class QuizBar(QFrame):
    """The quiz's guesses, Reveal and score; hidden while there is no quiz."""

    def __init__(self, window: Any, parent: QWidget | None = None):
        super().__init__(parent)
        self.host = window  # the main window: its panes, splitter, zoom
        self.quiz: Quiz | None = None
        self.order: list[Any] = []  # the panes in the order they had before the shuffle
        self.combos: list[QComboBox] = []
        self.seed: int | None = None  # tests fix the shuffle; None: a new one each time
        self._asked: list[tuple[str, bool]] = []  # (model, thinking) per pane, quiz order
        self._watched: set[Any] = set()
        self._restarting = False
        theme.style(self, lambda: f"QuizBar {{ {theme.notice_style()} }}")
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(8, 6, 8, 6)
        self.intro = QLabel(_(INTRO))
        self.intro.setWordWrap(True)
        self.guess_row = QHBoxLayout()
        self.reveal_button = a11y.describe(
            QPushButton(_("Reveal")), _("Reveal"),
            _("Shows which model wrote each pane, and the score."))
        self.reveal_button.clicked.connect(self.reveal)
        self.result = QLabel()
        self.result.setWordWrap(True)
        self.result.hide()
        self.grid.addWidget(self.intro, 0, 0, 1, 2)
        self.grid.addLayout(self.guess_row, 1, 0)
        self.grid.addWidget(self.reveal_button, 1, 1)
        self.grid.addWidget(self.result, 2, 0, 1, 2)
        self.grid.setColumnStretch(0, 1)
        self.hide()

    @property
    def active(self) -> bool:
        return self.quiz is not None

    def set_on(self, on: bool) -> None:
        if on and self.quiz is None:
            self.start()
        elif not on and self.quiz is not None:
            self.stop()

    def start(self) -> None:
        """Clear the panes, shuffle them, hide every name; one guess box per pane."""
        window = self.host
        window.stop_all()
        window.clear_all()
        # the order before any shuffle (a quiz started again keeps the first one's)
        panes = [p for p in self.order if p in window.panes] if self.quiz else list(window.panes)
        models = []
        for pane in panes:
            entry = pane.entry
            models.append((pane.config.model_id, entry.name, entry.family,
                           stage(entry, pane.config.thinking)) if entry is not None else
                          (pane.config.model_id, pane.config.model_id, "", "instruct"))
        self.quiz, order = Quiz.start(models, seed=self.seed)
        self.order = panes
        self._asked = self._panes_now(panes)
        for pane in panes:
            if pane not in self._watched:  # a model changed while blind: a new quiz
                self._watched.add(pane)
                pane.configChanged.connect(self._pane_changed)
        self._arrange([panes[index] for index in order])
        for pane, shown in zip(window.panes, self.quiz.panes, strict=True):
            pane.set_blind(shown.label, self.quiz.terms)
        window.fit_banner.hide()  # it names the models that do not fit
        window.trio_note.follow(window.panes, blind=True)  # it names the families
        window.add_pane_button.setEnabled(False)
        self._build_guesses()
        self.result.hide()
        self.reveal_button.setEnabled(True)
        self.show()

    @staticmethod
    def _panes_now(panes: list[Any]) -> list[tuple[str, bool]]:
        return [(pane.config.model_id, pane.config.thinking) for pane in panes]

    def _pane_changed(self) -> None:
        """A pane's model or thinking changed during the quiz (the model manager's trio):
        the truth changed, so the quiz starts again, shuffled anew."""
        if self.quiz is not None and not self._restarting:
            self._restarting = True  # once, after every pane of a trio has changed
            QTimer.singleShot(0, self._restart)

    def _restart(self) -> None:
        self._restarting = False
        if self.quiz is not None and self._panes_now(self.order) != self._asked:
            self.start()

    def stop(self) -> None:
        """Back to the panes as they were: their order, their models shown."""
        self.quiz = None
        self._arrange(self.order)
        for pane in self.host.panes:
            pane.set_blind(None)
        self.host.trio_note.follow(self.host.panes)
        self.host._update_pane_buttons()  # Add pane, and ✕ where there is more than one
        self.hide()

    def _arrange(self, panes: list[Any]) -> None:
        window = self.host
        panes = [pane for pane in panes if pane in window.panes]
        window.panes[:] = panes
        for index, pane in enumerate(panes):
            window.splitter.insertWidget(index, pane)
        window.splitter.setSizes([1000] * len(panes))

    def _build_guesses(self) -> None:
        assert self.quiz is not None
        while self.guess_row.count():
            item = self.guess_row.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.combos = []
        for label in self.quiz.labels:
            shown = pane_label(label)
            name = QLabel(_("{pane}:").format(pane=shown))
            combo = a11y.describe(QComboBox(), _("Guess for {pane}").format(pane=shown),
                                  _("Which stage wrote {pane}: base, instruct or "
                                    "reasoning.").format(pane=shown))
            combo.addItems([_(NO_GUESS), *(stage_name(stage) for stage in STAGES)])
            name.setBuddy(combo)
            combo.currentIndexChanged.connect(
                lambda index, lab=label: self._guessed(lab, index))
            self.guess_row.addWidget(name)
            self.guess_row.addWidget(combo)
            self.guess_row.addSpacing(8)
            self.combos.append(combo)
        self.guess_row.addStretch(1)
        theme.apply_point_size(self, self.host.base_point_size * self.host.zoom)

    def _guessed(self, label: str, index: int) -> None:
        if self.quiz is not None and not self.quiz.revealed:
            self.quiz.guess(label, STAGES[index - 1] if index > 0 else None)

    def guess(self, stages: list[str]) -> None:
        """Set the guesses in shown order (the boxes follow)."""
        for combo, chosen in zip(self.combos, stages, strict=True):
            combo.setCurrentIndex(STAGES.index(chosen) + 1)

    def reveal(self) -> None:
        """The truth per pane beside the guess, and the score."""
        if self.quiz is None:
            return
        shown = self.quiz.reveal()
        for combo in self.combos:
            combo.setEnabled(False)
        self.reveal_button.setEnabled(False)
        lines = reveal_lines(shown)
        self.result.setText("\n".join(lines))
        self.result.show()
        a11y.announce(self.result, lines[-1])  # the score, politely
