"""A question sent while the panes are still answering: it waits, said under the prompt
with a way to cancel it, and is sent when every pane has finished.

Sending to idle panes only would leave the busy ones a question behind, and the
comparison would no longer be of one question; dropping it with a passing status note
loses what was typed. One question waits at most: sending again replaces it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QWidget

from desktop_app.text import escape
from desktop_app.text.i18n import N_, _
from desktop_app.ui import a11y, theme
from desktop_app.verify import Problem

QUEUED_NOTE = N_("Queued: will send when the panes finish")
SHOWN_CHARS = 60  # the queued question as the note quotes it, this long at most


class QueuedQuestion(QWidget):
    """The note under the prompt, and the question waiting for the panes to finish."""

    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.text: str | None = None
        self.problem: Problem | None = None
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.label.setTextFormat(Qt.TextFormat.RichText)
        self.label.setWordWrap(True)
        a11y.describe(self.label, _("Queued question"))
        self.cancel_button = QPushButton(_("Cancel"))
        self.cancel_button.setToolTip(_("Do not send the queued question"))
        a11y.describe(self.cancel_button, _("Cancel the queued question"),
                      _("Do not send the queued question"))
        self.cancel_button.clicked.connect(self.cancel)
        row.addWidget(self.label, 1)
        row.addWidget(self.cancel_button)
        theme.style(self.label, lambda: (  # information, not a warning: no yellow
            f"QLabel {{ background: {theme.subtle_bg()}; border-radius: 4px;"
            " padding: 4px 8px; }"))
        self.hide()

    @property
    def pending(self) -> bool:
        return self.text is not None

    def hold(self, text: str, problem: Problem | None) -> None:
        """Keep ``text`` (and its practice problem) to send later; it replaces any other."""
        self.text, self.problem = text, problem
        one_line = " ".join(text.split())
        if len(one_line) > SHOWN_CHARS:
            one_line = one_line[:SHOWN_CHARS - 1] + "…"
        self.label.setText(_("{note}: “{question}”").format(
            note=f"<b>{_(QUEUED_NOTE)}</b>", question=escape.html(one_line)))
        self.show()

    def take(self) -> tuple[str, Problem | None] | None:
        """The question to send now (it no longer waits), or None."""
        if self.text is None:
            return None
        taken = (self.text, self.problem)
        self._forget()
        return taken

    def cancel(self) -> None:
        """Do not send it (Cancel, Stop all, Clear all)."""
        if self.text is not None:
            self._forget()
            self.cancelled.emit()

    def _forget(self) -> None:
        self.text, self.problem = None, None
        self.hide()
