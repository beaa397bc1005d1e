"""``triptych pack`` and ``triptych unpack``: a lesson on a USB stick.

    triptych pack OUT.zip --models IDS [--practice SETS] [--prompts FILE] [--title TEXT]
    triptych unpack FILE.zip [--json]

``pack`` writes the models' GGUF files, their catalog entries (hashes, licences, where they
came from), practice sets and a lesson's prepared prompts into one zip; ``unpack`` checks
every hash and installs it all, or nothing (:mod:`desktop_app.models.pack`). A mistake in
the command (an unknown model or set, a prompts file that does not read, no such pack) is
a usage error, exit status 2; a pack that is damaged, incomplete or refused, or a model
that is not here to pack, is a failure, exit status 1. Each is one sentence.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    TerminalLine,
    UsageError,
    model_ids,
    note,
    report,
    resolve_models,
)
from desktop_app.models import pack
from desktop_app.models.catalog import Availability, ModelEntry, state_of
from desktop_app.models.hub import DownloadError
from desktop_app.models.sources import RemoteSource
from desktop_app.models.user_catalog import slug
from desktop_app.text.units import format_bytes
from desktop_app.verify.practice import (
    PracticeError,
    find_set,
    load_practice_sets,
    prepared_set_toml,
    problem_count,
    read_prompts,
    set_files,
)


def add_pack_parsers(subparsers: Any) -> None:
    """Register ``triptych pack`` and ``triptych unpack`` on the main parser's subcommands."""
    packing = subparsers.add_parser(
        "pack", help="write a lesson pack: models, practice sets and prompts in one zip",
        description="Write one zip a student's laptop installs with 'triptych unpack' (or "
                    "Open lesson pack… in the model manager), with no network: the models' "
                    "GGUF files with their catalog entries, SHA-256 and licences, practice "
                    "sets, and prepared prompts with their settings.")
    packing.add_argument("out", metavar="OUT.zip", help="the pack to write")
    packing.add_argument("--models", required=True, metavar="IDS",
                         help="comma-separated ids of models that are ready here")
    packing.add_argument("--practice", metavar="SETS",
                         help="comma-separated practice sets (see 'triptych practice list')")
    packing.add_argument("--prompts", metavar="FILE",
                         help="prepared prompts, TOML ([[prompts]] tables) or JSON (a list), "
                              "each {prompt, settings, answer}: the lesson's own practice set")
    packing.add_argument("--title", help="the lesson's name (default: OUT's file name)")
    unpacking = subparsers.add_parser(
        "unpack", help="check and install a lesson pack",
        description="Check every file of a lesson pack against its SHA-256 and install its "
                    "models, practice sets and prepared prompts; a damaged or incomplete "
                    "pack is refused and nothing is installed.")
    unpacking.add_argument("pack", metavar="FILE.zip", help="the lesson pack")
    unpacking.add_argument("--json", action="store_true", help="print the result as JSON")


def _packable(entries: list[ModelEntry]) -> None:
    seen: set[str] = set()
    for entry in entries:
        if entry.id in seen:
            raise UsageError(f"--models names '{entry.id}' twice.")
        seen.add(entry.id)
        if isinstance(entry.source, RemoteSource):
            raise UsageError(f"'{entry.id}' runs on a server; a lesson pack carries model "
                             "files, so it cannot take it.")


def _count(number: int, what: str) -> str:
    return f"{number} {what}{'s' if number != 1 else ''}"


