"""Run untrusted, model-written Python in a separate, confined interpreter.

:func:`run_code` starts ``python -I`` in a fresh temporary directory with an allow-listed
environment and no stdin, enforces a wall-clock timeout, caps the output, and kills the
whole process tree at the end. Where the operating system offers more it is used, and
:class:`Protections` records exactly what was in force for that run:

* Linux: new PID / network / mount / IPC namespaces (a user namespace when not root), a
  private ``/proc``, Landlock (writes only in the temp dir, reads only system files and the
  standard library, no TCP, no signals or abstract sockets outside the sandbox), a
  private unprivileged uid when running as root (if the interpreter is readable by
  it), ``RLIMIT_NPROC`` or a seccomp filter against new processes, no capabilities,
  ``no_new_privs``, and memory / CPU / file-size rlimits.
* macOS: ``sandbox-exec`` (no network, writes only in the temp dir) and rlimits.
* Windows: a Job Object (killed with the sandbox, process and memory limits).

The confinement itself lives in :mod:`desktop_app.verify._child`, which runs inside the
child. Nothing here blocks on the GUI: call it from a worker thread. No Qt.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_TIMEOUT_S = 5.0
DEFAULT_MEMORY_MB = 256
DEFAULT_OUTPUT_BYTES = 64 * 1024
DEFAULT_PROCESSES = 16
DEFAULT_FILE_MB = 16

# Reading stops (and the run is killed) once a stream produced this many times the cap.
_RUNAWAY_FACTOR = 16
_RESULTS_CAP = 8 * 1024 * 1024
_STATUS_CAP = 64 * 1024
_KILL_GRACE_S = 1.0

_BOOT_NAME = "_triptych_boot.py"
_CODE_NAME = "main.py"
_TESTS_NAME = "tests.py"


@dataclass
class Limits:
    """Resource limits for one run."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    output_bytes: int = DEFAULT_OUTPUT_BYTES
    processes: int = DEFAULT_PROCESSES
    file_mb: int = DEFAULT_FILE_MB


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
    capabilities_dropped: bool = False
    no_new_privs: bool = False
    landlock_abi: int = 0
    landlock_fs: bool = False
    landlock_net: bool = False
    landlock_scope: bool = False
    sandbox_exec: bool = False
    job_object: bool = False
    reported: bool = False

    @classmethod
    def from_report(cls, report: dict, limits: Limits, sandbox_exec: bool) -> Protections:
        p = cls(timeout_s=limits.timeout_s, output_bytes=limits.output_bytes)
        p.reported = bool(report)
        p.memory_mb = report.get("memory_mb")
        p.cpu_s = report.get("cpu_s")
        p.file_mb = report.get("file_mb")
        p.namespaces = [str(n) for n in report.get("namespaces", [])]
        p.uid = report.get("uid")
        p.nproc = report.get("nproc")
        p.seccomp_nofork = bool(report.get("seccomp_nofork"))
        p.capabilities_dropped = report.get("capabilities") == "none"
        p.no_new_privs = bool(report.get("no_new_privs"))
        p.landlock_abi = int(report.get("landlock_abi") or 0)
        p.landlock_fs = bool(report.get("landlock_fs"))
        p.landlock_net = bool(report.get("landlock_net"))
        p.landlock_scope = bool(report.get("landlock_scope"))
        p.sandbox_exec = sandbox_exec and bool(report)
        p.job_object = bool(report.get("job_object"))
        return p

    # -- what the UI shows -------------------------------------------------------------

    @property
    def network_blocked(self) -> str | None:
        how = []
        if "net" in self.namespaces:
            how.append("network namespace")
        if self.landlock_net:
            how.append("Landlock TCP rules")
        if self.sandbox_exec:
            how.append("sandbox-exec")
        return " + ".join(how) or None

    @property
    def writes_confined(self) -> str | None:
        if self.landlock_fs:
            return "Landlock"
        if self.sandbox_exec:
            return "sandbox-exec"
        return None

    @property
    def process_limit(self) -> str | None:
        if self.seccomp_nofork:
            return "no new processes (seccomp)"
        if self.nproc and self.job_object:
            return f"at most {self.nproc} processes (Job Object)"
        if self.nproc:
            return f"at most {self.nproc} processes (RLIMIT_NPROC)"
        return None

    @property
    def tree_kill(self) -> str:
        if "pid" in self.namespaces:
            return "whole process tree killed with its PID namespace"
        if self.job_object:
            return "whole process tree killed with its Job Object"
        if self.uid is not None:
            return "whole process tree killed by its private uid"
        if self.landlock_scope:
            return "whole process tree killed by its supervisor (which the code cannot signal)"
        return "process tree killed by group and descendants (a detached process may escape)"

    def active(self) -> list[str]:
        items = [
            "separate Python process (isolated mode, fresh temp dir, allow-listed environment, no stdin)",
            f"{self.timeout_s:g} s timeout",
        ]
        if self.memory_mb:
            items.append(f"{self.memory_mb} MB memory cap")
        if self.cpu_s:
            items.append(f"{self.cpu_s} s CPU limit")
        items.append(f"output capped at {_kb(self.output_bytes)}")
        if self.process_limit:
            items.append(self.process_limit)
        items.append(self.tree_kill)
        if self.network_blocked:
            items.append(f"no network ({self.network_blocked})")
        if self.writes_confined:
            items.append(f"writes limited to the temp dir ({self.writes_confined})")
        if self.landlock_fs:
            items.append("reads limited to system files and the standard library (Landlock)")
        if "proc" in self.namespaces:
            items.append("private /proc")
        elif self.landlock_fs:
            items.append("/proc hidden (Landlock)")
        if self.landlock_scope:
            items.append("cannot signal processes outside the sandbox (Landlock)")
        if self.uid is not None:
            items.append(f"runs as unprivileged uid {self.uid}")
        elif "user" in self.namespaces:
            items.append("user namespace")
        if self.capabilities_dropped and os.name != "nt":
            items.append("no capabilities, no_new_privs" if self.no_new_privs else "no capabilities")
        return items

    def missing(self) -> list[str]:
        items = []
        if not self.reported:
            return ["the sandbox did not report its protections"]
        if not self.memory_mb:
            items.append("memory cap")
        if not self.process_limit:
            items.append("process-count limit")
        if not self.network_blocked:
            items.append("network isolation")
        if not self.writes_confined:
            items.append("filesystem write confinement")
        if sys.platform.startswith("linux") and "pid" not in self.namespaces:
            items.append("PID namespace")
        return items

    def summary(self) -> str:
        text = ", ".join(self.active())
        text = text[0].upper() + text[1:]
        missing = self.missing()
        if missing:
            text += ". NOT active on this machine: " + ", ".join(missing)
        return text + "."


