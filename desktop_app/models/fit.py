"""Will these models fit in memory together? Estimated before a comparison starts.

Each pane's model needs about: its file (weights are mapped into memory) + the KV
cache for the chosen context (f16 keys and values for every layer) + a fixed
overhead for the worker process and llama.cpp's compute buffers. The shape numbers
come from the GGUF header (:mod:`desktop_app.models.gguf`; no model is loaded) and the
available memory from psutil. No Qt here.

With a GPU (:mod:`desktop_app.models.devices`), the layers a model's ``gpu_layers`` setting
offloads take their share of its weights and KV cache, plus GPU compute buffers, out of
GPU memory and the rest out of RAM. A GPU that shares the computer's RAM (an integrated
GPU, Apple Silicon) takes all of it out of RAM too, and its own share must also fit what
the driver lets the GPU use. Without a GPU everything is in RAM, as before.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import psutil

from desktop_app.models import catalog as cat
from desktop_app.models import sources
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.devices import Device, DeviceKind, offloaded_layers
from desktop_app.models.gguf import GGUFError, read_metadata
from desktop_app.text.i18n import N_, _, ngettext, whole
from desktop_app.text.units import format_bytes

# Per model: the worker process, llama.cpp's compute and output buffers.
OVERHEAD_BYTES = 160 * 1024 * 1024
KV_BYTES_PER_VALUE = 2  # f16 cache
# Without a header to read (model not downloaded), KV bytes per token ≈ file size / this;
# a rough fit over common GQA models (1B Q4 ≈ 32 KiB/token, 7B Q4 ≈ 128 KiB/token).
_KV_GUESS_DIVISOR = 25_000
# Leave this much of the available memory for the app and the system.
HEADROOM = 0.9
# Per model with layers on a GPU: its compute buffers and the driver's context there.
GPU_OVERHEAD_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class ModelShape:
    """What the KV cache size depends on."""

    architecture: str
    n_layers: int
    n_embd: int
    n_head: int
    n_head_kv: int
    key_length: int
    value_length: int
    context_length: int | None = None

    def kv_bytes(self, n_ctx: int) -> int:
        return (self.n_layers * n_ctx * self.n_head_kv
                * (self.key_length + self.value_length) * KV_BYTES_PER_VALUE)


def _as_int(value: Any) -> int | None:
    if isinstance(value, list):  # per-layer values (some architectures): take the largest
        value = max((v for v in value if isinstance(v, int | float)), default=None)
    if isinstance(value, bool) or value is None:
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


_SHAPE_KEYS = ("block_count", "embedding_length", "attention.head_count")


def _shape_found(found: dict[str, Any], next_key: str) -> bool:
    """Stop at the tokenizer section once the architecture's sizes have been read."""
    arch = found.get("general.architecture")
    return (next_key.startswith("tokenizer.") and isinstance(arch, str)
            and all(f"{arch}.{name}" in found for name in _SHAPE_KEYS))


def read_shape(path: str | Path) -> ModelShape:
    """The model's shape from its GGUF header (cached per file, size and mtime)."""
    stat = Path(path).stat()
    return _read_shape_cached(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=64)
def _read_shape_cached(path: str, size: int, mtime_ns: int) -> ModelShape:
    meta = read_metadata(path, keys=None, enough=_shape_found)
    arch = meta.get("general.architecture")
    if not isinstance(arch, str):
        raise GGUFError("the header has no general.architecture")

    def get(name: str) -> int | None:
        return _as_int(meta.get(f"{arch}.{name}"))

    n_layers = get("block_count")
    n_embd = get("embedding_length")
    n_head = get("attention.head_count")
    if not n_layers or not n_embd or not n_head:
        raise GGUFError(f"the header lacks the {arch} block count, embedding length or head count")
    n_head_kv = get("attention.head_count_kv") or n_head
    head_dim = n_embd // n_head
    return ModelShape(
        architecture=arch,
        n_layers=n_layers,
        n_embd=n_embd,
        n_head=n_head,
        n_head_kv=n_head_kv,
        key_length=get("attention.key_length") or head_dim,
        value_length=get("attention.value_length") or head_dim,
        context_length=get("context_length"),
    )


# ------------------------------------------------------------------- estimates


