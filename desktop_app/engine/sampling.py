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


def penalised(values: np.ndarray, penalty: float | np.floating) -> np.ndarray:
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
    probabilities: np.ndarray  # exp(logprobs), made in the same pass
    kept: int
    chosen_logprob: float | None = None
    entropy_bits: float = 0.0  # of the whole distribution (every survivor, not just ``ids``)


def _cut_by_top_p(row: np.ndarray, ids: np.ndarray | None, top_p: float,
                  is_sorted: bool) -> np.ndarray:
    """The smallest prefix whose probability (a softmax over the current candidates, as
    llama.cpp's top-p computes it in float) reaches ``top_p``; at least one token."""
    candidates = row if ids is None else row[ids]
    peak = candidates.max()
    exps = np.exp(candidates - peak, dtype=np.float32)
    # llama.cpp's sum runs in float, in order; the lab's whole vocabulary (sorted, redrawn
    # as a slider moves) is summed in float64 instead: 10× faster, the same to 1e-7
    total = (np.float32(exps.sum(dtype=np.float64)) if is_sorted and ids is None
             else np.cumsum(exps, dtype=np.float32)[-1])
    target = np.float32(top_p)

    def prefix(values: np.ndarray) -> int | None:
        cumulative = np.cumsum(np.exp(values - peak, dtype=np.float32) / total,
                               dtype=np.float32)
        reached = np.flatnonzero(cumulative >= target)
        return int(reached[0]) + 1 if len(reached) else None

    if ids is not None:
        n = prefix(candidates)
        return ids if n is None else ids[:n]
    if is_sorted:  # positions: a prefix of the row itself, found in a growing head
        size = 1024
        while True:
            n = prefix(row[:size])
            if n is not None or size >= row.shape[0]:
                return np.arange(min(size, row.shape[0]) if n is None else n)
            size *= 4
    width = np.float32(8.0)  # the whole vocabulary: sort only a head that reaches top_p
    while width <= 64:
        head = np.flatnonzero(row >= peak - width)
        head = head[np.lexsort((head, -row[head]))]
        n = prefix(row[head])
        if n is not None:
            return head[:n]
        width *= 2
    order = _sorted_ids(row)
    n = prefix(row[order])
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
        return Sampled(np.array([top]), np.array([0.0]), np.array([1.0]), 1, chosen_lp, 0.0)
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
    if ids is None:  # nothing was cut: every token, most likely first
        kept = n_vocab
        head = n_vocab if limit is None else min(limit, n_vocab)
        if is_sorted:
            ids, values = np.arange(head), row
        else:
            ids = _sorted_ids(row) if limit is None else top_k_ids(row, head)
            values = row
    else:
        kept = len(ids)
        values = row[ids] if not is_sorted else row[: len(ids)]
    # float32 as llama.cpp's logits (a 262k vocabulary is redrawn as a slider moves), the
    # total summed in float64 as its draw does
    shifted = values / np.float32(sampling.temperature)
    shifted -= shifted.max()
    exps = np.exp(shifted)
    total = float(exps.sum(dtype=np.float64))
    log_total = np.float32(math.log(total))
    # H = -Σ p·log p with p = e/Z and log p = s - log Z: log Z - Σ e·s / Z (one dot product)
    entropy = max(0.0, (math.log(total) - float(np.dot(exps, shifted)) / total) / math.log(2))
    if values is row and not is_sorted:  # the whole row in id order: pick the survivors
        logprobs, probabilities = shifted[ids] - log_total, exps[ids] / np.float32(total)
    else:
        count = len(ids) if limit is None else min(limit, len(ids))
        ids = ids[:count]
        logprobs, probabilities = shifted[:count] - log_total, exps[:count] / np.float32(total)
    chosen_lp = None
    if chosen is not None:
        if values is row:
            position = chosen
        else:
            hit = np.flatnonzero(ids == chosen)
            position = int(hit[0]) if len(hit) else -1
        if values is row or position >= 0:
            chosen_lp = float(shifted[position] - log_total)
        else:  # beyond the limit among the survivors, or cut
            survivors = sampled_distribution(row, sampling, is_sorted=is_sorted)
            hit = np.flatnonzero(survivors.ids == chosen)
            chosen_lp = float(survivors.logprobs[hit[0]]) if len(hit) else -math.inf
    return Sampled(ids, logprobs, probabilities, kept, chosen_lp, entropy)


def sorted_log_softmax(row: np.ndarray) -> np.ndarray:
    """Every token's log-probability under the model, largest first (float32): the
    explorer's whole distribution, which its lab reshapes."""
    values = np.asarray(row, dtype=np.float64)
    peak = values.max()
    logprobs = values - (peak + math.log(np.exp(values - peak).sum()))
    return np.sort(logprobs.astype(np.float32))[::-1].copy()


# ----------------------------------------------------------------- figures of a distribution


def entropy_bits(logprobs: np.ndarray, probabilities: np.ndarray | None = None) -> float:
    """The distribution's entropy in bits (its probabilities are ``exp(logprobs)``, given
    or not; the tokens not listed have probability 0)."""
    values = np.asarray(logprobs)
    p = np.exp(values) if probabilities is None else probabilities
    terms = p * values
    terms[p == 0] = 0  # 0 × -inf: nothing
    return float(max(0.0, -terms.sum(dtype=np.float64) / math.log(2)))


