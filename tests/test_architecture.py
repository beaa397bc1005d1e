"""The layout the README describes, checked statically: no Qt in the core, no import cycles,
modules small enough to read in one sitting."""

from __future__ import annotations

import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

import desktop_app

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "desktop_app"
MAX_MODULE_LINES = 800


def _contracts() -> list[dict]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return config["tool"]["importlinter"]["contracts"]


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _contract(kind: str) -> dict:
    return next(c for c in _contracts() if c["type"] == kind)


def _layers() -> list[set[str]]:
    return [{name.strip() for name in layer.split("|")} for layer in _contract("layers")["layers"]]


def test_layers_name_every_package():
    """The tree is the architecture: every top-level package or module sits in one layer, so
    a new one at the top level fails here until someone decides where it belongs."""
    top = {f"desktop_app.{info.name}" for info in pkgutil.iter_modules(desktop_app.__path__)
           if info.name != "__main__"}
    layered = set().union(*_layers())
    assert top == layered


def test_everything_below_the_window_is_qt_free():
    """One rule per layer: the Qt contract covers every layer below ``ui``."""
    layers = _layers()
    below_ui = set().union(*layers[layers.index({"desktop_app.ui"}) + 1:])
    assert set(_contract("forbidden")["source_modules"]) == below_ui


def test_layers_contract_catches_an_upward_import(tmp_path: Path):
    """The contract can fail: a copy of the package where a model module imports the session
    layer breaks it."""
    import shutil

    copy = tmp_path / "desktop_app"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "_bundled"))
    (copy / "models" / "upward.py").write_text("from desktop_app.session import turn\n")
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--config", str(ROOT / "pyproject.toml"), "--no-cache"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert done.returncode != 0
    assert "desktop_app.models.upward -> desktop_app.session.turn" in done.stdout


def test_no_import_cycle_between_any_two_modules():
    """Stricter than the sibling contract: a package and its own submodules count too, and
    imports inside functions count as much as top-level ones."""
    graph = grimp.build_graph("desktop_app", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    # a package's __init__ re-exporting its children is how packages work, not a cycle
    cycles = [scc for scc in _strongly_connected(edges) if len(scc) > 1
              and not _only_package_reexports(scc, edges)]
    assert not cycles, f"import cycles: {cycles}"


def _only_package_reexports(scc: list[str], edges: dict[str, set[str]]) -> bool:
    """True when every edge back into the group goes through a package __init__ importing its
    own children (never a child importing its package)."""
    members = set(scc)
    for importer in members:
        for imported in edges[importer] & members:
            if imported.startswith(importer + "."):
                continue  # package -> its own child: fine
            return False
    return True


def _strongly_connected(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (no recursion limit on a deep chain)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in edges:
                    continue
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    found.append(sorted(group))
    return found


def test_modules_are_small_enough_to_read():
    too_long = {str(path.relative_to(ROOT)): n for path in PACKAGE.rglob("*.py")
                if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not too_long, f"modules over {MAX_MODULE_LINES} lines: {too_long}"


def test_cycle_finder_finds_a_cycle():
    """The checker itself can fail: a two-module loop and a self-contained package are told apart."""
    loop = {"a": {"b"}, "b": {"a"}, "c": set()}
    assert [g for g in _strongly_connected(loop) if len(g) > 1] == [["a", "b"]]
    package = {"p": {"p.x"}, "p.x": {"p"}}
    scc = [g for g in _strongly_connected(package) if len(g) > 1][0]
    assert not _only_package_reexports(scc, package)  # the child imports its package back
    package_only = {"p": {"p.x"}, "p.x": set()}
    assert all(len(g) == 1 for g in _strongly_connected(package_only))
