"""The app in German and French (issue 31): every message translated in every shipped
language, no text in the window that skips the translation system, Qt's own words and
numbers in the user's language, the language from the OS or the user's choice, and the
command line still English.
"""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.text import i18n

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "packaging"))
import translations  # noqa: E402  (packaging/translations.py: the catalogues' workflow)


@pytest.fixture
def speak():
    """Switch the window's language for one test; English again afterwards."""
    from desktop_app.ui import language

    yield language.install
    language.install("en")


@pytest.mark.parametrize("code", translations.LANGUAGES)
def test_every_message_is_translated(code):
    assert translations.problems(code) == []


def test_the_check_finds_what_a_translator_missed(tmp_path, monkeypatch):
    """The check itself, on a copy of the German catalogue with one message emptied, one
    fuzzy and one whose placeholder was translated."""
    from babel.messages.pofile import read_po

    catalog = translations.read("de")
    messages = [m for m in catalog if m.id and isinstance(m.id, str)]
    with_placeholder = next(m for m in messages if "{" in m.id)
    plain = [m for m in messages if m is not with_placeholder][:2]
    plain[0].string = ""
    plain[1].flags.add("fuzzy")
    with_placeholder.string = re.sub(r"\{[^{}]*\}", "{etwas}", with_placeholder.string)
    folder = tmp_path / "locale" / "de" / "LC_MESSAGES"
    translations.write(catalog, folder / "triptych.po")
    monkeypatch.setattr(translations, "LOCALE", tmp_path / "locale")
    found = translations.problems("de")
    assert any(line.startswith("de: untranslated") and repr(plain[0].id) in line
               for line in found), found
    assert any(line.startswith("de: fuzzy") for line in found), found
    assert any("placeholders differ" in line for line in found), found
    assert any("is stale" in line for line in found), found  # no .mo there
    with (folder / "triptych.po").open("rb") as handle:
        assert read_po(handle, locale="de").get(plain[0].id) is not None


def test_plural_forms_follow_each_language(speak):
    plural = next(m for m in translations.read("de") if isinstance(m.id, tuple))
    one, many = plural.id
    speak("de")
    assert i18n.ngettext(one, many, 1) == plural.string[0]
    assert i18n.ngettext(one, many, 3) == plural.string[1]
    french = translations.read("fr").get(plural.id[0])
    speak("fr")
    assert i18n.ngettext(one, many, 0) == french.string[0]  # French: 0 is singular
    assert i18n.ngettext(one, many, 2) == french.string[1]


def test_numbers_and_qt_words_follow_the_language(qtbot, speak):
    from PySide6.QtWidgets import QDialogButtonBox

    from desktop_app.ui.language import qt_translation_loaded

    speak("de")
    assert i18n.number(1234.5, 1) == "1.234,5"
    assert qt_translation_loaded()
    box = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
    qtbot.addWidget(box)
    assert box.button(QDialogButtonBox.StandardButton.Cancel).text() == "Abbrechen"
    speak("fr")
    assert i18n.number(0.5, 2) == "0,50"
    speak("en")
    assert i18n.number(1234.5, 1) == "1,234.5" and not qt_translation_loaded()


def test_the_language_follows_the_os_unless_chosen(monkeypatch, qtbot):
    from desktop_app.ui import language
    from desktop_app.ui.settings import load_language, save_language

    assert i18n.pick_language(["de-AT", "en-US"]) == "de"
    assert i18n.pick_language(["ja-JP", "fr_CA"]) == "fr"
    assert i18n.pick_language(["ja-JP"]) == "en"
    monkeypatch.delenv(language.ENV_OVERRIDE, raising=False)
    monkeypatch.setattr(language, "system_language", lambda: "fr")
    assert language.choose_language("") == "fr"  # the OS's
    assert language.choose_language("de") == "de"  # the user's choice wins
    assert language.choose_language("de", "en") == "en"  # --language wins over both
    monkeypatch.setenv(language.ENV_OVERRIDE, "fr")
    assert language.choose_language("de") == "fr"
    assert language.choose_language("", "xx") == "fr"  # an unknown code is passed over

    save_language("de")
    assert load_language() == "de"


