"""Continue resumes a reply the token limit cut off, token for token: the exact prompt plus
the reply so far goes back raw, the new text joins the same turn, figures add up. The
session and the window on the scripted fake engine (fast); real llama.cpp on the base
starter and on a scripted reasoning GGUF (slow)."""

from __future__ import annotations

import time

import pytest

from desktop_app.conversation import PaneConfig, PaneSession, TurnState, wait_for_closing
from desktop_app.protocol import (
    Delta,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    PromptSent,
    TokenLogprob,
)
from desktop_app.tokens import TokenStep, can_resume, reply_as_written
from tests.fake_engine import WAIT_FOR_STOP, FakeEngine, fake_catalog

PROMPT = "<|user|>What is half of 40?<|end|><|assistant|>"
WRITTEN = "<think>\nHalf of 40: 40 / "  # as the model wrote it: the tag and its blank too


def cut_in_thinking(request: GenerationRequest) -> list:
    """A reasoning reply cut by the token limit inside its thinking, as the engine sends
    it: the split text (no tag, no leading blank) and, in the result, the text as written."""
    pieces = ["Half", " of", " 40:", " 40", " / "]
    items: list = [PromptSent(text=PROMPT, n_tokens=9, starts_in_thinking=False, seed=42)]
    for index, piece in enumerate(pieces):
        items.append(Delta(thinking=piece, answer="", thinking_tokens=index + 2,
                           answer_tokens=0, elapsed_s=0.1 * (index + 1)))
    items.append(Finished(result=GenerationResult(
        model="", role="", prompt_sent=PROMPT, thinking="Half of 40: 40 / ",
        thinking_tokens=6, prompt_tokens=9, ttft_s=0.1, tokens_per_s=10.0, thinking_s=0.5,
        total_s=0.6, thinking_unterminated=True, seed=42, finish_reason=FinishReason.LENGTH,
        reply_text=WRITTEN)))
    return items


def raw_continuation(pieces: list[str], *, finish: FinishReason = FinishReason.STOP,
                     hold: bool = False):
    """What the engine sends for a raw request: the prompt as given, every piece as answer
    text, counted as answer tokens, and the text as written."""
    def script(request: GenerationRequest) -> list:
        assert request.raw
        items: list = [PromptSent(text=request.prompt, n_tokens=20, starts_in_thinking=False,
                                  seed=7)]
        for index, piece in enumerate(pieces):
            items.append(Delta(thinking="", answer=piece, thinking_tokens=0,
                               answer_tokens=index + 1, elapsed_s=0.2 * (index + 1)))
        if hold:
            items.append(WAIT_FOR_STOP)
            return items
        items.append(Finished(result=GenerationResult(
            model="", role="", answer="".join(pieces), answer_tokens=len(pieces),
            prompt_tokens=20, prompt_cached=19, ttft_s=0.05, tokens_per_s=5.0,
            total_s=0.2 * len(pieces), finish_reason=finish, reply_text="".join(pieces))))
        return items
    return script


def run_to_end(session: PaneSession, timeout: float = 10.0) -> list:
    steps: list = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        new, ended = session.poll()
        steps.extend(new)
        if ended:
            return steps
        time.sleep(0.005)
    raise AssertionError("the generation did not end")


@pytest.fixture
def reasoning(tmp_path):
    catalog = fake_catalog(tmp_path / "models")
    engine = FakeEngine(cut_in_thinking)
    entry = next(e for e in catalog if e.role == "reasoning")
    session = PaneSession(catalog, PaneConfig(model_id=entry.id, max_tokens=6),
                          worker_factory=engine.worker)
    session.engine = engine  # type: ignore[attr-defined]
    yield session
    if (worker := session.shutdown()) is not None:
        worker.close()
    assert wait_for_closing()


def test_continue_sends_the_prompt_and_the_reply_as_written_and_joins_the_turn(reasoning):
    session, engine = reasoning, reasoning.engine
    turn = session.send("What is half of 40?")
    run_to_end(session)
    assert turn is not None and turn.cut_off and turn.still_thinking
    assert session.can_resume(turn) and reply_as_written(turn) == WRITTEN

    engine.default = raw_continuation(["2 = 20.", "</think>", "\n\n", "20"])
    assert session.extend(turn) is turn  # the same turn, not a new one
    steps = run_to_end(session)
    request = engine.workers[-1].requests[-1]
    assert request.raw and request.prompt == PROMPT + WRITTEN  # exactly what the model read
    assert request.reply_so_far == WRITTEN and request.history == ()
    assert request.sampling.max_tokens == 6  # the pane's limit, once more
    assert session.turns == [turn] and turn.state == TurnState.DONE
    assert turn.thinking == "Half of 40: 40 / 2 = 20." and turn.answer == "20"
    assert turn.prompt_sent == PROMPT  # the prompt shown is the turn's, not prompt + reply
    assert (turn.thinking_tokens, turn.answer_tokens) == (8, 2)  # 6 + "2 = 20." and the tag
    assert turn.thinking_s == pytest.approx(0.5 + 0.4)  # thought on for two more tokens
    assert turn.max_tokens == 12 and not turn.still_thinking and not turn.cut_off
    result = turn.result
    assert result is not None and result.finish_reason == FinishReason.STOP
    assert (result.thinking, result.answer) == (turn.thinking, turn.answer)
    assert (result.thinking_tokens, result.answer_tokens) == (8, 2)
    assert result.ttft_s == 0.1 and result.prompt_tokens == 9 and result.seed == 42
    assert result.total_s == pytest.approx(0.6 + 0.8)
    assert result.tokens_per_s == pytest.approx((5 + 3) / (5 / 10.0 + 3 / 5.0))
    assert result.reply_text == WRITTEN + "2 = 20.</think>\n\n20"
    assert "thinking 8 / answer 2 tokens" in result.metrics_line()
    assert turn.thinking_header() == "Thought for 1 s · 8 tokens"  # 0.9 s, rounded
    # the continuation's own figures: only the last token was evaluated again
    finished = next(step for step in steps if isinstance(step, Finished))
    assert finished.result.prompt_cached == 19
    # Verify, export and the next question see the whole reply
    assert turn.reply_for_verify() == "20"
    exported = session.export()["turns"][0]
    assert exported["thinking"] == turn.thinking and exported["answer"] == "20"
    assert exported["thinking_tokens"] == 8 and exported["finish_reason"] == "stop"
    assert [h.assistant for h in session.conversation.history()] == ["20"]


