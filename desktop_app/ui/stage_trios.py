"""Stage trios in the window (issue 28, item 6): the model manager's "Stage trios" row,
offered above the recommendation, and the window's one-line note when its panes mix
families. The trios themselves are catalog data (``models/trios.py``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from desktop_app.models import catalog as cat
from desktop_app.models.trios import MIX_WHY, Trio, load_trios, mix_note, trio_panes
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.text.units import format_bytes
from desktop_app.ui import a11y, theme

TRIOS_TIP = N_("Panes that are stages of one model: its base, then the same weights with "
               "thinking off (the instruct stage) and on; a pair has no base stage. "
               "Downloads what is not here.")


class StageTrioBar(QWidget):
    """ "Stage trios": the catalog's trios in a box, what the chosen one holds, and a
    button; ``chosen`` carries ``[(model id, thinking), ...]`` when it is pressed."""

    chosen = Signal(list)

    def __init__(self, catalog: cat.Catalog, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.box = a11y.describe(QComboBox(), _("Stage trio"), _(TRIOS_TIP))
        self.box.setToolTip(_(TRIOS_TIP))
        self.button = QPushButton(_("&Use these stages"))
        self.button.setToolTip(_(TRIOS_TIP))
        self.button.setAccessibleDescription(_(TRIOS_TIP))
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        theme.style(self.label, lambda: f"color: {theme.muted_fg()};")
        caption = QLabel(_("Stage &trios:"))
        caption.setBuddy(self.box)
        caption.setSizePolicy(QSizePolicy.Policy.Minimum, QSizePolicy.Policy.Preferred)  # never cut
        a11y.describe(self.label, _("What the stage trio holds"))
        layout.addWidget(caption)
        layout.addWidget(self.box)
        layout.addWidget(self.button)
        layout.addWidget(self.label, 1)
        self.catalog = catalog
        self.trios: list[Trio] = []
        self.box.currentIndexChanged.connect(self._describe)
        self.button.clicked.connect(self._pressed)
        self.set_catalog(catalog)

    def set_catalog(self, catalog: cat.Catalog) -> None:
        self.catalog = catalog
        self.trios = load_trios(catalog)
        self.box.blockSignals(True)
        self.box.clear()
        for trio in self.trios:
            self.box.addItem(trio.name, trio.id)
        self.box.blockSignals(False)
        self.setVisible(bool(self.trios))
        self._describe()

    @property
    def trio(self) -> Trio | None:
        index = self.box.currentIndex()
        return self.trios[index] if 0 <= index < len(self.trios) else None

    def _describe(self, _index: int = 0) -> None:
        trio = self.trio
        if trio is None:
            self.label.setText("")
            return
        entries = {pane.model_id: self.catalog.entries[pane.model_id] for pane in trio.panes}
        missing = [e for e in entries.values() if cat.state_of(e) != cat.Availability.READY]
        size = sum(e.size or 0 for e in missing)
        fetch = (ngettext("{n} to download ({size})", "{n} to download ({size})",
                          len(missing)).format(n=len(missing), size=format_bytes(size))
                 if missing else _("all downloaded"))
        stages = [(_("{name}, thinking on") if p.thinking else _("{name}, thinking off")).format(
                  name=entries[p.model_id].name)
                  if entries[p.model_id].role == "reasoning" else entries[p.model_id].name
                  for p in trio.panes]
        note = mix_note(trio_panes(trio, self.catalog))
        self.label.setText(_("{stages}; {fetch}.").format(stages=" → ".join(stages), fetch=fetch)
                           + (f" {note}" if note else ""))

    def _pressed(self) -> None:
        trio = self.trio
        if trio is not None:
            self.chosen.emit([[pane.model_id, pane.thinking] for pane in trio.panes])


class TrioNote(QLabel):
    """The window's one line when its panes mix families (``models.trios.mix_note``);
    hidden when they are one family, and in the blind quiz (it names the families)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.PlainText)
        theme.style(self, lambda: f"color: {theme.muted_fg()};")
        self.setToolTip(_(MIX_WHY))
        a11y.describe(self, _("Model families of the panes"))
        self.hide()

    def follow(self, panes: Sequence[Any], *, blind: bool = False) -> None:
        """Say whether ``panes`` (the window's, with ``entry`` and ``config``) mix families."""
        note = "" if blind else mix_note([(pane.entry, pane.config.thinking)
                                          for pane in panes if pane.entry is not None])
        self.setText(note)
        self.setVisible(bool(note))
