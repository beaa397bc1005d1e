"""How llama.cpp may run on this machine without crashing: decided once, remembered.

llama.cpp puts a model's weights in "extra" CPU buffer types when it can: AMX tiles on
Intel Xeons since Sapphire Rapids, and repacked layouts (CPU_REPACK) that decode faster on
AVX2, AVX-512 and NEON. Both are the fastest path where they work, and neither can be
trusted everywhere: on an AMX Xeon in a VM the AMX matrix multiply faults
(``ldtilecfg``, llama.cpp issue 20824) on any prompt of more than one token, and a
runtime-dispatch bundle can pick a kernel library (``libggml-cpu-sapphirerapids``) that
dies of SIGILL there. The only cure llama.cpp offers is not to use them
(``use_extra_bufts = false``; another kernel library).

So the first model process on a machine runs a short batched probe with the fast setting
(:func:`needs_probe`), and the parent (``engine.ModelWorker``) watches: a process that dies
of a crash signal while loading, probing or in its first generation is started again one
rung down :func:`fallback`'s ladder, and once the rung below works the verdict is kept in
``native-checks.json`` under a key of this CPU and this llama.cpp build
(:func:`machine_key`), so no later start crashes again. A crash on every rung is not
blamed on the buffers: nothing is remembered and the pane shows the crash.

Plain data and the standard library; the model process applies the setting
(``backends.llama``, the bundle's runtime hook for the kernel library).
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import os
import platform
import signal
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from desktop_app import paths

CHECKS_FILE = "native-checks.json"
# The signals a native kernel dies of when the CPU or the OS refuses its instructions.
CRASH_SIGNALS = frozenset(
    getattr(signal, name) for name in ("SIGSEGV", "SIGILL", "SIGBUS", "SIGFPE")
    if hasattr(signal, name))
# Environment of a model process: CPU-kernel libraries the bundle's runtime hook must not
# load (comma-separated variant names, "sapphirerapids,icelake"), and the one it loaded
# instead (set by the hook: its scoring opens the others too, so the mapped files do not say).
AVOID_KERNELS_ENV = "TRIPTYCH_AVOID_CPU_KERNELS"
CHOSEN_KERNELS_ENV = "TRIPTYCH_CPU_KERNELS"
# Set to "0" or "1" to decide the extra buffers by hand (no probe, nothing remembered).
EXTRA_BUFFERS_ENV = "TRIPTYCH_EXTRA_BUFFERS"
# Fault injection for tests of machines we do not have: "probe", "load", "decode" or
# "kernels", optionally ":SIGILL" and ":always" (see inject_crash).
INJECT_CRASH_ENV = "TRIPTYCH_INJECT_CRASH"


class Verdict(StrEnum):
    """What is known about llama.cpp's extra weight buffers on this machine."""

    UNTESTED = "untested"
    SAFE = "safe"  # a batched probe with them ran
    CRASHES = "crashes"  # a process with them died, the same without them did not


@dataclass(frozen=True)
class NativeSetup:
    """How a model process sets up llama.cpp: the fastest rung not known to crash."""

    extra_buffers: bool = True  # AMX / repacked weights (llama.cpp's default)
    avoid_kernels: tuple[str, ...] = ()  # CPU-kernel libraries of a dispatch build not to load
    forced: bool = False  # set by hand (TRIPTYCH_EXTRA_BUFFERS): never probed or remembered
    crashed_with: str = ""  # the signal the faster setting died of here ("SIGSEGV")

    def note(self, amx: bool | None = None) -> str:
        """What is off and why, for "where it ran": ``AMX off (llama.cpp crashes on it
        here)``; empty when nothing is."""
        amx = cpu_has_amx() if amx is None else amx
        parts = []
        if not self.extra_buffers:
            what = "AMX and weight repacking off" if amx else "weight repacking off"
            why = "set by hand" if self.forced else "llama.cpp crashes on it here"
            parts.append(f"{what} ({why})")
        if self.avoid_kernels:
            parts.append(f"{', '.join(self.avoid_kernels)} kernels skipped (they crash here)")
        return " · ".join(parts)

    def as_llama_bench_args(self) -> list[str]:
        """The same setting for a native ``llama-bench`` run (its default is on, and a
        llama-bench older than ``--repack`` runs as before)."""
        return [] if self.extra_buffers else ["--repack", "0"]


