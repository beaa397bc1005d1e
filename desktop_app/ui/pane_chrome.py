"""A pane's header (role badge, model picker, ⚙, ✕) and footer (status, Rollouts ×N, Stop,
Clear): the rows around its transcript.

Each row lays itself out on one line, or on two in a narrow pane (three panes on a 1024 px
projector), rather than shrinking the picker to "Gemm" or cutting the status short. The
pane owns what the buttons do; these widgets own how the rows fit.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from desktop_app.engine.protocol import FinishReason
from desktop_app.session.turn import Turn, TurnState
from desktop_app.text.i18n import N_, _
from desktop_app.ui import a11y, theme
from desktop_app.ui.pane_status import PaneStatus, footer_text
from desktop_app.ui.turn import muted
from desktop_app.ui.widgets import NarrowingBox, RoleBadge

ROLLOUTS_TIP = N_("Sample many answers to the last prompt; check each")
ROLE_PANES = {  # what a screen reader calls the pane ("Instruct pane: answer")
    "base": N_("Base pane"),
    "instruct": N_("Instruct pane"),
    "reasoning": N_("Reasoning pane"),
}
ANNOUNCED_CHARS = 300  # a finished answer is read out this long at most
SPACING = 6


def role_dot(role: str, ready: bool, size: int = 12) -> QIcon:
    """A role-coloured dot for the model picker: filled when the model is ready."""
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QColor(theme.role_color(role))
    if ready:
        painter.setBrush(color)
        painter.setPen(Qt.PenStyle.NoPen)
    else:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        pen = painter.pen()
        pen.setColor(color)
        pen.setWidth(2)
        painter.setPen(pen)
    painter.drawEllipse(2, 2, size - 4, size - 4)
    painter.end()
    return QIcon(pix)


def pane_frame(role: str, active: bool) -> str:
    """Role colour along the top; the active pane is framed in it all round, thickly
    enough to see from the back of a room."""
    color = theme.role_color(role)
    side = f"3px solid {color}" if active else f"1px solid {theme.border_color()}"
    return (f"QFrame#pane {{ background: palette(base); border: {side};"
            f" border-top: {6 if active else 4}px solid {color}; border-radius: 6px; }}")


class PaneHeader(NarrowingBox):
    """Badge, model picker, ⚙ and ✕ on one row; in a narrow pane the picker gets a row of
    its own."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(lambda: max(  # the picker on a row of its own
            self.badge.minimumSizeHint().width() + self.settings_button.sizeHint().width()
            + self.remove_button.sizeHint().width() + 2 * SPACING,
            self.picker.minimumSizeHint().width()), parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.grid.setHorizontalSpacing(SPACING)
        self.grid.setVerticalSpacing(4)
        self.narrow: bool | None = None
        self.badge = RoleBadge()
        self.badge.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        self.picker = QComboBox()
        self.picker.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.picker.setMinimumContentsLength(12)
        a11y.describe(self.picker, _("Model"), _("The model this pane runs"))
        self.picker.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.settings_button = QToolButton()
        self.settings_button.setText("⚙")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip(_("Settings for this pane"))
        a11y.describe(self.settings_button, _("Settings"), _("Settings for this pane"))
        self.settings_button.setAutoRaise(True)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip(_("Remove this pane"))
        a11y.describe(self.remove_button, _("Remove pane"), _("Remove this pane"))
        self.remove_button.setAutoRaise(True)
        self.arrange(narrow=False)

    def arrange(self, *, narrow: bool) -> None:
        if narrow == self.narrow:
            return
        self.narrow = narrow
        grid = self.grid
        for widget in (self.badge, self.picker, self.settings_button, self.remove_button):
            grid.removeWidget(widget)
        grid.addWidget(self.badge, 0, 0, Qt.AlignmentFlag.AlignLeft)
        grid.addWidget(self.settings_button, 0, 2)
        grid.addWidget(self.remove_button, 0, 3)
        if narrow:
            grid.addWidget(self.picker, 1, 0, 1, 4)
        else:
            grid.addWidget(self.picker, 0, 1)
        grid.setColumnStretch(1, 1)

    def fit(self) -> None:
        """Two rows when the model's whole name would not fit beside the buttons."""
        name_width = self.picker.fontMetrics().horizontalAdvance(self.picker.currentText())
        needed = (self.badge.sizeHint().width() + name_width + 60  # the dot and the arrow
                  + self.settings_button.sizeHint().width()
                  + self.remove_button.sizeHint().width() + 3 * SPACING)
        self.arrange(narrow=needed > self.width())

    def resizeEvent(self, event: Any) -> None:  # Qt's name
        super().resizeEvent(event)
        self.fit()


