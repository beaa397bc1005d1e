"""A reward model trained on the class's votes, and best-of-N against it (RLHF steps 2–3).

**Features** of an answer (:func:`answer_features`): the model's own embedding of it (from
llama.cpp in embedding mode, mean-pooled, unit length) plus a few text features (log
length, words, lines, "!", "?", digits). Each column is standardised over the answers
(no vote is read for that, so it leaks nothing).

**The reward model** (:func:`fit_reward`) is Bradley–Terry on features: P(a beats b) =
σ(w·(xₐ − x_b)), fitted by exact maximum likelihood with an L2 penalty ``l2``·|w|²/2
(Newton's method; ties count half to each side, as in :mod:`preferences`). The penalised
optimum lies in the span of the training answers' features, so it is solved there (at most
one dimension per answer): 200 votes fit in milliseconds.

**Held-out agreement** (:func:`cross_validated_agreement`): the decided votes (ties left
out) split into folds; each fold is predicted by a model trained on the others, and a
prediction agrees when it prefers the answer the class preferred (an exact tie of scores
counts half). A proxy (the length, a judge's P("yes")) is scored on the same votes.

**Best-of-N** (:func:`best_of_n_curve`): the reward model picks the highest-scoring of n
answers drawn at random (with replacement) from the pool. The expectation over draws is
exact: with the pool sorted by reward, the pick is the j-th of M with probability
(j/M)ⁿ − ((j−1)/M)ⁿ. Each answer's reward comes from a model trained without any vote
that involves it (:func:`held_out_rewards`), and its gold is what the class's own votes on
it say (its Bradley–Terry strength) or, where one exists, the key (1 right, 0 wrong).
Reward climbing while gold stalls or falls is over-optimisation (Gao et al. 2022).
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from desktop_app.rollouts.preferences import Vote, Winner
from desktop_app.text.i18n import N_

DEFAULT_L2 = 1.0
DEFAULT_FOLDS = 5
BEST_OF_NS = (1, 2, 4, 8, 16, 32, 64)
# the reward model's name in its agreement (the window translates it: N_ marks it)
REWARD_MODEL = N_("reward model (held out)")
TEXT_FEATURES = ("log characters", "words", "lines", "exclamations", "questions", "digits")


def text_features(answer: str) -> list[float]:
    """The simple features: log length, word and line counts, "!", "?", digit share."""
    text = answer.strip()
    return [math.log1p(len(text)), float(len(text.split())),
            float(text.count("\n") + 1 if text else 0), float(text.count("!")),
            float(text.count("?")), sum(c.isdigit() for c in text) / max(1, len(text))]


def answer_features(answers: Sequence[str],
                    embeddings: Sequence[Sequence[float]] | None) -> np.ndarray:
    """One row per answer: its embedding (unit length) and its text features, each column
    standardised over the answers (a constant column becomes zeros)."""
    columns = [np.array([text_features(a) for a in answers], dtype=float).reshape(len(answers), -1)]
    if embeddings is not None:
        vectors = np.array(embeddings, dtype=float).reshape(len(answers), -1)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        columns.insert(0, vectors / np.where(norms > 0, norms, 1.0))
    features = np.hstack(columns)
    spread = features.std(axis=0)
    return np.asarray((features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
                      * (spread > 0))


@dataclass(frozen=True)
class RewardModel:
    """A linear reward: ``score(x) = x · weights``."""

    weights: np.ndarray

    def scores(self, features: np.ndarray) -> np.ndarray:
        return np.asarray(features @ self.weights)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * x)))


def fit_reward(features: np.ndarray, votes: Sequence[Vote], l2: float = DEFAULT_L2,
               tol: float = 1e-10, max_iter: int = 50) -> RewardModel:
    """The penalised maximum-likelihood Bradley–Terry reward model on ``features``."""
    dims = features.shape[1]
    if not votes:
        return RewardModel(np.zeros(dims))
    used = sorted({v.a for v in votes} | {v.b for v in votes})
    # w lies in the row space of the answers the votes name: solve in its basis
    # an orthonormal basis of that row space from the small Gram matrix (answers × answers:
    # its eigen-decomposition is far cheaper than an SVD of the wide feature matrix)
    rows = features[used]
    eigenvalues, eigenvectors = np.linalg.eigh(rows @ rows.T)
    keep = eigenvalues > 1e-9 * max(1.0, float(eigenvalues.max(initial=0.0)))
    basis = (eigenvectors[:, keep].T @ rows) / np.sqrt(eigenvalues[keep])[:, None]
    if basis.shape[0] == 0:
        return RewardModel(np.zeros(dims))
    diffs = (features[[v.a for v in votes]] - features[[v.b for v in votes]]) @ basis.T
    y = np.array([v.score_a for v in votes])
    beta = np.zeros(basis.shape[0])
    for _ in range(max_iter):
        p = _sigmoid(diffs @ beta)
        gradient = diffs.T @ (y - p) - l2 * beta
        hessian = (diffs.T * (p * (1 - p))) @ diffs + l2 * np.eye(len(beta))
        step = np.linalg.solve(hessian, gradient)
        beta += step
        if float(np.max(np.abs(step))) < tol:
            break
    return RewardModel(basis.T @ beta)


def _agrees(score_a: float, score_b: float, vote: Vote) -> float:
    if score_a == score_b:
        return 0.5
    return 1.0 if (score_a > score_b) == (vote.winner == Winner.A) else 0.0


@dataclass(frozen=True)
class Agreement:
    """How often a judge agreed with the class on the decided votes it was scored on."""

    name: str
    agreed: float  # ties of score count half
    votes: int

    @property
    def rate(self) -> float | None:
        return self.agreed / self.votes if self.votes else None

    def describe(self) -> str:
        if not self.votes:
            return f"{self.name}: no decided vote to check against"
        return f"{self.name}: agrees with the class on {self.agreed:g} of {self.votes} votes ({self.rate:.0%})"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "agreed": self.agreed, "votes": self.votes, "rate": self.rate}


def decided(votes: Sequence[Vote]) -> list[Vote]:
    return [v for v in votes if v.winner != Winner.TIE]


def vote_folds(votes: Sequence[Vote], folds: int = DEFAULT_FOLDS, seed: int = 0) -> list[list[Vote]]:
    """The decided votes dealt into ``folds`` folds (a fixed shuffle, so a rerun agrees)."""
    chosen = decided(votes)
    order = list(range(len(chosen)))
    random.Random(seed).shuffle(order)
    k = max(1, min(folds, len(chosen)))
    return [[chosen[i] for i in order[f::k]] for f in range(k)]


def cross_validated_agreement(features: np.ndarray, votes: Sequence[Vote],
                              folds: int = DEFAULT_FOLDS, l2: float = DEFAULT_L2,
                              seed: int = 0) -> Agreement:
    """The reward model's held-out agreement: each fold predicted by a model trained on
    every other vote (the other folds and the ties)."""
    dealt = vote_folds(votes, folds, seed)
    agreed = 0.0
    total = 0
    for held in dealt:
        if not held:
            continue
        held_ids = {id(v) for v in held}
        train = [v for v in votes if id(v) not in held_ids]
        model = fit_reward(features, train, l2)
        scores = model.scores(features)
        for vote in held:
            agreed += _agrees(float(scores[vote.a]), float(scores[vote.b]), vote)
            total += 1
    return Agreement(REWARD_MODEL, agreed, total)


def proxy_agreement(name: str, scores: Sequence[float | None], votes: Sequence[Vote]) -> Agreement:
    """A fixed judge's agreement on the same decided votes (a vote it cannot score, an
    answer without a score, is left out and not counted)."""
    agreed = 0.0
    total = 0
    for vote in decided(votes):
        sa, sb = scores[vote.a], scores[vote.b]
        if sa is None or sb is None:
            continue
        agreed += _agrees(sa, sb, vote)
        total += 1
    return Agreement(name, agreed, total)


def held_out_rewards(features: np.ndarray, votes: Sequence[Vote],
                     l2: float = DEFAULT_L2) -> list[float]:
    """Each answer's reward from a model trained on every vote not involving it."""
    return [float(fit_reward(features, [v for v in votes if index not in (v.a, v.b)], l2)
                  .scores(features[index:index + 1])[0])
            for index in range(features.shape[0])]


