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

A file with ``format = "gsm8k"`` (or math500, humaneval, mbpp) is instead the manifest
of a benchmark subset whose problems are in a JSONL file beside it
(:mod:`desktop_app.verify.benchmarks`); the whole benchmark is listed too when it is on
this computer (pulled from the Hub, or shipped by a package).

No Qt, no network.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from desktop_app.verify.benchmarks import full_set_file, load_benchmark_manifest, load_full_set
from desktop_app.verify.problems import KINDS, PracticeError, PracticeSet, Problem

__all__ = ["KINDS", "PracticeError", "PracticeSet", "Problem", "find_problem", "find_set",
           "load_practice_file", "load_practice_sets", "practice_dir"]


def practice_dir() -> Path:
    from desktop_app.paths import resources_dir

    return resources_dir() / "practice"


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
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise PracticeError(f"{path.name}: {exc}") from exc
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
        ))
    return PracticeSet(name=name, problems=problems,
                       description=_text(data.get("description"), path.name, "description") or "",
                       path=str(path), key=path.stem)


def load_practice_sets(directory: Path | None = None, *, full: bool = True) -> list[PracticeSet]:
    """Every practice set shipped with the app (sorted by file name), each benchmark subset
    followed by its whole benchmark when that is on this computer (*full*) and not shipped
    whole itself (HumanEval is: ``humaneval.toml``). A full set
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
    return sets


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
