"""``triptych bench``: Triptych measured against bare llama.cpp, in one run.

    triptych bench [--json | --markdown] [--models IDS] [--tokens N] [--repeats R]
        [--threads N] [--no-window] [--no-rollouts] [--no-startup] [--contention]
        [--llama-bench PATH] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
        [--repeat-penalty R] [--no-rlhf] [--serve]

The sampler options set the figures that sample (N sequences, log-probabilities, the
window's); the decode-speed figures stay greedy, as their llama.cpp baselines are.

This module is the command: its arguments, which models it measures and how the report
is printed. The measurements and the report's rows are in :mod:`desktop_app.bench`.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from desktop_app.bench.app import ROLLOUTS_PER_PANE
from desktop_app.bench.run import ROLLOUT_TOKENS
from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_sampler_options,
    model_ids,
    report,
    resolve_models,
    sampler_overrides,
)


def add_bench_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych bench`` on the main parser's subcommands."""
    bench: argparse.ArgumentParser = subparsers.add_parser(
        "bench", help="measure Triptych against bare llama.cpp")
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
    bench.add_argument("--no-rlhf", action="store_true",
                       help="skip the RLHF figures (embedding 64 answers, fitting the reward model)")
    bench.add_argument("--serve", action="store_true",
                       help="also measure a room (triptych serve): tokens/s per student with "
                            "1, 4 and 8 asking at once, beside one local pane")
    bench.add_argument("--llama-bench", metavar="PATH",
                       help="native llama-bench binary for the ratio to llama.cpp "
                            "(default: llama-bench on PATH, if any)")
    add_sampler_options(bench, applies=", in the figures that sample")
    return bench


def bench_reward_fit(votes: int = 200, answers: int = 64, dimensions: int = 576,
                     repeats: int = 5) -> dict[str, Any]:
    """Seconds to train the reward model (rollouts.reward) on ``votes`` votes between
    ``answers`` answers with embeddings of ``dimensions`` (SmolLM2-135M's) plus the text
    features, and to cross-validate it; the median of ``repeats``. Measured here, where
    the command composes the core (bench and rollouts are independent layers)."""
    import random
    import statistics
    import time

    import numpy as np

    from desktop_app.bench.engine import embedding_texts
    from desktop_app.rollouts.preferences import Vote, Winner
    from desktop_app.rollouts.reward import (
        answer_features,
        cross_validated_agreement,
        fit_reward,
    )

    rng = random.Random(0)
    vectors = np.random.default_rng(0).normal(size=(answers, dimensions))
    features = answer_features(embedding_texts(answers), vectors.tolist())
    pairs = [tuple(rng.sample(range(answers), 2)) for _ in range(votes)]
    drawn = [Vote(a, b, rng.choice((Winner.A, Winner.B, Winner.TIE))) for a, b in pairs]
    fit_s, cv_s = [], []
    for _ in range(repeats):
        started = time.perf_counter()
        fit_reward(features, drawn)
        fit_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        cross_validated_agreement(features, drawn)
        cv_s.append(time.perf_counter() - started)
    return {"votes": votes, "answers": answers, "dimensions": int(features.shape[1]),
            "fit_s": round(statistics.median(fit_s), 4),
            "cross_validated_s": round(statistics.median(cv_s), 4)}


def run_bench(args: argparse.Namespace) -> int:
    """``triptych bench``; returns the exit status (misuse raises :class:`UsageError`)."""
    from desktop_app.bench import format_markdown, format_table, run_benchmarks
    from desktop_app.bench.engine import find_llama_bench
    from desktop_app.models.catalog import default_model_ids, load_catalog
    from desktop_app.models.sources import CatalogError

    if args.tokens < 2 or args.repeats < 1:
        raise UsageError("--tokens must be at least 2 and --repeats at least 1.")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1.")
    sampler = sampler_overrides(args)
    ids = model_ids(args.models)
    llama_bench = find_llama_bench(args.llama_bench)
    if args.llama_bench and llama_bench is None:
        raise UsageError(f"{args.llama_bench} is not an executable llama-bench.")
    catalog = load_catalog()
    ids = ids or default_model_ids(catalog)
    if not ids:
        return report("No model is ready to benchmark; install the starter models.",
                      EXIT_FAILED)
    entries = resolve_models(ids, catalog)
    try:
        figures = run_benchmarks(entries, args.tokens, args.repeats,
                                 window=not args.no_window, startup=not args.no_startup,
                                 contention=args.contention, llama_bench=llama_bench,
                                 rollouts=not args.no_rollouts, threads=args.threads,
                                 sampler=sampler, embeddings=not args.no_rlhf,
                                 serve=args.serve)
        if not args.no_rlhf:
            figures["reward_fit"] = bench_reward_fit()
    except (CatalogError, ValueError, RuntimeError) as exc:
        return report(exc, EXIT_FAILED)
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        print(format_markdown(figures) if args.markdown else format_table(figures))
    return EXIT_OK
