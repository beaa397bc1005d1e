"""Everyone in the room (issue 31): every interactive element of the main window and of
every dialog has a name a screen reader can say, found through Qt's accessibility
interface (``QAccessible``: what AT-SPI, UI Automation and VoiceOver read), and can be
reached from the keyboard; finished answers and verdicts are announced once, politely.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible, QAccessibleInterface
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QAbstractSlider,
    QAbstractSpinBox,
    QComboBox,
    QLineEdit,
    QPlainTextEdit,
    QScrollBar,
    QTextEdit,
    QWidget,
)

from tests.ui_tour import dialogs, main_window

Role = QAccessible.Role
INTERACTIVE = {Role.Button, Role.CheckBox, Role.RadioButton, Role.ComboBox,
               Role.EditableText, Role.SpinBox, Role.Slider, Role.PageTab, Role.List,
               Role.Table, Role.Tree, Role.ButtonMenu, Role.ButtonDropDown, Role.Link}
HOLDS_A_VALUE = {Role.ComboBox, Role.EditableText, Role.SpinBox, Role.Slider}
WORDS = re.compile(r"[^\W\d_]{2}")  # a name in words, not ⚙ or ✕
CONTROLS = (QAbstractButton, QComboBox, QLineEdit, QAbstractSpinBox, QAbstractSlider,
            QPlainTextEdit, QTextEdit, QAbstractItemView)


def accessible_tree(interface: QAccessibleInterface, depth: int = 0):
    yield interface
    if depth > 60:
        return
    for index in range(interface.childCount()):
        child = interface.child(index)
        if child is not None and child.isValid():
            yield from accessible_tree(child, depth + 1)


def _described(interface: QAccessibleInterface) -> str:
    thing = interface.object()
    kind = type(thing).__name__ if thing is not None else "?"
    tip = thing.toolTip()[:50] if isinstance(thing, QWidget) else ""
    return (f"{interface.role().name} {interface.text(QAccessible.Text.Name)!r} ({kind}, "
            f"tooltip {tip!r})")


def nameless(root: QWidget) -> list[str]:
    """Interactive elements under ``root`` a screen reader could only call by their role
    (or, for a box that holds a value, by that value)."""
    found = []
    for interface in accessible_tree(QAccessible.queryAccessibleInterface(root)):
        if interface.role() not in INTERACTIVE or interface.state().invisible:
            continue
        if isinstance(interface.object(), QWidget) and isinstance(
                interface.object().parentWidget(), QLineEdit):
            continue  # a line edit's own clear button, which the line edit stands for
        name = interface.text(QAccessible.Text.Name) or ""
        value = interface.text(QAccessible.Text.Value) or ""
        thing = interface.object()
        if interface.role() == Role.ComboBox and isinstance(thing, QWidget):
            # Qt on Linux reports a combo box's current item as its name (its label goes
            # by the "labelled by" relation); UI Automation and VoiceOver read the name set
            name = thing.accessibleName() or name
        if not WORDS.search(name) or (interface.role() in HOLDS_A_VALUE and value
                                      and name.strip() == value.strip()):
            found.append(_described(interface))
    return found


def unreachable(root: QWidget) -> list[str]:
    """Visible controls that Tab can never reach."""
    found = []
    for widget in root.findChildren(QWidget):
        if not (isinstance(widget, CONTROLS) and widget.isVisible() and widget.isEnabled()):
            continue
        if isinstance(widget, QScrollBar):
            continue  # a scroll area scrolls with the keys of the view inside it
        if isinstance(widget.parentWidget(), (QAbstractSpinBox, QComboBox, QAbstractItemView,
                                              QLineEdit)):
            continue  # their parts are theirs (a line edit's clear button: Esc, Ctrl+A)
        if not widget.focusPolicy() & Qt.FocusPolicy.TabFocus:
            found.append(f"{type(widget).__name__} {widget.accessibleName() or widget.toolTip()!r}")
    return found


@pytest.fixture
def window(qtbot, fake_models, engine):
    made = main_window(qtbot, fake_models, engine)
    yield made
    made.shutdown()


def test_the_walk_finds_a_control_without_a_name(qtbot):
    """The check itself: a ⚙ button and a bare text box are caught, named ones are not."""
    from PySide6.QtWidgets import QHBoxLayout, QToolButton

    root = QWidget()
    qtbot.addWidget(root)
    row = QHBoxLayout(root)
    gear, edit, named = QToolButton(), QLineEdit(), QLineEdit()
    gear.setText("⚙")
    named.setAccessibleName("Answer key")
    for widget in (gear, edit, named):
        row.addWidget(widget)
    root.show()
    found = nameless(root)
    assert len(found) == 2 and "'⚙'" in found[0] and "QLineEdit" in found[1], found
    gear.setAccessibleName("Settings for this pane")
    edit.setAccessibleName("Prompt")
    assert nameless(root) == []


def test_every_control_of_the_window_and_its_dialogs_has_a_name(qtbot, window):
    problems = [f"main window: {p}" for p in nameless(window)]
    seen = ["main window"]
    for name, dialog in dialogs(qtbot, window):
        seen.append(name)
        problems += [f"{name}: {p}" for p in nameless(dialog)]
    assert len(seen) == 9
    assert not problems, "\n".join(problems)


def test_every_control_can_be_reached_with_tab(qtbot, window):
    problems = [f"main window: {p}" for p in unreachable(window)]
    for name, dialog in dialogs(qtbot, window):
        problems += [f"{name}: {p}" for p in unreachable(dialog)]
    assert not problems, "\n".join(problems)
