"""One pane: a model, its settings, and its conversation (turns streaming live).

Streaming cost stays flat: the generation thread only appends events to a deque; a
16 ms timer drains it, concatenates the Deltas that arrived in that frame and appends
them once, at the end of the thinking view and the answer view, with a QTextCursor. The
answer is re-rendered as Markdown only once, when its turn ends.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Any

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QGuiApplication, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from desktop_app.catalog import Catalog, ModelEntry, availability, missing_message
from desktop_app.engine import ModelWorker
from desktop_app.protocol import (
    Delta,
    Failed,
    Finished,
    GenerationRequest,
    GenerationResult,
    Loaded,
    Loading,
    PromptSent,
    Sampling,
)
from desktop_app.prompting import Turn
from desktop_app.ui import theme
from desktop_app.ui.markdown import CodeHighlighter, code_blocks, style_code_blocks
from desktop_app.ui.runner import GenerationRun, GuiPost, RunDone, close_in_background
from desktop_app.ui.widgets import (
    AutoHeightTextBrowser,
    CollapsibleSection,
    RoleBadge,
    StreamTextView,
    ThinkingSection,
)

FRAME_MS = 16


@dataclass
class PaneConfig:
    """A pane's remembered settings (``None`` means the catalog's default)."""

    model_id: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system_prompt: str | None = None
    thinking: bool = True
    show_prompt: bool | None = None
    document_template: str | None = None  # base models: the wrapping, with {question}
    raw: bool = False  # base models: send the prompt as typed, unwrapped

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PaneConfig:
        if not isinstance(data, dict):
            return cls()
        config = cls()
        for key in cls.__dataclass_fields__:
            if key in data:
                setattr(config, key, data[key])
        if not isinstance(config.model_id, str):
            config.model_id = ""
        return config


def role_dot(role: str, ready: bool, size: int = 12) -> QIcon:
    pix = QPixmap(size, size)
    pix.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pix)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    color = QColor(theme.role_color(role))
    if ready:
        painter.setBrush(color)
        painter.setPen(Qt.PenStyle.NoPen)
    else:
        painter.setBrush(Qt.BrushStyle.NoBrush)
        pen = painter.pen()
        pen.setColor(color)
        pen.setWidth(2)
        painter.setPen(pen)
    painter.drawEllipse(2, 2, size - 4, size - 4)
    painter.end()
    return QIcon(pix)


class TurnWidget(QFrame):
    """One prompt and the model's reply in a pane."""

    retryRequested = Signal()
    openManagerRequested = Signal()
    verifyRequested = Signal()

    def __init__(self, prompt: str, entry: ModelEntry, *, problem: Any = None,
                 show_prompt: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.prompt = prompt
        self.entry = entry
        self.problem = problem
        self.answer_raw = ""
        self.result: GenerationResult | None = None
        self.failed: Failed | None = None
        self.done = False
        self.verdict: Any = None
        self._code_pt: float | None = None

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 4, 0, 8)
        layout.setSpacing(4)

        self.user_label = QLabel(prompt)
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
        self.loading_label = QLabel("Starting…")
        theme.style(self.loading_label, _muted)
        row.addWidget(self.loading_label)
        row.addWidget(self.loading_bar, 1)
        layout.addWidget(self.loading)

        self.prompt_view = StreamTextView(max_height=200)
        self.prompt_view.setFont(theme.mono_font())
        title = ("What the base model received (the document it continues)"
                 if entry.role == "base" else "Exact text sent to the model")
        self.prompt_section = CollapsibleSection(title, self.prompt_view, expanded=show_prompt)
        self.prompt_section.hide()
        layout.addWidget(self.prompt_section)

        self.thinking = ThinkingSection()
        self.thinking.hide()
        layout.addWidget(self.thinking)

        self.answer = AutoHeightTextBrowser()
        self.highlighter = CodeHighlighter(self.answer.document())
        layout.addWidget(self.answer)

        self.error_box = QFrame()
        theme.style(self.error_box, lambda: (
            f"QFrame {{ border: 1px solid {theme.fail_color()}; border-radius: 6px; }}"
            " QLabel { border: none; }"))
        err = QVBoxLayout(self.error_box)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        err.addWidget(self.error_label)
        err_buttons = QHBoxLayout()
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retryRequested)
        self.manager_button = QPushButton("Open model manager")
        self.manager_button.clicked.connect(self.openManagerRequested)
        err_buttons.addWidget(self.retry_button)
        err_buttons.addWidget(self.manager_button)
        err_buttons.addStretch(1)
        err.addLayout(err_buttons)
        self.error_box.hide()
        layout.addWidget(self.error_box)

        self.metrics = QLabel()
        self.metrics.setWordWrap(True)
        theme.style(self.metrics, _muted)
        theme.set_font_scale(self.metrics, 0.9)
        self.metrics.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.metrics)

        self.action_bar = QWidget()
        actions = QHBoxLayout(self.action_bar)
        actions.setContentsMargins(0, 0, 0, 0)
        self.copy_answer_button = QToolButton()
        self.copy_answer_button.setText("Copy answer")
        self.copy_answer_button.clicked.connect(self.copy_answer)
        self.copy_code_button = QToolButton()
        self.copy_code_button.setText("Copy code")
        self.copy_code_button.clicked.connect(self.copy_code)
        self.verify_button = QToolButton()
        self.verify_button.setText("Verify")
        self.verify_button.setToolTip("Check this answer: run its code or compare its number "
                                      "with the practice problem's answer, in a sandbox.")
        self.verify_button.clicked.connect(self.verifyRequested)
        for button in (self.copy_answer_button, self.copy_code_button, self.verify_button):
            button.setAutoRaise(True)
            actions.addWidget(button)
        actions.addStretch(1)
        self.action_bar.hide()
        layout.addWidget(self.action_bar)

        self.verify_label = QLabel()
        self.verify_label.setWordWrap(True)
        self.verify_label.setTextFormat(Qt.TextFormat.RichText)
        self.verify_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.verify_label.hide()
        layout.addWidget(self.verify_label)
        self.verify_output = StreamTextView(max_height=160)
        self.verify_output.setFont(theme.mono_font())
        self.verify_section = CollapsibleSection("Output (stdout / stderr)", self.verify_output)
        self.verify_section.hide()
        layout.addWidget(self.verify_section)
        theme.on_change(self, "document", TurnWidget.retheme)

    # -- streaming

    def show_loading(self, detail: str) -> None:
        self.loading_label.setText(detail[:1].upper() + detail[1:] + "…")
        self.loading.show()

    def hide_loading(self) -> None:
        self.loading.hide()

    def set_prompt_sent(self, text: str) -> None:
        self.prompt_view.set_text(text)
        self.prompt_section.show()

    def append_answer(self, text: str) -> None:
        self.answer_raw += text
        self.answer.append_text(text)

    def render_markdown(self, point_size: float | None = None) -> None:
        """Render the finished answer as Markdown, once."""
        self._code_pt = point_size
        doc = self.answer.document()
        doc.setMarkdown(self.answer_raw)
        style_code_blocks(doc, point_size)
        has_code = bool(code_blocks(self.answer_raw))
        self.copy_code_button.setEnabled(has_code)
        self.copy_code_button.setVisible(has_code)  # only offered when there is code

    def retheme(self) -> None:
        """Light/dark switched: the code colours live in the rendered document, so the
        finished answer is rendered again from its raw text."""
        self.highlighter.retheme()
        if self.done and self.answer_raw.strip():
            self.render_markdown(self._code_pt)

    def finish(self, result: GenerationResult, point_size: float | None = None) -> None:
        self.done = True
        self.result = result
        self.hide_loading()
        if result.answer and result.answer != self.answer_raw:
            self.answer_raw = result.answer  # the collector's copy is authoritative
        self.render_markdown(point_size)
        self.metrics.setText(result.metrics_line())
        self.action_bar.show()
        if not self.answer_raw.strip():
            note = {"cancelled": "(stopped)", "length": "(no answer before the token limit)"}
            self.answer.setPlainText(note.get(result.finish_reason, "(empty answer)"))

    def fail(self, failed: Failed, *, missing: bool, point_size: float | None = None) -> None:
        self.done = True
        self.failed = failed
        self.hide_loading()
        prefix = {"oom": "Out of memory", "crash": "Worker crashed", "load": "Could not load",
                  "missing": "Model not available"}.get(failed.kind, "Error")
        self.error_label.setText(f"<b>{prefix}.</b> {_escape(failed.message)}")
        # a missing or unloadable (corrupt, truncated) file is fixed in the model manager
        self.manager_button.setVisible(missing or failed.kind == "load")
        self.retry_button.setVisible(True)
        self.error_box.show()
        if self.answer_raw:
            self.render_markdown(point_size)
        produced = (failed.result.answer_tokens + failed.result.thinking_tokens
                    if failed.result is not None else 0)
        self.metrics.setText(f"{produced:,} tokens before the failure" if produced else "")

    # -- actions

    def copy_answer(self) -> None:
        QGuiApplication.clipboard().setText(self.answer_raw)

    def copy_code(self) -> None:
        blocks = code_blocks(self.answer_raw)
        if not blocks:
            return
        if len(blocks) == 1:
            QGuiApplication.clipboard().setText(blocks[0][1])
            return
        menu = QMenu(self)
        for index, (lang, code) in enumerate(blocks, 1):
            first = code.strip().splitlines()[0][:40] if code.strip() else ""
            action = menu.addAction(f"Block {index} {lang}: {first}")
            action.triggered.connect(lambda _=False, c=code: QGuiApplication.clipboard().setText(c))
        menu.exec(self.copy_code_button.mapToGlobal(self.copy_code_button.rect().bottomLeft()))
        menu.deleteLater()  # a child of the turn: one per click would pile up

    def show_verdict(self, verdict: Any) -> None:
        self.verdict = verdict
        self.verify_button.setEnabled(True)
        self.verify_button.setText("Verify again")
        theme.rich_text(self.verify_label, lambda: format_verdict_html(verdict))
        self.verify_label.show()
        output = ""
        stdout = getattr(verdict, "stdout", "") or ""
        stderr = getattr(verdict, "stderr", "") or ""
        if stdout:
            output += stdout
        if stderr:
            output += ("\n" if output and not output.endswith("\n") else "") + "[stderr]\n" + stderr
        self.verify_output.set_text(output)
        self.verify_section.setVisible(bool(output))
        self.verify_label.setToolTip(str(getattr(verdict, "isolation", "") or ""))


