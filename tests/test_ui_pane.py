"""A pane on the real Qt event loop, fed by the scripted engine (no llama.cpp): thinking
fold/unfold, streaming appends, Markdown and copy, Verify, failures, settings."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QGuiApplication

from desktop_app.engine.protocol import (
    FAILURE_LABELS,
    Delta,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationResult,
    PromptSent,
)
from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.text.fences import code_blocks
from desktop_app.ui.markdown import is_code_block
from desktop_app.ui.pane import Pane
from desktop_app.ui.pane_status import PaneStatus
from desktop_app.ui.turn import TurnWidget
from desktop_app.verify import VerdictState
from desktop_app.verify.verdict import verdict_title
from tests.fake_engine import answer_script, send_and_wait


def role_id(catalog, role: str) -> str:
    return next(e.id for e in catalog if e.role == role)


def thinking_deltas(n: int, text: str = "hmm ") -> list[Delta]:
    return [Delta(thinking=text, answer="", thinking_tokens=i + 1, answer_tokens=0,
                  elapsed_s=i * 0.01) for i in range(n)]


def make_pane(qtbot, catalog, engine, role: str = "instruct") -> Pane:
    widget = Pane(catalog, PaneConfig(model_id=role_id(catalog, role)),
                  worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    widget.show()
    return widget


@pytest.fixture
def pane(qtbot, fake_models, engine):
    widget = make_pane(qtbot, fake_models, engine)
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_closing()


def finished_turn(qtbot, pane: Pane, engine, prompt: str, answer: str,
                  problem=None) -> TurnWidget:
    engine.default = answer_script(answer)
    return send_and_wait(qtbot, pane, prompt, problem)


def test_thinking_is_live_then_folds_then_unfolds(pane, qtbot, engine):
    gate = threading.Event()
    answer = "Yes, **17** is prime."
    engine.default = [
        PromptSent(text="<|user|>q<|end|><|assistant|><think>", n_tokens=5,
                   starts_in_thinking=True, seed=1),
        *thinking_deltas(50),
        gate,
        Delta(thinking="", answer=answer, thinking_tokens=50, answer_tokens=6, elapsed_s=1.0),
        Finished(result=GenerationResult(model="", role="", answer=answer,
                                         thinking="hmm " * 50, thinking_tokens=50,
                                         answer_tokens=6, thinking_s=14.2, ttft_s=0.1,
                                         tokens_per_s=40.0, finish_reason=FinishReason.STOP)),
    ]
    assert pane.send("Is 17 prime?")
    turn = pane.turns[-1]
    qtbot.waitUntil(lambda: turn.thinking.text() == "hmm " * 50, timeout=5000)
    assert turn.thinking.isVisible() and turn.thinking.expanded and turn.thinking.live
    assert turn.thinking.header.text().startswith("Thinking…")
    assert turn.answer_raw == ""

    with qtbot.waitSignal(pane.runFinished, timeout=5000) as finished:
        gate.set()
    assert finished.args == [pane, True]
    assert not turn.thinking.live
    assert not turn.thinking.expanded and not turn.thinking.body.isVisible()
    assert turn.thinking.header.text() == "Thought for 14 s · 50 tokens"
    assert turn.answer.toPlainText() == "Yes, 17 is prime."  # rendered as Markdown
    assert "thinking 50 / answer 6 tokens" in turn.metrics.text()
    assert "finish: stop" in turn.metrics.text()
    assert not pane.running
    assert pane.session.conversation.history()[-1].assistant == answer

    turn.thinking.header.click()  # the user unfolds it
    assert turn.thinking.expanded and turn.thinking.body.isVisible()
    turn.thinking.header.click()
    assert not turn.thinking.expanded

    pane.set_thinking_expanded(True)  # the window-wide toggle
    assert turn.thinking.expanded
    pane.set_thinking_expanded(False)
    assert not turn.thinking.expanded


def test_long_thinking_is_appended_at_most_once_a_frame(pane, qtbot, engine):
    """20 000 thinking tokens: each frame appends its batch; nothing is re-set."""
    engine.default = [PromptSent(text="q", n_tokens=1, starts_in_thinking=True, seed=1),
                      *thinking_deltas(20_000, "word "),
                      Finished(result=GenerationResult(model="", role="", thinking_tokens=20_000,
                                                       finish_reason=FinishReason.LENGTH))]
    frames = {"count": 0}
    pane.timer.timeout.connect(lambda: frames.__setitem__("count", frames["count"] + 1))
    assert pane.send("think a lot")
    turn = pane.turns[-1]
    calls = {"set": 0, "append": 0}
    view = turn.thinking.view
    original_set, original_append = view.setPlainText, view.append_text
    view.setPlainText = lambda *a: (calls.__setitem__("set", calls["set"] + 1), original_set(*a))
    view.append_text = lambda *a: (calls.__setitem__("append", calls["append"] + 1),
                                   original_append(*a))
    with qtbot.waitSignal(pane.runFinished, timeout=30_000):
        pass
    assert turn.thinking.text().count("word") == 20_000
    assert calls["set"] == 0
    assert 0 < calls["append"] <= frames["count"]  # one append per frame at most


def test_markdown_code_blocks_and_copy(pane, qtbot, engine):
    answer = "Here:\n\n```python\nprint(2 + 2)\n```\n\nand\n\n```\nls\n```\n"
    assert [(b.language, b.code) for b in code_blocks(answer)] == [
        ("python", "print(2 + 2)\n"), ("", "ls\n")]
    turn = finished_turn(qtbot, pane, engine, "code please", answer)
    doc_text = turn.answer.toPlainText()
    assert "print(2 + 2)" in doc_text and "```" not in doc_text
    block = turn.answer.document().findBlock(doc_text.index("print"))
    assert is_code_block(block.blockFormat())
    assert turn.copy_code_button.isEnabled()
    turn.copy_answer()
    assert QGuiApplication.clipboard().text() == answer


def test_copy_code_copies_the_block_verify_runs(pane, qtbot, engine):
    """Four backticks closed by five: one block (CommonMark), not a block and a stray fence."""
    answer = "Code:\n\n````python\nprint('```')\nx = 1\n`````\n\nDone.\n"
    turn = finished_turn(qtbot, pane, engine, "code", answer)
    turn.copy_code()
    assert QGuiApplication.clipboard().text() == "print('```')\nx = 1\n"
    assert code_blocks(turn.answer_raw)[0].code == QGuiApplication.clipboard().text()


def _math_problem():
    from desktop_app.verify import load_practice_sets

    return next(p for s in load_practice_sets() for p in s.problems
                if p.kind == "math" and p.verifiable)


def test_verify_button_shows_verdict(pane, qtbot, engine, monkeypatch):
    problem = _math_problem()
    turn = finished_turn(qtbot, pane, engine, problem.prompt,
                         f"The answer is {problem.answer}.", problem)
    assert turn.verify_button.isVisible()
    turn.verify_button.click()
    qtbot.waitUntil(lambda: turn.verdict is not None, timeout=20_000)
    text = turn.verify_label.text()
    assert verdict_title(VerdictState.PASS) in text  # "✓ Passed", Verify's own label
    assert f"expected <code>{problem.answer}</code>" in text
    assert f"got <code>{problem.answer}</code>" in text
    assert pane.export_data()["turns"][-1]["verdict"] == "pass"

    free = finished_turn(qtbot, pane, engine, "print four", "```python\nprint(4)\n```")
    free.verify_button.click()
    qtbot.waitUntil(lambda: free.verdict is not None, timeout=20_000)
    assert verdict_title(VerdictState.RAN) in free.verify_label.text()
    assert "nothing to check against" in free.verify_label.text()
    assert free.verify_section.isVisibleTo(free) and "4" in free.verify_output.toPlainText()

    import desktop_app.verify

    def broken_checker(reply_text, problem=None, **options):
        raise RuntimeError("boom")

    monkeypatch.setattr(desktop_app.verify, "verify_reply", broken_checker)
    failing = finished_turn(qtbot, pane, engine, "print four", "```python\nprint(4)\n```")
    failing.verify_button.click()
    qtbot.waitUntil(lambda: failing.verdict is not None, timeout=5000)
    assert failing.verdict.verdict == "error"
    assert "The checker failed: boom" in failing.verify_label.text()


def test_load_failure_offers_the_model_manager(pane, qtbot, engine):
    engine.default = [Failed(message="broken.gguf is not a GGUF model file.",
                             kind=FailureKind.LOAD)]
    with qtbot.waitSignal(pane.runFinished, timeout=5000) as finished:
        assert pane.send("hello")
    assert finished.args == [pane, False]
    turn = pane.turns[-1]
    assert turn.error_box.isVisibleTo(pane) and "not a GGUF model file" in turn.error_label.text()
    assert turn.retry_button.isVisibleTo(pane) and turn.manager_button.isVisibleTo(pane)
    assert turn.metrics.text() == ""  # no "0 tokens before the failure"
    assert pane.status.text() == FAILURE_LABELS[FailureKind.LOAD]
    assert pane.worker is None  # a process that failed to load is not reused


def test_crash_mid_stream_then_retry(pane, qtbot, engine):
    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="Once", thinking_tokens=0, answer_tokens=1,
                            elapsed_s=0.1),
                      Failed(message="The model's worker process was killed (SIGKILL).",
                             kind=FailureKind.CRASH)]
    turn = send_and_wait(qtbot, pane, "Tell me a story.")
    assert turn.error_box.isVisibleTo(pane) and "killed" in turn.error_label.text()
    assert turn.metrics.text() == "1 token before the failure"
    assert not turn.manager_button.isVisibleTo(pane) and pane.worker is None
    engine.default = answer_script("Once upon a time.")
    with qtbot.waitSignal(pane.runFinished, timeout=5000) as retried:
        turn.retry_button.click()
    assert retried.args[1] is True
    assert [t.answer_raw for t in pane.turns] == ["Once upon a time."]
    assert len(engine.workers) == 2  # a fresh process



def test_retry_of_an_earlier_turn_stays_in_its_place(pane, qtbot, engine):
    """Issue 26: the retried turn's view replaces the failed one where it was."""
    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      Failed(message="The model's worker process was killed (SIGKILL).",
                             kind=FailureKind.CRASH)]
    failed = send_and_wait(qtbot, pane, "First?")
    engine.default = answer_script("Second answer.")
    send_and_wait(qtbot, pane, "Second?")
    engine.default = answer_script("First answer.")
    with qtbot.waitSignal(pane.runFinished, timeout=5000):
        failed.retry_button.click()
    assert [t.answer_raw for t in pane.turns] == ["First answer.", "Second answer."]
    layout = pane.transcript_layout
    assert layout.indexOf(pane.turns[0]) < layout.indexOf(pane.turns[1])
    assert engine.workers[-1].requests[-1].history == ()

