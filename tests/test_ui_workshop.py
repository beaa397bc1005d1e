"""The window as a workshop uses it (issue 15), on the scripted engine and a real Qt event
loop: projector sizes, the model's exact text, honest thinking states, visible feedback,
export checked in a real browser engine."""

from __future__ import annotations

import shutil
import subprocess
import threading

import pytest

pytest.importorskip("pytestqt")

from desktop_app.engine.protocol import (
    Delta,
    Finished,
    FinishReason,
    GenerationResult,
    PromptSent,
)
from desktop_app.ui import export
from desktop_app.ui.main_window import MainWindow
from tests.fake_engine import answer_script


def ids_by_role(catalog) -> dict[str, str]:
    return {entry.role: entry.id for entry in catalog}


def three_panes(qtbot, catalog, engine, *, presentation: bool = False,
                size: tuple[int, int] = (1600, 900)) -> MainWindow:
    ids = ids_by_role(catalog)
    window = MainWindow(catalog, models=[ids["base"], ids["instruct"], ids["reasoning"]],
                        remember=False, presentation=presentation, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    return window


def run_round(qtbot, window: MainWindow, prompt: str = "What is half of 40?") -> None:
    window.prompt.setPlainText(prompt)
    with qtbot.waitSignal(window.allFinished, timeout=10_000):
        assert window.send_all() == len(window.panes)


def cut_off_thinking(tokens: int = 5) -> list:
    """A reasoning reply that the token limit ends inside its thinking."""
    return [PromptSent(text="<think>", n_tokens=3, starts_in_thinking=True, seed=42),
            *[Delta(thinking="hmm ", answer="", thinking_tokens=i + 1, answer_tokens=0,
                    elapsed_s=0.01 * i) for i in range(tokens)],
            Finished(result=GenerationResult(
                model="", role="", thinking="hmm " * tokens, thinking_tokens=tokens,
                thinking_s=None, thinking_unterminated=True, seed=42,
                finish_reason=FinishReason.LENGTH))]


def workshop_scripts(engine, catalog) -> None:
    ids = ids_by_role(catalog)
    engine.scripts[ids["base"]] = answer_script("40\nAnswer: 20")
    engine.scripts[ids["instruct"]] = answer_script(
        "It is <em>20</em>.\nSecond line <script>x()</script> <img src=x>\n\n"
        "```python\nprint(20)\nprint(2)\n```\n\n[click](javascript:alert(1))\n\n"
        "# Not a heading of the export\n\n</details>\n")
    engine.scripts[ids["reasoning"]] = cut_off_thinking()


def visible_right_edge(widget) -> int:
    return widget.mapTo(widget.window(), widget.rect().topRight()).x()


@pytest.mark.parametrize("size", [(1024, 768), (1280, 720)])
def test_three_panes_fit_a_projector_in_presentation_mode(qtbot, fake_models, engine, size):
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine, presentation=True, size=size)
    try:
        run_round(qtbot, window)
        for pane in window.panes:
            pane.settings_button.setChecked(True)
        qtbot.wait(50)  # one layout pass
        for pane in window.panes:
            right = visible_right_edge(pane.scroll_area.viewport())
            turn = pane.turns[-1]
            assert pane.badge.width() >= pane.badge.sizeHint().width()  # "REASONING" whole
            name = pane.picker.currentText()
            assert pane.picker.width() >= pane.picker.fontMetrics().horizontalAdvance(name)
            assert pane.picker.toolTip() == name
            for button in (turn.copy_answer_button, turn.verify_button, turn.continue_button):
                if button.isVisible():
                    assert visible_right_edge(button) <= right, button.text()
                    assert button.width() >= button.sizeHint().width()
            status = pane.status  # "Token limit reached" whole, not cut to its first letter
            assert status.width() >= status.fontMetrics().horizontalAdvance(status.text()), \
                status.text()
            for button in (pane.rollouts_button, pane.stop_button, pane.clear_button):
                assert button.width() >= button.sizeHint().width(), button.text()
            form = pane.settings_box
            for label in form.findChildren(type(pane.status)):
                if not label.isVisible() or label.buddy() is None:
                    continue
                if label.wordWrap():  # "Repeat penalty" on two lines: whole words, not cut
                    assert label.width() >= label.minimumSizeHint().width(), label.text()
                    assert label.height() >= label.heightForWidth(label.width()), label.text()
                else:
                    assert label.width() >= label.sizeHint().width(), label.text()
    finally:
        window.shutdown()


