"""A room, started, watched and stopped as one: llama-cpp-python's server for the chosen
models (a child process on 127.0.0.1, :mod:`desktop_app.engine.llama.server`), the front
door students reach (:mod:`.front`), and the room's announcement on the local network.

:meth:`Room.start` and :meth:`Room.stop` block (models load, threads are joined): the
command line calls them in turn, the window through its background-job helper.
:meth:`Room.status` is a pure read. A room binds beyond this computer only when its host
says so, and then always with a key. Stopping it ends every stream and every download at
once, stops the model server and withdraws the announcement.
"""

from __future__ import annotations

import errno
import secrets
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import httpx2

from desktop_app import paths
from desktop_app.engine.cores import free_cores
from desktop_app.engine.llama import server as llama_server
from desktop_app.engine.room.activity import Activity, Ask
from desktop_app.engine.room.front import Door, Front
from desktop_app.engine.room.hubfiles import HandedFile, HubFiles, handed_files
from desktop_app.models import catalog as cat
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.room import (
    Announcement,
    RoomError,
    check_key,
    endpoint_for,
    is_loopback,
    new_key,
    reachable_hosts,
)
from desktop_app.models.sources import CatalogError, RemoteSource
from desktop_app.text.i18n import N_, _

START_TIMEOUT_S = 300.0  # loading the first model (a big one from a slow disk) may take long
STOP_TIMEOUT_S = 10.0
DEFAULT_PORT = 8000


class RoomState(StrEnum):
    """Where a room is."""

    STARTING = "starting"
    SERVING = "serving"
    STOPPING = "stopping"
    FAILED = "failed"  # the model server died while serving
    STOPPED = "stopped"


ROOM_STATE_LABELS: dict[RoomState, str] = {
    RoomState.STARTING: N_("starting…"),
    RoomState.SERVING: N_("serving"),
    RoomState.STOPPING: N_("stopping…"),
    RoomState.FAILED: N_("stopped by a failure"),
    RoomState.STOPPED: N_("not serving"),
}


@dataclass(frozen=True)
class RoomSettings:
    """What to serve, and where."""

    models: tuple[ModelEntry, ...]
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    key: str | None = None  # None: none on this computer only, a new one beyond it
    announce: bool = True  # on the local network (mDNS), where it allows
    hand_out: tuple[ModelEntry, ...] | None = None  # whose files (None: every ready one)
    threads: int | None = None  # the model server's (None: the cores free when it starts)


@dataclass(frozen=True)
class RoomStatus:
    """A room as the window and the command line show it."""

    state: RoomState
    endpoints: tuple[str, ...] = ()  # what students type, the likeliest first
    key: str | None = None
    models: tuple[str, ...] = ()
    files: tuple[HandedFile, ...] = ()
    connected: int = 0
    running: int = 0
    waiting: int = 0
    asks: tuple[Ask, ...] = ()
    files_sent: int = 0
    bytes_sent: int = 0
    error: str | None = None
    note: str | None = None  # e.g. the announcement failed: students type the address

    @property
    def label(self) -> str:
        return _(ROOM_STATE_LABELS[self.state])


def servable(entry: ModelEntry) -> str | None:
    """Why a room cannot serve *entry* (one sentence), or None if it can."""
    if isinstance(entry.source, RemoteSource):
        return _("'{model}' is itself served by {server}; a room serves models on this "
                 "computer.").format(model=entry.id, server=entry.source.endpoint)
    state = cat.state_of(entry)
    if state != cat.Availability.READY:
        return cat.missing_message(entry, state)
    return None


def _tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return " / ".join(line.strip() for line in text[-lines:] if line.strip())[:400]


