"""Start the sandbox, talk to it, stop it: the parent's side of one run.

:func:`run_code` starts ``python -I`` in a fresh temporary directory with an allow-listed
environment, enforces a wall-clock timeout, caps the output and kills the whole process
tree at the end. With a *judge*, the code is loaded as a module and the judge (trusted
code, in this process) asks questions about it through a :class:`Session`; the answers
are plain data checked on arrival. Blocks: call from a worker thread, never the GUI's.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from desktop_app.text.i18n import _
from desktop_app.verify.sandbox.process import (
    Reader,
    exited_unreaped,
    kill_uid,
    pipe_chunks,
    private_uid,
    remove_tree,
    stop_tree,
)
from desktop_app.verify.sandbox.protections import Limits, Protections
from desktop_app.verify.sandbox.wire import MAX_LINE_BYTES, Hostile, parse_line

_STATUS_CAP = 64 * 1024
_ANSWERS_TOTAL_CAP = 64 * 1024 * 1024
_CHILD_FILES = ("__init__.py", "codec.py", "common.py", "harness.py", "linux.py", "other.py",
                "main.py", "seccomp.py", "graph.py")
_CHILD_PACKAGE = "triptych_child"
_START = ("import os, sys\n"
          "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
          f"from {_CHILD_PACKAGE}.main import main\n"
          "main()\n")
_BYE_GRACE_S = 1.0


class SandboxBroken(BaseException):  # not an error the test program may catch
    """The run cannot answer any more: it timed out, ended, flooded its output or sent
    something malformed. A BaseException, so ``except Exception`` in a test cannot hide it."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind  # timeout | ended | output | hostile
        self.reason = reason


@dataclass
class RunResult:
    """The outcome of one sandboxed run, as observed by the parent."""

    exit_code: int | None
    signal: int | None
    timed_out: bool
    output_exceeded: bool
    stdout: str  # with a note of ours when it was cut
    stderr: str
    duration_s: float
    protections: Protections
    error: str | None = None  # the sandbox itself could not run
    workdir: str = ""  # the (already removed) temp dir, unique per run
    stdout_truncated: bool = False
    program_stdout: str = ""  # exactly what the program printed (its first bytes)
    judged: Any = None  # what the judge returned
    broken: SandboxBroken | None = None
    leftovers: bool = False  # the temp dir could not be removed completely

    @property
    def crashed(self) -> bool:
        return self.signal is not None and not self.timed_out


def _failed(reason: str) -> RunResult:
    return RunResult(None, None, False, False, "", "", 0.0, Protections(reported=False),
                     error=reason)


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


def _child_sources() -> dict[str, str]:
    """The sandbox's own modules (files next to this one; frozen bundles ship them as data)."""
    here = Path(__file__).with_name("child")
    out = {}
    for name in _CHILD_FILES:
        try:
            out[name] = (here / name).read_text(encoding="utf-8")
        except OSError:
            import pkgutil

            data = pkgutil.get_data("desktop_app.verify.sandbox.child", name)
            if data is None:
                raise
            out[name] = data.decode("utf-8")
    return out


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


def _sbpl_string(path: str) -> str:
    return '"' + path.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _macos_profile(tmpdir: str, hidden: list[str]) -> str:
    """sandbox-exec: no network, writes (and chmod, utime, xattrs) only in the temp dir,
    no reads of *hidden* (site-packages, the app, homes, secret files)."""
    real = _sbpl_string(os.path.realpath(tmpdir))
    deny_reads = "".join(
        f"(deny file-read* ({'subpath' if os.path.isdir(p) else 'literal'} {_sbpl_string(p)}))"
        for p in hidden)
    return (
        "(version 1)(allow default)(deny network*)"
        "(deny file-write*)"
        f'(allow file-write* (subpath {real}) (literal "/dev/null"))' + deny_reads
    )


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def _socket_dirs() -> list[str]:
    """Where desktop services keep their UNIX sockets (X server, ICE, the session D-Bus and
    other per-user services under /run/user, Docker's socket, ssh-agent's /tmp/ssh-*).
    Seccomp already refuses every socket; covering these is the second layer."""
    found = ["/run", "/var/run", "/tmp/.X11-unix", "/tmp/.ICE-unix", "/tmp/.font-unix",
             "/tmp/.XIM-unix"]
    with contextlib.suppress(OSError):
        found += [entry.path for entry in os.scandir("/tmp")
                  if entry.name.startswith("ssh-") and entry.is_dir(follow_symlinks=False)]
    return found


