"""Byte sizes and durations as people read them, one convention everywhere.

Sizes use decimal (SI) units, as disk vendors, download pages and the Hub do: a file the
Hub lists as 4.68 GB shows as "4.7 GB" here, never as "4.4 GB" in one window and
"4681 MB" in another.
"""

from __future__ import annotations

import math

# (unit, bytes, decimals), largest first.
_UNITS = (("TB", 1e12, 1), ("GB", 1e9, 1), ("MB", 1e6, 0), ("kB", 1e3, 0), ("B", 1, 0))


def format_bytes(n: float) -> str:
    """``512 B``, ``12 kB``, ``253 MB``, ``1.2 GB``, ``14.0 GB``, ``1.5 TB``.

    Below a gigabyte the whole number is precise enough; from a gigabyte on, one decimal.
    Rounding never shows ``1000 MB``: that is ``1.0 GB``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, float)) or not math.isfinite(n):
        raise ValueError(f"not a byte count: {n!r}")
    if n < 0:
        return "-" + format_bytes(-n)
    index = next((i for i, (_, scale, _) in enumerate(_UNITS) if n >= scale), len(_UNITS) - 1)
    unit, scale, decimals = _UNITS[index]
    if round(n / scale, decimals) >= 1000 and index > 0:  # 999.96 MB shows as 1.0 GB
        unit, scale, decimals = _UNITS[index - 1]
    return f"{n / scale:.{decimals}f} {unit}"


def format_duration(seconds: float) -> str:
    """``<1 s``, ``14 s``, ``2 min 05 s``, ``1 h 02 min`` (rounded to the nearest second)."""
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or math.isnan(seconds):
        raise ValueError(f"not a duration: {seconds!r}")
    if math.isinf(seconds):
        return "forever" if seconds > 0 else "<1 s"
    whole = math.floor(seconds + 0.5)
    if whole < 1:
        return "<1 s"
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"
