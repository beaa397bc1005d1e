"""Linux confinement, applied from inside the sandbox before any model code runs.

Process tree::

    B  bootstrap: unshares namespaces, relays the exit status, kills C when told (SIGTERM)
    └─ C  supervisor: PID 1 of a new PID namespace when available (its death kills all
          below); builds the file-system view: private /proc, a small tmpfs as the
          working directory, empty read-only mounts over site-packages, the app and the
          user's home, and every other mount remounted read-only and nosuid
       └─ D  the sandboxed interpreter: rlimits, uid, capabilities, seccomp (no
             sockets; no new processes as root), Landlock, then the model's code

The read-only view is what stops metadata changes (chmod, utime, xattrs, setuid bits)
outside the working directory even for root, which Landlock does not cover.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import Any

from . import seccomp
from .common import Status, apply_rlimits, status_of
from .harness import flush_stdio, run_harness

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_CAPBSET_DROP = 24
_PR_SET_SECUREBITS = 28
_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_NO_NEW_PRIVS = 38

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUTS = 0x04000000
_CLONE_NEWIPC = 0x08000000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000

_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_MS_RDONLY = 1
_MS_REMOUNT = 32
_MS_BIND = 4096
_MS_NOATIME = 1024
_MS_NODIRATIME = 2048
_MS_RELATIME = 1 << 21
_MS_STRICTATIME = 1 << 24

_LIBC: Any = None


def _libc() -> Any:
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC


def _prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    c = ctypes.c_ulong
    return int(_libc().prctl(ctypes.c_int(option), c(arg2), c(arg3), c(arg4), c(arg5)))


def _errno() -> int:
    return ctypes.get_errno()


def _unshare(flags: int) -> bool:
    return bool(_libc().unshare(flags) == 0)


def _write_file(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _mount(source: str | None, target: str, fstype: str | None, flags: int,
           data: str | None = None) -> bool:
    def enc(text: str | None) -> bytes | None:
        return None if text is None else os.fsencode(text)

    return bool(_libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags),
                              enc(data)) == 0)

def _enter_namespaces(cfg: dict[str, Any]) -> set[str]:
    """Unshare what this machine allows. Returns the set of namespaces entered."""
    entered: set[str] = set()
    base = _CLONE_NEWPID | _CLONE_NEWNS | _CLONE_NEWNET | _CLONE_NEWIPC | _CLONE_NEWUTS
    if not cfg.get("namespaces", True):
        return entered
    uid, gid = os.getuid(), os.getgid()
    if os.geteuid() == 0:
        attempts = [base, _CLONE_NEWNET | _CLONE_NEWPID | _CLONE_NEWNS, _CLONE_NEWNET]
        user = False
    else:
        attempts = [_CLONE_NEWUSER | base, _CLONE_NEWUSER | _CLONE_NEWNET]
        user = True
    for flags in attempts:
        if _unshare(flags):
            if user:
                try:
                    _write_file("/proc/self/setgroups", "deny")
                    _write_file("/proc/self/uid_map", f"{uid} {uid} 1")
                    _write_file("/proc/self/gid_map", f"{gid} {gid} 1")
                except OSError:
                    pass
                entered.add("user")
            if flags & _CLONE_NEWPID:
                entered.add("pid")
            if flags & _CLONE_NEWNS:
                entered.add("mount")
            if flags & _CLONE_NEWNET:
                entered.add("net")
            if flags & _CLONE_NEWIPC:
                entered.add("ipc")
            break
    return entered


def _mount_private_proc() -> bool:
    libc = _libc()
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    return libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0



# ------------------------------------------------------------- the file-system view

_MOUNT_FLAG_WORDS = {"nosuid": _MS_NOSUID, "nodev": _MS_NODEV, "noexec": _MS_NOEXEC,
                     "noatime": _MS_NOATIME, "nodiratime": _MS_NODIRATIME,
                     "relatime": _MS_RELATIME, "strictatime": _MS_STRICTATIME}


def _unescape_mount_path(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1:i + 4].isdigit():
            out.append(chr(int(text[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _mounts() -> list[tuple[str, int]]:
    """(mount point, flags to keep) for every mount in this namespace, outermost first."""
    found: list[tuple[str, int]] = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as handle:
        for line in handle:
            parts = line.split()
            if len(parts) < 6:
                continue
            flags = 0
            for word in parts[5].split(","):
                flags |= _MOUNT_FLAG_WORDS.get(word, 0)
            found.append((_unescape_mount_path(parts[4]), flags))
    return found


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def build_readonly_view(cfg: dict[str, Any], report: dict[str, Any]) -> None:
    """In this (private) mount namespace: a fresh tmpfs as the working directory, empty
    read-only mounts over what must stay unreadable, and everything else read-only and
    nosuid. Runs in C, before D exists."""
    tmpdir = cfg["tmpdir"]
    scratch_mb = int(cfg["limits"].get("scratch_mb") or 32)
    if not _mount("tmpfs", tmpdir, "tmpfs", _MS_NOSUID | _MS_NODEV,
                  f"size={scratch_mb}m,nr_inodes=8192,mode=0700"):
        return
    uid = cfg.get("uid")
    if uid is not None:
        os.chown(tmpdir, uid, uid)
    os.chdir(tmpdir)  # the old directory is now underneath the tmpfs
    report["scratch_tmpfs_mb"] = scratch_mb
    hidden = []
    for path in cfg.get("hide", []):
        if not isinstance(path, str):
            continue
        if os.path.isdir(path) and _mount(
                "tmpfs", path, "tmpfs", _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC,
                "size=4k,nr_inodes=4,mode=0555"):
            hidden.append(path)
        elif os.path.isfile(path) and _mount("/dev/null", path, None, _MS_BIND):
            hidden.append(path)  # a single secret file (a tests file) reads as empty
    failures = 0
    root_done = False
    seen: set[str] = set()
    for point, keep in _mounts():
        if point in seen or point == tmpdir or point in hidden:
            continue
        seen.add(point)
        flags = _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID | keep
        if _mount(None, point, None, flags):
            root_done = root_done or point == "/"
        elif not _within(point, "/proc"):  # the old /proc's submounts are under ours now
            failures += 1
    report["hidden"] = len(hidden)
    if root_done:
        report["readonly_view"] = True
        report["readonly_failures"] = failures

def _children_of(pid: int) -> list[int]:
    """Direct children of *pid* (Linux /proc), best effort."""
    kids = []
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            kids = [int(x) for x in handle.read().split()]
    except (OSError, ValueError):
        try:
            names = os.listdir("/proc")
        except OSError:
            return kids
        for name in names:
            if not name.isdigit():
                continue
            try:
                with open(f"/proc/{name}/stat", "rb") as handle:
                    stat = handle.read()
                ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid == pid:
                kids.append(int(name))
    return kids


def _kill_descendants(pid: int) -> None:
    """SIGKILL everything below *pid* (which must be a subreaper), until nothing is left."""
    for _ in range(200):
        found = []
        stack = list(_children_of(pid))
        while stack:
            child = stack.pop()
            found.append(child)
            stack.extend(_children_of(child))
        for child in found:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        _reap_all()
        if not found:
            return


def _reap_all() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            return


# -------------------------------------------------------------------- confinement


def _count_tasks_of_uid(uid: int) -> int | None:
    count = 0
    try:
        names = os.listdir("/proc")
    except OSError:
        return None
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as handle:
                text = handle.read()
        except OSError:
            continue
        real = threads = None
        for line in text.splitlines():
            if line.startswith("Uid:"):
                real = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
        if real == uid:
            count += threads or 1
    return count


def _set_nproc(limit: int) -> bool:
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        return True
    except (ImportError, OSError, ValueError):
        return False


def _drop_capabilities(report: dict[str, Any]) -> None:
    libc = _libc()
    for cap in range(64):
        if _prctl(_PR_CAPBSET_DROP, cap) != 0 and _errno() == 22:  # EINVAL: past the last
            break
    if os.geteuid() == 0:
        # SECBIT_NOROOT | _LOCKED | SECBIT_NO_CAP_AMBIENT_RAISE | _LOCKED
        _prctl(_PR_SET_SECUREBITS, 0x01 | 0x02 | 0x40 | 0x80)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)
    data = (Data * 2)()
    if libc.capset(ctypes.byref(header), ctypes.byref(data)) == 0:
        report["capabilities"] = "none"


# Landlock (Linux >= 5.13): filesystem, TCP and scope restrictions, unprivileged.
_LL_EXECUTE = 1 << 0
_LL_WRITE_FILE = 1 << 1
_LL_READ_FILE = 1 << 2
_LL_READ_DIR = 1 << 3
_LL_TRUNCATE = 1 << 14
_LL_IOCTL_DEV = 1 << 15
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV


def landlock_abi() -> int:
    """Landlock ABI version the running kernel offers (0 when absent)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        version = libc.syscall(444, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    except Exception:  # noqa: BLE001 - no libc or no syscall here: no Landlock
        return 0
    return int(version) if version > 0 else 0


def stdlib_dirs() -> list[str]:
    """The standard library's own directories (source and compiled extensions), found
    from modules already loaded: never ``sys.path``, which in a venv or an editable install
    reaches site-packages, the app's source tree and its answer keys."""
    dirs = [os.path.dirname(os.__file__)]
    for name in ("_ctypes", "select", "math", "_json", "_struct", "_socket"):
        module = sys.modules.get(name)
        path = getattr(module, "__file__", None)
        if isinstance(path, str):
            dirs.append(os.path.dirname(path))
    return dirs


_READABLE: list[str] | None = None


def readable_paths() -> list[str]:
    """What the sandboxed code may read: system directories and the standard library."""
    global _READABLE
    if _READABLE is not None:
        return _READABLE
    paths = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/nix/store",
             "/gnu/store", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
             "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
             "/etc/mime.types", "/etc/ssl/certs", "/etc/alternatives",
             "/dev/urandom", "/dev/random", "/dev/zero", *stdlib_dirs()]
    seen: set[str] = set()
    out: list[str] = []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not os.path.exists(real) or real == "/":
            continue
        seen.add(real)
        out.append(real)
    _READABLE = out
    return out


