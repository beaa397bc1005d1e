"""A real HTTP server on 127.0.0.1 that speaks the Hugging Face Hub's download protocol.

Point huggingface_hub at it with ``HF_ENDPOINT=hub.endpoint``. It answers the requests
huggingface_hub actually makes (see desktop_app/models/download.py), the way the Hub does:

``HEAD|GET /{owner}/{name}/resolve/{revision}/{path}``
    LFS files (the default, like every GGUF): ``302 Found`` to a signed URL on a *second*
    server (the "CDN", another port, so huggingface_hub treats it as off-Hub and stops
    following the redirect, as with the real CDN), carrying ``X-Repo-Commit``,
    ``X-Linked-Etag: "<sha256>"``, ``X-Linked-Size`` and the git ``ETag``.
    Regular files: ``200`` with ``ETag: "<git sha1>"``, ``X-Repo-Commit``, ``Content-Length``.
    Errors carry ``X-Error-Code`` (``RepoNotFound``, ``GatedRepo``, ``RevisionNotFound``,
    ``EntryNotFound``) and ``X-Error-Message`` like the Hub: 401 for anonymous access to
    a gated or missing repo, 403 for a token not granted access to a gated repo, 401
    ``Invalid credentials in Authorization header`` for an unknown token, 404 for a
    missing file or revision.
``HEAD|GET /datasets/{owner}/{name}/resolve/{revision}/{path}``
    The same, for a dataset repo added as ``add_repo("datasets/{owner}/{name}", ...)``.
``GET /api/models/{owner}/{name}[/revision/{revision}][?blobs=true]``
    ``model_info`` JSON with ``siblings`` (size, blobId and lfs sha256 with blobs=true).
``GET /api/models/{owner}/{name}/tree/{revision}``
    ``list_repo_tree`` JSON.
CDN ``GET|HEAD /repos/{owner}/{name}/{sha256}?X-Amz-...``
    The bytes, with ``Accept-Ranges: bytes``; ``Range: bytes=a-[b]`` gives ``206`` with
    ``Content-Range: bytes a-b/total``; an unsatisfiable range gives ``416``.

A repo has a history: :meth:`FakeHub.push` uploads new bytes under the same names as a
new commit and moves ``main``, and every earlier commit still serves its own files, as
the Hub does (the reason catalog entries pin a revision).

Knobs: ``drop_after`` (cut the next CDN body after N bytes), ``throttle`` (bytes per
second on CDN bodies), per-file ``served`` bytes (differ from the advertised SHA-256)
and ``advertised_size``. Every request is recorded in ``requests``.

Every response says ``Connection: close``, so :meth:`FakeHub.stop` can join every
handler thread: nothing is left running after a test.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class HubFile:
    data: bytes
    lfs: bool = True
    served: bytes | None = None  # bytes actually sent (default: data)
    advertised_size: int | None = None  # X-Linked-Size (default: len(data))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def body(self) -> bytes:
        return self.data if self.served is None else self.served

    @property
    def size(self) -> int:
        return self.advertised_size if self.advertised_size is not None else len(self.data)


@dataclass
class HubRepo:
    repo_id: str
    files: dict[str, HubFile]  # at main
    commit: str  # main
    gated: bool = False
    granted_tokens: set[str] = field(default_factory=set)
    history: dict[str, dict[str, HubFile]] = field(default_factory=dict)  # commit -> files

    def at(self, revision: str) -> tuple[str, dict[str, HubFile]] | None:
        """(commit, files) at a branch name or full commit hash, None if there is none."""
        if revision == "main":
            return self.commit, self.files
        if revision in self.history:
            return revision, self.history[revision]
        return None


@dataclass
class Recorded:
    server: str  # "hub" or "cdn"
    method: str
    path: str
    headers: dict[str, str]
    status: int = 0
    range: str | None = None
    body_bytes: int = 0

    @property
    def range_start(self) -> int | None:
        if not self.range:
            return None
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", self.range.strip())
        return int(match.group(1)) if match else None


class _Server(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, hub: FakeHub, name: str):
        self.hub = hub
        self.name = name
        super().__init__(("127.0.0.1", 0), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # stdlib name
        pass

    def do_HEAD(self) -> None:  # stdlib name
        self._dispatch()

    def do_GET(self) -> None:  # stdlib name
        self._dispatch()

    def _dispatch(self) -> None:
        hub = self.server.hub
        record = Recorded(
            server=self.server.name,
            method=self.command,
            path=self.path,
            headers={k.lower(): v for k, v in self.headers.items()},
            range=self.headers.get("Range"),
        )
        hub._record(record)
        self._record = record
        self.close_connection = True
        try:
            if self.server.name == "cdn":
                self._cdn()
            else:
                self._hub()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass

    # ---------------------------------------------------------------- responses

    def _send(self, status: int, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self._record.status = status
        self.send_response(status)
        headers = dict(headers or {})
        headers.setdefault("Content-Length", str(len(body)))
        headers["Connection"] = "close"
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
            self._record.body_bytes = len(body)

    def _error(self, status: int, code: str | None, message: str, extra: dict[str, str] | None = None) -> None:
        headers = {"Content-Type": "application/json", "X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        headers.update(extra or {})
        self._send(status, headers, json.dumps({"error": message}).encode())

    # --------------------------------------------------------------------- hub

    def _token(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        return auth[7:].strip() if auth.lower().startswith("bearer ") else None

    def _check_access(self, repo: HubRepo | None, repo_id: str) -> bool:
        """Send the Hub's error and return False if this request may not see the repo."""
        hub = self.server.hub
        token = self._token()
        if token is not None and token not in hub.valid_tokens:
            self._error(401, None, "Invalid credentials in Authorization header")
            return False
        if repo is None:
            if token is None:
                self._error(401, "RepoNotFound", "Repository not found")
            else:
                self._error(404, "RepoNotFound", "Repository not found")
            return False
        if repo.gated and self.server.hub is not None and token not in repo.granted_tokens:
            if token is None:
                self._error(
                    401, "GatedRepo",
                    f"Access to model {repo_id} is restricted. You must have access to it and be "
                    "authenticated to access it. Please log in.",
                )
            else:
                self._error(
                    403, "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are not in the authorized list. "
                    f"Visit https://huggingface.co/{repo_id} to ask for access.",
                )
            return False
        return True

    def _hub(self) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?", path)
        if match and self.command == "GET":
            self._model_info(match.group(1), match.group(2) or "main", "blobs" in query)
            return
        match = re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(?:/(.*))?", path)
        if match and self.command == "GET":
            self._tree(match.group(1), match.group(2))
            return
        match = re.fullmatch(r"/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:  # a dataset repo: added as add_repo("datasets/owner/name", ...)
            self._resolve("datasets/" + match.group(1), match.group(2), match.group(3))
            return
        match = re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path)
        if match:
            self._resolve(match.group(1), match.group(2), match.group(3))
            return
        self._error(404, None, "Not found")

    def _repo_at(self, repo_id: str, revision: str) -> tuple[str, dict[str, HubFile]] | None:
        repo = self.server.hub.repos.get(repo_id)
        if not self._check_access(repo, repo_id):
            return None
        assert repo is not None
        found = repo.at(revision)
        if found is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return found

    def _resolve(self, repo_id: str, revision: str, filename: str) -> None:
        found = self._repo_at(repo_id, revision)
        if found is None:
            return
        commit, files = found
        file = files.get(filename)
        if file is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on \"{revision}\"",
                        {"X-Repo-Commit": commit})
            return
        common = {
            "X-Repo-Commit": commit,
            "ETag": f'"{git_blob_sha1(file.data)}"',
            "Accept-Ranges": "bytes",
            "Vary": "Origin, Accept-Encoding",
        }
        if file.lfs:
            cdn = self.server.hub.cdn_url
            location = (
                f"{cdn}/repos/{quote(repo_id)}/{file.sha256}"
                f"?response-content-disposition=attachment%3B+filename%3D%22{quote(filename)}%22"
                "&X-Amz-Expires=3600&X-Amz-Signature=0123456789abcdef"
            )
            body = f"Found. Redirecting to {location}".encode()
            self._send(302, {
                **common,
                "Location": location,
                "X-Linked-Etag": f'"{file.sha256}"',
                "X-Linked-Size": str(file.size),
                "Content-Type": "text/plain; charset=utf-8",
            }, body)
            return
        self._send(200, {**common, "Content-Type": "application/octet-stream"}, file.data)

    def _siblings(self, files: dict[str, HubFile], blobs: bool) -> list[dict[str, Any]]:
        out = []
        for name, file in files.items():
            item: dict[str, Any] = {"rfilename": name}
            if blobs:
                item["size"] = file.size
                item["blobId"] = git_blob_sha1(file.data)
                if file.lfs:
                    item["lfs"] = {"size": file.size, "sha256": file.sha256, "pointerSize": 135}
            out.append(item)
        return out

    def _model_info(self, repo_id: str, revision: str, blobs: bool) -> None:
        repo = self.server.hub.repos.get(repo_id)
        if repo is not None and repo.gated:
            # Metadata of gated repos is public on the Hub; only files need access.
            if self._token() is not None and self._token() not in self.server.hub.valid_tokens:
                self._error(401, None, "Invalid credentials in Authorization header")
                return
            found = repo.at(revision)
            if found is None:
                self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                return
        else:
            found = self._repo_at(repo_id, revision)
            if found is None:
                return
            repo = self.server.hub.repos[repo_id]
        commit, files = found
        body = {
            "_id": "0" * 24,
            "id": repo_id,
            "modelId": repo_id,
            "sha": commit,
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "tags": ["gguf"],
            "siblings": self._siblings(files, blobs),
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _tree(self, repo_id: str, revision: str) -> None:
        found = self._repo_at(repo_id, revision)
        if found is None:
            return
        entries = []
        for name, file in found[1].items():
            item: dict[str, Any] = {"type": "file", "oid": git_blob_sha1(file.data),
                                    "size": file.size, "path": name}
            if file.lfs:
                item["lfs"] = {"oid": file.sha256, "size": file.size, "pointerSize": 135}
            entries.append(item)
        self._send(200, {"Content-Type": "application/json"}, json.dumps(entries).encode())

    # --------------------------------------------------------------------- cdn

    def _cdn(self) -> None:
        hub = self.server.hub
        path = unquote(urlsplit(self.path).path)
        match = re.fullmatch(r"/repos/((?:datasets/)?[^/]+/[^/]+)/([0-9a-f]{64})", path)
        repo = hub.repos.get(match.group(1)) if match else None
        file = None
        if repo is not None and match is not None:
            every = [f for files in repo.history.values() for f in files.values()]
            file = next((f for f in every if f.sha256 == match.group(2)), None)
        if file is None:
            self._send(404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>")
            return
        body = file.body
        total = len(body)
        start, end = 0, total - 1
        status = 200
        headers = {
            "Content-Type": "application/octet-stream",
            "Accept-Ranges": "bytes",
            "ETag": f'"{file.sha256}"',
        }
        wanted = self.headers.get("Range")
        if wanted:
            match = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted.strip())
            if not match or int(match.group(1)) >= total:
                self._send(416, {"Content-Range": f"bytes */{total}"})
                return
            start = int(match.group(1))
            end = min(int(match.group(2)), total - 1) if match.group(2) else total - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{total}"
        payload = body[start:end + 1]
        headers["Content-Length"] = str(len(payload))
        self._record.status = status
        self.send_response(status)
        headers["Connection"] = "close"
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        self._stream(payload)

    def _stream(self, payload: bytes) -> None:
        hub = self.server.hub
        drop_at = hub._take_drop()
        step = 64 * 1024
        sent = 0
        began = time.monotonic()
        while sent < len(payload):
            if hub._stopping.is_set():
                break
            piece = payload[sent:sent + step]
            if drop_at is not None and sent + len(piece) >= drop_at:
                piece = piece[: max(0, drop_at - sent)]
                self.wfile.write(piece)
                sent += len(piece)
                self._record.body_bytes = sent
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            self.wfile.write(piece)
            sent += len(piece)
            self._record.body_bytes = sent
            if hub.throttle:
                ahead = sent / hub.throttle - (time.monotonic() - began)
                if ahead > 0:
                    hub._stopping.wait(ahead)


class FakeHub:
    """The Hub and its CDN on two ports of 127.0.0.1. Use as a context manager."""

    def __init__(self, valid_tokens: set[str] | None = None):
        self.repos: dict[str, HubRepo] = {}
        self.valid_tokens: set[str] = set(valid_tokens or ())
        self.requests: list[Recorded] = []
        self.drop_after: int | None = None
        self.throttle: float | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._servers: list[_Server] = []
        self._threads: list[threading.Thread] = []

    # ---------------------------------------------------------------- set-up

    def add_repo(self, repo_id: str, files: dict[str, bytes | HubFile], *, gated: bool = False,
                 granted_tokens: set[str] | None = None) -> HubRepo:
        commit = hashlib.sha1(repo_id.encode()).hexdigest()
        snapshot = {k: v if isinstance(v, HubFile) else HubFile(v) for k, v in files.items()}
        repo = HubRepo(
            repo_id=repo_id,
            files=snapshot,
            commit=commit,
            gated=gated,
            granted_tokens=set(granted_tokens or ()),
            history={commit: snapshot},
        )
        self.repos[repo_id] = repo
        return repo

    def push(self, repo_id: str, files: dict[str, bytes | HubFile]) -> str:
        """Upload *files* (new or replacing same-named ones) as a new commit; main moves.

        Returns the new commit. Earlier commits keep serving their own bytes.
        """
        repo = self.repos[repo_id]
        snapshot = dict(repo.files)
        snapshot.update({k: v if isinstance(v, HubFile) else HubFile(v) for k, v in files.items()})
        commit = hashlib.sha1(f"{repo_id}@{len(repo.history)}".encode()).hexdigest()
        repo.history[commit] = snapshot
        repo.files, repo.commit = snapshot, commit
        return commit

    def start(self) -> FakeHub:
        self._stopping.clear()
        for name in ("hub", "cdn"):
            server = _Server(self, name)
            thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                      name=f"fake-{name}", daemon=True)
            thread.start()
            self._servers.append(server)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stopping.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()  # joins the handler threads (block_on_close)
        for thread in self._threads:
            thread.join(5)
        self._servers.clear()
        self._threads.clear()

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        return self._servers[0].url

    @property
    def cdn_url(self) -> str:
        return self._servers[1].url

    # ------------------------------------------------------------- inspection

    def _record(self, record: Recorded) -> None:
        with self._lock:
            self.requests.append(record)

    def _take_drop(self) -> int | None:
        with self._lock:
            value, self.drop_after = self.drop_after, None
            return value

    def downloads(self) -> list[Recorded]:
        """The GETs of file bytes (on the CDN), in order."""
        with self._lock:
            return [r for r in self.requests if r.server == "cdn" and r.method == "GET"]

    def summary(self) -> list[str]:
        with self._lock:
            return [f"{r.server} {r.method} {r.path.split('?')[0]} -> {r.status}"
                    + (f" Range={r.range}" if r.range else "") for r in self.requests]
