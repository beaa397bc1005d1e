"""Token probabilities on screen: a reply drawn token by token, each tinted by how likely
the model found it, with its alternatives on hover and a menu to branch from any of them.

A reasoning reply's tokens go where its text goes: the thinking's into the thinking fold,
the answer's in place of the answer (:class:`TokenRouter`). Streaming stays flat: each
frame's new tokens are inserted at the end of their view's document (one cursor, one
char format per token); nothing already drawn is touched. The tints run from pale yellow
through orange and red to red-violet: hue and strength both change from band to band, so
neighbouring bands are told apart at a glance (two strengths of one hue were not), with
one set for light backgrounds and a deeper one for dark, each keeping the text readable.
A likely token is left untinted, so a confident reply looks calm.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QLabel, QMenu, QToolTip, QWidget

from desktop_app.session.tokens import (
    BAND_FLOORS,
    BAND_LABELS,
    MODEL_HEADING,
    SAMPLED_HEADING,
    TokenStep,
    percent,
    shown_token,
)
from desktop_app.text import escape
from desktop_app.text.thinking import ThinkingSplitter
from desktop_app.ui import theme
from desktop_app.ui.widgets import AutoHeightTextBrowser, StreamTextView

INDEX_PROPERTY = int(QTextFormat.Property.UserProperty) + 1  # the token's index in the turn
# by band, from "60–90%" to "under 10%" (the likeliest band is untinted)
TINTS_LIGHT = ("#FFF1B8", "#FFD27A", "#FF9B6B", "#E8739E")  # under dark text
TINTS_DARK = ("#4A4A18", "#804800", "#8E2A1E", "#70185C")  # under light text
SYMBOLS_NOTE = "· is a space, ↵ a line break, ⇥ a tab"  # as shown_token writes them


def band_color(band: int) -> QColor:
    """The tint for a probability band (transparent for the most likely band)."""
    if band <= 0:
        return QColor(0, 0, 0, 0)
    tints = TINTS_DARK if theme.is_dark() else TINTS_LIGHT
    return QColor(tints[min(band, len(tints)) - 1])


def legend_html() -> str:
    """A one-line key to the tints, for under the token view."""
    cells = []
    for band, label in enumerate(BAND_LABELS):
        color = band_color(band)
        rgba = f"rgba({color.red()},{color.green()},{color.blue()},{color.alpha() / 255:.2f})"
        cells.append(f"<span style='background:{rgba}'>&nbsp;{escape.html(label)}&nbsp;</span>")
    return (f"<span style='color:{theme.muted_fg()}'>Probability: </span>" + " ".join(cells)
            + f"<span style='color:{theme.muted_fg()}'> &nbsp;· = space</span>")


class Side(Enum):
    """Where a token of the reply is drawn."""

    FOLD = "fold"  # the thinking fold
    ANSWER = "answer"  # in place of the answer


Placed = tuple[Side, int, str]  # where a token goes, its index in the reply, its text shown


class TokenRouter:
    """Sends each token of a reply to the thinking fold or to the answer, in order, as the
    reply's text was split: a token the engine counted as thinking goes to the fold (its
    ``<think>`` and ``</think>`` too), a token that shows answer text goes to the answer.
    What shows no text at all (blanks the split drops, the markup between thinking and
    answer) goes with the token before it, or, at the start, with the next one.

    Whether a token shows text is the thinking splitter's answer (the one that split the
    reply), fed the tokens' own text from the same starting state. In a reply that can
    think, the blanks the split drops are not drawn either (the line breaks after
    ``</think>``, before the answer's first word), so the fold ends where the thinking
    does and the answer starts at its text; a reply that cannot think is drawn exactly."""

    def __init__(self, thinking_format: str, *, starts_in_thinking: bool):
        self.splitter = ThinkingSplitter(thinking_format, prefilled=starts_in_thinking)
        self.exact = self.splitter.format.name == "none"
        self.side: Side | None = None  # where the last token went
        self.held: list[tuple[int, str]] = []  # tokens at the start that show no text yet
        self.routed = 0  # tokens seen so far
        self.answer_begun = False

    def route(self, steps: Sequence[TokenStep]) -> list[Placed]:
        """Where the next tokens of the reply go (held ones included once their side is
        known)."""
        out: list[Placed] = []
        for step in steps:
            index, self.routed = self.routed, self.routed + 1
            shows_text = bool(self.splitter.feed(step.text))
            shown = step.text
            if step.thinking:
                side = Side.FOLD
            elif shows_text:
                side = Side.ANSWER
                if not self.answer_begun and not self.exact:
                    shown = shown.lstrip()
                self.answer_begun = True
            else:
                shown = shown if self.exact else shown.strip()
                if self.side is None:
                    self.held.append((index, shown))
                    continue
                side = self.side
            out.extend((side, held, text) for held, text in self.held)
            out.append((side, index, shown))
            self.held, self.side = [], side
        return out

    def finish(self) -> list[Placed]:
        """The reply ended: tokens still held (it showed no text at all) go to the answer."""
        out = [(self.side or Side.ANSWER, index, text) for index, text in self.held]
        self.held = []
        return out


class TokenView(AutoHeightTextBrowser):
    """Tokens of a reply, tinted; hover shows the alternatives, a click offers a branch.

    A view may hold part of a reply (the thinking fold, the answer): each token keeps its
    index in the whole reply, which is what :attr:`tokenClicked` and :meth:`index_at`
    give and :meth:`strike_from` takes."""

    tokenClicked = Signal(int, QPoint)  # (token index in the reply, where: global position)

    def __init__(self, parent: QWidget | None = None, *, max_height: int | None = None):
        super().__init__(parent, max_height=max_height)
        self.steps: list[TokenStep] = []  # as drawn
        self.indices: list[int] = []  # each drawn token's index in the reply
        self.shown: list[str] = []  # each drawn token's text as drawn
        self._drawn: dict[int, int] = {}  # index in the reply -> position drawn
        self._paragraph = 0  # characters drawn since the last line break
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self.setOpenLinks(False)
        self._hovered = -1
        self.struck_from: int | None = None
        theme.on_change(self, "document", TokenView.redraw)

    def set_steps(self, steps: Sequence[TokenStep], indices: Sequence[int] | None = None,
                  shown: Sequence[str] | None = None) -> None:
        """Draw these tokens afresh (a branch switched, the theme changed)."""
        self.steps, self.indices, self.shown, self._drawn = [], [], [], {}
        self._paragraph = 0
        self.struck_from = None
        self.document().clear()
        self.append_steps(steps, indices, shown)

    def redraw(self) -> None:
        struck = self.struck_from
        self.set_steps(list(self.steps), list(self.indices), list(self.shown))
        self.strike_from(struck)

    def append_steps(self, steps: Sequence[TokenStep], indices: Sequence[int] | None = None,
                     shown: Sequence[str] | None = None) -> None:
        """Add tokens at the end (one frame's worth while streaming). ``indices``: their
        places in the reply (by default, right after the last one drawn); ``shown``: the
        text drawn for each (by default, the token's own)."""
        if not steps:
            return
        if indices is None:
            first = self.indices[-1] + 1 if self.indices else 0
            indices = range(first, first + len(steps))
        texts = shown if shown is not None else [step.text for step in steps]
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        for step, index, token_text in zip(steps, indices, texts, strict=True):
            text = self._break_long_paragraph(token_text)
            fmt = QTextCharFormat()
            fmt.setBackground(band_color(step.band))
            fmt.setProperty(INDEX_PROPERTY, index)
            self._drawn[index] = len(self.steps)
            self.steps.append(step)
            self.indices.append(index)
            self.shown.append(text)
            cursor.insertText(text, fmt)

    def _break_long_paragraph(self, text: str) -> str:
        """``text`` as drawn: as in :class:`StreamTextView`, past LONG_PARAGRAPH characters
        without a line break the next blank is drawn as one, because Qt lays a paragraph
        out whole and appending to an ever longer one would cost its length each frame.
        The length stays the same, so positions still add up; the token keeps its text."""
        if "\n" in text:
            self._paragraph = len(text) - text.rindex("\n") - 1
            return text
        if self._paragraph + len(text) > StreamTextView.LONG_PARAGRAPH:
            blank = next((i for i, char in enumerate(text) if char in " \t"), -1)
            if blank != -1:
                self._paragraph = len(text) - blank - 1
                return text[:blank] + "\n" + text[blank + 1:]
        self._paragraph += len(text)
        return text

    def step(self, index: int) -> TokenStep | None:
        """The token drawn here with this index in the reply (None if not drawn here)."""
        position = self._drawn.get(index)
        return None if position is None else self.steps[position]

    def strike_from(self, index: int | None) -> None:
        """Strike through the tokens from reply index ``index`` on (cut by a stop sequence)."""
        position = next((p for p, i in enumerate(self.indices) if index is not None
                         and i >= index), None)
        if position is None:
            return
        self.struck_from = index
        start = sum(len(text) for text in self.shown[:position])
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
        return value if isinstance(value, int) and value in self._drawn else -1

    def mouseMoveEvent(self, event: Any) -> None:
        index = self.index_at(event.position().toPoint())
        if index != self._hovered:
            self._hovered = index
            step = self.step(index)
            if step is not None:
                QToolTip.showText(event.globalPosition().toPoint(), token_tooltip(step), self)
            else:
                QToolTip.hideText()
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: Any) -> None:
        super().mouseReleaseEvent(event)
        if event.button() == Qt.MouseButton.LeftButton and not self.textCursor().hasSelection():
            index = self.index_at(event.position().toPoint())
            if index >= 0:
                self.tokenClicked.emit(index, event.globalPosition().toPoint())


def token_tooltip(step: TokenStep) -> str:
    """A token's alternatives, and what the marks in them mean when there are any."""
    text = step.describe()
    marks = any(mark in text for mark in "·↵⇥")
    return f"{text}\n({SYMBOLS_NOTE})" if marks else text


def alternatives_menu(parent: QWidget, step: TokenStep, *, can_branch: bool) -> QMenu:
    """The alternatives of one token, most likely first; picking another one branches.
    An empty token (end of text) and the chosen one are listed but not offered."""
    menu = QMenu(parent)
    sampled = step.sampled_alternatives()
    title = menu.addAction(f"{step.headline()}" + (
        "" if sampled else " — continue from another token:"))
    title.setEnabled(False)
    marks = False
    sections = [(f"{MODEL_HEADING[:-1]} (pick one to continue from it):" if sampled else "",
                 step.alternatives())]
    if sampled:
        sections.append((SAMPLED_HEADING, sampled))
    for heading, rows in sections:
        if heading:
            if not menu.isEmpty() and heading == SAMPLED_HEADING:
                menu.addSeparator()
            menu.addAction(heading).setEnabled(False)
        for text, logprob, chosen in rows:
            shown = shown_token(text)
            marks = marks or (text != "" and shown != text)
            action = menu.addAction(f"{'▸ ' if chosen else '   '}{shown}   {percent(logprob)}")
            action.setData(text)
            action.setEnabled(can_branch and not chosen and text != "")
    if marks:
        menu.addAction(f"({SYMBOLS_NOTE})").setEnabled(False)
    return menu


def legend_label() -> QLabel:
    label = QLabel()
    label.setWordWrap(True)
    theme.rich_text(label, legend_html)
    theme.set_font_scale(label, 0.85)
    label.setToolTip("Each token is tinted by the probability the model gave it "
                     f"(bands from {BAND_FLOORS[0]:.0%} down). Hover a token for its "
                     "alternatives; click it to continue from another one. In the "
                     f"alternatives {SYMBOLS_NOTE}: \"·the\" is \" the\", the word "
                     "with the space before it, which is one token.")
    return label
