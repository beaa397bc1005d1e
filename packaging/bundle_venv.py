"""Make the venv a bundle is frozen from, with llama.cpp built for the CPUs it will meet.

A ``pip install`` of llama-cpp-python compiles llama.cpp for the build machine
(``GGML_NATIVE=ON``): on an AVX-512 machine its kernels crash older laptops with "illegal
instruction". For bundles this builds llama.cpp the way llama.cpp's own releases do:

* x86-64 and Linux arm64: ``GGML_NATIVE=OFF``, ``GGML_BACKEND_DL=ON`` and
  ``GGML_CPU_ALL_VARIANTS=ON``: one ``libggml-cpu-<variant>`` library per CPU generation
  (x64 baseline, SSE4.2, AVX, AVX2, AVX-512, AVX-VNNI, AMX ...). At run time ggml scores
  each against the CPU and loads the best (the runtime hook points it at the folder).
* macOS: ``GGML_NATIVE=OFF`` (every Apple Silicon Mac runs it), Metal stays on.

The wheel is compiled once (slow: ~14 CPU variants), at the lowest priority, and kept in
the user's cache (``~/.cache/triptych/wheels/<key>/`` on Linux, or ``$TRIPTYCH_WHEEL_CACHE``),
so later builds, the tests and fresh clones of the repository reuse it.

The venv around it (PySide6, numpy, the starter models, PyInstaller: ~900 MB, a minute of
pip) is kept in the user's cache too (``~/.cache/triptych/bundle-venvs/<key>/``, or
``$TRIPTYCH_BUNDLE_VENV_CACHE``), keyed by what decides its contents: the wheel, the Python,
and the requirements in pyproject.toml. It holds Triptych's requirements, not Triptych:
PyInstaller reads ``desktop_app`` from the checkout (triptych.spec), so a source change
needs no new venv. ``build/venv-bundle`` links to it. Prints, as its last line, the Python
to run PyInstaller with.

    python packaging/bundle_venv.py [--venv DIR] [--wheel-only]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import time
import tomllib
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The llama-cpp-python bundles are built and tested with; its vendored llama.cpp must have
# ggml_backend_load_all_from_path (the runtime hook calls it).
LLAMA_CPP_PYTHON = os.environ.get("TRIPTYCH_LLAMA_CPP_PYTHON", "0.3.36")
# Bump when the way a bundle venv is made changes, so cached ones are made anew.
VENV_LAYOUT = "requirements-only 1"


def cmake_args(system: str | None = None, machine: str | None = None) -> list[str]:
    """CMake options for a llama.cpp that runs on every CPU of the target OS."""
    system = system or platform.system()
    machine = (machine or platform.machine()).lower()
    args = ["-DGGML_NATIVE=OFF", "-DLLAVA_BUILD=OFF"]  # Triptych does not use mtmd/llava
    if system == "Darwin":
        return args  # llama-cpp-python turns Metal on for every Apple build
    if machine in ("x86_64", "amd64", "aarch64", "arm64"):
        args += [
            "-DGGML_BACKEND_DL=ON",
            "-DGGML_CPU_ALL_VARIANTS=ON",
            # ggml installs its loadable backends into CMAKE_INSTALL_BINDIR: put them next
            # to libllama, in the folder the runtime hook hands to ggml.
            "-DCMAKE_INSTALL_BINDIR=llama_cpp/lib",
        ]
    return args


def cache_key(args: list[str], version: str = LLAMA_CPP_PYTHON) -> str:
    """A folder name that changes whenever the version, the options or the platform do."""
    what = "\n".join([version, platform.system(), platform.machine(), *args])
    return f"llama-cpp-python-{version}-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def _run_at_low_priority(command: list[str], env: dict[str, str]) -> None:
    """Run a long compile without slowing down everyone else on the machine."""
    if sys.platform == "win32":
        subprocess.run(command, check=True, env=env,
                       creationflags=subprocess.BELOW_NORMAL_PRIORITY_CLASS)
    else:
        subprocess.run(command, check=True, env=env, preexec_fn=lambda: os.nice(19))


def built_wheel(wheels: Path, args: list[str], python: str = sys.executable) -> Path:
    """The cached wheel, compiled first if there is none."""
    folder = wheels / cache_key(args)
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if found:
        return found[-1]
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CMAKE_ARGS": " ".join(args)}
    env.setdefault("CMAKE_BUILD_PARALLEL_LEVEL", str(os.cpu_count() or 2))
    print(f"bundle_venv: compiling llama-cpp-python {LLAMA_CPP_PYTHON} ({' '.join(args)}); "
          "this takes a while, once", file=sys.stderr)
    _run_at_low_priority(
        [python, "-m", "pip", "wheel", "--no-deps", "--no-cache-dir", "--no-binary",
         "llama-cpp-python", "-w", str(folder), f"llama-cpp-python=={LLAMA_CPP_PYTHON}"],
        env,
    )
    found = sorted(folder.glob("llama_cpp_python-*.whl"))
    if not found:
        raise SystemExit(f"bundle_venv: pip built no wheel into {folder}")
    return found[-1]


def venv_python(folder: Path) -> Path:
    return folder / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def requirements(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """What the bundle venv installs besides the wheel: Triptych's dependencies, the
    starter models and the build tools (not Triptych itself: the spec reads the checkout)."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    tools = ["pyinstaller>=6.10"]
    if sys.platform in ("win32", "darwin"):
        tools.append("pillow")  # turns resources/icon.png into .ico / .icns
    return [*project["dependencies"], *project["optional-dependencies"]["starter"], *tools]


