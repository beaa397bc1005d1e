"""End-to-end window tests on the real starter models (and a scripted reasoning GGUF):
real llama.cpp, real model processes, the real Qt event loop. The fast window tests run
on the scripted engine (test_ui_pane.py); GUI-thread stalls are measured by
`triptych bench`, not asserted here."""

from __future__ import annotations

import os
import signal

import pytest

pytest.importorskip("pytestqt")

from desktop_app.models.catalog import Catalog
from desktop_app.ui.main_window import MainWindow

BASE_ID = "gemma3-270m-base"
INSTRUCT_ID = "smollm2-135m-instruct"

pytestmark = pytest.mark.slow


def make_window(qtbot, entries, *, max_tokens=24, temperature=0.0, seed=7) -> MainWindow:
    catalog = Catalog(entries={e.id: e for e in entries})
    window = MainWindow(catalog, models=[e.id for e in entries], remember=False)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    for pane in window.panes:
        pane.set_overrides(max_tokens=max_tokens, temperature=temperature, seed=seed)
    return window


def send(qtbot, window: MainWindow, prompt: str, timeout: int = 90_000) -> bool:
    window.prompt.setPlainText(prompt)
    with qtbot.waitSignal(window.allFinished, timeout=timeout) as blocker:
        assert window.send_all() == len(window.panes)
    return blocker.args[0]


def test_two_panes_stream_follow_up_and_export(qtbot, starter_models, tmp_path):
    base, instruct = starter_models["base"], starter_models["instruct"]
    window = make_window(qtbot, [base, instruct])
    try:
        assert send(qtbot, window, "What is the capital of France?") is True
        base_turn, instruct_turn = (p.turns[0] for p in window.panes)
        assert "Paris" in base_turn.answer.toPlainText()
        assert instruct_turn.answer.toPlainText().strip()
        for turn in (base_turn, instruct_turn):
            assert "finish:" in turn.metrics.text() and "TTFT" in turn.metrics.text()
        # the base pane shows the exact document it continued
        sent = base_turn.prompt_view.toPlainText()
        assert "Question: What is the capital of France?\nAnswer:" in sent
        assert base_turn.prompt_section.expanded
        # a follow-up turn carries the history
        worker_pids = [p.worker.pid for p in window.panes]
        assert send(qtbot, window, "And of Italy?") is True
        assert [len(p.session.conversation.history()) for p in window.panes] == [2, 2]
        assert "What is the capital of France?" in window.panes[0].turns[1].prompt_view.toPlainText()
        assert [p.worker.pid for p in window.panes] == worker_pids  # workers reused
        md = window.export_markdown(tmp_path / "c.md").read_text()
        assert "And of Italy?" in md and "Paris" in md
        html = window.export_html(tmp_path / "c.html").read_text()
        assert "<!DOCTYPE html>" in html and "Paris" in html
    finally:
        assert window.shutdown()


def test_reasoning_pane_folds_thinking(qtbot, starter_models, tmp_path):
    from tests.scripted_gguf import scripted_entry, write_scripted_gguf

    path = write_scripted_gguf(tmp_path / "reasoner.gguf",
                               "<think>Two plus two: add them. That makes four.</think>"
                               "The answer is **4**.")
    reasoner = scripted_entry(path)
    window = make_window(qtbot, [starter_models["instruct"], reasoner], max_tokens=64)
    try:
        assert send(qtbot, window, "What is 2 + 2?") is True
        turn = window.panes[1].turns[0]
        assert "That makes four." in turn.thinking.text()
        assert not turn.thinking.isHidden() and not turn.thinking.expanded
        assert turn.thinking.header.text().startswith("Thought for ")
        assert turn.answer.toPlainText().strip() == "The answer is 4."
        assert "thinking " in turn.metrics.text()
        window.thinking_toggle.setChecked(True)
        assert turn.thinking.expanded
        window.thinking_toggle.setChecked(False)
        assert not turn.thinking.expanded
    finally:
        assert window.shutdown()