def _muted() -> str:
    return f"color: {theme.muted_fg()};"


def _pane_frame(role: str, active: bool) -> str:
    """Role colour along the top; an active pane is framed in it all round."""
    color = theme.role_color(role)
    side = color if active else theme.border_color()
    return (f"QFrame#pane {{ background: palette(base); border: 1px solid {side};"
            f" border-top: 4px solid {color}; border-radius: 6px; }}")


def _escape(text: Any) -> str:
    import html

    return html.escape(str(text))


VERDICT_STYLE = {  # colour: a theme function, so dark mode gets its lighter variant
    "pass": ("✓", "Correct", theme.ok_color),
    "fail": ("✗", "Wrong", theme.fail_color),
    "error": ("✗", "Error while running", theme.fail_color),
    "timeout": ("⏱", "Timed out", theme.fail_color),
    "no-answer": ("?", "No answer found", theme.warn_color),
    "ran": ("▶", "Ran, nothing to check against", theme.muted_fg),
}


def format_verdict_html(verdict: Any) -> str:
    kind = getattr(verdict, "verdict", "error")
    mark, label, color_of = VERDICT_STYLE.get(kind, ("?", str(kind), theme.muted_fg))
    # the size is relative, so the verdict grows with zoom and presentation mode
    parts = [f"<span style='color:{color_of()}; font-weight:600; font-size:large'>"
             f"{mark} {label}</span>"]
    if getattr(verdict, "low_confidence", False):
        parts.append(" <i>(low confidence)</i>")
    details = []
    expected = getattr(verdict, "expected", None)
    got = getattr(verdict, "got", None)
    if expected not in (None, ""):
        details.append(f"expected <code>{_escape(expected)}</code>")
    if got not in (None, ""):
        details.append(f"got <code>{_escape(got)}</code>")
    duration = getattr(verdict, "duration_s", None)
    if isinstance(duration, int | float):
        details.append(f"{duration:.2f} s")
    if details:
        parts.append("<br>" + " · ".join(details))
    reason = getattr(verdict, "reason", "")
    if reason:
        parts.append(f"<br><span style='color:{theme.muted_fg()}'>{_escape(reason)}</span>")
    return "".join(parts)