def test_base_output_is_the_exact_text_and_chat_keeps_breaks_and_raw_html(
        qtbot, fake_models, engine):
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine)
    try:
        run_round(qtbot, window)
        base, instruct, _ = (pane.turns[-1] for pane in window.panes)
        assert base.answer.toPlainText() == "40\nAnswer: 20"
        assert base.answer.font().fixedPitch() or base.answer.font().styleHint() != 0
        shown = instruct.answer.toPlainText()
        assert "It is <em>20</em>.\nSecond line <script>x()</script> <img src=x>" in shown
        assert "print(20)\nprint(2)" in shown
        assert "javascript" in shown and not instruct.answer.document().toHtml().count(
            "href=\"javascript")
    finally:
        window.shutdown()


def test_thinking_cut_off_by_the_limit_says_so_and_verify_hears_it(qtbot, fake_models, engine):
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine)
    try:
        window.panes[2].set_overrides(max_tokens=256)  # below the context: Continue can help
        run_round(qtbot, window)
        pane = window.panes[2]
        turn = pane.turns[-1]
        assert turn.data.still_thinking
        header = turn.thinking.title
        assert header == "Still thinking when the token limit was reached · 5 tokens"
        assert turn.continue_button.isVisible()
        pane.verify(turn)
        qtbot.waitUntil(lambda: turn.verify_label.isVisible(), timeout=20_000)
        assert "still thinking" in (turn.data.verdict.reason or "").lower()
        markdown = export.to_markdown(window.export_data())
        assert "Still thinking when the token limit was reached · 5 tokens" in markdown
    finally:
        window.shutdown()


def test_continue_reruns_with_twice_the_limit_and_the_same_seed(qtbot, fake_models, engine):
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine)
    try:
        window.panes[2].set_overrides(max_tokens=256)
        run_round(qtbot, window)
        pane = window.panes[2]
        limit = engine.workers[-1].requests[-1].sampling.max_tokens
        assert limit == 256
        engine.scripts[pane.config.model_id] = answer_script("20", thinking="Half of 40.")
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            pane.turns[-1].continue_button.click()
        request = engine.workers[-1].requests[-1]
        assert request.sampling.max_tokens == 2 * limit and request.sampling.seed == 42
        assert len(pane.turns) == 1 and pane.turns[-1].data.answer == "20"
        assert not pane.turns[-1].continue_button.isVisible()
    finally:
        window.shutdown()


def test_reasoning_models_default_to_a_limit_thinking_fits_in(fake_models):
    """A limit below the context cuts a reasoning model's thinking off (issue 15)."""
    from desktop_app.models.catalog import load_catalog

    for entry in load_catalog():
        if entry.role == "reasoning":
            assert entry.sampling["max_tokens"] >= min(8192, entry.context_length), entry.id


def test_clear_while_generating_stops_and_clears(qtbot, fake_models, engine):
    window = three_panes(qtbot, fake_models, engine)
    gate = threading.Event()
    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="Once", thinking_tokens=0, answer_tokens=1,
                            elapsed_s=0.01), gate]
    try:
        pane = window.panes[1]
        assert pane.send("Tell a story")
        qtbot.waitUntil(lambda: bool(pane.session.turns and pane.session.turns[-1].answer),
                        timeout=5000)
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            pane.clear()
            assert pane.turns == [] and pane.session.turns == []
        assert not pane.running and pane.turns == [] and pane.status.text() == "Ready"
    finally:
        gate.set()
        window.shutdown()


