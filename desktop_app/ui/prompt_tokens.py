"""The exact text sent, as text or as the tokens the model read (a "Text | Tokens" switch).

A base model reads a document: a BOS its tokenizer adds, then plain words. A chat model
reads its template's special tokens (``<|im_start|>``, ``<start_of_turn>``, ``<think>``)
around the words. The Tokens view shows that split as the model process evaluated it
(:attr:`~desktop_app.engine.protocol.PromptSent.tokens`: nothing is tokenized here, the
window never waits on a tokenizer): each token on a background of its own (two subtle
tints, alternating, so the boundaries show), special tokens bold and underlined on a
third tint (the shape says it, not only the colour), its id and position on hover, and
the count. The strip is drawn only when Tokens is chosen.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QColor, QFont, QTextCharFormat, QTextCursor, QTextFormat
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QToolButton,
    QToolTip,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.protocol import PromptToken
from desktop_app.session.tokens import shown_token
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.ui import a11y, theme
from desktop_app.ui.widgets import AutoHeightTextBrowser, StreamTextView

INDEX_PROPERTY = int(QTextFormat.Property.UserProperty) + 2  # the token's position
# two alternating tints for plain tokens, one for special tokens; light and dark
TINTS_LIGHT = ("#DDE7F6", "#F6E7CF", "#DFCCF6")
TINTS_DARK = ("#283447", "#3D3526", "#4A3470")
KEY = N_("Bold, underlined: a special token. “·” is a space, ↵ a line break. Hover a token "
         "for its id.")
BREAK_OPPORTUNITY = "\u200b"  # zero width: where a long line may wrap
NO_TOKENS = N_("A model on a server splits the text with the server's own tokenizer: "
               "its tokens are not known here.")
TOKENS_TIP = N_("The same text as the model read it: its tokens, with their ids on hover")


def drawn(text: str) -> str:
    """A token's text as the strip draws it: blanks made visible, and each line break
    drawn as ↵ and then kept, so the strip is laid out as the text is."""
    if text == "":
        return "∅"
    return "↵\n".join(shown_token(line) if line else "" for line in text.split("\n"))


def count_text(tokens: Sequence[PromptToken]) -> str:
    """``38 tokens · 5 special``."""
    specials = sum(token.special for token in tokens)
    return ngettext("{n} token · {special} special", "{n} tokens · {special} special",
                    len(tokens)).format(n=f"{len(tokens):,}", special=f"{specials:,}")


def token_tip(tokens: Sequence[PromptToken], index: int, text: str) -> str:
    """What hovering a token says: its place, its id, and what a special token is."""
    token = tokens[index]
    lines = [_("Token {index} of {count} · id {id}").format(index=index + 1, count=len(tokens),
                                                           id=token.id), drawn(token.text)]
    if token.special and index == 0 and not text.startswith(token.text):
        lines.append(_("Special: added by the tokenizer before the text (the model's BOS)"))
    elif token.special:
        lines.append(_("Special: one token for this marker; the model never reads it as "
                       "letters"))
    return "\n".join(lines)


class TokenStrip(AutoHeightTextBrowser):
    """The prompt's tokens, one tinted run each; hover shows a token's id."""

    def __init__(self, parent: QWidget | None = None, *, max_height: int = 200):
        super().__init__(parent, max_height=max_height)
        self.tokens: tuple[PromptToken, ...] = ()
        self.text = ""
        self.setOpenLinks(False)
        self.setMouseTracking(True)
        self.viewport().setMouseTracking(True)
        self._hovered = -1
        a11y.describe(self, _("Tokens of the prompt"),
                      _("The text sent to the model, as the tokens it read"))
        theme.on_change(self, "document", TokenStrip.redraw)

    def set_tokens(self, tokens: Sequence[PromptToken], text: str) -> None:
        self.tokens, self.text = tuple(tokens), text
        self.redraw()

    def redraw(self) -> None:
        self.document().clear()
        tints = TINTS_DARK if theme.is_dark() else TINTS_LIGHT
        cursor = QTextCursor(self.document())
        between = QTextCharFormat()
        for index, token in enumerate(self.tokens):
            if index:  # a line may break between two tokens, not inside one
                cursor.insertText(BREAK_OPPORTUNITY, between)
            fmt = QTextCharFormat()
            fmt.setProperty(INDEX_PROPERTY, index)
            fmt.setToolTip(token_tip(self.tokens, index, self.text))
            if token.special:
                fmt.setBackground(QColor(tints[2]))
                fmt.setFontWeight(QFont.Weight.Bold)
                fmt.setFontUnderline(True)
            else:
                fmt.setBackground(QColor(tints[index % 2]))
            cursor.insertText(drawn(token.text), fmt)

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
        return value if isinstance(value, int) and 0 <= value < len(self.tokens) else -1

    def mouseMoveEvent(self, event: Any) -> None:
        index = self.index_at(event.position().toPoint())
        if index != self._hovered:
            self._hovered = index
            if index >= 0:
                QToolTip.showText(event.globalPosition().toPoint(),
                                  token_tip(self.tokens, index, self.text), self)
            else:
                QToolTip.hideText()
        super().mouseMoveEvent(event)


class PromptView(QWidget):
    """The exact text sent (``text_view``), or the same prompt as the model's tokens."""

    def __init__(self, text_view: StreamTextView, parent: QWidget | None = None):
        super().__init__(parent)
        self.text_view = text_view
        self.tokens: tuple[PromptToken, ...] = ()
        self.text = ""
        self.strip = TokenStrip()
        self.strip.setFont(text_view.font())
        self.strip.hide()

        self.text_button = self._switch(_("Text"), _("The exact text sent to the model"))
        self.tokens_button = self._switch(_("Tokens"), _(TOKENS_TIP))
        self.text_button.setChecked(True)
        group = QButtonGroup(self)
        group.setExclusive(True)
        group.addButton(self.text_button)
        group.addButton(self.tokens_button)
        self.tokens_button.toggled.connect(self._show_tokens)
        self.count = QLabel()
        self.count.setWordWrap(True)  # a narrow pane (a projector) wraps it, never widens
        self.count.setMinimumWidth(1)
        self.count.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        theme.style(self.count, lambda: f"color: {theme.muted_fg()};")
        a11y.describe(self.count, _("Token count"))
        theme.set_font_scale(self.count, 0.9)
        self.key = QLabel(_(KEY))
        self.key.setWordWrap(True)
        theme.style(self.key, lambda: f"color: {theme.muted_fg()};")
        theme.set_font_scale(self.key, 0.85)
        self.key.hide()

        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.setSpacing(2)
        row.addWidget(self.text_button)
        row.addWidget(self.tokens_button)
        row.addSpacing(8)
        row.addWidget(self.count, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(row)
        layout.addWidget(text_view)
        layout.addWidget(self.strip)
        layout.addWidget(self.key)

    def _switch(self, label: str, tip: str) -> QToolButton:
        button = QToolButton()
        button.setText(label)
        button.setToolTip(tip)
        button.setCheckable(True)
        button.setAutoRaise(True)
        theme.style(button, lambda: (
            f"QToolButton {{ padding: 1px 8px; border: 1px solid {theme.border_color()};"
            f" color: {theme.muted_fg()}; }}"
            f" QToolButton:checked {{ background: {theme.subtle_bg()}; font-weight: bold; }}"
            f" {theme.focus_rules('QToolButton')}"))
        a11y.describe(button, label, tip)
        return button

    @property
    def showing_tokens(self) -> bool:
        return self.tokens_button.isChecked()

    def set_prompt(self, text: str, tokens: Sequence[PromptToken]) -> None:
        """Show ``text``, and offer its tokens (none: the switch says why not)."""
        self.text, self.tokens = text, tuple(tokens)
        self.text_view.set_text(text)
        self.tokens_button.setEnabled(bool(self.tokens))
        self.tokens_button.setToolTip(_(TOKENS_TIP) if self.tokens else _(NO_TOKENS))
        self.count.setText(count_text(self.tokens) if self.tokens else "")
        if not self.tokens:
            self.text_button.setChecked(True)
        self._show_tokens(self.showing_tokens)

    def _show_tokens(self, on: bool) -> None:
        if on and (self.strip.tokens != self.tokens or self.strip.text != self.text):
            self.strip.set_tokens(self.tokens, self.text)  # drawn when first wanted
        self.strip.setVisible(on)
        self.key.setVisible(on)
        self.text_view.setVisible(not on)
