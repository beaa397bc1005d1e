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
from desktop_app.text.i18n import _, ngettext, number
from desktop_app.text.units import format_duration
from desktop_app.verify.verdict import verdict_title

ANSWER_CHARS = 40  # a majority answer is shown on one line, this long at most


def _one_line(value: Any) -> str:
    return " ".join(str(value).split())




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
        failed = ngettext("{failed} of {n} rollout failed", "{failed} of {n} rollouts failed",
                          self.n).format(failed=self.failed, n=self.n)
        if self.failed == self.n:
            return [failed]
        if not self.keyed:
            sampled = ngettext("{sampled} of {n} rollout sampled",
                               "{sampled} of {n} rollouts sampled", self.n).format(
                sampled=self.sampled, n=self.n)
            return [f"{sampled}, {failed}. {_(NO_KEY)}" if self.failed
                    else f"{sampled}. {_(NO_KEY)}"]
        counted = _("{correct} correct of {checked} checked").format(
            correct=self.correct, checked=self.checked)
        if self.failed:
            counted += f" ({failed})"
        elif self.checked != self.n:
            counted += " (" + ngettext("{n} rollout", "{n} rollouts", self.n).format(
                n=self.n) + ")"
        return [counted] + [f"pass@{k} {number(value, 2)}" for k, value in self.pass_at_k.items()]

    def details(self) -> list[str]:
        """The majority vote, thinking, budget, time and speed, an error or a stop."""
        parts = []
        if self.keyed and self.majority_answer is not None:
            answer = _one_line(self.majority_answer)[:ANSWER_CHARS]
            vote = ngettext("Majority vote: {answer} ({n} vote)",
                            "Majority vote: {answer} ({n} votes)", self.majority_votes).format(
                answer=answer, n=self.majority_votes)
            if self.majority_verdict:
                vote += f" · {verdict_title(self.majority_verdict)}"
            parts.append(vote)
        elif self.keyed and self.majority_voters > 1:
            parts.append(ngettext("No majority: all {n} answers differ",
                                  "No majority: all {n} answers differ",
                                  self.majority_voters).format(n=self.majority_voters))
        if self.keyed and self.thought:
            def show(value: float | None) -> str:
                return "–" if value is None else number(value, 0)
            parts.append(_("thinking tokens: correct {right}, wrong {wrong}").format(
                right=show(self.thinking_right), wrong=show(self.thinking_wrong)))
        if self.thinking_budget is not None:
            parts.append(_("thinking budget {budget}").format(budget=self.thinking_budget))
        if self.done and self.failed < self.n:  # a model that never ran took no time
            if self.wall_s is not None:
                parts.append(_("took {time} (loading the model not counted)").format(
                    time=format_duration(self.wall_s)))
            if self.tokens_per_s:
                parts.append(_("{rate} tok/s").format(rate=number(self.tokens_per_s, 1)))
        if self.error:
            parts.append((_("Why they failed: {error}") if self.failed
                          else _("Error: {error}")).format(error=_one_line(self.error)))
        elif self.stopped:
            parts.append(_("stopped"))
        return parts

    # -- per medium

    def line(self) -> str:
        """One line (the terminal)."""
        return " · ".join(self.score() + self.details())

    def lines(self) -> list[str]:
        """The score on one line, each other figure on its own (export, the window)."""
        return [" · ".join(self.score()), *self.details()]
