"""``triptych models list | pull | rm | import | verify | add-server`` (``pull`` also takes
``ORG/REPO:QUANT``; ``add-server`` adds models an OpenAI-compatible server serves).

:func:`add_models_parser` registers ``triptych models`` on the main parser;
:func:`add_models_commands` adds the actions but ``list`` to any ``models`` sub-parsers.
Each action sets ``models_action`` so :func:`run_models_command` can dispatch; plain
``triptych models`` lists. Errors are one line on stderr, ``triptych: …`` as in every
command (with ``--json`` also an ``error`` event on stdout), never a traceback: exit
status 2 for a mistake in the command (an unknown id, a Hub reference without --role, a
malformed --add or address), 1 for a failure (a download, a check, a server).
Run on its own for tests: ``python -m desktop_app.cli.models pull ID``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    TerminalLine,
    UsageError,
    one_line_parser_errors,
    report,
    resolve_model,
    warn,
)
from desktop_app.models import catalog as cat
from desktop_app.models import download, hub, room, servers, sources, user_catalog
from desktop_app.models.gguf import has_magic
from desktop_app.models.hub import parse_reference
from desktop_app.text.escape import visible_controls
from desktop_app.text.units import format_bytes


def add_models_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych models`` (``list`` and every action) on the main parser's
    subcommands."""
    models: argparse.ArgumentParser = subparsers.add_parser(
        "models", help="list, download, import and check models")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION")
    _add_list(actions)
    add_models_commands(actions)
    return models


def _add_list(models_subparsers: Any) -> None:
    listing = models_subparsers.add_parser("list", help="the catalog and what is ready")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(models_action="list")


def add_models_commands(models_subparsers: Any) -> None:
    """Add ``pull``, ``rm``, ``import``, ``verify`` and ``add-server`` to an argparse
    sub-parsers object."""
    pull = models_subparsers.add_parser(
        "pull", help="download a catalog model, or any GGUF repo on the Hub, and verify it",
        description="Download a model (resuming any interrupted download) and check its "
                    "SHA-256. ID is a catalog id, or ORG/REPO:QUANT (also hf.co/ORG/REPO:QUANT) "
                    "for any GGUF repo on the Hugging Face Hub: it is added to your catalog, "
                    "pinned to the repo's current commit, then downloaded. "
                    "Honours HF_ENDPOINT, HF_HOME, HF_TOKEN and HF_HUB_OFFLINE.",
    )
    pull.add_argument("model_id", metavar="ID",
                      help="catalog id (see 'triptych models list') or ORG/REPO:QUANT")
    pull.add_argument("--role", choices=cat.ROLES, default=None,
                      help="the pane a Hub repo's model goes in (needed for ORG/REPO:QUANT)")
    pull.add_argument("--name", default=None, help="display name for a model added from the Hub")
    pull.add_argument("--from", dest="room", metavar="URL", default=None,
                      help="download from a room (another laptop's 'triptych serve') instead "
                           "of the Hub: the address it shows")
    pull.add_argument("--key", default=None, help="the room's key")
    pull.add_argument("--key-env", default=None, metavar="VAR",
                      help="the environment variable that holds the room's key")
    pull.add_argument("--json", action="store_true",
                      help="print JSON lines: progress events, then a final result")
    pull.set_defaults(models_action="pull")

    rm = models_subparsers.add_parser("rm", help="delete a downloaded model's file")
    rm.add_argument("model_id", metavar="ID")
    rm.set_defaults(models_action="rm")

    imp = models_subparsers.add_parser("import", help="add a GGUF file on this computer to your catalog")
    imp.add_argument("path", metavar="PATH", help="the .gguf file (it is not copied)")
    imp.add_argument("--role", required=True, choices=cat.ROLES)
    imp.add_argument("--name", default=None, help="display name (default: the file name)")
    imp.set_defaults(models_action="import")

    verify = models_subparsers.add_parser("verify", help="check a model's file against its SHA-256")
    verify.add_argument("model_id", metavar="ID")
    verify.set_defaults(models_action="verify")

    server = models_subparsers.add_parser(
        "add-server", help="list the models an OpenAI-compatible server serves, and add some",
        description="Ask a server (vLLM, SGLang, llama-server, Ollama, LM Studio...) which "
                    "models it serves; with --add, put them in your catalog so they run in "
                    "panes like local models. The key is never written to the catalog: name "
                    "the environment variable that holds it with --key-env, or store it in "
                    "the OS keychain with --ask-key.")
    server.add_argument("url", metavar="URL", nargs="?", default=None,
                        help="the server's address, e.g. http://host:8000/v1 (a room's link "
                             "with #key=KEY too); none: look for a room on this network")
    server.add_argument("--add", action="append", default=[], metavar="MODEL=ROLE",
                        help="add this served model in this role (base, instruct or "
                             "reasoning); repeat for more")
    server.add_argument("--key-env", default=None, metavar="VAR",
                        help="the environment variable that holds the server's key")
    server.add_argument("--ask-key", action="store_true",
                        help="type the key (not echoed); it is stored in the OS keychain")
    server.add_argument("--key", default=None,
                        help="the key (a room's short key); it is stored in the OS keychain")
    server.add_argument("--json", action="store_true")
    server.set_defaults(models_action="add-server")