@dataclass(frozen=True)
class Estimate:
    """Memory one pane's model needs, and how that was worked out."""

    entry: ModelEntry
    n_ctx: int
    file_bytes: int
    kv_bytes: int
    overhead_bytes: int
    exact: bool  # True when read from the downloaded file's header
    n_layers: int | None = None  # from the header; None when not downloaded
    gpu_layers: int | None = 0  # layers on a GPU; None: all of an unknown number

    @property
    def gpu_share(self) -> float:
        """The part of the weights and KV cache that lives on the GPU."""
        if self.gpu_layers == 0:
            return 0.0
        if self.gpu_layers is None or not self.n_layers:
            return 1.0
        return min(1.0, self.gpu_layers / self.n_layers)

    @property
    def total(self) -> int:
        gpu_overhead = GPU_OVERHEAD_BYTES if self.gpu_share else 0
        return self.file_bytes + self.kv_bytes + self.overhead_bytes + gpu_overhead

    @property
    def gpu_bytes(self) -> int:
        """What the offloaded layers need in GPU memory (0 on the CPU)."""
        if not self.gpu_share:
            return 0
        return round((self.file_bytes + self.kv_bytes) * self.gpu_share) + GPU_OVERHEAD_BYTES

    @property
    def ram_bytes(self) -> int:
        """What stays in RAM when the GPU has memory of its own."""
        return self.total - self.gpu_bytes


def estimate(entry: ModelEntry, n_ctx: int | None = None, path: Path | None = None, *,
             gpu: bool = False) -> Estimate:
    """Estimate the memory ``entry`` needs at context ``n_ctx`` (default: the catalog's),
    with its ``gpu_layers`` setting when ``gpu`` (there is a GPU to offload to). A model on
    a server needs none here."""
    n_ctx = n_ctx or entry.context_length
    if isinstance(entry.source, sources.RemoteSource):
        return Estimate(entry, n_ctx, 0, 0, 0, True)

    def placed(found: Estimate) -> Estimate:
        layers = offloaded_layers(entry.gpu_layers, found.n_layers) if gpu else 0
        return replace(found, gpu_layers=layers)

    if path is None:
        try:
            path = cat.local_path(entry)
        except Exception:  # noqa: BLE001 - a broken cache just means "no header"
            path = None
    file_bytes = entry.size or 0
    if path is not None:
        try:
            file_bytes = path.stat().st_size
            shape = read_shape(path)
            return placed(Estimate(entry, n_ctx, file_bytes, shape.kv_bytes(n_ctx),
                                   OVERHEAD_BYTES, True, shape.n_layers))
        except (OSError, GGUFError):
            pass
    kv_guess = int(n_ctx * file_bytes / _KV_GUESS_DIVISOR)
    return placed(Estimate(entry, n_ctx, file_bytes, kv_guess, OVERHEAD_BYTES, False))


# ------------------------------------------------------------------ memory


def available_memory() -> int | None:
    """Bytes of RAM available to new processes now (without swapping), or None if the
    OS will not say: psutil's ``available``, which is MemAvailable on Linux and the
    equivalent figure on macOS and Windows."""
    try:
        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - never fail a comparison over this
        return None


@dataclass(frozen=True)
class GpuMemory:
    """The GPU memory models are offloaded to: llama.cpp spreads the layers over every
    discrete GPU, or, when there is none, over the integrated ones."""

    name: str
    free: int
    unified: bool  # the computer's RAM (integrated GPU, Apple Silicon)

    @classmethod
    def of(cls, devices: Sequence[Device]) -> GpuMemory | None:
        gpus = ([d for d in devices if d.kind == DeviceKind.GPU]
                or [d for d in devices if d.kind == DeviceKind.INTEGRATED])
        if not gpus:
            return None
        name = (gpus[0].description or gpus[0].name) if len(gpus) == 1 else f"{len(gpus)} GPUs"
        return cls(name, sum(d.free for d in gpus), all(d.unified for d in gpus))


# -------------------------------------------------------------------- fit check


@dataclass
class Suggestion:
    replace: ModelEntry
    instead: ModelEntry
    estimate: Estimate

    def describe(self) -> str:
        quant = f", {self.instead.quantization}" if self.instead.quantization else ""
        figures = {"model": self.instead.id, "name": f"{self.instead.name}{quant}",
                   "size": _amount(self.estimate.total), "current": self.replace.id,
                   "role": self.replace.role}
        if self.instead.family and self.instead.family == self.replace.family:
            return _("use a smaller quantization, '{model}' ({name}, about {size}), instead "
                     "of '{current}' in the {role} pane").format(**figures)
        return _("use a smaller model, '{model}' ({name}, about {size}), instead of "
                 "'{current}' in the {role} pane").format(**figures)


