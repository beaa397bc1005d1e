"""Fast UI tests (no models): thinking fold/unfold, Markdown, verify UI, settings, states."""

from __future__ import annotations

import sys
import threading
import types
from collections import deque
from dataclasses import dataclass
from typing import Any

import pytest

pytest.importorskip("pytestqt")

from desktop_app.catalog import load_catalog  # noqa: E402
from desktop_app.engine import PromptSent  # noqa: E402
from desktop_app.protocol import Delta, Finished, GenerationResult
from desktop_app.ui.markdown import code_blocks  # noqa: E402
from desktop_app.ui.pane import Pane, PaneConfig, TurnWidget  # noqa: F401  # noqa: E402
from desktop_app.ui.runner import RunDone  # noqa: E402
from desktop_app.verify.checker import Verdict  # noqa: E402

INSTRUCT_ID = "smollm2-135m-instruct"
BASE_ID = "gemma3-270m-base"


class FakeRun:
    """Stands in for GenerationRun: a deque of events the pane's pump drains."""

    def __init__(self, events: list[Any]):
        self.events = deque(events)
        self.thread = threading.Thread()
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True


def start_fake_turn(pane: Pane, prompt: str, events: list[Any]) -> TurnWidget:
    turn = pane.add_turn(prompt)
    pane.run = FakeRun(events)  # type: ignore[assignment]
    return turn


def thinking_deltas(n: int, text: str = "hmm ") -> list[Delta]:
    return [Delta(thinking=text, answer="", thinking_tokens=i + 1, answer_tokens=0,
                  elapsed_s=i * 0.01) for i in range(n)]


@pytest.fixture
def pane(qtbot):
    catalog = load_catalog()
    widget = Pane(catalog, PaneConfig(model_id=INSTRUCT_ID))
    qtbot.addWidget(widget)
    widget.resize(500, 700)
    widget.show()
    yield widget
    widget.shutdown()


def test_thinking_is_live_then_folds_then_unfolds(pane, qtbot):
    prompt_sent = PromptSent(text="<|user|>q<|end|><|assistant|><think>", n_tokens=5,
                             starts_in_thinking=True, seed=1)
    turn = start_fake_turn(pane, "Is 17 prime?", [prompt_sent, *thinking_deltas(50)])
    pane._pump()
    assert turn.thinking.isVisible() and turn.thinking.expanded and turn.thinking.live
    assert turn.thinking.header.text().startswith("Thinking…")
    assert turn.thinking.text() == "hmm " * 50
    assert turn.answer_raw == ""

    answer = "Yes, **17** is prime."
    pane.run.events.extend([
        Delta(thinking="", answer=answer, thinking_tokens=50, answer_tokens=6, elapsed_s=1.0),
        Finished(result=GenerationResult(model=INSTRUCT_ID, role="reasoning", answer=answer,
                                   thinking="hmm " * 50, thinking_tokens=50, answer_tokens=6,
                                   thinking_s=14.2, ttft_s=0.1, tokens_per_s=40.0,
                                   finish_reason="stop")),
        RunDone(),
    ])
    with qtbot.waitSignal(pane.runFinished, timeout=2000):
        pane._pump()
    assert not turn.thinking.live
    assert not turn.thinking.expanded and not turn.thinking.body.isVisible()
    assert turn.thinking.header.text() == "Thought for 14 s · 50 tokens"
    assert turn.answer.toPlainText() == "Yes, 17 is prime."  # rendered as Markdown
    assert "thinking 50 / answer 6 tokens" in turn.metrics.text()
    assert "finish: stop" in turn.metrics.text()
    assert pane.run is None and pane.history[-1].assistant == answer

    turn.thinking.header.click()  # the user unfolds it
    assert turn.thinking.expanded and turn.thinking.body.isVisible()
    turn.thinking.header.click()
    assert not turn.thinking.expanded

    pane.set_thinking_expanded(True)  # the window-wide toggle
    assert turn.thinking.expanded
    pane.set_thinking_expanded(False)
    assert not turn.thinking.expanded


