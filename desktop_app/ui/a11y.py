"""What a screen reader hears: names, descriptions and polite announcements.

Qt exposes every widget through ``QAccessible`` (AT-SPI on Linux, UI Automation on
Windows, NSAccessibility on macOS). A button's text becomes its name, but a ⚙ or ✕ button,
a text box, a chart or a list has no words of its own: :func:`describe` gives it some.
:class:`Announcer` speaks what changes without focus (a finished answer, a verdict) as a
*polite* announcement, at most one per interval and the latest one winning, so a screen
reader is never flooded token by token.
"""

from __future__ import annotations

import time
from typing import TypeVar

import shiboken6
from PySide6.QtCore import QObject, QTimer
from PySide6.QtGui import QAccessible, QAccessibleAnnouncementEvent
from PySide6.QtWidgets import QWidget

W = TypeVar("W", bound=QWidget)


def describe(widget: W, name: str, description: str = "") -> W:
    """Give ``widget`` an accessible name (what it is, in a few words) and, optionally, a
    description (what it does or shows); returns it, to wrap a constructor call."""
    widget.setAccessibleName(name)
    if description:
        widget.setAccessibleDescription(description)
    return widget


def announce(widget: QWidget, text: str, *, assertive: bool = False) -> None:
    """Ask the screen reader to say ``text`` on ``widget``'s behalf, politely (after what
    it is saying) unless ``assertive``."""
    if not text or not shiboken6.isValid(widget):
        return
    event = QAccessibleAnnouncementEvent(widget, text)
    event.setPoliteness(QAccessible.AnnouncementPoliteness.Assertive if assertive
                        else QAccessible.AnnouncementPoliteness.Polite)
    QAccessible.updateAccessibility(event)


class Announcer(QObject):
    """Polite announcements for one widget, rate-limited: a message that arrives within
    ``interval_s`` of the last one waits, and only the latest waiting one is said."""

    def __init__(self, widget: QWidget, interval_s: float = 2.0):
        super().__init__(widget)
        self._widget = widget
        self._interval = interval_s
        self._last = -interval_s
        self._pending = ""
        self.said: list[str] = []  # what was announced, for tests and the curious
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._flush)

    def say(self, text: str) -> None:
        self._pending = text
        wait = self._last + self._interval - time.monotonic()
        if wait <= 0:
            self._flush()
        elif not self._timer.isActive():
            self._timer.start(int(wait * 1000) + 1)

    def _flush(self) -> None:
        text, self._pending = self._pending, ""
        if not text:
            return
        self._last = time.monotonic()
        self.said.append(text)
        announce(self._widget, text)
