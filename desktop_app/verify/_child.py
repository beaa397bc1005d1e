"""The sandbox's inside: bootstrap, confinement and test harness (stdlib only).

The parent (:mod:`desktop_app.verify.sandbox`) copies this file into a fresh temporary
directory and runs it with a separate interpreter in isolated mode::

    python -I -X utf8 _triptych_boot.py   (configuration as JSON on stdin)

On Linux the process tree is::

    B  bootstrap: unshares namespaces, relays the exit status, kills C when told to (SIGTERM)
    └─ C  supervisor: PID 1 of a new PID namespace when available (its death kills all below)
       └─ D  the sandboxed interpreter: limits, uid, capabilities, seccomp, Landlock, then the
             model's code and the test harness

Elsewhere B does D's work itself (macOS: the parent wraps the command in sandbox-exec;
Windows: B puts itself in a Job Object that dies with it).

Only code in this file runs before the confinement is in place. The harness then executes
the model's code and reports *plain data* (see :func:`encode`) on a private pipe; the
parent, never this process, decides whether tests pass.

This module is also imported by the parent for :func:`encode`/:func:`decode`; importing it
has no side effects.
"""

from __future__ import annotations

import builtins
import json
import os
import sys

# ----------------------------------------------------------------- plain-data codec
#
# Values cross the process boundary as tagged JSON. Only exact built-in types are
# accepted (``type(v) is int``, not ``isinstance``), so a subclass or any object with a
# custom ``__eq__`` cannot be smuggled through: it is reported as *opaque* instead.

MAX_DEPTH = 60
MAX_NODES = 200_000
_INT_JSON_LIMIT = 2**53


class Unencodable(Exception):
    """The value is not plain data (or is too large / too deep)."""