def test_long_thinking_appends_without_rerendering(pane, qtbot):
    """20 000 thinking tokens: each frame appends its batch; nothing is re-set."""
    turn = start_fake_turn(pane, "think a lot", [])
    calls = {"set": 0}
    original = turn.thinking.view.setPlainText
    turn.thinking.view.setPlainText = lambda *a: (calls.__setitem__("set", calls["set"] + 1),
                                                  original(*a))
    import time

    worst = 0.0
    for _frame in range(100):
        pane.run.events.extend(thinking_deltas(200, "word "))
        started = time.perf_counter()
        pane._pump()
        worst = max(worst, time.perf_counter() - started)
    assert turn.thinking.text().count("word") == 20000
    assert calls["set"] == 0
    assert worst < 0.1, f"a frame took {worst * 1000:.0f} ms"


def test_markdown_code_blocks_and_copy(pane, qtbot):
    answer = "Here:\n\n```python\nprint(2 + 2)\n```\n\nand\n\n```\nls\n```\n"
    assert code_blocks(answer) == [("python", "print(2 + 2)"), ("", "ls")]
    turn = start_fake_turn(pane, "code please", [
        Delta(thinking="", answer=answer, thinking_tokens=0, answer_tokens=9, elapsed_s=0.2),
        Finished(result=GenerationResult(model=INSTRUCT_ID, role="instruct", answer=answer,
                                   answer_tokens=9, finish_reason="stop")),
        RunDone(),
    ])
    pane._pump()
    doc_text = turn.answer.toPlainText()
    assert "print(2 + 2)" in doc_text and "```" not in doc_text
    block = turn.answer.document().findBlock(doc_text.index("print"))
    from desktop_app.ui.markdown import is_code_block

    assert is_code_block(block.blockFormat())
    assert turn.copy_code_button.isEnabled()
    turn.copy_answer()
    from PySide6.QtGui import QGuiApplication

    assert QGuiApplication.clipboard().text() == answer


@dataclass
class FakeProblem:
    id: str
    title: str
    prompt: str
    kind: str
    answer: Any
    tests: Any
    verifiable: bool


@dataclass
class FakeSet:
    name: str
    problems: list


def fake_verify_module(monkeypatch) -> types.ModuleType:
    module = types.ModuleType("desktop_app.verify")

    def verify_reply(reply_text: str, problem: Any = None) -> Verdict:
        if problem is None:
            return Verdict("ran", stdout="4\n", kind="code", reason="no expected answer")
        got = "4" if "4" in reply_text else "5"
        return Verdict("pass" if got == str(problem.answer) else "fail",
                           expected=str(problem.answer), got=got, reason="compared numbers")

    module.verify_reply = verify_reply
    module.Verdict = Verdict
    module.isolation_summary = lambda: "separate process, no network, 5 s limit"
    module.load_practice_sets = lambda: [FakeSet("Arithmetic", [
        FakeProblem("add", "Two plus two", "What is 2 + 2?", "math", 4, None, True),
        FakeProblem("poem", "A poem", "Write a poem about rain.", "open", None, None, False),
    ])]
    monkeypatch.setitem(sys.modules, "desktop_app.verify", module)
    return module


def finished_turn(pane: Pane, prompt: str, answer: str, problem: Any = None) -> TurnWidget:
    turn = start_fake_turn(pane, prompt, [
        Delta(thinking="", answer=answer, thinking_tokens=0, answer_tokens=3, elapsed_s=0.1),
        Finished(result=GenerationResult(model=INSTRUCT_ID, role="instruct", answer=answer,
                                   answer_tokens=3, finish_reason="stop")),
        RunDone(),
    ])
    turn.problem = problem
    pane._pump()
    return turn


