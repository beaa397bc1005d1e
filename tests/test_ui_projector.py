"""The window in front of a class (issue 27): presentation mode on a 1024×768 projector.

The projector test loads the longest practice problem of every shipped set, opens ⚙ in
every pane and checks, on a real Qt event loop (offscreen) with the scripted engine, that
the window stays 1024×768 and that no visible control overlaps another, spills out of
its parent or the window, or is squeezed below its own minimum. The Rollouts window and
the Practice dialog get the same check and follow presentation mode; four panes scroll
sideways rather than widen the window. Verify's verdict is scrolled into view, a zoom
keeps the reading position, and the probability tints are told apart.
"""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractScrollArea,
    QAbstractSpinBox,
    QComboBox,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QSizePolicy,
    QTextEdit,
    QWidget,
)

from desktop_app.session.tokens import BAND_LABELS, TokenLogprob, TokenStep
from desktop_app.ui import theme
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.practice import PracticePicker, load_sets, problem_badge
from desktop_app.ui.probabilities import (
    SYMBOLS_NOTE,
    band_color,
    legend_html,
    legend_label,
    token_tooltip,
)
from desktop_app.ui.rollouts import RolloutsView
from desktop_app.ui.screen_fit import FRAME_ALLOWANCE, Rect, fitted
from desktop_app.ui.widgets import ViewHold
from desktop_app.verify import Problem
from tests.fake_engine import answer_script

PROJECTOR = (1024, 768)
CLIENT = (PROJECTOR[0] - FRAME_ALLOWANCE[0], PROJECTOR[1] - FRAME_ALLOWANCE[1])  # a dialog's
CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QLabel, QPlainTextEdit,
            QTextEdit, QProgressBar, QAbstractItemView)
INTERNALS = (QAbstractSpinBox, QComboBox, QAbstractItemView)  # their parts are theirs


# ------------------------------------------------------------------ the layout check

def _ancestors(widget: QWidget, root: QWidget) -> list[QWidget]:
    chain = []
    parent = widget.parentWidget()
    while parent is not None and parent is not root:
        chain.append(parent)
        parent = parent.parentWidget()
    return chain


def _rect_in(widget: QWidget, root: QWidget) -> QRect:
    return QRect(widget.mapTo(root, QPoint(0, 0)), widget.size())


def _visible_rect(widget: QWidget, root: QWidget) -> QRect:
    """The part of ``widget`` its ancestors (scroll area viewports among them) show."""
    rect = _rect_in(widget, root)
    for parent in _ancestors(widget, root):
        rect = rect.intersected(_rect_in(parent, root))
    return rect.intersected(root.rect())


def _scrolled(widget: QWidget, root: QWidget, *, across: bool) -> bool:
    """Inside a scroll area that shows a scroll bar that way (``across``: the horizontal
    one): it may be partly out of view that way, and the reader can scroll to the rest. A
    transcript scrolls only down, so a control cut at its right edge is cut off."""
    for parent in _ancestors(widget, root):
        if isinstance(parent, QAbstractScrollArea) and (
                parent.horizontalScrollBar() if across else parent.verticalScrollBar()
        ).isVisible():
            return True
    return False


def _cut(widget: QWidget, root: QWidget, *, across: bool) -> bool:
    """Whether an ancestor (or the window) hides part of ``widget`` that way, judged on that
    axis alone: a control scrolled out of view downwards is not also cut across."""
    def span(rect: QRect) -> tuple[int, int]:
        return (rect.left(), rect.right()) if across else (rect.top(), rect.bottom())

    low, high = span(_rect_in(widget, root))
    start, end = low, high
    for parent in [*_ancestors(widget, root), root]:
        first, last = span(_rect_in(parent, root) if parent is not root else root.rect())
        start, end = max(start, first), min(end, last)
    return (start, end) != (low, high)


def visible_controls(root: QWidget) -> list[QWidget]:
    found = []
    for widget in root.findChildren(QWidget):
        if not widget.isVisible() or not isinstance(widget, CONTROLS):
            continue
        if any(isinstance(parent, INTERNALS) for parent in _ancestors(widget, root)):
            continue
        if isinstance(widget, QLabel) and not widget.text() and widget.pixmap().isNull():
            continue
        found.append(widget)
    return found


