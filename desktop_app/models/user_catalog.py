"""Changing the user's own ``models.toml``: add a model, remove a model, set a model's GPU
offload, nothing else.

The file is the user's: they may have written it by hand, with comments, single-quoted
strings, inline tables or notes after values. So it is read, modified and written with
tomlkit, which keeps all of that, instead of being searched with regular expressions
(which missed ``id = 'x'`` and ``id = "x"  # note``). Every write goes to a temporary
file in the same folder and then ``os.replace``: a crash or a full disk leaves either the
old catalog or the new one, never half of one. A file that is not valid TOML is never
rewritten (that would lose what the user wrote); the caller gets one sentence instead.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from desktop_app import paths
from desktop_app.models import catalog as cat
from desktop_app.models import servers, sources
from desktop_app.models.devices import GpuLayers, gpu_layers_text
from desktop_app.models.gguf import GGUFError, has_magic, read_metadata
from desktop_app.models.hub import (
    SHA256_HEX,
    DownloadError,
    gguf_choices,
    guess_quantization,
    list_repo,
    model_stem,
    parse_reference,
    pick_quantization,
)
from desktop_app.text.i18n import _

HEADER = (
    "Your own models. Triptych adds [[model]] tables here when you import a file or\n"
    "add a model from the Hugging Face Hub; you may edit it by hand."
)


def _read(path: Path) -> TOMLDocument:
    if not path.exists():
        doc = tomlkit.document()
        for line in HEADER.splitlines():
            doc.add(tomlkit.comment(line))
        return doc
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or _("it is not UTF-8 text")
        raise sources.CatalogError(_("Cannot read your catalog {file}: {reason}.").format(
            file=path, reason=reason)) from None
    if text and not text.endswith("\n"):
        text += "\n"  # tomlkit glues an appended table onto a last line without one
    try:
        doc = tomlkit.parse(text)
    except Exception as exc:  # noqa: BLE001 - tomlkit's parse errors have no common base
        raise sources.CatalogError(_(
            "Your catalog {file} is not valid TOML ({error}); fix it by hand before Triptych "
            "changes it.").format(file=path, error=exc)) from None
    models = doc.get("model")
    if models is not None and not isinstance(models, AoT):
        raise sources.CatalogError(_("Your catalog {file} must use [[model]] tables.").format(
            file=path))
    return doc


def write_atomically(path: Path, text: str) -> None:
    """Replace *path* with *text* so that readers see the old file or the new one, whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp makes the file owner-only: keep the old file's mode, or a normal one.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        with contextlib.suppress(OSError):
            os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _write(path: Path, doc: TOMLDocument) -> None:
    text = tomlkit.dumps(doc)
    tomllib.loads(text)  # never write what the catalog loader could not read back
    write_atomically(path, text)


def _ids(models: AoT) -> list[str | None]:
    return [str(t.get("id")).strip() if isinstance(t.get("id"), str) else None
            for t in models]


def model_ids(path: Path | None = None) -> list[str]:
    """The ids of the ``[[model]]`` tables in the user catalog, in file order."""
    doc = _read(path or paths.user_catalog_path())
    models = doc.get("model")
    return [i for i in _ids(models) if i] if isinstance(models, AoT) else []


def add_model(fields: Mapping[str, Any], source: Mapping[str, Any],
              path: Path | None = None) -> Path:
    """Append one ``[[model]]`` table (``fields`` plus a ``[model.source]`` table).

    Empty values (``None``, ``""``) are left out; a list of mappings in ``source``
    becomes an array of tables (``[[model.source.parts]]``). Returns the catalog's path.
    """
    return add_models([(fields, source)], path)


def add_models(tables: Sequence[tuple[Mapping[str, Any], Mapping[str, Any]]],
               path: Path | None = None) -> Path:
    """Append several ``[[model]]`` tables, each ``(fields, source)`` as for
    :func:`add_model`, in one write: a lesson pack's models are all in the catalog, or none."""
    target = path or paths.user_catalog_path()
    doc = _read(target)
    for fields, source in tables:
        _append(doc, _model_table(fields, source))
    _write(target, doc)
    return target


def _model_table(fields: Mapping[str, Any], source: Mapping[str, Any]) -> Table:
    table = tomlkit.table()
    for key, value in fields.items():
        if value not in (None, ""):
            table.add(key, value)
    source_table = tomlkit.table()
    for key, value in source.items():
        if isinstance(value, list) and value and all(isinstance(v, Mapping) for v in value):
            tables = tomlkit.aot()  # e.g. [[model.source.parts]]
            for item in value:
                tables.append(tomlkit.item({k: v for k, v in item.items() if v is not None}))
            source_table.add(key, tables)
        elif value is not None and value != []:
            source_table.add(key, value)
    table.add("source", source_table)
    return table


def _append(doc: TOMLDocument, table: Table) -> None:
    models = doc.get("model")
    if isinstance(models, AoT):
        models.append(table)
    else:
        if len(doc.body):
            doc.add(tomlkit.nl())
        doc.add("model", tomlkit.aot())
        doc["model"].append(table)


