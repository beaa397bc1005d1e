"""The sandbox contains hostile model code: each case ends in bounded time, the test
process is unharmed, and nothing is left running. See docs/verify.md for the table of
cases, expected outcomes, and which ones need OS isolation that may be absent."""

from __future__ import annotations

import os
import secrets
import socket
import stat
import sys
import textwrap
import time
from pathlib import Path

import pytest

from desktop_app.verify import detect_protections, isolation_summary, verify_reply
from desktop_app.verify.sandbox import Limits, run_code
from tests.sandbox_attacks import nothing_left_running

TIMEOUT = 1.0

PROTECTIONS = detect_protections()


def _live_pids_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes()
            state = Path(f"/proc/{name}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker.encode() in cmdline and state != "Z":
            found.append(int(name))
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _run(code: str, timeout: float = TIMEOUT, **kw):
    started = time.monotonic()
    result = run_code(code, limits=Limits(timeout_s=timeout), **kw)
    elapsed = time.monotonic() - started
    assert elapsed < timeout + 4.0, f"not bounded: {elapsed:.1f} s"
    return result


def _assert_no_leftovers(marker: str) -> None:
    deadline = time.monotonic() + 2.0
    while _live_pids_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _live_pids_with(marker), "a sandboxed process outlived the run"


def _system_python() -> str | None:
    """A world-readable interpreter, with which a root test run gets a private uid."""
    for path in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(path) and os.stat(os.path.realpath(path)).st_mode & stat.S_IXOTH:
            return path
    return None


needs_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")


# ------------------------------------------------------------------ ordinary behaviour


def test_runs_code_and_captures_output():
    result = _run("import sys\nprint('hello')\nprint('oops', file=sys.stderr)\n")
    assert result.exit_code == 0 and not result.timed_out
    assert result.stdout.strip() == "hello"
    assert result.stderr.strip() == "oops"
    assert result.protections.reported


def test_standard_library_imports_work():
    result = _run("import json, math, re, collections, itertools, fractions, random\nprint('ok')")
    assert result.stdout.strip() == "ok", result.stderr


def test_isolation_summary_is_plain_and_cached():
    text = isolation_summary()
    assert text.startswith("Separate Python process")
    assert "timeout" in text and "output capped at 64 KB" in text
    assert isolation_summary() is not None  # cached: no second probe run
    if PROTECTIONS.missing():
        assert "NOT active" in text


def test_environment_is_allow_listed(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TRIPTYCH_SECRET_TOKEN", "hunter2")
    result = _run("import os\nprint(sorted(os.environ))\nprint(os.getcwd())")
    assert "TRIPTYCH_SECRET_TOKEN" not in result.stdout
    assert "hunter2" not in result.stdout
    assert "triptych-verify-" in result.stdout  # runs in its fresh temp dir


# --------------------------------------------------------------------- adversarial


def test_infinite_loop_times_out():
    result = _run("while True:\n    pass\n")
    assert result.timed_out


def test_sigterm_ignored_still_killed():
    marker = f"{secrets.randbelow(10**6)}.25"
    code = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            f"tag = '{marker}'\nwhile True:\n    time.sleep(0.05)\n")
    result = _run(code)
    assert result.timed_out
    _assert_no_leftovers(marker)


@pytest.mark.skipif(not PROTECTIONS.process_limit, reason="no process-count limit here")
def test_fork_bomb_is_contained():
    code = ("import os\nfor _ in range(100000):\n    try:\n        os.fork()\n"
            "    except OSError:\n        pass\n")
    result = _run(code, timeout=1.0)
    # Either forks are refused (seccomp) or bounded by RLIMIT_NPROC / the Job Object,
    # and the whole tree is killed at the end.
    assert result.timed_out or result.exit_code is not None
    assert PROTECTIONS.process_limit, "no process limit: the fork bomb test is not safe here"
    _assert_no_leftovers(result.workdir)


def test_memory_bomb_hits_the_cap():
    result = _run("x = []\nwhile True:\n    x.append(bytearray(10**7))\n")
    assert not result.timed_out
    assert result.exit_code != 0 or result.signal
    assert "MemoryError" in result.stderr or result.signal


def test_endless_output_is_capped_and_stopped():
    result = _run("while True:\n    print('x' * 1000)\n")
    assert result.output_exceeded and not result.timed_out
    assert "output truncated" in result.stdout
    assert len(result.stdout) < 70 * 1024


def test_sys_exit_and_os_exit_report_exit_codes():
    assert _run("import sys\nsys.exit(3)").exit_code == 3
    assert _run("import os\nos._exit(7)").exit_code == 7
    assert _run("raise SystemExit('bye')").exit_code == 1


def test_input_gets_eof_not_the_terminal():
    result = _run("print(input('name? '))")
    assert result.exit_code == 1 and "EOFError" in result.stderr


def test_deep_recursion_is_contained():
    code = "import sys\nsys.setrecursionlimit(10**7)\ndef f(n):\n    return f(n + 1)\nf(0)\n"
    result = _run(code)
    assert result.timed_out or result.signal or result.exit_code != 0


def test_segfault_through_ctypes_is_reported():
    result = _run("import ctypes\nctypes.string_at(0)\n")
    assert result.signal == 11 or result.exit_code not in (0, None)


@needs_linux
def test_detached_grandchild_is_killed():
    marker = f"{secrets.randbelow(10**6)}.75"
    code = (
        "import os, time\n"
        "try:\n    pid = os.fork()\nexcept OSError as exc:\n    print('no fork:', exc)\n    raise SystemExit(0)\n"
        "if pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\n"
        "os.waitpid(pid, 0)\nprint('detached')\n"
    )
    result = _run(code)
    assert result.exit_code == 0
    _assert_no_leftovers(marker)


@needs_linux
def test_write_and_delete_outside_temp_dir_are_refused(tmp_path: Path):
    if not PROTECTIONS.writes_confined:
        pytest.skip("no filesystem confinement on this machine (see docs/verify.md)")
    canary = tmp_path / "canary.txt"
    canary.write_text("keep")
    os.chmod(tmp_path, 0o777)
    os.chmod(canary, 0o666)
    evil = tmp_path / "evil.txt"
    code = (f"import os\nfor act in (lambda: os.remove({str(canary)!r}),\n"
            f"            lambda: open({str(evil)!r}, 'w').write('x'),\n"
            f"            lambda: open({str(canary)!r}, 'w').write('gone')):\n"
            "    try:\n        act()\n        print('did it')\n"
            "    except OSError as exc:\n        print('refused', type(exc).__name__)\n"
            "open('inside.txt', 'w').write('fine')\nprint('inside ok')\n")
    result = _run(code)
    assert "did it" not in result.stdout, result.stdout
    assert "inside ok" in result.stdout
    assert canary.read_text() == "keep" and not evil.exists()


@needs_linux
def test_parent_environment_unreadable_via_proc(monkeypatch: pytest.MonkeyPatch):
    if not (PROTECTIONS.landlock_fs or "proc" in PROTECTIONS.namespaces
            or PROTECTIONS.uid is not None):
        pytest.skip("no /proc isolation on this machine (see docs/verify.md)")
    monkeypatch.setenv("TRIPTYCH_SECRET_TOKEN", "hunter2-proc")
    code = (f"import os\nfor pid in ({os.getpid()}, os.getppid(), 1):\n"
            "    try:\n        print(open(f'/proc/{pid}/environ', 'rb').read())\n"
            "    except OSError as exc:\n        print('refused', type(exc).__name__)\n")
    result = _run(code)
    assert "hunter2-proc" not in result.stdout
    assert result.stdout.count("refused") == 3


def test_socket_cannot_reach_the_host():
    if not PROTECTIONS.network_blocked:
        pytest.skip("no network isolation on this machine (see docs/verify.md)")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]
        code = ("import socket\ntry:\n"
                f"    s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
                "    s.sendall(b'pwned')\n    print('connected')\n"
                "except OSError as exc:\n    print('refused', type(exc).__name__)\n")
        result = _run(code)
        assert "connected" not in result.stdout
        with pytest.raises(BlockingIOError):
            server.accept()


