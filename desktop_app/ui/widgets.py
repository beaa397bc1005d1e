"""Small building blocks: badges, collapsible sections, the streaming text views."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import QEvent, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QKeyEvent, QTextCursor, QTextDocument, QTextOption
from PySide6.QtWidgets import (
    QAbstractScrollArea,
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLayout,
    QLayoutItem,
    QPlainTextEdit,
    QSizePolicy,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.session.turn import thinking_header
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.text.thinking import THINK_TAGS
from desktop_app.ui import a11y, theme

__all__ = ["AutoHeightTextBrowser", "CollapsibleSection", "ElidedLabel", "FlowLayout",
           "NarrowingBox", "RoleBadge", "StreamTextView", "ThinkingSection", "ViewHold",
           "follow_end", "thinking_header", "wrap_title"]


def follow_end(view: QAbstractScrollArea) -> None:
    """Keep a scrolling view at its end while the reader is there (a live stream), and
    leave it where it is once they scroll up to read."""
    bar = view.verticalScrollBar()
    following = [True]

    def scrolled(value: int) -> None:
        following[0] = value >= bar.maximum() - 2

    def grew(_minimum: int, maximum: int) -> None:
        if following[0]:
            bar.setValue(maximum)

    bar.valueChanged.connect(scrolled)
    bar.rangeChanged.connect(grew)


class ViewHold:
    """Keeps a scrolling view where a function puts it while its layout settles: text
    re-flowing after a zoom or presentation mode, a verdict appearing below the fold.
    The place is applied on the next pass of the event loop and again whenever the
    view's range changes, for :attr:`HOLD_MS`."""

    HOLD_MS = 400

    def __init__(self, view: QAbstractScrollArea):
        self.view = view
        self.place: Callable[[], object] | None = None
        self.timer = QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.setInterval(self.HOLD_MS)
        self.timer.timeout.connect(self.release)
        view.verticalScrollBar().rangeChanged.connect(lambda *_: self.apply())

    def hold(self, place: Callable[[], object]) -> None:
        self.place = place
        self.timer.start()
        QTimer.singleShot(0, self.view, self.apply)

    def apply(self) -> None:
        if self.place is not None:
            self.place()

    def release(self) -> None:
        self.place = None

    def reading_position(self, items: Sequence[QWidget]) -> Callable[[], object]:
        """What puts the view back where the reader is: at the end (the latest answer)
        if it is there, else at the same point of the same item (one of ``items``, the
        widgets in the view, top to bottom) at the top."""
        bar = self.view.verticalScrollBar()
        if bar.value() >= bar.maximum() - 8:
            return lambda: bar.setValue(bar.maximum())
        top = bar.value()
        item = next((w for w in items if w.geometry().bottom() >= top), None)
        if item is None:
            return lambda: None
        fraction = (top - item.y()) / max(1, item.height())
        return lambda: (bar.setValue(item.y() + round(fraction * item.height()))
                        if item in items else None)


class NarrowingBox(QWidget):
    """A row whose owner moves its widgets onto two rows when it is narrow (a pane's
    header at presentation sizes): its minimum width is that of the two rows, given by
    ``narrowest``, so a layout may make it that narrow."""

    def __init__(self, narrowest: Callable[[], int], parent: QWidget | None = None):
        super().__init__(parent)
        self._narrowest = narrowest

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(min(hint.width(), self._narrowest()), hint.height())


def scaled_height(widget: QWidget, height: int) -> int:
    """``height`` (pixels at the app's font size) scaled with the widget's zoom."""
    base = QApplication.font().pointSizeF()
    size = widget.font().pointSizeF()
    scale = size / base if base > 0 and size > 0 else 1.0
    return int(height * max(1.0, scale))


