"""The RLHF window and the blind quiz bar for everyone in the room (issue 31): the vote
buttons say whose answer wins, the vote keys work wherever the focus is in the Vote tab,
each new pair is announced, the ranking and the chart have names (the chart its figures
in words), the quiz's guesses are named and Reveal announces the score; in German too,
and the exported handout speaks the window's language while its JSON keys stay English."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QComboBox, QWidget

from desktop_app.rollouts.preferences import Vote, Winner
from desktop_app.rollouts.rlhf import Answer, RlhfSession, export_summary
from desktop_app.session.quiz import Quiz
from desktop_app.ui import a11y, language
from desktop_app.ui.export import to_html, to_markdown
from desktop_app.ui.quiz_bar import QuizBar
from desktop_app.ui.rlhf import RlhfWindow
from desktop_app.ui.tasks import wait_for_tasks
from tests.test_accessibility import nameless as qt_nameless
from tests.test_accessibility import unreachable
from tests.test_rlhf import _joke_script

TEXTS = ["Why do pelicans carry fish? To fill the bill!", "Pelicans are birds.",
         "What did the pelican say? Nothing: its mouth was full.", "A pelican walks in."]


def nameless(root: QWidget) -> list[str]:
    """As the walk of every window finds them, but a combo box named with words counts as
    named: on Linux Qt says a combo's value as its name (AT-SPI reads the name from the
    label relation), so the walk cannot see the name it was given."""
    combos = [c for c in root.findChildren(QComboBox) if c.isVisible()]
    assert all(any(ch.isalpha() for ch in c.accessibleName()) for c in combos), \
        [c.currentText() for c in combos if not c.accessibleName()]
    return [found for found in qt_nameless(root) if not found.startswith("ComboBox ")]


@pytest.fixture
def english():
    yield
    language.install("en")


def _window(qtbot, engine, tmp_path, fake_models) -> RlhfWindow:
    engine.default = _joke_script
    entries = [e for e in fake_models if e.role == "instruct"]
    session = RlhfSession(prompt="Write a funny joke about pelicans.",
                          answers=[Answer(text, entries[0].id) for text in TEXTS])
    dialog = RlhfWindow(entries, engine.worker, session=session,
                        save_to=tmp_path / "session.json", seed=1)
    qtbot.addWidget(dialog)
    dialog.resize(1000, 700)
    dialog.show()
    return dialog


def _close(dialog: RlhfWindow) -> None:
    assert wait_for_tasks(timeout=10)
    dialog.close()


def test_the_vote_buttons_table_and_chart_have_names(qtbot, engine, tmp_path, fake_models):
    window = _window(qtbot, engine, tmp_path, fake_models)
    try:
        buttons = window.vote_page.buttons
        assert buttons[Winner.A].accessibleName() == "Answer A is better"
        assert buttons[Winner.B].accessibleName() == "Answer B is better"
        assert "Tie" in buttons[Winner.TIE].accessibleName()
        assert "left arrow" in buttons[Winner.A].accessibleDescription()
        assert window.vote_page.texts[Winner.A].accessibleName() == "Answer A"
        assert window.table.accessibleName() == "Ranking"
        assert "No figures yet" in window.chart.accessibleDescription()
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            qtbot.wait(20)
            assert nameless(window) == [], index
            assert unreachable(window) == [], index
    finally:
        _close(window)


def test_the_vote_keys_work_wherever_the_focus_is_in_the_tab(qtbot, engine, tmp_path,
                                                             fake_models):
    window = _window(qtbot, engine, tmp_path, fake_models)
    try:
        window.activateWindow()
        window.tabs.setCurrentIndex(1)
        window.tabs.setCurrentWidget(window.vote_page)  # focus on a button: it shows
        assert window.focusWidget() is window.vote_page.buttons[Winner.A]
        page = window.vote_page
        places = [page.buttons[Winner.A], page.buttons[Winner.TIE], page.buttons[Winner.B],
                  page.undo, page.texts[Winner.A], page.texts[Winner.B], page]
        keys = [(Qt.Key.Key_Left, Winner.A), (Qt.Key.Key_Right, Winner.B),
                (Qt.Key.Key_Down, Winner.TIE), (Qt.Key.Key_A, Winner.A),
                (Qt.Key.Key_B, Winner.B), (Qt.Key.Key_T, Winner.TIE)]
        votes = window.session.votes
        for place in places:
            for key, winner in keys:
                arrow = key in (Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Down)
                if arrow and place in page.texts.values():
                    continue  # in an answer box the arrows read the text
                place.setFocus()
                QApplication.processEvents()
                assert place.hasFocus()
                before, pair = len(votes), window.pair
                qtbot.keyClick(place, key)
                assert len(votes) == before + 1, (place, key)
                assert votes[-1] == Vote(*pair, winner)
        # each new pair is announced politely, with the vote's number
        said = page.announcer.said
        qtbot.waitUntil(lambda: "new pair" in " ".join(said), timeout=3000)
        assert "answer A, then answer B" in said[-1]
        # Ctrl+Z takes the last vote back, wherever the focus is
        count = len(votes)
        page.texts[Winner.B].setFocus()
        qtbot.keyClick(page.texts[Winner.B], Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
        assert len(votes) == count - 1
    finally:
        _close(window)


def test_the_chart_says_its_figures_in_words(qtbot, engine, tmp_path, fake_models):
    window = _window(qtbot, engine, tmp_path, fake_models)
    try:
        for a, b, winner in ((0, 1, Winner.A), (2, 1, Winner.A), (0, 3, Winner.A),
                             (2, 3, Winner.A), (1, 3, Winner.B), (0, 2, Winner.TIE)):
            window.pair = (a, b)
            window.vote(winner)
        window.train()
        qtbot.waitUntil(lambda: window.report is not None and not window.busy, timeout=10_000)
        description = window.chart.accessibleDescription()
        assert window.chart.accessibleName() == "Best-of-N chart: reward model vs gold"
        assert "gold: the class's strength" in description
        for point in window.report.best_of_n:
            assert f"N = {point.n}: reward {point.reward:+.2f}, gold {point.gold:+.2f}." \
                in description
        assert "reward model (held out): agrees with the class on" in window.agreement.text()
    finally:
        _close(window)


def test_the_window_in_german(qtbot, engine, tmp_path, fake_models, english):
    language.install("de")
    window = _window(qtbot, engine, tmp_path, fake_models)
    try:
        assert window.windowTitle() == "RLHF: bewerten, Belohnungsmodell, Best-of-N"
        assert window.vote_page.buttons[Winner.A].accessibleName() == "Antwort A ist besser"
        assert window.tabs.tabText(0) == "1 · Abstimmen"
        window.pair = (0, 1)
        window.vote(Winner.A)
        assert "Abstimmung 2" in window.vote_page.counter.text()
        qtbot.waitUntil(lambda: window.strengths is not None and window.strengths.votes[0])
        strength = window.table.item(0, 1).text()
        assert "," in strength and "." not in strength  # 0,53: the German decimal comma
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            qtbot.wait(20)
            assert nameless(window) == [], index
    finally:
        _close(window)


def _bar(qtbot) -> QuizBar:
    host = SimpleNamespace(base_point_size=10.0, zoom=1.0)
    bar = QuizBar(host)
    qtbot.addWidget(bar)
    models = [("b", "Base 1B", "Fam", "base"), ("i", "Instruct 1B", "Fam", "instruct"),
              ("r", "Reason 1B", "Fam", "reasoning")]
    bar.quiz, _order = Quiz.start(models, seed=4)
    bar._build_guesses()
    bar.reveal_button.setEnabled(True)
    bar.show()
    return bar


def test_the_quiz_guesses_are_named_and_reveal_announces_the_score(qtbot, monkeypatch):
    said: list[str] = []
    monkeypatch.setattr(a11y, "announce", lambda widget, text, **kw: said.append(text))
    bar = _bar(qtbot)
    assert [c.accessibleName() for c in bar.combos] == [
        "Guess for Pane A", "Guess for Pane B", "Guess for Pane C"]
    assert nameless(bar) == []
    assert bar.quiz is not None
    bar.guess([pane.stage for pane in bar.quiz.panes])
    bar.reveal_button.click()
    assert said == ["Score: 3 of 3"]
    assert bar.result.text().splitlines()[-1] == "Score: 3 of 3"
    assert "you guessed" in bar.result.text()


def test_the_quiz_bar_in_german(qtbot, monkeypatch, english):
    said: list[str] = []
    monkeypatch.setattr(a11y, "announce", lambda widget, text, **kw: said.append(text))
    language.install("de")
    bar = _bar(qtbot)
    assert bar.combos[0].accessibleName() == "Tipp für Bereich A"
    assert bar.combos[0].itemText(1) == "Basis"
    bar.reveal_button.click()
    assert said == ["Punkte: 0 von 3"]


def test_the_handout_speaks_the_windows_language_and_json_keys_stay_english(english):
    votes = [Vote(0, 1, Winner.A), Vote(2, 1, Winner.A), Vote(0, 2, Winner.TIE)]
    session = RlhfSession(prompt="Pelicans?", answers=[Answer(t, "m") for t in TEXTS[:3]],
                          votes=votes)
    rlhf = export_summary(session)
    assert rlhf is not None
    pane = {"model": "m", "role": "instruct",
            "turns": [{"prompt": "Hi", "answer": "Hello.", "verdict": None}]}
    english_md = to_markdown([pane], rlhf=rlhf)
    assert "## The class's votes (RLHF)" in english_md and "| Rank | Answer |" in english_md
    language.install("de")
    german_md, german_html = to_markdown([pane], rlhf=rlhf), to_html([pane], rlhf=rlhf)
    assert "# Triptych-Vergleich" in german_md and "| Rang | Antwort |" in german_md
    assert "**Antwort:**" in german_md
    assert "<html lang='de'>" in german_html
    # the JSON is machine-readable: the same keys in every language
    assert set(json.loads(json.dumps(export_summary(session)))) == set(rlhf)
    assert "answers" in rlhf and "winner" in rlhf["votes"][0]
