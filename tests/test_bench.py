"""`triptych bench` runs end to end on a tiny budget (figures are not asserted: not a timed test)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_runs_end_to_end_and_reports_every_figure(starter_models):
    """One run for every figure, the contention one included (each bench run loads models in
    several processes: one run keeps the suite short)."""
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app", "bench", "--json", "--tokens", "6", "--repeats", "1",
         "--contention"],
        capture_output=True, text=True, timeout=600, env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["single_pane_ratio"] > 0 and report["comparison_ratio"] > 0
    assert report["machine"]["physical_cores"] >= 1 and report["machine"]["cpu"]
    single = report["single_pane"]
    assert single["engine_tokens_per_s"] > 0 and single["bare_tokens_per_s"] > 0
    comparison = report["comparison"]
    assert len(comparison["panes"]) == 3 and all(p["ttft_s"] > 0 for p in comparison["panes"])
    assert len(comparison["alone"]) == 3
    window = report["window"]
    assert "error" not in window, window
    assert window["longest_stall_ms"] > 0 and window["mean_frame_interval_ms"] > 0
    assert set(window["append_cost_us"]) == {"1000", "5000", "10000", "20000"}
    startup = report["startup"]
    assert 0 < startup["launch_to_window_s"] < startup["launch_to_first_token_s"]
    memory = report["memory"]
    assert memory["app_peak_rss_mb"] > 0 and memory["worker_peak_rss_mb"]
    reuse = report["prompt_reuse"]
    assert 0 < reuse["turn3_prompt_cached"] < reuse["turn3_prompt_tokens"]
    assert reuse["turn3_ttft_s"] > 0 and reuse["fresh_ttft_s"] > 0 and reuse["ratio"] > 0
    many = report["many_sequences"]
    assert set(many["total_tokens_per_s"]) == {"1", "4", "8"} and many["ratio"] > 0
    logprobs = report["logprobs"]
    assert logprobs["k"] == 5 and logprobs["on_tokens_per_s"] > 0 and logprobs["ratio"] > 0
    contention = report["contention"]
    assert contention["engine_tokens_per_s"] > 0 and contention["ratio"] > 0
    assert contention["baseline"] == "bare llama-cpp-python loop" or "native" in contention["baseline"]
    import psutil  # the busy process the bench started is gone (or an unreaped zombie)

    gone = not psutil.pid_exists(contention["busy_pid"])
    assert gone or psutil.Process(contention["busy_pid"]).status() == psutil.STATUS_ZOMBIE


def test_bench_names_a_missing_llama_bench_in_one_sentence(tmp_path):
    done = subprocess.run([sys.executable, "-m", "desktop_app", "bench", "--llama-bench",
                           str(tmp_path / "nope")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "is not an executable llama-bench" in done.stderr


def test_bench_rejects_a_silly_budget():
    done = subprocess.run([sys.executable, "-m", "desktop_app", "bench", "--tokens", "1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--tokens must be at least 2" in done.stderr


def test_readme_figures_are_the_latest_bench_report():
    from pathlib import Path

    from desktop_app.bench import format_markdown

    root = Path(__file__).resolve().parent.parent
    report = json.loads((root / "docs" / "bench-latest.json").read_text(encoding="utf-8"))
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- bench:start -->\n", 1)[1].split("\n<!-- bench:end -->", 1)[0]
    assert block == format_markdown(report)
    assert report["single_pane_ratio"] and report["comparison_ratio"]
