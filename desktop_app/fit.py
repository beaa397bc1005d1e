"""Will these models fit in memory together? Estimated before a comparison starts.

Each pane's model needs about: its file (weights are mapped into memory) + the KV
cache for the chosen context (f16 keys and values for every layer) + a fixed
overhead for the worker process and llama.cpp's compute buffers. The shape numbers
come from the GGUF header, read with a small stdlib parser (no model is loaded).
No Qt here, and no psutil: available memory comes from the OS directly.
"""

from __future__ import annotations

import ctypes
import functools
import io
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from desktop_app import catalog as cat
from desktop_app.catalog import ModelEntry

# Per model: the worker process, llama.cpp's compute and output buffers.
OVERHEAD_BYTES = 160 * 1024 * 1024
KV_BYTES_PER_VALUE = 2  # f16 cache
# Without a header to read (model not downloaded), KV bytes per token ≈ file size / this;
# a rough fit over common GQA models (1B Q4 ≈ 32 KiB/token, 7B Q4 ≈ 128 KiB/token).
_KV_GUESS_DIVISOR = 25_000
# Leave this much of the available memory for the app and the system.
HEADROOM = 0.9


class GGUFError(Exception):
    """The file is not a GGUF this reader understands."""


# --------------------------------------------------------------------- GGUF header

_SCALARS = {
    0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?",
    10: "<Q", 11: "<q", 12: "<d",
}
_STRING, _ARRAY = 8, 9
_MAX_STRING = 64 * 1024 * 1024


class _Reader:
    def __init__(self, handle: BinaryIO):
        self.handle = handle

    def read(self, n: int) -> bytes:
        data = self.handle.read(n)
        if len(data) != n:
            raise GGUFError("the file ends inside its header")
        return data

    def unpack(self, fmt: str) -> Any:
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        length = self.unpack("<Q")
        if length > _MAX_STRING:
            raise GGUFError("a header string is impossibly long")
        return self.read(length).decode("utf-8", errors="replace")

    def skip_string(self) -> None:
        length = self.unpack("<Q")
        if length > _MAX_STRING:
            raise GGUFError("a header string is impossibly long")
        self.handle.seek(length, io.SEEK_CUR)

    def value(self, kind: int, keep: bool) -> Any:
        if kind in _SCALARS:
            return self.unpack(_SCALARS[kind])
        if kind == _STRING:
            if keep:
                return self.string()
            self.skip_string()
            return None
        if kind == _ARRAY:
            item_kind = self.unpack("<I")
            count = self.unpack("<Q")
            if item_kind in _SCALARS and not keep:
                self.handle.seek(struct.calcsize(_SCALARS[item_kind]) * count, io.SEEK_CUR)
                return None
            if item_kind in _SCALARS and count <= 4096:
                fmt = _SCALARS[item_kind]
                return list(struct.unpack("<" + fmt[1:] * count, self.read(struct.calcsize(fmt) * count)))
            items = [self.value(item_kind, keep and count <= 4096) for _ in range(count)]
            return items if keep and count <= 4096 else None
        raise GGUFError(f"unknown metadata type {kind}")


