"""Continue resumes a reply the token limit cut off, token for token: the exact prompt plus
the reply so far goes back raw, the new text joins the same turn, figures add up. The
session and the window on the scripted fake engine (fast); real llama.cpp on the base
starter and on a scripted reasoning GGUF (slow)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from desktop_app.engine.protocol import (
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
from desktop_app.session.generation import wait_for_closing
from desktop_app.session.pane import PaneConfig, PaneSession
from desktop_app.session.tokens import TokenStep, can_resume, reply_as_written
from desktop_app.session.turn import TurnState
from tests.fake_engine import WAIT_FOR_STOP, FakeEngine, fake_catalog, run_to_end

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
    assert turn.visible_reply().text == "20" and not turn.visible_reply().still_thinking
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


def test_stop_before_the_first_new_token_leaves_the_reply_cut_off(reasoning):
    session, engine = reasoning, reasoning.engine
    turn = session.send("What is half of 40?")
    run_to_end(session)
    before = (turn.thinking, turn.result, turn.max_tokens)
    engine.default = [PromptSent(text="x", n_tokens=1, starts_in_thinking=False, seed=1),
                      WAIT_FOR_STOP]
    session.extend(turn)
    session.poll()
    session.stop()
    run_to_end(session)
    assert (turn.thinking, turn.result, turn.max_tokens) == before
    assert turn.cut_off and turn.continue_error == ""  # Continue is still offered


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

    from desktop_app.models.sources import RemoteSource
    from desktop_app.session.turn import Turn

    catalog = fake_catalog(tmp_path / "models")
    entry = next(e for e in catalog if e.role == "instruct")
    served = replace(entry, source=RemoteSource(endpoint="http://127.0.0.1:9/v1", model="m"))
    turn = Turn(prompt="hi", result=GenerationResult(model="", role="", reply_text="Hello"))
    assert can_resume(entry, turn) and not can_resume(served, turn)


# ----------------------------------------------------------------------------- the window


@pytest.fixture
def reasoning_pane(qtbot, fake_models, engine):
    pytest.importorskip("pytestqt")
    from desktop_app.session.generation import close_in_background
    from desktop_app.ui.pane import Pane

    entry = next(e for e in fake_models if e.role == "reasoning")
    pane = Pane(fake_models, PaneConfig(model_id=entry.id, max_tokens=6),
                worker_factory=engine.worker)
    qtbot.addWidget(pane)
    pane.resize(500, 700)
    pane.show()
    yield pane
    close_in_background(pane.shutdown())
    assert wait_for_closing()


def shoot(pane, name: str) -> None:
    """With CONTINUE_SCREENSHOT_DIR set, save what the pane shows (to look at it)."""
    if folder := os.environ.get("CONTINUE_SCREENSHOT_DIR"):
        pane.grab().save(str(Path(folder) / f"{name}.png"))


def test_continue_in_the_window_goes_on_in_the_same_turn(qtbot, reasoning_pane, engine):
    pane = reasoning_pane
    engine.default = cut_in_thinking
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        assert pane.send("What is half of 40?")
    widget = pane.turns[-1]
    shoot(pane, "cut-off")
    assert widget.continue_button.isVisible()
    assert "goes on from its last token" in widget.continue_button.toolTip()
    assert widget.thinking.title == "Still thinking when the token limit was reached · 6 tokens"

    gate = threading.Event()
    pieces = ["2 = 20.", "</think>", "\n\n", "20"]

    def held(request):  # the thinking streams, then the test looks, then the rest comes
        items = raw_continuation(pieces)(request)
        return [*items[:2], gate, *items[2:]]
    engine.default = held
    widget.continue_button.click()
    assert widget.thinking.live and widget.thinking.view.toPlainText() == "Half of 40: 40 / "
    qtbot.waitUntil(lambda: widget.thinking.view.toPlainText() == "Half of 40: 40 / 2 = 20.",
                    timeout=10_000)  # the fold grows, live
    assert widget.thinking.live and widget.thinking.title.startswith("Thinking… ")
    assert pane.turns == [widget] and not widget.action_bar.isVisible()
    shoot(pane, "continuing")
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        gate.set()
    shoot(pane, "continued")
    assert pane.turns == [widget] and widget.answer.toPlainText() == "20"
    assert widget.thinking.view.toPlainText() == "Half of 40: 40 / 2 = 20."
    assert widget.thinking.title == "Thought for 1 s · 8 tokens"
    assert not widget.continue_button.isVisible() and widget.action_bar.isVisible()
    assert "thinking 8 / answer 2 tokens" in widget.metrics.text()
    exported = pane.export_data()["turns"]
    assert len(exported) == 1 and exported[0]["answer"] == "20"


def test_a_failed_continue_in_the_window_says_so_and_keeps_the_reply(qtbot, reasoning_pane,
                                                                     engine):
    pane = reasoning_pane
    engine.default = cut_in_thinking
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        assert pane.send("What is half of 40?")
    widget = pane.turns[-1]
    engine.default = [PromptSent(text="x", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="2 =", thinking_tokens=0, answer_tokens=1,
                            elapsed_s=0.1),
                      Failed(message="The model process crashed.", kind=FailureKind.CRASH)]
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        widget.continue_button.click()
    shoot(pane, "continue-failed")
    assert pane.status.text() == "Continue failed"
    assert widget.metrics.text().startswith("Continue failed: The model process crashed; the "
                                            "reply before it is kept.\nTTFT 0.10 s")
    assert widget.error_box.isHidden() and widget.continue_button.isVisible()
    assert widget.thinking.view.toPlainText() == "Half of 40: 40 / "
    assert widget.thinking.title == "Still thinking when the token limit was reached · 6 tokens"


def test_a_reply_that_cant_be_resumed_says_so_and_runs_again(qtbot, reasoning_pane, engine):
    pane = reasoning_pane

    def unknown(request):
        items = cut_in_thinking(request)
        items[-1].result.reply_text = ""
        return items
    engine.default = unknown
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        assert pane.send("What is half of 40?")
    widget = pane.turns[-1]
    assert "The exact text of this reply is not known" in widget.continue_button.toolTip()
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        widget.continue_button.click()
    assert len(pane.turns) == 1 and pane.turns[-1] is not widget  # written again, anew
    assert engine.workers[-1].requests[-1].sampling.max_tokens == 12


# ------------------------------------------------------------------------ real llama.cpp


def one_thread(entry):
    """A model process on one thread: greedy output then depends on nothing else."""
    from desktop_app.engine.worker import ModelWorker

    return ModelWorker(entry, n_threads=1)


def run_real(session: PaneSession, timeout: float = 240.0) -> list:
    steps: list = []
    deadline = time.monotonic() + timeout
    while session.running and time.monotonic() < deadline:
        steps.extend(session.poll()[0])
        time.sleep(0.02)
    steps.extend(session.poll()[0])
    assert not session.running, "the generation did not end"
    return steps


def close(session: PaneSession) -> None:
    if (worker := session.shutdown()) is not None:
        worker.close()
    assert wait_for_closing()


@pytest.mark.slow
@pytest.mark.parametrize("raw", [False, True], ids=["wrapped", "raw"])
def test_base_starter_cut_then_continued_is_one_uninterrupted_generation(starter_models, raw):
    """Greedy, the base starter (repetition penalty 1.15) cut at N tokens and continued
    gives exactly the text of one 2N-token generation; only the last token is evaluated
    again, the rest comes from the KV cache."""
    from desktop_app.models.catalog import load_catalog

    n = 16
    prompt = ("The history of Rome begins" if raw
              else "Tell me about the history of the city of Rome.")
    config = PaneConfig(model_id="gemma3-270m-base", temperature=0.0, max_tokens=2 * n,
                        raw=raw)
    session = PaneSession(load_catalog(), config, worker_factory=one_thread)
    try:
        whole = session.send(prompt)
        assert whole is not None
        run_real(session)
        assert whole.finish_reason == FinishReason.LENGTH and whole.tokens == 2 * n, \
            "the reference must run its whole 2N tokens"
        session.clear()
        session.config.max_tokens = n
        turn = session.send(prompt)
        assert turn is not None
        run_real(session)
        assert turn.cut_off and turn.tokens == n
        written = reply_as_written(turn)
        assert written is not None and whole.result is not None
        assert whole.result.reply_text.startswith(written)
        assert session.extend(turn) is turn
        steps = run_real(session)
        assert turn.state == TurnState.DONE, turn.continue_error
        assert turn.answer == whole.answer and turn.tokens == 2 * n
        assert turn.result is not None and turn.result.reply_text == whole.result.reply_text
        run = next(step.result for step in steps if isinstance(step, Finished))
        assert run.prompt_tokens > n and run.prompt_cached == run.prompt_tokens - 1
        assert turn.prompt_sent == whole.prompt_sent
    finally:
        close(session)


@pytest.mark.slow
def test_scripted_reasoner_cut_inside_its_thinking_then_continued(tmp_path):
    """A real reasoning GGUF cut inside its thinking: after Continue the fold holds the
    whole thinking and the answer follows, as one uncut run has them."""
    from desktop_app.models.catalog import Catalog
    from tests.scripted_gguf import scripted_entry, write_scripted_gguf

    script = "<think>Two plus two.\nThat makes four.</think>\n\nThe answer is **4**."
    entry = scripted_entry(write_scripted_gguf(tmp_path / "reasoner.gguf", script),
                           max_tokens=64)
    session = PaneSession(Catalog(entries={entry.id: entry}), PaneConfig(model_id=entry.id),
                          worker_factory=one_thread)
    try:
        whole = session.send("What is 2 + 2?")
        assert whole is not None
        run_real(session)
        assert whole.finish_reason == FinishReason.STOP and whole.answer
        session.clear()
        session.config.max_tokens = 4
        turn = session.send("What is 2 + 2?")
        assert turn is not None
        run_real(session)
        assert turn.cut_off and turn.still_thinking
        assert turn.thinking_header().startswith("Still thinking when the token limit")
        rounds = 0
        while turn.cut_off and rounds < 10:  # the same limit again, as often as needed
            assert session.extend(turn) is turn
            run_real(session)
            rounds += 1
        assert turn.finish_reason == FinishReason.STOP and rounds > 1, (rounds, turn.thinking, turn.answer, turn.result)
        assert turn.thinking == whole.thinking == "Two plus two.\nThat makes four."
        assert turn.answer == whole.answer == "The answer is **4**."
        assert (turn.thinking_tokens, turn.answer_tokens) == (whole.thinking_tokens,
                                                              whole.answer_tokens)
        assert not turn.still_thinking and turn.thinking_header().startswith("Thought for")
    finally:
        close(session)
