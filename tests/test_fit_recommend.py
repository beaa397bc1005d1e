"""Fit before download (issue 30, item 4): each catalog model's verdict against this
machine's memory beside the panes' models, and the recommended trio. The policy runs on
stated machines (so each verdict's boundary is exact); the measurement on this one."""

from __future__ import annotations

from pathlib import Path

import psutil
import pytest

from desktop_app.engine.cores import physical_cores
from desktop_app.models import catalog as cat
from desktop_app.models import fit, recommend
from desktop_app.models.devices import Device, DeviceKind
from desktop_app.models.fit import FitVerdict, Machine
from desktop_app.text.units import format_bytes
from tests.hub_fixtures import MiB, make_gguf

GB = 10**9


def _entry(model_id: str, path: Path | None, *, role: str, family: str = "Tiny",
           size: int | None = None, context: int = 1024, ram_class: str = "") -> cat.ModelEntry:
    source: dict = {"path": str(path)} if path else {"repo": "acme/x", "filename": f"{model_id}.gguf"}
    if size:
        source["size"] = size
    table = {"id": model_id, "role": role, "family": family, "context_length": context,
             "ram_class": ram_class, "source": source}
    return cat.parse_entry(table, "test", 0)


@pytest.fixture
def trio(tmp_path: Path) -> list[cat.ModelEntry]:
    """Three downloaded models (real GGUF headers: exact KV caches)."""
    return [_entry(f"tiny-{role}", make_gguf(tmp_path / f"{role}.gguf", pad_bytes=4 * MiB,
                                             seed=n), role=role)
            for n, role in enumerate(cat.ROLES)]


def _machine_for(needed: int, share: float, cores: int = 8, gpu=None) -> Machine:
    """A machine where ``needed`` bytes are ``share`` of what models may use."""
    available = int(needed / share / fit.HEADROOM)
    return Machine(available, available * 2, cores, gpu)


def test_verdicts_at_their_boundaries(trio: list[cat.ModelEntry], tmp_path: Path) -> None:
    base, instruct, reasoning = trio
    candidate = _entry("bigger-chat", make_gguf(tmp_path / "big.gguf", pad_bytes=12 * MiB),
                       role="instruct")
    alone = fit.estimate(candidate)
    beside = alone.total + fit.estimate(base).total + fit.estimate(reasoning).total
    # judged in the instruct pane, which it takes over: beside the base and reasoning models
    roomy = fit.entry_fit(candidate, trio, _machine_for(beside, 0.5))
    assert roomy.verdict == FitVerdict.FITS and roomy.together is not None
    assert [e.entry.id for e in roomy.together.estimates] == ["bigger-chat", "tiny-base",
                                                             "tiny-reasoning"]
    assert roomy.together.needed == beside
    assert fit.entry_fit(candidate, trio, _machine_for(beside, 0.9)).verdict == FitVerdict.TIGHT
    crowded = fit.entry_fit(candidate, trio, _machine_for(beside, 1.2))
    assert crowded.verdict == FitVerdict.TIGHT and "not beside the other panes" in crowded.reason
    assert fit.entry_fit(candidate, trio, _machine_for(alone.total, 1.01)).verdict == \
        FitVerdict.TOO_LARGE
    # with no panes it is judged alone
    assert fit.entry_fit(candidate, [], _machine_for(alone.total, 0.7)).verdict == FitVerdict.FITS
    assert FitVerdict.TOO_LARGE.label == "Too large for this machine"
    assert FitVerdict.TOO_LARGE.short == "Too large"


def test_the_tooltip_gives_the_figures(trio: list[cat.ModelEntry]) -> None:
    base, instruct, reasoning = trio
    machine = Machine(20 * GB, 32 * GB, 4)
    verdict = fit.entry_fit(reasoning, trio, machine)
    estimate = fit.estimate(reasoning)
    tip = verdict.tooltip()
    assert tip.startswith("Fits: it fits beside the other panes' models with room to spare.")
    assert f"the file {format_bytes(estimate.file_bytes)}" in tip
    assert f"its KV cache at {reasoning.context_length:,} tokens " \
           f"{format_bytes(estimate.kv_bytes)}" in tip and "not downloaded" not in tip
    assert f"Beside the other panes' models (tiny-base {format_bytes(fit.estimate(base).total)}, " \
           f"tiny-instruct {format_bytes(fit.estimate(instruct).total)}): " in tip
    assert f"of the {format_bytes(int(20 * GB * fit.HEADROOM))} this computer can give " in tip
    assert "This computer: 32 GB of RAM (20 GB available now), 4 cores, no GPU." in tip


def test_not_downloaded_remote_and_unknown(trio: list[cat.ModelEntry]) -> None:
    machine = Machine(8 * GB, 16 * GB, 4)
    listed = _entry("hub-model", None, role="reasoning", size=2 * GB, context=8192)
    verdict = fit.entry_fit(listed, trio, machine)
    assert verdict.verdict == FitVerdict.FITS and verdict.estimate is not None
    assert not verdict.estimate.exact and "estimated from its size" in verdict.tooltip()
    assert fit.entry_fit(_entry("unsized", None, role="base"), trio, machine).verdict == \
        FitVerdict.UNKNOWN
    remote = cat.parse_entry({"id": "served", "role": "instruct", "source": {
        "endpoint": "http://gpu-box:8000/v1", "model": "m"}}, "test", 0)
    assert fit.entry_fit(remote, trio, machine).verdict == FitVerdict.REMOTE
    assert fit.entry_fit(listed, trio, Machine(None, None, 4)).verdict == FitVerdict.UNKNOWN


