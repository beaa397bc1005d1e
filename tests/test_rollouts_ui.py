"""The Rollouts window (issue 12) on the scripted engine and a real Qt event loop: chips
fill in as rollouts are checked, a click shows a rollout with its thinking, Stop ends them
all, the pass@k chart exports, and the window is looked at at 1024×768."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from desktop_app.engine.protocol import (
    Delta,
    Failed,
    FailureKind,
    GenerationRequest,
    PromptSent,
)
from desktop_app.rollouts.run import rollout_seeds
from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.ui.pane import Pane
from desktop_app.ui.rollouts import CHIP_LABELS, Chip, RolloutsView, chip_legend
from desktop_app.ui.rollouts_chart import AccuracyChart, Bar
from desktop_app.ui.tasks import wait_for_tasks
from desktop_app.verify import Problem
from tests.fake_engine import WAIT_FOR_STOP, answer_script, send_and_wait

PROBLEM = Problem(id="math-mul-7-8", title="7 × 8", prompt="What is 7 * 8?", kind="math",
                  answer="56")


def by_seed(request: GenerationRequest) -> list[object]:
    right = (request.sampling.seed or 0) % 3 != 0
    return answer_script("The answer is 56." if right else "The answer is 54.",
                         thinking="seven eights… " * 3, delay=0.002)


@pytest.fixture
def pane(qtbot, fake_models, engine):
    reasoning = next(e.id for e in fake_models if e.role == "reasoning")
    widget = Pane(fake_models, PaneConfig(model_id=reasoning), worker_factory=engine.worker)
    qtbot.addWidget(widget)
    widget.resize(520, 700)
    widget.show()
    yield widget
    close_in_background(widget.shutdown())
    assert wait_for_tasks(timeout=10)
    assert wait_for_closing()


def test_rollouts_from_a_pane_fill_the_grid(qtbot, pane, engine, tmp_path: Path) -> None:
    engine.default = answer_script("The answer is 56.", thinking="seven eights")
    send_and_wait(qtbot, pane, PROBLEM.prompt, PROBLEM)
    engine.default = by_seed
    view = pane.open_rollouts()
    assert isinstance(view, RolloutsView)
    assert view.prompt_edit.toPlainText() == PROBLEM.prompt and view.key_edit.text() == "56"
    view.count.setValue(12)
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
        assert view.chip_text(0) == CHIP_LABELS[Chip.RUNNING][0]  # the grid shows at once
    run = finished.args[0]
    assert run.n == 12 and run.error is None
    expected = [(r.seed % 3 != 0) for r in run.rollouts]
    assert [r.correct for r in run.rollouts] == expected
    assert [view.chip_text(i) for i in range(12)] == ["✓" if ok else "✗" for ok in expected]
    figures = view.figures_text()
    assert f"{sum(expected)} correct of 12 checked" in figures and "pass@12" in figures
    assert "Majority vote: 56" in figures or "Majority vote: 54" in figures
    assert " (loading the model not counted)" in figures and "without loading" not in figures
    # The pane's own worker was not used: it stayed free for the pane.
    assert len(engine.workers) == 2
    # Click a chip: that rollout, thinking included.
    view.chip_buttons[1].click()
    shown = view.detail.toPlainText()
    assert "Rollout 2 of 12" in shown and "seven eights" in shown and "The answer is" in shown
    view.resize(1024, 768)
    qtbot.wait(50)
    assert view.grab().save(str(tmp_path / "rollouts-1024x768.png"))
    if (shots := os.environ.get("ROLLOUTS_SCREENSHOT_DIR")):  # to look at it
        view.grab().save(str(Path(shots) / "rollouts-1024x768.png"))
        view.chart.export(Path(shots) / "pass-at-k.svg")
    for name in ("chart.png", "chart.svg"):
        path = view.chart.export(tmp_path / name)
        assert path.stat().st_size > 500
    assert "<svg" in (tmp_path / "chart.svg").read_text(encoding="utf-8")


def test_stop_ends_every_rollout_and_the_key_is_required(qtbot, pane, engine) -> None:
    engine.default = [*answer_script("The answer is")[:-1], WAIT_FOR_STOP]
    view = pane.open_rollouts()
    assert view is not None
    assert not view.run()  # no prompt yet
    view.prompt_edit.setPlainText("What is 7 * 8?")
    view.key_edit.setText("56")
    view.count.setValue(20)
    with qtbot.waitSignal(view.runFinished, timeout=10_000) as finished:
        assert view.run()
        qtbot.wait(100)
        pane.stop()  # the pane's Stop ends its rollouts
    run = finished.args[0]
    assert run.stopped and all(r.result.finish_reason == "cancelled" for r in run.rollouts)
    assert view.run_button.isEnabled() and not view.stop_button.isEnabled()
    assert "stopped" in view.figures_text()


def test_results_reach_only_a_live_window(qtbot, pane, engine) -> None:
    gate = threading.Event()
    engine.default = [gate, *answer_script("The answer is 56.")]
    view = pane.open_rollouts()
    assert view is not None
    view.prompt_edit.setPlainText("What is 7 * 8?")
    view.key_edit.setText("56")
    assert view.run()
    task = view.task
    view.close()  # Stop, the run detached, its model closed in the background
    gate.set()
    assert task is not None and task.wait(10)
    qtbot.wait(50)
    assert view.last_run is None


def judge_prefers(text: str):
    """A judge whose P("yes") is high for answers containing ``text``."""
    import math

    from desktop_app.engine.protocol import Delta, TokenLogprob

    def script(request: GenerationRequest) -> list[object]:
        p = 0.9 if text in request.prompt.split("Proposed answer:")[-1] else 0.2
        items = answer_script("Yes")
        delta = next(item for item in items if isinstance(item, Delta))
        items[items.index(delta)] = Delta(
            thinking="", answer="Yes", thinking_tokens=0, answer_tokens=1, elapsed_s=0.01,
            logprob=TokenLogprob("Yes", math.log(p), (("Yes", math.log(p)),
                                                      ("No", math.log(1 - p)))))
        return items
    return script


def test_goodhart_judge_and_longest_against_the_key(qtbot, pane, engine, fake_models) -> None:
    instruct = next(e.id for e in fake_models if e.role == "instruct")
    engine.scripts[instruct] = judge_prefers("54")  # a judge fooled by the wrong answer
    engine.default = lambda request: answer_script(
        "The answer is 56." if (request.sampling.seed or 0) % 2 else
        "After a long and careful look, the answer is 54.")
    view = pane.open_rollouts()
    assert view is not None and [j.id for j in view.judges] == [instruct]
    view.prompt_edit.setPlainText("What is 7 * 8?")
    view.key_edit.setText("56")
    view.count.setValue(6)
    view.seed = 1
    assert {seed % 2 for seed in rollout_seeds(1, 6)} == {0, 1}  # both kinds of answer
    with qtbot.waitSignal(view.runFinished, timeout=30_000):
        assert view.run()
    text = view.goodhart.text()
    assert "by the answer key: rollout" in text and "by the longest answer: rollout" in text
    assert "Goodhart: the longest answer picked a wrong answer" in text
    assert view.judge_button.isEnabled()
    assert view.judge()
    qtbot.waitUntil(lambda: view.judge_task is None, timeout=20_000)
    assert view.scores is not None and len(view.scores) == 6
    assert "Goodhart: the judge's P(\"yes\") picked a wrong answer" in view.goodhart.text()


def test_no_key_shows_the_judges_ranking(qtbot, pane, engine, fake_models) -> None:
    instruct = next(e.id for e in fake_models if e.role == "instruct")
    engine.scripts[instruct] = judge_prefers("pouch")
    engine.default = lambda request: answer_script(
        "Why did the pelican get the bill? Its pouch." if (request.sampling.seed or 0) % 2
        else "Pelicans are birds.")
    joke = Problem(id="pelican-joke", title="joke", prompt="Write a funny joke about pelicans.",
                   kind="open", verifiable=False)
    send_and_wait(qtbot, pane, joke.prompt, joke)
    view = pane.open_rollouts()
    assert view is not None and view.answer_key() is None
    view.count.setValue(4)
    view.seed = 1
    with qtbot.waitSignal(view.runFinished, timeout=30_000):
        assert view.run()
    assert "No key exists" in view.figures_text() and "pass@" not in view.figures_text()
    assert view.judge()
    qtbot.waitUntil(lambda: view.judge_task is None, timeout=20_000)
    text = view.goodhart.text()
    assert text.startswith("No key exists") and "Judge's ranking: " in text
    first = int(text.split("Judge's ranking: ")[1].split(" ")[0]) - 1
    assert "pouch" in view.rollouts[first].answer


def test_accuracy_chart_exports(qtbot, tmp_path: Path) -> None:
    chart = AccuracyChart()
    qtbot.addWidget(chart)
    chart.set_bars([Bar("smollm2 · 7×8", 0.5, 0.2, 0.8), Bar("qwen3 · 7×8", 1.0, 0.68, 1.0)])
    chart.resize(400, 260)
    assert chart.export(tmp_path / "accuracy.png").stat().st_size > 500
    assert chart.export(tmp_path / "accuracy.svg").stat().st_size > 500


def test_set_run_window_from_the_main_window(qtbot, fake_models, engine, tmp_path: Path) -> None:
    import json

    from desktop_app.ui.main_window import MainWindow
    from desktop_app.verify import PracticeSet

    ids = [e.id for e in fake_models if e.role in ("instruct", "reasoning")]
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    engine.default = by_seed
    view = window.open_set_runs()
    try:
        open_problem = Problem(id="joke", title="joke", prompt="A pelican joke.", kind="open",
                               verifiable=False)
        view.use_sets([PracticeSet(name="tiny", problems=[PROBLEM, open_problem])])
        view.count.setValue(3)
        with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
            assert view.run()
        outcome = finished.args[0]
        assert [row.run.model for row in outcome.rows] == ids and outcome.skipped == ["joke"]
        assert view.table.rowCount() == 2 and len(view.chart.bars) == 2
        assert view.table.item(0, 1).text() == PROBLEM.id
        assert "Goodhart" in view.status.text()
        json_path, csv_path = view.save(tmp_path / "tiny")
        assert json.loads(json_path.read_text(encoding="utf-8"))["set"] == "tiny"
        assert csv_path.read_text(encoding="utf-8").startswith("model,problem,")
        view.resize(1024, 768)
        if (shots := os.environ.get("ROLLOUTS_SCREENSHOT_DIR")):
            view.grab().save(str(Path(shots) / "set-run-1024x768.png"))
        assert all(not worker.alive for worker in engine.workers[-2:])  # its models closed
    finally:
        view.close()
        window.shutdown()
    assert wait_for_tasks(timeout=10)


def test_thinking_budget_sweep_in_the_window(qtbot, pane, engine, tmp_path: Path) -> None:
    def thinks_within_budget(request: GenerationRequest) -> list[object]:
        # a stand-in for the engine's budget forcing: more budget, more thinking, right more often
        budget = request.thinking_budget
        thoughts = 8 if budget is None else min(budget, 8)
        right = thoughts >= 4 or (request.sampling.seed or 0) % 3 == 0
        return answer_script("The answer is 56." if right else "The answer is 54.",
                             thinking="hmm " * thoughts, chunk=4)

    engine.default = thinks_within_budget
    view = pane.open_rollouts()
    assert view is not None and view.budget_edit.isEnabled()
    view.prompt_edit.setPlainText("What is 7 * 8?")
    view.key_edit.setText("56")
    view.budget_edit.setText("lots")
    assert not view.run() and "Thinking budget" in view.figures.text()
    view.budget_edit.setText("0,2,unlimited")
    view.count.setValue(4)
    view.seed = 3
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
    assert finished.args[0].thinking_budget is None
    assert [run.thinking_budget for run in view.sweep_runs] == [0, 2, None]
    bars = view.sweep_chart.bars
    assert [bar.label.split(" · ")[0] for bar in bars] == ["B=0", "B=2", "unlimited"]
    assert bars[-1].value == 1.0 and bars[0].value <= bars[-1].value
    assert [request.thinking_budget for request in engine.workers[-1].requests] == \
        [0] * 4 + [2] * 4 + [None] * 4
    if (shots := os.environ.get("ROLLOUTS_SCREENSHOT_DIR")):
        view.resize(1024, 768)
        qtbot.wait(50)
        view.grab().save(str(Path(shots) / "budget-sweep-1024x768.png"))


def test_budget_does_not_apply_to_a_model_that_does_not_think(qtbot, fake_models, engine) -> None:
    instruct = next(e.id for e in fake_models if e.role == "instruct")
    widget = Pane(fake_models, PaneConfig(model_id=instruct), worker_factory=engine.worker)
    qtbot.addWidget(widget)
    view = widget.open_rollouts()
    assert view is not None and not view.budget_edit.isEnabled()
    assert "the thinking budget does not apply" in view.budget_edit.toolTip()
    close_in_background(widget.shutdown())
    assert wait_for_closing()


def test_set_run_window_loads_its_sets_off_the_gui_thread(qtbot, monkeypatch) -> None:
    import desktop_app.verify
    from desktop_app.ui.rollouts_sets import SetRunView
    from desktop_app.verify import PracticeSet

    loaded_on: list[threading.Thread] = []

    def load_practice_sets() -> list[PracticeSet]:
        loaded_on.append(threading.current_thread())
        return [PracticeSet(name="tiny", problems=[PROBLEM])]

    monkeypatch.setattr(desktop_app.verify, "load_practice_sets", load_practice_sets)
    view = SetRunView([], make_worker=None)
    qtbot.addWidget(view)
    assert "Loading" in view.status.text() and not view.run_button.isEnabled()
    qtbot.waitUntil(lambda: view.set_picker.count() == 1, timeout=10_000)
    assert loaded_on and loaded_on[0] is not threading.main_thread()
    assert view.set_picker.itemText(0) == "tiny" and view.run_button.isEnabled()
    assert view.status.text() == "Pick a set and press Run."
    assert wait_for_tasks(timeout=10)


def test_the_export_carries_the_panes_rollouts_table_escaped(qtbot, pane, engine) -> None:
    from markdown_it import MarkdownIt

    from desktop_app.ui.export import to_html, to_markdown

    engine.default = answer_script("The answer is 56.", thinking="seven eights")
    send_and_wait(qtbot, pane, "What is 7 * 8? <script>alert(1)</script>")
    assert "rollouts" not in pane.export_data()  # no run yet: no table
    engine.default = by_seed
    view = pane.open_rollouts()
    view.key_edit.setText("56")
    view.count.setValue(6)
    view.seed = 3
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
    run = finished.args[0]
    data = pane.export_data()
    assert data["rollouts"]["n"] == 6 and data["rollouts"]["prompt"].startswith("What is 7 * 8?")
    # what a model wrote reaches the table: it must stay one cell of one row
    data["rollouts"]["rollouts"][0]["got"] = "5 | 4 <script>alert(2)</script>\n# heading"

    markdown = to_markdown([data])
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert rows[0] == "| Seed | Verdict | Got | Thinking tokens |" and len(rows) == 7
    assert [row.split(" | ")[0].lstrip("| ") for row in rows[1:]] == \
        [str(r.seed) for r in run.rollouts]
    assert f"{run.correct} correct of 6 checked · pass@1 " in markdown and "pass@6 " in markdown
    assert f"Majority vote: {run.majority().answer} ({run.majority().votes} votes)" in markdown
    parsed = MarkdownIt("commonmark").enable("table").parse(markdown)
    cells = [t for t in parsed if t.type == "td_open"]
    assert len(cells) == 6 * 4  # no cell split by the '|', no row ended by the newline
    assert not [t for t in parsed if t.type in ("html_block", "html_inline")
                and "script" in t.content]
    assert not [t for t in parsed if t.type == "heading_open" and t.tag == "h1"][1:]

    page = to_html([data])
    if (shots := os.environ.get("ROLLOUTS_SCREENSHOT_DIR")):
        (Path(shots) / "export.md").write_text(markdown, encoding="utf-8")
        (Path(shots) / "export.html").write_text(page, encoding="utf-8")
    assert page.count("<tr>") == 7 and "<script>" not in page
    assert "5 | 4 &lt;script&gt;alert(2)&lt;/script&gt; # heading" in page
    assert f"Rollouts ×6 · {run.model}" in page


def test_the_window_says_when_the_context_runs_fewer_at_once(qtbot, pane, engine) -> None:
    import dataclasses

    engine.default = by_seed
    view = pane.open_rollouts()
    view.prompt_edit.setPlainText("What is 7 * 8?")
    view.key_edit.setText("56")
    view.request = dataclasses.replace(view.request, sampling=dataclasses.replace(
        view.request.sampling, max_tokens=pane.entry.context_length // 3))
    view.count.setValue(8)
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
    assert finished.args[0].n == 8
    assert "the 8 rollouts run 2 at a time" in view.figures.text()
    if (shots := os.environ.get("ROLLOUTS_SCREENSHOT_DIR")):
        view.resize(1024, 768)
        view.grab().save(str(Path(shots) / "rollouts-fewer-at-once.png"))
    view.request = dataclasses.replace(view.request, sampling=dataclasses.replace(
        view.request.sampling, max_tokens=64))
    with qtbot.waitSignal(view.runFinished, timeout=30_000):
        assert view.run()
    assert "at a time" not in view.figures.text()


# ------------------------------------------------------- issue 27: rollouts that can't run


def test_a_model_that_cannot_run_refuses_rollouts_up_front(qtbot, pane, engine) -> None:
    """The pane's Rollouts ×N is disabled, its tooltip the sentence the pane shows; the
    Rollouts window, opened while the model could run, refuses Run with that sentence:
    no chips, no model process."""
    from desktop_app.models.catalog import cannot_run_reason, missing_message, state_of
    from desktop_app.text import escape
    from desktop_app.ui.pane_chrome import ROLLOUTS_TIP

    send_and_wait(qtbot, pane, PROBLEM.prompt, PROBLEM)
    assert pane.rollouts_button.isEnabled() and pane.rollouts_button.toolTip() == ROLLOUTS_TIP
    view = pane.open_rollouts()
    assert view is not None
    workers = len(engine.workers)
    model_file = Path(pane.entry.source.path)
    placeholder = model_file.read_bytes()
    model_file.unlink()  # the model's file is gone
    pane.refresh_state()
    sentence = missing_message(pane.entry, state_of(pane.entry))
    assert sentence == cannot_run_reason(pane.entry) and "does not exist" in sentence
    assert not pane.rollouts_button.isEnabled() and pane.rollouts_button.toolTip() == sentence
    assert escape.html(sentence) in pane.banner_label.text().replace("\u200b", "")  # same
    assert not view.run()
    assert view.figures.text() == sentence and view.chip_buttons == []
    assert view.goodhart_text() == "" and view.last_run is None
    assert len(engine.workers) == workers  # no process for rollouts that could never run
    view.close()
    pane.rollouts_view = None
    assert pane.open_rollouts() is None  # nor a window
    model_file.write_bytes(placeholder)
    pane.refresh_state()
    assert pane.rollouts_button.isEnabled() and pane.rollouts_button.toolTip() == ROLLOUTS_TIP


def crashes_on_odd_seeds(request: GenerationRequest) -> list[object]:
    """Even seeds answer; odd ones are cut off by the model process crashing."""
    if (request.sampling.seed or 0) % 2 == 0:
        return answer_script("The answer is 56.")
    return [PromptSent(text="p", n_tokens=3, starts_in_thinking=False, seed=1),
            *[Delta(thinking="", answer="So ", thinking_tokens=0, answer_tokens=i + 1,
                    elapsed_s=0.01 * i) for i in range(12)],
            Failed(message="The model process crashed (SIGSEGV).", kind=FailureKind.CRASH)]


def _run_to_the_end(qtbot, pane, engine, script) -> tuple[RolloutsView, object]:
    import dataclasses

    send_and_wait(qtbot, pane, PROBLEM.prompt, PROBLEM)
    engine.default = script
    view = pane.open_rollouts()
    assert view is not None
    view.key_edit.setText("56")
    view.request = dataclasses.replace(view.request, sampling=dataclasses.replace(
        view.request.sampling, max_tokens=64))  # all 8 at once: the crash cuts some short
    view.count.setValue(8)
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
    return view, finished.args[0]


def test_a_model_that_crashes_mid_run_says_which_rollouts_failed_and_why(
        qtbot, pane, engine) -> None:
    from desktop_app.ui.export import to_html, to_markdown

    view, run = _run_to_the_end(qtbot, pane, engine, crashes_on_odd_seeds)
    ran = [r for r in run.rollouts if r.seed % 2 == 0]
    failed = [r for r in run.rollouts if r.seed % 2]
    assert failed and ran and run.error == "The model process crashed (SIGSEGV)."
    chips = [view.chip_text(i) for i in range(8)]
    assert chips == ["✓" if r.seed % 2 == 0 else CHIP_LABELS[Chip.FAILED][0]
                     for r in run.rollouts]
    tip = view.chip_buttons[failed[0].index].toolTip()
    assert tip.startswith(f"Rollout {failed[0].index + 1} did not run: The model process crashed")
    figures = view.figures_text()
    assert figures.startswith(f"{len(ran)} correct of {len(ran)} checked "
                              f"({len(failed)} of 8 rollouts failed)")
    assert "Why they failed: The model process crashed (SIGSEGV)." in figures
    markdown = to_markdown([pane.export_data()])
    rows = [line for line in markdown.splitlines() if line.startswith("| ")]
    assert len(rows) == 1 + len(ran)  # only the rollouts that ran are listed
    assert f"({len(failed)} of 8 rollouts failed)" in markdown
    assert "Why they failed: The model process crashed (SIGSEGV)." in markdown
    assert "No key exists" not in markdown
    assert to_html([pane.export_data()]).count("<tr>") == 1 + len(ran)


def test_a_model_that_fails_to_load_leaves_no_rollouts_that_never_ran(
        qtbot, pane, engine) -> None:
    """A server that does not answer, a file that will not load: every rollout failed,
    said once with why; no chip "…", no pick by the longest answer, no table of rollouts
    in the export, and the key typed is not forgotten."""
    from desktop_app.ui.export import to_markdown

    send_and_wait(qtbot, pane, PROBLEM.prompt, PROBLEM)
    why = "The server at gpu-box:8000 is not answering; is it running?"
    engine.options["fail_load"] = Failed(message=why, kind=FailureKind.LOAD)
    view = pane.open_rollouts()
    assert view is not None
    view.key_edit.setText("56")
    with qtbot.waitSignal(view.runFinished, timeout=30_000) as finished:
        assert view.run()
    run = finished.args[0]
    assert run.error == why and run.n == 8
    assert {view.chip_text(i) for i in range(8)} == {CHIP_LABELS[Chip.FAILED][0]}
    assert view.figures_text().splitlines()[:2] == [
        "8 of 8 rollouts failed", f"Why they failed: {why}"]
    assert view.goodhart_text() == ""
    markdown = to_markdown([pane.export_data()])
    assert "8 of 8 rollouts failed" in markdown and "| Seed |" not in markdown
    assert "No key exists" not in markdown and run.to_dict()["keyed"] is True


def test_the_chip_legend_is_the_verdict_table_and_the_chips_own(qtbot, pane, monkeypatch):
    """Every chip the grid can show is explained under it, from the one label tables: a
    verdict state added to the table appears in the legend with no other change."""
    from desktop_app.ui import rollouts as rollouts_module
    from desktop_app.verify import VERDICT_LABELS
    from desktop_app.verify.verdict import VerdictLabel

    view = pane.open_rollouts()
    assert view is not None
    legend = view.legend.text()
    for symbol, label in [*((v.symbol, v.label) for v in VERDICT_LABELS.values()),
                          *CHIP_LABELS.values()]:
        assert f"{symbol} {label}" in legend
    assert "✓ passed" in legend and "✗ failed" in legend and "– no answer" in legend
    assert "• answer found" in legend  # issue 27's state for a reply with no key
    assert view.legend.isVisibleTo(view)
    monkeypatch.setattr(rollouts_module, "VERDICT_LABELS",
                        {**VERDICT_LABELS, "new": VerdictLabel("?", "a new state")})
    assert "? a new state" in chip_legend()