class FlowLayout(QLayout):
    """Left to right, wrapping onto the next line when the row is full: a row of
    buttons that fits a narrow pane at presentation sizes instead of being cut off."""

    def __init__(self, parent: QWidget | None = None, spacing: int = 4):
        super().__init__(parent)
        self._items: list[QLayoutItem] = []
        self.setContentsMargins(0, 0, 0, 0)
        self.setSpacing(spacing)

    def addItem(self, item: QLayoutItem) -> None:  # Qt API
        self._items.append(item)

    def count(self) -> int:
        return len(self._items)

    def itemAt(self, index: int) -> QLayoutItem | None:
        return self._items[index] if 0 <= index < len(self._items) else None

    def takeAt(self, index: int) -> QLayoutItem | None:
        return self._items.pop(index) if 0 <= index < len(self._items) else None

    def expandingDirections(self) -> Qt.Orientation:
        return Qt.Orientation(0)

    def hasHeightForWidth(self) -> bool:
        return True

    def heightForWidth(self, width: int) -> int:
        return self._arrange(QRect(0, 0, width, 0), move=False)

    def setGeometry(self, rect: QRect) -> None:
        super().setGeometry(rect)
        self._arrange(rect, move=True)

    def sizeHint(self) -> QSize:
        width = sum(item.sizeHint().width() + self.spacing() for item in self._visible())
        height = max((item.sizeHint().height() for item in self._visible()), default=0)
        return QSize(width, height)

    def minimumSize(self) -> QSize:
        size = QSize()
        for item in self._visible():
            size = size.expandedTo(item.minimumSize())
        margins = self.contentsMargins()
        return size + QSize(margins.left() + margins.right(), margins.top() + margins.bottom())

    def _visible(self) -> list[QLayoutItem]:
        return [item for item in self._items
                if (widget := item.widget()) is None or not widget.isHidden()]

    def _arrange(self, rect: QRect, *, move: bool) -> int:
        x, y, line_height = rect.x(), rect.y(), 0
        for item in self._visible():
            hint = item.sizeHint()
            if x + hint.width() > rect.right() + 1 and line_height > 0:
                x, y = rect.x(), y + line_height + self.spacing()
                line_height = 0
            if move:
                item.setGeometry(QRect(QPoint(x, y), hint))
            x += hint.width() + self.spacing()
            line_height = max(line_height, hint.height())
        return y + line_height - rect.y()


def wrap_title(title: str, fits: Callable[[str], bool]) -> str:
    """``title`` with line breaks at its `` · `` separators (then at spaces) where a line
    would not fit, so a narrow header shows all its words instead of eliding them."""
    if fits(title):
        return title
    lines: list[str] = []
    current = ""
    for part in title.split(" · "):
        candidate = f"{current} · {part}" if current else part
        if current and not fits(candidate):
            lines.append(current)
            current = part
        else:
            current = candidate
    lines.append(current)
    result: list[str] = []
    for line in lines:  # a part that alone is too long breaks at spaces
        words, current = line.split(" "), ""
        for word in words:
            candidate = f"{current} {word}" if current else word
            if current and not fits(candidate):
                result.append(current)
                current = word
            else:
                current = candidate
        result.append(current)
    return "\n".join(result)


