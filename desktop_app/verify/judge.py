"""Run a test program here, against code that runs in the sandbox.

The test program (HumanEval-style ``assert`` statements, setup, helpers, loops, ``def
check(candidate)``) is trusted and runs in *this* process, with the real built-ins. The
names it takes from the reply (``add``, ``candidate``, a ``Stack`` class) are
:class:`Remote` stand-ins: calling one sends the arguments, as plain data, to the sandbox,
where the reply's own function runs, and brings back its result as plain data (or a
handle to an object that stays there). So:

* expected values, answer tables, helpers and ``check``'s locals never leave this process;
  the code under test cannot read, patch or walk any of them;
* inputs are computed once, here, and the very same values reach the candidate and the
  expected side (``random`` in a test is fine);
* comparisons happen here, on plain data; an object that is not plain data stays opaque
  and any comparison with it fails.

Tests that cannot be checked this way get a clear error, never a pass: handing a function
or another non-plain object to the reply's code, or using a standard-library module the
test does not import while the reply binds that name to something else.
"""

from __future__ import annotations

import ast
import builtins
import importlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from desktop_app.text.i18n import _
from desktop_app.verify.entry import EntryPointError, check_named, choose, plain_identifier
from desktop_app.verify.sandbox import SandboxBroken, Session
from desktop_app.verify.sandbox.child.codec import Malformed, Unencodable, encode
from desktop_app.verify.sandbox.child.graph import Graph
from desktop_app.verify.sandbox.wire import Hostile, text, value

ASSERT = "__triptych_assert__"
_MAX_NAMES = 2000
_BUILTIN_NAMES = frozenset(dir(builtins))
_STDLIB = frozenset(sys.stdlib_module_names)
_UNSAFE_MODULES = frozenset({"antigravity", "this", "idlelib", "tkinter", "turtle", "turtledemo",
                             "webbrowser", "pydoc", "ensurepip", "venv", "lib2to3", "site",
                             "__main__", "pdb", "code", "pty", "tty", "test", "unittest"})
# Exceptions the reply's code may raise *here* (rebuilt by type name). Not StopIteration and
# friends: raised out of a call inside map() or a generator they would end the iteration
# early and make a test see fewer results than there were.
_NOT_REBUILT = frozenset({"StopIteration", "StopAsyncIteration", "GeneratorExit"})
CANDIDATE = "__triptych_candidate__"  # what check() receives when the reply names it


class TestFormatError(ValueError):
    """The test program cannot be prepared (does not parse, no assert, no candidate)."""

    __test__ = False  # not a pytest class


class TestShapeError(BaseException):  # ends the run, test code cannot catch it
    """This test shape cannot be checked safely."""

    __test__ = False


class OpaqueValueError(Exception):
    """A comparison or operation was attempted on a value that is not plain data."""


class ProbeFailed(Exception):
    """The reply's code raised an exception that is not rebuilt here under its own type."""


@dataclass
class TestPlan:
    """The test program as it runs here: assertions turned into recorded checks."""

    parent_source: str
    child_source: str  # always empty: no test code goes to the sandbox
    asserts: dict[int, str]
    entry_point: str | None  # named by the problem, --entry-point or the tests' check(name)
    needed: list[str]  # names the tests take from the reply
    # Bound to the reply's entry point, chosen after it loaded when not named: CANDIDATE
    # for an uncalled check(candidate), "candidate" for tests that use it directly.
    candidate_var: str | None = None
    test_names: frozenset[str] = frozenset()  # every name the tests bind or load

    __test__ = False


# ======================================================================== preparing


def _split_and(test: ast.expr) -> list[ast.expr]:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [part for v in test.values for part in _split_and(v)]
    return [test]


def _thunk(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[],
                                         kw_defaults=[], kwarg=None, defaults=[]), body=body)


_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_COMPARE: dict[str, Callable[[Any, Any], object]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "is": lambda a, b: a is b, "is not": lambda a, b: a is not b,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,
}


class _Asserts(ast.NodeTransformer):
    """``assert a == b and c`` → one recorded check per part; the program goes on after a
    failed part, so the report says how many held."""

    def __init__(self) -> None:
        self.asserts: dict[int, str] = {}

    def visit_Assert(self, node: ast.Assert) -> list[ast.stmt]:  # ast API
        out: list[ast.stmt] = []
        for part in _split_and(node.test):
            aid = len(self.asserts)
            self.asserts[aid] = ast.unparse(part)
            args: list[ast.expr]
            if isinstance(part, ast.Compare) and len(part.ops) == 1:
                op = _OPS[type(part.ops[0])]
                args = [ast.Constant(aid), _thunk(part.left), _thunk(part.comparators[0]),
                        ast.Constant(op)]
            else:
                args = [ast.Constant(aid), _thunk(part)]
            out.append(ast.Expr(ast.Call(ast.Name(ASSERT, ast.Load()), args, [])))
        return out


