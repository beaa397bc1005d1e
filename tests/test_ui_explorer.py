"""The next-token explorer on the real Qt event loop and the scripted engine: one column
per model, the wrapping named, greedy steps and clicked tokens; model work off the GUI
thread; the processes closed with the dialog."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from desktop_app.engine.protocol import (
    Delta,
    Finished,
    FinishReason,
    GenerationResult,
    PromptSent,
    TokenLogprob,
)
from desktop_app.session.generation import wait_for_closing
from desktop_app.session.tokens import Wrapping
from desktop_app.ui.explorer import NextTokenExplorer
from desktop_app.ui.tasks import wait_for_tasks


def next_token_script(request):
    """The sent text ends in a word: the likely next tokens are numbered after it."""
    sent = request.prompt if request.raw else f"<wrapped>{request.prompt}</wrapped>"
    n = len(sent)
    top = ((f" w{n}", math.log(0.6)), (f" v{n}", math.log(0.3)), ("", math.log(0.05)))
    return [PromptSent(text=sent, n_tokens=3, starts_in_thinking=False, seed=0),
            Delta(thinking="", answer=top[0][0], thinking_tokens=0, answer_tokens=1,
                  elapsed_s=0.01, logprob=TokenLogprob(top[0][0], top[0][1], top)),
            Finished(result=GenerationResult(model="", role="", finish_reason=FinishReason.LENGTH))]


@pytest.fixture
def explorer(qtbot, fake_models, engine):
    engine.default = next_token_script
    entries = [e for e in fake_models if e.role in ("base", "instruct")]
    dialog = NextTokenExplorer(entries, engine.worker, text="Once upon a")
    qtbot.addWidget(dialog)
    dialog.show()
    yield dialog
    assert wait_for_tasks(timeout=5)
    dialog.close()
    assert wait_for_closing()


def _wait_idle(qtbot, dialog):
    qtbot.waitUntil(lambda: not dialog.busy and all(c.result for c in dialog.columns),
                    timeout=5000)


def _rows(column):
    """The tokens listed (the last row, every other token together, names none)."""
    rows = [column.tokens.item(i).data(Qt.ItemDataRole.UserRole)
            for i in range(column.tokens.count())]
    return [row for row in rows if row is not None]


def test_columns_show_each_models_next_tokens_and_step(qtbot, explorer, engine):
    explorer.ask()
    _wait_idle(qtbot, explorer)
    base, instruct = explorer.columns
    assert _rows(base) == [" w11", " v11", ""]  # "Once upon a": 11 characters, sent raw
    assert "as typed" in base.note.text()
    assert all(r.raw for w in engine.workers for r in w.requests)
    assert all(r.sampling.temperature == 0 and r.sampling.max_tokens == 1 and r.top_logprobs
               for w in engine.workers for r in w.requests)
    end = base.tokens.item(2)
    assert not end.flags() & Qt.ItemFlag.ItemIsEnabled  # end of text: shown, not offered

    base.tokens.itemClicked.emit(base.tokens.item(1))  # " v11" for every model
    _wait_idle(qtbot, explorer)
    assert base.added == instruct.added == " v11"
    assert engine.workers[0].requests[-1].prompt == "Once upon a v11"
    assert "then the chosen tokens" in base.note.text()

    explorer.greedy_step()
    _wait_idle(qtbot, explorer)
    assert base.added == " v11 w15"
    assert base.text_view.text().endswith(" v11 w15")


def test_as_a_question_names_the_template_and_continues_raw(qtbot, explorer, engine):
    explorer.wrapping.setCurrentIndex(explorer.wrapping.findData(Wrapping.AS_QUESTION))
    explorer.ask()
    _wait_idle(qtbot, explorer)
    base, instruct = explorer.columns
    assert "chat template" in instruct.note.text() and instruct.entry.name in instruct.note.text()
    assert "document page" in base.note.text()
    first = engine.workers[1].requests[0]
    assert not first.raw and first.prompt == "Once upon a"
    explorer.greedy_step()
    _wait_idle(qtbot, explorer)
    follow = engine.workers[1].requests[-1]
    assert follow.raw and follow.prompt == "<wrapped>Once upon a</wrapped> w30"


def test_closing_closes_the_model_processes(qtbot, explorer, engine):
    explorer.ask()
    _wait_idle(qtbot, explorer)
    workers = list(engine.workers)
    assert workers and all(w.alive for w in workers)
    explorer.close()
    assert wait_for_closing()
    assert not any(w.alive for w in workers)


def test_a_column_names_how_the_prompt_was_adapted(qtbot, explorer, engine):
    note = "The model file has no chat template; a plain ChatML layout was used."

    def noted(request):
        first, *rest = next_token_script(request)
        return [PromptSent(text=first.text, n_tokens=3, starts_in_thinking=False, seed=0,
                           notes=(note,)), *rest]

    engine.default = noted
    explorer.ask()
    _wait_idle(qtbot, explorer)
    for column in explorer.columns:
        assert column.result is not None and column.result.notes == (note,)
        assert column.note.text().endswith(note)
