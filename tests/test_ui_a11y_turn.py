"""Issue 31 for a turn: the thinking fold and the probability tokens by keyboard and for a
screen reader, colour never the only signal, the high-contrast theme, visible focus, and
the German words. Keys go through QTest only."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPalette, QTextCharFormat
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QLabel, QPushButton, QVBoxLayout, QWidget

from desktop_app.engine.protocol import TokenLogprob
from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.session.tokens import BAND_LABELS, TokenStep
from desktop_app.ui import language, theme
from desktop_app.ui.pane import Pane
from desktop_app.ui.probabilities import (
    INDEX_PROPERTY,
    UNDERLINES,
    TokenView,
    alternatives_menu,
    band_color,
    band_range,
    legend_label,
    token_accessible_text,
)
from desktop_app.ui.sampling_lab import SamplingLab
from desktop_app.ui.widgets import ThinkingSection
from tests.fake_engine import send_and_wait, token_script
from tests.test_ui_pane import role_id

PNG_DIR = Path("/tmp/png-turn")


def _luminance(color: QColor) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (0.2126 * linear(color.red()) + 0.7152 * linear(color.green())
            + 0.0722 * linear(color.blue()))


def contrast(first: str | QColor, second: str | QColor) -> float:
    light, dark = sorted((_luminance(QColor(first)), _luminance(QColor(second))),
                         reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.fixture
def english():
    yield
    language.install("en")


@pytest.fixture
def pane(qtbot, fake_models, engine):
    widget = Pane(fake_models, PaneConfig(model_id=role_id(fake_models, "instruct")),
                  worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_closing()


def _step(text: str, logprob: float = -0.2, top: tuple = ()) -> TokenStep:
    return TokenStep(TokenLogprob(text, logprob, top or ((text, logprob), ("alt", -1.9))))


# -- the thinking fold


def test_the_fold_says_its_state_and_size_and_space_or_enter_toggle_it(qtbot):
    fold = ThinkingSection()
    qtbot.addWidget(fold)
    fold.token_count = lambda: 312
    fold.fold("Thought for 14 s · 312 tokens")
    fold.show()
    header = fold.header
    assert header.focusPolicy() & Qt.FocusPolicy.TabFocus
    assert header.accessibleName() == "Thinking, 312 tokens, folded"
    assert "Thought for 14 s" in header.accessibleDescription()
    QTest.keyClick(header, Qt.Key.Key_Space)
    assert fold.expanded and header.accessibleName() == "Thinking, 312 tokens, unfolded"
    QTest.keyClick(header, Qt.Key.Key_Return)
    assert not fold.expanded and header.accessibleName().endswith("folded")
    QTest.keyClick(header, Qt.Key.Key_Enter)
    assert fold.expanded
    fold.token_count = lambda: 1
    fold.set_expanded(False)
    assert header.accessibleName() == "Thinking, 1 token, folded"


def test_the_fold_in_german(qtbot, english):
    language.install("de")
    fold = ThinkingSection()
    qtbot.addWidget(fold)
    fold.token_count = lambda: 312
    fold.fold("x")
    assert fold.header.accessibleName() == "Gedankengang, 312 Tokens, zugeklappt"
    assert "Leertaste" in fold.header.accessibleDescription()


# -- the tokens by keys


def test_tokens_are_reached_by_arrows_and_read_with_their_probability(qtbot):
    view = TokenView()
    qtbot.addWidget(view)
    view.resize(400, 100)
    view.show()
    view.append_steps([_step("alpha"), _step(" beta", -1.2, ((" gamma", -0.5), (" beta", -1.2))),
                       _step("\n")])
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    assert view.current == 0 and len(view.extraSelections()) == 1  # the visible marker
    QTest.keyClick(view, Qt.Key.Key_Right)
    assert view.current == 1
    assert view.accessibleDescription() == "“ beta”, 30 %, rank 2"
    selections = view.extraSelections()
    assert selections[0].cursor.selectedText() == " beta"
    QTest.keyClick(view, Qt.Key.Key_End)
    assert view.current == 2 and "↵" in view.accessibleDescription()
    QTest.keyClick(view, Qt.Key.Key_Right)  # stays on the last
    assert view.current == 2
    QTest.keyClick(view, Qt.Key.Key_Home)
    assert view.current == 0 and view.accessibleDescription() == "“alpha”, 82 %, rank 1"
    with qtbot.waitSignal(view.tokenClicked, timeout=2000) as opened:
        QTest.keyClick(view, Qt.Key.Key_Return)
    assert opened.args[0] == 0
    with qtbot.waitSignal(view.tokenClicked, timeout=2000) as opened:
        QTest.keyClick(view, Qt.Key.Key_Menu)
    assert opened.args[0] == 0
    assert view.accessibleName() == "Tokens of the reply"
    outsider = TokenStep(TokenLogprob("zz", -6.0, (("a", -0.1),)))
    assert "not among" in token_accessible_text(outsider)


def _keys_to_menu(qtbot, keys: list[Qt.Key], seen: list[list[str]]) -> None:
    """When the branch menu pops up, read it and press ``keys`` in it."""
    def act() -> None:
        menu = QApplication.activePopupWidget()
        if menu is None:
            QTimer.singleShot(20, act)
            return
        seen.append([a.text() for a in menu.actions() if a.isEnabled()])
        for key in keys:
            QTest.keyClick(menu, key)
    QTimer.singleShot(50, act)


def test_the_branch_menu_is_operated_by_keys_only(qtbot, pane, engine):
    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["The", " sky", " is", " blue", "."])
    widget = send_and_wait(qtbot, pane, "Colour?")
    view = widget.token_view
    view.setFocus()
    qtbot.waitUntil(view.hasFocus, timeout=2000)
    for _ in range(3):
        QTest.keyClick(view, Qt.Key.Key_Right)
    assert view.current == 3 and view.accessibleDescription().startswith("“ blue”")

    seen: list[list[str]] = []
    _keys_to_menu(qtbot, [Qt.Key.Key_Escape], seen)  # Escape: nothing happens
    QTest.keyClick(view, Qt.Key.Key_Return)
    assert seen and any("alt" in text for text in seen[0])
    assert widget.data.branches.count == 1

    engine.default = token_script([" today", "."])
    _keys_to_menu(qtbot, [Qt.Key.Key_Down, Qt.Key.Key_Return], seen)
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        QTest.keyClick(view, Qt.Key.Key_Return)
    assert widget.branch_label.text() == "2/2"
    assert widget.branch_label.accessibleName() == "Branch 2 of 2"
    assert widget.token_view.toPlainText().startswith("The sky isalt")


# -- colour is never the only signal


def test_every_token_has_its_numbers_and_its_band_underline(qtbot):
    view = TokenView()
    qtbot.addWidget(view)
    steps = [_step(f"t{n}", lp) for n, lp in enumerate((-0.01, -0.3, -0.7, -1.6, -4.0))]
    view.append_steps(steps)
    block = view.document().begin()
    formats: list[QTextCharFormat] = []
    fragments = block.begin()
    while not fragments.atEnd():
        formats.append(fragments.fragment().charFormat())
        fragments += 1
    assert [f.property(INDEX_PROPERTY) for f in formats] == [0, 1, 2, 3, 4]
    assert all("%" in f.toolTip() for f in formats)  # the number, for every token
    assert [f.underlineStyle() for f in formats] == [UNDERLINES[s.band] for s in steps]
    assert len(set(UNDERLINES)) == len(BAND_LABELS)  # one underline per band


def test_the_legend_names_each_band_with_its_range(qtbot, english):
    legend = legend_label()
    qtbot.addWidget(legend)
    text = legend.text().replace("\u00a0", " ")
    for band in range(len(BAND_LABELS)):
        assert band_range(band) in text
    assert band_range(0) == "90 % or more" and band_range(4) == "under 10 %"
    assert band_range(2) == "30 to 60 %"
    assert legend.accessibleName() == "Probability legend"
    assert "wavy underline" in legend.accessibleDescription()
    language.install("de")
    german = legend_label()
    qtbot.addWidget(german)
    assert "unter 10 %" in german.text() and "Wahrscheinlichkeit" in german.text()


def test_the_alternatives_menu_and_lab_in_german(qtbot, english):
    language.install("de")
    parent = QWidget()
    qtbot.addWidget(parent)
    menu = alternatives_menu(parent, _step(" sky"), can_branch=True)
    assert "anderen Token" in menu.actions()[0].text()
    assert menu.accessibleName() == "Alternativen zu diesem Token"
    lab = SamplingLab()
    qtbot.addWidget(lab)
    assert lab.values["Temperature"].text() == "Temperatur 1,00"
    assert lab.temperature.accessibleName() == "Temperatur"
    assert token_accessible_text(_step(" sky", -1.2)) == "„ sky“, 30 %, Rang 1"


# -- high contrast


@pytest.fixture
def high_contrast(monkeypatch):
    yield
    monkeypatch.delenv(theme.HIGH_CONTRAST_ENV, raising=False)
    theme.set_high_contrast(None)


@pytest.mark.parametrize("dark", [False, True])
def test_high_contrast_switches_the_colours_and_they_hold_seven_to_one(
        qtbot, monkeypatch, high_contrast, dark):
    monkeypatch.setattr(theme, "is_dark", lambda: dark)
    label = QLabel("x")
    qtbot.addWidget(label)
    theme.style(label, lambda: f"color: {theme.muted_fg()}; background: {theme.subtle_bg()};")
    before = label.styleSheet()
    theme.set_high_contrast(True)
    assert theme.is_high_contrast()
    assert label.styleSheet() != before  # re-tinted live, nothing rebuilt
    paper, ink = theme.background(), theme.text_color()
    assert paper == ("#000000" if dark else "#FFFFFF")
    assert QGuiApplication.palette().color(QPalette.ColorRole.Window) == QColor(paper)
    assert contrast(paper, ink) == pytest.approx(21, abs=0.01)
    for color in (theme.ok_color(), theme.fail_color(), theme.warn_color(), theme.muted_fg(),
                  theme.border_color(), theme.focus_color(),
                  *(theme.role_text_color(r) for r in ("base", "instruct", "reasoning"))):
        assert contrast(color, paper) >= 7, color
    for role in ("base", "instruct", "reasoning"):  # white badge text on the role colour
        assert contrast(theme.role_color(role), "#FFFFFF") >= 7
    from desktop_app.ui.markdown import CODE_COLOURS_HIGH
    for light, dark_colour in CODE_COLOURS_HIGH.values():  # code in an answer
        assert contrast(dark_colour if dark else light, paper) >= 7
    for band in range(1, len(BAND_LABELS)):  # the tints under pure black or white text
        assert contrast(band_color(band), ink) >= 7
    theme.set_high_contrast(False)
    assert not theme.is_high_contrast() and label.styleSheet() == before


def test_the_environment_turns_high_contrast_on(monkeypatch, high_contrast):
    theme.set_high_contrast(None)
    monkeypatch.setenv(theme.HIGH_CONTRAST_ENV, "1")
    assert theme.is_high_contrast()
    monkeypatch.setenv(theme.HIGH_CONTRAST_ENV, "0")
    assert not theme.is_high_contrast()
    theme.set_high_contrast(True)  # the override wins over the environment
    assert theme.is_high_contrast()


def test_the_os_contrast_preference_is_followed_live(qtbot, monkeypatch, high_contrast):
    style_hints = QGuiApplication.styleHints()
    hints = style_hints.accessibility()
    theme.set_high_contrast(None)
    want = hints.contrastPreference() == Qt.ContrastPreference.HighContrast
    assert theme.is_high_contrast() == want
    label = QLabel("x")
    qtbot.addWidget(label)
    theme.style(label, lambda: f"color: {theme.muted_fg()};")
    before = label.styleSheet()
    # the OS switches to high contrast: Qt says so by this signal, the theme follows
    monkeypatch.setattr(theme, "is_high_contrast", lambda: True)
    hints.contrastPreferenceChanged.emit(Qt.ContrastPreference.HighContrast)
    qtbot.waitUntil(lambda: label.styleSheet() != before, timeout=2000)
    monkeypatch.undo()
    theme.set_high_contrast(None)
    assert label.styleSheet() == before


# -- visible focus


def _ring_pixels(widget: QWidget, color: str) -> int:
    image = widget.grab().toImage()
    want = QColor(color)
    hits = 0
    for x in range(image.width()):
        for y in (0, 1, image.height() - 1, image.height() - 2):
            pixel = image.pixelColor(x, y)
            if max(abs(pixel.red() - want.red()), abs(pixel.green() - want.green()),
                   abs(pixel.blue() - want.blue())) < 40:
                hits += 1
    return hits


@pytest.mark.parametrize("high", [False, True])
def test_a_focused_button_is_visibly_marked(qtbot, high_contrast, high):
    theme.set_high_contrast(high)
    theme.install_focus_style()
    window = QWidget()
    qtbot.addWidget(window)
    row = QVBoxLayout(window)
    first, second = QPushButton("Verify"), QPushButton("Copy answer")
    row.addWidget(first)
    row.addWidget(second)
    window.show()
    window.activateWindow()
    second.setFocus()
    qtbot.waitUntil(second.hasFocus, timeout=2000)
    PNG_DIR.mkdir(parents=True, exist_ok=True)
    window.grab().save(str(PNG_DIR / f"focus-button{'-high' if high else ''}.png"))
    color = theme.focus_color()
    assert _ring_pixels(second, color) > second.width()  # a ring along its edges
    assert _ring_pixels(first, color) == 0  # the unfocused one has none
