"""Compute devices llama.cpp can run on, and the per-model GPU offload setting.

What the computer has is plain data here (:class:`Device`, :class:`DeviceReport`); asking
ggml for it is the engine's job (:mod:`desktop_app.engine.llama.devices`), in a child
process, because it loads llama.cpp and every GPU driver. No Qt here.

The setting itself is one value: ``None`` (auto: every layer on a GPU when there is one),
``0`` (CPU only) or ``N`` layers; the catalog, the command line and the window all read it
with :func:`parse_gpu_layers`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from desktop_app.models.wording import localize
from desktop_app.text.i18n import N_, _, ngettext
from desktop_app.text.units import format_bytes

GpuLayers = int | None  # None: auto, 0: CPU only, N: that many layers on the GPU
AUTO = "auto"
NO_OFFLOAD = N_("This llama.cpp build runs on the CPU only.")  # shown as _(NO_OFFLOAD)
# Why the probe learnt nothing, as its spawned child writes it (in English: the child sets no
# language); DeviceReport.describe reads it again in the language set (models.wording).
PROBE_FAILED = N_("the device probe failed ({error}).")
NO_GGML = N_("this llama-cpp-python does not expose ggml ({error}).")
PROBE_SENTENCES = (PROBE_FAILED, NO_GGML)


# ------------------------------------------------------------------ the setting


def parse_gpu_layers(value: object) -> GpuLayers:
    """``"auto"`` -> None, ``0`` -> CPU only, ``N`` (a whole number, or its digits) -> N.

    Raises ValueError with the reason as a sentence fragment the caller prefixes with
    where the value came from."""
    number = value
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return None
        number = int(text) if re.fullmatch(r"[+-]?[0-9]+", text) else None
    if isinstance(number, int) and not isinstance(number, bool):
        if number < 0:
            raise ValueError(_("cannot be negative"))
        return number
    raise ValueError(_("must be auto, 0 or a number of layers, not {value}").format(
        value=repr(value)))


def gpu_layers_text(setting: GpuLayers) -> str:
    """The value as written in a catalog or on the command line: ``auto``, ``0``, ``12``."""
    return AUTO if setting is None else str(setting)


def gpu_layers_label(setting: GpuLayers) -> str:
    """The setting in words: ``Auto``, ``CPU only``, ``12 layers``."""
    if setting is None:
        return _("Auto")
    if setting == 0:
        return _("CPU only")
    return ngettext("{count} layer", "{count} layers", setting).format(count=setting)


def offloaded_layers(setting: GpuLayers, n_layers: int | None) -> int | None:
    """How many of ``n_layers`` the setting puts on a GPU, when there is one (None when the
    layer count is unknown and the setting asks for more than none)."""
    if setting == 0:
        return 0
    if n_layers is None:
        return None
    return n_layers if setting is None else min(setting, n_layers)


# ------------------------------------------------------------------ devices


class DeviceKind(StrEnum):
    """ggml's ``enum ggml_backend_dev_type``, in words."""

    CPU = "cpu"
    GPU = "gpu"  # its own memory (a discrete card; Metal on a Mac too, see Device.unified)
    INTEGRATED = "integrated"  # a GPU that uses the computer's RAM
    ACCELERATOR = "accelerator"  # works beside the CPU backend (BLAS, AMX)

    @property
    def label(self) -> str:
        """The kind in English words (an ``N_()`` message: ``_(kind.label)`` where shown)."""
        return DEVICE_KIND_LABELS[self]


DEVICE_KIND_LABELS: dict[DeviceKind, str] = {
    DeviceKind.CPU: N_("CPU"),
    DeviceKind.GPU: N_("GPU"),
    DeviceKind.INTEGRATED: N_("integrated GPU"),
    DeviceKind.ACCELERATOR: N_("accelerator"),
}

@dataclass(frozen=True)
class Device:
    """One device as ggml reports it. ``unified``: its memory is the computer's RAM (an
    integrated GPU, or Apple Silicon, whose Metal device ggml lists as a GPU), so what a
    model puts there is also taken from RAM."""

    name: str
    description: str
    kind: DeviceKind
    free: int
    total: int
    unified: bool = False

    @property
    def is_gpu(self) -> bool:
        return self.kind in (DeviceKind.GPU, DeviceKind.INTEGRATED)

    def describe(self) -> str:
        """``NVIDIA GeForce RTX 4060 (GPU, 7.6 GB free of 8.6 GB)``."""
        kind = (_("unified memory") if self.unified and self.kind == DeviceKind.GPU
                else _(self.kind.label))
        return _("{device} ({kind}, {free} free of {total})").format(
            device=self.description or self.name, kind=kind, free=format_bytes(self.free),
            total=format_bytes(self.total))


@dataclass(frozen=True)
class DeviceReport:
    """What the probe learnt. ``gpu_offload``: this llama.cpp build can put layers on a GPU
    (``llama_supports_gpu_offload``). ``problem``: why there is no information (the probe
    crashed, hung or could not bind ggml), as a sentence; then nothing is known."""

    devices: tuple[Device, ...] = ()
    gpu_offload: bool = False
    problem: str | None = None

    @property
    def gpus(self) -> tuple[Device, ...]:
        """The devices layers are offloaded to (none on a CPU-only build)."""
        if not self.gpu_offload:
            return ()
        return tuple(d for d in self.devices if d.is_gpu)

    def describe(self) -> str:
        if self.problem is not None:
            return _("No GPU information: {problem}").format(problem=localize(self.problem, PROBE_SENTENCES))
        if not self.gpu_offload:
            return _(NO_OFFLOAD)
        return "; ".join(d.describe() for d in self.gpus) or _("No GPU found.")

