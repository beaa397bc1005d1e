"""“Add server…”: an OpenAI-compatible server's models into the catalog, each in a role.

The address (and a key, if the server wants one; a room's link carries its key after
``#key=``, or Find a room looks for one on the local network) → ``GET /models`` in the
background →
a row per served model with a checkbox and a role → catalog entries through
:func:`desktop_app.models.user_catalog.add_remote_models`. A key typed here goes to the OS
keychain (:func:`desktop_app.models.servers.store_key`), never into ``models.toml``; a key
variable names an environment variable instead. The GUI thread never waits on the server.

:class:`ServerWatch` brings the background reachability checks' answers to the GUI thread,
so a window can refresh what it shows about models on servers.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.models import catalog as cat
from desktop_app.models import room, servers, user_catalog
from desktop_app.models.hub import DownloadError
from desktop_app.text import escape
from desktop_app.ui import theme
from desktop_app.ui.tasks import Task, run_task

_REASONING_HINTS = ("r1", "think", "reason", "qwq", "qwen3", "gpt-oss", "magistral", "phi-4-mini-r")


def guess_role(model: str) -> str:
    """A first guess for the role picker from the served name (the user can change it)."""
    name = model.lower()
    if "base" in name or name.endswith("-pt") or "-pt-" in name:
        return "base"
    if any(hint in name for hint in _REASONING_HINTS):
        return "reasoning"
    return "instruct"


class AddServerDialog(QDialog):
    """Ask a server for its models, pick some and their roles, add them to the catalog.

    ``added`` is the list of entries made when the dialog is accepted."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Add models from a server")
        self.resize(620, 420)
        self.added: list[cat.ModelEntry] = []
        self.endpoint: str | None = None
        self._task: Task | None = None

        layout = QVBoxLayout(self)
        intro = QLabel("An OpenAI-compatible server: vLLM, SGLang, llama-server, Ollama, "
                       "LM Studio… Its models run in panes like local ones.")
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url_edit = QLineEdit()
        self.url_edit.setPlaceholderText("http://localhost:8080/v1")
        self.key_edit = QLineEdit()
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText("(none) — kept in the OS keychain, never in a file")
        self.key_env_edit = QLineEdit()
        self.key_env_edit.setPlaceholderText("(optional) environment variable holding the key")
        form.addRow("Address:", self.url_edit)
        form.addRow("Key:", self.key_edit)
        form.addRow("Key variable:", self.key_env_edit)
        layout.addLayout(form)
        self.connect_button = QPushButton("Ask the server")
        self.connect_button.clicked.connect(self.ask)
        self.url_edit.returnPressed.connect(self.ask)
        self.find_button = QPushButton("Find a room on this network")
        self.find_button.setToolTip("A teacher's laptop running Serve to the room (or "
                                    "'triptych serve') announces itself where the network "
                                    "lets it (mDNS).")
        self.find_button.clicked.connect(self.find_rooms)
        self.rooms = QComboBox()
        self.rooms.hide()
        self.rooms.activated.connect(self._room_chosen)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(self.connect_button)
        buttons_row.addWidget(self.find_button)
        buttons_row.addWidget(self.rooms, 1)
        buttons_row.addStretch(0)
        layout.addLayout(buttons_row)

        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Served model", "Role"])
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText("Add to my models")
        self.add_button.setEnabled(False)
        buttons.accepted.connect(self.add_selected)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)

    # -- asking

    def _key_env(self) -> str | None:
        return self.key_env_edit.text().strip() or None

    def find_rooms(self) -> None:
        """Look for rooms on the local network in the background (a few seconds)."""
        self.find_button.setEnabled(False)
        self.status.setText("Looking for rooms on this network…")
        self._task = run_task(self, lambda task: room.discover(), name="find-rooms",
                              on_success=self._found, on_failure=self._failed_to_find)

    def _failed_to_find(self, exc: BaseException) -> None:
        self.find_button.setEnabled(True)
        self._error(str(exc) if isinstance(exc, room.RoomError)
                    else f"{type(exc).__name__}: {exc}")

    def _found(self, rooms: list[room.FoundRoom]) -> None:
        self.find_button.setEnabled(True)
        self.rooms.clear()
        for found in rooms:
            self.rooms.addItem(found.describe(), found.endpoint)
        self.rooms.setVisible(len(rooms) > 1)
        if not rooms:
            self._error(f"No room answered on this network within {room.DISCOVER_S:.0f} s "
                        f"(the network may block it); type the address the teacher shows.")
            return
        self._room_chosen(0)
        if len(rooms) > 1:
            self.status.setText(f"{len(rooms)} rooms answered; pick one.")

    def _room_chosen(self, index: int) -> None:
        endpoint = self.rooms.itemData(index)
        if not isinstance(endpoint, str):
            return
        self.url_edit.setText(endpoint)
        self.status.setText(f"Found {self.rooms.itemText(index)}; type the key the teacher "
                            f"shows, then ask it.")
        self.key_edit.setFocus()

    def ask(self) -> None:
        """List the server's models in the background."""
        address, linked = room.split_link(self.url_edit.text())
        if linked:  # a room's link (its QR code): the key comes with the address
            self.url_edit.setText(address)
            self.key_edit.setText(linked)
        try:
            endpoint = servers.normalize_endpoint(address)
        except ValueError as exc:
            self._error(str(exc))
            return
        typed, key_env = self.key_edit.text().strip(), self._key_env()
        self.endpoint = endpoint
        self.connect_button.setEnabled(False)
        self.add_button.setEnabled(False)
        self.table.setRowCount(0)
        self.status.setText(f"Asking {servers.host_of(endpoint)} for its models…")
        self._task = run_task(
            self, lambda task: servers.list_models(  # the keychain may wait: not on this thread
                endpoint, typed or servers.api_key(endpoint, key_env), key_env=key_env),
            on_success=lambda models: self._listed(endpoint, models),
            on_failure=self._failed, name="add-server")

    def _failed(self, exc: BaseException) -> None:
        self.connect_button.setEnabled(True)
        self._error(str(exc) if isinstance(exc, servers.ServerError)
                    else f"{type(exc).__name__}: {exc}")

    def _listed(self, endpoint: str, models: list[str]) -> None:
        self.connect_button.setEnabled(True)
        if endpoint != self.endpoint:
            return  # an older answer
        for model in models:
            row = self.table.rowCount()
            self.table.insertRow(row)
            check = QCheckBox(model)
            check.setChecked(len(models) == 1)
            check.toggled.connect(self._update_add_button)
            role = QComboBox()
            role.addItems(list(cat.ROLES))
            role.setCurrentText(guess_role(model))
            self.table.setCellWidget(row, 0, check)
            self.table.setCellWidget(row, 1, role)
        count = len(models)
        self.status.setText(f"{servers.host_of(endpoint)} answers and serves {count} "
                            f"model{'s' if count != 1 else ''}; tick the ones to add."
                            if count else f"{servers.host_of(endpoint)} answers but serves "
                                          f"no models.")
        self._update_add_button()

    def picks(self) -> list[tuple[str, str]]:
        """``(served model, role)`` for every ticked row."""
        chosen = []
        for row in range(self.table.rowCount()):
            check, role = self.table.cellWidget(row, 0), self.table.cellWidget(row, 1)
            if isinstance(check, QCheckBox) and isinstance(role, QComboBox) and check.isChecked():
                chosen.append((check.text(), role.currentText()))
        return chosen

    def _update_add_button(self, *_args: Any) -> None:
        self.add_button.setEnabled(bool(self.picks()))

    # -- adding

    def add_selected(self) -> None:
        """Store a typed key in the keychain, write the entries, close. Quick: GUI thread."""
        endpoint, picks = self.endpoint, self.picks()
        if endpoint is None or not picks:
            return
        key = self.key_edit.text().strip()
        if key:
            try:
                servers.store_key(endpoint, key)
            except ValueError as exc:
                self._error(str(exc))
                return
        try:
            self.added = user_catalog.add_remote_models(endpoint, picks, key_env=self._key_env())
        except DownloadError as exc:
            self._error(str(exc))
            return
        servers.forget(endpoint)  # ask again, with the key that is now stored
        self.accept()

    def _error(self, message: str) -> None:
        theme.rich_text(self.status, lambda: (
            f"<span style='color:{theme.fail_color()}'>{escape.html(message)}</span>"))

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.detach()
            self._task.wait(1.0)

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)


