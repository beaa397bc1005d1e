"""Will these models fit in memory together? Estimated before a comparison starts.

Each pane's model needs about: its file (weights are mapped into memory) + the KV
cache for the chosen context (f16 keys and values for every layer) + a fixed
overhead for the worker process and llama.cpp's compute buffers. The shape numbers
come from the GGUF header (:mod:`desktop_app.gguf`; no model is loaded) and the
available memory from psutil. No Qt here.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from desktop_app import catalog as cat
from desktop_app.catalog import ModelEntry
from desktop_app.gguf import GGUFError, read_metadata
from desktop_app.text.units import format_bytes

# Per model: the worker process, llama.cpp's compute and output buffers.
OVERHEAD_BYTES = 160 * 1024 * 1024
KV_BYTES_PER_VALUE = 2  # f16 cache
# Without a header to read (model not downloaded), KV bytes per token ≈ file size / this;
# a rough fit over common GQA models (1B Q4 ≈ 32 KiB/token, 7B Q4 ≈ 128 KiB/token).
_KV_GUESS_DIVISOR = 25_000
# Leave this much of the available memory for the app and the system.
HEADROOM = 0.9


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

    @property
    def total(self) -> int:
        return self.file_bytes + self.kv_bytes + self.overhead_bytes


def estimate(entry: ModelEntry, n_ctx: int | None = None, path: Path | None = None) -> Estimate:
    """Estimate the memory ``entry`` needs at context ``n_ctx`` (default: the catalog's).
    A model on a server needs none here."""
    n_ctx = n_ctx or entry.context_length
    if isinstance(entry.source, cat.RemoteSource):
        return Estimate(entry, n_ctx, 0, 0, 0, True)
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
            return Estimate(entry, n_ctx, file_bytes, shape.kv_bytes(n_ctx), OVERHEAD_BYTES, True)
        except (OSError, GGUFError):
            pass
    kv_guess = int(n_ctx * file_bytes / _KV_GUESS_DIVISOR)
    return Estimate(entry, n_ctx, file_bytes, kv_guess, OVERHEAD_BYTES, False)


# ------------------------------------------------------------------ memory


def available_memory() -> int | None:
    """Bytes of RAM available to new processes now (without swapping), or None if the
    OS will not say: psutil's ``available``, which is MemAvailable on Linux and the
    equivalent figure on macOS and Windows."""
    try:
        return int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - never fail a comparison over this
        return None


# -------------------------------------------------------------------- fit check


@dataclass
class Suggestion:
    replace: ModelEntry
    instead: ModelEntry
    estimate: Estimate

    def describe(self) -> str:
        what = "a smaller quantization" if self.instead.family and \
            self.instead.family == self.replace.family else "a smaller model"
        quant = f", {self.instead.quantization}" if self.instead.quantization else ""
        return (f"use {what}, '{self.instead.id}' ({self.instead.name}{quant}, about "
                f"{_amount(self.estimate.total)}), instead of '{self.replace.id}' in the "
                f"{self.replace.role} pane")


@dataclass
class FitReport:
    estimates: list[Estimate]
    available: int | None
    suggestions: list[Suggestion] = field(default_factory=list)

    @property
    def needed(self) -> int:
        return sum(e.total for e in self.estimates)

    @property
    def budget(self) -> int | None:
        return None if self.available is None else int(self.available * HEADROOM)

    @property
    def fits(self) -> bool:
        return self.budget is None or self.needed <= self.budget

    @property
    def warning(self) -> str | None:
        """One paragraph for the user, or None when everything fits (or RAM is unknown)."""
        if self.fits:
            return None
        parts = ", ".join(f"'{e.entry.id}' {_amount(e.total)}" for e in self.estimates)
        text = (
            f"These models need about {_amount(self.needed)} of memory together ({parts}), "
            f"but only {_amount(self.available)} is available, so the computer may slow to a "
            f"crawl or a pane may fail to load."
        )
        if self.suggestions:
            text += " To fit, " + self.suggestions[0].describe()
            if len(self.suggestions) > 1:
                text += "; or " + self.suggestions[1].describe()
            text += "."
        else:
            text += " Choose smaller models, a shorter context, or fewer panes."
        text += " Closing other applications also frees memory."
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "fits": self.fits,
            "needed": self.needed,
            "available": self.available,
            "models": [
                {"id": e.entry.id, "n_ctx": e.n_ctx, "bytes": e.total, "file": e.file_bytes,
                 "kv_cache": e.kv_bytes, "exact": e.exact}
                for e in self.estimates
            ],
            "suggestions": [{"replace": s.replace.id, "instead": s.instead.id} for s in self.suggestions],
            "warning": self.warning,
        }


def _amount(num: int | None) -> str:
    return "an unknown amount" if num is None else format_bytes(num)


def fit_check(
    entries_with_ctx: Sequence[tuple[ModelEntry, int | None]],
    *,
    catalog: cat.Catalog | Iterable[ModelEntry] | None = None,
    available: int | None = None,
) -> FitReport:
    """Estimate each (entry, n_ctx) and, if they do not fit, suggest swaps that would.

    A suggestion replaces one pane's model with a smaller catalog model of the same
    role (same family first, i.e. a smaller quantization; then the largest that fits).
    """
    estimates = [estimate(entry, n_ctx) for entry, n_ctx in entries_with_ctx]
    report = FitReport(estimates, available if available is not None else available_memory())
    if report.fits or report.budget is None:
        return report
    pool = list(catalog) if catalog is not None else list(cat.load_catalog())
    chosen = {e.entry.id for e in estimates}
    budget = report.budget
    for current in sorted(estimates, key=lambda e: e.total, reverse=True):
        others = report.needed - current.total
        options: list[tuple[tuple[int, int], Suggestion]] = []
        for candidate in pool:
            if candidate.role != current.entry.role or candidate.id in chosen:
                continue
            guess = estimate(candidate, current.n_ctx)
            if not guess.exact and current.exact and candidate.family and \
                    candidate.family == current.entry.family:
                # Same architecture: the KV cache does not depend on the quantization.
                guess = Estimate(candidate, current.n_ctx, guess.file_bytes, current.kv_bytes,
                                 guess.overhead_bytes, False)
            if guess.file_bytes <= 0 or guess.total >= current.total or others + guess.total > budget:
                continue
            same_family = bool(candidate.family) and candidate.family == current.entry.family
            options.append(((0 if same_family else 1, -guess.total),
                            Suggestion(current.entry, candidate, guess)))
        options.sort(key=lambda item: item[0])
        report.suggestions.extend(s for _, s in options[:1])
        if len(report.suggestions) >= 2:
            break
    return report


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
    if isinstance(entry.source, cat.RemoteSource):  # the server's own context and batching
        return RolloutPlan(rollouts, wanted, max_tokens)
    n_ctx = entry.context_length
    free = max(1, n_ctx - prompt_tokens_guess(prompt))
    at_once = max(1, min(wanted, free // max(1, max_tokens)))
    room = min(max_tokens, free // at_once)
    message = None
    if room < max_tokens:
        message = (f"The prompt leaves about {free} tokens of the context of '{entry.id}' "
                   f"({n_ctx} tokens): each answer stops after about {room} tokens, not {max_tokens}. "
                   "Lower the answer's maximum, shorten the prompt or raise the context length.")
    elif at_once < wanted:
        message = (f"The context of '{entry.id}' ({n_ctx} tokens) holds {at_once} answer"
                   f"{'s' if at_once != 1 else ''} of up to {max_tokens} tokens beside the "
                   f"prompt, not {wanted}: the {rollouts} rollouts run {at_once} at a time so "
                   "none is cut short (a longer context or a lower maximum runs more at once).")
    return RolloutPlan(rollouts, at_once, room, message)
