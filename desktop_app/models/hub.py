"""Talking to the Hugging Face Hub: where it is, whether it may be used, what a repo
holds, and every Hub failure as one sentence.

No Qt here. The endpoint, token and offline switch are read from the environment when a
call is made (not at import), so ``HF_ENDPOINT``, ``HF_TOKEN`` and ``HF_HUB_OFFLINE`` set
by a test or the settings apply at once.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path
from typing import NamedTuple

from desktop_app.models import catalog as cat
from desktop_app.models import sources
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.sources import HubSource
from desktop_app.text.i18n import _

SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class DownloadError(Exception):
    """Something the user must know about getting a model file, phrased as one sentence."""


class DownloadCancelled(DownloadError):
    """The user cancelled; whatever was downloaded is kept for the next pull."""


class HubFile(NamedTuple):
    """A GGUF file in a Hub repo, as listed by :func:`list_repo_ggufs`."""

    filename: str
    size: int | None
    sha256: str | None


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


def _token_available(token: str | None) -> bool:
    if token:
        return True
    try:
        from huggingface_hub import get_token

        return get_token() is not None
    except Exception:  # noqa: BLE001 - an unreadable token store means no token
        return False


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


def explain(exc: BaseException, entry: ModelEntry, token: str | None, *,
            listing: bool = False) -> DownloadError:
    """Turn whatever huggingface_hub raised while fetching *entry* (``listing``: while
    listing its repository's files) into one sentence."""
    if isinstance(exc, DownloadError):
        return exc
    source = entry.source
    assert isinstance(source, HubSource)
    reason = _reason(exc, source, token)
    if listing:
        return DownloadError(_("Cannot list {repo}: {reason}").format(repo=entry.id,
                                                                       reason=reason))
    return DownloadError(_("Cannot download '{model}': {reason}").format(model=entry.id,
                                                                         reason=reason))


def _reason(exc: BaseException, source: HubSource, token: str | None) -> str:
    """Why a Hub request failed: the end of a sentence that begins "Cannot download …: "."""
    from huggingface_hub import errors

    where = source.repo
    if isinstance(exc, errors.OfflineModeIsEnabled):
        return _("Hugging Face Hub access is switched off (HF_HUB_OFFLINE is set).")
    if isinstance(exc, errors.GatedRepoError):
        url = f"{hub_endpoint()}/{source.repo}"
        if _token_available(token):
            return _("{repo} is a gated repository and your Hugging Face token has not been "
                     "granted access; accept its terms at {url} and try again.").format(
                repo=where, url=url)
        return _("{repo} is a gated repository; accept its terms at {url} and set HF_TOKEN "
                 "(or run 'hf auth login') to a token that has access.").format(
            repo=where, url=url)
    if isinstance(exc, errors.RepositoryNotFoundError):
        if _token_available(token):
            return _("the repository {repo} does not exist or your Hugging Face token cannot "
                     "see it.").format(repo=where)
        return _("the repository {repo} does not exist, or it is private or gated and needs "
                 "HF_TOKEN to be set.").format(repo=where)
    if isinstance(exc, errors.RevisionNotFoundError):
        return _("{repo} has no revision '{revision}'.").format(repo=where,
                                                                revision=source.revision)
    if isinstance(exc, errors.RemoteEntryNotFoundError | errors.EntryNotFoundError):
        return _("{repo} has no file '{file}' (revision '{revision}').").format(
            repo=where, file=source.filename, revision=source.revision)
    if isinstance(exc, errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return _("the Hub rejected your Hugging Face token (HF_TOKEN); check that it is "
                     "valid.")
        if status == 403:
            return _("the Hub refused access to {repo}; check that your token has read "
                     "permission.").format(repo=where)
        if status == 416:
            return _("the Hub refused to resume the partial download; run the pull again to "
                     "start over.")
        return _("the Hub answered with HTTP error {status}.").format(status=status)
    if isinstance(exc, _network_error_types()):
        return _("the Hugging Face Hub ({endpoint}) cannot be reached; check your network "
                 "connection (whatever was downloaded is kept for next time).").format(
            endpoint=hub_endpoint())
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return _("the disk is full.")
    if isinstance(exc, OSError) and "Consistency check failed" in str(exc):
        return _("the connection ended before the whole file arrived; run the pull again to "
                 "resume.")
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}."  # the OS's own words
    return f"{type(exc).__name__}: {exc}".rstrip(".") + "."


_QUANT = re.compile(
    r"(?i)(?:^|[-_.])((?:UD-)?(?:I?Q\d(?:_[A-Z0-9]+)*)|F16|BF16|F32|MXFP4(?:_MOE)?)(?=[-_.]|$)"
)


def guess_quantization(filename: str) -> str:
    """``model-Q4_K_M.gguf`` -> ``Q4_K_M``."""
    match = _QUANT.search(Path(filename).stem)
    return match.group(1).upper() if match else ""


class RepoListing(NamedTuple):
    """A repo's GGUF files at one commit."""

    repo: str
    commit: str  # the 40-hex commit the listing was taken at
    files: list[HubFile]


def list_repo(repo_id: str, revision: str = "main", *, token: str | None = None) -> RepoListing:
    """The GGUF files of a Hub repo with sizes and LFS SHA-256 (largest last), and the
    commit *revision* resolved to, so that what is added can be pinned to it."""
    from huggingface_hub import HfApi

    if is_offline():
        raise DownloadError(_(
            "Cannot list the files of a Hub repository: Hugging Face Hub access is switched "
            "off (HF_HUB_OFFLINE is set)."))
    if repo_id.count("/") != 1:
        raise DownloadError(_("'{repo}' is not a Hub repository id (it should look like "
                              "owner/name).").format(repo=repo_id))
    fake = ModelEntry(id=repo_id, name=repo_id, role="base", family="",
                      source=HubSource(repo=repo_id, filename="*.gguf", revision=revision),
                      prompt=cat.PromptStyle(style="document"))
    try:
        info = HfApi(endpoint=hub_endpoint()).model_info(
            repo_id, revision=revision, files_metadata=True, token=token
        )
    except Exception as exc:
        raise explain(exc, fake, token, listing=True) from exc
    files = [
        HubFile(s.rfilename, s.size, s.lfs.sha256 if s.lfs else None)
        for s in (info.siblings or [])
        if s.rfilename.lower().endswith(".gguf")
    ]
    commit = info.sha if isinstance(info.sha, str) and sources.COMMIT_HASH.fullmatch(info.sha) else revision
    return RepoListing(repo_id, commit, sorted(files, key=lambda f: (f.size or 0, f.filename)))


def list_repo_ggufs(repo_id: str, revision: str = "main", *, token: str | None = None) -> list[HubFile]:
    """The GGUF files of a Hub repo with their sizes and LFS SHA-256, largest last."""
    return list_repo(repo_id, revision, token=token).files


# ------------------------------------------------------- ORG/REPO:QUANT references

_REFERENCE = re.compile(
    r"(?:(?:https?://)?(?:www\.)?(?:hf\.co|huggingface\.co)/)?"
    r"(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)"
    r"(?::(?P<quant>[A-Za-z0-9._-]+))?/?"
)
_SPLIT = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$", re.IGNORECASE)


def parse_reference(text: str) -> tuple[str, str | None] | None:
    """``ORG/REPO:QUANT`` or ``hf.co/ORG/REPO:QUANT`` (the form llama.cpp's ``-hf`` and
    Ollama use) as ``(repo, quant or None)``; None when *text* is not such a reference."""
    match = _REFERENCE.fullmatch(text.strip())
    if match is None:
        return None
    return match.group("repo"), match.group("quant")


class GGUFChoice(NamedTuple):
    """One model in a repo: a single GGUF file, or the parts of a split one in order."""

    label: str  # its quantization, e.g. "Q4_K_M", else the file name
    parts: tuple[HubFile, ...]

    @property
    def size(self) -> int | None:
        sizes = [part.size for part in self.parts]
        return None if any(size is None for size in sizes) else sum(s for s in sizes if s)


def model_stem(filename: str) -> str:
    """``Q8_0/m-Q8_0-00001-of-00002.gguf`` -> ``m-Q8_0``: a model's name without folder,
    split numbering or extension."""
    name = Path(filename).name
    split = _SPLIT.search(name)
    return name[: split.start()] if split else name.removesuffix(".gguf").removesuffix(".GGUF")


def _is_projector(filename: str) -> bool:
    """Vision projectors ship beside the model as GGUFs too; they are not models."""
    return Path(filename).name.lower().startswith("mmproj")


def gguf_choices(files: list[HubFile]) -> list[GGUFChoice]:
    """The repo's models: split parts (``-00001-of-00003.gguf``) grouped, projectors left out.

    A split model whose parts are not all listed is left out (it could not be loaded).
    """
    groups: dict[str, dict[int, HubFile]] = {}
    expected: dict[str, int] = {}
    for file in files:
        if _is_projector(file.filename):
            continue
        split = _SPLIT.search(file.filename)
        key = file.filename[: split.start()] if split else file.filename
        groups.setdefault(key, {})[int(split.group(1)) if split else 1] = file
        expected[key] = int(split.group(2)) if split else 1
    choices = []
    for key, parts in groups.items():
        if sorted(parts) != list(range(1, expected[key] + 1)):
            continue
        label = guess_quantization(Path(key).name + ".gguf") or guess_quantization(
            Path(key).parent.name + ".gguf") or Path(key).name.removesuffix(".gguf")
        choices.append(GGUFChoice(label, tuple(parts[i] for i in sorted(parts))))
    return sorted(choices, key=lambda c: (c.size or 0, c.label))


def _mentions(filename: str, quant: str) -> bool:
    stem = filename.lower().removesuffix(".gguf")
    return re.search(r"(?:^|[-_./])" + re.escape(quant.lower()) + r"(?:$|[-_./])", stem) is not None


def pick_quantization(repo: str, choices: list[GGUFChoice], quant: str | None) -> GGUFChoice:
    """The choice whose quantization is *quant* (case-insensitive); one sentence otherwise.

    An exact label wins; else a file name that carries *quant* as a whole word
    (``UD-Q4_K_XL``, ``MXFP4``). Without *quant* a repo with a single model needs none.
    """
    if not choices:
        raise DownloadError(_("{repo} has no GGUF model files.").format(repo=repo))
    labels = ", ".join(dict.fromkeys(c.label for c in choices))
    if quant is None:
        if len(choices) == 1:
            return choices[0]
        raise DownloadError(_(
            "{repo} has several quantizations; name one, e.g. {repo}:{label} (available: "
            "{labels}).").format(repo=repo, label=choices[0].label, labels=labels))
    exact = [c for c in choices if c.label.lower() == quant.lower()]
    found = exact or [c for c in choices if any(_mentions(p.filename, quant) for p in c.parts)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise DownloadError(_("{repo} has no {quantization} file; its quantizations are: "
                              "{labels}.").format(repo=repo, quantization=quant, labels=labels))
    names = ", ".join(c.parts[0].filename for c in found)
    raise DownloadError(_(
        "'{quantization}' matches several files in {repo} ({names}); name the quantization "
        "exactly.").format(quantization=quant, repo=repo, names=names))


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