def _name(widget: QWidget) -> str:
    text = widget.text() if hasattr(widget, "text") and callable(widget.text) else ""
    return f"{type(widget).__name__}({str(text)[:30]!r})"


def layout_problems(root: QWidget) -> list[str]:
    """Every way the visible controls of ``root`` are laid out wrong: cut off by the window
    or their parent, squeezed below their minimum size, or drawn over each other."""
    problems = []
    controls = visible_controls(root)
    shown = {}
    for widget in controls:
        rect, seen = _rect_in(widget, root), _visible_rect(widget, root)
        shown[widget] = seen
        cut_across, cut_down = _cut(widget, root, across=True), _cut(widget, root, across=False)
        if (cut_across and not _scrolled(widget, root, across=True)) or (
                cut_down and not _scrolled(widget, root, across=False)):
            problems.append(f"{_name(widget)} is cut off: {rect} shows {seen}")
        parent = widget.parentWidget()
        if parent is not None and parent is not root \
                and not parent.rect().contains(widget.geometry()):
            problems.append(f"{_name(widget)} spills out of its parent: {widget.geometry()} "
                            f"in {parent.rect()}")
        hint, policy = widget.minimumSizeHint(), widget.sizePolicy()
        if policy.horizontalPolicy() != QSizePolicy.Policy.Ignored \
                and widget.minimumWidth() == 0 and widget.width() < hint.width() - 1:
            problems.append(f"{_name(widget)} is {widget.width()} wide, needs {hint.width()}")
        if policy.verticalPolicy() != QSizePolicy.Policy.Ignored \
                and widget.minimumHeight() == 0 and widget.height() < hint.height() - 1:
            problems.append(f"{_name(widget)} is {widget.height()} high, needs {hint.height()}")
    for index, first in enumerate(controls):
        for second in controls[index + 1:]:
            if first.isAncestorOf(second) or second.isAncestorOf(first):
                continue
            both = shown[first].intersected(shown[second])
            if both.width() > 2 and both.height() > 2:
                problems.append(f"{_name(first)} overlaps {_name(second)} at {both}")
    return problems


def test_the_layout_check_sees_overlaps_and_cut_offs(qtbot):
    """The check itself can fail: two buttons drawn over each other, one spilling out of
    the window and a label squeezed below its text are each reported."""
    from PySide6.QtWidgets import QPushButton

    root = QWidget()
    qtbot.addWidget(root)
    root.resize(400, 100)
    first, second = QPushButton("First button", root), QPushButton("Second button", root)
    first.setGeometry(10, 10, 150, 30)
    second.setGeometry(100, 20, 150, 30)
    outside = QPushButton("Outside", root)
    outside.setGeometry(360, 20, 100, 30)
    squeezed = QLabel("A label with a long text", root)
    squeezed.setGeometry(10, 60, 40, 20)
    root.show()
    problems = "\n".join(layout_problems(root))
    assert "overlaps" in problems and "Second button" in problems
    assert "'Outside') is cut off" in problems
    assert "'A label with a long text') is 40 wide" in problems
    second.move(200, 60)
    outside.hide()
    squeezed.resize(squeezed.minimumSizeHint())
    assert not layout_problems(root)


def settle(qtbot, rounds: int = 3) -> None:
    for _ in range(rounds):
        qtbot.wait(20)


# ------------------------------------------------------------------ the main window

def longest_problems() -> list[Problem]:
    """The problem of each shipped set with the longest title (then prompt)."""
    sets, error = load_sets()
    assert error is None and sets
    return [max(s.problems, key=lambda p: (len(p.title), len(p.prompt))) for s in sets]


def projector_window(qtbot, catalog, engine, panes: int = 3) -> MainWindow:
    ids = {entry.role: entry.id for entry in catalog}
    window = MainWindow(catalog, models=[ids["base"], ids["instruct"], ids["reasoning"]],
                        remember=False, presentation=True, worker_factory=engine.worker)
    qtbot.addWidget(window)
    for _ in range(panes - 3):
        window.add_pane()
    window.resize(*PROJECTOR)
    window.show()
    for pane in window.panes:
        pane.settings_button.setChecked(True)
    settle(qtbot)
    return window


