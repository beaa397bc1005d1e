"""Window-level UI tests on the real Qt event loop (no llama.cpp): practice problems,
model states, settings that persist, zoom, light/dark, background tasks, dialogs.
Pane tests are in test_ui_pane.py; end-to-end ones on real models in test_ui_models.py."""

from __future__ import annotations

import threading

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from desktop_app.models.catalog import load_catalog
from desktop_app.ui.turn import TurnWidget
from desktop_app.verify.checker import Verdict
from tests.fake_engine import answer_script, send_and_wait

INSTRUCT_ID = "smollm2-135m-instruct"
BASE_ID = "gemma3-270m-base"


def finished_turn(qtbot, pane, engine, prompt: str, answer: str) -> TurnWidget:
    engine.default = answer_script(answer)
    return send_and_wait(qtbot, pane, prompt)


def fake_window(qtbot, fake_models, engine, roles=("instruct",)):
    """A window whose panes run the scripted engine on the given roles' models."""
    from desktop_app.ui.main_window import MainWindow

    ids = [next(e.id for e in fake_models if e.role == role) for role in roles]
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    return window


def test_practice_picker_and_isolation_line(qtbot):
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.practice import PracticePicker, load_sets, problem_badge

    sets, error = load_sets()
    assert error is None
    problems = [p for practice_set in sets for p in practice_set.problems]
    checkable = next(p for p in problems if p.verifiable)
    open_one = next(p for p in problems if not p.verifiable)
    picker = PracticePicker(sets)
    qtbot.addWidget(picker)
    items = {picker.tree.topLevelItem(i).child(j).data(0, Qt.ItemDataRole.UserRole + 1).id:
             picker.tree.topLevelItem(i).child(j)
             for i in range(picker.tree.topLevelItemCount())
             for j in range(picker.tree.topLevelItem(i).childCount())}
    assert items[checkable.id].text(1).startswith("✓")         # verifiable
    assert items[open_one.id].text(1).startswith("open")       # not verifiable
    assert problem_badge(checkable)[1] != problem_badge(open_one)[1]
    picker.tree.setCurrentItem(items[checkable.id])
    picker._accept()
    assert picker.selected.id == checkable.id
    loading = PracticePicker()  # as the window opens it: the sets arrive in the background
    qtbot.addWidget(loading)
    qtbot.waitUntil(lambda: loading.tree.topLevelItemCount() == len(sets), timeout=5000)
    assert loading.tree.currentItem() is not None and loading.error_label.isHidden()

    window = MainWindow(load_catalog(), models=[INSTRUCT_ID], remember=False)
    qtbot.addWidget(window)
    try:
        qtbot.waitUntil(lambda: "checking" not in window.isolation_label.text(), timeout=20_000)
        assert window.isolation_label.text().startswith("Verify sandbox: ")
        # a short badge: the status bar keeps room for messages; the sentence is the tooltip
        assert len(window.isolation_label.text()) < 30
        assert len(window.isolation_label.toolTip()) > len(window.isolation_label.text())
        window.use_problem(picker.selected)
        assert window.prompt.toPlainText() == checkable.prompt
        assert checkable.title in window.problem_label.text()
        window.prompt.setPlainText("something else")
        assert window.problem is None
    finally:
        window.shutdown()


def test_sandbox_badge_is_built_from_the_protections(qtbot, fake_models, engine):
    """Issue 26: the badge reads what the sandbox reported took effect (``Protections``),
    not its sentence: the isolation in a word, ⚠ when something is not confined here, the
    sentence as the tooltip."""
    from desktop_app.ui import theme
    from desktop_app.ui.sandbox_badge import isolation_badge, isolation_name
    from desktop_app.verify import Protections, detect_protections

    window = fake_window(qtbot, fake_models, engine)
    label = window.isolation_label
    try:
        qtbot.waitUntil(lambda: "checking" not in label.text(), timeout=20_000)
        here = detect_protections()  # what this machine's sandbox run reported (cached)
        assert label.text().startswith(f"Verify sandbox: {isolation_name(here)}")
        assert label.toolTip() == f"Verify sandbox: {here.summary()}"

        fewer = Protections(reported=True, memory_mb=256, nproc=16)  # limits, no isolation
        window._show_isolation(fewer)
        assert label.text() == "Verify sandbox: process only⚠" and len(label.text()) < 30
        assert "NOT active on this machine" in label.toolTip()
        assert "network isolation" in label.toolTip()
        assert theme.warn_color() in label.styleSheet()

        landlock = Protections(reported=True, memory_mb=256, seccomp_nofork=True,
                               landlock_fs=True, landlock_net=True)
        assert isolation_badge(landlock).text.startswith("Verify sandbox: Landlock")
        confined = Protections(reported=True, memory_mb=256, seccomp_nofork=True,
                               seccomp_nosocket=True, namespaces=["mount", "net", "pid"],
                               readonly_view=True, landlock_fs=True)
        window._show_isolation(confined)
        assert label.text() == "Verify sandbox: namespaces"
        assert "NOT active" not in label.toolTip()
        assert theme.muted_fg() in label.styleSheet()
        assert isolation_badge(Protections()).text == "Verify sandbox: process only⚠"
        assert "did not report" in isolation_badge(Protections()).tooltip  # nothing confirmed

        window._show_isolation(None)  # no sandbox could run at all
        assert label.text() == "Verify sandbox: unavailable"
        assert label.toolTip() == "Verify sandbox: not available in this build"
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
    first.panes[0].settings_box.system_prompt.setText("Be brief.")
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
        assert second.panes[0].settings_box.max_tokens.value() == 77
        assert second.thinking_toggle.isChecked()
        assert second.zoom == pytest.approx(1.1)
        assert second.prompt.toPlainText() == "remember me"
    finally:
        second.shutdown()