class Room:
    """One room. Not reusable: a stopped room stays stopped (start a new one)."""

    def __init__(self, settings: RoomSettings, on_ask: Callable[[Ask], None] | None = None):
        self.settings = settings
        self.activity = Activity(on_ask)
        self.state = RoomState.STARTING
        self.key: str | None = None
        self.endpoints: tuple[str, ...] = ()
        self.error: str | None = None
        self.note: str | None = None
        self._front: Front | None = None
        self._door: Door | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._threads: list[threading.Thread] = []
        self._announcement: Announcement | None = None
        self._files: tuple[HandedFile, ...] = ()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self._stop_lock = threading.Lock()
        self.log_path = paths.data_dir() / "logs" / "room-llama-server.log"

    # ------------------------------------------------------------------------ start

    def start(self) -> None:
        """Start serving (blocking: loads the first model). RoomError: one sentence."""
        settings = self.settings
        try:
            self._start(settings)
        except BaseException:
            self.stop()
            raise

    def _start(self, settings: RoomSettings) -> None:
        if not settings.models:
            raise RoomError(_("Name at least one model to serve."))
        for entry in settings.models:
            why = servable(entry)
            if why:
                raise RoomError(why)
        if settings.key is not None:
            self.key = check_key(settings.key)
        elif not is_loopback(settings.host):
            self.key = new_key()  # never beyond this computer without one
        missing = llama_server.server_missing()
        if missing:
            raise RoomError(missing)
        catalog = cat.load_catalog()
        self._files = tuple(handed_files(settings.hand_out if settings.hand_out is not None
                                         else catalog))
        inner_key = secrets.token_urlsafe(24)
        self._door = Door(key=self.key, models={e.id: e.role for e in settings.models},
                          inner="", inner_key=inner_key, files=HubFiles(list(self._files)),
                          activity=self.activity)
        self._front = self._bind(settings.host, settings.port, self._door)
        port = self._front.port
        self.endpoints = tuple(endpoint_for(host, port) for host in reachable_hosts(settings.host))
        inner_port = self._start_model_server(settings.models, inner_key)
        self._door.inner = f"http://127.0.0.1:{inner_port}"
        with self._stop_lock:
            if self._stopped.is_set():
                raise RoomError(_("The room was stopped while it was starting."))
            self._front.start()
            self._thread(self._watch, "room-watch")
            with self._lock:
                self.state = RoomState.SERVING
        if settings.announce:
            self._announce(port)

    def _announce(self, port: int) -> None:
        """Announce the room on the local network (best effort: a note if it fails)."""
        settings = self.settings
        announcement = Announcement(settings.host, port, key_required=self.key is not None,
                                    models=[e.id for e in settings.models])
        try:
            announcement.start()
        except RoomError as exc:
            self.note = str(exc)
            return
        with self._stop_lock:
            if not self._stopped.is_set():
                self._announcement = announcement
                return
        announcement.close()  # the room was stopped meanwhile

    @staticmethod
    def _bind(host: str, port: int, door: Door) -> Front:
        try:
            return Front(host, port, door)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise RoomError(_("Port {port} on {host} is already in use (another server?); "
                                  "choose another with --port.").format(port=port, host=host)
                                ) from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(
                    exc, socket.gaierror):
                raise RoomError(_("'{host}' is not an address of this computer; use 0.0.0.0 "
                                  "for every network, or 127.0.0.1 for this computer only."
                                  ).format(host=host)) from None
            if exc.errno == errno.EACCES:
                raise RoomError(_("Port {port} needs administrator rights here; choose one "
                                  "above 1023 with --port.").format(port=port)) from None
            raise RoomError(_("Cannot listen on {host}:{port} ({error}).").format(
                host=host, port=port, error=exc.strerror or exc)) from None

    def _start_model_server(self, models: tuple[ModelEntry, ...], inner_key: str) -> int:
        """Start llama-cpp-python's server on a free port of 127.0.0.1 and wait until it
        answers; returns the port."""
        from desktop_app.engine.worker import decided_setup

        served = []
        for entry in models:
            try:
                path = cat.ensure_local(entry)
            except CatalogError as exc:
                raise RoomError(str(exc)) from None
            served.append(llama_server.ServedModel(
                entry.id, path, entry.context_length,
                -1 if entry.gpu_layers is None else entry.gpu_layers))
        setup = decided_setup(models[0])  # how llama.cpp may run here (a crash probe, once)
        port = _free_port()
        config_path = llama_server.write_config(
            paths.data_dir() / "room" / "llama-server.json",
            llama_server.config(served, port=port, api_key=inner_key,
                                n_threads=self.settings.threads or free_cores()))
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self._stop_lock, self.log_path.open("wb") as log:
            if self._stopped.is_set():
                raise RoomError(_("The room was stopped while it was starting."))
            self._process = subprocess.Popen(
                llama_server.command(config_path, setup.extra_buffers),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        inner = f"http://127.0.0.1:{port}/v1/models"
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx2.Client(timeout=2.0) as client:
            while True:
                code = self._process.poll()
                if code is not None:
                    raise RoomError(_("The model server did not start (exit code {code}): "
                                      "{message} (log: {log}).").format(
                        code=code, message=_tail(self.log_path) or _("no message"),
                        log=self.log_path))
                try:
                    answer = client.get(inner, headers={"Authorization": f"Bearer {inner_key}"})
                    if answer.status_code == 200:
                        return port
                except httpx2.HTTPError:
                    pass
                if self._stopped.wait(0.3):
                    raise RoomError(_("The room was stopped while it was starting."))
                if time.monotonic() > deadline:
                    raise RoomError(_("The model server did not start in time (log: "
                                      "{log}).").format(log=self.log_path))

    def _thread(self, target: Callable[[], object], name: str) -> None:
        thread = threading.Thread(target=target, name=name)
        thread.start()
        self._threads.append(thread)

    def _watch(self) -> None:
        """A model server that dies while serving fails the room: every question then
        gets one sentence instead of a hang."""
        process = self._process
        assert process is not None
        code = process.wait()
        if self._stopped.is_set():
            return
        message = _("The room's model server stopped (exit code {code}); stop the room and "
                    "start it again (log: {log}).").format(code=code, log=self.log_path)
        with self._lock:
            self.state, self.error = RoomState.FAILED, message
        if self._door is not None:
            self._door.failure = message

    # ------------------------------------------------------------------------- stop

    def stop(self) -> None:
        """Stop everywhere: streams and downloads end, the model server stops, the
        announcement is withdrawn. Blocking (a few seconds at most); safe to repeat."""
        self._stopped.set()
        with self._lock:
            if self.state in (RoomState.STARTING, RoomState.SERVING):
                self.state = RoomState.STOPPING
        with self._stop_lock:
            self._stop()

    def _stop(self) -> None:
        announcement, self._announcement = self._announcement, None
        if announcement is not None:
            announcement.close()
        front, self._front = self._front, None
        if front is not None:
            front.close()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(STOP_TIMEOUT_S)
        for thread in self._threads:
            thread.join(STOP_TIMEOUT_S)
        with self._lock:
            if self.state != RoomState.FAILED:
                self.state = RoomState.STOPPED

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the room stops or fails (the command line); False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while deadline is None or time.monotonic() < deadline:
            if self.state in (RoomState.FAILED, RoomState.STOPPED) or self._stopped.wait(0.2):
                return True
        return False

    # ----------------------------------------------------------------------- status

    def status(self) -> RoomStatus:
        """What the room is doing now (a pure read)."""
        door = self._door
        running, waiting = door.queue.counts() if door is not None else (0, 0)
        with self._lock:
            state, error = self.state, self.error
        return RoomStatus(
            state=state, endpoints=self.endpoints, key=self.key,
            models=tuple(e.id for e in self.settings.models), files=self._files,
            connected=self.activity.connected(), running=running, waiting=waiting,
            asks=self.activity.asks(), files_sent=self.activity.files_sent,
            bytes_sent=self.activity.bytes_sent, error=error, note=self.note)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

