"""GPU offload in a pane's settings, on the real Qt event loop with the scripted engine: the
choice is a model setting saved in the user's catalog, and it is disabled, with one
sentence, on this CPU-only llama.cpp build (found by the real device probe)."""

from __future__ import annotations

import dataclasses
import threading

import pytest

pytest.importorskip("pytestqt")

from desktop_app import paths
from desktop_app.engine.llama import devices as gpu_probe
from desktop_app.models.catalog import load_catalog
from desktop_app.models.devices import Device, DeviceKind, DeviceReport
from desktop_app.models.sources import RemoteSource
from desktop_app.session.generation import close_in_background, wait_for_closing
from desktop_app.session.pane import PaneConfig
from desktop_app.ui.pane import Pane
from tests.fake_engine import answer_script, send_and_wait

GB = 10**9
WITH_A_GPU = DeviceReport(
    (Device("CPU", "AMD Ryzen 7", DeviceKind.CPU, 32 * GB, 32 * GB),
     Device("CUDA0", "NVIDIA GeForce RTX 4060", DeviceKind.GPU, 7 * GB, 8 * GB)),
    gpu_offload=True)


def instruct_id(catalog) -> str:
    return next(e.id for e in catalog if e.role == "instruct")


def test_disabled_with_one_sentence_on_this_cpu_only_build(qtbot, fake_models, engine,
                                                           monkeypatch) -> None:
    monkeypatch.setattr(gpu_probe, "_cache", None)  # this test asks the real probe itself
    pane = Pane(fake_models, PaneConfig(model_id=instruct_id(fake_models)),
                worker_factory=engine.worker)
    qtbot.addWidget(pane)
    pane.show()
    choice = pane.settings_box.offload
    assert not choice.mode.isEnabled()  # nothing known yet: nothing to choose
    assert choice.note.text() == "Asking this computer about its GPU…"
    pane.settings_button.setChecked(True)  # opening the settings asks, off the GUI thread
    qtbot.waitUntil(lambda: choice.report is not None, timeout=30_000)
    assert choice.note.text() == "This llama.cpp build runs on the CPU only."
    assert not choice.mode.isEnabled() and not choice.layers.isEnabled()
    assert choice.isVisible() and choice.note.isVisible()
    assert choice.probe_task is not None and choice.probe_task.wait(5)
    # a model on a server has no GPU offload here: the row goes away
    entry = pane.entry
    remote = dataclasses.replace(entry, source=RemoteSource("http://gpu-box:8000/v1", "m"))
    pane.settings_box.load(remote, pane.config)
    assert not choice.isVisible() and not pane.settings_box.offload_label.isVisible()
    pane.settings_box.load(entry, pane.config)
    assert choice.isVisible() and pane.settings_box.offload_label.isVisible()


