"""One pane on screen: a header (role, model, settings), the transcript, a footer.

The pane draws a :class:`desktop_app.session.pane.PaneSession` and forwards clicks to
it; the conversation itself is data in the session. Streaming cost stays flat: the
session's generation thread only appends events to a deque; a 16 ms timer here polls
the session, which applies that frame's events to the turn and hands back the text that
arrived, merged, so each view gets at most one append per frame (never a re-render).
The answer is rendered as Markdown once, when its turn ends.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.protocol import (
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationRequest,
    Loaded,
    Loading,
    PromptSent,
)
from desktop_app.models.catalog import (
    Availability,
    Catalog,
    ModelEntry,
    cannot_run_reason,
    missing_message,
    state_of,
)
from desktop_app.session.generation import WorkerFactory
from desktop_app.session.pane import PaneConfig, PaneSession, Step, Streamed
from desktop_app.session.quiz import Masker, blind_export, shown_label
from desktop_app.session.turn import Turn, TurnState
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _
from desktop_app.text.units import format_bytes, format_duration
from desktop_app.ui import a11y, theme
from desktop_app.ui.pane_chrome import (
    ROLLOUTS_TIP,
    PaneFooter,
    PaneHeader,
    end_announcement,
    name_pane,
    name_turn,
    pane_frame,
    pane_label,
    role_dot,
)
from desktop_app.ui.pane_settings import PaneSettingsForm
from desktop_app.ui.pane_status import MODEL_STATUSES, RUN_STATUSES, PaneStatus
from desktop_app.ui.tasks import Task, run_task
from desktop_app.ui.turn import TurnWidget
from desktop_app.ui.widgets import ViewHold
from desktop_app.verify import Problem, Verdict, VerdictState

if TYPE_CHECKING:  # the Rollouts window is imported when first opened
    from desktop_app.ui.rollouts import RolloutsView


FRAME_MS = 16

ROLE_HINTS = {  # what an empty pane says about its model
    "base": N_("A base model continues documents: your question is wrapped as a Q&A page."),
    "instruct": N_("An instruct model answers as an assistant."),
    "reasoning": N_("A reasoning model thinks first, then answers."),
}
BLIND_HINT = N_("Which stage will answer here: base, instruct or reasoning? Ask, then guess.")
ROLE_WORDS = {"base": N_("base"), "instruct": N_("instruct"), "reasoning": N_("reasoning")}


class Pane(QFrame):
    """A model picker, settings, and a scrolling conversation (a PaneSession's view)."""

    runFinished = Signal(object, bool)   # (pane, ok)
    configChanged = Signal()
    removeRequested = Signal(object)
    openManagerRequested = Signal()
    activated = Signal(object)

    def __init__(self, catalog: Catalog, config: PaneConfig | None = None,
                 parent: QWidget | None = None, *, worker_factory: WorkerFactory | None = None):
        super().__init__(parent)
        self.session = PaneSession(catalog, config, worker_factory=worker_factory)
        self.turns: list[TurnWidget] = []
        self.turn: TurnWidget | None = None  # the one the running generation fills
        self.expand_thinking_all = False
        self.point_size: float | None = None
        self._verify_tasks: list[Task] = []
        self.rollouts_view: RolloutsView | None = None  # made on first use
        self.blind_label: str | None = None  # the blind quiz's neutral label ("Pane A")
        self.blind_terms: tuple[str, ...] = ()  # ...and the names it masks
        self.number: int | None = None  # set by the window when two panes share a role
        self.announcer = a11y.Announcer(self)  # a finished answer, a verdict: said once

        self.setObjectName("pane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)
        outer.addWidget(self._build_header())
        self.settings_box = PaneSettingsForm()
        self.settings_box.hide()
        self.settings_box.changed.connect(self._read_settings)
        self.settings_box.defaultsRequested.connect(self.reset_settings)
        self.settings_button.toggled.connect(self.settings_box.setVisible)
        self.settings_button.toggled.connect(  # the transcript keeps what was being read
            lambda _on: self.view_hold.hold(self.view_hold.reading_position(self.turns)))
        outer.addWidget(self.settings_box)
        outer.addWidget(self._build_banner())
        outer.addWidget(self._build_transcript(), 1)
        outer.addWidget(self._build_footer())

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._on_frame)

        self.populate_picker()
        self.picker.currentIndexChanged.connect(self._on_pick)
        self._apply_entry()

    def _build_header(self) -> QWidget:
        self.header = PaneHeader()
        self.badge, self.picker = self.header.badge, self.header.picker
        self.settings_button = self.header.settings_button
        self.remove_button = self.header.remove_button
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        return self.header

    def _build_banner(self) -> QFrame:
        """The not-downloaded banner (a state, not an error)."""
        self.banner = QFrame()
        theme.style(self.banner, lambda: (
            f"QFrame {{ background: {theme.subtle_bg()}; border-radius: 6px; }}"))
        banner_layout = QVBoxLayout(self.banner)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_button = QPushButton(_("Open model manager"))
        self.banner_button.clicked.connect(self.openManagerRequested)
        banner_layout.addWidget(self.banner_label)
        banner_layout.addWidget(self.banner_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.banner.hide()
        return self.banner

    def _build_transcript(self) -> QScrollArea:
        self.scroll_area = QScrollArea()
        self.scroll_area.setMinimumWidth(264)  # a pane is at least 280 wide, more if need be
        self.scroll_area.setWidgetResizable(True)
        self.scroll_area.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        theme.style(self.scroll_area, lambda: (
            "QScrollArea { background: transparent; }"
            " QScrollArea > QWidget > QWidget { background: transparent; }"))
        self.transcript = QWidget()
        self.transcript_layout = QVBoxLayout(self.transcript)
        self.transcript_layout.setContentsMargins(0, 0, 4, 0)
        self.transcript_layout.addStretch(1)
        self.empty_label = QLabel()
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        theme.style(self.empty_label, lambda: f"color: {theme.muted_fg()}; padding: 24px;")
        self.transcript_layout.insertWidget(0, self.empty_label)
        self.scroll_area.setWidget(self.transcript)
        self._follow = True
        self.view_hold = ViewHold(self.scroll_area)  # zoom and verdicts keep the place
        bar = self.scroll_area.verticalScrollBar()
        bar.valueChanged.connect(self._on_scroll)
        bar.rangeChanged.connect(self._on_range)
        return self.scroll_area

    def _build_footer(self) -> QWidget:
        self.footer = PaneFooter()
        self.status = self.footer.status
        self.stop_button = self.footer.stop_button
        self.stop_button.clicked.connect(self.stop)
        self.clear_button = self.footer.clear_button
        self.clear_button.clicked.connect(self.clear)
        self.rollouts_button = self.footer.rollouts_button
        self.rollouts_button.clicked.connect(self.open_rollouts)
        return self.footer

    @property
    def footer_status(self) -> PaneStatus:
        return self.footer.shown_status

    def set_status(self, status: PaneStatus, **figures: object) -> None:
        """The footer says ``status`` (its words from :data:`FOOTER_LABELS`, filled with
        ``figures``). While a stop is under way, the run's progress does not replace
        "Stopping…"."""
        if status in RUN_STATUSES and self.session.stopping:
            status, figures = PaneStatus.STOPPING, {}
        self.footer.show_status(status, figures)

    # ---------------------------------------------------------------- model & settings

    @property
    def config(self) -> PaneConfig:
        return self.session.config

    @property
    def catalog(self) -> Catalog:
        return self.session.catalog

    @property
    def entry(self) -> ModelEntry | None:
        return self.session.entry

    @property
    def worker(self) -> ModelHandle | None:
        return self.session.worker

    @property
    def running(self) -> bool:
        return self.session.running

    def model_state(self) -> Availability | None:
        return self.session.model_state()

    @property
    def ready(self) -> bool:
        return self.session.ready

    def populate_picker(self) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        for entry in self.catalog:
            state = state_of(entry)
            ready = state == Availability.READY
            text = entry.name + ("" if ready else f"  · {_(state.label)}")
            self.picker.addItem(role_dot(entry.role, ready), text, entry.id)
            index = self.picker.count() - 1
            role = _(ROLE_WORDS[entry.role]) if entry.role in ROLE_WORDS else entry.role
            tip = f"{role} · {entry.params} {entry.quantization}\n{entry.description}".strip()
            self.picker.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        if self.config.model_id and self.config.model_id not in self.catalog:
            self.picker.addItem(role_dot("", False), _("{model}  · unknown").format(model=self.config.model_id),
                                self.config.model_id)
        index = self.picker.findData(self.config.model_id)
        self.picker.setCurrentIndex(max(index, 0))
        if index < 0 and self.picker.count():
            self.config.model_id = self.picker.currentData()
        self.picker.setToolTip(self.picker.currentText())  # the full name, if elided
        self.picker.blockSignals(False)

    def set_catalog(self, catalog: Catalog) -> None:
        """The catalog changed (models downloaded): refresh names and readiness."""
        self.session.set_catalog(catalog)
        self.populate_picker()
        self._apply_entry()

    def refresh_state(self) -> None:
        """A server answered (or a file changed): redraw the picker's states and the banner."""
        self.populate_picker()
        self._update_state_banner()

    def set_model(self, model_id: str) -> None:
        index = self.picker.findData(model_id)
        if index >= 0:
            self.picker.setCurrentIndex(index)

    def _on_pick(self, _index: int) -> None:
        model_id = self.picker.currentData()
        if model_id == self.config.model_id:
            return
        self.session.set_model(model_id)
        self.picker.setToolTip(self.picker.currentText())
        self._apply_entry()
        self.configChanged.emit()

    def _apply_entry(self) -> None:
        entry = self.entry
        self.badge.set_role(entry.role if entry else "")
        if self.blind_label:  # a model set while blind (the quiz starts again): still neutral
            self.badge.set_role("")
            self.badge.setText(shown_label(self.blind_label))
        self.set_active(False)
        self.settings_box.load(entry, self.config)
        self._update_state_banner()
        self.name_regions()

    def _read_settings(self) -> None:
        entry = self.entry
        if entry is None:
            return
        self.settings_box.store(entry, self.config)
        for turn in self.turns:
            if not turn.prompt_section.isHidden():
                turn.prompt_section.set_expanded(bool(self.config.show_prompt))
            turn.show_probabilities(bool(self.config.probabilities))
        self.configChanged.emit()

    def reset_settings(self) -> None:
        """Back to the catalog's defaults for this model (the model choice stays)."""
        self.session.config = PaneConfig(model_id=self.config.model_id)
        self._apply_entry()
        self.configChanged.emit()

    def set_overrides(self, **values: float | int | bool | str | None) -> None:
        """Set settings from code (snapshot mode, a prepared prompt's settings, bench,
        tests), by setting name (see ``PaneSettingsForm.set_values``)."""
        self.settings_box.set_values(**values)
        self._read_settings()

    def _update_state_banner(self) -> None:
        entry = self.entry
        state = self.model_state()
        if entry is None:
            self.banner_label.setText(
                _("The model '{model}' is not in the catalog. Pick another model.").format(
                    model=escape.html(self.config.model_id)))
            self.banner_button.hide()
            self.banner.show()
        elif state is not None and state != Availability.READY and self.blind_label:
            self.banner_label.setText(_("This pane's model can't run yet: leave the blind "
                                        "quiz to see which it is."))
            self.banner_button.hide()
            self.banner.show()
        elif state is not None and state != Availability.READY:
            name = f"<b>{escape.html(entry.name)}</b>"
            title = (_("{name} can't run yet (a {size} download).").format(
                name=name, size=format_bytes(entry.size))
                if state == Availability.NOT_DOWNLOADED and entry.size
                else _("{name} can't run yet.").format(name=name))
            detail = escape.html(escape.breakable(missing_message(entry, state)))  # as compare
            theme.rich_text(self.banner_label, lambda: (
                f"{title}<br><span style='color:{theme.muted_fg()}'>{detail}</span>"))
            self.banner_button.show()
            self.banner.show()
        else:
            self.banner.hide()
        cannot = (cannot_run_reason(entry) if entry is not None
                  else _("The model '{model}' is not in the catalog.").format(
                      model=self.config.model_id))
        self.rollouts_button.setEnabled(not cannot)  # no rollouts that could never run
        self.rollouts_button.setToolTip(cannot or _(ROLLOUTS_TIP))
        if not self.running:  # the footer says what the pane can do, not "Ready"
            if state is None:
                self.set_status(PaneStatus.UNKNOWN_MODEL)
            elif state != Availability.READY:
                self.set_status(PaneStatus.NOT_READY, availability=state)
            elif self.footer_status in MODEL_STATUSES:
                self.set_status(PaneStatus.READY)
        self._update_empty()

    def _update_empty(self) -> None:
        entry = self.entry
        if self.turns or entry is None or not self.ready:
            self.empty_label.hide()
            return
        hint = BLIND_HINT if self.blind_label else ROLE_HINTS.get(entry.role, "")
        self.empty_label.setText(_(hint) if hint else "")
        self.empty_label.show()

    def request_for(self, prompt: str) -> GenerationRequest:
        return self.session.request_for(prompt)

    # ---------------------------------------------------------------- running

    def send(self, prompt: str, problem: Problem | None = None) -> bool:
        """Start a turn with this prompt; False if the pane can't (busy, not downloaded)."""
        return self._started(self.session.send(prompt, problem))

    def _started(self, data: Turn | None) -> bool:
        """Show a turn the session has just started (or could not start)."""
        if data is None:
            if not self.running:
                self._update_state_banner()
            return False
        widget = self._add_turn_widget(data)
        self._follow = True
        if data.state == TurnState.FAILED:  # no model process could be made
            widget.show_failed(self.point_size)
            self._set_failed(data)
            return False
        self.turn = widget
        widget.show_loading(data.loading_detail)
        self.set_status(PaneStatus.TURN, turn=data.state)
        self.stop_button.setEnabled(True)
        self.picker.setEnabled(False)
        self.timer.start()
        return True

    def _add_turn_widget(self, data: Turn) -> TurnWidget:
        """A turn's view in the transcript, where the turn is in the conversation (the end,
        or the place of a retried earlier turn)."""
        assert self.entry is not None
        blind = self.blind_terms if self.blind_label else None  # folded alike when blind
        widget = TurnWidget(data, self.entry, show_prompt=blind is None and bool(
            self.settings_box.show_prompt_box.isChecked()), blind=blind)
        widget.retryRequested.connect(lambda w=widget: self.retry(w))
        widget.continueRequested.connect(lambda w=widget: self.extend(w))
        widget.openManagerRequested.connect(self.openManagerRequested)
        widget.verifyRequested.connect(lambda w=widget: self.verify(w))
        widget.branchRequested.connect(lambda i, t, w=widget: self.branch(w, i, t))
        widget.branchShown.connect(lambda i, w=widget: self.show_branch(w, i))
        name_turn(widget, self.accessible_label)
        if self.point_size:
            theme.apply_point_size(widget, self.point_size)
        place = self.session.turns.index(data) if data in self.session.turns else len(self.turns)
        place = min(place, len(self.turns))
        before = self.turns[place] if place < len(self.turns) else None
        self.transcript_layout.insertWidget(
            self.transcript_layout.indexOf(before) if before is not None
            else self.transcript_layout.count() - 1, widget)
        widget.show()
        self.turns.insert(place, widget)
        self._update_empty()
        return widget

    def stop(self) -> None:
        if self.running:
            self.session.stop()
            self.set_status(PaneStatus.STOPPING)
            self.stop_button.setEnabled(False)  # asked once; the run ends within a token
        if self.rollouts_view is not None:
            self.rollouts_view.stop()  # Stop (and Esc, Stop all) ends the pane's rollouts too

    def retry(self, widget: TurnWidget) -> None:
        if not self.running:
            self._again(widget, self.session.retry)

    def extend(self, widget: TurnWidget) -> None:
        """Continue a reply the token limit cut off: it resumes in its own turn (a served
        chat model's runs again with a larger limit, see PaneSession.extend)."""
        if not self.running and widget.data.cut_off:
            self._again(widget, self.session.extend,
                        in_place=self.session.can_resume(widget.data))

    def _again(self, widget: TurnWidget, run_again: Callable[[Turn], Turn | None], *,
               in_place: bool = False) -> None:
        """Retry or Continue: a branch shown (or a reply resumed) runs on in its own turn;
        a first reply is replaced by a new turn. The turn's other branches stay either way."""
        if in_place or widget.data.branched_at is not None:
            if run_again(widget.data) is not None:
                self._branch_started(widget)
            return
        self._remove_turn_widget(widget)
        self._update_state_banner()
        self._started(run_again(widget.data))

    def branch(self, widget: TurnWidget, index: int, chosen: str) -> bool:
        """Continue a turn from its token ``index`` with ``chosen`` instead (a new branch
        of that turn; the others stay, a click away)."""
        if self.session.branch(widget.data, index, chosen) is None:
            return False
        return self._branch_started(widget)

    def _branch_started(self, widget: TurnWidget) -> bool:
        widget.show_branch_started()
        if widget.data.state == TurnState.FAILED:
            widget.show_failed(self.point_size)
            self._set_failed(widget.data)
            return False
        self.turn = widget
        self.set_status(PaneStatus.TURN, turn=widget.data.state)
        self.stop_button.setEnabled(True)
        self.picker.setEnabled(False)
        self.timer.start()
        return True

    def show_branch(self, widget: TurnWidget, index: int) -> None:
        if widget.data.done and widget.data.branches.switch(widget.data, index):
            widget.show_data(self.point_size)

    def restore(self, turns: list[Turn]) -> None:
        """Show turns taken from a removed pane (undo), as they ended."""
        self.session.restore(turns)
        for data in turns:
            widget = self._add_turn_widget(data)
            widget.show_data(self.point_size)  # as it ended, then folded as the pane folds
            if not widget.thinking.isHidden():
                self._fold_thinking(widget)

    def _remove_turn_widget(self, widget: TurnWidget) -> None:
        if widget in self.turns:
            self.turns.remove(widget)
        self.transcript_layout.removeWidget(widget)
        widget.deleteLater()
        if self.turn is widget:
            self.turn = None

    def clear(self) -> None:
        """Forget the conversation; while generating, stop it too (the run's last events
        are dropped; the window still hears that the pane's round ended)."""
        running = self.running
        self.session.clear()
        for widget in list(self.turns):
            self._remove_turn_widget(widget)
        self.set_status(PaneStatus.STOPPING if running else PaneStatus.READY)
        self._update_state_banner()

    def _on_frame(self) -> None:
        """Show what arrived since the last frame. A bug in showing it must not leave the
        pane "Generating…" forever, nor raise into Qt: the turn fails, with the error."""
        try:
            self._show_new_events()
        except Exception as exc:  # noqa: BLE001
            self._internal_error(exc)

    def _show_new_events(self) -> None:
        steps, ended = self.session.poll()
        widget = self.turn
        if widget is not None and not self.session.closing:
            for step in steps:
                self._show_step(widget, step)
            if not ended:
                self._tick(widget)
        if ended:
            self.timer.stop()
            self.stop_button.setEnabled(False)
            self.picker.setEnabled(True)
            self.turn = None
            if self.session.closing:
                return
            if widget is None:  # cleared while generating: the round ended all the same
                self.set_status(PaneStatus.READY)
                self._update_state_banner()
                self.runFinished.emit(self, True)
                return
            if widget.data.continue_error:  # the reply as it was before, and why
                if widget.thinking.live:
                    self._fold_thinking(widget)
                widget.show_data(self.point_size)  # the turn says why, in one sentence
                self.set_status(PaneStatus.CONTINUE_FAILED)
            elif widget.data.state == TurnState.FAILED and widget.error_box.isHidden():
                self._show_failure(widget)  # ended without a Failed event
            if self._follow:  # the metrics and actions appear below what was followed
                self.view_hold.hold(self._scroll_to_end)
            self._announce_end(widget)
            self.runFinished.emit(self, widget.data.state == TurnState.DONE)

    def _scroll_to_end(self) -> None:
        if self._follow:
            bar = self.scroll_area.verticalScrollBar()
            bar.setValue(bar.maximum())

    def _tick(self, widget: TurnWidget) -> None:
        """The footer's clock and the live thinking header move between slow tokens: the
        window's clock since the turn started (the model's figure replaces it at the end)."""
        data = widget.data
        if data.state not in (TurnState.THINKING, TurnState.ANSWERING):
            return
        self.set_status(PaneStatus.STREAMING, turn=data.state, tokens=data.tokens,
                        elapsed=format_duration(data.elapsed_now()))
        widget.show_thinking_stats()

    def _show_step(self, widget: TurnWidget, step: Step) -> None:
        data = widget.data
        if isinstance(step, Streamed):
            if step.thinking and widget.thinking.isHidden():
                widget.thinking.start_live(data.thinking_header(live=True))
            if step.answer and widget.thinking.live:
                self._fold_thinking(widget)
            widget.append(step.thinking, step.answer, step.tokens)
        elif isinstance(step, Loading):
            widget.show_loading(step.detail)
            self.set_status(PaneStatus.LOADING)
        elif isinstance(step, Loaded):
            widget.show_loading(_("sending the prompt"))
            self.set_status(PaneStatus.LOADED, seconds=float(step.load_s))
        elif isinstance(step, PromptSent):
            widget.hide_loading()
            widget.show_prompt_sent()
            self.set_status(PaneStatus.TURN, turn=data.state)
            if step.starts_in_thinking:
                widget.thinking.start_live(data.thinking_header(live=True))
        elif isinstance(step, Finished):
            if not widget.thinking.isHidden() and (widget.thinking.live or data.thinking_s):
                self._fold_thinking(widget)
            widget.show_finished(self.point_size)
            self.set_status(PaneStatus.FINISHED,
                            finish=FinishReason(step.result.finish_reason))
        elif isinstance(step, Failed) and data.state == TurnState.FAILED:
            self._show_failure(widget)  # (a failed Continue is shown when the run ends)

    def _show_failure(self, widget: TurnWidget) -> None:
        if widget.thinking.live:
            self._fold_thinking(widget)
        widget.show_failed(self.point_size)
        self._set_failed(widget.data)

    def _set_failed(self, data: Turn) -> None:
        kind = FailureKind(data.failure.kind) if data.failure else FailureKind.ERROR
        self.set_status(PaneStatus.FAILED, failure=kind)

    def _fold_thinking(self, widget: TurnWidget) -> None:
        collapse = not self.expand_thinking_all and not widget.thinking.user_touched
        widget.fold_thinking(collapse=collapse)

    def _internal_error(self, exc: Exception) -> None:
        self.timer.stop()
        self.session.abandon(_("Internal error while showing the reply: {error}").format(
            error=f"{type(exc).__name__}: {exc}"))
        self.stop_button.setEnabled(False)
        self.picker.setEnabled(True)
        widget, self.turn = self.turn, None
        self.set_status(PaneStatus.FAILED, failure=FailureKind.ERROR)
        if widget is not None:
            try:
                widget.show_failed(self.point_size)
            except Exception:  # noqa: BLE001 - the footer already says it failed
                pass
            self.runFinished.emit(self, False)

    # ---------------------------------------------------------------- verify

    def verify(self, widget: TurnWidget) -> None:
        """Check the turn in the sandbox, off the GUI thread; the verdict is the turn's."""
        widget.show_verifying()
        session, data = self.session, widget.data

        def shown(verdict: Verdict) -> None:
            data.verdict = verdict
            widget.show_verdict()
            self._say(_("{pane}: {verdict}").format(pane=self.accessible_label,
                                                     verdict=verdict.headline))
            if widget in self.turns:  # below the fold on a projector: bring it into view
                self.view_hold.hold(lambda: self.scroll_area.ensureWidgetVisible(
                    widget.verify_label, 0, 8))

        task = run_task(widget, lambda _task: session.verify(data), on_success=shown,
                        on_failure=lambda exc: shown(_checker_failed(exc)), name="verify")
        self._verify_tasks = [t for t in self._verify_tasks if t.running] + [task]

    # ---------------------------------------------------------------- view

    def set_blind(self, label: str | None, terms: tuple[str, ...] = ()) -> None:
        """The blind quiz: the pane shows ``label`` where its badge and picker were, no
        role colour, no settings (they name the model's options), and masks ``terms`` in
        the turns sent from now on and in its export; None shows the model again, and its
        turns as written (names unmasked, the text sent shown)."""
        self.blind_label, self.blind_terms = label, terms
        for widget in (self.picker, self.settings_button, self.remove_button,
                       self.rollouts_button):
            widget.setVisible(label is None)
        if label is not None:
            self.settings_button.setChecked(False)
            self.badge.set_role("")
            self.badge.setText(shown_label(label))
            self.badge.setToolTip(_("Which stage is this? Guess in the quiz bar above."))
        else:
            self.badge.set_role(self.entry.role if self.entry else "")
            for turn in self.turns:  # the quiz is over: the words as the model wrote them
                turn.unblind()
        self.set_active(False)
        self._update_state_banner()
        self.name_regions()

    def set_thinking_expanded(self, expanded: bool) -> None:
        self.expand_thinking_all = expanded
        for widget in self.turns:
            if not widget.thinking.isHidden() and not widget.thinking.live:
                widget.thinking.set_expanded(expanded)
                widget.thinking.user_touched = False

    def set_point_size(self, point_size: float) -> None:
        """Zoom: every widget of the pane (answers, headers, buttons) at ``point_size``;
        the reader stays where they were reading."""
        place = self.view_hold.reading_position(self.turns)
        self.point_size = point_size
        theme.apply_point_size(self, point_size)
        self.header.fit()
        self.footer.fit()
        for widget in self.turns:
            theme.apply_point_size(widget, point_size)
            if widget.data.done and widget.data.answer:
                widget.render_markdown(point_size)
        self.view_hold.hold(place)

    def _on_scroll(self, value: int) -> None:
        bar = self.scroll_area.verticalScrollBar()
        self._follow = value >= bar.maximum() - 8

    def _on_range(self, _min: int, maximum: int) -> None:
        if self._follow and self.running:
            self.scroll_area.verticalScrollBar().setValue(maximum)

    def mousePressEvent(self, event: Any) -> None:
        self.activated.emit(self)
        super().mousePressEvent(event)

    def set_active(self, active: bool) -> None:
        """Role colour along the top; the keyboard-focused pane gets a role-coloured frame."""
        role = self.entry.role if self.entry and not self.blind_label else ""
        theme.style(self, lambda: pane_frame(role, active))

    # ---------------------------------------------------------------- screen reader & keys

    @property
    def accessible_label(self) -> str:
        """What a screen reader calls the pane: its role ("Instruct pane"), numbered when
        another pane has the same role, its neutral label in the blind quiz."""
        return shown_label(self.blind_label) if self.blind_label else pane_label(self.entry.role if self.entry else "",
                                              self.number)

    def set_number(self, number: int | None) -> None:
        """The window numbers panes that share a role ("Instruct pane 2")."""
        if number != self.number:
            self.number = number
            self.name_regions()

    def name_regions(self) -> None:
        label = self.accessible_label
        name_pane(self, label)
        for widget in self.turns:
            name_turn(widget, label)

    def _say(self, text: str) -> None:
        """A polite announcement (masked while blind: nothing said names the model)."""
        self.announcer.say(Masker(self.blind_terms).mask(text) if self.blind_label else text)

    def _announce_end(self, widget: TurnWidget) -> None:
        """The reply has ended: said once (never token by token), with the answer's start."""
        self._say(end_announcement(self.accessible_label, widget.data, self.status.text()))

    def toggle_thinking(self) -> bool:
        """Fold or unfold the last reply's thinking (Ctrl+Shift+T); the fold takes the
        focus, so a screen reader says its new state. False where no thinking is shown."""
        widget = next((w for w in reversed(self.turns) if not w.thinking.isHidden()), None)
        if widget is None:
            return False
        section = widget.thinking
        section.user_touched = True
        section.set_expanded(not section.expanded)
        section.header.setFocus(Qt.FocusReason.ShortcutFocusReason)
        self.scroll_area.ensureWidgetVisible(section.header)
        return True

    def verify_last(self) -> bool:
        """Verify the last reply (Ctrl+Shift+V); False while none has finished."""
        widget = self.turns[-1] if self.turns else None
        if (widget is None or widget is self.turn or not widget.data.done
                or widget.action_bar.isHidden() or not widget.verify_button.isEnabled()):
            return False
        self.verify(widget)
        return True

    def focus_answer(self) -> None:
        """Put the focus on the last answer (the model picker in an empty pane), where a
        screen reader starts reading after F6."""
        widget = self.turns[-1] if self.turns else None
        target: QWidget = self.picker
        if widget is not None:
            shown = [w for w in (widget.answer, widget.token_view) if not w.isHidden()]
            target = shown[0] if shown else widget
        target.setFocus(Qt.FocusReason.ShortcutFocusReason)
        if target is not self.picker:
            self.scroll_area.ensureWidgetVisible(target, 0, 8)

    # ---------------------------------------------------------------- export/teardown

    def export_data(self) -> dict[str, Any]:
        """The conversation as data (export reads this, never the labels on screen),
        with the pane's last rollouts run if it has one."""
        data = self.session.export()
        if self.blind_label:  # the blind quiz: nothing in the export names the model
            return blind_export(data, self.blind_label, Masker(self.blind_terms))
        rollouts = self.rollouts_view
        run = rollouts.export_data() if rollouts is not None else None
        if run is not None:
            data["rollouts"] = run
        return data

    def background_threads(self) -> list[threading.Thread]:
        threads = self.session.background_threads()
        threads += [t.thread for t in self._verify_tasks if t.running and t.thread]
        return threads

    def open_rollouts(self) -> RolloutsView | None:
        from desktop_app.ui.rollouts import open_rollouts  # issue 12's window

        return open_rollouts(self)

    def shutdown(self) -> ModelHandle | None:
        """Stop generating and hand back the worker for the caller to close."""
        self.timer.stop()
        if self.rollouts_view is not None:
            self.rollouts_view.shutdown()
        return self.session.shutdown()


def _checker_failed(exc: BaseException) -> Verdict:
    return Verdict(verdict=VerdictState.ERROR,
                   reason=_("The checker failed: {error}").format(error=exc))