class ElidedLabel(QLabel):
    """One line of rich text whose title is cut short with "…" to the width it is given.

    A long title (a GSM8K problem in the toolbar) gives way to the buttons beside it
    rather than widening the window past a projector's 1024 pixels; the whole title is
    the tooltip. ``render`` builds the line around the (escaped, maybe cut) title and
    reads the theme's colours, so it is drawn again on a light/dark switch."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(False)
        self._title = ""
        self._render: Callable[[str], str] = lambda title: title
        self._tip = ""  # always part of the tooltip (the whole title joins it when cut)
        self._widths: dict[str, float] = {}  # HTML -> its width in the current font
        theme.on_change(self, "text", ElidedLabel._fit)

    @property
    def title(self) -> str:
        return self._title

    def set_title(self, title: str, render: Callable[[str], str] | None = None, *,
                  tip: str = "") -> None:
        """Show ``render(title)`` (``render`` gets the title as HTML); "" shows nothing.
        ``tip``: the tooltip's line besides the whole title (e.g. a badge's long form)."""
        self._title = title
        self._tip = tip
        if render is not None:
            self._render = render
        self._widths.clear()
        self._fit()
        self.updateGeometry()

    def _html_width(self, html: str) -> float:
        if html not in self._widths:
            document = QTextDocument()
            document.setDefaultFont(self.font())
            document.setDocumentMargin(0)
            document.setHtml(html)
            self._widths[html] = document.idealWidth()
        return self._widths[html]

    def _line(self, shown: str) -> str:
        return self._render(escape.html(shown)) if self._title else ""

    def _fit(self) -> None:
        """The longest start of the title that fits (all of it while hidden: the width is
        not known yet)."""
        room = self.contentsRect().width() - 2
        title, shown = self._title, self._title
        if self.isVisible() and title and self._html_width(self._line(title)) > room:
            low, high = 0, len(title)  # the longest prefix that fits, by bisection
            while low < high:
                middle = (low + high + 1) // 2
                if self._html_width(self._line(title[:middle].rstrip() + "…")) <= room:
                    low = middle
                else:
                    high = middle - 1
            shown = title[:low].rstrip() + "…"
        html = self._line(shown)
        if self.text() != html:
            self.setText(html)
        self.setToolTip("\n".join(line for line in (title if shown != title else "",
                                                     self._tip) if line))

    def sizeHint(self) -> QSize:
        hint = super().sizeHint()
        return QSize(math.ceil(self._html_width(self._line(self._title))) + 4, hint.height())

    def minimumSizeHint(self) -> QSize:
        """Room for the line with its title cut to "…"."""
        hint = super().minimumSizeHint()
        width = math.ceil(self._html_width(self._line("…"))) + 4 if self._title else 0
        return QSize(width, hint.height())

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit()

    def showEvent(self, event: Any) -> None:
        super().showEvent(event)
        self._fit()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._widths.clear()
            self._fit()
            self.updateGeometry()


ROLE_TIPS = {
    "base": N_("Base model: pretrained only. It continues documents."),
    "instruct": N_("Instruct model: fine-tuned to answer as an assistant."),
    "reasoning": N_("Reasoning model: trained to think in {open}…{close} first."),
}
ROLE_NAMES = {"base": N_("Base model"), "instruct": N_("Instruct model"),
              "reasoning": N_("Reasoning model")}


class FoldButton(QToolButton):
    """A fold's header: Space (as any button) and Enter toggle it when it has focus."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not event.modifiers() & (
                Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier):
            self.click()
            event.accept()
            return
        super().keyPressEvent(event)


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
            " padding: 2px 8px; font-weight: 600;"
            + (" border: 2px solid white;" if theme.is_high_contrast() else "") + " }"))
        tip = _(ROLE_TIPS[role]).format(open=THINK_TAGS.open, close=THINK_TAGS.close) \
            if role in ROLE_TIPS else ""
        self.setToolTip(tip)
        name = _(ROLE_NAMES[role]) if role in ROLE_NAMES else self.text()
        a11y.describe(self, name, tip)


