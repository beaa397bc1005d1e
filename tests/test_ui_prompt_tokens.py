"""The exact text sent, as tokens (issue 29.4), in the window: a "Text | Tokens" switch in
each turn's prompt fold, a strip of tinted tokens with ids on hover, and the count.

The real-model test checks the ids the strip draws against llama.cpp's own tokenization
of the exact text sent, on both starters; the fast tests drive the strip on the scripted
engine."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QPoint
from PySide6.QtGui import QTextCursor

from desktop_app.engine.protocol import PromptSent, PromptToken
from desktop_app.models.catalog import Catalog, ensure_local
from desktop_app.ui import theme
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.prompt_tokens import (
    BREAK_OPPORTUNITY,
    INDEX_PROPERTY,
    NO_TOKENS,
    TokenStrip,
    drawn,
    token_tip,
)
from tests.fake_engine import answer_script

TEXT = "<|im_start|>user\nHi there<|im_end|>\n<|im_start|>assistant\n"
TOKENS = (PromptToken(1, "<|im_start|>", True), PromptToken(4093, "user", False),
          PromptToken(198, "\n", False), PromptToken(17830, "Hi", False),
          PromptToken(665, " there", False), PromptToken(2, "<|im_end|>", True),
          PromptToken(198, "\n", False), PromptToken(1, "<|im_start|>", True),
          PromptToken(520, "assistant", False), PromptToken(198, "\n", False))


def drawn_tokens(strip: TokenStrip) -> list[tuple[int, str]]:
    """(token position, text) of each run the strip's document holds, in order."""
    runs: list[tuple[int, str]] = []
    block = strip.document().begin()
    while block.isValid():
        iterator = block.begin()
        while not iterator.atEnd():
            fragment = iterator.fragment()
            index = fragment.charFormat().property(INDEX_PROPERTY)
            if isinstance(index, int):
                if runs and runs[-1][0] == index:
                    runs[-1] = (index, runs[-1][1] + fragment.text())
                else:
                    runs.append((index, fragment.text()))
            iterator += 1
        block = block.next()
        if block.isValid() and runs:  # the line break between blocks belongs to the run
            runs[-1] = (runs[-1][0], runs[-1][1] + "\n")
    return runs


def point_of(strip: TokenStrip, index: int) -> QPoint:
    """A viewport point inside the run of token ``index``."""
    position = strip.toPlainText().replace("\u2029", "\n")
    start = sum(len(drawn(token.text)) + len(BREAK_OPPORTUNITY)
                for token in strip.tokens[:index])
    assert position[start:start + 1]
    cursor = QTextCursor(strip.document())
    cursor.setPosition(start + 1)
    return strip.cursorRect(cursor).center() - QPoint(2, 0)


