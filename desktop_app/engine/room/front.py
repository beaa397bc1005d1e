"""The room's front door: the one address students reach, in front of llama-cpp-python's
server (which listens on 127.0.0.1 only, behind a key only the room knows).

It is a small HTTP server from the standard library, not an inference server: it checks
the key and the limits, answers the model list itself (the model server holds its lock
for that too, so a student's check would wait behind every answer), queues questions
fairly (:mod:`.limits`), hands each in turn to the model server and passes the stream
back byte for byte, and hands out model files the way the Hub does (:mod:`.hubfiles`).
It is read-only by construction: GET, HEAD and the two generation POSTs are all it
answers; nothing changes the teacher's catalog or files. Every response closes its
connection, so stopping the room ends every stream and joins every request thread.
"""

from __future__ import annotations

import json
import select
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx2

from desktop_app.engine.room.activity import Activity, AskState, question_of
from desktop_app.engine.room.hubfiles import MODEL_INFO, RESOLVE, Answer, HubFiles
from desktop_app.engine.room.limits import FairQueue, FileSlots, RateLimits, Refused
from desktop_app.models.room import bearer, same_key

MAX_BODY = 4 * 1024 * 1024  # a request's JSON (a long conversation fits)
MAX_TOKENS = 8192  # the longest answer the room gives (a reasoning model's thinking fits)
KEEPALIVE_S = 10.0  # an SSE comment this often while a question waits its turn
FILE_CHUNK = 1024 * 1024
SOCKET_TIMEOUT_S = 120.0  # a client that neither sends nor reads this long is dropped
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")
NO_PROBABILITIES = ("This room serves without token probabilities (llama-cpp-python's server "
                    "would need logits for every position); turn Probabilities off for this "
                    "pane.")


@dataclass
class Door:
    """Everything a request needs, shared by the request threads."""

    key: str | None  # None: no key (a room on this computer only)
    models: dict[str, str]  # served alias (catalog id) -> role
    inner: str  # the model server's base address, http://127.0.0.1:PORT
    inner_key: str
    files: HubFiles
    activity: Activity
    limits: RateLimits = field(default_factory=RateLimits)
    queue: FairQueue = field(default_factory=FairQueue)
    file_slots: FileSlots = field(default_factory=FileSlots)
    stopping: threading.Event = field(default_factory=threading.Event)
    failure: str | None = None  # the model server died: every question gets this sentence


