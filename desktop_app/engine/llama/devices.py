"""Asking ggml which compute devices this computer has: in a child process, with a timeout.

What ggml's backend registry lists (``ggml_backend_dev_count`` / ``_get`` / ``_type`` /
``_name`` / ``_description`` / ``_memory``) is read through ctypes on the libggml that
llama-cpp-python loads, in a short child process with a timeout: a GPU driver can hang
or crash while it initialises, and the app must not (nor may the window process import
llama.cpp). The answer is cached for the session.
"""

from __future__ import annotations

import multiprocessing
import os
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any

from desktop_app.models.devices import NO_GGML, PROBE_FAILED, Device, DeviceKind, DeviceReport
from desktop_app.text.i18n import _, number

PROBE_TIMEOUT_S = 20.0  # a first CUDA initialisation can take several seconds

# The values of enum ggml_backend_dev_type in ggml-backend.h (META, 4, wraps other devices).
_GGML_DEVICE_TYPES = {0: DeviceKind.CPU, 1: DeviceKind.GPU, 2: DeviceKind.INTEGRATED,
                      3: DeviceKind.ACCELERATOR}


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
                            problem=_(NO_GGML).format(error=exc))
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
        conn.send(DeviceReport(problem=_(PROBE_FAILED).format(error=exc)))
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
        return DeviceReport(problem=_("the device probe could not start ({error}).").format(
            error=exc))
    child.close()
    answered = False
    try:
        if not parent.poll(timeout):
            return DeviceReport(problem=_("the GPU driver did not answer within {seconds} s."
                                          ).format(seconds=number(
                timeout, len(f"{timeout:g}".partition(".")[2]))))
        answered = True
        answer = parent.recv()
    except (EOFError, OSError):
        process.join(2.0)
        return DeviceReport(problem=_("the device probe crashed (exit code {code}).").format(
            code=process.exitcode))
    except Exception as exc:  # noqa: BLE001 - an answer that cannot be unpickled
        return DeviceReport(problem=_("the device probe's answer could not be read ({error})."
                                      ).format(error=exc))
    finally:
        parent.close()
        if answered and process.is_alive():
            process.join(2.0)  # it is ending on its own
        if process.is_alive():
            process.kill()
            process.join(2.0)
        process.close()
    if not isinstance(answer, DeviceReport):
        return DeviceReport(problem=_("the device probe sent something unexpected."))
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