class ServerWatch(QObject):
    """Asks the servers the window looks at, in the background, and emits
    ``answered(endpoint)`` on the GUI thread when an answer comes back.

    Looking is a pure read (``catalog.availability`` only notes which servers are wanted);
    this watch does the asking, through the one background-job helper, so an answer
    reaches only a live window. Runs until :meth:`close` (call it when its owner closes)."""

    answered = Signal(str)
    POLL_MS = 1000  # how often it looks for wanted servers whose answer is missing or old

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._closed = False
        self._timer = QTimer(self)
        self._timer.setInterval(self.POLL_MS)
        self._timer.timeout.connect(self.ask_due)
        self._timer.start()
        QTimer.singleShot(0, self, self.ask_due)  # the first look is answered at once

    def ask_due(self) -> None:
        """Start a check for each wanted server that is due and not being asked."""
        if self._closed:
            return
        for key in servers.due():
            if servers.claim(key):
                self._ask(key)

    def _ask(self, key: servers.ServerKey) -> None:
        def work(_task: Task) -> servers.ServerAnswer:
            return servers.check_claimed(key)

        def heard(_answer: servers.ServerAnswer) -> None:
            self.answered.emit(key[0])

        run_task(self, work, on_success=heard, name="server-check")

    def close(self) -> None:
        self._closed = True
        self._timer.stop()
