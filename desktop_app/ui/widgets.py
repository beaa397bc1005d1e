"""Small building blocks: badges, collapsible sections, the streaming text views."""

from __future__ import annotations

import math

from PySide6.QtCore import QEvent, QSize, Qt, Signal
from PySide6.QtGui import QTextCursor, QTextOption
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QLabel,
    QPlainTextEdit,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.conversation import thinking_header
from desktop_app.ui import theme

__all__ = ["AutoHeightTextBrowser", "CollapsibleSection", "RoleBadge", "StreamTextView",
           "ThinkingSection", "thinking_header"]


class RoleBadge(QLabel):
    """A coloured pill: BASE / INSTRUCT / REASONING."""

    def __init__(self, role: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        theme.set_font_scale(self, 0.9)
        self.set_role(role)

    def set_role(self, role: str) -> None:
        self.role = role
        self.setText(theme.ROLE_LABELS.get(role, role.upper() or "—"))
        theme.style(self, lambda: (
            f"QLabel {{ background: {theme.role_color(role)}; color: white; border-radius: 8px;"
            " padding: 2px 8px; font-weight: 600; }"))
        self.setToolTip({
            "base": "Base model: pretrained only. It continues documents.",
            "instruct": "Instruct model: fine-tuned to answer as an assistant.",
            "reasoning": "Reasoning model: trained to think in <think>…</think> first.",
        }.get(role, ""))


class AutoHeightTextBrowser(QTextBrowser):
    """A read-only rich-text view as tall as its document (the pane scrolls, not it)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setOpenExternalLinks(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setWordWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.viewport().setAutoFillBackground(False)
        theme.style(self, lambda: "QTextBrowser { background: transparent; }")
        self.document().setDocumentMargin(2)
        self.document().documentLayout().documentSizeChanged.connect(self._fit)
        self._fit()

    def _fit(self, *_: object) -> None:
        height = math.ceil(self.document().size().height()) + 2 * self.frameWidth() + 2
        if height != self.height():
            self.setFixedHeight(max(height, 18))

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self.height())

    def append_text(self, text: str) -> None:
        """Append plain text at the end without touching what is already there."""
        cursor = QTextCursor(self.document())
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)


class StreamTextView(QPlainTextEdit):
    """Append-only plain text (thinking, prompts): cost per append is flat."""

    def __init__(self, parent: QWidget | None = None, *, max_height: int = 260):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setMaximumHeight(max_height)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setLineWrapMode(QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                     | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self._max_height = max_height
        self._raw: list[str] = []
        self._follow = True
        self.verticalScrollBar().valueChanged.connect(self._on_scroll)
        self.verticalScrollBar().rangeChanged.connect(self._on_range)

    def _on_scroll(self, value: int) -> None:
        bar = self.verticalScrollBar()
        self._follow = value >= bar.maximum() - 2

    def _on_range(self, _min: int, maximum: int) -> None:
        if self._follow:
            self.verticalScrollBar().setValue(maximum)

    # Qt lays out a paragraph as a whole, so appending to one ever-growing paragraph costs
    # O(its length). Past this many characters the display starts a new paragraph at the
    # next blank, which keeps every append O(1); raw_text() keeps the exact text.
    LONG_PARAGRAPH = 1200

    def append_text(self, text: str) -> None:
        self._raw.append(text)
        document = self.document()
        if "\n" not in text and document.lastBlock().length() + len(text) > self.LONG_PARAGRAPH:
            blank = next((i for i, ch in enumerate(text) if ch in " \t"), -1)
            if blank != -1:
                text = text[:blank] + "\n" + text[blank + 1:]
        cursor = QTextCursor(document)
        cursor.movePosition(QTextCursor.MoveOperation.End)
        cursor.insertText(text)
        self._fit_height()

    def set_text(self, text: str) -> None:
        self._raw = [text]
        self.setPlainText(text)
        self._fit_height()

    def raw_text(self) -> str:
        """Exactly the text appended (the display may break very long paragraphs)."""
        joined = "".join(self._raw)
        self._raw = [joined]
        return joined

    def max_view_height(self) -> int:
        """``max_height`` at the app's font size, scaled with the zoom."""
        base = QApplication.font().pointSizeF()
        size = self.font().pointSizeF()
        scale = size / base if base > 0 and size > 0 else 1.0
        return int(self._max_height * max(1.0, scale))

    def content_height(self) -> int:
        """Pixel height of the wrapped text (blocks are laid out on demand)."""
        document = self.document()
        block = document.begin()
        height = 0.0
        while block.isValid():
            height += self.blockBoundingRect(block).height()
            block = block.next()
        return math.ceil(height + 2 * document.documentMargin())

    def _fit_height(self) -> None:
        # Grow with short content up to max_height, then scroll inside.
        cap = self.max_view_height()
        chrome = max(0, self.height() - self.viewport().height())
        if self.document().blockCount() > 30:
            wanted = cap
        else:
            wanted = min(cap, self.content_height() + chrome)
        wanted = max(wanted, self.fontMetrics().lineSpacing() + chrome + 4)
        if self.height() != wanted or self.minimumHeight() != wanted:
            self.setFixedHeight(wanted)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if self.document().blockCount() <= 30:
            self._fit_height()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._fit_height()  # text that arrived while folded was measured at another width

    def changeEvent(self, event) -> None:  # noqa: N802
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_height()


class CollapsibleSection(QWidget):
    """A header button with an arrow that shows or hides a body widget."""

    toggled = Signal(bool)

    def __init__(self, title: str, body: QWidget, parent: QWidget | None = None,
                 *, expanded: bool = False):
        super().__init__(parent)
        self.body = body
        self.header = QToolButton(self)
        self.header.setCheckable(True)
        self.header.setChecked(expanded)
        self.header.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.header.setAutoRaise(True)
        self.header.setCursor(Qt.CursorShape.PointingHandCursor)
        # Ignored: a long title is clipped rather than widening the pane's transcript past
        # its viewport (which happens at presentation-mode font sizes)
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        # checked = expanded: no sunken "pressed" look, just the arrow turning
        theme.style(self.header, lambda: (
            f"QToolButton {{ text-align: left; padding: 2px 4px; color: {theme.muted_fg()};"
            " border: none; background: transparent; }"
            f" QToolButton:hover {{ background: {theme.subtle_bg()}; border-radius: 4px; }}"))
        self.header.toggled.connect(self._on_toggled)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.header)
        layout.addWidget(body)
        self.set_title(title)
        self._on_toggled(expanded, emit=False)

    @property
    def expanded(self) -> bool:
        return self.header.isChecked()

    def set_title(self, title: str) -> None:
        self.header.setText(title)

    def set_expanded(self, expanded: bool) -> None:
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # emits toggled -> _on_toggled

    def _on_toggled(self, expanded: bool, emit: bool = True) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
        if emit:
            self.toggled.emit(expanded)