# ---------------------------------------------------------------- QA fixes (window polish)


def test_zoom_and_presentation_enlarge_the_panes_text(qtbot, fake_models, engine):
    """Qt carries a font change only one level into style-sheeted widgets (every pane has
    a style sheet), so zoom once grew the top bar and the prompt but not the answers."""
    from desktop_app.ui.main_window import PRESENTATION_ZOOM

    window = fake_window(qtbot, fake_models, engine)
    window.show()
    try:
        pane = window.panes[0]
        turn = finished_turn(qtbot, pane, engine, "What is 2+2?", "It is **4**.")
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
        later = finished_turn(qtbot, pane, engine, "again", "Still 4.")
        assert later.answer.font().pointSizeF() == pytest.approx(2 * base)
        window.set_zoom(1.0)
        window.set_presentation(True)
        assert turn.answer.font().pointSizeF() == pytest.approx(PRESENTATION_ZOOM * base)
        window.set_presentation(False)
        assert turn.answer.font().pointSizeF() == pytest.approx(base)
    finally:
        window.shutdown()


def test_dark_palette_uses_readable_tints(qtbot):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui import theme
    from desktop_app.ui.turn import format_verdict_html

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


def test_tints_follow_the_os_light_dark_switch_live(qtbot, fake_models, engine, caplog):
    from PySide6.QtGui import QColor, QPalette
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui import theme

    light_palette = QApplication.palette()
    if theme.is_dark():
        pytest.skip("the desktop is dark already")
    window = fake_window(qtbot, fake_models, engine, roles=("instruct", "reasoning"))
    window.show()
    pane, other = window.panes
    answer = "Here:\n\n```python\nprint(4)\n```\n"
    turn = finished_turn(qtbot, pane, engine, "code", answer)
    turn.data.verdict = Verdict("pass", expected="4", got="4")
    turn.show_verdict()
    other_turn = finished_turn(qtbot, other, engine, "again", answer)
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
        assert "#B794F4" in turn.thinking.header.styleSheet()  # the fold header, readable
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

    from desktop_app.ui.tasks import run_task, wait_for_tasks

    delivered: list[str] = []
    alive, doomed = QLabel(), QLabel()
    qtbot.addWidget(alive)
    release = threading.Event()

    def work(task):  # a worker thread holding no widget
        task.report("halfway")
        release.wait(5)
        return "ok"

    late = run_task(doomed, work, on_success=lambda text: delivered.append("doomed:" + text),
                    on_progress=lambda text: delivered.append("doomed:" + text))
    fine = run_task(alive, work, on_success=lambda text: (alive.setText(text),
                                                          delivered.append(text)),
                    on_progress=lambda text: delivered.append("progress:" + text))
    qtbot.waitUntil(lambda: "progress:halfway" in delivered, timeout=2000)
    doomed.deleteLater()
    _deferred_deletes()
    release.set()
    qtbot.waitUntil(lambda: "ok" in delivered, timeout=2000)
    assert wait_for_tasks([late, fine], 2.0)
    qtbot.wait(50)  # the doomed task's result has been dispatched by now, and dropped
    assert [d for d in delivered if d.startswith("doomed:") and d != "doomed:halfway"] == []
    assert alive.text() == "ok"

    failures: list[BaseException] = []
    failing = run_task(alive, lambda task: 1 / 0, on_failure=failures.append)
    qtbot.waitUntil(lambda: bool(failures), timeout=2000)
    assert isinstance(failures[0], ZeroDivisionError) and failing.wait(1.0)


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

    from desktop_app.models import hub
    from desktop_app.ui.model_manager import CLOSE_WAIT_MS, ModelManagerDialog

    release = threading.Event()

    def slow_probe(timeout: float = 3.0) -> bool:  # a Hub that does not answer
        release.wait(10)
        return False

    monkeypatch.setattr(hub, "is_offline", lambda: False)
    monkeypatch.setattr(hub, "hub_reachable", slow_probe)
    dialog = ModelManagerDialog(load_catalog())
    qtbot.addWidget(dialog)
    started = time.monotonic()
    dialog.done(0)
    assert time.monotonic() - started < CLOSE_WAIT_MS / 1000 + 0.5
    dialog.deleteLater()
    _deferred_deletes()
    release.set()  # the probe ends now and reports to a dialog that is gone
    qtbot.wait(100)


