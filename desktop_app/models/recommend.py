""""Recommended for this machine": a base, an instruct and a reasoning model to download,
chosen from the catalog by this computer's measured memory and cores.

A trio qualifies when the three fit together at their own contexts with room to spare
(:func:`desktop_app.models.fit.entry_fit`'s "Fits", not "Tight") and, unless a GPU holds them
all, when the three files together are no more than the cores can decode at a readable
speed while all three panes answer (:data:`CORE_BYTES` per core). Among those, a trio of one
family is preferred (Qwen3 base, Qwen2.5 instruct and Qwen3 thinking are one family line,
"Qwen"), then one the catalog meant for the same size of machine (``ram_class``), then more
models of exactly the same family, then the largest (the most capable that still fits),
then the ones already downloaded. A stage trio of the catalog (``models/trios.py``: one
model's base, thinking-off and thinking-on stages) that qualifies comes before all of these:
its panes differ by training stage alone. No Qt.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from desktop_app.models import catalog as cat
from desktop_app.models import sources
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.fit import COMFORT, HEADROOM, Estimate, FitReport, Machine, estimate
from desktop_app.models.trios import Trio
from desktop_app.text.i18n import _, ngettext
from desktop_app.text.units import format_bytes

# CPU decoding reads every weight once per token. Measured here, 2 cores decode a 253 MB
# model at ~70 tokens/s (~18 GB/s of weights); three panes at once, each wanting ~8
# tokens/s, can so have about this many bytes of model files per core between them.
CORE_BYTES = 1_250_000_000


def lineage(family: str) -> str:
    """The family line a catalog family belongs to: ``Qwen2.5`` and ``Qwen3`` are ``Qwen``,
    ``Gemma 3`` is ``Gemma``, ``gpt-oss`` is ``gpt``."""
    found = re.match(r"[A-Za-z]+", family.strip())
    return found.group(0) if found else ""


@dataclass(frozen=True)
class Recommendation:
    """The trio (base, instruct, reasoning), how they fit together, and on what machine."""

    entries: tuple[ModelEntry, ...]
    report: FitReport
    machine: Machine
    trio: Trio | None = None  # a stage trio of the catalog, when that is what was chosen

    @property
    def ids(self) -> list[str]:
        return [entry.id for entry in self.entries]

    @property
    def panes(self) -> list[tuple[str, bool]]:
        """(model id, thinking) per pane: a stage trio's own, else thinking on."""
        if self.trio is not None:
            return [(pane.model_id, pane.thinking) for pane in self.trio.panes]
        return [(model_id, True) for model_id in self.ids]

    @property
    def family(self) -> str:
        """The family line the three share, or ''."""
        lines = {lineage(entry.family).casefold() for entry in self.entries}
        return lineage(self.entries[0].family) if len(lines) == 1 else ""

    def describe(self) -> str:
        """One sentence: which three, how much memory together, why these."""
        names = (self.trio.name if self.trio is not None
                 else ", ".join(entry.name for entry in self.entries))
        usable = self.report.budget
        together = format_bytes(self.report.needed)
        memory = (_("about {needed} together").format(needed=together) if usable is None else
                  _("about {needed} together of the {usable} usable").format(
                      needed=together, usable=format_bytes(usable)))
        why = (_("the stages of one model") if self.trio is not None
               else _("one family ({family})").format(family=self.family) if self.family
               else _("the largest three that fit together"))
        if self.machine.gpu is None or self.report.gpu_needed <= 0:
            why = ngettext("{why}, {size} of models for {count} core",
                           "{why}, {size} of models for {count} cores",
                           self.machine.cores).format(
                why=why, size=format_bytes(_files(self.report)), count=self.machine.cores)
        # TRANSLATORS: {names}: the three models; {memory}: "about 503 MB together"; {why}:
        # why these three ("one family (Qwen), 1.2 GB of models for 4 cores")
        return _("{names}: {memory}; {why}.").format(names=names, memory=memory, why=why)


def _most_alike(values: list[str]) -> int:
    """How many of the values are the same one (blank values match nothing)."""
    return max((values.count(v) for v in values if v), default=0)


def _files(report: FitReport) -> int:
    return sum(e.file_bytes for e in report.estimates)


def recommend_trio(catalog: Iterable[ModelEntry], machine: Machine,
                   trios: Sequence[Trio] = ()) -> Recommendation | None:
    """The trio for ``machine`` (see the module's docstring), or None when no three local
    models fit; ``trios``: the catalog's stage trios, preferred when one qualifies. Reads
    GGUF headers of downloaded models: call it off the GUI thread."""
    if machine.available is None:
        return None
    catalog = list(catalog)
    staged = _stage_trio(catalog, machine, trios)
    if staged is not None:
        return staged
    gpu = machine.gpu is not None
    by_role: dict[str, list[Estimate]] = {role: [] for role in cat.ROLES}
    here: dict[str, bool] = {}
    for entry in catalog:
        if isinstance(entry.source, sources.RemoteSource):
            continue
        found = estimate(entry, gpu=gpu)
        if found.file_bytes > 0:
            by_role[entry.role].append(found)
            here[entry.id] = cat.is_ready(entry)
    best: tuple[tuple[int, ...], Recommendation] | None = None
    for trio in itertools.product(*(by_role[role] for role in cat.ROLES)):
        report = FitReport(list(trio), machine.available, gpu=machine.gpu)
        if not _comfortable(report, machine):
            continue
        entries = tuple(e.entry for e in trio)
        one_line = len({lineage(e.family).casefold() for e in entries} - {""}) == 1 \
            and all(e.family for e in entries)
        key = (int(one_line), _most_alike([e.ram_class for e in entries]),
               _most_alike([e.family for e in entries]), _files(report),
               sum(here[e.id] for e in entries))
        if best is None or key > best[0]:
            best = (key, Recommendation(entries, report, machine))
    return best[1] if best else None


def _stage_trio(catalog: list[ModelEntry], machine: Machine,
                trios: Sequence[Trio]) -> Recommendation | None:
    """The largest stage trio that qualifies (two panes of one model are two processes, so
    its memory counts twice), then the one already downloaded. Only whole trios: a pair
    (SmolLM3's thinking off and on) lacks the base stage the recommendation promises."""
    by_id = {entry.id: entry for entry in catalog}
    best: tuple[tuple[int, int], Recommendation] | None = None
    for trio in trios:
        if not trio.complete:
            continue
        entries = [by_id.get(model_id) for model_id in trio.model_ids]
        if any(entry is None or isinstance(entry.source, sources.RemoteSource)
               for entry in entries):
            continue
        found = [estimate(entry, gpu=machine.gpu is not None) for entry in entries if entry]
        if any(e.file_bytes <= 0 for e in found):
            continue
        report = FitReport(found, machine.available, gpu=machine.gpu)
        if not _comfortable(report, machine):
            continue
        key = (_files(report), sum(cat.is_ready(e.entry) for e in found))
        if best is None or key > best[0]:
            best = (key, Recommendation(tuple(e.entry for e in found), report, machine, trio))
    return best[1] if best else None


def _comfortable(report: FitReport, machine: Machine) -> bool:
    """Fits with room to spare, and (without a GPU holding them) decodes readably."""
    if not report.fits or report.budget is None or report.needed > COMFORT * report.budget:
        return False
    if machine.gpu is not None and report.gpu_needed > COMFORT * machine.gpu.free * HEADROOM:
        return False
    on_gpu = machine.gpu is not None and all(e.gpu_share >= 1.0 for e in report.estimates)
    return on_gpu or _files(report) <= machine.cores * CORE_BYTES
