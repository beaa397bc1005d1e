"""Token probabilities on screen: a reply drawn token by token, each tinted by how likely
the model found it, with its alternatives on hover and a menu to branch from any of them.

Streaming stays flat: each frame's new tokens are inserted at the end of the document
(one cursor, one char format per token); nothing already drawn is touched. The tint is
one warm hue at rising strength, translucent so it reads on light and dark backgrounds
alike, and a likely token is left untinted so a confident reply looks calm.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QLabel, QMenu, QToolTip, QWidget

from desktop_app.text import escape
from desktop_app.tokens import BAND_FLOORS, BAND_LABELS, TokenStep, percent, shown_token
from desktop_app.ui import theme
from desktop_app.ui.widgets import AutoHeightTextBrowser

INDEX_PROPERTY = int(QTextFormat.Property.UserProperty) + 1  # the token's index in the turn
BAND_ALPHAS = (0, 60, 105, 150, 200)  # by band: likely tokens untinted, unlikely ones strong
HUE_LIGHT, HUE_DARK = (232, 140, 30), (240, 150, 50)  # one warm hue: amber


def band_color(band: int) -> QColor:
    """The tint for a probability band (transparent for the most likely band)."""
    red, green, blue = HUE_DARK if theme.is_dark() else HUE_LIGHT
    return QColor(red, green, blue, BAND_ALPHAS[min(band, len(BAND_ALPHAS) - 1)])


def legend_html() -> str:
    """A one-line key to the tints, for under the token view."""
    cells = []
    for band, label in enumerate(BAND_LABELS):
        color = band_color(band)
        rgba = f"rgba({color.red()},{color.green()},{color.blue()},{color.alpha() / 255:.2f})"
        cells.append(f"<span style='background:{rgba}'>&nbsp;{escape.html(label)}&nbsp;</span>")
    return (f"<span style='color:{theme.muted_fg()}'>Probability: </span>" + " ".join(cells))


class TokenView(AutoHeightTextBrowser):
    """A reply's tokens, tinted; hover shows the alternatives, a click offers a branch."""

    tokenClicked = Signal(int, QPoint)  # (token index, where: global position)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.steps: list[TokenStep] = []
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setOpenLinks(False)
        self._hovered = -1
        self.struck_from: int | None = None
        theme.on_change(self, "document", TokenView.redraw)

    def set_steps(self, steps: Sequence[TokenStep]) -> None:
        """Draw these tokens afresh (a branch switched, the theme changed)."""
        self.steps = []
        self.struck_from = None
        self.document().clear()
        self.append_steps(steps)

    def redraw(self) -> None:
        struck = self.struck_from
        self.set_steps(list(self.steps))
        self.strike_from(struck)

    def append_steps(self, steps: Sequence[TokenStep]) -> None:
        """Add tokens at the end (one frame's worth while streaming)."""
        if not steps:
            return
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        muted = QColor(theme.muted_fg())
        for step in steps:
            fmt = QTextCharFormat()
            fmt.setBackground(band_color(step.band))
            fmt.setProperty(INDEX_PROPERTY, len(self.steps))
            if step.thinking:
                fmt.setFontItalic(True)
                fmt.setForeground(muted)
            self.steps.append(step)
            cursor.insertText(step.text, fmt)

    def strike_from(self, index: int | None) -> None:
        """Strike through the tokens from ``index`` on (cut by a stop sequence)."""
        if index is None or not 0 <= index < len(self.steps):
            return
        self.struck_from = index
        start = sum(len(step.text) for step in self.steps[:index])
        cursor = QTextCursor(self.document())
        cursor.setPosition(start)
        cursor.movePosition(QTextCursor.MoveOperation.End, QTextCursor.MoveMode.KeepAnchor)
        fmt = QTextCharFormat()
        fmt.setFontStrikeOut(True)
        fmt.setForeground(QColor(theme.muted_fg()))
        cursor.mergeCharFormat(fmt)

    def index_at(self, pos: QPoint) -> int:
        """The token under a viewport position, or -1."""
        layout = self.document().documentLayout()
        offset = QPoint(self.horizontalScrollBar().value(), self.verticalScrollBar().value())
        hit = layout.hitTest(pos + offset, Qt.HitTestAccuracy.ExactHit)
        if hit < 0:
            return -1
        cursor = QTextCursor(self.document())
        cursor.setPosition(hit + 1)
        value = cursor.charFormat().property(INDEX_PROPERTY)
        return value if isinstance(value, int) and 0 <= value < len(self.steps) else -1

    def mouseMoveEvent(self, event: Any) -> None:  # noqa: N802
        index = self.index_at(event.position().toPoint())
        if index != self._hovered:
            self._hovered = index
            if index >= 0:
                QToolTip.showText(event.globalPosition().toPoint(),
                                  self.steps[index].describe(), self)
            else:
                QToolTip.hideText()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:  # noqa: N802
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection():
            index = self.index_at(event.position().toPoint())
            if index >= 0:
                self.tokenClicked.emit(index, event.globalPosition().toPoint())


def alternatives_menu(parent: QWidget, step: TokenStep, *, can_branch: bool) -> QMenu:
    """The alternatives of one token, most likely first; picking another one branches.
    An empty token (end of text) and the chosen one are listed but not offered."""
    menu = QMenu(parent)
    title = menu.addAction(f"{shown_token(step.text)}  {percent(step.logprob.logprob)}"
                           " — continue from another token:")
    title.setEnabled(False)
    for text, logprob, chosen in step.alternatives():
        action = menu.addAction(f"{'▸ ' if chosen else '   '}{shown_token(text)}"
                                f"   {percent(logprob)}")
        action.setData(text)
        action.setEnabled(can_branch and not chosen and text != "")
    return menu


def legend_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    theme.rich_text(label, legend_html)
    theme.set_font_scale(label, 0.85)
    label.setToolTip("Each token is tinted by the probability the model gave it "
                     f"(bands from {BAND_FLOORS[0]:.0%} down). Hover a token for its "
                     "alternatives; click it to continue from another one.")
    return label
