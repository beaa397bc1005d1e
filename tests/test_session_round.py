"""The one comparison round (issue 26) that the window and ``triptych compare`` keep."""

from __future__ import annotations

from desktop_app.engine.protocol import GenerationResult
from desktop_app.session.round import Round


def test_a_round_ends_when_every_started_pane_has_finished() -> None:
    round_: Round[int] = Round()
    assert round_.done and round_.started == 0  # nothing started: nothing to wait for
    round_.start(0, "pane 1 (base)")
    round_.start(1, "pane 2 (instruct)")
    round_.finish(0, GenerationResult(model="base", role="base"))
    assert not round_.done
    round_.finish(1, GenerationResult(model="instruct", role="instruct", error="crashed"),
                  failure="The model's worker process was killed.")
    assert round_.done and not round_.ok
    assert round_.failure_lines() == ["pane 2 (instruct): The model's worker process was killed."]


def test_a_pane_that_never_finished_is_not_ok_and_a_dropped_one_does_not_count() -> None:
    round_: Round[str] = Round()
    round_.start("a", "a")
    round_.start("b", "b")
    round_.finish("a", GenerationResult(model="a", role="base"))
    assert not round_.done
    round_.drop("b")  # removed from the window mid-round
    assert round_.done and round_.ok
    stopped: Round[str] = Round()
    stopped.start("a", "a")
    stopped.start("b", "b")
    stopped.finish("a", GenerationResult(model="a", role="base"))
    stopped.pending.clear()  # Ctrl+C: the loop ended with b unfinished
    assert stopped.done and not stopped.ok