def encode(value, _depth=0, _budget=None):
    """Encode plain data (None, bool, int, float, complex, str, bytes, list, tuple,
    dict, set, frozenset, nested) into JSON-compatible tagged form."""
    if _budget is None:
        _budget = [MAX_NODES]
    _budget[0] -= 1
    if _budget[0] < 0:
        raise Unencodable("value too large")
    if _depth > MAX_DEPTH:
        raise Unencodable("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        if -_INT_JSON_LIMIT < value < _INT_JSON_LIMIT:
            return value
        return {"int": hex(value)}
    if t is float:
        if value != value or value in (float("inf"), float("-inf")):
            return {"float": repr(value)}
        return {"float": value.hex()}
    if t is complex:
        return {"complex": [value.real.hex(), value.imag.hex()]}
    if t is bytes:
        return {"bytes": value.hex()}
    d = _depth + 1
    if t is list:
        return [encode(v, d, _budget) for v in value]
    if t is tuple:
        return {"tuple": [encode(v, d, _budget) for v in value]}
    if t is dict:
        return {"dict": [[encode(k, d, _budget), encode(v, d, _budget)] for k, v in value.items()]}
    if t is set or t is frozenset:
        return {"set" if t is set else "frozenset": [encode(v, d, _budget) for v in value]}
    raise Unencodable(type_name(value))


def decode(data, _depth=0):
    """Inverse of :func:`encode`; raises ``ValueError`` on anything malformed."""
    if _depth > MAX_DEPTH + 2:
        raise ValueError("nested too deeply")
    t = type(data)
    if data is None or t is bool or t is str or t is int:
        return data
    if t is list:
        return [decode(v, _depth + 1) for v in data]
    if t is dict and len(data) == 1:
        ((tag, payload),) = data.items()
        if tag == "int" and type(payload) is str:
            return int(payload, 16)
        if tag == "float" and type(payload) is str:
            if payload in ("nan", "inf", "-inf"):
                return float(payload)
            return float.fromhex(payload)
        if tag == "complex" and type(payload) is list and len(payload) == 2:
            return complex(float.fromhex(payload[0]), float.fromhex(payload[1]))
        if tag == "bytes" and type(payload) is str:
            return bytes.fromhex(payload)
        if type(payload) is list:
            items = [decode(v, _depth + 1) for v in payload]
            if tag == "tuple":
                return tuple(items)
            if tag == "set":
                return set(items)
            if tag == "frozenset":
                return frozenset(items)
            if tag == "dict":
                out = {}
                for pair in items:
                    if type(pair) is not list or len(pair) != 2:
                        raise ValueError("bad dict item")
                    out[pair[0]] = pair[1]
                return out
    raise ValueError("malformed value")


def type_name(value):
    """The class name of *value*, read without running any of the object's own code."""
    cls = type(value)
    try:
        name = type.__dict__["__qualname__"].__get__(cls)
        module = type.__dict__["__module__"].__get__(cls)
    except Exception:
        return "object"
    if not isinstance(module, str) or module in ("builtins", "solution", "__main__"):
        return str(name)
    return f"{module}.{name}"


def describe_exception(exc):
    """(nearest built-in Exception type name or None, type name, message) for *exc*."""
    builtin_name = None
    try:
        for cls in type(exc).__mro__:
            if getattr(builtins, cls.__name__, None) is cls and issubclass(cls, Exception):
                builtin_name = cls.__name__
                break
    except Exception:
        builtin_name = None
    try:
        message = str(exc)
    except BaseException:
        message = "<unprintable>"
    if type(message) is not str:
        message = "<unprintable>"
    return builtin_name, type_name(exc), message[:500]


# ------------------------------------------------------------------------ harness
#
# The test program (already transformed by the parent's checker) calls two helpers:
#   __triptych_probe__(pid, fn)   evaluate model-dependent code, record it as plain data
#   __triptych_assert__(aid, fn)   evaluate the probes of one assertion
# Here in the child they only *record*; the parent replays the same program with the
# recorded values and decides. Records go to a pipe tagged with a per-run nonce.


class ProbeFailed(Exception):
    """Raised in place of an exception that is not a built-in Exception type."""


def make_exception(err):
    """Rebuild the exception a probe raised: same built-in type, same message."""
    name, tname, message = err
    cls = getattr(builtins, name, None) if name else None
    text = f"{tname}: {message}" if message else tname
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            return cls(message)
        except Exception:
            pass
    return ProbeFailed(text)


class _Recorder:
    def __init__(self, fd, nonce):
        self.fd = fd
        self.nonce = nonce
        self.seq = 0
        self.depth = 0
        self.invocation = 0
        self.current = 0
        self._write = os.write
        self._dumps = json.dumps

    def emit(self, record):
        record["nonce"] = self.nonce
        record["n"] = self.seq
        self.seq += 1
        data = (self._dumps(record, ensure_ascii=True) + "\n").encode("ascii")
        view = memoryview(data)
        while view:
            written = self._write(self.fd, view)
            view = view[written:]

    def probe(self, pid, fn):
        if self.depth:  # a probe reached from inside model code: just run it
            return fn()
        self.depth += 1
        try:
            value = fn()
        except BaseException as exc:  # noqa: BLE001 - model code may raise anything
            self.depth -= 1
            err = describe_exception(exc)
            self.emit({"p": pid, "k": self.current, "err": list(err)})
            raise make_exception(err) from None
        self.depth -= 1
        try:
            enc = encode(value)
        except Unencodable as exc:
            self.emit({"p": pid, "k": self.current, "opaque": str(exc)[:200]})
            return value
        except BaseException as exc:  # noqa: BLE001 - e.g. RecursionError on odd input
            self.emit({"p": pid, "k": self.current, "opaque": type(exc).__name__})
            return value
        self.emit({"p": pid, "k": self.current, "v": enc})
        return decode(enc)

    def assertion(self, aid, fn):
        # Evaluates the assertion's probes (usually only them: the expected values stay
        # with the parent). Records are tagged with the invocation number; the outcome
        # is not decided here.
        if self.depth:
            return
        self.invocation += 1
        outer = self.current
        self.current = self.invocation
        try:
            fn()
        except Exception:
            pass
        finally:
            self.current = outer


def _flush_stdio():
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except BaseException:  # noqa: BLE001
            pass


def run_harness(cfg):
    """Execute the model's code (and the test program) in this, already confined, process."""
    tmpdir = cfg["tmpdir"]
    mode = cfg["mode"]
    with open(os.path.join(tmpdir, cfg["code_file"]), encoding="utf-8") as handle:
        source = handle.read()
    sys.argv = ["main.py"]
    import traceback

    if mode == "run":
        glb = {"__name__": "__main__", "__builtins__": builtins, "__file__": "main.py"}
        try:
            code = compile(source, "main.py", "exec")
            exec(code, glb)
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001
            tb = exc.__traceback__
            tb = tb.tb_next if tb is not None else None
            traceback.print_exception(type(exc), exc, tb)
            _flush_stdio()
            raise SystemExit(1) from None
        _flush_stdio()
        raise SystemExit(0)

    # mode == "tests"
    with open(os.path.join(tmpdir, cfg["tests_file"]), encoding="utf-8") as handle:
        test_source = handle.read()
    recorder = _Recorder(cfg["result_fd"], cfg["nonce"])
    recorder.emit({"start": True})
    glb = {"__name__": "solution", "__builtins__": builtins, "__file__": "solution.py"}
    try:
        exec(compile(source, "solution.py", "exec"), glb)
    except BaseException as exc:  # noqa: BLE001 - keep going: functions may be defined
        recorder.emit({"load_error": list(describe_exception(exc))})
        try:
            tb = exc.__traceback__
            traceback.print_exception(type(exc), exc, tb.tb_next if tb else None)
        except BaseException:  # noqa: BLE001
            pass
    glb["__triptych_probe__"] = recorder.probe
    glb["__triptych_assert__"] = recorder.assertion
    glb["__triptych_in_child__"] = True
    try:
        exec(compile(test_source, "tests.py", "exec"), glb)
    except BaseException as exc:  # noqa: BLE001
        recorder.emit({"fatal": list(describe_exception(exc))})
    recorder.emit({"done": recorder.seq})
    _flush_stdio()
    os._exit(0)


# ------------------------------------------------------------------ Linux plumbing

_PR_SET_PDEATHSIG = 1
_PR_SET_DUMPABLE = 4
_PR_SET_SECCOMP = 22
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
_CLONE_THREAD = 0x00010000

_MS_NOSUID = 2
_MS_NODEV = 4
_MS_NOEXEC = 8
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

_LIBC = None


def _libc():
    global _LIBC
    if _LIBC is None:
        import ctypes

        _LIBC = ctypes.CDLL(None, use_errno=True)
        _LIBC.syscall.restype = ctypes.c_long
    return _LIBC


def _prctl(option, arg2=0, arg3=0, arg4=0, arg5=0):
    import ctypes

    c = ctypes.c_ulong
    return _libc().prctl(ctypes.c_int(option), c(arg2), c(arg3), c(arg4), c(arg5))


def _errno():
    import ctypes

    return ctypes.get_errno()


def _unshare(flags):
    return _libc().unshare(flags) == 0


def _write_file(path, text):
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def _enter_namespaces(cfg):
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


def _mount_private_proc():
    libc = _libc()
    if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
        return False
    flags = _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
    return libc.mount(b"proc", b"/proc", b"proc", flags, None) == 0


def _children_of(pid):
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


def _kill_descendants(pid):
    """SIGKILL everything below *pid* (which must be a subreaper), until nothing is left."""
    import signal

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


def _reap_all():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        except InterruptedError:
            continue
        if pid == 0:
            return


def _status_of(raw):
    if os.WIFSIGNALED(raw):
        return None, os.WTERMSIG(raw)
    if os.WIFEXITED(raw):
        return os.WEXITSTATUS(raw), None
    return None, None


class _Status:
    """Line-delimited JSON to the parent; each line < PIPE_BUF, so writes are atomic."""

    def __init__(self, fd):
        self.fd = fd

    def send(self, message):
        if self.fd is None:
            return
        data = (json.dumps(message) + "\n").encode()
        try:
            os.write(self.fd, data)
        except OSError:
            pass

    def close(self):
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = None


# -------------------------------------------------------------------- confinement


def _rlimits(cfg, report):
    try:
        import resource
    except ImportError:
        return
    lim = cfg["limits"]

    def setlimit(name, value):
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


def _count_tasks_of_uid(uid):
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


def _set_nproc(limit):
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_NPROC, (limit, limit))
        return True
    except (ImportError, OSError, ValueError):
        return False