def _unix_listeners(tmp_path: Path) -> tuple[list[socket.socket], list[object]]:
    """A pathname stream socket (as the X server's), a pathname datagram socket (as
    /dev/log) and an abstract one (as D-Bus's), all open to anyone, listening here."""
    os.chmod(tmp_path, 0o777)
    stream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stream.bind(str(tmp_path / "x0"))
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(str(tmp_path / "log"))
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract_name = b"\0triptych-test-" + secrets.token_hex(8).encode()
    abstract.bind(abstract_name)
    for sock in (stream, abstract):
        sock.listen(4)
    for sock in (stream, dgram, abstract):
        sock.setblocking(False)
    os.chmod(tmp_path / "x0", 0o777)
    os.chmod(tmp_path / "log", 0o777)
    return [stream, dgram, abstract], [str(tmp_path / "x0"), str(tmp_path / "log"), abstract_name]


UNIX_ATTACK = textwrap.dedent("""\
    import socket
    def attempt(what, act):
        try:
            act()
            print('REACHED', what)
        except OSError as exc:
            print('refused', what, type(exc).__name__)
    def connect(kind, address):
        s = socket.socket(socket.AF_UNIX, kind)
        s.connect(address)
        s.send(b'pwned')
    def via_pair(address):
        a, b = socket.socketpair()
        a.sendto(b'pwned', address)
    def dgram_pair(address):
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        a.sendto(b'pwned', address)
    STREAM, DGRAM, ABSTRACT = ADDRESSES
    attempt('stream', lambda: connect(socket.SOCK_STREAM, STREAM))
    attempt('dgram', lambda: connect(socket.SOCK_DGRAM, DGRAM))
    attempt('abstract', lambda: connect(socket.SOCK_STREAM, ABSTRACT))
    attempt('pair-sendto', lambda: via_pair(DGRAM))
    attempt('dgram-pair', lambda: dgram_pair(DGRAM))
    attempt('inet', lambda: socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    attempt('netlink', lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW))
    """)


