"""Issue 30 in the window: the model manager's Open lesson pack… (in the background, with
progress, one sentence), its Fits? column and Recommended for this machine, and a lesson's
prepared prompts in the practice dialog, setting the panes; real Qt event loop, offscreen."""

from __future__ import annotations

import hashlib
import time
import zipfile
from pathlib import Path

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt

from desktop_app import paths
from desktop_app.models import catalog as cat
from desktop_app.models import pack, user_catalog
from desktop_app.models.fit import FitVerdict
from desktop_app.models.recommend import recommend_trio
from desktop_app.text.units import format_bytes
from desktop_app.ui.lesson_pack import CANCEL_TEXT, OPEN_TEXT
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.model_manager import COLUMNS, FIT_COLUMN, ModelManagerDialog
from desktop_app.ui.practice import PracticePicker
from desktop_app.ui.tasks import wait_for_tasks
from desktop_app.verify.practice import load_practice_file, prepared_set_toml
from tests.hub_fixtures import MiB, hub_model_toml, make_gguf, write_user_catalog
from tests.hub_server import FakeHub

PROMPTS = [{"prompt": "What is 7 * 8?", "answer": 56,
            "settings": {"temperature": 0.0, "max_tokens": 64, "thinking": False}},
           {"prompt": "Write a funny joke about pelicans.", "title": "Pelican joke"}]