@dataclass
class RunResult:
    """The outcome of one sandboxed run, as observed by the parent."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    output_exceeded: bool
    stdout: str
    stderr: str
    duration_s: float
    records: list[dict]
    protections: Protections
    error: str | None = None  # the sandbox itself could not run
    bad_records: int = 0
    workdir: str = ""  # the (already removed) temp dir, unique per run

    @property
    def crashed(self) -> bool:
        return self.signal is not None and not self.timed_out


def _kb(n: int) -> str:
    return f"{n // 1024} KB" if n >= 1024 else f"{n} bytes"


def find_python() -> str | None:
    """An interpreter for the sandbox: this one.

    In the standalone app ``sys.executable`` is the app's own binary, which runs Python
    command lines (``-I -X utf8 script.py``; see packaging/launcher.py).
    """
    if sys.executable:
        return sys.executable
    for name in ("python3", "python", "py"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _child_source() -> str:
    """The bootstrap's source (a file next to this one; frozen bundles must ship it as data)."""
    try:
        return Path(__file__).with_name("_child.py").read_text(encoding="utf-8")
    except OSError:
        import pkgutil

        data = pkgutil.get_data(__package__ or "desktop_app.verify", "_child.py")
        if data is None:
            raise
        return data.decode("utf-8")


def _allowed_env(tmpdir: str) -> dict[str, str]:
    env = {
        "PATH": "/usr/bin:/bin" if os.name != "nt"
        else os.path.join(os.environ.get("SYSTEMROOT", "C:\\Windows"), "System32"),
        "HOME": tmpdir,
        "TMPDIR": tmpdir,
        "TEMP": tmpdir,
        "TMP": tmpdir,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    if os.name == "nt":
        env.pop("LC_ALL")
        for key in ("SystemRoot", "SYSTEMROOT", "WINDIR"):
            if key in os.environ:
                env[key] = os.environ[key]
    return env


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


def _private_uid(python: str) -> int | None:
    """A fresh unprivileged uid for this run, when we are root and it can run *python*."""
    if os.name != "posix" or not sys.platform.startswith("linux") or os.geteuid() != 0:
        return None
    if not all(_readable_by_others(p) for p in _interpreter_dirs(python)):
        return None
    for _ in range(8):
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


def _kill_uid(uid: int) -> None:
    """SIGKILL every process of the private *uid*, until none is left."""
    for _ in range(100):
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


def _exited_unreaped(proc: subprocess.Popen) -> bool:
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


def _stop(proc: subprocess.Popen, uid: int | None) -> None:
    """Kill the sandbox and everything it started; reap the bootstrap."""
    if os.name == "nt":
        with contextlib.suppress(OSError):
            proc.kill()  # the Job Object dies with the bootstrap and takes the tree along
        proc.wait()
        return
    if sys.platform.startswith("linux") and not _exited_unreaped(proc):
        # The bootstrap kills its supervisor (and so the PID namespace) on SIGTERM.
        with contextlib.suppress(OSError):
            os.kill(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + _KILL_GRACE_S
        while time.monotonic() < deadline and not _exited_unreaped(proc):
            time.sleep(0.01)
    # Only while the bootstrap is unreaped is its pid (= our process group id) surely ours.
    # Without os.waitid (macOS) an exited bootstrap has already been reaped by poll().
    for _ in range(3):
        if proc.returncode is not None:
            break
        for pid in _descendants(proc.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        if uid is not None:
            _kill_uid(uid)
        if _exited_unreaped(proc) and not _descendants(proc.pid):
            break
        time.sleep(0.01)
    if uid is not None:
        _kill_uid(uid)
    proc.wait()


# ---------------------------------------------------------------------------- readers


class _Reader(threading.Thread):
    """Drains one pipe: keeps the first *cap* bytes, counts the rest."""

    def __init__(self, fd: int, cap: int, name: str, runaway: threading.Event | None = None):
        super().__init__(name=f"sandbox-{name}", daemon=True)
        self.fd = fd
        self.cap = cap
        self.kept = bytearray()
        self.total = 0
        self.runaway = runaway
        self.stop = threading.Event()

    def run(self) -> None:
        import select

        try:
            while True:
                if os.name == "posix":
                    ready, _, _ = select.select([self.fd], [], [], 0.05)
                    if not ready:
                        if self.stop.is_set():
                            return
                        continue
                try:
                    chunk = os.read(self.fd, 65536)
                except OSError:
                    return
                if not chunk:
                    return
                self.total += len(chunk)
                room = self.cap - len(self.kept)
                if room > 0:
                    self.kept += chunk[:room]
                if self.runaway is not None and self.total > self.cap * _RUNAWAY_FACTOR:
                    self.runaway.set()
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)

    @property
    def truncated(self) -> bool:
        return self.total > len(self.kept)

    def text(self) -> str:
        text = bytes(self.kept).decode("utf-8", errors="replace")
        if self.truncated:
            text += f"\n[… output truncated: {self.total:,} bytes, showing the first {_kb(self.cap)}]"
        return text


def _parse_lines(data: bytes, nonce: str | None = None) -> tuple[list[dict], int]:
    good, bad = [], 0
    for line in data.splitlines():
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            bad += 1
            continue
        if not isinstance(item, dict):
            bad += 1
            continue
        if nonce is not None and item.get("nonce") != nonce:
            bad += 1
            continue
        good.append(item)
    return good, bad


# ----------------------------------------------------------------------------- running


def _macos_profile(tmpdir: str) -> str:
    real = os.path.realpath(tmpdir).replace('"', "")
    return (
        "(version 1)(allow default)(deny network*)"
        "(deny file-write*)"
        f'(allow file-write* (subpath "{real}") (literal "/dev/null"))'
    )


def _rmtree(path: str) -> None:
    def fix(func, target, _exc):  # noqa: ANN001
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)

    with contextlib.suppress(OSError):
        shutil.rmtree(path, onerror=fix)


def run_code(
    code: str,
    *,
    tests_source: str | None = None,
    limits: Limits | None = None,
    python: str | None = None,
    namespaces: bool = True,
    private_uid: bool = True,
) -> RunResult:
    """Run *code* in the sandbox and return what happened.

    With *tests_source* (a test program prepared by :mod:`desktop_app.verify.checker`)
    the code is loaded as a module and the program's probes are recorded; otherwise the
    code runs as ``__main__``. Blocks until the run is over (at most ``timeout_s`` plus
    about a second): call from a worker thread.
    """
    limits = limits or Limits()
    python = python or find_python()
    if not python:
        return RunResult(None, None, False, False, "", "", 0.0, [], Protections(reported=False),
                         error="No Python interpreter was found to run the code.")
    try:
        boot_source = _child_source()
    except OSError as exc:
        return RunResult(None, None, False, False, "", "", 0.0, [], Protections(reported=False),
                         error=f"The sandbox bootstrap (_child.py) is missing: {exc}")
    tmpdir = tempfile.mkdtemp(prefix="triptych-verify-")
    nonce = secrets.token_hex(16)
    uid = _private_uid(python) if private_uid else None
    sandbox_exec = sys.platform == "darwin" and shutil.which("sandbox-exec") is not None
    pipes: list[int] = []
    try:
        Path(tmpdir, _BOOT_NAME).write_text(boot_source, encoding="utf-8")
        Path(tmpdir, _CODE_NAME).write_text(code, encoding="utf-8", errors="surrogatepass")
        if tests_source is not None:
            Path(tmpdir, _TESTS_NAME).write_text(tests_source, encoding="utf-8")
        for name in os.listdir(tmpdir):
            os.chmod(os.path.join(tmpdir, name), 0o644)
        if uid is not None:
            os.chown(tmpdir, uid, uid)
        cfg: dict = {
            "tmpdir": tmpdir,
            "parent_pid": os.getpid(),
            "mode": "tests" if tests_source is not None else "run",
            "code_file": _CODE_NAME,
            "tests_file": _TESTS_NAME,
            "nonce": nonce,
            "namespaces": namespaces,
            "uid": uid,
            "gid": uid,
            "sandbox_exec": sandbox_exec,
            "limits": {
                "memory_mb": limits.memory_mb,
                "cpu_s": int(limits.timeout_s) + 2,
                "processes": limits.processes,
                "file_mb": limits.file_mb,
            },
        }
        cmd = [python, "-I", "-X", "utf8", os.path.join(tmpdir, _BOOT_NAME)]
        if sandbox_exec:
            cmd = ["sandbox-exec", "-p", _macos_profile(tmpdir), *cmd]
        popen_kw: dict = {}
        status_r = result_r = None
        if os.name == "posix":
            status_r, status_w = os.pipe()
            result_r, result_w = os.pipe()
            pipes += [status_r, status_w, result_r, result_w]
            cfg["status_fd"], cfg["result_fd"] = status_w, result_w
            popen_kw = {"pass_fds": (status_w, result_w), "start_new_session": True}
        else:
            cfg["status_file"], cfg["result_file"] = "status.jsonl", "results.jsonl"
            popen_kw = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
                        | getattr(subprocess, "CREATE_NO_WINDOW", 0)}
        started = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=tmpdir, env=_allowed_env(tmpdir),
                                    close_fds=True, **popen_kw)
        except OSError as exc:
            return RunResult(None, None, False, False, "", "", 0.0, [], Protections(reported=False),
                             error=f"Could not start the sandbox: {exc}")
        finally:
            if os.name == "posix":
                for fd in (cfg["status_fd"], cfg["result_fd"]):
                    os.close(fd)
                    pipes.remove(fd)
        return _supervise(proc, cfg, limits, uid, started, status_r, result_r, pipes, sandbox_exec)
    finally:
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        _rmtree(tmpdir)


