"""Processes and files of one sandbox run, seen from the parent: a private uid for root,
killing the whole tree, draining output pipes with a cap, removing the temp dir.

Nothing here trusts the child: output is kept up to a cap and counted beyond it, and the
temp dir is removed without recursion however deep the tree the code built.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from desktop_app.text.i18n import _, ngettext, whole

RUNAWAY_FACTOR = 16  # a stream this many times over its cap stops the run
_KILL_GRACE_S = 1.0


def kb(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 else ngettext("{n} byte", "{n} bytes", n).format(n=n)


# ------------------------------------------------------------------ private uid (root)


def _mapped(uid: int) -> bool:
    try:
        text = Path("/proc/self/uid_map").read_text()
    except OSError:
        return False
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3:
            inside, _outside, count = (int(x) for x in parts)
            if inside <= uid < inside + count:
                return True
    return False


def _readable_by_others(path: str) -> bool:
    """True if every directory on the way to *path* is searchable, and *path* readable,
    by an unrelated unprivileged user."""
    real = Path(os.path.realpath(path))
    try:
        for parent in list(real.parents)[::-1]:
            if not os.stat(parent).st_mode & stat.S_IXOTH:
                return False
        mode = os.stat(real).st_mode
    except OSError:
        return False
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(mode) else 0)
    return mode & need == need


def _interpreter_dirs(python: str) -> list[str]:
    if os.path.realpath(python) == os.path.realpath(sys.executable):
        import sysconfig

        dirs = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    else:
        prefix = os.path.dirname(os.path.dirname(os.path.realpath(python)))
        dirs = [os.path.join(prefix, "lib")]
    return [python, *dirs]


def private_uid(python: str) -> int | None:
    """A fresh unprivileged uid for this run, when we are root and it can run *python*."""
    if os.name != "posix" or not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    if not all(_readable_by_others(p) for p in _interpreter_dirs(python)):
        return None
    for _attempt in range(8):
        uid = 1_000_000_000 + secrets.randbelow(1_000_000_000)
        if _mapped(uid):
            return uid
    return 65534 if _mapped(65534) else None


# ---------------------------------------------------------------- process-tree cleanup


def _proc_uids() -> dict[int, int]:
    """pid -> real uid for every process (Linux)."""
    out: dict[int, int] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return out
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as handle:
                for line in handle:
                    if line.startswith("Uid:"):
                        out[int(name)] = int(line.split()[1])
                        break
        except (OSError, ValueError):
            continue
    return out


def kill_uid(uid: int) -> None:
    """SIGKILL every process of the private *uid*, until none is left."""
    for _attempt in range(100):
        victims = [pid for pid, owner in _proc_uids().items() if owner == uid]
        if not victims:
            return
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def _descendants(root: int) -> list[int]:
    """Every process below *root* (via ``ps`` where /proc is missing)."""
    parents: dict[int, list[int]] = {}
    if os.path.isdir("/proc"):
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    data = handle.read()
                ppid = int(data[data.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            parents.setdefault(ppid, []).append(int(name))
    else:
        try:
            out = subprocess.run(["ps", "-A", "-o", "pid=,ppid="], capture_output=True,
                                 text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit():
                parents.setdefault(int(parts[1]), []).append(int(parts[0]))
    found, stack = [], list(parents.get(root, []))
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(parents.get(pid, []))
    return found


def exited_unreaped(proc: subprocess.Popen) -> bool:
    """Has the child exited? Leaves it unreaped where possible, so its pid (and process
    group id) cannot be reused while we still signal them."""
    if proc.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is not None and os.name == "posix":
        try:
            info = waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)
        except ChildProcessError:
            return True
        return info is not None
    return proc.poll() is not None


def stop_tree(proc: subprocess.Popen, uid: int | None) -> None:
    """Kill the sandbox and everything it started; reap the bootstrap."""
    if os.name == "nt":
        with contextlib.suppress(OSError):
            proc.kill()  # the Job Object dies with the bootstrap and takes the tree along
        proc.wait()
        return
    if sys.platform.startswith("linux") and not exited_unreaped(proc):
        # The bootstrap kills its supervisor (and so the PID namespace) on SIGTERM.
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _KILL_GRACE_S
        while time.monotonic() < deadline and not exited_unreaped(proc):
            time.sleep(0.01)
    # Only while the bootstrap is unreaped is its pid (= our process group id) surely ours.
    # Without os.waitid (macOS) an exited bootstrap has already been reaped by poll().
    for _attempt in range(3):
        if proc.returncode is not None:
            break
        for pid in _descendants(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        if uid is not None:
            kill_uid(uid)
        if exited_unreaped(proc) and not _descendants(proc.pid):
            break
        time.sleep(0.01)
    if uid is not None:
        kill_uid(uid)
    proc.wait()



# ---------------------------------------------------------------------------- readers


def pipe_chunks(fd: int, stop: threading.Event, size: int) -> Iterator[bytes]:
    """What a pipe delivers, chunk by chunk, until end of file or a read error; on POSIX it
    also ends when *stop* is set while nothing is waiting (a grandchild may hold the pipe
    open forever)."""
    import select

    while True:
        if os.name == "posix":
            ready, _, _ = select.select([fd], [], [], 0.05)
            if not ready:
                if stop.is_set():
                    return
                continue
        try:
            chunk = os.read(fd, size)
        except OSError:
            return
        if not chunk:
            return
        yield chunk


class Reader(threading.Thread):
    """Drains one pipe: keeps the first *cap* bytes, counts the rest."""

    def __init__(self, fd: int, cap: int, name: str, runaway: threading.Event | None = None) -> None:
        super().__init__(name=f"sandbox-{name}", daemon=True)
        self.fd = fd
        self.cap = cap
        self.kept = bytearray()
        self.total = 0
        self.runaway = runaway
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            for chunk in pipe_chunks(self.fd, self.stop, 65536):
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
                if self.runaway is not None and self.total > self.cap * RUNAWAY_FACTOR:
                    self.runaway.set()
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def program_text(self) -> str:
        """What the program wrote (its first *cap* bytes), with nothing of ours added."""
        return bytes(self.kept).decode("utf-8", errors="replace")

    def text(self) -> str:
        """The program's text, with a note of ours when it was cut (for display only)."""
        text = self.program_text()
        if self.truncated:
            text += "\n" + _("[… output truncated: {total} bytes, showing the first {size}]").format(
                total=whole(self.total), size=kb(self.cap))
        return text


