"""Plain data across the process boundary, as tagged JSON.

Only exact built-in types cross (``type(v) is int``, never ``isinstance``): a subclass or
an object with its own ``__eq__`` cannot be smuggled through. Decoding is iterative (no
recursion on the other side's data), counts every node against a budget, and refuses sets
and dicts whose keys hash alike (a hash-collision flood would make building them
quadratic). Imported by both sides; standard library only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

MAX_DEPTH = 60
MAX_NODES = 200_000
MAX_SAME_HASH = 16  # keys of one set or dict allowed to share a hash value
_INT_JSON_LIMIT = 2**53


class Unencodable(Exception):
    """The value is not plain data (or is too large / too deep)."""


class Malformed(ValueError):
    """Data that :func:`encode` would never produce (or too large to accept)."""


def encode(value: object, refs: Callable[[object], int | None] | None = None,
           _depth: int = 0, _budget: list[int] | None = None, graph: Any = None) -> Any:
    """Encode plain data (None, bool, int, float, complex, str, bytes, list, tuple, dict,
    set, frozenset, nested) into JSON-compatible tagged form. *refs* maps an object that
    is not plain data to a handle number (``{"ref": n}``), or returns None. With a
    *graph* (:class:`.graph.Graph`), a list, dict or set is sent as ``{"node": n}``, its
    contents separately, so that identity (aliasing) survives the trip."""
    if _budget is None:
        _budget = [MAX_NODES]
    _budget[0] -= 1
    if _budget[0] < 0:
        raise Unencodable("value too large")
    if _depth > MAX_DEPTH:
        raise Unencodable("value nested too deeply")
    t = type(value)
    if value is None or t is bool or t is str:
        return value
    if t is int:
        number: int = value  # type: ignore[assignment]
        if -_INT_JSON_LIMIT < number < _INT_JSON_LIMIT:
            return number
        return {"int": hex(number)}
    if t is float:
        real: float = value  # type: ignore[assignment]
        if real != real or real in (float("inf"), float("-inf")):
            return {"float": repr(real)}
        return {"float": real.hex()}
    if t is complex:
        pair: complex = value  # type: ignore[assignment]
        return {"complex": [pair.real.hex(), pair.imag.hex()]}
    if t is bytes:
        return {"bytes": value.hex()}  # type: ignore[attr-defined]
    d = _depth + 1
    if graph is not None and (t is list or t is dict or t is set):
        return {"node": graph.node(value)}
    if t is list:
        return [encode(v, refs, d, _budget, graph) for v in value]  # type: ignore[attr-defined]
    if t is tuple:
        return {"tuple": [encode(v, refs, d, _budget, graph) for v in value]}  # type: ignore[attr-defined]
    if t is dict:
        items = value.items()  # type: ignore[attr-defined]
        return {"dict": [[encode(k, refs, d, _budget, graph), encode(v, refs, d, _budget, graph)]
                         for k, v in items]}
    if t is set or t is frozenset:
        return {"set" if t is set else "frozenset":
                [encode(v, refs, d, _budget, graph) for v in value]}  # type: ignore[attr-defined]
    if refs is not None:
        ref = refs(value)
        if ref is not None:
            return {"ref": ref}
    raise Unencodable(type_name(value))


def type_name(value: object) -> str:
    """The class name of *value*, read without running any of the object's own code."""
    cls = type(value)
    try:
        name = type.__dict__["__qualname__"].__get__(cls)
        module = type.__dict__["__module__"].__get__(cls)
    except Exception:  # noqa: BLE001
        return "object"
    if type(name) is not str:
        return "object"
    if type(module) is not str or module in ("builtins", "solution", "__main__"):
        return name[:100]
    return f"{module}.{name}"[:100]


def _check_hashes(keys: list[object]) -> None:
    try:
        hashes = [hash(k) for k in keys]
    except TypeError as exc:
        raise Malformed("unhashable key") from exc
    if len(hashes) > MAX_SAME_HASH and max(Counter(hashes).values()) > MAX_SAME_HASH:
        raise Malformed("many keys with the same hash (a hash-collision flood)")


_SCALAR_TAGS = ("int", "float", "complex", "bytes")
_CONTAINER_TAGS = ("tuple", "set", "frozenset", "dict")


