"""The sampler's settings everywhere, with one set of names and ranges: the catalog's
``[model.sampling]``, the pane's ⚙ fields and ``--top-k --top-p --min-p
--repeat-penalty`` (and ``--temperature``) in compare, rollouts and bench. A value out of
range is one sentence and exit status 2; a value given reaches the sampler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.models.catalog import SAMPLING_RANGES, load_catalog, sampling_problem

pytest.importorskip("pytestqt")


def triptych(*args: str, timeout: float = 300):
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], capture_output=True,
                          text=True, timeout=timeout, env=os.environ.copy())


BAD_VALUES = [
    ("--top-k", "-1", "--top-k must be between 0 and 100000."),
    ("--top-p", "1.5", "--top-p must be between 0 and 1."),
    ("--top-p", "nan", "--top-p must be between 0 and 1."),
    ("--min-p", "-0.1", "--min-p must be between 0 and 1."),
    ("--min-p", "inf", "--min-p must be between 0 and 1."),
    ("--repeat-penalty", "0", "--repeat-penalty must be between 0.5 and 2."),
    ("--repeat-penalty", "NaN", "--repeat-penalty must be between 0.5 and 2."),
    ("--temperature", "-1", "--temperature must be between 0 and 5."),
]
COMMANDS = {
    "compare": ("compare", "hi", "--models", "smollm2-135m-instruct"),
    "rollouts": ("rollouts", "hi", "--models", "smollm2-135m-instruct", "--expect", "1"),
    "bench": ("bench", "--models", "smollm2-135m-instruct"),
}


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("option, value, sentence", BAD_VALUES)
def test_a_bad_sampler_value_is_one_sentence_and_exit_2(command, option, value, sentence):
    done = triptych(*COMMANDS[command], f"{option}={value}", timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"triptych: {sentence}"


def test_the_same_options_in_every_command():
    for command in COMMANDS:
        done = triptych(command, "--help", timeout=60)
        assert done.returncode == 0
        for option in ("--temperature", "--top-k", "--top-p", "--min-p", "--repeat-penalty"):
            assert option in done.stdout, (command, option)


def test_ranges_turn_nan_and_wrong_kinds_away():
    assert sampling_problem("top_p", float("nan")) == "must be between 0 and 1"
    assert sampling_problem("top_k", 2.5) == "must be a whole number"
    assert sampling_problem("top_k", True) == "must be a whole number"
    assert sampling_problem("min_p", "0.1") == "must be a number"
    assert all(sampling_problem(name, low) is None and sampling_problem(name, high) is None
               for name, (low, high) in SAMPLING_RANGES.items())


def test_a_catalog_value_out_of_range_is_one_sentence(tmp_path: Path):
    user = tmp_path / "models.toml"
    user.write_text('[[model]]\nid = "tiny"\nrole = "instruct"\n[model.source]\n'
                    'path = "/nonexistent/tiny.gguf"\n[model.sampling]\ntop_p = 1.5\n',
                    encoding="utf-8")
    catalog = load_catalog([paths.bundled_catalog_path(), user])
    assert catalog.problems == [f"{user}: model 'tiny': sampling setting 'top_p' must be "
                                "between 0 and 1."]
    assert "gemma3-270m-base" in catalog


def test_a_remembered_setting_out_of_range_falls_back_to_the_default():
    from desktop_app.session.pane import PaneConfig

    config = PaneConfig.from_dict({"model_id": "m", "top_p": 7, "top_k": 20, "min_p": "x",
                                   "repeat_penalty": float("nan"), "temperature": 0.3})
    assert (config.top_p, config.top_k, config.min_p, config.repeat_penalty,
            config.temperature) == (None, 20, None, None, 0.3)


# ---------------------------------------------------------------------------- the pane


def test_the_panes_fields_show_the_models_defaults_and_reach_the_request(qtbot, fake_models,
                                                                          engine):
    from desktop_app.engine.protocol import Sampling
    from desktop_app.session.generation import close_in_background, wait_for_closing
    from desktop_app.session.pane import PaneConfig
    from desktop_app.ui.pane import Pane
    from tests.fake_engine import send_and_wait

    entry = next(e for e in fake_models if e.role == "reasoning")  # its own top-k 20, min-p 0
    pane = Pane(fake_models, PaneConfig(model_id=entry.id), worker_factory=engine.worker)
    qtbot.addWidget(pane)
    pane.show()
    try:
        form, defaults = pane.settings_box, Sampling.for_entry(entry)
        assert (form.top_k.value(), form.top_p.value(), form.min_p.value(),
                form.repeat_penalty.value()) == (defaults.top_k, defaults.top_p,
                                                 defaults.min_p, defaults.repeat_penalty)
        form.top_k.setValue(7)
        form.top_p.setValue(0.5)
        form.min_p.setValue(0.2)
        form.repeat_penalty.setValue(1.3)
        assert (pane.config.top_k, pane.config.top_p, pane.config.min_p,
                pane.config.repeat_penalty) == (7, 0.5, 0.2, 1.3)
        send_and_wait(qtbot, pane, "hi")
        sampling = engine.workers[-1].requests[-1].sampling
        assert (sampling.top_k, sampling.top_p, sampling.min_p, sampling.repeat_penalty) == (
            7, 0.5, 0.2, 1.3)
        form.top_k.setValue(defaults.top_k)  # the default again: stored as "the model's"
        assert pane.config.top_k is None
        form.defaults_button.click()
        assert (pane.config.top_p, pane.config.min_p, pane.config.repeat_penalty) == (
            None, None, None)
        assert form.top_p.value() == defaults.top_p
    finally:
        close_in_background(pane.shutdown())
        assert wait_for_closing()


# -------------------------------------------------------------------- real models


def _summaries(done: subprocess.CompletedProcess[str]) -> dict[str, dict]:
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    return {r["model"]: r for r in records if r["type"] == "summary"}


@pytest.mark.slow
def test_top_k_one_reaches_the_sampler_in_compare(starter_models):
    """At temperature 1.5 with --top-k 1 only the likeliest token (after the penalty) is
    left: every token's sampled distribution is that one token, and it is the one chosen."""
    summaries = _summaries(triptych(
        "compare", "Write a poem about the sea.", "--models", "smollm2-135m-instruct",
        "--temperature", "1.5", "--top-k", "1", "--seed", "3", "--max-tokens", "16", "--json",
        "--top-logprobs", "3"))
    tokens = summaries["smollm2-135m-instruct"]["tokens"]
    assert len(tokens) >= 8
    for token in tokens:
        assert [t["text"] for t in token["top_sampled"]] == [token["text"]]
        assert token["sampled_logprob"] == 0.0


