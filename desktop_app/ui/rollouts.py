"""The Rollouts window: N answers of one model to one prompt, each checked as it finishes.

Opened from a pane ("Rollouts ×N…") with that pane's model, settings and last prompt (and
its practice problem's key, if any). A grid of chips fills in as rollouts finish and are
checked (✓/✗…; click one to read that rollout, thinking included), with the live figures
(pass@1, pass@k, majority vote, thinking tokens of correct vs wrong rollouts, time) and a
pass@k chart that exports as PNG or SVG.

The rollouts run in :func:`desktop_app.rollouts.run.run_rollouts` on a ``run_task`` thread (the
checks in its pool), in a model process of the window's own, so the pane keeps working;
results reach only a live window. Stop ends every rollout of the run.

Keyboard and screen readers: Tab reaches the chips (one tab stop, the current chip), the
arrow keys, Home and End move between them with a visible focus frame, Enter or Space opens
one; each chip's accessible name says in words what its symbol shows ("Rollout 3 of 16:
passed, answer 42"), the charts describe their figures in words, a finished run's score is
announced, and Escape closes the window.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
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
from desktop_app.text.i18n import N_, _, ngettext, number, pgettext
from desktop_app.text.units import format_duration
from desktop_app.ui import a11y, theme
from desktop_app.ui.rollouts_chart import AccuracyChart, Bar, PassAtKChart
from desktop_app.ui.rollouts_chips import ChipButton, ChipFocus
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
    Chip.RUNNING: ("·", N_("running")),
    Chip.CHECKING: ("…", N_("being checked")),
    Chip.STOPPED: ("■", N_("stopped")),
    Chip.FAILED: ("⚠", N_("did not run: the model failed")),
}


def _words(text: str) -> str:
    """A label from a table (the core marks its own for translation) in the language."""
    return _(text) if text else text


def chip_legend() -> str:
    """What each chip means, from the verdicts' one label table and the chips' own."""
    pairs = [(label.symbol, pgettext("verdict", label.label))
             for label in VERDICT_LABELS.values()]
    chips = [(symbol, _words(label)) for symbol, label in CHIP_LABELS.values()]
    return "   ".join(f"{symbol} {label}" for symbol, label in [*pairs, *chips])


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
        self.chip_focus = ChipFocus(CHIP_COLUMNS)  # Tab lands on one chip, arrows move on
        self.setWindowTitle(_("Rollouts — {model}").format(model=entry.name))
        self.resize(*self.SIZE)
        self.announcer = a11y.Announcer(self)
        QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close)

        layout = QVBoxLayout(self)
        title = QLabel(_("<b>{model}</b>: many answers to one prompt, each checked against "
                         "the answer key").format(model=visible_controls(entry.name)))
        title.setTextFormat(Qt.TextFormat.RichText)
        title.setWordWrap(True)
        layout.addWidget(title)
        self.prompt_edit = QPlainTextEdit(request.prompt)
        self.prompt_edit.setPlaceholderText(_("The prompt every rollout answers"))
        self.prompt_edit.setTabChangesFocus(True)  # Tab moves on: no tab characters here
        a11y.describe(self.prompt_edit, _("Prompt"), _("The prompt every rollout answers"))
        self.prompt_edit.setMaximumHeight(PROMPT_HEIGHT)
        layout.addWidget(self.prompt_edit)

        controls = QHBoxLayout()
        self.key_edit = QLineEdit()
        if problem is not None and problem.answer is not None:
            self.key_edit.setText(problem.answer)
        self.key_edit.setPlaceholderText(_("Expected answer (the key), e.g. 56"))
        a11y.describe(self.key_edit, _("Answer key"),
                      _("The expected answer every rollout is checked against"))
        if problem is not None and problem.kind == "code":
            self.key_edit.setText(_("the tests of practice problem {id}").format(id=problem.id))
            self.key_edit.setReadOnly(True)
        self.count = QSpinBox()
        self.count.setRange(1, MAX_ROLLOUTS)
        self.count.setValue(DEFAULT_ROLLOUTS)
        self.count.setPrefix("×")
        tip = _("Rollouts to sample, 1 to {most}").format(most=MAX_ROLLOUTS)
        self.count.setToolTip(tip)
        a11y.describe(self.count, _("Number of rollouts"), tip)
        self.run_button = QPushButton(_("Run"))
        self.run_button.clicked.connect(self.run)
        self.stop_button = QPushButton(_("Stop"))
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.export_button = QPushButton(_("Export chart…"))
        self.export_button.clicked.connect(self._export_dialog)
        self.budget_edit = QLineEdit()
        if budget_applies(entry):
            self.budget_edit.setPlaceholderText(_("Thinking budget: unlimited"))
            self.budget_edit.setToolTip(_("Cap the thinking at B tokens, then make the model "
                                          "answer; several (0,64,256,unlimited) sweep them"))
        else:
            self.budget_edit.setPlaceholderText(_("No thinking budget"))
            self.budget_edit.setToolTip(_("{model} {reason}.").format(
                model=entry.name, reason=_words(BUDGET_DOES_NOT_APPLY)))
            self.budget_edit.setEnabled(False)
        a11y.describe(self.budget_edit, _("Thinking budget"), self.budget_edit.toolTip())
        self._fit_budget()
        key_label = QLabel(_("&Key:"))
        key_label.setBuddy(self.key_edit)  # Alt and the letter: to the key
        controls.addWidget(key_label)
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
        self.chip_buttons: list[ChipButton] = []
        a11y.describe(self.chips_box, _("Rollouts"), _(
            "One chip per rollout: Tab reaches them, the arrow keys move between them, Enter "
            "opens one"))
        layout.addWidget(self.chips_box)
        self.legend = QLabel(chip_legend())
        self.legend.setWordWrap(True)
        a11y.describe(self.legend, _("What the chips mean"))
        theme.style(self.legend, lambda: f"color: {theme.muted_fg()};")
        layout.addWidget(self.legend)

        readable = (Qt.TextInteractionFlag.TextSelectableByMouse
                    | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.figures = QLabel(_("Press Run to sample the rollouts."))
        self.figures.setWordWrap(True)
        self.figures.setTextInteractionFlags(readable)
        self.figures.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # Tab reaches it, to hear it
        a11y.describe(self.figures, _("Figures"))
        layout.addWidget(self.figures)

        goodhart = QHBoxLayout()
        self.goodhart = QLabel("")
        self.goodhart.setWordWrap(True)
        self.goodhart.setTextInteractionFlags(readable)
        a11y.describe(self.goodhart, _("Best of N"))
        self.judge_picker = QComboBox()
        a11y.describe(self.judge_picker, _("Judge model"))
        for judge in self.judges:
            self.judge_picker.addItem(_("Judge: {model}").format(model=judge.name), judge.id)
        self.judge_button = QPushButton(_("Score with the judge"))
        self.judge_button.setToolTip(_("Ask a chat model whether each answer is correct; its "
                                       "probability of \"yes\" ranks them (a learned proxy)"))
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
        self.detail.setPlaceholderText(_("Click a chip to read that rollout."))
        self.detail.setTabChangesFocus(True)
        a11y.describe(self.detail, _("Rollout"), _("The chosen rollout: its verdict, thinking "
                                                   "and answer"))
        self.chart = PassAtKChart()
        self.sweep_chart = AccuracyChart(_("accuracy by thinking budget"))
        self.sweep_chart.hide()
        self.sweep_runs: list[RolloutRun] = []
        self._sweeping = False
        split.addWidget(self.detail)
        split.addWidget(self.chart)
        split.addWidget(self.sweep_chart)
        split.setSizes([520, 380])
        layout.addWidget(split, 1)
        self._tab_order()

    def _tab_order(self) -> None:
        """Reading order: prompt, key, budget, count, buttons, the chips (one stop), the
        figures, the judge, the rollout, the charts."""
        chain: list[QWidget] = [self.prompt_edit, self.key_edit, self.budget_edit, self.count,
                                self.run_button, self.stop_button, self.export_button,
                                *self.chip_buttons, self.figures, self.goodhart,
                                self.judge_picker, self.judge_button, self.detail, self.chart,
                                self.sweep_chart]
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

    def _fit_budget(self) -> None:
        """The budget box as wide as its placeholder (longer in German), at any zoom."""
        text = self.budget_edit.placeholderText()
        width = self.budget_edit.fontMetrics().horizontalAdvance(text) + 24
        self.budget_edit.setMinimumWidth(width)
        self.budget_edit.setMaximumWidth(max(190, width))

    def follow_zoom(self, point_size: float | None) -> None:
        """The main window's text size (zoom, presentation mode) reaches this window."""
        if point_size and abs(self.font().pointSizeF() - point_size) > 0.01:
            theme.apply_point_size(self, point_size)
            self.prompt_edit.setMaximumHeight(scaled_height(self.prompt_edit, PROMPT_HEIGHT))
            self._fit_budget()
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
            self.figures.setText(_("Type a prompt first."))
            return False
        cannot = cannot_run_reason(self.entry)
        if cannot:  # the sentence its pane shows: no chips for rollouts that can't run
            self.figures.setText(visible_controls(cannot))
            return False
        try:
            budgets = parse_budgets(self.budget_edit.text()) \
                if self.budget_edit.isEnabled() and self.budget_edit.text().strip() else [None]
        except ValueError as exc:
            self.figures.setText(_("Thinking budget: {error}.").format(error=exc))
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
            budget = _("unlimited") if step.thinking_budget is None \
                else f"B={step.thinking_budget}"
            bars.append(Bar(f"{budget} · {number(tokens, 0)} tok", step.correct / max(1, step.n),
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
        self.announcer.say(self.figures_text().split("\n")[0])  # the score, once
        self.runFinished.emit(run)

    def _failed(self, exc: BaseException) -> None:
        self.task = None
        self._controls_idle()
        self.figures.setText(visible_controls(_("The rollouts failed: {error}").format(
            error=exc))[:300])
        self.announcer.say(self.figures.text())
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
            button = ChipButton(index)
            button.setFixedSize(self._chip_size())
            button.setAutoRaise(False)
            button.clicked.connect(lambda _checked=False, i=index: self._show_rollout(i))
            button.moved.connect(self.chip_focus.move)
            self.chips.addWidget(button, index // CHIP_COLUMNS, index % CHIP_COLUMNS)
            self.chip_buttons.append(button)
            self._update_chip(index)
        self.chip_focus.reset(self.chip_buttons)
        self._tab_order()

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
        # the focus: a dashed frame in the text's colour (the chosen chip's frame is solid)
        button.setStyleSheet(f"QToolButton {{ color: {_chip_colour(state)}; font-weight: bold; "
                             f"font-size: {size:.1f}pt; {edge} }} "
                             "QToolButton:focus { border: 2px dashed palette(text); }")
        where = index + 1
        if rollout.verdict is not None:
            words = rollout.verdict.label  # translated by the verdicts' table
            tip = _("Rollout {index}: {state}").format(index=where, state=words)
            if rollout.verdict.got:
                tip += " " + _("(got {answer})").format(answer=rollout.verdict.got)
        elif rollout.result is not None and rollout.result.error:
            words = _words(CHIP_LABELS[Chip.FAILED][1])
            tip = _("Rollout {index} did not run: {error}").format(index=where,
                                                                  error=rollout.result.error)
        else:
            words = _words(CHIP_LABELS[self.chip(index)][1])
            finish = rollout.result.finish_reason if rollout.result is not None else None
            tip = _("Rollout {index}: {state}").format(
                index=where, state=_words(FINISH_LABELS[finish]) if finish is not None
                else _("not finished"))
        tip += " · " + _("seed {seed}").format(seed=rollout.seed)
        button.setToolTip(tip)
        got = rollout.verdict.got if rollout.verdict is not None else None
        name = _("Rollout {index} of {total}: {state}").format(
            index=where, total=len(self.rollouts), state=words)
        if got:
            name = _("{chip}, answer {answer}").format(chip=name, answer=got)
        a11y.describe(button, visible_controls(name), visible_controls(tip))

    def _show_rollout(self, index: int) -> None:
        """The rollout in the detail pane: verdict, thinking, answer (plain text)."""
        previous, self.selected = self.selected, index
        if previous is not None and previous != index:
            self._update_chip(previous)
        self._update_chip(index)
        rollout = self.rollouts[index]
        self.chip_focus.set_current(index)
        lines = [_("Rollout {index} of {total} · seed {seed}").format(
            index=index + 1, total=len(self.rollouts), seed=rollout.seed)]
        if rollout.verdict is not None:  # "• Answer found: 4 · no key…", then why
            lines += [rollout.verdict.headline, rollout.verdict.reason]
        if rollout.result is not None:
            lines.append(_("{thinking} thinking + {answer} answer tokens · {finish}").format(
                thinking=rollout.thinking_tokens, answer=rollout.answer_tokens,
                finish=_words(FINISH_LABELS[rollout.result.finish_reason])))
        if rollout.thinking:
            lines += ["", _("── thinking ──"), rollout.thinking.strip()]
        lines += ["", _("── answer ──"), rollout.answer.strip() or _("(nothing yet)")]
        self.detail.setPlainText(visible_controls("\n".join(lines)))

    def current_run(self) -> RolloutRun:
        """The figures' source: the finished run, or one made of what has arrived."""
        if self.last_run is not None:
            return self.last_run
        return RolloutRun(model=self.entry.id, role=self.entry.role, rollouts=self.rollouts)

    def figures_text(self) -> str:
        run = self.current_run()
        if not run.rollouts:
            return _("Press Run to sample the rollouts.")
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
        self.chart.set_points([(int(k), value) for k, value in passes.items()],
                              summary=self.figures.text())

    # ----------------------------------------------------------------------- Goodhart

    def goodhart_text(self) -> str:
        """Best of N by the key, by the longest answer and by the judge, side by side."""
        rollouts = self.rollouts
        if not any(r.answer.strip() for r in rollouts):
            return ""  # nothing to pick from (not run, stopped at once, the model failed)
        picks = best_of_n(rollouts, self.scores)

        def described(proxy: Proxy) -> str:
            index = picks.pick(proxy)
            label = _words(PROXY_LABELS[proxy])
            if index is None:
                return _("by {proxy}: nothing to pick").format(proxy=label)
            mark = "" if self.key is None else (" ✓" if rollouts[index].correct else " ✗")
            return _("by {proxy}: rollout {index}").format(proxy=label, index=index + 1) + mark

        if self.key is None:
            parts = [_words(NO_KEY)]
            if self.scores is not None:
                order = ranking(self.scores)
                parts.append(_("Judge's ranking: {ranks}").format(ranks=", ".join(
                    f"{index + 1} ({number(score, 2)})" if score is not None
                    else f"{index + 1} (–)" for index, score in order[:8])))
            return " ".join(parts)
        proxies = [Proxy.KEY, Proxy.LONGEST] + ([Proxy.JUDGE] if self.scores is not None else [])
        text = _("Best of N {picks}").format(
            picks=" · ".join(described(proxy) for proxy in proxies))
        key_pick = picks.key
        for proxy in proxies[1:]:
            chosen = picks.pick(proxy)
            if key_pick is not None and chosen is not None and not rollouts[chosen].correct:
                text += ". " + _("Goodhart: {proxy} picked a wrong answer although a right one "
                                 "was there").format(proxy=_words(PROXY_LABELS[proxy]))
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
                self.goodhart.setText(_("{model} gave no token probabilities to score "
                                        "with.").format(model=judge_entry.name))
                return
            self._show_goodhart()

        def failed(exc: BaseException) -> None:
            self.judge_task = None
            self.judge_button.setEnabled(True)
            self.goodhart.setText(visible_controls(_("The judge failed: {error}").format(
                error=exc))[:300])

        self.judge_task = run_task(self, work, on_success=done, on_failure=failed,
                                   name="rollouts-judge")
        self.judge_button.setEnabled(False)
        self.goodhart.setText(ngettext("{model} is scoring {n} answer…",
                                       "{model} is scoring {n} answers…", len(answers)).format(
            model=judge_entry.name, n=len(answers)))
        return True

    def _export_dialog(self) -> None:
        path, _kind = QFileDialog.getSaveFileName(
            self, _("Export the pass@k chart"), "pass-at-k.png",
            f"{_('PNG image')} (*.png);;{_('SVG image')} (*.svg)")
        if path:
            try:
                written = [self.chart.export(path)]
                if self._sweeping and self.sweep_runs:  # the sweep's chart next to it
                    target = Path(path)
                    written.append(self.sweep_chart.export(
                        target.with_name(f"{target.stem}-budgets{target.suffix}")))
            except OSError as exc:
                self.figures.setText(visible_controls(_("Could not export: {error}").format(
                    error=exc)))
                return
            self.figures.setText(_("Saved {file}.").format(file=written[0].name)
                                 if len(written) == 1 else
                                 _("Saved {first} and {second}.").format(
                                     first=written[0].name, second=written[1].name))

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