def remove_model(model_id: str, path: Path | None = None) -> bool:
    """Drop the ``[[model]]`` table whose id is *model_id*; False if there is none.

    Comments and blank lines inside that table go with it; everything else is kept.
    """
    target = path or paths.user_catalog_path()
    if not target.exists():
        return False
    doc = _read(target)
    models = doc.get("model")
    if not isinstance(models, AoT):
        return False
    ids = _ids(models)
    if model_id not in ids:
        return False
    for index in reversed([i for i, found in enumerate(ids) if found == model_id]):
        del models[index]
    if len(models) == 0:
        del doc["model"]  # an empty array of tables would be written as "model = []"
    _write(target, doc)
    return True


def set_gpu_layers(model_id: str, setting: GpuLayers, path: Path | None = None) -> Path:
    """Save a model's GPU offload setting (None: auto, 0: CPU only, N layers).

    On the model's own ``[[model]]`` table when this file defines it; otherwise (a shipped
    model) in ``[model_settings.ID]``, since a ``[[model]]`` with its id would replace the
    whole entry. The value is written even when it is the default, so the file says what
    the user chose. Returns the catalog's path."""
    target = path or paths.user_catalog_path()
    doc = _read(target)
    value: str | int = gpu_layers_text(setting) if setting is None else setting
    models = doc.get("model")
    if isinstance(models, AoT) and model_id in _ids(models):
        models[_ids(models).index(model_id)]["gpu_layers"] = value
        _write(target, doc)
        return target
    settings = doc.get(cat.MODEL_SETTINGS)
    if settings is None:
        settings = tomlkit.table(is_super_table=True)
        doc.add(cat.MODEL_SETTINGS, settings)
    elif not isinstance(settings, Table):
        raise sources.CatalogError(_("Your catalog {file}: model_settings must be a table."
                                     ).format(file=target))
    table = settings.get(model_id)
    if table is None:
        table = tomlkit.table()
        settings.add(model_id, table)
    elif not isinstance(table, Table):
        raise sources.CatalogError(_("Your catalog {file}: {table} must be a table.").format(
            file=target, table=f"[{cat.MODEL_SETTINGS}.{model_id}]"))
    table["gpu_layers"] = value
    _write(target, doc)
    return target


# ------------------------------------------------------------------- adding models


def slug(text: str) -> str:
    """*text* as an id or a file name: ``My Model`` -> ``my-model``."""
    found = re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.").lower()
    return found or "model"


def unique_id(base: str) -> str:
    """*base* as a catalog id (``My Model`` -> ``my-model``), numbered if already taken."""
    base = slug(base)
    existing = set(cat.load_catalog().entries)
    with contextlib.suppress(sources.CatalogError):  # a broken file is reported when written
        existing |= set(model_ids())
    candidate, n = base, 2
    while candidate in existing:
        candidate, n = f"{base}-{n}", n + 1
    return candidate


def _reload_entry(model_id: str) -> cat.ModelEntry:
    catalog = cat.load_catalog()
    if model_id not in catalog:
        problems = " ".join(p for p in catalog.problems if model_id in p)
        raise DownloadError(problems or _("Could not add '{model}' to {file}.").format(
            model=model_id, file=paths.user_catalog_path()))
    return catalog.get(model_id)


def _check_role(role: str) -> None:
    if role not in cat.ROLES:
        raise DownloadError(_("Role '{role}' is not one of {roles}.").format(
            role=role, roles=", ".join(cat.ROLES)))


def _add(fields: Mapping[str, Any], source: Mapping[str, Any]) -> cat.ModelEntry:
    try:
        add_model(fields, source)
    except sources.CatalogError as exc:
        raise DownloadError(str(exc)) from None
    return _reload_entry(str(fields["id"]))


def import_model(path: str | os.PathLike[str], role: str, name: str | None = None, *,
                 sha256: str | None = None) -> cat.ModelEntry:
    """Add a GGUF file on this computer to the user catalog (the file is not copied).

    Its GGUF header is read whole first (a file with the magic and junk after it is
    refused); its size, and ``sha256`` if the caller hashed it, are recorded, so a file
    truncated or replaced later is not shown as ready (size) or passes no Verify (hash)."""
    file = Path(path).expanduser()
    _check_role(role)
    if not file.is_file():
        raise DownloadError(_("Cannot import {file}: there is no such file.").format(file=file))
    if not has_magic(file):
        raise DownloadError(_("Cannot import {file}: it is not a GGUF model file.").format(
            file=file))
    try:
        read_metadata(file, keys=())
    except (GGUFError, OSError, UnicodeDecodeError, ValueError) as exc:
        raise DownloadError(_("Cannot import {file}: its GGUF header is damaged ({error})."
                              ).format(file=file, error=exc)) from None
    file = file.resolve()
    model_id = unique_id(name or file.stem)
    fields = {
        "id": model_id,
        "name": name or file.stem,
        "role": role,
        "quantization": guess_quantization(file.name),
        "license": "unknown",
        "description": f"Imported from {file}.",  # written into the file: English, as content
    }
    source: dict[str, Any] = {"path": str(file), "size": file.stat().st_size}
    if sha256:
        source["sha256"] = sha256.lower()
    entry = _add(fields, source)
    cat.write_state(model_id)
    return entry


