"""The ``triptych`` command: the window by default, plus headless subcommands.

    triptych                                    open the window
    triptych --prompt TEXT --screenshot P.png   snapshot mode (run, capture, exit)
    triptych compare PROMPT [--models a,b,c]    stream every pane in the terminal
    triptych quiz PROMPT [--guesses b,i,r]      blind: guess which stage wrote each answer
    triptych models list|pull|rm|import|verify|add-server
    triptych verify FILE [--expect V | --tests T]
    triptych prompt --model ID QUESTION         the exact text a model would receive
    triptych rollouts PROMPT --models IDS -n N  pass@k against an answer key
    triptych rlhf PROMPT --models IDS -n N [--votes F.csv]  votes, reward model, best-of-N
    triptych practice list|pull
    triptych bench [--json]
    triptych pack OUT.zip --models IDS [--practice SETS] [--prompts FILE]
    triptych unpack FILE.zip                    a lesson pack: verify every hash, install
    triptych serve [--models IDS] [--host H] [--port P] [--key K]   serve the room

This module is the top-level parser, the dispatch and the window launch; each subcommand
is its own module in this package, and :mod:`desktop_app.cli.common` holds what they
share. Every user mistake ends in one sentence on stderr and a non-zero exit, never a
traceback: a :class:`~desktop_app.cli.common.UsageError` ends here, exit status 2.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from collections.abc import Callable, Sequence

from desktop_app import __version__
from desktop_app.cli.bench import add_bench_parser, run_bench
from desktop_app.cli.common import (
    EXIT_INTERRUPTED,
    UsageError,
    model_ids,
    one_line_parser_errors,
    report,
    resolve_models,
)
from desktop_app.cli.compare import add_compare_parser, run_compare
from desktop_app.cli.models import add_models_parser, run_models_command
from desktop_app.cli.pack import add_pack_parsers, run_pack, run_unpack
from desktop_app.cli.practice import add_practice_parser, run_practice
from desktop_app.cli.prompt import add_prompt_parser, run_prompt
from desktop_app.cli.quiz import add_quiz_parser, run_quiz
from desktop_app.cli.rlhf import add_rlhf_parser, run_rlhf_command
from desktop_app.cli.rollouts import add_rollouts_parser, run_rollouts_command
from desktop_app.cli.serve import add_serve_parser, run_serve
from desktop_app.cli.verify import add_verify_parser, run_verify

COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "compare": run_compare,
    "quiz": run_quiz,
    "models": run_models_command,
    "verify": run_verify,
    "prompt": run_prompt,
    "rollouts": run_rollouts_command,
    "rlhf": run_rlhf_command,
    "practice": run_practice,
    "bench": run_bench,
    "pack": run_pack,
    "unpack": run_unpack,
    "serve": run_serve,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="triptych",
        description="Base, instruct and reasoning language models side by side.",
    )
    parser.add_argument("--version", action="version", version=f"Triptych {__version__}")
    parser.add_argument("--prompt", help="run this prompt in every pane when the window opens")
    parser.add_argument("--models", help="comma-separated model ids, one per pane (1-4)")
    parser.add_argument("--max-tokens", type=int, help="token limit per pane")
    parser.add_argument("--screenshot", metavar="PATH.png",
                        help="snapshot mode: run --prompt, save a PNG of the window, exit")
    parser.add_argument("--presentation", action="store_true", help="large fonts for projectors")
    parser.add_argument("--size", metavar="WxH", help="window size, e.g. 1024x768 (snapshot mode)")
    parser.add_argument("--language", metavar="CODE",
                        help="the window's language for this run: en, de or fr "
                             "(default: as chosen in View > Language, else the system's)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    add_compare_parser(commands)
    add_quiz_parser(commands)
    add_models_parser(commands)
    add_verify_parser(commands)
    add_bench_parser(commands)
    add_prompt_parser(commands)
    add_rollouts_parser(commands)
    add_rlhf_parser(commands)
    add_practice_parser(commands)
    add_pack_parsers(commands)
    add_serve_parser(commands)
    one_line_parser_errors(parser, "")  # every command's, too: one usage error, exit 2
    return parser


def run_window(args: argparse.Namespace) -> int:
    """No subcommand: open the window (or, with ``--screenshot``, snapshot it). Every
    mistake in the options is a usage error before a window opens or a model runs."""
    from desktop_app.ui.app import check_screenshot_path, parse_size, run_app

    if args.screenshot is not None and not args.prompt:
        raise UsageError("--screenshot needs --prompt.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    ids = model_ids(args.models)
    if ids is not None:
        resolve_models(ids)
    from desktop_app.text.i18n import LANGUAGES

    if args.language is not None and args.language not in LANGUAGES:
        raise UsageError(f"--language must be one of {', '.join(LANGUAGES)}, "
                         f"not '{args.language}'.")
    try:
        size = parse_size(args.size) if args.size else None
        screenshot = (check_screenshot_path(args.screenshot) if args.screenshot is not None
                      else None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return int(run_app(models=ids, prompt=args.prompt, max_tokens=args.max_tokens,
                       screenshot=screenshot, presentation=args.presentation, size=size,
                       language=args.language))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``triptych`` console script."""
    multiprocessing.freeze_support()
    # No usage pings to the Hub: the app is used offline and in classrooms.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    try:
        args = build_parser().parse_args(argv)
        run = COMMANDS.get(args.command, run_window)
        return int(run(args))
    except UsageError as exc:
        return report(exc)
    except KeyboardInterrupt:
        return report("interrupted.", EXIT_INTERRUPTED)


if __name__ == "__main__":
    raise SystemExit(main())
