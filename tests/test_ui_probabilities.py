"""Token probabilities in a pane, on the real Qt event loop and the scripted engine: the
toggle, tinted tokens streamed by appending, alternatives, branching and the ‹ 1/2 › bar;
a reasoning reply's thinking tokens in the thinking fold, its answer's below it."""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint
from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QToolTip, QWidget

from desktop_app.engine.protocol import (
    Delta,
    Finished,
    FinishReason,
    GenerationResult,
    PromptSent,
    TokenLogprob,
)
from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.session.tokens import NOT_RECORDED, TokenStep
from desktop_app.text.thinking import THINKING, ThinkingSplitter
from desktop_app.ui import turn as turn_module
from desktop_app.ui.pane import Pane
from desktop_app.ui.probabilities import (
    INDEX_PROPERTY,
    SYMBOLS_NOTE,
    TokenView,
    alternatives_menu,
    band_color,
)
from tests.fake_engine import send_and_wait, token_script
from tests.test_ui_pane import role_id


@pytest.fixture
def pane(qtbot, fake_models, engine):
    widget = Pane(fake_models, PaneConfig(model_id=role_id(fake_models, "instruct")),
                  worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_closing()


def _formats(view: TokenView) -> list[tuple[int, str]]:
    """(token index, text) of each character run in the view."""
    runs = []
    block = view.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            runs.append((fragment.charFormat().property(INDEX_PROPERTY), fragment.text()))
            it += 1
        block = block.next()
    return runs


def test_toggle_is_off_by_default_and_the_settings_turn_it_on(pane):
    assert not pane.config.probabilities
    assert pane.request_for("Hi").top_logprobs == 0
    pane.settings_box.probabilities_box.setChecked(True)
    assert pane.config.probabilities and pane.request_for("Hi").top_logprobs > 0
    pane.settings_box.probabilities_box.setChecked(False)
    assert not pane.config.probabilities


def test_tokens_stream_tinted_and_branch(qtbot, pane, engine):
    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["The", " sky", " is", " blue", "."])
    widget = send_and_wait(qtbot, pane, "Colour?")
    view = widget.token_view
    assert widget.token_mode and view.isVisible() and widget.answer.isHidden()
    assert [t for _, t in _formats(view)] == ["The", " sky", " is", " blue", "."]
    assert [i for i, _ in _formats(view)] == [0, 1, 2, 3, 4]
    assert widget.token_legend.isVisible()
    step = widget.data.token_steps[3]
    menu = alternatives_menu(widget, step, can_branch=True)
    offered = [a.data() for a in menu.actions() if a.isEnabled()]
    assert offered == ["alt"]  # the chosen token is listed, not offered
    menu.deleteLater()
    assert widget.branch_label.isHidden()

    engine.default = token_script([" today", "."])
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        assert pane.branch(widget, 3, "alt")
    assert [t for _, t in _formats(view)] == ["The", " sky", " is", "alt", " today", "."]
    assert widget.branch_label.isVisible() and widget.branch_label.text() == "2/2"
    assert widget.branch_prev.isEnabled() and not widget.branch_next.isEnabled()
    assert pane.export_data()["turns"][0]["answer"] == "The sky isalt today."

    widget.branch_prev.click()
    assert widget.branch_label.text() == "1/2"
    assert "".join(t for _, t in _formats(view)) == "The sky is blue."
    assert pane.export_data()["turns"][0]["answer"] == "The sky is blue."
    assert pane.export_data()["turns"][0]["branch"]["shown"] == 1
    widget.branch_next.click()
    assert widget.branch_label.text() == "2/2"

    from desktop_app.ui.export import to_html, to_markdown

    markdown = to_markdown([pane.export_data()])  # export writes the branch shown
    assert "The sky isalt today." in markdown and "The sky is blue." not in markdown
    widget.branch_prev.click()
    html = to_html([pane.export_data()])
    assert "The sky is blue." in html and "isalt" not in html


def test_a_click_on_a_token_names_it(qtbot):
    from PySide6.QtCore import Qt

    from desktop_app.engine.protocol import TokenLogprob

    view = TokenView()
    qtbot.addWidget(view)
    view.resize(400, 100)
    view.show()
    view.append_steps([TokenStep(TokenLogprob(text, -0.1, ((text, -0.1),)))
                       for text in ("alpha", " beta", " gamma")])
    cursor = QTextCursor(view.document())
    cursor.setPosition(len("alpha") + 2)  # inside " beta"
    where = view.cursorRect(cursor).center()
    assert view.index_at(where) == 1
    assert view.index_at(QPoint(390, 90)) == -1  # below the text
    with qtbot.waitSignal(view.tokenClicked, timeout=2000) as clicked:
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert clicked.args[0] == 1