class Front(ThreadingHTTPServer):
    """The HTTP server; :meth:`close` ends every connection and joins its threads."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, door: Door):
        self.door = door
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)  # binds: OSError if it cannot
        self.upstream = httpx2.Client(timeout=httpx2.Timeout(None, connect=10.0),
                                      limits=httpx2.Limits(max_keepalive_connections=0))

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> None:
        """Answer requests, on a thread of its own, until :meth:`close`."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="room-front")
        self._thread.start()

    def track(self, connection: socket.socket, on: bool) -> None:
        with self._lock:
            (self._connections.add if on else self._connections.discard)(connection)

    def close(self) -> None:
        """Stop accepting, end every open connection (streams end at once), join."""
        self.door.stopping.set()
        self.door.queue.close()
        if self._thread is not None:
            self.shutdown()  # waits for serve_forever: only when it was started
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed
        self.server_close()  # joins the request threads (block_on_close)
        if self._thread is not None:
            self._thread.join()
        self.upstream.close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = SOCKET_TIMEOUT_S
    server: Front

    def log_message(self, format: str, *args: Any) -> None:  # stdlib name
        pass  # the room's activity is its log

    def do_GET(self) -> None:  # stdlib names
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _read_only(self) -> None:
        self.close_connection = True
        self._json(405, "This room is read-only: it answers questions and hands out model "
                        "files, and nothing can change the teacher's models.",
                   {"Allow": "GET, HEAD, POST"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _read_only

    # -------------------------------------------------------------------- answers

    def _send(self, status: int, headers: dict[str, str], body: bytes = b"", *,
              length: int | None = None, stream: bool = False) -> None:
        """Status and headers, then *body* (a HEAD gets the headers only). ``length``: of
        a body written after; ``stream``: one that ends when the connection closes."""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if not stream:
            self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Connection", "close")
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, message: str, headers: dict[str, str] | None = None,
              code: str | None = None) -> None:
        """An error as OpenAI-compatible servers send it, with the Hub's header too."""
        error = {"message": message, "type": "invalid_request_error", "code": code}
        self._send(status, {"Content-Type": "application/json", "X-Error-Message": message,
                            **(headers or {})}, json.dumps({"error": error}).encode())

    def _refused(self, refused: Refused) -> None:
        self._json(429, str(refused), {"Retry-After": str(max(1, round(refused.retry_after)))},
                   code="rate_limited")

    # ---------------------------------------------------------------------- routes

    def _handle(self) -> None:
        self.close_connection = True
        door, client = self.server.door, self.client_address[0]
        self.server.track(self.connection, True)
        try:
            path = unquote(urlsplit(self.path).path)
            if door.stopping.is_set():
                self._json(503, "The room stopped serving.")
                return
            try:
                door.limits.request(client)
            except Refused as refused:
                self._refused(refused)
                return
            if door.key is not None and not same_key(bearer(self.headers.get("Authorization")),
                                                     door.key):
                door.limits.bad_key(client)
                self._json(401, "This room needs its key (the teacher's screen shows it); the "
                                "key sent is missing or wrong.", code="invalid_api_key")
                return
            door.activity.seen(client)
            self._route(path, client)
        except (OSError, ValueError):
            pass  # the client left, or the room closed its connection while stopping
        finally:
            self.server.track(self.connection, False)

    def _route(self, path: str, client: str) -> None:
        door, method = self.server.door, self.command
        if method == "GET" and path == "/v1/models":
            data = [{"id": alias, "object": "model", "owned_by": "triptych-room", "role": role}
                    for alias, role in door.models.items()]
            self._send(200, {"Content-Type": "application/json"},
                       json.dumps({"object": "list", "data": data}).encode())
        elif method == "POST" and path in GENERATION_PATHS:
            self._generate(path, client)
        elif method in ("GET", "HEAD") and (match := RESOLVE.fullmatch(path)):
            self._file(door.files.resolve(match.group(1), match.group(2), match.group(3),
                                          self.headers.get("Range")), client)
        elif method == "GET" and (match := MODEL_INFO.fullmatch(path)):
            self._file(door.files.model_info(match.group(1), match.group(2)), client)
        elif method == "POST":
            self._read_only()
        else:
            self._json(404, f"This room has nothing at {path[:80]}.", code="not_found")

    # ------------------------------------------------------------------- questions

    def _generate(self, path: str, client: str) -> None:
        door = self.server.door
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        if not 0 < length <= MAX_BODY:
            self._json(413 if length else 400, "The request has no body, or one too large.")
            return
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            self._json(400, "The request body is not a JSON object.")
            return
        model = body.get("model")
        if model not in door.models:
            served = ", ".join(door.models)
            self._json(404, f"This room does not serve '{str(model)[:80]}'; it serves: {served}.",
                       code="model_not_found")
            return
        # one answer may not hold the model for the whole class: a bounded length
        asked = body.get("max_tokens")
        body["max_tokens"] = min(asked, MAX_TOKENS) if isinstance(asked, int) and asked > 0 \
            else MAX_TOKENS
        raw = json.dumps(body).encode()
        number = door.activity.ask(client, str(model), question_of(body))
        if body.get("logprobs") or body.get("top_logprobs"):
            door.activity.update(number, AskState.REFUSED, NO_PROBABILITIES)
            self._json(400, NO_PROBABILITIES)
            return
        if door.failure:
            door.activity.update(number, AskState.BROKEN_OFF, door.failure)
            self._json(503, door.failure)
            return
        try:
            turn = door.queue.enter(client)
        except Refused as refused:
            door.activity.update(number, AskState.REFUSED, str(refused))
            self._refused(refused)
            return
        streaming = bool(body.get("stream"))
        state, why = AskState.BROKEN_OFF, ""
        try:
            if streaming:
                self._send(200, {"Content-Type": "text/event-stream",
                                 "Cache-Control": "no-cache"}, stream=True)
            if not self._wait_turn(turn, streaming):
                state = AskState.LEFT
                return
            door.activity.update(number, AskState.ANSWERING)
            state, why = self._forward(path, raw, streaming)
        except Refused as refused:  # the room stopped while this question waited
            why = str(refused)
            if streaming:
                self._sse_error(why)
            else:
                self._json(503, why)
        except (OSError, ValueError):
            state = AskState.BROKEN_OFF if door.stopping.is_set() else AskState.LEFT
        finally:
            turn.done()
            door.activity.update(number, state, why)

    def _wait_turn(self, turn: Any, streaming: bool) -> bool:
        """Wait for this question's turn; False if the student left meanwhile. A stream
        gets a comment line now and then, so its reader does not give up on silence."""
        waited = 0.0
        while not turn.wait(1.0):
            waited += 1.0
            if self._client_gone():
                return False
            if streaming and waited >= KEEPALIVE_S:
                waited = 0.0
                self.wfile.write(b": waiting in the room's queue\n\n")
                self.wfile.flush()
        return True

    def _client_gone(self) -> bool:
        """Whether the student closed the connection (its request was read in full, so
        anything readable now is the end of the stream)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _sse_error(self, message: str) -> None:
        self.wfile.write(f"data: {json.dumps({'error': {'message': message}})}\n\n".encode())
        self.wfile.flush()

    def _forward(self, path: str, raw: bytes, streaming: bool) -> tuple[AskState, str]:
        """Hand the question to the model server and pass its answer back as it comes."""
        door = self.server.door
        headers = {"Authorization": f"Bearer {door.inner_key}",
                   "Content-Type": "application/json"}
        try:
            with self.server.upstream.stream("POST", door.inner + path, content=raw,
                                             headers=headers) as response:
                if response.status_code != 200:
                    said = response.read().decode("utf-8", "replace")[:300]
                    why = f"The model server refused the question (HTTP {response.status_code})."
                    if streaming:
                        self._sse_error(f"{why} {said}")
                    else:
                        self._send(response.status_code, {"Content-Type": "application/json"},
                                   said.encode())
                    return AskState.BROKEN_OFF, why
                if not streaming:
                    data = response.read()
                    self._send(200, {"Content-Type": "application/json"}, data)
                    return AskState.ANSWERED, ""
                for chunk in response.iter_raw():
                    self.wfile.write(chunk)
                    self.wfile.flush()
        except httpx2.HTTPError as exc:
            # the model server died or the room is stopping: the student's stream ends here
            # without its last word, which its pane reports as broken off
            return AskState.BROKEN_OFF, f"The model server stopped answering ({type(exc).__name__})."
        return AskState.ANSWERED, ""

    # ----------------------------------------------------------------------- files

    def _file(self, answer: Answer, client: str) -> None:
        door = self.server.door
        if answer.file is None:
            body = json.dumps(answer.json_body).encode() if answer.json_body is not None else b""
            self._send(answer.status, {"Content-Type": "application/json", **answer.headers},
                       body)
            return
        count = answer.end - answer.start + 1
        if self.command == "HEAD":
            self._send(answer.status, answer.headers, length=count)
            return
        try:
            door.file_slots.take(client)
        except Refused as refused:
            self._refused(refused)
            return
        sent = 0
        try:
            self._send(answer.status, answer.headers, length=count)
            with answer.file.path.open("rb") as handle:
                handle.seek(answer.start)
                while sent < count and not door.stopping.is_set():
                    piece = handle.read(min(FILE_CHUNK, count - sent))
                    if not piece:
                        break
                    self.wfile.write(piece)
                    sent += len(piece)
        finally:
            door.file_slots.give(client)
            door.activity.file_sent(sent, answer.end == answer.file.size - 1 and sent == count)
