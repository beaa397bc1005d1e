"""A pane's settings form: sampling, system prompt, thinking, a base model's wrapping, and
the model's GPU offload.

It edits a :class:`desktop_app.session.pane.PaneConfig`: ``load`` fills the fields from the
config (the catalog's defaults where the config says ``None``), ``store`` writes what the
user changed back into it (a value equal to the default is stored as ``None``, so a later
change of the catalog's default still applies). GPU offload is the exception: it belongs to
the model, not the pane, so :class:`OffloadChoice` saves it in the user's catalog.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QScrollArea,
    QSizePolicy,
    QSpinBox,
    QToolButton,
    QWidget,
)

from desktop_app.engine.llama import devices as gpu_probe
from desktop_app.engine.protocol import Sampling
from desktop_app.models import devices
from desktop_app.models.catalog import SAMPLING_RANGES, ModelEntry
from desktop_app.models.devices import DeviceReport, GpuLayers
from desktop_app.models.sources import RemoteSource
from desktop_app.session.pane import PaneConfig
from desktop_app.text.i18n import _
from desktop_app.ui import a11y, theme
from desktop_app.ui.tasks import Task, run_task
from desktop_app.ui.widgets import FlowLayout

SAVE_DELAY_MS = 600  # a burst of spin-box clicks is saved once
TUNED = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty")  # the sampler's fields


def _spin(limits: tuple[float, float], step: float) -> QDoubleSpinBox:
    spin = QDoubleSpinBox()
    spin.setRange(*limits)
    spin.setSingleStep(step)
    spin.setDecimals(2)
    return spin


class OffloadChoice(QWidget):
    """GPU offload for the pane's model: Auto / CPU only / N layers.

    A model setting, saved in the user's catalog off the GUI thread; ``saved(model_id)``
    then tells the window, which reloads the catalog so every pane sees it. The model's
    process reads it when it starts. Whether this build can offload at all comes from the
    device probe (a child process, run once per session, never on the GUI thread); until it
    answers, and on a CPU-only build, the choice is disabled with a sentence saying why."""

    saved = Signal(str)

    AUTO, CPU, LAYERS = "auto", "cpu", "layers"

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.entry: ModelEntry | None = None
        self.report: DeviceReport | None = None
        self.probe_task: Task | None = None
        self.save_task: Task | None = None
        self.mode = QComboBox()
        for label, mode in ((_("Auto"), self.AUTO), (_("CPU only"), self.CPU),
                            (_("Layers on GPU"), self.LAYERS)):
            self.mode.addItem(label, mode)
        self.mode.setToolTip(_("Auto puts every layer on the GPU when there is one"))
        a11y.describe(self.mode, _("GPU offload"), self.mode.toolTip())
        self.mode.setSizeAdjustPolicy(  # may shorten "Layers on GPU" in a narrow pane
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(6)
        self.layers = QSpinBox()
        self.layers.setRange(1, 999)
        self.layers.setToolTip(_("How many of the model's layers go on the GPU (the rest "
                                 "stay on the CPU)"))
        a11y.describe(self.layers, _("Layers on GPU"), self.layers.toolTip())
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setTextFormat(Qt.TextFormat.PlainText)  # a driver's device name is not markup
        theme.style(self.note, lambda: f"color: {theme.muted_fg()};")
        a11y.describe(self.note, _("GPU offload note"))
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.mode, 1)
        row.addWidget(self.layers)
        column = QGridLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setVerticalSpacing(2)
        column.addLayout(row, 0, 0)
        column.addWidget(self.note, 1, 0)
        self.save_timer = QTimer(self)
        self.save_timer.setSingleShot(True)
        self.save_timer.setInterval(SAVE_DELAY_MS)
        self.save_timer.timeout.connect(self._save)
        self.mode.currentIndexChanged.connect(self._edited)
        self.layers.valueChanged.connect(self._edited)
        self.set_report(gpu_probe.cached())

    # -- what the form shows

    def load(self, entry: ModelEntry | None) -> None:
        """Show ``entry``'s setting; hidden for a model on a server. A change still waiting
        to be saved (the pane switched models at once) is saved for the model it was for."""
        if self.save_timer.isActive():
            self.save_timer.stop()
            self._save()
        self.entry = entry
        local = entry is not None and not isinstance(entry.source, RemoteSource)
        self.setVisible(local)
        if entry is not None:
            self._show(entry.gpu_layers)

    def setting(self) -> GpuLayers:
        mode = self.mode.currentData()
        if mode == self.AUTO:
            return None
        return 0 if mode == self.CPU else self.layers.value()

    def _show(self, setting: GpuLayers) -> None:
        for widget in (self.mode, self.layers):
            widget.blockSignals(True)
        try:
            mode = self.AUTO if setting is None else self.CPU if setting == 0 else self.LAYERS
            self.mode.setCurrentIndex(self.mode.findData(mode))
            if setting:
                self.layers.setValue(setting)
            self.layers.setVisible(mode == self.LAYERS)
        finally:
            for widget in (self.mode, self.layers):
                widget.blockSignals(False)

    def set_report(self, report: DeviceReport | None) -> None:
        """What the device probe found (None: not asked yet)."""
        self.report = report
        usable = report is not None and (report.gpu_offload or report.problem is not None)
        self.mode.setEnabled(usable)
        self.layers.setEnabled(usable)
        applies = _("A change applies the next time this model starts.")
        if report is None:
            text = _("Asking this computer about its GPU…")
        elif report.problem is not None:
            text = _("{problem} The setting is still given to llama.cpp. {applies}").format(
                problem=report.describe(), applies=applies)
        elif not report.gpu_offload:
            text = _(devices.NO_OFFLOAD)
        elif not report.gpus:
            text = _("This llama.cpp build can offload, but it found no GPU. {applies}").format(
                applies=applies)
        else:
            text = _("On {devices}. {applies}").format(devices=report.describe(),
                                                       applies=applies)
        self.note.setText(text)

    def showEvent(self, event: Any) -> None:
        """Ask about the GPU the first time the settings are opened (once per session)."""
        super().showEvent(event)
        if self.report is None and self.probe_task is None:
            self.probe_task = run_task(self, lambda _task: gpu_probe.probe(),
                                       on_success=self.set_report, name="devices")

    # -- saving

    def _edited(self) -> None:
        self.layers.setVisible(self.mode.currentData() == self.LAYERS)
        self.save_timer.start()

    def _save(self) -> None:
        entry, setting = self.entry, self.setting()
        if entry is None or setting == entry.gpu_layers:
            return
        self.entry = replace(entry, gpu_layers=setting)  # what the file will say

        def work(_task: Task) -> str:
            from desktop_app.models import user_catalog

            user_catalog.set_gpu_layers(entry.id, setting)
            return entry.id

        self.save_task = run_task(self, work, on_success=self.saved.emit,
                                  on_failure=lambda exc: self._not_saved(entry, exc),
                                  name="save-gpu-offload")

    def _not_saved(self, entry: ModelEntry, exc: BaseException) -> None:
        """The catalog could not be written (one sentence): show what is in force."""
        if self.entry is not None and self.entry.id == entry.id:
            self.entry = entry
            self._show(entry.gpu_layers)
        self.note.setText(str(exc))


class PaneSettingsForm(QScrollArea):
    """The fields under a pane's ⚙ button. ``changed`` fires on every edit by the user.

    The form scrolls inside the pane when the pane is short (⚙ open in every pane at
    presentation sizes on a 1024×768 projector), rather than making the window taller
    than the screen or squeezing its rows over each other."""

    changed = Signal()
    defaultsRequested = Signal()
    MIN_ROWS = 4  # rows of text the form keeps when the pane is short

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setWidgetResizable(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.form = QWidget()
        grid = QGridLayout(self.form)
        grid.setContentsMargins(8, 6, 8, 6)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(4)
        self.temperature = _spin(SAMPLING_RANGES["temperature"], 0.1)
        # the rest of the sampler, in llama.cpp's order (the catalog's names, the CLI's
        # --top-k …): each at its "off" value turns it off
        self.top_k = QSpinBox()
        self.top_k.setRange(*(int(v) for v in SAMPLING_RANGES["top_k"]))
        self.top_k.setSpecialValueText(_("off"))
        self.top_p = _spin(SAMPLING_RANGES["top_p"], 0.05)
        self.min_p = _spin(SAMPLING_RANGES["min_p"], 0.01)
        self.repeat_penalty = _spin(SAMPLING_RANGES["repeat_penalty"], 0.05)
        for field in (self.top_k, self.top_p, self.min_p, self.repeat_penalty):
            field.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.max_tokens = QSpinBox()
        self.max_tokens.setRange(1, 32768)
        self.max_tokens.setSingleStep(64)
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText(_("random"))
        # as wide as its column (ten digits' width would widen a narrow pane)
        self.seed.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.thinking_box = QCheckBox(_("Thinking"))
        self.thinking_box.setToolTip(_("Let the reasoning model think before it answers"))
        self.show_prompt_box = QCheckBox(_("Show prompt sent"))
        self.probabilities_box = QCheckBox(_("Probabilities"))
        self.probabilities_box.setToolTip(_(
            "Tint each generated token by its probability; hover it for the alternatives "
            "the model weighed and what the sampler drew from, click it to continue from "
            "another one (new replies)"))
        self.system_prompt = QLineEdit()
        self.system_prompt.setPlaceholderText(_("System prompt (model default)"))
        self.system_label = QLabel(_("System"))
        self.defaults_button = QToolButton()
        self.defaults_button.setText(_("Defaults"))
        self.defaults_button.setToolTip(_("Back to this model's default settings"))
        self.defaults_button.clicked.connect(self.defaultsRequested)
        checks = QHBoxLayout()  # "Thinking" and "Defaults": fits a narrow pane
        checks.setContentsMargins(0, 0, 0, 0)
        checks.addWidget(self.thinking_box)
        checks.addStretch(1)
        checks.addWidget(self.defaults_button)
        # one field per row, full labels: three panes side by side at presentation sizes
        # leave room for a label and a field, not for two of each ("Max tol")
        rows = [(_("Temperature"), self.temperature, _(
                    "Temperature: 0 always picks the likeliest token (after the repetition "
                    "penalty); higher spreads the choice")),
                (_("Top-k"), self.top_k, _("Keep only the k likeliest tokens (off: all of "
                                           "them)")),
                (_("Top-p"), self.top_p, _("Keep the likeliest tokens until their "
                                           "probabilities add up to p (1: off)")),
                (_("Min-p"), self.min_p, _("Drop tokens less likely than p times the "
                                           "likeliest one (0: off)")),
                (_("Repeat penalty"), self.repeat_penalty, _(
                    "Make the last 64 generated tokens less likely (1: off)")),
                (_("Max tokens"), self.max_tokens, _("Maximum number of tokens to generate")),
                (_("Seed"), self.seed, _("The same seed and settings give the same reply")),
                (_("System prompt"), self.system_prompt, "")]
        for row, (text, editor, tip) in enumerate(rows):
            a11y.describe(editor, text, tip)
            label = self.system_label if editor is self.system_prompt else QLabel(text)
            label.setWordWrap(True)  # "Repeat penalty" on two lines in a narrow pane
            label.setBuddy(editor)
            if tip:
                label.setToolTip(tip)
                editor.setToolTip(tip)
            grid.addWidget(label, row, 0)
            grid.addWidget(editor, row, 1)
        row = len(rows)
        grid.addLayout(checks, row, 0, 1, 2)
        views = FlowLayout(spacing=8)  # two checkboxes: one row, or two in a narrow pane
        views.addWidget(self.show_prompt_box)
        views.addWidget(self.probabilities_box)
        grid.addLayout(views, row + 1, 0, 1, 2)
        # base models: the document the question is wrapped in, editable, or none at all
        self.wrapping_label = QLabel(_("Wrapping"))
        self.wrapping_label.setToolTip(
            _("The document a base model continues; {question} is replaced by your "
              "prompt"))
        self.wrapping = QPlainTextEdit()
        self.wrapping.setTabChangesFocus(True)
        a11y.describe(self.wrapping, _("Wrapping"), self.wrapping_label.toolTip())
        self.wrapping.setFixedHeight(self.wrapping.fontMetrics().lineSpacing() * 4 + 12)
        self.wrapping_label.setBuddy(self.wrapping)
        self.raw_box = QCheckBox(_("Send raw text"))  # short: fits a narrow pane
        self.raw_box.setToolTip(_("No wrapping: the base model continues exactly what you "
                                  "typed"))
        self.wrapping_hint = QLabel(_("The wrapping must contain {question}; "
                                      "the last valid one is used."))
        self.wrapping_hint.setWordWrap(True)
        theme.style(self.wrapping_hint, lambda: f"color: {theme.fail_color()};")
        self.wrapping_hint.hide()
        grid.addWidget(self.wrapping_label, row + 2, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.wrapping, row + 2, 1)
        grid.addWidget(self.raw_box, row + 3, 0, 1, 2)
        grid.addWidget(self.wrapping_hint, row + 4, 0, 1, 2)
        self.offload_label = QLabel(_("GPU offload"))
        self.offload = OffloadChoice()
        self.offload_label.setBuddy(self.offload.mode)
        grid.addWidget(self.offload_label, row + 5, 0, Qt.AlignmentFlag.AlignTop)
        grid.addWidget(self.offload, row + 5, 1)
        self.offloadSaved = self.offload.saved  # the window reloads the catalog on it
        grid.setColumnStretch(1, 1)
        self.setWidget(self.form)
        for signal in (self.temperature.valueChanged, self.top_k.valueChanged,
                       self.top_p.valueChanged, self.min_p.valueChanged,
                       self.repeat_penalty.valueChanged, self.max_tokens.valueChanged,
                       self.seed.valueChanged, self.thinking_box.toggled,
                       self.show_prompt_box.toggled, self.system_prompt.editingFinished,
                       self.wrapping.textChanged, self.raw_box.toggled,
                       self.probabilities_box.toggled):
            signal.connect(self.changed)

    def _form_height(self, width: int) -> int:
        layout = self.form.layout()
        assert layout is not None
        if layout.hasHeightForWidth():
            return max(layout.heightForWidth(width), layout.minimumSize().height())
        return layout.sizeHint().height()

    def sizeHint(self) -> QSize:
        """The whole form, as tall as it is at the width it has (its notes wrap)."""
        frame = 2 * self.frameWidth()
        width = self.viewport().width() if self.isVisible() else self.form.sizeHint().width()
        return QSize(self.form.sizeHint().width() + frame, self._form_height(width) + frame)

    def minimumSizeHint(self) -> QSize:
        """As narrow as the form's narrowest, beside a scroll bar; a few rows tall."""
        frame = 2 * self.frameWidth()
        bar = self.verticalScrollBar().sizeHint().width()
        rows = self.fontMetrics().lineSpacing() * self.MIN_ROWS
        height = min(self._form_height(self.form.minimumSizeHint().width()), rows)
        return QSize(self.form.minimumSizeHint().width() + bar + frame, height + frame)

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.updateGeometry()  # the height it asks for follows the width it got

    def _fields(self) -> tuple[QWidget, ...]:
        return (self.temperature, self.top_k, self.top_p, self.min_p, self.repeat_penalty,
                self.max_tokens, self.seed, self.thinking_box,
                self.show_prompt_box, self.system_prompt, self.wrapping, self.raw_box,
                self.probabilities_box)

    def load(self, entry: ModelEntry | None, config: PaneConfig) -> None:
        """Show ``config`` for ``entry`` (no ``changed`` signal)."""
        fields = self._fields()
        for field in fields:
            field.blockSignals(True)
        try:
            if entry is not None:
                self._load(entry, config)
            self.offload.load(entry)
            self.offload_label.setVisible(self.offload.isVisibleTo(self))
        finally:
            for field in fields:
                field.blockSignals(False)

    def _load(self, entry: ModelEntry, cfg: PaneConfig) -> None:
        sampling = Sampling.for_entry(entry)
        for name in TUNED:
            value = getattr(cfg, name)
            getattr(self, name).setValue(value if value is not None else getattr(sampling, name))
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
            _("System prompt (default: {prompt})").format(
                prompt=entry.prompt.system_prompt or _("none")))
        show = cfg.show_prompt if cfg.show_prompt is not None else entry.role == "base"
        self.show_prompt_box.setChecked(bool(show))
        self.probabilities_box.setChecked(bool(cfg.probabilities))
        document = entry.prompt.style == "document"
        for document_widget in (self.wrapping_label, self.wrapping, self.raw_box):
            document_widget.setVisible(document)
        self.wrapping.setPlainText(cfg.document_template or entry.prompt.document_template)
        self.raw_box.setChecked(bool(cfg.raw) and document)
        self.wrapping.setEnabled(not self.raw_box.isChecked())
        self.wrapping_hint.hide()

    def store(self, entry: ModelEntry, cfg: PaneConfig) -> None:
        """Write the fields into ``cfg``; a wrapping without ``{question}`` is not taken
        (the hint says so and the last valid one stays)."""
        sampling = Sampling.for_entry(entry)
        for name in TUNED:
            value = getattr(self, name).value()
            value = round(value, 2) if isinstance(value, float) else value
            setattr(cfg, name, None if abs(value - getattr(sampling, name)) < 1e-9 else value)
        tokens = self.max_tokens.value()
        cfg.max_tokens = None if tokens == sampling.max_tokens else tokens
        cfg.seed = None if self.seed.value() < 0 else self.seed.value()
        cfg.thinking = self.thinking_box.isChecked() if entry.prompt.supports_thinking else True
        cfg.show_prompt = self.show_prompt_box.isChecked()
        cfg.probabilities = self.probabilities_box.isChecked()
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

    def set_values(self, **values: float | int | bool | str | None) -> None:
        """Set fields from code (snapshot mode, a prepared prompt's settings, bench, tests)
        by setting name (``max_tokens``, ``temperature``, ``top_k``… ``seed``, ``thinking``,
        ``system_prompt``); None leaves a field as it is; ``changed`` fires as for the user."""
        for name, value in values.items():
            if value is None:
                continue
            if name == "thinking":
                if self.thinking_box.isEnabled():
                    self.thinking_box.setChecked(bool(value))
            elif name == "system_prompt":
                if self.system_prompt.isVisibleTo(self):
                    self.system_prompt.setText(str(value))
            elif name in (*TUNED, "max_tokens", "seed"):
                getattr(self, name).setValue(value)
            else:
                raise TypeError(f"no setting called {name}")
