"""Where Triptych keeps things: config, data, caches, bundled resources.

Set ``TRIPTYCH_HOME`` to put every per-user directory under one folder (tests,
portable installs). Nothing here imports Qt.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import platformdirs

APP_DIR_NAME = "triptych"


def _home_override() -> Path | None:
    value = os.environ.get("TRIPTYCH_HOME")
    return Path(value) if value else None


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def config_dir() -> Path:
    """User configuration directory (user catalog, settings)."""
    home = _home_override()
    return _ensure(home / "config" if home else Path(platformdirs.user_config_dir(APP_DIR_NAME)))


def data_dir() -> Path:
    """User data directory (assembled starter models, imported models, state)."""
    home = _home_override()
    return _ensure(home / "data" if home else Path(platformdirs.user_data_dir(APP_DIR_NAME)))


def models_dir(*, create: bool = True) -> Path:
    """Directory holding model files Triptych writes itself (starter assembly, imports)."""
    folder = data_dir() / "models"
    return _ensure(folder) if create else folder


def lesson_models_dir(*, create: bool = True) -> Path:
    """Models a lesson pack installed, one folder each (removing the model deletes it)."""
    folder = models_dir(create=create) / "lessons"
    return _ensure(folder) if create else folder


def user_practice_dir(*, create: bool = True) -> Path:
    """Practice sets installed on this computer (a lesson pack's, one folder per lesson),
    listed beside the shipped ones. ``create=False``: the path only (for a caller that
    must leave no new folder behind)."""
    folder = data_dir() / "practice"
    return _ensure(folder) if create else folder


def user_catalog_path() -> Path:
    """The user's own catalog, which adds to or overrides the bundled ``models.toml``."""
    return config_dir() / "models.toml"


def settings_path() -> Path:
    """The window's remembered layout and pane settings (JSON)."""
    return config_dir() / "settings.json"


def _bundle_roots() -> list[Path]:
    """Places bundled files may live: frozen bundle, installed wheel, source checkout."""
    package_dir = Path(__file__).resolve().parent
    roots = []
    frozen_root = getattr(sys, "_MEIPASS", None)
    if frozen_root:
        roots.append(Path(frozen_root) / "desktop_app" / "_bundled")
    roots.append(package_dir / "_bundled")
    roots.append(package_dir.parent)  # source checkout / editable install
    return roots


def bundled_path(relative: str) -> Path:
    """Path of a file shipped with the app (``models.toml``, ``resources/...``)."""
    for root in _bundle_roots():
        candidate = root / relative
        if candidate.exists():
            return candidate
    return _bundle_roots()[-1] / relative


def bundled_catalog_path() -> Path:
    """The catalog shipped with the app."""
    return bundled_path("models.toml")


def resources_dir() -> Path:
    """The shipped ``resources/`` directory (icons, practice sets)."""
    return bundled_path("resources")
