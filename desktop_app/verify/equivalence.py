"""Are two math answers the same value? Hugging Face's math-verify decides, under a deadline.

math-verify (the checker lighteval and open-r1 use) parses LaTeX and plain answers into
SymPy and compares them: ``\\frac{1}{2}`` = ``0.5``, ``2\\sqrt{2}`` = ``\\sqrt{8}``,
``(3, \\frac{\\pi}{2})`` = ``(3, \\pi/2)``, ``x = 5`` = ``5``, intervals with their brackets,
sets, matrices. Two things about it shape this module:

* Its own timeouts use ``signal.alarm``: with a timeout it raises ``ValueError`` off the
  main thread, and Verify runs on worker threads (the window's main thread is Qt's).
  Without one, it can run for ever: ``9^{9^{9^9}}`` makes SymPy build a number with
  hundreds of millions of digits inside one C call, which no signal interrupts.
* So every comparison runs in a helper process (``python -c``, as the sandbox starts its
  interpreter; nothing of the caller's ``__main__`` is re-imported), which is killed when
  its deadline passes (:data:`DEADLINE_S`); the next comparison gets a
  fresh one. The process is kept between comparisons (importing SymPy takes about a
  second), at most :data:`IDLE_WORKERS` of them, and its memory is capped where the OS
  allows it.

An answer that cannot be compared in time is **undecided**, never equal. No Qt.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from desktop_app.text.i18n import _, number

DEADLINE_S = 3.0  # one comparison (both parses and the check); the process start is apart
START_S = 60.0  # importing SymPy and math-verify in a fresh process, on a busy machine
MAX_CHARS = 2_000  # longer answers are not given to SymPy at all
IDLE_WORKERS = 2  # helper processes kept between comparisons (Verify runs two at once)
MEMORY_CAP = 2 << 30  # address space of a helper process (RLIMIT_AS, where it works)


@dataclass(frozen=True)
class Equivalence:
    """The outcome of one comparison: ``equal``, or not; ``decided`` False when the
    comparison ran out of time or the helper failed (``reason`` says which)."""

    equal: bool
    decided: bool = True
    reason: str = ""


# ------------------------------------------------------------------ the helper process


def _limit_memory() -> None:
    try:
        import resource
    except ImportError:  # Windows
        return
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = MEMORY_CAP if hard == resource.RLIM_INFINITY else min(MEMORY_CAP, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        pass


def _compare(gold: str, target: str) -> bool:
    """math-verify's answer, both sides parsed as the content of a ``\\boxed{}`` (LaTeX
    first, then a plain expression), with its signal timeouts off: the parent keeps the
    deadline."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    config = [LatexExtractionConfig(), ExprExtractionConfig()]
    parsed_gold = parse(f"\\boxed{{{gold}}}", extraction_config=config, parsing_timeout=None)
    parsed_target = parse(f"\\boxed{{{target}}}", extraction_config=config,
                          parsing_timeout=None)
    if not parsed_gold or not parsed_target:
        return False
    return bool(verify(parsed_gold, parsed_target, timeout_seconds=None))


def _answer(stream: IO[str], message: dict[str, Any]) -> None:
    stream.write(json.dumps(message) + "\n")
    stream.flush()


def serve() -> None:
    """The helper process: one JSON request per line on stdin (``{"gold", "target"}``),
    one JSON answer per line on stdout (``{"equal": bool}`` or ``{"failed": reason}``)."""
    import logging

    _limit_memory()
    # math-verify warns that its timeout is off: the parent's deadline replaces it
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing printed by a library can break the protocol
    try:
        import math_verify  # noqa: F401 - imported once, before the first deadline
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        # (in English here, a child process: the parent says it in the user's language)
        _answer(out, {"failed": f"math-verify could not be loaded ({type(exc).__name__})",
                      "error": type(exc).__name__})
        return
    _answer(out, {"ready": True})
    for line in sys.stdin:
        try:
            request = json.loads(line)
            gold, target = str(request["gold"]), str(request["target"])
        except (ValueError, KeyError, TypeError):
            return
        try:
            message: dict[str, Any] = {"equal": _compare(gold, target)}
        except MemoryError:
            message = {"failed": "the comparison ran out of memory"}
        except Exception:  # noqa: BLE001 - an answer SymPy cannot handle is not equal
            message = {"equal": False}
        _answer(out, message)


class _Unavailable(Exception):
    """The helper process did not start, died, or missed its deadline."""


