"""Colours, fonts and the app icon, shared by every widget."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QIcon, QPalette

ROLE_COLORS = {
    "base": "#B7791F",       # amber: pretraining only
    "instruct": "#2B6CB0",   # blue: fine-tuned assistant
    "reasoning": "#7B3FC4",  # purple: thinks first
}
ROLE_LABELS = {"base": "BASE", "instruct": "INSTRUCT", "reasoning": "REASONING"}

OK_COLOR = "#2F855A"
FAIL_COLOR = "#C53030"
WARN_COLOR = "#B7791F"


def role_color(role: str) -> str:
    return ROLE_COLORS.get(role, "#718096")


def is_dark() -> bool:
    """True when the OS (or the palette) is in dark mode."""
    app = QGuiApplication.instance()
    if app is not None:
        scheme = QGuiApplication.styleHints().colorScheme()
        if scheme == Qt.ColorScheme.Dark:
            return True
        if scheme == Qt.ColorScheme.Light:
            return False
        window = QGuiApplication.palette().color(QPalette.ColorRole.Window)
        return window.lightness() < 128
    return False


def subtle_bg() -> str:
    """A background a little off the window colour (code blocks, user bubbles)."""
    return "#2A2F3A" if is_dark() else "#F1F3F6"


def muted_fg() -> str:
    return "#A0A8B8" if is_dark() else "#5A6270"


def border_color() -> str:
    return "#3A4150" if is_dark() else "#D5DAE1"


def code_bg() -> QColor:
    return QColor("#1E222A") if is_dark() else QColor("#F4F5F7")


def mono_font(point_size: float | None = None) -> QFont:
    font = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
    font.setStyleHint(QFont.StyleHint.Monospace)
    if point_size:
        font.setPointSizeF(point_size)
    return font


def app_icon() -> QIcon:
    """The triptych glyph from resources/ (png preferred, svg otherwise), or an empty icon."""
    try:
        from desktop_app.paths import resources_dir

        root = resources_dir()
    except Exception:
        return QIcon()
    icon = QIcon()
    for name in ("icon.svg", "icon.png"):
        path = root / name
        if path.exists():
            icon.addFile(str(path))
    return icon
