"""The llama.cpp backend's pure parts: GPU layer choice, placement labels, prefix reuse,
top-k log-probabilities. Fast: no model is loaded."""

from __future__ import annotations

import numpy as np

from desktop_app.engine.llama.backend import (
    ALL_LAYERS,
    Placement,
    common_prefix,
    gpu_layers_param,
    resolve_gpu_layers,
    supports_gpu_offload,
    top_logprobs,
)


def test_gpu_layers_reach_llama_cpp_only_on_a_gpu_build():
    assert gpu_layers_param(None, offload=True) == ALL_LAYERS  # auto: every layer
    assert gpu_layers_param(12, offload=True) == 12
    assert gpu_layers_param(0, offload=True) == 0
    for requested in (None, 0, 12):
        assert gpu_layers_param(requested, offload=False) == 0  # CPU-only build: as today


def test_placement_says_where_a_model_ran():
    assert resolve_gpu_layers(None, 29, offload=True) == 29
    assert resolve_gpu_layers(40, 29, offload=True) == 29
    assert resolve_gpu_layers(10, 29, offload=False) == 0
    assert Placement("Metal", 29, 29).describe(2) == "Metal · 29/29 layers"
    assert Placement("CPU", 0, 30).describe(2) == "CPU · 2 threads"
    assert Placement("CPU", 0, 30).describe(1) == "CPU · 1 thread"


def test_this_build_reports_its_offload_support():
    assert isinstance(supports_gpu_offload(), bool)


def test_common_prefix():
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix([1, 2], [1, 2, 3]) == 2


def test_top_logprobs_are_a_normalised_log_softmax():
    logits = np.array([0.0, 3.0, 1.0, 2.0, -1.0], dtype=np.float32)
    top = top_logprobs(logits, 3)
    assert top.tokens == (1, 3, 2)
    expected = logits - np.log(np.exp(logits.astype(np.float64)).sum())
    assert np.allclose(top.logprobs, expected[[1, 3, 2]])
    assert top_logprobs(logits, 50).tokens[0] == 1  # k larger than the vocabulary
    assert np.isclose(top_logprobs(logits, 1, chosen=4).chosen_logprob, expected[4])