def _error(message: object, as_json: bool = False) -> int:
    """Report a failure (with ``--json``, also as an event); returns the exit status."""
    return report(message, EXIT_FAILED, json_event=as_json)


# -------------------------------------------------------------------------------- list


def _short_revision(revision: str | None) -> str:
    """A commit as git abbreviates it (the JSON has it whole); a branch name as is."""
    if revision is None:
        return "-"
    return revision[:12] if sources.COMMIT_HASH.fullmatch(revision) else revision


def _list(args: argparse.Namespace) -> int:
    """Print the catalog: role, size, and whether each model is here."""
    from desktop_app import paths
    from desktop_app.engine.llama import native_setup

    catalog = cat.load_catalog()
    cat.check_servers(catalog)  # models on servers: ask now, so their state is an answer
    rows = []
    for entry in catalog:
        state = cat.availability(entry)
        path = cat.local_path(entry) if state == cat.Availability.READY else None
        rows.append({**entry.to_dict(), "state": state, "path": str(path) if path else None})
    if getattr(args, "json", False):
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
            warn(problem)
    return EXIT_OK


# ------------------------------------------------------------------------------- pull


def _entry_to_pull(args: argparse.Namespace, as_json: bool,
                   token: str | None = None) -> cat.ModelEntry:
    """The catalog entry *args* names; an ``ORG/REPO:QUANT`` reference is added first."""
    catalog = cat.load_catalog()
    if args.model_id in catalog or parse_reference(args.model_id) is None:
        return resolve_model(args.model_id, catalog)
    role = getattr(args, "role", None)
    if role is None:
        raise UsageError(
            f"Pulling {args.model_id} from the Hub needs --role (base, instruct or reasoning).")
    entry = user_catalog.add_hub_reference(args.model_id, role, name=getattr(args, "name", None),
                                           token=token)
    source = entry.source
    assert isinstance(source, sources.HubSource)
    if as_json:
        print(json.dumps({"event": "added", "model": entry.id, "repo": source.repo,
                          "filename": source.filename, "revision": source.revision,
                          "parts": 1 + len(source.parts)}), flush=True)
    else:
        parts = f" in {1 + len(source.parts)} parts" if source.parts else ""
        print(f"Added {entry.id} ({entry.role}): {source.repo}/{source.filename}{parts} "
              f"at {source.revision[:12]}.", flush=True)
    return entry


@contextlib.contextmanager
def _hub_at(endpoint: str | None) -> Iterator[None]:
    """``HF_ENDPOINT`` pointed at a room for one pull (huggingface_hub reads it per call)."""
    if endpoint is None:
        yield
        return
    previous = os.environ.get("HF_ENDPOINT")
    os.environ["HF_ENDPOINT"] = endpoint
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("HF_ENDPOINT", None)
        else:
            os.environ["HF_ENDPOINT"] = previous


def _room_to_pull_from(args: argparse.Namespace) -> tuple[str, str | None] | None:
    """(the room's address, its key) for ``pull --from``; the key is checked first, so a
    wrong one is the room's sentence, not the Hub's. None without --from."""
    if getattr(args, "room", None) is None:
        if getattr(args, "key", None) or getattr(args, "key_env", None):
            raise UsageError("--key and --key-env go with --from (a room's address).")
        return None
    address, linked = room.split_link(args.room)
    try:
        endpoint = servers.normalize_endpoint(address)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    key = args.key or linked or servers.api_key(endpoint, args.key_env)
    servers.list_models(endpoint, key, key_env=args.key_env)  # ServerError: one sentence
    return endpoint, key


