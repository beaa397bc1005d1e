"""One turn on screen: the prompt, the loading line, the thinking fold, the answer, the
metrics, the actions (copy, Verify) and the verdict.

It draws a :class:`desktop_app.session.turn.Turn` and keeps no text of its own: the
streamed pieces are appended to the views as they arrive (never re-rendered), and the
answer is rendered as Markdown once, from the turn's data, when the turn ends. With token
probabilities the same fold and answer hold tinted tokens instead of text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PySide6.QtCore import QPoint, Qt, Signal
from PySide6.QtGui import QColor, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.protocol import (
    FAILURE_LABELS,
    Failed,
    FailureKind,
    FinishReason,
    GenerationResult,
)
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.sources import RemoteSource
from desktop_app.session.quiz import TEMPLATE_HIDDEN, Masker
from desktop_app.session.tokens import (
    NO_EXACT_PROMPT,
    NOT_OFFERED,
    NOT_RECORDED,
    TokenStep,
    can_resume,
    exact_prompt_known,
    stop_cut_index,
)
from desktop_app.session.turn import Turn, TurnState
from desktop_app.text import escape
from desktop_app.text.fences import CodeBlock, code_blocks
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.ui import a11y, theme
from desktop_app.ui.markdown import CodeHighlighter, render_html, style_code_blocks
from desktop_app.ui.probabilities import (
    Placed,
    Side,
    TokenRouter,
    TokenView,
    alternatives_menu,
    legend_label,
)
from desktop_app.ui.prompt_tokens import PromptView
from desktop_app.ui.widgets import (
    AutoHeightTextBrowser,
    CollapsibleSection,
    FlowLayout,
    StreamTextView,
    ThinkingSection,
)
from desktop_app.verify import Problem, Verdict, VerdictState
from desktop_app.verify.verdict import got_in_headline

CONTINUATION_CAPTION = N_("↓ The model's continuation")


def continuation_sheet(role: str) -> str:
    """A base model's continuation reads apart from the document above it, as in export:
    a rule in the role's colour down its left and a faint tint of it (the text itself
    stays exact plain text, for reading and for copy)."""
    color = QColor(theme.role_color(role))
    tint = f"rgba({color.red()}, {color.green()}, {color.blue()}, " \
           f"{0.16 if theme.is_dark() else 0.07})"
    return (f"QTextBrowser {{ background: {tint}; border: none;"
            f" border-left: 3px solid {color.name()}; padding-left: 4px; }}")


EMPTY_ANSWER_NOTES = {  # what an empty answer says, by why the reply ended
    FinishReason.CANCELLED: N_("(stopped)"),
    FinishReason.LENGTH: N_("(no answer before the token limit)"),
}


def muted() -> str:
    return f"color: {theme.muted_fg()};"


class TurnWidget(QFrame):
    """Draws one :class:`~desktop_app.session.turn.Turn` (``self.data``)."""

    retryRequested = Signal()
    continueRequested = Signal()
    openManagerRequested = Signal()
    verifyRequested = Signal()
    branchRequested = Signal(int, str)  # (token index, the token to continue from instead)
    branchShown = Signal(int)  # show branch n (0-based)

    def __init__(self, data: Turn, entry: ModelEntry, *, show_prompt: bool = False,
                 blind: tuple[str, ...] | None = None, parent: QWidget | None = None):
        """``blind``: the blind quiz's names to mask (``session/quiz.py``): the text is
        masked as it streams, the text sent is hidden, and a base model's continuation is
        drawn as any answer is (its monospace look would tell)."""
        super().__init__(parent)
        self.data = data
        self.entry = entry
        self.blind = blind
        self._masker = Masker(blind or ())
        self._streams = {kind: Masker(blind or ()) for kind in ("thinking", "answer")}
        self._code_pt: float | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 8)
        layout.setSpacing(4)

        self.user_label = QLabel(data.prompt)
        a11y.describe(self.user_label, _("Your prompt"))
        self.user_label.setWordWrap(True)
        self.user_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.user_label.setTextFormat(Qt.TextFormat.PlainText)
        theme.style(self.user_label, lambda: (
            f"QLabel {{ background: {theme.subtle_bg()}; border-radius: 6px; padding: 6px 8px; }}"))
        layout.addWidget(self.user_label)

        self.loading = QWidget()
        row = QHBoxLayout(self.loading)
        row.setContentsMargins(0, 0, 0, 0)
        self.loading_bar = QProgressBar()
        self.loading_bar.setRange(0, 0)
        self.loading_bar.setMaximumHeight(6)
        self.loading_bar.setTextVisible(False)
        self.loading_label = QLabel(_("Starting…"))
        a11y.describe(self.loading_bar, _("Working"))
        theme.style(self.loading_label, muted)
        row.addWidget(self.loading_label)
        row.addWidget(self.loading_bar, 1)
        layout.addWidget(self.loading)

        self.prompt_view = StreamTextView(max_height=200)
        self.prompt_view.setFont(theme.mono_font())
        title = self._prompt_title(entry, blind is not None)
        a11y.describe(self.prompt_view, _("Text sent to the model"))
        self.prompt_box = PromptView(self.prompt_view)  # the text, or its tokens
        self.prompt_section = CollapsibleSection(title, self.prompt_box, expanded=show_prompt)
        self.prompt_section.hide()
        layout.addWidget(self.prompt_section)
        self.prompt_notes = QLabel()  # how the prompt was adapted: one muted line each
        self.prompt_notes.setWordWrap(True)
        self.prompt_notes.setTextFormat(Qt.TextFormat.PlainText)
        self.prompt_notes.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        theme.style(self.prompt_notes, muted)
        theme.set_font_scale(self.prompt_notes, 0.9)
        self.prompt_notes.hide()
        layout.addWidget(self.prompt_notes)

        self.thinking_token_view = TokenView(max_height=ThinkingSection.THINKING_HEIGHT)
        self.thinking = ThinkingSection(token_view=self.thinking_token_view)
        self.thinking.token_count = lambda turn=data: turn.thinking_tokens  # its name says it
        a11y.describe(self.thinking_token_view, _("Tokens of the thinking"),
                      _("Left and Right move from token to token; Enter opens the "
                        "alternatives to continue from."))
        self.thinking.hide()
        layout.addWidget(self.thinking)

        self.answer = AutoHeightTextBrowser()
        a11y.describe(self.answer, _("Answer"))
        self.highlighter = CodeHighlighter(self.answer.document())
        self.plain_answer = entry.prompt.style == "document" and blind is None
        self.continuation_label = QLabel(_(CONTINUATION_CAPTION))  # where the model's text begins
        theme.style(self.continuation_label, muted)
        theme.set_font_scale(self.continuation_label, 0.85)
        self.continuation_label.hide()
        layout.addWidget(self.continuation_label)
        if self.plain_answer:  # a base model's exact continuation of the document above
            self._style_continuation()
        layout.addWidget(self.answer)
        self._build_tokens(layout)

        self._build_error_box(layout)

        self.metrics = QLabel()
        a11y.describe(self.metrics, _("Metrics"))
        self.metrics.setWordWrap(True)
        theme.style(self.metrics, muted)
        theme.set_font_scale(self.metrics, 0.9)
        self.metrics.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.metrics)

        self._build_actions(layout)
        theme.on_change(self, "document", TurnWidget.retheme)

    def _build_tokens(self, layout: QVBoxLayout) -> None:
        """With probabilities, the reply is drawn token by token: the thinking's tokens in
        the thinking fold, the answer's in place of the answer (``token_view``)."""
        # drawn as tokens now (not in the blind quiz: a token's text is not masked)
        self.token_mode = self.data.probabilities and self.blind is None
        self.probabilities_wanted = self.data.probabilities  # the pane's toggle
        self.token_view = TokenView()
        if self.plain_answer:
            self.token_view.setFont(theme.mono_font())
            theme.style(self.token_view, lambda: continuation_sheet(self.entry.role))
        self.router: TokenRouter | None = None  # made when the reply's start is known
        for view in (self.token_view, self.thinking_token_view):
            view.tokenClicked.connect(self._token_clicked)
        self.token_legend = legend_label()
        self.token_note = QLabel()
        a11y.describe(self.token_note, _("Token probabilities"))
        self.token_note.setWordWrap(True)
        theme.style(self.token_note, muted)
        self.token_note.hide()
        for widget in (self.token_view, self.token_legend, self.token_note):
            layout.addWidget(widget)
        self._show_mode()

    def _route(self, steps: Sequence[TokenStep]) -> list[Placed]:
        """Where the reply's next tokens go (the reply has begun: its start is known)."""
        if self.router is None:
            self.router = TokenRouter(self.data.thinking_format,
                                      starts_in_thinking=self.data.starts_in_thinking)
        return self.router.route(steps)

    def _show_mode(self) -> None:
        """Show the views of the current mode: tinted tokens, or text."""
        tokens = self.token_mode
        self.answer.setVisible(not tokens)
        self.token_view.setVisible(tokens)
        self.token_legend.setVisible(tokens)
        self.thinking.show_tokens(tokens)

    def _build_error_box(self, layout: QVBoxLayout) -> None:
        self.error_box = QFrame()
        theme.style(self.error_box, lambda: (
            f"QFrame {{ border: 1px solid {theme.fail_color()}; border-radius: 6px; }}"
            " QLabel { border: none; }"))
        err = QVBoxLayout(self.error_box)
        self.error_label = QLabel()
        a11y.describe(self.error_label, _("Error"))
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        err.addWidget(self.error_label)
        err_buttons = QHBoxLayout()
        self.retry_button = QPushButton(_("Retry"))
        self.retry_button.clicked.connect(self.retryRequested)
        self.manager_button = QPushButton(_("Open model manager"))
        self.manager_button.clicked.connect(self.openManagerRequested)
        err_buttons.addWidget(self.retry_button)
        err_buttons.addWidget(self.manager_button)
        err_buttons.addStretch(1)
        err.addLayout(err_buttons)
        self.error_box.hide()
        layout.addWidget(self.error_box)

    def _build_actions(self, layout: QVBoxLayout) -> None:
        self.action_bar = QWidget()
        actions = FlowLayout(self.action_bar)  # wraps in a narrow pane at projector sizes
        self.copy_answer_button = QToolButton()
        self.copy_answer_button.setText(_("Copy answer"))
        self.copy_answer_button.clicked.connect(self.copy_answer)
        self.copy_code_button = QToolButton()
        self.copy_code_button.setText(_("Copy code"))
        self.copy_code_button.clicked.connect(self.copy_code)
        self.verify_button = QToolButton()
        self.verify_button.setText(_("Verify"))
        self.verify_button.setToolTip(_("Check this answer: run its code or compare its "
                                        "number with the practice problem's answer, in a "
                                        "sandbox."))
        self.verify_button.clicked.connect(self.verifyRequested)
        self.continue_button = QToolButton()
        self.continue_button.setText(_("Continue"))
        self.continue_button.clicked.connect(self.continueRequested)
        self.continue_button.hide()
        self.branch_prev = QToolButton()
        self.branch_prev.setText("‹")
        a11y.describe(self.branch_prev, _("Previous branch"),
                      _("The previous branch of this reply"))
        self.branch_prev.setToolTip(_("The previous branch of this reply"))
        self.branch_prev.clicked.connect(lambda: self.branchShown.emit(
            self.data.branches.index - 1))
        self.branch_label = QLabel()
        self.branch_next = QToolButton()
        self.branch_next.setText("›")
        a11y.describe(self.branch_next, _("Next branch"), _("The next branch of this reply"))
        self.branch_next.setToolTip(_("The next branch of this reply"))
        self.branch_next.clicked.connect(lambda: self.branchShown.emit(
            self.data.branches.index + 1))
        for button in (self.branch_prev, self.branch_next, self.continue_button,
                       self.copy_answer_button, self.copy_code_button, self.verify_button):
            button.setAutoRaise(True)
        for widget in (self.branch_prev, self.branch_label, self.branch_next,
                       self.continue_button, self.copy_answer_button, self.copy_code_button,
                       self.verify_button):
            actions.addWidget(widget)
        self._show_branch_bar()
        self.action_bar.hide()
        layout.addWidget(self.action_bar)

        self.verify_label = QLabel()
        a11y.describe(self.verify_label, _("Verdict"))
        self.verify_label.setWordWrap(True)
        self.verify_label.setTextFormat(Qt.TextFormat.RichText)
        self.verify_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify_label.hide()
        layout.addWidget(self.verify_label)
        self.verify_output = StreamTextView(max_height=160)
        self.verify_output.setFont(theme.mono_font())
        a11y.describe(self.verify_output, _("Output of the checked code"))
        self.verify_section = CollapsibleSection(_("Output (stdout / stderr)"),
                                                 self.verify_output)
        self.verify_section.hide()
        layout.addWidget(self.verify_section)

    def unblind(self) -> None:
        """The blind quiz is over: the turn is drawn again from its data as written, names
        and the text sent included (the data was never masked, only what was shown);
        a reply still streaming goes on unmasked."""
        if self.blind is None:
            return
        self.blind = None
        self._masker = Masker(())
        self._streams = {kind: Masker(()) for kind in ("thinking", "answer")}
        self.prompt_section.set_title(self._prompt_title(self.entry))
        self.plain_answer = self.entry.prompt.style == "document"
        if self.plain_answer:
            self._style_continuation()
            self.token_view.setFont(theme.mono_font(self._code_pt))
            theme.style(self.token_view, lambda: continuation_sheet(self.entry.role))
        self.token_mode = self.probabilities_wanted and bool(self.data.token_steps)
        if self.data.done:
            self.show_data(self._code_pt)
            return
        self._draw_reply()  # what has streamed so far, as written
        if self.data.prompt_sent:
            self.show_prompt_sent()

    @staticmethod
    def _prompt_title(entry: ModelEntry, blind: bool = False) -> str:
        return (_("Text sent (hidden in the quiz)") if blind
                else _("What the base model received (the document it continues)")
                if entry.role == "base" else _("Exact text sent to the model"))

    def _style_continuation(self) -> None:
        """A base model's exact continuation: monospace, its role's left rule."""
        self.answer.setFont(theme.mono_font(self._code_pt))
        self.answer.setToolTip(_("The base model's exact continuation of the document "
                                 "it received"))
        theme.style(self.answer, lambda: continuation_sheet(self.entry.role))

    # -- the data, read through (tests and the window ask the widget)

    @property
    def prompt(self) -> str:
        return self.data.prompt

    @property
    def problem(self) -> Problem | None:
        return self.data.problem

    @property
    def answer_raw(self) -> str:
        return self.data.answer

    @property
    def result(self) -> GenerationResult | None:
        return self.data.result

    @property
    def failed(self) -> Failed | None:
        return self.data.failure

    @property
    def verdict(self) -> Verdict | None:
        return self.data.verdict

    @property
    def done(self) -> bool:
        return self.data.done

    # -- streaming

    def show_loading(self, detail: str) -> None:
        if self.blind is not None:  # "loading SmolLM2-135M-Instruct.Q4_1.gguf" would tell
            detail = _("loading the model")
        self.loading_label.setText(detail[:1].upper() + detail[1:] + "…")
        self.loading.show()

    def hide_loading(self) -> None:
        self.loading.hide()

    def show_prompt_sent(self) -> None:
        sent = self.data.prompt_sent
        if self.blind is not None:  # the template is a tell: it names the family
            self.prompt_box.set_prompt(_(TEMPLATE_HIDDEN), ())
        else:
            self.prompt_box.set_prompt(sent, self.data.prompt_tokens.get(sent, ()))
        self.prompt_section.show()
        self.continuation_label.setVisible(self.plain_answer)
        notes = self.data.prompt_notes if self.blind is None else []
        self.prompt_notes.setText("\n".join(notes))
        self.prompt_notes.setVisible(bool(notes))

    def append(self, thinking: str, answer: str, tokens: Sequence[TokenStep] = ()) -> None:
        """Append one frame's worth of streamed text, or, with probabilities, its tokens
        (the turn's data has them already)."""
        if self.token_mode:
            if tokens or self.data.token_steps or not (thinking or answer):
                self._place(self._route(tokens))
                return
            self.leave_token_mode()  # text came without figures: drawn as text from here
            return
        thinking = self._streams["thinking"].feed(thinking) if thinking else ""
        if answer:  # the thinking is over: what its masker held back belongs to it
            thinking += self._streams["thinking"].flush()
            answer = self._streams["answer"].feed(answer)
        if thinking:
            if not self.thinking.live:
                self.thinking.start_live(self.data.thinking_header(live=True))
            self.thinking.append(thinking)
        if answer:
            self.answer.append_text(answer)

    def _place(self, routed: list[Placed], *, afresh: bool = False) -> None:
        """Append routed tokens to their views, one insertion per view (``afresh``: the
        views are drawn again with only these)."""
        steps = self.data.token_steps
        for side, view in ((Side.FOLD, self.thinking_token_view),
                           (Side.ANSWER, self.token_view)):
            placed = [(index, text) for where, index, text in routed if where is side]
            draw = view.set_steps if afresh else view.append_steps
            draw([steps[index] for index, _ in placed], [index for index, _ in placed],
                 [text for _, text in placed])

    def _draw_reply(self) -> None:
        """Draw the reply shown from the turn's data, in the current mode (another branch,
        probabilities switched, a restored turn); the fold keeps its state."""
        self._show_mode()
        data = self.data
        if self.token_mode:
            self.router = None
            routed = self._route(data.token_steps)
            if data.done and self.router is not None:
                routed += self.router.finish()
            self._place(routed, afresh=True)
        else:
            self.thinking.view.set_text(self._masker.mask(data.thinking))
            self.answer.setPlainText(self._masker.mask(data.answer))  # rendered when finished
        if not self._has_thinking():
            self.thinking.hide()
        elif self.thinking.isHidden() and data.done:
            self.thinking.fold(data.thinking_header())
            self.thinking.show()

    def _has_thinking(self) -> bool:
        """Whether the fold has something to show in the current mode."""
        if self.token_mode:
            return bool(self.thinking_token_view.steps)
        return bool(self.data.thinking)

    def _token_clicked(self, index: int, where: QPoint) -> None:
        step = self.data.token_steps[index] if index < len(self.data.token_steps) else None
        if step is None:
            return
        exact = exact_prompt_known(self.entry)
        menu = alternatives_menu(self, step, can_branch=self.data.done and exact)
        if not exact:
            menu.addSeparator()
            menu.addAction(_(NO_EXACT_PROMPT)).setEnabled(False)
        picked = menu.exec(where)
        menu.deleteLater()
        if picked is not None and isinstance(picked.data(), str) and picked.data():
            self.branchRequested.emit(index, picked.data())

    def _show_branch_bar(self) -> None:
        branches = self.data.branches
        several = branches.count > 1
        for widget in (self.branch_prev, self.branch_label, self.branch_next):
            widget.setVisible(several)
        self.branch_label.setText(f"{branches.index + 1}/{branches.count}")
        a11y.describe(self.branch_label, _("Branch {index} of {count}").format(
            index=branches.index + 1, count=branches.count))
        self.branch_label.setToolTip(self._branch_tip())
        self.branch_prev.setEnabled(self.data.done and branches.index > 0)
        self.branch_next.setEnabled(self.data.done and branches.index < branches.count - 1)

    def _branch_tip(self) -> str:
        at = self.data.branched_at
        if at is None:
            return _("The reply as first generated")
        return _("Continued from token {index} with {token} instead").format(
            index=at[0] + 1, token=repr(at[1]))

    def show_branch_started(self) -> None:
        """A new branch runs in this turn: its tokens so far, no metrics or actions yet;
        the fold live again if it continues from a thinking token."""
        self._draw_reply()
        steps = self.data.token_steps
        if self._has_thinking():
            if steps[-1].thinking if steps else self.data.still_thinking:
                self.thinking.start_live(self.data.thinking_header(live=True))
            else:
                self.thinking.fold(self.data.thinking_header(), collapse=False)
                self.thinking.show()
        for widget in (self.action_bar, self.error_box, self.verify_label, self.verify_section,
                       self.token_note):
            widget.hide()
        self.metrics.setText("")
        self.show_loading(self.data.loading_detail)

    def show_data(self, point_size: float | None = None) -> None:
        """Draw the whole turn from its data, as it ended: another branch is shown, the
        probabilities were switched, or the turn was restored."""
        self._draw_reply()
        if self.data.prompt_sent:
            self.show_prompt_sent()
        self.error_box.hide()
        if self.data.state == TurnState.FAILED:
            self.show_failed(point_size)
        else:
            self.show_finished(point_size)
        if self.data.verdict is not None:
            self.show_verdict()
        else:
            self.verify_label.hide()
            self.verify_section.hide()
            self.verify_button.setText(_("Verify"))

    def show_thinking_stats(self, now: float | None = None) -> None:
        """The live thinking header from the turn's data (its clock ticks between tokens)."""
        if self.thinking.live:
            self.thinking.set_title(self.data.thinking_header(live=True, now=now))

    def fold_thinking(self, *, collapse: bool) -> None:
        self.thinking.fold(self.data.thinking_header(), collapse=collapse)

    def render_markdown(self, point_size: float | None = None) -> None:
        """Show the finished answer, once, from the turn's data: a base model's as the
        exact plain text it wrote; a chat model's as Markdown (its line breaks kept, raw
        HTML shown as text)."""
        self._code_pt = point_size
        doc = self.answer.document()
        answer = self._masker.mask(self.data.answer)
        if self.plain_answer:
            self.answer.setPlainText(answer)
            self.answer.setFont(theme.mono_font(point_size))
        else:
            doc.setHtml(render_html(answer))
            style_code_blocks(doc, point_size)
        has_code = bool(code_blocks(self.data.answer))
        self.copy_code_button.setEnabled(has_code)
        self.copy_code_button.setVisible(has_code)  # only offered when there is code

    def retheme(self) -> None:
        """Light/dark switched: the code colours live in the rendered document, so the
        finished answer is rendered again from the turn's text."""
        self.highlighter.retheme()
        if self.data.done and self.data.answer.strip():
            self.render_markdown(self._code_pt)

    def _flush_streams(self) -> None:
        """The stream ended: the masked thinking's held-back tail goes to the fold."""
        held = self._streams["thinking"].flush()
        self._streams["answer"].flush()  # the answer is drawn again from the data
        if held and not self.token_mode:
            self.thinking.append(held)

    def show_finished(self, point_size: float | None = None) -> None:
        result = self.data.result
        self._flush_streams()
        self.hide_loading()
        self.render_markdown(point_size)
        metrics = result.metrics_line() if result else ""
        self.metrics.setText(self._masker.mask(
            "\n".join(filter(None, (self.data.continue_error, metrics)))))
        # at the context's end there is no room to go on
        self.continue_button.setVisible(self.data.room_to_continue(self.entry.context_length))
        self.continue_button.setToolTip(self._continue_tip())
        self.action_bar.show()
        self._show_token_note()
        self._show_branch_bar()
        if not self.data.answer.strip():
            reason = result.finish_reason if result else None
            empty = _("(empty answer)")
            self.answer.setPlainText(_(EMPTY_ANSWER_NOTES[reason]) if reason
                                     in EMPTY_ANSWER_NOTES else empty)
            if self.token_mode and not self.token_view.steps:  # the note, not an empty box
                self.token_view.hide()
                self.answer.show()
        self._apply_probabilities()

    def _continue_tip(self) -> str:
        """What Continue will do: resume the reply, or (where it can't) run it again."""
        if can_resume(self.entry, self.data):
            return _("The token limit cut this reply off: the model goes on from its last "
                     "token, with the same limit again.")
        if not exact_prompt_known(self.entry):
            return _("The token limit cut this reply off. This server applies its own chat "
                     "template, so it can't be resumed: it runs again with twice the limit "
                     "and the same seed, written again as far as it went, and carries on.")
        return _("The token limit cut this reply off. The exact text of this reply is not "
                 "known, so it can't be resumed: it runs again with twice the limit and the "
                 "same seed, written again as far as it went, and carries on.")

    def show_failed(self, point_size: float | None = None) -> None:
        failed = self.data.failure
        assert failed is not None
        self._flush_streams()
        self.hide_loading()
        kind = FailureKind(failed.kind)
        self.error_label.setText(f"<b>{escape.html(_(FAILURE_LABELS[kind]))}.</b> "
                                 f"{escape.html(self._masker.mask(failed.message))}")
        # a missing or unloadable (corrupt, truncated) file is fixed in the model manager
        self.manager_button.setVisible(kind in (FailureKind.MISSING, FailureKind.LOAD))
        self.retry_button.setVisible(True)
        self.error_box.show()
        if self.data.answer:
            self.render_markdown(point_size)
        produced = self.data.tokens
        self.metrics.setText(ngettext("{n} token before the failure",
                                      "{n} tokens before the failure", produced).format(
            n=f"{produced:,}") if produced else "")
        self._show_token_note()
        self._show_branch_bar()
        if self.data.branches.count > 1:
            self.action_bar.show()  # the way back to the other branches
        self._apply_probabilities()

    def leave_token_mode(self) -> None:
        """Text came without token figures (a server that does not offer them): show the
        reply as text, and say why."""
        self.token_mode = False
        self._draw_reply()
        self._show_no_figures_note()

    def _show_no_figures_note(self) -> None:
        remote = isinstance(self.entry.source, RemoteSource)
        self.token_note.setText(_(NOT_OFFERED) if remote else _(NOT_RECORDED))
        self.token_note.show()

    def _show_token_note(self) -> None:
        """The reply has ended: tokens still held find their view, those past a stop
        sequence are struck through; with probabilities asked for and none came, say so."""
        if self.token_mode and not self.data.token_steps and self.data.tokens > 0:
            self.leave_token_mode()
        elif self.token_mode:
            self._place(self.router.finish() if self.router is not None else [])
            if not self._has_thinking():
                self.thinking.hide()
            elif self.thinking.isHidden():  # only markup in the fold (<think></think>)
                self.thinking.fold(self.data.thinking_header())
                self.thinking.show()
            self.token_view.strike_from(stop_cut_index(
                self.data.token_steps, self.data.answer, self.data.thinking_format))

    def show_probabilities(self, on: bool) -> None:
        """The pane's Probabilities toggle: a finished turn is drawn again, as tinted
        tokens (if it has their figures) or as text; a running one when it ends."""
        if on != self.probabilities_wanted:
            self.probabilities_wanted = on
            if self.data.done:
                self._apply_probabilities()

    def _apply_probabilities(self) -> None:
        """Draw the ended turn as the toggle asks, unless it is drawn so already: as
        tokens if it has their figures, else as text (saying none were recorded)."""
        wanted, figures = self.probabilities_wanted, bool(self.data.token_steps)
        if wanted and not figures and self.data.tokens > 0:
            self._show_no_figures_note()
        else:
            self.token_note.hide()
        if self.token_mode != (wanted and figures):
            self.token_mode = wanted and figures
            self.show_data(self._code_pt)

    # -- actions

    def copy_answer(self) -> None:
        QGuiApplication.clipboard().setText(self._masker.mask(self.data.answer))  # as shown

    def copy_code(self) -> None:
        """Copy a fenced block, exactly as Verify would run it (one parser for both)."""
        blocks = code_blocks(self.data.answer)
        if not blocks:
            return
        if len(blocks) == 1:
            QGuiApplication.clipboard().setText(blocks[0].code)
            return
        menu = QMenu(self)
        for index, block in enumerate(blocks, 1):
            action = menu.addAction(_block_title(index, block))
            action.triggered.connect(
                lambda _=False, c=block.code: QGuiApplication.clipboard().setText(c))
        menu.exec(self.copy_code_button.mapToGlobal(self.copy_code_button.rect().bottomLeft()))
        menu.deleteLater()  # a child of the turn: one per click would pile up

    def show_verifying(self) -> None:
        self.verify_button.setEnabled(False)
        self.verify_button.setText(_("Verifying…"))

    def show_verdict(self) -> None:
        verdict = self.data.verdict
        self.verify_button.setEnabled(True)
        self.verify_button.setText(_("Verify again"))
        if verdict is None:  # nothing checked yet: no verdict to show
            self.verify_button.setText(_("Verify"))
            self.verify_label.hide()
            self.verify_section.hide()
            return
        theme.rich_text(self.verify_label,
                        lambda: self._masker.mask(format_verdict_html(verdict)))
        self.verify_label.show()
        output = verdict.stdout
        if verdict.stderr:
            output += (("\n" if output and not output.endswith("\n") else "")
                       + "[stderr]\n" + verdict.stderr)
        self.verify_output.set_text(self._masker.mask(output))
        self.verify_section.setVisible(bool(output))
        self.verify_label.setToolTip(verdict.isolation)