def _practice(args: argparse.Namespace,
              title: str) -> tuple[list[pack.PracticeFiles], str | None, int]:
    """The practice sets to carry, the prepared prompts (a set named after the lesson)
    first; the prompts' set key and how many there are."""
    items: list[pack.PracticeFiles] = []
    prompts_key, prompts = None, 0
    try:
        if args.prompts is not None:
            prompts_file = Path(args.prompts).expanduser()
            if not prompts_file.is_file():
                raise UsageError(f"There is no prompts file {prompts_file}.")
            prompts_key = slug(title)[:48]
            raw = read_prompts(prompts_file)
            text, prompts = prepared_set_toml(title, raw), len(raw)
            items.append(pack.PracticeFiles(prompts_key, title, ((f"{prompts_key}.toml", text),)))
        wanted = model_ids(args.practice, "--practice") or []
        sets = load_practice_sets() if wanted else []
        for name in wanted:
            practice_set = find_set(name, sets)
            files = tuple(set_files(practice_set))
            clash = next((f.name for f in files for item in items for other in item.files
                          if f.name == (other.name if isinstance(other, Path) else other[0])),
                         None)
            if clash is not None:
                raise UsageError(f"Two practice sets of the pack would both be {clash}; "
                                 "give the lesson another --title or leave one set out.")
            items.append(pack.PracticeFiles(practice_set.key, practice_set.name, files))
    except PracticeError as exc:
        raise UsageError(str(exc)) from None
    return items, prompts_key, prompts


def run_pack(args: argparse.Namespace) -> int:
    out = Path(args.out).expanduser()
    if out.suffix.lower() != ".zip":
        raise UsageError(f"A lesson pack is a .zip file; name it {out.name}.zip or similar.")
    if out.is_dir():
        raise UsageError(f"{out} is a folder; give the pack's file name.")
    if not out.parent.is_dir():
        raise UsageError(f"The folder {out.parent} does not exist.")
    title = (args.title if args.title is not None else out.stem).strip()
    if not title:
        raise UsageError("--title must not be empty.")
    entries = resolve_models(args.models)
    _packable(entries)
    practice, prompts_key, prompts = _practice(args, title)
    for entry in entries:
        state = state_of(entry)
        if state != Availability.READY:
            return report(f"'{entry.id}' is {state.label} here; only a model that is ready can "
                          f"be packed (run 'triptych models pull {entry.id}').", EXIT_FAILED)
    terminal = TerminalLine()
    try:
        manifest = pack.write_pack(out, entries, practice, title=title, prompts=prompts_key,
                                   progress=lambda p: terminal.show(p.describe()))
    except KeyboardInterrupt:
        terminal.done()
        return report(f"interrupted; {out.name} was not written.", EXIT_INTERRUPTED)
    except DownloadError as exc:
        terminal.done()
        return report(exc, EXIT_FAILED)
    terminal.done()
    size = sum(m.size for m in manifest.models)
    sets = len(manifest.practice) - (prompts > 0)
    print(f"Wrote {out}: '{title}', {_count(len(manifest.models), 'model')} "
          f"({format_bytes(size)}), {_count(sets, 'practice set')}, "
          f"{_count(prompts, 'prepared prompt')}.")
    note("licences travel with the models: "
         + "; ".join(f"{m.id}: {m.licence}" for m in manifest.models) + ".")
    return EXIT_OK


def run_unpack(args: argparse.Namespace) -> int:
    path = Path(args.pack).expanduser()
    if not path.exists():
        raise UsageError(f"There is no file {path}.")
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a lesson pack.")
    terminal = TerminalLine()
    try:
        result = pack.unpack(path, check_practice=problem_count,
                             progress=lambda p: terminal.show(p.describe()))
    except KeyboardInterrupt:
        terminal.done()
        return report("interrupted; nothing was installed.", EXIT_INTERRUPTED)
    except DownloadError as exc:
        terminal.done()
        return report(exc, EXIT_FAILED, json_event=args.json)
    terminal.done()
    if args.json:
        print(json.dumps({
            "event": "done", "title": result.title, "models": result.models,
            "renamed": result.renamed, "already": result.already,
            "practice": result.practice, "prompts": result.prompts, "bytes": result.bytes,
            "practice_folder": str(result.folder) if result.folder else None,
            "message": result.describe()}), flush=True)
    else:
        print(result.describe())
    return EXIT_OK