def _apply_landlock(tmpdir: str, report: dict[str, Any]) -> None:
    abi = landlock_abi()
    report["landlock_abi"] = abi
    if abi < 1:
        return
    handled_fs = (1 << 13) - 1
    if abi >= 2:
        handled_fs |= 1 << 13  # REFER
    if abi >= 3:
        handled_fs |= _LL_TRUNCATE
    if abi >= 5:
        handled_fs |= _LL_IOCTL_DEV
    handled_net = 0b11 if abi >= 4 else 0  # BIND_TCP | CONNECT_TCP, with no port allowed
    scoped = 0b11 if abi >= 6 else 0  # abstract unix sockets | signals

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("fd", ctypes.c_int32)]

    size = 8 if abi < 4 else (16 if abi < 6 else 24)
    attr = RulesetAttr(handled_fs, handled_net, scoped)
    libc = _libc()
    ruleset = libc.syscall(444, ctypes.byref(attr), ctypes.c_size_t(size), 0)
    if ruleset < 0:
        return
    read_rights = _LL_EXECUTE | _LL_READ_FILE | _LL_READ_DIR

    def allow(path: str, rights: int) -> bool:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return False
        try:
            if not os.path.isdir(path):
                rights &= _LL_FILE_RIGHTS
            rule = PathBeneath(rights & handled_fs, fd)
            return libc.syscall(445, ruleset, 1, ctypes.byref(rule), 0) == 0
        finally:
            os.close(fd)

    try:
        for path in readable_paths():
            allow(path, read_rights)
        allow("/dev/null", _LL_READ_FILE | _LL_WRITE_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV)
        if not allow(tmpdir, handled_fs):
            return
        if _prctl(_PR_SET_NO_NEW_PRIVS, 1) != 0:
            return
        if libc.syscall(446, ruleset, 0) != 0:
            return
    finally:
        os.close(ruleset)
    report["landlock_fs"] = True
    report["landlock_net"] = bool(handled_net)
    report["landlock_scope"] = bool(scoped)


