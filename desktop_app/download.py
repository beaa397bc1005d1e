"""Getting model files: download from the Hugging Face Hub, verify, remove, import.

No Qt here: the model manager window and ``triptych models ...`` both call these
functions, from a worker thread (the window) or the main thread (the CLI).

Downloads go through :mod:`huggingface_hub` and land in its normal cache, so
``HF_ENDPOINT``, ``HF_HOME`` / ``HF_HUB_CACHE``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE``
all apply, and a file another tool already downloaded is not fetched again. They are
read when a download starts, not when this module is imported.

How a pull works (the same requests ``hf_hub_download`` makes):

1. ``HEAD {endpoint}/{repo}/resolve/{revision}/{filename}`` (``get_hf_file_metadata``)
   gives the commit, the size and the ETag, which for LFS files (every GGUF) is the
   file's SHA-256, plus the CDN location the Hub redirects to.
2. ``GET location`` (``huggingface_hub.file_download.http_get``) streams the bytes into
   ``blobs/<etag>.incomplete`` in the Hub cache. That partial file is ours and stays
   when the download is cancelled, the connection drops for good or the app dies, so
   the next pull sends ``Range: bytes=<size on disk>-`` and fetches only the rest.
   (``hf_hub_download`` itself deletes its partial file on any failure, which is why
   the bytes are fetched with ``http_get`` directly.)
3. The file is hashed (SHA-256, streamed) and compared with the catalog's ``sha256``,
   else the Hub's LFS SHA-256. A mismatch deletes the bytes and marks the model
   ``damaged``: it is never loaded. A match moves the file to ``blobs/<etag>``.
4. ``hf_hub_download`` then links the blob into ``snapshots/<commit>/<filename>`` and
   records ``refs/<revision>``, exactly as for any other cached file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from desktop_app import catalog as cat
from desktop_app import paths
from desktop_app.catalog import FileSource, HubSource, ModelEntry, PackageSource

HASH_CHUNK = 4 * 1024 * 1024
# huggingface_hub streams in 10 MB pieces by default; smaller pieces keep the progress
# bar lively and make cancel take effect within about a megabyte.
DOWNLOAD_CHUNK = 1024 * 1024
_SHA256 = re.compile(r"[0-9a-f]{64}")
_PROGRESS_INTERVAL = 0.1  # seconds between progress reports


class DownloadError(Exception):
    """Something the user must know about a download, phrased as one sentence."""


class DownloadCancelled(DownloadError):
    """The user cancelled; whatever was downloaded is kept for the next pull."""


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report. ``phase`` is ``connecting``, ``downloading`` or ``verifying``."""

    model_id: str
    phase: str
    done: int = 0
    total: int | None = None
    speed: float = 0.0  # bytes per second, recent average
    eta: float | None = None  # seconds
    resumed_from: int = 0

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def describe(self) -> str:
        """E.g. ``downloading 42% at 12.3 MB/s, 8 s left``."""
        if self.phase == "connecting":
            return "connecting…"
        pct = f"{100 * self.fraction:.0f}%" if self.fraction is not None else format_size(self.done)
        if self.phase == "verifying":
            return f"verifying {pct}"
        text = f"downloading {pct} at {self.speed / 1e6:.1f} MB/s"
        if self.eta is not None:
            text += f", {format_duration(self.eta)} left"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "event": "progress",
            "model": self.model_id,
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "speed": round(self.speed, 1),
            "eta": None if self.eta is None else round(self.eta, 1),
            "resumed_from": self.resumed_from,
        }


ProgressCallback = Callable[[DownloadProgress], None]


class HubFile(NamedTuple):
    """A GGUF file in a Hub repo, as listed by :func:`list_repo_ggufs`."""

    filename: str
    size: int | None
    sha256: str | None


# --------------------------------------------------------------------------- helpers