def _make_pack(tmp_path: Path, monkeypatch, pad: int = MiB) -> Path:
    """A teacher's pack, written in its own home: a base and an instruct model, the
    prepared prompts."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "teacher"))
    entries = []
    for seed, role in enumerate(("base", "instruct")):
        gguf = make_gguf(tmp_path / f"class-{role}.gguf", pad_bytes=pad, seed=seed)
        entries.append(user_catalog.import_model(gguf, role, f"class-{role}"))
    text = prepared_set_toml("Week 2", PROMPTS)
    out = tmp_path / "week2.zip"
    pack.write_pack(out, entries, [pack.PracticeFiles("week-2", "Week 2", (("week-2.toml", text),))],
                    title="Week 2", prompts="week-2")
    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "student"))
    return out


def _tree(home: Path) -> dict[str, str]:
    return {str(p.relative_to(home)): (hashlib.sha256(p.read_bytes()).hexdigest()
                                       if p.is_file() else "dir")
            for p in sorted(home.rglob("*"))}


@pytest.fixture
def manager(qtbot, hub_env):
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    yield dialog
    dialog.shutdown()
    assert wait_for_tasks(timeout=10)


def _cell(dialog: ModelManagerDialog, model_id: str, column: str) -> str:
    row = dialog._row_of(model_id)
    assert row is not None
    return dialog.table.item(row, COLUMNS.index(column)).text()


def test_open_lesson_pack_installs_in_the_background(qtbot, tmp_path: Path, monkeypatch,
                                                     hub_env) -> None:
    lesson = _make_pack(tmp_path, monkeypatch)
    manager = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(manager)
    try:
        assert manager.pack_button.text() == OPEN_TEXT and "class-base" not in manager.catalog
        changed: list[bool] = []
        manager.modelsChanged.connect(lambda: changed.append(True))
        started = time.monotonic()
        task = manager.lesson_pack.open(lesson)
        assert time.monotonic() - started < 0.5  # hashing and unpacking are not on this thread
        assert manager.pack_button.text() == CANCEL_TEXT and manager.progress.isVisibleTo(manager) \
            or not task.running
        qtbot.waitUntil(lambda: not manager.lesson_pack.running, timeout=20_000)
        result = manager.lesson_pack.last
        assert result is not None and manager.last_error is None
        assert manager.status.text() == result.describe()
        assert result.describe().startswith("Installed 'Week 2' from week2.zip: models "
                                            "class-base, class-instruct")
        assert "2 prepared prompts in the practice problems" in result.describe()
        assert _cell(manager, "class-base", "State") == "ready"
        assert _cell(manager, "class-instruct", "Role") == "instruct"
        assert manager.pack_button.text() == OPEN_TEXT and not manager.progress.isVisibleTo(manager)
        assert changed and manager.selected_id() == "class-base"
    finally:
        manager.shutdown()

    # the prepared prompts are the lesson's own set in the practice dialog
    picker = PracticePicker(None)
    qtbot.addWidget(picker)
    qtbot.waitUntil(lambda: any(s.name == "Week 2" for s in getattr(picker, "sets", [])),
                    timeout=20_000)
    names = [picker.set_filter.itemText(i) for i in range(picker.set_filter.count())]
    assert "Week 2" in names
    picker.set_filter.setCurrentText("Week 2")
    visible = [child.text(0) for parent, children in picker._groups if not parent.isHidden()
               for child in children if not child.isHidden()]
    assert visible == ["What is 7 * 8?", "Pelican joke"]
    picker.set_filter.setCurrentText("Week 2")
    assert picker.preview.toPlainText() == ("What is 7 * 8?\n\nSets every pane: temperature 0, "
                                            "max tokens 64, thinking off.")
    assert picker.loading.wait(5)


def test_a_damaged_pack_is_one_sentence_and_nothing_changes(qtbot, tmp_path: Path, monkeypatch,
                                                            hub_env) -> None:
    lesson = _make_pack(tmp_path, monkeypatch)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(lesson) as old, zipfile.ZipFile(damaged, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename.endswith("class-instruct.gguf"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            new.writestr(info, data)
    manager = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(manager)
    home = Path(str(paths.data_dir())).parent
    try:
        qtbot.waitUntil(lambda: manager.measured is not None, timeout=20_000)
        before = _tree(home)
        manager.lesson_pack.open(damaged)
        qtbot.waitUntil(lambda: not manager.lesson_pack.running, timeout=20_000)
        message = manager.last_error or ""
        assert message.startswith("damaged.zip is damaged: class-instruct.gguf does not match "
                                  "its SHA-256") and message.endswith("nothing was installed.")
        assert "\n" not in message and manager.pack_button.text() == OPEN_TEXT
        assert _tree(home) == before and "class-base" not in manager.catalog
    finally:
        manager.shutdown()


def test_cancel_installs_nothing(qtbot, tmp_path: Path, monkeypatch, hub_env) -> None:
    lesson = _make_pack(tmp_path, monkeypatch, pad=48 * MiB)
    manager = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(manager)
    home = Path(str(paths.data_dir())).parent
    try:
        qtbot.waitUntil(lambda: manager.measured is not None, timeout=20_000)
        before = _tree(home)
        manager.lesson_pack.open(lesson)
        manager.pack_button.click()  # it says Cancel unpacking now
        qtbot.waitUntil(lambda: not manager.lesson_pack.running, timeout=20_000)
        assert manager.status.text() == "Cancelled: nothing from the pack was installed."
        assert _tree(home) == before
    finally:
        manager.shutdown()


def test_fits_column_and_the_recommended_trio(qtbot, fake_hub: FakeHub, hub_env,
                                              tiny_gguf: bytes) -> None:
    repo = "acme/class-GGUF"
    fake_hub.add_repo(repo, {f"{role}.gguf": tiny_gguf[:-1] + bytes([n])
                             for n, role in enumerate(cat.ROLES)})
    write_user_catalog("".join(
        hub_model_toml(f"class-{role}", repo, f"{role}.gguf", role=role, family="Class",
                       size=len(tiny_gguf),
                       sha256=hashlib.sha256(tiny_gguf[:-1] + bytes([n])).hexdigest())
        for n, role in enumerate(cat.ROLES)))
    catalog = cat.load_catalog([paths.user_catalog_path()])  # only these three
    ids = [f"class-{role}" for role in cat.ROLES]
    dialog = ModelManagerDialog(catalog, panes=ids)
    qtbot.addWidget(dialog)
    chosen: list[list[str]] = []
    dialog.trioChosen.connect(chosen.append)
    try:
        assert _cell(dialog, "class-base", "Fits?") == "…"  # measured off the GUI thread
        assert not dialog.recommend.button.isEnabled()
        qtbot.waitUntil(lambda: dialog.measured is not None, timeout=20_000)
        measured = dialog.measured
        assert measured is not None and measured.machine is not None
        for model_id in ids:
            verdict = measured.fits[model_id]
            # a symbol and the word: colour is never the only signal
            assert _cell(dialog, model_id, "Fits?") in (f"✓ {verdict.verdict.short}",
                                                        f"! {verdict.verdict.short}")
            fit = dialog.table.item(dialog._row_of(model_id), FIT_COLUMN)
            assert fit.data(Qt.ItemDataRole.AccessibleTextRole) == verdict.verdict.label
            tip = fit.toolTip()
            assert tip.startswith(f"{verdict.verdict.label}: ")
            assert f"the file {format_bytes(len(tiny_gguf))}" in tip
            assert f"This computer: {measured.machine.describe()}." in tip
        assert measured.fits["class-base"].verdict == FitVerdict.FITS  # 6 MB models
        expected = recommend_trio(catalog, measured.machine)
        assert expected is not None and expected.ids == ids
        assert dialog.recommend.label.text() == expected.describe()
        dialog.recommend.button.click()
        assert chosen == [ids] and dialog.queued_ids() == ids[1:]  # the first is downloading
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=30_000)
        assert [_cell(dialog, i, "State") for i in ids] == ["ready"] * 3
        assert dialog.last_error is None
    finally:
        dialog.shutdown()


def test_a_prepared_prompt_sets_every_pane(qtbot, tmp_path: Path, fake_models, engine) -> None:
    ids = [next(e.id for e in fake_models if e.role == role) for role in cat.ROLES]
    window = MainWindow(fake_models, models=ids, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    try:
        window.use_models(list(reversed(ids)))  # by role, whatever the order
        assert [p.config.model_id for p in window.panes] == ids
        path = tmp_path / "week-2.toml"
        path.write_text(prepared_set_toml("Week 2", PROMPTS), encoding="utf-8")
        problem = load_practice_file(path).problems[0]
        window.use_problem(problem)
        assert window.prompt.toPlainText() == "What is 7 * 8?"
        assert [p.config.temperature for p in window.panes] == [0.0, 0.0, 0.0] or all(
            p.config.temperature is None and p.entry.sampling["temperature"] == 0.0
            for p in window.panes)
        assert [p.config.max_tokens for p in window.panes] == [64, 64, 64]
        reasoning = window.panes[2]
        assert reasoning.entry.prompt.supports_thinking and reasoning.config.thinking is False
        assert window.key_edit.text() == "56"
        assert window.statusBar().currentMessage() == ("The lesson's settings for this prompt "
                                                       "are set in every pane: temperature 0, "
                                                       "max tokens 64, thinking off.")
    finally:
        window.shutdown()


def test_the_manager_follows_presentation_and_fits_a_projector(qtbot, hub_env, fake_models,
                                                               engine, tmp_path: Path,
                                                               monkeypatch) -> None:
    """Presentation mode on a 1024×768 projector: the window's text size, the extra button
    and column, a long status sentence, nothing cut off or drawn over anything."""
    from tests.test_ui_projector import (
        CLIENT,
        assert_fits,
        layout_problems,
        projector_window,
        settle,
    )

    lesson = _make_pack(tmp_path, monkeypatch)
    window = projector_window(qtbot, fake_models, engine)
    point_size = window.base_point_size * window.zoom
    dialog = ModelManagerDialog(cat.load_catalog(), window, point_size=point_size,
                                panes=[p.config.model_id for p in window.panes])
    qtbot.addWidget(dialog)
    try:
        assert dialog.font().pointSizeF() == pytest.approx(point_size)
        assert dialog.pack_button.font().pointSizeF() == pytest.approx(point_size)
        dialog.resize(*CLIENT)
        dialog.show()
        qtbot.waitUntil(lambda: dialog.measured is not None, timeout=20_000)
        dialog.lesson_pack.open(lesson)
        qtbot.waitUntil(lambda: not dialog.lesson_pack.running, timeout=20_000)
        assert "Installed 'Week 2'" in dialog.status.text()
        settle(qtbot)
        assert dialog.buttons.stacked  # the adding buttons went under the model buttons
        assert_fits(dialog, CLIENT)
        dialog.resize(1600, 800)
        settle(qtbot)
        assert not dialog.buttons.stacked and not layout_problems(dialog)
    finally:
        dialog.shutdown()
        window.shutdown()