class ThinkingSection(CollapsibleSection):
    """A reasoning model's thinking: open and live while it thinks, folded after."""

    def __init__(self, parent: QWidget | None = None):
        self.view = StreamTextView(max_height=280)
        super().__init__("Thinking…", self.view, parent, expanded=True)
        theme.style(self.view, lambda: (
            f"QPlainTextEdit {{ background: {theme.subtle_bg()}; color: {theme.muted_fg()};"
            f" border-left: 3px solid {theme.role_color('reasoning')}; padding: 4px; }}"))
        # the reasoning pane's main feature: a header in the role's colour, not a grey line
        theme.style(self.header, lambda: (
            f"QToolButton {{ text-align: left; padding: 4px 6px; font-weight: 600;"
            f" color: {theme.role_color('reasoning')}; background: {theme.subtle_bg()};"
            f" border: none; border-left: 3px solid {theme.role_color('reasoning')};"
            " border-radius: 0; }"
            f" QToolButton:hover {{ background: {theme.border_color()}; }}"))
        self.live = False
        self.user_touched = False
        self.header.clicked.connect(self._touched)
        self.toggled.connect(self._on_unfold)

    def _touched(self) -> None:
        self.user_touched = True

    def _on_unfold(self, expanded: bool) -> None:
        if expanded and not self.live:  # finished thinking is read from its start
            self.view.verticalScrollBar().setValue(0)

    def text(self) -> str:
        return self.view.raw_text()

    def append(self, text: str) -> None:
        self.view.append_text(text)

    def start_live(self, header: str = "Thinking…") -> None:
        self.live = True
        self.show()
        self.set_expanded(True)
        self.set_title(header)

    def fold(self, header: str, *, collapse: bool = True) -> None:
        """Thinking is over: show the summary header (the turn's
        :meth:`~desktop_app.conversation.Turn.thinking_header`) and fold, unless the user
        opened it."""
        self.live = False
        self.set_title(header)
        if collapse:
            self.set_expanded(False)
