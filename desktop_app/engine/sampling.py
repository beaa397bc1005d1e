"""The sampler's arithmetic over one next-token distribution: llama.cpp's chain in numpy.

One implementation serves two places. In the model process it gives each token's
``top_sampled``: the distribution the sampler drew from, computed from the full logits
row with the sampler's own settings and repetition-penalty window, so that what the window
shows as sampled is what was sampled. In the explorer's sampling lab it reshapes a
distribution already received, with no new decode.

The order is llama-cpp-python's chain (``Llama._init_sampler``): repetition penalty →
top-k → (typical, off) → top-p → min-p → temperature → the draw, each step as
``src/llama-sampling.cpp`` does it: top-p and min-p see the probabilities *before*
temperature, temperature 0 keeps only the largest logit (greedy), and the draw is a
softmax over what survived. Every step keeps the order of the logits, so the survivors
are always a prefix of the tokens sorted by the model's own probability.

No Qt, no llama.cpp: numpy only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from desktop_app.engine.protocol import Sampling

PENALTY_LAST_N = 64  # generated tokens the repetition penalty looks back over (llama-cpp-python's)


def penalised(values: np.ndarray, penalty: float) -> np.ndarray:
    """llama.cpp's repetition penalty on the logits of recently generated tokens: a logit
    above zero is divided by the penalty, one at or below zero multiplied (both lower it)."""
    p = np.float32(penalty)
    return np.where(values <= 0, values * p, values / p)


def top_k_ids(row: np.ndarray, k: int) -> np.ndarray:
    """The ``k`` tokens with the largest logits, largest first (ties by token id).

    A threshold a few logits below the largest keeps a few hundred candidates and one
    vectorised pass finds them (about 0.08 ms on a 262k vocabulary, where
    ``np.argpartition`` over the whole row takes 2 ms); a flat row widens it."""
    k = max(1, min(k, row.shape[0]))
    peak = row.max()
    width = np.float32(8.0)
    ids = np.flatnonzero(row >= peak - width)
    while len(ids) < k and width < 64:
        width *= 2
        ids = np.flatnonzero(row >= peak - width)
    if len(ids) < k:
        ids = np.argpartition(row, -k)[-k:]
    elif len(ids) > k:
        ids = ids[np.argpartition(row[ids], -k)[-k:]]
    return ids[np.lexsort((ids, -row[ids]))]


def _sorted_ids(row: np.ndarray) -> np.ndarray:
    """Every token, largest logit first (ties by id)."""
    return np.lexsort((np.arange(row.shape[0]), -row))


@dataclass(frozen=True)
class Sampled:
    """A distribution the sampler draws from.

    ``ids`` are the surviving tokens, most likely first (all of them, or the first
    ``limit`` asked for), with their log-probabilities; every other token has probability
    0. ``kept`` counts the survivors. ``chosen_logprob``: the log-probability of the token
    asked about (``-inf`` if the chain cut it), None when none was."""

    ids: np.ndarray
    logprobs: np.ndarray
    kept: int
    chosen_logprob: float | None = None

    @property
    def probabilities(self) -> np.ndarray:
        return np.exp(self.logprobs)


def _cut_by_top_p(row: np.ndarray, ids: np.ndarray | None, top_p: float,
                  is_sorted: bool) -> np.ndarray:
    """The smallest prefix whose probability (a softmax over the current candidates, as
    llama.cpp's top-p computes it in float) reaches ``top_p``; at least one token."""
    candidates = row if ids is None else row[ids]
    peak = candidates.max()
    total = np.cumsum(np.exp(candidates - peak, dtype=np.float32), dtype=np.float32)[-1]
    target = np.float32(top_p)

    def prefix(order: np.ndarray) -> int | None:
        cumulative = np.cumsum(np.exp(row[order] - peak, dtype=np.float32) / total,
                               dtype=np.float32)
        reached = np.flatnonzero(cumulative >= target)
        return int(reached[0]) + 1 if len(reached) else None

    if ids is not None or is_sorted:
        order = ids if ids is not None else np.arange(row.shape[0])
        n = prefix(order)
        return order if n is None else order[:n]
    width = np.float32(8.0)  # the whole vocabulary: sort only a head that reaches top_p
    while width <= 64:
        head = np.flatnonzero(row >= peak - width)
        head = head[np.lexsort((head, -row[head]))]
        n = prefix(head)
        if n is not None:
            return head[:n]
        width *= 2
    order = _sorted_ids(row)
    n = prefix(order)
    return order if n is None else order[:n]


def sampled_distribution(row: np.ndarray, sampling: Sampling, *,
                         recent: np.ndarray | None = None, limit: int | None = None,
                         chosen: int | None = None, is_sorted: bool = False) -> Sampled:
    """What the sampler draws the next token from, for logits ``row`` (never modified).

    ``recent``: the token ids in the penalty window (each once); ``limit``: how many of
    the most likely survivors to return (None: all); ``chosen``: a token whose
    probability to report too; ``is_sorted``: ``row`` is already largest first (the
    explorer's distribution), so ids are positions in it. Log-probabilities in place of
    logits give the same result: every step ignores a constant shift."""
    row = np.asarray(row, dtype=np.float32)
    if recent is not None and len(recent) and sampling.repeat_penalty != 1:
        if is_sorted:
            raise ValueError("A sorted distribution cannot take a repetition penalty.")
        row = row.copy()
        row[recent] = penalised(row[recent], sampling.repeat_penalty)
    n_vocab = row.shape[0]
    if sampling.temperature <= 0:  # greedy: the first largest logit, certainly
        top = int(np.argmax(row))
        chosen_lp = None if chosen is None else (0.0 if chosen == top else -math.inf)
        return Sampled(np.array([top]), np.array([0.0]), 1, chosen_lp)
    ids: np.ndarray | None = None  # None: every token is still a candidate
    if 0 < sampling.top_k < n_vocab:
        ids = np.arange(sampling.top_k) if is_sorted else top_k_ids(row, sampling.top_k)
    if sampling.top_p < 1:
        ids = _cut_by_top_p(row, ids, sampling.top_p, is_sorted)
    if sampling.min_p > 0:
        floor = np.float32(row.max() + np.log(np.float32(sampling.min_p)))
        if ids is None:  # llama.cpp's unsorted path: the same set, then sorted here
            ids = np.flatnonzero(row >= floor)
            ids = ids[np.lexsort((ids, -row[ids]))]
        else:
            below = np.flatnonzero(row[ids[1:]] < floor)
            ids = ids[: int(below[0]) + 1] if len(below) else ids
    # temperature, then the draw's softmax over the survivors
    scaled_all = None
    if ids is None:
        scaled_all = (row / np.float32(sampling.temperature)).astype(np.float64)
        peak = scaled_all.max()
        log_total = peak + math.log(np.exp(scaled_all - peak).sum())
        kept = n_vocab
        if is_sorted:
            ids = np.arange(n_vocab if limit is None else min(limit, n_vocab))
        else:
            ids = _sorted_ids(row) if limit is None else top_k_ids(row, limit)
        logprobs = scaled_all[ids] - log_total
    else:
        scaled = (row[ids] / np.float32(sampling.temperature)).astype(np.float64)
        peak = scaled.max()
        log_total = peak + math.log(np.exp(scaled - peak).sum())
        kept = len(ids)
        logprobs = scaled - log_total
        if limit is not None:
            ids, logprobs = ids[:limit], logprobs[:limit]
    chosen_lp = None
    if chosen is not None:
        if scaled_all is not None:
            chosen_lp = float(scaled_all[chosen] - log_total)
        else:
            where = np.flatnonzero(ids == chosen)
            if len(where):
                chosen_lp = float(logprobs[where[0]])
            else:  # beyond the limit, or cut: look among every survivor
                again = sampled_distribution(row, sampling, chosen=None, is_sorted=is_sorted)
                hit = np.flatnonzero(again.ids == chosen)
                chosen_lp = float(again.logprobs[hit[0]]) if len(hit) else -math.inf
    return Sampled(ids, logprobs, kept, chosen_lp)


def sorted_log_softmax(row: np.ndarray) -> np.ndarray:
    """Every token's log-probability under the model, largest first (float32): the
    explorer's whole distribution, which its lab reshapes."""
    values = np.asarray(row, dtype=np.float64)
    peak = values.max()
    logprobs = values - (peak + math.log(np.exp(values - peak).sum()))
    return np.sort(logprobs.astype(np.float32))[::-1].copy()


# ----------------------------------------------------------------- figures of a distribution


def entropy_bits(logprobs: np.ndarray) -> float:
    """The distribution's entropy in bits (its probabilities are ``exp(logprobs)``; the
    tokens not listed have probability 0)."""
    values = np.asarray(logprobs, dtype=np.float64)
    values = values[np.isfinite(values)]
    p = np.exp(values)
    return float(max(0.0, -(p * values).sum() / math.log(2)))


def effective_candidates(logprobs: np.ndarray) -> float:
    """How many equally likely tokens would be as uncertain: 2 ** entropy in bits
    (the perplexity of the next token)."""
    return float(2.0 ** entropy_bits(logprobs))


def draw_counts(logprobs: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` seeded draws from exactly this distribution, as a count per entry: uniform
    numbers through its cumulative probabilities (the inverse-CDF draw)."""
    p = np.exp(np.asarray(logprobs, dtype=np.float64))
    cumulative = np.cumsum(p / p.sum())
    cumulative[-1] = 1.0
    picks = np.searchsorted(cumulative, np.random.default_rng(seed).random(n), side="right")
    return np.bincount(np.minimum(picks, len(p) - 1), minlength=len(p))
