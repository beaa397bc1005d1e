"""Decide whether a reply is right: math against an answer key, code against tests.

Code is checked by *split execution*. The test program (HumanEval-style asserts) is
rewritten twice from the same syntax tree:

* the **child** version runs in the sandbox next to the model's code. Every expression
  that depends on the model's code (``add(2, 3)``, ``s.pop()``) is wrapped in a *probe*
  whose value is sent back as plain data (exact ``int``/``str``/``list``/… only); an
  assertion is reduced to its probes, so the expected values usually never reach the
  child at all;
* the **parent** version runs here, without the model's code: each probe returns the
  recorded plain value, and the assertions themselves are evaluated here.

So the verdict comes from values the parent compares itself. An object whose ``==``
always returns True cannot be sent back (it is *opaque*, and any comparison with an
opaque value fails); printing "ALL TESTS PASSED", exiting 0, ``os._exit`` before the
results are complete, or patching builtins in the child all fail or error. Tests must
compare plain data: ``assert s.size() == 2`` works, ``assert len(s) == 2`` on the
model's own class does not (the class is opaque to the checker).
"""

from __future__ import annotations

import ast
import builtins
import copy
import signal
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from desktop_app.verify import _child
from desktop_app.verify.extract import (
    CodeBlock,
    FinalAnswer,
    compare_answers,
    extract_answer,
    extract_code,
    last_number,
    looks_like_python,
    parse_number,
    strip_thinking,
)
from desktop_app.verify.practice import Problem
from desktop_app.verify.sandbox import Limits, RunResult, run_code

VERDICTS = ("pass", "fail", "error", "timeout", "no-answer", "ran")

PROBE = "__triptych_probe__"
ASSERT = "__triptych_assert__"
_MAX_REPLY_CHARS = 400_000


@dataclass
class Verdict:
    """The outcome of verifying one reply (what the Verify button and the CLI show)."""

    verdict: str  # pass | fail | error | timeout | no-answer | ran
    expected: str | None = None
    got: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    reason: str = ""
    isolation: str = "No code was run."
    low_confidence: bool = False
    kind: str = "open"  # math | code | open
    details: list[str] = field(default_factory=list)

    @property
    def symbol(self) -> str:
        return {"pass": "✓", "fail": "✗", "error": "!", "timeout": "⏱", "no-answer": "–",
                "ran": "▶"}.get(self.verdict, "?")

    @property
    def label(self) -> str:
        return {"pass": "passed", "fail": "failed", "error": "error", "timeout": "timed out",
                "no-answer": "no answer", "ran": "ran, nothing to check against"}[self.verdict]

    def to_dict(self) -> dict:
        return asdict(self)


# ======================================================================== test plans


class TestFormatError(ValueError):
    """The test program uses something the split-execution checker cannot handle."""

    __test__ = False  # not a pytest class


@dataclass
class TestPlan:
    parent_source: str
    child_source: str
    asserts: dict[int, str]
    entry_point: str | None

    __test__ = False


_BUILTIN_NAMES = frozenset(dir(builtins))


def _target_names(target: ast.AST) -> list[str]:
    if isinstance(target, ast.Name):
        return [target.id]
    if isinstance(target, ast.Starred):
        return _target_names(target.value)
    if isinstance(target, (ast.Tuple, ast.List)):
        return [n for elt in target.elts for n in _target_names(elt)]
    return []


def _module_bindings(tree: ast.Module) -> list[str]:
    """Names a module binds at top level (functions, classes, assignments, imports)."""
    names: list[str] = []

    def visit(stmts: list[ast.stmt]) -> None:
        for node in stmts:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    names.extend(_target_names(target))
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                names.extend(_target_names(node.target))
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    names.append((alias.asname or alias.name).split(".")[0])
            elif isinstance(node, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
                for attr in ("body", "orelse", "finalbody"):
                    visit(getattr(node, attr, []) or [])
                for handler in getattr(node, "handlers", []) or []:
                    visit(handler.body)

    visit(tree.body)
    return names


def _function_names(tree: ast.Module) -> list[str]:
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


class _Scope:
    def __init__(self, sid: int, parent: _Scope | None, is_class: bool = False):
        self.sid = sid
        self.parent = parent
        self.is_class = is_class
        self.locals: set[str] = set()
        self.globals: set[str] = set()
        self.nonlocals: set[str] = set()

    def resolve(self, name: str) -> tuple[int, str]:
        """The scope a name refers to from here (Python's LEGB rules, roughly)."""
        scope: _Scope | None = self
        module = self
        while module.parent is not None:
            module = module.parent
        if name in self.globals:
            return (module.sid, name)
        first = True
        while scope is not None:
            if (first or not scope.is_class) and name in scope.locals \
                    and name not in scope.nonlocals and name not in scope.globals:
                return (scope.sid, name)
            first = False
            scope = scope.parent
        return (module.sid, name)


_SCOPE_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ListComp, ast.SetComp,
                ast.DictComp, ast.GeneratorExp)


