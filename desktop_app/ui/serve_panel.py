"""Models → Serve to the room…: this laptop serves its models to the class.

A toggle starts and stops a room (:class:`desktop_app.engine.room.supervisor.Room`, the
same one ``triptych serve`` runs); starting (models load) and stopping run through the
one background-job helper, so the window never waits. While it serves, the panel shows
what students type, large enough to read off a projector: the address, the key and a
QR code of both, and below them how many laptops are connected, what is answering or
waiting, and what they asked. Closing the panel keeps the room serving (the menu opens
it again); closing the window stops it everywhere.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QDateTime, QLocale, Qt, QTimer
from PySide6.QtGui import QColor, QGuiApplication, QPixmap
from PySide6.QtWidgets import (
    QButtonGroup,
    QDialog,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from desktop_app.engine.room.activity import Ask, AskState
from desktop_app.engine.room.supervisor import (
    DEFAULT_PORT,
    Room,
    RoomSettings,
    RoomState,
    RoomStatus,
)
from desktop_app.models import catalog as cat
from desktop_app.models.room import RoomError, check_key, link, qr_png
from desktop_app.models.sources import RemoteSource
from desktop_app.text import escape
from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.text.units import format_bytes
from desktop_app.ui import a11y, theme
from desktop_app.ui.fit_badges import role_word
from desktop_app.ui.tasks import Task, run_task

REFRESH_MS = 500  # how often the panel reads the room's status (a pure read)
BIG = 2.2  # the address and key, relative to the panel's text: read off a projector
ASK_COLUMNS = (N_("Time"), N_("Laptop"), N_("Model"), N_("Question"), N_("How it went"))
ASK_WORDS: dict[AskState, str] = {  # the core's labels stay English (the command line's)
    AskState.WAITING: N_("waiting in the queue"),
    AskState.ANSWERING: N_("answering"),
    AskState.ANSWERED: N_("answered"),
    AskState.LEFT: N_("stopped by the student"),
    AskState.BROKEN_OFF: N_("broken off"),
    AskState.REFUSED: N_("refused"),
}
ROOM_WORDS: dict[RoomState, str] = {
    RoomState.SERVING: N_("Serving: {models}."),
    RoomState.STOPPING: N_("Stopping: {models}."),
    RoomState.FAILED: N_("Stopped by a failure: {models}."),
    RoomState.STOPPED: N_("Not serving: {models}."),
}
STATE_COLORS = {AskState.ANSWERED: theme.ok_color, AskState.BROKEN_OFF: theme.fail_color,
                AskState.REFUSED: theme.fail_color, AskState.WAITING: theme.warn_color}


def ready_local_models() -> list[cat.ModelEntry]:
    """The models this laptop can serve: ready, and not themselves on a server."""
    return [e for e in cat.load_catalog()
            if not isinstance(e.source, RemoteSource) and cat.is_ready(e)]


def describe_activity(status: RoomStatus) -> str:
    """``3 laptops connected · 1 answering · 2 waiting · 2 files handed out``."""
    parts = [ngettext("{n} laptop connected", "{n} laptops connected",
                      status.connected).format(n=status.connected),
             _("{n} answering").format(n=status.running),
             _("{n} waiting").format(n=status.waiting)]
    if status.files:
        parts.append(ngettext("{n} file handed out ({size})", "{n} files handed out ({size})",
                              status.files_sent).format(n=status.files_sent,
                                                        size=format_bytes(status.bytes_sent)))
    return " · ".join(parts)


def clock(at: float) -> str:
    """A moment's time of day the locale's way, with seconds (``14:05:09``, ``2:05:09 PM``)."""
    locale = QLocale()
    form = locale.timeFormat(QLocale.FormatType.ShortFormat)
    if "s" not in form:
        form = form.replace("mm", "mm:ss")
    return locale.toString(QDateTime.fromMSecsSinceEpoch(int(at * 1000)).time(), form)


class ServePanel(QDialog):
    """The room's switch and its view."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(_("Serve to the room"))
        self.resize(960, 720)
        self.room: Room | None = None
        self._task: Task | None = None
        self._shown_asks: tuple[Ask, ...] = ()
        self._shown_link = ""
        self._said_state: RoomState | None = None

        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.toggle = QPushButton(_("Serve to the room"))
        self.toggle.setCheckable(True)
        self.toggle.toggled.connect(self._toggled)
        theme.set_font_scale(self.toggle, 1.2)
        top.addWidget(self.toggle)
        self.state_label = a11y.describe(QLabel(), _("Room status"))
        self.state_label.setWordWrap(True)
        top.addWidget(self.state_label, 1)
        layout.addLayout(top)

        self.intro = QLabel(_(
            "Other laptops in the room run this laptop's models in their panes, and can "
            "download its model files instead of the Hub (models pull --from). Questions "
            "wait their turn; each laptop has its limits. Beyond this computer the room "
            "always asks for a key."))
        self.intro.setWordWrap(True)
        theme.style(self.intro, lambda: f"color: {theme.muted_fg()};")
        layout.addWidget(self.intro)

        self.settings_box = QFrame()
        form = QGridLayout(self.settings_box)
        form.setContentsMargins(0, 0, 0, 0)
        self.local_only = QRadioButton(_("This &computer only"))
        self.everyone = QRadioButton(_("&Everyone on this network (with a key)"))
        self.everyone.setChecked(True)
        reach = QButtonGroup(self)
        reach.addButton(self.local_only)
        reach.addButton(self.everyone)
        self.port = a11y.describe(QSpinBox(), _("Port"),
                                  _("The network port students' laptops connect to"))
        self.port.setRange(1024, 65535)
        self.port.setValue(DEFAULT_PORT)
        self.key_edit = a11y.describe(QLineEdit(), _("Room key"),
                                      _("The key students type; empty: a new short key"))
        self.key_edit.setPlaceholderText(_("a new short key"))
        self.key_edit.setMaxLength(64)
        reach_row = QHBoxLayout()
        reach_row.addWidget(self.everyone)
        reach_row.addWidget(self.local_only)
        reach_row.addStretch(1)
        where_row = QHBoxLayout()
        where_row.addWidget(self.port)
        where_row.addSpacing(16)
        key_caption = QLabel(_("&Key:"))
        key_caption.setBuddy(self.key_edit)
        where_row.addWidget(key_caption)
        where_row.addWidget(self.key_edit)
        where_row.addStretch(1)
        metrics = self.key_edit.fontMetrics()  # room for the placeholder (German's is longer)
        self.key_edit.setMinimumWidth(max(metrics.horizontalAdvance("M" * 12),
                                          metrics.horizontalAdvance(
                                              self.key_edit.placeholderText() + "MM")))
        self.models = a11y.describe(QListWidget(), _("Models to serve"),
                                    _("Space ticks or unticks the model under the cursor"))
        self.models.setMaximumHeight(120)
        port_caption, models_caption = QLabel(_("&Port:")), QLabel(_("&Models:"))
        port_caption.setBuddy(self.port)
        models_caption.setBuddy(self.models)
        form.addWidget(QLabel(_("Who can reach it:")), 0, 0)
        form.addLayout(reach_row, 0, 1)
        form.addWidget(port_caption, 1, 0)
        form.addLayout(where_row, 1, 1)
        form.addWidget(models_caption, 2, 0, Qt.AlignmentFlag.AlignTop)
        form.addWidget(self.models, 2, 1)
        form.setColumnStretch(1, 1)
        layout.addWidget(self.settings_box)

        self.card = QFrame()
        self.card.setFrameShape(QFrame.Shape.StyledPanel)
        card = QGridLayout(self.card)
        caption = QLabel(_("Students type"))
        theme.style(caption, lambda: f"color: {theme.muted_fg()};")
        self.address = a11y.describe(QLabel(), _("Room address"))
        self.key_label = a11y.describe(QLabel(), _("Room key"))
        for big in (self.address, self.key_label):
            big.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            theme.set_font_scale(big, BIG)
        self.how = a11y.describe(QLabel(), _("How students join"))
        self.how.setWordWrap(True)
        self.how.setTextFormat(Qt.TextFormat.RichText)
        self.how.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        theme.style(self.how, lambda: f"color: {theme.muted_fg()};")
        self.copy = QPushButton(_("C&opy the student's command"))
        self.copy.clicked.connect(self._copy_command)
        self.qr = a11y.describe(QLabel(), _("QR code of the room"))
        self.qr.setAlignment(Qt.AlignmentFlag.AlignCenter)
        card.addWidget(caption, 0, 0)
        card.addWidget(self.address, 1, 0)
        card.addWidget(self.key_label, 2, 0)
        card.addWidget(self.how, 3, 0)
        card.addWidget(self.copy, 4, 0, Qt.AlignmentFlag.AlignLeft)
        card.addWidget(self.qr, 0, 1, 5, 1)
        card.setColumnStretch(0, 1)
        layout.addWidget(self.card)

        self.activity = a11y.describe(QLabel(), _("Room activity"))
        layout.addWidget(self.activity)
        self.table = a11y.describe(QTableWidget(0, len(ASK_COLUMNS)), _("Questions asked"),
                                   _("What the laptops in the room asked, newest last"))
        self.table.setHorizontalHeaderLabels([_(column) for column in ASK_COLUMNS])
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        for column in range(len(ASK_COLUMNS)):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table, 1)
        self.filler = QWidget()  # takes the table's room while there is none to show
        layout.addWidget(self.filler, 1)

        chain = [self.toggle, self.everyone, self.local_only, self.port, self.key_edit,
                 self.models, self.copy, self.table]  # the reading order
        for first, second in zip(chain, chain[1:], strict=False):
            QWidget.setTabOrder(first, second)

        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)
        self.fill_models()
        self._show(None)

    # ------------------------------------------------------------------- settings

    def fill_models(self) -> None:
        """The ready models on this laptop, each ticked (cheap reads: no hashing)."""
        self.models.clear()
        for entry in ready_local_models():
            item = QListWidgetItem(f"{entry.name}  ({entry.id}, {role_word(entry.role)})")
            item.setData(Qt.ItemDataRole.UserRole, entry)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.models.addItem(item)

    def chosen(self) -> tuple[cat.ModelEntry, ...]:
        items = [self.models.item(row) for row in range(self.models.count())]
        return tuple(item.data(Qt.ItemDataRole.UserRole) for item in items
                     if item.checkState() == Qt.CheckState.Checked)

    def settings(self) -> RoomSettings:
        """What the controls ask for; RoomError (one sentence) for a key too weak."""
        typed = self.key_edit.text().strip()
        return RoomSettings(models=self.chosen(),
                            host="127.0.0.1" if self.local_only.isChecked() else "0.0.0.0",
                            port=self.port.value(), key=check_key(typed) if typed else None)

    # ---------------------------------------------------------------- on and off

    def _toggled(self, on: bool) -> None:
        if on:
            self.start()
        else:
            self.stop()

    def start(self) -> None:
        """Start a room in the background with the settings shown."""
        if self.room is not None:
            return
        try:
            settings = self.settings()
            if not settings.models:
                raise RoomError(_("Tick at least one model to serve."))
        except RoomError as exc:
            self._error(str(exc))
            return
        room = self.room = Room(settings)
        self._show(room.status())
        self._task = run_task(self, lambda task: room.start(), name="room-start",
                              on_success=lambda _none: self._started(room),
                              on_failure=lambda exc: self._start_failed(room, exc))
        self.timer.start()

    def _started(self, room: Room) -> None:
        if room is self.room:
            self.refresh()

    def _start_failed(self, room: Room, exc: BaseException) -> None:
        if room is not self.room:
            return
        self.room = None
        self.timer.stop()
        self._error(str(exc) if isinstance(exc, RoomError) else f"{type(exc).__name__}: {exc}")

    def stop(self) -> None:
        """Stop the room everywhere, in the background."""
        room = self.room
        if room is None:
            return
        self._show(room.status())
        self._task = run_task(self, lambda task: room.stop(), name="room-stop",
                              on_success=lambda _none: self._stopped(room),
                              on_failure=lambda _exc: self._stopped(room))

    def _stopped(self, room: Room) -> None:
        if room is self.room:
            self.room = None
            self.timer.stop()
            self._show(None)

    def shutdown(self) -> threading.Thread | None:
        """The window is closing: stop the room on a thread of its own (the process
        waits for it to finish at exit; the window does not)."""
        self.timer.stop()
        if self._task is not None:
            self._task.detach()
        room, self.room = self.room, None
        if room is None:
            return None
        thread = threading.Thread(target=room.stop, name="room-stop")
        thread.start()
        return thread

    # ------------------------------------------------------------------------ view

    def refresh(self) -> None:
        """Show the room's status now (a pure read of the room)."""
        room = self.room
        if room is not None:
            self._show(room.status())

    def _show(self, status: RoomStatus | None) -> None:
        state = status.state if status is not None else RoomState.STOPPED
        serving = state == RoomState.SERVING
        busy = state in (RoomState.STARTING, RoomState.STOPPING)
        self.toggle.blockSignals(True)
        self.toggle.setChecked(status is not None and state != RoomState.STOPPED)
        self.toggle.blockSignals(False)
        self.toggle.setEnabled(not busy)
        failed = state == RoomState.FAILED
        self.toggle.setText(_("Stop serving") if serving or failed else _("Serve to the room"))
        self.settings_box.setVisible(status is None or state == RoomState.STARTING)
        self.settings_box.setEnabled(status is None)
        self.intro.setVisible(status is None)
        self.card.setVisible(serving)
        self.activity.setVisible(status is not None and not busy)
        self.table.setVisible(status is not None)
        self.filler.setVisible(status is None)
        self._announce_state(state)
        if status is None:
            count = self.models.count()
            self.state_label.setText(ngettext(
                "Not serving. {n} ready model on this laptop can be served.",
                "Not serving. {n} ready models on this laptop can be served.", count).format(n=count)
                if count else _("No model on this laptop is ready to serve; download one first."))
            return
        if failed and status.error:
            self._error(status.error, uncheck=False)  # Stop serving then cleans up
        else:
            words = (_("Starting: loading the models…") if state == RoomState.STARTING
                     else _(ROOM_WORDS[state]).format(models=", ".join(status.models))
                     if state in ROOM_WORDS else status.label)
            self.state_label.setText(words if not status.note else f"{words} {status.note}")
        if serving:
            self._show_address(status)
        self.activity.setText(describe_activity(status))
        if status.asks != self._shown_asks:
            self._shown_asks = status.asks
            self._fill_asks(status.asks)

    def _show_address(self, status: RoomStatus) -> None:
        endpoint = status.endpoints[0]
        self.address.setText(endpoint)
        self.key_label.setText(_("Key  {key}").format(key=status.key) if status.key
                               else _("No key: this computer only"))
        others = ", ".join(status.endpoints[1:])
        files = ""
        if status.files:
            names = ", ".join(dict.fromkeys(f.model_id for f in status.files))
            files = _("Model files to pull from here (models pull ID --from the address): "
                      "{names}, {size}.").format(
                names=names, size=format_bytes(sum(f.size for f in status.files)))
        command = escape.html(self.student_command(status)).replace(" ", "&nbsp;")
        where = (_("In Models → Add server… (or {addresses}), or type:").format(addresses=others)
                 if others else _("In Models → Add server…, or type:"))
        self.how.setText(f"{escape.html(where)}<br><code>{command}</code>"
                         + (f"<br>{escape.html(files)}" if files else ""))
        wanted = link(endpoint, status.key)
        if wanted != self._shown_link:
            self._shown_link = wanted
            pixmap = QPixmap()
            pixmap.loadFromData(qr_png(wanted, scale=5))
            self.qr.setPixmap(pixmap)
            self.qr.setToolTip(wanted)
            self.qr.setAccessibleDescription(
                _("A QR code students scan to join: it holds the address {address} and the "
                  "key {key}.").format(address=endpoint, key=" ".join(status.key))
                if status.key else
                _("A QR code students scan to join: it holds the address {address}.").format(
                    address=endpoint))

    @staticmethod
    def student_command(status: RoomStatus) -> str:
        key = f" --key {status.key}" if status.key else ""
        return f"triptych models add-server {status.endpoints[0]}{key}"

    def _copy_command(self) -> None:
        room = self.room
        if room is not None and room.status().endpoints:
            QGuiApplication.clipboard().setText(self.student_command(room.status()))
            a11y.announce(self.copy, _("The student's command is copied."))

    def _announce_state(self, state: RoomState) -> None:
        """Say politely when the room starts serving or stops (not every refresh)."""
        if state == self._said_state:
            return
        first, self._said_state = self._said_state is None, state
        if first:
            return  # the panel opening says its own status
        if state == RoomState.SERVING:
            a11y.announce(self.state_label, _("The room is serving."))
        elif state in (RoomState.STOPPED, RoomState.FAILED):
            a11y.announce(self.state_label, _("The room has stopped."))

    def _fill_asks(self, asks: tuple[Ask, ...]) -> None:
        self.table.setRowCount(len(asks))
        for row, ask in enumerate(asks):
            label = _(ASK_WORDS[ask.state]) if ask.state in ASK_WORDS else ask.label
            how = (_("{state} in {seconds} s").format(state=label, seconds=number(ask.seconds, 1))
                   if ask.seconds is not None else label)
            cells = (clock(ask.at), ask.client, ask.model, ask.question, how)
            for column, text in enumerate(cells):
                item = QTableWidgetItem(escape.visible_controls(text) if column == 3 else text)
                if column == 4:
                    if ask.why:
                        item.setToolTip(ask.why)
                    color = STATE_COLORS.get(ask.state)
                    if color is not None:
                        item.setForeground(QColor(color()))
                self.table.setItem(row, column, item)

    def _error(self, message: str, uncheck: bool = True) -> None:
        if uncheck:
            self.toggle.blockSignals(True)
            self.toggle.setChecked(False)
            self.toggle.blockSignals(False)
        self.toggle.setEnabled(True)
        theme.rich_text(self.state_label, lambda: (
            f"<span style='color:{theme.fail_color()}'>{escape.html(message)}</span>"))
        a11y.announce(self.state_label, message)


def open_serve_panel(window: QWidget) -> ServePanel:
    """Show the window's serve panel (one per window, kept while the window lives)."""
    panel = window.findChild(ServePanel)
    if panel is None:
        panel = ServePanel(window)
        sizes = [pane.point_size for pane in getattr(window, "panes", []) if pane.point_size]
        if sizes:  # zoom and presentation mode reach the panel too
            theme.apply_point_size(panel, sizes[0])
    elif panel.room is None:
        panel.fill_models()
        panel.refresh()
    panel.show()
    panel.raise_()
    panel.activateWindow()
    return panel


def stop_serving(window: QWidget) -> threading.Thread | None:
    """The window is closing: a room it serves stops everywhere (see ServePanel.shutdown)."""
    panel = window.findChild(ServePanel)
    return panel.shutdown() if panel is not None else None
