"""`triptych bench` runs end to end on a tiny budget, and its two tables render one row list.

No figure is held to a speed (this is not a timed test): each must be a real measurement,
positive and consistent with the parts it was computed from."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from desktop_app.bench import format_markdown, format_table
from desktop_app.bench.report import report_rows

ROOT = Path(__file__).resolve().parent.parent
TOKENS = 6
MODEL = "smollm2-135m-instruct"
# About 80 s here before the embeddings, reward-fit and sampling-lab figures, 158 s with them
# (beside other test runs); over 300 s with the machine's two cores shared by four suites.
BENCH_TIMEOUT_S = 600


def _ratio_of(ratio: float, numerator: float, denominator: float) -> None:
    """A reported ratio is its two reported parts divided (up to their rounding)."""
    assert numerator > 0 and denominator > 0 and ratio > 0
    assert ratio == pytest.approx(numerator / denominator, rel=0.02, abs=0.002)


def _stall_figures(figures: dict[str, Any]) -> None:
    """A 5 ms timer ticked through the run: its longest gap is at least the mean, and the
    gaps fit in the run's wall time."""
    assert "error" not in figures, figures
    ticks, mean, longest = (figures["timer_ticks"], figures["mean_frame_interval_ms"],
                            figures["longest_stall_ms"])
    assert ticks > 1 and 0 < mean <= longest
    assert mean * (ticks - 1) / 1000 <= figures["wall_s"] + 0.05


def _within_one_thread(placement: str) -> bool:
    """Where a run ended with a ceiling of one thread: one CPU thread, or a GPU."""
    return placement == "CPU · 1 thread" or not placement.startswith("CPU")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, starter_cache: Path,
           native_decision: Any) -> dict[str, Any]:
    """One real `triptych bench --json` for every figure, the contention ones included (the
    sampled figures with `--top-k 20`, the sampler's settings reaching them), shared
    by the tests below (each bench run loads models in a dozen processes: one run keeps the
    suite short). The smallest model in every pane, and one thread: with another program
    keeping a core busy, figures pinned to two threads crawl, and the report's shape is the
    same. Its own TRIPTYCH_HOME, with the session's base starter and native-setup verdict
    (conftest), as a test's own home has them."""
    from desktop_app.models.catalog import assembled_path, load_catalog
    from tests.conftest import _share_decision

    home = tmp_path_factory.mktemp("bench-home")
    _share_decision(home)
    env = {**os.environ, "TRIPTYCH_HOME": str(home)}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TRIPTYCH_HOME", str(home))
        target = assembled_path(load_catalog().get("gemma3-270m-base"))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(starter_cache / "data" / "models" / target.name)
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "bench", "--json", "--tokens", str(TOKENS),
         "--repeats", "1", "--threads", "1", "--contention", "--models", MODEL,
         "--top-k", "20"],
        capture_output=True, text=True, timeout=BENCH_TIMEOUT_S, env=env)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


# The first test to ask for the report waits for the run: bounded by the run's own limit,
# not pytest's 300 s (a machine shared by several test runs has taken longer).
waits_for_the_run = pytest.mark.timeout(BENCH_TIMEOUT_S + 60)


@pytest.mark.slow
@waits_for_the_run
def test_bench_describes_the_machine_and_one_pane_against_the_bare_loop(report):
    assert report["machine"]["physical_cores"] >= 1 and report["machine"]["cpu"]
    single = report["single_pane"]
    assert single["threads"] == 1 and single["tokens"] == TOKENS
    assert len(single["engine_ended_on"]) == 1 and _within_one_thread(single["engine_ended_on"][0])
    _ratio_of(single["ratio"], single["engine_tokens_per_s"], single["bare_tokens_per_s"])
    assert report["single_pane_ratio"] == single["ratio"]