def _drop_capabilities(report):
    import ctypes

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


def _install_seccomp_nofork():
    """Forbid new processes (threads stay allowed) with a small seccomp-BPF filter."""
    import ctypes
    import platform

    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64"):
        arch, nr_clone, nr_fork, nr_vfork = 0xC000003E, 56, 57, 58
    elif machine in ("aarch64", "arm64"):
        arch, nr_clone, nr_fork, nr_vfork = 0xC00000B7, 220, 0xFFFFFFF0, 0xFFFFFFF1
    else:
        return False
    nr_clone3 = 435
    eperm, enosys = 1, 38
    ret_allow, ret_errno = 0x7FFF0000, 0x00050000

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    code = [
        (ld, 0, 0, 4),                       # 0  A = arch
        (jeq, 1, 0, arch),                   # 1  native arch -> 3
        (ret, 0, 0, ret_errno | eperm),      # 2  foreign ABI (int 0x80, x32)
        (ld, 0, 0, 0),                       # 3  A = syscall number
        (jge, 0, 1, 0x40000000),             # 4  x32 numbers -> 5
        (ret, 0, 0, ret_errno | eperm),      # 5
        (jeq, 0, 1, nr_clone3),              # 6  clone3 -> ENOSYS (libc falls back to clone)
        (ret, 0, 0, ret_errno | enosys),     # 7
        (jeq, 0, 4, nr_clone),               # 8  clone -> 9, else -> 13
        (ld, 0, 0, 16),                      # 9  A = low 32 bits of the flags
        (jset, 0, 1, _CLONE_THREAD),         # 10 a thread -> 11, a process -> 12
        (ret, 0, 0, ret_allow),              # 11
        (ret, 0, 0, ret_errno | eperm),      # 12
        (jeq, 1, 0, nr_fork),                # 13 fork -> 15
        (jeq, 0, 1, nr_vfork),               # 14 vfork -> 15, else -> 16
        (ret, 0, 0, ret_errno | eperm),      # 15
        (ret, 0, 0, ret_allow),              # 16
    ]
    insns = (Insn * len(code))(*[Insn(*c) for c in code])
    prog = Prog(len(code), ctypes.cast(insns, ctypes.POINTER(Insn)))
    return _libc().prctl(ctypes.c_int(_PR_SET_SECCOMP), ctypes.c_ulong(2),
                         ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0


# Landlock (Linux >= 5.13): filesystem, TCP and scope restrictions, unprivileged.
_LL_EXECUTE = 1 << 0
_LL_WRITE_FILE = 1 << 1
_LL_READ_FILE = 1 << 2
_LL_READ_DIR = 1 << 3
_LL_TRUNCATE = 1 << 14
_LL_IOCTL_DEV = 1 << 15
_LL_FILE_RIGHTS = _LL_EXECUTE | _LL_WRITE_FILE | _LL_READ_FILE | _LL_TRUNCATE | _LL_IOCTL_DEV


def landlock_abi():
    """Landlock ABI version the running kernel offers (0 when absent)."""
    if not sys.platform.startswith("linux"):
        return 0
    try:
        libc = _libc()
        version = libc.syscall(444, None, 0, 1)  # LANDLOCK_CREATE_RULESET_VERSION
    except Exception:
        return 0
    return int(version) if version > 0 else 0


_READABLE = None


def _readable_paths():
    """What the sandboxed code may read: system directories and the standard library.

    Installed packages (site-packages) are left out on purpose: the app's own files, and
    with them the practice sets' answer keys, may live there.
    """
    global _READABLE
    if _READABLE is not None:
        return _READABLE
    import sysconfig

    paths = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/nix/store",
             "/gnu/store", "/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/ld.so.conf.d",
             "/etc/localtime", "/etc/nsswitch.conf", "/etc/passwd", "/etc/group", "/etc/hosts",
             "/etc/mime.types", "/etc/ssl/certs", "/etc/alternatives",
             "/dev/urandom", "/dev/random", "/dev/zero"]
    for key in ("stdlib", "platstdlib"):
        try:
            paths.append(sysconfig.get_paths()[key])
        except (KeyError, OSError):
            pass
    for exe in (sys.executable, os.path.realpath(sys.executable)):
        paths.append(os.path.dirname(exe))
    paths.extend(p for p in sys.path
                 if p and "site-packages" not in p and "dist-packages" not in p)
    seen, out = set(), []
    for path in paths:
        real = os.path.realpath(path)
        if real in seen or not os.path.exists(real) or real == "/":
            continue
        seen.add(real)
        out.append(real)
    _READABLE = out
    return out


