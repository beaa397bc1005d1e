"""Presentation mode still fits a 1024×768 projector in every shipped language (issue 31):
German runs about 30 % longer than English. The main window after a verified round with
⚙ open in every pane, the longest practice problem in the toolbar, the Practice dialog and
the Rollouts window, each checked by the projector test's layout check (no control
overlaps another, spills out, or is squeezed below its minimum).

With ``TRIPTYCH_SHOTS=folder`` the test also saves what it checked, as PNGs to look at.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from desktop_app.text import i18n
from desktop_app.ui import language
from desktop_app.ui.practice import PracticePicker, load_sets
from desktop_app.verify import Problem
from tests.fake_engine import answer_script
from tests.test_ui_projector import (
    CLIENT,
    PROJECTOR,
    assert_fits,
    layout_problems,
    longest_problems,
    projector_window,
    settle,
)


def _shot(widget, name: str) -> None:
    folder = os.environ.get("TRIPTYCH_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        widget.grab().save(str(Path(folder) / f"{name}.png"))


@pytest.fixture(params=["de", "fr"])
def speak(request):
    assert language.install(request.param) == request.param
    yield request.param
    language.install("en")


def test_presentation_fits_the_projector_in_every_language(qtbot, fake_models, engine, speak):
    engine.default = answer_script("Sechs mal sieben ist **42**.\n\n\\boxed{42}",
                                   thinking="6 × 7 = 42.")
    window = projector_window(qtbot, fake_models, engine)
    try:
        assert window.menuBar().actions()[0].text() != "&File"  # it speaks the language
        problem = max(longest_problems(), key=lambda p: len(p.title))
        window.use_problem(problem)
        with qtbot.waitSignal(window.allFinished, timeout=20_000):
            assert window.send_all() > 0
        for pane in window.panes:
            pane.verify(pane.turns[-1])
        qtbot.waitUntil(lambda: all(p.turns[-1].verdict is not None for p in window.panes),
                        timeout=20_000)
        window.resize(*PROJECTOR)
        settle(qtbot)
        _shot(window, f"window-{speak}-1024x768")
        assert_fits(window, PROJECTOR)
        # three panes side by side, none scrolled off the right edge
        assert not window.pane_area.horizontalScrollBar().isVisible()

        sets, _error = load_sets()
        dialog = PracticePicker(sets, window, point_size=window.base_point_size * window.zoom)
        qtbot.addWidget(dialog)
        dialog.resize(*CLIENT)
        dialog.show()
        settle(qtbot)
        _shot(dialog, f"practice-{speak}-1024x768")
        assert_fits(dialog, CLIENT)
        dialog.close()

        pane = window.panes[1]
        engine.default = answer_script("The answer is 56.")
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            assert pane.send("What is 7 * 8?", Problem(id="p", title="7 × 8",
                                                       prompt="What is 7 * 8?", kind="math",
                                                       answer="56"))
        view = pane.open_rollouts()
        assert view is not None
        view.count.setValue(16)
        with qtbot.waitSignal(view.runFinished, timeout=30_000):
            assert view.run()
        view.resize(*CLIENT)
        settle(qtbot)
        _shot(view, f"rollouts-{speak}-1024x768")
        assert not layout_problems(view), "\n".join(layout_problems(view))
    finally:
        window.shutdown()
    assert i18n.language() == speak


def test_a_pane_whose_model_is_missing_fits_in_every_language(qtbot, fake_models, engine,
                                                               speak):
    """The banner of a model not downloaded ("… cannot run yet", Open model manager) is
    the widest thing a pane shows before any reply: it wraps, and three panes still fit."""
    reasoning = next(entry for entry in fake_models if entry.role == "reasoning")
    Path(reasoning.source.path).unlink()
    window = projector_window(qtbot, fake_models, engine)
    try:
        for pane in window.panes:
            pane.settings_button.setChecked(False)
        settle(qtbot)
        assert not window.panes[2].ready
        _shot(window, f"window-missing-{speak}-1024x768")
        assert_fits(window, PROJECTOR)
        assert not window.pane_area.horizontalScrollBar().isVisible()
    finally:
        window.shutdown()
