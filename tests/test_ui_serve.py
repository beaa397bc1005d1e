"""Models → Serve to the room…: the panel on a real Qt event loop. The room is the real
one (llama-cpp-python's server on the SmolLM2 starter) in the slow test; the quick ones
check what the panel refuses before anything starts."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import httpx2
import pytest

pytest.importorskip("pytestqt")

from desktop_app.engine.protocol import Finished, GenerationRequest, Sampling
from desktop_app.engine.remote import RemoteWorker
from desktop_app.engine.room.supervisor import RoomState
from desktop_app.models.catalog import load_catalog
from desktop_app.ui.main_window import MainWindow
from desktop_app.ui.serve_panel import ServePanel, open_serve_panel
from tests.test_remote import remote_entry

MODEL = "smollm2-135m-instruct"


def _window(qtbot, engine, *, presentation: bool = False,
            size: tuple[int, int] = (1600, 900)) -> MainWindow:
    window = MainWindow(load_catalog(), models=[MODEL], remember=False,
                        presentation=presentation, worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(*size)
    window.show()
    return window


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _only(panel: ServePanel, model_id: str) -> None:
    from PySide6.QtCore import Qt

    for row in range(panel.models.count()):
        item = panel.models.item(row)
        keep = item.data(Qt.ItemDataRole.UserRole).id == model_id
        item.setCheckState(Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)


def test_the_panel_refuses_in_one_sentence_and_starts_nothing(qtbot, engine, starter_models):
    window = _window(qtbot, engine)
    panel = open_serve_panel(window)
    assert open_serve_panel(window) is panel  # one per window
    ids = [panel.models.item(r).text() for r in range(panel.models.count())]
    assert any(MODEL in text for text in ids)
    assert "ready models on this laptop can be served" in panel.state_label.text()
    panel.key_edit.setText("abc")
    panel.toggle.click()
    assert not panel.toggle.isChecked() and panel.room is None
    assert "at least 6 characters" in panel.state_label.text()
    panel.key_edit.clear()
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        panel.local_only.setChecked(True)
        panel.port.setValue(taken.getsockname()[1])
        _only(panel, MODEL)
        started = time.monotonic()
        panel.toggle.click()
        assert time.monotonic() - started < 1.0  # the window does not wait for the room
        qtbot.waitUntil(lambda: panel.room is None, timeout=30_000)
        assert "is already in use" in panel.state_label.text()
        assert not panel.toggle.isChecked() and panel.toggle.isEnabled()
    finally:
        taken.close()
    _only(panel, "nothing")
    panel.toggle.click()
    assert "Tick at least one model" in panel.state_label.text() and panel.room is None


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_serving_from_the_window_shows_the_address_key_laptops_and_questions(
        qtbot, engine, starter_models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    window = _window(qtbot, engine, presentation=True, size=(1024, 768))
    panel = open_serve_panel(window)
    _only(panel, MODEL)
    panel.local_only.setChecked(True)
    port = _free_port()
    panel.port.setValue(port)
    panel.key_edit.setText("K7M2QX")
    panel.toggle.click()
    assert not panel.toggle.isEnabled()  # starting: loading the models
    qtbot.waitUntil(lambda: panel.room is not None
                    and panel.room.status().state == RoomState.SERVING, timeout=180_000)
    panel.refresh()
    endpoint = f"http://127.0.0.1:{port}/v1"
    assert panel.address.text() == endpoint and panel.key_label.text() == "Key  K7M2QX"
    assert not panel.qr.pixmap().isNull() and panel.qr.toolTip() == f"{endpoint}#key=K7M2QX"
    assert panel.toggle.text() == "Stop serving" and not panel.settings_box.isEnabled()
    assert "0 laptops connected" in panel.activity.text()

    results: list[object] = []

    monkeypatch.setenv("ROOM_KEY", "k7m2qx")  # as a student types it: case does not count
    entry = remote_entry(endpoint, MODEL, role="instruct", source={"api_key_env": "ROOM_KEY"})

    def student() -> None:
        with RemoteWorker(entry) as worker:
            results.extend(worker.generate(GenerationRequest(
                prompt="What is the capital of France?",
                sampling=Sampling(temperature=0.0, max_tokens=16, seed=1))))

    thread = threading.Thread(target=student, name="student")
    thread.start()
    qtbot.waitUntil(lambda: panel.table.rowCount() == 1
                    and panel.table.item(0, 4).text().startswith("answered"), timeout=120_000)
    thread.join(30)
    assert isinstance(results[-1], Finished)
    assert panel.table.item(0, 3).text() == "What is the capital of France?"
    assert panel.table.item(0, 1).text() == "127.0.0.1"
    assert panel.table.item(0, 2).text() == MODEL
    assert panel.activity.text().startswith("1 laptop connected · 0 answering · 0 waiting")
    panel.grab().save(str(tmp_path / "serve-1024x768-presentation.png"))

    panel.toggle.click()  # stop: in the background, then the port is closed
    qtbot.waitUntil(lambda: panel.room is None, timeout=30_000)
    assert panel.toggle.text() == "Serve to the room" and panel.settings_box.isEnabled()
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(endpoint + "/models", timeout=2)

    panel.toggle.click()  # serving again, then the window closes: the room stops too
    qtbot.waitUntil(lambda: panel.room is not None
                    and panel.room.status().state == RoomState.SERVING, timeout=180_000)
    room = panel.room
    window.close()
    qtbot.waitUntil(lambda: room.status().state == RoomState.STOPPED, timeout=30_000)
    with pytest.raises(httpx2.ConnectError):
        httpx2.get(endpoint + "/models", timeout=2)


def test_the_add_server_dialog_finds_the_room_and_takes_its_link(qtbot, monkeypatch):
    """A student's Add server…: Find a room fills in the address the room announces
    (mDNS on the loopback interface here); a pasted QR link brings its key along."""
    from desktop_app.models import room
    from desktop_app.ui.add_server import AddServerDialog
    from tests.openai_stub_server import StubServer
    from tests.test_room import KEY, front

    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, _door):
        port = int(url.split(":")[2].split("/")[0])
        announcement = room.Announcement("127.0.0.1", port, key_required=True,
                                         models=["plain"])
        try:
            announcement.start()
        except room.RoomError as exc:  # a machine whose network allows no multicast
            pytest.skip(str(exc))
        dialog = AddServerDialog()
        qtbot.addWidget(dialog)
        try:
            dialog.find_button.click()
            qtbot.waitUntil(lambda: dialog.url_edit.text() == url, timeout=15_000)
            assert "type the key the teacher shows" in dialog.status.text()
        finally:
            dialog.shutdown()
            announcement.close()
        dialog.url_edit.setText(room.link(url, KEY))
        dialog.ask()
        assert dialog.url_edit.text() == url and dialog.key_edit.text() == KEY
        qtbot.waitUntil(lambda: dialog.table.rowCount() == 2, timeout=15_000)
        assert "serves 2 models" in dialog.status.text()
        dialog.shutdown()