def test_footer_clock_ticks_between_slow_tokens(qtbot, fake_models, engine):
    window = three_panes(qtbot, fake_models, engine)
    gate = threading.Event()
    engine.default = [PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1),
                      Delta(thinking="", answer="A", thinking_tokens=0, answer_tokens=1,
                            elapsed_s=0.01), gate]
    try:
        pane = window.panes[1]
        assert pane.send("slow")
        qtbot.waitUntil(lambda: "<1 s" in pane.status.text(), timeout=5000)
        # no token arrives; the window's clock moves on (bounded wait, no speed assertion)
        qtbot.waitUntil(lambda: "· 1 s" in pane.status.text(), timeout=10_000)
        assert pane.session.turns[-1].tokens == 1
    finally:
        gate.set()
        qtbot.waitUntil(lambda: not window.busy, timeout=10_000)
        window.shutdown()


def test_remove_pane_can_be_undone_and_add_pane_uses_the_active_model(
        qtbot, fake_models, engine):
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine)
    try:
        run_round(qtbot, window)
        instruct = window.panes[1]
        model_id, answer = instruct.config.model_id, instruct.turns[-1].data.answer
        window.remove_pane(instruct)
        assert len(window.panes) == 2 and window.offer_button.isVisible()
        assert window.offer_button.text() == "Undo"
        window.offer_button.click()
        restored = window.panes[1]
        assert restored.config.model_id == model_id and len(window.panes) == 3
        assert restored.turns[-1].data.answer == answer
        assert "print(20)" in restored.turns[-1].answer.toPlainText()
        assert restored.session.conversation.history()  # a follow-up sees it again

        window.set_active(2, highlight=True)
        assert "3px solid" in window.panes[2].styleSheet()  # the active pane is marked
        added = window.add_pane()
        assert added is not None and added.config.model_id == window.panes[2].config.model_id
    finally:
        window.shutdown()


def test_export_says_saved_and_offers_the_folder(qtbot, fake_models, engine, tmp_path):
    window = three_panes(qtbot, fake_models, engine)
    try:
        run_round(qtbot, window)
        path = tmp_path / "round.md"
        assert window._export_to(str(path), window.export_markdown)
        assert window.statusBar().currentMessage() == f"Saved {path}"
        assert window.offer_button.isVisible() and window.offer_button.text() == "Open folder"
    finally:
        window.shutdown()


