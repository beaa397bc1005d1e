"""``triptych bench``: the command, and one run of every measurement into one report.

What each figure compares is in :mod:`desktop_app.bench.engine` (the engine's figures) and
:mod:`desktop_app.bench.app` (the window's, measured in a separate app process); the
report's rows and their renderings are in :mod:`desktop_app.bench.report`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from typing import Any

from desktop_app import __version__
from desktop_app.bench.app import (
    ROLLOUTS_PER_PANE,
    bench_rollouts_window,
    bench_startup,
    bench_window,
)
from desktop_app.bench.engine import (
    bench_comparison,
    bench_contention,
    bench_logprobs,
    bench_many_sequences,
    bench_native,
    bench_prompt_reuse,
    bench_single_pane,
    find_llama_bench,
)
from desktop_app.bench.report import format_markdown, format_table

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



def _choose_models(ids: list[str] | None) -> list[Any]:
    from desktop_app.models.catalog import default_model_ids, load_catalog

    catalog = load_catalog()
    chosen = ids or default_model_ids(catalog)
    if not chosen:
        raise ValueError("No model is ready to benchmark; install the starter models.")
    entries = [catalog.get(model_id) for model_id in chosen]
    while len(entries) < 3:  # a comparison is three panes; repeat models if fewer are here
        entries.append(entries[len(entries) % len(chosen)])
    return entries[:4]


LIGHT_DUTY = 0.6  # a light load: 60 % of one core, which a 0.1 s sample counts as taken


def run_benchmarks(ids: list[str] | None, n_tokens: int, repeats: int,
                   window: bool = True, startup: bool = True, contention: bool = False,
                   llama_bench: str | None = None, rollouts: bool = True,
                   threads: int | None = None) -> dict[str, Any]:
    """Run every measurement on ``threads`` cores (default: every physical core); return
    one JSON-ready dict."""
    from desktop_app.engine.cores import physical_cores
    from desktop_app.engine.llama.native_setup import summary
    from desktop_app.engine.worker import decided_setup

    entries = _choose_models(ids)
    cores = threads or physical_cores()
    # the baselines run llama.cpp outside our model processes: decide how it may run here
    # first, so they use the setting the engine does (and do not crash where it would)
    decided_setup(entries[0])
    report: dict[str, Any] = {"machine": {**machine_description(), "llama_cpp_here": summary()}}
    single = bench_single_pane(entries[0], n_tokens, repeats, cores)
    comparison = bench_comparison(entries[:3], n_tokens, cores)
    report["single_pane_ratio"] = single["ratio"]
    report["comparison_ratio"] = comparison["ratio"]
    report["single_pane"] = single
    report["comparison"] = comparison
    report["prompt_reuse"] = bench_prompt_reuse(entries[0], n_tokens, cores)
    report["many_sequences"] = bench_many_sequences(entries[0], n_tokens, cores)
    report["logprobs"] = bench_logprobs(entries[0], n_tokens, repeats, cores)
    if llama_bench:
        report["native"] = bench_native(entries[:2], llama_bench, n_tokens, cores, repeats)
    if contention:
        report["contention"] = bench_contention(entries[0], n_tokens, repeats, cores,
                                                llama_bench)
        report["contention_light"] = bench_contention(entries[0], n_tokens, repeats, cores,
                                                      llama_bench, duty=LIGHT_DUTY)
    report["window"] = bench_window(entries[:3], n_tokens) if window else None
    if window and rollouts:
        report["rollouts_window"] = bench_rollouts_window(
            entries[:3], min(n_tokens, ROLLOUT_TOKENS), ROLLOUTS_PER_PANE)
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


def add_bench_parser(subparsers: Any) -> None:
    bench = subparsers.add_parser("bench", help="measure Triptych against bare llama.cpp")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--markdown", action="store_true", help="print the README's table")
    bench.add_argument("--models", help="comma-separated model ids (default: the ready ones)")
    bench.add_argument("--tokens", type=int, default=128,
                       help=f"tokens per generation ({ROLLOUT_TOKENS} at most per rollout)")
    bench.add_argument("--repeats", type=int, default=3, help="single-pane runs per side")
    bench.add_argument("--threads", type=int, metavar="N",
                       help="cores the engine's figures use (default: every physical core; "
                            "the window's figures run the app as it is)")
    bench.add_argument("--no-window", action="store_true",
                       help="skip the window figures (streaming, rollouts, append cost)")
    bench.add_argument("--no-rollouts", action="store_true",
                       help=f"skip the GUI stall while 3 panes × {ROLLOUTS_PER_PANE} rollouts run")
    bench.add_argument("--no-startup", action="store_true", help="skip the start-up figures")
    bench.add_argument("--contention", action="store_true",
                       help="also measure one pane while a busy process takes a core")
    bench.add_argument("--llama-bench", metavar="PATH",
                       help="native llama-bench binary for the ratio to llama.cpp "
                            "(default: llama-bench on PATH, if any)")


def run_bench(args: argparse.Namespace) -> int:
    from desktop_app.models.catalog import CatalogError

    if args.tokens < 2 or args.repeats < 1:
        print("triptych: --tokens must be at least 2 and --repeats at least 1.", file=sys.stderr)
        return 2
    if args.threads is not None and args.threads < 1:
        print("triptych: --threads must be at least 1.", file=sys.stderr)
        return 2
    ids = [part.strip() for part in args.models.split(",")] if args.models else None
    llama_bench = find_llama_bench(args.llama_bench)
    if args.llama_bench and llama_bench is None:
        print(f"triptych: {args.llama_bench} is not an executable llama-bench.", file=sys.stderr)
        return 2
    try:
        report = run_benchmarks(ids, args.tokens, args.repeats, window=not args.no_window,
                                startup=not args.no_startup, contention=args.contention,
                                llama_bench=llama_bench, rollouts=not args.no_rollouts,
                                threads=args.threads)
    except (CatalogError, ValueError, RuntimeError) as exc:
        print(f"triptych: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_markdown(report) if args.markdown else format_table(report))
    return 0