def add_hub_model(
    repo_id: str,
    filename: str,
    role: str,
    *,
    name: str | None = None,
    revision: str = "main",
    size: int | None = None,
    sha256: str | None = None,
    parts: Sequence[sources.HubPart] = (),
    provenance: str = "",
) -> cat.ModelEntry:
    """Add a Hub GGUF file (and the further parts of a split one) to the user catalog,
    not downloaded yet."""
    _check_role(role)
    if repo_id.count("/") != 1:
        raise DownloadError(_("'{repo}' is not a Hub repository id (it should look like "
                              "owner/name).").format(repo=repo_id))
    label = name or f"{repo_id.split('/')[1]} {guess_quantization(filename)}".strip()
    model_id = unique_id(name or model_stem(filename))
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
              "size": _size(size), "sha256": _sha(sha256), "provenance": provenance or None,
              "parts": [{"filename": p.filename, "size": _size(p.size), "sha256": _sha(p.sha256)}
                        for p in parts]}
    return _add(fields, source)


def _size(size: int | None) -> int | None:
    return size if size and size > 0 else None


def _sha(sha256: str | None) -> str | None:
    return sha256 if sha256 and SHA256_HEX.fullmatch(sha256) else None


def add_hub_reference(reference: str, role: str, *, name: str | None = None,
                      token: str | None = None) -> cat.ModelEntry:
    """Add the GGUF that ``ORG/REPO:QUANT`` (or ``hf.co/ORG/REPO:QUANT``) names, pinned to
    the commit the Hub lists now, with the Hub's LFS sha256 for every part.

    An entry for the same file at the same commit is reused rather than added twice.
    Lists the repo over the network: call it off the GUI thread.
    """
    parsed = parse_reference(reference)
    if parsed is None:
        raise DownloadError(_("'{reference}' is not a Hub model; write it as ORG/REPO:QUANT "
                              "(or hf.co/ORG/REPO:QUANT).").format(reference=reference))
    _check_role(role)
    repo, quant = parsed
    listing = list_repo(repo, token=token)
    choice = pick_quantization(repo, gguf_choices(listing.files), quant)
    first, *rest = choice.parts
    for entry in cat.load_catalog():
        source = entry.source
        if (isinstance(source, sources.HubSource) and source.repo == repo
                and source.filename == first.filename and source.revision == listing.commit):
            return entry
    return add_hub_model(
        repo, first.filename, role, name=name, revision=listing.commit, size=first.size,
        sha256=first.sha256, parts=[sources.HubPart(p.filename, p.size, p.sha256) for p in rest],
        provenance=f"added from {repo}:{choice.label}; revision, sizes and sha256 as the "
                   f"Hub listed them",
    )


# ------------------------------------------------------------------ models on servers


def add_remote_models(endpoint: str, picks: Sequence[tuple[str, str]], *,
                      key_env: str | None = None,
                      path: Path | None = None) -> list[cat.ModelEntry]:
    """Add models an OpenAI-compatible server serves: one entry per ``(model, role)``.

    A model already in the catalog for this endpoint and role is reused, not added twice.
    No key is written here: ``key_env`` names the environment variable that holds it (a
    key typed in the window goes to the OS keychain, see :func:`servers.store_key`).
    """
    try:
        endpoint = servers.normalize_endpoint(endpoint)
    except ValueError as exc:
        raise DownloadError(str(exc)) from None
    if key_env is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env):
        raise DownloadError(_("'{name}' is not the name of an environment variable.").format(
            name=key_env))
    added: list[cat.ModelEntry] = []
    host = servers.host_of(endpoint)
    for model, role in picks:
        _check_role(role)
        existing = next((entry for entry in cat.load_catalog()
                         if isinstance(entry.source, sources.RemoteSource)
                         and entry.source.endpoint == endpoint and entry.source.model == model
                         and entry.role == role), None)
        if existing is not None:
            added.append(existing)
            continue
        short = model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf")
        fields = {
            "id": unique_id(f"{short}-{host.split(':')[0]}"),
            "name": f"{short} on {host}",
            "role": role,
            "family": short,
            "license": "unknown",
            "description": f"Served by {endpoint}.",
        }
        source = {"endpoint": endpoint, "model": model, "api_key_env": key_env}
        try:
            add_model(fields, source, path)
        except sources.CatalogError as exc:
            raise DownloadError(str(exc)) from None
        added.append(_reload_entry(str(fields["id"])) if path is None else
                     cat.load_catalog([path]).get(str(fields["id"])))
    return added
