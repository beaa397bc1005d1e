"""Every window and dialog of the app, opened on the fake engine after one full round:
what the accessibility, keyboard and translation tests walk (issue 31).

:func:`open_everything` builds the main window with a base, an instruct and a reasoning
pane, sends a question with a key, verifies every reply, opens ⚙ in one pane, then opens
each dialog and window the menus offer (Practice problems, Rollouts ×N, Rollouts on a
set, RLHF, Model manager, Add server, Serve to the room, Next-token explorer).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from PySide6.QtWidgets import QApplication, QWidget

from desktop_app.ui.main_window import MainWindow
from tests.fake_engine import answer_script

QUESTION = "What is 6 times 7? Put the final answer in \\boxed{}."
SIZE = (1600, 900)


def _settle(qtbot: Any, ms: int = 150) -> None:
    qtbot.wait(ms)
    QApplication.processEvents()


def main_window(qtbot: Any, catalog: Any, engine: Any, *, presentation: bool = False,
                size: tuple[int, int] = SIZE) -> MainWindow:
    """The window after a round: replies in, verified, ⚙ open in the first pane."""
    engine.default = answer_script("Six times seven is **42**.\n\n\\boxed{42}",
                                   thinking="6 × 7 = 42, check: 7 × 6 = 42.")
    window = MainWindow(catalog, remember=False, presentation=presentation,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    window.prompt.setPlainText(QUESTION)
    window.key_edit.setText("42")
    with qtbot.waitSignal(window.allFinished, timeout=20_000):
        assert window.send_all() > 0
    for pane in window.panes:
        if pane.turns:
            pane.verify(pane.turns[-1])
    qtbot.waitUntil(lambda: all(turn.verdict is not None for pane in window.panes
                                for turn in pane.turns[-1:]), timeout=20_000)
    window.panes[0].settings_button.click()
    _settle(qtbot)
    return window


def dialogs(qtbot: Any, window: MainWindow) -> Iterator[tuple[str, QWidget]]:
    """Each dialog and window, shown and settled, one at a time (closed after use)."""
    from desktop_app.ui.add_server import AddServerDialog
    from desktop_app.ui.explorer import open_explorer
    from desktop_app.ui.model_manager import ModelManagerDialog
    from desktop_app.ui.practice import PracticePicker
    from desktop_app.ui.rlhf import open_rlhf
    from desktop_app.ui.serve_panel import open_serve_panel

    point_size = window.base_point_size * window.zoom
    makers = [
        ("Practice problems", lambda: PracticePicker(None, window, point_size=point_size)),
        ("Rollouts", lambda: window.panes[1].open_rollouts()),
        ("Rollouts on a practice set", window.open_set_runs),
        ("RLHF", lambda: open_rlhf(window)),
        ("Model manager", lambda: ModelManagerDialog(
            window.catalog, window, panes=[p.config.model_id for p in window.panes],
            point_size=point_size)),
        ("Add server", lambda: AddServerDialog(window)),
        ("Serve to the room", lambda: open_serve_panel(window)),
        ("Next-token explorer", lambda: open_explorer(window)),
    ]
    for name, make in makers:
        widget = make()
        assert widget is not None, f"{name} did not open"
        widget.show()
        _settle(qtbot, 300)
        try:
            yield name, widget
        finally:
            widget.close()
            _settle(qtbot, 50)


def shown(root: QWidget) -> Iterator[QWidget]:
    """``root`` and every descendant a user can see now."""
    yield root
    for child in root.findChildren(QWidget):
        if child.isVisibleTo(root) and child.isVisible():
            yield child