def test_text_without_figures_says_so_and_shows_the_reply(qtbot, pane, engine):
    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["No", " figures"], figures=False)
    widget = send_and_wait(qtbot, pane, "Go")
    assert not widget.token_mode and widget.answer.isVisible()
    assert widget.token_note.isVisible() and widget.token_note.text() == NOT_RECORDED
    assert "No figures" in widget.answer.toPlainText()


def test_tints_are_calm_for_likely_tokens_in_light_and_dark():
    assert band_color(0).alpha() == 0
    assert [band_color(b).alpha() for b in range(5)] == sorted(band_color(b).alpha()
                                                               for b in range(5))


def test_a_server_without_figures_is_named(qtbot, fake_models, engine, monkeypatch):
    """A served model whose server sends no logprobs: the reply shows as usual, and the
    pane says the server does not offer them (the scripted engine stands in for it)."""
    from dataclasses import replace

    from desktop_app.models.catalog import Availability, Catalog
    from desktop_app.models.sources import RemoteSource
    from desktop_app.session import pane as pane_session
    from desktop_app.session.tokens import NOT_OFFERED

    # the server is never asked: the scripted engine stands in for it
    monkeypatch.setattr(pane_session, "state_of", lambda _entry: Availability.READY)
    instruct = next(e for e in fake_models if e.role == "instruct")
    served = replace(instruct, id="served", source=RemoteSource(
        endpoint="http://127.0.0.1:9/v1", model="served"))
    pane = Pane(Catalog(entries={"served": served}),
                PaneConfig(model_id="served", probabilities=True), worker_factory=engine.worker)
    qtbot.addWidget(pane)
    pane.show()
    try:
        engine.default = token_script(["Served", " text"], figures=False)
        widget = send_and_wait(qtbot, pane, "Go")
        assert engine.workers[-1].requests[0].top_logprobs > 0  # it was asked for
        assert widget.token_note.text() == NOT_OFFERED and widget.token_note.isVisible()
        assert "Served text" in widget.answer.toPlainText()
    finally:
        close_in_background(pane.shutdown())
        assert wait_for_closing()


def test_tokens_past_a_stop_sequence_are_struck_through(qtbot, pane, engine):
    from desktop_app.engine.protocol import Finished, FinishReason, GenerationResult

    pane.settings_box.probabilities_box.setChecked(True)
    script = token_script([" Paris", ".", "\n", "Question"])

    def cut(request):  # the engine held "\nQuestion" back: the answer ends before it
        items = script(request)
        for index, item in enumerate(items):
            if hasattr(item, "answer") and item.answer in ("\n", "Question"):
                items[index] = type(item)(**{**item.__dict__, "answer": ""})
        items[-1] = Finished(result=GenerationResult(model="", role="",
                                                     finish_reason=FinishReason.STOP))
        return items

    engine.default = cut
    widget = send_and_wait(qtbot, pane, "Capital?")
    assert widget.data.answer == " Paris."
    view = widget.token_view
    assert view.struck_from == 2
    def struck_at(position: int) -> bool:
        cursor = QTextCursor(view.document())
        cursor.setPosition(position)  # the format of the character before it
        return cursor.charFormat().fontStrikeOut()

    assert not struck_at(len(" Paris."))
    assert struck_at(len(" Paris.\nQuestion"))
    view.redraw()  # a theme change draws it again, struck through still
    assert view.struck_from == 2 and struck_at(len(" Paris.\nQuestion"))


def test_clicking_a_token_and_picking_an_alternative_branches(qtbot, pane, engine, monkeypatch):
    from PySide6.QtCore import Qt

    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["One", " two", " three"])
    widget = send_and_wait(qtbot, pane, "Count")
    offered = menu_user(monkeypatch, pick="alt")
    engine.default = token_script([" four"])
    view = widget.token_view
    cursor = QTextCursor(view.document())
    cursor.setPosition(len("One t"))  # inside " two"
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.cursorRect(cursor).center())
    assert offered == ["alt"]
    assert widget.data.answer == "Onealt four" and widget.branch_label.text() == "2/2"


