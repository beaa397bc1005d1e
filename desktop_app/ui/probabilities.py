"""Token probabilities on screen: a reply drawn token by token, each tinted by how likely
the model found it, with its alternatives on hover and a menu to branch from any of them.

A reasoning reply's tokens go where its text goes: the thinking's into the thinking fold,
the answer's in place of the answer (:class:`TokenRouter`). Streaming stays flat: each
frame's new tokens are inserted at the end of their view's document (one cursor, one
char format per token); nothing already drawn is touched. The tints run from pale yellow
through orange and red to red-violet: hue and strength both change from band to band, so
neighbouring bands are told apart at a glance (two strengths of one hue were not), with
one set for light backgrounds and a deeper one for dark, each keeping the text readable
(4.5:1, and 7:1 under high contrast's pure black or white text). A likely token is left
untinted, so a confident reply looks calm. Colour is not the only signal: each band has
its own underline (dotted, dashed, solid, wavy), every token its numeric tooltip, and the
legend names each band's range.

The keyboard reaches every token: with the view focused, Left and Right (Home, End) move
a marker from token to token, the screen reader hears each one ("“ the”, 42 %, rank 1"),
and Enter, Space or the Menu key opens the branch menu at it.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Any

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import QMenu, QTextEdit, QToolTip, QWidget

from desktop_app.session.tokens import (
    BAND_FLOORS,
    BAND_LABELS,
    MODEL_HEADING,
    SAMPLED_HEADING,
    TokenStep,
    percent,
    probability,
    shown_token,
)
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _, number
from desktop_app.text.thinking import ThinkingSplitter
from desktop_app.ui import a11y, theme
from desktop_app.ui.widgets import AutoHeightTextBrowser, StreamTextView

INDEX_PROPERTY = int(QTextFormat.Property.UserProperty) + 1  # the token's index in the turn
# by band, from "60–90%" to "under 10%" (the likeliest band is untinted)
TINTS_LIGHT = ("#FFF1B8", "#FFD27A", "#FF9B6B", "#E8739E")  # under dark text
TINTS_DARK = ("#4A4A18", "#804800", "#8E2A1E", "#70185C")  # under light text
SYMBOLS_NOTE = N_("· is a space, ↵ a line break, ⇥ a tab")  # as shown_token writes them
# by band, the underline that says it without colour (the likeliest band has none)
UNDERLINES = (QTextCharFormat.UnderlineStyle.NoUnderline,
              QTextCharFormat.UnderlineStyle.DotLine,
              QTextCharFormat.UnderlineStyle.DashUnderline,
              QTextCharFormat.UnderlineStyle.SingleUnderline,
              QTextCharFormat.UnderlineStyle.WaveUnderline)
UNDERLINE_NAMES = (N_("no underline"), N_("dotted underline"), N_("dashed underline"),
                   N_("solid underline"), N_("wavy underline"))


def band_color(band: int) -> QColor:
    """The tint for a probability band (transparent for the most likely band)."""
    if band <= 0:
        return QColor(0, 0, 0, 0)
    tints = TINTS_DARK if theme.is_dark() else TINTS_LIGHT
    return QColor(tints[min(band, len(tints)) - 1])


def band_range(band: int) -> str:
    """A band's range in words and numbers: "90 % or more", "60 to 90 %", "under 10 %"."""
    floors = BAND_FLOORS
    band = max(0, min(band, len(floors) - 1))
    low = number(floors[band] * 100)
    if band == 0:
        return _("{low} % or more").format(low=low)
    high = number(floors[band - 1] * 100)
    if band == len(floors) - 1:
        return _("under {high} %").format(high=high)
    return _("{low} to {high} %").format(low=low, high=high)


def band_format(band: int) -> QTextCharFormat:
    """How a token of this band is drawn: its tint and its band's underline."""
    fmt = QTextCharFormat()
    fmt.setBackground(band_color(band))
    style = UNDERLINES[max(0, min(band, len(UNDERLINES) - 1))]
    fmt.setUnderlineStyle(style)
    return fmt


def legend_html() -> str:
    """A one-line key to the tints, for under the token view (its ranges as text)."""
    cells = []
    for band in range(len(BAND_LABELS)):
        color = band_color(band)
        rgba = f"rgba({color.red()},{color.green()},{color.blue()},{color.alpha() / 255:.2f})"
        cells.append(f"<span style='background:{rgba}'>&nbsp;{escape.html(band_range(band))}"
                     "&nbsp;</span>")
    return (f"<span style='color:{theme.muted_fg()}'>{escape.html(_('Probability:'))} </span>"
            + " ".join(cells) + f"<span style='color:{theme.muted_fg()}'> &nbsp;"
            f"{escape.html(_('· = space'))}</span>")


def legend_text() -> str:
    """The legend in words, for a screen reader: each band's range and its underline."""
    bands = "; ".join(_("{range}: {underline}").format(range=band_range(band),
                                                      underline=_(UNDERLINE_NAMES[band]))
                      for band in range(len(BAND_LABELS)))
    return _("Probability bands: {bands}. · is a space.").format(bands=bands)