def format_size(num_bytes: float | None) -> str:
    if num_bytes is None:
        return "unknown size"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{int(num_bytes)} bytes"


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def hub_endpoint() -> str:
    """The Hub to talk to: ``HF_ENDPOINT`` as set now, else huggingface_hub's default."""
    from huggingface_hub import constants

    return (os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` is set (now, or when huggingface_hub was imported)."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return _truthy(env) or constants.is_offline_mode()
    return constants.is_offline_mode()


def hub_cache_dir() -> Path:
    """The Hub cache, from the environment as it is now."""
    return cat.hub_cache_dir()


def _storage_folder(source: HubSource) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return hub_cache_dir() / repo_folder_name(repo_id=source.repo, repo_type="model")


def _token_available(token: str | None) -> bool:
    if token:
        return True
    try:
        from huggingface_hub import get_token

        return get_token() is not None
    except Exception:  # pragma: no cover - defensive
        return False


def sha256_file(
    path: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """SHA-256 of a file, streamed; ``progress(done, total)`` is called as it goes."""
    digest = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    last = 0.0
    with path.open("rb") as handle:
        while chunk := handle.read(HASH_CHUNK):
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(f"Checking {path.name} was cancelled.")
            digest.update(chunk)
            done += len(chunk)
            now = time.monotonic()
            if progress is not None and (now - last >= _PROGRESS_INTERVAL or done == total):
                last = now
                progress(done, total)
    return digest.hexdigest()


def check_disk_space(needed: int, directory: Path, what: str = "this download") -> None:
    """Raise :class:`DownloadError` if ``directory`` (or its nearest existing parent) lacks room."""
    probe = Path(directory)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell; the write itself will say so
    if free < needed:
        raise DownloadError(
            f"Not enough disk space for {what}: it needs {format_size(needed)} free in "
            f"{probe}, but only {format_size(free)} is free."
        )


def partial_bytes(entry: ModelEntry) -> int:
    """How many bytes of an interrupted download are on disk (0 if none)."""
    partial = cat.read_states().get(entry.id, {}).get("partial")
    if partial:
        with contextlib.suppress(OSError):
            return Path(partial).stat().st_size
    return 0


def expected_sha256(entry: ModelEntry) -> str | None:
    """The checksum a file must have: the catalog's, else the Hub's LFS SHA-256 if known."""
    if entry.source.sha256:
        return entry.source.sha256.lower()
    state = cat.read_states().get(entry.id, {})
    hub_sha = state.get("hub_sha256")
    if isinstance(hub_sha, str) and _SHA256.fullmatch(hub_sha):
        return hub_sha
    if isinstance(entry.source, HubSource):
        path = cat.local_path(entry)
        if path is not None:
            # In the Hub cache, an LFS file's blob is named after its SHA-256.
            blob_name = path.resolve().name
            if _SHA256.fullmatch(blob_name):
                return blob_name
    return None


# ------------------------------------------------------------------------ errors


def _network_error_types() -> tuple[type[BaseException], ...]:
    types: list[type[BaseException]] = [ConnectionError, TimeoutError]
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        types.extend(
            getattr(module, name)
            for name in ("TransportError", "TimeoutException", "NetworkError")
            if hasattr(module, name)
        )
    return tuple(types)


def _explain(exc: BaseException, entry: ModelEntry, token: str | None) -> DownloadError:
    """Turn whatever huggingface_hub raised into one sentence."""
    from huggingface_hub import errors

    source = entry.source
    assert isinstance(source, HubSource)
    where = f"{source.repo}"
    model = f"'{entry.id}'"
    if isinstance(exc, DownloadError):
        return exc
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return DownloadError(
            f"Cannot download {model}: Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set)."
        )
    if isinstance(exc, errors.GatedRepoError):
        url = f"{hub_endpoint()}/{source.repo}"
        if _token_available(token):
            return DownloadError(
                f"Cannot download {model}: {where} is a gated repository and your Hugging Face token "
                f"has not been granted access; accept its terms at {url} and try again."
            )
        return DownloadError(
            f"Cannot download {model}: {where} is a gated repository; accept its terms at {url} "
            f"and set HF_TOKEN (or run 'hf auth login') to a token that has access."
        )
    if isinstance(exc, errors.RepositoryNotFoundError):
        if _token_available(token):
            return DownloadError(
                f"Cannot download {model}: the repository {where} does not exist or your "
                f"Hugging Face token cannot see it."
            )
        return DownloadError(
            f"Cannot download {model}: the repository {where} does not exist, or it is private "
            f"or gated and needs HF_TOKEN to be set."
        )
    if isinstance(exc, errors.RevisionNotFoundError):
        return DownloadError(
            f"Cannot download {model}: {where} has no revision '{source.revision}'."
        )
    if isinstance(exc, errors.RemoteEntryNotFoundError | errors.EntryNotFoundError):
        return DownloadError(
            f"Cannot download {model}: {where} has no file '{source.filename}' "
            f"(revision '{source.revision}')."
        )
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return DownloadError(
                f"Cannot download {model}: the Hub rejected your Hugging Face token (HF_TOKEN); "
                f"check that it is valid."
            )
        if status == 403:
            return DownloadError(
                f"Cannot download {model}: the Hub refused access to {where}; "
                f"check that your token has read permission."
            )
        if status == 416:
            return DownloadError(
                f"Cannot download {model}: the Hub refused to resume the partial download; "
                f"run the pull again to start over."
            )
        return DownloadError(f"Cannot download {model}: the Hub answered with HTTP error {status}.")
    if isinstance(exc, _network_error_types()):
        return DownloadError(
            f"Cannot download {model}: the Hugging Face Hub ({hub_endpoint()}) cannot be reached; "
            f"check your network connection (whatever was downloaded is kept for next time)."
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DownloadError(f"Cannot download {model}: the disk is full.")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return DownloadError(
            f"Cannot download {model}: the connection ended before the whole file arrived; "
            f"run the pull again to resume."
        )
    if isinstance(exc, OSError) and exc.strerror:
        return DownloadError(f"Cannot download {model}: {exc.strerror}.")
    return DownloadError(f"Cannot download {model}: {type(exc).__name__}: {exc}".rstrip(".") + ".")


# ------------------------------------------------------------------ progress hook


def _make_tqdm_class(
    model_id: str, report: ProgressCallback | None, cancel: threading.Event | None
) -> type:
    """A tqdm-compatible class for ``http_get`` that reports bytes and honours cancel.

    ``http_get`` calls ``update(n)`` for every chunk *before* writing it, so raising
    here stops the transfer with the partial file intact.
    """

    class _Reporter:
        def __init__(self, *args: Any, total: int | None = None, initial: int = 0, **kwargs: Any):
            self.total = total
            self.n = initial
            self.initial = initial
            self._start = time.monotonic()
            self._last = 0.0
            self._window: list[tuple[float, int]] = [(self._start, initial)]
            self._emit(force=True)

        def __enter__(self) -> _Reporter:
            return self

        def __exit__(self, *exc: object) -> None:
            self.close()

        def close(self) -> None:
            pass

        def update(self, n: int = 1) -> None:
            self.n += n
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(f"The download of '{model_id}' was cancelled.")
            self._emit()

        def _emit(self, force: bool = False) -> None:
            if report is None:
                return
            now = time.monotonic()
            if not force and now - self._last < _PROGRESS_INTERVAL and self.n != self.total:
                return
            self._last = now
            self._window.append((now, self.n))
            while len(self._window) > 2 and now - self._window[0][0] > 5.0:
                self._window.pop(0)
            t0, n0 = self._window[0]
            speed = (self.n - n0) / (now - t0) if now > t0 else 0.0
            eta = (self.total - self.n) / speed if self.total and speed > 0 else None
            report(
                DownloadProgress(
                    model_id, "downloading", self.n, self.total, speed, eta, self.initial
                )
            )
            if cancel is not None and cancel.is_set():
                raise DownloadCancelled(f"The download of '{model_id}' was cancelled.")

    return _Reporter


# ------------------------------------------------------------------------- pull


def _record(entry: ModelEntry, **state: Any) -> None:
    cat.write_state(entry.id, **{k: v for k, v in state.items() if v is not None})


def _already_here(entry: ModelEntry, report: ProgressCallback | None,
                  cancel: threading.Event | None) -> Path | None:
    """The local file if it is present and (now) verified; None if it must be fetched."""
    state = cat.read_states().get(entry.id, {})
    if state.get("state") == "damaged":
        return None
    path = cat.local_path(entry)
    if path is None:
        return None
    if state.get("state") == "ready" and state.get("sha256"):
        return path
    if verify(entry, progress=report, cancel=cancel):
        return path
    return None


def _forget_cached_copy(entry: ModelEntry) -> None:
    """Delete a damaged copy from the Hub cache so it is fetched afresh."""
    source = entry.source
    assert isinstance(source, HubSource)
    path = cat.hub_cached_path(source)
    if path is None:
        return
    blob = path.resolve()
    with contextlib.suppress(OSError):
        path.unlink()
    if blob != path:
        with contextlib.suppress(OSError):
            blob.unlink()


def pull(
    entry: ModelEntry,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    token: str | None = None,
) -> Path:
    """Make the model's file available locally and verified; return its path.

    Blocking; call it from a worker thread. Raises :class:`DownloadCancelled` if
    ``cancel`` is set (the partial file is kept and the next pull resumes it) and
    :class:`DownloadError` with a one-sentence message for everything else.
    """
    source = entry.source
    if not isinstance(source, HubSource):
        state = cat.availability(entry)
        if state == "ready":
            try:
                return cat.ensure_local(entry)
            except cat.CatalogError as exc:
                raise DownloadError(str(exc)) from None
        if state == "damaged":
            raise DownloadError(
                f"Model '{entry.id}' is damaged (its checksum did not match) and does not come "
                f"from the Hub; import the file again."
            )
        raise DownloadError(cat.missing_message(entry, state))

    here = _already_here(entry, progress, cancel)
    if here is not None:
        return here

    if is_offline():
        raise DownloadError(
            f"Cannot download '{entry.id}': Hugging Face Hub access is switched off "
            f"(HF_HUB_OFFLINE is set)."
        )
    if cat.read_states().get(entry.id, {}).get("state") == "damaged":
        _forget_cached_copy(entry)
    try:
        return _pull_from_hub(entry, source, progress, cancel, token)
    except DownloadError:
        raise
    except Exception as exc:  # noqa: BLE001 - every failure becomes one sentence
        raise _explain(exc, entry, token) from exc


def _pull_from_hub(
    entry: ModelEntry,
    source: HubSource,
    report: ProgressCallback | None,
    cancel: threading.Event | None,
    token: str | None,
) -> Path:
    from huggingface_hub import constants, get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import WeakFileLock, build_hf_headers

    endpoint = hub_endpoint()
    cache_dir = hub_cache_dir()
    if report:
        report(DownloadProgress(entry.id, "connecting"))

    url = hf_hub_url(source.repo, source.filename, revision=source.revision, endpoint=endpoint)
    meta = get_hf_file_metadata(url, token=token, endpoint=endpoint)
    if meta.commit_hash is None or meta.etag is None:
        raise DownloadError(
            f"Cannot download '{entry.id}': {endpoint} does not answer like a Hugging Face Hub "
            f"(no commit or ETag); check HF_ENDPOINT."
        )
    etag = meta.etag
    size = meta.size if meta.size is not None else source.size
    hub_sha = etag if _SHA256.fullmatch(etag) else None
    expected = source.sha256 or hub_sha

    storage = _storage_folder(source)
    blob = storage / "blobs" / etag
    partial = storage / "blobs" / f"{etag}.incomplete"
    lock_path = cache_dir / ".locks" / storage.name / f"{etag}.triptych.lock"
    blob.parent.mkdir(parents=True, exist_ok=True)
    lock_path.parent.mkdir(parents=True, exist_ok=True)

    try:
        lock_cm = WeakFileLock(lock_path, timeout=0.5)
        lock = lock_cm.__enter__()
    except Exception:  # filelock.Timeout
        raise DownloadError(
            f"'{entry.id}' is already being downloaded by another Triptych window or command."
        ) from None
    try:
        del lock
        if not blob.exists():
            have = partial.stat().st_size if partial.exists() else 0
            if size is not None and have > size:
                partial.unlink()
                have = 0
            if size is not None:
                check_disk_space(size - have, blob.parent, f"'{entry.id}' ({format_size(size)})")
            stale = cat.read_states().get(entry.id, {}).get("partial")
            if stale and Path(stale) != partial:
                # A partial download of an older version of the file: useless now.
                with contextlib.suppress(OSError):
                    Path(stale).unlink()
            _record(entry, state="partial", partial=str(partial), hub_sha256=hub_sha, size=size)

            headers = build_hf_headers(token=token)
            location = meta.location or url
            if not _same_origin(url, location):
                headers.pop("authorization", None)  # signed CDN URL: the token stays on the Hub
            previous_chunk = constants.DOWNLOAD_CHUNK_SIZE
            constants.DOWNLOAD_CHUNK_SIZE = min(previous_chunk, DOWNLOAD_CHUNK)
            try:
                with partial.open("ab") as handle:
                    http_get(
                        location,
                        handle,
                        resume_size=have,
                        headers=headers,
                        expected_size=size,
                        tqdm_class=_make_tqdm_class(entry.id, report, cancel),
                    )
            finally:
                constants.DOWNLOAD_CHUNK_SIZE = previous_chunk
            source_file = partial
        else:
            source_file = blob

        digest = sha256_file(
            source_file,
            progress=_verify_reporter(entry.id, report),
            cancel=cancel,
        )
        if expected and digest != expected:
            with contextlib.suppress(OSError):
                source_file.unlink()
            _record(entry, state="damaged", sha256=digest, expected_sha256=expected,
                    hub_sha256=hub_sha)
            raise DownloadError(
                f"The download of '{entry.id}' is damaged: its SHA-256 is {digest[:12]}… but "
                f"{'the catalog' if source.sha256 else 'the Hub'} says {expected[:12]}…, "
                f"so it will not be loaded; the bad copy was deleted."
            )
        if source_file is partial:
            os.replace(partial, blob)
    finally:
        lock_cm.__exit__(None, None, None)

    # Let huggingface_hub record refs/<revision> and link snapshots/<commit>/<filename>.
    pointer = Path(
        hf_hub_download(
            source.repo,
            source.filename,
            revision=source.revision,
            cache_dir=cache_dir,
            endpoint=endpoint,
            token=token,
        )
    )
    _record(entry, state="ready", path=str(pointer), sha256=digest,
            verified=bool(expected), hub_sha256=hub_sha, size=blob.stat().st_size)
    return pointer


def _same_origin(a: str, b: str) -> bool:
    from urllib.parse import urlsplit

    pa, pb = urlsplit(a), urlsplit(b)
    return (pa.scheme, pa.hostname, pa.port) == (pb.scheme, pb.hostname, pb.port)


def _verify_reporter(model_id: str, report: ProgressCallback | None) -> Callable[[int, int], None] | None:
    if report is None:
        return None
    return lambda done, total: report(DownloadProgress(model_id, "verifying", done, total))


# ------------------------------------------------------------ verify / remove


def verify(
    entry: ModelEntry,
    *,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> bool:
    """Hash the local file and compare with the known checksum; record ready/damaged.

    With no known checksum the file's GGUF header is checked and its SHA-256 recorded.
    Raises :class:`DownloadError` if there is no local file to check.
    """
    path = cat.local_path(entry)
    if path is None:
        state = cat.availability(entry)
        raise DownloadError(cat.missing_message(entry, "not-downloaded" if state == "damaged" else state))
    expected = expected_sha256(entry)
    digest = sha256_file(path, progress=_verify_reporter(entry.id, progress), cancel=cancel)
    ok = digest == expected if expected else _looks_like_gguf(path)
    previous = cat.read_states().get(entry.id, {})
    keep = {k: previous.get(k) for k in ("hub_sha256",)}
    if ok:
        _record(entry, state="ready", path=str(path), sha256=digest, verified=bool(expected),
                size=path.stat().st_size, **keep)
    else:
        _record(entry, state="damaged", sha256=digest, expected_sha256=expected, **keep)
    return ok


def _looks_like_gguf(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"GGUF"
    except OSError:
        return False


def remove(entry: ModelEntry) -> list[Path]:
    """Delete a model's downloaded file (and any partial download); return what was deleted.

    Imported files are left where they are; their catalog entry is removed instead.
    Models shipped in a Python package cannot be removed here.
    """
    removed: list[Path] = []
    source = entry.source
    state = cat.read_states().get(entry.id, {})
    if isinstance(source, PackageSource):
        if source.assemble:
            target = cat.assembled_path(entry)
            if target.exists():
                target.unlink()
                removed.append(target)
                cat.write_state(entry.id)
                return removed
        raise DownloadError(
            f"Model '{entry.id}' ships in the Python package '{source.package}'; "
            f"remove it with: pip uninstall {source.package}"
        )
    if isinstance(source, FileSource):
        if not _remove_user_catalog_entry(entry.id):
            raise DownloadError(
                f"Model '{entry.id}' is a file on this computer listed in {entry.origin}; "
                f"edit that catalog to remove it."
            )
        cat.write_state(entry.id)
        return removed
    partial = state.get("partial")
    if partial and Path(partial).exists():
        Path(partial).unlink()
        removed.append(Path(partial))
    pointer = cat.hub_cached_path(source)
    recorded = state.get("path")
    candidates = [p for p in (pointer, Path(recorded) if recorded else None) if p is not None]
    for link in candidates:
        if not (link.exists() or link.is_symlink()):
            continue
        blob = link.resolve()
        link.unlink()
        removed.append(link)
        if blob != link and blob.exists() and not _blob_still_linked(blob):
            blob.unlink()
            removed.append(blob)
    cat.write_state(entry.id)
    if not removed and not state:
        raise DownloadError(f"Model '{entry.id}' is not downloaded; there is nothing to remove.")
    return removed


def _blob_still_linked(blob: Path) -> bool:
    snapshots = blob.parent.parent / "snapshots"
    if not snapshots.is_dir():
        return False
    for link in snapshots.rglob("*"):
        if link.is_symlink():
            with contextlib.suppress(OSError):
                if link.resolve() == blob:
                    return True
    return False


# ------------------------------------------------------------------ user catalog


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)  # a JSON string is a TOML basic string


def _model_table(fields: dict[str, Any], source: dict[str, Any]) -> str:
    lines = ["", "[[model]]"]
    lines += [f"{key} = {_toml_value(val)}" for key, val in fields.items() if val not in (None, "")]
    lines += ["", "[model.source]"]
    lines += [f"{key} = {_toml_value(val)}" for key, val in source.items() if val is not None]
    return "\n".join(lines) + "\n"


def _append_user_catalog(table: str) -> Path:
    target = paths.user_catalog_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    existing = target.read_text(encoding="utf-8") if target.exists() else (
        "# Your own models. Triptych adds [[model]] tables here when you import a file or\n"
        "# add a model from the Hugging Face Hub; you may edit it by hand.\n"
    )
    tmp = target.with_suffix(".toml.tmp")
    tmp.write_text(existing.rstrip("\n") + "\n" + table, encoding="utf-8")
    tmp.replace(target)
    return target


def _remove_user_catalog_entry(model_id: str) -> bool:
    """Drop the ``[[model]]`` table with this id from the user catalog. True if found."""
    target = paths.user_catalog_path()
    if not target.exists():
        return False
    text = target.read_text(encoding="utf-8")
    pieces = re.split(r"(?m)^(?=\[\[model\]\]\s*$)", text)
    keep = [p for p in pieces if not re.search(rf'(?m)^id\s*=\s*"{re.escape(model_id)}"\s*$', p)
            or not p.startswith("[[model]]")]
    if len(keep) == len(pieces):
        return False
    target.write_text("".join(keep), encoding="utf-8")
    return True


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-").lower()
    return slug or "model"


def _unique_id(base: str) -> str:
    existing = set(cat.load_catalog().entries)
    candidate, n = base, 2
    while candidate in existing:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


_QUANT = re.compile(r"(?i)(?:^|[-_.])((?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32)(?=[-_.]|$)")


def guess_quantization(filename: str) -> str:
    """``model-Q4_K_M.gguf`` -> ``Q4_K_M``."""
    match = _QUANT.search(Path(filename).stem)
    return match.group(1).upper() if match else ""


def _reload_entry(model_id: str) -> ModelEntry:
    catalog = cat.load_catalog()
    if model_id not in catalog:
        problems = " ".join(p for p in catalog.problems if model_id in p)
        raise DownloadError(problems or f"Could not add '{model_id}' to {paths.user_catalog_path()}.")
    return catalog.get(model_id)


def import_model(path: str | os.PathLike[str], role: str, name: str | None = None) -> ModelEntry:
    """Add a GGUF file on this computer to the user catalog (the file is not copied)."""
    file = Path(path).expanduser()
    if role not in cat.ROLES:
        raise DownloadError(f"Role '{role}' is not one of {', '.join(cat.ROLES)}.")
    if not file.is_file():
        raise DownloadError(f"Cannot import {file}: there is no such file.")
    if not _looks_like_gguf(file):
        raise DownloadError(f"Cannot import {file}: it is not a GGUF model file.")
    file = file.resolve()
    model_id = _unique_id(_slug(name or file.stem))
    fields = {
        "id": model_id,
        "name": name or file.stem,
        "role": role,
        "quantization": guess_quantization(file.name),
        "license": "unknown",
        "description": f"Imported from {file}.",
    }
    _append_user_catalog(_model_table(fields, {"path": str(file), "size": file.stat().st_size}))
    cat.write_state(model_id)
    return _reload_entry(model_id)


def add_hub_model(
    repo_id: str,
    filename: str,
    role: str,
    *,
    name: str | None = None,
    revision: str = "main",
    size: int | None = None,
    sha256: str | None = None,
) -> ModelEntry:
    """Add a Hub GGUF file to the user catalog (not downloaded yet)."""
    if role not in cat.ROLES:
        raise DownloadError(f"Role '{role}' is not one of {', '.join(cat.ROLES)}.")
    if repo_id.count("/") != 1:
        raise DownloadError(f"'{repo_id}' is not a Hub repository id (it should look like owner/name).")
    label = name or f"{repo_id.split('/')[1]} {guess_quantization(filename)}".strip()
    model_id = _unique_id(_slug(name or Path(filename).stem))
    fields = {
        "id": model_id,
        "name": label,
        "role": role,
        "family": repo_id.split("/")[1],
        "quantization": guess_quantization(filename),
        "license": "unknown",
        "description": f"Added from the Hugging Face Hub: {repo_id}/{filename}.",
    }
    source = {"repo": repo_id, "filename": filename, "revision": revision,
              "size": size if size and size > 0 else None,
              "sha256": sha256 if sha256 and _SHA256.fullmatch(sha256) else None}
    _append_user_catalog(_model_table(fields, source))
    return _reload_entry(model_id)


def list_repo_ggufs(repo_id: str, revision: str = "main", *, token: str | None = None) -> list[HubFile]:
    """The GGUF files of a Hub repo with their sizes and LFS SHA-256, largest last."""
    from huggingface_hub import HfApi

    if is_offline():
        raise DownloadError(
            "Cannot list the files of a Hub repository: Hugging Face Hub access is switched off "
            "(HF_HUB_OFFLINE is set)."
        )
    if repo_id.count("/") != 1:
        raise DownloadError(f"'{repo_id}' is not a Hub repository id (it should look like owner/name).")
    fake = ModelEntry(id=repo_id, name=repo_id, role="base", family="",
                      source=HubSource(repo=repo_id, filename="*.gguf", revision=revision),
                      prompt=cat.PromptStyle(style="document"))
    try:
        info = HfApi(endpoint=hub_endpoint()).model_info(
            repo_id, revision=revision, files_metadata=True, token=token
        )
    except Exception as exc:  # noqa: BLE001
        error = _explain(exc, fake, token)
        raise DownloadError(str(error).replace(f"Cannot download '{repo_id}'", f"Cannot list {repo_id}")) from exc
    files = [
        HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None)
        for s in (info.siblings or [])
        if s.rfilename.lower().endswith(".gguf")
    ]
    return sorted(files, key=lambda f: (f.size or 0, f.filename))


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub answers at all (any HTTP status counts). Blocking: call off the GUI thread."""
    if is_offline():
        return False
    try:
        from huggingface_hub.utils import get_session

        get_session().head(f"{hub_endpoint()}/api/models", timeout=timeout)
    except Exception:  # noqa: BLE001 - any failure means "not reachable"
        return False
    return True