def _bound_names(body: list[ast.stmt] | list[ast.AST], include_nested: bool) -> set[str]:
    names: set[str] = set()
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            if not include_nested:
                continue
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            names.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.Lambda) and not include_nested:
            continue
        stack.extend(ast.iter_child_nodes(node))
    return names


def _free_names(tree: ast.Module) -> list[str]:
    """Names the tests load that neither they nor Python's built-ins define: these must
    come from the reply. Function-local names (parameters, assignments, imports inside
    ``check``) are not free."""
    module_level = _bound_names(tree.body, include_nested=False)
    free: set[str] = set()

    def visit(node: ast.AST, local: set[str]) -> None:
        stack: list[tuple[ast.AST, set[str]]] = [(node, local)]
        while stack:
            current, scope = stack.pop()
            if isinstance(current, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                inner = scope | _bound_names([current.args, *(
                    current.body if isinstance(current.body, list) else [current.body])],
                    include_nested=False)
                for child in ast.iter_child_nodes(current):
                    stack.append((child, inner))
                continue
            if isinstance(current, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
                inner = scope | {n.id for g in current.generators for n in ast.walk(g.target)
                                 if isinstance(n, ast.Name)}
                for child in ast.iter_child_nodes(current):
                    stack.append((child, inner))
                continue
            if isinstance(current, ast.Name) and isinstance(current.ctx, ast.Load) \
                    and current.id not in scope:
                free.add(current.id)
            stack.extend((child, scope) for child in ast.iter_child_nodes(current))

    visit(tree, module_level)
    return sorted(free)


def build_test_plan(tests: str, code: str | None = None,
                    entry_point: str | None = None) -> TestPlan:
    """Prepare a HumanEval-style test program: top-level ``assert`` statements that call the
    reply's functions, setup, helpers, loops, and ``def check(candidate)`` (called with the
    entry point if the file does not call it itself)."""
    try:
        tree = ast.parse(tests)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        why = getattr(exc, "msg", exc)
        raise TestFormatError((_("the tests do not parse: {error} (line {line})") if line
                               else _("the tests do not parse: {error}")).format(
            error=why, line=line)) from exc
    except (RecursionError, MemoryError) as exc:
        raise TestFormatError(_("the tests are nested too deeply to parse")) from exc
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        raise TestFormatError(_("the tests contain no assert statement"))
    module_level = _bound_names(tree.body, include_nested=False)
    test_names = frozenset(_bound_names(tree.body, include_nested=True)
                           | {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)})
    if entry_point is not None:
        try:
            check_named(entry_point, module_level)
        except EntryPointError as exc:
            raise TestFormatError(str(exc)) from None
    needed = [n for n in _free_names(tree) if n not in _BUILTIN_NAMES][:_MAX_NAMES]
    candidate_var = None
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"
                  and len(n.args.args) == 1), None)
    called = any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                 and isinstance(n.value.func, ast.Name) and n.value.func.id == "check"
                 for n in tree.body)
    if check is not None and not called:
        # The file leaves the candidate to us: the problem's entry point, else the one
        # function of the reply that can be meant (chosen after it loaded; entry.py).
        target = entry_point or CANDIDATE
        if entry_point is None:
            candidate_var = CANDIDATE
        elif entry_point not in needed:
            needed.append(entry_point)
        tree.body.append(ast.Expr(ast.Call(ast.Name("check", ast.Load()),
                                           [ast.Name(target, ast.Load())], [])))
    elif "candidate" in needed and check is None:
        candidate_var = "candidate"  # tests written against `candidate` directly
        needed.remove("candidate")
    rewriter = _Asserts()
    tree = rewriter.visit(tree)
    ast.fix_missing_locations(tree)
    source = ast.unparse(tree)
    compile(source, "tests.py", "exec")
    return TestPlan(source, "", rewriter.asserts, entry_point, needed, candidate_var,
                    test_names)


# ========================================================================= running


def _short_repr(obj: object, limit: int = 200) -> str:
    try:
        shown = repr(obj)
    except ValueError:  # e.g. an int too long to print
        shown = f"<int with {obj.bit_length()} bits>" if isinstance(obj, int) else "<value>"
    except Exception:  # noqa: BLE001
        shown = "<value>"
    return shown if len(shown) <= limit else shown[: limit - 1] + "…"


