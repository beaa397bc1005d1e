"""The status pipe to the parent (protections in force, the exit status)."""

from __future__ import annotations

import json
import os
from typing import Any


class Status:
    """Line-delimited JSON to the parent; each line < PIPE_BUF, so writes are atomic."""

    def __init__(self, fd: int | None) -> None:
        self.fd = fd

    def send(self, message: dict[str, Any]) -> None:
        if self.fd is None:
            return
        data = (json.dumps(message) + "\n").encode()
        try:
            os.write(self.fd, data)
        except OSError:
            pass

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


def status_of(raw: int) -> tuple[int | None, int | None]:
    """(exit code, signal) of a wait status."""
    if os.WIFSIGNALED(raw):
        return None, os.WTERMSIG(raw)
    if os.WIFEXITED(raw):
        return os.WEXITSTATUS(raw), None
    return None, None


def apply_rlimits(cfg: dict[str, Any], report: dict[str, Any]) -> None:
    """Memory, CPU, file-size, core and open-file limits (where the OS has them)."""
    try:
        import resource
    except ImportError:
        return
    lim = cfg["limits"]

    def setlimit(name: str, value: int) -> bool:
        which = getattr(resource, name, None)
        if which is None:
            return False
        try:
            soft, hard = resource.getrlimit(which)
            if hard != resource.RLIM_INFINITY and value > hard:
                value = hard
            resource.setrlimit(which, (value, value))
            return True
        except (OSError, ValueError):
            return False

    mb = 1024 * 1024
    if lim.get("memory_mb") and setlimit("RLIMIT_AS", int(lim["memory_mb"]) * mb):
        report["memory_mb"] = lim["memory_mb"]
    if lim.get("cpu_s") and setlimit("RLIMIT_CPU", int(lim["cpu_s"])):
        report["cpu_s"] = int(lim["cpu_s"])
    if lim.get("file_mb") and setlimit("RLIMIT_FSIZE", int(lim["file_mb"]) * mb):
        report["file_mb"] = lim["file_mb"]
    setlimit("RLIMIT_CORE", 0)
    setlimit("RLIMIT_NOFILE", 256)
