"""The main window's Answer key field: the expected answer of a question typed by hand.

A teacher's own question has no key, so Verify can only say what the reply answered.
Typing a key here makes Verify (also "Verify again" on replies already in) and Rollouts ×N
check that question's replies against it. A loaded practice problem owns the field (its
key shown, read-only) until the prompt is edited away from it. A typed key belongs to the
question it was given for: once that question has been sent, editing the prompt clears
it, so the next question is never checked against the last one's key.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QSize
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLineEdit, QWidget

from desktop_app.session.turn import Turn
from desktop_app.text.i18n import N_, _
from desktop_app.ui import a11y
from desktop_app.verify.problems import Problem, typed_key

PLACEHOLDER = N_("Answer key (optional)")
SHORT_PLACEHOLDER = N_("Answer key")  # where the whole one would be cut (presentation mode)
MAX_WIDTH = 180  # compact: the toolbar must fit 1024×768 in presentation mode
OWNED_PLACEHOLDERS = {"code": N_("hidden tests"), "open": N_("no key: open question")}
FREE_TIP = N_("The expected final answer of the question you typed (e.g. 56): Verify and "
              "Rollouts ×N check replies against it. A practice problem brings its own.")
OWNED_TIP = N_("The practice problem's key: edit the prompt to ask a question of your own.")


class AnswerKeyField(QLineEdit):
    """The expected final answer of the question in the prompt box (empty: none)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText(_(PLACEHOLDER))
        a11y.describe(self, _("Answer key"), _(FREE_TIP))
        self.setMaximumWidth(MAX_WIDTH)
        self.setMinimumWidth(MAX_WIDTH // 2)
        self.setClearButtonEnabled(True)
        self.setToolTip(_(FREE_TIP))
        self.textChanged.connect(self.updateGeometry)  # its width follows what it shows
        self.problem: Problem | None = None  # the practice problem that owns the field
        self.asked: str | None = None  # the question last sent, which a typed key is for

    def show_problem(self, problem: Problem | None) -> None:
        """A practice problem owns the field (its key, read-only); None frees it, empty
        if a problem had owned it."""
        owned = self.problem is not None
        self.problem = problem
        self.setReadOnly(problem is not None)
        self.setClearButtonEnabled(problem is None)
        self.setToolTip(_(FREE_TIP if problem is None else OWNED_TIP))
        self.setAccessibleDescription(self.toolTip())
        if problem is None:
            self._fit_placeholder()
            if owned:
                self.clear()
            return
        answer = problem.answer if problem.kind == "math" and problem.verifiable else None
        self.setText(answer or "")
        owned_placeholder = OWNED_PLACEHOLDERS.get(problem.kind, "")
        self.setPlaceholderText(_(owned_placeholder) if owned_placeholder and not answer else "")

    def sizeHint(self) -> QSize:  # Qt's name
        """As wide as what it shows (a key of "18" leaves the practice title the room),
        the whole placeholder while empty, within MAX_WIDTH."""
        hint = super().sizeHint()
        shown = self.text() or (_(PLACEHOLDER) if self.problem is None
                                else self.placeholderText())
        metrics = self.fontMetrics()
        width = max(metrics.horizontalAdvance(shown), metrics.horizontalAdvance(_(SHORT_PLACEHOLDER)))
        extra = self.height() + 16 if self.isClearButtonEnabled() else 16  # frame, clear button
        return QSize(min(MAX_WIDTH, max(self.minimumWidth(), width + extra)), hint.height())

    def resizeEvent(self, event: QResizeEvent) -> None:  # Qt's name
        super().resizeEvent(event)
        if self.problem is None:
            self._fit_placeholder()

    def _fit_placeholder(self) -> None:
        """"Answer key (optional)" where it fits, else "Answer key" (never "Answer key (opt…")."""
        room = self.width() - self.height() - 12  # the clear button, frame and margins
        whole = self.fontMetrics().horizontalAdvance(_(PLACEHOLDER)) <= room
        self.setPlaceholderText(_(PLACEHOLDER) if whole else _(SHORT_PLACEHOLDER))

    def typed_problem(self, prompt: str) -> Problem | None:
        """The typed key for *prompt* as a problem to check against (None: no key typed,
        or a practice problem owns the field)."""
        key = self.text().strip()
        return typed_key(prompt, key) if key and self.problem is None else None

    def sent(self, prompt: str) -> None:
        """*prompt* was sent: the key in the field (typed now or later) is its key."""
        self.asked = prompt.strip()

    def prompt_changed(self, prompt: str) -> None:
        """The prompt box changed: moving away from a question already sent takes its
        typed key away (a practice problem's is taken by :meth:`show_problem`)."""
        if self.asked is not None and prompt.strip() != self.asked:
            self.asked = None
            if self.problem is None:
                self.clear()


def rekey_turns(turns: Iterable[Turn], prompt: str, problem: Problem | None) -> int:
    """Give the replies to *prompt* a newly typed key, or take it away (*problem* None):
    Verify again then checks against it. Turns of a practice problem keep its key.
    Returns how many turns changed."""
    changed = 0
    for turn in turns:
        if turn.prompt.strip() != prompt.strip():
            continue
        if turn.problem is not None and not turn.problem.typed:
            continue
        if turn.problem != problem:
            turn.problem = problem
            changed += 1
    return changed
