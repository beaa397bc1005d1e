"""The practice-problem picker: verifiable math/code problems and open ones.

Benchmark sets hold hundreds of problems, so the picker has a search box (title, id and
prompt) and filters by set and, where a set grades its problems, by level. The sets load
on a worker thread (:func:`run_task`); the dialog opens at once.

Keyboard: the search box has the focus first; Tab goes search → set → level → problems →
preview → buttons, Enter in the list uses the problem, Escape closes. Every control has an
accessible name; the Check column says "checkable" in words, not only by colour.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QLocale, Qt
from PySide6.QtGui import QBrush, QColor, QFont
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from desktop_app.text.i18n import N_, _
from desktop_app.ui import a11y, theme
from desktop_app.ui.screen_fit import fit_dialog
from desktop_app.ui.tasks import run_task
from desktop_app.verify import PracticeSet, Problem

PROBLEM_ROLE = Qt.ItemDataRole.UserRole + 1
ALL_SETS = N_("All sets")
ALL_LEVELS = N_("All levels")
# How a problem is checked, in words (the kinds are the sets' own field values).
KIND_WORDS = {"math": N_("math"), "code": N_("code"), "open": N_("open")}
# A prepared prompt's settings (the keys of verify.problems.PROMPT_SETTINGS), in words.
SETTING_WORDS = {"temperature": N_("temperature"), "max_tokens": N_("max tokens"),
                 "seed": N_("seed"), "thinking": N_("thinking"),
                 "system_prompt": N_("system prompt")}


def _kind(kind: str) -> str:
    return _(KIND_WORDS[kind]) if kind in KIND_WORDS else kind


def problem_badge(problem: Problem) -> tuple[str, str]:
    """Badge text and colour: verifiable problems say how they're checked."""
    kind = problem.kind
    if problem.verifiable:
        return (_("✓ checkable · {kind}").format(kind=_kind(kind)) if kind
                else _("✓ checkable"), theme.ok_color())
    return (_("open · no single answer"), theme.muted_fg())


def settings_text(problem: Problem) -> str:
    """A prepared prompt's pane settings in words: ``temperature 0, max tokens 64, thinking
    off`` ('' for a problem that carries none)."""
    def value(item: object) -> str:
        if isinstance(item, bool):
            return _("on") if item else _("off")
        if isinstance(item, float):
            return QLocale().toString(item, "g", 6)
        return f"“{item}”" if isinstance(item, str) else str(item)

    def name(key: str) -> str:
        return _(SETTING_WORDS[key]) if key in SETTING_WORDS else key.replace("_", " ")

    return ", ".join(f"{name(key)} {value(item)}" for key, item in problem.settings)


def check_column(problem: Problem) -> str:
    """The Check column's short form of the badge ("✓ math", "open"): the titles get the
    width; the whole badge is the cell's tooltip."""
    if problem.verifiable:
        return f"✓ {_kind(problem.kind)}" if problem.kind else "✓"
    return _("open")


