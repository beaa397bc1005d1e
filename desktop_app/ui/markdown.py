"""Markdown display helpers: one renderer, a small syntax highlighter, code-block styling.

While a reply streams it is shown as plain text; when the turn ends it is rendered once
with :func:`render_html` and its code blocks get a monospace, tinted format. The same
HTML goes into the export, so the window and the handout agree. What the model wrote is
kept: raw HTML in a reply is shown as text (``<em>`` is not italics, ``<script>`` does
not vanish), a single newline stays a line break, and unsafe link targets
(``javascript:``) are not made links. Which fenced blocks a reply has is
:mod:`desktop_app.text.fences`' job (one parser for "Copy code", Verify and export).
"""

from __future__ import annotations

from functools import lru_cache

from markdown_it import MarkdownIt
from PySide6.QtCore import QRegularExpression
from PySide6.QtGui import (
    QColor,
    QFont,
    QSyntaxHighlighter,
    QTextBlockFormat,
    QTextCharFormat,
    QTextCursor,
    QTextDocument,
    QTextFormat,
)

from desktop_app.ui import theme


@lru_cache(maxsize=1)
def _markdown() -> MarkdownIt:
    # html off: raw HTML is text; breaks on: a model's line breaks are kept
    return MarkdownIt("commonmark", {"html": False, "breaks": True}).enable(
        ["table", "strikethrough"])


def render_html(text: str) -> str:
    """A reply's Markdown as an HTML fragment: raw HTML escaped, hard line breaks kept,
    ``javascript:``-style links left as text, one ``<pre>`` per code block."""
    html = _markdown().render(text)
    return html.replace("\n</code></pre>", "</code></pre>").strip()  # no empty last lines


def is_code_block(block_format: QTextBlockFormat) -> bool:
    """A line of a code block (a ``<pre>`` from :func:`render_html`, or Qt's own fence)."""
    return (block_format.nonBreakableLines()
            or block_format.hasProperty(QTextFormat.Property.BlockCodeFence)
            or block_format.hasProperty(QTextFormat.Property.BlockCodeLanguage))


def style_code_blocks(document: QTextDocument, point_size: float | None = None) -> int:
    """Give every code block a monospace font and a tinted background; returns the count."""
    bg = theme.code_bg()
    mono = theme.mono_font(point_size)
    count = 0
    block = document.begin()
    cursor = QTextCursor(document)
    cursor.beginEditBlock()
    previous_code = False
    while block.isValid():
        fmt = block.blockFormat()
        if is_code_block(fmt):
            if not previous_code:
                count += 1
            fmt.setBackground(bg)
            fmt.setLeftMargin(6)
            fmt.setRightMargin(6)
            cursor.setPosition(block.position())
            cursor.setBlockFormat(fmt)
            cursor.setPosition(block.position() + max(0, block.length() - 1),
                               QTextCursor.MoveMode.KeepAnchor)
            char = QTextCharFormat()
            char.setFont(mono, QTextCharFormat.FontPropertiesInheritanceBehavior.FontPropertiesSpecifiedOnly)
            char.setFontFamilies(mono.families() or [mono.family()])
            char.setFontFixedPitch(True)
            cursor.mergeCharFormat(char)
            previous_code = True
        else:
            previous_code = False
        block = block.next()
    cursor.endEditBlock()
    return count


CODE_COLOURS = {"keyword": ("#7B1FA2", "#C792EA"), "number": ("#B45309", "#F78C6C"),
                "string": ("#2E7D32", "#C3E88D"), "comment": ("#6B7280", "#7F8C98")}
CODE_COLOURS_HIGH = {"keyword": ("#5A0F8A", "#E0B0FF"), "number": ("#7A3A00", "#FFB080"),
                     "string": ("#1B5E20", "#B8F08A"), "comment": ("#404040", "#C8C8C8")}
_KEYWORDS = ["and", "as", "assert", "async", "await", "break", "case", "class", "const", "continue", "def", "del", "elif", "else", "enum", "except", "export", "extends", "false", "False", "finally", "fn", "for", "from", "func", "function", "if", "impl", "import", "in", "interface", "is", "lambda", "let", "match", "mut", "None", "nonlocal", "not", "null", "or", "pass", "pub", "raise", "return", "self", "static", "struct", "switch", "this", "throw", "true", "True", "try", "type", "use", "var", "void", "while", "with", "yield"]


class CodeHighlighter(QSyntaxHighlighter):
    """Light, language-agnostic highlighting applied only inside Markdown code blocks."""

    def __init__(self, document: QTextDocument):
        super().__init__(document)
        self._rules: list[tuple[QRegularExpression, QTextCharFormat]] = []
        self._build()

    def _fmt(self, color: str, bold: bool = False, italic: bool = False) -> QTextCharFormat:
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(color))
        if bold:
            fmt.setFontWeight(QFont.Weight.Bold)
        fmt.setFontItalic(italic)
        return fmt

    def _build(self) -> None:
        dark = theme.is_dark()
        # (light, dark); high contrast: 7:1 or more on pure white or black
        colours = CODE_COLOURS_HIGH if theme.is_high_contrast() else CODE_COLOURS
        pick = {name: pair[1] if dark else pair[0] for name, pair in colours.items()}
        kw = self._fmt(pick["keyword"], bold=True)
        num = self._fmt(pick["number"])
        string = self._fmt(pick["string"])
        comment = self._fmt(pick["comment"], italic=True)
        self._rules = [
            (QRegularExpression(r"\b(" + "|".join(_KEYWORDS) + r")\b"), kw),
            (QRegularExpression(r"\b[0-9]+(\.[0-9]+)?\b"), num),
            (QRegularExpression(r"\"[^\"\\]*(\\.[^\"\\]*)*\"|'[^'\\]*(\\.[^'\\]*)*'"), string),
            (QRegularExpression(r"(#|//).*$"), comment),
        ]

    def retheme(self) -> None:
        """Colours for the current light/dark scheme (the next highlight uses them)."""
        self._build()

    def highlightBlock(self, text: str) -> None:  # Qt API
        if not is_code_block(self.currentBlock().blockFormat()):
            return
        for pattern, fmt in self._rules:
            it = pattern.globalMatch(text)
            while it.hasNext():
                match = it.next()
                self.setFormat(match.capturedStart(), match.capturedLength(), fmt)