def test_stop_mid_stream(qtbot, starter_models):
    window = make_window(qtbot, [starter_models["instruct"]], max_tokens=1500, temperature=0.8)
    pane = window.panes[0]
    try:
        window.prompt.setPlainText("Write a very long story about a dragon and a knight.")
        with qtbot.waitSignal(window.allFinished, timeout=60_000):
            window.send_all()
            qtbot.waitUntil(lambda: len(pane.turns[-1].answer_raw) > 40, timeout=30_000)
            window.stop_all()
        assert pane.turns[-1].result.finish_reason == "cancelled"
        assert pane.turns[-1].result.answer_tokens < 1500
        assert pane.status.text() == "Stopped"
    finally:
        assert window.shutdown()


def test_killed_worker_shows_in_its_pane_while_others_finish(qtbot, starter_models):
    window = make_window(qtbot, [starter_models["base"], starter_models["instruct"]],
                         max_tokens=400, temperature=0.8)
    base_pane, victim = window.panes
    try:
        victim.set_overrides(max_tokens=1500)
        window.prompt.setPlainText("Tell me a long story about the sea.")
        with qtbot.waitSignal(window.allFinished, timeout=90_000) as blocker:
            window.send_all()
            qtbot.waitUntil(lambda: len(victim.turns[-1].answer_raw) > 20, timeout=30_000)
            os.kill(victim.worker.pid, signal.SIGKILL)
        assert blocker.args == [False]
        assert base_pane.turns[0].result is not None and base_pane.turns[0].done
        turn = victim.turns[0]
        assert turn.error_box.isVisibleTo(victim) and "killed" in turn.error_label.text()
        assert turn.retry_button.isVisibleTo(victim)
        assert victim.worker is None
        assert len(window.failures) == 1 and INSTRUCT_ID in window.failures[0]
        # Retry starts a fresh worker and the pane works again
        victim.set_overrides(max_tokens=8)
        with qtbot.waitSignal(victim.runFinished, timeout=60_000) as retried:
            turn.retry_button.click()
        assert retried.args[1] is True and victim.turns[-1].result.answer_tokens > 0
    finally:
        assert window.shutdown()


def test_snapshot_mode(qtbot, starter_models, tmp_path, capsys):
    from desktop_app.ui.app import run_app

    shot = tmp_path / "shot.png"
    code = run_app(models=[INSTRUCT_ID], prompt="Say hello.", max_tokens=8,
                   screenshot=str(shot))
    assert code == 0 and shot.stat().st_size > 10_000
    from PySide6.QtGui import QImage

    assert QImage(str(shot)).width() >= 1200

    from desktop_app.models.catalog import availability, load_catalog

    if availability(load_catalog().get("qwen3-0.6b")) == "ready":
        return
    code = run_app(models=["qwen3-0.6b"], prompt="hi", screenshot=str(tmp_path / "x.png"))
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "not downloaded" in err


def test_snapshot_without_models_shows_the_default_panes(qtbot, starter_models, tmp_path,
                                                         monkeypatch):
    """No --models: the window's own three panes; a reasoning model that is not
    downloaded shows its state and is not waited for (it was not asked for by name)."""
    from desktop_app.ui import main_window
    from desktop_app.ui.app import run_app

    seen: list[tuple[str, str, str]] = []
    original = main_window.MainWindow.shutdown

    def record(self, *args, **kwargs):
        if not seen:
            seen.extend((p.entry.role, p.model_state(), p.status.text()) for p in self.panes)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(main_window.MainWindow, "shutdown", record)
    shot = tmp_path / "three.png"
    assert run_app(prompt="Say hello.", max_tokens=4, screenshot=str(shot)) == 0
    assert shot.stat().st_size > 10_000
    assert [role for role, _, _ in seen] == ["base", "instruct", "reasoning"]
    reasoning = seen[2]
    if reasoning[1] != "ready":
        assert reasoning[2] == "Not downloaded"
