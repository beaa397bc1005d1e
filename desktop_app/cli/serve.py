"""``triptych serve``: this laptop serves the room.

    triptych serve [--models IDS] [--host H] [--port P] [--key K] [--threads N]
                   [--no-announce] [--no-qr] [--json]

Serves the ready models on this computer through llama-cpp-python's own server, and
hands out the ready Hub models' files, until Ctrl+C. It stays on this computer
(127.0.0.1) unless ``--host`` says otherwise (``--host 0.0.0.0``: every network), and
beyond it always asks for a key (a short new one unless ``--key`` gives one). It prints
the address students type and the key, and then each question as it arrives. The room
itself is :mod:`desktop_app.engine.room`.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from types import FrameType
from typing import Any

from desktop_app.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    UsageError,
    note,
    report,
    resolve_models,
)
from desktop_app.engine.room.activity import Ask
from desktop_app.engine.room.supervisor import DEFAULT_PORT, Room, RoomSettings, RoomStatus
from desktop_app.models import catalog as cat
from desktop_app.models.room import RoomError, check_key, is_loopback, link, qr_terminal
from desktop_app.models.sources import RemoteSource
from desktop_app.text.escape import visible_controls
from desktop_app.text.units import format_bytes


def add_serve_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``triptych serve`` on the main parser's subcommands."""
    serve: argparse.ArgumentParser = subparsers.add_parser(
        "serve", help="serve this computer's models to the room (other laptops' panes)",
        description="Serve the ready models over an OpenAI-compatible API (llama-cpp-python's "
                    "own server, one question at a time, fairly), and hand out the ready Hub "
                    "models' files to 'triptych models pull --from'. It stays on this computer "
                    "unless --host says otherwise; beyond it, it always needs a key.")
    serve.add_argument("--models", help="comma-separated model ids (default: every ready "
                                        "model on this computer)")
    serve.add_argument("--host", default="127.0.0.1",
                       help="address to listen on: 127.0.0.1 (this computer, the default), "
                            "0.0.0.0 (every network), or one of this computer's addresses")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (0: any free one)")
    serve.add_argument("--key", help="the key students type (default: a new short one when "
                                     "serving beyond this computer)")
    serve.add_argument("--threads", type=int, metavar="N",
                       help="threads for the model server (default: the cores no other "
                            "program keeps busy when it starts)")
    serve.add_argument("--no-announce", action="store_true",
                       help="do not announce the room on the local network (mDNS)")
    serve.add_argument("--no-qr", action="store_true", help="do not draw the QR code")
    serve.add_argument("--json", action="store_true",
                       help="print JSON lines: 'serving', each 'ask', 'stopped'")
    return serve


def _models(ids: str | None) -> tuple[cat.ModelEntry, ...]:
    """The models to serve: those named (each must be local), else every ready local one."""
    catalog = cat.load_catalog()
    if ids is not None:
        entries = resolve_models(ids, catalog)
        for entry in entries:
            if isinstance(entry.source, RemoteSource):
                raise UsageError(f"'{entry.id}' is served by {entry.source.endpoint} already; "
                                 f"a room serves the models on this computer.")
        return tuple(entries)
    return tuple(e for e in catalog if not isinstance(e.source, RemoteSource) and cat.is_ready(e))


def _print_ask(ask: Ask, as_json: bool) -> None:
    if as_json:
        print(json.dumps({"event": "ask", **ask.to_dict()}), flush=True)
        return
    when = time.strftime("%H:%M:%S", time.localtime(ask.at))
    took = f" in {ask.seconds:.1f} s" if ask.seconds is not None else ""
    why = f": {ask.why}" if ask.why else ""
    print(f"{when}  {ask.client}  {ask.model}  \"{visible_controls(ask.question)}\"  "
          f"{ask.label}{took}{why}", flush=True)


def _print_serving(status: RoomStatus, as_json: bool, qr: bool) -> None:
    endpoint = status.endpoints[0]
    if as_json:
        print(json.dumps({
            "event": "serving", "endpoints": list(status.endpoints), "key": status.key,
            "models": list(status.models), "note": status.note,
            "files": [{"model": f.model_id, "repo": f.repo, "revision": f.commit,
                       "filename": f.filename, "size": f.size} for f in status.files],
        }), flush=True)
        return
    key = f"   key: {status.key}" if status.key else "   (no key: this computer only)"
    print(f"Serving {', '.join(status.models)} to the room.")
    print(f"Students type:  {endpoint}{key}")
    for other in status.endpoints[1:]:
        print(f"            or  {other}")
    with_key = f" --key {status.key}" if status.key else ""
    first = status.models[0]
    print(f"  triptych models add-server {endpoint}{with_key} --add {first}=<role>")
    if status.files:
        size = format_bytes(sum(f.size for f in status.files))
        pulls = ", ".join(dict.fromkeys(f.model_id for f in status.files))
        print(f"  triptych models pull ID --from {endpoint}{with_key}   ({pulls}: {size})")
    if status.note:
        note(status.note)
    if qr:
        print(qr_terminal(link(endpoint, status.key)), end="")
    print("Ctrl+C stops the room everywhere.", flush=True)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # SIGTERM stops the room as Ctrl+C does


def run_serve(args: argparse.Namespace) -> int:
    """``triptych serve``; returns the exit status once the room stops."""
    if not 0 <= args.port <= 65535:
        raise UsageError("--port must be between 0 and 65535.")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be at least 1.")
    key = None
    if args.key is not None:
        try:
            key = check_key(args.key)
        except RoomError as exc:
            raise UsageError(str(exc)) from None
    models = _models(args.models)
    if not models:
        return report("No model on this computer is ready to serve; pull one first "
                      "(triptych models list).", EXIT_FAILED)
    as_json = bool(args.json)
    room = Room(RoomSettings(models=models, host=args.host, port=args.port, key=key,
                             announce=not args.no_announce, threads=args.threads),
                on_ask=lambda ask: _print_ask(ask, as_json))
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        if not as_json:
            where = "this computer only" if is_loopback(args.host) else args.host
            print(f"Starting the room on {where} ({len(models)} model"
                  f"{'s' if len(models) != 1 else ''})…", file=sys.stderr, flush=True)
        room.start()
        _print_serving(room.status(), as_json, qr=not (args.no_qr or as_json))
        room.wait()
        status = room.status()
        if status.error:
            return report(status.error, EXIT_FAILED)
        return EXIT_OK
    except RoomError as exc:
        return report(str(exc), EXIT_FAILED, json_event=as_json)
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        room.stop()
        signal.signal(signal.SIGTERM, previous)
        if as_json:
            print(json.dumps({"event": "stopped"}), flush=True)
        else:
            print("The room stopped.", file=sys.stderr, flush=True)

