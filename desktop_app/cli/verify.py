"""``triptych verify FILE [--expect VALUE | --tests TESTFILE] [--finish stop|length] [--json]``.

Reads a reply (Markdown; thinking allowed), checks it and prints a verdict. ``--finish``
says how the reply ended, as the engine's finish reason would (default ``stop``: the
model ended it; ``length``: the token limit cut it off, so an unclosed last code block is
not run and only a final answer marked before the cut counts). The exit
status is 0 for every verdict, including fail, error and timeout; it is non-zero only when
the command itself is misused (missing file, both --expect and --tests, …). Never a
traceback: misuse is one sentence on stderr, any verdict is printed whole. Every text the
model's code produced arrives escaped (``Verdict.escaped``). No Qt.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from desktop_app.cli.common import EXIT_USAGE, UsageError, report

if TYPE_CHECKING:  # the verify stack is imported only when the command runs
    from desktop_app.verify.practice import Problem
    from desktop_app.verify.verdict import Verdict

PREFIX = "triptych verify: error: "
FINISH_CHOICES = ("stop", "length")  # FinishReason values a saved reply can have ended with


def add_verify_parser(
        subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> argparse.ArgumentParser:
    """Add the ``verify`` subcommand to an argparse sub-parsers object."""
    parser = subparsers.add_parser(
        "verify",
        help="check a saved reply: a math answer or code against tests",
        description="Check a model's reply (Markdown, thinking allowed). With --expect, "
        "compare its final answer; with --tests, run its last Python block against a file "
        "of assert statements in the sandbox; with neither, run its code and show the "
        "output. Exit status 0 for any verdict; 2 when the command is misused.",
    )
    _configure(parser)
    return parser


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the reply to check ('-' reads stdin)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--expect", metavar="VALUE", help="the expected final answer (e.g. 42, 3/4)")
    group.add_argument("--tests", metavar="TESTFILE",
                       help="a Python file of assert statements calling the reply's code")
    group.add_argument("--problem", metavar="ID", help="a practice problem id (uses its key)")
    parser.add_argument("--entry-point", metavar="NAME",
                        help="the function a HumanEval-style check(candidate) receives "
                        "(without it: the tests' own check(name) call, else the reply's only "
                        "function that can be meant; anything ambiguous is an error verdict)")
    parser.add_argument("--finish", choices=FINISH_CHOICES, default="stop",
                        help="how the reply ended: 'stop' (the model ended it; default) or "
                        "'length' (the token limit cut it off: an unclosed last code block is "
                        "not run, and only a final answer marked before the cut counts)")
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="wall-clock limit for running the code (default 5)")
    parser.add_argument("--json", action="store_true", help="print the verdict as JSON")


def _read(path: str, what: str) -> str:
    if path == "-":
        return sys.stdin.read()
    try:
        return Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _load(args: argparse.Namespace) -> tuple[str, str | None, Problem | None]:
    from desktop_app.verify import find_problem

    if args.timeout <= 0 or args.timeout > 600:
        raise UsageError("--timeout must be between 0 and 600 seconds")
    if args.expect is not None and not args.expect.strip():
        raise UsageError("--expect needs a value: an empty answer key checks nothing.")
    reply = _read(args.file, "reply file")
    tests = _read(args.tests, "tests file") if args.tests else None
    problem = None
    if args.problem:
        try:
            problem = find_problem(args.problem)
        except KeyError:
            raise UsageError(f"no practice problem with id {args.problem!r}") from None
    return reply, tests, problem


def _print_human(verdict: Verdict) -> None:
    from desktop_app.verify.verdict import got_in_headline

    if got_in_headline(verdict.verdict, verdict.got):  # "• Answer found: 4 · no key to …"
        print(verdict.headline)
        print(f"  {verdict.reason}")
    else:
        print(f"{verdict.symbol} {verdict.verdict.upper()}: {verdict.reason}")
    if verdict.low_confidence:
        print("  (low confidence)")
    if verdict.expected is not None:
        print(f"  expected: {verdict.expected}")
    if verdict.got is not None:
        print(f"  got:      {verdict.got}")
    for line in verdict.details:
        print(f"  {line}")
    if verdict.duration_s:
        print(f"  run time: {verdict.duration_s:.2f} s")
    for name, text in (("stdout", verdict.stdout), ("stderr", verdict.stderr)):
        if text.strip():
            print(f"  --- {name} ---")
            for line in text.rstrip().splitlines():
                print(f"  {line}")
    print(f"  isolation: {verdict.isolation}")


def run_verify(args: argparse.Namespace) -> int:
    """Run ``triptych verify`` for parsed *args*; returns the exit status."""
    from desktop_app.verify import verify_reply

    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    try:
        reply, tests, problem = _load(args)
    except UsageError as exc:
        return report(exc, EXIT_USAGE, prefix=PREFIX)
    except Exception as exc:  # noqa: BLE001 - e.g. a malformed practice file: one sentence
        return report(str(exc)[:300], EXIT_USAGE, prefix=PREFIX)
    secrets = [args.tests] if args.tests and args.tests != "-" else []
    verdict = verify_reply(reply, problem, expect=args.expect, tests=tests,
                           timeout_s=args.timeout, secret_paths=secrets,
                           entry_point=args.entry_point, finish=args.finish)
    if args.json:
        print(json.dumps(verdict.to_dict(), indent=2, ensure_ascii=False))
    else:
        _print_human(verdict)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="triptych verify")
    _configure(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse reports misuse itself
        return int(exc.code or 0)
    return run_verify(args)


if __name__ == "__main__":
    raise SystemExit(main())