@dataclass
class FitReport:
    """``available``: RAM; ``gpu``: the GPU memory layers go to (None: no GPU, all in RAM)."""

    estimates: list[Estimate]
    available: int | None
    suggestions: list[Suggestion] = field(default_factory=list)
    gpu: GpuMemory | None = None

    def _in_ram(self, e: Estimate) -> int:
        return e.total if self.gpu is None or self.gpu.unified else e.ram_bytes

    @property
    def needed(self) -> int:
        """RAM needed (on a unified-memory machine, the GPU's share included)."""
        return sum(self._in_ram(e) for e in self.estimates)

    @property
    def gpu_needed(self) -> int:
        return sum(e.gpu_bytes for e in self.estimates)

    @property
    def budget(self) -> int | None:
        return None if self.available is None else int(self.available * HEADROOM)

    @property
    def ram_fits(self) -> bool:
        return self.budget is None or self.needed <= self.budget

    @property
    def gpu_fits(self) -> bool:
        return self.gpu is None or self.gpu_needed <= int(self.gpu.free * HEADROOM)

    @property
    def fits(self) -> bool:
        return self.ram_fits and self.gpu_fits

    @property
    def warning(self) -> str | None:
        """One paragraph for the user naming the memory that is short, or None when
        everything fits (or RAM is unknown)."""
        if self.fits:
            return None
        sentences = []
        if not self.ram_fits:
            parts = ", ".join(f"'{e.entry.id}' {_amount(self._in_ram(e))}" for e in self.estimates)
            sentences.append(
                _("These models need about {needed} of memory together ({parts}), but only "
                  "{available} is available, so the computer may slow to a crawl or a pane "
                  "may fail to load.").format(needed=_amount(self.needed), parts=parts,
                                              available=_amount(self.available)))
        if not self.gpu_fits and self.gpu is not None:
            parts = ", ".join(f"'{e.entry.id}' {_amount(e.gpu_bytes)}" for e in self.estimates
                              if e.gpu_bytes)
            gpu_short = (_("They need about {needed} of GPU memory ({parts}), but only {free} "
                           "of it is free on {gpu}, so a pane may fail to load.") if sentences
                         else _("These models need about {needed} of GPU memory ({parts}), but "
                                "only {free} of it is free on {gpu}, so a pane may fail to "
                                "load."))
            sentences.append(gpu_short.format(needed=_amount(self.gpu_needed), parts=parts,
                                              free=_amount(self.gpu.free), gpu=self.gpu.name))
        text = " ".join(sentences)
        if len(self.suggestions) > 1:
            text += " " + _("To fit, {first}; or {second}.").format(
                first=self.suggestions[0].describe(), second=self.suggestions[1].describe())
        elif self.suggestions:
            text += " " + _("To fit, {first}.").format(first=self.suggestions[0].describe())
        else:
            text += " " + _("Choose smaller models, a shorter context, or fewer panes.")
        if not self.gpu_fits:
            text += " " + _("Or put fewer layers on the GPU (GPU offload, in a pane's settings).")
        text += " " + _("Closing other applications also frees memory.")
        return text

    def to_dict(self) -> dict[str, Any]:
        gpu = self.gpu
        return {
            "fits": self.fits,
            "needed": self.needed,
            "available": self.available,
            "gpu": None if gpu is None else {"name": gpu.name, "free": gpu.free,
                                             "unified": gpu.unified, "needed": self.gpu_needed},
            "models": [
                {"id": e.entry.id, "n_ctx": e.n_ctx, "bytes": e.total, "file": e.file_bytes,
                 "kv_cache": e.kv_bytes, "exact": e.exact, "gpu_layers": e.gpu_layers,
                 "gpu_bytes": e.gpu_bytes}
                for e in self.estimates
            ],
            "suggestions": [{"replace": s.replace.id, "instead": s.instead.id} for s in self.suggestions],
            "warning": self.warning,
        }


def _amount(num: int | None) -> str:
    return _("an unknown amount") if num is None else format_bytes(num)


