"""The main window's menus and keyboard shortcuts: every action has a menu entry, and
the keys a menu cannot hold twice (Ctrl+Enter beside Ctrl+Return) are window shortcuts.
"""

from __future__ import annotations

from typing import Any, Protocol

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence, QShortcut
from PySide6.QtWidgets import QMenuBar, QStatusBar, QToolButton, QWidget

from desktop_app.text.i18n import _
from desktop_app.ui.export_votes import export_json_dialog
from desktop_app.ui.language import add_language_menu
from desktop_app.ui.rlhf import open_rlhf
from desktop_app.ui.serve_panel import open_serve_panel


class MenuHost(Protocol):
    """What the menus act on: the main window (named here, not imported, so the window and
    its menus do not import each other)."""

    thinking_toggle: QToolButton
    quiz_bar: Any  # ui.quiz_bar.QuizBar

    def menuBar(self) -> QMenuBar: ...  # Qt's names
    def statusBar(self) -> QStatusBar: ...
    def window(self) -> QWidget: ...  # itself, as the shortcuts' parent
    def close(self) -> bool: ...
    def export_markdown_dialog(self) -> None: ...
    def export_html_dialog(self) -> None: ...
    def send_all(self) -> int: ...
    def stop_all(self) -> None: ...
    def stop_active(self) -> None: ...
    def clear_all(self) -> None: ...
    def open_practice(self) -> None: ...
    def open_set_runs(self) -> Any: ...
    def set_presentation(self, on: bool) -> None: ...
    def zoom_by(self, factor: float) -> None: ...
    def set_zoom(self, zoom: float) -> None: ...
    def set_sync(self, on: bool) -> None: ...
    def next_pane(self) -> None: ...
    def toggle_active_thinking(self) -> None: ...
    def verify_active(self) -> None: ...
    def rollouts_active(self) -> Any: ...
    def add_pane(self) -> Any: ...
    def undo_remove(self) -> Any: ...
    def open_model_manager(self) -> None: ...


def build_menus_and_shortcuts(window: MenuHost) -> tuple[QAction, QAction, QAction]:
    """File, Run, View and Models menus with their keys (README's keys table); returns the
    checkable actions the window keeps in step: thinking, presentation, synced scrolling."""
    bar = window.menuBar()
    file_menu = bar.addMenu(_("&File"))
    file_menu.addAction(_("Export as &Markdown…"), QKeySequence("Ctrl+E"),
                        window.export_markdown_dialog)
    file_menu.addAction(_("Export as &HTML…"), QKeySequence("Ctrl+Shift+E"),
                        window.export_html_dialog)
    file_menu.addAction(_("Export as &JSON…"), lambda: export_json_dialog(window))
    file_menu.addSeparator()
    file_menu.addAction(_("&Quit"), QKeySequence.StandardKey.Quit, window.close)

    run_menu = bar.addMenu(_("&Run"))
    run_menu.addAction(_("&Send to every pane"), QKeySequence("Ctrl+Return"), window.send_all)
    run_menu.addAction(_("Stop &all"), QKeySequence("Esc"), window.stop_all)
    run_menu.addAction(_("Stop active pane"), QKeySequence("Ctrl+."), window.stop_active)
    run_menu.addAction(_("&Clear all"), QKeySequence("Ctrl+L"), window.clear_all)
    run_menu.addSeparator()
    run_menu.addAction(_("&Verify active pane"), QKeySequence("Ctrl+Shift+V"),
                       window.verify_active)
    run_menu.addAction(_("R&ollouts ×N for active pane…"), QKeySequence("Ctrl+Shift+R"),
                       window.rollouts_active)
    run_menu.addSeparator()
    run_menu.addAction(_("&Practice problems…"), QKeySequence("Ctrl+P"), window.open_practice)
    run_menu.addAction(_("Rollouts on a practice &set…"), window.open_set_runs)
    run_menu.addAction(_("&RLHF: rank, reward model, best-of-N…"), lambda: open_rlhf(window))

    view_menu = bar.addMenu(_("&View"))
    thinking_action = view_menu.addAction(_("Expand all &thinking"))
    thinking_action.setCheckable(True)
    thinking_action.setShortcut(QKeySequence("Ctrl+T"))
    thinking_action.toggled.connect(window.thinking_toggle.setChecked)
    window.thinking_toggle.toggled.connect(thinking_action.setChecked)
    view_menu.addAction(_("&Fold or expand active pane's thinking"),
                        QKeySequence("Ctrl+Shift+T"), window.toggle_active_thinking)
    presentation_action = view_menu.addAction(_("&Presentation mode"))
    presentation_action.setCheckable(True)
    presentation_action.setShortcut(QKeySequence("Ctrl+Shift+P"))
    presentation_action.toggled.connect(window.set_presentation)
    view_menu.addAction(_("Zoom &in"), QKeySequence("Ctrl+="), lambda: window.zoom_by(1.1))
    view_menu.addAction(_("Zoom &out"), QKeySequence("Ctrl+-"), lambda: window.zoom_by(1 / 1.1))
    view_menu.addAction(_("&Reset zoom"), QKeySequence("Ctrl+0"), lambda: window.set_zoom(1.0))
    sync_action = view_menu.addAction(_("&Synchronised scrolling"))
    sync_action.setCheckable(True)
    sync_action.toggled.connect(window.set_sync)
    quiz_action = view_menu.addAction(_("&Blind quiz"))  # issue 28: which stage is this?
    quiz_action.setCheckable(True)
    quiz_action.setShortcut(QKeySequence("Ctrl+Shift+B"))
    quiz_action.setToolTip(_("The panes answer under neutral labels, shuffled; guess each stage"))
    quiz_action.toggled.connect(window.quiz_bar.set_on)
    view_menu.addSeparator()
    add_language_menu(view_menu, window.statusBar())
    view_menu.addSeparator()
    view_menu.addAction(_("&Next pane"), QKeySequence("F6"), window.next_pane)
    view_menu.addAction(_("&Add pane"), QKeySequence("Ctrl+Shift+N"), lambda: window.add_pane())
    view_menu.addAction(_("&Undo remove pane"), QKeySequence("Ctrl+Shift+Z"), window.undo_remove)

    models_menu = bar.addMenu(_("&Models"))
    models_menu.addAction(_("&Model manager…"), QKeySequence("Ctrl+M"), window.open_model_manager)
    models_menu.addAction(_("Next-token &explorer…"), lambda: _open_explorer(window))  # issue 14
    models_menu.addSeparator()
    models_menu.addAction(_("&Serve to the room…"), lambda: open_serve_panel(window.window()))

    # extra keys that menus can't hold twice
    for keys, slot in (("Ctrl+Enter", window.send_all), ("Ctrl++", lambda: window.zoom_by(1.1)),
                       ("Ctrl+Tab", window.next_pane)):
        shortcut = QShortcut(QKeySequence(keys), window.window())
        shortcut.setContext(Qt.ShortcutContext.WindowShortcut)
        shortcut.activated.connect(slot)
    return thinking_action, presentation_action, sync_action


def _open_explorer(window: Any) -> Any:
    """The explorer's module loads numpy (its sampling lab): only when it is opened, so
    the window starts without it."""
    from desktop_app.ui.explorer import open_explorer

    return open_explorer(window)