def assert_fits(window: QWidget, size: tuple[int, int]) -> None:
    hint = window.minimumSizeHint()
    assert hint.width() <= size[0] and hint.height() <= size[1], hint
    assert (window.width(), window.height()) == size
    problems = layout_problems(window)
    assert not problems, "\n".join(problems)


def test_projector_every_practice_set_with_settings_open(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    try:
        assert window.presentation and window.panes[0].point_size > window.base_point_size
        for problem in longest_problems():
            window.use_problem(problem)
            window.resize(*PROJECTOR)
            settle(qtbot)
            assert_fits(window, PROJECTOR)
            label = window.problem_label
            assert label.title == problem.title
            if "…" in label.text() and not problem.title.endswith("…"):
                assert label.toolTip().splitlines()[0] == problem.title  # the whole on hover
            assert problem_badge(problem)[0] in label.toolTip()  # the badge's long form
            assert _rect_in(label, window).right() < _rect_in(window.thinking_toggle,
                                                              window).left()
            # every pane in view: none scrolls off the right edge (the reasoning picker)
            assert not window.pane_area.horizontalScrollBar().isVisible()
            for pane in window.panes:
                assert _visible_rect(pane.picker, window) == _rect_in(pane.picker, window)
            for button in (window.send_button, window.models_button, window.export_button):
                assert _visible_rect(button, window) == _rect_in(button, window)
    finally:
        window.shutdown()


def test_the_toolbar_title_is_whole_where_there_is_room(qtbot, fake_models, engine):
    problem = max(longest_problems(), key=lambda p: len(p.title))
    window = projector_window(qtbot, fake_models, engine)
    try:
        window.use_problem(problem)
        settle(qtbot)
        assert "…" in window.problem_label.text()  # 60 characters at presentation size
        window.set_presentation(False)
        window.resize(1600, 900)
        settle(qtbot)
        assert problem.title in window.problem_label.text()
        assert problem.title not in window.problem_label.toolTip()  # whole: no need
    finally:
        window.shutdown()


def test_four_panes_scroll_sideways_within_the_projector(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine, panes=4)
    try:
        window.use_problem(longest_problems()[1])
        window.resize(*PROJECTOR)
        settle(qtbot)
        assert len(window.panes) == 4
        assert_fits(window, PROJECTOR)
        bar = window.pane_area.horizontalScrollBar()
        assert bar.isVisible()  # the panes keep their width and scroll
        bar.setValue(bar.maximum())
        settle(qtbot)
        last = window.panes[-1]
        assert _visible_rect(last, window) == _rect_in(last, window)
        assert not layout_problems(window)
    finally:
        window.shutdown()


# ------------------------------------------------------------------ dialogs

def test_practice_dialog_follows_presentation_and_fits(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    sets, _ = load_sets()
    point_size = window.base_point_size * window.zoom
    dialog = PracticePicker(sets, window, point_size=point_size)
    qtbot.addWidget(dialog)
    try:
        assert dialog.font().pointSizeF() == pytest.approx(point_size)
        assert dialog.tree.font().pointSizeF() == pytest.approx(point_size)
        area = dialog.screen().availableGeometry()
        assert dialog.width() <= area.width() and dialog.height() <= area.height()
        dialog.resize(*CLIENT)
        dialog.show()
        settle(qtbot)
        assert_fits(dialog, CLIENT)
        tree = dialog.tree
        titles = max((p for s in sets for p in s.problems), key=lambda p: len(p.title))
        assert tree.columnWidth(0) >= tree.fontMetrics().horizontalAdvance(titles.title[:40])
        for key, levels in (("gsm8k-mini", False), ("math500-mini", True)):
            chosen = next(s for s in sets if s.key == key)
            dialog.set_filter.setCurrentText(chosen.name)
            settle(qtbot, 1)
            assert tree.isColumnHidden(2) is not levels, key
            shown = [child for _parent, children in dialog._groups for child in children
                     if not child.isHidden()]
            assert len(shown) == len(chosen.problems)
            assert all(bool(child.text(2)) is levels for child in shown), key
            assert not layout_problems(dialog)
    finally:
        dialog.close()
        window.shutdown()


def test_rollouts_window_follows_presentation_and_fits(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    pane = window.panes[1]
    engine.default = answer_script("The answer is 56.")
    try:
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            assert pane.send("What is 7 * 8?", Problem(id="p", title="7 × 8",
                                                       prompt="What is 7 * 8?", kind="math",
                                                       answer="56"))
        view = pane.open_rollouts()
        assert isinstance(view, RolloutsView)
        assert view.font().pointSizeF() == pytest.approx(pane.point_size)
        area = view.screen().availableGeometry()
        assert view.width() <= area.width() and view.height() <= area.height()
        view.count.setValue(16)
        with qtbot.waitSignal(view.runFinished, timeout=30_000):
            assert view.run()
        view.resize(*CLIENT)
        settle(qtbot)
        assert_fits(view, CLIENT)
        chip = view.chip_buttons[0]
        assert chip.width() > 34 and f"{view.font().pointSizeF() * 1.25:.1f}pt" in \
            chip.styleSheet()
        window.set_presentation(False)  # an open Rollouts window follows the zoom back
        assert view.font().pointSizeF() == pytest.approx(window.base_point_size)
        assert view.chip_buttons[0].width() == 34
    finally:
        window.shutdown()


def test_a_dialog_is_fitted_to_the_screen_it_opens_on():
    projector = Rect(0, 0, *PROJECTOR)
    box = fitted(Rect(0, 0, round(820 * 1.6), round(560 * 1.6)), projector)
    assert box.width == CLIENT[0] and box.height == CLIENT[1]


# ------------------------------------------------------------------ scrolling

def _in_view(pane, widget) -> bool:
    viewport = pane.scroll_area.viewport()
    top = widget.mapTo(viewport, QPoint(0, 0)).y()
    return top >= 0 and top + widget.height() <= viewport.height()


LONG_ANSWER = "\n\n".join(f"Step {i}: {'the numbers add up ' * 8}" for i in range(14)) \
    + "\n\nThe answer is 56."


def test_verify_scrolls_the_verdict_into_view(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    problem = Problem(id="p", title="7 × 8", prompt="What is 7 * 8?", kind="math", answer="56")
    pane = window.panes[1]
    pane.settings_button.setChecked(False)
    engine.default = answer_script(LONG_ANSWER, chunk=40)
    try:
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            assert pane.send(problem.prompt, problem)
        turn = pane.turns[-1]
        settle(qtbot)
        bar = pane.scroll_area.verticalScrollBar()
        qtbot.wait(ViewHold.HOLD_MS + 100)  # the end of the round has settled
        bar.setValue(bar.maximum())  # the end: the answer's last lines and Verify
        settle(qtbot)
        assert bar.maximum() > 0 and _in_view(pane, turn.verify_button)
        turn.verify_button.click()
        qtbot.waitUntil(lambda: turn.verify_label.isVisible(), timeout=20_000)
        qtbot.waitUntil(lambda: _in_view(pane, turn.verify_label), timeout=2_000)
        assert "56" in turn.verify_label.text()
    finally:
        window.shutdown()


def _three_long_turns(qtbot, window):
    pane = window.panes[1]
    pane.settings_button.setChecked(False)
    for question in ("one", "two", "three"):
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            assert pane.send(question)
    settle(qtbot)
    return pane


def test_a_zoom_keeps_the_latest_answer_in_view(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    engine.default = answer_script(LONG_ANSWER, chunk=40)
    try:
        pane = _three_long_turns(qtbot, window)
        bar = pane.scroll_area.verticalScrollBar()
        assert bar.value() == bar.maximum() > 0
        for change in (lambda: window.set_presentation(False), lambda: window.zoom_by(1.3),
                       lambda: window.set_presentation(True)):
            change()
            settle(qtbot)
            assert bar.value() == bar.maximum(), bar.value()
            assert _in_view(pane, pane.turns[-1].action_bar)
    finally:
        window.shutdown()


def test_a_zoom_keeps_the_place_being_read(qtbot, fake_models, engine):
    window = projector_window(qtbot, fake_models, engine)
    engine.default = answer_script(LONG_ANSWER, chunk=40)
    try:
        pane = _three_long_turns(qtbot, window)
        bar = pane.scroll_area.verticalScrollBar()
        middle = pane.turns[1]
        bar.setValue(middle.y() + middle.height() // 3)  # a third of the way into turn 2
        for change in (lambda: window.set_presentation(False), lambda: window.zoom_by(1.5),
                       lambda: window.set_presentation(True)):
            change()
            settle(qtbot)
            fraction = (bar.value() - middle.y()) / middle.height()
            assert 0.25 < fraction < 0.42, fraction
    finally:
        window.shutdown()


# ------------------------------------------------------------------ probability tints

def _lab(color: QColor) -> tuple[float, float, float]:
    """CIE L*a*b* (D65) of an sRGB colour."""
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = linear(color.red()), linear(color.green()), linear(color.blue())
    x = (0.4124 * r + 0.3576 * g + 0.1805 * b) / 0.95047
    y = 0.2126 * r + 0.7152 * g + 0.0722 * b
    z = (0.0193 * r + 0.1192 * g + 0.9505 * b) / 1.08883

    def f(t: float) -> float:
        return t ** (1 / 3) if t > 0.008856 else 7.787 * t + 16 / 116

    return 116 * f(y) - 16, 500 * (f(x) - f(y)), 200 * (f(y) - f(z))


def _over(tint: QColor, background: QColor) -> QColor:
    a = tint.alphaF()
    return QColor(*(round(a * getattr(tint, c)() + (1 - a) * getattr(background, c)())
                    for c in ("red", "green", "blue")))


def _luminance(color: QColor) -> float:
    def linear(channel: int) -> float:
        c = channel / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    return (0.2126 * linear(color.red()) + 0.7152 * linear(color.green())
            + 0.0722 * linear(color.blue()))


def _contrast(first: QColor, second: QColor) -> float:
    light, dark = sorted((_luminance(first), _luminance(second)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


@pytest.mark.parametrize("dark, background, text, high", [
    (False, "#FFFFFF", "#000000", False), (True, "#1E1E1E", "#E0E0E0", False),
    (False, "#FFFFFF", "#000000", True), (True, "#000000", "#FFFFFF", True)])
def test_neighbouring_tints_are_told_apart_and_keep_text_readable(
        monkeypatch, dark, background, text, high):
    """Every band differs from the next by a colour difference (CIE76 ΔE) of 20 or more:
    the amber strengths these replaced were 14 to 17 apart ("10–30 %" and "under 10 %"
    looked the same), and the text on each stays at WCAG AA contrast (4.5:1); under high
    contrast (pure black or white text), at 7:1."""
    monkeypatch.setattr(theme, "is_dark", lambda: dark)
    monkeypatch.setattr(theme, "is_high_contrast", lambda: high)
    base, ink = QColor(background), QColor(text)
    shown = [_over(band_color(band), base) for band in range(len(BAND_LABELS))]
    assert shown[0] == base  # likely tokens stay untinted: a confident reply looks calm
    for band in range(1, len(shown)):
        difference = math.dist(_lab(shown[band - 1]), _lab(shown[band]))
        assert difference >= 20, (BAND_LABELS[band - 1], BAND_LABELS[band], difference)
        assert _contrast(shown[band], ink) >= (7 if high else 4.5), (
            BAND_LABELS[band], shown[band].name())


def test_the_legend_says_what_the_dot_is(qtbot):
    label = legend_label()
    qtbot.addWidget(label)
    assert "· = space" in legend_html()
    assert SYMBOLS_NOTE in label.toolTip() and "·" in SYMBOLS_NOTE
    spaced = TokenStep(TokenLogprob(token=" the", logprob=-0.1,
                                    top=((" the", -0.1), ("a", -2.5))), thinking=False)
    assert "·the" in token_tooltip(spaced) and SYMBOLS_NOTE in token_tooltip(spaced)
    plain = TokenStep(TokenLogprob(token="the", logprob=-0.1, top=(("the", -0.1),)),
                      thinking=False)
    assert SYMBOLS_NOTE not in token_tooltip(plain)
