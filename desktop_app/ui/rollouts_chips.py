"""The Rollouts window's chips by keyboard: one tab stop for the whole grid (the current
chip), the arrow keys, Home and End to move between chips, Enter or Space to open one.

The grid is one stop in the Tab order, as a toolbar or a radio group is: with 64 chips, a
chip per Tab press would bury every control after them.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QToolButton


class ChipButton(QToolButton):
    """One rollout's chip. Enter opens it as Space and a click do; the arrow keys, Home and
    End ask the grid (``moved``) to focus another chip."""

    moved = Signal(int, object)  # this chip's index, the key pressed

    def __init__(self, index: int):
        super().__init__()
        self.index = index
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)  # the grid makes one a Tab stop

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.animateClick()
        elif key in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down,
                     Qt.Key.Key_Home, Qt.Key.Key_End):
            self.moved.emit(self.index, key)
        else:
            super().keyPressEvent(event)


class ChipFocus:
    """Which chip of a grid ``columns`` wide Tab lands on, and where a key moves the focus."""

    def __init__(self, columns: int):
        self.columns = columns
        self.chips: list[ChipButton] = []
        self.current = 0

    def reset(self, chips: list[ChipButton]) -> None:
        self.chips = chips
        self.current = 0
        if chips:
            self.set_current(0)

    def target(self, index: int, key: Qt.Key) -> int | None:
        """The chip a key on chip ``index`` leads to (None: past the grid's edge)."""
        last = len(self.chips) - 1
        steps = {Qt.Key.Key_Left: -1, Qt.Key.Key_Right: 1, Qt.Key.Key_Up: -self.columns,
                 Qt.Key.Key_Down: self.columns}
        if key == Qt.Key.Key_Home:
            return 0
        if key == Qt.Key.Key_End:
            return last
        target = index + steps.get(key, 0)
        return target if 0 <= target <= last else None

    def move(self, index: int, key: Qt.Key) -> None:
        target = self.target(index, key)
        if target is not None:
            self.focus(target)

    def focus(self, index: int) -> None:
        """Chip ``index`` takes the focus and becomes the Tab stop."""
        self.set_current(index)
        self.chips[index].setFocus(Qt.FocusReason.TabFocusReason)

    def set_current(self, index: int) -> None:
        """Chip ``index`` becomes the grid's Tab stop (an opened or clicked chip does)."""
        if not 0 <= index < len(self.chips):
            return
        if 0 <= self.current < len(self.chips) and self.current != index:
            self.chips[self.current].setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.current = index
        self.chips[index].setFocusPolicy(Qt.FocusPolicy.StrongFocus)
