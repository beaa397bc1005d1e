"""The next-token explorer: type a text, see what each pane's model would say next, side by
side, and walk forward one token at a time.

Each column asks its own model process (made by the panes' worker factory, closed with
the dialog) for one greedy token with its likeliest alternatives and every token's
probability; the request runs as a task off the GUI thread. A click on an alternative
appends that token to every column's text, so the models stay comparable; "Greedy step"
lets each model append its own top token. "As a question" wraps the text once, in each
model's own template (the column says which); every later step continues that exact text
raw. The sampling lab (:mod:`desktop_app.ui.sampling_lab`) reshapes what came back, live,
with no new request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPlainTextEdit,
    QPushButton,
    QSizePolicy,
    QStyle,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.sampling import NextTokenDistribution
from desktop_app.models.catalog import ModelEntry
from desktop_app.session.generation import close_in_background
from desktop_app.session.tokens import (
    NO_EXACT_PROMPT,
    WRAPPING_LABELS,
    NextToken,
    Wrapping,
    exact_prompt_known,
    next_token_request,
    read_next_token,
    wrapping_note,
)
from desktop_app.text import escape
from desktop_app.text.i18n import _, number
from desktop_app.ui import a11y, theme
from desktop_app.ui.sampling_lab import SamplingLab, header, lab_summary, row_text, row_widths
from desktop_app.ui.tasks import Task, run_task


class ExplorerColumn(QWidget):
    """One model: what it was given, and its next-token distribution."""

    def __init__(self, entry: ModelEntry, worker_factory: Callable[[ModelEntry], ModelHandle],
                 parent: QWidget | None = None, *, lab: SamplingLab | None = None):
        super().__init__(parent)
        self.entry = entry
        self.lab = lab or SamplingLab()
        self.distribution: NextTokenDistribution | None = None
        self.worker_factory = worker_factory
        self.worker: ModelHandle | None = None
        self.context: str | None = None  # the exact text the model was last given
        self.added = ""  # the tokens appended since the typed text
        self.result: NextToken | None = None
        self.task: Task | None = None
        self.pending = False  # a request is out; its answer has not been shown yet
        self.on_pick: Callable[[str], None] = lambda _text: None
        self.on_done: Callable[[], None] = lambda: None
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel(f"<b>{escape.html(entry.name)}</b>")
        theme.style(self.title, lambda: f"color: {theme.role_text_color(entry.role)};")
        self.note = QLabel()
        self.note.setWordWrap(True)
        theme.style(self.note, lambda: f"color: {theme.muted_fg()};")
        self.text_view = QLabel()
        self.text_view.setWordWrap(True)
        self.text_view.setTextFormat(Qt.TextFormat.PlainText)
        self.text_view.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.header = QLabel(header(6))
        self.header.setFont(theme.mono_font())
        self.header.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.header.setToolTip(_("Each token's probability under the model, then in the "
                                 "distribution the lab's sampler draws from (0%: cut), and "
                                 "how many of the draws picked it"))
        theme.style(self.header, lambda: f"color: {theme.muted_fg()};")
        self.tokens = QListWidget()
        a11y.describe(self.tokens, _("Next tokens of {model}").format(model=entry.name),
                      _("Each token with its probability; Enter adds it to every model's "
                        "text."))
        a11y.describe(self.note, _("What {model} was given").format(model=entry.name))
        a11y.describe(self.text_view, _("Tokens added so far"))
        self.tokens.setFont(theme.mono_font())
        self.tokens.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.tokens.itemActivated.connect(self._picked)
        self.tokens.itemClicked.connect(self._picked)
        self.summary = QLabel()
        a11y.describe(self.summary, _("Summary"))
        self.summary.setWordWrap(True)
        theme.style(self.summary, lambda: f"color: {theme.muted_fg()};")
        for widget in (self.title, self.note, self.text_view, self.header):
            layout.addWidget(widget)
        layout.addWidget(self.tokens, 1)
        layout.addWidget(self.summary)

    @property
    def busy(self) -> bool:
        return self.pending

    def ask(self, text: str, wrapping: Wrapping) -> None:
        """Start over from a typed text."""
        self.context, self.added = None, ""
        wrap = wrapping == Wrapping.AS_QUESTION
        note = wrapping_note(self.entry, wrapping, stepped=False)
        self.note.setText(note if self.can_step(wrapping) else f"{note} {_(NO_EXACT_PROMPT)}")
        self._run(text, wrap=wrap)

    def can_step(self, wrapping: Wrapping) -> bool:
        """Stepping sends the exact text so far, raw: a server's chat API never shows it."""
        return wrapping == Wrapping.AS_TYPED or exact_prompt_known(self.entry)

    def extend(self, token: str, wrapping: Wrapping) -> None:
        """Append a token to what this model was given and ask again (raw from now on)."""
        if self.context is None or not self.can_step(wrapping):
            return
        self.added += token
        self.note.setText(wrapping_note(self.entry, wrapping, stepped=True))
        self._run(self.context + token, wrap=False)

    def _run(self, context: str, *, wrap: bool) -> None:
        self.tokens.clear()
        self.tokens.addItem(_("Asking the model…"))
        self.distribution = None
        self.summary.clear()
        self.text_view.setText(self.added and f"… {self.added}")
        request = next_token_request(context, wrap=wrap)
        try:
            if self.worker is None:
                self.worker = self.worker_factory(self.entry)
        except Exception as exc:  # noqa: BLE001 - e.g. no semaphores in a sandbox
            self._show(NextToken(error=_("Could not start the model: {error}").format(
                error=exc)))
            return
        worker = self.worker
        self.pending = True

        def work(_task: Task) -> NextToken:  # loading the model, then one token
            return read_next_token(worker.generate(request))

        self.task = run_task(self, work, on_success=self._show,
                             on_failure=lambda exc: self._show(NextToken(error=str(exc))),
                             name="explorer")

    def _show(self, result: NextToken) -> None:
        self.pending = False
        self.result = result
        self.tokens.clear()
        if result.error:
            self.tokens.addItem(result.error)
            self.on_done()
            return
        self.context = result.prompt_sent
        if result.notes:  # how the prompt was adapted to this model, once per question
            self.note.setText(" ".join((self.note.text(), *result.notes)))
        self.distribution = NextTokenDistribution.received(result.top, result.whole)
        for text, logprob in result.top:
            item = QListWidgetItem()
            item.setData(Qt.ItemDataRole.UserRole, text)
            item.setToolTip(_("log-probability {value} under the model").format(
                value=number(logprob, 3)))
            if text == "":
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEnabled)
            self.tokens.addItem(item)
        rest = QListWidgetItem()
        rest.setFlags(rest.flags() & ~Qt.ItemFlag.ItemIsEnabled)
        self.tokens.addItem(rest)
        self.reshape()
        self.on_done()

    def reshape(self) -> None:
        """The distribution as the lab's sliders reshape it (rows keep their items, so a
        drag only changes texts)."""
        distribution = self.distribution
        if distribution is None:
            return
        lab = self.lab
        view = distribution.reshape(lab.sampling(), draws=lab.draws, seed=lab.seed)
        muted = QColor(theme.muted_fg())
        name, bar = row_widths(self.text_width(), self.tokens.fontMetrics())
        self.header.setText(header(name))
        for index, row in enumerate(view.rows):
            item = self.tokens.item(index)
            item.setText(row_text(row, name=name, bar=bar))
            item.setForeground(muted if row.sampled <= 0 else self.palette().text())
        rest = self.tokens.item(len(view.rows))
        rest.setText(row_text(view.other, other=view.others, name=name, bar=bar)
                     if view.others else "")
        rest.setHidden(not view.others)
        self.summary.setText(lab_summary(view, complete=distribution.complete,
                                         vocabulary=distribution.size))

    def text_width(self) -> int:
        """The pixels a row's text has: the list's width less the item's margins."""
        margin = self.tokens.style().pixelMetric(QStyle.PixelMetric.PM_FocusFrameHMargin,
                                                 None, self.tokens) + 1
        return self.tokens.viewport().width() - 2 * margin - 2

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self.reshape()  # the bars take the room there is

    def top_token(self) -> str | None:
        result = self.result
        if result is None or result.error or not result.top or result.top[0][0] == "":
            return None
        return result.top[0][0]

    def _picked(self, item: QListWidgetItem) -> None:
        text = item.data(Qt.ItemDataRole.UserRole)
        if isinstance(text, str) and text:
            self.on_pick(text)

    def close_worker(self) -> None:
        worker, self.worker = self.worker, None
        close_in_background(worker)