def test_stop_while_streaming(pane, qtbot, engine):
    from tests.fake_engine import WAIT_FOR_STOP

    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="A long", thinking_tokens=0, answer_tokens=2,
                            elapsed_s=0.1),
                      WAIT_FOR_STOP,
                      Delta(thinking="", answer=" story", thinking_tokens=0, answer_tokens=3,
                            elapsed_s=0.2)]
    assert pane.send("story")
    turn = pane.turns[-1]
    qtbot.waitUntil(lambda: turn.answer_raw == "A long", timeout=5000)
    assert pane.stop_button.isEnabled() and not pane.picker.isEnabled()
    with qtbot.waitSignal(pane.runFinished, timeout=5000):
        pane.stop_button.click()
    assert turn.result.finish_reason == FinishReason.CANCELLED
    assert turn.answer_raw == "A long" and pane.status.text() == "Stopped"
    assert not pane.stop_button.isEnabled() and pane.picker.isEnabled()


def test_stopping_stays_said_until_the_run_ends(pane, qtbot, engine):
    """Issue 27: after Stop, tokens the worker still streams (the stop has not reached
    it yet) do not turn the footer back into "Generating… N tokens", and Stop is not
    offered twice."""
    from tests.fake_engine import WAIT_FOR_STOP

    release = threading.Event()
    deltas = [Delta(thinking="", answer=f" w{i}", thinking_tokens=0, answer_tokens=i + 1,
                    elapsed_s=i * 0.01) for i in range(6)]
    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      deltas[0], release, *deltas[1:], WAIT_FOR_STOP]
    assert pane.send("story")
    turn = pane.turns[-1]
    qtbot.waitUntil(lambda: turn.answer_raw == " w0", timeout=5000)
    qtbot.waitUntil(lambda: pane.footer_status == PaneStatus.STREAMING, timeout=5000)
    assert pane.status.text().startswith("Generating…")
    worker = engine.workers[-1]
    stop_reaches_the_worker, asked = worker.stop, threading.Event()
    worker.stop = asked.set  # the stop is on its way: the worker streams on meanwhile
    pane.stop()
    assert asked.is_set()
    assert (pane.footer_status, pane.status.text()) == (PaneStatus.STOPPING, "Stopping…")
    assert not pane.stop_button.isEnabled()
    release.set()
    qtbot.waitUntil(lambda: turn.answer_raw.endswith(" w5"), timeout=5000)
    qtbot.wait(100)  # several frames and clock ticks with tokens arriving
    assert (pane.footer_status, pane.status.text()) == (PaneStatus.STOPPING, "Stopping…")
    assert not pane.stop_button.isEnabled() and pane.running
    with qtbot.waitSignal(pane.runFinished, timeout=5000):
        stop_reaches_the_worker()
    assert pane.status.text() == "Stopped" and not pane.stop_button.isEnabled()


