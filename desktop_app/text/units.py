"""Byte sizes and durations as people read them, one convention everywhere.

Sizes use decimal (SI) units, as disk vendors, download pages and the Hub do: a file the
Hub lists as 4.68 GB shows as "4.7 GB" everywhere, never as "4.4 GB" in one window and
"4681 MB" in another.
"""

from __future__ import annotations

import math

from desktop_app.text.i18n import N_, _, number

# The unit symbols are translated too: French writes octets (Mo, Go).
_UNITS = ((N_("B"), 1), (N_("kB"), 1e3), (N_("MB"), 1e6), (N_("GB"), 1e9), (N_("TB"), 1e12))


def format_bytes(n: float) -> str:
    """``512 B``, ``1.5 kB``, ``6.3 MB``, ``253 MB``, ``1.2 GB``, ``14 GB``, ``1.5 TB``.

    Two or three significant digits, like ``ls -h``: one decimal below ten, whole
    numbers above. Rounding never shows ``1000 MB``: that is ``1.0 GB``. In the window's
    language: ``1,5 Go`` in French.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        raise ValueError(f"not a byte count: {n!r}")
    if n < 0:
        return "-" + format_bytes(-n)
    for unit, scale in _UNITS:
        value = n / scale
        decimals = 1 if value < 9.95 and unit != "B" else 0
        if round(value, decimals) < 1000 or unit == _UNITS[-1][0]:
            return f"{number(value, decimals)} {_(unit)}"
    raise AssertionError("unreachable")  # the last unit always returns


def format_duration(seconds: float) -> str:
    """``<1 s``, ``14 s``, ``2 min 05 s``, ``1 h 02 min`` (rounded to the nearest second)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        raise ValueError(f"not a duration: {seconds!r}")
    if math.isinf(seconds):
        return _("forever") if seconds > 0 else "<1 s"
    whole = math.floor(seconds + 0.5)
    if whole < 1:
        return "<1 s"
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def count(n: int, noun: str, plural: str | None = None) -> str:
    """``1 pane``, ``3 panes``, ``2 answers``: never "pane(s)". English only, for the
    command line: the window writes a counted phrase with ``ngettext`` (its plural rules
    are the language's), e.g. ``ngettext("{n} pane", "{n} panes", n).format(n=n)``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"