@pytest.mark.slow
@waits_for_the_run
def test_bench_compares_three_panes_with_each_alone(report):
    comparison = report["comparison"]
    assert comparison["models"] == [MODEL] * 3
    assert len(comparison["panes"]) == 3 and len(comparison["alone"]) == 3
    assert [p["model"] for p in comparison["panes"]] == comparison["models"]
    assert [a["model"] for a in comparison["alone"]] == comparison["models"]
    assert all(a["threads"] == 1 and _within_one_thread(a["ended_on"]) for a in comparison["alone"])
    assert all(p["ttft_s"] > 0 and 0 < p["done_after_s"] <= comparison["wall_s"]
               for p in comparison["panes"])
    assert comparison["sum_alone_s"] == pytest.approx(
        sum(a["wall_s"] for a in comparison["alone"]), abs=0.005)
    _ratio_of(comparison["ratio"], comparison["wall_s"], comparison["sum_alone_s"])
    assert report["comparison_ratio"] == comparison["ratio"]


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_prompt_reuse_many_sequences_and_logprobs(report):
    reuse = report["prompt_reuse"]
    assert 0 < reuse["turn3_prompt_cached"] < reuse["turn3_prompt_tokens"]
    _ratio_of(reuse["ratio"], reuse["turn3_ttft_s"], reuse["fresh_ttft_s"])
    assert reuse["turn3_uncached_ttft_s"] > 0

    many = report["many_sequences"]
    totals = many["total_tokens_per_s"]
    assert set(totals) == {"1", "4", "8"} and many["sequences"] == 8
    _ratio_of(many["ratio"], totals["8"], totals["1"])

    assert report["sampler"] == {"top_k": 20}  # the sampled figures' settings: --top-k
    logprobs = report["logprobs"]
    assert logprobs["k"] == 5 and logprobs["sampling"]["top_k"] == 20
    assert logprobs["sampling"]["temperature"] > 0  # the model's own: it samples
    _ratio_of(logprobs["ratio"], logprobs["on_tokens_per_s"], logprobs["off_tokens_per_s"])


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_embeddings_and_the_reward_fit(report):
    embeddings = report["embeddings"]  # 64 answers through the model process vs llama.cpp's
    assert embeddings["texts"] == 64 and embeddings["model"] == MODEL
    _ratio_of(embeddings["ratio"], embeddings["engine_s"], embeddings["bare_s"])
    fit = report["reward_fit"]
    assert fit["votes"] == 200 and fit["fit_s"] > 0 and fit["cross_validated_s"] > 0


def _gone(pid: int) -> bool:
    """The busy process the bench started is gone (or an unreaped zombie)."""
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_one_pane_beside_a_busy_and_a_lightly_loaded_core(report):
    contention = report["contention"]
    assert set(contention["baseline_tokens_per_s"]) == {"1"}  # one thread count: --threads 1
    _ratio_of(contention["ratio"], contention["engine_tokens_per_s"],
              contention["baseline_tokens_per_s"]["1"])
    assert contention["baseline"] == "bare llama-cpp-python loop" or "native" in contention["baseline"]
    assert _gone(contention["busy_pid"])
    light = report["contention_light"]  # a light load: where the tuner ended, native's best
    assert light["busy_duty"] == 0.6 and contention["busy_duty"] == 1.0
    assert light["baseline_best_threads"] == "1" and light["engine_ended_on"]
    assert all(p.startswith("CPU · 1 thread") for p in light["engine_ended_on"])
    _ratio_of(light["ratio"], light["engine_tokens_per_s"], light["baseline_tokens_per_s"]["1"])
    assert _gone(light["busy_pid"])


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_the_gui_thread_while_panes_and_rollouts_stream(report):
    comparison = report["comparison"]
    window = report["window"]
    _stall_figures(window)
    assert window["panes"] == comparison["models"]
    assert 0 < window["tokens_streamed"] <= 3 * TOKENS  # the window follows --tokens
    assert set(window["append_cost_us"]) == {"1000", "5000", "10000", "20000"}
    assert all(cost > 0 for cost in window["append_cost_us"].values())

    rollouts = report["rollouts_window"]
    _stall_figures(rollouts)
    assert rollouts["panes"] == comparison["models"] and rollouts["target_ms"] == 50
    assert rollouts["rollouts_per_pane"] == 16 and rollouts["tokens_per_rollout"] == TOKENS
    # every rollout of the three windows finished and was checked against the key
    assert rollouts["rollouts_finished"] == rollouts["rollouts_checked"] == 3 * 16
    assert 0 < rollouts["tokens_generated"] <= 3 * 16 * TOKENS
    assert all(0 < wall <= rollouts["wall_s"] for wall in rollouts["generation_wall_s"])


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_the_gui_thread_while_the_sampling_lab_sliders_move(report):
    lab = report["lab_window"]  # the explorer's sliders dragged: no decode, a stall figure
    _stall_figures(lab)
    assert lab["models"] == [MODEL] and lab["vocabulary"] == [49_152]
    assert lab["decodes"] == 0 and lab["moves"] > 150 and lab["target_ms"] == 50


