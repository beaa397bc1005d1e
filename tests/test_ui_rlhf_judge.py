"""The RLHF window's judge (a chat model's P("yes") beside the reward model and the
longest answer, scored in the background, saved and exported) and the class's votes in
the main window's export (Markdown, HTML, JSON; blind in the quiz), on the real Qt event
loop and the scripted engine."""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtWidgets import QApplication

from desktop_app.engine.protocol import GenerationRequest
from desktop_app.rollouts.preferences import Vote, Winner, bradley_terry
from desktop_app.rollouts.rlhf import Answer, RlhfSession, load_session, save_session
from desktop_app.session.generation import wait_for_closing
from desktop_app.session.quiz import mask_terms
from desktop_app.ui import theme
from desktop_app.ui.rlhf import RlhfWindow
from desktop_app.ui.tasks import wait_for_tasks
from tests.test_rlhf import _joke_script
from tests.test_rollouts_ui import judge_prefers
from tests.test_ui_rlhf import PROBLEMS, _vote_like_the_class


def _jokes_and_judge(request: GenerationRequest) -> list[object]:
    """One model both tells the jokes and, asked whether an answer is correct, judges
    them: it likes a question-and-punchline joke (judge_prefers reads what follows
    "Proposed answer:", here cut before the judge's own question)."""
    if "Proposed answer:" in request.prompt:
        answer = request.prompt.split("Proposed answer:")[-1].split("\n\nIs the ")[0]
        return judge_prefers("?" if "?" in answer else "\0never")(
            dataclasses.replace(request, prompt="Proposed answer:" + answer))
    return _joke_script(request)


def _p_yes(text: str) -> float:
    return 0.9 if "?" in text else 0.2


def _agreement(scores: list[float], votes: list[Vote]) -> tuple[float, int]:
    """The judge's agreement counted by hand: a decided vote agrees when the winner scored
    higher, half when the two scored the same."""
    agreed, total = 0.0, 0
    for vote in votes:
        if vote.winner == Winner.TIE:
            continue
        winner, loser = (vote.a, vote.b) if vote.winner == Winner.A else (vote.b, vote.a)
        agreed += 1.0 if scores[winner] > scores[loser] else \
            0.5 if scores[winner] == scores[loser] else 0.0
        total += 1
    return agreed, total


def _window(qtbot, engine, tmp_path, judges) -> RlhfWindow:
    engine.default = _jokes_and_judge
    dialog = RlhfWindow(judges or [], engine.worker, problems=PROBLEMS,
                        save_to=tmp_path / "session.json", seed=1, judges=judges)
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _close(dialog: RlhfWindow) -> None:
    assert wait_for_tasks(timeout=5)
    dialog.close()
    assert wait_for_closing()


def _sample_and_vote(qtbot, window: RlhfWindow) -> None:
    window.problem_box.setCurrentIndex(1)
    window.sample()
    qtbot.waitUntil(lambda: len(window.session.answers) == 8 and not window.busy,
                    timeout=10_000)
    window.vote_page.setFocus()
    _vote_like_the_class(qtbot, window, 20)


def test_the_judge_scores_in_the_background_beside_the_longest_answer(
        qtbot, fake_models, engine, tmp_path) -> None:
    instruct = next(e for e in fake_models if e.role == "instruct")
    window = _window(qtbot, engine, tmp_path, [instruct])
    try:
        assert window.judge_box.currentText() == f"Judge: {instruct.name}"
        assert not window.judge_button.isEnabled()  # no answers to judge yet
        _sample_and_vote(qtbot, window)
        window.train()  # first without a judge: said in one line
        qtbot.waitUntil(lambda: window.report is not None and not window.busy, timeout=10_000)
        text = window.agreement.text()
        assert "the longest answer" in text
        assert "the judge's P(\"yes\"): no judge has scored these answers yet" in text
        assert window.judge_button.isEnabled()
        report = window.report
        assert window.judge()
        # the GUI did not wait: the scores come later, from a background task
        assert window.session.judge_scores is None and not window.judge_button.isEnabled()
        assert window.agreement.text() == f"{instruct.name} is judging 8 answers…"
        qtbot.waitUntil(lambda: window.report is not report and window.report is not None
                        and not window.busy, timeout=10_000)
        answers = window.session.answers
        expected = [_p_yes(a.text) for a in answers]
        assert window.session.judge_scores == pytest.approx(expected)
        assert window.session.judge_model == instruct.id
        agreed, total = _agreement(expected, window.session.votes)
        judge_row = next(p for p in window.report.proxies if "judge" in p.name)
        assert (judge_row.agreed, judge_row.votes) == (pytest.approx(agreed), total)
        lines = window.agreement.text().splitlines()
        longest = next(i for i, line in enumerate(lines) if "the longest answer" in line)
        assert lines[longest + 1].startswith(f"the judge's P(\"yes\") ({instruct.id}): "
                                             f"agrees with the class on {agreed:g} of {total}")
        assert "no judge" not in window.agreement.text()
        # saved with the session, and exported
        saved = load_session(tmp_path / "session.json")
        assert saved is not None and saved.judge_scores == pytest.approx(expected)
        assert saved.judge_model == instruct.id
        data = json.loads(window.export(tmp_path / "class")[0].read_text(encoding="utf-8"))
        assert data["judge_scores"] == pytest.approx(expected)
        assert any("judge" in p["name"] for p in data["report"]["proxies"])
        _look(qtbot, window)
    finally:
        _close(window)