def token_rank(step: TokenStep) -> int | None:
    """The chosen token's place among the alternatives the model listed (1: its likeliest),
    or None when it was not among them."""
    for rank, (text, _logprob) in enumerate(step.logprob.top, 1):
        if text == step.text:
            return rank
    return None


def spoken_token(text: str) -> str:
    """A token's text as a screen reader should hear it (line breaks and tabs named)."""
    if text == "":
        return _("end of text")
    return text.replace("\n", "↵").replace("\t", "⇥")


def token_accessible_text(step: TokenStep) -> str:
    """``“ the”, 42 %, rank 1``: the token, its probability as a number, its rank."""
    value = probability(step.logprob.logprob) * 100
    shown = number(value, 0 if value >= 9.95 else 1)
    rank = token_rank(step)
    if rank is None:
        text = _("“{token}”, {probability} %, not among the listed alternatives").format(
            token=spoken_token(step.text), probability=shown)
    else:
        text = _("“{token}”, {probability} %, rank {rank}").format(
            token=spoken_token(step.text), probability=shown, rank=rank)
    return text + (_(", thinking") if step.thinking else "")


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
    give and :meth:`strike_from` takes. By keys: Left/Right/Home/End move a marker
    (:attr:`current`, a position among the drawn tokens) and Enter, Space or the Menu
    key emit :attr:`tokenClicked` for the marked token."""

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
        self.starts: list[int] = []  # each drawn token's first character
        self.current = -1  # the keyboard's token: a position among the drawn ones
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        a11y.describe(self, _("Tokens of the reply"),
                      _("Left and Right move from token to token; Enter opens the "
                        "alternatives to continue from."))
        theme.on_change(self, "document", TokenView.redraw)

    def set_steps(self, steps: Sequence[TokenStep], indices: Sequence[int] | None = None,
                  shown: Sequence[str] | None = None) -> None:
        """Draw these tokens afresh (a branch switched, the theme changed)."""
        self.steps, self.indices, self.shown, self._drawn = [], [], [], {}
        self.starts = []
        self.current = -1
        self._paragraph = 0
        self.struck_from = None
        self.document().clear()
        self.append_steps(steps, indices, shown)

    def redraw(self) -> None:
        struck, current = self.struck_from, self.current
        self.set_steps(list(self.steps), list(self.indices), list(self.shown))
        self.strike_from(struck)
        if 0 <= current < len(self.steps):
            self.current = current
            self._mark()

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
        start = self.starts[-1] + len(self.shown[-1]) if self.starts else 0
        for step, index, token_text in zip(steps, indices, texts, strict=True):
            text = self._break_long_paragraph(token_text)
            fmt = band_format(step.band)
            fmt.setProperty(INDEX_PROPERTY, index)
            fmt.setToolTip(token_tooltip(step))  # the number, without colour or hover code
            self._drawn[index] = len(self.steps)
            self.steps.append(step)
            self.indices.append(index)
            self.shown.append(text)
            self.starts.append(start)
            start += len(text)
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
        start = self.starts[position]
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

    # -- the keyboard

    def _token_cursor(self, position: int) -> QTextCursor:
        cursor = QTextCursor(self.document())
        start = self.starts[position]
        cursor.setPosition(start)
        cursor.setPosition(start + len(self.shown[position]), QTextCursor.MoveMode.KeepAnchor)
        return cursor

    def token_point(self, position: int) -> QPoint:
        """Where the token at ``position`` is drawn: the global point under its start."""
        cursor = self._token_cursor(position)
        cursor.clearSelection()
        cursor.setPosition(self.starts[position])
        return self.viewport().mapToGlobal(self.cursorRect(cursor).bottomLeft())

    def move_to(self, position: int) -> None:
        """Put the keyboard's marker on the token at ``position`` (among those drawn), say
        it to a screen reader and show its alternatives in a tooltip."""
        if not self.steps:
            return
        self.current = max(0, min(position, len(self.steps) - 1))
        self._mark()
        step = self.steps[self.current]
        spoken = token_accessible_text(step)
        self.setAccessibleDescription(spoken)
        a11y.announce(self, spoken)
        if self.hasFocus():
            QToolTip.showText(self.token_point(self.current), token_tooltip(step), self)

    def _mark(self) -> None:
        """Draw the marker: the token in the focus colour, inverted (its band's underline
        and the tooltip still say its probability)."""
        if not (0 <= self.current < len(self.steps)) or not self.hasFocus():
            self.setExtraSelections([])
            return
        selection = QTextEdit.ExtraSelection()
        selection.cursor = self._token_cursor(self.current)
        fmt = QTextCharFormat()
        fmt.setBackground(QColor(theme.focus_color()))
        fmt.setForeground(QColor(theme.background()))
        fmt.setFontUnderline(True)
        selection.format = fmt
        self.setExtraSelections([selection])
        cursor = self._token_cursor(self.current)
        cursor.clearSelection()
        self.setTextCursor(cursor)  # scrolls a fold that scrolls inside to the token
        self.ensureCursorVisible()

    def open_current(self) -> None:
        """Offer the marked token's alternatives (the branch menu), as a click would."""
        if 0 <= self.current < len(self.steps):
            self.tokenClicked.emit(self.indices[self.current], self.token_point(self.current))

    def focusInEvent(self, event: Any) -> None:
        super().focusInEvent(event)
        if self.steps:
            self.move_to(self.current if self.current >= 0 else 0)

    def focusOutEvent(self, event: Any) -> None:
        super().focusOutEvent(event)
        self.setExtraSelections([])

    def keyPressEvent(self, event: Any) -> None:
        key = event.key()
        plain = not (event.modifiers() & (Qt.KeyboardModifier.ControlModifier
                                          | Qt.KeyboardModifier.AltModifier
                                          | Qt.KeyboardModifier.ShiftModifier))
        if self.steps and plain:
            moves = {Qt.Key.Key_Right: self.current + 1, Qt.Key.Key_Left: self.current - 1,
                     Qt.Key.Key_Home: 0, Qt.Key.Key_End: len(self.steps) - 1}
            if key in moves:
                self.move_to(moves[key])
                event.accept()
                return
            if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Space,
                       Qt.Key.Key_Menu):
                if self.current < 0:
                    self.move_to(0)
                self.open_current()
                event.accept()
                return
        super().keyPressEvent(event)

    def contextMenuEvent(self, event: Any) -> None:
        if event.reason() == event.Reason.Keyboard and self.steps:  # Shift+F10, Menu key
            if self.current < 0:
                self.move_to(0)
            self.open_current()
            return
        super().contextMenuEvent(event)


