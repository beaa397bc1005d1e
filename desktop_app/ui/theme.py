"""Colours, fonts and the app icon, shared by every widget.

Light or dark, and high contrast, follow the OS *live*: a widget tinted with :func:`style`
(style sheets), :func:`rich_text` (a label's HTML) or :func:`on_change` (anything else, e.g.
a re-rendered Markdown document) is updated again whenever the colour scheme, the
application palette or the OS's contrast preference changes. High contrast (Qt's
``ContrastPreference.HighContrast``, or :func:`set_high_contrast`, or the environment
variable :data:`HIGH_CONTRAST_ENV`) swaps in black and white backgrounds and text, strong
borders, and role, pass and fail colours at 7:1 or more against the background. The registry holds widgets weakly and skips deleted ones,
so a removed pane neither leaks nor breaks the refresh.
"""

from __future__ import annotations

import logging
import os
import weakref
from collections.abc import Callable
from typing import Any, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QColor, QFont, QFontDatabase, QGuiApplication, QIcon, QPalette
from PySide6.QtWidgets import QApplication, QLabel, QWidget

_log = logging.getLogger(__name__)

ROLE_COLORS = {
    "base": "#B7791F",       # amber: pretraining only
    "instruct": "#2B6CB0",   # blue: fine-tuned assistant
    "reasoning": "#7B3FC4",  # purple: thinks first
}
ROLE_LABELS = {"base": "BASE", "instruct": "INSTRUCT", "reasoning": "REASONING"}

OK_COLOR = "#2F855A"
FAIL_COLOR = "#C53030"
WARN_COLOR = "#B7791F"


# high contrast: white text on each reaches 7:1 or more (badges, rules, light text)
ROLE_COLORS_HIGH = {"base": "#6B4500", "instruct": "#1A4A80", "reasoning": "#5A1FA0"}
ROLE_TEXT_COLORS_HIGH_DARK = {"base": "#FFC870", "instruct": "#A8D8FF", "reasoning": "#D4B8FF"}
HIGH_CONTRAST_ENV = "TRIPTYCH_HIGH_CONTRAST"  # 1: always high contrast, 0: never
_high_contrast: bool | None = None  # set_high_contrast's override (None: follow the OS)


def set_high_contrast(on: bool | None) -> None:
    """Force the high-contrast colours on or off (True/False), or follow the OS again
    (None); every registered widget is re-tinted."""
    global _high_contrast
    _high_contrast = on
    refresh()


def is_high_contrast() -> bool:
    """True when high-contrast colours are in use: the override, else the environment
    (:data:`HIGH_CONTRAST_ENV`), else the OS's contrast preference (Qt 6.10 and later)."""
    if _high_contrast is not None:
        return _high_contrast
    env = os.environ.get(HIGH_CONTRAST_ENV, "").strip().lower()
    if env in ("1", "true", "yes", "on"):
        return True
    if env in ("0", "false", "no", "off"):
        return False
    if QGuiApplication.instance() is None:
        return False
    hints = QGuiApplication.styleHints()
    accessibility = getattr(hints, "accessibility", None)
    if accessibility is None:  # Qt before 6.10: no contrast preference to follow
        return False
    try:
        preference = accessibility().contrastPreference()
    except (AttributeError, RuntimeError):
        return False
    return bool(preference == Qt.ContrastPreference.HighContrast)


def role_color(role: str) -> str:
    if is_high_contrast():
        return ROLE_COLORS_HIGH.get(role, "#3A3A3A")
    return ROLE_COLORS.get(role, "#718096")


ROLE_TEXT_COLORS_DARK = {"base": "#F6AD55", "instruct": "#90CDF4", "reasoning": "#B794F4"}


def role_text_color(role: str) -> str:
    """The role's colour for text: a lighter tint in dark mode, where the badge colour
    itself is too dark to read on a dark background."""
    if is_dark():
        if is_high_contrast():
            return ROLE_TEXT_COLORS_HIGH_DARK.get(role, "#FFFFFF")
        return ROLE_TEXT_COLORS_DARK.get(role, "#A0AEC0")
    return role_color(role)


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


def _pick(light: str, dark: str, high_light: str, high_dark: str) -> str:
    if is_high_contrast():
        return high_dark if is_dark() else high_light
    return dark if is_dark() else light


def background() -> str:
    """The window's own background in high contrast (pure black or white), else the
    palette's."""
    if is_high_contrast():
        return "#000000" if is_dark() else "#FFFFFF"
    return QGuiApplication.palette().color(QPalette.ColorRole.Window).name()


def text_color() -> str:
    """Text on :func:`background`."""
    if is_high_contrast():
        return "#FFFFFF" if is_dark() else "#000000"
    return QGuiApplication.palette().color(QPalette.ColorRole.WindowText).name()


def subtle_bg() -> str:
    """A background a little off the window colour (code blocks, user bubbles)."""
    return _pick("#F1F3F6", "#2A2F3A", "#FFFFFF", "#000000")