class NextTokenExplorer(QDialog):
    """The panes' models side by side on one text: their next-token distributions."""

    def __init__(self, entries: Sequence[ModelEntry],
                 worker_factory: Callable[[ModelEntry], ModelHandle],
                 parent: QWidget | None = None, *, text: str = ""):
        super().__init__(parent)
        self.setWindowTitle(_("Next-token explorer"))
        self.resize(900, 560)
        layout = QVBoxLayout(self)
        hint = QLabel(_("Each model gives a probability to every possible next token. Type a "
                        "text, then step forward: greedily (each model its own top token) or "
                        "by choosing a token (added for every model)."))
        hint.setWordWrap(True)
        layout.addWidget(hint)
        self.text = QPlainTextEdit(text)
        self.text.setPlaceholderText(_("The capital of France is"))
        a11y.describe(self.text, _("Text to continue"),
                      _("The models say which token would come next; Tab moves on."))
        self.text.setTabChangesFocus(True)
        self.text.setFixedHeight(self.text.fontMetrics().lineSpacing() * 3 + 14)
        layout.addWidget(self.text)
        row = QHBoxLayout()
        self.wrapping = QComboBox()
        for wrapping, label in WRAPPING_LABELS.items():
            self.wrapping.addItem(_(label), wrapping)
        a11y.describe(self.wrapping, _("How the text is given"),
                      _("As typed, or wrapped as a question in each model's template"))
        self.ask_button = QPushButton(_("Show next tokens"))
        self.ask_button.setDefault(True)
        self.ask_button.clicked.connect(self.ask)
        self.step_button = QPushButton(_("Greedy step"))
        self.step_button.setToolTip(_("Each model appends its own most likely token"))
        self.step_button.clicked.connect(self.greedy_step)
        self.step_button.setEnabled(False)
        row.addWidget(self.wrapping)
        row.addStretch(1)
        row.addWidget(self.ask_button)
        row.addWidget(self.step_button)
        layout.addLayout(row)
        columns = QHBoxLayout()
        self.columns: list[ExplorerColumn] = []
        self.lab = SamplingLab()
        layout.addWidget(self.lab)
        self.lab.changed.connect(self.reshape)
        for entry in entries:
            column = ExplorerColumn(entry, worker_factory, lab=self.lab)
            column.on_pick = self.pick
            column.on_done = self._update_buttons
            self.columns.append(column)
            columns.addWidget(column, 1)
        layout.addLayout(columns, 1)
        self.empty = QLabel(_("No pane has a model that is ready."))
        self.empty.setVisible(not self.columns)
        layout.addWidget(self.empty)

    def reshape(self) -> None:
        """The lab's sliders moved: every column redrawn from what it holds (no request)."""
        for column in self.columns:
            column.reshape()

    @property
    def current_wrapping(self) -> Wrapping:
        return Wrapping(self.wrapping.currentData())

    @property
    def busy(self) -> bool:
        return any(column.busy for column in self.columns)

    def ask(self) -> None:
        text = self.text.toPlainText()
        if not text or self.busy:
            return
        for column in self.columns:
            column.ask(text, self.current_wrapping)
        self._update_buttons()

    def pick(self, token: str) -> None:
        """A clicked token continues every model's text."""
        if self.busy:
            return
        for column in self.columns:
            column.extend(token, self.current_wrapping)
        self._update_buttons()

    def greedy_step(self) -> None:
        if self.busy:
            return
        for column in self.columns:
            token = column.top_token()
            if token is not None:
                column.extend(token, self.current_wrapping)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.busy
        self.ask_button.setEnabled(not busy)
        self.wrapping.setEnabled(not busy)
        self.step_button.setEnabled(not busy and any(c.top_token() for c in self.columns))

    def background_tasks(self) -> list[Task]:
        return [c.task for c in self.columns if c.task is not None and c.task.running]

    def done(self, result: int) -> None:  # closing, by any means: the processes go too
        for column in self.columns:
            if column.worker is not None:
                column.worker.stop()
            column.close_worker()
        super().done(result)

    def closeEvent(self, event: Any) -> None:
        for column in self.columns:
            column.close_worker()
        super().closeEvent(event)


def open_explorer(window: Any) -> NextTokenExplorer:
    """Open the explorer on the models of ``window``'s panes (each once, ready ones only);
    it closes its model processes when it closes."""
    from desktop_app.session.generation import default_worker_factory

    entries: dict[str, ModelEntry] = {}
    for pane in window.panes:
        if pane.entry is not None and pane.ready:
            entries.setdefault(pane.entry.id, pane.entry)
    factory = window.worker_factory or default_worker_factory
    dialog = NextTokenExplorer(list(entries.values()), factory, window)
    sizes = [pane.point_size for pane in window.panes if pane.point_size]
    if sizes:  # zoom and presentation mode reach the explorer too
        theme.apply_point_size(dialog, sizes[0])
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