def _command() -> list[str]:
    """``python -c`` serving comparisons. In the standalone app ``sys.executable`` is the
    app's own binary, which runs Python command lines (packaging/launcher.py)."""
    import desktop_app

    root = str(Path(desktop_app.__file__).resolve().parent.parent)
    code = (f"import sys; sys.path.insert(0, {root!r}); "
            "from desktop_app.verify.equivalence import serve; serve()")
    return [sys.executable, "-X", "utf8", "-c", code]


class _Worker:
    def __init__(self) -> None:
        if not sys.executable:
            raise _Unavailable(_("no Python interpreter to run the math checker"))
        flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
        try:
            self.process = subprocess.Popen(
                _command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True, encoding="utf-8", bufsize=1,
                creationflags=flags)
        except OSError as exc:
            raise _Unavailable(_("the math checker could not start ({error})").format(
                error=exc)) from exc
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, name="triptych-math-reader", daemon=True).start()
        self.ready = False

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            for line in stdout:
                self.lines.put(line)
        except (OSError, ValueError):
            pass
        self.lines.put(None)

    def _receive(self, wait_s: float, late: str) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=wait_s)
        except queue.Empty:
            raise _Unavailable(late) from None
        if line is None:
            raise _Unavailable(_("the math checker stopped"))
        try:
            message = json.loads(line)
        except ValueError:
            message = None
        if not isinstance(message, dict):
            raise _Unavailable(_("the math checker sent something unexpected"))
        return message

    def ask(self, gold: str, target: str, deadline_s: float) -> bool:
        if not self.ready:
            message = self._receive(START_S, _("the math checker did not start in time"))
            if "ready" not in message:
                raise _Unavailable(_failed(message) if "failed" in message
                                   else _("the math checker did not start"))
            self.ready = True
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(json.dumps({"gold": gold, "target": target}) + "\n")
            stdin.flush()
        except (OSError, ValueError) as exc:
            raise _Unavailable(_("the math checker stopped")) from exc
        message = self._receive(
            deadline_s, _("the comparison did not finish within {seconds} s").format(
                seconds=_seconds(deadline_s)))
        if "failed" in message:
            raise _Unavailable(_failed(message))
        return message.get("equal") is True

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(5.0)
        except subprocess.TimeoutExpired:
            pass
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


_idle: list[_Worker] = []
_lock = threading.Lock()


def _take() -> _Worker:
    with _lock:
        if _idle:
            return _idle.pop()
    return _Worker()


def _give_back(worker: _Worker) -> None:
    with _lock:
        if len(_idle) < IDLE_WORKERS:
            _idle.append(worker)
            return
    worker.close()


def shutdown() -> None:
    """End the idle helper processes (at exit; a later comparison starts a new one)."""
    with _lock:
        workers = list(_idle)
        _idle.clear()
    for worker in workers:
        worker.close()


atexit.register(shutdown)


def sympy_equivalent(expected: str, got: str, deadline_s: float = DEADLINE_S) -> Equivalence:
    """math-verify's verdict on *got* against the key *expected* (both LaTeX or plain
    text, without ``\\boxed``), within *deadline_s*. Blocks: call it off the GUI thread.
    Several threads may call it at once."""
    if len(expected) > MAX_CHARS or len(got) > MAX_CHARS:
        return Equivalence(False, False, _("the answer is over {n} characters long").format(
            n=number(MAX_CHARS)))
    if not _balanced(expected) or not _balanced(got):
        return Equivalence(False, True, _("unbalanced braces"))
    try:
        worker = _take()
    except _Unavailable as exc:
        return Equivalence(False, False, str(exc))
    try:
        equal = worker.ask(expected, got, deadline_s)
    except _Unavailable as exc:
        worker.close()
        return Equivalence(False, False, str(exc))
    except BaseException:
        worker.close()
        raise
    _give_back(worker)
    return Equivalence(equal)


def _seconds(value: float) -> str:
    shown = f"{value:g}"
    return number(value, len(shown.split(".")[1]) if "." in shown and "e" not in shown else 0)


def _failed(message: dict[str, object]) -> str:
    """The helper's failure in the user's language (it writes English: a child process)."""
    error = message.get("error")
    if isinstance(error, str):
        return _("math-verify could not be loaded ({error})").format(error=error)
    return str(message["failed"])


def _balanced(text: str) -> bool:
    depth = 0
    escaped = False
    for char in text:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0
