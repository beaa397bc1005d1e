"""Ctrl+Enter as a class uses it (issue 27): an empty prompt says why nothing happened; a
question sent while the panes answer waits, said under the prompt with Cancel, and goes to
every pane when they have all finished. Scripted engine, real Qt event loop."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from desktop_app.ui.main_window import EMPTY_PROMPT, MainWindow
from desktop_app.ui.send_queue import QUEUED_NOTE
from tests.fake_engine import answer_script


@pytest.fixture
def window(qtbot, fake_models, engine):
    ids = [next(e.id for e in fake_models if e.role == role) for role in ("base", "instruct")]
    made = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(made)
    made.resize(1200, 800)
    made.show()
    yield made
    assert made.shutdown()


def ctrl_enter(window: MainWindow) -> None:
    window.prompt.setFocus()
    QTest.keyClick(window.prompt, Qt.Key.Key_Return, Qt.KeyboardModifier.ControlModifier)


def prompts(window: MainWindow) -> list[list[str]]:
    return [[turn.prompt for turn in pane.session.turns] for pane in window.panes]


def gated(engine) -> threading.Event:
    """Every reply waits at its first token until the test opens the gate."""
    gate = threading.Event()
    script = answer_script("Fifty-six.")
    engine.default = [script[0], gate, *script[1:]]
    return gate


def test_ctrl_enter_on_an_empty_prompt_says_why_nothing_happens(qtbot, window, engine):
    window.prompt.setPlainText("   \n ")
    ctrl_enter(window)
    assert window.statusBar().currentMessage() == EMPTY_PROMPT
    assert window.prompt.hasFocus() and engine.workers == [] and not window.queued.isVisible()
    assert prompts(window) == [[], []]


def test_a_question_sent_while_the_panes_answer_waits_then_goes_to_every_pane(
        qtbot, window, engine):
    gate = gated(engine)
    window.prompt.setPlainText("What is 7 * 8?")
    ctrl_enter(window)
    qtbot.waitUntil(lambda: window.busy, timeout=5000)
    window.prompt.setPlainText("And 7 * 9?")
    ctrl_enter(window)
    assert window.queued.isVisible() and window.queued.cancel_button.isVisible()
    assert QUEUED_NOTE in window.queued.label.text() and "And 7 * 9?" in window.queued.label.text()
    assert prompts(window) == [["What is 7 * 8?"]] * 2  # nothing sent to a busy pane
    window.prompt.setPlainText("And 7 * 10?")  # sent again: it replaces the one waiting
    ctrl_enter(window)
    assert "And 7 * 10?" in window.queued.label.text() and "7 * 9" not in window.queued.label.text()
    engine.default = answer_script("Seventy.")
    with qtbot.waitSignal(window.allFinished, timeout=10_000):
        gate.set()  # the first round ends: the queued question goes to every pane
        qtbot.waitUntil(lambda: prompts(window) == [["What is 7 * 8?", "And 7 * 10?"]] * 2,
                        timeout=10_000)
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    assert not window.queued.isVisible() and not window.queued.pending
    assert [pane.session.turns[-1].answer for pane in window.panes] == ["Seventy."] * 2


@pytest.mark.parametrize("how", ["cancel", "stop all"])
def test_a_queued_question_can_be_cancelled_and_stop_all_cancels_it(qtbot, window, engine,
                                                                      how):
    gate = gated(engine)
    window.prompt.setPlainText("What is 7 * 8?")
    ctrl_enter(window)
    qtbot.waitUntil(lambda: window.busy, timeout=5000)
    window.prompt.setPlainText("And 7 * 9?")
    ctrl_enter(window)
    assert window.queued.pending
    if how == "cancel":
        window.queued.cancel_button.click()
    else:
        window.stop_all()
    assert not window.queued.isVisible() and not window.queued.pending
    assert window.statusBar().currentMessage() == "The queued question was not sent."
    gate.set()
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    qtbot.wait(50)  # a send would be scheduled on the event loop
    assert prompts(window) == [["What is 7 * 8?"]] * 2


def test_the_window_keys_beyond_the_menus_work(qtbot, window, engine):
    """Keys a menu cannot hold twice are window shortcuts (ui/window_menus.py): the keypad's
    Ctrl+Enter sends like Ctrl+Return, Ctrl+Tab moves to the next pane, Ctrl++ zooms."""
    window.prompt.setPlainText("What is 7 * 8?")
    window.prompt.setFocus()
    QTest.keyClick(window.prompt, Qt.Key.Key_Enter,
                   Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.KeypadModifier)
    assert prompts(window) == [["What is 7 * 8?"], ["What is 7 * 8?"]]
    qtbot.waitUntil(lambda: not window.busy, timeout=10000)
    active = window.active_index
    QTest.keyClick(window.prompt, Qt.Key.Key_Tab, Qt.KeyboardModifier.ControlModifier)
    assert window.active_index == (active + 1) % len(window.panes)
    zoom = window.zoom
    QTest.keyClick(window.prompt, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert window.zoom > zoom
