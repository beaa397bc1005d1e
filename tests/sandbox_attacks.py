"""Pieces of hostile replies that several adversarial suites use."""

from __future__ import annotations

import textwrap

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