class PracticePicker(QDialog):
    """Pick a practice problem; ``selected`` holds it after ``exec()`` returns Accepted.

    Without ``sets`` the dialog opens at once and loads them in the background.
    ``point_size``: the main window's text size (zoom, presentation mode), which the
    dialog takes, fitted to the screen."""

    SIZE = (820, 560)
    WIDE = 120  # average characters across: wider than this, the preview goes beside the list

    def __init__(self, sets: list[PracticeSet] | None = None, parent: QWidget | None = None,
                 error: str | None = None, *, point_size: float | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Practice problems"))
        self.selected: Problem | None = None
        layout = QVBoxLayout(self)
        intro = QLabel(_("Checkable problems (✓) have a known answer or tests: after the panes "
                         "answer, press <b>Verify</b> in a pane. Open problems have no single "
                         "right answer — compare the panes yourself."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        filters = QHBoxLayout()
        self.search = QLineEdit()
        self.search.setPlaceholderText(_("Search problems (title, id or text)"))
        self.search.setClearButtonEnabled(True)
        a11y.describe(self.search, _("Search problems"),
                      _("Shows the problems whose title, id or text has these words"))
        self.set_filter = QComboBox()
        self.set_filter.setToolTip(_("Show one practice set"))
        a11y.describe(self.set_filter, _("Practice set"), self.set_filter.toolTip())
        self.set_filter.setSizeAdjustPolicy(  # a long set name is cut, not the search box
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.set_filter.setMinimumContentsLength(18)
        self.level_filter = QComboBox()
        self.level_filter.setToolTip(_("Difficulty, for sets that grade their problems "
                                       "(MATH-500)"))
        a11y.describe(self.level_filter, _("Level"), self.level_filter.toolTip())
        self.count_label = QLabel("")
        a11y.describe(self.count_label, _("Problems shown"))
        filters.addWidget(self.search, 1)
        filters.addWidget(self.set_filter)
        filters.addWidget(self.level_filter)
        filters.addWidget(self.count_label)
        layout.addLayout(filters)
        self.splitter = QSplitter(Qt.Orientation.Horizontal)
        self._wide: bool | None = None  # the splitter's arrangement, once sized
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels([_("Problem"), _("Check"), _("Level")])
        self.tree.headerItem().setToolTip(1, _("✓: the answer can be checked (math: the final "
                                               "answer; code: tests). Open: no single answer."))
        a11y.describe(self.tree, _("Practice problems"),
                      _("The sets and their problems; Enter uses the chosen problem's prompt"))
        self.tree.header().setStretchLastSection(False)
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.tree.header().setSectionResizeMode(2, QHeaderView.ResizeMode.ResizeToContents)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        self.preview.setTabChangesFocus(True)
        a11y.describe(self.preview, _("Prompt preview"), _("The chosen problem's prompt"))
        self.splitter.addWidget(self.tree)
        self.splitter.addWidget(self.preview)
        self.splitter.setChildrenCollapsible(False)
        layout.addWidget(self.splitter, 1)
        self.error_label = QLabel(error or "")
        self.error_label.setWordWrap(True)
        theme.style(self.error_label, lambda: f"color: {theme.fail_color()};")
        self.error_label.setVisible(bool(error))
        a11y.describe(self.error_label, _("Error"))
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText(_("Use this prompt"))
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.tree.currentItemChanged.connect(self._preview)
        self.tree.itemDoubleClicked.connect(lambda *_: self._accept())
        self.search.textChanged.connect(lambda _text: self.apply_filters())
        self.set_filter.currentIndexChanged.connect(lambda _index: self._set_chosen())
        self.level_filter.currentIndexChanged.connect(lambda _index: self.apply_filters())
        if point_size:  # first: the set titles take the bold of it
            theme.apply_point_size(self, point_size)
        fit_dialog(self, self.SIZE)
        chain: list[QWidget] = [self.search, self.set_filter, self.level_filter, self.tree,
                                self.preview, buttons]
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)
        self.search.setFocus()
        self.set_sets(sets or [])
        theme.on_change(self, "badges", PracticePicker._recolor)
        if sets is None and error is None:
            self.loading = run_task(self, lambda _task: load_sets(), on_success=self._loaded,
                                    name="practice-sets")

    def _loaded(self, loaded: tuple[list[PracticeSet], str | None]) -> None:
        sets, error = loaded
        self.set_sets(sets)
        self.error_label.setText(error or "")
        self.error_label.setVisible(bool(error))

    def set_sets(self, sets: list[PracticeSet]) -> None:
        self.tree.clear()
        self.sets = list(sets)
        self._groups: list[tuple[QTreeWidgetItem, list[QTreeWidgetItem]]] = []
        first = None
        for practice_set in sets:
            title = practice_set.name
            count = len(practice_set.problems)
            parent = QTreeWidgetItem([f"{title}  ({count})"])
            parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            font = QFont(self.tree.font())  # the tree's size: zoom and presentation mode
            font.setBold(True)
            parent.setFont(0, font)
            licence = practice_set.licence
            source = practice_set.attribution
            if licence:
                licence_line = _("Licence: {licence}").format(licence=licence)
                parent.setToolTip(0, f"{source}\n{licence_line}".strip())
            self.tree.addTopLevelItem(parent)
            children: list[QTreeWidgetItem] = []
            self._groups.append((parent, children))
            for problem in practice_set.problems:
                text, color = problem_badge(problem)
                item = QTreeWidgetItem([problem.title or problem.id, check_column(problem),
                                        problem.level])
                item.setData(0, PROBLEM_ROLE, problem)
                item.setForeground(1, QBrush(QColor(color)))
                item.setToolTip(0, problem.prompt[:2000])
                item.setToolTip(1, text)
                if problem.subject:
                    item.setToolTip(2, problem.subject)
                parent.addChild(item)
                children.append(item)
                first = first or item
            parent.setExpanded(len(sets) < 4 or count <= 60)
            parent.setFirstColumnSpanned(True)  # a set's name across the columns
        self._fill_filters()
        if first is not None:
            self.tree.setCurrentItem(first)
        self.apply_filters()

    def _fill_filters(self) -> None:
        self.set_filter.blockSignals(True)
        self.set_filter.clear()
        self.set_filter.addItem(_(ALL_SETS))
        for practice_set in self.sets:
            self.set_filter.addItem(practice_set.name)
        self.set_filter.blockSignals(False)
        self._fill_levels()

    def _chosen_sets(self) -> list[PracticeSet]:
        index = self.set_filter.currentIndex()
        return self.sets if index <= 0 else [self.sets[index - 1]]

    def _fill_levels(self) -> None:
        levels = sorted({p.level for s in self._chosen_sets() for p in s.problems} - {""})
        self.level_filter.blockSignals(True)
        self.level_filter.clear()
        self.level_filter.addItem(_(ALL_LEVELS))
        self.level_filter.addItems(levels)
        self.level_filter.blockSignals(False)
        self.level_filter.setEnabled(bool(levels))

    def _set_chosen(self) -> None:
        self._fill_levels()
        self.apply_filters()

    def apply_filters(self) -> None:
        """Hide problems that don't match the search, set and level; count the rest."""
        words = self.search.text().casefold().split()
        chosen = self.set_filter.currentIndex() - 1
        level = self.level_filter.currentText() if self.level_filter.currentIndex() > 0 else ""
        shown = total = 0
        for index, (parent, children) in enumerate(self._groups):
            visible_children = 0
            for child in children:
                problem: Problem = child.data(0, PROBLEM_ROLE)
                total += 1
                haystack = " ".join((problem.id, problem.title, problem.prompt)).casefold()
                match = (chosen < 0 or chosen == index) \
                    and (not level or problem.level == level) \
                    and all(word in haystack for word in words)
                child.setHidden(not match)
                visible_children += match
            parent.setHidden(visible_children == 0)
            if visible_children and (words or level or chosen >= 0):
                parent.setExpanded(True)
            shown += visible_children
        self.count_label.setText(_("{shown} of {total}").format(shown=shown, total=total))
        levels = any(not child.isHidden() and child.text(2)  # no empty Level column
                     for _parent, children in self._groups for child in children)
        self.tree.setColumnHidden(2, not levels)
        current = self.tree.currentItem()
        if current is None or current.isHidden():
            first = next((child for parent, children in self._groups if not parent.isHidden()
                          for child in children if not child.isHidden()), None)
            if first is not None:
                self.tree.setCurrentItem(first)
            else:
                self.tree.clearSelection()
                self.preview.setPlainText("")

    def resizeEvent(self, event: Any) -> None:
        """The preview beside the list in a wide dialog, under it in a narrow one (the
        presentation sizes on a projector), so the titles keep their width."""
        super().resizeEvent(event)
        wide = self.width() >= self.WIDE * self.fontMetrics().averageCharWidth()
        if wide != self._wide:
            self._wide = wide
            self.splitter.setOrientation(Qt.Orientation.Horizontal if wide
                                         else Qt.Orientation.Vertical)
            room = self.width() if wide else self.height() // 2
            self.splitter.setSizes([room * 3 // 5, room * 2 // 5])

    def _recolor(self) -> None:
        """Badge colours for the current light/dark scheme."""
        items = QTreeWidgetItemIterator(self.tree)
        while (item := items.value()) is not None:
            problem: Problem | None = item.data(0, PROBLEM_ROLE)
            if problem is not None:
                item.setForeground(1, QBrush(QColor(problem_badge(problem)[1])))
            items += 1

    def _preview(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        problem: Problem | None = item.data(0, PROBLEM_ROLE) if item else None
        text = problem.prompt if problem is not None else ""
        if problem is not None and problem.settings:  # a lesson's prepared prompt
            text += "\n\n" + _("Sets every pane: {settings}.").format(
                settings=settings_text(problem))
        self.preview.setPlainText(text)

    def _accept(self) -> None:
        item = self.tree.currentItem()
        problem: Problem | None = (item.data(0, PROBLEM_ROLE)
                                   if item is not None and not item.isHidden() else None)
        if problem is None:
            return
        self.selected = problem
        self.accept()


def load_sets() -> tuple[list[PracticeSet], str | None]:
    """The practice sets, or ``([], message)`` if the verifier isn't available."""
    try:
        from desktop_app.verify import load_practice_sets

        return list(load_practice_sets()), None
    except Exception as exc:  # noqa: BLE001 - shown as one sentence in the dialog
        return [], _("Practice problems could not be loaded: {error}").format(error=exc)