def test_saved_in_the_user_catalog_and_read_back(qtbot, fake_models, engine) -> None:
    from desktop_app.ui.main_window import MainWindow

    model_id = instruct_id(fake_models)
    window = MainWindow(fake_models, models=[model_id], remember=False,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    pane = window.panes[0]
    try:
        engine.default = answer_script("Hello.")
        send_and_wait(qtbot, pane, "Hi")
        first_worker = pane.worker
        assert first_worker is not None and first_worker.alive
        pane.settings_button.setChecked(True)
        choice = pane.settings_box.offload
        choice.set_report(WITH_A_GPU)  # as a machine with a GPU would answer
        assert choice.mode.isEnabled()
        assert choice.note.text() == (
            "On NVIDIA GeForce RTX 4060 (GPU, 7.0 GB free of 8.0 GB). "
            "A change applies the next time this model starts.")
        assert choice.mode.currentText() == "Auto" and not choice.layers.isVisible()

        with qtbot.waitSignal(choice.saved, timeout=10_000):
            choice.mode.setCurrentIndex(choice.mode.findData(choice.LAYERS))
            assert choice.layers.isVisible()
            choice.layers.setValue(12)
        assert load_catalog().get(model_id).gpu_layers == 12
        text = paths.user_catalog_path().read_text(encoding="utf-8")
        assert f"[model_settings.{model_id}]" in text and "gpu_layers = 12" in text
        # every pane reads the model's new setting; the idle pane starts a fresh process
        assert pane.entry is not None and pane.entry.gpu_layers == 12
        assert window.catalog.get(model_id).gpu_layers == 12
        assert pane.worker is None
        qtbot.waitUntil(lambda: not first_worker.alive, timeout=5_000)
        send_and_wait(qtbot, pane, "Again")
        assert pane.worker is not first_worker and pane.worker.entry.gpu_layers == 12
        assert choice.setting() == 12 and choice.layers.value() == 12  # the form reads it back

        with qtbot.waitSignal(choice.saved, timeout=10_000):
            choice.mode.setCurrentIndex(choice.mode.findData(choice.CPU))
        assert load_catalog().get(model_id).gpu_layers == 0
        assert choice.mode.currentText() == "CPU only" and not choice.layers.isVisible()

        # a pane that is answering keeps its process until the answer is done
        gate = threading.Event()
        script = answer_script("Slowly.")
        engine.default = [script[0], gate, *script[1:]]
        assert pane.send("Slow")
        answering = pane.worker
        assert answering is not None and pane.running
        with qtbot.waitSignal(choice.saved, timeout=10_000):
            choice.mode.setCurrentIndex(choice.mode.findData(choice.AUTO))
        assert pane.worker is answering and pane.running
        with qtbot.waitSignal(pane.runFinished, timeout=10_000):
            gate.set()
        assert pane.worker is None and load_catalog().get(model_id).gpu_layers is None
        qtbot.waitUntil(lambda: not answering.alive, timeout=5_000)
    finally:
        window.shutdown()
        assert wait_for_closing()


def test_a_catalog_that_cannot_be_written_is_one_sentence(qtbot, fake_models, engine) -> None:
    user = paths.user_catalog_path()
    user.parent.mkdir(parents=True, exist_ok=True)
    user.write_text("[[model]\nbroken", encoding="utf-8")
    pane = Pane(fake_models, PaneConfig(model_id=instruct_id(fake_models)),
                worker_factory=engine.worker)
    qtbot.addWidget(pane)
    pane.show()
    choice = pane.settings_box.offload
    choice.set_report(WITH_A_GPU)
    choice.mode.setCurrentIndex(choice.mode.findData(choice.CPU))
    qtbot.waitUntil(lambda: "not valid TOML" in choice.note.text(), timeout=10_000)
    assert choice.note.text().startswith(f"Your catalog {user} is not valid TOML")
    assert choice.mode.currentText() == "Auto"  # back to what is in force
    assert user.read_text(encoding="utf-8") == "[[model]\nbroken"  # never rewritten
    close_in_background(pane.shutdown())
    assert wait_for_closing()


def test_a_change_is_saved_even_if_the_pane_switches_model_at_once(qtbot, fake_models,
                                                                  engine) -> None:
    model_id = instruct_id(fake_models)
    other = next(e.id for e in fake_models if e.role == "base")
    pane = Pane(fake_models, PaneConfig(model_id=model_id), worker_factory=engine.worker)
    qtbot.addWidget(pane)
    choice = pane.settings_box.offload
    choice.set_report(WITH_A_GPU)
    with qtbot.waitSignal(choice.saved, timeout=10_000) as saved:
        choice.mode.setCurrentIndex(choice.mode.findData(choice.CPU))
        pane.set_model(other)  # before the pause that batches edits has passed
        assert choice.entry is not None and choice.entry.id == other
        assert choice.mode.currentText() == "Auto"  # the other model's own setting
    assert saved.args == [model_id]
    assert load_catalog().get(model_id).gpu_layers == 0
    assert load_catalog().get(other).gpu_layers is None
    close_in_background(pane.shutdown())
    assert wait_for_closing()
