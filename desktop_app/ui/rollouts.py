"""The Rollouts window: N answers of one model to one prompt, each checked as it finishes.

Opened from a pane ("Rollouts ×N…") with that pane's model, settings and last prompt (and
its practice problem's key, if any). A grid of chips fills in as rollouts finish and are
checked (✓/✗…; click one to read that rollout, thinking included), with the live figures
(pass@1, pass@k, majority vote, thinking tokens of correct vs wrong rollouts, time) and a
pass@k chart that exports as PNG or SVG.

The rollouts run in :func:`desktop_app.rollouts.run.run_rollouts` on a ``run_task`` thread (the
checks in its pool), in a model process of the window's own, so the pane keeps working;
results reach only a live window. Stop ends every rollout of the run.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QSplitter,
    QTextBrowser,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.protocol import (
    FINISH_LABELS,
    FinishReason,
    GenerationRequest,
    Loaded,
    Loading,
)
from desktop_app.models.catalog import ModelEntry, cannot_run_reason, is_ready
from desktop_app.rollouts.goodhart import (
    NO_KEY,
    PROXY_LABELS,
    Proxy,
    best_of_n,
    judge_scores,
    ranking,
)
from desktop_app.rollouts.run import (
    BUDGET_DOES_NOT_APPLY,
    MAX_ROLLOUTS,
    AnswerKey,
    Rollout,
    RolloutRun,
    budget_applies,
    parse_budgets,
    rollout_plan,
    rollout_seeds,
    run_rollouts,
    wilson_interval,
)
from desktop_app.rollouts.summary import RunFigures
from desktop_app.text.escape import visible_controls
from desktop_app.text.units import format_duration
from desktop_app.ui import theme
from desktop_app.ui.rollouts_chart import AccuracyChart, Bar, PassAtKChart
from desktop_app.ui.screen_fit import fit_dialog
from desktop_app.ui.tasks import Task, run_task
from desktop_app.ui.widgets import scaled_height
from desktop_app.verify import VERDICT_LABELS, Problem, VerdictState

CHIP_COLUMNS = 8
DEFAULT_ROLLOUTS = 8
CHIP_SCALE = 1.25  # a chip's mark, relative to the window's text
PROMPT_HEIGHT = 64  # pixels at the app's font size, grown with the zoom


class Chip(StrEnum):
    """A rollout's chip before (or without) a verdict; a verdict's chip is its symbol."""

    RUNNING = "running"
    CHECKING = "checking"
    STOPPED = "stopped"
    FAILED = "failed"  # the model failed before this rollout finished


# chip -> (symbol, label): with VERDICT_LABELS, every chip the grid can show (and its legend)
CHIP_LABELS: dict[Chip, tuple[str, str]] = {
    Chip.RUNNING: ("·", "running"),
    Chip.CHECKING: ("…", "being checked"),
    Chip.STOPPED: ("■", "stopped"),
    Chip.FAILED: ("⚠", "did not run: the model failed"),
}


def chip_legend() -> str:
    """What each chip means, from the verdicts' one label table and the chips' own."""
    pairs = [(label.symbol, label.label) for label in VERDICT_LABELS.values()]
    return "   ".join(f"{symbol} {label}" for symbol, label in
                      [*pairs, *CHIP_LABELS.values()])


def _chip_colour(state: VerdictState | None) -> str:
    if state == VerdictState.PASS:
        return theme.ok_color()
    if state in (VerdictState.FAIL, VerdictState.ERROR, VerdictState.TIMEOUT):
        return theme.fail_color()
    return theme.muted_fg()


class RolloutsView(QWidget):
    """One model, one prompt, N rollouts; a window of its own, parented to its pane."""

    runFinished = Signal(object)  # the RolloutRun (stopped or failed ones too)
    SIZE = (900, 680)  # at the app's font size (presentation mode grows it to the screen)

    def __init__(self, entry: ModelEntry, make_worker: Any, request: GenerationRequest,
                 problem: Problem | None = None, parent: QWidget | None = None, *,
                 judges: Sequence[ModelEntry] = ()):
        super().__init__(parent, Qt.WindowType.Window)
        self.entry = entry
        self.judges = list(judges)
        self.judge_task: Task | None = None
        self.scores: list[float | None] | None = None
        self.make_worker = make_worker
        self.request = request
        self.problem = problem
        self.worker: Any = None
        self.task: Task | None = None
        self.rollouts: list[Rollout] = []
        self.last_run: RolloutRun | None = None
        self.last_prompt = ""  # the prompt of the run under way or last finished
        self.plan_note = ""  # why fewer rollouts run at once than asked, if they do
        self.selected: int | None = None
        self.key: AnswerKey | None = None
        self.seed: int | None = None  # None: fresh seeds each run; a number: the same ones
        self._started = 0.0
        self._load_note = ""
        self.setWindowTitle(f"Rollouts — {entry.name}")
        self.resize(*self.SIZE)

        layout = QVBoxLayout(self)
        title = QLabel(f"<b>{visible_controls(entry.name)}</b>: many answers to one prompt, "
                       "each checked against the answer key")
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        layout.addWidget(title)
        self.prompt_edit = QPlainTextEdit(request.prompt)
        self.prompt_edit.setPlaceholderText("The prompt every rollout answers")
        self.prompt_edit.setMaximumHeight(PROMPT_HEIGHT)
        layout.addWidget(self.prompt_edit)

        controls = QHBoxLayout()
        self.key_edit = QLineEdit()
        if problem is not None and problem.answer is not None:
            self.key_edit.setText(problem.answer)
        self.key_edit.setPlaceholderText("Expected answer (the key), e.g. 56")
        if problem is not None and problem.kind == "code":
            self.key_edit.setText(f"the tests of practice problem {problem.id}")
            self.key_edit.setReadOnly(True)
        self.count = QSpinBox()
        self.count.setRange(1, MAX_ROLLOUTS)
        self.count.setValue(DEFAULT_ROLLOUTS)
        self.count.setPrefix("×")
        self.count.setToolTip(f"Rollouts to sample, 1 to {MAX_ROLLOUTS}")
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.export_button = QPushButton("Export chart…")
        self.export_button.clicked.connect(self._export_dialog)
        self.budget_edit = QLineEdit()
        self.budget_edit.setMaximumWidth(190)
        if budget_applies(entry):
            self.budget_edit.setPlaceholderText("Thinking budget: unlimited")
            self.budget_edit.setToolTip("Cap the thinking at B tokens, then make the model "
                                        "answer; several (0,64,256,unlimited) sweep them")
        else:
            self.budget_edit.setPlaceholderText("No thinking budget")
            self.budget_edit.setToolTip(f"{entry.name} {BUDGET_DOES_NOT_APPLY}.")
            self.budget_edit.setEnabled(False)
        controls.addWidget(QLabel("Key:"))
        controls.addWidget(self.key_edit, 1)
        controls.addWidget(self.budget_edit)
        controls.addWidget(self.count)
        controls.addWidget(self.run_button)
        controls.addWidget(self.stop_button)
        controls.addWidget(self.export_button)
        layout.addLayout(controls)

        self.chips_box = QWidget()
        self.chips = QGridLayout(self.chips_box)
        self.chips.setSpacing(4)
        self.chips.setContentsMargins(0, 0, 0, 0)
        self.chips.setColumnStretch(CHIP_COLUMNS, 1)  # chips packed to the left
        self.chip_buttons: list[QToolButton] = []
        layout.addWidget(self.chips_box)
        self.legend = QLabel(chip_legend())
        self.legend.setWordWrap(True)
        theme.style(self.legend, lambda: f"color: {theme.muted_fg()};")
        layout.addWidget(self.legend)

        self.figures = QLabel("Press Run to sample the rollouts.")
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.figures)

        goodhart = QHBoxLayout()
        self.goodhart = QLabel("")
        self.goodhart.setWordWrap(True)
        self.judge_picker = QComboBox()
        for judge in self.judges:
            self.judge_picker.addItem(f"Judge: {judge.name}", judge.id)
        self.judge_button = QPushButton("Score with the judge")
        self.judge_button.setToolTip("Ask a chat model whether each answer is correct; its "
                                     "probability of \"yes\" ranks them (a learned proxy)")
        self.judge_button.setEnabled(False)
        self.judge_button.clicked.connect(self.judge)
        goodhart.addWidget(self.goodhart, 1)
        goodhart.addWidget(self.judge_picker)
        goodhart.addWidget(self.judge_button)
        self.judge_picker.setVisible(bool(self.judges))
        self.judge_button.setVisible(bool(self.judges))
        layout.addLayout(goodhart)

        split = self.split = QSplitter(Qt.Orientation.Horizontal)
        self.detail = QTextBrowser()
        self.detail.setPlaceholderText("Click a chip to read that rollout.")
        self.chart = PassAtKChart()
        self.sweep_chart = AccuracyChart("accuracy by thinking budget")
        self.sweep_chart.hide()
        self.sweep_runs: list[RolloutRun] = []
        self._sweeping = False
        split.addWidget(self.detail)
        split.addWidget(self.chart)
        split.addWidget(self.sweep_chart)
        split.setSizes([520, 380])
        layout.addWidget(split, 1)

    def follow_zoom(self, point_size: float | None) -> None:
        """The main window's text size (zoom, presentation mode) reaches this window."""
        if point_size and abs(self.font().pointSizeF() - point_size) > 0.01:
            theme.apply_point_size(self, point_size)
            self.prompt_edit.setMaximumHeight(scaled_height(self.prompt_edit, PROMPT_HEIGHT))
            for index, button in enumerate(self.chip_buttons):
                button.setFixedSize(self._chip_size())
                self._update_chip(index)

    def export_data(self) -> dict[str, Any] | None:
        """The last finished run for the comparison's export (None: no run yet)."""
        if self.last_run is None:
            return None
        return {**self.last_run.to_dict(), "prompt": self.last_prompt}

    # ------------------------------------------------------------------------ running

    @property
    def running(self) -> bool:
        return self.task is not None

    def answer_key(self) -> AnswerKey | None:
        """The key typed (an expected value) or the practice problem's; None: no key."""
        typed = self.key_edit.text().strip()
        problem = self.problem
        if problem is not None and (problem.kind == "code" or typed == (problem.answer or "")):
            return AnswerKey(problem=problem) if problem.verifiable else None
        return AnswerKey(expect=typed) if typed else None

    def run(self) -> bool:
        """Start N rollouts; False (with a sentence on screen) if they cannot start."""
        if self.running:
            return False
        prompt = self.prompt_edit.toPlainText().strip()
        key = self.answer_key()
        if not prompt:
            self.figures.setText("Type a prompt first.")
            return False
        cannot = cannot_run_reason(self.entry)
        if cannot:  # the sentence its pane shows: no chips for rollouts that can't run
            self.figures.setText(visible_controls(cannot))
            return False
        try:
            budgets = parse_budgets(self.budget_edit.text()) \
                if self.budget_edit.isEnabled() and self.budget_edit.text().strip() else [None]
        except ValueError as exc:
            self.figures.setText(f"Thinking budget: {exc}.")
            return False
        n = self.count.value()
        self.last_prompt = prompt
        seeds = rollout_seeds(self.seed, n)
        self.rollouts = [Rollout(index=i, seed=seed) for i, seed in enumerate(seeds)]
        self.sweep_runs = []
        self.sweep_chart.set_bars([])
        self._sweeping = len(budgets) > 1
        self.sweep_chart.setVisible(self._sweeping)
        width = max(300, self.split.width())
        self.split.setSizes([width * 2 // 5, width * 3 // 10, width * 3 // 10] if self._sweeping
                            else [width * 3 // 5, width * 2 // 5, 0])
        self.last_run = None
        self.scores = None
        self.key = key
        self.goodhart.setText("")
        self.judge_button.setEnabled(False)
        self.selected = None
        self.detail.clear()
        self._build_chips()
        if self.worker is None:
            self.worker = self.make_worker(self.entry)
        worker = self.worker
        request = dataclasses.replace(self.request, prompt=prompt)
        plan = rollout_plan(self.entry, request, n)  # answers the context can hold at once
        self.plan_note = plan.message or ""
        self._started = time.monotonic()
        self._load_note = ""

        checked_by = key or AnswerKey(problem=self.problem)

        def work(task: Task) -> RolloutRun:
            def on_event(event: Any) -> None:
                if isinstance(event, Loading | Loaded):
                    task.report(event)

            run: RolloutRun | None = None
            for budget in budgets:  # one run, or a sweep of thinking budgets in turn
                if run is not None:
                    task.report(run)  # a finished step of the sweep
                    if run.stopped or run.error:
                        break
                run = run_rollouts(worker, dataclasses.replace(request, thinking_budget=budget),
                                   seeds, checked_by, should_stop=task.cancelled.is_set,
                                   on_update=lambda r: task.report(dataclasses.replace(r)),
                                   on_event=on_event, at_once=plan.at_once)
            assert run is not None
            return run

        self.task = run_task(self, work, on_success=self._finished, on_failure=self._failed,
                             on_progress=self._progress, name="rollouts")
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.count.setEnabled(False)
        self.budget_edit.setReadOnly(True)
        self._show_figures()
        return True

    def stop(self) -> None:
        """End every rollout of the run (the model is told at once; returns at once)."""
        if self.task is not None:
            self.task.cancel()
        if self.worker is not None:
            self.worker.stop()

    def _progress(self, value: Any) -> None:
        if isinstance(value, Loading):
            self._load_note = value.detail
        elif isinstance(value, Loaded):
            self._load_note = ""
        elif isinstance(value, RolloutRun):  # one budget of a sweep is done: the next starts
            self._add_sweep_step(value)
            self.rollouts = [Rollout(index=r.index, seed=r.seed) for r in value.rollouts]
            for index in range(len(self.rollouts)):
                self._update_chip(index)
        elif isinstance(value, Rollout) and value.index < len(self.rollouts):
            current = self.rollouts[value.index]
            if current.verdict is not None and value.verdict is None:
                return  # a late "finished" after its verdict: keep the verdict
            self.rollouts[value.index] = value
            self._update_chip(value.index)
            if self.selected == value.index:
                self._show_rollout(value.index)
        self._show_figures()

    def _add_sweep_step(self, run: RolloutRun) -> None:
        if not self._sweeping:
            return
        self.sweep_runs.append(run)
        bars = []
        for step in self.sweep_runs:
            low, high = wilson_interval(step.correct, step.n)
            tokens = sum(r.thinking_tokens for r in step.rollouts) / max(1, step.n)
            budget = "unlimited" if step.thinking_budget is None else f"B={step.thinking_budget}"
            bars.append(Bar(f"{budget} · {tokens:.0f} tok", step.correct / max(1, step.n),
                            low, high))
        self.sweep_chart.set_bars(bars)

    def _finished(self, run: RolloutRun) -> None:
        self.task = None
        self._add_sweep_step(run)
        self.last_run = run
        self.rollouts = list(run.rollouts)
        for index in range(len(self.rollouts)):
            self._update_chip(index)
        self._controls_idle()
        self._show_figures()
        self._show_goodhart()
        self.judge_button.setEnabled(bool(self.judges) and run.error is None)
        self.runFinished.emit(run)

    def _failed(self, exc: BaseException) -> None:
        self.task = None
        self._controls_idle()
        self.figures.setText(visible_controls(f"The rollouts failed: {exc}")[:300])
        self.runFinished.emit(None)

    def _controls_idle(self) -> None:
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.count.setEnabled(True)
        self.budget_edit.setReadOnly(False)

    # --------------------------------------------------------------------------- view

    def _build_chips(self) -> None:
        for button in self.chip_buttons:
            self.chips.removeWidget(button)
            button.deleteLater()
        self.chip_buttons = []
        for index in range(len(self.rollouts)):
            button = QToolButton()
            button.setFixedSize(self._chip_size())
            button.setAutoRaise(False)
            button.clicked.connect(lambda _checked=False, i=index: self._show_rollout(i))
            self.chips.addWidget(button, index // CHIP_COLUMNS, index % CHIP_COLUMNS)
            self.chip_buttons.append(button)
            self._update_chip(index)

    def _chip_size(self) -> QSize:
        """34×28 at the app's font size, grown with the window's zoom."""
        base = QApplication.font().pointSizeF()
        scale = max(1.0, self.font().pointSizeF() / base) if base > 0 else 1.0
        return QSize(round(34 * scale), round(28 * scale))

    def chip_text(self, index: int) -> str:
        rollout = self.rollouts[index]
        if rollout.verdict is not None:
            return VERDICT_LABELS[rollout.verdict.verdict][0]
        return CHIP_LABELS[self.chip(index)][0]

    def chip(self, index: int) -> Chip:
        """The chip of a rollout with no verdict (yet)."""
        result = self.rollouts[index].result
        if result is None:
            return Chip.RUNNING
        return {FinishReason.CANCELLED: Chip.STOPPED, FinishReason.ERROR: Chip.FAILED}.get(
            FinishReason(result.finish_reason), Chip.CHECKING)

    def _update_chip(self, index: int) -> None:
        if index >= len(self.chip_buttons):
            return
        rollout = self.rollouts[index]
        button = self.chip_buttons[index]
        button.setText(self.chip_text(index))
        state = rollout.verdict.verdict if rollout.verdict is not None else None
        edge = f"border: 2px solid {theme.border_color()};" if index == self.selected else ""
        size = self.font().pointSizeF() * CHIP_SCALE  # grows with presentation mode
        button.setStyleSheet(f"QToolButton {{ color: {_chip_colour(state)}; font-weight: bold; "
                             f"font-size: {size:.1f}pt; {edge} }}")
        if rollout.verdict is not None:
            tip = f"Rollout {index + 1}: {rollout.verdict.label}"
            if rollout.verdict.got:
                tip += f" (got {rollout.verdict.got})"
        elif rollout.result is not None and rollout.result.error:
            tip = f"Rollout {index + 1} did not run: {rollout.result.error}"
        elif rollout.result is not None:
            tip = f"Rollout {index + 1}: {FINISH_LABELS[rollout.result.finish_reason]}"
        else:
            tip = f"Rollout {index + 1}: not finished"
        button.setToolTip(f"{tip} · seed {rollout.seed}")

    def _show_rollout(self, index: int) -> None:
        """The rollout in the detail pane: verdict, thinking, answer (plain text)."""
        previous, self.selected = self.selected, index
        if previous is not None and previous != index:
            self._update_chip(previous)
        self._update_chip(index)
        rollout = self.rollouts[index]
        lines = [f"Rollout {index + 1} of {len(self.rollouts)} · seed {rollout.seed}"]
        if rollout.verdict is not None:  # "• Answer found: 4 · no key…", then why
            lines += [rollout.verdict.headline, rollout.verdict.reason]
        if rollout.result is not None:
            lines.append(f"{rollout.thinking_tokens} thinking + {rollout.answer_tokens} answer "
                         f"tokens · {FINISH_LABELS[rollout.result.finish_reason]}")
        if rollout.thinking:
            lines += ["", "── thinking ──", rollout.thinking.strip()]
        lines += ["", "── answer ──", rollout.answer.strip() or "(nothing yet)"]
        self.detail.setPlainText(visible_controls("\n".join(lines)))

    def current_run(self) -> RolloutRun:
        """The figures' source: the finished run, or one made of what has arrived."""
        if self.last_run is not None:
            return self.last_run
        return RolloutRun(model=self.entry.id, role=self.entry.role, rollouts=self.rollouts)

    def figures_text(self) -> str:
        run = self.current_run()
        if not run.rollouts:
            return "Press Run to sample the rollouts."
        done = self.last_run is not None
        figures = RunFigures.of(run.to_dict(), keyed=self.key is not None, done=done)
        score, *details = figures.lines()
        if not done:
            details.append(self._load_note
                           or format_duration(time.monotonic() - self._started))
        text = visible_controls(score + "\n" + " · ".join(details))
        return f"{text}\n{visible_controls(self.plan_note)}" if self.plan_note else text

    def _show_figures(self) -> None:
        self.figures.setText(self.figures_text())
        run = self.current_run()
        passes = run.pass_at_k() if self.key is not None else {}
        self.chart.set_points([(int(k), value) for k, value in passes.items()])

    # ----------------------------------------------------------------------- Goodhart

    def goodhart_text(self) -> str:
        """Best of N by the key, by the longest answer and by the judge, side by side."""
        rollouts = self.rollouts
        if not any(r.answer.strip() for r in rollouts):
            return ""  # nothing to pick from (not run, stopped at once, the model failed)
        picks = best_of_n(rollouts, self.scores)

        def described(proxy: Proxy) -> str:
            index = picks.pick(proxy)
            if index is None:
                return f"by {PROXY_LABELS[proxy]}: nothing to pick"
            mark = "" if self.key is None else (" ✓" if rollouts[index].correct else " ✗")
            return f"by {PROXY_LABELS[proxy]}: rollout {index + 1}{mark}"

        if self.key is None:
            parts = [NO_KEY]
            if self.scores is not None:
                order = ranking(self.scores)
                parts.append("Judge's ranking: " + ", ".join(
                    f"{index + 1} ({score:.2f})" if score is not None else f"{index + 1} (–)"
                    for index, score in order[:8]))
            return " ".join(parts)
        proxies = [Proxy.KEY, Proxy.LONGEST] + ([Proxy.JUDGE] if self.scores is not None else [])
        text = "Best of N " + " · ".join(described(proxy) for proxy in proxies)
        key_pick = picks.key
        for proxy in proxies[1:]:
            chosen = picks.pick(proxy)
            if key_pick is not None and chosen is not None and not rollouts[chosen].correct:
                text += f". Goodhart: {PROXY_LABELS[proxy]} picked a wrong answer although a " \
                        "right one was there"
        return text

    def _show_goodhart(self) -> None:
        self.goodhart.setText(self.goodhart_text())

    def judge(self) -> bool:
        """Score every rollout with the chosen judge model (off the GUI thread)."""
        if self.judge_task is not None or self.running or not self.rollouts or not self.judges:
            return False
        judge_entry = self.judges[max(0, self.judge_picker.currentIndex())]
        question = self.prompt_edit.toPlainText().strip()
        answers = [r.answer for r in self.rollouts]
        make_worker = self.make_worker

        def work(task: Task) -> list[float | None]:
            worker = make_worker(judge_entry)
            try:
                return judge_scores(worker, question, answers, task.cancelled.is_set)
            finally:
                worker.close()

        def done(scores: list[float | None]) -> None:
            self.judge_task = None
            self.judge_button.setEnabled(True)
            self.scores = scores
            if all(score is None for score in scores):
                self.goodhart.setText(f"{judge_entry.name} gave no token probabilities to "
                                      "score with.")
                return
            self._show_goodhart()

        def failed(exc: BaseException) -> None:
            self.judge_task = None
            self.judge_button.setEnabled(True)
            self.goodhart.setText(visible_controls(f"The judge failed: {exc}")[:300])

        self.judge_task = run_task(self, work, on_success=done, on_failure=failed,
                                   name="rollouts-judge")
        self.judge_button.setEnabled(False)
        self.goodhart.setText(f"{judge_entry.name} is scoring {len(answers)} answers…")
        return True

    def _export_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export the pass@k chart", "pass-at-k.png",
                                              "PNG image (*.png);;SVG image (*.svg)")
        if path:
            try:
                written = [self.chart.export(path)]
                if self._sweeping and self.sweep_runs:  # the sweep's chart next to it
                    target = Path(path)
                    written.append(self.sweep_chart.export(
                        target.with_name(f"{target.stem}-budgets{target.suffix}")))
            except OSError as exc:
                self.figures.setText(visible_controls(f"Could not export: {exc}"))
                return
            self.figures.setText("Saved " + " and ".join(item.name for item in written) + ".")

    def take_typed_key(self, turn: Any) -> None:
        """The main window's Answer key, typed for this prompt after the window opened:
        the next run checks against it (not while a run is under way, nor for another
        prompt)."""
        problem = turn.problem
        if self.running or problem is None or not problem.typed or \
                self.prompt_edit.toPlainText().strip() != turn.prompt.strip():
            return
        self.problem = problem
        self.key_edit.setText(problem.answer or "")

    # ------------------------------------------------------------------------ closing

    def shutdown(self) -> None:
        """Stop the run and close this window's model process without waiting for it."""
        from desktop_app.session.generation import close_in_background

        self.stop()
        for task in (self.task, self.judge_task):
            if task is not None:
                task.cancel()
                task.detach()
        self.task = self.judge_task = None
        worker, self.worker = self.worker, None
        close_in_background(worker)

    def closeEvent(self, event: Any) -> None:
        self.shutdown()
        super().closeEvent(event)


def open_rollouts(pane: Any) -> RolloutsView | None:
    """The pane's Rollouts window (made on first use) for its model and last prompt; None
    when its model can't run (the pane's button is disabled, saying why)."""
    entry = pane.entry
    if entry is None or cannot_run_reason(entry):
        return None
    existing = pane.rollouts_view
    if isinstance(existing, RolloutsView) and existing.entry.id == entry.id:
        existing.follow_zoom(pane.point_size)
        if pane.session.turns:
            existing.take_typed_key(pane.session.turns[-1])
        existing.show()
        existing.raise_()
        return existing
    if isinstance(existing, RolloutsView):
        existing.close()
    session = pane.session
    turns = session.turns
    last = turns[-1] if turns else None
    prompt = last.prompt if last is not None else ""
    request = dataclasses.replace(session.request_for(prompt or " "), prompt=prompt, history=(),
                                  top_logprobs=0)

    judges = [candidate for candidate in pane.catalog
              if candidate.role == "instruct" and is_ready(candidate)]
    view = RolloutsView(entry, session.worker_factory, request,
                        problem=last.problem if last is not None else None, parent=pane,
                        judges=judges)
    pane.rollouts_view = view
    view.follow_zoom(pane.point_size)
    fit_dialog(view, RolloutsView.SIZE)  # grown with the zoom, within the screen
    view.show()
    return view