class AutoHeightTextBrowser(QTextBrowser):
    """A read-only rich-text view as tall as its document (the pane scrolls, not it), or,
    given ``max_height``, up to that height and then scrolling inside, following the end
    while the reader is there (a live stream in a fold)."""

    def __init__(self, parent: QWidget | None = None, *, max_height: int | None = None):
        super().__init__(parent)
        self._max_height = max_height
        self.setOpenExternalLinks(True)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff
                                        if max_height is None
                                        else Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        if max_height is not None:
            follow_end(self)
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
        if self._max_height is not None:
            height = min(height, scaled_height(self, self._max_height))
        if height != self.height():
            self.setFixedHeight(max(height, 18))

    def sizeHint(self) -> QSize:
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
        follow_end(self)

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
        return scaled_height(self, self._max_height)

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

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.document().blockCount() <= 30:
            self._fit_height()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self._fit_height()  # text that arrived while folded was measured at another width

    def changeEvent(self, event) -> None:
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
        self.header = FoldButton(self)
        self.header.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
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
            " border: 2px solid transparent; background: transparent; }"
            f" QToolButton:hover {{ background: {theme.subtle_bg()}; border-radius: 4px; }}"
            f" {theme.focus_rules('QToolButton')}"))
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
        self._title = title
        self._fit_title()

    @property
    def title(self) -> str:
        return self._title

    def _fit_title(self) -> None:
        """The title on as many lines as the width needs (a narrow pane, a big font)."""
        room = self.width() - 40  # the arrow and padding
        metrics = self.header.fontMetrics()
        text = self._title if room <= 0 or not self.isVisible() else wrap_title(
            self._title, lambda line: metrics.horizontalAdvance(line) <= room)
        if self.header.text() != text:
            self.header.setText(text)
            self.header.setToolTip(self._title if text != self._title else "")
        self.refresh_name()

    def accessible_header(self) -> str:
        """What a screen reader says for the header: its title and whether it is open."""
        state = _("unfolded") if self.expanded else _("folded")
        return _("{title}, {state}").format(title=self._title, state=state)

    def refresh_name(self) -> None:
        self.header.setAccessibleName(self.accessible_header())
        self.header.setAccessibleDescription(_("Space or Enter folds and unfolds it."))

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._fit_title()

    def changeEvent(self, event: Any) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.FontChange:
            self._fit_title()

    def set_expanded(self, expanded: bool) -> None:
        if self.header.isChecked() != expanded:
            self.header.setChecked(expanded)  # emits toggled -> _on_toggled

    def _on_toggled(self, expanded: bool, emit: bool = True) -> None:
        self.header.setArrowType(Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow)
        self.body.setVisible(expanded)
        self.refresh_name()
        if emit:
            self.toggled.emit(expanded)


