"""The conversation core without Qt: turns, history, requests, events applied once."""

from __future__ import annotations

import time

import pytest

from desktop_app.engine.protocol import (
    Delta,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    PromptSent,
)
from desktop_app.session.pane import PaneConfig, PaneSession
from desktop_app.session.turn import TurnState
from desktop_app.verify import Visible
from tests.fake_engine import WAIT_FOR_STOP, FakeEngine, answer_script, fake_catalog, run_to_end


@pytest.fixture
def catalog(tmp_path):
    return fake_catalog(tmp_path / "models")


def role_id(catalog, role: str) -> str:
    return next(e.id for e in catalog if e.role == role)


def test_a_reply_is_accumulated_once_and_becomes_history(catalog):
    engine = FakeEngine(answer_script("Paris is the capital.", chunk=3))
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                          worker_factory=engine.worker)
    turn = session.send("Capital of France?")
    assert turn is not None and turn.state == TurnState.STARTING and session.running
    assert session.send("again?") is None  # busy
    run_to_end(session)
    assert turn.state == TurnState.DONE and turn.done and not session.running
    assert turn.answer == "Paris is the capital."
    assert turn.result is not None and turn.result.finish_reason == FinishReason.STOP
    assert turn.prompt_sent == "<prompt>" and turn.answer_tokens == 7

    follow = session.send("And Italy?")
    run_to_end(session)
    request = engine.workers[0].requests[1]
    assert [(h.user, h.assistant) for h in request.history] == [
        ("Capital of France?", "Paris is the capital.")]
    assert follow is not None and follow.state == TurnState.DONE
    assert len(engine.workers) == 1  # the process is reused
    data = session.export()
    assert [t["prompt"] for t in data["turns"]] == ["Capital of France?", "And Italy?"]
    assert data["turns"][0]["answer"] == "Paris is the capital."
    session.clear()
    assert session.turns == []
    assert session.conversation.history() == ()
    session.close_worker()


def test_deltas_between_polls_are_merged_and_thinking_is_timed_by_the_process(catalog):
    script = [PromptSent(text="<think>", n_tokens=2, starts_in_thinking=True, seed=3),
              *[Delta(thinking="hmm ", answer="", thinking_tokens=i + 1, answer_tokens=0,
                      elapsed_s=0.1 * (i + 1)) for i in range(20)],
              Delta(thinking="", answer="Yes.", thinking_tokens=20, answer_tokens=1,
                    elapsed_s=2.5),
              WAIT_FOR_STOP]
    engine = FakeEngine(script)
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "reasoning")),
                          worker_factory=engine.worker)
    turn = session.send("Is 17 prime?")
    assert turn is not None
    deadline = time.monotonic() + 5
    streamed = []
    while turn.answer != "Yes." and time.monotonic() < deadline:
        steps, _ = session.poll()
        streamed += [s for s in steps if type(s).__name__ == "Streamed"]
        time.sleep(0.01)
    assert turn.thinking == "hmm " * 20 and turn.answer == "Yes."
    assert "".join(s.thinking for s in streamed) == turn.thinking  # every piece once
    assert len(streamed) < 22  # merged per poll, not one step per Delta
    assert turn.state == TurnState.ANSWERING and turn.has_thinking
    assert turn.thinking_s == pytest.approx(2.5)  # ended when the answer began: its clock
    session.stop()
    run_to_end(session)
    assert turn.result is not None and turn.result.finish_reason == FinishReason.CANCELLED
    assert turn.answer == "Yes."
    session.close_worker()


def test_a_crash_fails_the_turn_and_the_next_send_gets_a_fresh_process(catalog):
    engine = FakeEngine([PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                         Delta(thinking="", answer="par", thinking_tokens=0, answer_tokens=1,
                               elapsed_s=0.1),
                         Failed(message="The model's worker process was killed (SIGKILL).",
                                kind=FailureKind.CRASH)])
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "base")),
                          worker_factory=engine.worker)
    turn = session.send("Tell me a story.")
    run_to_end(session)
    assert turn is not None and turn.state == TurnState.FAILED
    assert turn.failure_label == "Model process crashed" and "killed" in turn.failure.message
    assert turn.answer == "par" and session.worker is None
    assert session.conversation.history() == ()  # a failed turn is not history
    engine.default = answer_script("Once upon a time.")
    again = session.retry(turn)
    run_to_end(session)
    assert again is not None and again.answer == "Once upon a time."
    assert session.turns == [again] and len(engine.workers) == 2
    session.close_worker()



