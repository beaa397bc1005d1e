"""Issue 31 in the model manager, Add server and Serve to the room: names a screen reader
says, the keyboard paths, badges that keep their meaning without colour, and German."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from types import SimpleNamespace

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import Qt
from PySide6.QtGui import QAccessible
from PySide6.QtWidgets import QAbstractButton, QComboBox, QLineEdit, QWidget

from desktop_app.engine.room.activity import Ask, AskState
from desktop_app.engine.room.supervisor import RoomState, RoomStatus
from desktop_app.models import catalog as cat
from desktop_app.models.download import DownloadProgress
from desktop_app.models.fit import FitVerdict
from desktop_app.ui import a11y, language
from desktop_app.ui.add_server import AddServerDialog
from desktop_app.ui.fit_badges import Measured, fit_item, progress_words
from desktop_app.ui.model_manager import COLUMNS, ModelManagerDialog
from desktop_app.ui.serve_panel import ServePanel, describe_activity
from tests.hub_fixtures import MiB, hub_model_toml, write_user_catalog
from tests.hub_server import FakeHub

REPO = "acme/tiny-GGUF"


@pytest.fixture
def english() -> Iterator[None]:
    yield
    language.install("en")


@pytest.fixture
def models(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    other = tiny_gguf[:-1] + b"\x01"
    fake_hub.add_repo(REPO, {"tiny-Q8_0.gguf": tiny_gguf, "tiny-Q4_0.gguf": other})
    write_user_catalog(
        hub_model_toml("tiny-q8", REPO, "tiny-Q8_0.gguf",
                       sha256=hashlib.sha256(tiny_gguf).hexdigest())
        + hub_model_toml("tiny-q4", REPO, "tiny-Q4_0.gguf", quantization="Q4_0"))


@pytest.fixture
def manager(qtbot, models) -> Iterator[ModelManagerDialog]:
    dialog = ModelManagerDialog(cat.load_catalog())
    qtbot.addWidget(dialog)
    yield dialog
    dialog.shutdown()


def unnamed(root: QWidget) -> list[str]:
    """Every visible interactive widget under ``root`` whose accessible name (through
    QAccessible, as a screen reader asks) has no letters."""
    kinds = (QAbstractButton, QComboBox, QLineEdit)
    missing = []
    for widget in root.findChildren(QWidget):
        if (not widget.isVisibleTo(root) or not isinstance(widget, kinds)
                or widget.objectName().startswith("qt_")):  # Qt's own parts (a spin box's)
            continue
        face = QAccessible.queryAccessibleInterface(widget)
        name = face.text(QAccessible.Text.Name) if face is not None else ""
        if not any(ch.isalpha() for ch in name):
            missing.append(f"{type(widget).__name__} {widget.objectName()}")
    return missing


def next_tab_stop(widget: QWidget) -> QWidget:
    """The widget Tab moves to from ``widget`` (labels in the chain are passed over)."""
    after = widget.nextInFocusChain()
    while not (after.focusPolicy() & Qt.FocusPolicy.TabFocus) and after is not widget:
        after = after.nextInFocusChain()
    return after


def test_the_manager_names_every_control_and_reads_each_row(manager: ModelManagerDialog) -> None:
    assert unnamed(manager) == []
    assert manager.table.accessibleName() == "Models"
    assert manager.progress.accessibleName()
    row = manager._row_of("tiny-q8")
    assert row is not None
    summary = manager.table.item(row, 0).data(Qt.ItemDataRole.AccessibleDescriptionRole)
    assert summary.startswith("tiny-q8") or "instruct model" in summary
    assert "instruct model" in summary and "not downloaded" in summary
    # every cell of the row says the whole row, whichever has focus
    for column in range(len(COLUMNS)):
        assert manager.table.item(row, column).data(
            Qt.ItemDataRole.AccessibleDescriptionRole) == summary


def test_the_manager_by_keyboard(qtbot, fake_hub: FakeHub, manager: ModelManagerDialog,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    said: list[str] = []
    monkeypatch.setattr(a11y, "announce", lambda widget, text, **_kw: said.append(text))
    fake_hub.throttle = 30 * MiB
    manager.show()
    qtbot.waitExposed(manager)
    manager.table.setFocus()
    manager.select_model("tiny-q4")
    first = manager.selected_id()
    qtbot.keyClick(manager.table, Qt.Key.Key_Down if manager.table.currentRow() == 0
                   else Qt.Key.Key_Up)
    assert manager.selected_id() not in (None, first)  # arrows pick another model
    chosen = manager.selected_id()
    qtbot.keyClick(manager.table, Qt.Key.Key_Return)  # Enter downloads it
    assert manager.is_busy()
    qtbot.waitUntil(lambda: not manager.is_busy(), timeout=20_000)
    assert manager.state_text(chosen) == "ready"
    assert any(text.startswith(f"Download finished: {chosen} is ready") for text in said)
    # Enter on a model that is here goes to a button that can act on it
    qtbot.keyClick(manager.table, Qt.Key.Key_Return)
    assert manager.focusWidget() in (manager.verify_button, manager.remove_button)
    # Escape closes
    qtbot.keyClick(manager.table, Qt.Key.Key_Escape)
    assert not manager.isVisible()


def test_fit_badges_keep_their_meaning_without_colour(qtbot) -> None:
    found = SimpleNamespace(verdict=FitVerdict.TOO_LARGE,
                            tooltip=lambda: "Too large for this machine: 9 GB of 4 GB.")
    item = fit_item(Measured(fits={"m": found}), "m")  # type: ignore[dict-item]
    assert item.text() == "✗ Too large"
    assert item.data(Qt.ItemDataRole.AccessibleTextRole) == "Too large for this machine"
    assert item.toolTip().startswith("Too large for this machine: 9 GB")
    assert fit_item(None, "m").data(Qt.ItemDataRole.AccessibleTextRole) == "fit not measured yet"


def test_add_server_names_its_fields_and_keeps_a_reading_order(qtbot) -> None:
    dialog = AddServerDialog()
    qtbot.addWidget(dialog)
    assert unnamed(dialog) == []
    assert dialog.key_edit.accessibleName() == "API key"
    assert dialog.url_edit.accessibleName() == "Server address"
    order = [dialog.url_edit, dialog.key_edit, dialog.key_env_edit, dialog.connect_button,
             dialog.find_button]
    for first, second in zip(order, order[1:], strict=False):
        assert next_tab_stop(first) is second
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.keyClick(dialog.url_edit, Qt.Key.Key_Escape)
    assert not dialog.isVisible()


def test_the_room_panel_describes_its_qr_code_in_words(qtbot) -> None:
    panel = ServePanel()
    qtbot.addWidget(panel)
    assert unnamed(panel) == []
    endpoint = "http://10.0.0.5:8765/v1"
    ask = Ask(1, time.time(), "10.0.0.7", "m", "Why?", AskState.ANSWERED, 1.5)
    panel._show(RoomStatus(RoomState.SERVING, endpoints=(endpoint,), key="K7M2QX",
                           models=("m",), connected=1, asks=(ask,)))
    description = panel.qr.accessibleDescription()
    assert endpoint in description and "K 7 M 2 Q X" in description
    assert panel.qr.accessibleName() == "QR code of the room"
    assert panel.table.item(0, 4).text() == "answered in 1.5 s"
    panel.room = None


def test_german(qtbot, english) -> None:
    language.install("de")
    dialog = AddServerDialog()
    qtbot.addWidget(dialog)
    assert dialog.windowTitle() == "Modelle von einem Server hinzufügen"
    assert dialog.key_edit.accessibleName() == "API-Schlüssel"
    status = RoomStatus(RoomState.SERVING, connected=1, running=0, waiting=2)
    assert describe_activity(status) == "1 Laptop verbunden · 0 antworten · 2 warten"
    progress = DownloadProgress("m", "downloading", 42, 100, 2_000_000, 8)
    assert progress_words(progress).startswith("lädt 42 % mit 2,0 MB/s") or \
        progress_words(progress).startswith("lädt 42 % mit 2.0 MB/s")
    found = SimpleNamespace(verdict=FitVerdict.FITS, tooltip=lambda: "Passt: viel Platz.")
    item = fit_item(Measured(fits={"m": found}), "m")  # type: ignore[dict-item]
    assert item.text() == "✓ Passt" and item.toolTip() == "Passt: viel Platz."  # the core's
    assert FitVerdict.FITS.label == "Passt"
    language.install("en")
    assert describe_activity(status) == "1 laptop connected · 0 answering · 2 waiting"
