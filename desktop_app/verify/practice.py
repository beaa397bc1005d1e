"""Practice sets: problems with an answer key (``resources/practice/*.toml``).

Each file is one set::

    name = "Arithmetic and word problems"
    description = "…"
    kind = "math"                 # default for the problems below: math | code | open

    [[problems]]
    id = "mul-7-8"
    title = "7 × 8"
    prompt = "What is 7 * 8?"
    answer = "56"                 # math: the answer key

    [[problems]]
    id = "add"
    kind = "code"
    prompt = "Write a Python function add(a, b) …"
    entry_point = "add"           # code: the function the tests call
    tests = '''
    assert add(2, 3) == 5
    '''

    [[problems]]
    id = "pelican-joke"
    kind = "open"                 # unverifiable: no answer key, no tests
    prompt = "Write a funny joke about pelicans."

A prepared prompt (a lesson pack's own set, :func:`prepared_set_toml`) may carry the pane
settings it is meant to run with: ``settings = { temperature = 0.0, max_tokens = 256 }``
(:data:`~desktop_app.verify.problems.PROMPT_SETTINGS`). Sets a lesson pack installed live
in :func:`desktop_app.paths.user_practice_dir`, one folder per lesson, and are listed after
the shipped ones.

A file with ``format = "gsm8k"`` (or math500, humaneval, mbpp) is instead the manifest
of a benchmark subset whose problems are in a JSONL file beside it
(:mod:`desktop_app.verify.benchmarks`); the whole benchmark is listed too when it is on
this computer (pulled from the Hub, or shipped by a package).

No Qt, no network.
"""

from __future__ import annotations

import json
import logging
import math
import tomllib
from pathlib import Path
from typing import Any

import tomlkit

from desktop_app import paths
from desktop_app.models.user_catalog import slug
from desktop_app.verify.benchmarks import full_set_file, load_benchmark_manifest, load_full_set
from desktop_app.verify.problems import (
    KINDS,
    PROMPT_SETTINGS,
    PracticeError,
    PracticeSet,
    Problem,
)

__all__ = ["KINDS", "PracticeError", "PracticeSet", "Problem", "find_problem", "find_set",
           "installed_practice_sets", "load_practice_file", "load_practice_sets",
           "practice_dir", "prepared_set_toml", "problem_count", "read_prompts", "set_files"]

_log = logging.getLogger(__name__)
MAX_PROMPTS = 1000  # a prompts file with more is not a lesson's prepared prompts


def practice_dir() -> Path:
    return paths.resources_dir() / "practice"


def _text(value: object, where: str, key: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise PracticeError(f"{where}: '{key}' is required")
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool) and key == "answer":
        return str(value)
    if not isinstance(value, str):
        raise PracticeError(f"{where}: '{key}' must be a string")
    return value


def load_practice_file(path: Path) -> PracticeSet:
    """Load and validate one practice TOML file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PracticeError(f"{path.name}: {exc}") from exc
    return _practice_set(data, path)


def problem_count(path: Path) -> int:
    """How many problems the set in *path* has (PracticeError if it does not load): what a
    lesson pack's installer asks of each set before it installs anything."""
    return len(load_practice_file(path).problems)


def _practice_set(data: dict[str, Any], path: Path) -> PracticeSet:
    if "format" in data:
        return load_benchmark_manifest(path, data)
    name = _text(data.get("name"), path.name, "name") or path.stem
    default_kind = data.get("kind", "math")
    problems = []
    seen = set()
    for index, raw in enumerate(data.get("problems", [])):
        where = f"{path.name} problem {index + 1}"
        if not isinstance(raw, dict):
            raise PracticeError(f"{where}: must be a table")
        pid = _text(raw.get("id"), where, "id", required=True)
        assert pid is not None
        if pid in seen:
            raise PracticeError(f"{where}: duplicate id {pid!r}")
        seen.add(pid)
        kind = raw.get("kind", default_kind)
        if kind not in KINDS:
            raise PracticeError(f"{where}: kind must be one of {', '.join(KINDS)}")
        prompt = _text(raw.get("prompt"), where, "prompt", required=True)
        assert prompt is not None
        answer = _text(raw.get("answer"), where, "answer")
        tests = _text(raw.get("tests"), where, "tests")
        if kind == "math" and answer is None:
            raise PracticeError(f"{where}: a math problem needs an 'answer'")
        if kind == "code" and not tests:
            raise PracticeError(f"{where}: a code problem needs 'tests'")
        verifiable = raw.get("verifiable", kind != "open")
        if not isinstance(verifiable, bool):
            raise PracticeError(f"{where}: 'verifiable' must be true or false")
        title = _text(raw.get("title"), where, "title") or prompt.splitlines()[0][:60]
        problems.append(Problem(
            id=pid, title=title, prompt=prompt.strip(), kind=kind, answer=answer,
            tests=tests, verifiable=verifiable,
            entry_point=_text(raw.get("entry_point"), where, "entry_point"),
            set_name=name, notes=_text(raw.get("notes"), where, "notes") or "",
            settings=_settings(raw.get("settings"), where),
        ))
    return PracticeSet(name=name, problems=problems,
                       description=_text(data.get("description"), path.name, "description") or "",
                       path=str(path), key=path.stem)


