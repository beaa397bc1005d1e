"""Our sampler against llama.cpp's own full chain, on a real model.

:class:`SamplerChain` does the repetition penalty and the top-k selection on the logits
row with numpy (llama.cpp's versions cost over 1 ms per token on Gemma 3's 262k-token
vocabulary). These tests decode real text with both, and draw from synthetic rows built so that
the penalty's two cases and flat rows matter; they require the same tokens, seed for
seed, and the logits row unchanged afterwards (log-probabilities read it).
"""

from __future__ import annotations

import ctypes
from typing import Any

import llama_cpp
import numpy as np
import pytest

from desktop_app.engine.llama.backend import LlamaModel, SamplerChain
from desktop_app.engine.protocol import Sampling
from desktop_app.engine.sampling import PENALTY_LAST_N

SETTINGS = [
    pytest.param(Sampling(temperature=0.0), id="greedy-with-penalty"),
    pytest.param(Sampling(temperature=0.0, repeat_penalty=1.0), id="greedy"),
    pytest.param(Sampling(temperature=0.8, repeat_penalty=1.15), id="catalog-default"),
    pytest.param(Sampling(temperature=1.5, top_k=100, top_p=0.99, min_p=0.0), id="wide"),
    pytest.param(Sampling(temperature=1.0, top_k=0, top_p=0.9, min_p=0.02), id="no-top-k"),
]


def llama_cpp_chain(sampling: Sampling, seed: int, n_vocab: int) -> Any:
    """llama.cpp's full chain, as llama-cpp-python builds it for these settings."""
    lc = llama_cpp
    chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
    samplers = [lc.llama_sampler_init_penalties(n_vocab, PENALTY_LAST_N,
                                                float(sampling.repeat_penalty), 0.0, 0.0)]
    if sampling.temperature <= 0:
        samplers.append(lc.llama_sampler_init_greedy())
    else:
        samplers += [lc.llama_sampler_init_top_k(sampling.top_k),
                     lc.llama_sampler_init_top_p(sampling.top_p, 1),
                     lc.llama_sampler_init_min_p(sampling.min_p, 1),
                     lc.llama_sampler_init_temp(sampling.temperature),
                     lc.llama_sampler_init_dist(seed)]
    for sampler in samplers:
        lc.llama_sampler_chain_add(chain, sampler)
    return chain


def decode(model: LlamaModel, prompt: list[int], draw: Any, n: int) -> list[int]:
    model.evaluate_prompt(prompt, lambda: False)
    out: list[int] = []
    for _ in range(n):
        token = draw()
        out.append(token)
        assert model.decode_next(token) is None
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sampling", SETTINGS)
def test_same_tokens_as_llama_cpp_full_chain(gemma: LlamaModel, sampling: Sampling) -> None:
    seed = 2026
    prompt = gemma.tokenize("Once upon a time, in a small village by the sea,")
    reference = llama_cpp_chain(sampling, seed, gemma.n_vocab)
    try:
        expected = decode(gemma, prompt,
                          lambda: int(llama_cpp.llama_sampler_sample(reference, gemma._ctx, -1)),
                          48)
    finally:
        llama_cpp.llama_sampler_free(reference)
    ours = gemma.sampler(sampling, seed)
    try:
        got = decode(gemma, prompt, lambda: ours.sample(gemma._ctx, -1), 48)
    finally:
        ours.close()
    assert got == expected
    assert len(set(got)) > 5  # real text, not one token repeated


@pytest.mark.slow
def test_penalty_leaves_the_logits_row_as_the_model_wrote_it(gemma: LlamaModel) -> None:
    prompt = gemma.tokenize("one two one two one two one two")
    gemma.evaluate_prompt(prompt, lambda: False)
    sampler = gemma.sampler(Sampling(temperature=0.8, repeat_penalty=1.3), 5)
    try:
        for token in prompt[-6:]:
            sampler.accept(token)  # forced tokens count for the penalty too
        before = gemma.logits(-1).copy()
        sampler.sample(gemma._ctx, -1)
        assert np.array_equal(gemma.logits(-1), before)
    finally:
        sampler.close()


# llama_token_data as numpy lays it out: the candidates array is filled in one go, not
# one ctypes object per token (3,000 a row, 750 rows: most of these tests' time).
TOKEN_DATA = np.dtype([("id", np.intc), ("logit", np.float32), ("p", np.float32)])
assert TOKEN_DATA.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


def apply_chain(chain: Any, row: np.ndarray) -> int:
    """llama.cpp's chain over the whole row, as ``llama_sampler_sample`` hands it over."""
    lc = llama_cpp
    candidates = np.zeros(len(row), dtype=TOKEN_DATA)  # p = 0.0, as llama.cpp fills it
    candidates["id"] = np.arange(len(row))
    candidates["logit"] = row
    data = (lc.llama_token_data * len(row)).from_buffer(candidates)
    array = lc.llama_token_data_array(data=data, size=len(row), selected=-1, sorted=False)
    lc.llama_sampler_apply(chain, ctypes.byref(array))
    token = int(data[array.selected].id)
    lc.llama_sampler_accept(chain, token)
    return token


@pytest.mark.parametrize("sampling", SETTINGS)
def test_same_draws_as_llama_cpp_on_rows_that_make_the_penalty_matter(sampling: Sampling) -> None:
    """Rows where the recent tokens lead, with logits below and above zero (the penalty
    divides one and multiplies the other), some rows flat (many candidates near the top)."""
    n_vocab, rng = 3000, np.random.default_rng(11)
    reference = llama_cpp_chain(sampling, 99, n_vocab)
    ours = SamplerChain(sampling, 99, n_vocab)
    drawn: list[int] = []
    try:
        for step in range(150):
            row = rng.normal(0.0, 0.3 if step % 7 == 0 else 2.0, n_vocab).astype(np.float32)
            row += np.float32(rng.choice([-6.0, 0.0, 4.0]))
            for token in drawn[-8:]:
                row[token] = row.max() + np.float32(rng.uniform(-0.5, 0.5))
            expected = apply_chain(reference, row.copy())
            before = row.copy()
            assert ours.draw(row) == expected, f"step {step}"
            assert np.array_equal(row, before)
            drawn.append(expected)
    finally:
        llama_cpp.llama_sampler_free(reference)
        ours.close()
    assert len(set(drawn)) > 10


def test_penalty_window_forgets_old_tokens() -> None:
    sampler = SamplerChain(Sampling(temperature=0.0), seed=0, n_vocab=1000)
    for token in range(PENALTY_LAST_N):
        sampler.accept(token)
    sampler.accept(7)  # pushes token 0 out; 7 is now in the window twice
    assert 0 not in sampler._counts
    assert sampler._counts[7] == 2
    assert sum(sampler._counts.values()) == PENALTY_LAST_N