def muted_fg() -> str:
    return _pick("#5A6270", "#A0A8B8", "#1A1A1A", "#E6E6E6")


def border_color() -> str:
    return _pick("#D5DAE1", "#3A4150", "#000000", "#FFFFFF")


def ok_color() -> str:
    """Green for a passed check, lighter on a dark background so it stays readable."""
    return _pick(OK_COLOR, "#68D391", "#006100", "#7CFF7C")


def fail_color() -> str:
    return _pick(FAIL_COLOR, "#FC8181", "#A00000", "#FF9090")


def warn_color() -> str:
    return _pick(WARN_COLOR, "#F6C453", "#6B4500", "#FFD75E")


def focus_color() -> str:
    """The focus ring: blue, or in high contrast yellow on black and deep blue on white."""
    return _pick("#0B57D0", "#8AB4F8", "#0000CC", "#FFFF00")


def focus_rules(*selectors: str) -> str:
    """Style-sheet rules that draw a clear focus ring on ``selectors`` (``QToolButton``…):
    a widget whose own sheet says ``border: none`` would otherwise hide Qt's focus frame
    (a widget's own sheet wins over the application's)."""
    ring = f"border: 2px solid {focus_color()}; border-radius: 3px;"
    return " ".join(f"{selector}:focus {{ {ring} }}" for selector in selectors)


FOCUS_SELECTORS = ("QPushButton", "QToolButton", "QComboBox")
_FOCUS_BEGIN = "/* triptych-focus */"
_FOCUS_END = "/* /triptych-focus */"


def install_focus_style(app: QObject | None = None) -> None:
    """Give focused buttons, tool buttons and combo boxes a clear ring application-wide
    (kept apart from any other application style sheet, and re-coloured on a switch)."""
    app = app or QGuiApplication.instance()
    if not isinstance(app, QApplication):  # no widgets: nothing to style
        return
    sheet = app.styleSheet()
    if _FOCUS_BEGIN in sheet:
        start = sheet.index(_FOCUS_BEGIN)
        end = sheet.find(_FOCUS_END, start)
        sheet = sheet[:start] + (sheet[end + len(_FOCUS_END):] if end >= 0 else "")
    rules = f"{_FOCUS_BEGIN} {focus_rules(*FOCUS_SELECTORS)} {_FOCUS_END}"
    app.setStyleSheet(f"{sheet.strip()} {rules}".strip())


def notice_style() -> str:
    """Style sheet body for a yellow notice strip (offline, warnings), light or dark."""
    if is_high_contrast():
        fg, bg = ("#FFFFFF", "#000000") if is_dark() else ("#000000", "#FFFFFF")
        return (f"background: {bg}; color: {fg}; border: 2px solid {fg};"
                " border-radius: 4px; padding: 6px;")
    if is_dark():
        return ("background: #3D3214; color: #F6E3A6; border: 1px solid #6B5518;"
                " border-radius: 4px; padding: 6px;")
    return ("background: #FFF3CD; color: #664D03; border: 1px solid #FFE69C;"
            " border-radius: 4px; padding: 6px;")


# ------------------------------------------------------------------ following the OS

_W = TypeVar("_W", bound=QObject)

# owner -> {what: update(owner)}; weak on the owner (a Python wrapper), so nothing here
# keeps a widget alive. An update must not hold its owner strongly (it receives it).
_registry: weakref.WeakKeyDictionary[QObject, dict[str, Callable[[Any], None]]] = (
    weakref.WeakKeyDictionary())
_applied_dark: tuple[bool, bool] | None = None  # (dark, high contrast) last applied
_watcher: _SchemeWatcher | None = None


class _SchemeWatcher(QObject):
    """Lives as a child of the application; coalesces scheme, palette and contrast
    changes into one :func:`refresh` on the next event-loop pass."""

    def __init__(self, app: QGuiApplication):
        super().__init__(app)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._fire)
        app.styleHints().colorSchemeChanged.connect(self.schedule)
        app.paletteChanged.connect(self.schedule)  # platforms without a colour scheme
        accessibility = getattr(app.styleHints(), "accessibility", None)
        if accessibility is not None:  # Qt 6.10 and later: the OS's contrast preference
            accessibility().contrastPreferenceChanged.connect(self.schedule)

    def schedule(self, *_: object) -> None:
        self._timer.start()

    def _fire(self) -> None:
        refresh()


def _ensure_watcher() -> None:
    global _watcher, _applied_dark
    app = QGuiApplication.instance()
    if app is None:
        return
    if _watcher is None or not shiboken6.isValid(_watcher):
        _watcher = _SchemeWatcher(app)  # type: ignore[arg-type]
        _applied_dark = _appearance()
        _apply_palette()
        install_focus_style(app)


def _appearance() -> tuple[bool, bool]:
    return is_dark(), is_high_contrast()


_saved_palette: QPalette | None = None  # the palette before high contrast replaced it