def _settings(value: object, where: str) -> tuple[tuple[str, object], ...]:
    """A prepared prompt's ``settings`` table, checked key by key against PROMPT_SETTINGS."""
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise PracticeError(f"{where}: 'settings' must be a table")
    found: list[tuple[str, object]] = []
    for key, item in value.items():
        kind = PROMPT_SETTINGS.get(key)
        if kind is None:
            raise PracticeError(f"{where}: unknown setting {key!r} (known: "
                                f"{', '.join(PROMPT_SETTINGS)})")
        if kind is float and isinstance(item, int) and not isinstance(item, bool):
            item = float(item)
        if not isinstance(item, kind) or (kind is int and isinstance(item, bool)):
            raise PracticeError(f"{where}: setting {key!r} must be a {kind.__name__}")
        if (key == "temperature" and not (isinstance(item, float) and math.isfinite(item)
                                          and 0.0 <= item <= 2.0)) \
                or (key == "max_tokens" and not (isinstance(item, int) and 1 <= item <= 32768)) \
                or (key == "seed" and not (isinstance(item, int) and 0 <= item < 2**31)):
            raise PracticeError(f"{where}: setting {key!r} is out of range ({item!r})")
        found.append((key, item))
    return tuple(found)


def load_practice_sets(directory: Path | None = None, *, full: bool = True) -> list[PracticeSet]:
    """Every practice set shipped with the app (sorted by file name), each benchmark subset
    followed by its whole benchmark when that is on this computer (*full*) and not shipped
    whole itself (HumanEval is: ``humaneval.toml``), then (for the app's own folder) the
    sets lesson packs installed (:func:`installed_practice_sets`). A full set
    that cannot be read (a pulled Parquet file without pyarrow) is left out: the subset
    still works, and ``triptych practice pull`` says why."""
    folder = directory or practice_dir()
    if not folder.is_dir():
        return []
    shipped = [load_practice_file(path) for path in sorted(folder.glob("*.toml"))]
    whole_shipped = {s.key for s in shipped if s.complete}  # humaneval: all 164 ship
    sets: list[PracticeSet] = []
    for practice_set in shipped:
        sets.append(practice_set)
        if full and practice_set.hub_repo and not practice_set.complete \
                and practice_set.format not in whole_shipped:
            whole = full_set_file(practice_set)
            if whole is not None:
                try:
                    sets.append(load_full_set(practice_set, whole))
                except PracticeError:
                    pass
    if directory is None:
        sets += installed_practice_sets(shipped)
    return sets


def installed_practice_sets(shipped: list[PracticeSet] | None = None) -> list[PracticeSet]:
    """The sets lesson packs installed, one folder per lesson (its prepared prompts first).
    A set that repeats a shipped one problem for problem (a pack that carried gsm8k-mini) is
    not listed twice; a file that cannot be read is left out (it was checked when installed,
    so someone edited it) and logged."""
    same = {(s.key, tuple(s.problems)) for s in shipped or []}
    sets: list[PracticeSet] = []
    for folder in sorted(p for p in paths.user_practice_dir().iterdir()
                         if p.is_dir() and not p.name.startswith(".")):
        files = sorted(folder.glob("*.toml"), key=lambda f: (f.stem != folder.name, f.name))
        for path in files:
            try:
                practice_set = load_practice_file(path)
            except PracticeError as exc:
                _log.warning("practice set %s left out: %s", path, exc)
                continue
            if (practice_set.key, tuple(practice_set.problems)) not in same:
                sets.append(practice_set)
    return sets


