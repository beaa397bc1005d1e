"""Issue 31 for the Rollouts window, its charts and the Practice dialog: the chips by
keyboard alone (QTest key events only), their names in words, the charts' figures in
words, every control named, Escape closes, and the German words."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtTest import QTest
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QApplication,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QSpinBox,
    QTextEdit,
    QWidget,
)

from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.ui import language
from desktop_app.ui.pane import Pane
from desktop_app.ui.practice import PracticePicker
from desktop_app.ui.rollouts import RolloutsView
from desktop_app.ui.rollouts_chart import AccuracyChart, Bar, PassAtKChart
from desktop_app.ui.rollouts_sets import SetRunView
from desktop_app.ui.tasks import wait_for_tasks
from desktop_app.verify import PracticeSet, Problem
from tests.fake_engine import answer_script, send_and_wait

PROBLEM = Problem(id="math-mul-7-8", title="7 × 8", prompt="What is 7 * 8?", kind="math",
                  answer="56")
INTERACTIVE = (QAbstractButton, QComboBox, QLineEdit, QPlainTextEdit, QTextEdit, QSpinBox,
               QAbstractItemView)


@pytest.fixture
def english():
    yield
    language.install("en")


@pytest.fixture
def pane(qtbot, fake_models, engine):
    reasoning = next(e.id for e in fake_models if e.role == "reasoning")
    widget = Pane(fake_models, PaneConfig(model_id=reasoning), worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_tasks(timeout=10)
    assert wait_for_closing()


def by_seed(request):
    right = (request.sampling.seed or 0) % 3 != 0
    return answer_script("The answer is 56." if right else "The answer is 54.", delay=0.002)


def _ran(qtbot, pane, engine, n: int = 12) -> RolloutsView:
    engine.default = answer_script("The answer is 56.")
    send_and_wait(qtbot, pane, PROBLEM.prompt, PROBLEM)
    engine.default = by_seed
    view = pane.open_rollouts()
    assert isinstance(view, RolloutsView)
    view.count.setValue(n)
    with qtbot.waitSignal(view.runFinished, timeout=30_000):
        assert view.run()
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=2000)
    return view


def _focus() -> QWidget | None:
    return QApplication.focusWidget()


def unnamed(root: QWidget) -> list[str]:
    """Every visible interactive widget under ``root`` whose accessible name (what
    QAccessible reports) has no letters."""
    missing = []
    for widget in root.findChildren(QWidget):
        if not isinstance(widget, INTERACTIVE) or not widget.isVisibleTo(root):
            continue
        if isinstance(widget.parent(), (QAbstractItemView, QSpinBox, QComboBox)):
            continue  # a view's, spin box's or combo box's own parts (named by their owner)
        interface = QAccessible.queryAccessibleInterface(widget)
        name = interface.text(QAccessible.Text.Name) if interface is not None else ""
        if not re.search(r"[^\W\d_]", name or ""):
            missing.append(f"{type(widget).__name__} {widget.objectName()!r}")
    return missing


def test_the_chips_by_keyboard_alone(qtbot, pane, engine) -> None:
    view = _ran(qtbot, pane, engine)
    chips = view.chip_buttons
    view.export_button.setFocus()
    QTest.keyClick(view.export_button, Qt.Key.Key_Tab)
    assert _focus() is chips[0]  # the grid is one Tab stop
    QTest.keyClick(chips[0], Qt.Key.Key_Right)
    assert _focus() is chips[1]
    QTest.keyClick(chips[1], Qt.Key.Key_Down)
    assert _focus() is chips[9]
    QTest.keyClick(chips[9], Qt.Key.Key_Down)  # past the grid's edge: stays
    assert _focus() is chips[9]
    QTest.keyClick(chips[9], Qt.Key.Key_End)
    assert _focus() is chips[11]
    QTest.keyClick(chips[11], Qt.Key.Key_Home)
    assert _focus() is chips[0]
    QTest.keyClick(chips[0], Qt.Key.Key_Left)
    assert _focus() is chips[0]
    QTest.keyClick(chips[0], Qt.Key.Key_Right)
    QTest.keyClick(chips[1], Qt.Key.Key_Right)
    QTest.keyClick(chips[2], Qt.Key.Key_Return)  # Enter opens it, as a click does
    qtbot.waitUntil(lambda: "Rollout 3 of 12" in view.detail.toPlainText(), timeout=2000)
    assert view.selected == 2
    QTest.keyClick(chips[2], Qt.Key.Key_Right)
    QTest.keyClick(chips[3], Qt.Key.Key_Space)  # and Space
    qtbot.waitUntil(lambda: "Rollout 4 of 12" in view.detail.toPlainText(), timeout=2000)
    # Tab leaves the grid at once (not chip by chip); Shift+Tab comes back to the chip
    QTest.keyClick(chips[3], Qt.Key.Key_Tab)
    assert _focus() is view.figures
    QTest.keyClick(view.figures, Qt.Key.Key_Tab, Qt.KeyboardModifier.ShiftModifier)
    assert _focus() is chips[3]
    # the focus is drawn: a dashed frame of its own, apart from the chosen chip's
    assert ":focus" in chips[3].styleSheet() and "dashed" in chips[3].styleSheet()
    QTest.keyClick(chips[3], Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: not view.isVisible(), timeout=2000)


def test_each_chip_says_in_words_what_its_symbol_shows(qtbot, pane, engine) -> None:
    view = _ran(qtbot, pane, engine, n=8)
    for index, rollout in enumerate(view.rollouts):
        interface = QAccessible.queryAccessibleInterface(view.chip_buttons[index])
        name = interface.text(QAccessible.Text.Name)
        words = "passed" if rollout.correct else "failed"
        assert name == f"Rollout {index + 1} of 8: {words}, answer {rollout.verdict.got}"
        assert f"seed {rollout.seed}" in interface.text(QAccessible.Text.Description)
        assert view.chip_buttons[index].text() in ("✓", "✗")  # a symbol, not only a colour
    assert not unnamed(view), unnamed(view)


def test_the_pass_at_k_chart_says_its_figures(qtbot, pane, engine) -> None:
    view = _ran(qtbot, pane, engine, n=4)
    chart = view.chart
    assert chart.accessibleName() == "Chart: pass@k"
    described = chart.accessibleDescription()
    passes = view.current_run().pass_at_k()
    for k, value in passes.items():
        assert f"pass@{k}: {value:.2f}" in described
    assert "Majority vote" in described and "correct of 4" in described
    assert chart.focusPolicy() & Qt.FocusPolicy.TabFocus  # a keyboard reaches it
    chart.set_points([(1, 0.25)])  # the words follow the data
    assert "pass@1: 0.25" in chart.accessibleDescription()
    assert "pass@4" not in chart.accessibleDescription()


def test_a_bar_chart_says_its_bars(qtbot, english) -> None:
    chart = AccuracyChart()
    qtbot.addWidget(chart)
    assert chart.accessibleDescription() == "No data yet."
    chart.set_bars([Bar("m · p", 0.5, 0.2, 0.8)])
    assert chart.accessibleDescription() == "m · p: accuracy 0.50, 95% interval 0.20 to 0.80."
    language.install("de")
    german = AccuracyChart()
    qtbot.addWidget(german)
    german.set_bars([Bar("m · p", 0.5, 0.2, 0.8)])
    assert german.accessibleName() == "Diagramm: Genauigkeit (95-%-Wilson-Intervall)"
    assert "Genauigkeit 0,50" in german.accessibleDescription()
    points = PassAtKChart()
    qtbot.addWidget(points)
    points.set_points([(1, 0.5), (2, 0.75)])
    assert "pass@1: 0,50, pass@2: 0,75" in points.accessibleDescription()


def _sets() -> list[PracticeSet]:
    return [PracticeSet(name="tiny", problems=[PROBLEM])]


def test_the_practice_dialog_by_keyboard(qtbot) -> None:
    picker = PracticePicker(_sets())
    qtbot.addWidget(picker)
    picker.show()
    picker.activateWindow()
    qtbot.waitUntil(picker.isActiveWindow, timeout=2000)
    assert _focus() is picker.search
    order = [picker.search, picker.set_filter]
    if picker.level_filter.isEnabled():
        order.append(picker.level_filter)
    order += [picker.tree, picker.preview]
    for first, second in zip(order, order[1:], strict=False):
        QTest.keyClick(first, Qt.Key.Key_Tab)
        assert _focus() is second
    assert not unnamed(picker), unnamed(picker)
    QTest.keyClick(picker.tree, Qt.Key.Key_Return)  # Enter in the list uses the problem
    assert picker.selected == PROBLEM and picker.result() == picker.DialogCode.Accepted


def test_escape_closes_the_practice_dialog(qtbot) -> None:
    picker = PracticePicker(_sets())
    qtbot.addWidget(picker)
    picker.show()
    QTest.keyClick(picker.search, Qt.Key.Key_Escape)
    assert not picker.isVisible() and picker.selected is None


def test_the_set_run_window_is_named_and_closes_on_escape(qtbot, fake_models, engine) -> None:
    view = SetRunView(list(fake_models)[:1], engine.worker, sets=_sets())
    qtbot.addWidget(view)
    view.show()
    assert not unnamed(view), unnamed(view)
    assert view.chart.accessibleName().startswith("Chart: ")
    view.activateWindow()
    qtbot.waitUntil(view.isActiveWindow, timeout=2000)
    QTest.keyClick(view.set_picker, Qt.Key.Key_Escape)
    assert not view.isVisible()


def test_the_windows_in_german(qtbot, pane, english) -> None:
    language.install("de")
    picker = PracticePicker(_sets())
    qtbot.addWidget(picker)
    assert picker.windowTitle() == "Übungsaufgaben"
    assert picker.search.accessibleName() == "Aufgaben suchen"
    assert picker.count_label.text() == "1 von 1"
    view = pane.open_rollouts()
    assert isinstance(view, RolloutsView)
    assert view.run_button.text() == "Starten" and view.stop_button.text() == "Stopp"
    assert view.figures.text() == "Drücken Sie „Starten“, um die Rollouts zu erzeugen."
    assert view.key_edit.accessibleName() == "Lösungsschlüssel"
    assert "läuft" in view.legend.text()