def menu_user(monkeypatch, pick: str | None = None) -> list[object]:
    """Clicks open the real alternatives menu; the user reads it (the enabled choices are
    recorded in the list returned) and picks ``pick``, or closes it: exec() would block."""
    offered: list[object] = []

    class User:
        def __init__(self, menu):
            self.menu = menu

        def exec(self, *_args):
            actions = self.menu.actions()
            offered.extend(a.data() for a in actions if a.isEnabled())
            return next((a for a in actions if a.data() == pick), None) if pick else None

        def deleteLater(self):
            self.menu.deleteLater()

    monkeypatch.setattr(turn_module, "alternatives_menu", lambda parent, step, can_branch:
                        User(alternatives_menu(parent, step, can_branch=can_branch)))
    return offered


def _cut(script):
    """The script, ended by the token limit (so Continue applies)."""
    from dataclasses import replace

    from desktop_app.engine.protocol import Finished, FinishReason

    def cut(request):
        items = script(request)
        items[-1] = Finished(result=replace(items[-1].result, finish_reason=FinishReason.LENGTH))
        return items
    return cut


def _shown(view: TokenView) -> str:
    """The text the view shows, line breaks included."""
    return view.toPlainText()


def test_retry_and_continue_keep_the_other_branches(qtbot, pane, engine):
    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["The", " sky", " is", " blue", "."])
    widget = send_and_wait(qtbot, pane, "Colour?")
    engine.default = token_script([" today", "."])
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        assert pane.branch(widget, 3, "alt")
    assert widget.branch_label.text() == "2/2"

    # Retry on branch 2: it runs again from its token, in its place; branch 1 stays.
    engine.default = _cut(token_script([" again"]))
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        pane.retry(widget)
    assert pane.turns == [widget] and widget.branch_label.text() == "2/2"
    assert _shown(widget.token_view) == "The sky isalt again"
    request = engine.workers[-1].requests[-1]
    assert request.raw and request.prompt.endswith("The sky isalt")  # the branch's own prompt

    # Continue on the cut branch 2: it resumes in place, from its last token.
    limit = widget.data.max_tokens
    engine.default = token_script([" and more."])
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        pane.extend(widget)
    request = engine.workers[-1].requests[-1]
    assert request.raw and request.reply_so_far == "The sky isalt again"
    assert request.prompt == "<p>The sky isalt again" and widget.data.max_tokens > limit
    assert _shown(widget.token_view) == "The sky isalt again and more."
    assert widget.branch_label.text() == "2/2"
    widget.branch_prev.click()
    assert _shown(widget.token_view) == "The sky is blue."

    # Retry on branch 1, the first reply: a new turn, whose branch 2 is still a click away.
    engine.default = token_script(["Grey", "."])
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        pane.retry(widget)
    retried = pane.turns[-1]
    assert retried is not widget and len(pane.turns) == 1
    assert _shown(retried.token_view) == "Grey." and retried.branch_label.text() == "1/2"
    if (shots := os.environ.get("PROBABILITIES_SCREENSHOT_DIR")):
        pane.grab().save(str(Path(shots) / "retried-branch-1.png"))
    retried.branch_next.click()
    assert _shown(retried.token_view) == "The sky isalt again and more."
    retried.branch_prev.click()
    assert _shown(retried.token_view) == "Grey."
    assert pane.export_data()["turns"][0]["branch"] == {"shown": 1, "of": 2, "from_token": None,
                                                        "chosen": None}


# ------------------------------------------------------------ a reasoning reply, folded