def set_files(practice_set: PracticeSet) -> list[Path]:
    """The files a set is made of, its TOML first (a benchmark subset's records beside it):
    what a lesson pack carries. A whole benchmark pulled into the Hub cache is no file of
    ours to carry, so it is refused with a sentence."""
    path = Path(practice_set.path)
    if path.suffix != ".toml":
        raise PracticeError(
            f"The practice set {practice_set.key!r} is a whole benchmark in the Hugging Face "
            f"cache, not a set file; a lesson pack can carry its subset or your own sets.")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise PracticeError(f"{path.name} could not be read: {exc}") from exc
    data_file = data.get("data")
    if isinstance(data_file, str) and data_file:
        return [path, path.parent / data_file]
    return [path]


# ------------------------------------------------------------------ prepared prompts


def read_prompts(path: Path) -> list[dict[str, Any]]:
    """A prompts file: TOML (``[[prompts]]`` tables) or JSON (a list, or ``{"prompts": […]}``),
    each ``{prompt, settings?, answer?, title?}``. Checked whole by
    :func:`prepared_set_toml`; here only its shape."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PracticeError(f"The prompts file {path} could not be read "
                            f"({getattr(exc, 'strerror', None) or exc}).") from None
    try:
        data: Any = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise PracticeError(f"The prompts file {path.name} is not valid {kind} ({exc}).") from None
    if isinstance(data, dict):
        data = data.get("prompts")
    if not isinstance(data, list) or not data or not all(isinstance(p, dict) for p in data):
        raise PracticeError(f"The prompts file {path.name} must hold a list of prompts "
                            "([[prompts]] tables in TOML, a list of objects in JSON).")
    if len(data) > MAX_PROMPTS:
        raise PracticeError(f"The prompts file {path.name} holds {len(data)} prompts; a lesson "
                            f"takes at most {MAX_PROMPTS}.")
    return data


def prepared_set_toml(title: str, prompts: list[dict[str, Any]]) -> str:
    """A lesson's prepared prompts as a practice set file (its name the lesson's title): a
    prompt with an ``answer`` is a checkable math problem, one without is open. The text is
    read back as :func:`load_practice_file` reads it before it is returned, so what a pack
    carries always loads."""
    key = slug(title)[:48]
    problems = []
    for number, raw in enumerate(prompts, start=1):
        where = f"prompt {number}"
        unknown = sorted(set(raw) - {"prompt", "settings", "answer", "title"})
        if unknown:
            raise PracticeError(f"{where}: unknown field {unknown[0]!r} (a prepared prompt has "
                                "prompt, settings, answer and title).")
        prompt = _text(raw.get("prompt"), where, "prompt", required=True)
        if not prompt or not prompt.strip():
            raise PracticeError(f"{where}: 'prompt' is empty")
        table: dict[str, Any] = {"id": f"{key}-{number}"}
        title_text = _text(raw.get("title"), where, "title")
        if title_text:
            table["title"] = title_text
        table["prompt"] = prompt
        answer = _text(raw.get("answer"), where, "answer")
        table["kind"] = "math" if answer is not None else "open"
        if answer is not None:
            table["answer"] = answer
        settings = _settings(raw.get("settings"), where)
        if settings:
            table["settings"] = dict(settings)
        problems.append(table)
    doc = tomlkit.document()
    doc.add(tomlkit.comment("A lesson's prepared prompts (triptych pack --prompts)."))
    doc["name"] = title
    doc["description"] = f"The prepared prompts of the lesson {title!r}."
    doc["kind"] = "open"
    doc["problems"] = problems
    text = tomlkit.dumps(doc)
    try:  # never carry what the loader cannot read back
        _practice_set(tomllib.loads(text), Path(f"{key}.toml"))
    except tomllib.TOMLDecodeError as exc:
        raise PracticeError(f"The prepared prompts could not be written as TOML ({exc}).") from None
    return text


def find_set(name: str, sets: list[PracticeSet] | None = None) -> PracticeSet:
    """A set by its key or file name ('gsm8k-mini', 'gsm8k') or its title (any case)."""
    wanted = name.strip().casefold()
    candidates = sets if sets is not None else load_practice_sets()
    for practice_set in candidates:
        names = {practice_set.key.casefold(), Path(practice_set.path).stem.casefold(),
                 practice_set.name.casefold()}
        if wanted in names:
            return practice_set
    known = ", ".join(s.key or s.name for s in candidates)
    raise PracticeError(f"No practice set called {name!r}; there are: {known}.")


def find_problem(problem_id: str, sets: list[PracticeSet] | None = None) -> Problem:
    for practice_set in sets if sets is not None else load_practice_sets():
        for problem in practice_set.problems:
            if problem.id == problem_id:
                return problem
    raise KeyError(problem_id)
