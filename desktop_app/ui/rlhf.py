"""The RLHF window: the class ranks answers, a reward model learns the ranking, and
best-of-N against it shows where optimising a learned reward stops paying.

Three tabs follow the lecture's three steps. **Vote**: two answers at a time, anonymised
(A and B, in random order), big buttons and keys (A / ←, T / ↓, B / →) for a show of hands.
**Ranking**: Bradley–Terry strengths with 95 % intervals and votes per answer. **Reward
model**: trained on the votes (the model's embeddings plus text features), its held-out
agreement beside the proxies' (the longest answer; a judge model's P("yes"), scored in the
background once a judge is chosen, saved with the session), and the best-of-N chart: its score of its pick against the
gold (the class, or the key).

Everything is computed by :mod:`desktop_app.rollouts.rlhf` (the same code as ``triptych
rlhf``) in :func:`~desktop_app.ui.tasks.run_task` jobs: the window never waits on a model
or a fit. The answers and votes are saved as they come (``rlhf/session.json`` in the data
folder) and exported (JSON with every figure, the votes as CSV, the chart as PNG).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QKeyEvent, QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.handle import ModelHandle
from desktop_app.models.catalog import ModelEntry
from desktop_app.rollouts.preferences import Strengths, Vote, Winner, bradley_terry, next_pair
from desktop_app.rollouts.reward import REWARD_MODEL, Agreement
from desktop_app.rollouts.rlhf import (
    LONGEST_ANSWER,
    RlhfReport,
    RlhfSession,
    analyse,
    embed_answers,
    sample_answers,
    save_session,
)
from desktop_app.rollouts.run import AnswerKey
from desktop_app.session.generation import close_in_background
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.ui import a11y, theme
from desktop_app.ui.rollouts_chart import GoodhartChart
from desktop_app.ui.tasks import Task, run_task
from desktop_app.verify import Problem

DEFAULT_ANSWERS = 8
MAX_WINDOW_ANSWERS = 16
ALL_MODELS = "__all__"
VOTE_KEYS = {Winner.A: ("A", "Left"), Winner.TIE: ("T", "Down"), Winner.B: ("B", "Right")}
# the letters vote in an answer box too (its arrows move the reading cursor)
_LETTERS = {Qt.Key.Key_A: Winner.A, Qt.Key.Key_T: Winner.TIE, Qt.Key.Key_B: Winner.B}
# the buttons: what they show (keys as symbols), and what a screen reader says
VOTE_BUTTONS = {
    Winner.A: (N_("◀  A is better   (A / ←)"), N_("Answer A is better"),
               N_("Vote for answer A. Keys: A or the left arrow.")),
    Winner.TIE: (N_("Tie   (T / ↓)"), N_("Tie: both answers are as good"),
                 N_("Vote a tie. Keys: T or the down arrow.")),
    Winner.B: (N_("B is better  ▶   (B / →)"), N_("Answer B is better"),
               N_("Vote for answer B. Keys: B or the right arrow.")),
}
KINDS = {"math": N_("math"), "code": N_("code")}  # a practice problem's kind, as shown


class VotePage(QWidget):
    """Two anonymised answers and three big buttons; the keys work wherever the focus is
    in the page (in an answer box the arrows move the reading cursor: letters vote there)."""

    def __init__(self, on_vote: Callable[[Winner], None], on_undo: Callable[[], None],
                 parent: QWidget | None = None):
        super().__init__(parent)
        self._on_vote = on_vote
        layout = QVBoxLayout(self)
        self.counter = QLabel(_("Sample answers first."))
        self.counter.setWordWrap(True)
        layout.addWidget(self.counter)
        sides = QHBoxLayout()
        self.texts: dict[Winner, QPlainTextEdit] = {}
        for winner in (Winner.A, Winner.B):
            column = QVBoxLayout()
            name = _("Answer A") if winner == Winner.A else _("Answer B")
            title = QLabel(name)
            font = title.font()
            font.setBold(True)
            font.setPointSizeF(font.pointSizeF() * 1.3)
            title.setFont(font)
            column.addWidget(title)
            text = QPlainTextEdit()
            text.setReadOnly(True)
            # reachable by Tab, so that a screen reader can read it; Tab leaves it
            text.setTabChangesFocus(True)
            text.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
            text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByKeyboard
                                         | Qt.TextInteractionFlag.TextSelectableByMouse)
            a11y.describe(text, name, _("The answer's text, read-only. Press A, T or B to "
                                        "vote; the arrows move the cursor here."))
            title.setBuddy(text)
            text.installEventFilter(self)
            big = text.font()
            big.setPointSizeF(big.pointSizeF() * 1.25)
            text.setFont(big)
            self.texts[winner] = text
            column.addWidget(text, 1)
            sides.addLayout(column, 1)
        layout.addLayout(sides, 1)
        buttons = QHBoxLayout()
        self.buttons: dict[Winner, QPushButton] = {}
        for winner, (label, name, description) in VOTE_BUTTONS.items():
            button = a11y.describe(QPushButton(_(label)), _(name), _(description))
            button.setMinimumHeight(button.fontMetrics().height() * 3)
            big = button.font()
            big.setPointSizeF(big.pointSizeF() * 1.2)
            big.setBold(True)
            button.setFont(big)
            button.clicked.connect(lambda _checked=False, w=winner: on_vote(w))
            self.buttons[winner] = button
            buttons.addWidget(button, 2 if winner != Winner.TIE else 1)
            for key in VOTE_KEYS[winner]:
                shortcut = QShortcut(QKeySequence(key), self)
                shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                shortcut.activated.connect(lambda w=winner: on_vote(w))
        layout.addLayout(buttons)
        self.undo = a11y.describe(QPushButton(_("Undo last vote")), _("Undo last vote"),
                                  _("Takes the last vote back and shows its pair again "
                                    "(Ctrl+Z)."))
        self.undo.setToolTip(_("Takes the last vote back and shows its pair again (Ctrl+Z)."))
        self.undo.clicked.connect(on_undo)
        undo_key = QShortcut(QKeySequence(QKeySequence.StandardKey.Undo), self)
        undo_key.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        undo_key.activated.connect(on_undo)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.undo)
        layout.addLayout(row)
        # a click on the page gives it the keys; Tab goes to its controls (focus shows there)
        self.setFocusPolicy(Qt.FocusPolicy.ClickFocus)
        self.announcer = a11y.Announcer(self, interval_s=1.0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """In an answer box the letters vote too (whether or not the box took them for
        itself); the arrows stay the box's, to read the answer line by line."""
        if event.type() == QEvent.Type.KeyPress and isinstance(event, QKeyEvent) \
                and not event.modifiers() and event.key() in _LETTERS:
            self._on_vote(_LETTERS[Qt.Key(event.key())])
            return True
        return super().eventFilter(watched, event)

    def first_control(self) -> QWidget:
        """Where focus goes when the tab opens: the first vote button that can vote."""
        return next((b for b in self.buttons.values() if b.isEnabled()), self.undo)

    def show_pair(self, a_text: str | None, b_text: str | None, counter: str,
                  announce: bool = False) -> None:
        self.counter.setText(counter)
        for winner, text in ((Winner.A, a_text), (Winner.B, b_text)):
            self.texts[winner].setPlainText(text or "")
            self.buttons[winner].setEnabled(text is not None)
        self.buttons[Winner.TIE].setEnabled(a_text is not None)
        if announce:  # the texts changed under the screen reader: say so, politely
            self.announcer.say(counter if a_text is None else
                               _("{counter}. A new pair: answer A, then answer B.")
                               .format(counter=counter))