def _nothing_arrived(listeners: list[socket.socket]) -> None:
    stream, dgram, abstract = listeners
    for server in (stream, abstract):
        with pytest.raises(BlockingIOError):
            server.accept()
    with pytest.raises(BlockingIOError):
        dgram.recv(100)


@needs_linux
def test_no_unix_socket_outside_can_be_reached(tmp_path: Path):
    if not PROTECTIONS.seccomp_nosocket:
        pytest.skip("no seccomp socket filter on this machine (see docs/verify.md)")
    listeners, addresses = _unix_listeners(tmp_path)
    try:
        result = _run(f"ADDRESSES = {addresses!r}\n" + UNIX_ATTACK)
        assert "REACHED" not in result.stdout, result.stdout + result.stderr
        assert result.stdout.count("refused") == 7, result.stdout + result.stderr
        _nothing_arrived(listeners)
    finally:
        for sock in listeners:
            sock.close()
    assert "no sockets" in PROTECTIONS.summary()


@needs_linux
def test_a_stream_socketpair_still_works_inside():
    # asyncio's event loop needs one; a pair connected to itself reaches nothing outside.
    code = ("import asyncio, socket\na, b = socket.socketpair()\na.send(b'x')\n"
            "print('pair', b.recv(1))\nasync def f():\n    return 3\n"
            "print('asyncio', asyncio.run(f()))\n")
    result = _run(code)
    assert "pair b'x'" in result.stdout and "asyncio 3" in result.stdout, result.stderr


@needs_linux
def test_a_reply_that_phones_a_local_socket_does_not_pass_or_reach_it(tmp_path: Path):
    if not PROTECTIONS.seccomp_nosocket:
        pytest.skip("no seccomp socket filter on this machine (see docs/verify.md)")
    listeners, addresses = _unix_listeners(tmp_path)
    code = (f"ADDRESSES = {addresses!r}\n" + UNIX_ATTACK.replace("\n", "\n    ")
            .replace("import socket", "def add(a, b):\n    import socket", 1)
            + "\n    return 0\n")
    try:
        with nothing_left_running():
            verdict = verify_reply(f"```python\n{code}```", tests=TESTS, timeout_s=TIMEOUT)
        assert verdict.verdict == "fail", verdict.reason
        _nothing_arrived(listeners)
    finally:
        for sock in listeners:
            sock.close()