def test_the_language_menu_saves_the_choice_and_says_when_it_applies(qtbot, fake_models,
                                                                     engine):
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.settings import load_language

    window = MainWindow(fake_models, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    try:
        view = next(a.menu() for a in window.menuBar().actions() if a.text() == "&View")
        languages = next(a.menu() for a in view.actions() if a.text() == "&Language")
        names = [a.text() for a in languages.actions()]
        assert names[0].startswith("Follow the system (") and names[1:] == [
            "English", "Deutsch", "Français"]
        next(a for a in languages.actions() if a.text() == "Deutsch").trigger()
        assert load_language() == "de"
        assert "Deutsch from its next start" in window.statusBar().currentMessage()
        window.save()  # the window's own state does not overwrite the choice
        assert load_language() == "de"
    finally:
        window.shutdown()


def test_the_command_line_stays_english_on_a_german_system(tmp_path):
    env = {**os.environ, "LANG": "de_DE.UTF-8", "LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8",
           "TRIPTYCH_LANGUAGE": "de", "TRIPTYCH_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "desktop_app", "--help"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "the window's language for this run" in done.stdout
    wrong = subprocess.run([sys.executable, "-m", "desktop_app", "--language", "xx"],
                           env=env, capture_output=True, text=True, timeout=60)
    assert wrong.returncode == 2
    assert wrong.stderr.strip() == "triptych: --language must be one of en, de, fr, not 'xx'."


# ------------------------------------------------------------------ nothing untranslated

MARKED = re.compile(r"⟦[^⟦⟧]*⟧")  # innermost first: a message inside a message
TAGS = re.compile(r"<[^>]+>")
ENGLISH_WORDS = re.compile(r"\b[A-Za-z][a-z]{2,}\b")


def _texts(widget) -> list[str]:
    from PySide6.QtWidgets import (
        QAbstractButton,
        QGroupBox,
        QLabel,
        QLineEdit,
        QPlainTextEdit,
        QTableWidget,
        QTabWidget,
        QTreeWidget,
    )

    texts = [widget.toolTip(), widget.accessibleName(), widget.accessibleDescription()]
    if widget.isWindow():
        texts.append(widget.windowTitle())
    if isinstance(widget, (QLabel, QAbstractButton)):
        texts.append(widget.text())
    if isinstance(widget, QGroupBox):
        texts.append(widget.title())
    if isinstance(widget, (QLineEdit, QPlainTextEdit)):
        texts.append(widget.placeholderText())
    if isinstance(widget, QTabWidget):
        texts += [widget.tabText(i) for i in range(widget.count())]
    if isinstance(widget, QTableWidget):
        texts += [widget.horizontalHeaderItem(i).text() for i in range(widget.columnCount())
                  if widget.horizontalHeaderItem(i) is not None]
    if isinstance(widget, QTreeWidget):
        header = widget.headerItem()
        texts += [header.text(i) for i in range(header.columnCount())]
    return texts


def untranslated(root, allowed: set[str]) -> list[str]:
    """Texts shown under ``root`` (and its menus) that hold English words outside any
    ``⟦…⟧``: the pseudo-language wraps every message, so those never went through it."""
    from PySide6.QtWidgets import QDialogButtonBox, QMenu, QPushButton

    from tests.ui_tour import shown

    found = []
    texts = []
    for widget in shown(root):
        if isinstance(widget, QPushButton) and isinstance(widget.parentWidget(),
                                                          QDialogButtonBox):
            continue  # OK, Cancel: Qt's own words, translated by qtbase_<lang>.qm
        texts += [(type(widget).__name__, text) for text in _texts(widget)]
    for menu in root.findChildren(QMenu):
        for action in menu.actions():
            texts += [("QAction", action.text()), ("QAction", action.toolTip())]
    for kind, text in texts:
        rest = text or ""
        while MARKED.search(rest):
            rest = MARKED.sub(" ", rest)
        rest = html.unescape(TAGS.sub(" ", rest))
        for name in sorted(allowed, key=len, reverse=True):
            rest = rest.replace(name, " ")
        words = ENGLISH_WORDS.findall(rest)
        if words:
            found.append(f"{kind}: {text[:90]!r} (left: {' '.join(words[:6])})")
    return sorted(set(found))


def test_no_text_in_the_window_or_a_dialog_skips_translation(qtbot, fake_models, engine,
                                                             speak):
    from tests.ui_tour import QUESTION, dialogs, main_window

    speak(i18n.PSEUDO)
    # What is not ours to translate: the models' names, what was typed, Qt's own words
    # (translated by qtbase_<lang>.qm, not by us), proper names and formats.
    allowed = {entry.name for entry in fake_models} | {entry.id for entry in fake_models}
    allowed |= {family for entry in fake_models for family in (entry.family,) if family}
    allowed |= {QUESTION, "Triptych", "GGUF", "Python", "JSON", "Markdown", "HTML", "CSV",
                "HumanEval", "GSM8K", "MATH-500", "llama.cpp", "Hugging Face", "RLHF",
                "Bradley–Terry", "Qwen", "Gemma", "SmolLM", "OLMo", "Ctrl", "Shift", "Esc",
                "Tab", "Enter", "Return", "Top-k", "Top-p", "Min-p", "TTFT", "tok/s",
                "http://localhost:8080/v1"}
    allowed |= set(i18n.LANGUAGES.values())  # each language is named in its own words
    window = main_window(qtbot, fake_models, engine)
    try:
        problems = [f"main window: {p}" for p in untranslated(window, allowed)]
        for name, dialog in dialogs(qtbot, window):
            problems += [f"{name}: {p}" for p in untranslated(dialog, allowed)]
    finally:
        window.shutdown()
    assert not problems, "\n".join(problems)