def test_verify_button_shows_verdict(pane, qtbot, monkeypatch):
    module = fake_verify_module(monkeypatch)
    problem = module.load_practice_sets()[0].problems[0]
    turn = finished_turn(pane, problem.prompt, "2 + 2 = 4", problem)
    assert turn.verify_button.isVisible()
    turn.verify_button.click()
    qtbot.waitUntil(lambda: turn.verdict is not None, timeout=3000)
    text = turn.verify_label.text()
    assert "✓" in text and "Correct" in text and "expected <code>4</code>" in text
    assert "got <code>4</code>" in text

    free = finished_turn(pane, "print four", "```python\nprint(4)\n```")
    free.verify_button.click()
    qtbot.waitUntil(lambda: free.verdict is not None, timeout=3000)
    assert "Ran, nothing to check against" in free.verify_label.text()
    assert free.verify_section.isVisibleTo(free) and "4" in free.verify_output.toPlainText()

    def broken_checker(reply_text: str, problem: Any = None) -> Verdict:
        raise RuntimeError("boom")

    module.verify_reply = broken_checker
    failing = finished_turn(pane, "print four", "```python\nprint(4)\n```")
    failing.verify_button.click()
    qtbot.waitUntil(lambda: failing.verdict is not None, timeout=3000)
    assert failing.verdict.verdict == "error"
    assert "The checker failed: boom" in failing.verify_label.text()


def test_practice_picker_and_isolation_line(qtbot, monkeypatch):
    fake_verify_module(monkeypatch)
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.practice import PracticePicker, load_sets, problem_badge

    sets, error = load_sets()
    assert error is None
    picker = PracticePicker(sets)
    qtbot.addWidget(picker)
    top = picker.tree.topLevelItem(0)
    assert top.child(0).text(1).startswith("✓")         # verifiable
    assert top.child(1).text(1).startswith("open")      # not verifiable
    assert problem_badge(sets[0].problems[0])[1] != problem_badge(sets[0].problems[1])[1]
    picker.tree.setCurrentItem(top.child(0))
    picker._accept()
    assert picker.selected.id == "add"

    window = MainWindow(load_catalog(), models=[INSTRUCT_ID], remember=False)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: "no network" in window.isolation_label.text(), timeout=3000)
        window.use_problem(picker.selected)
        assert window.prompt.toPlainText() == "What is 2 + 2?"
        assert "Two plus two" in window.problem_label.text()
        window.prompt.setPlainText("something else")
        assert window.problem is None
    finally:
        window.shutdown()


def test_not_downloaded_pane_is_a_state(qtbot, monkeypatch):
    from desktop_app.ui.main_window import MainWindow

    opened = []
    monkeypatch.setattr(MainWindow, "open_model_manager", lambda self: opened.append(True))
    window = MainWindow(load_catalog(), remember=False)
    qtbot.addWidget(window)
    window.show()
    try:
        roles = [p.entry.role for p in window.panes]
        assert roles == ["base", "instruct", "reasoning"]
        reasoning = window.panes[2]
        if reasoning.ready:
            pytest.skip("a reasoning model is downloaded on this machine")
        assert reasoning.banner.isVisible()
        assert "not downloaded" in reasoning.banner_label.text()
        assert reasoning.send("hello") is False
        with qtbot.waitSignal(reasoning.openManagerRequested, timeout=1000):
            reasoning.banner_button.click()
        assert opened == [True]
    finally:
        window.shutdown()