def reasoning_script(texts: list[str], *, prefilled: bool, gate: threading.Event | None = None,
                     gate_at: int = 0, logprobs: tuple[float, ...] = (-0.2,)):
    """A reasoning model's reply one token per Delta, split and counted as the engine does
    it (the one thinking splitter, a token that opens or closes the thinking counted as
    thinking), with each token's figures when asked for: the chosen token at -0.2, an
    alternative "alt". A raw request (a branch) is continued unsplit, as token_script does.
    ``gate``: the stream waits there, before token ``gate_at``, until the test opens it;
    ``logprobs``: the chosen tokens' log-probabilities, in turn."""
    def script(request):
        raw = request.raw
        splitter = ThinkingSplitter("none" if raw else "think-tags",
                                    prefilled=prefilled and not raw)
        items: list = [PromptSent(text=request.prompt if raw else "<p><think>", n_tokens=3,
                                  starts_in_thinking=prefilled and not raw, seed=1)]
        counts = [0, 0]  # thinking, answer
        thinking, answer = [], []
        for index, text in enumerate(texts):
            if gate is not None and index == gate_at:
                items.append(gate)
            was = splitter.in_thinking
            segments = [("answer", text)] if raw else splitter.feed(text)
            counts[0 if was or splitter.in_thinking else 1] += 1
            shown_thinking = "".join(t for kind, t in segments if kind == THINKING)
            shown_answer = "".join(t for kind, t in segments if kind != THINKING)
            thinking.append(shown_thinking)
            answer.append(shown_answer)
            chosen = logprobs[index % len(logprobs)]
            figures = (TokenLogprob(text, chosen, ((text, chosen), ("alt", -1.9)))
                       if request.top_logprobs else None)
            items.append(Delta(thinking=shown_thinking, answer=shown_answer,
                               thinking_tokens=counts[0], answer_tokens=counts[1],
                               elapsed_s=0.01 * index, logprob=figures))
        items.append(Finished(result=GenerationResult(
            model="", role="", thinking="".join(thinking), answer="".join(answer),
            thinking_tokens=counts[0], answer_tokens=counts[1],
            thinking_s=0.5 if counts[0] else None, finish_reason=FinishReason.STOP)))
        return items
    return script


THOUGHT = ["Let", " me", " think", ".", "</think>", "\n\n", "Four", "."]


@pytest.fixture
def reasoning_pane(qtbot, fake_models, engine):
    widget = Pane(fake_models, PaneConfig(model_id=role_id(fake_models, "reasoning"),
                                          probabilities=True),
                  worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_closing()


def test_thinking_tokens_fold_and_the_answer_holds_only_the_answer(qtbot, reasoning_pane,
                                                                    engine):
    engine.default = reasoning_script(THOUGHT, prefilled=True)
    widget = send_and_wait(qtbot, reasoning_pane, "Two plus two?")
    fold = widget.thinking
    assert widget.token_mode and widget.data.thinking == "Let me think."
    assert widget.data.answer == "Four."
    # the fold: the same section, header and control as without probabilities
    assert fold.isVisible() and fold.title.startswith("Thought for ")
    assert fold.title == widget.data.thinking_header()
    assert not fold.expanded and not fold.body.isVisible()
    assert fold.showing_tokens and fold.view.isHidden()
    # its tokens: the thinking, its closing tag, and the blanks the split drops (not drawn)
    assert _shown(widget.thinking_token_view) == "Let me think.</think>"
    assert [i for i, _ in _formats(widget.thinking_token_view)] == [0, 1, 2, 3, 4]
    assert widget.thinking_token_view.indices == [0, 1, 2, 3, 4, 5]
    assert widget.thinking_token_view.shown[-1] == ""
    # the answer area holds only the answer's tokens, with their places in the reply
    assert _shown(widget.token_view) == "Four."
    assert [i for i, _ in _formats(widget.token_view)] == [6, 7]
    assert widget.answer.isHidden() and widget.token_view.isVisible()
    assert widget.token_legend.isVisible()

    fold.header.click()  # unfold: the tinted thinking, read from its start
    assert fold.expanded and widget.thinking_token_view.isVisible()
    assert widget.thinking_token_view.verticalScrollBar().value() == 0
    fold.header.click()
    assert not fold.expanded and not widget.thinking_token_view.isVisible()
    reasoning_pane.set_thinking_expanded(True)  # Ctrl+T, the window-wide toggle
    assert fold.expanded
    reasoning_pane.set_thinking_expanded(False)
    assert not fold.expanded


def test_tokens_in_the_fold_have_tooltips_and_alternatives(qtbot, reasoning_pane, engine,
                                                            monkeypatch):
    from PySide6.QtCore import Qt

    engine.default = reasoning_script(THOUGHT, prefilled=True)
    widget = send_and_wait(qtbot, reasoning_pane, "Two plus two?")
    widget.thinking.header.click()
    view = widget.thinking_token_view
    cursor = QTextCursor(view.document())
    cursor.setPosition(len("Let m"))  # inside " me"
    where = view.cursorRect(cursor).center()
    assert view.index_at(where) == 1
    step = view.step(1)
    assert step is widget.data.token_steps[1] and step.thinking
    assert step.describe().splitlines()[0].endswith("(thinking)")
    assert "alt" in step.describe()

    shown = []
    monkeypatch.setattr(QToolTip, "showText", lambda _pos, text, *_: shown.append(text))
    qtbot.mouseMove(view.viewport(), where)
    qtbot.waitUntil(lambda: bool(shown), timeout=2000)
    assert shown[-1].startswith(step.describe())  # and what "·me" means: a space first
    assert shown[-1].endswith(f"({SYMBOLS_NOTE})")

    offered = menu_user(monkeypatch)
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=where)
    assert offered == ["alt"]  # a thinking token can be branched from too