def _clip(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[: limit - 1] + "…"


def _rebuild_exception(err: object) -> Exception:
    """The exception the reply's code raised, as a built-in type where that is safe."""
    if type(err) is not list or len(err) != 3:
        raise Hostile(_("a malformed exception"))
    name, type_shown, message = err
    if name is not None and type(name) is not str:
        raise Hostile(_("a malformed exception"))
    type_shown, message = text(type_shown, 100), text(message, 500)
    shown = f"{type_shown}: {message}" if message else type_shown
    cls = getattr(builtins, name, None) if name and name not in _NOT_REBUILT else None
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        try:
            return cls(message)
        except Exception:  # noqa: BLE001 - some built-ins need other arguments
            pass
    return ProbeFailed(shown)


class Remote:
    """Stands in, here, for an object that lives in the sandbox (a function, a class, an
    instance). Calls and attribute reads are forwarded; comparisons and truth tests are
    refused: only plain data is compared."""

    __slots__ = ("_judge", "_handle", "_type", "_callable")

    def __init__(self, judge: _Judge, handle: int, type_name: str, is_callable: bool) -> None:
        object.__setattr__(self, "_judge", judge)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_type", type_name)
        object.__setattr__(self, "_callable", is_callable)

    def _refuse(self, *args: object, **kwargs: object) -> Any:
        raise OpaqueValueError(_(
            "the code returned an object of type {type}, which the checker does not compare: "
            "only plain data (numbers, strings, lists, tuples, dicts, sets) is "
            "compared").format(type=object.__getattribute__(self, "_type")))

    def _ask(self, op: str, **fields: Any) -> Any:
        judge: _Judge = object.__getattribute__(self, "_judge")
        return judge.ask(op, object.__getattribute__(self, "_handle"), **fields)

    def __call__(self, *args: object, **kwargs: object) -> Any:
        judge: _Judge = object.__getattribute__(self, "_judge")
        return judge.call(object.__getattribute__(self, "_handle"), args, kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)  # Python's own protocol lookups stay here
        return self._ask("getattr", name=name)

    def __setattr__(self, name: str, new: object) -> None:
        judge: _Judge = object.__getattribute__(self, "_judge")
        self._ask("setattr", name=name, v=judge.encode_argument(new))

    def __len__(self) -> int:
        got = self._ask("len")
        if type(got) is not int or got < 0:
            self._refuse()
        return int(got)

    def __iter__(self) -> Any:
        got = self._ask("list")
        if type(got) is not list:
            self._refuse()
        return iter(got)

    def __str__(self) -> str:
        got = self._ask("str")
        return got if type(got) is str else self._refuse()

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, '_type')} object>"

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __bool__ = __contains__ = __getitem__ = __hash__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __int__ = __float__ = _refuse
    __index__ = __round__ = __and__ = __or__ = __xor__ = __invert__ = _refuse
    __setitem__ = __delitem__ = _refuse


@dataclass
class AssertResult:
    aid: int
    source: str
    passed: bool
    got: str | None = None
    expected: str | None = None
    error: str | None = None

    def line(self) -> str:
        if self.passed:
            return f"✓ {self.source}"
        if self.error:
            return f"✗ {self.source} — {self.error}"
        if self.expected is not None:
            return _("✗ {source} — got {got}, expected {expected}").format(
                source=self.source, got=self.got, expected=self.expected)
        return _("✗ {source} — got {got}").format(source=self.source, got=self.got)


@dataclass
class TestOutcome:
    results: list[AssertResult]
    completed: bool
    problem: str | None = None  # why the test program stopped early
    load_error: str | None = None  # the reply's code raised while loading
    syntax_error: str | None = None  # the reply's code does not parse
    shape_error: str | None = None  # this test shape cannot be checked safely
    entry_error: str | None = None  # which function the tests check cannot be told

    __test__ = False

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