def _block_title(index: int, block: CodeBlock) -> str:
    first = block.code.strip().splitlines()[0][:40] if block.code.strip() else ""
    return _("Block {index} {language}: {first}").format(index=index, language=block.language,
                                                          first=first)


VERDICT_COLORS: dict[VerdictState, Callable[[], str]] = {  # a theme function: dark mode
    VerdictState.PASS: theme.ok_color,                        # gets its lighter variant
    VerdictState.FAIL: theme.fail_color,
    VerdictState.ERROR: theme.fail_color,
    VerdictState.TIMEOUT: theme.fail_color,
    VerdictState.NO_ANSWER: theme.warn_color,
    VerdictState.RAN: theme.muted_fg,
    VerdictState.ANSWERED: theme.muted_fg,
}


def format_verdict_html(verdict: Verdict) -> str:
    state = verdict.verdict  # a VerdictState: Verdict converts it when it is made
    # the size is relative, so the verdict grows with zoom and presentation mode
    parts = [f"<span style='color:{VERDICT_COLORS[state]()}; font-weight:600;"
             f" font-size:large'>{escape.html(verdict.headline)}</span>"]
    if verdict.low_confidence:
        parts.append(f" <i>{escape.html(_('(low confidence)'))}</i>")
    details = []
    if verdict.expected:
        details.append(_("expected {value}").format(
            value=f"<code>{escape.html(verdict.expected)}</code>"))
    if verdict.got and not got_in_headline(state, verdict.got):
        details.append(_("got {value}").format(value=f"<code>{escape.html(verdict.got)}</code>"))
    if verdict.duration_s:  # how long the code ran (no code run: nothing to time)
        details.append(_("{seconds} s").format(seconds=number(verdict.duration_s, 2)))
    if details:
        parts.append("<br>" + " · ".join(details))
    if verdict.reason:
        parts.append(f"<br><span style='color:{theme.muted_fg()}'>"
                     f"{escape.html(verdict.reason)}</span>")
    return "".join(parts)
