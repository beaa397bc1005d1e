"""The class's RLHF votes in the main window's export (File → Export, Markdown, HTML and
JSON): the answers, the votes (``a``, ``b``, ``winner``) and the Bradley–Terry strengths,
after the panes, wherever an RLHF session with votes exists.

The session is the RLHF window's while it is open, else the one it saved
(``rlhf/session.json``). In the blind quiz the texts are masked with the quiz's names and
the answers' models' names, and no model is named (:func:`export_summary`'s ``mask``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtWidgets import QFileDialog, QWidget

from desktop_app.rollouts.rlhf import RlhfSession, export_summary, load_session
from desktop_app.session.quiz import Masker, mask_terms
from desktop_app.text.i18n import _
from desktop_app.ui.rlhf import RlhfWindow


def current_session(window: QWidget) -> RlhfSession | None:
    """The RLHF window's session while one is open (the newest), else the saved one."""
    open_windows = [w for w in window.findChildren(RlhfWindow) if w.isVisible()]
    if open_windows:
        return open_windows[-1].session
    return load_session()


def _masker(window: Any, session: RlhfSession) -> Masker:
    """The quiz's names, and those of the models that wrote the answers (they may be
    other models than the panes')."""
    models = []
    for model_id in {a.model for a in session.answers} | {session.judge_model or ""}:
        if not model_id:
            continue
        entry = next((e for e in window.catalog if e.id == model_id), None)
        models.append((model_id, entry.name, entry.family) if entry is not None
                      else (model_id, model_id, ""))
    quiz = window.quiz_bar.quiz
    terms = set(mask_terms(models)) | set(quiz.terms if quiz is not None else ())
    return Masker(sorted(terms, key=lambda term: (-len(term), term)))


def rlhf_export(window: Any) -> dict[str, Any] | None:
    """The class's votes as the export shows them, or None when no session has votes."""
    session = current_session(window)
    if session is None:
        return None
    blind = window.quiz_bar.active
    return export_summary(session, _masker(window, session).mask if blind else None)


def export_json(window: Any, path: str | Path) -> Path:
    """The comparison as JSON: each pane's data (as the Markdown and HTML are made from)
    and, where the class voted, ``rlhf``; machine-readable, so its keys stay English in
    every language."""
    target = Path(path)
    data = {"panes": window.export_data(), "rlhf": rlhf_export(window)}
    target.write_text(json.dumps(data, ensure_ascii=False, indent=1, default=str),
                      encoding="utf-8")
    return target


def export_json_dialog(window: Any) -> None:
    path, _filter = QFileDialog.getSaveFileName(window, _("Export as JSON"),
                                                "comparison.json", "JSON (*.json)")
    if path:
        window._export_to(path, lambda target: export_json(window, target))
