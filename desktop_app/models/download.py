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
import dataclasses
import hashlib
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from desktop_app import paths
from desktop_app.models import catalog as cat
from desktop_app.models import sources, user_catalog
from desktop_app.models.catalog import Availability, ModelEntry
from desktop_app.models.gguf import has_magic
from desktop_app.models.hub import (
    SHA256_HEX,
    DownloadCancelled,
    DownloadError,
    explain,
    hub_endpoint,
    is_offline,
)
from desktop_app.models.sources import FileSource, HubSource, PackageSource
from desktop_app.text.i18n import _, number
from desktop_app.text.units import format_bytes, format_duration

HASH_CHUNK = 4 * 1024 * 1024
# huggingface_hub streams in 10 MB pieces by default; smaller pieces keep the progress
# bar lively and make cancel take effect within about a megabyte.
DOWNLOAD_CHUNK = 1024 * 1024
_PROGRESS_INTERVAL = 0.1  # seconds between progress reports


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
            return _("connecting…")
        done = (_("{percent}%").format(percent=number(100 * self.fraction, 0))
                if self.fraction is not None else format_bytes(self.done))
        if self.phase == "verifying":
            return _("verifying {done}").format(done=done)
        if self.eta is None:
            return _("downloading {done} at {speed}/s").format(
                done=done, speed=format_bytes(self.speed))
        return _("downloading {done} at {speed}/s, {duration} left").format(
            done=done, speed=format_bytes(self.speed), duration=format_duration(self.eta))

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


# --------------------------------------------------------------------------- helpers


def format_size(num_bytes: float | None) -> str:
    """:func:`~desktop_app.text.units.format_bytes`, or "unknown size" for None."""
    return "unknown size" if num_bytes is None else format_bytes(num_bytes)


def hub_cache_dir() -> Path:
    """The Hub cache, from the environment as it is now."""
    return cat.hub_cache_dir()


def _storage_folder(source: HubSource) -> Path:
    from huggingface_hub.file_download import repo_folder_name

    return hub_cache_dir() / repo_folder_name(repo_id=source.repo, repo_type="model")