def test_a_missing_model_pane_exports_its_reason(qtbot, fake_models, engine):
    ids = ids_by_role(fake_models)
    window = MainWindow(fake_models, models=[ids["instruct"], "no-such-model"], remember=False,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    try:
        data = window.export_data()
        assert "not in the catalog" in data[1]["missing"]
        assert "Not run: The model 'no-such-model' is not in the catalog" in \
            export.to_markdown(data).replace("\\", "")
        assert "not in the catalog" in export.to_html(data)
    finally:
        window.shutdown()


def test_model_text_cannot_break_the_markdown_export(qtbot, fake_models, engine):
    workshop_scripts(engine, fake_models)
    ids = ids_by_role(fake_models)
    engine.scripts[ids["reasoning"]] = answer_script(
        "20", thinking="# My plan\n</details>\n<script>x()</script>")
    window = three_panes(qtbot, fake_models, engine)
    try:
        run_round(qtbot, window)
        markdown = export.to_markdown(window.export_data())
        from markdown_it import MarkdownIt

        tokens = MarkdownIt("commonmark").parse(markdown)
        headings = [tokens[i + 1].content for i, t in enumerate(tokens)
                    if t.type == "heading_open" and t.tag in ("h1", "h2")]
        assert headings == ["Triptych comparison", "1. Gemma 3 270M (base)",
                            "2. SmolLM2 135M Instruct",  # the role once
                            "3. Qwen3 0.6B (thinking) · reasoning"]
        raw_html = [t.content.strip() for t in tokens if t.type == "html_block"]
        # only the export's own folds: no model text opened or closed one
        assert all(h.startswith("<details><summary>") or h == "</details>" for h in raw_html)
        assert raw_html.count("</details>") == sum(h.startswith("<details>") for h in raw_html)
        assert "(base) (base)" not in markdown
    finally:
        window.shutdown()


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(chromium() is None, reason="no Chromium on this machine (Debian: apt-get "
                    "install chromium); the handout is then checked only as markup")
def test_html_handout_in_a_real_browser(qtbot, fake_models, engine, tmp_path):
    """Chromium parses the handout: one <pre> per code block, no live javascript: link,
    no script, the model's raw HTML as text, verdicts with their symbol."""
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine)
    try:
        run_round(qtbot, window)
        instruct = window.panes[1].turns[-1]
        from desktop_app.verify import Verdict, VerdictState

        instruct.data.verdict = Verdict(VerdictState.PASS, expected="20", got="20")
        path = window.export_html(tmp_path / "handout.html")
    finally:
        window.shutdown()
    result = subprocess.run(
        [str(chromium()), "--headless", "--no-sandbox", "--disable-gpu",
         "--no-first-run", "--disable-extensions", "--disable-background-networking",
         f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<script" not in dom.lower()
    assert 'href="javascript' not in dom.lower()
    assert "&lt;script&gt;x()&lt;/script&gt;" in dom and "&lt;em&gt;20&lt;/em&gt;" in dom
    assert dom.count("<pre><code") == 1 and "print(20)\nprint(2)</code></pre>" in dom
    assert "<pre class=\"continuation\">40\nAnswer: 20</pre>" in dom
    assert "✓ Passed · expected 20 · got 20" in dom
    assert "Still thinking when the token limit was reached · 5 tokens" in dom


def test_marking_the_active_pane_keeps_the_zoomed_text(qtbot, fake_models, engine):
    """Setting the active pane's frame re-applies a style sheet; text inside it used to
    shrink back to the system size (Copy answer / Verify at 9 pt in presentation mode)."""
    workshop_scripts(engine, fake_models)
    window = three_panes(qtbot, fake_models, engine, presentation=True, size=(1024, 768))
    try:
        run_round(qtbot, window)
        button = window.panes[0].turns[-1].copy_answer_button
        zoomed = button.font().pointSizeF()
        assert zoomed > window.base_point_size
        window.set_active(1, highlight=True)
        window.set_active(0, highlight=True)
        qtbot.wait(50)  # the re-polish happens on the event loop
        assert button.font().pointSizeF() == zoomed
    finally:
        window.shutdown()


def test_snapshot_size_is_checked_in_one_sentence(capsys):
    from desktop_app.cli.main import main
    from desktop_app.ui.app import parse_size

    assert parse_size("1024x768") == (1024, 768) and parse_size("1280×720") == (1280, 720)
    assert main(["--prompt", "x", "--screenshot", "never.png", "--size", "big"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["triptych: --size must be WIDTHxHEIGHT, like 1024x768, not 'big'."]


def test_a_screenshot_that_cannot_be_saved_after_the_run_is_one_sentence(
        fake_models, engine, tmp_path, monkeypatch, capsys):
    """Issue 27: the panes finish, then saving fails (the folder went away, a file took
    its place): one sentence naming the file, exit status 1, at once; not a traceback,
    nor a wait of the whole timeout blaming the panes."""
    from desktop_app.models import catalog as catalog_module
    from desktop_app.session import pane as session_pane
    from desktop_app.ui.app import run_app

    monkeypatch.setattr(catalog_module, "load_catalog", lambda *args, **kwargs: fake_models)
    monkeypatch.setattr(session_pane, "default_worker_factory", engine.worker)
    engine.default = answer_script("Fifty-six.")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the screenshot's folder should be")
    shot = blocker / "shot.png"
    instruct = ids_by_role(fake_models)["instruct"]
    code = run_app(models=[instruct], prompt="What is 7 * 8?", screenshot=shot, timeout_s=60)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert err[0].startswith(f"triptych: could not save the screenshot to {shot}: ")
    assert "timed out" not in err[0] and "Traceback" not in err[0]
    assert engine.workers and engine.workers[0].requests  # the pane did run


@pytest.mark.slow
def test_presentation_snapshot_at_a_projector_size(starter_models, tmp_path):
    """Snapshot mode with a real model, at 1024x768 in presentation mode."""
    import os
    import sys

    from PySide6.QtGui import QImage

    shot = tmp_path / "projector.png"
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    done = subprocess.run([sys.executable, "-m", "desktop_app", "--prompt", "Say hi.",
                           "--models", "smollm2-135m-instruct", "--max-tokens", "4",
                           "--presentation", "--size", "1024x768", "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1024, 768)
