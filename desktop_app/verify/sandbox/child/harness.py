"""Run the model's code, already confined, and answer the parent's questions about it.

Two modes:

* ``run``: execute the code as ``__main__`` and exit with its status.
* ``tests``: load the code as a module in its own namespace, then serve requests from the
  parent, one JSON line each: look up names, call a function with plain-data arguments,
  read an attribute, take ``len``/``list``/``str`` of an object. Each answer is plain data
  or a *handle* (a number standing for an object that stays here). The test program, its
  expected values and the comparisons never come here: they stay with the parent, which
  treats every answer as hostile (the model's code shares this process and may write
  anything to the answer pipe; that only ever amounts to choosing its own outputs).
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import types
from typing import Any

from .codec import Malformed, decode, describe_exception, type_name
from .graph import Graph

MAX_REQUEST_BYTES = 16 * 1024 * 1024


def flush_stdio() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except BaseException:  # noqa: BLE001 - a broken stream must not stop the exit
            pass


def _print_exception(exc: BaseException) -> None:
    import traceback

    try:
        tb = exc.__traceback__
        traceback.print_exception(type(exc), exc, tb.tb_next if tb is not None else None)
    except BaseException:  # noqa: BLE001
        pass


def run_main(cfg: dict[str, Any]) -> None:
    """Execute the code as ``__main__``; raises SystemExit with its status."""
    sys.argv = ["main.py"]
    glb: dict[str, Any] = {"__name__": "__main__", "__builtins__": builtins, "__file__": "main.py"}
    try:
        exec(compile(cfg["code"], "main.py", "exec"), glb)  # this is the sandbox
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001
        _print_exception(exc)
        flush_stdio()
        raise SystemExit(1) from None
    flush_stdio()
    raise SystemExit(0)


class _Server:
    """Answers the parent's requests about the loaded code."""

    def __init__(self, request_fd: int, result_fd: int) -> None:
        self.request_fd = request_fd
        self.result_fd = result_fd
        self.buffer = b""
        self.objects: list[object] = []
        self.namespace: dict[str, Any] = {}
        self.graph = Graph(-1)  # lists, dicts and sets shared with the tests, by identity

    # -- the pipe ----------------------------------------------------------------------

    def read_request(self) -> dict[str, Any] | None:
        while b"\n" not in self.buffer:
            if len(self.buffer) > MAX_REQUEST_BYTES:
                return None
            chunk = os.read(self.request_fd, 1 << 16)
            if not chunk:
                return None
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        message = json.loads(line)
        return message if type(message) is dict else None

    def send(self, message: dict[str, Any]) -> None:
        data = memoryview((json.dumps(message, ensure_ascii=True) + "\n").encode("ascii"))
        while data:
            written = os.write(self.result_fd, data)
            data = data[written:]

    # -- values ------------------------------------------------------------------------

    def form(self, value: object) -> dict[str, Any]:
        """Plain data as ``{"v": …}`` (lists, dicts and sets as graph nodes); anything
        else as a handle ``{"h": n, …}``."""
        mark = self.graph.mark()
        try:
            return {"v": self.graph.encode(value)}
        except BaseException:  # noqa: BLE001 - Unencodable, or e.g. RecursionError
            self.graph.rollback(mark)
        self.objects.append(value)
        out: dict[str, Any] = {"h": len(self.objects) - 1, "t": type_name(value)}
        try:
            out["c"] = bool(callable(value))
        except BaseException:  # noqa: BLE001
            out["c"] = False
        if type(value) is types.ModuleType:
            name = value.__dict__.get("__name__")
            out["m"] = name if type(name) is str else ""
        return out

    def _object(self, message: dict[str, Any]) -> object:
        handle = message.get("h")
        if type(handle) is not int or not 0 <= handle < len(self.objects):
            raise LookupError("no such handle")
        return self.objects[handle]

    # -- requests ----------------------------------------------------------------------

    def defs(self) -> list[list[object]]:
        """The code's top-level functions in definition order, each with the global names
        its code (nested code included) uses: the parent picks the entry point from these
        when the tests do not name it."""
        out: list[list[object]] = []
        for name, value in list(self.namespace.items()):
            if type(value) is not types.FunctionType or value.__globals__ is not self.namespace:
                continue
            names: set[str] = set()
            codes = [value.__code__]
            while codes and len(names) < 5000:
                code = codes.pop()
                names.update(code.co_names)
                codes.extend(c for c in code.co_consts if type(c) is types.CodeType)
            out.append([name, sorted(names)[:5000]])
        return out[:2000]

    def answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op = message.get("op")
        self.graph.apply(message.get("nodes", []), refs=self.objects)  # the tests' changes
        if op == "names":
            names = message.get("names") or []
            return {"names": {n: self.form(self.namespace[n]) for n in names
                              if type(n) is str and n in self.namespace}}
        if op == "call":
            function = self._object(message)
            nodes = self.graph.objects
            args = decode(message.get("args", []), refs=self.objects, nodes=nodes)
            kwargs = decode(message.get("kwargs", {"dict": []}), refs=self.objects, nodes=nodes)
            if type(args) is not list or type(kwargs) is not dict:
                raise Malformed("bad call")
            return self.form(function(*args, **kwargs))  # type: ignore[operator]
        if op == "defs":
            return {"defs": self.defs()}
        target = self._object(message)
        if op == "getattr":
            return self.form(getattr(target, str(message.get("name"))))
        if op == "setattr":
            setattr(target, str(message.get("name")),
                    decode(message.get("v"), refs=self.objects, nodes=self.graph.objects))
            return {"v": None}
        if op == "len":
            return self.form(len(target))  # type: ignore[arg-type]
        if op == "list":
            return self.form(list(target))  # type: ignore[call-overload]
        if op == "str":
            return self.form(str(target))
        raise Malformed("unknown request")

    def serve(self, code: str) -> None:
        loaded: dict[str, Any] = {"loaded": True, "error": None}
        self.namespace.update({"__name__": "solution", "__builtins__": builtins,
                               "__file__": "solution.py"})
        try:
            compiled = compile(code, "solution.py", "exec")
        except SyntaxError as exc:
            loaded["syntax"] = [str(exc.msg)[:300], exc.lineno if type(exc.lineno) is int else 0]
            compiled = None
        except BaseException as exc:  # noqa: BLE001 - e.g. a parser MemoryError
            _, name, message = describe_exception(exc)
            loaded["syntax"] = [f"{name}: {message}" if message else
                                f"{name} (nested too deeply to compile)", 0]
            compiled = None
        if compiled is not None:
            try:
                exec(compiled, self.namespace)  # this is the sandbox
            except BaseException as exc:  # noqa: BLE001 - keep going: functions may be defined
                loaded["error"] = describe_exception(exc)
                _print_exception(exc)
        self.send(loaded)
        while True:
            try:
                message = self.read_request()
            except BaseException:  # noqa: BLE001
                message = None
            if message is None or message.get("op") == "bye":
                break
            try:
                reply = self.answer(message)
            except BaseException as exc:  # noqa: BLE001 - model code may raise anything
                reply = {"err": describe_exception(exc)}
            self.send(self.shared(reply))

    def shared(self, reply: dict[str, Any]) -> dict[str, Any]:
        """*reply* with the state of every shared list, dict and set (after a return or an
        exception alike: what the code did to them), and which of them this side still
        holds (those stay linked to the tests' objects)."""
        try:
            reply["nodes"] = self.graph.states()
        except BaseException:  # noqa: BLE001 - a shared list now holds a non-plain object
            reply = {"unshareable": True}
        try:
            reply["linked"] = self.graph.held()
        except BaseException:  # noqa: BLE001
            reply["linked"] = sorted(self.graph.objects)
        self.graph.keep(reply["linked"])
        return reply


def serve_tests(cfg: dict[str, Any]) -> None:
    """Load the code and answer requests until the parent says goodbye; then exit."""
    sys.argv = ["solution.py"]
    server = _Server(cfg["request_fd"], cfg["result_fd"])
    try:
        server.serve(cfg["code"])
    finally:
        flush_stdio()
    os._exit(0)


def run_harness(cfg: dict[str, Any]) -> None:
    if cfg["mode"] == "tests":
        serve_tests(cfg)
    else:
        run_main(cfg)
