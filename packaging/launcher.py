"""Entry script of the standalone (PyInstaller) Triptych app.

It is ``triptych``'s console script with two additions that only matter when frozen:

* ``multiprocessing.freeze_support()`` first: every pane's model runs in a worker process
  started with the ``spawn`` method, which re-executes this binary (PyInstaller's runtime
  hook turns ``freeze_support`` into the child's entry point on every platform).
* In a frozen app ``sys.executable`` is this binary, not a Python interpreter. Code that
  runs Python in a subprocess - ``[sys.executable, "-I", "-c", CODE]``,
  ``[sys.executable, "script.py"]``, ``[sys.executable, "-m", "module"]``, as the verify
  sandbox and ``triptych bench`` do - still works: when the arguments look like a Python
  command line rather than a Triptych one, this binary behaves as a small Python
  interpreter (the bundled standard-library modules only).
"""

from __future__ import annotations

import multiprocessing
import sys

# Flags of the real `python` command that take no value / take one value.
_PY_FLAGS = set("bBdEhiIOPqsSuvVR")
_PY_FLAGS_WITH_VALUE = set("WX")


def _python_command(argv: list[str]) -> tuple[str, str, list[str]] | None:
    """(kind, target, argv-for-the-program) if ``argv`` is a Python command line.

    ``kind`` is ``"c"`` (code), ``"m"`` (module) or ``"path"`` (a script); None means
    "this is a Triptych command line".
    """
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "-c" or arg == "-m":
            if i + 1 >= len(args):
                return None
            return arg[1], args[i + 1], [arg] + args[i + 2:]
        if arg.startswith("-c") and len(arg) > 2:
            return "c", arg[2:], ["-c"] + args[i + 1:]
        if arg.startswith("-m") and len(arg) > 2:
            return "m", arg[2:], [arg[2:]] + args[i + 1:]
        if arg.startswith("--") or arg == "-":
            return None  # a Triptych option (--version, --prompt, ...)
        if arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            if letters[0] in _PY_FLAGS_WITH_VALUE:
                i += 1 if len(letters) > 1 else 2
                continue
            if all(ch in _PY_FLAGS for ch in letters):
                i += 1
                continue
            return None
        if arg.endswith((".py", ".pyw")):
            return "path", arg, args[i:]
        return None  # a Triptych subcommand
    return None


def _run_python(kind: str, target: str, program_argv: list[str]) -> int:
    import runpy

    sys.argv = program_argv
    try:
        if kind == "c":
            namespace = {"__name__": "__main__", "__builtins__": __builtins__}
            exec(compile(target, "<string>", "exec"), namespace)
        elif kind == "m":
            runpy.run_module(target, run_name="__main__", alter_sys=True)
        else:
            sys.path.insert(0, __import__("os").path.dirname(__import__("os").path.abspath(target)))
            runpy.run_path(target, run_name="__main__")
    except SystemExit as exc:
        code = exc.code
        if code is None:
            return 0
        if isinstance(code, int):
            return code
        print(code, file=sys.stderr)
        return 1
    return 0


def main() -> int:
    multiprocessing.freeze_support()
    if getattr(sys, "frozen", False):
        command = _python_command(sys.argv[1:])
        if command is not None:
            return _run_python(*command)
    from desktop_app.cli.main import main as triptych_main

    return int(triptych_main())


if __name__ == "__main__":
    sys.exit(main())