def _scalar(tag: str, payload: object) -> object:
    try:
        if tag == "int" and type(payload) is str and len(payload) < 10_000_000:
            return int(payload, 16)
        if tag == "float" and type(payload) is str:
            if payload in ("nan", "inf", "-inf"):
                return float(payload)
            return float.fromhex(payload)
        if tag == "complex" and type(payload) is list and len(payload) == 2 \
                and all(type(p) is str for p in payload):
            return complex(float.fromhex(payload[0]), float.fromhex(payload[1]))
        if tag == "bytes" and type(payload) is str:
            return bytes.fromhex(payload)
    except (ValueError, OverflowError) as exc:
        raise Malformed(f"bad {tag}") from exc
    raise Malformed(f"bad {tag}")


def decode(data: object, refs: list[object] | None = None, max_nodes: int = MAX_NODES,
           nodes: dict[int, object] | None = None, budget_box: list[int] | None = None) -> Any:
    """Inverse of :func:`encode`, without recursion; raises :class:`Malformed` on anything
    :func:`encode` would not produce. ``{"ref": n}`` is accepted only when *refs* is given,
    ``{"node": n}`` only for a known node of *nodes*. *budget_box* shares one budget
    between several calls."""
    budget = budget_box[0] if budget_box is not None else max_nodes
    results: list[object] = []
    # Work items: ("visit", node, depth) or ("build", kind, count).
    work: list[tuple[str, object, int]] = [("visit", data, 0)]
    while work:
        op, item, n = work.pop()
        if op == "build":
            items = results[len(results) - n:] if n else []
            if n:
                del results[len(results) - n:]
            results.append(_build(str(item), items))
            continue
        budget -= 1
        if budget < 0:
            raise Malformed("value too large")
        if n > MAX_DEPTH + 2:
            raise Malformed("nested too deeply")
        t = type(item)
        if item is None or t is bool or t is str or t is int:
            results.append(item)
            continue
        if t is list:
            seq: list[object] = item  # type: ignore[assignment]
            work.append(("build", "list", len(seq)))
            work.extend(("visit", v, n + 1) for v in reversed(seq))
            continue
        if t is not dict or len(item) != 1:  # type: ignore[arg-type]
            raise Malformed("malformed value")
        ((tag, payload),) = item.items()  # type: ignore[attr-defined]
        if tag in _SCALAR_TAGS:
            results.append(_scalar(tag, payload))
            continue
        if tag == "node" and nodes is not None:
            if type(payload) is not int or payload not in nodes:
                raise Malformed("bad node")
            results.append(nodes[payload])
            continue
        if tag == "ref" and refs is not None:
            if type(payload) is not int or not 0 <= payload < len(refs):
                raise Malformed("bad reference")
            results.append(refs[payload])
            continue
        if tag not in _CONTAINER_TAGS or type(payload) is not list:
            raise Malformed("malformed value")
        if tag == "dict":
            work.append(("build", "dict", 2 * len(payload)))
            for pair in reversed(payload):
                if type(pair) is not list or len(pair) != 2:
                    raise Malformed("bad dict item")
                work.append(("visit", pair[1], n + 1))
                work.append(("visit", pair[0], n + 1))
        else:
            work.append(("build", tag, len(payload)))
            work.extend(("visit", v, n + 1) for v in reversed(payload))
    if budget_box is not None:
        budget_box[0] = budget
    if len(results) != 1:
        raise Malformed("malformed value")
    return results[0]


def _build(kind: str, items: list[object]) -> object:
    if kind == "list":
        return items
    if kind == "tuple":
        return tuple(items)
    if kind == "dict":
        keys = items[0::2]
        _check_hashes(keys)
        return dict(zip(keys, items[1::2], strict=True))
    _check_hashes(items)
    return set(items) if kind == "set" else frozenset(items)


def describe_exception(exc: BaseException) -> list[object]:
    """[nearest built-in Exception type name or None, type name, message] for *exc*."""
    import builtins

    builtin_name = None
    try:
        for cls in type(exc).__mro__:
            if getattr(builtins, cls.__name__, None) is cls and issubclass(cls, Exception):
                builtin_name = cls.__name__
                break
    except Exception:  # noqa: BLE001
        builtin_name = None
    try:
        message = str(exc)
    except BaseException:  # noqa: BLE001
        message = "<unprintable>"
    if type(message) is not str:
        message = "<unprintable>"
    return [builtin_name, type_name(exc), message[:500]]