def test_thinking_tokens_stream_into_the_open_fold_then_it_folds(qtbot, reasoning_pane,
                                                                  engine, monkeypatch):
    gate = threading.Event()
    engine.default = reasoning_script(THOUGHT, prefilled=True, gate=gate, gate_at=6)
    assert reasoning_pane.send("Two plus two?")
    redrawn = []
    monkeypatch.setattr(TokenView, "set_steps", lambda self, *a: redrawn.append(self))
    widget = reasoning_pane.turns[-1]
    view = widget.thinking_token_view
    qtbot.waitUntil(lambda: len(view.steps) == 6, timeout=5000)
    fold = widget.thinking
    assert fold.live and fold.expanded and fold.title.startswith("Thinking… ")
    assert view.isVisible() and _shown(view) == "Let me think.</think>"
    assert widget.token_view.steps == []
    with qtbot.waitSignal(reasoning_pane.runFinished, timeout=10_000):
        gate.set()
    assert not fold.live and not fold.expanded and fold.title.startswith("Thought for ")
    assert _shown(widget.token_view) == "Four."
    assert redrawn == []  # appended as they came, never drawn again


def test_a_thinking_tag_token_without_a_prefilled_template_goes_in_the_fold(
        qtbot, reasoning_pane, engine):
    engine.default = reasoning_script(["\n", "<think>", "Hmm", ".", "</think>", "\n\n",
                                       "Yes", "."], prefilled=False)
    widget = send_and_wait(qtbot, reasoning_pane, "Sure?")
    assert widget.data.thinking == "Hmm." and widget.data.answer == "Yes."
    assert _shown(widget.thinking_token_view) == "<think>Hmm.</think>"
    assert widget.thinking_token_view.indices == [0, 1, 2, 3, 4, 5]
    assert _shown(widget.token_view) == "Yes."
    assert widget.thinking.isVisible() and not widget.thinking.expanded


def test_a_reply_without_thinking_has_no_fold(qtbot, reasoning_pane, engine):
    engine.default = reasoning_script(["Just", " this", "."], prefilled=False)
    widget = send_and_wait(qtbot, reasoning_pane, "Quick?")
    assert widget.thinking.isHidden() and widget.thinking_token_view.steps == []
    assert _shown(widget.token_view) == "Just this."


def test_switching_probabilities_redraws_a_finished_turn_both_ways(qtbot, reasoning_pane,
                                                                    engine):
    engine.default = reasoning_script(THOUGHT, prefilled=True)
    widget = send_and_wait(qtbot, reasoning_pane, "Two plus two?")
    header = widget.thinking.title
    box = reasoning_pane.settings_box.probabilities_box
    widget.thinking.header.click()  # the reader opened the fold: it stays open

    box.setChecked(False)
    assert not widget.token_mode
    assert widget.thinking.text() == "Let me think." and widget.thinking.view.isVisible()
    assert widget.thinking_token_view.isHidden() and widget.thinking.expanded
    assert widget.thinking.title == header
    assert widget.answer.isVisible() and widget.answer.toPlainText() == "Four."
    assert widget.token_view.isHidden() and widget.token_legend.isHidden()
    assert widget.token_note.isHidden()

    box.setChecked(True)
    assert widget.token_mode and widget.answer.isHidden()
    assert _shown(widget.thinking_token_view) == "Let me think.</think>"
    assert widget.thinking_token_view.isVisible() and widget.thinking.view.isHidden()
    assert _shown(widget.token_view) == "Four." and widget.token_legend.isVisible()
    assert widget.thinking.title == header and widget.thinking.expanded

    # a reply sent with probabilities off has no figures: shown as text, and it says so
    box.setChecked(False)
    second = send_and_wait(qtbot, reasoning_pane, "Again?")
    assert not second.token_mode and second.data.token_steps == []
    box.setChecked(True)
    assert not second.token_mode and second.answer.toPlainText() == "Four."
    assert second.token_note.isVisible() and second.token_note.text() == NOT_RECORDED
    assert widget.token_mode  # the first one is tinted again
    box.setChecked(False)
    assert second.token_note.isHidden()


