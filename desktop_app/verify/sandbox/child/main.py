"""Entry point of the sandboxed interpreter: read the configuration, confine, run.

The parent starts ``python -I -X utf8 -c "…"`` which puts this package's directory on
``sys.path`` and calls :func:`main`. Standard input carries a length-prefixed JSON
configuration (including the code to run), then, in tests mode, the parent's requests.
Everything this package needs is imported before any confinement or model code.
"""

from __future__ import annotations

import json
import os
import sys
import traceback  # noqa: F401 - preloaded: the harness prints tracebacks after confinement
from typing import Any

from . import codec, common, graph, harness  # noqa: F401 - preloaded for the same reason

_PRIVATE_FD_MIN = 100  # answers and requests live far from the low fds code may guess


def _read_exactly(fd: int, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            raise SystemExit(72)
        data += chunk
    return bytes(data)


def read_config() -> dict[str, Any]:
    header = b""
    while not header.endswith(b"\n"):
        byte = os.read(0, 1)
        if not byte or len(header) > 20:
            raise SystemExit(72)
        header += byte
    config = json.loads(_read_exactly(0, int(header)).decode("utf-8"))
    if type(config) is not dict:
        raise SystemExit(72)
    return config


def _private_fd(fd: int) -> int:
    """A copy of *fd* numbered at least 100 (POSIX), the original closed."""
    if os.name != "posix":
        return os.dup(fd)
    import fcntl

    moved = fcntl.fcntl(fd, fcntl.F_DUPFD, _PRIVATE_FD_MIN)
    if fd > 2:
        os.close(fd)
    return moved


def _preload() -> None:
    """Import now what is needed later: after the uid switch, Landlock or the file-system
    view, the interpreter's own files may no longer be readable."""
    if sys.platform != "win32":
        import ctypes  # noqa: F401
        import platform  # noqa: F401
        import resource  # noqa: F401
        import signal  # noqa: F401
    if sys.platform.startswith("linux"):
        from . import linux

        linux.readable_paths()
        linux.landlock_abi()


def main() -> None:
    config = read_config()
    _preload()
    if config.get("mode") == "tests":
        config["request_fd"] = _private_fd(os.dup(0))
        if config.get("result_fd") is not None:
            config["result_fd"] = _private_fd(int(config["result_fd"]))
    try:
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
    except OSError:
        pass
    sys.stdin = open(os.devnull, encoding="utf-8")  # noqa: SIM115
    os.chdir(config["tmpdir"])
    if sys.platform.startswith("linux"):
        from .linux import linux_main

        linux_main(config)
    elif sys.platform == "win32":
        from .other import windows_main

        windows_main(config)
    else:
        from .other import posix_other_main

        posix_other_main(config)