def fake_window(qtbot, fake_models, engine, script) -> MainWindow:
    engine.scripts["smollm2-135m-instruct"] = script
    window = MainWindow(fake_models, models=["smollm2-135m-instruct"], remember=False,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    return window


def test_the_switch_shows_the_tokens_drawn_one_run_each(qtbot, fake_models, engine):
    window = fake_window(qtbot, fake_models, engine,
                         [PromptSent(TEXT, len(TOKENS), False, 1, tokens=TOKENS),
                          *answer_script("Hello!")[1:]])
    try:
        window.prompt.setPlainText("Hi there")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            window.send_all()
        turn = window.panes[0].turns[0]
        box = turn.prompt_box
        turn.prompt_section.set_expanded(True)
        assert box.text_view.isVisible() and not box.strip.isVisible()
        assert box.strip.tokens == ()  # drawn only when asked for
        assert box.count.text() == "10 tokens · 3 special"
        box.tokens_button.click()
        assert box.strip.isVisible() and box.key.isVisible() and not box.text_view.isVisible()
        assert box.strip.tokens == TOKENS
        assert [text for _, text in drawn_tokens(box.strip)] == [drawn(t.text) for t in TOKENS]
        assert [index for index, _ in drawn_tokens(box.strip)] == list(range(len(TOKENS)))
        # special tokens are bold and underlined, not only another colour
        formats = {index: fragment_format(box.strip, index) for index in (0, 1, 2, 3)}
        assert formats[0].fontUnderline() and formats[0].fontWeight() > 500
        assert not formats[1].fontUnderline() and formats[1].fontWeight() <= 500
        # neighbours differ, every other token alike: the boundaries show
        assert formats[1].background() == formats[3].background() != formats[2].background()
        # hover: the token under the pointer, its id
        assert box.strip.index_at(point_of(box.strip, 5)) == 5
        assert box.strip.index_at(point_of(box.strip, 3)) == 3
        assert token_tip(TOKENS, 3, TEXT).startswith("Token 4 of 10 · id 17830\nHi")
        assert "one token for this marker" in token_tip(TOKENS, 5, TEXT)
        box.text_button.click()
        assert box.text_view.isVisible() and not box.strip.isVisible()
        assert turn.prompt_view.toPlainText() == TEXT
    finally:
        assert window.shutdown()


def fragment_format(strip: TokenStrip, index: int):
    cursor = QTextCursor(strip.document())
    start = sum(len(drawn(token.text)) + len(BREAK_OPPORTUNITY)
                for token in strip.tokens[:index])
    cursor.setPosition(start + 1)
    return cursor.charFormat()


def test_a_model_on_a_server_has_no_tokens_and_says_why(qtbot, fake_models, engine):
    window = fake_window(qtbot, fake_models, engine, answer_script("Hello!"))
    try:
        window.prompt.setPlainText("Hi")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            window.send_all()
        box = window.panes[0].turns[0].prompt_box
        assert not box.tokens_button.isEnabled() and box.tokens_button.toolTip() == NO_TOKENS
        assert box.text_button.isChecked() and box.count.text() == ""
    finally:
        assert window.shutdown()


def test_the_bos_a_tokenizer_adds_is_said_to_be_its(qtbot):
    tokens = (PromptToken(2, "<bos>", True), PromptToken(818, "The", False))
    assert "added by the tokenizer" in token_tip(tokens, 0, "The")
    assert "added by the tokenizer" not in token_tip(tokens, 0, "<bos>The")
    assert drawn(" a\n\n") == "·a↵\n↵\n" and drawn("") == "∅"


def test_the_strip_is_redrawn_for_the_other_theme(qtbot, monkeypatch):
    strip = TokenStrip()
    qtbot.addWidget(strip)
    strip.set_tokens(TOKENS, TEXT)
    light = fragment_format(strip, 1).background().color().name()
    monkeypatch.setattr(theme, "is_dark", lambda: True)
    strip.redraw()
    assert fragment_format(strip, 1).background().color().name() != light


@pytest.mark.slow
def test_the_ids_shown_are_the_models_own_tokenization(qtbot, starter_models):
    """Both starters, real model processes: the strip draws the ids llama.cpp's own
    tokenizer gives the exact text sent, special tokens parsed as special."""
    import llama_cpp

    entries = [starter_models["base"], starter_models["instruct"]]
    window = MainWindow(Catalog(entries={e.id: e for e in entries}),
                        models=[e.id for e in entries], remember=False)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    try:
        for pane in window.panes:
            pane.set_overrides(max_tokens=2, temperature=0.0, seed=1)
        window.prompt.setPlainText("What is 7 * 8?")
        with qtbot.waitSignal(window.allFinished, timeout=120_000):
            window.send_all()
        for pane, entry in zip(window.panes, entries, strict=True):
            turn = pane.turns[0]
            turn.prompt_section.set_expanded(True)
            turn.prompt_box.tokens_button.click()
            strip, sent = turn.prompt_box.strip, turn.data.prompt_sent
            llm = llama_cpp.Llama(str(ensure_local(entry)), vocab_only=True, verbose=False)
            try:
                ids = llm.tokenize(sent.encode("utf-8"), add_bos=True, special=True)
                control = [llm._model.token_get_attr(i) & llama_cpp.LLAMA_TOKEN_ATTR_CONTROL
                           for i in ids]
            finally:
                llm.close()
            assert [token.id for token in strip.tokens] == ids, entry.id
            assert [index for index, _ in drawn_tokens(strip)] == list(range(len(ids)))
            assert [token.special for token in strip.tokens] == [bool(c) for c in control]
            specials = sum(bool(c) for c in control)
            assert turn.prompt_box.count.text() == f"{len(ids)} tokens · {specials} special"
            assert strip.index_at(point_of(strip, 0)) == 0
    finally:
        assert window.shutdown()


def test_tokens_fit_three_panes_on_a_projector(qtbot, fake_models, engine):
    """Presentation mode at 1024×768 with ⚙ open: the prompt fold's switch, count, strip and
    key lie within each pane, over nothing else (issue 27's layout check)."""
    from tests.test_ui_projector import PROJECTOR, assert_fits, projector_window, settle

    engine.default = [PromptSent(TEXT, len(TOKENS), False, 1, tokens=TOKENS),
                      *answer_script("Hello!")[1:]]
    window = projector_window(qtbot, fake_models, engine)
    try:
        window.prompt.setPlainText("Hi there")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            window.send_all()
        for pane in window.panes:
            turn = pane.turns[0]
            turn.prompt_section.set_expanded(True)
            turn.prompt_box.tokens_button.click()
        settle(qtbot)
        for pane in window.panes:
            box = pane.turns[0].prompt_box
            assert box.strip.isVisible() and box.count.text() == "10 tokens · 3 special"
        assert_fits(window, PROJECTOR)
    finally:
        window.shutdown()
