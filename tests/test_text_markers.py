"""The one hold-back (issue 26): markers split across chunks, for stop sequences and
thinking markers alike."""

from __future__ import annotations

import pytest

from desktop_app.text.markers import StopMatcher, first_marker, partial_marker_length
from desktop_app.text.thinking import ThinkingSplitter


def test_first_marker_is_the_earliest_of_several() -> None:
    assert first_marker("a </think> b <|end|>", ["<|end|>", "</think>"]) == (2, "</think>")
    assert first_marker("nothing here", ["</think>", ""]) == (-1, "")


@pytest.mark.parametrize(("text", "held"), [
    ("answer </th", 4), ("answer <", 1), ("answer", 0), ("</think", 7), ("<|en", 4),
])
def test_only_a_possible_start_of_a_marker_is_held(text: str, held: int) -> None:
    assert partial_marker_length(text, ["</think>", "<|end|>"]) == held


def test_stop_sequence_split_over_tokens_is_cut_and_nothing_after_it_shows() -> None:
    matcher = StopMatcher(("\nUser:", ""))
    shown = []
    for chunk in ["Paris.", "\nUs", "er", ": and", " more"]:
        text, stopped = matcher.feed(chunk)
        shown.append(text)
        if stopped:
            break
    assert "".join(shown) == "Paris." and stopped


def test_a_near_miss_is_released_once_it_cannot_be_the_stop() -> None:
    matcher = StopMatcher(("\nUser:",))
    assert matcher.feed("one\nUs") == ("one", False)
    assert matcher.feed("ually two") == ("\nUsually two", False)
    assert matcher.feed("\nU") == ("", False)
    assert matcher.flush() == "\nU"


def test_splitter_and_stop_matcher_hold_back_alike() -> None:
    """A thinking marker split across every possible pair of chunks comes out whole."""
    reply = "<think>plan</think>The answer."
    for cut in range(1, len(reply)):
        splitter = ThinkingSplitter("think-tags")
        segments = splitter.feed(reply[:cut]) + splitter.feed(reply[cut:]) + splitter.finish()
        thinking = "".join(t for kind, t in segments if kind == "thinking")
        answer = "".join(t for kind, t in segments if kind == "answer")
        assert (thinking, answer) == ("plan", "The answer."), cut