def fit_check(
    entries_with_ctx: Sequence[tuple[ModelEntry, int | None]],
    *,
    catalog: cat.Catalog | Iterable[ModelEntry] | None = None,
    available: int | None = None,
    devices: Sequence[Device],
) -> FitReport:
    """Estimate each (entry, n_ctx) and, if they do not fit, suggest swaps that would.

    ``devices``: the computer's GPUs (:func:`desktop_app.engine.llama.devices.probe`, or ``()``
    for none; a remote model needs none). A suggestion replaces one pane's
    model with a smaller catalog model of the same role (same family first, i.e. a smaller
    quantization; then the largest that fits).
    """
    gpu = GpuMemory.of(devices)
    estimates = [estimate(entry, n_ctx, gpu=gpu is not None) for entry, n_ctx in entries_with_ctx]
    report = FitReport(estimates, available if available is not None else available_memory(),
                       gpu=gpu)
    if report.fits or (report.budget is None and gpu is None):
        return report
    pool = list(catalog) if catalog is not None else list(cat.load_catalog())
    chosen = {e.entry.id for e in estimates}
    for current in sorted(estimates, key=lambda e: e.total, reverse=True):
        others = [e for e in estimates if e is not current]
        options: list[tuple[tuple[int, int], Suggestion]] = []
        for candidate in pool:
            if candidate.role != current.entry.role or candidate.id in chosen:
                continue
            guess = estimate(candidate, current.n_ctx, gpu=gpu is not None)
            if not guess.exact and current.exact and candidate.family and \
                    candidate.family == current.entry.family:
                # Same architecture: the KV cache and layer count do not depend on the quantization.
                layers = offloaded_layers(candidate.gpu_layers, current.n_layers) if gpu else 0
                guess = replace(guess, kv_bytes=current.kv_bytes, n_layers=current.n_layers,
                                gpu_layers=layers)
            swapped = FitReport([*others, guess], report.available, gpu=gpu)
            if guess.file_bytes <= 0 or guess.total >= current.total or not swapped.fits:
                continue
            same_family = bool(candidate.family) and candidate.family == current.entry.family
            options.append(((0 if same_family else 1, -guess.total),
                            Suggestion(current.entry, candidate, guess)))
        options.sort(key=lambda item: item[0])
        report.suggestions.extend(s for _, s in options[:1])
        if len(report.suggestions) >= 2:
            break
    return report


# ------------------------------------------------------------ before a download

# Below this share of what can be given to models, a comparison fits with room to spare;
# above it, it still fits but the computer has little left ("Tight").
COMFORT = 0.75


@dataclass(frozen=True)
class Machine:
    """What this computer has for models, measured: RAM available now (and in all), the
    GPU memory layers go to (None: no GPU offload), and physical cores."""

    available: int | None
    total: int | None
    cores: int
    gpu: GpuMemory | None = None

    @classmethod
    def measure(cls, devices: Sequence[Device], cores: int) -> Machine:
        """``devices``: the GPUs the device probe found (``()`` on a CPU-only build);
        ``cores``: the engine's physical core count."""
        try:
            total: int | None = int(psutil.virtual_memory().total)
        except Exception:  # noqa: BLE001 - an OS that will not say: unknown, never a crash
            total = None
        return cls(available_memory(), total, max(1, cores), GpuMemory.of(devices))

    def describe(self) -> str:
        """``23 GB of RAM (14 GB available now), 2 cores, no GPU``."""
        ram = (_("{total} of RAM ({available} available now)").format(
            total=_amount(self.total), available=_amount(self.available)) if self.total
            else _("{available} of RAM available").format(available=_amount(self.available)))
        if self.gpu is None:
            gpu = _("no GPU")
        elif self.gpu.unified:
            gpu = _("{gpu} with {free} free (shared with the RAM)").format(
                gpu=self.gpu.name, free=format_bytes(self.gpu.free))
        else:
            gpu = _("{gpu} with {free} free").format(gpu=self.gpu.name,
                                                    free=format_bytes(self.gpu.free))
        cores = ngettext("{n} core", "{n} cores", self.cores).format(n=self.cores)
        return f"{ram}, {cores}, {gpu}"


