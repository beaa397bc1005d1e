"""The window's remembered state: JSON at ``paths.settings_path()``."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from desktop_app import paths


@dataclass
class WindowSettings:
    panes: list[dict[str, Any]] = field(default_factory=list)
    geometry: str = ""          # QWidget.saveGeometry() as base64
    splitter: str = ""          # QSplitter.saveState() as base64
    zoom: float = 1.0
    presentation: bool = False
    thinking_expanded: bool = False
    sync_scroll: bool = False
    last_prompt: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_settings() -> WindowSettings:
    """Read the settings file; anything missing or malformed falls back to defaults."""
    try:
        data = json.loads(paths.settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return WindowSettings()
    if not isinstance(data, dict):
        return WindowSettings()
    window = data.get("window", data)
    settings = WindowSettings()
    for key, default in asdict(WindowSettings()).items():
        value = window.get(key, default) if isinstance(window, dict) else default
        if type(value) is type(default) or (isinstance(default, float) and isinstance(value, int)):
            setattr(settings, key, value)
    settings.panes = [p for p in settings.panes if isinstance(p, dict)][:4]
    return settings


def load_language() -> str:
    """The language chosen in View → Language ("" follows the OS). Kept beside the
    window's state, not in it: the window rewrites its own state when it closes."""
    try:
        data = json.loads(paths.settings_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    value = data.get("language", "") if isinstance(data, dict) else ""
    return value if isinstance(value, str) else ""


def save_language(code: str) -> None:
    _write({"language": code})


def save_settings(settings: WindowSettings) -> None:
    _write({"window": settings.to_dict()})


def _write(changes: dict[str, Any]) -> None:
    """Write atomically, keeping keys other parts of the app may have added."""
    target = paths.settings_path()
    try:
        existing = json.loads(target.read_text(encoding="utf-8"))
        if not isinstance(existing, dict):
            existing = {}
    except (OSError, ValueError):
        existing = {}
    existing.update(changes)
    tmp = target.with_suffix(".tmp")
    try:
        tmp.write_text(json.dumps(existing, indent=2), encoding="utf-8")
        tmp.replace(target)
    except OSError:
        pass
