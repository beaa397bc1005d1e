"""What every ``triptych`` command shares: its exit codes, the one usage error and the one
way a mistake is reported, and the one way a model id on the command line becomes a
catalog entry.

A command raises :class:`UsageError` for a mistake in how it was called;
:func:`desktop_app.cli.main.main` reports it with :func:`report` (one sentence on stderr,
``triptych: …``, never a traceback) and exits with :data:`EXIT_USAGE`, whatever the
command. A command with ``--json`` that catches it (``triptych models pull``) reports it
with :func:`report` too, adding the JSON ``error`` event. Argparse's own complaints take
the same path (:func:`one_line_parser_errors`). Information is a :func:`note`. The
sampler's options (``--temperature --top-k --top-p --min-p --repeat-penalty``) are added
and checked here, once for every command that samples.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import NoReturn

from desktop_app.models.catalog import Catalog, ModelEntry, load_catalog, sampling_problem
from desktop_app.models.sources import CatalogError
from desktop_app.text.escape import visible_controls

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and something failed: a pane, a download, a model
EXIT_USAGE = 2  # the command was called wrongly; one sentence says how
EXIT_INTERRUPTED = 130  # Ctrl+C, as a shell reports SIGINT

PREFIX = "triptych: "  # an error or a warning; information is a note
NOTE_PREFIX = "note: "


class UsageError(Exception):
    """A mistake in how a command was called; its message is one sentence."""


def report(message: object, code: int = EXIT_USAGE, *, prefix: str = PREFIX,
           json_event: bool = False) -> int:
    """Say *message* in one line on stderr and return *code* (the exit status).

    Control and bidi characters are shown as escapes: messages quote ids, paths and
    servers' words, which must not drive the terminal. With *json_event* (a command run
    with ``--json``) the message also goes to stdout as ``{"event": "error", "message": …}``.
    """
    text = str(message)
    if json_event:
        print(json.dumps({"event": "error", "message": text}), flush=True)
    print(f"{prefix}{visible_controls(text)}", file=sys.stderr, flush=True)
    return code


def warn(message: object) -> None:
    """A warning that does not stop the command (a catalog problem), one line on stderr."""
    report(message, EXIT_OK, prefix=f"{PREFIX}warning: ")


def note(message: object) -> None:
    """Information, one line on stderr (a file saved, a pane left out, how a prompt was
    adapted): ``note: …``, never the ``triptych: …`` of an error."""
    report(message, EXIT_OK, prefix=NOTE_PREFIX)


class TerminalLine:
    """Progress as one rewritten status line on a terminal; nothing when stderr is not a
    terminal (a log, a test)."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()
        self.width = 0

    def show(self, text: str) -> None:
        if not self.tty:
            return
        text = visible_controls(text)
        sys.stderr.write("\r" + text.ljust(self.width))
        sys.stderr.flush()
        self.width = len(text)

    def done(self) -> None:
        if self.tty and self.width:
            sys.stderr.write("\r" + " " * self.width + "\r")
            sys.stderr.flush()


def one_line_parser_errors(parser: argparse.ArgumentParser, command: str) -> None:
    """Report *parser*'s complaints, and those of its sub-commands' parsers, as a usage
    error, one line pointing at ``--help`` (argparse's own report prints the whole usage
    text first); it exits as argparse does, with :class:`SystemExit` and
    :data:`EXIT_USAGE`. ``command``: ``""`` for ``triptych`` itself, else ``"models"``…"""
    where = " ".join(("triptych", command)).strip()

    def error(message: str) -> NoReturn:
        raise SystemExit(report(UsageError(f"{message} (see '{where} --help').")))

    parser.error = error  # type: ignore[method-assign]
    for action in parser._actions:  # argparse keeps its sub-commands here, and only here
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                one_line_parser_errors(sub, f"{command} {name}".strip())


# --------------------------------------------------------------------------- model ids


def model_ids(text: str | None, option: str = "--models") -> list[str] | None:
    """The ids in a comma-separated option (``a, b``), or None when it was not given."""
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise UsageError(f"{option} needs at least one model id.")
    return ids


def resolve_model(model_id: str, catalog: Catalog | None = None) -> ModelEntry:
    """The catalog entry with *model_id*, or a :class:`UsageError` whose one sentence names
    the known models (or the catalog problem that dropped this one)."""
    catalog = load_catalog() if catalog is None else catalog
    try:
        return catalog.get(model_id)
    except CatalogError as exc:
        raise UsageError(str(exc)) from None


def resolve_models(ids: str | Sequence[str], catalog: Catalog | None = None, *,
                   option: str = "--models") -> list[ModelEntry]:
    """The catalog entries for *ids*, a comma-separated option's text or a list of ids,
    in order; a :class:`UsageError` for none at all or for the first unknown id."""
    wanted = model_ids(ids, option) if isinstance(ids, str) else list(ids)
    if not wanted:
        raise UsageError(f"{option} needs at least one model id.")
    catalog = load_catalog() if catalog is None else catalog
    return [resolve_model(model_id, catalog) for model_id in wanted]


# ------------------------------------------------------------------------ sampler options

SAMPLER_OPTIONS: dict[str, tuple[type, str, str]] = {
    "temperature": (float, "T", "0 always takes the likeliest token, after the repetition "
                                "penalty"),
    "top_k": (int, "K", "keep the K likeliest tokens; 0: off"),
    "top_p": (float, "P", "keep the likeliest tokens until their probability reaches P; 1: off"),
    "min_p": (float, "P", "drop tokens less likely than P times the likeliest one; 0: off"),
    "repeat_penalty": (float, "R", "lower the logits of the last 64 generated tokens; 1: off"),
}


def add_sampler_options(parser: argparse.ArgumentParser, *, applies: str = "") -> None:
    """``--temperature --top-k --top-p --min-p --repeat-penalty``: the names of the pane's
    settings and the catalog's ``[model.sampling]``; unset, each model's own default."""
    for name, (kind, metavar, what) in SAMPLER_OPTIONS.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, metavar=metavar,
                            help=f"{what} (default: the model's{applies})")


def sampler_overrides(args: argparse.Namespace) -> dict[str, float | int]:
    """The sampler options given, by setting name; one out of range (a negative value,
    NaN, a top-p above 1) is a :class:`UsageError` naming the option and its range."""
    given: dict[str, float | int] = {}
    for name in SAMPLER_OPTIONS:
        value = getattr(args, name, None)
        if value is None:
            continue
        problem = sampling_problem(name, value)
        if problem is not None:
            raise UsageError(f"--{name.replace('_', '-')} {problem}.")
        given[name] = value
    return given
