"""Stage trios (issue 28, item 6): panes that are stages of one model.

A comparison means most when the panes differ by training stage alone: Qwen3-0.6B-Base,
then Qwen3-0.6B with thinking off (its instruct stage), then the same weights with thinking
on. The catalog names such trios as ``[[trio]]`` tables beside its ``[[model]]`` ones::

    [[trio]]
    id = "qwen3-0.6b-stages"
    name = "Qwen3 0.6B: base, thinking off, thinking on"
    panes = [{ model = "qwen3-0.6b-base" }, { model = "qwen3-0.6b", thinking = false },
             { model = "qwen3-0.6b", thinking = true }]

A trio may name two panes where a model's earlier stage cannot be offered (SmolLM3 3B:
thinking off, thinking on; its base GGUF could not be pinned): :attr:`Trio.complete` says
whether one shows all three stages.

:func:`mix_note` is the one line shown where a trio is chosen when it mixes families (today's
offline starters: a Gemma base beside a SmolLM2 instruct model). No Qt.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from desktop_app import paths
from desktop_app.models.catalog import Catalog, ModelEntry
from desktop_app.text.i18n import N_, _

# Shown as _(MIX_WHY) (the language is set after import).
MIX_WHY = N_("A difference between these panes may be the family's (its data, its size, its "
             "tokenizer), not the training stage's: a stage trio of one model shows the "
             "stages alone.")
# The stages as mix_note writes them after a family's name ("Gemma 3 base").
STAGE_WORDS = {"base": N_("base"), "instruct": N_("instruct"), "reasoning": N_("reasoning")}


@dataclass(frozen=True)
class TrioPane:
    model_id: str
    thinking: bool = True


@dataclass(frozen=True)
class Trio:
    """A named trio of panes, base / instruct / reasoning stages in that order (a pair
    leaves out the stage the catalog cannot offer)."""

    id: str
    name: str
    panes: tuple[TrioPane, ...]

    @property
    def model_ids(self) -> list[str]:
        return [pane.model_id for pane in self.panes]

    @property
    def complete(self) -> bool:
        """Whether the panes are three: base, instruct and reasoning (not a pair)."""
        return len(self.panes) == 3


def stage(entry: ModelEntry, thinking: bool = True) -> str:
    """The stage a pane shows: a reasoning model asked not to think is its instruct stage."""
    return "instruct" if entry.role == "reasoning" and not thinking else entry.role


def _parse(table: object, where: str) -> Trio:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: a trio must be a table.")
    trio_id, name, panes = table.get("id"), table.get("name"), table.get("panes")
    if not isinstance(trio_id, str) or not trio_id:
        raise ValueError(f"{where}: a trio needs an id.")
    if not isinstance(panes, list) or not panes:
        raise ValueError(f"{where}: trio '{trio_id}' needs a list of panes.")
    parsed = []
    for pane in panes:
        if not isinstance(pane, dict) or not isinstance(pane.get("model"), str):
            raise ValueError(f"{where}: each pane of trio '{trio_id}' needs a model id.")
        thinking = pane.get("thinking", True)
        if not isinstance(thinking, bool):
            raise ValueError(f"{where}: thinking in trio '{trio_id}' must be true or false.")
        parsed.append(TrioPane(pane["model"], thinking))
    return Trio(trio_id, name if isinstance(name, str) and name else trio_id, tuple(parsed))


def load_trios(catalog: Catalog, files: Iterable[Path] | None = None,
               problems: list[str] | None = None) -> list[Trio]:
    """The catalog files' trios whose models the catalog has, in file order (a later file
    overrides an id). A bad table becomes a sentence in ``problems`` (when given)."""
    if files is None:
        files = [paths.bundled_catalog_path(), paths.user_catalog_path()]
    found: dict[str, Trio] = {}
    for path in files:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            continue  # the catalog's own loader says so
        tables = data.get("trio", [])
        for index, table in enumerate(tables if isinstance(tables, list) else []):
            try:
                trio = _parse(table, f"{path}: trio number {index + 1}")
            except ValueError as exc:
                if problems is not None:
                    problems.append(str(exc))
                continue
            missing = [mid for mid in trio.model_ids if mid not in catalog]
            if missing and problems is not None:
                problems.append(f"{path}: trio '{trio.id}' names '{missing[0]}', "
                                "which is not in the catalog.")
            if not missing:
                found[trio.id] = trio
    return list(found.values())


def mix_note(panes: Sequence[tuple[ModelEntry, bool]]) -> str:
    """One line when the panes are not one family: ``This trio mixes families (Gemma 3 base,
    SmolLM2 instruct).``; else ''."""
    if len({entry.family.casefold() for entry, _ in panes}) <= 1:
        return ""
    parts = ", ".join(_("{family} {stage}").format(
        family=entry.family, stage=_(STAGE_WORDS[stage(entry, thinking)]))
        for entry, thinking in panes)
    return _("This trio mixes families ({families}).").format(families=parts)


def trio_panes(trio: Trio, catalog: Catalog) -> list[tuple[ModelEntry, bool]]:
    return [(catalog.entries[pane.model_id], pane.thinking) for pane in trio.panes]
