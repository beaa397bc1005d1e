"""One seccomp-BPF filter for the sandboxed interpreter (Linux, x86-64 and arm64).

Always: no sockets. ``socket()`` is refused for every address family, so the code cannot
connect to a pathname or abstract UNIX socket outside (the X server, the session D-Bus,
ssh-agent, Docker) nor use the network where no namespace hides it; ``socketpair()`` is
allowed only as ``AF_UNIX``/``SOCK_STREAM`` (asyncio's self-pipe), a pair already
connected to itself that can reach nothing else. ``io_uring_setup`` is refused (io_uring
can open and connect sockets without the system calls filtered here), and so are
``ptrace``, ``process_vm_readv``/``writev`` and ``pidfd_getfd``, which could copy another
process's memory or take its open sockets.

Optionally (``nofork``): no new processes; threads stay allowed.

A foreign system-call ABI (``int 0x80``, x32) is refused outright, so none of this can be
side-stepped through ``socketcall``. Standard library only: this runs inside the sandbox.
"""

from __future__ import annotations

import ctypes
import platform

_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2
_CLONE_THREAD = 0x00010000
_AF_UNIX = 1
_SOCK_STREAM = 1
_SOCK_TYPE_MASK = 0xF  # SOCK_NONBLOCK and SOCK_CLOEXEC live above it

_EPERM, _EACCES, _ENOSYS = 1, 13, 38
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000

# BPF opcodes: load a 32-bit word of seccomp_data, jumps, AND, return.
_LD, _JEQ, _JGE, _JSET, _AND, _RET = 0x20, 0x15, 0x35, 0x45, 0x54, 0x06
_OFF_NR, _OFF_ARCH, _OFF_ARG0, _OFF_ARG1 = 0, 4, 16, 24  # low 32 bits (little endian)

# arch token, and the numbers this filter needs (None: not on this architecture).
_TABLES: dict[str, dict[str, int | None]] = {
    "x86_64": {"arch": 0xC000003E, "socket": 41, "socketpair": 53, "clone": 56, "fork": 57,
               "vfork": 58, "clone3": 435, "ptrace": 101, "process_vm_readv": 310,
               "process_vm_writev": 311, "pidfd_getfd": 438, "io_uring_setup": 425},
    "aarch64": {"arch": 0xC00000B7, "socket": 198, "socketpair": 199, "clone": 220,
                "fork": None, "vfork": None, "clone3": 435, "ptrace": 117,
                "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
                "io_uring_setup": 425},
}
_ALIASES = {"amd64": "x86_64", "arm64": "aarch64"}


def _table() -> dict[str, int | None] | None:
    machine = platform.machine().lower()
    return _TABLES.get(_ALIASES.get(machine, machine))


def supported() -> bool:
    return _table() is not None


def _program(table: dict[str, int | None], nofork: bool) -> list[tuple[int, int, int, int]]:
    """The filter as (code, jt, jf, k). Each rule is a self-contained block that compares
    the system-call number (in A) and either returns or falls through to the next block
    with A unchanged (blocks that load arguments return on every path)."""
    deny = _RET_ERRNO | _EPERM
    out: list[tuple[int, int, int, int]] = [
        (_LD, 0, 0, _OFF_ARCH),
        (_JEQ, 1, 0, int(table["arch"] or 0)),
        (_RET, 0, 0, deny),                        # a foreign ABI
        (_LD, 0, 0, _OFF_NR),
        (_JGE, 0, 1, 0x40000000),                  # x32 numbers
        (_RET, 0, 0, deny),
    ]

    def refuse(name: str, errno: int) -> None:
        number = table.get(name)
        if number is not None:
            out.extend([(_JEQ, 0, 1, number), (_RET, 0, 0, _RET_ERRNO | errno)])

    refuse("socket", _EACCES)
    for name in ("ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"):
        refuse(name, _EPERM)
    refuse("io_uring_setup", _ENOSYS)
    if nofork:
        refuse("clone3", _ENOSYS)  # libc falls back to clone, which is checked below
        refuse("fork", _EPERM)
        refuse("vfork", _EPERM)
        out.extend([
            (_JEQ, 0, 4, int(table["clone"] or 0)),
            (_LD, 0, 0, _OFF_ARG0),                # the clone flags
            (_JSET, 0, 1, _CLONE_THREAD),
            (_RET, 0, 0, _RET_ALLOW),              # a thread
            (_RET, 0, 0, deny),                    # a process
        ])
    out.extend([
        (_JEQ, 0, 7, int(table["socketpair"] or 0)),
        (_LD, 0, 0, _OFF_ARG0),
        (_JEQ, 0, 4, _AF_UNIX),                    # domain
        (_LD, 0, 0, _OFF_ARG1),
        (_AND, 0, 0, _SOCK_TYPE_MASK),
        (_JEQ, 0, 1, _SOCK_STREAM),                # type, without its flags
        (_RET, 0, 0, _RET_ALLOW),
        (_RET, 0, 0, _RET_ERRNO | _EACCES),
        (_RET, 0, 0, _RET_ALLOW),                  # every other system call
    ])
    return out


def install(nofork: bool) -> bool:
    """Install the filter on this thread (and what it starts). Needs ``no_new_privs`` (or
    CAP_SYS_ADMIN). Returns False where it could not be installed."""
    table = _table()
    if table is None:
        return False

    class Insn(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                    ("k", ctypes.c_uint32)]

    class Prog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Insn))]

    code = _program(table, nofork)
    insns = (Insn * len(code))(*[Insn(*c) for c in code])
    prog = Prog(len(code), ctypes.cast(insns, ctypes.POINTER(Insn)))
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(ctypes.c_int(_PR_SET_SECCOMP), ctypes.c_ulong(_SECCOMP_MODE_FILTER),
                           ctypes.byref(prog), ctypes.c_ulong(0), ctypes.c_ulong(0)) == 0)
