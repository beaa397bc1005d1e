"""Print a fingerprint of everything that goes into the standalone app.

The build scripts write it next to the bundle (``triptych.build-info.json``); the smoke
test (tests/test_packaging.py) reuses an existing bundle only while the fingerprint
still matches, so it never tests a stale build.

    python packaging/source_stamp.py [--starter-models]
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INPUTS = ("desktop_app", "packaging", "resources", "models.toml", "pyproject.toml")
SKIP_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache"}


def source_files(root: Path = ROOT) -> list[Path]:
    files: list[Path] = []
    for name in INPUTS:
        path = root / name
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            files.extend(
                p for p in path.rglob("*")
                if p.is_file() and not SKIP_PARTS.intersection(p.parts) and p.suffix != ".pyc"
            )
    return sorted(files)


def stamp(starter_models: bool, root: Path = ROOT) -> str:
    digest = hashlib.sha256(f"starter={int(starter_models)}\n".encode())
    for path in source_files(root):
        digest.update(str(path.relative_to(root).as_posix()).encode() + b"\0")
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


if __name__ == "__main__":
    print(stamp("--starter-models" in sys.argv[1:]))