def test_settings_persist_across_restart(qtbot):
    from desktop_app.ui.main_window import MainWindow

    catalog = load_catalog()
    first = MainWindow(catalog, remember=True)
    qtbot.addWidget(first)
    first.show()
    first.panes[0].set_model(INSTRUCT_ID)
    first.panes[0].set_overrides(max_tokens=77, temperature=0.3, seed=42)
    first.panes[0].system_prompt.setText("Be brief.")
    first.panes[0]._read_settings()
    first.add_pane()
    first.thinking_toggle.setChecked(True)
    first.zoom_by(1.1)
    first.prompt.setPlainText("remember me")
    first.close()

    second = MainWindow(load_catalog(), remember=True)
    qtbot.addWidget(second)
    try:
        assert len(second.panes) == 4
        config = second.panes[0].config
        assert config.model_id == INSTRUCT_ID
        assert (config.max_tokens, config.temperature, config.seed) == (77, 0.3, 42)
        assert config.system_prompt == "Be brief."
        assert second.panes[0].max_tokens.value() == 77
        assert second.thinking_toggle.isChecked()
        assert second.zoom == pytest.approx(1.1)
        assert second.prompt.toPlainText() == "remember me"
    finally:
        second.shutdown()


def test_export_markdown_and_html(pane, qtbot, tmp_path):
    from desktop_app.ui import export

    finished_turn(pane, "What is 2+2?", "It is **4**.\n\n```python\nprint(4)\n```")
    data = [pane.export_data()]
    markdown = export.to_markdown(data)
    assert "What is 2+2?" in markdown and "It is **4**." in markdown and "finish: stop" in markdown
    page = export.to_html(data)
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page
    assert "print(4)" in page and "src=" not in page and "<script" not in page


def test_real_verifier_and_practice_sets(pane, qtbot):
    """The real desktop_app.verify: a free code prompt 'ran'; shipped sets load."""
    verify = pytest.importorskip("desktop_app.verify")
    if not hasattr(verify, "verify_reply"):
        pytest.skip("desktop_app.verify is not there yet")
    from desktop_app.ui.practice import PracticePicker, load_sets

    turn = finished_turn(pane, "print four", "```python\nprint(2 + 2)\n```")
    turn.verify_button.click()
    qtbot.waitUntil(lambda: turn.verdict is not None, timeout=20_000)
    assert turn.verdict.verdict == "ran", turn.verdict
    assert "nothing to check against" in turn.verify_label.text()
    assert "4" in turn.verify_output.toPlainText()

    sets, error = load_sets()
    assert error is None
    picker = PracticePicker(sets)
    qtbot.addWidget(picker)
    kinds = {picker.tree.topLevelItem(i).child(j).text(1)[:1]
             for i in range(picker.tree.topLevelItemCount())
             for j in range(picker.tree.topLevelItem(i).childCount())}
    if sets:
        assert kinds & {"✓", "o"}


# ---------------------------------------------------------------- QA fixes (window polish)


def test_zoom_and_presentation_enlarge_the_panes_text(qtbot):
    """Qt carries a font change only one level into style-sheeted widgets (every pane has
    a style sheet), so zoom once grew the top bar and the prompt but not the answers."""
    from desktop_app.ui.main_window import PRESENTATION_ZOOM, MainWindow

    window = MainWindow(load_catalog(), models=[INSTRUCT_ID], remember=False)
    qtbot.addWidget(window)
    window.show()
    try:
        pane = window.panes[0]
        turn = finished_turn(pane, "What is 2+2?", "It is **4**.")
        base = window.base_point_size
        widgets = {"answer": turn.answer, "prompt bubble": turn.user_label,
                   "picker": pane.picker, "status": pane.status,
                   "copy button": turn.copy_answer_button}
        before = {name: w.font().pointSizeF() for name, w in widgets.items()}
        metrics_before = turn.metrics.font().pointSizeF()
        window.set_zoom(2.0)
        for name, widget in widgets.items():
            assert widget.font().pointSizeF() == pytest.approx(2 * base), name
            assert widget.font().pointSizeF() > before[name], name
        # smaller text keeps its ratio
        assert turn.metrics.font().pointSizeF() == pytest.approx(2 * metrics_before)
        assert pane.badge.font().pointSizeF() < pane.picker.font().pointSizeF()
        # a turn added after zooming starts at the zoomed size
        later = finished_turn(pane, "again", "Still 4.")
        assert later.answer.font().pointSizeF() == pytest.approx(2 * base)
        window.set_zoom(1.0)
        window.set_presentation(True)
        assert turn.answer.font().pointSizeF() == pytest.approx(PRESENTATION_ZOOM * base)
        window.set_presentation(False)
        assert turn.answer.font().pointSizeF() == pytest.approx(base)
    finally:
        window.shutdown()