def _pull(args: argparse.Namespace) -> int:
    as_json = bool(getattr(args, "json", False))
    try:
        pulling_from = _room_to_pull_from(args)
    except servers.ServerError as exc:
        return _error(str(exc), as_json)
    endpoint, token = pulling_from or (None, None)
    with _hub_at(room.hub_root(endpoint) if endpoint else None):
        return _pull_entry(args, as_json, endpoint, token)


def _pull_entry(args: argparse.Namespace, as_json: bool, endpoint: str | None,
                token: str | None) -> int:
    try:
        entry = _entry_to_pull(args, as_json, token)
        source = entry.source
        if endpoint is not None and isinstance(source, sources.HubSource) \
                and cat.local_path(entry) is None:
            missing = room.file_missing(endpoint, source.repo, source.revision,
                                        source.filename, token)
            if missing:
                return _error(f"Cannot pull '{entry.id}': {missing}", as_json)
    except (sources.CatalogError, hub.DownloadError) as exc:
        return _error(str(exc), as_json)
    cancel = threading.Event()
    terminal = TerminalLine()

    def show(progress: download.DownloadProgress) -> None:
        if as_json:
            print(json.dumps(progress.to_dict()), flush=True)
        else:
            terminal.show(f"{progress.model_id}: {progress.describe()}")

    try:
        path = download.pull(entry, progress=show, cancel=cancel, token=token)
    except KeyboardInterrupt:
        terminal.done()
        kept = download.partial_bytes(entry)
        message = (f"The download of '{entry.id}' was interrupted; "
                   f"{format_bytes(kept)} kept, run the same command to resume.")
        if as_json:
            print(json.dumps({"event": "cancelled", "model": entry.id, "kept": kept}), flush=True)
        return report(message, EXIT_INTERRUPTED)
    except hub.DownloadError as exc:
        terminal.done()
        return _error(str(exc), as_json)
    terminal.done()
    state = cat.read_states().get(entry.id, {})
    if as_json:
        print(json.dumps({
            "event": "done", "model": entry.id, "path": str(path), "state": "ready",
            "sha256": state.get("sha256"), "verified": bool(state.get("verified")),
            "size": state.get("size"),
        }), flush=True)
    else:
        print(f"{entry.id} is ready: {path}")
    return EXIT_OK


def _rm(args: argparse.Namespace) -> int:
    try:
        entry = resolve_model(args.model_id)
        if isinstance(entry.source, sources.RemoteSource):
            if not user_catalog.remove_model(entry.id):
                return _error(f"'{entry.id}' is in the shipped catalog; it cannot be removed.")
            print(f"Removed {entry.id} from your catalog (the server is untouched).")
            return EXIT_OK
        removed = download.remove(entry)
    except (sources.CatalogError, hub.DownloadError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"Cannot remove '{args.model_id}': {exc.strerror or exc}.")
    if removed:
        print(f"Removed {args.model_id} ({len(removed)} file(s) deleted).")
    else:
        print(f"Removed {args.model_id} from your catalog (the file itself was left in place).")
    return EXIT_OK


def _import(args: argparse.Namespace) -> int:
    try:
        entry = user_catalog.import_model(args.path, args.role, args.name,
                                      sha256=_import_digest(args.path))
    except hub.DownloadError as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"Cannot import {args.path}: {exc.strerror or exc}.")
    print(f"Imported {entry.id} ({entry.role}) from {entry.source.describe()}.")
    return EXIT_OK


def _import_digest(path: str) -> str | None:
    """The SHA-256 of a GGUF file about to be imported (the command line may wait), so
    that ``models verify`` later tells a same-size replacement from the file imported.
    None when it is not a GGUF file: :func:`import_model` then says what is wrong."""
    file = Path(path).expanduser()
    if not file.is_file() or not has_magic(file):
        return None
    if sys.stderr.isatty():
        print(f"Computing the SHA-256 of {visible_controls(file.name)} "
              f"({format_bytes(file.stat().st_size)})…", file=sys.stderr)
    return download.sha256_file(file)