def _supervise(proc: subprocess.Popen, cfg: dict, limits: Limits, uid: int | None,
               started: float, status_r: int | None, result_r: int | None,
               pipes: list[int], sandbox_exec: bool) -> RunResult:
    runaway = threading.Event()
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    readers = [
        _Reader(os.dup(proc.stdout.fileno()), limits.output_bytes, "stdout", runaway),
        _Reader(os.dup(proc.stderr.fileno()), limits.output_bytes, "stderr", runaway),
    ]
    proc.stdout.close()
    proc.stderr.close()
    if status_r is not None and result_r is not None:
        readers.append(_Reader(status_r, _STATUS_CAP, "status"))
        readers.append(_Reader(result_r, _RESULTS_CAP, "results", runaway))
        pipes.remove(status_r)
        pipes.remove(result_r)
    for reader in readers:
        reader.start()
    with contextlib.suppress(OSError):
        proc.stdin.write(json.dumps(cfg).encode("utf-8"))
    with contextlib.suppress(OSError):
        proc.stdin.close()

    deadline = started + limits.timeout_s
    timed_out = False
    while not _exited_unreaped(proc):
        if runaway.is_set():
            break
        if time.monotonic() >= deadline:
            timed_out = True
            break
        time.sleep(0.01)
    _stop(proc, uid)
    duration = time.monotonic() - started
    for reader in readers:
        reader.join(timeout=2.0)
        if reader.is_alive():  # something outlived the sandbox and holds a pipe open
            reader.stop.set()
            if uid is not None:
                _kill_uid(uid)
            reader.join(timeout=2.0)

    if os.name == "posix":
        status_data = bytes(readers[2].kept)
        result_data = bytes(readers[3].kept)
    else:
        status_data = _read_file(cfg["tmpdir"], cfg["status_file"])
        result_data = _read_file(cfg["tmpdir"], cfg["result_file"])
    status_lines, _ = _parse_lines(status_data)
    report = next((m for m in status_lines if m.get("event") == "protections"), {})
    exit_event = next((m for m in status_lines if m.get("event") == "exit"), None)
    records, bad = _parse_lines(result_data, cfg["nonce"])

    exit_code, sig = proc.returncode, None
    if exit_event is not None:
        exit_code, sig = exit_event.get("code"), exit_event.get("signal")
    elif proc.returncode is not None and proc.returncode < 0:
        exit_code, sig = None, -proc.returncode
    elif os.name == "posix" and proc.returncode is not None and proc.returncode > 128:
        exit_code, sig = None, proc.returncode - 128
    output_exceeded = runaway.is_set() and not timed_out
    return RunResult(
        exit_code=None if timed_out else exit_code,
        signal=None if timed_out else sig,
        timed_out=timed_out,
        output_exceeded=output_exceeded,
        stdout=readers[0].text(),
        stderr=readers[1].text(),
        duration_s=round(duration, 3),
        records=records,
        protections=Protections.from_report(report, limits, sandbox_exec),
        bad_records=bad,
        workdir=cfg["tmpdir"],
    )


def _read_file(tmpdir: str, name: str) -> bytes:
    try:
        with open(os.path.join(tmpdir, name), "rb") as handle:
            return handle.read(_RESULTS_CAP)
    except OSError:
        return b""


# ------------------------------------------------------------------- isolation summary

_SUMMARY_LOCK = threading.Lock()
_SUMMARY: dict[tuple, Protections] = {}


def detect_protections(limits: Limits | None = None) -> Protections:
    """Run a trivial program once in the sandbox and report what confined it (cached)."""
    limits = limits or Limits()
    key = (limits.timeout_s, limits.memory_mb, limits.output_bytes, limits.processes)
    with _SUMMARY_LOCK:
        if key not in _SUMMARY:
            result = run_code("pass\n", limits=limits)
            _SUMMARY[key] = result.protections
        return _SUMMARY[key]


def isolation_summary(limits: Limits | None = None) -> str:
    """One plain sentence on what protects this machine from model code, and what does not.

    The first call runs a trivial program in the sandbox (about 0.1 s); later calls are
    cached. Safe to call from any thread.
    """
    return detect_protections(limits).summary()