@dataclass(frozen=True)
class BestOfN:
    """Best-of-n by the reward model: the expected reward of its pick and the pick's gold."""

    n: int
    reward: float
    gold: float

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "reward": self.reward, "gold": self.gold}


def pick_probabilities(rewards: Sequence[float], n: int) -> list[float]:
    """P(the best of n draws with replacement is answer i), for each answer; equal rewards
    are broken by answer order (the earlier one wins), as :func:`max` would."""
    m = len(rewards)
    order = sorted(range(m), key=lambda i: (rewards[i], -i))  # ascending, earlier wins ties
    probabilities = [0.0] * m
    for rank, index in enumerate(order, start=1):
        probabilities[index] = (rank / m) ** n - ((rank - 1) / m) ** n
    return probabilities


def best_of_n_curve(rewards: Sequence[float], gold: Sequence[float],
                    ns: Sequence[int] = BEST_OF_NS) -> list[BestOfN]:
    """The exact expected reward and gold of the reward model's pick, for each n."""
    if not rewards:
        return []
    curve = []
    for n in ns:
        probabilities = pick_probabilities(rewards, n)
        curve.append(BestOfN(n, sum(p * r for p, r in zip(probabilities, rewards, strict=True)),
                             sum(p * g for p, g in zip(probabilities, gold, strict=True))))
    return curve