def _confine_linux(cfg: dict[str, Any], namespaces: set[str], status: Status) -> None:
    """Everything D does to itself before any model code runs."""
    report: dict[str, object] = {"event": "protections"}
    report["namespaces"] = sorted(namespaces)
    report.update(cfg.get("view") or {})
    apply_rlimits(cfg, report)
    host_root = cfg["host_uid"] == 0
    nproc = int(cfg["limits"].get("processes") or 0)
    uid = cfg.get("uid")
    if host_root and uid is not None:
        try:
            if nproc:
                _set_nproc(nproc)
            os.setgroups([])
            os.setgid(cfg["gid"])
            os.setuid(uid)
            report["uid"] = uid
            if nproc:
                report["nproc"] = nproc
        except OSError as exc:
            report["uid_error"] = str(exc)
    elif not host_root and nproc:
        if "user" in namespaces:
            if _set_nproc(nproc):
                report["nproc"] = nproc
        else:
            current = _count_tasks_of_uid(cfg["host_uid"])
            if current is not None and _set_nproc(current + nproc):
                report["nproc"] = nproc
    _drop_capabilities(report)
    if _prctl(_PR_SET_NO_NEW_PRIVS, 1) == 0:
        report["no_new_privs"] = True
    nofork = "nproc" not in report and bool(nproc)
    if seccomp.install(nofork=nofork):
        report["seccomp_nosocket"] = True
        if nofork:
            report["seccomp_nofork"] = True
    _apply_landlock(cfg["tmpdir"], report)
    if not report.get("uid") and os.geteuid() == 0:
        _prctl(_PR_SET_DUMPABLE, 0)
    status.send(report)