# --------------------------------------------------------------------------- temp dir


def _make_removable(path: str) -> None:
    with contextlib.suppress(OSError):
        os.chmod(path, 0o700, follow_symlinks=False)


def remove_tree(root: str) -> bool:
    """Delete *root* and everything in it, however deep, without recursion.

    Each directory met is first moved up to be a direct child of *root* (under a fresh
    name), so no path ever grows longer than two levels and no call recurses. Returns
    True when *root* is gone.
    """
    if not os.path.lexists(root):
        return True
    pending = [root]
    emptied: list[str] = []
    budget = 2_000_000  # entries; far more than any run can create in its time
    while pending and budget > 0:
        directory = pending.pop()
        _make_removable(directory)
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        emptied.append(directory)
        for entry in entries:
            budget -= 1
            try:
                is_dir = entry.is_dir(follow_symlinks=False)
            except OSError:
                is_dir = False
            if not is_dir:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                continue
            if directory == root:
                pending.append(entry.path)
                continue
            flat = os.path.join(root, f".rm-{secrets.token_hex(8)}")
            _make_removable(entry.path)
            try:
                os.rename(entry.path, flat)
            except OSError:
                continue
            pending.append(flat)
    for directory in reversed(emptied):
        with contextlib.suppress(OSError):
            os.rmdir(directory)
    return not os.path.lexists(root)