def sha256_file(
    path: Path,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> str:
    """SHA-256 of a file, streamed; ``progress(done, total)`` is called as it goes."""
    with path.open("rb") as handle:
        return copy_hashing(handle, None, path.stat().st_size, progress=progress,
                            cancel=cancel, what=path.name)


def copy_hashing(
    source: IO[bytes],
    target: IO[bytes] | None,
    total: int,
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    what: str = "a file",
    limit: int | None = None,
) -> str:
    """SHA-256 of everything read from ``source``, streamed, written on to ``target`` when
    there is one (a lesson pack's GGUF going into or out of its archive: one pass, not a
    copy and then a hash). ``total`` is for ``progress(done, total)``; reading more than
    ``limit`` bytes stops with :class:`DownloadError` (an archive member larger than its
    manifest says is never written out whole)."""
    digest = hashlib.sha256()
    done = 0
    last = 0.0
    while chunk := source.read(HASH_CHUNK):
        if cancel is not None and cancel.is_set():
            raise DownloadCancelled(_("Checking {what} was cancelled.").format(what=what))
        done += len(chunk)
        if limit is not None and done > limit:
            raise DownloadError(_("{what} is larger than the {size} it should be.").format(
                what=what, size=format_bytes(limit)))
        digest.update(chunk)
        if target is not None:
            target.write(chunk)
        now = time.monotonic()
        if progress is not None and (now - last >= _PROGRESS_INTERVAL or done == total):
            last = now
            progress(done, total)
    return digest.hexdigest()


def check_disk_space(needed: int, directory: Path, what: str | None = None) -> None:
    """Raise :class:`DownloadError` if ``directory`` (or its nearest existing parent) lacks room."""
    probe = Path(directory)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        free = shutil.disk_usage(probe).free
    except OSError:
        return  # cannot tell; the write itself will say so
    if free < needed:
        raise DownloadError(_(
            "Not enough disk space for {what}: it needs {needed} free in {folder}, but only "
            "{free} is free.").format(what=what or _("this download"),
                                      needed=format_bytes(needed), folder=probe,
                                      free=format_bytes(free)))


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
    if isinstance(hub_sha, str) and SHA256_HEX.fullmatch(hub_sha):
        return hub_sha
    if isinstance(entry.source, HubSource):
        path = cat.local_path(entry)
        if path is not None:
            # In the Hub cache, an LFS file's blob is named after its SHA-256.
            blob_name = path.resolve().name
            if SHA256_HEX.fullmatch(blob_name):
                return blob_name
    return None

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
                raise DownloadCancelled(_("The download of '{model}' was cancelled.").format(
                    model=model_id))
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
            # No cancel check after reporting: the bytes just reported are written next,
            # so what the window showed is on disk to resume (update checks before).
            report(
                DownloadProgress(
                    model_id, "downloading", self.n, self.total, speed, eta, self.initial
                )
            )

    return _Reporter


# ------------------------------------------------------------------------- pull


def _record(entry: ModelEntry, **state: Any) -> None:
    cat.write_state(entry.id, **{k: v for k, v in state.items() if v is not None})


def _already_here(entry: ModelEntry, report: ProgressCallback | None,
                  cancel: threading.Event | None) -> Path | None:
    """The local file if it is present and (now) verified; None if it must be fetched."""
    state = cat.read_states().get(entry.id, {})
    if state.get("state") == Availability.DAMAGED:
        return None
    path = cat.local_path(entry)
    if path is None:
        return None
    if state.get("state") == Availability.READY and state.get("sha256"):
        return path
    if _verify_file(entry, report, cancel):
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
        if state == Availability.READY:
            try:
                return cat.ensure_local(entry)
            except sources.CatalogError as exc:
                raise DownloadError(str(exc)) from None
        if state == Availability.DAMAGED:
            raise DownloadError(_(
                "Model '{model}' is damaged (its checksum did not match) and does not come "
                "from the Hub; import the file again.").format(model=entry.id)
            )
        raise DownloadError(cat.missing_message(entry, state))
    # A split GGUF: the further parts first, so the first file, which llama.cpp opens,
    # is recorded ready only when everything beside it is there.
    for part in _parts(entry):
        _pull_file(part, progress, cancel, token)
    return _pull_file(entry, progress, cancel, token)


def _parts(entry: ModelEntry) -> list[ModelEntry]:
    """A split GGUF's further parts, each an entry of its own (own state, own checksum)."""
    source = entry.source
    if not isinstance(source, HubSource) or not source.parts:
        return []
    count = len(source.parts) + 1
    return [dataclasses.replace(entry, id=f"{entry.id} (part {index} of {count})", source=part)
            for index, part in enumerate(source.part_sources(), start=2)]


def _pull_file(entry: ModelEntry, progress: ProgressCallback | None,
               cancel: threading.Event | None, token: str | None) -> Path:
    source = entry.source
    assert isinstance(source, HubSource)
    here = _already_here(entry, progress, cancel)
    if here is not None:
        return here

    if is_offline():
        raise DownloadError(_(
            "Cannot download '{model}': Hugging Face Hub access is switched off "
            "(HF_HUB_OFFLINE is set).").format(model=entry.id))
    if cat.read_states().get(entry.id, {}).get("state") == Availability.DAMAGED:
        _forget_cached_copy(entry)
    try:
        return _pull_from_hub(entry, source, progress, cancel, token)
    except DownloadError:
        raise
    except Exception as exc:  # every failure becomes one sentence
        raise explain(exc, entry, token) from exc


def _pull_from_hub(
    entry: ModelEntry,
    source: HubSource,
    report: ProgressCallback | None,
    cancel: threading.Event | None,
    token: str | None,
) -> Path:
    from filelock import Timeout
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
        raise DownloadError(_(
            "Cannot download '{model}': {endpoint} does not answer like a Hugging Face Hub "
            "(no commit or ETag); check HF_ENDPOINT.").format(model=entry.id, endpoint=endpoint))
    etag = meta.etag
    size = meta.size if meta.size is not None else source.size
    hub_sha = etag if SHA256_HEX.fullmatch(etag) else None
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
    except Timeout:
        raise DownloadError(_(
            "'{model}' is already being downloaded by another Triptych window or command."
        ).format(model=entry.id)) from None
    try:
        del lock
        if not blob.exists():
            have = partial.stat().st_size if partial.exists() else 0
            if size is not None and have > size:
                partial.unlink()
                have = 0
            if size is not None:
                check_disk_space(size - have, blob.parent, f"'{entry.id}' ({format_bytes(size)})")
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
            _record(entry, state=Availability.DAMAGED, sha256=digest, expected_sha256=expected,
                    hub_sha256=hub_sha)
            if source.sha256:
                sentence = _("The download of '{model}' is damaged: its SHA-256 is {digest}… "
                             "but the catalog says {expected}…, so it will not be loaded; the "
                             "bad copy was deleted.")
            else:
                sentence = _("The download of '{model}' is damaged: its SHA-256 is {digest}… "
                             "but the Hub says {expected}…, so it will not be loaded; the bad "
                             "copy was deleted.")
            raise DownloadError(sentence.format(model=entry.id, digest=digest[:12],
                                                expected=expected[:12]))
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
    _record(entry, state=Availability.READY, path=str(pointer), sha256=digest,
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
    """Hash the local file (every part of a split GGUF) and compare with the known
    checksum; record ready/damaged.

    With no known checksum the file's GGUF header is checked and its SHA-256 recorded.
    Raises :class:`DownloadError` if there is no local file to check.
    """
    parts = _parts(entry)
    if any(cat.local_path(part) is None for part in parts):
        raise DownloadError(cat.missing_message(entry, Availability.NOT_DOWNLOADED))
    results = [_verify_file(part, progress, cancel) for part in parts]
    return all([*results, _verify_file(entry, progress, cancel)])


def _verify_file(entry: ModelEntry, progress: ProgressCallback | None,
                 cancel: threading.Event | None) -> bool:
    path = cat.local_path(entry)
    if path is None:
        state = cat.availability(entry)
        raise DownloadError(cat.missing_message(
            entry, Availability.NOT_DOWNLOADED if state == Availability.DAMAGED else state))
    expected = expected_sha256(entry)
    digest = sha256_file(path, progress=_verify_reporter(entry.id, progress), cancel=cancel)
    ok = digest == expected if expected else has_magic(path)
    previous = cat.read_states().get(entry.id, {})
    keep = {k: previous.get(k) for k in ("hub_sha256",)}
    if ok:
        _record(entry, state=Availability.READY, path=str(path), sha256=digest, verified=bool(expected),
                size=path.stat().st_size, **keep)
    else:
        _record(entry, state=Availability.DAMAGED, sha256=digest, expected_sha256=expected, **keep)
    return ok


def remove(entry: ModelEntry) -> list[Path]:
    """Delete a model's downloaded file (and any partial download); return what was deleted.

    Imported files are left where they are; their catalog entry is removed instead (a
    lesson pack's copy, in its own folder under the models folder, is deleted with it).
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
        raise DownloadError(_(
            "Model '{model}' ships in the Python package '{package}'; remove it with: pip "
            "uninstall {package}").format(model=entry.id, package=source.package))
    if isinstance(source, FileSource):
        if not user_catalog.remove_model(entry.id):
            raise DownloadError(_(
                "Model '{model}' is a file on this computer listed in {catalog}; edit that "
                "catalog to remove it.").format(model=entry.id, catalog=entry.origin))
        cat.write_state(entry.id)
        folder = Path(source.path).expanduser().parent
        if folder.parent == paths.lesson_models_dir() and folder.is_dir():
            shutil.rmtree(folder)  # a lesson pack's copy is ours: it goes with its entry
            removed.append(folder)
        return removed
    had_state = bool(state) or any(cat.read_states().get(part.id) for part in _parts(entry))
    for part in _parts(entry):
        removed += _remove_hub_file(part)
    removed += _remove_hub_file(entry)
    if not removed and not had_state:
        raise DownloadError(_("Model '{model}' is not downloaded; there is nothing to "
                              "remove.").format(model=entry.id))
    return removed


def _remove_hub_file(entry: ModelEntry) -> list[Path]:
    source = entry.source
    assert isinstance(source, HubSource)
    removed: list[Path] = []
    state = cat.read_states().get(entry.id, {})
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
