"""Pieces of hostile replies that several adversarial suites use."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
import textwrap
import time
from collections.abc import Iterator

# Finds the answer pipe from inside the sandbox, as an attacker would: a FIFO opened for
# writing, among the fds the harness keeps.
FIND_ANSWER_FD = textwrap.dedent("""\
    import os, fcntl, stat
    def _answer_fd():
        for fd in range(3, 256):
            try:
                mode = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE
                if mode == os.O_WRONLY and stat.S_ISFIFO(os.fstat(fd).st_mode):
                    return fd
            except OSError:
                pass
        return None
    """)


def _live_with(token: str) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and any(
                    token in part for part in proc.info["cmdline"] or []):
                found.append(proc.pid)
        except (psutil.Error, TypeError):
            continue
    return found


@contextlib.contextmanager
def nothing_left_running() -> Iterator[str]:
    """Sandbox runs started inside get their temp dir under a directory whose name holds a
    fresh token, which every sandbox process carries in its command line. On leaving: no
    process with that token is alive, the test process has no child left, and every temp
    dir is gone. Real processes, no mocks."""
    import psutil

    token = "tt" + secrets.token_hex(6)
    # children from before (say, Verify's idle math helpers) are not this block's
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    base = tempfile.mkdtemp(prefix=f"triptych-track-{token}-")
    os.chmod(base, 0o755)  # a private uid (root runs) must reach the run's temp dir
    old = tempfile.tempdir
    tempfile.tempdir = base
    try:
        yield token
    finally:
        tempfile.tempdir = old
    try:
        deadline = time.monotonic() + 3.0
        while _live_with(token) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _live_with(token), "a sandbox process outlived its verdict"
        children = [c for c in psutil.Process().children(recursive=True)
                    if c.pid not in before and c.status() != psutil.STATUS_ZOMBIE]
        assert not children, f"the test process still has children: {children}"
        assert not os.listdir(base), f"temp dirs left behind: {os.listdir(base)}"
    finally:
        with contextlib.suppress(OSError):
            os.rmdir(base)  # only when empty: leftovers stay for a look