def test_pane_footer_and_banner_for_a_model_not_downloaded(qtbot, engine):
    from desktop_app.models.catalog import availability, load_catalog, missing_message
    from desktop_app.text import escape

    catalog = load_catalog()
    missing = next((e for e in catalog if e.role == "reasoning"
                    and availability(e) == "not-downloaded"), None)
    if missing is None:
        pytest.skip("every reasoning model is downloaded here")
    widget = Pane(catalog, PaneConfig(model_id=missing.id), worker_factory=engine.worker)
    qtbot.addWidget(widget)
    assert widget.status.text() == "Not downloaded"
    text = widget.banner_label.text()
    assert "not downloaded yet" in text and f"triptych models pull {missing.id}" in text
    assert text.count("not downloaded") == 1  # said once, not twice
    # the sentence `triptych compare` says when it leaves this pane out
    sentence = missing_message(missing, availability(missing))
    assert escape.html(sentence) in text
    assert widget.send("hello") is False and engine.workers == []
    widget.shutdown()


def test_pane_footer_follows_its_state_not_its_words(pane, qtbot, engine, monkeypatch):
    """Issue 26: the footer's words are one table; the pane decides from its state, so the
    table can be translated, or say the same thing for every state, and it behaves alike."""
    from pathlib import Path

    from desktop_app.models.catalog import Availability
    from desktop_app.ui import pane_status as pane_module
    from desktop_app.ui.pane_status import FOOTER_LABELS, PaneStatus

    model_file = Path(pane.entry.source.path)
    placeholder = model_file.read_bytes()

    def lose_and_restore_the_model_file() -> tuple[PaneStatus, str]:
        model_file.unlink()
        pane.refresh_state()
        lost = (pane.footer_status, pane.status.text())
        assert not pane.ready and pane.send("hello") is False
        model_file.write_bytes(placeholder)
        pane.refresh_state()
        return lost

    french = {PaneStatus.READY: "Prêt", PaneStatus.NOT_READY: "Indisponible : {availability}",
              PaneStatus.FINISHED: "Fini ({finish})",
              PaneStatus.STREAMING: "{turn} {tokens} jetons · {elapsed}"}
    monkeypatch.setattr(pane_module, "FOOTER_LABELS", {**FOOTER_LABELS, **french})
    assert lose_and_restore_the_model_file() == (
        PaneStatus.NOT_READY, f"Indisponible : {Availability.MISSING_FILE.label.capitalize()}")
    assert (pane.footer_status, pane.status.text()) == (PaneStatus.READY, "Prêt")
    finished_turn(qtbot, pane, engine, "hi", "Hello.")
    assert (pane.footer_status, pane.status.text()) == (PaneStatus.FINISHED, "Fini (Finished)")
    pane.refresh_state()  # the model is ready: how the last reply ended stays said
    assert pane.status.text() == "Fini (Finished)"

    # every state worded alike: the words can't tell them apart, the pane still can
    monkeypatch.setattr(pane_module, "FOOTER_LABELS", dict.fromkeys(PaneStatus, "…"))
    assert lose_and_restore_the_model_file()[0] == PaneStatus.NOT_READY
    assert pane.footer_status == PaneStatus.READY and pane.status.text() == "…"
    finished_turn(qtbot, pane, engine, "again", "Hello again.")
    pane.refresh_state()
    assert pane.footer_status == PaneStatus.FINISHED
    assert lose_and_restore_the_model_file()[0] == PaneStatus.NOT_READY
    assert pane.footer_status == PaneStatus.READY