# ------------------------------------------------------------------ a round, on the fake engine


def test_a_round_in_three_panes_with_one_crash(qtbot, fake_models, engine, tmp_path):
    from desktop_app.engine.protocol import PromptSent
    from tests.fake_engine import WAIT_FOR_STOP

    window = fake_window(qtbot, fake_models, engine, roles=("base", "instruct", "reasoning"))
    window.show()
    base, instruct, reasoning = window.panes
    engine.scripts[base.config.model_id] = answer_script("Paris.")
    engine.scripts[reasoning.config.model_id] = answer_script(
        "Paris.", thinking="The capital of France is Paris.", thinking_s=2.0)
    engine.scripts[instruct.config.model_id] = [
        PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=1), WAIT_FOR_STOP]
    try:
        window.prompt.setPlainText("What is the capital of France?")
        with qtbot.waitSignal(window.allFinished, timeout=10_000) as round_over:
            assert window.send_all() == 3
            qtbot.waitUntil(lambda: base.turns[-1].done and reasoning.turns[-1].done,
                            timeout=5000)
            assert instruct.running  # still waiting on its model
            engine.workers[1].kill()  # its process dies
        assert round_over.args == [False]
        assert len(window.failures) == 1 and instruct.config.model_id in window.failures[0]
        assert instruct.turns[-1].error_box.isVisibleTo(instruct)
        assert reasoning.turns[-1].thinking.header.text() == "Thought for 2 s · 8 tokens"
        markdown = window.export_markdown(tmp_path / "round.md").read_text()
        assert markdown.count("**Answer:**\n\nParis.") == 2
        assert "The capital of France is Paris." in markdown
        assert "killed" in markdown  # the failed pane says why
    finally:
        assert window.shutdown()


def _catalog_with_nothing_ready():
    """The bundled catalog minus every model that could run here (the starters): what a
    first run without the starter extra sees."""
    from desktop_app.models.catalog import Availability, Catalog, availability

    entries = {e.id: e for e in load_catalog() if availability(e) != Availability.READY}
    assert len(entries) >= 3
    return Catalog(entries=entries)


class ModalWatch:
    """Records (and closes) every model manager that opens modally while it runs: the
    dialog runs its own event loop, so a test cannot wait for it from outside."""

    def __init__(self):
        from PySide6.QtCore import QTimer

        self.seen: list[tuple[str, bool]] = []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._check)
        self.timer.start()

    def _check(self) -> None:
        from PySide6.QtWidgets import QApplication

        from desktop_app.ui.model_manager import ModelManagerDialog

        dialog = QApplication.activeModalWidget()
        if isinstance(dialog, ModelManagerDialog):
            self.seen.append((dialog.guidance.text(), dialog.guidance.isVisible()))
            dialog.reject()

    def stop(self) -> None:
        self.timer.stop()


def test_first_run_with_no_model_ready_opens_the_model_manager_once(qtbot):
    from desktop_app.ui.main_window import FIRST_RUN_GUIDANCE, MainWindow

    catalog = _catalog_with_nothing_ready()
    watch = ModalWatch()
    window = MainWindow(catalog)  # remember=True: a real start
    qtbot.addWidget(window)
    try:
        assert watch.seen == []  # not before the window is shown
        window.show()
        qtbot.waitUntil(lambda: bool(watch.seen), timeout=5000)
        assert watch.seen == [(FIRST_RUN_GUIDANCE, True)]
        window.catalog = catalog  # still nothing ready (closing it reloaded the catalog)
        window.hide()
        window.show()
        qtbot.wait(300)
        assert len(watch.seen) == 1  # once
        window.open_model_manager()  # from the button or menu: no first-run sentence
        assert watch.seen[1] == ("", False)
    finally:
        watch.stop()
        window.shutdown()


def test_no_first_run_guide_with_a_model_ready_or_without_remember(qtbot, fake_models):
    from desktop_app.ui.main_window import MainWindow

    watch = ModalWatch()
    ready = MainWindow(fake_models, first_run_guide=True)  # everything is ready
    quiet = MainWindow(_catalog_with_nothing_ready(), remember=False)  # snapshots, tests
    try:
        for window in (ready, quiet):
            qtbot.addWidget(window)
            window.show()
        qtbot.wait(300)
        assert watch.seen == []
    finally:
        watch.stop()
        ready.shutdown()
        quiet.shutdown()
