"""One run of every measurement into one report (``triptych bench``'s arguments and
printing are :mod:`desktop_app.cli.bench`).

What each figure compares is in :mod:`desktop_app.bench.engine` (the engine's figures) and
:mod:`desktop_app.bench.app` (the window's, measured in a separate app process); the
report's rows and their renderings are in :mod:`desktop_app.bench.report`.
"""

from __future__ import annotations

import os
import platform
from typing import TYPE_CHECKING, Any

from desktop_app import __version__
from desktop_app.bench.app import (
    ROLLOUTS_PER_PANE,
    bench_lab_window,
    bench_rollouts_window,
    bench_startup,
    bench_window,
)
from desktop_app.bench.engine import (
    bench_comparison,
    bench_contention,
    bench_embeddings,
    bench_logprobs,
    bench_many_sequences,
    bench_native,
    bench_prompt_reuse,
    bench_single_pane,
)

if TYPE_CHECKING:
    from desktop_app.models.catalog import ModelEntry

# Rollouts are many generations at once: their tokens are capped so the figure stays quick.
ROLLOUT_TOKENS = 32


# ------------------------------------------------------------------------------ machine


def machine_description() -> dict[str, Any]:
    """What this machine is: enough to compare figures between runs."""
    from desktop_app.engine.cores import physical_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "llama_cpp_python": llama_version,
        "triptych": __version__,
    }


def _panes(models: list[ModelEntry]) -> list[ModelEntry]:
    """The models of a comparison: three panes (models repeated if fewer), four at most."""
    if not models:
        raise ValueError("No model is ready to benchmark; install the starter models.")
    entries = list(models)
    while len(entries) < 3:  # a comparison is three panes; repeat models if fewer are here
        entries.append(entries[len(entries) % len(models)])
    return entries[:4]


LIGHT_DUTY = 0.6  # a light load: 60 % of one core, which a 0.1 s sample counts as taken


def run_benchmarks(models: list[ModelEntry], n_tokens: int, repeats: int,
                   window: bool = True, startup: bool = True, contention: bool = False,
                   llama_bench: str | None = None, rollouts: bool = True,
                   threads: int | None = None,
                   sampler: dict[str, float | int] | None = None,
                   embeddings: bool = True, serve: bool = False) -> dict[str, Any]:
    """Run every measurement of *models* (catalog entries) on ``threads`` cores (default:
    every physical core); return one JSON-ready dict. ``sampler``: settings that replace
    each model's defaults in the figures that sample (the decode-speed ones are greedy)."""
    from desktop_app.engine.cores import physical_cores
    from desktop_app.engine.llama.native_setup import summary
    from desktop_app.engine.worker import decided_setup

    entries = _panes(models)
    cores = threads or physical_cores()
    # the baselines run llama.cpp outside our model processes: decide how it may run here
    # first, so they use the setting the engine does (and do not crash where it would)
    decided_setup(entries[0])
    sampler = dict(sampler or {})
    report: dict[str, Any] = {"machine": {**machine_description(), "llama_cpp_here": summary()},
                              "sampler": sampler}
    single = bench_single_pane(entries[0], n_tokens, repeats, cores)
    comparison = bench_comparison(entries[:3], n_tokens, cores)
    report["single_pane_ratio"] = single["ratio"]
    report["comparison_ratio"] = comparison["ratio"]
    report["single_pane"] = single
    report["comparison"] = comparison
    report["prompt_reuse"] = bench_prompt_reuse(entries[0], n_tokens, cores)
    report["many_sequences"] = bench_many_sequences(entries[0], n_tokens, cores,
                                                    sampler=sampler)
    report["logprobs"] = bench_logprobs(entries[0], n_tokens, repeats, cores, sampler=sampler)
    if embeddings:
        report["embeddings"] = bench_embeddings(entries[0], repeats, cores)
    if llama_bench:
        report["native"] = bench_native(entries[:2], llama_bench, n_tokens, cores, repeats)
    if contention:
        report["contention"] = bench_contention(entries[0], n_tokens, repeats, cores,
                                                llama_bench)
        report["contention_light"] = bench_contention(entries[0], n_tokens, repeats, cores,
                                                      llama_bench, duty=LIGHT_DUTY)
    if serve:
        from desktop_app.bench.serve import bench_serve

        served = next((e for e in entries if e.prompt.style == "chat"), entries[0])
        report["serve"] = bench_serve(served, n_tokens, cores)
    report["window"] = bench_window(entries[:3], n_tokens, sampler) if window else None
    if window and rollouts:
        report["rollouts_window"] = bench_rollouts_window(
            entries[:3], min(n_tokens, ROLLOUT_TOKENS), ROLLOUTS_PER_PANE, sampler)
    if window:
        report["lab_window"] = bench_lab_window(list({e.id: e for e in models}.values()))
    report["startup"] = bench_startup(entries[0].id) if startup else None
    from desktop_app.engine.child import peak_rss_mb

    window_figures = report["window"] or {}
    own_peak = round(peak_rss_mb() or 0, 1)
    report["memory"] = {
        # the window app's own process (from the window run), else this headless one
        "app_peak_rss_mb": window_figures.get("app_peak_rss_mb") or own_peak,
        "bench_process_peak_rss_mb": own_peak,
        "worker_peak_rss_mb": {pane["model"]: pane["worker_peak_rss_mb"]
                               for pane in comparison["panes"] if pane},
    }
    return report