@needs_linux
def test_cannot_signal_the_parent():
    if not ("pid" in PROTECTIONS.namespaces or PROTECTIONS.uid is not None
            or PROTECTIONS.landlock_scope):
        pytest.skip("nothing stops a same-uid signal on this machine (see docs/verify.md)")
    code = (f"import os, signal\ntry:\n    os.kill({os.getpid()}, signal.SIGTERM)\n"
            "    print('sent')\nexcept OSError as exc:\n    print('refused', type(exc).__name__)\n")
    result = _run(code)
    assert "refused" in result.stdout


# ------------------------------------------------------------- forged pass signals

TESTS = "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n"


@pytest.mark.parametrize("code, verdict", [
    ("def add(a, b):\n    return a + b\n", "pass"),
    ("class Yes:\n    def __eq__(self, other):\n        return True\n"
     "def add(a, b):\n    return Yes()\n", "fail"),
    ("class Int(int):\n    def __eq__(self, other):\n        return True\n"
     "def add(a, b):\n    return Int(0)\n", "fail"),
    ("print('ALL TESTS PASSED')\nimport sys\nsys.exit(0)\n", "fail"),
    ("import os\nprint('ALL TESTS PASSED')\nos._exit(0)\n", "error"),
    ("import os\ndef add(a, b):\n    os._exit(0)\n", "error"),
    ("import builtins\nbuiltins.AssertionError = Exception\ndef add(a, b):\n    return 0\n", "fail"),
    ("import os\nos.write(3, b'{\"done\": 0}\\n')\ndef add(a, b):\n    return 0\n", "fail"),
])
def test_forged_pass_signals_do_not_pass(code: str, verdict: str):
    result = verify_reply(f"```python\n{code}```", tests=TESTS, timeout_s=TIMEOUT)
    assert result.verdict == verdict, result.reason


def test_harness_record_forgery_is_rejected():
    # Well-formed answers written to every fd are at most the reply's own outputs (the
    # tests never reach the sandbox), and answers out of turn make the run an error.
    code = ("import os, json\n"
            "for fd in range(3, 20):\n    try:\n"
            "        os.write(fd, b'{\"p\": 0, \"k\": 1, \"v\": 5}\\n')\n"
            "    except OSError:\n        pass\n"
            "def add(a, b):\n    return 5\n")
    result = verify_reply(f"```python\n{code}```", tests="assert add(2, 3) == 5\nassert add(1, 1) == 2\n",
                          timeout_s=TIMEOUT)
    assert result.verdict in ("fail", "error")


# -------------------------------------------------------- private-uid path (as root)


@needs_linux
@pytest.mark.skipif(os.name != "posix" or os.geteuid() != 0 or _system_python() is None,
                    reason="needs root and a world-readable system Python")
def test_private_uid_bounds_forks_and_kills_the_tree():
    marker = f"{secrets.randbelow(10**6)}.5"
    code = (
        "import os, time\npid = os.fork()\n"
        "if pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        f"        os.execv('/bin/sleep', ['sleep', '{marker}'])\n    os._exit(0)\n"
        "n = 0\nfor _ in range(200):\n    try:\n        if os.fork() == 0:\n            time.sleep(30)\n"
        "        n += 1\n    except OSError:\n        break\nprint('forked', n)\n"
    )
    result = _run(code, python=_system_python())
    assert result.protections.uid is not None and result.protections.nproc
    forked = int(result.stdout.split()[-1])
    assert forked < result.protections.nproc
    _assert_no_leftovers(marker)
    _assert_no_leftovers(result.workdir)
    uid = f"Uid:\t{result.protections.uid}\t"
    assert not [n for n in os.listdir("/proc") if n.isdigit()
                and uid in _read(f"/proc/{n}/status")]


def test_three_panes_verify_concurrently_from_threads():
    from concurrent.futures import ThreadPoolExecutor

    replies = [
        ("```python\ndef add(a, b):\n    return a + b\n```", "pass"),
        ("```python\ndef add(a, b):\n    return a * b\n```", "fail"),
        ("```python\ndef add(a, b):\n    while True:\n        pass\n```", "timeout"),
    ]
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = [pool.submit(verify_reply, reply, tests=TESTS, timeout_s=TIMEOUT)
                   for reply, _ in replies]
        verdicts = [f.result(timeout=30).verdict for f in futures]
    assert verdicts == [v for _, v in replies]
