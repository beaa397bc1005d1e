"""The window's language: the OS's unless the user chose one (View → Language).

:func:`install` sets the core's catalogue (:mod:`desktop_app.text.i18n`), the default
``QLocale`` (so spin boxes and the numbers the core writes read ``0,7`` in German) and Qt's
own translations (``qtbase_<lang>.qm``: the file dialog, a text box's context menu, the
standard buttons). The widgets are built in the chosen language, so a change takes effect
when the window next opens; the menu says so rather than showing half a translation.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QLibraryInfo, QLocale, QTranslator
from PySide6.QtGui import QAction, QActionGroup
from PySide6.QtWidgets import QMenu, QWidget

from desktop_app.text import i18n
from desktop_app.text.i18n import _
from desktop_app.ui.settings import load_language, save_language

ENV_OVERRIDE = "TRIPTYCH_LANGUAGE"  # `TRIPTYCH_LANGUAGE=de triptych`: one run in German
_qt_translator: QTranslator | None = None


def system_language() -> str:
    """The first shipped language among the OS's preferred ones, else English."""
    return i18n.pick_language(QLocale.system().uiLanguages())


def choose_language(saved: str = "", override: str | None = None) -> str:
    """An explicit override (``--language``, :data:`ENV_OVERRIDE`) wins, then the user's
    choice in settings, then the OS's."""
    for code in (override, os.environ.get(ENV_OVERRIDE), saved):
        if code and (code in i18n.LANGUAGES or code == i18n.PSEUDO):
            return code
    return system_language()


def install(code: str) -> str:
    """Speak ``code`` from now on, in the core, in Qt's own words and in numbers."""
    global _qt_translator
    code = i18n.set_language(code)
    english = code in (i18n.SOURCE_LANGUAGE, i18n.PSEUDO)
    QLocale.setDefault(QLocale("en_US" if english else code))
    i18n.set_number_format(lambda value, decimals: QLocale().toString(float(value), "f",
                                                                        decimals))
    app = QCoreApplication.instance()
    if app is not None:
        if _qt_translator is not None:
            QCoreApplication.removeTranslator(_qt_translator)
            _qt_translator = None
        if code not in (i18n.SOURCE_LANGUAGE, i18n.PSEUDO):
            translator = QTranslator(app)
            if any(translator.load(f"qtbase_{code}", folder) for folder in _qt_folders()):
                QCoreApplication.installTranslator(translator)
                _qt_translator = translator
    return code


def _qt_folders() -> list[str]:
    """Where Qt keeps its translations: Qt's own answer, then beside the PySide6 package
    (where the bundle puts them)."""
    import PySide6

    return [QLibraryInfo.path(QLibraryInfo.LibraryPath.TranslationsPath),
            str(Path(PySide6.__file__).resolve().parent / "Qt" / "translations")]


def qt_translation_loaded() -> bool:
    """Whether Qt's own words (``qtbase_<lang>.qm``) are in use: the bundle keeps them."""
    return _qt_translator is not None


def add_language_menu(menu: QMenu, status: QWidget | None = None) -> QMenu:
    """View → Language: follow the system, or one of the shipped languages. The choice is
    saved and used from the next start; the status bar says so."""
    sub = menu.addMenu(_("&Language"))
    group = QActionGroup(sub)
    saved = load_language()
    options = [("", _("Follow the system ({language})").format(
        language=i18n.LANGUAGES[system_language()]))]
    options += list(i18n.LANGUAGES.items())
    for code, name in options:
        action = QAction(name, sub, checkable=True)
        action.setChecked(code == saved)
        action.setData(code)
        group.addAction(action)
        sub.addAction(action)
    group.triggered.connect(lambda action: _choose(action.data(), status))
    return sub


def _choose(code: str, status: QWidget | None) -> None:
    save_language(code)
    name = i18n.LANGUAGES[code or system_language()]
    message = _("Triptych will speak {language} from its next start.").format(language=name)
    show = getattr(status, "showMessage", None)
    if callable(show):
        show(message, 8000)