def _apply_palette() -> None:
    """In high contrast, the application's palette too: black on white or white on black,
    with strong disabled text and a clear highlight; the previous one comes back after."""
    global _saved_palette
    app = QGuiApplication.instance()
    if app is None:
        return
    if not is_high_contrast():
        if _saved_palette is not None:
            saved, _saved_palette = _saved_palette, None
            QGuiApplication.setPalette(saved)
        return
    if _saved_palette is None:
        _saved_palette = QPalette(QGuiApplication.palette())
    QGuiApplication.setPalette(high_contrast_palette(is_dark()))


def high_contrast_palette(dark: bool) -> QPalette:
    ink, paper = (QColor("#FFFFFF"), QColor("#000000")) if dark else (
        QColor("#000000"), QColor("#FFFFFF"))
    role = QPalette.ColorRole
    palette = QPalette()
    for name in ("Window", "Base", "AlternateBase", "Button", "ToolTipBase"):
        palette.setColor(getattr(role, name), paper)
    for name in ("WindowText", "Text", "ButtonText", "ToolTipText", "BrightText",
                 "PlaceholderText"):
        palette.setColor(getattr(role, name), ink)
    palette.setColor(role.Highlight, QColor(focus_color()))
    palette.setColor(role.HighlightedText, paper)
    palette.setColor(role.Link, QColor("#FFFF00" if dark else "#0000CC"))
    disabled = QPalette.ColorGroup.Disabled
    grey = QColor("#C0C0C0" if dark else "#404040")  # 7:1 or more on the paper
    for name in ("WindowText", "Text", "ButtonText"):
        palette.setColor(disabled, getattr(role, name), grey)
    return palette


def schedule_refresh() -> None:
    """Ask for a :func:`refresh` soon (palette-change events call this)."""
    _ensure_watcher()
    if _watcher is not None:
        _watcher.schedule()


def on_change(owner: _W, what: str, update: Callable[[_W], Any]) -> None:
    """Call ``update(owner)`` now, and again whenever light/dark switches, for as long
    as ``owner`` lives. ``what`` names the slot: a later call with the same name replaces
    it. ``update`` gets the owner as its argument and must not capture it (an unbound
    method such as ``TurnWidget.retheme`` or a lambda over plain values), or the owner
    would never be freed."""
    _ensure_watcher()
    _registry.setdefault(owner, {})[what] = update
    update(owner)


def style(widget: QWidget, sheet: Callable[[], str]) -> None:
    """Set ``widget``'s style sheet to ``sheet()`` now and again on every light/dark
    switch. ``sheet`` reads the theme colours (``lambda: f"color: {muted_fg()};"``).

    Use it for constant sheets too: Qt resolves the palette of a style-sheeted widget
    and its children when the sheet is applied, so a sheet is set again on every switch
    (even an unchanged one) for the new palette to reach that part of the window."""
    def apply(target: QWidget) -> None:
        target.setStyleSheet(sheet())

    on_change(widget, "styleSheet", apply)


def rich_text(label: QLabel, html: Callable[[], str]) -> None:
    """Show ``html()`` in ``label`` and re-colour it on a light/dark switch, unless the
    label's text has since been replaced by other code."""
    shown = [html()]
    label.setText(shown[0])

    def apply(target: QLabel) -> None:
        if target.text() == shown[0]:
            shown[0] = html()
            target.setText(shown[0])

    _registry.setdefault(label, {})["text"] = apply
    _ensure_watcher()


def refresh(*, force: bool = False) -> int:
    """Re-apply every registered tint if light/dark or high contrast changed since the
    last time (or with ``force``); returns how many updates ran. Deleted widgets are
    skipped and dropped; an update that raises is logged and the others still run."""
    global _applied_dark
    appearance = _appearance()
    if not force and appearance == _applied_dark:
        return 0
    _applied_dark = appearance
    _apply_palette()
    install_focus_style()
    ran = 0
    for owner, updates in list(_registry.items()):
        if not shiboken6.isValid(owner):
            _registry.pop(owner, None)
            continue
        for update in list(updates.values()):
            try:
                update(owner)
                ran += 1
            except Exception:  # noqa: BLE001 - one widget must not stop the rest
                _log.exception("theme refresh failed for %r", type(owner).__name__)
    return ran


def registered_count() -> int:
    """Live widgets with a tint registered (tests use it to check nothing leaks)."""
    return sum(1 for owner in list(_registry.keys()) if shiboken6.isValid(owner))


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
        # set even when the inherited size is right: a size only inherited is lost when a
        # style sheet above is set again (the active pane's frame), and text shrinks back
        if abs(font.pointSizeF() - size) > 0.01 or not widget.testAttribute(
                Qt.WidgetAttribute.WA_SetFont):
            font.setPointSizeF(size)
            widget.setFont(font)


def code_bg() -> QColor:
    return QColor(_pick("#F4F5F7", "#1E222A", "#FFFFFF", "#000000"))


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
    except Exception:  # noqa: BLE001 - no resources folder: the default icon
        return QIcon()
    icon = QIcon()
    for name in ("icon.svg", "icon.png"):
        path = root / name
        if path.exists():
            icon.addFile(str(path))
    return icon
