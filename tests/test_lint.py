"""ruff and mypy, as configured in pyproject.toml, are part of the suite."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


@contextlib.contextmanager
def _mypy_cache() -> Iterator[Path]:
    """mypy's incremental cache, kept in the user's cache so a fresh clone (CI) does not
    analyse PySide6's and numpy's stubs again (about 20 s alone, over a minute on a busy
    machine). mypy checks every cached module against its source's hash, so a cache
    written from another checkout is reused only where the sources are the same. One run
    at a time uses it (a lock), so no run reads entries another is writing."""
    from platformdirs import user_cache_path

    cache = user_cache_path("triptych") / "mypy"
    cache.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # Windows: no shared cache, the checkout's own
        yield ROOT / ".mypy_cache"
        return
    with open(cache / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield cache


def test_ruff_is_clean():
    done = run("ruff", "check", "desktop_app", "tests", "packaging")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean():
    with _mypy_cache() as cache:  # pyproject names the files: the package and the fake engine
        done = run("mypy", "--cache-dir", str(cache))
    assert done.returncode == 0, done.stdout + done.stderr