def signed(value: float) -> str:
    """``+0.53`` / ``-0.20`` in the window's locale (``+0,53`` in German)."""
    return ("+" if value >= 0 else "") + number(value, 2)


def agreement_line(agreement: Agreement, judge: str = "") -> str:
    """The window's sentence for a held-out agreement (``Agreement.describe`` is the
    command line's, which stays English)."""
    if agreement.name == REWARD_MODEL:
        name = _(REWARD_MODEL)
    elif agreement.name == LONGEST_ANSWER:
        name = _(LONGEST_ANSWER)
    elif agreement.name.startswith("the judge's"):
        name = _("the judge's P(\"yes\") ({model})").format(model=judge)
    else:
        name = agreement.name
    if not agreement.votes or agreement.rate is None:
        return _("{name}: no decided vote to check against").format(name=name)
    agreed = number(agreement.agreed, 0 if agreement.agreed == int(agreement.agreed) else 1)
    return ngettext("{name}: agrees with the class on {agreed} of {n} vote ({rate}%)",
                    "{name}: agrees with the class on {agreed} of {n} votes ({rate}%)",
                    agreement.votes).format(name=name, agreed=agreed, n=agreement.votes,
                                            rate=round(agreement.rate * 100))


class RlhfWindow(QDialog):
    """RLHF's three steps on one prompt, for a class (see the module's docstring)."""

    def __init__(self, entries: Sequence[ModelEntry],
                 worker_factory: Callable[[ModelEntry], ModelHandle],
                 parent: QWidget | None = None, *, problems: Sequence[Problem] = (),
                 session: RlhfSession | None = None, save_to: Path | None = None,
                 seed: int | None = None, judges: Sequence[ModelEntry] = ()):
        super().__init__(parent)
        self.setWindowTitle(_("RLHF: rank, reward model, best-of-N"))
        self.resize(1000, 680)
        self.entries = list(entries)
        self.worker_factory = worker_factory
        self.workers: dict[str, ModelHandle] = {}
        self.problems = list(problems)
        self.save_to = save_to
        self.rng = random.Random(seed)
        self.session = session or RlhfSession(prompt="")
        self.pair: tuple[int, int] | None = None
        self.strengths: Strengths | None = None
        self.report: RlhfReport | None = None
        self.task: Task | None = None
        self.fit_task: Task | None = None
        self.judge_task: Task | None = None
        self.judges = list(judges)  # models that can judge: P("yes") to "is this good?"
        self._fits = 0  # the serial number of the latest Bradley–Terry fit asked for

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.problem_box = a11y.describe(
            QComboBox(), _("Practice problem"),
            _("A practice problem whose prompt to sample answers to, or your own prompt."))
        self.problem_box.addItem(_("Type a prompt…"), None)
        for problem in self.problems:
            kind = _(KINDS[problem.kind]) if problem.kind in KINDS else problem.kind
            mark = (_("open") if not problem.verifiable
                    else _("{kind}, with a key").format(kind=kind))
            self.problem_box.addItem(_("{title} ({mark})").format(title=problem.title,
                                                                  mark=mark), problem.id)
        self.problem_box.currentIndexChanged.connect(self._problem_chosen)
        self.prompt = a11y.describe(QLineEdit(self.session.prompt), _("Prompt"),
                                    _("The prompt the answers are sampled for."))
        self.prompt.setPlaceholderText(_("Write a funny joke about pelicans."))
        self.model_box = a11y.describe(QComboBox(), _("Answers from"),
                                       _("The model that writes the answers."))
        for entry in self.entries:
            self.model_box.addItem(entry.name, entry.id)
        if len(self.entries) > 1:
            self.model_box.addItem(_("every pane's model"), ALL_MODELS)
        self.count = a11y.describe(QSpinBox(), _("Number of answers"),
                                   _("How many answers to sample."))
        self.count.setRange(2, MAX_WINDOW_ANSWERS)
        self.count.setValue(DEFAULT_ANSWERS)
        self.count.setSuffix(_(" answers"))
        self.sample_button = QPushButton(_("Sample"))
        self.sample_button.clicked.connect(self.sample)
        self.stop_button = QPushButton(_("Stop"))
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        top.addWidget(self.problem_box)
        top.addWidget(self.prompt, 1)
        layout.addLayout(top)
        second = QHBoxLayout()
        answers_from = QLabel(_("Answers from"))
        answers_from.setBuddy(self.model_box)
        second.addWidget(answers_from)
        second.addWidget(self.model_box)
        second.addWidget(self.count)
        second.addStretch(1)
        second.addWidget(self.sample_button)
        second.addWidget(self.stop_button)
        layout.addLayout(second)
        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)

        self.tabs = QTabWidget()
        self.vote_page = VotePage(self.vote, self.undo_vote)
        self.tabs.addTab(self.vote_page, _("1 · Vote"))
        self.table = QTableWidget(0, 6)
        self.table.setHorizontalHeaderLabels(
            [_("Answer"), _("Strength"), _("95% interval"), _("Width"), _("Votes"), _("Text")])
        a11y.describe(self.table, _("Ranking"),
                      _("The answers by Bradley–Terry strength, strongest first, with the "
                        "95% interval of each strength and its votes."))
        self.table.setTabKeyNavigation(False)  # Tab leaves the table; arrows move in it
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        for column in range(5):  # follows the font (presentation mode, zoom)
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.tabs.addTab(self.table, _("2 · Ranking"))
        reward_page = QWidget()
        reward_layout = QVBoxLayout(reward_page)
        row = QHBoxLayout()
        self.train_button = QPushButton(_("Train the reward model on the votes"))
        self.train_button.clicked.connect(self.train)
        self.export_button = QPushButton(_("Export…"))
        self.export_button.clicked.connect(self.export_dialog)
        row.addWidget(self.train_button)
        row.addStretch(1)
        row.addWidget(self.export_button)
        reward_layout.addLayout(row)
        reward_layout.addLayout(self._judge_row())
        self.agreement = QLabel(_("Vote on some pairs, then train."))
        self.agreement.setWordWrap(True)
        self.agreement.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                               | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        self.agreement.setAccessibleDescription(_("The agreement with the class's votes"))
        reward_layout.addWidget(self.agreement)
        self.chart = GoodhartChart()
        self._describe_chart()
        reward_layout.addWidget(self.chart, 1)
        self.tabs.addTab(reward_page, _("3 · Reward model and best-of-N"))
        self.tabs.currentChanged.connect(self._tab_changed)
        layout.addWidget(self.tabs, 1)
        self._show_session()
        self._update_buttons()

    def _judge_row(self) -> QHBoxLayout:
        """A judge model to compare the reward model with: its P("yes") for each answer."""
        row = QHBoxLayout()
        self.judge_box = a11y.describe(QComboBox(), _("Judge model"),
                                       _("The chat model that judges each answer."))
        for judge in self.judges:
            self.judge_box.addItem(_("Judge: {model}").format(model=judge.name), judge.id)
        if not self.judges:
            self.judge_box.addItem(_("No judge: no chat model is downloaded"), None)
        chosen = self.judge_box.findData(self.session.judge_model)
        if chosen >= 0:
            self.judge_box.setCurrentIndex(chosen)
        self.judge_button = QPushButton(_("Score the answers with the judge"))
        tip = _("Ask a chat model whether each answer is correct (as the Rollouts window's "
                "judge does); its probability of \"yes\" is a proxy, checked on the same "
                "votes as the reward model.")
        self.judge_button.setToolTip(tip)
        self.judge_button.setAccessibleDescription(tip)
        self.judge_button.clicked.connect(self.judge)
        row.addWidget(self.judge_box)
        row.addWidget(self.judge_button)
        row.addStretch(1)
        return row

    # -- helpers

    @property
    def busy(self) -> bool:
        return bool(self.background_tasks())

    def background_tasks(self) -> list[Task]:
        return [t for t in (self.task, self.fit_task, self.judge_task)
                if t is not None and t.running]

    def _worker(self, entry: ModelEntry) -> ModelHandle:
        worker = self.workers.get(entry.id)
        if worker is None:
            worker = self.workers[entry.id] = self.worker_factory(entry)
        return worker

    def _chosen_entries(self) -> list[ModelEntry]:
        chosen = self.model_box.currentData()
        if chosen == ALL_MODELS:
            return list(self.entries)
        return [e for e in self.entries if e.id == chosen]

    def _problem_chosen(self) -> None:
        problem_id = self.problem_box.currentData()
        problem = next((p for p in self.problems if p.id == problem_id), None)
        if problem is not None:
            self.prompt.setText(problem.prompt)

    def _key(self) -> AnswerKey:
        problem_id = self.problem_box.currentData()
        problem = next((p for p in self.problems if p.id == problem_id), None)
        if problem is not None and problem.verifiable and problem.prompt == self.prompt.text():
            return AnswerKey(problem=problem)
        return AnswerKey()

    def _save(self) -> None:
        if self.session.answers:
            try:
                save_session(self.session, self.save_to)
            except OSError as exc:
                self.status.setText(_("The votes could not be saved: {error}.").format(error=exc))

    def _tab_changed(self, index: int) -> None:
        if self.tabs.widget(index) is self.vote_page:
            self.vote_page.first_control().setFocus()  # a button: the focus shows

    # -- step 0: sample

    def sample(self) -> None:
        prompt = self.prompt.text().strip()
        entries = self._chosen_entries()
        if self.busy:
            return
        if not prompt:
            self.status.setText(_("Type a prompt, or choose one, to sample answers to."))
            return
        if not entries:
            self.status.setText(_("No pane has a model that is ready: load one first."))
            return
        n = self.count.value()
        key = self._key()
        workers = [self._worker(entry) for entry in entries]
        self.status.setText(ngettext("Sampling {n} answer from {models}…",
                                     "Sampling {n} answers from {models}…", n).format(
            n=n, models=", ".join(e.name for e in entries)))

        def work(task: Task) -> RlhfSession:
            done = [0]

            def update(rollout: Any) -> None:
                if rollout.finished and rollout.verdict is None:
                    done[0] += 1
                    task.report(done[0])

            answers = sample_answers(workers, prompt, n, key,
                                     should_stop=task.cancelled.is_set, on_update=update)
            return RlhfSession(prompt=prompt, answers=answers)

        self.task = run_task(self, work, on_success=self._sampled, on_failure=self._failed,
                             on_progress=lambda done: self.status.setText(
                                 ngettext("Sampling: {done} of {n} answer…",
                                          "Sampling: {done} of {n} answers…", n).format(
                                     done=done, n=n)), name="rlhf-sample")
        self._update_buttons()

    def stop(self) -> None:
        for task in self.background_tasks():
            task.cancel()
        for worker in self.workers.values():
            worker.stop()

    def _sampled(self, session: RlhfSession) -> None:
        self.task = None  # done (its thread is ending)
        self.session = session
        self.report = None
        self.pair = None
        self.chart.set_curve([], key=False)
        count = len(session.answers)
        self.status.setText(ngettext("{n} answer. Vote on pairs: which is better?",
                                     "{n} answers. Vote on pairs: which is better?",
                                     count).format(n=count))
        self.vote_page.announcer.say(self.status.text())
        self._save()
        self._show_session()
        self.tabs.setCurrentWidget(self.vote_page)
        self._update_buttons()

    def _failed(self, error: BaseException) -> None:
        self.task = None
        self.status.setText(str(error) or type(error).__name__)
        self._update_buttons()

    # -- step 1: vote

    def vote(self, winner: Winner) -> None:
        if self.pair is None:
            return
        a, b = self.pair
        self.session.votes.append(Vote(a, b, winner))
        self._save()
        self._next_pair(announce=True)
        self._refit()

    def undo_vote(self) -> None:
        if self.session.votes:
            last = self.session.votes.pop()
            self._save()
            self.pair = (last.a, last.b)
            self._show_pair(announce=True)
            self._refit()

    def _next_pair(self, announce: bool = False) -> None:
        answers = self.session.answers
        self.pair = next_pair(len(answers), self.session.votes, self.rng) \
            if len(answers) >= 2 else None
        self._show_pair(announce)

    def _show_pair(self, announce: bool = False) -> None:
        answers = self.session.answers
        if self.pair is None:
            self.vote_page.show_pair(None, None, _("Sample answers first."), announce)
            return
        a, b = self.pair
        votes = len(self.session.votes)
        self.vote_page.show_pair(
            answers[a].text, answers[b].text,
            ngettext("Vote {number} · {votes} so far on {n} answer (shown anonymised, in "
                     "random order)", "Vote {number} · {votes} so far on {n} answers (shown "
                     "anonymised, in random order)", len(answers)).format(
                number=votes + 1, votes=votes, n=len(answers)), announce)

    def _show_session(self) -> None:
        self.prompt.setText(self.session.prompt)
        self._next_pair()
        self._refit()

    # -- step 2: strengths and the reward model

    def _refit(self) -> None:
        """Bradley–Terry on the votes so far (off the GUI thread)."""
        answers, votes = len(self.session.answers), list(self.session.votes)
        self._fits += 1
        serial = self._fits
        run_task(self, lambda _task: (serial, bradley_terry(answers, votes)),
                 on_success=self._show_strengths, name="rlhf-fit")

    def _show_strengths(self, result: tuple[int, Strengths]) -> None:
        serial, strengths = result
        if serial != self._fits:
            return  # a fit of fewer votes (or other answers) that finished late
        self.strengths = strengths
        self.table.setRowCount(len(strengths.strength))
        for row, index in enumerate(strengths.ranking()):
            cells = [f"#{index}", signed(strengths.strength[index]),
                     _("[{low}, {high}]").format(low=signed(strengths.low[index]),
                                                 high=signed(strengths.high[index])),
                     number(strengths.width(index), 2), str(strengths.votes[index]),
                     " ".join(self.session.answers[index].text.split())]
            for column, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if column < 5:
                    item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                self.table.setItem(row, column, item)

    def train(self) -> None:
        """Embed the answers (once) and train and score the reward model, off the GUI thread."""
        session = self.session
        if self.busy or not session.answers:
            return
        if not any(v.winner != Winner.TIE for v in session.votes):
            self.agreement.setText(_("The reward model learns from votes: vote on a few "
                                     "pairs first."))
            return
        entries = self._chosen_entries() or self.entries
        embedder = next((e for e in entries if e.id == session.answers[0].model), None) \
            or (entries[0] if entries else None)
        if embedder is None:
            self.agreement.setText(_("No model to embed the answers with."))
            return
        worker = self._worker(embedder) if session.embeddings is None else None
        count = len(session.answers)
        self.agreement.setText(ngettext("Embedding {n} answer with {model} and training…",
                                        "Embedding {n} answers with {model} and training…",
                                        count).format(n=count, model=embedder.name))

        def work(_task: Task) -> tuple[list[list[float]] | None, RlhfReport]:
            embeddings = session.embeddings
            if worker is not None:
                embeddings = embed_answers(worker, session.answers)
            snapshot = RlhfSession(prompt=session.prompt, answers=list(session.answers),
                                   votes=list(session.votes), embeddings=embeddings,
                                   embedding_model=embedder.id,
                                   judge_scores=session.judge_scores,
                                   judge_model=session.judge_model)
            return embeddings, analyse(snapshot)

        self.fit_task = run_task(self, work, on_success=self._trained,
                                 on_failure=self._train_failed, name="rlhf-train")
        self._update_buttons()

    def _train_failed(self, error: BaseException) -> None:
        self.fit_task = None
        self.agreement.setText(str(error) or type(error).__name__)
        self._update_buttons()

    def _trained(self, result: tuple[list[list[float]] | None, RlhfReport]) -> None:
        embeddings, report = result
        self.fit_task = None
        if len(report.rewards) != len(self.session.answers):
            return
        self.session.embeddings = embeddings
        self.report = report
        lines = [agreement_line(a, self.session.judge_model or "")
                 for a in (report.reward_agreement, *report.proxies)]
        if self.session.judge_scores is None:  # said, not left out
            lines.append(self._no_judge_line())
        lines.append(_("Cross-validated: each vote is predicted by a model trained without "
                       "it. Best-of-n: each answer scored by a model that never saw its "
                       "votes."))
        self.agreement.setText("\n".join(lines))
        self.chart.set_curve([(p.n, p.reward, p.gold) for p in report.best_of_n],
                             key=report.gold_kind == "key")
        self._describe_chart()
        self.vote_page.announcer.say(lines[0])
        self._update_buttons()

    def _describe_chart(self) -> None:
        """The chart's figures in words, for a screen reader (again when they change)."""
        points = self.chart.points
        if not points:
            text = _("No figures yet: vote on some pairs, then train the reward model.")
        else:
            gold = (_("the key (share right)") if self.chart.key
                    else _("the class's strength"))
            text = _("Best-of-N against the reward model; gold: {gold}.").format(gold=gold)
            text += " " + " ".join(_("N = {n}: reward {reward}, gold {gold_value}.").format(
                n=n, reward=signed(reward), gold_value=signed(gold_value))
                for n, reward, gold_value in points)
        a11y.describe(self.chart, _("Best-of-N chart: reward model vs gold"), text)

    def _no_judge_line(self) -> str:
        if not self.judges:
            return _("the judge's P(\"yes\"): no judge, as no chat (instruct) model is "
                     "downloaded")
        return _("the judge's P(\"yes\"): no judge has scored these answers yet "
                 "(choose one above, then Score)")

    def judge(self) -> bool:
        """Score every answer with the chosen judge (its P("yes"), off the GUI thread); the
        scores are saved with the session and, with votes, the agreement is computed
        again with the judge's row beside the longest answer's."""
        session = self.session
        chosen = self.judge_box.currentData()
        entry = next((j for j in self.judges if j.id == chosen), None)
        if self.busy or not session.answers:
            return False
        if entry is None:
            self.agreement.setText(self._no_judge_line() + ".")
            return False
        worker = self._worker(entry)
        texts = [a.text for a in session.answers]

        def work(task: Task) -> list[float | None]:
            from desktop_app.rollouts.goodhart import judge_scores

            return judge_scores(worker, session.prompt, texts, task.cancelled.is_set)

        def done(scores: list[float | None]) -> None:
            self.judge_task = None
            if self.session is not session or task.cancelled.is_set():
                self._update_buttons()
                return  # other answers now, or stopped: these scores are not theirs
            if all(score is None for score in scores):
                self.agreement.setText(_("{model} gave no token probabilities to score "
                                         "with: choose another judge.").format(
                                             model=entry.name))
                self._update_buttons()
                return
            session.judge_scores, session.judge_model = scores, entry.id
            self._save()
            self._update_buttons()
            if any(v.winner != Winner.TIE for v in session.votes):
                self.train()  # the agreement again, the judge's row beside the others
            else:
                self.agreement.setText(_("{model} scored the answers. Vote on a few pairs, "
                                         "then train: its agreement shows beside the reward "
                                         "model's.").format(model=entry.name))

        def failed(exc: BaseException) -> None:
            self.judge_task = None
            self.agreement.setText(_("The judge failed: {error}").format(error=exc)[:300])
            self._update_buttons()

        task = self.judge_task = run_task(self, work, on_success=done, on_failure=failed,
                                          name="rlhf-judge")
        self.agreement.setText(ngettext("{model} is judging {n} answer…",
                                        "{model} is judging {n} answers…", len(texts)).format(
                                            model=entry.name, n=len(texts)))
        for button in (self.judge_button, self.train_button, self.sample_button):
            button.setEnabled(False)  # until it ends (it may end before the task says so)
        self.stop_button.setEnabled(True)
        return True

    # -- export

    def export(self, path: str | Path) -> list[Path]:
        """The session and its figures as JSON, the votes as CSV, the chart as PNG."""
        import json

        from desktop_app.rollouts.preferences import votes_csv

        target = Path(path).with_suffix(".json")
        data = self.session.to_dict()
        if self.report is not None:
            data["report"] = self.report.to_dict()
        target.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
        votes = target.with_suffix(".csv")
        votes.write_text(votes_csv(self.session.votes), encoding="utf-8")
        written = [target, votes]
        if self.report is not None:
            written.append(self.chart.export(target.with_suffix(".png")))
        return written

    def export_dialog(self) -> None:
        path, _filter = QFileDialog.getSaveFileName(self, _("Export the votes and figures"),
                                                    "rlhf.json", "JSON (*.json)")
        if path:
            try:
                written = self.export(path)
            except OSError as exc:
                self.status.setText(_("Could not export: {error}.").format(error=exc))
                return
            self.status.setText(_("Exported {files}.").format(
                files=", ".join(p.name for p in written)))

    # -- lifecycle

    def _update_buttons(self) -> None:
        busy = self.busy
        self.sample_button.setEnabled(not busy)
        self.train_button.setEnabled(not busy and bool(self.session.answers))
        self.judge_button.setEnabled(not busy and bool(self.session.answers)
                                     and bool(self.judges))
        self.stop_button.setEnabled(busy)

    def done(self, result: int) -> None:  # closing, by any means: the processes go too
        self.stop()
        for task in self.background_tasks():
            task.detach()
        workers, self.workers = list(self.workers.values()), {}
        for worker in workers:
            close_in_background(worker)
        super().done(result)

    def closeEvent(self, event: Any) -> None:
        self.done(0)
        super().closeEvent(event)