class FitVerdict(StrEnum):
    """Whether a catalog model fits this computer, before it is downloaded."""

    FITS = "fits"
    TIGHT = "tight"
    TOO_LARGE = "too-large"
    UNKNOWN = "unknown"
    REMOTE = "remote"

    @property
    def label(self) -> str:
        """The verdict in words: ``Too large for this machine``."""
        return _(FIT_LABELS[self][0])

    @property
    def short(self) -> str:
        """Its form for a narrow column (the whole label leads the cell's tooltip)."""
        return _(FIT_LABELS[self][1])


FIT_LABELS: dict[FitVerdict, tuple[str, str]] = {  # (label, short form)
    FitVerdict.FITS: (N_("Fits"), N_("Fits")),
    FitVerdict.TIGHT: (N_("Tight"), N_("Tight")),
    FitVerdict.TOO_LARGE: (N_("Too large for this machine"), N_("Too large")),
    FitVerdict.UNKNOWN: (N_("Size unknown"), "?"),
    FitVerdict.REMOTE: (N_("On a server"), N_("Server")),
}


@dataclass(frozen=True)
class EntryFit:
    """One model's verdict, the estimate behind it, the comparison it was judged in (this
    model in its role's pane beside the other panes' models) and why, in a sentence."""

    verdict: FitVerdict
    reason: str
    estimate: Estimate | None = None
    together: FitReport | None = None
    machine: Machine | None = None

    def tooltip(self) -> str:
        """The figures: the model, the comparison, the machine."""
        lines = [_("{verdict}: {reason}").format(verdict=self.verdict.label, reason=self.reason)]
        e, report, machine = self.estimate, self.together, self.machine
        if e is not None and e.file_bytes:
            figures = {"name": e.entry.name, "total": _amount(e.total),
                       "file": _amount(e.file_bytes), "tokens": whole(e.n_ctx),
                       "kv": _amount(e.kv_bytes), "process": _amount(e.overhead_bytes)}
            lines.append((_("{name}: about {total}: the file {file}, its KV cache at {tokens} "
                            "tokens {kv}, {process} for its process.") if e.exact
                          else _("{name}: about {total} (estimated from its size: not "
                                 "downloaded yet): the file {file}, its KV cache at {tokens} "
                                 "tokens {kv}, {process} for its process.")).format(**figures))
        if report is not None and machine is not None:
            others = [o for o in report.estimates if o is not e]
            where = (_("Beside the other panes' models ({models})").format(models=", ".join(
                f"{o.entry.id} {_amount(o.total)}" for o in others)) if others
                else _("Alone"))
            usable = (_("{needed} of the {budget} this computer can give models ({share}% of "
                        "the RAM available now)").format(
                needed=_amount(report.needed), budget=_amount(report.budget),
                share=round(HEADROOM * 100)) if report.budget is not None
                else _("{needed} of an unknown amount of RAM").format(
                    needed=_amount(report.needed)))
            lines.append(f"{where}: {usable}.")
            if machine.gpu is not None:
                lines.append(_("GPU memory: {needed} of {usable} usable on {gpu}.").format(
                    needed=_amount(report.gpu_needed),
                    usable=_amount(int(machine.gpu.free * HEADROOM)), gpu=machine.gpu.name))
            lines.append(_("This computer: {machine}.").format(machine=machine.describe()))
        return "\n".join(lines)