def _apply_landlock(tmpdir, report):
    import ctypes

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

    def allow(path, rights):
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
        for path in _readable_paths():
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


def _confine_linux(cfg, namespaces, status):
    """Everything D does to itself before any model code runs."""
    report: dict[str, object] = {"event": "protections"}
    report["namespaces"] = sorted(namespaces)
    _rlimits(cfg, report)
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
    if "nproc" not in report and nproc and _install_seccomp_nofork():
        report["seccomp_nofork"] = True
    _apply_landlock(cfg["tmpdir"], report)
    if not report.get("uid") and os.geteuid() == 0:
        _prctl(_PR_SET_DUMPABLE, 0)
    status.send(report)


def _linux_main(cfg):
    import signal

    status = _Status(cfg["status_fd"])
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != cfg["parent_pid"]:
        os._exit(70)
    cfg["host_uid"] = os.getuid()
    namespaces = _enter_namespaces(cfg)
    if "pid" not in namespaces:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    state: dict[str, int | None] = {"child": None}

    def on_term(signum, frame):
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
    if cfg.get("result_fd") is not None:
        os.close(cfg["result_fd"])
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
    code, sig = _status_of(raw)
    os._exit(code if code is not None else 128 + (sig or 0))


def _supervisor(cfg, namespaces, status):
    import signal

    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if "pid" in namespaces and "mount" in namespaces and _mount_private_proc():
        namespaces = set(namespaces) | {"proc"}
    else:
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
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
            _flush_stdio()
            os._exit((code or 0) & 0xFF)
        except BaseException:  # noqa: BLE001
            try:
                import traceback

                traceback.print_exc()
            except BaseException:  # noqa: BLE001
                pass
            _flush_stdio()
            os._exit(1)
        os._exit(0)
    if cfg.get("result_fd") is not None:
        os.close(cfg["result_fd"])
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
    code, sig = _status_of(raw) if raw is not None else (None, None)
    status.send({"event": "exit", "code": code, "signal": sig})
    status.close()
    if "pid" not in namespaces:
        _kill_descendants(os.getpid())
    os._exit(0)


