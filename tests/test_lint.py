"""ruff and mypy, as configured in pyproject.toml, are part of the suite."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_ruff_is_clean():
    done = run("ruff", "check", "desktop_app", "tests", "packaging")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean():
    done = run("mypy")  # pyproject names the files: the package and the fake engine
    assert done.returncode == 0, done.stdout + done.stderr