def hidden_dirs(python: str, tmpdir: str) -> list[str]:
    """Directories the sandbox must not read, to be covered by empty mounts (Linux):
    every site-packages, the app's package and source tree, its resources (the answer
    keys), home directories, and the directories that hold desktop services' sockets. A directory that holds what the sandbox needs (the
    standard library, the interpreter, the temp dir) is not covered; for a home
    directory, its other entries are covered instead."""
    import site
    import sysconfig

    needed = [os.path.realpath(p) for p in (os.path.dirname(os.__file__), python, tmpdir)]
    sites: list[str] = []
    with contextlib.suppress(Exception):
        sites.extend(site.getsitepackages())
    with contextlib.suppress(Exception):
        sites.append(site.getusersitepackages())
    sites.extend(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    # Whatever else is on the path outside the interpreter's own prefixes: an editable
    # install's .pth puts its source checkout there (another checkout holds the practice
    # keys too), and the sandbox's interpreter reads the same .pth before it is confined.
    prefixes = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    sites.extend(p for p in sys.path if p and os.path.isabs(p)
                 and not any(_within(os.path.realpath(p), x) for x in prefixes))
    for scheme_vars in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
        with contextlib.suppress(Exception):
            paths = sysconfig.get_paths(vars=scheme_vars)
            sites.extend([paths["purelib"], paths["platlib"]])
    package = Path(__file__).resolve().parents[2]  # desktop_app/
    app = [str(package)]
    if (package.parent / "pyproject.toml").exists():
        app.append(str(package.parent))  # a source checkout: the whole tree
    with contextlib.suppress(Exception):
        from desktop_app.paths import resources_dir

        app.append(str(resources_dir()))
    homes = {str(Path.home()), "/home", "/root"}
    out: list[str] = []

    def add(path: str) -> None:
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in out and real != "/" \
                and not any(_within(n, real) for n in needed):
            out.append(real)

    for path in [*sites, *app, *_socket_dirs()]:
        add(path)
    for home in homes:
        real = os.path.realpath(home)
        if not os.path.isdir(real):
            continue
        if not any(_within(n, real) for n in needed):
            add(real)
            continue
        with contextlib.suppress(OSError):
            for entry in os.scandir(real):
                if entry.is_dir(follow_symlinks=False):
                    add(entry.path)
    return out


# ----------------------------------------------------------------------------- session


class _LineReader(threading.Thread):
    """Splits the answer pipe into lines, each bounded; hands them over through a queue."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="sandbox-answers", daemon=True)
        self.fd = fd
        self.lines: queue.Queue[bytes | Hostile | None] = queue.Queue()
        self.stop = threading.Event()

    def run(self) -> None:
        # A line may trickle in a byte at a time: it grows in a bytearray (amortised O(1)
        # per byte), never as `buffer + chunk` (which copies the whole line every read).
        buffer = bytearray()
        total = 0
        try:
            for chunk in pipe_chunks(self.fd, self.stop, 1 << 20):
                total += len(chunk)
                view, start = memoryview(chunk), 0
                while (end := chunk.find(b"\n", start)) >= 0:
                    buffer += view[start:end]
                    self.lines.put(bytes(buffer))
                    buffer.clear()
                    start = end + 1
                buffer += view[start:]
                if len(buffer) > MAX_LINE_BYTES or total > _ANSWERS_TOTAL_CAP:
                    self.lines.put(Hostile(_("more data than any answer needs")))
                    return
            self.lines.put(None)  # end of file (or a read error): no more answers
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)


class _Writer(threading.Thread):
    """Writes requests to the child's stdin; a child that stops reading blocks only this."""

    def __init__(self, fd: int) -> None:
        super().__init__(name="sandbox-requests", daemon=True)
        self.fd = fd
        self.pending: queue.Queue[bytes | None] = queue.Queue()

    def run(self) -> None:
        try:
            while True:
                data = self.pending.get()
                if data is None:
                    return
                view = memoryview(data)
                while view:
                    view = view[os.write(self.fd, view):]
        except OSError:
            return
        finally:
            with contextlib.suppress(OSError):
                os.close(self.fd)


class Session:
    """Questions to the sandboxed code and its answers, in order, within the deadline."""

    def __init__(self, writer: _Writer, reader: _LineReader, deadline: float,
                 runaway: threading.Event) -> None:
        self._writer = writer
        self._reader = reader
        self.deadline = deadline
        self._runaway = runaway
        self.broken: SandboxBroken | None = None
        self.loaded: dict[str, Any] | None = None

    def _break(self, kind: str, reason: str) -> SandboxBroken:
        if self.broken is None:
            self.broken = SandboxBroken(kind, reason)
        return self.broken

    def _next_line(self) -> bytes:
        while True:
            if self._runaway.is_set():
                raise self._break("output", _("The program produced far more output than "
                                              "allowed and was stopped."))
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise self._break("timeout", "timeout")
            try:
                item = self._reader.lines.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if item is None:
                raise self._break("ended", _("The program ended before the tests finished."))
            if isinstance(item, Hostile):
                raise self._break("hostile", _("The sandbox sent {what}.").format(what=item))
            return item

    def _receive(self) -> dict[str, Any]:
        line = self._next_line()
        try:
            return parse_line(line)
        except Hostile as exc:
            raise self._break("hostile", _("The sandbox sent {what}.").format(what=exc)) from None

    def start(self) -> dict[str, Any]:
        """The child's first message: the code is loaded (or why not)."""
        if self.loaded is None:
            if self.broken is not None:
                raise self.broken
            self.loaded = self._receive()
        return self.loaded

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """Send one request; its answer as a dict (not yet validated field by field)."""
        if self.broken is not None:
            raise self.broken
        self.start()
        self._writer.pending.put((json.dumps(message) + "\n").encode("utf-8"))
        return self._receive()

    def hostile(self, reason: str) -> SandboxBroken:
        """Mark the run broken because an answer was malformed; returns the exception."""
        return self._break("hostile", _("The sandbox sent {what}.").format(what=reason))

    def close(self) -> None:
        self._writer.pending.put((json.dumps({"op": "bye"}) + "\n").encode("utf-8"))
        self._writer.pending.put(None)


# ----------------------------------------------------------------------------- running


def run_code(
    code: str,
    *,
    limits: Limits | None = None,
    python: str | None = None,
    namespaces: bool = True,
    private_uid_for_root: bool = True,
    judge: Callable[[Session], Any] | None = None,
    secret_paths: Sequence[str] = (),
) -> RunResult:
    """Run *code* in the sandbox and return what happened.

    Without *judge* the code runs as ``__main__``. With it, the code is loaded as a module
    and ``judge(session)`` runs here, in this process, asking the sandbox about the code
    (see :mod:`desktop_app.verify.judge`); its return value is ``RunResult.judged``.
    Blocks until the run is over (at most ``timeout_s`` plus about a second).
    """
    limits = limits or Limits()
    python = python or find_python()
    if not python:
        return _failed(_("No Python interpreter was found to run the code."))
    try:
        sources = _child_sources()
    except OSError as exc:
        return _failed(_("The sandbox's own files are missing: {error}").format(error=exc))
    tmpdir = tempfile.mkdtemp(prefix="triptych-verify-")
    hidden: list[str] = []
    if sys.platform.startswith("linux") or sys.platform == "darwin":
        hidden = hidden_dirs(python, tmpdir)
        hidden += [os.path.realpath(p) for p in secret_paths
                   if os.path.exists(p) and os.path.realpath(p) not in hidden]
    if sys.platform == "darwin" and any(_within(python, h) for h in hidden):
        # sandbox-exec checks reads from the start: a venv's interpreter inside a hidden
        # source tree would not even start. Its real binary is outside.
        python = os.path.realpath(python)
    uid = private_uid(python) if private_uid_for_root else None
    sandbox_exec = sys.platform == "darwin" and shutil.which("sandbox-exec") is not None
    pipes: list[int] = []
    result: RunResult | None = None
    try:
        boot = os.path.join(tmpdir, "boot")
        os.makedirs(os.path.join(boot, _CHILD_PACKAGE))
        for name, text in sources.items():
            Path(boot, _CHILD_PACKAGE, name).write_text(text, encoding="utf-8")
        Path(boot, "start.py").write_text(_START, encoding="utf-8")
        for directory, _dirs, files in os.walk(boot):
            os.chmod(directory, 0o755)
            for name in files:
                os.chmod(os.path.join(directory, name), 0o644)
        if uid is not None:
            os.chown(tmpdir, uid, uid)
        cfg: dict[str, Any] = {
            "tmpdir": tmpdir,
            "parent_pid": os.getpid(),
            "mode": "tests" if judge is not None else "run",
            "code": code,
            "namespaces": namespaces,
            "uid": uid,
            "gid": uid,
            "sandbox_exec": sandbox_exec,
            "hide": hidden,
            "limits": {
                "memory_mb": limits.memory_mb,
                "cpu_s": int(limits.timeout_s) + 2,
                "processes": limits.processes,
                "file_mb": limits.file_mb,
                "scratch_mb": limits.scratch_mb,
            },
        }
        cmd = [python, "-I", "-X", "utf8", os.path.join(boot, "start.py")]
        if sandbox_exec:
            cmd = ["sandbox-exec", "-p", _macos_profile(tmpdir, hidden), *cmd]
        popen_kw: dict[str, Any] = {}
        status_r = result_r = None
        if os.name == "posix":
            status_r, status_w = os.pipe()
            result_r, result_w = os.pipe()
            pipes += [status_r, status_w, result_r, result_w]
            cfg["status_fd"], cfg["result_fd"] = status_w, result_w
            popen_kw = {"pass_fds": (status_w, result_w), "start_new_session": True}
        else:
            result_r, result_w = os.pipe()
            pipes += [result_r, result_w]
            import msvcrt

            handle = msvcrt.get_osfhandle(result_w)  # type: ignore[attr-defined]
            os.set_handle_inheritable(handle, True)  # type: ignore[attr-defined]
            cfg["status_file"], cfg["result_handle"] = "status.jsonl", handle
            startup = subprocess.STARTUPINFO()  # type: ignore[attr-defined]
            startup.lpAttributeList = {"handle_list": [handle]}
            popen_kw = {"creationflags": getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)
                        | getattr(subprocess, "CREATE_NO_WINDOW", 0), "startupinfo": startup}
        started = time.monotonic()
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, cwd=tmpdir, env=_allowed_env(tmpdir),
                                    close_fds=True, **popen_kw)
        except OSError as exc:
            return _failed(_("Could not start the sandbox: {error}").format(error=exc))
        finally:
            for key in ("status_fd",):
                if key in cfg:
                    os.close(cfg[key])
                    pipes.remove(cfg[key])
            os.close(result_w)
            pipes.remove(result_w)
        try:
            result = _supervise(proc, cfg, limits, uid, started, status_r, result_r, pipes,
                                sandbox_exec, judge)
        except BaseException:
            stop_tree(proc, uid)  # e.g. no file descriptor left for a reader: still killed
            raise
        return result
    finally:
        for fd in pipes:
            with contextlib.suppress(OSError):
                os.close(fd)
        gone = remove_tree(tmpdir)
        if result is not None:
            result.leftovers = not gone