def test_unfolded_thinking_shows_every_line_from_the_top(pane, qtbot):
    """The thinking view's height was computed from blocks not yet laid out, so an
    unfolded thought showed its last lines only, behind a scroll bar."""
    sentence = "Sunlight scatters off air molecules, and blue scatters the most. "
    turn = start_fake_turn(pane, "Why is the sky blue?", [
        PromptSent(text="q", n_tokens=1, starts_in_thinking=True, seed=1),
        *thinking_deltas(1, sentence * 6),
        Delta(thinking="", answer="Rayleigh scattering.", thinking_tokens=60,
              answer_tokens=3, elapsed_s=1.0),
        Finished(result=GenerationResult(model=INSTRUCT_ID, role="reasoning",
                                   answer="Rayleigh scattering.", thinking=sentence * 6,
                                   thinking_tokens=60, answer_tokens=3, thinking_s=0.4,
                                   finish_reason="stop")),
        RunDone(),
    ])
    pane._pump()
    assert not turn.thinking.expanded
    assert turn.thinking.header.text() == "Thought for <1 s · 60 tokens"  # not "0 s"
    turn.thinking.header.click()
    qtbot.wait(20)
    view = turn.thinking.view
    assert view.isVisible()
    assert view.document().lineCount() > 3  # wrapped over several lines ...
    assert view.verticalScrollBar().maximum() == 0  # ... and all of them are shown
    assert view.height() >= view.content_height()


def test_load_failure_offers_the_model_manager(pane, qtbot):
    from desktop_app.protocol import Failed

    turn = start_fake_turn(pane, "hello", [
        Failed(message="broken.gguf is not a GGUF model file.", kind="load",
               result=GenerationResult(model=INSTRUCT_ID, role="instruct")),
        RunDone(),
    ])
    with qtbot.waitSignal(pane.runFinished, timeout=2000):
        pane._pump()
    assert turn.error_box.isVisibleTo(pane)
    assert turn.retry_button.isVisibleTo(pane) and turn.manager_button.isVisibleTo(pane)
    assert turn.metrics.text() == ""  # no "0 tokens before the failure"
    assert pane.status.text() == "Failed"


def test_pane_footer_and_banner_for_a_model_not_downloaded(qtbot):
    catalog = load_catalog()
    from desktop_app.catalog import availability

    missing = next((e for e in catalog if e.role == "reasoning"
                    and availability(e) == "not-downloaded"), None)
    if missing is None:
        pytest.skip("every reasoning model is downloaded here")
    widget = Pane(catalog, PaneConfig(model_id=missing.id))
    qtbot.addWidget(widget)
    assert widget.status.text() == "Not downloaded"
    text = widget.banner_label.text()
    assert "not downloaded yet" in text and f"triptych models pull {missing.id}" in text
    assert text.count("not downloaded") == 1  # said once, not twice
    widget.shutdown()


def test_settings_defaults_button_and_copy_code_only_with_code(pane, qtbot):
    pane.settings_button.setChecked(True)
    assert pane.settings_box.isVisible()
    default_tokens = pane.max_tokens.value()
    pane.set_overrides(max_tokens=77, temperature=1.3, seed=5)
    assert pane.config.max_tokens == 77
    pane.defaults_button.click()
    assert (pane.config.max_tokens, pane.config.temperature, pane.config.seed) == (None, None, None)
    assert pane.max_tokens.value() == default_tokens and pane.seed.value() == -1
    prose = finished_turn(pane, "hi", "Hello there.")
    assert not prose.copy_code_button.isVisibleTo(pane)
    code = finished_turn(pane, "code", "```python\nprint(1)\n```")
    assert code.copy_code_button.isVisibleTo(pane) and code.copy_code_button.isEnabled()


