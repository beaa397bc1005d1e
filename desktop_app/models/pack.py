"""Lesson packs: a teacher's models, their catalog entries and practice sets in one zip, for
laptops with no network (``triptych pack`` / ``triptych unpack``, and the model manager's
"Open lesson pack…").

An archive holds ``triptych-pack.json`` (the manifest, :class:`Manifest`, versioned JSON)
and the files it lists, nothing else: ``models/<n>/<file>.gguf`` stored uncompressed (a GGUF
does not compress, and a stored member streams straight out) and ``practice/<file>``.
Each listed file has its size and SHA-256; each model its catalog entry (the
``[[model]]`` table, :func:`desktop_app.models.catalog.entry_table`), licence and where it
first came from; the prepared prompts are one of the practice sets, named after the lesson.

Installing is all or nothing. Every file is extracted into a staging folder on the same
file system as its destination and hashed as it streams out (a member longer than the
manifest says is cut off there); only when every hash matches, every GGUF header reads
and every practice set loads are the folders renamed into place and the models added to
the user's catalog in one write. A failure at any point removes what was moved and puts
the catalog back. A member outside the manifest, an unsafe path, an absurd size, a
truncated archive or a missing file is refused with one sentence before anything is
written. No Qt.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import os
import re
import shutil
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from desktop_app import __version__, paths
from desktop_app.models import catalog as cat
from desktop_app.models import download as dl
from desktop_app.models import user_catalog
from desktop_app.models.gguf import GGUFError, has_magic, read_metadata
from desktop_app.models.hub import SHA256_HEX, DownloadCancelled, DownloadError
from desktop_app.models.sources import CatalogError, FileSource, HubSource, RemoteSource
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.text.units import format_bytes

MANIFEST = "triptych-pack.json"
FORMAT = "triptych-lesson-pack"
VERSION = 1
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_PRACTICE_BYTES = 256 * 1024 * 1024  # per practice file: the whole of GSM8K is 2 MB
MAX_MODEL_BYTES = 1 << 40  # 1 TiB: no GGUF a laptop runs is near it
MAX_MEMBERS = 1024
# What an archive member may be called: our own two folders, plain file names, no '..'.
_MEMBER = re.compile(r"(models/[0-9]{1,4}/|practice/)[A-Za-z0-9][A-Za-z0-9._+-]{0,199}")



class PackError(DownloadError):
    """A pack that cannot be written or installed, as one sentence (a :class:`DownloadError`,
    so the window shows it as it shows a failed download)."""


class PackPhase(StrEnum):
    PACKING = "packing"
    CHECKING = "checking"
    INSTALLING = "installing"

    @property
    def label(self) -> str:
        return _(PHASE_LABELS[self])


PHASE_LABELS: dict[PackPhase, str] = {
    PackPhase.PACKING: N_("Packing"),
    PackPhase.CHECKING: N_("Checking"),
    PackPhase.INSTALLING: N_("Installing"),
}


@dataclass(frozen=True)
class PackProgress:
    """Bytes done of the whole pack, and the file at hand."""

    phase: PackPhase
    file: str
    done: int
    total: int

    @property
    def fraction(self) -> float | None:
        return self.done / self.total if self.total else None

    def describe(self) -> str:
        """``Checking Qwen3-0.6B-Q8_0.gguf: 42% of 1.2 GB``."""
        percent = round(100 * self.fraction) if self.fraction is not None else 0
        # TRANSLATORS: {phase} is Packing, Checking or Installing
        return _("{phase} {file}: {percent}% of {size}").format(
            phase=self.phase.label, file=self.file, percent=percent,
            size=format_bytes(self.total))


ProgressCallback = Callable[[PackProgress], None]


# ------------------------------------------------------------------------ manifest


@dataclass(frozen=True)
class PackFile:
    """One archive member: its name, size and SHA-256."""

    name: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True)
class PackModel:
    """A model: its catalog entry (no source), its files (the first is the one llama.cpp
    opens; a split GGUF's parts follow), licence and where it first came from."""

    id: str
    entry: dict[str, Any]
    files: tuple[PackFile, ...]
    licence: str
    source: str

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "licence": self.licence, "source": self.source,
                "files": [f.to_dict() for f in self.files], "entry": self.entry}