@pytest.mark.slow
def test_top_p_and_min_p_narrow_what_the_sampler_drew_from(starter_models):
    """The same prompt and seed with every cut off, then with --top-p 0.5 --min-p 0.2:
    the sampled distributions shrink to what those settings leave."""
    def sampled(*options: str) -> list[list[dict]]:
        summary = _summaries(triptych(
            "compare", "Name an animal.", "--models", "smollm2-135m-instruct", "--temperature",
            "1", "--seed", "1", "--max-tokens", "8", "--json", "--top-logprobs", "5",
            "--repeat-penalty", "1", *options))["smollm2-135m-instruct"]
        return [t["top_sampled"] for t in summary["tokens"]]

    wide = sampled("--top-k", "0", "--top-p", "1", "--min-p", "0")
    narrow = sampled("--top-k", "0", "--top-p", "0.5", "--min-p", "0.2")
    assert all(len(t) == 5 for t in wide)  # nothing cut: five to show every time
    import math

    for token in narrow:
        probabilities = [math.exp(t["logprob"]) for t in token]
        assert probabilities[-1] >= 0.2 * probabilities[0] - 1e-6 or len(token) == 1
    assert sum(len(t) for t in narrow) < sum(len(t) for t in wide)


@pytest.mark.slow
def test_top_k_one_makes_every_rollout_the_same(starter_models):
    done = triptych("rollouts", "Name a fruit.", "--models", "smollm2-135m-instruct", "-n",
                    "3", "--expect", "apple", "--temperature", "1.5", "--top-k", "1",
                    "--max-tokens", "12", "--seed", "4", "--json")
    assert done.returncode == 0, done.stderr
    rollouts = json.loads(done.stdout)["models"][0]["rollouts"]
    assert len({r["seed"] for r in rollouts}) == 3  # three seeds…
    assert len({r["answer"] for r in rollouts}) == 1  # …and one answer: nothing to draw from