def test_dark_palette_uses_readable_tints(qtbot):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui import theme
    from desktop_app.ui.pane import format_verdict_html

    previous = QApplication.palette()
    dark = QPalette(previous)
    dark.setColor(QPalette.ColorRole.Window, QColor("#1E1E1E"))
    dark.setColor(QPalette.ColorRole.Base, QColor("#161616"))
    QApplication.setPalette(dark)
    try:
        if not theme.is_dark():
            pytest.skip("the platform's colour scheme overrides the palette here")
        window_bg = QColor("#1E1E1E")
        for color in (theme.ok_color(), theme.fail_color(), theme.warn_color(), theme.muted_fg()):
            assert QColor(color).lightness() - window_bg.lightness() > 90, color
        assert theme.ok_color() in format_verdict_html(Verdict("pass"))
        assert "#3D3214" in theme.notice_style()  # the offline strip is dark too
    finally:
        QApplication.setPalette(previous)


def test_base_pane_wrapping_can_be_edited_or_turned_off(qtbot):
    catalog = load_catalog()
    base = Pane(catalog, PaneConfig(model_id=BASE_ID))
    qtbot.addWidget(base)
    base.settings_button.setChecked(True)
    assert base.wrapping.isVisibleTo(base) and base.raw_box.isVisibleTo(base)
    default = catalog.get(BASE_ID).prompt.document_template
    assert base.wrapping.toPlainText() == default
    request = base.request_for("Why?")
    assert request.document_template is None and not request.raw

    base.wrapping.setPlainText("Q: {question}\nA:")
    assert base.request_for("Why?").document_template == "Q: {question}\nA:"
    base.wrapping.setPlainText("no placeholder here")
    assert base.wrapping_hint.isVisibleTo(base)  # one clear sentence, last valid one kept
    assert base.request_for("Why?").document_template == "Q: {question}\nA:"
    base.raw_box.setChecked(True)
    assert base.request_for("Once upon a time").raw and not base.wrapping.isEnabled()
    assert PaneConfig.from_dict(base.config.to_dict()).raw  # remembered with the settings
    base.reset_settings()
    assert not base.raw_box.isChecked() and base.wrapping.toPlainText() == default

    chat = Pane(catalog, PaneConfig(model_id=INSTRUCT_ID))
    qtbot.addWidget(chat)
    chat.settings_button.setChecked(True)
    assert not chat.wrapping.isVisibleTo(chat) and not chat.raw_box.isVisibleTo(chat)
    base.shutdown()
    chat.shutdown()


# ------------------------------------------------------------------ light/dark, live


