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
so later builds, the tests and fresh clones of the repository reuse it. Prints, as its last line,
the Python to run PyInstaller with.

    python packaging/bundle_venv.py [--venv DIR] [--wheel-only]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The llama-cpp-python bundles are built and tested with; its vendored llama.cpp must have
# ggml_backend_load_all_from_path (the runtime hook calls it).
LLAMA_CPP_PYTHON = os.environ.get("TRIPTYCH_LLAMA_CPP_PYTHON", "0.3.36")


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


def prepare_venv(folder: Path, wheel: Path) -> Path:
    """A venv with that llama.cpp, Triptych's runtime packages and PyInstaller."""
    python = venv_python(folder)
    if not python.exists():
        venv.create(folder, with_pip=True)
    # Which wheel the venv holds: a new llama.cpp build (other options) replaces it.
    marker = folder / "triptych-llama-wheel.txt"
    installed = marker.read_text(encoding="utf-8") if marker.exists() else ""
    if installed != wheel.parent.name:
        subprocess.run([str(python), "-m", "pip", "install", "-q", "--force-reinstall",
                        "--no-deps", str(wheel)], check=True)
        marker.write_text(wheel.parent.name, encoding="utf-8")
    build_tools = ["pyinstaller>=6.10"]
    if sys.platform in ("win32", "darwin"):
        build_tools.append("pillow")  # turns resources/icon.png into .ico / .icns
    subprocess.run([str(python), "-m", "pip", "install", "-q", f"{ROOT}[starter]", *build_tools],
                   check=True)
    return python


def default_wheels() -> Path:
    """Per user, not per checkout: the compile takes half an hour on two cores, and a fresh
    clone (CI, a second work tree) should not pay for it again."""
    configured = os.environ.get("TRIPTYCH_WHEEL_CACHE")
    if configured:
        return Path(configured)
    from platformdirs import user_cache_path

    return user_cache_path("triptych") / "wheels"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=ROOT / "build" / "venv-bundle")
    parser.add_argument("--wheels", type=Path, default=default_wheels())
    parser.add_argument("--wheel-only", action="store_true",
                        help="compile (or find) the wheel and print its path")
    options = parser.parse_args(argv)
    wheel = built_wheel(options.wheels, cmake_args())
    if options.wheel_only:
        print(wheel)
        return 0
    print(prepare_venv(options.venv, wheel))
    return 0


if __name__ == "__main__":
    sys.exit(main())