class Pane(QFrame):
    """A model picker, settings, and a scrolling conversation."""

    runFinished = Signal(object, bool)   # (pane, ok)
    configChanged = Signal()
    removeRequested = Signal(object)
    openManagerRequested = Signal()
    activated = Signal(object)

    def __init__(self, catalog: Catalog, config: PaneConfig | None = None,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.catalog = catalog
        self.config = config or PaneConfig()
        self.worker: ModelWorker | None = None
        self.run: GenerationRun | None = None
        self.turn: TurnWidget | None = None
        self.turns: list[TurnWidget] = []
        self.history: list[Turn] = []
        self.expand_thinking_all = False
        self.point_size: float | None = None
        self._closing = False
        self._gen_started: float | None = None
        self._last_delta: Delta | None = None
        self._answer_started = False
        self._verify_threads: list[threading.Thread] = []
        self._syncing = False

        self.setObjectName("pane")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setMinimumWidth(280)
        outer = QVBoxLayout(self)
        outer.setContentsMargins(8, 8, 8, 8)
        outer.setSpacing(6)

        # header
        header = QHBoxLayout()
        self.badge = RoleBadge()
        self.picker = QComboBox()
        self.picker.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.picker.setMinimumContentsLength(12)
        self.picker.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.settings_button = QToolButton()
        self.settings_button.setText("⚙")
        self.settings_button.setCheckable(True)
        self.settings_button.setToolTip("Settings for this pane")
        self.settings_button.setAutoRaise(True)
        self.remove_button = QToolButton()
        self.remove_button.setText("✕")
        self.remove_button.setToolTip("Remove this pane")
        self.remove_button.setAutoRaise(True)
        self.remove_button.clicked.connect(lambda: self.removeRequested.emit(self))
        header.addWidget(self.badge)
        header.addWidget(self.picker, 1)
        header.addWidget(self.settings_button)
        header.addWidget(self.remove_button)
        outer.addLayout(header)

        # settings row
        self.settings_box = QFrame()
        self.settings_box.setFrameShape(QFrame.Shape.StyledPanel)
        grid = QGridLayout(self.settings_box)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        self.temperature = QDoubleSpinBox()
        self.temperature.setRange(0.0, 2.0)
        self.temperature.setSingleStep(0.1)
        self.temperature.setDecimals(2)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 32768)
        self.max_tokens.setSingleStep(64)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        self.thinking_box = QCheckBox("Thinking")
        self.thinking_box.setToolTip("Let the reasoning model think before it answers")
        self.show_prompt_box = QCheckBox("Show prompt sent")
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText("System prompt (model default)")
        self.system_label = QLabel("System")
        self.defaults_button = QToolButton()
        self.defaults_button.setText("Defaults")
        self.defaults_button.setToolTip("Back to this model's default settings")
        self.defaults_button.clicked.connect(self.reset_settings)
        checks = QHBoxLayout()
        checks.setContentsMargins(0, 0, 0, 0)
        checks.addWidget(self.thinking_box)
        checks.addWidget(self.show_prompt_box)
        checks.addStretch(1)
        checks.addWidget(self.defaults_button)
        # short labels: three panes side by side at presentation sizes leave little room
        temp_label, tokens_label, seed_label = QLabel("Temp"), QLabel("Max tok."), QLabel("Seed")
        temp_label.setToolTip("Temperature: 0 always picks the likeliest token")
        tokens_label.setToolTip("Maximum number of tokens to generate")
        for label, buddy in ((temp_label, self.temperature), (tokens_label, self.max_tokens),
                             (seed_label, self.seed), (self.system_label, self.system_prompt)):
            label.setBuddy(buddy)
        grid.addWidget(temp_label, 0, 0)
        grid.addWidget(self.temperature, 0, 1)
        grid.addWidget(tokens_label, 0, 2)
        grid.addWidget(self.max_tokens, 0, 3)
        grid.addWidget(seed_label, 1, 0)
        grid.addWidget(self.seed, 1, 1)
        grid.addWidget(self.system_label, 2, 0)
        grid.addWidget(self.system_prompt, 2, 1, 1, 3)
        grid.addLayout(checks, 3, 0, 1, 4)  # a row of its own: fits at presentation sizes
        # base models: the document the question is wrapped in, editable, or none at all
        self.wrapping_label = QLabel("Wrapping")
        self.wrapping_label.setToolTip(
            "The document a base model continues; {question} is replaced by your prompt")
        self.wrapping = QPlainTextEdit()
        self.wrapping.setTabChangesFocus(True)
        self.wrapping.setFixedHeight(self.wrapping.fontMetrics().lineSpacing() * 4 + 12)
        self.wrapping_label.setBuddy(self.wrapping)
        self.raw_box = QCheckBox("Send raw text (no wrapping)")
        self.raw_box.setToolTip("The base model continues exactly what you typed")
        self.wrapping_hint = QLabel("The wrapping must contain {question}; "
                                    "the last valid one is used.")
        self.wrapping_hint.setWordWrap(True)
        theme.style(self.wrapping_hint, lambda: f"color: {theme.fail_color()};")
        self.wrapping_hint.hide()
        grid.addWidget(self.wrapping_label, 4, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.wrapping, 4, 1, 1, 3)
        grid.addWidget(self.raw_box, 5, 1, 1, 3)
        grid.addWidget(self.wrapping_hint, 6, 1, 1, 3)
        grid.setColumnStretch(1, 1)
        grid.setColumnStretch(3, 1)
        self.settings_box.hide()
        self.settings_button.toggled.connect(self.settings_box.setVisible)
        outer.addWidget(self.settings_box)

        # not-downloaded banner (a state, not an error)
        self.banner = QFrame()
        theme.style(self.banner, lambda: (
            f"QFrame {{ background: {theme.subtle_bg()}; border-radius: 6px; }}"))
        banner_layout = QVBoxLayout(self.banner)
        self.banner_label = QLabel()
        self.banner_label.setWordWrap(True)
        self.banner_button = QPushButton("Open model manager")
        self.banner_button.clicked.connect(self.openManagerRequested)
        banner_layout.addWidget(self.banner_label)
        banner_layout.addWidget(self.banner_button, 0, Qt.AlignmentFlag.AlignLeft)
        self.banner.hide()
        outer.addWidget(self.banner)

        # transcript
        self.scroll_area = QScrollArea()
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
        bar = self.scroll_area.verticalScrollBar()
        bar.valueChanged.connect(self._on_scroll)
        bar.rangeChanged.connect(self._on_range)
        outer.addWidget(self.scroll_area, 1)

        # footer
        footer = QHBoxLayout()
        self.status = QLabel("Ready")
        theme.style(self.status, _muted)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        footer.addWidget(self.status, 1)
        footer.addWidget(self.stop_button)
        footer.addWidget(self.clear_button)
        outer.addLayout(footer)

        self.timer = QTimer(self)
        self.timer.setInterval(FRAME_MS)
        self.timer.timeout.connect(self._pump)

        self.populate_picker()
        self.picker.currentIndexChanged.connect(self._on_pick)
        for _widget, signal in ((self.temperature, self.temperature.valueChanged),
                               (self.max_tokens, self.max_tokens.valueChanged),
                               (self.seed, self.seed.valueChanged),
                               (self.thinking_box, self.thinking_box.toggled),
                               (self.show_prompt_box, self.show_prompt_box.toggled),
                               (self.system_prompt, self.system_prompt.editingFinished),
                               (self.wrapping, self.wrapping.textChanged),
                               (self.raw_box, self.raw_box.toggled)):
            signal.connect(self._read_settings)
        self._apply_entry(initial=True)

    # ---------------------------------------------------------------- model & settings

    @property
    def entry(self) -> ModelEntry | None:
        return self.catalog.entries.get(self.config.model_id)

    @property
    def running(self) -> bool:
        return self.run is not None

    def model_state(self) -> str:
        entry = self.entry
        if entry is None:
            return "unknown"
        try:
            return availability(entry)
        except Exception:
            return "not-downloaded"

    @property
    def ready(self) -> bool:
        return self.model_state() == "ready"

    def populate_picker(self) -> None:
        self.picker.blockSignals(True)
        self.picker.clear()
        for entry in self.catalog:
            ready = _safe_ready(entry)
            text = entry.name + ("" if ready else "  · not downloaded")
            self.picker.addItem(role_dot(entry.role, ready), text, entry.id)
            index = self.picker.count() - 1
            tip = f"{entry.role} · {entry.params} {entry.quantization}\n{entry.description}".strip()
            self.picker.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        if self.config.model_id and self.config.model_id not in self.catalog:
            self.picker.addItem(role_dot("", False), f"{self.config.model_id}  · unknown",
                                self.config.model_id)
        index = self.picker.findData(self.config.model_id)
        self.picker.setCurrentIndex(max(index, 0))
        if index < 0 and self.picker.count():
            self.config.model_id = self.picker.currentData()
        self.picker.blockSignals(False)

    def set_catalog(self, catalog: Catalog) -> None:
        """The catalog changed (models downloaded): refresh names and readiness."""
        self.catalog = catalog
        self.populate_picker()
        self._apply_entry(initial=True)

    def set_model(self, model_id: str) -> None:
        index = self.picker.findData(model_id)
        if index >= 0:
            self.picker.setCurrentIndex(index)

    def _on_pick(self, _index: int) -> None:
        model_id = self.picker.currentData()
        if model_id == self.config.model_id:
            return
        if self.running:
            self.stop()
        close_in_background(self.worker)
        self.worker = None
        self.config = PaneConfig(model_id=model_id)
        self._apply_entry(initial=False)
        self.configChanged.emit()

    def _apply_entry(self, *, initial: bool) -> None:
        entry = self.entry
        role = entry.role if entry else ""
        self.badge.set_role(role)
        self.set_active(False)
        widgets = (self.temperature, self.max_tokens, self.seed, self.thinking_box,
                   self.show_prompt_box, self.system_prompt, self.wrapping, self.raw_box)
        for widget in widgets:
            widget.blockSignals(True)
        if entry is not None:
            sampling = Sampling.for_entry(entry)
            cfg = self.config
            self.temperature.setValue(cfg.temperature if cfg.temperature is not None
                                      else sampling.temperature)
            self.max_tokens.setValue(int(cfg.max_tokens if cfg.max_tokens is not None
                                         else sampling.max_tokens))
            self.seed.setValue(cfg.seed if cfg.seed is not None else -1)
            supports = entry.prompt.supports_thinking
            self.thinking_box.setEnabled(supports)
            self.thinking_box.setChecked(bool(cfg.thinking) if supports else False)
            self.thinking_box.setVisible(supports)
            chat = entry.prompt.style == "chat"
            self.system_prompt.setVisible(chat)
            self.system_label.setVisible(chat)
            self.system_prompt.setText(cfg.system_prompt or "")
            self.system_prompt.setPlaceholderText(
                f"System prompt (default: {entry.prompt.system_prompt or 'none'})")
            show = cfg.show_prompt if cfg.show_prompt is not None else entry.role == "base"
            self.show_prompt_box.setChecked(bool(show))
            document = entry.prompt.style == "document"
            for document_widget in (self.wrapping_label, self.wrapping, self.raw_box):
                document_widget.setVisible(document)
            self.wrapping.setPlainText(cfg.document_template or entry.prompt.document_template)
            self.raw_box.setChecked(bool(cfg.raw) and document)
            self.wrapping.setEnabled(not self.raw_box.isChecked())
            self.wrapping_hint.hide()
        for widget in widgets:
            widget.blockSignals(False)
        self._update_state_banner()

    def _read_settings(self, *_: object) -> None:
        entry = self.entry
        if entry is None:
            return
        sampling = Sampling.for_entry(entry)
        cfg = self.config
        temp = round(self.temperature.value(), 2)
        cfg.temperature = None if abs(temp - sampling.temperature) < 1e-9 else temp
        tokens = self.max_tokens.value()
        cfg.max_tokens = None if tokens == sampling.max_tokens else tokens
        cfg.seed = None if self.seed.value() < 0 else self.seed.value()
        cfg.thinking = self.thinking_box.isChecked() if entry.prompt.supports_thinking else True
        cfg.show_prompt = self.show_prompt_box.isChecked()
        cfg.system_prompt = self.system_prompt.text() or None
        if entry.prompt.style == "document":
            cfg.raw = self.raw_box.isChecked()
            self.wrapping.setEnabled(not cfg.raw)
            template = self.wrapping.toPlainText()
            valid = "{question}" in template
            self.wrapping_hint.setVisible(not valid and not cfg.raw)
            if valid:
                cfg.document_template = (None if template == entry.prompt.document_template
                                         else template)
        for turn in self.turns:
            if not turn.prompt_section.isHidden():
                turn.prompt_section.set_expanded(cfg.show_prompt)
        self.configChanged.emit()

    def reset_settings(self) -> None:
        """Back to the catalog's defaults for this model (the model choice stays)."""
        self.config = PaneConfig(model_id=self.config.model_id)
        self._apply_entry(initial=False)
        self.configChanged.emit()

    def set_overrides(self, *, max_tokens: int | None = None, temperature: float | None = None,
                      seed: int | None = None) -> None:
        """Set settings from code (snapshot mode, tests)."""
        if max_tokens is not None:
            self.max_tokens.setValue(max_tokens)
        if temperature is not None:
            self.temperature.setValue(temperature)
        if seed is not None:
            self.seed.setValue(seed)
        self._read_settings()

    def _update_state_banner(self) -> None:
        entry = self.entry
        state = self.model_state()
        if entry is None:
            self.banner_label.setText(
                f"The model '{self.config.model_id}' is not in the catalog. Pick another model.")
            self.banner_button.hide()
            self.banner.show()
        elif state != "ready":
            if state == "not-downloaded":
                size = entry.size
                size_text = f" ({_format_size(size)})" if size else ""
                title = f"<b>{_escape(entry.name)}</b> is not downloaded yet{size_text}."
                detail = ("Download it in the model manager, or run "
                          f"<code>triptych models pull {_escape(entry.id)}</code>.")
            else:
                title = f"<b>{_escape(entry.name)}</b> can't run yet."
                detail = _escape(missing_message(entry, state))
            theme.rich_text(self.banner_label, lambda: (
                f"{title}<br><span style='color:{theme.muted_fg()}'>{detail}</span>"))
            self.banner_button.show()
            self.banner.show()
        else:
            self.banner.hide()
        if not self.running:  # the footer says what the pane can do, not "Ready"
            if state != "ready":
                self.status.setText(_STATE_STATUS.get(state, "Not available"))
            elif self.status.text() in _STATE_STATUS.values():
                self.status.setText("Ready")
        self._update_empty()

    def _update_empty(self) -> None:
        entry = self.entry
        if self.turns:
            self.empty_label.hide()
            return
        if entry is None or not self.ready:
            self.empty_label.hide()
            return
        hint = {
            "base": "A base model continues documents: your question is wrapped as a Q&A page.",
            "instruct": "An instruct model answers as an assistant.",
            "reasoning": "A reasoning model thinks first, then answers.",
        }.get(entry.role, "")
        self.empty_label.setText(hint)
        self.empty_label.show()

    def request_for(self, prompt: str) -> GenerationRequest:
        entry = self.entry
        assert entry is not None
        cfg = self.config
        sampling = Sampling.for_entry(entry, temperature=cfg.temperature,
                                      max_tokens=cfg.max_tokens, seed=cfg.seed)
        system = cfg.system_prompt if entry.prompt.style == "chat" else None
        document = entry.prompt.style == "document"
        return GenerationRequest(prompt=prompt, sampling=sampling, history=tuple(self.history),
                                 system_prompt=system or None,
                                 thinking=cfg.thinking if entry.prompt.supports_thinking else True,
                                 raw=bool(cfg.raw) and document,
                                 document_template=cfg.document_template if document else None)

    # ---------------------------------------------------------------- running

    def send(self, prompt: str, problem: Any = None) -> bool:
        """Start a turn with this prompt; False if the pane can't (busy, not downloaded)."""
        if self.running or self._closing or not prompt.strip():
            return False
        entry = self.entry
        if entry is None or not self.ready:
            self._update_state_banner()
            return False
        turn = self.add_turn(prompt, problem)
        self._follow = True
        try:
            if self.worker is None:
                self.worker = ModelWorker(entry)
            self.run = GenerationRun(self.worker, self.request_for(prompt))
        except Exception as exc:  # noqa: BLE001 - e.g. no semaphores in a sandbox
            turn.fail(Failed(message=f"Could not start the model: {exc}", kind="error"),
                      missing=False)
            self.status.setText("Failed")
            return False
        self._gen_started = None
        self._last_delta = None
        self._answer_started = False
        turn.show_loading("starting" if not self.worker.loaded else "sending the prompt")
        self.status.setText("Loading…" if not self.worker.loaded else "Generating…")
        self.stop_button.setEnabled(True)
        self.picker.setEnabled(False)
        self.run.start()
        self.timer.start()
        return True

    def add_turn(self, prompt: str, problem: Any = None) -> TurnWidget:
        """Append a new (empty) turn to the transcript and make it current."""
        assert self.entry is not None
        turn = TurnWidget(prompt, self.entry, problem=problem,
                          show_prompt=bool(self.show_prompt_box.isChecked()))
        turn.retryRequested.connect(lambda t=turn: self.retry(t))
        turn.openManagerRequested.connect(self.openManagerRequested)
        turn.verifyRequested.connect(lambda t=turn: self.verify(t))
        self._set_turn_font(turn)
        self.transcript_layout.insertWidget(self.transcript_layout.count() - 1, turn)
        turn.show()
        self.turns.append(turn)
        self.turn = turn
        self._update_empty()
        return turn

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()
            self.status.setText("Stopping…")

    def retry(self, turn: TurnWidget) -> None:
        if self.running:
            return
        prompt, problem = turn.prompt, turn.problem
        self._remove_turn(turn)
        if self.worker is not None and (self.worker.loaded is None or not self.worker.alive):
            close_in_background(self.worker)
            self.worker = None
        self._update_state_banner()
        self.send(prompt, problem)

    def _remove_turn(self, turn: TurnWidget) -> None:
        if turn in self.turns:
            self.turns.remove(turn)
        self.transcript_layout.removeWidget(turn)
        turn.deleteLater()
        if self.turn is turn:
            self.turn = None

    def clear(self) -> None:
        if self.running:
            self.stop()
            return
        for turn in list(self.turns):
            self._remove_turn(turn)
        self.history.clear()
        self.status.setText("Ready")
        self._update_empty()

    def _pump(self) -> None:
        """Drain the run's events: one widget update per frame, whatever the token rate.

        A bug in showing an event must not leave the pane "Generating…" forever, nor
        raise into Qt: it ends the turn as failed, with the error in the pane."""
        try:
            self._drain()
        except Exception as exc:  # noqa: BLE001
            self._internal_error(exc)

    def _internal_error(self, exc: Exception) -> None:
        run, self.run = self.run, None
        self.timer.stop()
        if run is not None:
            run.stop()
        # the worker may still be streaming the abandoned run: start afresh next time
        close_in_background(self.worker)
        self.worker = None
        self.stop_button.setEnabled(False)
        self.picker.setEnabled(True)
        self.status.setText("Failed")
        turn = self.turn
        if turn is not None and not turn.done:
            failed = Failed(message=f"Internal error while showing the reply: "
                                    f"{type(exc).__name__}: {exc}", kind="error")
            try:
                turn.fail(failed, missing=False)
            except Exception:  # noqa: BLE001 - the footer already says it failed
                pass
            self.runFinished.emit(self, False)

    def _drain(self) -> None:
        run = self.run
        if run is None:
            self.timer.stop()
            return
        thinking: list[str] = []
        answer: list[str] = []
        ended = False
        events = run.events
        while events:
            event = events.popleft()
            if isinstance(event, Delta):
                if event.thinking:
                    thinking.append(event.thinking)
                if event.answer:
                    answer.append(event.answer)
                self._last_delta = event
                continue
            self._flush(thinking, answer)
            thinking, answer = [], []
            if isinstance(event, RunDone):
                ended = True
                break
            self._handle(event)
        self._flush(thinking, answer)
        if ended:
            self.timer.stop()
            self.run = None
            self.stop_button.setEnabled(False)
            self.picker.setEnabled(True)

    def _flush(self, thinking: list[str], answer: list[str]) -> None:
        turn = self.turn
        if turn is None:
            return
        delta = self._last_delta
        if thinking:
            if turn.thinking.isHidden() and not turn.thinking.live:
                turn.thinking.start_live()
            turn.thinking.append("".join(thinking))
        if answer:
            if turn.thinking.live:
                self._fold_thinking(turn)
            self._answer_started = True
            turn.append_answer("".join(answer))
        if turn.thinking.live and self._gen_started is not None:
            tokens = delta.thinking_tokens if delta else 0
            turn.thinking.set_stats(time.monotonic() - self._gen_started, tokens)
        if (thinking or answer) and delta is not None:
            total = delta.thinking_tokens + delta.answer_tokens
            self.status.setText(f"Generating… {total:,} tokens · {delta.elapsed_s:.1f} s")

    def _fold_thinking(self, turn: TurnWidget, result: GenerationResult | None = None) -> None:
        delta = self._last_delta
        tokens = (result.thinking_tokens if result is not None
                  else (delta.thinking_tokens if delta else turn.thinking.tokens))
        seconds = result.thinking_s if result is not None and result.thinking_s else None
        if seconds is None and self._gen_started is not None:
            seconds = turn.thinking.seconds or (time.monotonic() - self._gen_started)
        collapse = not self.expand_thinking_all and not turn.thinking.user_touched
        turn.thinking.fold(seconds, tokens, collapse=collapse)

    def _handle(self, event: Any) -> None:
        turn = self.turn
        if turn is None or self._closing:
            return
        if isinstance(event, Loading):
            turn.show_loading(event.detail)
            self.status.setText("Loading model…")
        elif isinstance(event, Loaded):
            turn.show_loading("sending the prompt")
            self.status.setText(f"Loaded in {event.load_s:.1f} s")
        elif isinstance(event, PromptSent):
            turn.hide_loading()
            turn.set_prompt_sent(event.text)
            self._gen_started = time.monotonic()
            self.status.setText("Generating…")
            if event.starts_in_thinking:
                turn.thinking.start_live()
        elif isinstance(event, Finished):
            result = event.result
            if not turn.thinking.isHidden() and (turn.thinking.live or result.thinking_s):
                self._fold_thinking(turn, result)
            turn.finish(result, self._code_point_size())
            if result.finish_reason != "error" and (turn.answer_raw.strip() or result.thinking):
                self.history.append(Turn(user=turn.prompt, assistant=turn.answer_raw))
            self.status.setText({"stop": "Done", "length": "Done (token limit)",
                                 "cancelled": "Stopped"}.get(result.finish_reason, "Done"))
            self.runFinished.emit(self, True)
        elif isinstance(event, Failed):
            if turn.thinking.live:
                self._fold_thinking(turn)
            missing = event.kind == "missing"
            turn.fail(event, missing=missing, point_size=self._code_point_size())
            if event.kind in ("crash", "oom", "load", "missing") or not (
                    self.worker and self.worker.alive):
                close_in_background(self.worker)
                self.worker = None
            self.status.setText({"crash": "Worker crashed", "oom": "Out of memory",
                                 "missing": "Not downloaded"}.get(event.kind, "Failed"))
            self.runFinished.emit(self, False)

    # ---------------------------------------------------------------- verify

    def verify(self, turn: TurnWidget) -> None:
        try:
            from desktop_app.verify import Verdict, verify_reply
        except Exception as exc:
            turn.verify_label.setText(f"Verification is not available: {_escape(exc)}")
            turn.verify_label.show()
            return
        turn.verify_button.setEnabled(False)
        turn.verify_button.setText("Verifying…")
        answer, problem = turn.answer_raw, turn.problem
        post = GuiPost(turn)  # the thread holds no widget: the turn may be cleared meanwhile

        def work() -> None:
            try:
                verdict = verify_reply(answer, problem)
            except Exception as exc:
                verdict = Verdict(verdict="error", reason=f"The checker failed: {exc}")
            post(TurnWidget.show_verdict, verdict)

        thread = threading.Thread(target=work, name="verify", daemon=True)
        self._verify_threads = [t for t in self._verify_threads if t.is_alive()] + [thread]
        thread.start()

    # ---------------------------------------------------------------- view

    def set_thinking_expanded(self, expanded: bool) -> None:
        self.expand_thinking_all = expanded
        for turn in self.turns:
            if not turn.thinking.isHidden() and not turn.thinking.live:
                turn.thinking.set_expanded(expanded)
                turn.thinking.user_touched = False

    def _code_point_size(self) -> float | None:
        return self.point_size

    def _set_turn_font(self, turn: TurnWidget) -> None:
        if self.point_size:
            theme.apply_point_size(turn, self.point_size)

    def set_point_size(self, point_size: float) -> None:
        """Zoom: every widget of the pane (answers, headers, buttons) at ``point_size``."""
        self.point_size = point_size
        theme.apply_point_size(self, point_size)
        for turn in self.turns:
            self._set_turn_font(turn)
            if turn.done and turn.answer_raw:
                turn.render_markdown(point_size)

    def _on_scroll(self, value: int) -> None:
        bar = self.scroll_area.verticalScrollBar()
        self._follow = value >= bar.maximum() - 8

    def _on_range(self, _min: int, maximum: int) -> None:
        if self._follow and self.running:
            self.scroll_area.verticalScrollBar().setValue(maximum)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.activated.emit(self)
        super().mousePressEvent(event)

    def set_active(self, active: bool) -> None:
        """Role colour along the top; the keyboard-focused pane gets a role-coloured frame."""
        role = self.entry.role if self.entry else ""
        theme.style(self, lambda: _pane_frame(role, active))

    # ---------------------------------------------------------------- export/teardown

    def export_data(self) -> dict[str, Any]:
        entry = self.entry
        turns = []
        for turn in self.turns:
            result = turn.result
            turns.append({
                "prompt": turn.prompt,
                "prompt_sent": turn.prompt_view.toPlainText(),
                "thinking": turn.thinking.text(),
                "thinking_header": turn.thinking.header.text() if (not turn.thinking.isHidden()) else "",
                "answer": turn.answer_raw,
                "metrics": result.metrics_line() if result else "",
                "error": turn.failed.message if turn.failed else None,
                "verdict": getattr(turn.verdict, "verdict", None),
            })
        return {
            "model": entry.name if entry else self.config.model_id,
            "model_id": self.config.model_id,
            "role": entry.role if entry else "",
            "turns": turns,
        }

    def background_threads(self) -> list[threading.Thread]:
        threads = [t for t in self._verify_threads if t.is_alive()]
        if self.run is not None and self.run.thread.is_alive():
            threads.append(self.run.thread)
        return threads

    def shutdown(self) -> ModelWorker | None:
        """Stop generating and hand back the worker for the caller to close."""
        self._closing = True
        self.timer.stop()
        if self.run is not None:
            self.run.stop()
        worker, self.worker = self.worker, None
        return worker


_STATE_STATUS = {
    "unknown": "Unknown model",
    "not-downloaded": "Not downloaded",
    "damaged": "Damaged file",
    "needs-package": "Needs its package",
    "missing-file": "File missing",
}


def _format_size(num_bytes: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if num_bytes >= scale:
            return f"{num_bytes / scale:.1f} {unit}"
    return f"{num_bytes:.0f} B"


def _safe_ready(entry: ModelEntry) -> bool:
    try:
        return availability(entry) == "ready"
    except Exception:
        return False
