"""Issue 27: Verify knows how the reply ended, and says what it found.

* A last code block that never closes is the model's final code when the model ended the
  reply itself (finish ``stop``): it is run, and the verdict says the fence was unclosed.
  Cut off by the token limit or Stop, it is an unfinished program: never run, never a pass.
* A cut-off reply has a final answer only where it marked one whole before the cut; a
  number from the middle of its working is no answer (it was "✗ Failed (low confidence)").
* A free prompt's final answer is "• Answer found: 4 · no key to check against", not
  "– No answer … got 4".

Each through ``verify_reply``, ``triptych verify``, a pane's session and rollouts.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

import pytest

from desktop_app.cli.main import main as triptych
from desktop_app.cli.verify import main as verify_main
from desktop_app.engine.protocol import FinishReason, GenerationRequest
from desktop_app.models.catalog import load_catalog
from desktop_app.rollouts.run import AnswerKey, run_rollouts
from desktop_app.rollouts.summary import RunFigures
from desktop_app.session.pane import PaneConfig, PaneSession
from desktop_app.ui.export import to_markdown, verdict_line
from desktop_app.verify import VerdictState, verify_reply
from desktop_app.verify.extract import before_cut, cut_off_answer, math_vote_key
from desktop_app.verify.verdict import (
    VERDICT_LABELS,
    got_in_headline,
    verdict_headline,
    verdict_title,
)
from tests.fake_engine import FakeEngine, FakeWorker, answer_script, fake_catalog, run_to_end

TIMEOUT = 5.0
ADD_TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"
# What SmolLM2 wrote: a correct function, and the reply ended (finish: stop) before the fence.
UNCLOSED_ADD = "Here is the function:\n\n```python\ndef add(a, b):\n    return a + b\n"
UNCLOSED_WRONG = "```python\ndef add(a, b):\n    return a - b\n"
# Cut off by the token limit in the middle of the working: "3" is not an answer.
CUT_WORKING = "Let's compute step by step. First 1 + 2 = 3, and then 3 * 4 = 1"
S = VerdictState


# ------------------------------------------------------------------ unclosed final block


def test_an_unclosed_block_of_a_reply_that_ended_is_run_and_says_so():
    verdict = verify_reply(UNCLOSED_ADD, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="stop")
    assert verdict.verdict == S.PASS, verdict.reason
    assert "never closed" in verdict.reason and "final code" in verdict.reason
    wrong = verify_reply(UNCLOSED_WRONG, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="stop")
    assert wrong.verdict == S.FAIL and "never closed" in wrong.reason


@pytest.mark.parametrize("finish", ["length", "cancelled", "error", None])
def test_an_unclosed_block_that_may_be_cut_off_is_never_run(finish: str | None):
    verdict = verify_reply(UNCLOSED_ADD, tests=ADD_TESTS, timeout_s=TIMEOUT, finish=finish)
    assert verdict.verdict == S.NO_ANSWER and "never ends" in verdict.reason
    assert verdict.duration_s == 0 and verdict.isolation == "No code was run."
    if finish == "length":
        assert "token limit" in verdict.reason


def test_the_unclosed_final_block_is_the_one_run_never_an_earlier_one():
    """A right closed block, then a wrong unclosed one: the final code is the wrong one."""
    reply = ("```python\ndef add(a, b):\n    return a + b\n```\nShorter:\n" + UNCLOSED_WRONG)
    verdict = verify_reply(reply, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="stop")
    assert verdict.verdict == S.FAIL, verdict.reason
    cut = verify_reply(reply, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="length")
    assert cut.verdict == S.NO_ANSWER  # never the earlier closed block in its place


def test_prose_after_an_unclosed_fence_is_inside_it_and_never_passes():
    reply = UNCLOSED_ADD + "\nThis function adds two numbers and returns the sum.\n"
    verdict = verify_reply(reply, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="stop")
    assert verdict.verdict == S.ERROR and "does not parse" in verdict.reason


def test_a_cut_off_bare_program_is_not_run():
    reply = "def add(a, b):\n    return a"  # parses, but the limit cut "+ b" off
    assert verify_reply(reply, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="length").verdict \
        == S.NO_ANSWER
    whole = "def add(a, b):\n    return a + b\n"
    assert verify_reply(whole, tests=ADD_TESTS, timeout_s=TIMEOUT, finish="stop").verdict \
        == S.PASS


def test_free_and_math_replies_run_an_unclosed_block_only_when_the_reply_ended():
    reply = "```python\nprint(6 * 7)\n"
    ran = verify_reply(reply, timeout_s=TIMEOUT, finish="stop")
    assert ran.verdict == S.RAN and ran.got == "42" and "never closed" in ran.reason
    assert verify_reply(reply, timeout_s=TIMEOUT, finish="length").verdict == S.NO_ANSWER
    printed = verify_reply(reply, expect="42", timeout_s=TIMEOUT, finish="stop")
    assert printed.verdict == S.PASS and "never closed" in printed.reason
    assert verify_reply(reply, expect="42", timeout_s=TIMEOUT, finish="length").verdict \
        == S.NO_ANSWER


# ------------------------------------------------------------------ cut-off math replies


def test_a_cut_off_reply_without_a_final_answer_has_none():
    verdict = verify_reply(CUT_WORKING, expect="12", finish="length")
    assert verdict.verdict == S.NO_ANSWER and not verdict.low_confidence
    assert verdict.got is None and verdict.expected == "12"
    assert verdict.reason.startswith("No answer: the token limit cut the reply off before a "
                                     "final answer")
    stopped = verify_reply(CUT_WORKING, expect="12", finish="cancelled")
    assert stopped.verdict == S.NO_ANSWER and "Stop cut the reply off" in stopped.reason
    # Ended by the model, the same reply is read as before: a low-confidence reading that
    # can fail it (and never pass it).
    ended = verify_reply(CUT_WORKING, expect="12", finish="stop")
    assert ended.verdict == S.FAIL and ended.low_confidence and ended.got == "1"


@pytest.mark.parametrize(("reply", "expected", "verdict"), [
    ("Working.\nThe answer is 12.\nLet me double-check: 3 * 4 = 1", "12", S.PASS),
    ("Working.\nThe answer is 12.\nLet me double-check: 3 * 4 = 1", "13", S.FAIL),
    ("The answer is 12. Let me double-check that", "12", S.PASS),
    ("So we get \\boxed{12}", "12", S.PASS),  # a closed box is whole, even at the cut
    ("So we get \\boxed{12} and then", "12", S.PASS),
    ("#### 12\nBecause 3 * 4", "12", S.PASS),
    # The answer line is where the limit struck: "1" may be "1,250", "12" may be "12.5".
    ("Working.\nThe answer is 1", "12", S.NO_ANSWER),
    ("Working.\nThe answer is 12", "12", S.NO_ANSWER),
    ("Working.\n#### 12", "12", S.NO_ANSWER),
    ("So we get \\boxed{1", "12", S.NO_ANSWER),
    ("12", "12", S.NO_ANSWER),  # a reply that is one value so far is not marked as final
    ("The total is 12 apples and", "12", S.NO_ANSWER),
])
def test_a_cut_off_reply_is_judged_only_on_an_answer_marked_whole(reply: str, expected: str,
                                                                   verdict: VerdictState):
    result = verify_reply(reply, expect=expected, finish="length")
    assert result.verdict == verdict, result.reason
    if verdict != S.NO_ANSWER:
        assert "cut the reply off after this answer" in result.reason


def test_before_cut_keeps_what_was_written_whole():
    assert before_cut("The answer is 12. Let me") == "The answer is 12."
    assert before_cut("A line.\nThe answer is 1") == "A line.\n"
    assert before_cut("It is 1.5 units") == ""  # "1.5" is no sentence end
    assert before_cut("x \\boxed{5}") == "x \\boxed{5}"
    assert cut_off_answer("Hmm, 3 * 4 = 12.\nSo") is None  # a number is never marked
    assert math_vote_key("The answer is 1", finish="length") is None
    assert math_vote_key("The answer is 1", finish="stop") == "1"
    assert math_vote_key("The answer is 12.\nCheck: 1", finish="length") == "12"


def test_a_cut_off_reply_still_thinking_says_what_cut_it():
    verdict = verify_reply("<think>7 * 8 is", expect="56", finish="length")
    assert verdict.verdict == S.NO_ANSWER and "still thinking" in verdict.reason
    assert "token limit" in verdict.reason


# ------------------------------------------------------------------ answer found, no key


def test_a_free_reply_with_a_final_answer_reads_as_answer_found():
    verdict = verify_reply("The answer is 4.")
    assert verdict.verdict == S.ANSWERED and verdict.got == "4"
    assert verdict.headline == "• Answer found: 4 · no key to check against"
    assert "no answer key" in verdict.reason
    for blank in ("", "  "):  # a blank key is no key
        assert verify_reply("The answer is 4.", expect=blank).verdict == S.ANSWERED
    assert verify_reply("The answer is 4.", expect="4").verdict == S.PASS
    cut = verify_reply("The answer is 4. Let me also", finish="length")
    assert cut.verdict == S.ANSWERED and "cut the reply off after this answer" in cut.reason
    for reply, finish in (("Two plus two makes 4", None), ("The answer is 4", "length"),
                          ("", "stop")):
        none = verify_reply(reply, finish=finish)
        assert none.verdict == S.NO_ANSWER and none.got is None, reply


def test_the_one_label_table_says_answer_found():
    assert set(VERDICT_LABELS) == set(VerdictState)
    assert verdict_title(S.ANSWERED) == "• Answer found · no key to check against"
    assert verdict_headline(S.ANSWERED, "4") == "• Answer found: 4 · no key to check against"
    assert verdict_headline(S.ANSWERED, None) == verdict_title(S.ANSWERED)
    assert verdict_headline(S.FAIL, "4") == "✗ Failed"  # got stays in the small print
    assert got_in_headline(S.ANSWERED, "4") and not got_in_headline(S.FAIL, "4")
    long = verdict_headline(S.ANSWERED, "x" * 500)
    assert len(long) < 140 and "…" in long


def test_the_handout_reads_answer_found():
    turn = {"prompt": "What is 2 + 2?", "answer": "The answer is 4.", "verdict": "answered",
            "verdict_detail": {"expected": "", "got": "4", "reason": "no key"}}
    line = verdict_line(turn)
    assert line.startswith("• Answer found: 4 · no key to check against")
    assert "got 4" not in line and "No answer" not in line
    markdown = to_markdown([{"model": "m", "role": "instruct", "turns": [turn]}])
    assert "Answer found: 4 · no key to check against" in markdown


# ------------------------------------------------------------------------- the CLI


def _cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = verify_main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_finish_option(tmp_path: Path):
    reply, tests = tmp_path / "reply.md", tmp_path / "tests.py"
    reply.write_text(UNCLOSED_ADD)
    tests.write_text(ADD_TESTS)
    code, out, _ = _cli([str(reply), "--tests", str(tests), "--json"])  # default: stop
    data = json.loads(out)
    assert code == 0 and data["verdict"] == "pass" and "never closed" in data["reason"]
    code, out, _ = _cli([str(reply), "--tests", str(tests), "--finish", "length", "--json"])
    assert code == 0 and json.loads(out)["verdict"] == "no-answer"
    reply.write_text(CUT_WORKING)
    code, out, _ = _cli([str(reply), "--expect", "12", "--finish", "length"])
    assert out.startswith("– NO-ANSWER: No answer: the token limit cut the reply off")
    code, _, err = _cli([str(reply), "--finish", "sideways"])
    assert code == 2 and err


def test_cli_free_reply_reads_answer_found(tmp_path: Path):
    reply = tmp_path / "reply.md"
    reply.write_text("2 + 2 = 4.\n\nThe answer is 4.")
    code, out, _ = _cli([str(reply)])
    assert code == 0
    assert out.splitlines()[0] == "• Answer found: 4 · no key to check against"
    assert "NO-ANSWER" not in out


@pytest.mark.parametrize("blank", ["", "   "])
def test_cli_empty_expect_is_a_usage_error(tmp_path: Path, blank: str):
    reply = tmp_path / "reply.md"
    reply.write_text("The answer is 4.")
    for run in (lambda: _cli([str(reply), "--expect", blank]),
                lambda: _triptych(["verify", str(reply), "--expect", blank, "--json"])):
        code, out, err = run()
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and "--expect needs a value" in err and "Traceback" not in err


def _triptych(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = triptych(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_rollouts_empty_expect_is_a_usage_error():
    code, out, err = _triptych(["rollouts", "What is 2 + 2?", "--models",
                                "smollm2-135m-instruct", "-n", "2", "--expect", ""])
    assert code == 2 and out == "" and "--expect needs a value" in err


# ------------------------------------------------------------- a pane and rollouts


def _entry() -> Any:
    return load_catalog().get("smollm2-135m-instruct")


def test_rollouts_cut_off_mid_working_have_no_answer_and_no_vote():
    worker = FakeWorker(_entry(), script=lambda r: answer_script(
        CUT_WORKING, finish_reason=FinishReason.LENGTH))
    run = run_rollouts(worker, GenerationRequest("3 * 4?"), [0, 1], AnswerKey(expect="12"))
    assert [r.verdict.verdict if r.verdict else None for r in run.rollouts] == [S.NO_ANSWER] * 2
    assert all("token limit" in (r.verdict.reason if r.verdict else "") for r in run.rollouts)
    assert [r.vote for r in run.rollouts] == [None, None]
    line = RunFigures.of(run.to_dict()).line()
    assert "0 correct of 2 checked" in line and "Majority" not in line


def test_rollouts_run_an_unclosed_block_of_a_reply_that_ended():
    worker = FakeWorker(_entry(), script=lambda r: answer_script(UNCLOSED_ADD))
    run = run_rollouts(worker, GenerationRequest("Write add"), [0], AnswerKey(tests=ADD_TESTS))
    verdict = run.rollouts[0].verdict
    assert verdict is not None and verdict.verdict == S.PASS and run.rollouts[0].vote
    cut = FakeWorker(_entry(), script=lambda r: answer_script(
        UNCLOSED_ADD, finish_reason=FinishReason.LENGTH))
    stopped = run_rollouts(cut, GenerationRequest("Write add"), [0], AnswerKey(tests=ADD_TESTS))
    assert stopped.rollouts[0].verdict is not None
    assert stopped.rollouts[0].verdict.verdict == S.NO_ANSWER and stopped.rollouts[0].vote is None


def test_rollouts_without_a_key_find_answers_and_say_no_key():
    worker = FakeWorker(_entry(), script=lambda r: answer_script("The answer is 4."))
    run = run_rollouts(worker, GenerationRequest("2 + 2?"), [0, 1], AnswerKey())
    assert [r.verdict.verdict if r.verdict else None for r in run.rollouts] == [S.ANSWERED] * 2
    data = run.to_dict()
    assert data["keyed"] is False
    figures = RunFigures.of(data)  # as export reads it: no pass@k for a run with no key
    assert not figures.keyed and "pass@" not in figures.line()


@pytest.mark.parametrize(("finish", "verdict"), [(FinishReason.STOP, S.PASS),
                                                  (FinishReason.LENGTH, S.NO_ANSWER)])
def test_a_pane_verifies_with_how_its_reply_ended(tmp_path: Path, finish: FinishReason,
                                                  verdict: VerdictState):
    from desktop_app.verify import find_problem

    catalog = fake_catalog(tmp_path / "models")
    problem = find_problem("code-add")
    engine = FakeEngine(answer_script(UNCLOSED_ADD, finish_reason=finish))
    instruct = next(e.id for e in catalog if e.role == "instruct")
    session = PaneSession(catalog, PaneConfig(model_id=instruct), worker_factory=engine.worker)
    turn = session.send(problem.prompt, problem)
    assert turn is not None
    run_to_end(session)
    try:
        result = session.verify(turn)
        assert result.verdict == verdict, result.reason
    finally:
        session.close_worker()


@pytest.mark.slow
def test_real_smollm2_cut_off_by_the_token_limit_has_no_answer(smollm2_gguf: Path):
    """Real llama.cpp: a few tokens of working, cut off by --max-tokens, are no answer (not
    "✗ Failed (low confidence)" from a number in them), and cast no vote."""
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "rollouts",
         "Work it out step by step: what is 15 + 27?", "--models", "smollm2-135m-instruct",
         "-n", "2", "--expect", "42", "--seed", "3", "--max-tokens", "6", "--json"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(done.stdout)["models"]
    assert [r["finish_reason"] for r in model["rollouts"]] == ["length", "length"]
    assert [r["verdict"] for r in model["rollouts"]] == ["no-answer", "no-answer"]
    assert model["majority"]["answer"] is None and model["correct"] == 0


@pytest.mark.parametrize("reply", [
    "3.\n\n<strong>Answer:</strong>",  # gemma's continuation of a free question, seen live
    "Let me see.\n\\boxed{}",
    "Working done.\n#### **",
])
@pytest.mark.parametrize("expect", [None, "3"])
def test_a_marked_but_empty_final_answer_is_no_answer(reply, expect):
    """A marker with nothing after it is not an answer found ("• Answer found · no key",
    with no answer in it) nor a wrong one ("expected 3, got "): it is no answer, said so."""
    verdict = verify_reply(reply, expect=expect, finish="stop")
    assert verdict.verdict == VerdictState.NO_ANSWER
    assert "leaves it empty" in verdict.reason and not verdict.got
    assert math_vote_key(reply, finish="stop") is None
