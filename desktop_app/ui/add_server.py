"""“Add server…”: an OpenAI-compatible server's models into the catalog, each in a role;
and :class:`HubFilePicker`, the model manager's "Add from Hub…" choice of one GGUF file.

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
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from desktop_app.models import catalog as cat
from desktop_app.models import hub, room, servers, user_catalog
from desktop_app.models.hub import DownloadError
from desktop_app.text import escape
from desktop_app.text.i18n import _, ngettext, number
from desktop_app.text.units import format_bytes
from desktop_app.ui import a11y, theme
from desktop_app.ui.fit_badges import role_box
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
        self.setWindowTitle(_("Add models from a server"))
        self.resize(620, 420)
        self.added: list[cat.ModelEntry] = []
        self.endpoint: str | None = None
        self._task: Task | None = None

        layout = QVBoxLayout(self)
        intro = QLabel(_("An OpenAI-compatible server: vLLM, SGLang, llama-server, Ollama, "
                         "LM Studio… Its models run in panes like local ones."))
        intro.setWordWrap(True)
        layout.addWidget(intro)
        form = QFormLayout()
        self.url_edit = a11y.describe(QLineEdit(), _("Server address"),
                                      _("The server's address, or a room's link; Enter asks it"))
        self.url_edit.setPlaceholderText("http://localhost:8080/v1")
        self.key_edit = a11y.describe(QLineEdit(), _("API key"),
                                      _("The key the server wants, if any; kept in the OS "
                                        "keychain, never in a file"))
        self.key_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.key_edit.setPlaceholderText(_("(none) — kept in the OS keychain, never in a file"))
        self.key_env_edit = a11y.describe(QLineEdit(), _("Key variable"),
                                          _("Optional: an environment variable holding the key"))
        self.key_env_edit.setPlaceholderText(_("(optional) environment variable holding the key"))
        form.addRow(_("&Address:"), self.url_edit)
        form.addRow(_("&Key:"), self.key_edit)
        form.addRow(_("Key &variable:"), self.key_env_edit)
        layout.addLayout(form)
        self.connect_button = QPushButton(_("Ask the &server"))
        self.connect_button.setAutoDefault(False)  # Enter in the address asks, once
        self.connect_button.clicked.connect(self.ask)
        self.url_edit.returnPressed.connect(self.ask)
        self.find_button = QPushButton(_("&Find a room on this network"))
        self.find_button.setAutoDefault(False)
        self.find_button.setToolTip(_("A teacher's laptop running Serve to the room (or "
                                      "'triptych serve') announces itself where the network "
                                      "lets it (mDNS)."))
        self.find_button.setAccessibleDescription(self.find_button.toolTip())
        self.find_button.clicked.connect(self.find_rooms)
        self.rooms = a11y.describe(QComboBox(), _("Rooms found"),
                                   _("The rooms that answered on this network; pick one"))
        self.rooms.hide()
        self.rooms.activated.connect(self._room_chosen)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(self.connect_button)
        buttons_row.addWidget(self.find_button)
        buttons_row.addWidget(self.rooms, 1)
        buttons_row.addStretch(0)
        layout.addLayout(buttons_row)

        self.table = a11y.describe(QTableWidget(0, 2), _("Served models"),
                                   _("Tick the models to add and pick each one's role"))
        self.table.setHorizontalHeaderLabels([_("Served model"), _("Role")])
        self.table.setTabKeyNavigation(False)  # Tab goes on to the buttons
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        layout.addWidget(self.table, 1)
        self.status = QLabel()
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse
                                            | Qt.TextInteractionFlag.TextSelectableByKeyboard)
        a11y.describe(self.status, _("Status"))
        layout.addWidget(self.status)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.add_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.add_button.setText(_("&Add to my models"))
        self.add_button.setEnabled(False)
        buttons.accepted.connect(self.add_selected)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        # the reading order: address, key, key variable, ask, find, rooms, the models, buttons
        chain = [self.url_edit, self.key_edit, self.key_env_edit, self.connect_button,
                 self.find_button, self.rooms, self.table, self.add_button,
                 buttons.button(QDialogButtonBox.StandardButton.Cancel)]
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

    # -- asking

    def _key_env(self) -> str | None:
        return self.key_env_edit.text().strip() or None

    def find_rooms(self) -> None:
        """Look for rooms on the local network in the background (a few seconds)."""
        self.find_button.setEnabled(False)
        self._say(_("Looking for rooms on this network…"))
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
            self._error(_("No room answered on this network within {seconds} s (the network "
                          "may block it); type the address the teacher shows.").format(
                seconds=number(room.DISCOVER_S, 0)))
            return
        self._room_chosen(0)
        if len(rooms) > 1:
            self._say(ngettext("{n} room answered; pick one.", "{n} rooms answered; pick one.",
                               len(rooms)).format(n=len(rooms)))

    def _room_chosen(self, index: int) -> None:
        endpoint = self.rooms.itemData(index)
        if not isinstance(endpoint, str):
            return
        self.url_edit.setText(endpoint)
        self._say(_("Found {room}; type the key the teacher shows, then ask it.").format(
            room=self.rooms.itemText(index)))
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
        self._say(_("Asking {host} for its models…").format(host=servers.host_of(endpoint)))
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
        previous: QWidget = self.table
        for model in models:
            row = self.table.rowCount()
            self.table.insertRow(row)
            check = QCheckBox(model)
            check.setAccessibleDescription(_("Add this model"))
            check.setChecked(len(models) == 1)
            check.toggled.connect(self._update_add_button)
            role = role_box(guess_role(model))
            role.setAccessibleName(_("Role of {model}").format(model=model))
            self.table.setCellWidget(row, 0, check)
            self.table.setCellWidget(row, 1, role)
            QWidget.setTabOrder(previous, check)  # Tab walks the rows, then Add
            QWidget.setTabOrder(check, role)
            previous = role
        QWidget.setTabOrder(previous, self.add_button)
        if models:  # the role boxes as wide as their words (German's are longer)
            widest = max(self.table.cellWidget(r, 1).sizeHint().width()
                         for r in range(self.table.rowCount()))
            self.table.setColumnWidth(1, max(self.table.columnWidth(1), widest))
        count, host = len(models), servers.host_of(endpoint)
        self._say(ngettext("{host} answers and serves {n} model; tick the ones to add.",
                           "{host} answers and serves {n} models; tick the ones to add.",
                           count).format(host=host, n=count)
                  if count else _("{host} answers but serves no models.").format(host=host))
        self._update_add_button()

    def picks(self) -> list[tuple[str, str]]:
        """``(served model, role)`` for every ticked row."""
        chosen = []
        for row in range(self.table.rowCount()):
            check, role = self.table.cellWidget(row, 0), self.table.cellWidget(row, 1)
            if isinstance(check, QCheckBox) and isinstance(role, QComboBox) and check.isChecked():
                chosen.append((check.text(), str(role.currentData())))
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

    def _say(self, text: str) -> None:
        """The status line, said politely to a screen reader too."""
        self.status.setText(text)
        a11y.announce(self.status, text)

    def _error(self, message: str) -> None:
        theme.rich_text(self.status, lambda: (
            f"<span style='color:{theme.fail_color()}'>{escape.html(message)}</span>"))
        a11y.announce(self.status, message)

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.detach()
            self._task.wait(1.0)

    def done(self, result: int) -> None:
        self.shutdown()
        super().done(result)


class HubFilePicker(QDialog):
    """Pick one GGUF file of a Hub repo, its role and a display name."""

    def __init__(self, repo_id: str, files: list[hub.HubFile], parent: QWidget | None = None):
        super().__init__(parent)
        self.repo_id = repo_id
        self.files = files
        self.setWindowTitle(_("Add from {repo}").format(repo=repo_id))
        layout = QVBoxLayout(self)
        title = QLabel(_("GGUF files in {repo}:").format(repo=f"<b>{escape.html(repo_id)}</b>"))
        layout.addWidget(title)
        self.file_list = a11y.describe(QListWidget(), _("GGUF files"),
                                       _("The model files of {repo}; pick one").format(repo=repo_id))
        title.setBuddy(self.file_list)
        for file in files:
            size = format_bytes(file.size) if file.size is not None else _("unknown size")
            item = QListWidgetItem(f"{file.filename}    {size}")
            item.setData(Qt.ItemDataRole.UserRole, file)
            self.file_list.addItem(item)
        if files:
            self.file_list.setCurrentRow(0)
        layout.addWidget(self.file_list)
        form = QFormLayout()
        self.role_box = role_box("instruct")
        self.name_edit = a11y.describe(QLineEdit(), _("Name"),
                                       _("The name shown for this model; empty: from the file name"))
        self.name_edit.setPlaceholderText(_("(from the file name)"))
        form.addRow(_("&Role:"), self.role_box)
        form.addRow(_("&Name:"), self.name_edit)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(_("&Add to my models"))
        self.ok_button.setEnabled(bool(files))
        layout.addWidget(buttons)

    def role(self) -> str:
        """The role picked (its id: ``base``, ``instruct``, ``reasoning``)."""
        return str(self.role_box.currentData())

    def choice(self) -> hub.HubFile | None:
        item = self.file_list.currentItem()
        return item.data(Qt.ItemDataRole.UserRole) if item else None


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