def venv_key(wheel: Path, wanted: list[str]) -> str:
    """A folder name that changes whenever the wheel, the Python or the requirements do."""
    what = "\n".join([VENV_LAYOUT, wheel.parent.name, wheel.name, sys.version,
                      platform.system(), platform.machine(), str(Path(sys.base_prefix)),
                      *sorted(wanted)])
    return f"bundle-venv-{hashlib.sha256(what.encode()).hexdigest()[:12]}"


def _marker(folder: Path) -> Path:
    return folder / "triptych-bundle-venv.json"


def prepare_venv(folder: Path, wheel: Path, wanted: list[str] | None = None) -> Path:
    """A venv at *folder* with that llama.cpp and *wanted*; nothing to do when its marker
    says it already has exactly those."""
    wanted = requirements() if wanted is None else wanted
    key = venv_key(wheel, wanted)
    python = venv_python(folder)
    marker = _marker(folder)
    try:
        if json.loads(marker.read_text(encoding="utf-8")).get("key") == key and python.exists():
            return python
    except (OSError, ValueError):
        pass
    if not python.exists():
        venv.create(folder, with_pip=True)
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--force-reinstall",
                    "--no-deps", str(wheel)], check=True)
    # The wheel is already there, so pip keeps it (it satisfies ``llama-cpp-python>=``).
    subprocess.run([str(python), "-m", "pip", "install", "-q", *wanted], check=True)
    marker.write_text(json.dumps({"key": key, "wheel": wheel.name, "requirements": wanted},
                                 indent=2), encoding="utf-8")
    return python


def cached_venv(venvs: Path, wheel: Path, link: Path | None = None) -> Path:
    """The bundle venv from the user's cache, made there first if it has none.

    Made under a temporary name and renamed into place, so a build that is interrupted,
    or two checkouts building at once, never leave a half-made venv under the final name
    (a venv runs from a new folder name through ``python -m``: its scripts' first lines
    are the only thing that keeps the old one). *link* (``build/venv-bundle``) is pointed
    at it, for the commands that name that folder."""
    wanted = requirements()
    folder = venvs / venv_key(wheel, wanted)
    if not _marker(folder).exists():
        venvs.mkdir(parents=True, exist_ok=True)
        _remove_stale(venvs)
        partial = venvs / f"{folder.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        print(f"bundle_venv: making the bundle venv {folder} (once for these requirements)",
              file=sys.stderr)
        prepare_venv(partial, wheel, wanted)
        try:
            partial.rename(folder)
        except OSError:  # another build finished the same venv first: use that one
            shutil.rmtree(partial, ignore_errors=True)
            if not _marker(folder).exists():
                raise
    os.utime(_marker(folder))  # last used: what _remove_stale goes by
    if link is not None:
        _point(link, folder)
    return venv_python(folder)


def _remove_stale(venvs: Path, unused_days: float = 30) -> None:
    """Venvs for old requirements or wheels (about 900 MB each), unused for a month, and
    half-made ones a crashed build left behind a day ago."""
    now = time.time()
    for entry in venvs.iterdir():
        marker = _marker(entry)
        try:
            if ".partial-" in entry.name:
                stale = now - entry.stat().st_mtime > 86400
            else:
                stale = marker.exists() and now - marker.stat().st_mtime > unused_days * 86400
        except OSError:
            continue
        if stale:
            shutil.rmtree(entry, ignore_errors=True)


def _point(link: Path, folder: Path) -> None:
    """Make *link* a symbolic link to *folder*; a venv left there by an older build (which
    made it in place) gives way. Where links cannot be made (Windows without the right),
    the printed path is what counts."""
    try:
        if link.is_symlink() or link.is_file():
            if link.resolve() == folder.resolve():
                return
            link.unlink()
        elif (link / "triptych-llama-wheel.txt").exists():
            shutil.rmtree(link)
        elif link.exists():
            return  # not ours: leave it
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(folder, target_is_directory=True)
    except OSError as exc:
        print(f"bundle_venv: could not link {link} to {folder}: {exc}", file=sys.stderr)


def default_wheels() -> Path:
    """Per user, not per checkout: the compile takes half an hour on two cores, and a fresh
    clone (CI, a second work tree) should not pay for it again."""
    configured = os.environ.get("TRIPTYCH_WHEEL_CACHE")
    if configured:
        return Path(configured)
    from platformdirs import user_cache_path

    return user_cache_path("triptych") / "wheels"


def default_venvs() -> Path:
    """Per user, like the wheels: every checkout with the same requirements shares one."""
    configured = os.environ.get("TRIPTYCH_BUNDLE_VENV_CACHE")
    if configured:
        return Path(configured)
    from platformdirs import user_cache_path

    return user_cache_path("triptych") / "bundle-venvs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path,
                        help="make the venv in DIR instead of the user's cache")
    parser.add_argument("--wheels", type=Path, default=default_wheels())
    parser.add_argument("--wheel-only", action="store_true",
                        help="compile (or find) the wheel and print its path")
    options = parser.parse_args(argv)
    wheel = built_wheel(options.wheels, cmake_args())
    if options.wheel_only:
        print(wheel)
        return 0
    if options.venv is not None:
        print(prepare_venv(options.venv, wheel))
    else:
        print(cached_venv(default_venvs(), wheel, link=ROOT / "build" / "venv-bundle"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
