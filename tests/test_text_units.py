"""Sizes and durations: one convention (decimal units), rounding at the unit boundaries."""

from __future__ import annotations

import math

import pytest

from desktop_app.text.units import format_bytes, format_duration


@pytest.mark.parametrize(("n", "text"), [
    (0, "0 B"),
    (999, "999 B"),
    (999.6, "1.0 kB"),
    (1000, "1.0 kB"),
    (1536, "1.5 kB"),
    (12_345, "12 kB"),
    (999_499, "999 kB"),
    (999_600, "1.0 MB"),
    (6_300_000, "6.3 MB"),
    (9_960_000, "10 MB"),
    (253_000_000, "253 MB"),
    (999_960_000, "1.0 GB"),
    (1_200_000_000, "1.2 GB"),
    (4_683_073_888, "4.7 GB"),
    (14e9, "14 GB"),
    (999.96e9, "1.0 TB"),
    (1.5e12, "1.5 TB"),
    (2.5e15, "2500 TB"),
    (-2048, "-2.0 kB"),
])
def test_format_bytes(n, text):
    assert format_bytes(n) == text


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, "12", True])
def test_format_bytes_rejects_what_is_not_a_count(bad):
    with pytest.raises(ValueError, match="not a byte count"):
        format_bytes(bad)


@pytest.mark.parametrize(("seconds", "text"), [
    (0, "<1 s"),
    (0.49, "<1 s"),
    (0.5, "1 s"),
    (-3, "<1 s"),
    (14, "14 s"),
    (14.4, "14 s"),
    (59.5, "1 min 00 s"),
    (125, "2 min 05 s"),
    (3599.4, "59 min 59 s"),
    (3599.5, "1 h 00 min"),
    (3720, "1 h 02 min"),
    (math.inf, "forever"),
])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


def test_format_duration_rejects_nan():
    with pytest.raises(ValueError, match="not a duration"):
        format_duration(math.nan)


def test_counts_say_one_thing_or_many():
    from desktop_app.text.units import count

    assert [count(1, "pane"), count(3, "pane"), count(0, "vote")] == ["1 pane", "3 panes", "0 votes"]
    assert count(2, "process", "processes") == "2 processes"
