"""The model files a room hands out, and the part of the Hugging Face Hub's protocol
``huggingface_hub`` uses to fetch them, so a student's ``triptych models pull`` (or any
tool, with ``HF_ENDPOINT``) downloads from the teacher's laptop instead of the Hub.

A room hands out the files of the teacher's ready Hub models (every part of a split
GGUF), each at the commit it was downloaded at, with the SHA-256 it was verified against.
The answers are the Hub's, minus its redirect to a CDN (the bytes come from here):

``HEAD|GET /{repo}/resolve/{revision}/{file}``
    ``X-Repo-Commit``, ``ETag`` and ``X-Linked-Etag`` (the SHA-256, so the student's
    checksum check has the Hub's LFS value), ``X-Linked-Size``, ``Accept-Ranges``; a
    ``Range: bytes=N-`` gives ``206`` with the rest (a dropped download resumes).
    *revision* is the commit (a catalog's pin) or ``main`` (the teacher's commit).
``GET /api/models/{repo}[/revision/{revision}]``
    ``model_info``: the commit and the files the room has, with sizes and SHA-256
    (``models pull ORG/REPO:QUANT`` lists a repo this way).

Errors carry the Hub's ``X-Error-Code`` (``RepoNotFound``, ``RevisionNotFound``,
``EntryNotFound``) so huggingface_hub raises what it would raise for the Hub. Nothing
here writes: there is no upload and no delete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.models import catalog as cat
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.hub import SHA256_HEX
from desktop_app.models.sources import COMMIT_HASH, HubSource

RESOLVE = re.compile(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)")
MODEL_INFO = re.compile(r"/api/models/([^/]+/[^/]+)(?:/revision/([^/]+))?")
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True)
class HandedFile:
    """One file a room hands out."""

    model_id: str
    repo: str
    commit: str
    filename: str
    path: Path  # the bytes (the blob in the teacher's Hub cache)
    size: int
    sha256: str


@dataclass(frozen=True)
class Answer:
    """What to send: a status, headers, and a JSON body or a file's byte range."""

    status: int
    headers: dict[str, str]
    json_body: Any = None
    file: HandedFile | None = None
    start: int = 0
    end: int = -1  # inclusive; -1: no bytes


def _commit_of(pointer: Path, source: HubSource) -> str | None:
    """The commit a cached file was downloaded at (its ``snapshots/<commit>/`` folder)."""
    if COMMIT_HASH.fullmatch(source.revision):
        return source.revision
    parts = pointer.parts
    for index in range(len(parts) - 1, 0, -1):
        if parts[index - 1] == "snapshots" and COMMIT_HASH.fullmatch(parts[index]):
            return parts[index]
    return None


def handed_files(entries: Iterable[ModelEntry]) -> list[HandedFile]:
    """The files of the ready Hub models among *entries*, each part of a split model
    too; only files whose SHA-256 is known and was checked (never a file marked damaged).
    Reads the disk: call it off the GUI thread."""
    states = cat.read_states()
    files: list[HandedFile] = []
    for entry in entries:
        source = entry.source
        if not isinstance(source, HubSource) or not cat.is_ready(entry):
            continue
        parts = [source, *source.part_sources()]
        for number, part in enumerate(parts, start=1):
            part_id = entry.id if number == 1 else f"{entry.id} (part {number} of {len(parts)})"
            state = states.get(part_id, {})
            sha = (part.sha256 or "").lower() or (state.get("sha256") if state.get("verified")
                                                  else None)
            pointer = cat.hub_cached_path(part)
            if pointer is None or not isinstance(sha, str) or not SHA256_HEX.fullmatch(sha):
                continue
            commit = _commit_of(pointer, part)
            blob = pointer.resolve()
            if commit is None or not blob.is_file():
                continue
            files.append(HandedFile(entry.id, part.repo, commit, part.filename, blob,
                                    blob.stat().st_size, sha))
    return files


def _error(status: int, code: str | None, message: str,
           extra: dict[str, str] | None = None) -> Answer:
    headers = {"X-Error-Message": message, **(extra or {})}
    if code:
        headers["X-Error-Code"] = code
    return Answer(status, headers, {"error": message})


class HubFiles:
    """Answers Hub requests from a fixed list of files."""

    def __init__(self, files: list[HandedFile]):
        self.files = files

    def _repo(self, repo: str, revision: str) -> list[HandedFile] | Answer:
        """The room's files of *repo* at *revision*, or the Hub's error answer."""
        mine = [f for f in self.files if f.repo == repo]
        if not mine:
            return _error(404, "RepoNotFound", f"This room does not hand out {repo}.")
        commits = {f.commit for f in mine}
        if revision == "main" and len(commits) == 1:
            return mine
        found = [f for f in mine if f.commit == revision]
        if not found:
            have = ", ".join(sorted(c[:12] for c in commits))
            return _error(404, "RevisionNotFound",
                          f"Invalid rev id: {revision} (this room has {repo} at {have}).")
        return found

    def resolve(self, repo: str, revision: str, filename: str, range_header: str | None
                ) -> Answer:
        """The answer to ``HEAD|GET /{repo}/resolve/{revision}/{filename}``."""
        found = self._repo(repo, revision)
        if isinstance(found, Answer):
            return found
        file = next((f for f in found if f.filename == filename), None)
        if file is None:
            return _error(404, "EntryNotFound",
                          f"{filename} does not exist on \"{revision}\" in this room.",
                          {"X-Repo-Commit": found[0].commit})
        headers = {
            "X-Repo-Commit": file.commit,
            "ETag": f'"{file.sha256}"',
            "X-Linked-Etag": f'"{file.sha256}"',
            "X-Linked-Size": str(file.size),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'attachment; filename="{Path(filename).name}"',
        }
        start, end, status = 0, file.size - 1, 200
        if range_header:
            match = RANGE.fullmatch(range_header.strip())
            if match is None or int(match.group(1)) >= file.size:
                return Answer(416, {"Content-Range": f"bytes */{file.size}"},
                              {"error": "Range Not Satisfiable"})
            start = int(match.group(1))
            end = min(int(match.group(2)), file.size - 1) if match.group(2) else file.size - 1
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{file.size}"
        return Answer(status, headers, file=file, start=start, end=end)

    def model_info(self, repo: str, revision: str | None) -> Answer:
        """The answer to ``GET /api/models/{repo}[/revision/{revision}]``."""
        found = self._repo(repo, revision or "main")
        if isinstance(found, Answer):
            return found
        commit = found[0].commit
        return Answer(200, {}, {
            "_id": commit[:24], "id": repo, "modelId": repo, "sha": commit,
            "private": False, "gated": False, "disabled": False, "tags": ["gguf"],
            "siblings": [{"rfilename": f.filename, "size": f.size, "blobId": f.sha256,
                          "lfs": {"size": f.size, "sha256": f.sha256, "pointerSize": 135}}
                         for f in found],
        })