def test_settings_defaults_button_and_copy_code_only_with_code(pane, qtbot, engine):
    form = pane.settings_box
    pane.settings_button.setChecked(True)
    assert form.isVisible()
    default_tokens = form.max_tokens.value()
    pane.set_overrides(max_tokens=77, temperature=1.3, seed=5)
    assert pane.config.max_tokens == 77
    form.defaults_button.click()
    assert (pane.config.max_tokens, pane.config.temperature, pane.config.seed) == (None, None, None)
    assert form.max_tokens.value() == default_tokens and form.seed.value() == -1
    prose = finished_turn(qtbot, pane, engine, "hi", "Hello there.")
    assert not prose.copy_code_button.isVisibleTo(pane)
    code = finished_turn(qtbot, pane, engine, "code", "```python\nprint(1)\n```")
    assert code.copy_code_button.isVisibleTo(pane) and code.copy_code_button.isEnabled()
    pane.set_overrides(max_tokens=12, seed=3)
    finished_turn(qtbot, pane, engine, "again", "ok")
    sampling = engine.workers[-1].requests[-1].sampling
    assert (sampling.max_tokens, sampling.seed) == (12, 3)  # what the model was asked


def test_base_pane_marks_where_the_models_text_begins(qtbot, fake_models, engine):
    """Issue 27: under the document it received, a base model's continuation is marked (a
    caption, a rule and a faint tint in the role's colour), and it stays exact plain text
    for reading and copy; a chat pane's answer has no such mark."""
    from desktop_app.ui import theme
    from desktop_app.ui.turn import CONTINUATION_CAPTION

    base = make_pane(qtbot, fake_models, engine, "base")
    document = "Question: What is 7 * 8?\nAnswer:"
    continuation = " 56. *Seven* times <b>eight</b>.\n\nQuestion: What is 6 * 7?"
    script = answer_script(continuation)
    engine.default = [PromptSent(text=document, n_tokens=12, starts_in_thinking=False,
                                 seed=1), *script[1:]]
    turn = send_and_wait(qtbot, base, "What is 7 * 8?")
    assert turn.prompt_view.toPlainText() == document
    assert turn.continuation_label.isVisibleTo(base)
    assert turn.continuation_label.text() == CONTINUATION_CAPTION
    rule = f"border-left: 3px solid {theme.role_color('base').lower()}"
    assert rule in turn.answer.styleSheet().lower() and "rgba(" in turn.answer.styleSheet()
    assert turn.answer.toPlainText() == continuation  # exact: no Markdown, no HTML
    turn.copy_answer()
    assert QGuiApplication.clipboard().text() == continuation
    base.settings_box.probabilities_box.setChecked(True)  # drawn as tinted tokens: marked too
    assert rule in turn.token_view.styleSheet().lower()

    chat = make_pane(qtbot, fake_models, engine, "instruct")
    engine.default = answer_script("56")
    answer = send_and_wait(qtbot, chat, "What is 7 * 8?")
    assert not answer.continuation_label.isVisibleTo(chat)
    assert "border-left" not in answer.answer.styleSheet()
    for pane in (base, chat):
        close_in_background(pane.shutdown())
    assert wait_for_closing()


