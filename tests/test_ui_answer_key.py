"""Issue 27: the main window's Answer key field, on the scripted engine and a real Qt loop.

A teacher types a question with no key: Verify says "Answer found: 4 · no key to check
against"; typing a key makes Verify (again) check against it, Rollouts ×N too; a practice
problem owns the field; moving on to another question takes the typed key away.
"""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from desktop_app.ui.answer_key import MAX_WIDTH, PLACEHOLDER
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.tasks import wait_for_tasks
from desktop_app.ui.turn import TurnWidget
from desktop_app.verify import VerdictState, find_problem
from tests.fake_engine import answer_script


@pytest.fixture
def window(qtbot, fake_models, engine):
    instruct = next(e.id for e in fake_models if e.role == "instruct")
    made = MainWindow(fake_models, models=[instruct], remember=False,
                      worker_factory=engine.worker)
    qtbot.addWidget(made)
    made.show()
    yield made
    made.shutdown()
    assert wait_for_tasks(timeout=10)


def _ask(qtbot, window: MainWindow, engine, prompt: str, answer: str) -> TurnWidget:
    engine.default = answer_script(answer)
    window.prompt.setPlainText(prompt)
    with qtbot.waitSignal(window.allFinished, timeout=10_000):
        assert window.send_all() == 1
    return window.panes[0].turns[-1]


def _verify(qtbot, turn: TurnWidget) -> str:
    turn.data.verdict = None
    turn.verify_button.click()
    qtbot.waitUntil(lambda: turn.data.verdict is not None, timeout=20_000)
    return turn.verify_label.text()


def _type_key(qtbot, window: MainWindow, key: str) -> None:
    window.key_edit.clear()
    qtbot.keyClicks(window.key_edit, key)  # as typed: textEdited, not a program's setText


def test_a_free_question_reads_answer_found_then_checks_a_typed_key(qtbot, window, engine):
    field = window.key_edit
    assert field.placeholderText() == PLACEHOLDER and not field.isReadOnly()
    assert field.maximumWidth() <= MAX_WIDTH and field.isVisible()

    turn = _ask(qtbot, window, engine, "What is 2 + 2?", "2 + 2 = 4.\n\nThe answer is 4.")
    text = _verify(qtbot, turn)
    assert turn.data.verdict is not None and turn.data.verdict.verdict == VerdictState.ANSWERED
    assert "Answer found: 4 · no key to check against" in text
    assert "No answer" not in text and "got <code>" not in text

    _type_key(qtbot, window, "4")  # typed after the reply: Verify again checks against it
    text = _verify(qtbot, turn)
    assert turn.data.verdict.verdict == VerdictState.PASS, turn.data.verdict.reason
    assert "expected <code>4</code>" in text
    _type_key(qtbot, window, "5")
    _verify(qtbot, turn)
    assert turn.data.verdict.verdict == VerdictState.FAIL
    exported = window.panes[0].export_data()["turns"][-1]
    assert exported["verdict"] == "fail" and exported["verdict_detail"]["expected"] == "5"

    # The next question: the last one's key is taken away as soon as the prompt changes.
    window.prompt.setPlainText("What is 3 + 3?")
    assert field.text() == "" and not field.isReadOnly()
    assert turn.data.problem is not None and turn.data.problem.answer == "5"  # its own key

    _type_key(qtbot, window, "6")  # typed before sending: it goes with the question
    window.prompt.setPlainText("What is 3 + 3 ?")  # editing it still: the key stays
    assert field.text() == "6"
    second = _ask(qtbot, window, engine, "What is 3 + 3 ?", "The answer is 6.")
    assert second.data.problem is not None and second.data.problem.typed
    _verify(qtbot, second)
    assert second.data.verdict.verdict == VerdictState.PASS


def test_rollouts_from_the_pane_use_the_typed_key(qtbot, window, engine):
    _ask(qtbot, window, engine, "What is 2 + 2?", "The answer is 4.")
    pane = window.panes[0]
    view = pane.open_rollouts()
    assert view is not None
    try:
        assert view.key_edit.text() == "" and view.answer_key() is None
        _type_key(qtbot, window, "4")
        assert pane.open_rollouts() is view  # the same window, now with the key
        assert view.key_edit.text() == "4"
        key = view.answer_key()
        assert key is not None and key.problem is not None and key.problem.answer == "4"
        view.count.setValue(2)
        with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
            assert view.run()
        run = finished.args[0]
        assert run.correct == 2 and run.keyed
        assert [view.chip_text(i) for i in range(2)] == ["✓", "✓"]
    finally:
        view.close()


def test_a_practice_problem_owns_the_field(qtbot, window):
    field = window.key_edit
    _type_key(qtbot, window, "99")
    math = find_problem("math-mul-7-8")
    window.use_problem(math)
    assert field.text() == math.answer and field.isReadOnly()
    assert window.key_edit.typed_problem(math.prompt) is None  # the problem's key rules

    code = find_problem("code-add")
    window.use_problem(code)
    assert field.text() == "" and field.isReadOnly() and field.placeholderText() == "hidden tests"

    window.prompt.setPlainText(code.prompt + " Use a loop.")  # edited away from the problem
    assert window.problem is None
    assert field.text() == "" and not field.isReadOnly()
    assert field.placeholderText() == PLACEHOLDER


def test_window_renders_the_field_in_the_toolbar(qtbot, window, tmp_path):
    """The field sits in the top bar at 1024×768 and keeps its width compact."""
    window.resize(1024, 768)
    qtbot.waitUntil(lambda: window.key_edit.width() > 0)
    assert 60 < window.key_edit.width() <= MAX_WIDTH
    top_bar_y = window.practice_button.mapTo(window, window.practice_button.rect().center()).y()
    field_y = window.key_edit.mapTo(window, window.key_edit.rect().center()).y()
    assert abs(top_bar_y - field_y) < 10