def test_retrying_an_earlier_failed_turn_keeps_its_place_and_its_history(catalog):
    """Issue 26: Retry of an earlier failed turn runs it where it was, with only the turns
    before it as history, and the later turns stay after it."""
    crash = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
             Failed(message="The model's worker process was killed (SIGKILL).",
                    kind=FailureKind.CRASH)]
    engine = FakeEngine(answer_script("Paris."))
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                          worker_factory=engine.worker)
    first = session.send("Capital of France?")
    run_to_end(session)
    engine.default = crash
    failed = session.send("Capital of Italy?")
    run_to_end(session)
    engine.default = answer_script("Berlin.")
    later = session.send("Capital of Germany?")
    run_to_end(session)
    assert failed is not None and failed.state == TurnState.FAILED
    engine.default = answer_script("Rome.")
    again = session.retry(failed)
    run_to_end(session)
    assert again is not None and again.answer == "Rome."
    assert session.turns == [first, again, later]
    sent = engine.workers[-1].requests[-1]
    assert [(h.user, h.assistant) for h in sent.history] == [("Capital of France?", "Paris.")]
    session.close_worker()

def test_requests_follow_the_settings(catalog):
    base_id = role_id(catalog, "base")
    session = PaneSession(catalog, PaneConfig(model_id=base_id, max_tokens=33, seed=4,
                                              document_template="Q: {question}\nA:"))
    request = session.request_for("Why?")
    assert request.sampling.max_tokens == 33 and request.sampling.seed == 4
    assert request.document_template == "Q: {question}\nA:" and not request.raw
    assert request.system_prompt is None
    session.config.raw = True
    assert session.request_for("Once upon").raw
    chat = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct"),
                                           system_prompt="Be brief.", raw=True))
    chat_request = chat.request_for("hi")
    assert chat_request.system_prompt == "Be brief." and not chat_request.raw
    assert chat_request.document_template is None
    assert PaneConfig.from_dict(session.config.to_dict()) == session.config
    assert PaneConfig.from_dict("junk") == PaneConfig()


def test_a_model_that_is_not_ready_does_not_start(catalog, tmp_path):
    missing = PaneSession(catalog, PaneConfig(model_id="no-such-model"))
    assert missing.model_state() is None and missing.send("hi") is None
    entry_id = role_id(catalog, "instruct")
    (tmp_path / "models" / f"{entry_id}.gguf").unlink()
    gone = PaneSession(catalog, PaneConfig(model_id=entry_id))
    assert gone.model_state() == "missing-file" and gone.send("hi") is None


def test_a_worker_that_cannot_be_made_fails_the_turn(catalog):
    def factory(entry):
        raise OSError("no semaphores here")

    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                          worker_factory=factory)
    turn = session.send("hi")
    assert turn is not None and turn.state == TurnState.FAILED and not session.running
    assert "no semaphores here" in turn.failure.message


def test_finished_result_is_the_process_summary(catalog):
    script = answer_script("4", thinking="two and two", thinking_s=14.2)
    engine = FakeEngine(script)
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "reasoning")),
                          worker_factory=engine.worker)
    turn = session.send("2+2?")
    steps = run_to_end(session)
    assert any(isinstance(s, Finished) for s in steps)
    assert turn is not None and turn.thinking_s == pytest.approx(14.2)
    assert turn.thinking == "two and two" and turn.answer == "4"
    assert turn.to_dict()["thinking_s"] == pytest.approx(14.2)
    session.close_worker()


def test_clear_while_generating_stops_and_forgets(catalog):
    engine = FakeEngine([PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                         Delta(thinking="", answer="Once", thinking_tokens=0, answer_tokens=1,
                               elapsed_s=0.01), WAIT_FOR_STOP])
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                          worker_factory=engine.worker)
    assert session.send("Tell a story") is not None
    session.clear()
    assert session.turns == [] and session.turn is None
    run_to_end(session)  # the stopped run drains onto no turn
    assert session.turns == [] and not session.running
    session.close_worker()


