"""The practice-problem picker: verifiable math/code problems and open ones."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QBrush, QColor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QHeaderView,
    QLabel,
    QPlainTextEdit,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QTreeWidgetItemIterator,
    QVBoxLayout,
    QWidget,
)

from desktop_app.ui import theme
from desktop_app.ui.tasks import run_task

PROBLEM_ROLE = Qt.ItemDataRole.UserRole + 1


def problem_badge(problem: Any) -> tuple[str, str]:
    """Badge text and colour: verifiable problems say how they're checked."""
    kind = str(getattr(problem, "kind", "") or "")
    if getattr(problem, "verifiable", False):
        return (f"✓ checkable · {kind}" if kind else "✓ checkable", theme.ok_color())
    return ("open · no single answer", theme.muted_fg())


class PracticePicker(QDialog):
    """Pick a practice problem; ``selected`` holds it after ``exec()`` returns Accepted.

    Without ``sets`` the dialog opens at once and loads them in the background."""

    def __init__(self, sets: list[Any] | None = None, parent: QWidget | None = None,
                 error: str | None = None):
        super().__init__(parent)
        self.setWindowTitle("Practice problems")
        self.resize(820, 520)
        self.selected: Any = None
        layout = QVBoxLayout(self)
        intro = QLabel("Checkable problems (✓) have a known answer or tests: after the panes "
                       "answer, press <b>Verify</b> in a pane. Open problems have no single "
                       "right answer — compare the panes yourself.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Problem", "Check"])
        self.tree.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.tree.header().setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        self.preview = QPlainTextEdit()
        self.preview.setReadOnly(True)
        splitter.addWidget(self.tree)
        splitter.addWidget(self.preview)
        splitter.setSizes([480, 340])
        layout.addWidget(splitter, 1)
        self.error_label = QLabel(error or "")
        self.error_label.setWordWrap(True)
        theme.style(self.error_label, lambda: f"color: {theme.fail_color()};")
        self.error_label.setVisible(bool(error))
        layout.addWidget(self.error_label)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Use this prompt")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        self.tree.currentItemChanged.connect(self._preview)
        self.tree.itemDoubleClicked.connect(lambda *_: self._accept())
        self.set_sets(sets or [])
        theme.on_change(self, "badges", PracticePicker._recolor)
        if sets is None and error is None:
            self.loading = run_task(self, lambda _task: load_sets(), on_success=self._loaded,
                                    name="practice-sets")

    def _loaded(self, loaded: tuple[list[Any], str | None]) -> None:
        sets, error = loaded
        self.set_sets(sets)
        self.error_label.setText(error or "")
        self.error_label.setVisible(bool(error))

    def set_sets(self, sets: list[Any]) -> None:
        self.tree.clear()
        first = None
        for practice_set in sets:
            parent = QTreeWidgetItem([str(getattr(practice_set, "name", "Practice"))])
            parent.setFlags(parent.flags() & ~Qt.ItemFlag.ItemIsSelectable)
            font = parent.font(0)
            font.setBold(True)
            parent.setFont(0, font)
            self.tree.addTopLevelItem(parent)
            for problem in getattr(practice_set, "problems", []):
                text, color = problem_badge(problem)
                item = QTreeWidgetItem([str(getattr(problem, "title", "") or problem.id), text])
                item.setData(0, PROBLEM_ROLE, problem)
                item.setForeground(1, QBrush(QColor(color)))
                item.setToolTip(0, str(getattr(problem, "prompt", "")))
                parent.addChild(item)
                first = first or item
            parent.setExpanded(True)
        if first is not None:
            self.tree.setCurrentItem(first)

    def _recolor(self) -> None:
        """Badge colours for the current light/dark scheme."""
        items = QTreeWidgetItemIterator(self.tree)
        while (item := items.value()) is not None:
            problem = item.data(0, PROBLEM_ROLE)
            if problem is not None:
                item.setForeground(1, QBrush(QColor(problem_badge(problem)[1])))
            items += 1

    def _preview(self, item: QTreeWidgetItem | None, _previous: Any = None) -> None:
        problem = item.data(0, PROBLEM_ROLE) if item else None
        self.preview.setPlainText(str(getattr(problem, "prompt", "")) if problem else "")

    def _accept(self) -> None:
        item = self.tree.currentItem()
        problem = item.data(0, PROBLEM_ROLE) if item else None
        if problem is None:
            return
        self.selected = problem
        self.accept()


def load_sets() -> tuple[list[Any], str | None]:
    """The practice sets, or ``([], message)`` if the verifier isn't available."""
    try:
        from desktop_app.verify import load_practice_sets

        return list(load_practice_sets()), None
    except Exception as exc:
        return [], f"Practice problems could not be loaded: {exc}"
