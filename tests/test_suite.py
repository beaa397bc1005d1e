"""The suite itself: a test process that crashes ends the run, with a failure, at once.

On a machine where native code crashes (llama.cpp's AMX kernels on an Intel Xeon), the
README's test command once never ended: pytest-xdist replaced each crashed worker, ran
the crash again, and after the last test sat waiting forever. A crash must fail the run
with a clear line and end it, in whatever mode the suite runs. These runs use the
project's own pytest configuration (pyproject.toml) on a few files written here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BOUND_S = 120  # a hang, not a speed: the runs below take a few seconds

CRASHING = """
import os, signal

def test_before():
    pass

def test_crashes():
    os.kill(os.getpid(), signal.SIG{name})

def test_after():
    pass
"""


def _write(folder: Path, signal_name: str) -> list[str]:
    (folder / "test_one.py").write_text("def test_one():\n    pass\n")
    (folder / "test_crash.py").write_text(CRASHING.format(name=signal_name))
    (folder / "test_three.py").write_text("def test_three():\n    pass\n")
    return [str(folder / name) for name in ("test_one.py", "test_crash.py", "test_three.py")]


def _pytest(folder: Path, files: list[str], *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pyproject.toml"),
         "--rootdir", str(folder), "-p", "no:cacheprovider", *extra, *files],
        cwd=folder, capture_output=True, text=True, timeout=BOUND_S)


@pytest.mark.parametrize(("mode", "signal_name"), [
    ((), "SEGV"),  # the README's command: pyproject's addopts (-n auto --dist loadfile)
    ((), "ILL"),  # the installer's kernels on a CPU without their instructions
    (("-n", "2", "--dist", "loadfile"), "SEGV"),
    (("-n", "1", "--dist", "loadfile"), "SEGV"),
    (("-n", "2", "--dist", "load"), "SEGV"),
    (("-n", "2", "--dist", "loadscope"), "SEGV"),
], ids=["readme", "readme-sigill", "loadfile-2", "loadfile-1", "load-2", "loadscope-2"])
def test_a_crashing_test_ends_the_run_with_a_failure(tmp_path, mode, signal_name):
    done = _pytest(tmp_path, _write(tmp_path, signal_name), *mode)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]
    assert "crashed while running" in output and "test_crash.py::test_crashes" in output
    assert "worker restarting disabled" in output, output[-3000:]
    assert output.count("FAILED") == 1, output[-3000:]  # run once, not again and again


def test_without_workers_a_crash_ends_pytest_with_the_signal(tmp_path):
    done = _pytest(tmp_path, _write(tmp_path, "SEGV"), "-n", "0")
    assert done.returncode == -11 or done.returncode == 139, done.stdout[-2000:]
    assert "Segmentation fault" in done.stderr and "test_crashes" in done.stderr