def test_base_pane_wrapping_can_be_edited_or_turned_off(qtbot, fake_models, engine):
    base = make_pane(qtbot, fake_models, engine, "base")
    form = base.settings_box
    base.settings_button.setChecked(True)
    assert form.wrapping.isVisibleTo(base) and form.raw_box.isVisibleTo(base)
    default = base.entry.prompt.document_template
    assert form.wrapping.toPlainText() == default
    request = base.request_for("Why?")
    assert request.document_template is None and not request.raw

    form.wrapping.setPlainText("Q: {question}\nA:")
    assert base.request_for("Why?").document_template == "Q: {question}\nA:"
    form.wrapping.setPlainText("no placeholder here")
    assert form.wrapping_hint.isVisibleTo(base)  # one clear sentence, last valid one kept
    assert base.request_for("Why?").document_template == "Q: {question}\nA:"
    form.raw_box.setChecked(True)
    assert base.request_for("Once upon a time").raw and not form.wrapping.isEnabled()
    assert PaneConfig.from_dict(base.config.to_dict()).raw  # remembered with the settings
    base.reset_settings()
    assert not form.raw_box.isChecked() and form.wrapping.toPlainText() == default

    chat = make_pane(qtbot, fake_models, engine, "instruct")
    chat.settings_button.setChecked(True)
    assert not chat.settings_box.wrapping.isVisibleTo(chat)
    assert not chat.settings_box.raw_box.isVisibleTo(chat)
    base.shutdown()
    chat.shutdown()


