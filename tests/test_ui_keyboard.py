"""A round with the keyboard only (issue 31): type, send, move between panes, fold the
thinking, Verify, Rollouts ×N, export, with QTest key events and no clicks, on the scripted
engine. The screen reader hears each pane's finished answer once, and the verdict; every
region of a pane is named after the pane."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QFileDialog, QWidget

from desktop_app.ui import language
from desktop_app.ui.main_window import MainWindow
from tests.fake_engine import answer_script

CTRL = Qt.KeyboardModifier.ControlModifier
CTRL_SHIFT = Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier


def role_id(catalog, role: str) -> str:
    return next(e.id for e in catalog if e.role == role)


@pytest.fixture
def window(qtbot, fake_models, engine):
    ids = [role_id(fake_models, "instruct"), role_id(fake_models, "reasoning")]
    engine.scripts[ids[1]] = answer_script("Fifty-six.", thinking="7 times 8 is 56.")
    engine.scripts[ids[0]] = answer_script("It is 56.")
    made = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(made)
    made.resize(1200, 800)
    made.show()
    made.activateWindow()
    yield made
    for pane in made.panes:
        if pane.rollouts_view is not None:
            pane.rollouts_view.close()
    assert made.shutdown()


def key(keys: Qt.Key, modifiers: Qt.KeyboardModifier = Qt.KeyboardModifier.NoModifier) -> None:
    """A key pressed where the focus is, as a user would."""
    target = QApplication.focusWidget()
    assert isinstance(target, QWidget), "nothing has the keyboard focus"
    QTest.keyClick(target, keys, modifiers)


def test_a_whole_round_by_keyboard(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    instruct, reasoning = window.panes
    # type and send: the prompt box has the focus when the window opens
    assert QApplication.focusWidget() is window.prompt
    QTest.keyClicks(window.prompt, "What is 7 * 8?")
    key(Qt.Key.Key_Return, CTRL)
    qtbot.waitUntil(lambda: not window.busy and all(p.turns and p.turns[-1].data.done
                                                    for p in window.panes), timeout=10_000)
    assert "Fifty-six." in reasoning.turns[-1].answer.toPlainText()
    # each pane's finished answer was announced once, politely, with its text
    assert instruct.announcer.said == ["Instruct pane: answer finished. It is 56."]
    assert reasoning.announcer.said == ["Reasoning pane: answer finished. Fifty-six."]

    # F6: the next pane is active and its answer has the focus (a screen reader reads it)
    assert window.active_index == 0
    key(Qt.Key.Key_F6)
    assert window.active_index == 1
    turn = reasoning.turns[-1]
    assert QApplication.focusWidget() is turn.answer
    assert turn.answer.accessibleName() == "Reasoning pane: answer"

    # Ctrl+Shift+T: the active pane's thinking unfolds, and folds again
    assert not turn.thinking.isHidden() and not turn.thinking.expanded
    key(Qt.Key.Key_T, CTRL_SHIFT)
    assert turn.thinking.expanded and turn.thinking.view.isVisibleTo(turn)
    assert QApplication.focusWidget() is turn.thinking.header
    key(Qt.Key.Key_T, CTRL_SHIFT)
    assert not turn.thinking.expanded
    assert instruct.turns[-1].thinking.isHidden()  # the instruct model did not think

    # Ctrl+Shift+V: Verify the active pane's reply; the verdict is shown and announced
    key(Qt.Key.Key_V, CTRL_SHIFT)
    qtbot.waitUntil(lambda: turn.data.verdict is not None and turn.verify_label.isVisible(),
                    timeout=20_000)
    headline = turn.data.verdict.headline
    qtbot.waitUntil(lambda: len(reasoning.announcer.said) == 2, timeout=5_000)
    assert reasoning.announcer.said[-1] == f"Reasoning pane: {headline}"
    assert instruct.turns[-1].data.verdict is None

    # Ctrl+Shift+R: the active pane's Rollouts ×N window opens
    key(Qt.Key.Key_R, CTRL_SHIFT)
    view = reasoning.rollouts_view
    assert view is not None and view.isVisible() and instruct.rollouts_view is None
    view.close()
    window.activateWindow()
    turn.answer.setFocus()  # where the focus was before the Rollouts window took it

    # Ctrl+Tab: back to the first pane, focus on its answer
    key(Qt.Key.Key_Tab, CTRL)
    assert window.active_index == 0
    assert QApplication.focusWidget() is instruct.turns[-1].answer

    # Ctrl+E: export (the file dialog answers with a path)
    target = tmp_path / "round.md"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        lambda *args, **kwargs: (str(target), "Markdown (*.md)"))
    key(Qt.Key.Key_E, CTRL)
    text = target.read_text(encoding="utf-8")
    assert "What is 7" in text and "Fifty-six." in text and "It is 56." in text


def test_every_region_of_a_pane_says_which_pane_it_is(qtbot, window) -> None:
    window.prompt.setPlainText("Hi")
    window.send_all()
    qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
    instruct, reasoning = window.panes
    assert instruct.picker.accessibleName() == "Instruct pane: model"
    assert reasoning.settings_button.accessibleName() == "Reasoning pane: settings"
    assert reasoning.remove_button.accessibleName() == "Reasoning pane: remove pane"
    assert instruct.status.accessibleName() == "Instruct pane: status"
    turn = reasoning.turns[-1]
    assert turn.thinking.header.accessibleName().startswith("Reasoning pane: Thinking, ")
    assert turn.verify_label.accessibleName() == "Reasoning pane: verdict"
    assert turn.metrics.accessibleName() == "Reasoning pane: metrics"
    # two panes of one role are numbered; the prompt and the key field have names too
    instruct.set_model(reasoning.config.model_id)
    assert [p.accessible_label for p in window.panes] == ["Reasoning pane 1",
                                                          "Reasoning pane 2"]
    assert window.prompt.accessibleName() == "Prompt"
    assert window.key_edit.accessibleName() == "Answer key"


def test_the_new_keys_are_in_the_menus(window) -> None:
    shortcuts = {action.shortcut().toString(): action.text()
                 for menu in window.menuBar().findChildren(type(window.menuBar().addMenu("x")))
                 for action in menu.actions()}
    assert shortcuts["Ctrl+Shift+T"].startswith("&Fold")
    assert shortcuts["Ctrl+Shift+V"] == "&Verify active pane"
    assert shortcuts["Ctrl+Shift+R"].startswith("R&ollouts")


def test_the_window_in_german(qtbot, fake_models, engine) -> None:
    try:
        language.install("de")
        made = MainWindow(fake_models, models=[role_id(fake_models, "instruct")],
                          remember=False, worker_factory=engine.worker)
        qtbot.addWidget(made)
        pane = made.panes[0]
        assert pane.accessible_label == "Instruct-Bereich"
        assert pane.picker.accessibleName() == "Instruct-Bereich: Modell"
        assert made.clear_all_button.text() == "Alles leeren"
        assert pane.stop_button.text() == "Stopp"
        made.shutdown()
    finally:
        language.install("en")
