"""Token probabilities in a pane, on the real Qt event loop and the scripted engine: the
toggle, tinted tokens streamed by appending, alternatives, branching and the ‹ 1/2 › bar."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint  # noqa: E402
from PySide6.QtGui import QTextCursor  # noqa: E402

from desktop_app.conversation import PaneConfig, close_in_background, wait_for_closing  # noqa: E402
from desktop_app.tokens import NOT_RECORDED, TokenStep  # noqa: E402
from desktop_app.ui.pane import Pane  # noqa: E402
from desktop_app.ui.probabilities import (  # noqa: E402
    INDEX_PROPERTY,
    TokenView,
    alternatives_menu,
    band_color,
)
from tests.fake_engine import send_and_wait, token_script  # noqa: E402
from tests.test_ui_pane import role_id  # noqa: E402


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

    from desktop_app.protocol import TokenLogprob

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

    from desktop_app import conversation
    from desktop_app.catalog import Availability, Catalog, RemoteSource
    from desktop_app.tokens import NOT_OFFERED

    # the server is never asked: the scripted engine stands in for it
    monkeypatch.setattr(conversation, "availability", lambda _entry: Availability.READY)
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
    from desktop_app.protocol import Finished, FinishReason, GenerationResult

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

    from desktop_app.ui import turn as turn_module

    pane.settings_box.probabilities_box.setChecked(True)
    engine.default = token_script(["One", " two", " three"])
    widget = send_and_wait(qtbot, pane, "Count")
    offered = []

    class PickAlt:
        """The real menu, with the user picking "alt" instead of a blocking exec()."""

        def __init__(self, menu):
            self.menu = menu

        def exec(self, *_args):
            offered.extend(a.data() for a in self.menu.actions() if a.isEnabled())
            return next(a for a in self.menu.actions() if a.data() == "alt")

        def deleteLater(self):  # noqa: N802
            self.menu.deleteLater()

    monkeypatch.setattr(turn_module, "alternatives_menu", lambda parent, step, can_branch:
                        PickAlt(alternatives_menu(parent, step, can_branch=can_branch)))
    engine.default = token_script([" four"])
    view = widget.token_view
    cursor = QTextCursor(view.document())
    cursor.setPosition(len("One t"))  # inside " two"
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.cursorRect(cursor).center())
    assert offered == ["alt"]
    assert widget.data.answer == "Onealt four" and widget.branch_label.text() == "2/2"


def _cut(script):
    """The script, ended by the token limit (so Continue applies)."""
    from dataclasses import replace

    from desktop_app.protocol import Finished, FinishReason

    def cut(request):
        items = script(request)
        items[-1] = Finished(result=replace(items[-1].result, finish_reason=FinishReason.LENGTH))
        return items
    return cut


def _shown(view: TokenView) -> str:
    return "".join(t for _, t in _formats(view))


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

    # Continue on the cut branch 2: the same branch again, twice the limit, same seed.
    limit = widget.data.max_tokens
    engine.default = token_script([" again", " and more."])
    with qtbot.waitSignal(pane.runFinished, timeout=10_000):
        pane.extend(widget)
    assert engine.workers[-1].requests[-1].sampling.max_tokens >= 2 * limit
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
