"""macOS and Windows: what the sandbox can do for itself there (less than on Linux)."""

from __future__ import annotations

import json
import os
from typing import Any

from .common import Status, apply_rlimits
from .harness import run_harness


def posix_other_main(cfg: dict[str, Any]) -> None:
    """macOS (and other POSIX systems): rlimits; the parent wrapped us in sandbox-exec."""
    status = Status(cfg["status_fd"])
    report: dict[str, Any] = {"event": "protections"}
    apply_rlimits(cfg, report)
    report["sandbox_exec"] = bool(cfg.get("sandbox_exec"))
    status.send(report)
    status.close()
    run_harness(cfg)


def _windows_job(cfg: dict[str, Any], report: dict[str, Any]) -> object:
    import ctypes
    from ctypes import wintypes

    kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]

    class BasicLimits(ctypes.Structure):
        _fields_ = [("PerProcessUserTimeLimit", ctypes.c_int64),
                    ("PerJobUserTimeLimit", ctypes.c_int64),
                    ("LimitFlags", wintypes.DWORD),
                    ("MinimumWorkingSetSize", ctypes.c_size_t),
                    ("MaximumWorkingSetSize", ctypes.c_size_t),
                    ("ActiveProcessLimit", wintypes.DWORD),
                    ("Affinity", ctypes.c_size_t),
                    ("PriorityClass", wintypes.DWORD),
                    ("SchedulingClass", wintypes.DWORD)]

    class IoCounters(ctypes.Structure):
        _fields_ = [(n, ctypes.c_uint64) for n in (
            "ReadOperationCount", "WriteOperationCount", "OtherOperationCount",
            "ReadTransferCount", "WriteTransferCount", "OtherTransferCount")]

    class ExtendedLimits(ctypes.Structure):
        _fields_ = [("BasicLimitInformation", BasicLimits), ("IoInfo", IoCounters),
                    ("ProcessMemoryLimit", ctypes.c_size_t),
                    ("JobMemoryLimit", ctypes.c_size_t),
                    ("PeakProcessMemoryUsed", ctypes.c_size_t),
                    ("PeakJobMemoryUsed", ctypes.c_size_t)]

    kernel32.CreateJobObjectW.restype = wintypes.HANDLE
    job = kernel32.CreateJobObjectW(None, None)
    if not job:
        return None
    info = ExtendedLimits()
    flags = 0x2000  # JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    lim = cfg["limits"]
    if lim.get("processes"):
        flags |= 0x8  # ACTIVE_PROCESS
        info.BasicLimitInformation.ActiveProcessLimit = int(lim["processes"])
    if lim.get("memory_mb"):
        flags |= 0x100 | 0x200  # PROCESS_MEMORY | JOB_MEMORY
        info.ProcessMemoryLimit = int(lim["memory_mb"]) * 1024 * 1024
        info.JobMemoryLimit = int(lim["memory_mb"]) * 2 * 1024 * 1024
    if lim.get("cpu_s"):
        flags |= 0x4  # JOB_TIME
        info.BasicLimitInformation.PerJobUserTimeLimit = int(lim["cpu_s"]) * 10_000_000
    flags |= 0x400  # DIE_ON_UNHANDLED_EXCEPTION
    info.BasicLimitInformation.LimitFlags = flags
    ok = kernel32.SetInformationJobObject(job, 9, ctypes.byref(info), ctypes.sizeof(info))
    if not ok:
        return None
    kernel32.GetCurrentProcess.restype = wintypes.HANDLE
    if not kernel32.AssignProcessToJobObject(job, kernel32.GetCurrentProcess()):
        return None
    report["job_object"] = True
    if lim.get("processes"):
        report["nproc"] = int(lim["processes"])
    if lim.get("memory_mb"):
        report["memory_mb"] = lim["memory_mb"]
    return job  # keep the handle: closing it (process exit) kills the whole job


def windows_main(cfg: dict[str, Any]) -> None:
    """Windows: a Job Object; status through a file, answers through an inherited pipe."""
    report: dict[str, object] = {"event": "protections"}
    job = _windows_job(cfg, report)
    cfg["_job"] = job  # keep the handle: closing it (process exit) kills the whole job
    with open(os.path.join(cfg["tmpdir"], cfg["status_file"]), "w") as handle:
        handle.write(json.dumps(report) + "\n")
    if cfg.get("result_handle") is not None:
        import msvcrt

        cfg["result_fd"] = msvcrt.open_osfhandle(int(cfg["result_handle"]),  # type: ignore[attr-defined]
                                                 os.O_WRONLY)
    run_harness(cfg)