def _verify(args: argparse.Namespace) -> int:
    try:
        entry = resolve_model(args.model_id)
        ok = download.verify(entry)
    except (sources.CatalogError, hub.DownloadError) as exc:
        return _error(str(exc))
    except OSError as exc:
        return _error(f"Cannot read the file of '{args.model_id}': {exc.strerror or exc}.")
    state = cat.read_states().get(entry.id, {})
    if ok:
        how = "matches its SHA-256" if state.get("verified") else "is a GGUF file (no checksum is known)"
        print(f"{entry.id} is ready: {how}.")
        return EXIT_OK
    return _error(cat.missing_message(entry, "damaged"))


def _picks(values: list[str], served: list[str]) -> list[tuple[str, str]]:
    picks = []
    for value in values:
        model, sep, role = value.rpartition("=")
        if not sep or not model or role not in cat.ROLES:
            raise UsageError(
                f"--add {value!r}: write it as MODEL=ROLE, ROLE one of {', '.join(cat.ROLES)}.")
        if model not in served:
            raise hub.DownloadError(
                f"The server does not serve '{visible_controls(model)}'; it serves: "
                f"{visible_controls(', '.join(served)) or 'nothing'}.")
        picks.append((model, role))
    return picks


def _found_room() -> str:
    """The address of the one room that answers on this network (none: one sentence)."""
    try:
        rooms = room.discover()
    except room.RoomError as exc:
        raise hub.DownloadError(str(exc)) from None
    if not rooms:
        raise hub.DownloadError(
            f"No Triptych room answered on this network within {room.DISCOVER_S:.0f} s (the "
            f"network may block mDNS); type the address the teacher's screen shows.")
    if len(rooms) > 1:
        raise UsageError("Several rooms answer on this network: "
                         + "; ".join(r.describe() for r in rooms) + "; give one's address.")
    print(f"Found {rooms[0].describe()}.", file=sys.stderr, flush=True)
    return rooms[0].endpoint


def _add_server(args: argparse.Namespace) -> int:
    as_json = bool(args.json)
    try:
        address, linked = room.split_link(args.url or _found_room())
    except hub.DownloadError as exc:
        return _error(str(exc), as_json)
    try:
        endpoint = servers.normalize_endpoint(address)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    given = args.key or linked
    if args.ask_key and not given:
        import getpass

        given = getpass.getpass(f"Key for {servers.host_of(endpoint)} (not shown): ").strip()
    if given and not args.key_env:  # a key variable names where the key lives instead
        try:
            servers.store_key(endpoint, given)
        except ValueError as exc:
            return _error(str(exc), as_json)
    key = given or servers.api_key(endpoint, args.key_env)
    try:
        served = servers.list_models(endpoint, key, key_env=args.key_env)
        entries = user_catalog.add_remote_models(endpoint, _picks(args.add, served),
                                                 key_env=args.key_env)
    except (servers.ServerError, hub.DownloadError) as exc:
        return _error(str(exc), as_json)
    if as_json:
        print(json.dumps({"endpoint": endpoint, "served": served,
                          "added": [entry.id for entry in entries]}))
        return EXIT_OK
    print(f"{servers.host_of(endpoint)} serves: {visible_controls(', '.join(served)) or 'no models'}.")
    for entry in entries:
        print(f"Added {entry.id} ({entry.role}): {entry.source.describe()}.")
    if not args.add and served:
        print(f"Add one with: triptych models add-server {endpoint} --add {served[0]}=instruct")
    return EXIT_OK


_ACTIONS = {"list": _list, "pull": _pull, "rm": _rm, "import": _import, "verify": _verify,
            "add-server": _add_server}


def run_models_command(args: argparse.Namespace) -> int:
    """Run the action chosen on the command line (none: ``list``); return the exit status."""
    action = _ACTIONS[getattr(args, "models_action", None) or "list"]
    try:
        return action(args)
    except UsageError as exc:  # the one usage error, with --json also as an event
        return report(exc, EXIT_USAGE, json_event=bool(getattr(args, "json", False)))
    except KeyboardInterrupt:
        return report("interrupted.", EXIT_INTERRUPTED)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triptych models")
    actions = parser.add_subparsers(dest="models_command", required=True)
    _add_list(actions)
    add_models_commands(actions)
    one_line_parser_errors(parser, "models")
    return run_models_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