def test_switching_probabilities_while_a_turn_runs_applies_when_it_ends(
        qtbot, reasoning_pane, engine):
    gate = threading.Event()
    engine.default = reasoning_script(THOUGHT, prefilled=True, gate=gate, gate_at=6)
    assert reasoning_pane.send("Two plus two?")
    widget = reasoning_pane.turns[-1]
    qtbot.waitUntil(lambda: len(widget.thinking_token_view.steps) == 6, timeout=5000)
    reasoning_pane.settings_box.probabilities_box.setChecked(False)
    assert widget.token_mode  # it keeps streaming as it began
    with qtbot.waitSignal(reasoning_pane.runFinished, timeout=10_000):
        gate.set()
    assert not widget.token_mode and widget.thinking.text() == "Let me think."
    assert widget.answer.isVisible() and widget.answer.toPlainText() == "Four."


def test_branching_from_a_thinking_token_continues_the_thinking(qtbot, reasoning_pane,
                                                                engine):
    engine.default = reasoning_script(THOUGHT, prefilled=True)
    widget = send_and_wait(qtbot, reasoning_pane, "Two plus two?")
    engine.default = reasoning_script([" again", "</think>", "\n\n", "Five", "."],
                                      prefilled=True)
    with qtbot.waitSignal(reasoning_pane.runFinished, timeout=10_000):
        assert reasoning_pane.branch(widget, 1, "alt")
    assert widget.data.thinking == "Letalt again" and widget.data.answer == "Five."
    assert _shown(widget.thinking_token_view) == "Letalt again</think>"
    assert _shown(widget.token_view) == "Five."
    assert widget.thinking.isVisible() and not widget.thinking.live
    assert widget.thinking.title == widget.data.thinking_header()
    assert widget.branch_label.text() == "2/2"
    widget.branch_prev.click()
    assert _shown(widget.thinking_token_view) == "Let me think.</think>"
    assert _shown(widget.token_view) == "Four."


def test_a_branch_from_a_thinking_token_thinks_live_in_the_fold(qtbot, reasoning_pane,
                                                                engine):
    engine.default = reasoning_script(THOUGHT, prefilled=True)
    widget = send_and_wait(qtbot, reasoning_pane, "Two plus two?")
    gate = threading.Event()
    engine.default = reasoning_script([" again", "</think>", "Five", "."], prefilled=True,
                                      gate=gate, gate_at=1)
    assert reasoning_pane.branch(widget, 2, "alt")
    qtbot.waitUntil(lambda: _shown(widget.thinking_token_view) == "Let mealt again",
                    timeout=5000)
    assert widget.thinking.live and widget.thinking.expanded
    assert widget.token_view.steps == []
    with qtbot.waitSignal(reasoning_pane.runFinished, timeout=10_000):
        gate.set()
    assert not widget.thinking.live and not widget.thinking.expanded
    assert _shown(widget.token_view) == "Five."