def _look(qtbot, window: RlhfWindow) -> None:
    """The Reward model tab at 1024×768 in presentation size (saved where asked)."""
    shots = os.environ.get("RLHF_SCREENSHOT_DIR")
    theme.apply_point_size(window, QApplication.font().pointSizeF() * 1.6)
    window.resize(1024, 768)
    window.tabs.setCurrentIndex(2)
    qtbot.wait(50)
    image = window.grab()
    assert image.width() >= 1024
    if shots:
        assert image.save(str(Path(shots) / "rlhf-judge-presentation-1024x768.png"))


def test_without_a_judge_the_window_says_so(qtbot, engine, tmp_path, fake_models) -> None:
    instruct = next(e for e in fake_models if e.role == "instruct")
    engine.default = _jokes_and_judge
    window = RlhfWindow([instruct], engine.worker, problems=PROBLEMS,
                        save_to=tmp_path / "session.json", seed=1)
    qtbot.addWidget(window)
    window.show()
    try:
        assert window.judge_box.currentData() is None and not window.judge_button.isEnabled()
        _sample_and_vote(qtbot, window)
        assert not window.judge_button.isEnabled() and not window.judge()
        window.train()
        qtbot.waitUntil(lambda: window.report is not None and not window.busy, timeout=10_000)
        assert window.agreement.text().splitlines()[2] == (
            "the judge's P(\"yes\"): no judge, as no chat (instruct) model is downloaded")
    finally:
        _close(window)


# ----------------------------------------------------------------- the main window's export


def _class_session(models: list[str]) -> RlhfSession:
    texts = ["Why do pelicans carry fish? I am SmolLM, made by Hugging Face!",
             "Pelicans are birds. Gemma says hi.", "What is a pelican's bill? Big!"]
    answers = [Answer(text, models[i % len(models)]) for i, text in enumerate(texts)]
    votes = [Vote(0, 1, Winner.A), Vote(2, 1, Winner.A), Vote(0, 2, Winner.TIE),
             Vote(1, 0, Winner.B), Vote(2, 0, Winner.B)]
    return RlhfSession(prompt="Write a funny joke about pelicans.", answers=answers,
                       votes=votes, judge_scores=[0.9, 0.2, 0.7], judge_model=models[0])


def test_the_main_windows_export_has_the_class_votes_and_blind_names_nothing(
        qtbot, fake_models, engine, tmp_path) -> None:
    from desktop_app.ui.export_votes import export_json
    from desktop_app.ui.main_window import MainWindow

    entries = list(fake_models)
    ids = [e.id for e in entries]
    session = _class_session(ids)
    save_session(session)  # where the RLHF window keeps it
    strengths = bradley_terry(3, session.votes)
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    try:
        data = json.loads(export_json(window, tmp_path / "c.json").read_text(encoding="utf-8"))
        rlhf = data["rlhf"]
        assert len(data["panes"]) == 3
        assert [a["text"] for a in rlhf["answers"]] == [a.text for a in session.answers]
        assert [a["model"] for a in rlhf["answers"]] == [a.model for a in session.answers]
        assert rlhf["votes"] == [{"a": v.a, "b": v.b, "winner": v.winner.value}
                                 for v in session.votes]
        assert rlhf["strengths"] == pytest.approx(list(strengths.strength))
        assert [x for a in rlhf["answers"] for x in a["interval"]] == pytest.approx(
            [x for pair in zip(strengths.low, strengths.high, strict=True) for x in pair])
        assert rlhf["judge_model"] == ids[0]
        markdown = window.export_markdown(tmp_path / "c.md").read_text(encoding="utf-8")
        html = window.export_html(tmp_path / "c.html").read_text(encoding="utf-8")
        top = strengths.ranking()[0]
        for page in (markdown, html):
            assert "votes (RLHF)" in page
            assert f"{strengths.strength[top]:+.2f}" in page
            assert "a,b,winner\n0,1,a\n2,1,a\n0,2,tie\n1,0,b\n2,0,b\n" in page
            assert ids[1] in page  # the Model column names the models
        assert f"| 1 | #{top} |" in markdown

        # the blind quiz: the same figures, and nothing names a model
        window.quiz_bar.seed = 4
        window.quiz_bar.set_on(True)
        names = sorted({*mask_terms((e.id, e.name, e.family) for e in entries),
                        "base", "instruct", "reasoning"}, key=len, reverse=True)
        blind = export_json(window, tmp_path / "b.json").read_text(encoding="utf-8")
        blind += window.export_markdown(tmp_path / "b.md").read_text(encoding="utf-8")
        blind += window.export_html(tmp_path / "b.html").read_text(encoding="utf-8")
        leaks = [name for name in names if re.search(
            rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])",
            blind.replace("Triptych comparison", ""), re.IGNORECASE)]
        assert not leaks
        rlhf = json.loads((tmp_path / "b.json").read_text(encoding="utf-8"))["rlhf"]
        assert rlhf["strengths"] == pytest.approx(list(strengths.strength))
        assert {a["model"] for a in rlhf["answers"]} == {""}
        assert rlhf["judge_model"] is None and "[name hidden]" in rlhf["answers"][0]["text"]
        window.quiz_bar.set_on(False)
    finally:
        assert window.shutdown()


def test_no_votes_no_section(qtbot, fake_models, engine, tmp_path) -> None:
    from desktop_app.ui.export_votes import export_json
    from desktop_app.ui.main_window import MainWindow

    ids = [e.id for e in fake_models]
    session = _class_session(ids)
    session.votes = []
    save_session(session)
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    try:
        assert json.loads(export_json(window, tmp_path / "c.json").read_text(
            encoding="utf-8"))["rlhf"] is None
        assert "RLHF" not in window.export_markdown(tmp_path / "c.md").read_text("utf-8")
    finally:
        assert window.shutdown()