def _config_bytes(cfg: dict[str, Any]) -> bytes:
    body = json.dumps(cfg, ensure_ascii=True).encode("ascii")
    return str(len(body)).encode("ascii") + b"\n" + body


def _supervise(proc: subprocess.Popen[bytes], cfg: dict[str, Any], limits: Limits,
               uid: int | None, started: float, status_r: int | None, result_r: int | None,
               pipes: list[int], sandbox_exec: bool,
               judge: Callable[[Session], Any] | None) -> RunResult:
    runaway = threading.Event()
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    out = Reader(os.dup(proc.stdout.fileno()), limits.output_bytes, "stdout", runaway)
    err = Reader(os.dup(proc.stderr.fileno()), limits.output_bytes, "stderr", runaway)
    proc.stdout.close()
    proc.stderr.close()
    readers = [out, err]
    status: Reader | None = None
    if status_r is not None:
        status = Reader(status_r, _STATUS_CAP, "status")
        readers.append(status)
        pipes.remove(status_r)
    answers: _LineReader | None = None
    if result_r is not None:
        answers = _LineReader(result_r)
        pipes.remove(result_r)
    writer = _Writer(os.dup(proc.stdin.fileno()))
    proc.stdin.close()
    for thread in [*readers, writer, *([answers] if answers else [])]:
        thread.start()
    writer.pending.put(_config_bytes(cfg))

    deadline = started + limits.timeout_s
    timed_out = False
    judged: Any = None
    broken: SandboxBroken | None = None
    try:
        if judge is not None and answers is not None:
            session = Session(writer, answers, deadline, runaway)
            try:
                judged = judge(session)
            except SandboxBroken as exc:
                broken = exc
            except Hostile as exc:  # a field the judge found malformed on its own
                broken = session.hostile(str(exc))
            except Exception as exc:  # noqa: BLE001 - the checker's own failure; no reply text
                broken = SandboxBroken("internal", _(
                    "The checker failed while talking to the sandbox ({error}).").format(
                    error=type(exc).__name__))
            broken = broken or session.broken
            session.close()
            timed_out = broken is not None and broken.kind == "timeout"
            grace = min(deadline, time.monotonic() + _BYE_GRACE_S)
            while not exited_unreaped(proc) and time.monotonic() < grace:
                time.sleep(0.01)
        else:
            writer.pending.put(None)
            while not exited_unreaped(proc):
                if runaway.is_set():
                    break
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                time.sleep(0.01)
    finally:
        # Whatever happened above (even an exception this function does not expect),
        # the tree is killed and the request pipe closed before anything else.
        writer.pending.put(None)
        stop_tree(proc, uid)
    duration = time.monotonic() - started
    drained: list[Reader | _LineReader] = [*readers, *([answers] if answers else [])]
    for thread in drained:
        thread.join(timeout=2.0)
        if thread.is_alive():  # something outlived the sandbox and holds a pipe open
            thread.stop.set()
            if uid is not None:
                kill_uid(uid)
            thread.join(timeout=2.0)
    writer.join(timeout=2.0)

    if status is not None:
        status_data = bytes(status.kept)
    else:
        try:
            with open(os.path.join(cfg["tmpdir"], cfg["status_file"]), "rb") as handle:
                status_data = handle.read(_STATUS_CAP)
        except OSError:
            status_data = b""
    report: dict[str, Any] = {}
    exit_event: dict[str, Any] | None = None
    for line in status_data.splitlines()[:8]:
        try:
            message = parse_line(line)
        except Hostile:
            continue
        if message.get("event") == "protections" and not report:
            report = message
        elif message.get("event") == "exit" and exit_event is None:
            exit_event = message

    exit_code, sig = proc.returncode, None
    if exit_event is not None:
        code, signal_number = exit_event.get("code"), exit_event.get("signal")
        exit_code = code if type(code) is int else None
        sig = signal_number if type(signal_number) is int else None
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
        stdout=out.text(),
        stderr=err.text(),
        duration_s=round(duration, 3),
        protections=Protections.from_report(report, limits, sandbox_exec),
        workdir=cfg["tmpdir"],
        stdout_truncated=out.truncated,
        program_stdout=out.program_text(),
        judged=judged,
        broken=broken,
    )


# ------------------------------------------------------------------- isolation summary

_SUMMARY_LOCK = threading.Lock()
_SUMMARY: dict[tuple[float, int, int, int], Protections] = {}


def detect_protections(limits: Limits | None = None) -> Protections:
    """Run a trivial program once in the sandbox and report what confined it (cached)."""
    limits = limits or Limits()
    key = (limits.timeout_s, limits.memory_mb, limits.output_bytes, limits.processes)
    with _SUMMARY_LOCK:
        if key not in _SUMMARY:
            _SUMMARY[key] = run_code("pass\n", limits=limits).protections
        return _SUMMARY[key]


def isolation_summary(limits: Limits | None = None) -> str:
    """One plain sentence on what protects this machine from model code, and what does not.

    The first call runs a trivial program in the sandbox (about 0.1 s); later calls are
    cached. Safe to call from any thread.
    """
    return detect_protections(limits).summary()
