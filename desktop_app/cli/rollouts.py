"""``triptych rollouts``: N answers per model to one prompt, each checked against a key.

    triptych rollouts PROMPT --models IDS -n N (--expect VALUE | --tests FILE)
        [--max-tokens M] [--temperature T] [--top-k K] [--top-p P] [--min-p P]
        [--repeat-penalty R] [--seed S] [--thinking-budget B[,B...]] [--budget-message]
        [--json]
    triptych rollouts --set NAME --models IDS -n N [--save BASENAME] [--judge ID] [--json]

One PROMPT prints per model (and per thinking budget: thinking capped at B tokens, then
closed so the model answers): the ✓/✗ of every rollout, pass@1 … pass@N, the majority
vote and its verdict, thinking tokens of correct vs wrong rollouts, time and tokens/s.
``--set`` runs every verifiable problem of a practice set and prints accuracy with a 95 %
Wilson interval per model and problem (``--save`` writes it as JSON and CSV), and how
often a proxy's best-of-N pick (the longest answer; with ``--judge``, that model's
P("yes")) is wrong where the key's pick is right.

Misuse is one sentence on stderr and exit status 2; a model that fails gives status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    UsageError,
    add_sampler_options,
    note,
    one_line_parser_errors,
    report,
    resolve_model,
    resolve_models,
    sampler_overrides,
)
from desktop_app.rollouts.run import RolloutRun
from desktop_app.rollouts.summary import RunFigures
from desktop_app.text.escape import visible_controls


def add_rollouts_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych rollouts`` on the main parser's subcommands."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "rollouts", help="sample N answers per model and check each against the answer key",
        description="Sample N answers to one prompt per model (one several-sequences call, "
        "the prompt evaluated once), check each like 'triptych verify', and print pass@k, "
        "the majority vote and the time. With --set, a whole practice set.")
    parser.add_argument("prompt", nargs="?", help="the question ('-' reads standard input)")
    parser.add_argument("--models", required=True, help="comma-separated model ids")
    parser.add_argument("-n", type=int, default=8, metavar="N",
                        help="rollouts per model and prompt, 1 to 64 (default 8)")
    key = parser.add_mutually_exclusive_group()
    key.add_argument("--expect", metavar="VALUE", help="the expected final answer")
    key.add_argument("--tests", metavar="FILE", help="a Python file of assert statements")
    key.add_argument("--set", metavar="NAME",
                     help="a practice set (file name such as 'math', or its title)")
    parser.add_argument("--entry-point", metavar="NAME",
                        help="with --tests: the function a check(candidate) receives (as in "
                        "'triptych verify')")
    parser.add_argument("--max-tokens", type=int, metavar="M", help="token limit per rollout")
    add_sampler_options(parser, applies="; rollouts need a temperature above 0 to differ")
    parser.add_argument("--seed", type=int, metavar="S",
                        help="makes the N seeds (distinct) and so the rollouts reproducible")
    parser.add_argument("--thinking-budget", metavar="B[,B...]",
                        help="cap thinking at B tokens, then make the model answer; several "
                             "budgets (e.g. 0,64,256,unlimited) sweep them")
    parser.add_argument("--budget-message", action="store_true",
                        help="close a spent thinking budget with the model's own stop-thinking "
                             "sentence (as Qwen3's report and llama.cpp's "
                             "--reasoning-budget-message do), not its closing tag alone")
    parser.add_argument("--judge", metavar="ID",
                        help="with --set: a chat model that scores each answer by P(\"yes\")")
    parser.add_argument("--save", metavar="BASENAME",
                        help="with --set: write BASENAME.json and BASENAME.csv")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    one_line_parser_errors(parser, "rollouts")
    return parser


# -------------------------------------------------------------------------- arguments


def _check_args(args: argparse.Namespace) -> None:
    from desktop_app.rollouts.run import MAX_ROLLOUTS

    if not 1 <= args.n <= MAX_ROLLOUTS:
        raise UsageError(f"-n must be between 1 and {MAX_ROLLOUTS}.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    args.sampler = sampler_overrides(args)
    if args.expect is not None and not args.expect.strip():
        raise UsageError("--expect needs a value: an empty answer key checks nothing.")
    if args.thinking_budget is not None:
        from desktop_app.rollouts.run import parse_budgets

        try:
            args.budgets = parse_budgets(args.thinking_budget)
        except ValueError as exc:
            raise UsageError(f"--thinking-budget: {exc}.") from None
    else:
        args.budgets = [None]
    if args.set is None:
        if args.prompt is None:
            raise UsageError("Give a PROMPT, or --set NAME for a practice set.")
        if args.entry_point is not None and args.tests is None:
            raise UsageError("--entry-point goes with --tests.")
        if args.expect is None and args.tests is None:
            raise UsageError("Rollouts need an answer key: --expect VALUE or --tests FILE.")
        if args.save or args.judge:
            raise UsageError("--save and --judge go with --set.")
    elif args.prompt is not None:
        raise UsageError("Give either a PROMPT or --set NAME, not both.")
    elif len(args.budgets) > 1:
        raise UsageError("A practice set runs with one --thinking-budget at a time.")


def _key(args: argparse.Namespace) -> Any:
    from desktop_app.rollouts.run import AnswerKey

    if args.tests is None:
        return AnswerKey(expect=args.expect)
    try:
        tests = Path(args.tests).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise UsageError(f"Cannot read --tests {args.tests}: {reason}.") from None
    return AnswerKey(tests=tests, secret_paths=(str(Path(args.tests).resolve()),),
                     entry_point=args.entry_point)


def find_set(name: str) -> Any:
    """A practice set by its file name ('math') or its title (case-insensitive)."""
    from desktop_app.verify import load_practice_sets

    wanted = name.strip().casefold()
    sets = load_practice_sets()
    for practice_set in sets:
        if wanted in (Path(practice_set.path).stem.casefold(), practice_set.name.casefold()):
            return practice_set
    names = ", ".join(Path(s.path).stem for s in sets)
    raise UsageError(f"No practice set called {name!r}; there are: {names}.")


def _budget_message(entry: Any, args: argparse.Namespace) -> str:
    """The model's own stop-thinking sentence when ``--budget-message`` asks for it."""
    from desktop_app.rollouts.run import budget_message

    if not args.budget_message or args.budgets == [None]:
        return ""
    message = budget_message(entry)
    if message is None:
        note(f"{entry.id} has no stop-thinking sentence in the catalog (budget_message): "
             "its thinking budget closes with the closing tag alone.")
    return message or ""


