"""Compute devices llama.cpp can run on, and the per-model GPU offload setting.

What ggml's backend registry lists (``ggml_backend_dev_count`` / ``_get`` / ``_type`` /
``_name`` / ``_description`` / ``_memory``) is read through ctypes on the libggml that
llama-cpp-python loads, in a short child process with a timeout: a GPU driver can hang
or crash while it initialises, and the app must not (nor may the window process import
llama.cpp). The answer is cached for the session. No Qt here.

The setting itself is one value: ``None`` (auto: every layer on a GPU when there is one),
``0`` (CPU only) or ``N`` layers; the catalog, the command line and the window all read it
with :func:`parse_gpu_layers`.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import re
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desktop_app.text.units import format_bytes

GpuLayers = int | None  # None: auto, 0: CPU only, N: that many layers on the GPU
AUTO = "auto"
PROBE_TIMEOUT_S = 20.0  # a first CUDA initialisation can take several seconds
NO_OFFLOAD = "This llama.cpp build runs on the CPU only."


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
            raise ValueError("cannot be negative")
        return number
    raise ValueError(f"must be auto, 0 or a number of layers, not {value!r}")


def gpu_layers_text(setting: GpuLayers) -> str:
    """The value as written in a catalog or on the command line: ``auto``, ``0``, ``12``."""
    return AUTO if setting is None else str(setting)


def gpu_layers_label(setting: GpuLayers) -> str:
    """The setting in words: ``Auto``, ``CPU only``, ``12 layers``."""
    if setting is None:
        return "Auto"
    if setting == 0:
        return "CPU only"
    return f"{setting} layer{'s' if setting != 1 else ''}"


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
        return DEVICE_KIND_LABELS[self]


DEVICE_KIND_LABELS: dict[DeviceKind, str] = {
    DeviceKind.CPU: "CPU",
    DeviceKind.GPU: "GPU",
    DeviceKind.INTEGRATED: "integrated GPU",
    DeviceKind.ACCELERATOR: "accelerator",
}

# The values of enum ggml_backend_dev_type in ggml-backend.h (META, 4, wraps other devices).
_GGML_DEVICE_TYPES = {0: DeviceKind.CPU, 1: DeviceKind.GPU, 2: DeviceKind.INTEGRATED,
                      3: DeviceKind.ACCELERATOR}


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
        kind = "unified memory" if self.unified and self.kind == DeviceKind.GPU else self.kind.label
        return (f"{self.description or self.name} ({kind}, {format_bytes(self.free)} free of "
                f"{format_bytes(self.total)})")


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
            return f"No GPU information: {self.problem}"
        if not self.gpu_offload:
            return NO_OFFLOAD
        return "; ".join(d.describe() for d in self.gpus) or "No GPU found."


# ------------------------------------------------------------------ the probe


def _bind(lib: Any) -> Any:
    """Declare the ggml device functions' C signatures on ``lib`` (ggml-backend.h)."""
    import ctypes

    size_t, ptr = ctypes.c_size_t, ctypes.c_void_p
    lib.ggml_backend_dev_count.argtypes, lib.ggml_backend_dev_count.restype = [], size_t
    lib.ggml_backend_dev_get.argtypes, lib.ggml_backend_dev_get.restype = [size_t], ptr
    for name in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(lib, name).argtypes, getattr(lib, name).restype = [ptr], ctypes.c_char_p
    lib.ggml_backend_dev_type.argtypes, lib.ggml_backend_dev_type.restype = [ptr], ctypes.c_int
    lib.ggml_backend_dev_memory.argtypes = [ptr, ctypes.POINTER(size_t), ctypes.POINTER(size_t)]
    lib.ggml_backend_dev_memory.restype = None
    return lib


def list_devices() -> DeviceReport:
    """Ask ggml for its devices, in this process (which loads llama.cpp and initialises
    every GPU driver: :func:`probe` runs it in a child)."""
    import ctypes

    import llama_cpp  # in a bundle this also hands ggml its CPU-variant libraries

    llama_cpp.llama_backend_init()
    offload = bool(llama_cpp.llama_supports_gpu_offload())
    try:
        from llama_cpp._ggml import libggml  # the libggml llama-cpp-python itself loaded
    except (ImportError, OSError) as exc:
        return DeviceReport(gpu_offload=offload,
                            problem=f"this llama-cpp-python does not expose ggml ({exc}).")
    lib = _bind(libggml)
    apple_silicon = sys.platform == "darwin" and platform.machine() == "arm64"
    found = []
    for index in range(lib.ggml_backend_dev_count()):
        handle = lib.ggml_backend_dev_get(index)
        kind = _GGML_DEVICE_TYPES.get(lib.ggml_backend_dev_type(handle))
        if kind is None:
            continue
        free, total = ctypes.c_size_t(0), ctypes.c_size_t(0)
        lib.ggml_backend_dev_memory(handle, ctypes.byref(free), ctypes.byref(total))
        found.append(Device(
            name=(lib.ggml_backend_dev_name(handle) or b"").decode("utf-8", "replace"),
            description=(lib.ggml_backend_dev_description(handle) or b"").decode("utf-8", "replace"),
            kind=kind, free=int(free.value), total=int(total.value),
            unified=kind == DeviceKind.INTEGRATED or (kind == DeviceKind.GPU and apple_silicon)))
    return DeviceReport(tuple(found), offload)


def _child_main(conn: Any, target: Callable[[], DeviceReport]) -> None:
    """The probe process: the driver's chatter goes nowhere, the answer down the pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    except OSError:
        pass
    try:
        conn.send(target())
    except Exception as exc:  # noqa: BLE001 - any failure is an answer too
        conn.send(DeviceReport(problem=f"the device probe failed ({exc})."))
    finally:
        conn.close()


def probe_in_child(target: Callable[[], DeviceReport] = list_devices,
                   timeout: float = PROBE_TIMEOUT_S) -> DeviceReport:
    """Run ``target`` in a spawned process; a crash or a hang is a report with a problem,
    never an exception. Blocking: call it off the GUI thread."""
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(child, target), name="triptych-devices",
                          daemon=True)
    try:
        process.start()
    except OSError as exc:
        parent.close()
        child.close()
        return DeviceReport(problem=f"the device probe could not start ({exc}).")
    child.close()
    answered = False
    try:
        if not parent.poll(timeout):
            return DeviceReport(problem=f"the GPU driver did not answer within {timeout:g} s.")
        answered = True
        answer = parent.recv()
    except (EOFError, OSError):
        process.join(2.0)
        return DeviceReport(problem=f"the device probe crashed (exit code {process.exitcode}).")
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be unpickled
        return DeviceReport(problem=f"the device probe's answer could not be read ({exc}).")
    finally:
        parent.close()
        if answered and process.is_alive():
            process.join(2.0)  # it is ending on its own
        if process.is_alive():
            process.kill()
            process.join(2.0)
        process.close()
    if not isinstance(answer, DeviceReport):
        return DeviceReport(problem="the device probe sent something unexpected.")
    return answer


_cache: DeviceReport | None = None
_cache_lock = threading.Lock()


def probe(*, refresh: bool = False, timeout: float = PROBE_TIMEOUT_S) -> DeviceReport:
    """This computer's devices, probed once per session (in a child process; blocking on
    the first call, so call it off the GUI thread). Concurrent callers share one probe."""
    global _cache
    with _cache_lock:
        if _cache is None or refresh:
            _cache = probe_in_child(timeout=timeout)
        return _cache


def cached() -> DeviceReport | None:
    """The session's answer if the probe has run; never blocks (safe on the GUI thread)."""
    return _cache
