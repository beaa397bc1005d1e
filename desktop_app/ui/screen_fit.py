"""The main window fits the screen it opens on: the first time, and when a size remembered
on a bigger monitor comes back on a smaller one (a laptop taken from its desk screen to a
1280×800 projector would otherwise hide the third pane and the prompt box)."""

from __future__ import annotations

from typing import NamedTuple

DEFAULT_SIZE = (1600, 900)
# Room the window manager's frame takes around the client area (title bar, borders):
# Qt knows it only once the window is shown, and the size must be right before that.
FRAME_ALLOWANCE = (16, 48)


class Rect(NamedTuple):
    x: int
    y: int
    width: int
    height: int


def fitted(wanted: Rect, available: Rect, allowance: tuple[int, int] = FRAME_ALLOWANCE,
           minimum: tuple[int, int] = (0, 0)) -> Rect:
    """``wanted`` (a client-area rectangle) made to fit ``available`` (the screen's area
    without panels and docks), frame included: shrunk where it is larger, then moved
    inside. A window that already fits is returned as it is."""
    room_w = max(minimum[0], available.width - allowance[0])
    room_h = max(minimum[1], available.height - allowance[1])
    width, height = min(wanted.width, room_w), min(wanted.height, room_h)
    left = available.x + allowance[0] // 2
    top = available.y + allowance[1] - allowance[0] // 2
    right = available.x + available.width - allowance[0] // 2
    bottom = available.y + available.height - allowance[0] // 2
    x = min(max(wanted.x, left), max(left, right - width))
    y = min(max(wanted.y, top), max(top, bottom - height))
    if width > right - left:  # held wider by its minimum size: the client area at least fits
        x = available.x + max(0, (available.width - width) // 2)
    if height > bottom - top:
        y = available.y + max(0, available.height - height)
    return Rect(x, y, width, height)


def centred(size: tuple[int, int], available: Rect,
            allowance: tuple[int, int] = FRAME_ALLOWANCE) -> Rect:
    """A first window: ``size`` or as much of it as fits, in the middle of the screen."""
    box = fitted(Rect(available.x, available.y, *size), available, allowance)
    x = available.x + (available.width - box.width) // 2
    y = available.y + (available.height - box.height + allowance[1] - allowance[0]) // 2
    return fitted(Rect(x, y, box.width, box.height), available, allowance)


def fit_window(window: object, remembered: bool) -> Rect:
    """Give ``window`` (a QWidget) its first geometry: the remembered one clamped to the
    screen it lands on, or the default size centred on the primary screen."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QWidget

    assert isinstance(window, QWidget)
    current = window.geometry()
    screen = (QGuiApplication.screenAt(current.center()) if remembered else None) \
        or window.screen() or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    available = Rect(area.x(), area.y(), area.width(), area.height())
    hint = window.minimumSizeHint()
    minimum = (min(hint.width(), available.width), min(hint.height(), available.height))
    if remembered:
        if window.isMaximized() or window.isFullScreen():
            return Rect(current.x(), current.y(), current.width(), current.height())
        box = fitted(Rect(current.x(), current.y(), current.width(), current.height()),
                     available, minimum=minimum)
    else:
        box = centred(DEFAULT_SIZE, available)
    window.setGeometry(QRect(*box))
    return box


def fit_dialog(dialog: object, size: tuple[int, int]) -> Rect:
    """Size a dialog or tool window (practice problems, rollouts) for its text, which
    follows the main window's zoom and presentation mode: ``size`` at the app's own font
    size, grown with the dialog's font, or as much of it as fits the screen."""
    from PySide6.QtGui import QGuiApplication
    from PySide6.QtWidgets import QApplication, QWidget

    assert isinstance(dialog, QWidget)
    base = QApplication.font().pointSizeF()
    scale = max(1.0, dialog.font().pointSizeF() / base) if base > 0 else 1.0
    parent = dialog.parentWidget()
    screen = (parent.screen() if parent is not None else None) or dialog.screen() \
        or QGuiApplication.primaryScreen()
    area = screen.availableGeometry()
    available = Rect(area.x(), area.y(), area.width(), area.height())
    current = dialog.geometry()
    box = fitted(Rect(current.x(), current.y(), round(size[0] * scale),
                      round(size[1] * scale)), available)
    if dialog.isVisible():
        dialog.move(box.x, box.y)
    dialog.resize(box.width, box.height)
    return box