class PaneFooter(QWidget):
    """The pane's status (its words from :data:`FOOTER_LABELS`) and its buttons on one
    row; a narrow pane gives the status a row of its own."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.grid = QGridLayout(self)
        self.grid.setContentsMargins(0, 0, 0, 0)
        self.narrow: bool | None = None
        self.shown_status = PaneStatus.READY  # what the footer says, as state
        self._shown: tuple[PaneStatus, tuple[tuple[str, object], ...]] = (PaneStatus.READY, ())
        self.status = QLabel(footer_text(PaneStatus.READY, {}))
        self.status.setWordWrap(True)  # "Token limit reached" on two lines, not cut
        self.status.setMinimumWidth(1)
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        theme.style(self.status, muted)
        a11y.describe(self.status, _("Status"))
        self.stop_button = QPushButton(_("Stop"))
        self.stop_button.setEnabled(False)
        self.clear_button = QPushButton(_("Clear"))
        self.rollouts_button = QPushButton(_("Rollouts ×N"))
        self.rollouts_button.setToolTip(_(ROLLOUTS_TIP))
        self.arrange(narrow=False)

    @property
    def buttons(self) -> tuple[QPushButton, ...]:
        return (self.rollouts_button, self.stop_button, self.clear_button)

    def show_status(self, status: PaneStatus, figures: dict[str, object]) -> None:
        """Say ``status`` filled with ``figures``; the same status and figures are not
        drawn again."""
        shown = (status, tuple(sorted(figures.items())))
        self.shown_status = status
        if shown != self._shown:
            self._shown = shown
            self.status.setText(footer_text(status, figures))

    def arrange(self, *, narrow: bool) -> None:
        if narrow == self.narrow:
            return
        self.narrow = narrow
        for widget in (self.status, *self.buttons):
            self.grid.removeWidget(widget)
        self.grid.addWidget(self.status, 0, 0, 1, 4 if narrow else 1)
        for column, button in enumerate(self.buttons, start=1):
            self.grid.addWidget(button, int(narrow), column)
        self.grid.setColumnStretch(0, 1)

    def fit(self) -> None:
        """Narrow when the buttons leave less room than the longest usual status needs."""
        longest = footer_text(PaneStatus.FINISHED, {"finish": FinishReason.LENGTH})
        needed = self.status.fontMetrics().horizontalAdvance(longest) + 12 + sum(
            button.sizeHint().width() + SPACING for button in self.buttons)
        self.arrange(narrow=needed > self.width())

    def resizeEvent(self, event: Any) -> None:  # Qt's name
        super().resizeEvent(event)
        self.fit()


def name_pane(pane: Any, label: str) -> None:
    """Screen-reader names for a pane's regions, each saying which pane it belongs to
    ("Instruct pane: model"): three panes read alike otherwise."""
    named = {pane: label, pane.header: _("{pane}: header"), pane.picker: _("{pane}: model"),
             pane.settings_button: _("{pane}: settings"),
             pane.remove_button: _("{pane}: remove pane"),
             pane.scroll_area: _("{pane}: conversation"), pane.footer: _("{pane}: footer"),
             pane.status: _("{pane}: status"), pane.settings_box: _("{pane}: settings")}
    for widget, name in named.items():
        widget.setAccessibleName(name.format(pane=label))
    for button in pane.footer.buttons:  # "Stop" three times: the description says whose
        button.setAccessibleDescription(label)


def name_turn(widget: Any, label: str) -> None:
    """A reply's regions (a :class:`desktop_app.ui.turn.TurnWidget`): the thinking fold,
    the answer, the verdict and the metrics line, named after their pane."""
    widget.thinking.owner = label  # its name also says how long and whether it is open
    widget.thinking.refresh_name()
    named = {widget.thinking.view: _("{pane}: thinking text"),
             widget.thinking_token_view: _("{pane}: thinking tokens"),
             widget.answer: _("{pane}: answer"), widget.token_view: _("{pane}: answer tokens"),
             widget.verify_label: _("{pane}: verdict"), widget.metrics: _("{pane}: metrics")}
    for region, name in named.items():
        region.setAccessibleName(name.format(pane=label))
    widget.verify_button.setAccessibleDescription(
        _("Check this answer in the sandbox ({pane})").format(pane=label))


def pane_label(role: str, number: int | None = None) -> str:
    """What a screen reader calls a pane: "Instruct pane", or "Instruct pane 2" where
    another pane has the same role."""
    label = _(ROLE_PANES[role]) if role in ROLE_PANES else _("Pane")
    return _("{pane} {number}").format(pane=label, number=number) if number else label


def end_announcement(label: str, data: Turn, status: str) -> str:
    """What is said once when a reply ends: that it finished, and the answer's start (a
    few hundred characters); or that there is no answer, and why (the footer's words)."""
    if data.state != TurnState.DONE:
        return _("{pane}: no answer. {status}").format(pane=label, status=status)
    text = " ".join(data.answer.split())
    if len(text) > ANNOUNCED_CHARS:
        text = text[:ANNOUNCED_CHARS - 1] + "…"
    return " ".join(filter(None, (_("{pane}: answer finished.").format(pane=label), text)))