def token_tooltip(step: TokenStep) -> str:
    """A token's alternatives, and what the marks in them mean when there are any."""
    text = step.describe()
    marks = any(mark in text for mark in "·↵⇥")
    return f"{text}\n({_(SYMBOLS_NOTE)})" if marks else text


def alternatives_menu(parent: QWidget, step: TokenStep, *, can_branch: bool) -> QMenu:
    """The alternatives of one token, most likely first; picking another one branches.
    An empty token (end of text) and the chosen one are listed but not offered."""
    menu = QMenu(parent)
    sampled = step.sampled_alternatives()
    a11y.describe(menu, _("Alternatives of this token"),
                  _("Pick one to continue the reply from it; Escape closes."))
    title = menu.addAction(step.headline() if sampled else _(
        "{token} — continue from another token:").format(token=step.headline()))
    title.setEnabled(False)
    marks = False
    sampled_heading = _(SAMPLED_HEADING)
    sections = [(_("{heading} (pick one to continue from it):").format(
                    heading=_(MODEL_HEADING).rstrip(":").rstrip()) if sampled else "",
                 step.alternatives())]
    if sampled:
        sections.append((sampled_heading, sampled))
    for heading, rows in sections:
        if heading:
            if not menu.isEmpty() and heading == sampled_heading:
                menu.addSeparator()
            menu.addAction(heading).setEnabled(False)
        for text, logprob, chosen in rows:
            shown = shown_token(text)
            marks = marks or (text != "" and shown != text)
            action = menu.addAction(f"{'▸ ' if chosen else '   '}{shown}   {percent(logprob)}")
            action.setData(text)
            action.setEnabled(can_branch and not chosen and text != "")
    if marks:
        menu.addAction(f"({_(SYMBOLS_NOTE)})").setEnabled(False)
    return menu


class TokenLegend(AutoHeightTextBrowser):
    """The key to the tints: each band's range, drawn with its tint and its underline (as
    the tokens are), so it reads without colour too."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # nothing to do here; read by name
        self.setTextInteractionFlags(Qt.TextInteractionFlag.NoTextInteraction)
        theme.set_font_scale(self, 0.85)
        theme.on_change(self, "document", TokenLegend.redraw)

    def redraw(self) -> None:
        document = self.document()
        document.clear()
        cursor = QTextCursor(document)
        muted = QTextCharFormat()
        muted.setForeground(QColor(theme.muted_fg()))
        cursor.insertText(_("Probability:") + " ", muted)
        for band in range(len(BAND_LABELS)):
            whole = band_range(band).replace(" ", "\u00a0")  # a band never breaks inside
            cursor.insertText("\u00a0" + whole + "\u00a0", band_format(band))
            cursor.insertText(" ", QTextCharFormat())
        cursor.insertText("\u00a0" + _("· = space").replace(" ", "\u00a0"), muted)
        self.setAccessibleName(_("Probability legend"))
        self.setAccessibleDescription(legend_text())

    def text(self) -> str:
        return self.toPlainText()


def legend_label() -> TokenLegend:
    label = TokenLegend()
    label.setToolTip(_(
        "Each token is tinted and underlined by the probability the model gave it (bands "
        "from {top} down: dotted, dashed, solid, wavy). Hover a token, or move to it with "
        "the arrow keys, for its alternatives; click it or press Enter to continue from "
        "another one. In the alternatives {symbols}: \"·the\" is \" the\", the word with "
        "the space before it, which is one token.").format(
            top=band_range(0), symbols=_(SYMBOLS_NOTE)))
    return label