@functools.lru_cache(maxsize=1)
def _read_cpu_identity() -> str:
    """The CPU's model and instruction sets, as the OS reports them (read once)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    wanted = ("vendor_id", "model name", "flags", "Features", "CPU implementer", "CPU part")
    lines = []
    for line in text.splitlines():
        key = line.split(":", 1)[0].strip()
        if key in wanted:
            lines.append(line.strip())
        if not line.strip() and lines:
            break  # the first processor describes them all
    return "\n".join(lines) or f"{platform.machine()} {platform.processor()}"


def cpu_has_amx() -> bool:
    """True where the OS reports Intel AMX tiles (Linux ``amx_tile``)."""
    return " amx_tile" in f" {_read_cpu_identity()}"


def _library_identity() -> str:
    """llama-cpp-python's native libraries as installed: names, sizes and times, so a
    rebuilt or upgraded llama.cpp is tested afresh. Not where they are: an AppImage is
    mounted at a new path at every start."""
    spec = importlib.util.find_spec("llama_cpp")
    folders = list(spec.submodule_search_locations or []) if spec else []
    rows = []
    for folder in folders:
        lib = Path(folder) / "lib"
        try:
            files = sorted(lib.iterdir())
        except OSError:
            continue
        for file in files:
            if "ggml" in file.name or "llama" in file.name:
                try:
                    info = file.stat()
                except OSError:
                    continue
                rows.append(f"{file.name} {info.st_size} {int(info.st_mtime)}")
    return f"{sys.platform}\n" + "\n".join(rows)


def machine_key() -> str:
    """This CPU and this llama.cpp build, as one short key."""
    what = _read_cpu_identity() + "\n" + _library_identity()
    return hashlib.sha256(what.encode("utf-8")).hexdigest()[:16]


@dataclass
class Record:
    """One machine key's entry in ``native-checks.json``."""

    extra_buffers: Verdict = Verdict.UNTESTED
    avoid_kernels: list[str] = field(default_factory=list)
    crashed_with: str = ""
    checked: str = ""

    @classmethod
    def from_json(cls, data: Any) -> Record:
        if not isinstance(data, dict):
            return cls()
        try:
            verdict = Verdict(data.get("extra_buffers", Verdict.UNTESTED))
        except ValueError:
            verdict = Verdict.UNTESTED
        avoid = [str(v) for v in data.get("avoid_kernels", []) if isinstance(v, str)]
        return cls(verdict, avoid, str(data.get("crashed_with", "")),
                   str(data.get("checked", "")))


def _checks_path() -> Path:
    return paths.data_dir() / CHECKS_FILE