def _request(entry: Any, prompt: str, args: argparse.Namespace) -> Any:
    from desktop_app.engine.protocol import GenerationRequest, Sampling

    return GenerationRequest(prompt=prompt, sampling=Sampling.for_entry(
        entry, max_tokens=args.max_tokens, **args.sampler))


# ------------------------------------------------------------------------------ output


def _chips(run: Any) -> str:
    from desktop_app.verify import VERDICT_LABELS

    return "".join(VERDICT_LABELS[r.verdict.verdict][0] if r.verdict else "·"
                   for r in run.rollouts)


def _summary_line(run: RolloutRun) -> str:
    """The run's figures on one line, in the one wording (rollouts.summary)."""
    return visible_controls(RunFigures.of(run.to_dict()).line())


def _print_sweep(runs: list[Any]) -> None:
    """Accuracy against thinking tokens per budget: "more thinking, higher accuracy"?"""
    print("MODEL  BUDGET  MEAN THINKING TOKENS  ACCURACY")
    for run in runs:
        tokens = [r.thinking_tokens for r in run.rollouts]
        mean = sum(tokens) / len(tokens) if tokens else 0.0
        budget = "unlimited" if run.thinking_budget is None else str(run.thinking_budget)
        accuracy = run.correct / run.n if run.n else 0.0
        print(f"{run.model}  {budget}  {mean:.0f}  {accuracy:.2f} ({run.correct}/{run.n})")


# --------------------------------------------------------------------------------- run