class ThinkingSection(CollapsibleSection):
    """A reasoning model's thinking: open and live while it thinks, folded after.

    The fold holds the thinking as plain text (``view``) or, with token probabilities
    on, as tinted tokens (``token_view``, given by the caller): one fold, one header and
    one fold control either way; :meth:`show_tokens` picks the body."""

    THINKING_HEIGHT = 280  # pixels at the app's font size, then it scrolls inside

    def __init__(self, parent: QWidget | None = None, *,
                 token_view: AutoHeightTextBrowser | None = None):
        self.view = StreamTextView(max_height=self.THINKING_HEIGHT)
        self.token_view = token_view
        body = QWidget()
        stack = QVBoxLayout(body)
        stack.setContentsMargins(0, 0, 0, 0)
        stack.setSpacing(0)
        stack.addWidget(self.view)
        if token_view is not None:
            stack.addWidget(token_view)
            token_view.hide()
        self.token_count: Callable[[], int] | None = None  # the thinking's tokens, for its name
        self.owner = ""  # which pane it is in ("Reasoning pane"), said before its name
        super().__init__(_("Thinking…"), body, parent, expanded=True)
        a11y.describe(self.view, _("Thinking"))
        theme.style(self.view, lambda: (
            f"QPlainTextEdit {{ background: {theme.subtle_bg()}; color: {theme.muted_fg()};"
            f" border-left: 3px solid {theme.role_color('reasoning')}; padding: 4px; }}"))
        if token_view is not None:  # tinted tokens keep the text colour: muted grey on a
            theme.style(token_view, lambda: (  # strong tint would be hard to read
                f"QTextBrowser {{ background: {theme.subtle_bg()};"
                f" border-left: 3px solid {theme.role_color('reasoning')}; padding: 4px; }}"))
        # the reasoning pane's main feature: a header in the role's colour, not a grey line
        theme.style(self.header, lambda: (
            f"QToolButton {{ text-align: left; padding: 4px 6px; font-weight: 600;"
            f" color: {theme.role_text_color('reasoning')}; background: {theme.subtle_bg()};"
            f" border: 2px solid transparent; border-left: 3px solid"
            f" {theme.role_color('reasoning')}; border-radius: 0; }}"
            f" QToolButton:hover {{ background: {theme.border_color()}; }}"
            f" QToolButton:focus {{ border: 2px solid {theme.focus_color()};"
            f" border-left: 3px solid {theme.focus_color()}; }}"))
        self.live = False
        self.user_touched = False
        self.header.clicked.connect(self._touched)
        self.toggled.connect(self._on_unfold)

    def accessible_header(self) -> str:
        """``Thinking, 312 tokens, folded``: what it is, how long, whether it is open."""
        count = self.token_count() if self.token_count is not None else 0
        if self.expanded:
            name = ngettext("Thinking, {n} token, unfolded", "Thinking, {n} tokens, unfolded",
                            count).format(n=f"{count:,}")
        else:
            name = ngettext("Thinking, {n} token, folded", "Thinking, {n} tokens, folded",
                            count).format(n=f"{count:,}")
        return _("{pane}: {region}").format(pane=self.owner, region=name) if self.owner else name

    def refresh_name(self) -> None:
        super().refresh_name()
        self.header.setAccessibleDescription(
            _("{title}. Space or Enter folds and unfolds it.").format(title=self.title))

    @property
    def showing_tokens(self) -> bool:
        return self.token_view is not None and not self.token_view.isHidden()

    def show_tokens(self, tokens: bool) -> None:
        """Show the thinking as tinted tokens, or as plain text (the fold stays as it is)."""
        if self.token_view is None:
            return
        self.token_view.setVisible(tokens)
        self.view.setVisible(not tokens)

    def _touched(self) -> None:
        self.user_touched = True

    def _on_unfold(self, expanded: bool) -> None:
        if expanded and not self.live:  # finished thinking is read from its start
            shown = self.token_view if self.showing_tokens else self.view
            assert shown is not None
            shown.verticalScrollBar().setValue(0)

    def text(self) -> str:
        return self.view.raw_text()

    def append(self, text: str) -> None:
        self.view.append_text(text)

    def start_live(self, header: str = "") -> None:
        self.live = True
        self.show()
        self.set_expanded(True)
        self.set_title(header or _("Thinking…"))

    def fold(self, header: str, *, collapse: bool = True) -> None:
        """Thinking is over: show the summary header (the turn's
        :meth:`~desktop_app.session.turn.Turn.thinking_header`) and fold, unless the user
        opened it."""
        self.live = False
        self.set_title(header)
        if collapse:
            self.set_expanded(False)


class ButtonRows(QWidget):
    """Two groups of buttons, one on the left and one on the right of a row where they
    fit, else the right group under the left (the model manager at presentation sizes on
    a projector)."""

    def __init__(self, left: Sequence[QWidget], right: Sequence[QWidget]):
        super().__init__()
        self.left, self.right = QWidget(), QWidget()
        for group, buttons in ((self.left, left), (self.right, right)):
            row = QHBoxLayout(group)
            row.setContentsMargins(0, 0, 0, 0)
            for button in buttons:
                row.addWidget(button)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        self.top, self.bottom = QHBoxLayout(), QHBoxLayout()
        outer.addLayout(self.top)
        outer.addLayout(self.bottom)
        self.top.addWidget(self.left)
        self.top.addStretch(1)
        self.bottom.addStretch(1)
        self.stacked: bool | None = None
        self._arrange(one_row=True)

    def _needed(self) -> int:
        return (self.left.sizeHint().width() + self.right.sizeHint().width()
                + 2 * self.top.spacing())

    def _arrange(self, one_row: bool) -> None:
        if self.stacked is (not one_row):
            return
        self.stacked = not one_row
        (self.top if one_row else self.bottom).addWidget(self.right)

    def minimumSizeHint(self) -> QSize:
        hint = super().minimumSizeHint()
        return QSize(max(self.left.sizeHint().width(), self.right.sizeHint().width()),
                     hint.height())

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._arrange(one_row=self.width() >= self._needed())
