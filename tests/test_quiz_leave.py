"""Leaving the blind quiz (View → Blind quiz off): the panes' words as the models wrote
them again, names included, in finished turns, in a reply still streaming, in the text
sent, Copy answer and the export; on the real Qt event loop and the scripted engine."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QGuiApplication

from desktop_app.engine.protocol import Delta, PromptSent
from desktop_app.session.quiz import MASK, TEMPLATE_HIDDEN
from tests.fake_engine import answer_script


def _says_its_name(entry, gate: threading.Event | None = None) -> list[object]:
    """A reply that names its model, thinking for a reasoning model; with ``gate``, it
    waits after its first sentence until the test opens it."""
    first = f"Hello! I am {entry.name}."
    script = answer_script(f"{first} Bye from {entry.family}.",
                           thinking=(f"I'm {entry.family}." if entry.role == "reasoning"
                                     else ""), chunk=3)
    script[0] = PromptSent(text=f"<|im_start|>user\nI am {entry.name}<|im_end|>",
                           n_tokens=9, starts_in_thinking=entry.role == "reasoning", seed=1)
    if gate is not None:
        sent = ""
        for index, item in enumerate(script):
            if isinstance(item, Delta):
                sent += item.answer
                if len(sent) >= len(first):
                    script.insert(index + 1, gate)
                    break
    return script


def test_leaving_the_quiz_shows_the_words_as_written(qtbot, fake_models, engine, tmp_path):
    from desktop_app.ui.main_window import MainWindow

    entries = list(fake_models)
    ids = [entry.id for entry in entries]
    gate = threading.Event()
    waiting = next(e for e in entries if e.role == "instruct")
    for entry in entries:
        engine.scripts[entry.id] = _says_its_name(entry, gate if entry is waiting else None)
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    try:
        window.quiz_bar.seed = 4
        window.quiz_bar.set_on(True)
        window.prompt.setPlainText("Who are you?")
        assert window.send_all() == 3
        by_id = {pane.config.model_id: pane for pane in window.panes}
        streaming = by_id[waiting.id]
        qtbot.waitUntil(lambda: all(pane.turns and pane.turns[0].data.done
                                    for pane in window.panes if pane is not streaming)
                        and MASK in streaming.turns[0].answer.toPlainText(), timeout=10_000)
        for pane in window.panes:  # masked while blind (the data never was)
            turn = pane.turns[0]
            assert MASK in turn.answer.toPlainText()
            assert turn.prompt_view.toPlainText() == TEMPLATE_HIDDEN
            assert pane.entry.name in turn.data.answer

        window.quiz_bar.set_on(False)  # View → Blind quiz off, one reply still streaming
        for entry in entries:
            turn = by_id[entry.id].turns[0]
            shown = turn.answer.toPlainText()
            assert f"Hello! I am {entry.name}." in shown and MASK not in shown
            assert turn.prompt_view.toPlainText() == f"<|im_start|>user\nI am {entry.name}<|im_end|>"
            assert turn.prompt_section.title != "Text sent (hidden in the quiz)"
            if entry.role == "reasoning":
                assert turn.thinking.view.toPlainText() == f"I'm {entry.family}."
            if entry.role == "base":  # the exact continuation's monospace look is back
                assert turn.plain_answer
                assert turn.answer.font().family() != QGuiApplication.font().family()
        gate.set()  # the rest of the reply streams unmasked
        qtbot.waitUntil(lambda: streaming.turns[0].data.done, timeout=10_000)
        qtbot.wait(50)
        assert streaming.turns[0].answer.toPlainText().strip() == \
            f"Hello! I am {waiting.name}. Bye from {waiting.family}."
        streaming.turns[0].copy_answer()
        assert QGuiApplication.clipboard().text() == streaming.turns[0].data.answer
        exported = window.export_markdown(tmp_path / "after.md").read_text(encoding="utf-8")
        assert MASK not in exported
        assert all(entry.name in exported for entry in entries)
    finally:
        gate.set()
        assert window.shutdown()