def test_thinking_states_and_what_verify_reads(catalog):
    from desktop_app.session.turn import thinking_header

    engine = FakeEngine(answer_script("", thinking="Forty halved is",
                                      finish_reason=FinishReason.LENGTH))
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "reasoning")),
                          worker_factory=engine.worker)
    turn = session.send("Half of 40?")
    assert turn is not None
    run_to_end(session)
    assert turn.still_thinking and turn.cut_off
    assert turn.thinking_header().startswith("Still thinking when the token limit was reached")
    assert turn.visible_reply() == Visible("", still_thinking=True, had_thinking=True)
    verdict = session.verify(turn)
    assert "still thinking" in verdict.reason.lower()
    assert thinking_header(False, 3.0, 1, still_thinking=True,
                           finish_reason=FinishReason.CANCELLED) == \
        "Stopped while still thinking · 1 token"
    assert thinking_header(False, 3.0, 2) == "Thought for 3 s · 2 tokens"
    assert thinking_header(False, None, 2) == "Thought · 2 tokens"  # a branch: two runs

    engine.default = answer_script("20", thinking="Forty halved.")
    done = session.send("Again?")
    assert done is not None
    run_to_end(session)
    assert not done.still_thinking and done.visible_reply() == Visible("20", had_thinking=True)
    session.close_worker()


def test_restored_turns_come_back_and_an_unfinished_one_is_marked(catalog):
    from desktop_app.engine.protocol import GenerationResult
    from desktop_app.session.turn import Turn

    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")))
    finished = Turn(prompt="q", answer="a", state=TurnState.DONE,
                    result=GenerationResult(model="", role="", answer="a",
                                            finish_reason=FinishReason.STOP))
    cut = Turn(prompt="q2", answer="par", state=TurnState.ANSWERING)
    session.restore([finished, cut])
    assert session.turns == [finished, cut]
    assert cut.state == TurnState.FAILED and "removed" in (cut.failure.message if cut.failure
                                                          else "")
    assert [(h.user, h.assistant) for h in session.conversation.history()] == [("q", "a")]


def test_an_answer_that_mentions_think_is_still_an_answer(catalog):
    """The engine already split the reply: Verify judges the answer, not a re-parse of it."""
    from desktop_app.verify import VerdictState, find_problem

    problem = find_problem("math-mul-7-8")
    engine = FakeEngine(answer_script("A <think> tag opens a model's thinking. The answer is 56.",
                                      thinking="Seven eights."))
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "reasoning")),
                          worker_factory=engine.worker)
    turn = session.send(problem.prompt, problem)
    assert turn is not None
    run_to_end(session)
    assert not turn.still_thinking
    assert session.verify(turn).verdict == VerdictState.PASS
    session.close_worker()


NOTES = ("System text folded into the first user turn: this template has no system role.",
         "This model always thinks: its format has no way to turn thinking off.")


def test_prompt_notes_are_kept_on_the_turn_and_exported(catalog):
    """How the prompt was adapted (PromptSent.notes) is part of the turn, not dropped."""
    script = [PromptSent(text="<p>", n_tokens=1, starts_in_thinking=False, seed=1, notes=NOTES),
              *answer_script("Yes.")[1:]]
    session = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                          worker_factory=FakeEngine(script).worker)
    turn = session.send("Well?")
    run_to_end(session)
    assert turn is not None and turn.state == TurnState.DONE
    assert turn.prompt_notes == NOTES
    assert session.export()["turns"][0]["prompt_notes"] == list(NOTES)
    plain = PaneSession(catalog, PaneConfig(model_id=role_id(catalog, "instruct")),
                        worker_factory=FakeEngine(answer_script("Yes.")).worker)
    other = plain.send("Well?")
    run_to_end(plain)
    assert other is not None and other.prompt_notes == ()
    assert plain.export()["turns"][0]["prompt_notes"] == []
    session.close_worker()
    plain.close_worker()


def test_the_explorer_reading_keeps_the_prompt_notes():
    from desktop_app.engine.protocol import GenerationResult, TokenLogprob
    from desktop_app.session.tokens import read_next_token

    events = [PromptSent(text="<p>", n_tokens=1, starts_in_thinking=False, seed=0, notes=NOTES),
              Delta(thinking="", answer="A", thinking_tokens=0, answer_tokens=1, elapsed_s=0.0,
                    logprob=TokenLogprob("A", -0.1, (("A", -0.1), ("B", -2.0)))),
              Finished(result=GenerationResult(model="", role=""))]
    got = read_next_token(events)
    assert got.prompt_sent == "<p>" and got.notes == NOTES and got.top[0] == ("A", -0.1)
    failed = read_next_token([events[0], Failed(message="boom", kind=FailureKind.ERROR)])
    assert failed.error == "boom" and failed.notes == NOTES