@pytest.mark.parametrize("presentation", [False, True])
def test_snapshots_of_a_folded_reasoning_reply_with_probabilities(
        qtbot, fake_models, engine, presentation, tmp_path):
    """The window with probabilities on in the reasoning pane, fold closed and open, at
    the normal size and at a projector's 1024x768 in presentation mode (the PNGs go to
    PROBABILITIES_SCREENSHOT_DIR when it is set, to look at)."""
    from desktop_app.ui.main_window import MainWindow

    ids = {entry.role: entry.id for entry in fake_models}
    engine.scripts[ids["reasoning"]] = reasoning_script(
        ["Half", " of", " 40", " is", " 20", ".", " Check", ":", " 20", " +", " 20", " =",
         " 40", ".", "</think>", "\n\n", "**", "20", "**", "."], prefilled=True,
        logprobs=(-0.01, -0.05, -0.4, -0.02, -1.5, -0.01, -2.8, -0.9))
    window = MainWindow(fake_models, models=[ids["base"], ids["instruct"], ids["reasoning"]],
                        remember=False, presentation=presentation, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(*((1024, 768) if presentation else (1600, 900)))
    window.show()
    shots = Path(os.environ.get("PROBABILITIES_SCREENSHOT_DIR") or tmp_path)
    try:
        pane = window.panes[2]
        pane.settings_box.probabilities_box.setChecked(True)
        window.prompt.setPlainText("What is half of 40?")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            assert window.send_all() == len(window.panes)
        turn = pane.turns[-1]
        name = "presentation-1024x768" if presentation else "normal"
        qtbot.wait(50)  # one layout pass
        window.grab().save(str(shots / f"fold-closed-{name}.png"))
        assert turn.thinking.isVisible() and not turn.thinking.expanded
        right = pane.scroll_area.viewport().mapTo(window, pane.scroll_area.viewport()
                                                  .rect().topRight()).x()
        for view in (turn.token_view, turn.thinking.header):
            assert view.mapTo(window, view.rect().topRight()).x() <= right
        turn.thinking.header.click()
        qtbot.wait(50)
        window.grab().save(str(shots / f"fold-open-{name}.png"))
        view = turn.thinking_token_view
        assert view.isVisible() and view.mapTo(window, view.rect().topRight()).x() <= right
        assert _shown(view).startswith("Half of 40") and _shown(turn.token_view) == "**20**."
    finally:
        window.shutdown()


@pytest.mark.slow
@pytest.mark.parametrize("prefill", [False, True])
def test_real_llama_cpp_thinking_tokens_fold(qtbot, tmp_path, prefill):
    """Real llama.cpp on a scripted reasoning GGUF whose <think> and </think> are single
    tokens: with probabilities on, the fold holds the thinking's tokens, the answer area
    the answer's, whether the model writes <think> or the template opens it."""
    from desktop_app.models.catalog import Catalog
    from tests.scripted_gguf import scripted_entry, write_scripted_gguf

    script = "<think>Two plus two.\nThat makes four.</think>\n\nThe answer is **4**."
    path = write_scripted_gguf(tmp_path / "reasoner.gguf",
                               script.removeprefix("<think>") if prefill else script,
                               start_after="<think>" if prefill else "<|assistant|>")
    entry = scripted_entry(path, prefill=prefill)
    pane = Pane(Catalog(entries={entry.id: entry}),
                PaneConfig(model_id=entry.id, probabilities=True))
    qtbot.addWidget(pane)
    pane.resize(520, 700)
    pane.show()
    try:
        widget = send_and_wait(qtbot, pane, "What is 2 + 2?", timeout_ms=90_000)
        data = widget.data
        assert data.starts_in_thinking == prefill
        assert data.thinking == "Two plus two.\nThat makes four."
        assert data.answer == "The answer is **4**."
        fold = _shown(widget.thinking_token_view)
        assert fold == ("" if prefill else "<think>") + "Two plus two.\nThat makes four.</think>"
        assert _shown(widget.token_view) == "The answer is **4**."
        assert widget.thinking.isVisible() and not widget.thinking.expanded
        assert widget.thinking.title.startswith("Thought for ")
        assert all(step.thinking for step in widget.thinking_token_view.steps[:-1])
        assert not any(step.thinking for step in widget.token_view.steps)
    finally:
        close_in_background(pane.shutdown())
        assert wait_for_closing()


def test_drawing_many_tokens_keeps_pythons_none_alive(qtbot):
    """Each drawn token costs a few Qt calls that return nothing. PySide6 6.12.0 on Python
    3.11 returned None from such calls without a reference, so every call took one from
    None and the app aborted ("deallocating None") after a few thousand tinted tokens.
    (From Python 3.12 None is immortal and its count does not move.)"""
    import sys

    from desktop_app.engine.protocol import TokenLogprob

    view = TokenView(max_height=280)
    qtbot.addWidget(view)
    steps = [TokenStep(TokenLogprob(" word", -0.7, ((" word", -0.7),)))] * 400
    before = sys.getrefcount(None)
    for start in range(0, len(steps), 10):  # a frame's worth at a time
        view.append_steps(steps[start:start + 10])
    view.strike_from(390)
    assert sys.getrefcount(None) >= before - 100  # 6.12.0: about 1,200 fewer


def test_a_long_paragraph_of_tokens_is_drawn_in_pieces(qtbot):
    """Qt lays a paragraph out whole: past a long run without a line break, the next blank
    is drawn as one (as the plain thinking view does), so each frame's append stays
    short. The tokens keep their text, and positions still add up."""
    from desktop_app.engine.protocol import TokenLogprob
    from desktop_app.ui.widgets import StreamTextView

    view = TokenView()
    qtbot.addWidget(view)
    steps = [TokenStep(TokenLogprob(f" thinking{i % 10}", -0.1, ()), thinking=True)
             for i in range(300)]
    view.append_steps(steps)
    shown = view.toPlainText()
    assert len(shown) == sum(len(step.text) for step in steps)
    assert shown.replace("\n", " ") == "".join(step.text for step in steps)
    assert [step.text for step in view.steps] == [step.text for step in steps]
    longest = max(len(line) for line in shown.split("\n"))
    assert view.document().blockCount() > 1 and longest <= StreamTextView.LONG_PARAGRAPH + 4
    view.strike_from(299)  # the last token, found by the drawn lengths
    cursor = QTextCursor(view.document())
    cursor.setPosition(len(shown))
    assert cursor.charFormat().fontStrikeOut()
    cursor.setPosition(len(shown) - len(steps[-1].text))
    assert not cursor.charFormat().fontStrikeOut()


def test_long_thinking_tokens_are_appended_once_a_frame_and_followed(qtbot, reasoning_pane,
                                                                     engine):
    """Thinking tokens stream into the open fold: at most one append per view a frame,
    nothing drawn again; the fold stays at its height and follows the newest line while
    the reader is there; unfolded afterwards it is read from its start."""
    gate = threading.Event()
    thinking = [f"step {i}.\n" if i % 4 == 3 else f"step {i}," for i in range(240)]
    engine.default = reasoning_script([*thinking, "</think>", "Done", "."], prefilled=True,
                                      gate=gate, gate_at=240)
    frames = {"count": 0}
    reasoning_pane.timer.timeout.connect(lambda: frames.__setitem__("count",
                                                                   frames["count"] + 1))
    assert reasoning_pane.send("Count")
    widget = reasoning_pane.turns[-1]
    view = widget.thinking_token_view
    calls = {"set": 0, "append": 0}
    original_set, original_append = view.set_steps, view.append_steps

    def counted_set(*args):
        calls["set"] += 1
        original_set(*args)

    def counted_append(*args):
        calls["append"] += bool(args[0])
        original_append(*args)

    view.set_steps, view.append_steps = counted_set, counted_append
    qtbot.waitUntil(lambda: len(view.steps) == 240, timeout=10_000)
    qtbot.wait(50)  # a frame or two for the layout
    bar = view.verticalScrollBar()
    assert widget.thinking.live and bar.maximum() > 0 and bar.value() == bar.maximum()
    assert view.height() <= widget.thinking.THINKING_HEIGHT * 2  # capped (zoom at most x2)
    with qtbot.waitSignal(reasoning_pane.runFinished, timeout=10_000):
        gate.set()
    assert calls["set"] == 0 and 0 < calls["append"] <= frames["count"]
    assert _shown(widget.token_view) == "Done."
    widget.thinking.header.click()
    assert widget.thinking.expanded and bar.value() == 0


def test_hover_and_menu_show_both_distributions_labelled(qtbot):
    """Issue 29: a token chosen at temperature 0 that was not the model's own top (the
    penalty lowered " the"): the tooltip and the menu say so, one list each, labelled."""
    from desktop_app.session.tokens import MODEL_HEADING, SAMPLED_HEADING
    from desktop_app.ui.probabilities import token_tooltip

    step = TokenStep(TokenLogprob(" light", math.log(0.21),
                                  ((" the", math.log(0.36)), (" light", math.log(0.21))),
                                  top_sampled=((" light", 0.0),), sampled_logprob=0.0))
    tip = token_tooltip(step).splitlines()
    assert tip[0] == "·light  21% by the model · 100% as sampled"
    assert tip[1:6] == [MODEL_HEADING, "   ·the  36%", "▸ ·light  21%", SAMPLED_HEADING,
                        "▸ ·light  100%"]
    parent = QWidget()
    qtbot.addWidget(parent)
    texts = [action.text() for action in alternatives_menu(parent, step, can_branch=True)
             .actions() if not action.isSeparator()]
    assert texts[0] == "·light  21% by the model · 100% as sampled"
    assert texts[1].startswith("The model's own distribution")
    assert texts[4] == SAMPLED_HEADING and texts[5].startswith("▸ ·light") and "100%" in texts[5]
    plain = TokenStep(TokenLogprob(" light", -1.5, ((" the", -1.0),)))  # a server's: one list
    assert "as sampled" not in token_tooltip(plain) and SAMPLED_HEADING not in token_tooltip(plain)