def open_rlhf(window: Any) -> RlhfWindow:
    """Open the RLHF window on the panes' ready models, with the open and math practice
    problems to choose from, the last saved session, and as judges the panes' chat models
    and every downloaded instruct model (as the Rollouts window's judge)."""
    from desktop_app.models.catalog import is_ready
    from desktop_app.rollouts.rlhf import load_session
    from desktop_app.session.generation import default_worker_factory
    from desktop_app.verify import load_practice_sets

    entries: dict[str, ModelEntry] = {}
    for pane in window.panes:
        if pane.entry is not None and pane.ready:
            entries.setdefault(pane.entry.id, pane.entry)
    problems: list[Problem] = []
    for practice_set in load_practice_sets(full=False):
        if practice_set.key in ("open", "math"):
            problems.extend(practice_set.problems)
    factory = window.worker_factory or default_worker_factory
    judges = {e.id: e for e in entries.values() if e.role != "base"}
    for candidate in window.catalog:
        if candidate.role == "instruct" and is_ready(candidate):
            judges.setdefault(candidate.id, candidate)
    dialog = RlhfWindow(list(entries.values()), factory, window, problems=problems,
                        session=load_session(), judges=list(judges.values()))
    sizes = [pane.point_size for pane in window.panes if pane.point_size]
    if sizes:  # zoom and presentation mode reach this window too
        theme.apply_point_size(dialog, sizes[0])
    dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    dialog.show()
    return dialog
