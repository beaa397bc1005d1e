"""The RLHF window on the real Qt event loop and the scripted engine: sample, vote by key
and button, the ranking, the reward model and the best-of-N chart (each checked against
the core computed independently), saving, export, and the processes closed with it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop_app.rollouts.preferences import Winner, bradley_terry, parse_votes
from desktop_app.rollouts.rlhf import RlhfSession, analyse, load_session
from desktop_app.session.generation import wait_for_closing
from desktop_app.ui import theme
from desktop_app.ui.rlhf import RlhfWindow
from desktop_app.ui.tasks import wait_for_tasks
from desktop_app.verify import Problem
from tests.fake_engine import letter_embedding
from tests.test_rlhf import JOKES, _joke_script, _liked

PROBLEMS = [Problem(id="open-pelican-joke", title="A joke about pelicans",
                    prompt="Write a funny joke about pelicans.", kind="open", verifiable=False),
            Problem(id="mul", title="Multiply", prompt="What is 7 * 8?", kind="math",
                    answer="56")]


@pytest.fixture
def window(qtbot, fake_models, engine, tmp_path):
    engine.default = _joke_script
    entries = [e for e in fake_models if e.role == "instruct"]
    dialog = RlhfWindow(entries, engine.worker, problems=PROBLEMS,
                        save_to=tmp_path / "session.json", seed=1)
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    assert wait_for_tasks(timeout=5)
    dialog.close()
    assert wait_for_closing()


KEYS = {Winner.A: Qt.Key.Key_Left, Winner.B: Qt.Key.Key_Right, Winner.TIE: Qt.Key.Key_Down}


def _vote_like_the_class(qtbot, window: RlhfWindow, count: int) -> None:
    """The stand-in class: votes by key (arrows, then letters), the liked joke winning."""
    for number in range(count):
        a, b = window.pair
        la, lb = (_liked(window.session.answers[i].text) for i in (a, b))
        # what the class sees is A and B, anonymised: the texts on screen are the pair's
        assert window.vote_page.texts[Winner.A].toPlainText() == window.session.answers[a].text
        winner = Winner.TIE if la == lb else Winner.A if la > lb else Winner.B
        if number % 2:
            qtbot.keyClick(window.vote_page, KEYS[winner])
        else:
            qtbot.keyClick(window.vote_page, {Winner.A: Qt.Key.Key_A, Winner.B: Qt.Key.Key_B,
                                              Winner.TIE: Qt.Key.Key_T}[winner])


def test_the_loop_in_the_window(qtbot, window: RlhfWindow, engine, tmp_path) -> None:
    window.problem_box.setCurrentIndex(1)
    assert window.prompt.text() == "Write a funny joke about pelicans."
    window.sample()
    assert window.busy and not window.sample_button.isEnabled()
    qtbot.waitUntil(lambda: len(window.session.answers) == 8 and not window.busy, timeout=10_000)
    assert {a.text for a in window.session.answers} <= set(JOKES)
    assert window.tabs.currentWidget() is window.vote_page
    window.vote_page.setFocus()
    _vote_like_the_class(qtbot, window, 20)
    votes = window.session.votes
    assert len(votes) == 20
    saved = load_session(tmp_path / "session.json")
    assert saved is not None and saved.votes == votes  # saved as they come
    # undo takes the last vote back and shows its pair again
    last = votes[-1]
    window.undo_vote()
    assert len(window.session.votes) == 19 and window.pair == (last.a, last.b)
    window.vote(last.winner)
    assert window.session.votes[-1] == last
    # the ranking: Bradley–Terry on the votes, strongest first
    expected = bradley_terry(8, window.session.votes)
    qtbot.waitUntil(lambda: window.strengths is not None
                    and window.strengths.votes == expected.votes, timeout=5000)
    top = expected.ranking()[0]
    assert window.table.rowCount() == 8 and window.table.item(0, 0).text() == f"#{top}"
    assert window.table.item(0, 1).text() == f"{expected.strength[top]:+.2f}"
    # the reward model, trained on the model's embeddings, and the chart
    window.train()
    qtbot.waitUntil(lambda: window.report is not None and not window.busy, timeout=10_000)
    worker = engine.workers[0]
    assert worker.embedded == [a.text for a in window.session.answers]
    independent = analyse(RlhfSession(
        prompt="", answers=window.session.answers, votes=window.session.votes,
        embeddings=[[x / (sum(v * v for v in letter_embedding(a.text)) ** 0.5)
                     for x in letter_embedding(a.text)] for a in window.session.answers]))
    assert window.report.rewards == pytest.approx(independent.rewards)
    assert window.report.strengths.strength == pytest.approx(independent.strengths.strength)
    assert window.report.reward_agreement == independent.reward_agreement
    assert [x for point in window.chart.points for x in point] == pytest.approx(
        [x for p in independent.best_of_n for x in (p.n, p.reward, p.gold)])
    assert [n for n, _, _ in window.chart.points] == [1, 2, 4, 8, 16, 32, 64]
    assert "reward model (held out): agrees with the class on" in window.agreement.text()
    assert "the longest answer" in window.agreement.text()
    # export: JSON with the figures, the votes as CSV, the chart as PNG
    written = window.export(tmp_path / "class")
    data = json.loads(written[0].read_text(encoding="utf-8"))
    assert data["report"]["strengths"] == pytest.approx(list(expected.strength))
    assert parse_votes(written[1].read_text(encoding="utf-8"), 8) == window.session.votes
    assert written[2].stat().st_size > 1000
    _look(qtbot, window, tmp_path)


def _look(qtbot, window: RlhfWindow, tmp_path: Path) -> None:
    """The window at 1024×768 in presentation size and at 1600×900, each tab."""
    shots = Path(os.environ.get("RLHF_SCREENSHOT_DIR") or tmp_path)
    base = QApplication.font().pointSizeF()
    for size, point, name in (((1024, 768), base * 1.6, "presentation-1024x768"),
                              ((1600, 900), base, "1600x900")):
        theme.apply_point_size(window, point)
        window.resize(*size)
        for index in range(window.tabs.count()):
            window.tabs.setCurrentIndex(index)
            qtbot.wait(30)
            assert window.grab().save(str(shots / f"rlhf-{name}-tab{index + 1}.png"))


def test_a_key_is_the_charts_gold_and_misuse_is_a_sentence(qtbot, window: RlhfWindow,
                                                           engine) -> None:
    window.prompt.setText("")
    window.sample()
    assert window.status.text() == "Type a prompt, or choose one, to sample answers to."
    window.problem_box.setCurrentIndex(2)  # 7 * 8, with a key
    engine.default = _joke_script
    window.count.setValue(4)
    window.sample()
    qtbot.waitUntil(lambda: len(window.session.answers) == 4 and not window.busy, timeout=10_000)
    assert all(a.correct is False for a in window.session.answers)  # jokes are not 56
    window.train()
    assert "vote on a few pairs first" in window.agreement.text()
    for _ in range(6):
        window.vote(Winner.A)
    window.train()
    qtbot.waitUntil(lambda: window.report is not None and not window.busy, timeout=10_000)
    assert window.report.gold_kind == "key" and window.chart.key
    assert all(gold == 0.0 for _, _, gold in window.chart.points)


def test_the_run_menu_opens_it_on_the_panes_models(qtbot, fake_models, engine,
                                                  triptych_home) -> None:
    from desktop_app.ui.main_window import MainWindow

    ids = [e.id for e in fake_models if e.role in ("instruct", "reasoning")]
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    run_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Run")
    action = next(a for a in run_menu.actions() if a.text().startswith("&RLHF"))
    action.trigger()
    dialog = next(w for w in QApplication.topLevelWidgets()
                  if isinstance(w, RlhfWindow) and w.isVisible())
    try:
        assert [e.id for e in dialog.entries] == ids
        assert dialog.model_box.count() == 3  # each model, and every pane's model
        titles = [dialog.problem_box.itemText(i) for i in range(dialog.problem_box.count())]
        assert "A joke about pelicans (open)" in titles  # the shipped open set
        assert any("with a key" in t for t in titles)  # and the math set, keyed
    finally:
        dialog.close()
        assert wait_for_closing()