def read_gguf_metadata(path: str | Path, keys: Iterable[str] | None = None,
                       enough: Callable[[dict[str, Any], str], bool] | None = None,
                       ) -> dict[str, Any]:
    """The key/value metadata of a GGUF file (large arrays such as the vocabulary skipped).

    ``keys`` limits which values are decoded (others are skipped cheaply). ``enough(found,
    next_key)`` may end the walk early: skipping a 262k-entry vocabulary is pure Python
    work that would hold the GIL for a quarter of a second. Raises :class:`GGUFError` if
    the file is not GGUF v2/v3 or its header is truncated.
    """
    wanted = set(keys) if keys is not None else None
    with open(path, "rb", buffering=1024 * 1024) as handle:
        reader = _Reader(handle)
        if reader.read(4) != b"GGUF":
            raise GGUFError("not a GGUF file (bad magic)")
        version = reader.unpack("<I")
        if version not in (2, 3):
            raise GGUFError(f"unsupported GGUF version {version}")
        tensor_count = reader.unpack("<Q")
        kv_count = reader.unpack("<Q")
        if kv_count > 1_000_000 or tensor_count > 10_000_000:
            raise GGUFError("the header counts are not plausible")
        out: dict[str, Any] = {"GGUF.version": version, "GGUF.tensor_count": tensor_count}
        for _ in range(kv_count):
            key = reader.string()
            if enough is not None and enough(out, key):
                break
            kind = reader.unpack("<I")
            keep = wanted is None or key in wanted or key == "general.architecture"
            value = reader.value(kind, keep)
            if keep and value is not None:
                out[key] = value
        return out


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
    meta = read_gguf_metadata(path, keys=None, enough=_shape_found)
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
    """Estimate the memory ``entry`` needs at context ``n_ctx`` (default: the catalog's)."""
    n_ctx = n_ctx or entry.context_length
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
    """Bytes of RAM available to new processes now, or None if the OS will not say."""
    try:
        if sys.platform.startswith("linux"):
            return _linux_available()
        if sys.platform == "darwin":
            return _macos_available()
        if sys.platform == "win32":
            return _windows_available()
    except Exception:  # noqa: BLE001 - never fail a comparison over this
        return None
    return None


def _linux_available(meminfo: str = "/proc/meminfo") -> int | None:
    values: dict[str, int] = {}
    with open(meminfo, encoding="ascii") as handle:
        for line in handle:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[name] = int(parts[0]) * 1024
    if "MemAvailable" in values:
        return values["MemAvailable"]
    if "MemFree" in values:
        return values["MemFree"] + values.get("Cached", 0) + values.get("Buffers", 0)
    return None


def _macos_available() -> int | None:
    libc = ctypes.CDLL("/usr/lib/libc.dylib")
    size = ctypes.c_uint64(0)
    length = ctypes.c_size_t(ctypes.sizeof(size))
    total = None
    if libc.sysctlbyname(b"hw.memsize", ctypes.byref(size), ctypes.byref(length), None, 0) == 0:
        total = size.value
    try:
        out = subprocess.run(["vm_stat"], capture_output=True, text=True, timeout=2).stdout
    except (OSError, subprocess.SubprocessError):
        return total // 2 if total else None
    page = 4096
    pages = 0
    for line in out.splitlines():
        if "page size of" in line:
            digits = [int(w) for w in line.split() if w.isdigit()]
            page = digits[0] if digits else page
        name, _, value = line.partition(":")
        if name.strip() in ("Pages free", "Pages inactive", "Pages speculative", "Pages purgeable"):
            pages += int(value.strip().rstrip(".") or 0)
    return pages * page if pages else (total // 2 if total else None)


def _windows_available() -> int | None:
    class MEMORYSTATUSEX(ctypes.Structure):
        _fields_ = [
            ("dwLength", ctypes.c_ulong),
            ("dwMemoryLoad", ctypes.c_ulong),
            ("ullTotalPhys", ctypes.c_ulonglong),
            ("ullAvailPhys", ctypes.c_ulonglong),
            ("ullTotalPageFile", ctypes.c_ulonglong),
            ("ullAvailPageFile", ctypes.c_ulonglong),
            ("ullTotalVirtual", ctypes.c_ulonglong),
            ("ullAvailVirtual", ctypes.c_ulonglong),
            ("ullAvailExtendedVirtual", ctypes.c_ulonglong),
        ]

    status = MEMORYSTATUSEX()
    status.dwLength = ctypes.sizeof(MEMORYSTATUSEX)
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):  # type: ignore[attr-defined]
        return None
    return int(status.ullAvailPhys)


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
                f"{_gb(self.estimate.total)}), instead of '{self.replace.id}' in the "
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
        parts = ", ".join(f"'{e.entry.id}' {_gb(e.total)}" for e in self.estimates)
        text = (
            f"These models need about {_gb(self.needed)} of memory together ({parts}), "
            f"but only {_gb(self.available)} is available, so the computer may slow to a "
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


def _gb(num: int | None) -> str:
    if num is None:
        return "an unknown amount"
    return f"{num / 1e9:.1f} GB" if num >= 1e8 else f"{num / 1e6:.0f} MB"


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