@dataclass(frozen=True)
class PackPractice:
    """A practice set: its key, its name and its files (the set's TOML first)."""

    key: str
    name: str
    files: tuple[PackFile, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "name": self.name, "files": [f.to_dict() for f in self.files]}


@dataclass(frozen=True)
class Manifest:
    """What a pack holds. ``prompts``: the key of the practice set of prepared prompts."""

    title: str
    models: tuple[PackModel, ...] = ()
    practice: tuple[PackPractice, ...] = ()
    prompts: str | None = None
    made_by: str = ""
    created: str = ""

    @property
    def files(self) -> list[PackFile]:
        return [f for m in self.models for f in m.files] + \
            [f for p in self.practice for f in p.files]

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "version": VERSION, "title": self.title,
            "made_by": self.made_by, "created": self.created, "prompts": self.prompts,
            "models": [m.to_dict() for m in self.models],
            "practice": [p.to_dict() for p in self.practice]}, indent=2, ensure_ascii=False)


def _field(table: Any, key: str, kind: type, where: str) -> Any:
    value = table.get(key) if isinstance(table, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ValueError(_("{where} has no valid '{key}'").format(where=where, key=key))
    return value


def _files(raw: Any, where: str, limit: int) -> tuple[PackFile, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(_("{where} lists no files").format(where=where))
    files = []
    for item in raw:
        name = _field(item, "name", str, where)
        if not _MEMBER.fullmatch(name):
            raise ValueError(_("{where} names a file with an unsafe path ({file})").format(
                where=where, file=repr(name)))
        where_file = _("{where}, file {file}").format(where=where, file=name)
        size = _field(item, "size", int, where_file)
        if not 0 <= size <= limit:
            raise ValueError(_("{where} has an absurd size ({size} bytes)").format(
                where=where_file, size=size))
        sha = _field(item, "sha256", str, where_file).lower()
        if not SHA256_HEX.fullmatch(sha):
            raise ValueError(_("{where} has no valid sha256").format(where=where_file))
        files.append(PackFile(name, size, sha))
    return tuple(files)


_ENTRY_TEXT = ("name", "family", "params", "quantization", "license", "description", "ram_class")
_ENTRY_KEYS = {"id", "role", "context_length", "sampling", "prompt", *_ENTRY_TEXT}


def _entry(entry: dict[str, Any], model_id: str, index: int) -> dict[str, Any]:
    """A model's catalog entry as the catalog reads it: known fields only (never a source:
    the pack decides where the file goes), each of the type the catalog expects."""
    if entry.get("id") != model_id:
        raise ValueError(_("model '{model}' has an entry for another id").format(model=model_id))
    kept = {key: value for key, value in entry.items() if key in _ENTRY_KEYS}
    wrong = next((key for key in _ENTRY_TEXT if key in kept and not isinstance(kept[key], str)),
                 None)
    if wrong is not None:
        raise ValueError(_("model '{model}': its {key} is not text").format(
            model=model_id, key=wrong))
    try:
        cat.parse_entry({**kept, "source": {"path": "pack"}}, _("the pack"), index)
    except CatalogError as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    return kept


def parse_manifest(text: str) -> Manifest:
    """The manifest from its JSON text; ValueError naming the first thing wrong."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(_("its manifest is not valid JSON ({error})").format(error=exc)) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(_("its manifest is not a Triptych lesson pack's"))
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(_("its manifest has no format version"))
    if version > VERSION:
        raise ValueError(_("it was made by a newer Triptych (pack format {version}, this one "
                           "reads {supported}); update Triptych to open it").format(
            version=version, supported=VERSION))
    models, practice = data.get("models", []), data.get("practice", [])
    if not isinstance(models, list) or not isinstance(practice, list):
        raise ValueError(_("its manifest's models and practice must be lists"))
    parsed_models = []
    for index, raw in enumerate(models):
        model_id = _field(raw, "id", str, _("model {number}").format(number=index + 1))
        where = _("model '{model}'").format(model=model_id)
        entry = _entry(_field(raw, "entry", dict, where), model_id, index)
        files = _files(raw.get("files"), where, MAX_MODEL_BYTES)
        if len({f.name.rsplit("/", 1)[0] for f in files}) != 1 or \
                not files[0].name.startswith("models/"):
            raise ValueError(_("{where} has its files outside one models/ folder").format(
                where=where))
        parsed_models.append(PackModel(model_id, entry, files, str(raw.get("licence", "unknown")),
                                       str(raw.get("source", ""))))
    parsed_practice = []
    for index, raw in enumerate(practice):
        key = _field(raw, "key", str, _("practice set {number}").format(number=index + 1))
        where = _("practice set '{key}'").format(key=key)
        files = _files(raw.get("files"), where, MAX_PRACTICE_BYTES)
        if not all(f.name.startswith("practice/") for f in files):
            raise ValueError(_("{where} has files outside practice/").format(where=where))
        parsed_practice.append(PackPractice(key, str(raw.get("name", key)), files))
    manifest = Manifest(
        title=_field(data, "title", str, _("the manifest")).strip() or "Lesson",
        models=tuple(parsed_models), practice=tuple(parsed_practice),
        prompts=data.get("prompts") if isinstance(data.get("prompts"), str) else None,
        made_by=str(data.get("made_by", "")), created=str(data.get("created", "")))
    names = [f.name for f in manifest.files]
    ids = [m.id for m in manifest.models]
    filenames = [f.filename for p in manifest.practice for f in p.files]
    folders = [m.files[0].name.rsplit("/", 1)[0] for m in manifest.models]
    for twice, values in ((N_("its manifest lists the file {name} twice"), names),
                          (N_("its manifest lists the model {name} twice"), ids),
                          (N_("its manifest lists the practice file {name} twice"), filenames),
                          (N_("its manifest lists the model folder {name} twice"), folders)):
        repeated = next((v for v in values if values.count(v) > 1), None)
        if repeated is not None:
            raise ValueError(_(twice).format(name=repr(repeated)))
    return manifest


# ------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class PracticeFiles:
    """A practice set to pack: its key, name and files, each a path or (for the prepared
    prompts, written on the spot) ``(file name, text)``."""

    key: str
    name: str
    files: tuple[Path | tuple[str, str], ...]


def model_files(entry: cat.ModelEntry) -> list[Path]:
    """The files of a model that is ready here, the first the one llama.cpp opens (a
    starter is assembled first). PackError for a model on a server or not here."""
    if isinstance(entry.source, RemoteSource):
        raise PackError(_("'{model}' runs on a server ({server}); a lesson pack carries model "
                          "files, so it cannot take it.").format(
            model=entry.id, server=entry.source.describe()))
    try:
        first = cat.ensure_local(entry)
    except CatalogError as exc:
        raise PackError(str(exc)) from None
    parts = []
    if isinstance(entry.source, HubSource):
        for part in entry.source.part_sources():
            found = cat.hub_cached_path(part)
            if found is None:
                raise PackError(cat.missing_message(entry, cat.Availability.NOT_DOWNLOADED))
            parts.append(found)
    return [first, *parts]


def write_pack(out: Path, entries: Sequence[cat.ModelEntry], practice: Sequence[PracticeFiles],
               *, title: str, prompts: str | None = None,
               progress: ProgressCallback | None = None,
               cancel: threading.Event | None = None) -> Manifest:
    """Write the pack to ``out`` (atomically: a partial file is never left under its name).
    Each model is hashed as it is written and refused if that does not match what the
    catalog or its download recorded (a damaged file is never handed to a class)."""
    sources = [(entry, model_files(entry)) for entry in entries]
    practice_paths = [p for item in practice for p in item.files if isinstance(p, Path)]
    total = sum(p.stat().st_size for _, files in sources for p in files) + \
        sum(p.stat().st_size for p in practice_paths)
    out = out.expanduser().resolve()
    dl.check_disk_space(total, out.parent, _("the pack {file}").format(file=out.name))
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    done = 0

    def member(archive: zipfile.ZipFile, name: str, path: Path | None, text: str | None,
               stored: bool) -> PackFile:
        nonlocal done
        data = text.encode("utf-8") if text is not None else None
        size = len(data) if data is not None else path.stat().st_size  # type: ignore[union-attr]
        info = zipfile.ZipInfo(name, datetime.datetime.now().timetuple()[:6])
        info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
        info.file_size = size
        start = done
        report = None if progress is None else (lambda now, _all: progress(PackProgress(
            PackPhase.PACKING, name.rsplit("/", 1)[-1], start + now, total)))
        with archive.open(info, "w", force_zip64=size >= zipfile.ZIP64_LIMIT) as target, \
                (io.BytesIO(data) if data is not None else path.open("rb")) as source:  # type: ignore[union-attr]
            digest = dl.copy_hashing(source, target, size, progress=report, cancel=cancel,
                                     what=name.rsplit("/", 1)[-1])
        done += size
        return PackFile(name, size, digest)

    try:
        with zipfile.ZipFile(partial, "w", allowZip64=True) as archive:
            models = []
            for number, (entry, files) in enumerate(sources, start=1):
                packed = tuple(member(archive, f"models/{number}/{_safe(path.name)}", path, None,
                                      True) for path in files)
                expected = dl.expected_sha256(entry)
                if expected and packed[0].sha256 != expected:
                    raise PackError(_(
                        "'{model}' is damaged here (its SHA-256 is {digest}… but should be "
                        "{expected}…); run 'triptych models verify {model}' and fetch it again "
                        "before packing it.").format(model=entry.id,
                                                     digest=packed[0].sha256[:12],
                                                     expected=expected[:12]))
                table = cat.entry_table(entry)
                table.pop("starter", None)  # a copy in a pack is no PyPI starter
                models.append(PackModel(entry.id, table, packed, entry.license,
                                        _origin(entry)))
            sets = []
            for item in practice:
                packed = tuple(
                    member(archive, f"practice/{_safe(f.name)}", f, None, False)
                    if isinstance(f, Path)
                    else member(archive, f"practice/{_safe(f[0])}", None, f[1], False)
                    for f in item.files)
                sets.append(PackPractice(item.key, item.name, packed))
            manifest = Manifest(
                title=title, models=tuple(models), practice=tuple(sets), prompts=prompts,
                made_by=f"Triptych {__version__}",
                created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
            parse_manifest(manifest.to_json())  # never write a pack this module would refuse
            archive.writestr(MANIFEST, manifest.to_json(), zipfile.ZIP_DEFLATED)
        os.replace(partial, out)
    except ValueError as exc:
        raise PackError(_("The pack cannot be written: {error}.").format(error=exc)) from None
    except OSError as exc:
        raise PackError(_("Cannot write {file}: {error}.").format(
            file=out, error=exc.strerror or exc)) from None
    finally:
        partial.unlink(missing_ok=True)
    return manifest


def _safe(name: str) -> str:
    """A file name as an archive member may have it (split GGUFs' ``-00001-of-00002``
    pattern is kept: llama.cpp finds the parts by it)."""
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", name)[:200]
    return cleaned if cleaned[:1].isalnum() else f"f{cleaned}"[:200]


def _origin(entry: cat.ModelEntry) -> str:
    source = entry.source
    if isinstance(source, HubSource):
        return f"{source.repo}/{source.filename} at {source.revision}"
    if isinstance(source, FileSource):  # the teacher's folders are nobody else's business
        return f"a file imported as {Path(source.path).name}"
    return source.describe()


# ------------------------------------------------------------------------ reading


def _damaged(path: Path, why: object) -> PackError:
    return PackError(_("{file} is not a complete lesson pack: it is damaged or was not "
                       "copied whole ({why}); nothing was installed.").format(
        file=path.name, why=why))


def _refused(path: Path, why: str) -> PackError:
    return PackError(_("{file} is refused: {why}; nothing was installed.").format(
        file=path.name, why=why))


def open_pack(path: Path) -> tuple[zipfile.ZipFile, Manifest]:
    """Open the archive and check its manifest against its members; nothing is extracted.
    The caller closes the archive."""
    try:
        archive = zipfile.ZipFile(path)
    except FileNotFoundError:
        raise PackError(_("There is no lesson pack at {path}.").format(path=path)) from None
    except IsADirectoryError:
        raise PackError(_("{path} is a folder, not a lesson pack.").format(path=path)) from None
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise _damaged(path, exc) from None
    try:
        return archive, _check(archive, path)
    except BaseException:
        archive.close()
        raise


def _check(archive: zipfile.ZipFile, path: Path) -> Manifest:
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise _refused(path, _("it holds {count} files, more than a lesson pack has").format(
            count=len(infos)))
    for info in infos:
        name = info.filename
        if name.startswith("/") or "\\" in name or ":" in name or ".." in name.split("/"):
            raise _refused(path, _("it holds a file with an unsafe path ({name})").format(
                name=repr(name)))
    members = {info.filename: info for info in infos}
    if len(members) != len(infos):
        raise _refused(path, _("it holds two files under one name"))
    found = members.get(MANIFEST)
    if found is None:
        raise PackError(_("{file} is not a lesson pack: it has no {manifest}.").format(
            file=path.name, manifest=MANIFEST))
    if found.file_size > MAX_MANIFEST_BYTES:
        raise _refused(path, _("its manifest is {size}, an absurd size").format(
            size=format_bytes(found.file_size)))
    try:
        text = archive.read(MANIFEST).decode("utf-8")
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as exc:
        raise _damaged(path, exc) from None
    except UnicodeDecodeError:
        raise _refused(path, _("its manifest is not UTF-8 text")) from None
    try:
        manifest = parse_manifest(text)
    except ValueError as exc:
        raise _refused(path, str(exc)) from None
    listed = {f.name for f in manifest.files}
    for packed in manifest.files:
        member = members.get(packed.name)
        if member is None:
            raise PackError(_("{file} is incomplete: its manifest lists {member}, which it "
                              "does not hold; nothing was installed.").format(
                file=path.name, member=packed.name))
        if member.file_size != packed.size:
            raise _damaged(path, _("{member} is {size} bytes, its manifest says {listed}").format(
                member=packed.name, size=member.file_size, listed=packed.size))
    extra = sorted(set(members) - listed - {MANIFEST})
    if extra:
        raise _refused(path, _("it holds a file its manifest does not list ({name})").format(
            name=extra[0]))
    return manifest


# ------------------------------------------------------------------------ installing

PracticeCheck = Callable[[Path], int]  # a set's TOML -> its number of problems, or ValueError


@dataclass
class Installed:
    """What :func:`unpack` did, for its one-sentence report."""

    pack: str
    title: str
    models: list[str] = field(default_factory=list)  # ids installed here
    renamed: dict[str, str] = field(default_factory=dict)  # the pack's id -> the id here
    already: list[str] = field(default_factory=list)  # same model, same bytes, already here
    practice: list[str] = field(default_factory=list)  # names of the sets installed
    prompts: int = 0  # prepared prompts among them
    bytes: int = 0
    folder: Path | None = None  # the lesson's practice folder

    def describe(self) -> str:
        """One sentence (two when models had to be renamed)."""
        parts = []
        if self.models:
            parts.append(ngettext("model {names} ({size})", "models {names} ({size})",
                                  len(self.models)).format(names=", ".join(self.models),
                                                           size=format_bytes(self.bytes)))
        if self.already and (self.models or self.practice):
            parts.append(ngettext("{names} was here already", "{names} were here already",
                                  len(self.already)).format(names=", ".join(self.already)))
        if self.practice:
            parts.append(ngettext("practice set {names}", "practice sets {names}",
                                  len(self.practice)).format(
                names=", ".join(f"'{name}'" for name in self.practice)))
        if self.prompts:
            parts.append(ngettext("{count} prepared prompt in the practice problems",
                                  "{count} prepared prompts in the practice problems",
                                  self.prompts).format(count=self.prompts))
        if not self.models and not self.practice:
            return _("Everything in {pack} ('{title}') is already here.").format(
                pack=self.pack, title=self.title)
        text = _("Installed '{title}' from {pack}: {parts}.").format(
            title=self.title, pack=self.pack, parts="; ".join(parts))
        for old, new in self.renamed.items():
            text += " " + _("'{old}' is installed as '{new}', since your catalog has another "
                            "'{old}'.").format(old=old, new=new)
        return text


@dataclass
class _Plan:
    installs: list[tuple[PackModel, str]]  # (model, id here)
    already: list[str]
    renamed: dict[str, str]
    folder: Path | None  # where the practice sets go; None: nothing to install


def _same_bytes_here(entry: cat.ModelEntry | None, model: PackModel) -> bool:
    if entry is None or cat.state_of(entry) != cat.Availability.READY:
        return False
    wanted = model.files[0].sha256
    recorded = cat.read_states().get(entry.id, {}).get("sha256")
    return wanted in (entry.source.sha256, recorded)


def _plan(manifest: Manifest, path: Path) -> _Plan:
    catalog = cat.load_catalog()
    try:
        user_ids = set(user_catalog.model_ids())
    except CatalogError as exc:
        raise PackError(_("{error} Nothing from {file} was installed.").format(
            error=exc, file=path.name)) from None
    taken = set(catalog.entries) | user_ids
    installs: list[tuple[PackModel, str]] = []
    already: list[str] = []
    renamed: dict[str, str] = {}
    for model in manifest.models:
        if _same_bytes_here(catalog.entries.get(model.id), model):
            already.append(model.id)
            continue
        model_id = model.id
        if model_id in user_ids:  # the user's own model of that name: keep both
            number = 2
            while f"{model.id}-{number}" in taken:
                number += 1
            model_id = renamed[model.id] = f"{model.id}-{number}"
        taken.add(model_id)
        installs.append((model, model_id))
    folder: Path | None = None
    if manifest.practice:
        base = user_catalog.slug(manifest.title)[:48]
        files = [f for p in manifest.practice for f in p.files]
        folder, number = paths.user_practice_dir() / base, 2
        while folder.exists():
            if all((folder / f.filename).is_file()
                   and dl.sha256_file(folder / f.filename) == f.sha256 for f in files):
                folder = None  # this lesson's sets are installed already
                break
            folder, number = paths.user_practice_dir() / f"{base}-{number}", number + 1
    return _Plan(installs, already, renamed, folder)


def unpack(path: Path, *, check_practice: PracticeCheck,
           progress: ProgressCallback | None = None,
           cancel: threading.Event | None = None) -> Installed:
    """Verify and install a lesson pack, all or nothing (see the module's docstring).

    ``check_practice`` reads a staged practice set (the verify layer's loader) and returns
    how many problems it has. Blocking: call it off the GUI thread. Raises
    :class:`PackError` (one sentence) or :class:`DownloadCancelled`; either way nothing
    of the pack is left behind."""
    path = Path(path).expanduser()
    archive, manifest = open_pack(path)
    # a refused pack leaves no new folder either (they are made again when needed)
    new_folders = [d for d in (paths.models_dir(create=False),
                               paths.lesson_models_dir(create=False),
                               paths.user_practice_dir(create=False)) if not d.exists()]
    try:
        with archive:
            return _unpack(archive, manifest, path, check_practice, progress, cancel)
    except BaseException:
        for folder in reversed(new_folders):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if still empty
        raise


def _unpack(archive: zipfile.ZipFile, manifest: Manifest, path: Path,
            check_practice: PracticeCheck, progress: ProgressCallback | None,
            cancel: threading.Event | None) -> Installed:
    """:func:`unpack` on the opened archive."""
    plan = _plan(manifest, path)
    practice_files = [f for p in manifest.practice for f in p.files] if plan.folder else []
    needed = sum(m.size for m, _ in plan.installs) + sum(f.size for f in practice_files)
    lessons, practice_root = paths.lesson_models_dir(), paths.user_practice_dir()
    dl.check_disk_space(needed, lessons, _("the lesson pack {file}").format(file=path.name))
    result = Installed(path.name, manifest.title, already=plan.already,
                       renamed=plan.renamed, folder=plan.folder)
    staged = Path(tempfile.mkdtemp(prefix=".unpack-", dir=lessons))
    staged_practice = Path(tempfile.mkdtemp(prefix=".unpack-", dir=practice_root))
    try:
        done = 0

        def extract(packed: PackFile, target: Path) -> None:
            nonlocal done
            _extract(archive, path, packed, target, done, needed, progress, cancel)
            done += packed.size

        for model, _model_id in plan.installs:
            folder = staged / model.files[0].name.split("/")[1]
            folder.mkdir()
            for packed in model.files:
                extract(packed, folder / packed.filename)
            _check_gguf(folder / model.files[0].filename, path)
        for packed in practice_files:
            extract(packed, staged_practice / packed.filename)
        if plan.folder is not None:
            for practice_set in manifest.practice:
                count = _check_set(check_practice, staged_practice, practice_set, path)
                result.practice.append(practice_set.name)
                if practice_set.key == manifest.prompts:
                    result.prompts = count
        _commit(plan, staged, staged_practice, path, manifest, progress, needed)
    finally:
        shutil.rmtree(staged, ignore_errors=True)
        shutil.rmtree(staged_practice, ignore_errors=True)
    result.models = [model_id for _, model_id in plan.installs]
    result.bytes = sum(m.size for m, _ in plan.installs)
    return result


def _extract(archive: zipfile.ZipFile, path: Path, packed: PackFile, target: Path, start: int,
             total: int, progress: ProgressCallback | None,
             cancel: threading.Event | None) -> None:
    """One member out to ``target``, hashed as it streams; never more than its size."""
    report = None if progress is None else (lambda now, _all: progress(PackProgress(
        PackPhase.CHECKING, packed.filename, start + now, total)))
    try:
        with archive.open(packed.name) as source, target.open("wb") as out:
            digest = dl.copy_hashing(source, out, packed.size, progress=report, cancel=cancel,
                                     what=packed.name, limit=packed.size)
    except DownloadCancelled:
        raise
    except (zipfile.BadZipFile, EOFError, zlib.error, DownloadError) as exc:
        raise _damaged(path, exc) from None
    except OSError as exc:
        raise PackError(_("Cannot install {file}: {error}; nothing was installed.").format(
            file=path.name, error=exc.strerror or exc)) from None
    if digest != packed.sha256:
        raise PackError(_("{file} is damaged: {member} does not match its SHA-256 (it is "
                          "{digest}…, the manifest says {expected}…), so nothing was "
                          "installed.").format(file=path.name, member=packed.filename,
                                               digest=digest[:12],
                                               expected=packed.sha256[:12]))


def _check_gguf(file: Path, path: Path) -> None:
    """A file whose hash matches a manifest its author wrote may still be no model."""
    try:
        if not has_magic(file):
            raise GGUFError("no GGUF magic")
        read_metadata(file, keys=())
    except (GGUFError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise _refused(path, _("{file} is not a readable GGUF model ({error})").format(
            file=file.name, error=exc)) from None


def _check_set(check: PracticeCheck, folder: Path, practice_set: PackPractice,
               path: Path) -> int:
    try:
        return check(folder / practice_set.files[0].filename)
    except (ValueError, OSError) as exc:
        raise _refused(path, _("its practice set '{name}' cannot be read ({error})").format(
            name=practice_set.name, error=exc)) from None


def _commit(plan: _Plan, staged: Path, staged_practice: Path, path: Path, manifest: Manifest,
            progress: ProgressCallback | None, total: int) -> None:
    """Move the staged folders into place and add the models to the catalog in one write;
    on any failure (even an interrupt) undo every step."""
    saved = {file: file.read_text(encoding="utf-8") if file.exists() else None
             for file in (paths.user_catalog_path(), cat.state_file())}
    moved: list[Path] = []
    try:
        tables = []
        for model, model_id in plan.installs:
            if progress is not None:
                progress(PackProgress(PackPhase.INSTALLING, model.files[0].filename, total, total))
            final = _free(paths.lesson_models_dir()
                          / f"{user_catalog.slug(model_id)}-{model.files[0].sha256[:12]}")
            os.rename(staged / model.files[0].name.split("/")[1], final)
            moved.append(final)
            first = model.files[0]
            tables.append(({**model.entry, "id": model_id}, {
                "path": str(final / first.filename), "size": first.size, "sha256": first.sha256,
                "provenance": f"from the lesson pack {path.name} ('{manifest.title}'); "
                              f"first from {model.source or 'unknown'}"}))
        if plan.folder is not None:
            if progress is not None:
                progress(PackProgress(PackPhase.INSTALLING, plan.folder.name, total, total))
            os.rename(staged_practice, plan.folder)
            moved.append(plan.folder)
        if tables:
            user_catalog.add_models(tables)
            loaded = cat.load_catalog()
            for fields, _source in tables:
                if fields["id"] not in loaded.entries:
                    problems = " ".join(p for p in loaded.problems if f"'{fields['id']}'" in p)
                    raise PackError(problems or f"'{fields['id']}' could not be added to your "
                                                "catalog; nothing was installed.")
                cat.write_state(fields["id"])  # an earlier download's state is not this file's
    except BaseException as exc:
        for folder in reversed(moved):
            shutil.rmtree(folder, ignore_errors=True)
        for file, text in saved.items():
            with contextlib.suppress(OSError):
                if text is None:
                    file.unlink(missing_ok=True)
                else:
                    user_catalog.write_atomically(file, text)
        if isinstance(exc, OSError | CatalogError | ValueError) and not isinstance(exc, PackError):
            reason = getattr(exc, "strerror", None) or exc
            raise PackError(f"Cannot install {path.name} ({reason}); nothing was "
                            "installed.") from None
        raise


def _free(target: Path) -> Path:
    candidate, number = target, 2
    while candidate.exists():
        candidate, number = target.with_name(f"{target.name}-{number}"), number + 1
    return candidate