def test_gpu_memory_counts_where_there_is_a_gpu(trio: list[cat.ModelEntry]) -> None:
    big = _entry("big", None, role="reasoning", size=6 * GB, context=4096)
    card = Device("CUDA0", "RTX 4060", DeviceKind.GPU, 7 * GB, 8 * GB)
    roomy = Machine(16 * GB, 32 * GB, 8, fit.GpuMemory.of([card]))
    verdict = fit.entry_fit(big, trio, roomy)
    assert verdict.verdict == FitVerdict.TIGHT  # ~6.9 GB of a 6.3 GB usable card
    assert "GPU offload" in verdict.reason and "GPU memory:" in verdict.tooltip()
    small_card = Device("CUDA0", "RTX 3050", DeviceKind.GPU, 4 * GB, 4 * GB)
    # too large for RAM alone, but RAM and the card's own memory together hold it
    split = Machine(5 * GB, 8 * GB, 8, fit.GpuMemory.of([small_card]))
    assert fit.entry_fit(big, [], split).verdict == FitVerdict.TIGHT
    assert fit.entry_fit(big, [], Machine(5 * GB, 8 * GB, 8)).verdict == FitVerdict.TOO_LARGE


def test_this_machine_is_measured() -> None:
    machine = Machine.measure((), physical_cores())
    total = psutil.virtual_memory().total
    assert machine.total == total and machine.available is not None
    assert 0 < machine.available <= total and machine.cores == physical_cores()
    assert machine.gpu is None and machine.describe().endswith(f"{machine.cores} core"
                                                               f"{'s' * (machine.cores > 1)}, no GPU")


def test_recommended_trio_follows_memory_and_cores() -> None:
    shipped = cat.load_catalog()
    small = recommend.recommend_trio(shipped, Machine(4 * GB, 4 * GB, 2))
    assert small is not None
    assert small.ids == ["qwen3-0.6b-base", "qwen2.5-0.5b-instruct", "qwen3-0.6b"]
    assert small.family == "Qwen" and "one family (Qwen)" in small.describe()
    assert small.report.needed <= fit.COMFORT * small.report.budget
    # more cores, same memory: a bigger reasoning model decodes fast enough
    wider = recommend.recommend_trio(shipped, Machine(8 * GB, 8 * GB, 4))
    assert wider is not None and wider.ids[:2] == small.ids[:2] and wider.ids[2] == "qwen3-1.7b"
    big = recommend.recommend_trio(shipped, Machine(32 * GB, 32 * GB, 8))
    assert big is not None and big.ids == ["qwen3-4b-base", "qwen2.5-7b-instruct", "qwen3-4b"]
    # the same 32 GB with 2 cores: too slow for the 16 GB trio on the CPU …
    slow = recommend.recommend_trio(shipped, Machine(32 * GB, 32 * GB, 2))
    assert slow is not None and sum(e.size or 0 for e in slow.entries) <= \
        2 * recommend.CORE_BYTES
    # … unless a GPU holds all three
    card = Device("CUDA0", "RTX 4090", DeviceKind.GPU, 24 * GB, 24 * GB)
    on_gpu = recommend.recommend_trio(shipped, Machine(32 * GB, 32 * GB, 2,
                                                       fit.GpuMemory.of([card])))
    assert on_gpu is not None and on_gpu.ids == big.ids
    assert recommend.recommend_trio(shipped, Machine(GB, GB, 2)) is None


def test_one_family_is_preferred_to_a_larger_mix() -> None:
    def hub(model_id: str, role: str, family: str, size: float) -> cat.ModelEntry:
        return _entry(model_id, None, role=role, family=family, size=int(size * GB))

    catalog = [hub("a-base", "base", "Alpha 2", 1), hub("a-chat", "instruct", "Alpha 3", 1),
               hub("a-think", "reasoning", "Alpha 3", 1),
               hub("b-base", "base", "Beta", 2), hub("b-chat", "instruct", "Beta", 2),
               hub("c-think", "reasoning", "Gamma", 2)]
    chosen = recommend.recommend_trio(catalog, Machine(32 * GB, 32 * GB, 16))
    assert chosen is not None and chosen.ids == ["a-base", "a-chat", "a-think"]
    assert chosen.family == "Alpha"
    # no one-family trio: the largest three that fit
    mixed = recommend.recommend_trio(catalog[3:] + [hub("d-base", "base", "Delta", 0.5)],
                                     Machine(32 * GB, 32 * GB, 16))
    assert mixed is not None and mixed.ids == ["b-base", "b-chat", "c-think"]
    assert mixed.family == "" and "the largest three that fit together" in mixed.describe()
    assert recommend.lineage("Qwen2 (R1 distill)") == recommend.lineage("Qwen3") == "Qwen"
