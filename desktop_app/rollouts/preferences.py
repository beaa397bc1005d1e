"""The class's preferences: pairwise votes on N answers, and Bradley–Terry strengths.

RLHF's step 1 is people ranking outputs ("joke A > joke B"). A :class:`Vote` is one such
judgement between two answers (indices from 0), won by ``a``, ``b`` or a ``tie``. Votes
travel as CSV lines ``a,b,winner`` (:func:`parse_votes`, :func:`votes_csv`).

:func:`bradley_terry` turns votes into one strength per answer: P(i beats j) =
σ(θᵢ − θⱼ), fitted by exact maximum likelihood (Newton's method on the log-likelihood).
**Ties count as half a win for each side**: a tie adds ½·log P(i>j) + ½·log P(j>i), the
simplest rule that keeps one parameter per answer (Davidson's model adds a tie parameter,
which 20 votes cannot pin down). Strengths are centred (they sum to zero: only differences
mean anything). An answer that never lost (or never won) has no finite maximum, so a weak
Gaussian prior (``prior_sd`` on the logit scale, default 2) is added; ``prior_sd=None`` is
the plain MLE. The 95 % intervals come from the inverse Fisher information (the observed
information at the optimum, under the sum-to-zero constraint: its pseudo-inverse).

No Qt, no model: numbers in, numbers out.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np

Z_95 = 1.959964
DEFAULT_PRIOR_SD = 2.0


class Winner(StrEnum):
    A = "a"
    B = "b"
    TIE = "tie"


class VoteError(ValueError):
    """A vote that cannot be read: one sentence, for the command line or the window."""


@dataclass(frozen=True)
class Vote:
    """One pairwise judgement between answers ``a`` and ``b`` (indices from 0)."""

    a: int
    b: int
    winner: Winner

    @property
    def score_a(self) -> float:
        """What ``a`` scored: 1 for a win, ½ for a tie, 0 for a loss."""
        return {Winner.A: 1.0, Winner.B: 0.0, Winner.TIE: 0.5}[self.winner]

    def to_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "winner": self.winner.value}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vote:
        return cls(int(data["a"]), int(data["b"]), Winner(data["winner"]))


def parse_votes(text: str, n_answers: int) -> list[Vote]:
    """Read CSV lines ``a,b,winner`` (a header line ``a,b,winner`` and blank lines are
    skipped). Raises :class:`VoteError` naming the first bad line."""
    votes: list[Vote] = []
    for number, line in enumerate(text.splitlines(), start=1):
        cells = [cell.strip() for cell in line.split(",")]
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if [c.casefold() for c in cells] == ["a", "b", "winner"]:
            continue
        if len(cells) != 3:
            raise VoteError(f"Vote line {number} should read a,b,winner, not {line.strip()!r}.")
        try:
            a, b = int(cells[0]), int(cells[1])
        except ValueError:
            raise VoteError(f"Vote line {number}: answers are numbers from 0, "
                            f"not {cells[0]!r} and {cells[1]!r}.") from None
        if not (0 <= a < n_answers and 0 <= b < n_answers) or a == b:
            raise VoteError(f"Vote line {number}: answers must be two different numbers "
                            f"from 0 to {n_answers - 1}.")
        try:
            winner = Winner(cells[2].casefold())
        except ValueError:
            raise VoteError(f"Vote line {number}: the winner is a, b or tie, "
                            f"not {cells[2]!r}.") from None
        votes.append(Vote(a, b, winner))
    return votes


def votes_csv(votes: Iterable[Vote]) -> str:
    """The votes as CSV lines with a header (what :func:`parse_votes` reads)."""
    return "a,b,winner\n" + "".join(f"{v.a},{v.b},{v.winner.value}\n" for v in votes)


# --------------------------------------------------------------------- pairing for votes


def next_pair(n_answers: int, votes: Sequence[Vote], rng: random.Random) -> tuple[int, int]:
    """The next pair to show the class: one of the pairs voted on least, preferring answers
    with the fewest votes, in a random order (which is A and which B is random too)."""
    if n_answers < 2:
        raise VoteError("Voting needs at least two answers.")
    pair_count: dict[tuple[int, int], int] = {}
    answer_count = [0] * n_answers
    for vote in votes:
        key = (min(vote.a, vote.b), max(vote.a, vote.b))
        pair_count[key] = pair_count.get(key, 0) + 1
        answer_count[vote.a] += 1
        answer_count[vote.b] += 1
    pairs = [(i, j) for i in range(n_answers) for j in range(i + 1, n_answers)]
    rng.shuffle(pairs)
    best = min(pairs, key=lambda p: (pair_count.get(p, 0), answer_count[p[0]] + answer_count[p[1]]))
    return best if rng.random() < 0.5 else (best[1], best[0])


# --------------------------------------------------------------------- Bradley–Terry


@dataclass(frozen=True)
class Strengths:
    """Bradley–Terry strengths (centred logits), their 95 % intervals, and how many votes
    each answer was in."""

    strength: tuple[float, ...]
    low: tuple[float, ...]
    high: tuple[float, ...]
    votes: tuple[int, ...]

    def ranking(self) -> list[int]:
        """Answer indices, strongest first."""
        return sorted(range(len(self.strength)), key=lambda i: -self.strength[i])

    def width(self, index: int) -> float:
        return self.high[index] - self.low[index]

    def to_dict(self) -> dict[str, Any]:
        return {"strengths": list(self.strength), "low": list(self.low),
                "high": list(self.high), "votes": list(self.votes)}


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def bradley_terry(n_answers: int, votes: Sequence[Vote],
                  prior_sd: float | None = DEFAULT_PRIOR_SD,
                  tol: float = 1e-10, max_iter: int = 100) -> Strengths:
    """Fit strengths to ``votes`` (see the module's docstring for ties, prior, intervals)."""
    counts = [0] * n_answers
    for vote in votes:
        counts[vote.a] += 1
        counts[vote.b] += 1
    if not votes:
        zeros = (0.0,) * n_answers
        span = Z_95 * (prior_sd if prior_sd is not None else float("inf"))
        return Strengths(zeros, (-span,) * n_answers, (span,) * n_answers, tuple(counts))
    a = np.array([v.a for v in votes])
    b = np.array([v.b for v in votes])
    y = np.array([v.score_a for v in votes])
    precision = 0.0 if prior_sd is None else 1.0 / prior_sd ** 2
    theta = np.zeros(n_answers)
    hessian = np.zeros((n_answers, n_answers))
    for _ in range(max_iter):
        p = _sigmoid(theta[a] - theta[b])
        residual = y - p
        gradient = np.zeros(n_answers)
        np.add.at(gradient, a, residual)
        np.add.at(gradient, b, -residual)
        gradient -= precision * theta
        weight = p * (1 - p)
        hessian = np.zeros((n_answers, n_answers))  # the information matrix (−∇²ℓ)
        np.add.at(hessian, (a, a), weight)
        np.add.at(hessian, (b, b), weight)
        np.add.at(hessian, (a, b), -weight)
        np.add.at(hessian, (b, a), -weight)
        hessian += precision * np.eye(n_answers)
        step = np.linalg.pinv(hessian) @ gradient
        theta = theta + step
        theta -= theta.mean()
        if float(np.max(np.abs(step))) < tol:
            break
    p = _sigmoid(theta[a] - theta[b])
    weight = p * (1 - p)
    hessian = np.zeros((n_answers, n_answers))
    np.add.at(hessian, (a, a), weight)
    np.add.at(hessian, (b, b), weight)
    np.add.at(hessian, (a, b), -weight)
    np.add.at(hessian, (b, a), -weight)
    hessian += precision * np.eye(n_answers)
    centre = np.eye(n_answers) - 1.0 / n_answers  # the sum-to-zero constraint
    covariance = centre @ np.linalg.pinv(hessian) @ centre
    sd = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    # an answer in no vote at all, without a prior: unknown
    sd = np.where(np.array(counts) == 0, np.inf if prior_sd is None else sd, sd)
    return Strengths(tuple(float(t) for t in theta),
                     tuple(float(t - Z_95 * s) for t, s in zip(theta, sd, strict=True)),
                     tuple(float(t + Z_95 * s) for t, s in zip(theta, sd, strict=True)),
                     tuple(counts))