def run_rollouts_command(args: argparse.Namespace) -> int:
    """``triptych rollouts``; returns the exit status."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    _check_args(args)
    entries = resolve_models(args.models)
    if args.set is not None:
        practice_set = find_set(args.set)
        judge = resolve_model(args.judge) if args.judge else None
        return _run_set(args, practice_set, entries, judge)
    prompt = args.prompt if args.prompt != "-" else sys.stdin.read()
    if not prompt.strip():
        raise UsageError("The prompt is empty.")
    return _run_prompt(args, prompt, _key(args), entries)


def _run_prompt(args: argparse.Namespace, prompt: str, key: Any, entries: list[Any]) -> int:
    from dataclasses import replace

    from desktop_app.engine.worker import open_worker
    from desktop_app.rollouts.run import (
        BUDGET_DOES_NOT_APPLY,
        budget_applies,
        rollout_plan,
        rollout_seeds,
        run_rollouts,
    )

    seeds = rollout_seeds(args.seed, args.n)
    runs = []
    for entry in entries:
        budgets = args.budgets
        if budgets != [None] and not budget_applies(entry):
            note(f"{entry.id} {BUDGET_DOES_NOT_APPLY}.")
            budgets = [None]
        worker = open_worker(entry)
        try:
            for budget in budgets:
                label = entry.id if budget is None or budgets == [None] else \
                    f"{entry.id} · budget {budget}"
                if not args.json:
                    print(f"[{label}] {args.n} rollouts…", file=sys.stderr)
                request = replace(_request(entry, prompt, args), thinking_budget=budget,
                                  budget_message=_budget_message(entry, args))
                plan = rollout_plan(entry, request, len(seeds))
                if plan.message:
                    note(plan.message)
                run = run_rollouts(worker, request, seeds, key, at_once=plan.at_once)
                runs.append(run)
                if run.error:
                    report(f"{entry.id}: {run.error}", EXIT_FAILED)
                    break
                if not args.json:
                    print(f"[{label}] {_chips(run)}")
                    print(f"[{label}] {_summary_line(run)}")
        except KeyboardInterrupt:
            worker.stop()
            return report("stopped.", EXIT_INTERRUPTED)
        finally:
            worker.close()
    if not args.json and args.budgets != [None]:
        _print_sweep(runs)
    if args.json:
        print(json.dumps({
            "prompt": prompt,
            "key": {"expect": key.expect, "tests": args.tests},
            "seed": args.seed,
            "n": args.n,
            "thinking_budgets": args.budgets,
            "models": [run.to_dict() for run in runs],
        }, ensure_ascii=False, indent=2))
    return EXIT_FAILED if any(run.error for run in runs) else EXIT_OK


def _run_set(args: argparse.Namespace, practice_set: Any, entries: list[Any],
             judge_entry: Any) -> int:
    """``triptych rollouts --set NAME``; returns the exit status."""
    from dataclasses import replace

    from desktop_app.engine.worker import open_worker
    from desktop_app.rollouts.goodhart import NO_KEY, Proxy
    from desktop_app.rollouts.run import budget_applies, rollout_seeds
    from desktop_app.rollouts.sets import SetRow, format_table, run_set

    seeds = rollout_seeds(args.seed, args.n)
    messages = {entry.id: _budget_message(entry, args) for entry in entries}
    workers = [open_worker(entry) for entry in entries]
    judge = open_worker(judge_entry) if judge_entry is not None else None

    def show(row: SetRow) -> None:
        if not args.json:
            print(f"[{row.run.model}] {row.problem.id}: {row.run.correct}/{row.run.n} correct",
                  file=sys.stderr)

    try:
        outcome = run_set(practice_set, workers,
                          lambda entry, problem: replace(
                              _request(entry, problem.prompt, args),
                              thinking_budget=args.budgets[0] if budget_applies(entry) else None,
                              budget_message=messages.get(entry.id, "")),
                          seeds,
                          judge=judge, on_row=show, seed=args.seed)
    except KeyboardInterrupt:
        return report("stopped.", EXIT_INTERRUPTED)
    finally:
        for worker in [*workers, *([judge] if judge is not None else [])]:
            worker.close()
    if args.save:
        try:
            json_path, csv_path = outcome.save(args.save)
        except OSError as exc:
            return report(f"cannot save {args.save}: {exc.strerror or exc}.", EXIT_FAILED)
        note(f"saved {json_path} and {csv_path}")
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2))
    else:
        print(f"{practice_set.name}: {args.n} rollouts per model and problem")
        for line in format_table(outcome.rows):
            print(line)
        for proxy in (Proxy.LONGEST, Proxy.JUDGE) if judge is not None else (Proxy.LONGEST,):
            for model, figure in outcome.gamed(proxy).items():
                print(f"Goodhart [{model}] {figure.describe()}")
        for problem_id in outcome.skipped:
            print(f"{problem_id}: {NO_KEY}")
    return EXIT_FAILED if any(row.run.error for row in outcome.rows) else EXIT_OK