def test_continue_can_be_pressed_again_and_the_clock_goes_on(reasoning):
    session, engine = reasoning, reasoning.engine
    turn = session.send("What is half of 40?")
    run_to_end(session)
    engine.default = raw_continuation(["2", " is"], finish=FinishReason.LENGTH)
    assert session.extend(turn) is turn
    run_to_end(session)
    assert turn.cut_off and turn.still_thinking and turn.thinking == "Half of 40: 40 / 2 is"
    assert turn.elapsed_s == pytest.approx(0.5 + 0.4)
    assert turn.thinking_header() == ("Still thinking when the token limit was reached · "
                                      "8 tokens")
    engine.default = raw_continuation([" 20.</think>", "20"])
    assert session.extend(turn) is turn
    run_to_end(session)
    assert engine.workers[-1].requests[-1].prompt == PROMPT + WRITTEN + "2 is"
    assert turn.thinking == "Half of 40: 40 / 2 is 20." and turn.answer == "20"
    assert turn.result is not None and turn.result.ttft_s == 0.1 and turn.max_tokens == 18


def test_stop_during_continue_keeps_what_was_produced(reasoning):
    session, engine = reasoning, reasoning.engine
    turn = session.send("What is half of 40?")
    run_to_end(session)
    engine.default = raw_continuation(["2 = 20.", "</think>", "20"], hold=True)
    session.extend(turn)
    deadline = time.monotonic() + 10
    while turn.answer != "20" and time.monotonic() < deadline:
        session.poll()
        time.sleep(0.005)
    session.stop()
    run_to_end(session)
    assert turn.state == TurnState.DONE and turn.finish_reason == FinishReason.CANCELLED
    assert turn.thinking == "Half of 40: 40 / 2 = 20." and turn.answer == "20"
    assert not turn.cut_off


def test_a_continue_that_crashes_keeps_the_reply_before_it(reasoning):
    session, engine = reasoning, reasoning.engine
    turn = session.send("What is half of 40?")
    run_to_end(session)
    before = (turn.thinking, turn.thinking_tokens, turn.result)
    crash = Failed(message="The model's worker process was killed (SIGKILL).",
                   kind=FailureKind.CRASH)
    engine.default = [PromptSent(text="x", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="2 =", thinking_tokens=0, answer_tokens=1,
                            elapsed_s=0.1), crash]
    assert session.extend(turn) is turn
    run_to_end(session)
    assert (turn.thinking, turn.thinking_tokens, turn.result) == before
    assert turn.state == TurnState.DONE and turn.cut_off and turn.failure is None
    assert turn.continue_error == ("Continue failed: The model's worker process was killed "
                                   "(SIGKILL); the reply before it is kept.")
    assert session.worker is None  # the crashed process is not reused
    engine.default = raw_continuation(["2 = 20.</think>", "20"])
    assert session.extend(turn) is turn  # and Continue is offered again
    run_to_end(session)
    assert turn.answer == "20" and turn.continue_error == ""


def test_a_reply_whose_text_is_unknown_runs_again_with_a_larger_limit(reasoning):
    """No record of the text as written (a served model's split reply, no token figures):
    Continue can't resume it, so the reply runs again, twice the limit, same seed."""
    session, engine = reasoning, reasoning.engine

    def unknown(request):
        items = cut_in_thinking(request)
        items[-1].result.reply_text = ""
        return items
    engine.default = unknown
    turn = session.send("What is half of 40?")
    run_to_end(session)
    assert reply_as_written(turn) is None and not session.can_resume(turn)
    again = session.extend(turn)
    assert again is not None and again is not turn
    run_to_end(session)
    request = engine.workers[-1].requests[-1]
    assert not request.raw and request.reply_so_far == ""
    assert request.sampling.max_tokens == 12 and request.sampling.seed == 42


def test_the_reply_as_written_comes_from_its_tokens_without_a_record():
    steps = [TokenStep(TokenLogprob(text, -0.1, ()), thinking=True)
             for text in ("<think>", "\n", "Hm")]

    class Shown:
        result = GenerationResult(model="", role="")
        token_steps = steps
        tokens = 3
    assert reply_as_written(Shown()) == "<think>\nHm"
    Shown.tokens = 4  # a token without figures: the text is not known exactly
    assert reply_as_written(Shown()) is None


def test_a_served_chat_model_is_not_resumed(tmp_path):
    from dataclasses import replace

    from desktop_app.catalog import RemoteSource
    from desktop_app.conversation import Turn

    catalog = fake_catalog(tmp_path / "models")
    entry = next(e for e in catalog if e.role == "instruct")
    served = replace(entry, source=RemoteSource(endpoint="http://127.0.0.1:9/v1", model="m"))
    turn = Turn(prompt="hi", result=GenerationResult(model="", role="", reply_text="Hello"))
    assert can_resume(entry, turn) and not can_resume(served, turn)
