"""Markers in streamed text: where the first one is, and how much of the tail to hold back.

Tokens split markers (``</th`` + ``ink>``, a stop sequence over three tokens), so a stream
may release text only up to the longest tail that could still become one. The thinking
splitter and the stop-sequence matcher both stream this way; this is the one
implementation they share.
"""

from __future__ import annotations

from collections.abc import Iterable


def first_marker(text: str, markers: Iterable[str]) -> tuple[int, str]:
    """``(index, marker)`` of the earliest marker in ``text``, or ``(-1, "")``."""
    best_index, best_marker = -1, ""
    for marker in markers:
        index = text.find(marker) if marker else -1
        if index != -1 and (best_index == -1 or index < best_index):
            best_index, best_marker = index, marker
    return best_index, best_marker


def partial_marker_length(text: str, markers: Iterable[str]) -> int:
    """Length of the longest tail of ``text`` that is the start of some marker: the part
    a stream must hold back until the next chunk says whether the marker completes."""
    longest = 0
    for marker in markers:
        for size in range(min(len(marker) - 1, len(text)), longest, -1):
            if text.endswith(marker[:size]):
                longest = size
                break
    return longest


class StopMatcher:
    """Finds stop sequences in streamed text, holding back only a possible partial match."""

    def __init__(self, stops: tuple[str, ...]):
        self.stops = tuple(s for s in stops if s)
        self._held = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Return ``(text safe to show, stopped)``."""
        if not self.stops:
            return text, False
        buffer = self._held + text
        first, _ = first_marker(buffer, self.stops)
        if first != -1:
            self._held = ""
            return buffer[:first], True
        hold = partial_marker_length(buffer, self.stops)
        self._held = buffer[len(buffer) - hold:] if hold else ""
        return (buffer[: len(buffer) - hold] if hold else buffer), False

    def flush(self) -> str:
        held, self._held = self._held, ""
        return held