def _close_channel(cfg: dict[str, Any]) -> None:
    """B and C neither read requests nor write answers: only D keeps those pipes."""
    for key in ("request_fd", "result_fd"):
        fd = cfg.get(key)
        if fd is not None:
            try:
                os.close(fd)
            except OSError:
                pass


def linux_main(cfg: dict[str, Any]) -> None:
    """B: enter namespaces, start C, relay its exit status."""
    status = Status(cfg["status_fd"])
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["parent_pid"]:
        os._exit(70)
    cfg["host_uid"] = os.getuid()
    namespaces = _enter_namespaces(cfg)
    if "pid" not in namespaces:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    state: dict[str, int | None] = {"child": None}

    def on_term(signum: int, frame: object) -> None:
        child = state["child"]
        if child:
            try:
                os.kill(child, signal.SIGKILL)
            except OSError:
                pass
        if "pid" not in namespaces:
            _kill_descendants(os.getpid())

    signal.signal(signal.SIGTERM, on_term)
    child = os.fork()
    if child == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            _supervisor(cfg, namespaces, status)
        finally:
            os._exit(71)
    state["child"] = child
    _close_channel(cfg)
    status.close()
    raw = 0
    while True:
        try:
            pid, raw = os.waitpid(child, 0)
            break
        except InterruptedError:
            continue
        except ChildProcessError:
            break
    if "pid" not in namespaces:
        _kill_descendants(os.getpid())
    code, sig = status_of(raw)
    os._exit(code if code is not None else 128 + (sig or 0))


def _supervisor(cfg: dict[str, Any], namespaces: set[str], status: Status) -> None:
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if "pid" in namespaces and "mount" in namespaces and _mount_private_proc():
        namespaces = set(namespaces) | {"proc"}
    else:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    view: dict[str, Any] = {}
    if "mount" in namespaces:
        try:
            build_readonly_view(cfg, view)
        except OSError:
            pass
    cfg["view"] = view
    child = os.fork()
    if child == 0:
        try:
            _confine_linux(cfg, namespaces, status)
            status.close()
            run_harness(cfg)
        except SystemExit as exc:
            code = exc.code
            if code is not None and not isinstance(code, int):
                try:
                    sys.stderr.write(f"{code}\n")
                except BaseException:  # noqa: BLE001
                    pass
                code = 1
            flush_stdio()
            os._exit((code or 0) & 0xFF)
        except BaseException:  # noqa: BLE001
            try:
                import traceback

                traceback.print_exc()
            except BaseException:  # noqa: BLE001
                pass
            flush_stdio()
            os._exit(1)
        os._exit(0)
    _close_channel(cfg)
    for fd in (1, 2):
        try:
            os.close(fd)
        except OSError:
            pass
    raw = None
    while True:
        try:
            pid, got = os.wait()
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if pid == child:
            raw = got
            break
    code, sig = status_of(raw) if raw is not None else (None, None)
    status.send({"event": "exit", "code": code, "signal": sig})
    status.close()
    if "pid" not in namespaces:
        _kill_descendants(os.getpid())
    os._exit(0)