def test_unfolded_thinking_shows_every_line_from_the_top(pane, qtbot, engine):
    """The thinking view's height was computed from blocks not yet laid out, so an
    unfolded thought showed its last lines only, behind a scroll bar."""
    sentence = "Sunlight scatters off air molecules, and blue scatters the most. "
    engine.default = [
        PromptSent(text="q", n_tokens=1, starts_in_thinking=True, seed=1),
        *thinking_deltas(1, sentence * 6),
        Delta(thinking="", answer="Rayleigh scattering.", thinking_tokens=60,
              answer_tokens=3, elapsed_s=1.0),
        Finished(result=GenerationResult(model="", role="", answer="Rayleigh scattering.",
                                         thinking=sentence * 6, thinking_tokens=60,
                                         answer_tokens=3, thinking_s=0.4,
                                         finish_reason=FinishReason.STOP)),
    ]
    turn = send_and_wait(qtbot, pane, "Why is the sky blue?")
    assert not turn.thinking.expanded
    assert turn.thinking.header.text() == "Thought for <1 s · 60 tokens"  # not "0 s"
    turn.thinking.header.click()
    qtbot.wait(20)
    view = turn.thinking.view
    assert view.isVisible()
    assert view.document().lineCount() > 3  # wrapped over several lines ...
    assert view.verticalScrollBar().maximum() == 0  # ... and all of them are shown
    assert view.height() >= view.content_height()


def test_a_bug_while_showing_a_reply_fails_the_turn_not_the_app(pane, qtbot, engine,
                                                               monkeypatch):
    def broken(self, point_size=None):
        raise ValueError("bad format")

    monkeypatch.setattr(TurnWidget, "show_finished", broken)
    engine.default = answer_script("Hello")
    with qtbot.waitSignal(pane.runFinished, timeout=5000) as blocker:
        assert pane.send("hi")
    assert blocker.args == [pane, False]
    turn = pane.turns[-1]
    assert not pane.running and not pane.timer.isActive() and pane.picker.isEnabled()
    assert turn.error_box.isVisibleTo(pane) and "bad format" in turn.error_label.text()
    assert pane.status.text() == "Failed"
    assert pane.worker is None  # the next send starts afresh


def test_export_reads_the_conversation(pane, qtbot, engine):
    from desktop_app.ui import export

    engine.default = answer_script("It is **4**.\n\n```python\nprint(4)\n```",
                                   thinking="Two and two.", thinking_s=3.0)
    send_and_wait(qtbot, pane, "What is 2+2?")
    data = [pane.export_data()]
    assert data[0]["turns"][0]["thinking"] == "Two and two."
    markdown = export.to_markdown(data)
    assert "What is 2+2?" in markdown and "It is **4**." in markdown and "finish: stop" in markdown
    assert "Thought for 3 s · 3 tokens" in markdown  # from the data, not a label
    page = export.to_html(data)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "print(4)" in page and "src=" not in page and "<script" not in page


def test_prompt_notes_show_under_the_prompt_sent_and_in_the_export(pane, qtbot, engine):
    """How the prompt was adapted to the model: one muted line each, kept in the export."""
    from desktop_app.ui import export

    notes = ("System text folded into the first user turn: this template has no system role.",
             "The model file has no chat template; a plain ChatML layout was used.")
    engine.default = [PromptSent(text="<p>", n_tokens=1, starts_in_thinking=False, seed=1,
                                 notes=notes), *answer_script("Fine.")[1:]]
    turn = send_and_wait(qtbot, pane, "Hello?")
    assert turn.prompt_notes.isVisibleTo(pane)
    assert turn.prompt_notes.text().splitlines() == list(notes)
    layout = turn.layout()
    assert layout.indexOf(turn.prompt_notes) == layout.indexOf(turn.prompt_section) + 1
    data = [pane.export_data()]
    markdown, page = export.to_markdown(data), export.to_html(data)
    for note in notes:
        assert f"<p class='note'>{note}</p>" in page
    assert "_System text folded into the first user turn: this template has no system role._" \
        in markdown
    plain = finished_turn(qtbot, pane, engine, "Again?", "Sure.")  # no notes: no line
    assert not plain.prompt_notes.isVisibleTo(pane) and plain.prompt_notes.text() == ""
