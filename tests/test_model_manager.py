"""The model manager window against the local Hub (tests/hub_server.py), offscreen."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")

from desktop_app.models import catalog as cat
from desktop_app.models import (
    download,
    sources,
)
from desktop_app.ui.model_manager import COLUMNS, ModelManagerDialog
from tests.hub_fixtures import (
    MiB,
    hub_model_toml,
    make_gguf,
    write_user_catalog,
)
from tests.hub_server import FakeHub, HubFile

REPO = "acme/tiny-GGUF"


@pytest.fixture
def two_models(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> bytes:
    other = tiny_gguf[:-1] + b"\x01"
    fake_hub.add_repo(REPO, {"tiny-Q8_0.gguf": tiny_gguf, "tiny-Q4_0.gguf": other})
    write_user_catalog(
        hub_model_toml("tiny-q8", REPO, "tiny-Q8_0.gguf", sha256=hashlib.sha256(tiny_gguf).hexdigest())
        + hub_model_toml("tiny-q4", REPO, "tiny-Q4_0.gguf", quantization="Q4_0")
    )
    return tiny_gguf


@pytest.fixture
def manager(qtbot, hub_env):
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    yield dialog
    dialog.shutdown()


def _cell(dialog: ModelManagerDialog, model_id: str, column: str) -> str:
    row = dialog._row_of(model_id)
    assert row is not None
    return dialog.table.item(row, COLUMNS.index(column)).text()


def test_lists_models_with_their_details(two_models: bytes, manager: ModelManagerDialog) -> None:
    assert _cell(manager, "tiny-q8", "Role") == "instruct"
    assert _cell(manager, "tiny-q8", "Family") == "Tiny"
    assert _cell(manager, "tiny-q4", "Quantization") == "Q4_0"
    assert _cell(manager, "tiny-q8", "Licence") == "Apache-2.0"
    assert _cell(manager, "tiny-q8", "State") == "not downloaded"
    manager.select_model("tiny-q8")
    assert manager.download_button.isEnabled() and not manager.cancel_button.isEnabled()


def test_downloads_queue_one_at_a_time(qtbot, fake_hub: FakeHub, two_models: bytes,
                                       manager: ModelManagerDialog) -> None:
    fake_hub.throttle = 30 * MiB
    changed: list[bool] = []
    manager.modelsChanged.connect(lambda: changed.append(True))
    seen_states: set[str] = set()
    manager.table.itemChanged.connect(lambda item: seen_states.add(item.text()))

    started = time.monotonic()
    manager.download("tiny-q8")
    manager.download("tiny-q4")
    assert time.monotonic() - started < 0.5  # the GUI thread does not wait for the network
    assert _cell(manager, "tiny-q4", "State") == "queued"
    assert manager.queued_ids() == ["tiny-q4"]

    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=20_000)
    assert manager.last_error is None
    assert _cell(manager, "tiny-q8", "State") == "ready"
    assert _cell(manager, "tiny-q4", "State") == "ready"
    assert len(changed) == 2
    assert any("MB/s" in text for text in seen_states)
    # Never two downloads at once: the second GET started after the first ended.
    assert [r.path.split("/")[-1][:8] for r in fake_hub.downloads()] == [
        hashlib.sha256(two_models).hexdigest()[:8],
        hashlib.sha256(two_models[:-1] + b"\x01").hexdigest()[:8],
    ]


def test_cancel_then_resume(qtbot, fake_hub: FakeHub, two_models: bytes,
                            manager: ModelManagerDialog) -> None:
    fake_hub.throttle = 8 * MiB
    manager.download("tiny-q8")
    qtbot.waitUntil(lambda: "downloading" in _cell(manager, "tiny-q8", "State")
                    and _cell(manager, "tiny-q8", "State").split()[1] != "0%", timeout=10_000)
    manager.select_model("tiny-q8")
    assert manager.cancel_button.isEnabled()
    manager.cancel_button.click()
    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=10_000)
    state = _cell(manager, "tiny-q8", "State")
    assert state.startswith("not downloaded (") and "will resume" in state
    entry = manager.catalog.get("tiny-q8")
    kept = download.partial_bytes(entry)
    assert kept > 0

    fake_hub.throttle = None
    manager.download("tiny-q8")
    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=10_000)
    assert _cell(manager, "tiny-q8", "State") == "ready"
    assert fake_hub.downloads()[-1].range == f"bytes={kept}-"


def test_damaged_download_is_reported(qtbot, fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    fake_hub.add_repo(REPO, {"tiny-Q8_0.gguf": tiny_gguf})
    write_user_catalog(hub_model_toml("tiny", REPO, "tiny-Q8_0.gguf", sha256="cd" * 32))
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    try:
        dialog.download("tiny")
        qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=10_000)
        assert dialog.last_error is not None and "damaged" in dialog.last_error
        assert _cell(dialog, "tiny", "State") == "damaged"
    finally:
        dialog.shutdown()


def test_verify_and_remove(qtbot, two_models: bytes, manager: ModelManagerDialog) -> None:
    manager.download("tiny-q8")
    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=10_000)
    manager.verify("tiny-q8")
    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=10_000)
    assert _cell(manager, "tiny-q8", "State") == "ready" and manager.last_error is None
    manager.select_model("tiny-q8")
    assert manager.remove_button.isEnabled()
    assert manager.remove_model("tiny-q8")
    assert _cell(manager, "tiny-q8", "State") == "not downloaded"


def test_add_from_hub(qtbot, fake_hub: FakeHub, hub_env, tiny_gguf: bytes, manager: ModelManagerDialog) -> None:
    fake_hub.add_repo("acme/new-GGUF", {
        "new-Q8_0.gguf": tiny_gguf, "new-Q2_K.gguf": tiny_gguf[:1000], "README.md": HubFile(b"x", lfs=False),
    })
    manager.add_from_hub("acme/new-GGUF")
    qtbot.waitUntil(lambda: manager.hub_picker is not None, timeout=10_000)
    picker = manager.hub_picker
    assert picker is not None
    labels = [picker.file_list.item(i).text() for i in range(picker.file_list.count())]
    assert len(labels) == 2 and labels[1].startswith("new-Q8_0.gguf") and "6.3 MB" in labels[1]
    picker.file_list.setCurrentRow(1)
    picker.role_box.setCurrentText("base")
    with qtbot.waitSignal(manager.modelsChanged, timeout=5_000):
        picker.accept()
    entry = manager.catalog.get("new-q8_0")
    assert entry.role == "base" and entry.source.sha256 == hashlib.sha256(tiny_gguf).hexdigest()
    assert manager.selected_id() == "new-q8_0"


def test_add_from_hub_unknown_repo(qtbot, fake_hub: FakeHub, manager: ModelManagerDialog) -> None:
    manager.add_from_hub("acme/missing")
    qtbot.waitUntil(lambda: manager.last_error is not None, timeout=10_000)
    assert "does not exist" in manager.last_error and manager.hub_picker is None


def test_import_file(qtbot, manager: ModelManagerDialog, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "local-Q6_K.gguf", pad_bytes=2048)
    manager.import_file(str(path), "reasoning", "Local")  # hashed off the GUI thread
    qtbot.waitUntil(lambda: manager.imported is not None, timeout=10_000)
    entry = manager.imported
    assert entry is not None and _cell(manager, entry.id, "State") == "ready"
    assert _cell(manager, entry.id, "Role") == "reasoning"
    manager.import_file(str(tmp_path / "absent.gguf"), "base")
    qtbot.waitUntil(lambda: manager.last_error is not None, timeout=10_000)
    assert "no such file" in (manager.last_error or "")


def test_a_damaged_imported_model_is_not_shown_ready(qtbot, manager: ModelManagerDialog,
                                                     tmp_path: Path) -> None:
    """GGUF magic with junk after it is refused at import; a file truncated after import
    is not ready (its size changed), and one replaced at the same size fails Verify."""
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    manager.import_file(str(junk), "base")
    qtbot.waitUntil(lambda: manager.last_error is not None, timeout=10_000)
    assert "header" in (manager.last_error or "") and manager.imported is None

    path = make_gguf(tmp_path / "mine-Q4_0.gguf", pad_bytes=4096)
    manager.import_file(str(path), "base", "Mine")
    qtbot.waitUntil(lambda: manager.imported is not None, timeout=10_000)
    entry = cat.load_catalog().get(manager.imported.id)
    assert isinstance(entry.source, sources.FileSource)
    assert entry.source.size == path.stat().st_size and entry.source.sha256
    assert cat.availability(entry) == "ready"

    original = path.read_bytes()
    path.write_bytes(original[:-100])  # truncated
    assert cat.availability(entry) == "damaged"
    assert "not the one imported" in cat.missing_message(entry, cat.availability(entry))
    manager.refresh()
    assert _cell(manager, entry.id, "State") == "damaged"

    path.write_bytes(original[:-1] + bytes([original[-1] ^ 0xFF]))  # same size, other bytes
    assert cat.availability(entry) == "ready"  # the cheap check cannot see it...
    assert download.verify(entry) is False  # ...the hash on Verify does
    assert cat.availability(entry) == "damaged"


def test_offline_banner_and_no_downloads(qtbot, two_models: bytes, fake_hub: FakeHub,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    try:
        assert time.monotonic() - started < 2.0
        assert dialog.banner.isVisibleTo(dialog) and "HF_HUB_OFFLINE" in dialog.banner.text()
        dialog.select_model("tiny-q8")
        assert not dialog.download_button.isEnabled()
        dialog.download("tiny-q8")
        assert dialog.last_error and "switched off" in dialog.last_error
        assert fake_hub.requests == []
    finally:
        dialog.shutdown()


def test_unreachable_hub_banner(qtbot, two_models: bytes, monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    try:
        qtbot.waitUntil(lambda: dialog.banner.isVisibleTo(dialog), timeout=10_000)
        assert "cannot be reached" in dialog.banner.text()
        assert _cell(dialog, "tiny-q8", "State") == "not downloaded"
    finally:
        dialog.shutdown()


def test_corrupt_gguf_without_known_hash_fails_in_its_pane(
    qtbot, fake_hub: FakeHub, hub_env, tmp_path: Path
) -> None:
    """Bytes the Hub vouches for no checksum of (a non-LFS file) pass the download; loading fails in
    the pane, which shows the error, and the app carries on."""
    from desktop_app.session.pane import PaneConfig
    from desktop_app.ui.pane import Pane

    corrupt = b"GGUF" + bytes(range(256)) * 64  # GGUF magic, garbage after
    fake_hub.add_repo(REPO, {"broken-Q4_0.gguf": HubFile(corrupt, lfs=False)})
    write_user_catalog(hub_model_toml("broken", REPO, "broken-Q4_0.gguf"))
    entry = cat.load_catalog().get("broken")
    assert download.pull(entry).read_bytes() == corrupt
    assert cat.availability(entry) == "ready"
    assert cat.read_states()["broken"]["verified"] is False

    pane = Pane(cat.load_catalog(), PaneConfig(model_id="broken"))
    qtbot.addWidget(pane)
    try:
        with qtbot.waitSignal(pane.runFinished, timeout=60_000) as finished:
            assert pane.send("Hello?")
        assert finished.args[1] is False
        failed = pane.turns[-1].failed
        assert failed is not None and failed.kind in ("load", "crash")
        assert "\n" not in failed.message
        assert pane.turns[-1].error_box.isVisibleTo(pane)
    finally:
        worker = pane.shutdown()
        if worker is not None:
            worker.close()
    # The app survived: Qt still runs and the manager still works.
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    try:
        assert _cell(dialog, "broken", "State") == "ready"
    finally:
        dialog.shutdown()