# ------------------------------------------------------------- macOS / Windows


def _posix_other_main(cfg):
    status = _Status(cfg["status_fd"])
    report: dict[str, object] = {"event": "protections"}
    _rlimits(cfg, report)
    report["sandbox_exec"] = bool(cfg.get("sandbox_exec"))
    status.send(report)
    status.close()
    run_harness(cfg)


def _windows_job(cfg, report):
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


def _windows_main(cfg):
    report: dict[str, object] = {"event": "protections"}
    job = _windows_job(cfg, report)
    cfg["_job"] = job
    with open(os.path.join(cfg["tmpdir"], cfg["status_file"]), "w") as handle:
        handle.write(json.dumps(report) + "\n")
    fd = os.open(os.path.join(cfg["tmpdir"], cfg["result_file"]),
                 os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0))
    cfg["result_fd"] = fd
    run_harness(cfg)


def _preload():
    """Import now what the harness needs later: after the uid switch or Landlock the
    interpreter's own files may no longer be readable."""
    import traceback  # noqa: F401

    if sys.platform != "win32":
        import ctypes  # noqa: F401
        import platform  # noqa: F401
        import resource  # noqa: F401
        import signal  # noqa: F401
    if sys.platform.startswith("linux"):
        _libc()
        _readable_paths()


def main():
    cfg = json.loads(sys.stdin.buffer.read().decode("utf-8"))
    _preload()
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:
        pass
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
    os.chdir(cfg["tmpdir"])
    if sys.platform.startswith("linux"):
        _linux_main(cfg)
    elif sys.platform == "win32":
        _windows_main(cfg)
    else:
        _posix_other_main(cfg)


if __name__ == "__main__":
    main()