def effective_candidates(logprobs: np.ndarray) -> float:
    """How many equally likely tokens would be as uncertain: 2 ** entropy in bits
    (the perplexity of the next token)."""
    return float(2.0 ** entropy_bits(logprobs))


def draw_counts(probabilities: np.ndarray, n: int, seed: int,
                total: float | None = None) -> np.ndarray:
    """``n`` seeded draws from exactly this distribution, as a count per entry: uniform
    numbers through its cumulative probabilities (the inverse-CDF draw). ``total``: the
    whole distribution's probability when ``probabilities`` are only its first entries;
    then one more count, last, is the draws that fell past them (the same draws: only
    the first entries' cumulative sum is needed)."""
    p = np.asarray(probabilities)
    whole = total is None
    total = float(p.sum(dtype=np.float64)) if total is None else total
    # (a float64 copy first: 4× faster than cumsum's own dtype= on float32)
    cumulative = np.cumsum(np.asarray(p, dtype=np.float64))
    uniform = np.random.default_rng(seed).random(n) * total
    picks = np.searchsorted(cumulative, uniform, side="right")
    counts = np.bincount(picks, minlength=len(p) + 1)[: len(p) + 1]
    if whole:  # past the end only by rounding: the last entry
        counts[len(p) - 1] += counts[len(p)]
        return counts[: len(p)]
    return counts


# ------------------------------------------------------------------ the explorer's sampling lab


@dataclass(frozen=True)
class LabRow:
    """One token (or, for ``other``, every token past the rows together) in the lab."""

    text: str
    model: float  # its probability under the model
    sampled: float  # in the reshaped distribution (0: the chain cut it)
    drawn: int | None = None  # how many of the draws picked it (None: no draws made)


@dataclass(frozen=True)
class LabView:
    """What the lab shows for one model: its likeliest tokens before and after the chain,
    everything else as one row, and the figures of both distributions."""

    rows: tuple[LabRow, ...]
    other: LabRow
    others: int  # how many tokens ``other`` stands for
    kept: int  # tokens the chain left
    entropy_bits: float
    model_entropy_bits: float

    @property
    def effective(self) -> float:
        return float(2.0 ** self.entropy_bits)

    @property
    def model_effective(self) -> float:
        return float(2.0 ** self.model_entropy_bits)


class NextTokenDistribution:
    """One model's next-token distribution as the explorer received it: log-probabilities
    largest first (every token's from a local model; a server's top few otherwise) and the
    texts of the first ones. :meth:`reshape` runs the sampler's chain over it, with no
    decode: what the lab's sliders show."""

    def __init__(self, logprobs: np.ndarray, texts: tuple[str, ...], *, complete: bool):
        self.logprobs = np.asarray(logprobs, dtype=np.float32)
        self.texts = texts
        self.complete = complete  # every token of the vocabulary is here
        model = self.logprobs.astype(np.float64)
        if not complete:  # a server's top few: their share of the whole, renormalised
            model = model - math.log(np.exp(model).sum())
        self._model_entropy = entropy_bits(model)

    @classmethod
    def received(cls, top: tuple[tuple[str, float], ...], whole: bytes) -> NextTokenDistribution:
        """From an explorer step: its top tokens and, from a local model, every token's
        log-probability (``TokenLogprob.whole``: float32, largest first)."""
        texts = tuple(text for text, _ in top)
        if whole:
            return cls(np.frombuffer(whole, dtype=np.float32), texts, complete=True)
        return cls(np.array([lp for _, lp in top], dtype=np.float32), texts, complete=False)

    @property
    def size(self) -> int:
        return int(self.logprobs.shape[0])

    def reshape(self, sampling: Sampling, *, draws: int = 0, seed: int = 0) -> LabView:
        """The distribution after ``sampling``'s chain (its repetition penalty has nothing
        to act on: no token was generated yet), and ``draws`` seeded draws from it."""
        shown = len(self.texts)
        sampled = sampled_distribution(self.logprobs, sampling, is_sorted=True, limit=shown)
        p = sampled.probabilities  # the first survivors (a prefix of the tokens, in order)
        counts = draw_counts(p, draws, seed, total=1.0)[: len(p)] if draws else None
        model = np.exp(self.logprobs[:shown].astype(np.float64))

        def at(values: np.ndarray, i: int) -> float:
            return float(values[i]) if i < len(values) else 0.0

        rows = tuple(LabRow(text, float(model[i]), at(p, i),
                            None if counts is None else int(at(counts, i)))
                     for i, text in enumerate(self.texts))
        rest_model = max(0.0, 1.0 - float(model.sum())) if self.complete else 0.0
        rest_drawn = None if counts is None else draws - int(counts[:shown].sum())
        rest = 0.0 if sampled.kept <= shown else max(0.0, 1.0 - float(p.sum(dtype=np.float64)))
        other = LabRow("", rest_model, rest, rest_drawn)
        return LabView(rows, other, self.size - shown, sampled.kept, sampled.entropy_bits,
                       self._model_entropy)