def _load_all() -> dict[str, Any]:
    try:
        data = json.loads(_checks_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_RECORDS_LOCK = threading.Lock()  # panes' threads read-modify-write the file at once


def load_record(key: str | None = None) -> Record:
    return Record.from_json(_load_all().get(key or machine_key()))


def save_record(record: Record, key: str | None = None) -> None:
    """Write one key's record (atomically: a half-written file is never read)."""
    from desktop_app.models.user_catalog import write_atomically

    record.checked = time.strftime("%Y-%m-%d %H:%M:%S")
    everything = _load_all()
    everything[key or machine_key()] = {
        "extra_buffers": str(record.extra_buffers), "avoid_kernels": record.avoid_kernels,
        "crashed_with": record.crashed_with, "checked": record.checked,
        "cpu": _read_cpu_identity().splitlines()[0:2],
    }
    try:
        write_atomically(_checks_path(), json.dumps(everything, indent=2) + "\n")
    except OSError:
        pass  # not remembered: the next start probes again, nothing worse


def current_setup(key: str | None = None) -> NativeSetup:
    """The setting a new model process uses here."""
    forced = os.environ.get(EXTRA_BUFFERS_ENV, "").strip()
    if forced in ("0", "1"):
        return NativeSetup(extra_buffers=forced == "1", forced=True)
    record = load_record(key)
    return NativeSetup(extra_buffers=record.extra_buffers is not Verdict.CRASHES,
                       avoid_kernels=tuple(record.avoid_kernels),
                       crashed_with=record.crashed_with)


def needs_probe(setup: NativeSetup, key: str | None = None) -> bool:
    """A model process with this setting probes a batch before it says it is loaded:
    the extra buffers are on and nothing is known yet about them on this machine."""
    if setup.forced or not setup.extra_buffers:
        return False
    return load_record(key).extra_buffers is Verdict.UNTESTED


def fallback(setup: NativeSetup, kernels: str = "", died_of: str = "") -> NativeSetup | None:
    """The next rung down after a crash (of signal ``died_of``) with ``setup``
    (``kernels``: the CPU-kernel library the process had loaded, in a dispatch build), or
    None at the bottom."""
    if setup.forced:
        return None
    if setup.extra_buffers:
        return replace(setup, extra_buffers=False, crashed_with=died_of)
    if kernels and kernels not in setup.avoid_kernels:
        return NativeSetup(extra_buffers=True, avoid_kernels=(*setup.avoid_kernels, kernels),
                           crashed_with=died_of)
    return None


def remember_safe(setup: NativeSetup, key: str | None = None) -> None:
    """A probe (or a first generation) with ``setup`` ran here."""
    if setup.forced or not setup.extra_buffers:
        return
    with _RECORDS_LOCK:
        record = load_record(key)
        if record.extra_buffers is Verdict.UNTESTED:
            record.extra_buffers = Verdict.SAFE
            save_record(record, key)


def remember_crash(crashed: NativeSetup, worked: NativeSetup, signal_name: str,
                   key: str | None = None) -> None:
    """``crashed`` died of ``signal_name`` here and ``worked``, one rung down, ran: keep
    the difference, so no later process takes the rung that crashed."""
    if crashed.forced or worked.forced:
        return
    with _RECORDS_LOCK:
        record = load_record(key)
        if crashed.extra_buffers and not worked.extra_buffers:
            record.extra_buffers = Verdict.CRASHES
        for name in worked.avoid_kernels:
            if name not in record.avoid_kernels:
                record.avoid_kernels.append(name)
        if worked.extra_buffers and record.extra_buffers is Verdict.CRASHES:
            record.extra_buffers = Verdict.UNTESTED  # another kernel library: try them again
        record.crashed_with = signal_name
        save_record(record, key)


def summary(key: str | None = None) -> str:
    """One line for ``models list`` and ``bench``: what llama.cpp uses here, and why."""
    setup = current_setup(key)
    amx = cpu_has_amx()
    what = "AMX and weight repacking" if amx else "weight repacking"
    if setup.forced:
        state = "on" if setup.extra_buffers else "off"
        return f"llama.cpp here: {what} {state} (set by hand with {EXTRA_BUFFERS_ENV})"
    record = load_record(key)
    kernels = (f"; {', '.join(setup.avoid_kernels)} kernels skipped (they crash here)"
               if setup.avoid_kernels else "")
    if record.extra_buffers is Verdict.CRASHES:
        return (f"llama.cpp here: {what} off (llama.cpp crashes on it here, "
                f"{record.crashed_with or 'a crash signal'}){kernels}")
    if record.extra_buffers is Verdict.SAFE:
        return f"llama.cpp here: {what} on (a test batch ran){kernels}"
    return (f"llama.cpp here: {what} not checked yet (the first model to load runs a test "
            f"batch){kernels}")


def signal_name(exitcode: int | None) -> str | None:
    """``SIGSEGV`` for a process that died of a crash signal, else None."""
    if exitcode is None or exitcode >= 0 or -exitcode not in CRASH_SIGNALS:
        return None
    return signal.Signals(-exitcode).name


def kernel_variant(mapped_files: list[str]) -> str:
    """The CPU-kernel library a dispatch build loaded (``sapphirerapids``), from the
    process's mapped files; empty for a build with its kernels linked in."""
    for name in mapped_files:
        base = Path(name).name
        for prefix in ("libggml-cpu-", "ggml-cpu-"):
            if base.startswith(prefix):
                return base[len(prefix):].split(".", 1)[0]
    return ""


def inject_crash(where: str, setup: NativeSetup) -> None:
    """Fault injection (``TRIPTYCH_INJECT_CRASH=place[:SIGNAL][:always]``): die here as a
    faulting kernel would: while the extra buffers are on ("kernels": while no kernel
    library is avoided), or whatever the setting with ``always`` (a crash that is not
    the buffers' fault)."""
    wanted = os.environ.get(INJECT_CRASH_ENV, "")
    if not wanted:
        return
    place, *rest = wanted.split(":")
    if place != where:
        return
    always = "always" in rest
    names = [part for part in rest if part != "always"]
    if not always and place == "kernels" and setup.avoid_kernels:
        return
    if not always and place != "kernels" and not setup.extra_buffers:
        return
    signum = getattr(signal, names[0] if names else "SIGSEGV", signal.SIGSEGV)
    sys.stdout.flush()
    os.kill(os.getpid(), signum)
    time.sleep(5)  # the signal is delivered before this returns