@pytest.mark.slow
@waits_for_the_run
def test_bench_measures_start_up_and_peak_memory(report):
    startup = report["startup"]
    assert 0 < startup["launch_to_window_s"] < startup["launch_to_first_token_s"]
    memory = report["memory"]
    assert memory["app_peak_rss_mb"] == report["window"]["app_peak_rss_mb"] > 0
    assert set(memory["worker_peak_rss_mb"]) == set(report["comparison"]["models"])
    assert all(mb > 0 for mb in memory["worker_peak_rss_mb"].values())


@pytest.mark.slow
@waits_for_the_run
def test_both_renderings_of_a_real_run_show_every_figure(report):
    """Both renderings show every figure of this report, the rollouts stall with its target."""
    measures = [row.measure for row in report_rows(report)]
    native_models = len(report["native"]["models"]) if "native" in report else 0
    assert len(measures) == 16 + native_models  # with a llama-bench on PATH
    markdown, table = format_markdown(report), format_table(report)
    assert all(measure in markdown and measure in table for measure in measures)
    assert "stall ≤ 50 ms" in markdown and "stall ≤ 50 ms" in table


def _latest() -> dict[str, Any]:
    return dict(json.loads((ROOT / "docs" / "bench-latest.json").read_text(encoding="utf-8")))


def test_readme_figures_are_the_latest_bench_report():
    report = _latest()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- bench:start -->\n", 1)[1].split("\n<!-- bench:end -->", 1)[0]
    assert block == format_markdown(report)
    assert report["single_pane_ratio"] and report["comparison_ratio"]


def test_both_renderings_are_the_same_rows():
    """The terminal's table and the README's Markdown show the same measures, figures,
    baselines, ratios and targets, in the same order."""
    report = _latest()
    report["rollouts_window"] = {
        "panes": ["a", "b", "c"], "rollouts_per_pane": 16, "tokens_per_rollout": 32,
        "target_ms": 50, "longest_stall_ms": 21.5, "mean_frame_interval_ms": 5.1}
    report["lab_window"] = {
        "models": ["a", "b"], "vocabulary": [262144, 49152], "moves": 214, "decodes": 0,
        "target_ms": 50, "longest_stall_ms": 31.2, "mean_frame_interval_ms": 9.4}
    report["logprobs"]["sampling"] = {"temperature": 0.7, "top_k": 40}
    rows = report_rows(report)
    markdown = format_markdown(report).splitlines()[4:]  # after the head and table header
    table = format_table(report)
    assert len(markdown) == len(rows)
    position = 0
    for row, line in zip(rows, markdown):
        assert line.startswith(f"| {row.measure} | {row.triptych} |")
        assert (f"**{row.ratio}**" if row.headline else row.ratio) in line
        for text in (row.measure, row.triptych, row.baseline, row.ratio, row.target):
            found = table.find(text, position)
            assert found >= 0, text
        position = table.find(row.measure, position) + len(row.measure)
    assert ("| GUI thread while 3 Rollouts windows each sample 16 answers (at most 32 tokens "
            "each): longest stall / mean interval of a 5 ms timer | 21.5 ms / 5.1 ms | | | "
            "stall ≤ 50 ms |") in markdown
    assert ("| GUI thread while the explorer's sampling-lab sliders are dragged (214 moves over "
            "whole distributions: a 262,144, b 49,152 tokens; 0 decodes): longest stall / mean "
            "interval of a 5 ms timer | 31.2 ms / 9.4 ms | | | stall ≤ 50 ms |") in markdown
    assert any("of the model's and of the sampled distribution (temperature 0.7, top-k 40)"
               in line for line in markdown)