def _deferred_deletes() -> None:
    from PySide6.QtCore import QCoreApplication, QEvent

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def _switch_scheme(dark: bool, light_palette) -> None:
    """What the OS does when the user flips light/dark: the scheme (Qt 6.8+, where the
    platform honours it) and the application palette change."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    hints = QApplication.styleHints()
    if dark:
        palette = QPalette(light_palette)
        for role, color in ((QPalette.ColorRole.Window, "#1E1E1E"),
                            (QPalette.ColorRole.Base, "#161616"),
                            (QPalette.ColorRole.WindowText, "#E8E8E8"),
                            (QPalette.ColorRole.Text, "#E8E8E8"),
                            (QPalette.ColorRole.ButtonText, "#E8E8E8")):
            palette.setColor(role, QColor(color))
        if hasattr(hints, "setColorScheme"):
            hints.setColorScheme(Qt.ColorScheme.Dark)
        QApplication.setPalette(palette)
    else:
        if hasattr(hints, "unsetColorScheme"):
            hints.unsetColorScheme()
        QApplication.setPalette(light_palette)


def test_tints_follow_the_os_light_dark_switch_live(qtbot, monkeypatch, caplog):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui import theme
    from desktop_app.ui.main_window import MainWindow

    fake_verify_module(monkeypatch)
    light_palette = QApplication.palette()
    if theme.is_dark():
        pytest.skip("the desktop is dark already")
    window = MainWindow(load_catalog(), models=[INSTRUCT_ID, BASE_ID], remember=False)
    qtbot.addWidget(window)
    window.show()
    pane, other = window.panes
    answer = "Here:\n\n```python\nprint(4)\n```\n"
    turn = finished_turn(pane, "code", answer)
    turn.show_verdict(Verdict("pass", expected="4", got="4"))
    other_turn = finished_turn(other, "again", answer)
    window.set_active(0, highlight=True)  # its frame is role-coloured in light and dark alike

    def code_bg(t: TurnWidget) -> str:
        text = t.answer.toPlainText()
        block = t.answer.document().findBlock(text.index("print"))
        return block.blockFormat().background().color().name().upper()

    light = {"status": pane.status.styleSheet(), "user": turn.user_label.styleSheet(),
             "thinking": turn.thinking.view.styleSheet(), "code": code_bg(turn),
             "verdict": turn.verify_label.text()}
    assert "#5A6270" in light["status"] and "#F1F3F6" in light["user"]
    assert light["code"] == QColor("#F4F5F7").name().upper()
    assert theme.OK_COLOR in light["verdict"]
    registered = theme.registered_count()
    try:
        _switch_scheme(True, light_palette)
        if not theme.is_dark():
            pytest.skip("the platform's colour scheme overrides the palette here")
        # nothing rebuilt: the same widgets, re-tinted on the next event-loop pass
        qtbot.waitUntil(lambda: "#A0A8B8" in pane.status.styleSheet(), timeout=2000)
        assert "#2A2F3A" in turn.user_label.styleSheet()
        assert "#2A2F3A" in turn.thinking.view.styleSheet()
        assert "#A0A8B8" in turn.prompt_section.header.styleSheet()
        assert code_bg(turn) == QColor("#1E222A").name().upper()
        assert turn.answer_raw == answer and "print(4)" in turn.answer.toPlainText()
        assert "#68D391" in turn.verify_label.text()  # the verdict's lighter green
        assert "#3A4150" in other.styleSheet()  # the pane frame
        assert code_bg(other_turn) == QColor("#1E222A").name().upper()
        # Qt's own colours reach widgets under a style sheet (re-applied, even unchanged)
        text = QPalette.ColorRole.Text
        assert turn.answer.palette().color(text) == QColor("#E8E8E8")
        assert window.export_button.palette().color(QPalette.ColorRole.ButtonText) != \
            light_palette.color(QPalette.ColorRole.ButtonText)

        # a removed pane (deleted) neither breaks nor stays in the refresh
        window.remove_pane(other)
        del other, other_turn
        _deferred_deletes()
        assert theme.registered_count() < registered
        _switch_scheme(False, light_palette)
        qtbot.waitUntil(lambda: "#5A6270" in pane.status.styleSheet(), timeout=2000)
        assert turn.user_label.styleSheet() == light["user"]
        assert turn.thinking.view.styleSheet() == light["thinking"]
        assert code_bg(turn) == light["code"]
        assert turn.verify_label.text() == light["verdict"]
        assert "theme refresh failed" not in caplog.text
    finally:
        _switch_scheme(False, light_palette)
        window.shutdown()


def test_rich_text_replaced_since_is_not_brought_back(qtbot):
    from PySide6.QtWidgets import QLabel

    from desktop_app.ui import theme

    label = QLabel()
    qtbot.addWidget(label)
    theme.rich_text(label, lambda: f"<span style='color:{theme.fail_color()}'>boom</span>")
    assert theme.FAIL_COLOR in label.text() or "#FC8181" in label.text()
    theme.refresh(force=True)
    assert "boom" in label.text()
    label.setText("Downloaded.")
    theme.refresh(force=True)
    assert label.text() == "Downloaded."


# ------------------------------------------------------------------ threads and slots


def test_background_results_for_a_deleted_widget_are_dropped(qtbot):
    from PySide6.QtWidgets import QLabel

    from desktop_app.ui.runner import GuiPost

    delivered: list[str] = []
    alive, doomed = QLabel(), QLabel()
    qtbot.addWidget(alive)
    post_alive, post_doomed = GuiPost(alive), GuiPost(doomed)
    doomed.deleteLater()
    _deferred_deletes()

    def work() -> None:  # a worker thread holding no widget, only the posts
        post_doomed(lambda label, text: delivered.append("doomed:" + text), "late")
        post_alive(lambda label, text: (label.setText(text), delivered.append(text)), "ok")

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    qtbot.waitUntil(lambda: delivered == ["ok"], timeout=2000)
    assert alive.text() == "ok"


def test_a_bug_while_showing_a_reply_fails_the_turn_not_the_app(pane, qtbot, monkeypatch):
    def broken(self, result, point_size=None):
        raise ValueError("bad format")

    monkeypatch.setattr(TurnWidget, "finish", broken)
    turn = start_fake_turn(pane, "hi", [
        Delta(thinking="", answer="Hello", thinking_tokens=0, answer_tokens=1, elapsed_s=0.1),
        Finished(result=GenerationResult(model=INSTRUCT_ID, role="instruct", answer="Hello",
                                   answer_tokens=1, finish_reason="stop")),
        RunDone(),
    ])
    pane.timer.start()
    with qtbot.waitSignal(pane.runFinished, timeout=2000) as blocker:
        pane._pump()
    assert blocker.args == [pane, False]
    assert pane.run is None and not pane.timer.isActive() and pane.picker.isEnabled()
    assert turn.error_box.isVisibleTo(pane) and "bad format" in turn.error_label.text()
    assert pane.status.text() == "Failed"


def test_export_to_an_unwritable_place_says_so(qtbot, tmp_path):
    from desktop_app.ui.main_window import MainWindow

    window = MainWindow(load_catalog(), models=[INSTRUCT_ID], remember=False)
    qtbot.addWidget(window)
    try:
        missing = tmp_path / "no-such-folder" / "out.md"
        assert window._export_to(str(missing), window.export_markdown) is False
        assert "Could not save" in window.statusBar().currentMessage()
        good = tmp_path / "out.html"
        assert window._export_to(str(good), window.export_html) and good.exists()
    finally:
        window.shutdown()


def test_dialogs_are_deleted_after_use(qtbot, monkeypatch):
    from PySide6.QtWidgets import QDialog

    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.practice import PracticePicker

    fake_verify_module(monkeypatch)
    monkeypatch.setattr(PracticePicker, "exec", lambda self: 0)
    window = MainWindow(load_catalog(), models=[INSTRUCT_ID], remember=False)
    qtbot.addWidget(window)
    try:
        for _ in range(3):
            window.open_practice()
        _deferred_deletes()
        assert window.findChildren(QDialog) == []
    finally:
        window.shutdown()


def test_closing_the_model_manager_does_not_wait_for_slow_work(qtbot, monkeypatch):
    import time

    from desktop_app import download
    from desktop_app.ui.model_manager import CLOSE_WAIT_MS, ModelManagerDialog

    release = threading.Event()

    def slow_probe(timeout: float = 3.0) -> bool:  # a Hub that does not answer
        release.wait(10)
        return False

    monkeypatch.setattr(download, "is_offline", lambda: False)
    monkeypatch.setattr(download, "hub_reachable", slow_probe)
    dialog = ModelManagerDialog(load_catalog())
    qtbot.addWidget(dialog)
    started = time.monotonic()
    dialog.done(0)
    assert time.monotonic() - started < CLOSE_WAIT_MS / 1000 + 0.5
    dialog.deleteLater()
    _deferred_deletes()
    release.set()  # the probe ends now and reports to a dialog that is gone
    qtbot.wait(100)
