"""“Add server…” in the model manager against the local OpenAI-compatible endpoint, offscreen."""

from __future__ import annotations

import os
from collections.abc import Iterator

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import keyring
import pytest
from keyring.backends.fail import Keyring as FailKeyring

pytest.importorskip("pytestqt")

from desktop_app import paths
from desktop_app.models import catalog as cat
from desktop_app.models import (
    servers,
    sources,
)
from desktop_app.ui.add_server import AddServerDialog, guess_role
from desktop_app.ui.model_manager import COLUMNS, ModelManagerDialog
from tests.openai_stub_server import StubServer
from tests.test_remote import MemoryKeyring

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer(api_key="sesame") as server:
        yield server
    servers.check_due()
    servers.forget()


@pytest.fixture
def manager(qtbot) -> Iterator[ModelManagerDialog]:
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    yield dialog
    dialog.shutdown()
    servers.check_due()


@pytest.fixture
def memory_keychain() -> Iterator[MemoryKeyring]:
    previous = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(previous)


def _ask(qtbot, dialog: AddServerDialog, url: str, key: str = "") -> None:
    dialog.url_edit.setText(url)
    dialog.key_edit.setText(key)
    dialog.connect_button.click()
    qtbot.waitUntil(lambda: dialog.connect_button.isEnabled(), timeout=10_000)


def _tick(dialog: AddServerDialog, model: str, role: str) -> None:
    for row in range(dialog.table.rowCount()):
        check, box = dialog.table.cellWidget(row, 0), dialog.table.cellWidget(row, 1)
        if check.text() == model:
            check.setChecked(True)
            box.setCurrentText(role)
            return
    raise AssertionError(f"{model} not listed")


def _state(manager: ModelManagerDialog, model_id: str) -> str:
    row = manager._row_of(model_id)
    assert row is not None
    return manager.table.item(row, COLUMNS.index("State")).text()


def test_add_server_with_a_typed_key(qtbot, stub: StubServer, manager: ModelManagerDialog,
                                     memory_keychain: MemoryKeyring):
    dialog = manager.ask_server()
    _ask(qtbot, dialog, stub.url)  # no key yet: refused, in one sentence
    assert "refused the request (HTTP 401)" in dialog.status.text()
    assert dialog.table.rowCount() == 0
    _ask(qtbot, dialog, stub.url, key="sesame")
    assert dialog.table.rowCount() > 5 and "answers and serves" in dialog.status.text()
    assert not dialog.add_button.isEnabled()
    _tick(dialog, "reasoning-content", "reasoning")
    with qtbot.waitSignal(manager.modelsChanged, timeout=5_000):
        dialog.add_button.click()
    assert memory_keychain.saved == {("triptych", stub.url): "sesame"}
    assert "sesame" not in paths.user_catalog_path().read_text()
    entry = next(e for e in manager.catalog if isinstance(e.source, sources.RemoteSource))
    assert entry.role == "reasoning" and manager.selected_id() == entry.id
    # the state cell follows the server's answer, which arrives off the GUI thread
    qtbot.waitUntil(lambda: _state(manager, entry.id) == "ready", timeout=10_000)
    assert manager.remove_button.isEnabled() and not manager.verify_button.isEnabled()
    assert manager.remove_model(entry.id)
    assert entry.id not in cat.load_catalog()


def test_no_keychain_means_nothing_is_added(qtbot, stub: StubServer,
                                            manager: ModelManagerDialog):
    previous = keyring.get_keyring()
    keyring.set_keyring(FailKeyring())
    try:
        dialog = manager.ask_server()
        _ask(qtbot, dialog, stub.url, key="sesame")
        _tick(dialog, "plain", "instruct")
        dialog.add_button.click()
        assert "No OS keychain is available here" in dialog.status.text()
        assert dialog.isVisible() and dialog.added == []
        assert not any(isinstance(e.source, sources.RemoteSource) for e in cat.load_catalog())
    finally:
        keyring.set_keyring(previous)


def test_unreachable_and_bad_addresses_are_one_sentence(qtbot, stub: StubServer,
                                                        manager: ModelManagerDialog):
    dialog = manager.ask_server()
    _ask(qtbot, dialog, "ftp://nowhere")
    assert "is not an http:// or https:// address" in dialog.status.text()
    port = stub.url.rsplit(":", 1)[1].split("/")[0]
    stub.stop()
    _ask(qtbot, dialog, f"127.0.0.1:{port}")
    assert f"Cannot reach the server at 127.0.0.1:{port}" in dialog.status.text()


@pytest.mark.parametrize(("name", "role"), [
    ("Qwen/Qwen3-8B", "reasoning"), ("deepseek-r1:7b", "reasoning"),
    ("meta-llama/Llama-3.1-8B", "instruct"), ("gemma-3-270m-pt", "base"),
    ("SmolLM2-135M-base", "base"),
])
def test_role_guess(name: str, role: str):
    assert guess_role(name) == role