class _Judge:
    def __init__(self, plan: TestPlan, session: Session) -> None:
        self.plan = plan
        self.session = session
        self.results: list[AssertResult] = []
        self.shape_error: str | None = None
        self.graph = Graph(+1)
        self._linked: object = []
        self._mark = 0

    def _shape(self, reason: str) -> TestShapeError:
        if self.shape_error is None:
            self.shape_error = reason
        return TestShapeError(reason)

    # -- talking to the sandbox ---------------------------------------------------------

    def _hostile(self, reason: str) -> SandboxBroken:
        return self.session.hostile(reason)

    def materialise(self, form: object) -> Any:
        """A plain value, or a :class:`Remote` for a handle; raises on an error answer."""
        if type(form) is not dict:
            raise self._hostile(_("an answer of the wrong shape"))
        try:
            if "err" in form:
                raise _rebuild_exception(form["err"])
            if "v" in form:
                return value(form["v"], self.graph.objects)
            handle = form.get("h")
            if type(handle) is int and 0 <= handle < 10**7:
                return Remote(self, handle, text(form.get("t", "object"), 100),
                              form.get("c") is True)
        except Hostile as exc:
            raise self._hostile(str(exc)) from None
        raise self._hostile(_("an answer of the wrong shape"))

    def _ref(self, obj: object) -> int | None:
        if type(obj) is Remote:
            return int(object.__getattribute__(obj, "_handle"))
        return None

    def encode_argument(self, arg: object) -> Any:
        try:
            return encode(arg, refs=self._ref, graph=self.graph)
        except Unencodable as exc:
            what = str(exc)
            what = (f"a {what}" if what.startswith("value ")  # (the codec's own words)
                    else _("an object of type {type}").format(type=what))
            raise self._shape(_(
                "it hands {what} to the reply's code, and only plain data (numbers, "
                "strings, lists, tuples, dicts, sets; at most 200,000 values) can go into "
                "the sandbox").format(what=what)) from None

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        """One request, with the lists, dicts and sets shared with the sandbox kept in step
        both ways (child/graph.py): what the tests changed goes with the request, what the
        code changed comes back with the answer (after a return or an exception alike) and
        is made to the tests' own objects, in place."""
        self.graph.keep(self._linked, fresh_from=self._mark)
        try:
            message["nodes"] = self.graph.states(refs=self._ref)
        except Unencodable:
            raise self._shape(_("a list, dict or set the tests share with the reply's code "
                                "now holds something that is not plain data")) from None
        answer = self.session.request(message)
        if answer.get("unshareable") is True:
            raise self._shape(_("the reply's code put an object that is not plain data "
                                "into a list, dict or set it shares with the tests"))
        try:
            self.graph.apply(answer.get("nodes", []))  # none sent: nothing changed
        except (Malformed, RecursionError, MemoryError, TypeError, OverflowError) as exc:
            raise self._hostile(_("a malformed value ({error})").format(error=exc)) from None
        self._linked = answer.get("linked")
        self._mark = self.graph.mark()
        return answer

    def ask(self, op: str, handle: int, **fields: Any) -> Any:
        return self.materialise(self.request({"op": op, "h": handle, **fields}))

    def call(self, handle: int, args: tuple[object, ...], kwargs: dict[str, object]) -> Any:
        return self.materialise(self.request({
            "op": "call", "h": handle, "args": [self.encode_argument(a) for a in args],
            "kwargs": {"dict": [[k, self.encode_argument(v)] for k, v in kwargs.items()]}}))

    # -- the namespace the tests see -----------------------------------------------------

    def namespace(self) -> dict[str, Any]:
        glb: dict[str, Any] = {"__name__": "tests", "__builtins__": builtins,
                               ASSERT: self.assertion, "print": lambda *a, **k: None,
                               "input": lambda *a: ""}
        wanted = list(self.plan.needed)
        entry = None
        if self.plan.candidate_var is not None:
            entry = self.plan.entry_point or self._choose_entry()
            wanted.append(entry)
        if not wanted:
            return glb
        answer = self.request({"op": "names", "names": wanted})
        names = answer.get("names")
        if type(names) is not dict or len(names) > len(wanted):
            raise self._hostile(_("an answer of the wrong shape"))
        if entry is not None and self.plan.candidate_var is not None:
            if entry in names:
                glb[self.plan.candidate_var] = self.materialise(names[entry])
            elif self.plan.entry_point is None:  # it listed a function it does not have
                raise self._hostile(_("an answer of the wrong shape"))
        for name in self.plan.needed:
            if name not in names:
                continue
            form = names[name]
            if type(form) is not dict or "err" in form:  # looking a name up never raises
                raise self._hostile(_("an answer of the wrong shape"))
            if "m" in form:
                glb[name] = self._module(name, form["m"])
                continue
            if name in _STDLIB:
                raise self._shape(_(
                    "the tests use `{name}` without importing it, and the reply binds that "
                    "standard-library name to something of its own").format(name=name))
            glb[name] = self.materialise(form)
        return glb

    def _choose_entry(self) -> str:
        """The reply's one function check(candidate) can mean (desktop_app.verify.entry)."""
        answer = self.request({"op": "defs"})
        try:
            return choose(answer.get("defs"), set(self.plan.needed), self.plan.test_names)
        except ValueError:
            raise self._hostile(_("an answer of the wrong shape")) from None

    def _module(self, name: str, module: object) -> Any:
        """A module the reply imported and the tests use: the real one, imported here."""
        if type(module) is not str or not module:
            raise self._hostile(_("an answer of the wrong shape"))
        parts = module[:200].split(".")
        top = parts[0]
        # The name comes from the sandbox: import only public standard-library modules
        # (no `__main__` modules, which run code when imported).
        if top not in _STDLIB or top in _UNSAFE_MODULES or len(module) > 200 or not all(
                plain_identifier(part) and not part.startswith("_") for part in parts):
            raise self._shape((_(
                "the tests use `{name}`, which the reply takes from the module `{module}`; "
                "only standard-library modules can be shared with the tests")
                if len(module) <= 80 and all(map(plain_identifier, parts)) else _(
                "the tests use `{name}`, which the reply takes from another module; only "
                "standard-library modules can be shared with the tests")).format(
                name=name, module=module))
        try:
            return importlib.import_module(module)
        except Exception as exc:  # noqa: BLE001
            raise self._shape(_("the module {module} the tests use cannot be imported here "
                                "({error})").format(module=repr(module),
                                                    error=type(exc).__name__)) from None

    # -- assertions ---------------------------------------------------------------------

    def assertion(self, aid: int, left: Callable[[], object],
                  right: Callable[[], object] | None = None, op: str = "==") -> None:
        source = self.plan.asserts.get(aid, "assert")
        try:
            got = left()
            if right is not None:
                expected = right()
                ok = bool(_COMPARE[op](got, expected))
                shown = _short_repr(expected) if op == "==" else f"{op} {_short_repr(expected)}"
                result = AssertResult(aid, source, ok, _short_repr(got), shown)
            else:
                result = AssertResult(aid, source, bool(got), _short_repr(got))
        except ProbeFailed as exc:
            result = AssertResult(aid, source, False, error=_("raised {error}").format(error=exc))
        except OpaqueValueError as exc:
            result = AssertResult(aid, source, False, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - the code under test failed this check
            result = AssertResult(aid, source, False,
                                  error=_("raised {error}").format(
                                      error=f"{type(exc).__name__}: {_clip(str(exc))}"))
        self.results.append(result)

    def run(self) -> TestOutcome:
        try:
            return self._run()
        except Hostile as exc:  # a field found malformed outside materialise()
            raise self._hostile(str(exc)) from None

    def _run(self) -> TestOutcome:
        loaded = self.session.start()
        syntax = loaded.get("syntax")
        if syntax is not None:
            if type(syntax) is not list or len(syntax) != 2:
                raise self._hostile(_("an answer of the wrong shape"))
            message, line = text(syntax[0], 300) or "invalid syntax", syntax[1]
            where = f" (line {line})" if type(line) is int and line > 0 else ""
            return TestOutcome([], False, syntax_error=f"{message}{where}")
        load_error = None
        if loaded.get("error") is not None:
            try:
                load_error = str(_rebuild_exception(loaded["error"])) or "an exception"
                load_error = f"{text(loaded['error'][1], 100)}: {load_error}"
            except Hostile as exc:
                raise self._hostile(str(exc)) from None
        try:
            glb = self.namespace()
        except TestShapeError as exc:
            return TestOutcome([], False, shape_error=str(exc), load_error=load_error)
        except EntryPointError as exc:
            return TestOutcome([], False, entry_error=str(exc), load_error=load_error)
        problem = None
        completed = True
        try:
            exec(compile(self.plan.parent_source, "tests.py", "exec"), glb)  # trusted
        except TestShapeError as exc:
            return TestOutcome(self.results, False, shape_error=str(exc), load_error=load_error)
        except ProbeFailed as exc:
            completed, problem = False, _("the test program stopped: {error}").format(error=exc)
        except SystemExit as exc:  # the test file's own exit(), not the app's
            completed, problem = False, _("the test program called {call}").format(
                call=f"exit({exc.code!r})")
        except Exception as exc:  # noqa: BLE001
            completed = False
            problem = _("the test program stopped: {error}").format(
                error=f"{type(exc).__name__}: {_clip(str(exc))}")
        if self.shape_error is not None:  # even if a bare `except:` in the tests ate it
            return TestOutcome(self.results, False, shape_error=self.shape_error,
                               load_error=load_error)
        return TestOutcome(self.results, completed, problem, load_error)


def judge_with(plan: TestPlan) -> Callable[[Session], TestOutcome]:
    """The judge :func:`desktop_app.verify.sandbox.run_code` runs for *plan*."""
    return lambda session: _Judge(plan, session).run()
