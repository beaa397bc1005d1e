"""Rollouts: many answers to one prompt per model, each checked against the answer key.

This is reinforcement learning's *guess and check* made visible: a model samples N
answers from one prompt (the engine's ``generate_many``: the prompt is evaluated once and
its KV cache shared), each answer is verified as soon as it finishes (the same
:func:`desktop_app.verify.verify_reply` as ``triptych verify``, in a pool of at most two
threads, never in the thread that reads the model), and the figures follow: pass@1,
pass@k by the unbiased estimator, the majority vote (self-consistency), mean thinking
tokens of correct vs wrong rollouts, the time taken (loading the model not counted),
tokens per second.

No Qt: the window and the CLI both drive :func:`run_rollouts`.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from desktop_app.engine.protocol import (
    Delta,
    Failed,
    Finished,
    FinishReason,
    GenerationRequest,
    GenerationResult,
)
from desktop_app.models.fit import RolloutPlan, plan_rollouts
from desktop_app.text.i18n import N_, _
from desktop_app.verify import Problem, Verdict, VerdictState, Visible, verify_reply

MAX_ROLLOUTS = 64
# Sequences one generate_many call samples at once: the engine's limit for one context
# (backends.llama.MAX_SEQUENCES, not imported here because the parent process never loads
# llama.cpp). More rollouts than this run as several calls of at most this many.
SEQUENCES_PER_CALL = 8
VERIFY_THREADS = 2  # at most two sandboxes at a time: the model keeps its cores
SEED_RANGE = 2**31


# -------------------------------------------------------------------------- statistics


def pass_at_k(n: int, c: int, k: int) -> Fraction:
    """The unbiased pass@k estimator 1 − C(n−c, k) / C(n, k), exactly.

    The chance that at least one of k rollouts drawn without replacement from the n made
    is correct, given that c of them were (the Codex paper's estimator)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


def pass_at_ks(n: int, c: int) -> dict[str, float]:
    """pass@k for k = 1, 2, 4, … and n itself, keyed by k as text (the JSON's shape)."""
    ks = sorted({2**i for i in range(n.bit_length()) if 2**i <= n} | {n}) if n else []
    return {str(k): float(pass_at_k(n, c, k)) for k in ks}


def wilson_interval(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval for a proportion (95 % by default): unlike the normal
    approximation it stays inside [0, 1] and is honest for 0/8 or 8/8."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def parse_budgets(text: str) -> list[int | None]:
    """``0,64,256,unlimited`` -> [0, 64, 256, None]; a ValueError names a bad value."""
    budgets: list[int | None] = []
    for part in (piece.strip().casefold() for piece in text.split(",")):
        if part in ("unlimited", "none", "inf"):
            budgets.append(None)
            continue
        if not part.isdigit():
            raise ValueError(_("a thinking budget is a number of tokens or 'unlimited', not "
                               "{value}").format(value=repr(part)))
        budgets.append(int(part))
    if not budgets:
        raise ValueError(_("give at least one thinking budget"))
    return budgets


def budget_applies(entry: Any) -> bool:
    """Whether a thinking budget means anything for this model (it thinks)."""
    return bool(entry.prompt.supports_thinking)


def budget_message(entry: Any) -> str | None:
    """The model's own stop-thinking sentence, written before the closing marker when its
    thinking budget is spent (None: its catalog entry has none)."""
    return entry.prompt.budget_message or None


# marked here, translated where shown: "{model} " + _(BUDGET_DOES_NOT_APPLY)
BUDGET_DOES_NOT_APPLY = N_("does not think, so the thinking budget does not apply")


def rollout_seeds(seed: int | None, n: int) -> list[int]:
    """N distinct seeds: the same for the same ``seed``, fresh ones for None."""
    source = random.Random(seed) if seed is not None else random.SystemRandom()
    return source.sample(range(SEED_RANGE), n)


# ---------------------------------------------------------------------------- the key


@dataclass(frozen=True)
class AnswerKey:
    """What the rollouts are checked against: a typed value, a tests file, or a practice
    problem's key. ``secret_paths``: files the model's code must not read."""

    expect: str | None = None
    tests: str | None = None
    problem: Problem | None = None
    secret_paths: tuple[str, ...] = ()
    entry_point: str | None = None  # with tests: the function check(candidate) receives

    @property
    def verifiable(self) -> bool:
        if self.expect is not None or self.tests is not None:
            return True
        return self.problem is not None and self.problem.verifiable

    @property
    def kind(self) -> str:
        if self.tests is not None:
            return "code"
        if self.expect is not None:
            return "math"
        return self.problem.kind if self.problem is not None else "open"

    def verify(self, reply: Visible, finish: str | None = None) -> Verdict:
        """Check one reply; *finish* is how it ended (the engine's finish reason)."""
        return verify_reply(reply, self.problem, expect=self.expect, tests=self.tests,
                            secret_paths=self.secret_paths, entry_point=self.entry_point,
                            finish=finish)


def visible_reply(result: GenerationResult) -> Visible:
    """What Verify and the vote read, as in a pane: the answer the engine split off, and
    whether the reply ended still thinking."""
    return Visible(result.answer, still_thinking=result.still_thinking,
                   had_thinking=bool(result.thinking.strip()))


def vote_key(visible: Visible, kind: str, finish: str | None = None) -> str | None:
    """The normalised answer a majority vote counts: one final answer as its canonical value
    (a hedge, a negation, a range or an unmarked number never votes); for code, the last
    code block with its whitespace collapsed. None: no answer to vote with. *finish*: how
    the reply ended; a cut-off reply votes only with what Verify would judge (a final
    answer marked before the cut, a closed block)."""
    from desktop_app.verify.extract import extract_code, is_cut_off, math_vote_key

    if visible.still_thinking:
        return None
    if kind == "code":
        block = extract_code(visible.text)
        if block is None or (not block.closed and is_cut_off(finish)):
            return None
        return " ".join(block.code.split())
    return math_vote_key(Visible(visible.text.strip(), had_thinking=visible.had_thinking),
                         finish=finish)


# ----------------------------------------------------------------------------- results


@dataclass
class Rollout:
    """One sampled answer and, once checked, its verdict."""

    index: int
    seed: int
    result: GenerationResult | None = None  # None while it is still being generated
    verdict: Verdict | None = None  # None until checked
    vote: str | None = None
    thinking: str = ""  # streamed so far (the window shows a rollout while it runs)
    answer: str = ""
    thinking_tokens: int = 0
    answer_tokens: int = 0

    @property
    def correct(self) -> bool:
        return self.verdict is not None and self.verdict.verdict == VerdictState.PASS

    @property
    def finished(self) -> bool:
        return self.result is not None

    def to_dict(self) -> dict[str, Any]:
        result = self.result
        verdict = self.verdict
        return {
            "seed": self.seed,
            "verdict": verdict.verdict.value if verdict is not None else None,
            "got": verdict.got if verdict is not None else None,
            "answer": self.answer,
            "thinking": self.thinking,
            "thinking_tokens": self.thinking_tokens,
            "answer_tokens": self.answer_tokens,
            "finish_reason": result.finish_reason.value if result is not None else None,
        }


@dataclass(frozen=True)
class Majority:
    """Self-consistency: the most common normalised answer, its votes and its verdict.
    ``voters``: rollouts that gave an answer to vote with. When every one of several
    voters gave a different answer there is no majority (``answer`` None)."""

    answer: str | None
    votes: int
    verdict: VerdictState | None
    voters: int = 0

    @property
    def split(self) -> bool:
        """Several answers and all different: no answer is the majority's."""
        return self.answer is None and self.voters > 1

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "votes": self.votes,
                "verdict": self.verdict.value if self.verdict is not None else None,
                "voters": self.voters}


def majority_vote(rollouts: Iterable[Rollout]) -> Majority:
    """The most common vote among checked rollouts (ties: the one reached first); none
    when several voted and no two agree (one vote each is no majority)."""
    checked = [r for r in rollouts if r.verdict is not None and r.vote is not None]
    if not checked:
        return Majority(None, 0, None)
    counts = Counter(r.vote for r in checked)
    answer, votes = counts.most_common(1)[0]
    if votes == 1 and len(checked) > 1:
        return Majority(None, 0, None, voters=len(checked))
    first = next(r for r in checked if r.vote == answer)
    assert first.verdict is not None
    return Majority(answer, votes, first.verdict.verdict, voters=len(checked))


def _mean(values: Sequence[int]) -> float | None:
    return sum(values) / len(values) if values else None


@dataclass
class RolloutRun:
    """Every rollout of one model for one prompt, and the figures drawn from them."""

    model: str
    role: str
    rollouts: list[Rollout]
    kind: str = "math"
    keyed: bool = True  # checked against a key (else each verdict only reads the reply)
    wall_s: float = 0.0  # generation time, model loading excluded
    thinking_budget: int | None = None  # thinking capped at this many tokens (None: no cap)
    error: str | None = None
    stopped: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def n(self) -> int:
        return len(self.rollouts)

    @property
    def checked(self) -> list[Rollout]:
        return [r for r in self.rollouts if r.verdict is not None]

    @property
    def correct(self) -> int:
        return sum(r.correct for r in self.rollouts)

    def pass_at_k(self) -> dict[str, float]:
        """Over the rollouts checked so far (all of them once the run is over)."""
        return pass_at_ks(len(self.checked), self.correct)

    def majority(self) -> Majority:
        return majority_vote(self.rollouts)

    def mean_thinking(self) -> tuple[float | None, float | None]:
        """Mean thinking tokens of the correct and of the wrong rollouts."""
        checked = self.checked
        return (_mean([r.thinking_tokens for r in checked if r.correct]),
                _mean([r.thinking_tokens for r in checked if not r.correct]))

    @property
    def tokens(self) -> int:
        return sum(r.thinking_tokens + r.answer_tokens for r in self.rollouts)

    @property
    def tokens_per_s(self) -> float | None:
        return self.tokens / self.wall_s if self.wall_s > 0 else None

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` shape of one model (see issue 12)."""
        correct_thinking, wrong_thinking = self.mean_thinking()
        return {
            "model": self.model,
            "role": self.role,
            "keyed": self.keyed,
            "thinking_budget": self.thinking_budget,
            "n": self.n,
            "correct": self.correct,
            "pass_at_k": self.pass_at_k(),
            "majority": self.majority().to_dict(),
            "mean_thinking_tokens": {"correct": correct_thinking, "wrong": wrong_thinking},
            "wall_s": round(self.wall_s, 3),
            "tokens_per_s": round(self.tokens_per_s, 2) if self.tokens_per_s else None,
            "error": self.error,
            "stopped": self.stopped,
            "rollouts": [r.to_dict() for r in self.rollouts],
        }


# -------------------------------------------------------------------------------- run

Listener = Callable[[Rollout], None]


def rollout_plan(entry: Any, request: GenerationRequest, rollouts: int) -> RolloutPlan:
    """How many of ``rollouts`` the engine samples at once for this request (and why)."""
    return plan_rollouts(entry, request.prompt, request.sampling.max_tokens, rollouts,
                         SEQUENCES_PER_CALL)


def run_rollouts(
    worker: Any,
    request: GenerationRequest,
    seeds: Sequence[int],
    key: AnswerKey,
    *,
    on_update: Listener | None = None,
    on_event: Callable[[Any], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    at_once: int | None = None,
) -> RolloutRun:
    """Sample ``len(seeds)`` answers with ``worker.generate_many`` and check each.

    ``at_once`` sequences per call (default: as many as the context holds with
    ``max_tokens`` each, see :func:`desktop_app.models.fit.plan_rollouts`).

    Blocking: call it off the GUI thread. Checks run in a pool of at most
    :data:`VERIFY_THREADS` threads as each rollout finishes, while the model keeps
    sampling the others. ``on_update(rollout)`` is called (from this thread or a checking
    thread) when a rollout finishes and again when its verdict is in; ``on_event`` sees
    every engine event (Loading, Loaded, …). ``should_stop`` (or ``worker.stop()``) ends
    the run: rollouts not finished are reported as cancelled, and not checked. A model that
    fails (missing, crashed, a server not answering) ends it too: ``error`` says why, and
    every rollout it did not finish ends failed (``finish_reason`` ``error``).
    """
    entry = worker.entry
    if not 1 <= len(seeds) <= MAX_ROLLOUTS:
        raise ValueError(_("Between 1 and {n} rollouts can be run at once.").format(
            n=MAX_ROLLOUTS))
    run = RolloutRun(model=entry.id, role=entry.role, kind=key.kind, keyed=key.verifiable,
                     thinking_budget=request.thinking_budget,
                     rollouts=[Rollout(index=i, seed=seed) for i, seed in enumerate(seeds)])
    notify = on_update or (lambda rollout: None)
    per_call = at_once or rollout_plan(entry, request, len(seeds)).at_once
    for event in worker.wait_loaded(abandon=should_stop):
        if on_event is not None:
            on_event(event)
        if isinstance(event, Failed):
            run.error = event.message
            return _end_unreached(run)
    pending: list[Future[None]] = []
    with ThreadPoolExecutor(max_workers=VERIFY_THREADS,
                            thread_name_prefix=f"rollout-verify-{entry.id}") as pool:
        started = time.perf_counter()
        for offset in range(0, len(seeds), per_call):
            if should_stop():
                run.stopped = True
                break
            batch = run.rollouts[offset:offset + per_call]
            stream = worker.generate_many(request, [r.seed for r in batch])
            try:
                for event in stream:
                    if on_event is not None:
                        on_event(event)
                    if should_stop():
                        worker.stop()
                    if isinstance(event, Delta) and event.sequence < len(batch):
                        rollout = batch[event.sequence]
                        with run.lock:
                            rollout.thinking += event.thinking
                            rollout.answer += event.answer
                            rollout.thinking_tokens = event.thinking_tokens
                            rollout.answer_tokens = event.answer_tokens
                    elif isinstance(event, Finished) and event.sequence < len(batch):
                        rollout = batch[event.sequence]
                        _finish(rollout, event.result, run)
                        notify(rollout)
                        if event.result.finish_reason != FinishReason.CANCELLED:
                            pending.append(pool.submit(_check, rollout, key, run, notify))
                    elif isinstance(event, Failed):
                        run.error = event.message
                        break
            finally:
                stream.close()
            if run.error is not None or any(
                    r.result is not None and r.result.finish_reason == FinishReason.CANCELLED
                    for r in batch):
                run.stopped = run.error is None
                break
        run.wall_s = time.perf_counter() - started
        for future in pending:
            future.result()
    return _end_unreached(run)


def _end_unreached(run: RolloutRun) -> RolloutRun:
    """Rollouts never sampled (stopped, or the model failed) end cancelled or failed."""
    for rollout in run.rollouts:
        if rollout.result is None:
            _finish(rollout, GenerationResult(
                model=run.model, role=run.role, seed=rollout.seed,
                finish_reason=FinishReason.ERROR if run.error else FinishReason.CANCELLED,
                error=run.error), run)
    return run


def _finish(rollout: Rollout, result: GenerationResult, run: RolloutRun) -> None:
    with run.lock:
        rollout.result = result
        rollout.thinking = result.thinking or rollout.thinking
        rollout.answer = result.answer or rollout.answer
        rollout.thinking_tokens = max(result.thinking_tokens, rollout.thinking_tokens)
        rollout.answer_tokens = max(result.answer_tokens, rollout.answer_tokens)
        if result.seed is not None:
            rollout.seed = result.seed


def _check(rollout: Rollout, key: AnswerKey, run: RolloutRun, notify: Listener) -> None:
    assert rollout.result is not None
    reply = visible_reply(rollout.result)
    finish = rollout.result.finish_reason
    verdict = key.verify(reply, finish)
    vote = vote_key(reply, key.kind, finish)
    with run.lock:
        rollout.verdict, rollout.vote = verdict, vote
    notify(rollout)
