"""Colours, fonts and the app icon, shared by every widget."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QWidget

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


def ok_color() -> str:
    """Green for a passed check, lighter on a dark background so it stays readable."""
    return "#68D391" if is_dark() else OK_COLOR


def fail_color() -> str:
    return "#FC8181" if is_dark() else FAIL_COLOR


def warn_color() -> str:
    return "#F6C453" if is_dark() else WARN_COLOR


def notice_style() -> str:
    """Style sheet body for a yellow notice strip (offline, warnings), light or dark."""
    if is_dark():
        return ("background: #3D3214; color: #F6E3A6; border: 1px solid #6B5518;"
                " border-radius: 4px; padding: 6px;")
    return ("background: #FFF3CD; color: #664D03; border: 1px solid #FFE69C;"
            " border-radius: 4px; padding: 6px;")


FONT_SCALE_PROPERTY = "triptychFontScale"


def set_font_scale(widget: QWidget, scale: float) -> None:
    """Mark a widget's text as ``scale`` times the surrounding size (metrics, badges); the
    zoom (:func:`apply_point_size`) keeps that ratio."""
    widget.setProperty(FONT_SCALE_PROPERTY, scale)
    font = QFont(widget.font())
    base = QGuiApplication.font().pointSizeF()
    if base > 0:
        font.setPointSizeF(base * scale)
        widget.setFont(font)


def font_scale(widget: QWidget) -> float:
    # Ask only when the property is set: PySide6 mis-counts the None an unset one returns.
    if _SCALE_NAME not in [bytes(name.data()) for name in widget.dynamicPropertyNames()]:
        return 1.0
    value = widget.property(FONT_SCALE_PROPERTY)
    return float(value) if isinstance(value, int | float) else 1.0


_SCALE_NAME = FONT_SCALE_PROPERTY.encode()


def apply_point_size(root: QWidget, point_size: float) -> None:
    """Give ``root`` and every widget inside it text of ``point_size`` points.

    Qt propagates a font change only one level into widgets that a style sheet styles
    (every pane has one), so zoom and presentation mode set the size on each widget;
    family, weight and a widget's relative scale (:func:`set_font_scale`) are kept.
    """
    if point_size <= 0:
        return
    for widget in (root, *root.findChildren(QWidget)):
        if widget.isWindow() and widget is not root:
            continue  # popups and menus keep the system size
        size = point_size * font_scale(widget)
        font = QFont(widget.font())
        if abs(font.pointSizeF() - size) > 0.01:
            font.setPointSizeF(size)
            widget.setFont(font)


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
