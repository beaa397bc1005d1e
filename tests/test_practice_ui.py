"""The practice dialog on the benchmark sets (issue 19): search, set and level filters,
and the sets loading in the background (the dialog opens at once)."""

from __future__ import annotations

import pytest

pytest.importorskip("PySide6")

from desktop_app.ui.practice import ALL_LEVELS, PracticePicker, load_sets
from desktop_app.verify.practice import find_set


def _visible_ids(picker: PracticePicker) -> list[str]:
    from desktop_app.ui.practice import PROBLEM_ROLE

    return [child.data(0, PROBLEM_ROLE).id
            for parent, children in picker._groups if not parent.isHidden()
            for child in children if not child.isHidden()]


def test_search_and_filters(qtbot):
    sets, error = load_sets()
    assert error is None
    picker = PracticePicker(sets)
    qtbot.addWidget(picker)
    total = sum(len(s.problems) for s in sets)
    assert picker.count_label.text() == f"{total} of {total}"
    assert not picker.level_filter.isEnabled() or picker.level_filter.count() > 1

    math500 = find_set("math500-mini")
    picker.set_filter.setCurrentText(math500.name)
    assert set(_visible_ids(picker)) == {p.id for p in math500.problems}
    assert picker.level_filter.isEnabled()
    assert [picker.level_filter.itemText(i) for i in range(picker.level_filter.count())] == \
        [ALL_LEVELS] + [f"Level {n}" for n in range(1, 6)]
    picker.level_filter.setCurrentText("Level 5")
    level5 = {p.id for p in math500.problems if p.level == "Level 5"}
    assert set(_visible_ids(picker)) == level5 and level5
    assert picker.count_label.text() == f"{len(level5)} of {total}"
    picker._accept()
    assert picker.selected.id in level5  # the current item moved to a visible problem

    gsm8k = find_set("gsm8k-mini")
    picker.set_filter.setCurrentIndex(0)
    assert not picker.level_filter.isEnabled() or picker.level_filter.currentText() == ALL_LEVELS
    qtbot.keyClicks(picker.search, "Janet ducks")
    assert _visible_ids(picker) == ["gsm8k-test-0"]
    assert "Janet" in picker.preview.toPlainText()
    picker.search.setText("HumanEval/4 ")
    assert {"HumanEval/4"} <= set(_visible_ids(picker))
    picker.search.setText("no problem says this xyzzy")
    assert _visible_ids(picker) == [] and picker.count_label.text() == f"0 of {total}"
    picker.selected = None
    picker._accept()
    assert picker.selected is None  # nothing shown, nothing picked
    assert gsm8k.name in [picker.set_filter.itemText(i) for i in range(picker.set_filter.count())]


def test_sets_load_in_the_background(qtbot):
    picker = PracticePicker()
    qtbot.addWidget(picker)
    qtbot.waitUntil(lambda: picker.set_filter.count() > 4, timeout=10_000)
    assert "gsm8k-test-0" in _visible_ids(picker)
    assert picker.error_label.isHidden()