def test_a_section_missing_or_failed_is_left_out_or_named():
    report = _latest()
    del report["contention"], report["native"]
    report.pop("contention_light", None)
    report["window"] = {"error": "the window benchmark failed: no display"}
    rows = report_rows(report)
    measures = [row.measure for row in rows]
    assert not any("core busy" in row.measure or "native" in row.baseline for row in rows)
    failed = [row for row in rows if row.triptych == "the window benchmark failed: no display"]
    assert [row.measure for row in failed] == ["GUI thread while three panes stream"]
    assert not any(m.startswith("appending one token") for m in measures)
    assert "the window benchmark failed: no display" in format_table(report)


def test_bench_names_a_missing_llama_bench_in_one_sentence(tmp_path):
    done = subprocess.run([sys.executable, "-m", "desktop_app", "bench", "--llama-bench",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is not an executable llama-bench" in done.stderr


@pytest.mark.parametrize("args, sentence", [
    (["--tokens", "1"], "--tokens must be at least 2"),
    (["--repeats", "0"], "--repeats at least 1"),
    (["--threads", "0"], "--threads must be at least 1"),
])
def test_bench_rejects_a_silly_budget(args, sentence):
    done = subprocess.run([sys.executable, "-m", "desktop_app", "bench", *args],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and sentence in done.stderr and "Traceback" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_bench_serve_measures_a_room_beside_a_local_pane(starter_models):
    """`bench --serve`'s section on a tiny budget: a real room (llama-cpp-python's server
    behind the door) and real students at once; each figure consistent with its parts."""
    from desktop_app.bench.serve import bench_serve
    from desktop_app.cli.main import build_parser
    from desktop_app.models.catalog import load_catalog

    assert build_parser().parse_args(["bench", "--serve"]).serve is True
    served = bench_serve(load_catalog().get(MODEL), TOKENS, 1, students=(1, 2))
    assert served["model"] == MODEL and served["threads"] == 1
    assert served["local_pane_tokens_per_s"] > 0 and served["local_pane_decode_tokens_per_s"] > 0
    assert [r["students"] for r in served["rounds"]] == [1, 2]
    for figures in served["rounds"]:
        tokens = figures["tokens_per_student"]
        assert len(tokens) == figures["students"] and all(0 < t <= TOKENS for t in tokens)
        assert 0 < figures["per_student_tokens_per_s_min"] \
            <= figures["per_student_tokens_per_s_median"]
        assert figures["room_tokens_per_s"] == pytest.approx(sum(tokens) / figures["wall_s"],
                                                             rel=0.05)
        assert 0 < figures["longest_wait_for_first_token_s"] <= figures["wall_s"]
    _ratio_of(served["ratio"], served["rounds"][0]["per_student_tokens_per_s_median"],
              served["local_pane_tokens_per_s"])
    rows = report_rows({"serve": served})
    assert [row.triptych for row in rows] == [
        " / ".join(str(r["per_student_tokens_per_s_median"]) for r in served["rounds"]),
        " / ".join(str(r["room_tokens_per_s"]) for r in served["rounds"])]
    assert "1 / 2 asking at once" in rows[0].measure