class _Scopes:
    """Annotates every Name/arg/def node with ``_tkey = (scope id, name)``."""

    def __init__(self, tree: ast.Module):
        self.count = 0
        self.module = self._new(None)
        self._collect(tree, self.module)
        self._annotate(tree, self.module)

    def _new(self, parent: _Scope | None, is_class: bool = False) -> _Scope:
        scope = _Scope(self.count, parent, is_class)
        self.count += 1
        return scope

    def _collect(self, node: ast.AST, scope: _Scope) -> None:
        for child in ast.iter_child_nodes(node):
            self._bind(child, scope)

    def _bind(self, node: ast.AST, scope: _Scope) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            scope.locals.add(node.name)
            for dec in node.decorator_list:
                self._bind(dec, scope)
            if isinstance(node, ast.ClassDef):
                inner = self._new(scope, is_class=True)
                for base in [*node.bases, *(k.value for k in node.keywords)]:
                    self._bind(base, scope)
                node.__dict__["_tscope"] = inner
                for stmt in node.body:
                    self._bind(stmt, inner)
                return
            for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
                self._bind(default, scope)
            inner = self._new(scope)
            node.__dict__["_tscope"] = inner
            self._params(node.args, inner)
            for stmt in node.body:
                self._bind(stmt, inner)
            return
        if isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *(d for d in node.args.kw_defaults if d)]:
                self._bind(default, scope)
            inner = self._new(scope)
            node.__dict__["_tscope"] = inner
            self._params(node.args, inner)
            self._bind(node.body, inner)
            return
        if isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            inner = self._new(scope)
            node.__dict__["_tscope"] = inner
            self._collect(node, inner)
            return
        if isinstance(node, ast.Global):
            scope.globals.update(node.names)
        elif isinstance(node, ast.Nonlocal):
            scope.nonlocals.update(node.names)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, (ast.Store, ast.Del)):
            scope.locals.add(node.id)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                scope.locals.add((alias.asname or alias.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            scope.locals.add(node.name)
        self._collect(node, scope)

    @staticmethod
    def _params(args: ast.arguments, scope: _Scope) -> None:
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                scope.locals.add(arg.arg)
                arg.__dict__["_tkey"] = (scope.sid, arg.arg)

    def _annotate(self, node: ast.AST, scope: _Scope) -> None:
        for child in ast.iter_child_nodes(node):
            inner: _Scope = child.__dict__.get("_tscope", scope)
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                child.__dict__["_tkey"] = scope.resolve(child.name)
                for part in [*child.decorator_list,
                             *getattr(child, "bases", []),
                             *(k.value for k in getattr(child, "keywords", [])),
                             *getattr(getattr(child, "args", None), "defaults", []),
                             *(d for d in getattr(getattr(child, "args", None),
                                                  "kw_defaults", []) if d)]:
                    self._annotate_expr(part, scope)
                for stmt in child.body:
                    self._annotate_expr(stmt, inner)
                continue
            if isinstance(child, ast.Lambda):
                for part in [*child.args.defaults, *(d for d in child.args.kw_defaults if d)]:
                    self._annotate_expr(part, scope)
                self._annotate_expr(child.body, inner)
                continue
            if inner is not scope:
                self._annotate(child, inner)
                continue
            if isinstance(child, ast.Name):
                child.__dict__["_tkey"] = scope.resolve(child.id)
            self._annotate(child, scope)

    def _annotate_expr(self, node: ast.AST, scope: _Scope) -> None:
        holder = ast.Module(body=[], type_ignores=[])
        holder.body = [node]  # type: ignore[list-item]
        self._annotate(holder, scope)


def _key(node: ast.AST) -> tuple[int, str] | None:
    return node.__dict__.get("_tkey")


def _target_keys(target: ast.AST) -> list[tuple[int, str]]:
    keys = []
    for node in ast.walk(target):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store) and _key(node):
            keys.append(_key(node))
    return [k for k in keys if k is not None]


def _own_nodes(func: ast.AST):
    """Nodes in a function's body, not descending into nested functions or lambdas."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            stack.extend(ast.iter_child_nodes(node))


class _Taint:
    """Which variables may hold values produced by the model's code.

    Variables are ``(scope, name)`` pairs, so a ``x`` in one function is not an ``x``
    in another. The analysis is flow-insensitive: once tainted, always tainted.
    """

    def __init__(self, tree: ast.Module, reply_names: set[str]):
        scopes = _Scopes(tree)
        module = scopes.module
        self.keys: set[tuple[int, str]] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                key = _key(node)
                if key is None or key[0] != module.sid or node.id in module.locals:
                    continue
                if node.id in reply_names or node.id not in _BUILTIN_NAMES:
                    self.keys.add(key)
        self.function_keys: set[tuple[int, str]] = set()
        # Variables that may hold a mutable object the test built (a list, a dict, an
        # instance…): if handed to the model's code, it may change them in place.
        mutable = (ast.List, ast.Dict, ast.Set, ast.ListComp, ast.DictComp, ast.SetComp, ast.Call)
        self.mutable_keys: set[tuple[int, str]] = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, mutable):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name) and _key(target):
                        self.mutable_keys.add(_key(target))  # type: ignore[arg-type]
        defs = {_key(n): n for n in ast.walk(tree)
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and _key(n)}
        while True:
            before = (len(self.keys), len(self.function_keys))
            for node in ast.walk(tree):
                self._visit(node, defs)
            if (len(self.keys), len(self.function_keys)) == before:
                break

    def expr(self, node: ast.AST | None) -> bool:
        if node is None:
            return False
        return any(isinstance(n, ast.Name) and _key(n) in self.keys for n in ast.walk(node))

    def is_tainted_function(self, node: ast.AST) -> bool:
        return _key(node) in self.function_keys

    @staticmethod
    def _binding(node: ast.AST) -> tuple[ast.AST | None, list[ast.AST]]:
        """(value expression, targets) of a statement or clause that binds names."""
        if isinstance(node, ast.Assign):
            return node.value, list(node.targets)
        if isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.NamedExpr)):
            return node.value, [node.target]
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            return node.iter, [node.target]
        if isinstance(node, ast.withitem) and node.optional_vars is not None:
            return node.context_expr, [node.optional_vars]
        return None, []

    def _visit(self, node: ast.AST, defs: dict) -> None:
        value, targets = self._binding(node)
        if value is not None:
            if self.expr(value):
                for target in targets:
                    self.keys.update(_target_keys(target))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for inner in _own_nodes(node):
                if isinstance(inner, (ast.Return, ast.Yield, ast.YieldFrom)) \
                        and self.expr(inner.value):
                    key = _key(node)
                    if key is not None:
                        self.keys.add(key)
                        self.function_keys.add(key)
                    break
        elif isinstance(node, ast.Call):
            func_key = _key(node.func) if isinstance(node.func, ast.Name) else None
            if func_key in defs and func_key not in self.keys:
                self._taint_params(node, defs[func_key])
            if self.expr(node.func):
                # The model's code may mutate whatever it is handed.
                for arg in [*node.args, *(k.value for k in node.keywords)]:
                    base = arg
                    while isinstance(base, (ast.Attribute, ast.Subscript, ast.Starred)):
                        base = base.value
                    if isinstance(base, ast.Name) and _key(base) in self.mutable_keys:
                        self.keys.add(_key(base))  # type: ignore[arg-type]

    def _taint_params(self, call: ast.Call, func: ast.AST) -> None:
        args = func.args  # type: ignore[attr-defined]
        positional = [*args.posonlyargs, *args.args]

        def taint(arg: ast.arg | None) -> None:
            if arg is not None and _key(arg):
                self.keys.add(_key(arg))  # type: ignore[arg-type]

        for i, value in enumerate(call.args):
            if isinstance(value, ast.Starred):
                if self.expr(value):
                    for arg in positional[i:]:
                        taint(arg)
                    taint(args.vararg)
                break
            if not self.expr(value):
                continue
            taint(positional[i] if i < len(positional) else args.vararg)
        by_name = {a.arg: a for a in [*positional, *args.kwonlyargs]}
        for keyword in call.keywords:
            if not self.expr(keyword.value):
                continue
            if keyword.arg is None:
                for arg in by_name.values():
                    taint(arg)
                taint(args.kwarg)
            else:
                taint(by_name.get(keyword.arg) or args.kwarg)


_OPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
        ast.Is: "is", ast.IsNot: "is not", ast.In: "in", ast.NotIn: "not in"}
_COMPARE: dict[str, Callable[[object, object], object]] = {
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b, "<=": lambda a, b: a <= b,  # type: ignore[operator]
    ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,  # type: ignore[operator]
    "is": lambda a, b: a is b, "is not": lambda a, b: a is not b,
    "in": lambda a, b: a in b, "not in": lambda a, b: a not in b,  # type: ignore[operator]
}


def _probe_call(pid: int, node: ast.expr) -> ast.Call:
    lam = ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=node,
    )
    return ast.Call(func=ast.Name(PROBE, ast.Load()), args=[ast.Constant(pid), lam], keywords=[])


def _lambda(body: ast.expr) -> ast.Lambda:
    return ast.Lambda(
        args=ast.arguments(posonlyargs=[], args=[], vararg=None, kwonlyargs=[], kw_defaults=[],
                           kwarg=None, defaults=[]),
        body=body,
    )


def _is_probe(node: ast.AST) -> bool:
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id == PROBE)


def _split_and(test: ast.expr) -> list[ast.expr]:
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return [part for value in test.values for part in _split_and(value)]
    return [test]


def _probes_in_order(node: ast.AST) -> tuple[list[ast.Call], bool]:
    """The probes in *node* in evaluation order, and whether all of them are evaluated
    unconditionally (no short-circuit, conditional expression or comprehension)."""
    found: list[ast.Call] = []
    conditional = False

    def walk(n: ast.AST, cond: bool) -> None:
        nonlocal conditional
        if _is_probe(n):
            found.append(n)  # type: ignore[arg-type]
            conditional = conditional or cond
            return
        if isinstance(n, ast.BoolOp):
            walk(n.values[0], cond)
            for value in n.values[1:]:
                walk(value, True)
            return
        if isinstance(n, ast.IfExp):
            walk(n.test, cond)
            walk(n.body, True)
            walk(n.orelse, True)
            return
        if isinstance(n, ast.Compare):
            walk(n.left, cond)
            walk(n.comparators[0], cond)
            for comp in n.comparators[1:]:
                walk(comp, True)
            return
        if isinstance(n, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            for child in ast.iter_child_nodes(n):
                walk(child, True)
            return
        if isinstance(n, ast.Dict):
            for key, value in zip(n.keys, n.values, strict=True):
                if key is not None:
                    walk(key, cond)
                walk(value, cond)
            return
        for child in ast.iter_child_nodes(n):
            walk(child, cond)

    walk(node, False)
    return found, not conditional


class _Rewriter:
    """Produces the parent or the child version of a test program (same ids in both)."""

    def __init__(self, taint: _Taint, for_child: bool, asserts: dict[int, str]):
        self.taint = taint
        self.for_child = for_child
        self.asserts = asserts
        self.next_probe = 0
        self.next_assert = 0
        self.next_effect = 0

    # -- expressions -------------------------------------------------------------------

    def _is_root(self, node: ast.AST) -> bool:
        t = self.taint
        if isinstance(node, ast.Name):
            return isinstance(node.ctx, ast.Load) and _key(node) in t.keys
        if isinstance(node, ast.Call):
            return t.expr(node.func)
        if isinstance(node, ast.Attribute):
            return isinstance(node.ctx, ast.Load) and t.expr(node.value)
        return False

    def opt(self, node: ast.expr | None) -> ast.expr | None:
        return None if node is None else self.expr(node)

    def expr(self, node: ast.expr) -> ast.expr:
        if self._is_root(node):
            pid = self.next_probe
            self.next_probe += 1
            return _probe_call(pid, node)
        for name, value in ast.iter_fields(node):
            if isinstance(node, ast.NamedExpr) and name == "target":
                continue
            if isinstance(node, ast.Lambda) and name == "args":
                continue
            if isinstance(value, ast.expr):
                setattr(node, name, self.expr(value))
            elif isinstance(value, list):
                setattr(node, name, [self._item(v) for v in value])
        return node

    def _item(self, value: Any) -> Any:
        if isinstance(value, ast.expr):
            return self.expr(value)
        if isinstance(value, ast.comprehension):
            value.iter = self.expr(value.iter)
            value.ifs = [self.expr(i) for i in value.ifs]
            return value
        if isinstance(value, ast.keyword):
            value.value = self.expr(value.value)
            return value
        return value

    def _store_target(self, target: ast.expr) -> ast.expr:
        # Subscript / attribute targets on plain objects: rewrite the parts that are loads.
        if isinstance(target, ast.Subscript):
            target.value = self.expr(target.value)
            target.slice = self.expr(target.slice)
        elif isinstance(target, ast.Attribute):
            target.value = self.expr(target.value)
        elif isinstance(target, (ast.Tuple, ast.List)):
            target.elts = [self._store_target(e) for e in target.elts]
        elif isinstance(target, ast.Starred):
            target.value = self._store_target(target.value)
        return target

    # -- statements --------------------------------------------------------------------

    def _touches_model_object(self, targets: list[ast.expr]) -> bool:
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, (ast.Attribute, ast.Subscript)) and self.taint.expr(node.value):
                    return True
        return False

    def _effect(self, stmt: ast.stmt) -> list[ast.stmt]:
        """A statement that changes the model's own object runs in the child only."""
        targets = getattr(stmt, "targets", None) or [stmt.target]  # type: ignore[attr-defined]
        if any(_target_names(t) for t in targets):
            raise TestFormatError(
                f"line {stmt.lineno}: a statement both changes the model's object and "
                "assigns a name; split it in two")
        name = f"__triptych_effect_{self.next_effect}__"
        self.next_effect += 1
        pid = self.next_probe
        self.next_probe += 1
        func = ast.FunctionDef(name=name, args=_lambda(ast.Constant(None)).args, body=[stmt],
                               decorator_list=[], returns=None, type_comment=None)
        if "type_params" in ast.FunctionDef._fields:  # Python 3.12+
            func.__dict__["type_params"] = []
        call = ast.Call(func=ast.Name(PROBE, ast.Load()),
                        args=[ast.Constant(pid), ast.Name(name, ast.Load())], keywords=[])
        return [func, ast.Expr(call)]

    def _assert(self, stmt: ast.Assert) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for part in _split_and(stmt.test):
            aid = self.next_assert
            self.next_assert += 1
            self.asserts.setdefault(aid, ast.unparse(part))
            compare = part if isinstance(part, ast.Compare) and len(part.ops) == 1 else None
            if compare is not None:
                left = self.expr(compare.left)
                right = self.expr(compare.comparators[0])
                whole: ast.expr = ast.Compare(left=left, ops=compare.ops, comparators=[right])
            else:
                whole = self.expr(part)
            if self.for_child:
                probes, unconditional = _probes_in_order(whole)
                body: ast.expr = (ast.Tuple(elts=list(probes), ctx=ast.Load())
                                  if unconditional else whole)
                args: list[ast.expr] = [ast.Constant(aid), _lambda(body)]
            elif compare is not None:
                op = _OPS[type(compare.ops[0])]
                args = [ast.Constant(aid), _lambda(left), _lambda(right), ast.Constant(op)]
            else:
                args = [ast.Constant(aid), _lambda(whole), ast.Constant(None)]
            call = ast.Call(func=ast.Name(ASSERT, ast.Load()), args=args, keywords=[])
            out.append(ast.Expr(call))
        return out

    def stmts(self, body: list[ast.stmt]) -> list[ast.stmt]:
        out: list[ast.stmt] = []
        for stmt in body:
            out.extend(self.stmt(stmt))
        return out

    def stmt(self, s: ast.stmt) -> list[ast.stmt]:  # noqa: C901 - one case per statement type
        if isinstance(s, ast.Assert):
            return self._assert(s)
        if isinstance(s, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if self.taint.is_tainted_function(s):
                if any(isinstance(n, ast.Assert) for n in ast.walk(s)):
                    raise TestFormatError(
                        f"line {s.lineno}: the helper {s.name}() both returns the model's "
                        "output and asserts; assert outside it instead")
                return [s]  # called only through probes, i.e. inside the sandbox
            s.decorator_list = [self.expr(d) for d in s.decorator_list]
            s.args.defaults = [self.expr(d) for d in s.args.defaults]
            s.body = self.stmts(s.body) or [ast.Pass()]
            return [s]
        if isinstance(s, ast.ClassDef):
            s.body = self.stmts(s.body) or [ast.Pass()]
            return [s]
        if isinstance(s, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets: list[ast.expr] = (list(s.targets) if isinstance(s, (ast.Assign, ast.Delete))
                                       else [s.target])
            if self._touches_model_object(targets):
                return self._effect(s)
            if isinstance(s, ast.Delete):
                return [s]
            if isinstance(s, ast.Assign):
                s.targets = [self._store_target(t) for t in s.targets]
            else:
                s.target = self._store_target(s.target)  # type: ignore[assignment]
            if s.value is not None:
                s.value = self.expr(s.value)
            return [s]
        if isinstance(s, (ast.If, ast.While)):
            s.test = self.expr(s.test)
            s.body = self.stmts(s.body) or [ast.Pass()]
            s.orelse = self.stmts(s.orelse)
            return [s]
        if isinstance(s, (ast.For, ast.AsyncFor)):
            s.iter = self.expr(s.iter)
            s.body = self.stmts(s.body) or [ast.Pass()]
            s.orelse = self.stmts(s.orelse)
            return [s]
        if isinstance(s, (ast.With, ast.AsyncWith)):
            for item in s.items:
                item.context_expr = self.expr(item.context_expr)
            s.body = self.stmts(s.body) or [ast.Pass()]
            return [s]
        if isinstance(s, ast.Try) or type(s).__name__ == "TryStar":
            s.body = self.stmts(s.body) or [ast.Pass()]  # type: ignore[attr-defined]
            for handler in s.handlers:  # type: ignore[attr-defined]
                handler.type = self.opt(handler.type)
                handler.body = self.stmts(handler.body) or [ast.Pass()]
            s.orelse = self.stmts(s.orelse)  # type: ignore[attr-defined]
            s.finalbody = self.stmts(s.finalbody)  # type: ignore[attr-defined]
            return [s]
        if isinstance(s, ast.Match):
            s.subject = self.expr(s.subject)
            for case in s.cases:
                case.guard = self.opt(case.guard)
                case.body = self.stmts(case.body) or [ast.Pass()]
            return [s]
        if isinstance(s, ast.Expr):
            s.value = self.expr(s.value)
            return [s]
        if isinstance(s, ast.Return):
            s.value = self.opt(s.value)
            return [s]
        if isinstance(s, ast.Raise):
            s.exc = self.opt(s.exc)
            s.cause = self.opt(s.cause)
            return [s]
        return [s]  # import, pass, break, continue, global, nonlocal


def _prune_for_child(module: ast.Module) -> None:
    """Drop assignments and helpers the child does not need (expected-value tables,
    reference solutions), so they stay with the parent."""

    def removable(stmt: ast.stmt) -> list[str] | None:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return [stmt.name]
        if isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            if all(isinstance(t, ast.Name) for t in targets) and stmt.value is not None \
                    and not any(_is_probe(n) for n in ast.walk(stmt.value)):
                return [t.id for t in targets]  # type: ignore[attr-defined]
        return None

    def blocks(node: ast.AST):
        for attr in ("body", "orelse", "finalbody"):
            block = getattr(node, attr, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                yield node, attr, block
        for child in ast.iter_child_nodes(node):
            yield from blocks(child)

    while True:
        loaded: dict[str, int] = defaultdict(int)
        for n in ast.walk(module):
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load):
                loaded[n.id] += 1
        removed = False
        for owner, attr, block in list(blocks(module)):
            kept = []
            for stmt in block:
                names = removable(stmt)
                if names and not any(loaded.get(name) for name in names):
                    removed = True
                    continue
                kept.append(stmt)
            if len(kept) != len(block):
                setattr(owner, attr, kept or [ast.Pass()])
        if not removed:
            return


def _infer_entry_point(code_tree: ast.Module, entry_point: str | None) -> str | None:
    if entry_point:
        return entry_point
    functions = [n for n in _function_names(code_tree)
                 if n != "main" and not n.startswith(("test", "_"))]
    return functions[-1] if functions else None


def build_test_plan(tests: str, code: str, entry_point: str | None = None) -> TestPlan:
    """Rewrite a HumanEval-style test program into its parent and child versions.

    Supported: top-level ``assert`` statements that call the reply's functions, setup
    statements, helper functions, loops, and ``def check(candidate): …`` (called with
    the entry point if the file does not call it itself).
    """
    try:
        tree = ast.parse(tests)
    except SyntaxError as exc:
        raise TestFormatError(f"the tests do not parse: {exc.msg} (line {exc.lineno})") from exc
    try:
        code_tree = ast.parse(code)
    except (SyntaxError, ValueError):
        code_tree = ast.Module(body=[], type_ignores=[])
    reply_names = set(_module_bindings(code_tree))

    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"
                  and len(n.args.args) == 1), None)
    resolved_entry = entry_point
    if check is not None:
        called = any(isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
                     and isinstance(n.value.func, ast.Name) and n.value.func.id == "check"
                     for n in tree.body)
        if not called:
            resolved_entry = _infer_entry_point(code_tree, entry_point)
            if resolved_entry is None:
                raise TestFormatError("the reply defines no function for check(candidate)")
            call = ast.Expr(ast.Call(ast.Name("check", ast.Load()),
                                     [ast.Name(resolved_entry, ast.Load())], []))
            tree.body.append(call)
            reply_names.add(resolved_entry)
    ast.fix_missing_locations(tree)

    taint = _Taint(tree, reply_names)
    if not any(isinstance(n, ast.Assert) for n in ast.walk(tree)):
        raise TestFormatError("the tests contain no assert statement")

    asserts: dict[int, str] = {}
    versions = []
    for for_child in (False, True):
        module = copy.deepcopy(tree)
        rewriter = _Rewriter(taint, for_child, asserts)
        module.body = rewriter.stmts(module.body)
        if for_child:
            _prune_for_child(module)
        ast.fix_missing_locations(module)
        source = ast.unparse(module)
        compile(source, "tests.py", "exec")  # both must compile
        versions.append(source)
    return TestPlan(versions[0], versions[1], asserts, resolved_entry)


# ========================================================================= replaying


class OpaqueValueError(Exception):
    """A comparison or operation was attempted on a value that is not plain data."""


class _Missing(BaseException):  # noqa: N818 - control flow, not an error for tests to catch
    """The sandbox has no record for a probe: its run ended early or diverged."""


class Opaque:
    """Stands in, in the parent, for an object that is not plain data."""

    __slots__ = ("what",)

    def __init__(self, what: str):
        object.__setattr__(self, "what", what)

    def _refuse(self, *args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OpaqueValueError(
            f"the code returned {self.what_phrase}, which the checker does not compare: "
            "only plain data (numbers, strings, lists, tuples, dicts, sets) is compared")

    @property
    def what_phrase(self) -> str:
        what = object.__getattribute__(self, "what")
        if what.startswith("value "):
            return f"a {what}"
        return f"an object of type {what}"

    def __repr__(self) -> str:
        return f"<{object.__getattribute__(self, 'what')} object>"

    def __getattr__(self, name: str):  # noqa: ANN204
        self._refuse()

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _refuse
    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = __call__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _refuse
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __int__ = __float__ = _refuse
    __index__ = __round__ = __and__ = __or__ = __xor__ = __invert__ = _refuse
    __setattr__ = __setitem__ = __delitem__ = __hash__ = _refuse


def _short_repr(value: object, limit: int = 200) -> str:
    try:
        text = repr(value)
    except ValueError:  # e.g. an int too long to print
        text = f"<int with {value.bit_length()} bits>" if isinstance(value, int) else "<value>"
    except Exception:  # noqa: BLE001
        text = "<value>"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _clip(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
            return f"✗ {self.source} — got {self.got}, expected {self.expected}"
        return f"✗ {self.source} — got {self.got}"


class _Replay:
    def __init__(self, records: list[dict], asserts: dict[int, str]):
        self.queues: dict[tuple[int, int], deque] = defaultdict(deque)
        for rec in records:
            if "p" in rec and "k" in rec:
                self.queues[(int(rec["k"]), int(rec["p"]))].append(rec)
        self.asserts = asserts
        self.invocation = 0
        self.current = 0
        self.results: list[AssertResult] = []

    def probe(self, pid: int, fn: Callable) -> object:
        queue = self.queues.get((self.current, pid))
        if not queue:
            raise _Missing(pid)
        rec = queue.popleft()
        if "err" in rec:
            err = rec["err"]
            if not (isinstance(err, list) and len(err) == 3):
                raise _Missing(pid)
            raise _child.make_exception(err)
        if "opaque" in rec:
            return Opaque(str(rec["opaque"])[:100])
        try:
            return _child.decode(rec.get("v"))
        except (ValueError, TypeError, RecursionError, OverflowError) as exc:
            raise _Missing(pid) from exc

    def assertion(self, aid: int, left: Callable, right: Callable | None = None,
                  op: str = "==") -> None:
        self.invocation += 1
        outer, self.current = self.current, self.invocation
        source = self.asserts.get(aid, "assert")
        try:
            got = left()
            if right is not None:
                expected = right()
                if isinstance(got, Opaque) or isinstance(expected, Opaque):
                    (got if isinstance(got, Opaque) else expected)._refuse()
                ok = bool(_COMPARE[op](got, expected))
                shown = _short_repr(expected) if op == "==" else f"{op} {_short_repr(expected)}"
                result = AssertResult(aid, source, ok, _short_repr(got), shown)
            else:
                result = AssertResult(aid, source, bool(got), _short_repr(got))
        except _Missing:
            result = AssertResult(aid, source, False, error="not run to completion in the sandbox")
        except _child.ProbeFailed as exc:
            result = AssertResult(aid, source, False, error=f"raised {exc}")
        except OpaqueValueError as exc:
            result = AssertResult(aid, source, False, error=str(exc))
        except Exception as exc:  # noqa: BLE001
            result = AssertResult(aid, source, False,
                                  error=f"raised {type(exc).__name__}: {_clip(str(exc))}")
        finally:
            self.current = outer
        self.results.append(result)


@dataclass
class TestOutcome:
    results: list[AssertResult]
    completed: bool
    problem: str | None = None  # why the run or replay stopped early
    load_error: str | None = None

    __test__ = False

    @property
    def passed(self) -> int:
        return sum(r.passed for r in self.results)


def _err_text(err: object) -> str:
    if isinstance(err, list) and len(err) == 3:
        return f"{err[1]}: {err[2]}" if err[2] else str(err[1])
    return "an error"


def replay(plan: TestPlan, records: list[dict]) -> TestOutcome:
    """Evaluate the parent version of the tests against the sandbox's records."""
    fatal = next((r for r in records if "fatal" in r), None)
    load = next((r for r in records if "load_error" in r), None)
    state = _Replay(records, plan.asserts)
    glb = {"__name__": "tests", "__builtins__": builtins, PROBE: state.probe,
           ASSERT: state.assertion, "__triptych_in_child__": False,
           "print": lambda *a, **k: None, "input": lambda *a: ""}
    problem = None
    completed = True
    try:
        exec(compile(plan.parent_source, "tests.py", "exec"), glb)  # trusted test code
    except _Missing:
        completed = False
        problem = ("the tests stopped early in the sandbox"
                   + (f": {_err_text(fatal['fatal'])}" if fatal else ""))
    except _child.ProbeFailed as exc:
        completed = False
        problem = f"the test program stopped: {exc}"
    except Exception as exc:  # noqa: BLE001
        completed = False
        problem = f"the test program stopped: {type(exc).__name__}: {_clip(str(exc))}"
    if completed and fatal:
        completed = False
        problem = f"the test program stopped in the sandbox: {_err_text(fatal['fatal'])}"
    return TestOutcome(state.results, completed, problem,
                       _err_text(load["load_error"]) if load else None)


# ========================================================================== verdicts


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _run_failure(run: RunResult, timeout_s: float) -> tuple[str, str] | None:
    """(verdict, reason) when the run itself went wrong, else None."""
    if run.error:
        return "error", run.error
    if run.timed_out:
        return "timeout", f"Timed out after {timeout_s:g} s; the program and everything it started were killed."
    if run.output_exceeded:
        return "error", "The program produced far more output than allowed and was stopped."
    if run.signal:
        name = _signal_name(run.signal)
        why = {"SIGSEGV": "it crashed (segmentation fault)", "SIGKILL": "it was killed",
               "SIGXCPU": "it used up its CPU time", "SIGABRT": "it aborted",
               "SIGBUS": "it crashed (bus error)", "SIGSYS": "it made a forbidden system call"}
        return "error", f"The program died: {why.get(name, name)} ({name})."
    return None


def _run_verdict(code: CodeBlock, timeout_s: float, kind: str, note: str) -> Verdict:
    run = run_code(code.code, limits=Limits(timeout_s=timeout_s))
    base: dict[str, Any] = dict(stdout=run.stdout, stderr=run.stderr, duration_s=run.duration_s,
                isolation=run.protections.summary() if run.protections.reported else
                "The sandbox did not start.", kind=kind)
    failure = _run_failure(run, timeout_s)
    if failure:
        return Verdict(failure[0], reason=failure[1], got=_last_line(run.stdout) or None, **base)
    if run.exit_code:
        last = _last_line(run.stderr)
        return Verdict("error", got=_last_line(run.stdout) or None,
                       reason=f"Ran, but exited with code {run.exit_code}"
                       + (f": {last}" if last else "") + f". {note}", **base)
    return Verdict("ran", got=_last_line(run.stdout) or None,
                   reason=f"Ran, nothing to check against (exit code 0). {note}".strip(), **base)


def _code_verdict(code: CodeBlock, tests: str, entry_point: str | None, timeout_s: float) -> Verdict:
    try:
        ast.parse(code.code)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        msg = getattr(exc, "msg", str(exc))
        return Verdict("error", kind="code", got=None,
                       reason=f"The code does not parse: {msg}" + (f" (line {line})." if line else "."))
    try:
        plan = build_test_plan(tests, code.code, entry_point)
    except TestFormatError as exc:
        return Verdict("error", kind="code", reason=f"The tests could not be prepared: {exc}.")
    run = run_code(code.code, tests_source=plan.child_source, limits=Limits(timeout_s=timeout_s))
    base: dict[str, Any] = dict(stdout=run.stdout, stderr=run.stderr, duration_s=run.duration_s, kind="code",
                isolation=run.protections.summary() if run.protections.reported else
                "The sandbox did not start.")
    total = len(plan.asserts)
    failure = _run_failure(run, timeout_s)
    if failure:
        return Verdict(failure[0], reason=failure[1], expected=f"all {total} tests pass", **base)
    done = [r for r in run.records if "done" in r]
    complete = bool(done) and done[-1].get("done") == len(run.records) - 1 \
        and [r.get("n") for r in run.records] == list(range(len(run.records)))
    if not complete:
        how = f"exit code {run.exit_code}" if run.exit_code is not None else "no exit code"
        return Verdict("error", expected=f"all {total} tests pass",
                       reason=f"The program ended before the tests finished ({how}); "
                       "results are only trusted when the test harness completes.", **base)
    if run.bad_records:
        return Verdict("error", expected=f"all {total} tests pass",
                       reason="The sandbox sent results that were not from the test harness; "
                       "they were ignored and the run counts as an error.", **base)
    outcome = replay(plan, run.records)
    details = [r.line() for r in outcome.results]
    n_run = len(outcome.results)
    passed = outcome.passed
    if outcome.load_error:
        details.insert(0, f"! the code raised {outcome.load_error} while loading")
    if outcome.completed and n_run and passed == n_run:
        return Verdict("pass", expected=f"{n_run} assertions hold", got=f"{passed}/{n_run} passed",
                       reason=f"All {n_run} test assertions passed"
                       + (f" ({plan.entry_point})" if plan.entry_point else "") + ".",
                       details=details, **base)
    first = next((r for r in outcome.results if not r.passed), None)
    if first is not None:
        got = first.error or first.got
        expected = first.expected if first.expected is not None else "true"
        what = (f"`{first.source}` {first.error}" if first.error
                else f"`{first.source}` got {first.got}"
                + (f", expected {first.expected}" if first.expected is not None else ""))
        reason = f"{n_run - passed} of {n_run} test assertions failed; first: {what}."
    else:
        got, expected = None, f"{len(plan.asserts)} assertions hold"
        reason = "No test assertion ran to completion."
    if not outcome.completed and outcome.problem:
        reason += f" Then {outcome.problem}."
    if outcome.load_error and passed < max(n_run, 1):
        reason += f" (The code raised {outcome.load_error} while loading.)"
    return Verdict("fail", expected=expected, got=got, reason=reason, details=details, **base)


def _math_verdict(text: str, expected: str, timeout_s: float) -> Verdict:
    answer = extract_answer(text)
    run: RunResult | None = None
    if answer is None or answer.low_confidence:
        code = extract_code(text)
        if code is not None:
            run = run_code(code.code, limits=Limits(timeout_s=timeout_s))
            line = _last_line(run.stdout)
            if line and not run.timed_out and not run.exit_code and not run.signal:
                number = parse_number(line) or last_number(line)
                answer = FinalAnswer(line, "program-output", number)
    extra: dict[str, Any] = {}
    if run is not None:
        extra = dict(stdout=run.stdout, stderr=run.stderr, duration_s=run.duration_s,
                     isolation=run.protections.summary() if run.protections.reported
                     else "The sandbox did not start.")
    if answer is None:
        return Verdict("no-answer", expected=expected.strip(), kind="math",
                       reason="No final answer found: no \\boxed{…}, no '#### …' line, no "
                       "'the answer is …', and no number.", **extra)
    comparison = compare_answers(expected, answer)
    source = {"boxed": "from \\boxed{}", "gsm8k": "from the '####' line",
              "answer-is": "from 'the answer is …'", "program-output": "printed by its code",
              "last-number": "the last number in the reply"}[answer.source]
    low = answer.low_confidence
    caveat = " Low confidence: the reply states no explicit final answer." if low else ""
    note = f" ({comparison.note})" if comparison.note else ""
    if comparison.equal:
        reason = f"Correct: {comparison.got} ({source}) matches the answer key{note}.{caveat}"
        verdict = "pass"
    else:
        reason = f"Wrong: expected {comparison.expected}, got {comparison.got} ({source}).{caveat}"
        verdict = "fail"
    return Verdict(verdict, expected=comparison.expected, got=comparison.got, reason=reason,
                   low_confidence=low, kind="math", **extra)


def _find_code(text: str) -> CodeBlock | None:
    code = extract_code(text)
    if code is None and looks_like_python(text):
        code = CodeBlock(text if text.endswith("\n") else text + "\n", "", True)
    return code


def verify_reply(
    reply_text: str,
    problem: Problem | None = None,
    *,
    expect: str | None = None,
    tests: str | None = None,
    timeout_s: float = 5.0,
) -> Verdict:
    """Check one reply. Blocks while model code runs (up to *timeout_s* plus ~1 s):
    call it from a worker thread, never the GUI thread.

    * *tests* (or a code problem's hidden tests): run the reply's last Python block
      against them in the sandbox;
    * *expect* (or a math problem's answer key): compare the reply's final answer;
    * an unverifiable problem or a free prompt: run the code if there is any
      (verdict ``ran``), else ``no-answer``.
    """
    if len(reply_text) > _MAX_REPLY_CHARS:
        reply_text = reply_text[:_MAX_REPLY_CHARS]
    kind = problem.kind if problem is not None else None
    if tests is None and problem is not None and problem.kind == "code":
        tests = problem.tests
    if expect is None and problem is not None and problem.kind == "math":
        expect = problem.answer
    if tests is not None:
        kind = "code"
    elif expect is not None:
        kind = "math"

    visible = strip_thinking(reply_text)
    if visible.still_thinking:
        return Verdict("no-answer", expected=expect if kind == "math" else None, kind=kind or "open",
                       reason="No answer (still thinking): the reply opened <think> and never "
                       "closed it.")
    text = visible.text

    if tests is not None:
        code = _find_code(text)
        if code is None:
            return Verdict("no-answer", kind="code", expected="code that passes the tests",
                           reason="No Python code found in the reply (looked for the last "
                           "```python block, or an unlabelled block that parses as Python).")
        return _code_verdict(code, tests, getattr(problem, "entry_point", None), timeout_s)
    if expect is not None:
        return _math_verdict(text, expect, timeout_s)

    code = _find_code(text)
    unverifiable = problem is not None and not problem.verifiable
    if code is not None:
        note = ("This prompt is unverifiable: there is no ground truth."
                if unverifiable else "Free prompt: no answer key or tests.")
        return _run_verdict(code, timeout_s, "code" if problem is None else (kind or "open"), note)
    answer = extract_answer(text)
    if unverifiable:
        reason = ("Unverifiable: this prompt has no ground truth to check against "
                  "(nothing to run, nothing to compare).")
    else:
        reason = "Nothing to check against: a free prompt with no code block and no answer key."
        if answer is not None and not answer.low_confidence:
            reason += f" Its final answer reads {answer.display()}."
    return Verdict("no-answer", kind=kind or "open", reason=reason,
                   got=answer.display() if answer is not None and not answer.low_confidence
                   else None)
