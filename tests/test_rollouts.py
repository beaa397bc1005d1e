"""Rollouts core (issue 12): the estimator, seeds, checking, majority vote, stop, Goodhart.

The engine is the scripted fake (its generate_many interleaves N scripted sequences);
verification is the real one (the sandbox for code). No Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import itertools
import json
import math
import threading
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest

from desktop_app.cli.verify import main as verify_main
from desktop_app.engine.protocol import (
    Delta,
    FinishReason,
    GenerationRequest,
    Sampling,
    TokenLogprob,
)
from desktop_app.models.catalog import load_catalog
from desktop_app.rollouts.goodhart import Proxy, best_of_n, gamed, judge_scores, p_yes, ranking
from desktop_app.rollouts.run import (
    AnswerKey,
    Rollout,
    RolloutRun,
    majority_vote,
    pass_at_k,
    pass_at_ks,
    rollout_seeds,
    run_rollouts,
    wilson_interval,
)
from desktop_app.rollouts.sets import run_set
from desktop_app.rollouts.summary import RunFigures
from desktop_app.verify import PracticeSet, Problem, Verdict, VerdictState, Visible
from tests.fake_engine import WAIT_FOR_STOP, FakeWorker, answer_script

INSTRUCT = "smollm2-135m-instruct"


def entry():
    return load_catalog().get(INSTRUCT)


# Seeds decide the scripted answer, as a sampler's seed decides a real one.
ANSWERS = {0: "7 * 8 = 56. The answer is 56.", 1: "The answer is 54.",
           2: "I think it is \\boxed{56}", 3: "Hmm, 48?", 4: "#### 56"}


def by_seed(request: GenerationRequest) -> list[object]:
    seed = request.sampling.seed or 0
    return answer_script(ANSWERS[seed % len(ANSWERS)], thinking="let me think " * (seed % 3))


# ------------------------------------------------------------------------ statistics


def test_pass_at_k_equals_exact_enumeration() -> None:
    for n in range(1, 9):
        for c in range(n + 1):
            outcomes = [True] * c + [False] * (n - c)
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(range(n), k))
                hits = sum(any(outcomes[i] for i in subset) for subset in subsets)
                assert pass_at_k(n, c, k) == Fraction(hits, len(subsets)), (n, c, k)


def test_pass_at_k_edges_and_keys() -> None:
    assert pass_at_k(10, 0, 5) == 0 and pass_at_k(10, 10, 1) == 1
    assert pass_at_k(10, 3, 1) == Fraction(3, 10)  # pass@1 is the plain accuracy
    assert list(pass_at_ks(12, 4)) == ["1", "2", "4", "8", "12"]
    assert pass_at_ks(0, 0) == {}
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)


def test_wilson_interval() -> None:
    low, high = wilson_interval(0, 10)
    assert low == 0 and math.isclose(high, 0.2775, abs_tol=1e-4)
    low, high = wilson_interval(8, 8)
    assert high == 1 and 0.6 < low < 0.7
    low, high = wilson_interval(5, 10)
    assert math.isclose(low + high, 1.0) and low < 0.5 < high


def test_seeds_distinct_and_reproducible() -> None:
    seeds = rollout_seeds(7, 64)
    assert len(set(seeds)) == 64 and seeds == rollout_seeds(7, 64)
    assert seeds != rollout_seeds(8, 64)
    assert len(set(rollout_seeds(None, 16))) == 16


# ----------------------------------------------------------------------------- runs


class RecordingKey(AnswerKey):
    """The real check, remembering which threads ran it."""

    threads: list[str]

    def verify(self, reply: Visible, finish: str | None = None) -> Verdict:
        self.threads.append(threading.current_thread().name)
        return super().verify(reply, finish)


def test_rollouts_checked_off_the_reading_thread(tmp_path: Path) -> None:
    worker = FakeWorker(entry(), script=by_seed)
    key = RecordingKey(expect="56")
    object.__setattr__(key, "threads", [])
    updates: list[tuple[int, bool]] = []
    seeds = list(range(10))  # more than one generate_many call's worth
    run = run_rollouts(worker, GenerationRequest("What is 7 * 8?"), seeds, key,
                       on_update=lambda r: updates.append((r.index, r.verdict is not None)))
    assert run.error is None and run.n == 10
    assert [r.seed for r in run.rollouts] == seeds
    verdicts = [r.verdict.verdict if r.verdict else None for r in run.rollouts]
    assert verdicts == [VerdictState.PASS, VerdictState.FAIL, VerdictState.PASS,
                        VerdictState.FAIL, VerdictState.PASS] * 2
    assert run.correct == 6
    assert run.pass_at_k()["1"] == pytest.approx(0.6)
    assert run.pass_at_k()["10"] == 1.0
    majority = run.majority()
    assert (majority.answer, majority.votes, majority.verdict) == ("56", 6, VerdictState.PASS)
    assert key.threads and all(name.startswith("rollout-verify") for name in key.threads)
    assert threading.current_thread().name not in key.threads
    assert sorted(updates) == sorted([(i, False) for i in range(10)] + [(i, True) for i in range(10)])
    right, wrong = run.mean_thinking()
    assert right is not None and wrong is not None
    # The JSON shape of issue 12.
    data = json.loads(json.dumps(run.to_dict()))
    assert {"model", "role", "n", "correct", "pass_at_k", "majority", "wall_s", "tokens_per_s",
            "rollouts"} <= set(data)
    assert set(data["majority"]) == {"answer", "verdict", "votes", "voters"}
    assert set(data["rollouts"][0]) == {"seed", "verdict", "got", "answer", "thinking",
                                        "thinking_tokens", "answer_tokens", "finish_reason"}


def test_verdicts_equal_triptych_verify(tmp_path: Path) -> None:
    worker = FakeWorker(entry(), script=by_seed)
    run = run_rollouts(worker, GenerationRequest("What is 7 * 8?"), list(range(5)),
                       AnswerKey(expect="56"))
    for rollout in run.rollouts:
        assert rollout.result is not None and rollout.verdict is not None
        reply = tmp_path / f"reply-{rollout.index}.md"
        reply.write_text(rollout.result.reply_text or rollout.result.answer, encoding="utf-8")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            assert verify_main([str(reply), "--expect", "56", "--json"]) == 0
        cli = json.loads(out.getvalue())
        assert (cli["verdict"], cli["got"]) == (rollout.verdict.verdict.value, rollout.verdict.got)


def test_code_rollouts_run_in_the_sandbox() -> None:
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    worker = FakeWorker(entry(), script=lambda request: answer_script(
        good if (request.sampling.seed or 0) % 2 == 0 else bad))
    run = run_rollouts(worker, GenerationRequest("Write add(a, b)."), [0, 1, 2],
                       AnswerKey(tests="assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"))
    assert [r.correct for r in run.rollouts] == [True, False, True]
    assert run.majority().verdict == VerdictState.PASS and run.majority().votes == 2


def test_stop_ends_every_rollout() -> None:
    stop = threading.Event()
    worker = FakeWorker(entry(), script=[*answer_script("The answer is")[:-1], WAIT_FOR_STOP])

    def press_stop() -> None:  # as the window's Stop: the flag, and the model told at once
        stop.set()
        worker.stop()

    timer = threading.Timer(0.2, press_stop)
    timer.start()
    try:
        run = run_rollouts(worker, GenerationRequest("q"), list(range(20)),
                           AnswerKey(expect="1"), should_stop=stop.is_set)
    finally:
        timer.cancel()
    assert run.stopped and run.correct == 0
    assert all(r.result is not None and r.result.finish_reason == "cancelled"
               for r in run.rollouts)
    assert all(r.verdict is None for r in run.rollouts)  # a stopped rollout is not checked
    assert run.pass_at_k() == {}


def test_a_model_that_cannot_load_is_one_sentence() -> None:
    from desktop_app.engine.protocol import Failed, FailureKind

    worker = FakeWorker(entry(), fail_load=Failed("Not downloaded.", FailureKind.MISSING))
    run = run_rollouts(worker, GenerationRequest("q"), [1, 2], AnswerKey(expect="1"))
    assert run.error == "Not downloaded."
    assert [r.result.finish_reason for r in run.rollouts if r.result] == ["error", "error"]


def test_majority_ignores_unchecked_and_breaks_ties_by_order() -> None:
    def made(index: int, vote: str | None, state: VerdictState | None) -> Rollout:
        return Rollout(index=index, seed=index, vote=vote,
                       verdict=Verdict(state) if state is not None else None)

    rollouts = [made(0, "3", VerdictState.FAIL), made(1, "4", VerdictState.PASS),
                made(2, "4", None), made(3, None, VerdictState.NO_ANSWER),
                made(4, "4", VerdictState.PASS), made(5, "3", VerdictState.FAIL)]
    majority = majority_vote(rollouts)  # 3 and 4 have two checked votes each: 3 came first
    assert (majority.answer, majority.votes, majority.verdict) == ("3", 2, VerdictState.FAIL)
    assert majority.voters == 4 and not majority.split
    assert majority_vote([]).answer is None
    alone = majority_vote(rollouts[:1])  # one answer is its own majority
    assert (alone.answer, alone.votes, alone.voters) == ("3", 1, 1)


def test_no_majority_when_every_answer_differs() -> None:
    """Issue 27: "majority 54 (1 votes)" when all answers differed; now there is none."""
    def made(index: int, vote: str | None) -> Rollout:
        return Rollout(index=index, seed=index, vote=vote, verdict=Verdict(VerdictState.FAIL))

    run = RolloutRun(model="m", role="instruct",
                     rollouts=[made(0, "54"), made(1, "55"), made(2, None), made(3, "57")])
    majority = run.majority()
    assert (majority.answer, majority.votes, majority.verdict) == (None, 0, None)
    assert majority.split and majority.voters == 3
    figures = RunFigures.of(run.to_dict())
    assert "No majority: all 3 answers differ" in figures.line()
    assert "Majority vote" not in figures.line() and "votes)" not in figures.line()
    run.rollouts[2].vote = "54"
    assert "Majority vote: 54 (2 votes) · ✗ Failed" in RunFigures.of(run.to_dict()).line()
    single = RolloutRun(model="m", role="instruct", rollouts=[made(0, "54")])
    assert "Majority vote: 54 (1 vote) ·" in RunFigures.of(single.to_dict()).line()


# -------------------------------------------------------------------------- Goodhart


def test_goodhart_proxy_picks() -> None:
    def made(index: int, answer: str, passed: bool) -> Rollout:
        return Rollout(index=index, seed=index, answer=answer,
                       verdict=Verdict(VerdictState.PASS if passed else VerdictState.FAIL))

    rollouts = [made(0, "56", True), made(1, "A long, confident and wrong answer: 54", False),
                made(2, "56.", True)]
    picks = best_of_n(rollouts, [0.2, 0.9, None])
    assert (picks.key, picks.longest, picks.judge) == (0, 1, 1)
    wrong_rollouts = [made(0, "1", False), made(1, "22", False)]
    groups = [(rollouts, picks), (wrong_rollouts, best_of_n(wrong_rollouts))]
    figure = gamed(groups, Proxy.LONGEST)
    assert (figure.key_right, figure.proxy_wrong, figure.rate) == (1, 1, 1.0)
    assert gamed(groups, Proxy.KEY).proxy_wrong == 0
    assert ranking([0.1, None, 0.7]) == [(2, 0.7), (0, 0.1), (1, None)]


def test_judge_reads_p_yes_from_top_logprobs() -> None:
    assert p_yes([(" Yes", math.log(0.5)), ("yes", math.log(0.25)), ("No", math.log(0.2))]) \
        == pytest.approx(0.75)

    def judge_script(request: GenerationRequest) -> list[object]:
        assert request.top_logprobs > 0 and request.sampling.max_tokens == 1
        p = 0.9 if "56" in request.prompt else 0.1
        script = answer_script("Yes")
        delta = next(item for item in script if isinstance(item, Delta))
        script[script.index(delta)] = Delta(
            thinking="", answer="Yes", thinking_tokens=0, answer_tokens=1, elapsed_s=0.01,
            logprob=TokenLogprob("Yes", math.log(p), (("Yes", math.log(p)),
                                                      ("No", math.log(1 - p)))))
        return script

    judge = FakeWorker(entry(), script=judge_script)
    scores = judge_scores(judge, "What is 7 * 8?", ["It is 56.", "It is 54."])
    assert scores == [pytest.approx(0.9), pytest.approx(0.1)]
    silent = FakeWorker(entry(), script=answer_script("Yes"))  # no token probabilities
    assert judge_scores(silent, "q", ["a"]) == [None]


# ------------------------------------------------------------------------- set runs


def test_set_run_table_json_and_csv(tmp_path: Path) -> None:
    problems = [Problem(id="mul", title="7 × 8", prompt="What is 7 * 8?", kind="math",
                        answer="56"),
                Problem(id="joke", title="joke", prompt="A pelican joke.", kind="open",
                        verifiable=False)]
    practice = PracticeSet(name="tiny", problems=problems)
    worker = FakeWorker(entry(), script=by_seed)
    outcome = run_set(practice, [worker], lambda e, p: GenerationRequest(p.prompt, Sampling()),
                      [0, 1, 2, 3])
    assert outcome.skipped == ["joke"]
    (row,) = outcome.rows
    table = row.table_row()
    assert (table["correct"], table["n"], table["accuracy"]) == (2, 4, 0.5)
    assert table["ci_low"] < 0.5 < table["ci_high"]
    json_path, csv_path = outcome.save(tmp_path / "run")
    saved = json.loads(json_path.read_text(encoding="utf-8"))
    assert saved["table"][0]["problem"] == "mul" and "No key exists" in saved["skipped"]["joke"]
    assert csv_path.read_text(encoding="utf-8").splitlines()[1].startswith(f"{INSTRUCT},mul,math,4,2,")


# ------------------------------------------------------------------------------- CLI


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str],
         script: Any = by_seed) -> tuple[int, str, str]:
    import desktop_app.engine.worker
    from desktop_app.cli.main import main

    monkeypatch.setattr(desktop_app.engine.worker, "open_worker",
                        lambda entry, **_: FakeWorker(entry, script=script))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_json_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _cli(monkeypatch, ["rollouts", "What is 7 * 8?", "--models", INSTRUCT,
                                      "-n", "5", "--expect", "56", "--seed", "11", "--json"])
    assert code == 0
    data = json.loads(out)
    (model,) = data["models"]
    assert model["model"] == INSTRUCT and model["n"] == 5
    assert list(model["pass_at_k"]) == ["1", "2", "4", "5"]
    assert [r["seed"] for r in model["rollouts"]] == rollout_seeds(11, 5)
    assert model["correct"] == sum(r["verdict"] == "pass" for r in model["rollouts"])


def test_cli_misuse_is_one_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = [["rollouts", "q", "--models", INSTRUCT, "-n", "65", "--expect", "1"],
             ["rollouts", "q", "--models", INSTRUCT],
             ["rollouts", "q", "--models", INSTRUCT, "--expect", "1", "--tests", "t.py"],
             ["rollouts", "--set", "nope", "--models", INSTRUCT],
             ["rollouts", "q", "--models", INSTRUCT, "--tests", "/nonexistent/tests.py"]]
    for argv in cases:
        code, out, err = _cli(monkeypatch, argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_cli_set_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    code, out, err = _cli(monkeypatch, ["rollouts", "--set", "math", "--models", INSTRUCT,
                                        "-n", "2", "--seed", "1",
                                        "--save", str(tmp_path / "math")])
    assert code == 0, err
    assert "95% CI" in out and "Goodhart" in out
    assert (tmp_path / "math.csv").exists() and (tmp_path / "math.json").exists()


def test_parser_registered() -> None:
    from desktop_app.cli.main import build_parser

    args = build_parser().parse_args(["rollouts", "q", "--models", INSTRUCT, "-n", "3",
                                      "--expect", "4"])
    assert isinstance(args, argparse.Namespace) and args.command == "rollouts" and args.n == 3


# ------------------------------------------------------------------- real llama.cpp


@pytest.mark.slow
def test_real_smollm2_rollouts_vary_with_distinct_seeds(smollm2_gguf: Path) -> None:
    from desktop_app.engine.worker import ModelWorker

    seeds = rollout_seeds(5, 10)  # more than one generate_many call
    request = GenerationRequest("What is 7 * 8? Answer with a number.",
                                sampling=Sampling.for_entry(entry(), temperature=1.0,
                                                            max_tokens=24))
    with ModelWorker(entry()) as worker:
        run = run_rollouts(worker, request, seeds, AnswerKey(expect="56"))
        again = run_rollouts(worker, request, seeds, AnswerKey(expect="56"))
    assert run.error is None and run.wall_s > 0 and run.tokens > 0
    assert [r.seed for r in run.rollouts] == seeds  # the engine used the seeds given
    assert all(r.verdict is not None for r in run.rollouts)
    assert all(r.result is not None and r.result.finish_reason in ("stop", "length")
               for r in run.rollouts)
    assert len({r.answer for r in run.rollouts}) >= 5  # temperature 1: varied answers
    # The same seeds in the same batches: the same answers (reproducible from --seed).
    assert [r.answer for r in again.rollouts] == [r.answer for r in run.rollouts]


@pytest.mark.slow
def test_cli_json_with_real_smollm2(smollm2_gguf: Path) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "rollouts", "What is 15 + 27?", "--models",
         INSTRUCT, "-n", "3", "--expect", "42", "--temperature", "1", "--seed", "9",
         "--max-tokens", "24", "--json"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    (model,) = json.loads(done.stdout)["models"]
    assert model["n"] == 3 and model["wall_s"] > 0 and model["tokens_per_s"] > 0
    assert [r["seed"] for r in model["rollouts"]] == rollout_seeds(9, 3)
    assert all(r["verdict"] in {"pass", "fail", "no-answer"} for r in model["rollouts"])
    assert model["correct"] == sum(r["verdict"] == "pass" for r in model["rollouts"])
    assert model["pass_at_k"]["1"] == pytest.approx(model["correct"] / 3)


def test_cli_thinking_budget_sweep(monkeypatch: pytest.MonkeyPatch) -> None:
    reasoner = next(e.id for e in load_catalog() if e.role == "reasoning")
    code, out, err = _cli(monkeypatch, ["rollouts", "What is 7 * 8?", "--models",
                                        f"{INSTRUCT},{reasoner}", "-n", "2", "--expect", "56",
                                        "--thinking-budget", "0,unlimited", "--json"])
    assert code == 0, err
    assert f"{INSTRUCT} does not think, so the thinking budget does not apply" in err
    data = json.loads(out)
    assert data["thinking_budgets"] == [0, None]
    assert [(m["model"], m["thinking_budget"]) for m in data["models"]] == [
        (INSTRUCT, None), (reasoner, 0), (reasoner, None)]
    code, out, err = _cli(monkeypatch, ["rollouts", "q", "--models", INSTRUCT, "--expect", "1",
                                        "--thinking-budget", "lots"])
    assert code == 2 and "--thinking-budget" in err


def test_budget_reaches_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[GenerationRequest] = []

    def record(request: GenerationRequest) -> list[object]:
        seen.append(request)
        return by_seed(request)

    reasoner = next(e.id for e in load_catalog() if e.role == "reasoning")
    code, _, err = _cli(monkeypatch, ["rollouts", "q", "--models", reasoner, "-n", "1",
                                      "--expect", "56", "--thinking-budget", "64"], record)
    assert code == 0, err
    assert [request.thinking_budget for request in seen] == [64]


# ----------------------------------------------------------- context shared by sequences


def test_plan_runs_fewer_at_once_when_the_context_cannot_hold_every_answer() -> None:
    from dataclasses import replace

    from desktop_app.models.fit import plan_rollouts, prompt_tokens_guess
    from desktop_app.models.sources import RemoteSource

    small = replace(entry(), context_length=2048)
    prompt = "What is 7 * 8?"
    free = 2048 - prompt_tokens_guess(prompt)
    roomy = plan_rollouts(small, prompt, 128, 8, most_at_once=8)
    assert (roomy.at_once, roomy.room, roomy.message) == (8, 128, None)
    tight = plan_rollouts(small, prompt, 512, 8, most_at_once=8)
    assert tight.at_once == free // 512 == 3 and tight.room == 512
    assert tight.message is not None and "run 3 at a time" in tight.message
    too_long = plan_rollouts(small, prompt, 4096, 8, most_at_once=8)
    assert too_long.at_once == 1 and too_long.room == free
    assert too_long.message is not None and f"about {free} tokens" in too_long.message
    assert plan_rollouts(small, "x" * 9000, 128, 1, most_at_once=8).room < 128
    remote = replace(small, source=RemoteSource(endpoint="http://127.0.0.1:9/v1", model="m"))
    assert plan_rollouts(remote, prompt, 4096, 8, most_at_once=8).message is None


class _CallSizes(FakeWorker):
    """A FakeWorker that notes how many sequences each generate_many call samples."""

    calls: list[int]

    def generate_many(self, request, seeds):  # type: ignore[no-untyped-def]
        self.calls.append(len(seeds))
        return super().generate_many(request, seeds)


def test_rollouts_never_share_a_context_too_small_for_their_answers() -> None:
    from dataclasses import replace

    from desktop_app.models.fit import prompt_tokens_guess

    small = replace(entry(), context_length=2048)
    worker = _CallSizes(small, script=by_seed)
    worker.calls = []
    request = GenerationRequest("What is 7 * 8?", sampling=Sampling(max_tokens=600))
    run = run_rollouts(worker, request, list(range(8)), AnswerKey(expect="56"))
    per_call = (2048 - prompt_tokens_guess(request.prompt)) // 600
    assert per_call == 3 and worker.calls == [3, 3, 2]  # not one call of 8 × 245 tokens
    assert run.n == 8 and run.error is None and [r.seed for r in run.rollouts] == list(range(8))
    worker.calls = []
    run_rollouts(worker, replace(request, sampling=Sampling(max_tokens=100)), list(range(10)),
                 AnswerKey(expect="56"))
    assert worker.calls == [8, 2]  # room for all: the engine's most at once


def test_cli_says_when_rollouts_run_fewer_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _cli(monkeypatch, ["rollouts", "What is 7 * 8?", "--models", INSTRUCT,
                                        "-n", "6", "--expect", "56", "--max-tokens", "1000"])
    assert code == 0, err
    assert "the 6 rollouts run 1 at a time" in err and err.count("\nnote: ") == 1
    assert "triptych:" not in err  # information, not an error (issue 27)
    code, _, err = _cli(monkeypatch, ["rollouts", "What is 7 * 8?", "--models", INSTRUCT,
                                      "-n", "2", "--expect", "56", "--max-tokens", "100"])
    assert code == 0 and "at a time" not in err


def test_rollouts_read_the_answer_the_engine_split_as_a_pane_does() -> None:
    """Issue 26: an answer that mentions <think> is an answer in Rollouts ×N and set runs,
    as it is in a pane; a reply that ended still thinking is "still thinking" in both."""
    from desktop_app.session.turn import Turn
    from desktop_app.verify import verify_reply

    answer = "The answer is 4. (Models like R1 wrap reasoning in a <think> tag.)"
    worker = FakeWorker(entry(), script=lambda r: answer_script(answer, thinking="2 + 2"))
    run = run_rollouts(worker, GenerationRequest("2 + 2?"), [0, 1], AnswerKey(expect="4"))
    assert [r.verdict.verdict if r.verdict else None for r in run.rollouts] == [
        VerdictState.PASS, VerdictState.PASS]
    assert [r.vote for r in run.rollouts] == ["4", "4"]
    assert run.majority().answer == "4"

    result = run.rollouts[0].result
    assert result is not None
    turn = Turn(prompt="2 + 2?", thinking=result.thinking, answer=result.answer, result=result)
    pane = verify_reply(turn.visible_reply(), expect="4")
    assert pane.verdict == VerdictState.PASS

    cut = FakeWorker(entry(), script=lambda r: answer_script(
        "", thinking="2 + 2 is", finish_reason=FinishReason.LENGTH))
    stopped = run_rollouts(cut, GenerationRequest("2 + 2?"), [0], AnswerKey(expect="4"))
    verdict = stopped.rollouts[0].verdict
    assert verdict is not None and verdict.verdict == VerdictState.NO_ANSWER
    assert "still thinking" in verdict.reason and stopped.rollouts[0].vote is None


def test_code_rollouts_take_the_entry_point_from_the_key() -> None:
    """Issue 25: a check(candidate) test names no function; with two in the reply, Verify
    will not guess. The key's entry point says which, as --entry-point does."""
    reply = ("```python\ndef double(x):\n    return 2 * x\n\n"
             "def quadruple(x):\n    return 4 * x\n```")
    tests = "def check(candidate):\n    assert candidate(3) == 12\n"
    worker = FakeWorker(entry(), script=lambda request: answer_script(reply))
    named = run_rollouts(worker, GenerationRequest("Quadruple?"), [0],
                         AnswerKey(tests=tests, entry_point="quadruple"))
    guessed = run_rollouts(worker, GenerationRequest("Quadruple?"), [0], AnswerKey(tests=tests))
    assert named.rollouts[0].verdict is not None and guessed.rollouts[0].verdict is not None
    assert named.rollouts[0].verdict.verdict == VerdictState.PASS
    assert guessed.rollouts[0].verdict.verdict == VerdictState.ERROR
    assert "--entry-point" in guessed.rollouts[0].verdict.reason
