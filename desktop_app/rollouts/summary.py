"""A rollouts run's figures as data, and their one wording: the window, ``triptych
rollouts`` and export each lay the same figures out for their medium.

The figures are read from the run's data (:meth:`RolloutRun.to_dict`, what ``--json`` and
a saved export hold), so a run on screen and a run read back from a file say the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop_app.engine.protocol import FinishReason
from desktop_app.rollouts.goodhart import NO_KEY
from desktop_app.text.units import format_duration
from desktop_app.verify.verdict import verdict_title

ANSWER_CHARS = 40  # a majority answer is shown on one line, this long at most


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())


def _count(n: int, noun: str) -> str:
    """``1 vote``, ``3 votes``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True)
class RunFigures:
    """What a run says about itself. ``keyed``: checked against a key. ``done``: the run is
    over (its time and speed are final)."""

    n: int
    sampled: int  # rollouts the model finished (stopped ones too)
    keyed: bool
    checked: int
    correct: int
    pass_at_k: dict[str, float]
    majority_answer: str | None = None
    majority_votes: int = 0
    majority_verdict: str | None = None
    majority_voters: int = 0
    thinking_right: float | None = None
    thinking_wrong: float | None = None
    thought: bool = False  # any rollout wrote thinking tokens
    thinking_budget: int | None = None
    done: bool = True
    wall_s: float | None = None
    tokens_per_s: float | None = None
    error: str | None = None
    stopped: bool = False
    failed: int = 0  # rollouts the model did not finish because it failed (``error`` says why)

    @classmethod
    def of(cls, data: dict[str, Any], *, keyed: bool | None = None,
           done: bool = True) -> RunFigures:
        """From a run's data (``RolloutRun.to_dict()``); ``keyed`` defaults to what the data
        says (else, for older files, whether any rollout has a verdict)."""
        rollouts = data.get("rollouts") or []
        checked = sum(1 for r in rollouts if r.get("verdict"))
        failed = sum(1 for r in rollouts if r.get("finish_reason") == FinishReason.ERROR)
        if keyed is None:
            keyed = bool(data.get("keyed", checked))
        majority = data.get("majority") or {}
        thinking = data.get("mean_thinking_tokens") or {}
        return cls(
            n=int(data.get("n", len(rollouts))),
            sampled=sum(1 for r in rollouts if r.get("finish_reason")) - failed,
            keyed=keyed,
            checked=checked,
            correct=int(data.get("correct", 0)),
            pass_at_k={str(k): float(v) for k, v in (data.get("pass_at_k") or {}).items()},
            majority_answer=majority.get("answer"),
            majority_votes=int(majority.get("votes", 0)),
            majority_verdict=majority.get("verdict"),
            majority_voters=int(majority.get("voters") or 0),
            thinking_right=thinking.get("correct"),
            thinking_wrong=thinking.get("wrong"),
            thought=any(r.get("thinking_tokens") for r in rollouts),
            thinking_budget=data.get("thinking_budget"),
            done=done,
            wall_s=data.get("wall_s"),
            tokens_per_s=data.get("tokens_per_s"),
            error=data.get("error"),
            stopped=bool(data.get("stopped")),
            failed=failed,
        )

    # -- the one wording

    def score(self) -> list[str]:
        """Correct of checked and pass@k (or that nothing is checked); rollouts the model
        failed to finish are counted as failed, never as rollouts (``details`` says why)."""
        failed = f"{self.failed} of {self.n} rollouts failed"
        if self.failed == self.n:
            return [failed]
        if not self.keyed:
            sampled = f"{self.sampled} of {self.n} rollouts sampled"
            return [f"{sampled}, {failed}. {NO_KEY}" if self.failed else f"{sampled}. {NO_KEY}"]
        counted = f"{self.correct} correct of {self.checked} checked"
        if self.failed:
            counted += f" ({failed})"
        elif self.checked != self.n:
            counted += f" ({self.n} rollouts)"
        return [counted] + [f"pass@{k} {value:.2f}" for k, value in self.pass_at_k.items()]

    def details(self) -> list[str]:
        """The majority vote, thinking, budget, time and speed, an error or a stop."""
        parts = []
        if self.keyed and self.majority_answer is not None:
            answer = _one_line(self.majority_answer)[:ANSWER_CHARS]
            vote = f"Majority vote: {answer} ({_count(self.majority_votes, 'vote')})"
            if self.majority_verdict:
                vote += f" · {verdict_title(self.majority_verdict)}"
            parts.append(vote)
        elif self.keyed and self.majority_voters > 1:
            parts.append(f"No majority: all {self.majority_voters} answers differ")
        if self.keyed and self.thought:
            def show(value: float | None) -> str:
                return "–" if value is None else f"{value:.0f}"
            parts.append(f"thinking tokens: correct {show(self.thinking_right)}, "
                         f"wrong {show(self.thinking_wrong)}")
        if self.thinking_budget is not None:
            parts.append(f"thinking budget {self.thinking_budget}")
        if self.done and self.failed < self.n:  # a model that never ran took no time
            if self.wall_s is not None:
                parts.append(f"took {format_duration(self.wall_s)} (loading the model not "
                             "counted)")
            if self.tokens_per_s:
                parts.append(f"{self.tokens_per_s:.1f} tok/s")
        if self.error:
            parts.append(f"Why they failed: {_one_line(self.error)}" if self.failed
                         else f"Error: {_one_line(self.error)}")
        elif self.stopped:
            parts.append("stopped")
        return parts

    # -- per medium

    def line(self) -> str:
        """One line (the terminal)."""
        return " · ".join(self.score() + self.details())

    def lines(self) -> list[str]:
        """The score on one line, each other figure on its own (export, the window)."""
        return [" · ".join(self.score()), *self.details()]