def entry_fit(entry: ModelEntry, panes: Sequence[ModelEntry], machine: Machine) -> EntryFit:
    """Whether ``entry`` fits ``machine`` in the window's comparison: in the first pane of
    its role (or an added one) beside the other ``panes``' models, each at its own context.

    Too large: it cannot be held even alone (RAM, plus the GPU's own memory). Tight: it
    fits alone but not beside the others, or not on the GPU whole, or only with less than a
    quarter of the room to spare. Reads GGUF headers of downloaded models: call it off the
    GUI thread."""
    if isinstance(entry.source, sources.RemoteSource):
        return EntryFit(FitVerdict.REMOTE, _("its server holds it; it needs no memory here."))
    gpu = machine.gpu is not None
    alone = estimate(entry, gpu=gpu)
    if alone.file_bytes <= 0:
        return EntryFit(FitVerdict.UNKNOWN, _("the catalog does not give its size."), alone)
    if machine.available is None:
        return EntryFit(FitVerdict.UNKNOWN, _("this computer does not say how much memory "
                                              "is available."), alone, machine=machine)
    replaced = next((p for p in panes if p.role == entry.role), None)
    others = [estimate(p, gpu=gpu) for p in panes if p is not replaced and p.id != entry.id]
    together = FitReport([alone, *others], machine.available, gpu=machine.gpu)
    solo = FitReport([alone], machine.available, gpu=machine.gpu)
    budget = together.budget or 0
    room = budget + (0 if machine.gpu is None or machine.gpu.unified
                     else int(machine.gpu.free * HEADROOM))

    def result(verdict: FitVerdict, reason: str) -> EntryFit:
        return EntryFit(verdict, reason, alone, together, machine)

    if alone.total > room:
        return result(FitVerdict.TOO_LARGE, _("it needs more memory than this computer has "
                                              "available, even alone."))
    if not solo.fits:
        return result(FitVerdict.TIGHT, _("it fits only with some of its layers off the GPU "
                                          "(GPU offload, in a pane's settings)."))
    if not together.fits:
        return result(FitVerdict.TIGHT, _("it fits alone, but not beside the other panes' "
                                          "models: close a pane or choose smaller models "
                                          "beside it."))
    gpu_budget = int(machine.gpu.free * HEADROOM) if machine.gpu else 0
    if together.needed > COMFORT * budget or (gpu and together.gpu_needed > COMFORT * gpu_budget):
        return result(FitVerdict.TIGHT, _("it fits beside the other panes' models, with "
                                          "little memory to spare."))
    return result(FitVerdict.FITS, _("it fits beside the other panes' models with room to "
                                     "spare."))


# ------------------------------------------------------------------ rollouts

# The parent process has no tokenizer: a prompt's tokens are guessed generously (English
# runs about 4 bytes a token) plus a chat template's role markers and system text.
PROMPT_BYTES_PER_TOKEN = 3
TEMPLATE_TOKENS = 64


def prompt_tokens_guess(prompt: str) -> int:
    """About how many tokens ``prompt`` takes once templated (rather more than fewer)."""
    return len(prompt.encode("utf-8")) // PROMPT_BYTES_PER_TOKEN + TEMPLATE_TOKENS


@dataclass(frozen=True)
class RolloutPlan:
    """How N rollouts of one prompt share a model's context.

    The engine samples up to ``most_at_once`` sequences in one context whose KV cache is
    unified: the memory is that of the context whatever N is (the fit check above counts
    it), but the sequences split its cells, each getting (context − prompt) / N tokens. So
    N answers of ``max_tokens`` fit together only if N × max_tokens fits beside the prompt;
    otherwise fewer run at once (``at_once``), each with its full ``max_tokens``."""

    rollouts: int
    at_once: int
    room: int  # tokens each answer has
    message: str | None = None


def plan_rollouts(entry: ModelEntry, prompt: str, max_tokens: int, rollouts: int,
                  most_at_once: int) -> RolloutPlan:
    """How many of ``rollouts`` to sample at once so none is cut short by the context."""
    wanted = max(1, min(rollouts, most_at_once))
    if isinstance(entry.source, sources.RemoteSource):  # the server's own context and batching
        return RolloutPlan(rollouts, wanted, max_tokens)
    n_ctx = entry.context_length
    free = max(1, n_ctx - prompt_tokens_guess(prompt))
    at_once = max(1, min(wanted, free // max(1, max_tokens)))
    room = min(max_tokens, free // at_once)
    message = None
    if room < max_tokens:
        message = _("The prompt leaves about {free} tokens of the context of '{model}' ({n_ctx} "
                    "tokens): each answer stops after about {room} tokens, not {most}. Lower "
                    "the answer's maximum, shorten the prompt or raise the context length.").format(
            free=free, model=entry.id, n_ctx=n_ctx, room=room, most=max_tokens)
    elif at_once < wanted:
        message = ngettext(
            "The context of '{model}' ({n_ctx} tokens) holds {n} answer of up to {most} tokens "
            "beside the prompt, not {wanted}: the {rollouts} rollouts run {n} at a time so none "
            "is cut short (a longer context or a lower maximum runs more at once).",
            "The context of '{model}' ({n_ctx} tokens) holds {n} answers of up to {most} tokens "
            "beside the prompt, not {wanted}: the {rollouts} rollouts run {n} at a time so none "
            "is cut short (a longer context or a lower maximum runs more at once).",
            at_once).format(model=entry.id, n_ctx=n_ctx, n=at_once, most=max_tokens,
                            wanted=wanted, rollouts=rollouts)
    return RolloutPlan(rollouts, at_once, room, message)
