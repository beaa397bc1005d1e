"""What confines a sandbox run: the limits asked for, and the protections that the child
reports actually took effect (its report is checked field by field: it comes from the
sandbox's side of a pipe)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from desktop_app.text.i18n import _, number
from desktop_app.verify.sandbox.process import kb

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 256
DEFAULT_OUTPUT_BYTES = 64 * 1024
DEFAULT_PROCESSES = 16
DEFAULT_FILE_MB = 16
DEFAULT_SCRATCH_MB = 32


@dataclass
class Limits:
    """Resource limits for one run."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    processes: int = DEFAULT_PROCESSES
    file_mb: int = DEFAULT_FILE_MB
    scratch_mb: int = DEFAULT_SCRATCH_MB


def _int(report: dict[str, Any], key: str) -> int | None:
    value = report.get(key)
    return value if type(value) is int and 0 <= value < 2**32 else None


def _flag(report: dict[str, Any], key: str) -> bool:
    return report.get(key) is True


@dataclass
class Protections:
    """What actually confined one run (as reported from inside the child)."""

    platform: str = sys.platform
    timeout_s: float = DEFAULT_TIMEOUT_S
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    memory_mb: int | None = None
    cpu_s: int | None = None
    file_mb: int | None = None
    namespaces: list[str] = field(default_factory=list)
    uid: int | None = None
    nproc: int | None = None
    seccomp_nofork: bool = False
    seccomp_nosocket: bool = False
    capabilities_dropped: bool = False
    no_new_privs: bool = False
    landlock_abi: int = 0
    landlock_fs: bool = False
    landlock_net: bool = False
    landlock_scope: bool = False
    sandbox_exec: bool = False
    job_object: bool = False
    readonly_view: bool = False
    scratch_mb: int | None = None
    hidden: int = 0
    reported: bool = False

    @classmethod
    def from_report(cls, report: dict[str, Any], limits: Limits,
                    sandbox_exec: bool) -> Protections:
        p = cls(timeout_s=limits.timeout_s, output_bytes=limits.output_bytes)
        p.reported = bool(report)
        p.memory_mb = _int(report, "memory_mb")
        p.cpu_s = _int(report, "cpu_s")
        p.file_mb = _int(report, "file_mb")
        namespaces = report.get("namespaces")
        p.namespaces = ([n for n in namespaces if type(n) is str][:10]
                        if type(namespaces) is list else [])
        p.uid = _int(report, "uid")
        p.nproc = _int(report, "nproc")
        p.seccomp_nofork = _flag(report, "seccomp_nofork")
        p.seccomp_nosocket = _flag(report, "seccomp_nosocket")
        p.capabilities_dropped = report.get("capabilities") == "none"
        p.no_new_privs = _flag(report, "no_new_privs")
        p.landlock_abi = _int(report, "landlock_abi") or 0
        p.landlock_fs = _flag(report, "landlock_fs")
        p.landlock_net = _flag(report, "landlock_net")
        p.landlock_scope = _flag(report, "landlock_scope")
        p.sandbox_exec = sandbox_exec and bool(report)
        p.job_object = _flag(report, "job_object")
        p.readonly_view = _flag(report, "readonly_view") and not _int(report, "readonly_failures")
        p.scratch_mb = _int(report, "scratch_tmpfs_mb")
        p.hidden = _int(report, "hidden") or 0
        return p

    # -- what the UI shows -------------------------------------------------------------

    @property
    def network_blocked(self) -> str | None:
        how = []
        if self.seccomp_nosocket:
            how.append("seccomp")
        if "net" in self.namespaces:
            how.append(_("network namespace"))
        if self.landlock_net:
            how.append(_("Landlock TCP rules"))
        if self.sandbox_exec:
            how.append("sandbox-exec")
        return " + ".join(how) or None

    @property
    def writes_confined(self) -> str | None:
        if self.readonly_view and self.landlock_fs:
            return _("read-only mount view + Landlock")
        if self.readonly_view:
            return _("read-only mount view")
        if self.landlock_fs:
            return "Landlock"
        if self.sandbox_exec:
            return "sandbox-exec"
        return None

    @property
    def process_limit(self) -> str | None:
        if self.seccomp_nofork:
            return _("no new processes (seccomp)")
        if self.nproc and self.job_object:
            return _("at most {n} processes (Job Object)").format(n=self.nproc)
        if self.nproc:
            return _("at most {n} processes (RLIMIT_NPROC)").format(n=self.nproc)
        return None

    @property
    def tree_kill(self) -> str:
        if "pid" in self.namespaces:
            return _("whole process tree killed with its PID namespace")
        if self.job_object:
            return _("whole process tree killed with its Job Object")
        if self.uid is not None:
            return _("whole process tree killed by its private uid")
        if self.landlock_scope:
            return _("whole process tree killed by its supervisor (which the code cannot "
                     "signal)")
        return _("process tree killed by group and descendants (a detached process may "
                 "escape)")

    def active(self) -> list[str]:
        items = [
            _("separate Python process (isolated mode, fresh temp dir, allow-listed "
              "environment, no stdin)"),
            _("{seconds} s timeout").format(seconds=number(
                self.timeout_s, 0 if float(self.timeout_s).is_integer() else 1)),
        ]
        if self.memory_mb:
            items.append(_("{mb} MB memory cap").format(mb=self.memory_mb))
        if self.cpu_s:
            items.append(_("{seconds} s CPU limit").format(seconds=self.cpu_s))
        items.append(_("output capped at {size}").format(size=kb(self.output_bytes)))
        if self.process_limit:
            items.append(self.process_limit)
        items.append(self.tree_kill)
        if self.network_blocked:
            items.append(_("no network ({how})").format(how=self.network_blocked))
        if self.seccomp_nosocket:
            items.append(_("no sockets, so no UNIX socket outside either (X server, D-Bus, "
                           "ssh-agent, Docker), no io_uring, no ptrace (seccomp)"))
        if self.writes_confined:
            items.append(_("writes limited to the temp dir ({how})").format(
                how=self.writes_confined))
        if self.readonly_view:
            items.append(_("no file or metadata changes outside it, even as root "
                           "(read-only, nosuid mounts)"))
        if self.scratch_mb:
            items.append(_("temp dir is a private {mb} MB tmpfs that vanishes with the "
                           "run").format(mb=self.scratch_mb))
        if self.hidden:
            items.append(_("site-packages, the app and home directories hidden"))
        if self.landlock_fs:
            items.append(_("reads limited to system files and the standard library "
                           "(Landlock)"))
        if "proc" in self.namespaces:
            items.append(_("private /proc"))
        elif self.landlock_fs:
            items.append(_("/proc hidden (Landlock)"))
        if self.landlock_scope:
            items.append(_("cannot signal processes outside the sandbox (Landlock)"))
        if self.uid is not None:
            items.append(_("runs as unprivileged uid {uid}").format(uid=self.uid))
        elif "user" in self.namespaces:
            items.append(_("user namespace"))
        if self.capabilities_dropped and os.name != "nt":
            items.append(_("no capabilities, no_new_privs") if self.no_new_privs
                         else _("no capabilities"))
        return items

    def missing(self) -> list[str]:
        items = []
        if not self.reported:
            return [_("the sandbox did not report its protections")]
        if not self.memory_mb:
            items.append(_("memory cap"))
        if not self.process_limit:
            items.append(_("process-count limit"))
        if not self.network_blocked:
            items.append(_("network isolation"))
        if sys.platform.startswith("linux") and not self.seccomp_nosocket:
            items.append(_("socket filter (the code may connect to local UNIX sockets such "
                           "as the X server or D-Bus)"))
        if not self.writes_confined:
            items.append(_("filesystem write confinement"))
        if sys.platform.startswith("linux") and not self.readonly_view:
            items.append(_("read-only file-system view (chmod, utime and xattrs outside the "
                           "temp dir are not prevented for files the process owns)"))
        if sys.platform.startswith("linux") and "pid" not in self.namespaces:
            items.append(_("PID namespace"))
        return items

    def summary(self) -> str:
        text = ", ".join(self.active())
        text = text[0].upper() + text[1:]
        missing = self.missing()
        if missing:
            return _("{active}. NOT active on this machine: {missing}.").format(
                active=text, missing=", ".join(missing))
        return text + "."


