"""Panes of models on a server, in the main window offscreen: the banner follows the
server's answer, and a stand-in default gives way to a remote model once it answers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import replace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")

from desktop_app.models import servers
from desktop_app.models.catalog import Availability, Catalog
from desktop_app.models.sources import FileSource, RemoteSource
from desktop_app.ui.main_window import MainWindow
from tests.openai_stub_server import StubServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def silent_stub() -> Iterator[StubServer]:
    """A server that listens but does not answer until the test calls ``start()``: a
    check connects and waits, so the window sees "asking the server" first."""
    server = StubServer()
    yield server
    if not server._thread.is_alive():
        server.start()  # let a check still waiting get its answer before the socket closes
    servers.check_due()
    server.stop()
    servers.forget()


def _catalog(fake_models: Catalog, stub: StubServer, tmp_path) -> tuple[Catalog, str, str]:
    """The fake catalog whose instruct entry's file is missing, plus a remote instruct model."""
    instruct = next(e for e in fake_models if e.role == "instruct")
    missing = replace(instruct, source=FileSource(path=str(tmp_path / "gone.gguf")))
    remote = replace(instruct, id="stub-plain", name="plain on the stub",
                     source=RemoteSource(endpoint=stub.url, model="plain"))
    entries = {e.id: (missing if e.id == instruct.id else e) for e in fake_models}
    entries[remote.id] = remote
    return Catalog(entries=entries), missing.id, remote.id


def test_a_remote_panes_banner_follows_the_servers_answer(qtbot, fake_models, engine,
                                                          silent_stub, tmp_path) -> None:
    catalog, _missing, remote = _catalog(fake_models, silent_stub, tmp_path)
    window = MainWindow(catalog, models=[remote], remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    try:
        pane = window.panes[0]
        assert pane.model_state() == Availability.CHECKING and not pane.banner.isHidden()
        assert "asking the server" in pane.picker.currentText()
        silent_stub.start()
        qtbot.waitUntil(lambda: pane.banner.isHidden(), timeout=10_000)
        assert pane.ready and pane.picker.currentText() == "plain on the stub"
    finally:
        window.shutdown()


def test_a_stand_in_default_gives_way_to_a_remote_model_that_answers(
        qtbot, fake_models, engine, silent_stub, tmp_path) -> None:
    catalog, missing, remote = _catalog(fake_models, silent_stub, tmp_path)
    window = MainWindow(catalog, remember=False, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.show()
    try:
        roles = [pane.entry.role if pane.entry else "" for pane in window.panes]
        pane = window.panes[roles.index("instruct")]
        assert pane.config.model_id == missing and not pane.banner.isHidden()
        silent_stub.start()
        qtbot.waitUntil(lambda: pane.config.model_id == remote, timeout=10_000)
        assert pane.banner.isHidden() and pane.ready
        others = [p.config.model_id for p in window.panes if p is not pane]
        assert remote not in others  # only the stand-in moved
    finally:
        window.shutdown()


def test_asking_a_server_reads_the_keychain_off_the_gui_thread(qtbot) -> None:
    import threading

    import keyring

    from desktop_app.ui.add_server import AddServerDialog
    from tests.test_remote import MemoryKeyring

    class Watched(MemoryKeyring):
        threads: list[threading.Thread] = []

        def get_password(self, service: str, username: str) -> str | None:
            self.threads.append(threading.current_thread())
            return super().get_password(service, username)

    previous = keyring.get_keyring()
    watched = Watched()
    keyring.set_keyring(watched)
    try:
        with StubServer() as stub:
            dialog = AddServerDialog()
            qtbot.addWidget(dialog)
            dialog.url_edit.setText(stub.url)
            dialog.connect_button.click()
            qtbot.waitUntil(lambda: dialog.connect_button.isEnabled(), timeout=10_000)
            assert dialog.table.rowCount() > 0
            dialog.shutdown()
        assert watched.threads and threading.main_thread() not in watched.threads
    finally:
        keyring.set_keyring(previous)
        servers.check_due()
        servers.forget()
