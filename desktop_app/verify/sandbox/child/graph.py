"""Python's aliasing across the pipe: lists, dicts and sets by identity, both ways.

Each side numbers the mutable containers it sends (the parent from 1 up, the sandbox from
-1 down) and sends their contents as *states*; a container met twice is the same node,
so ``f(a, a)``, a nested list the test also holds, a list that contains itself or a
returned argument (``f(x) is x``) keep their identity. After every request the sandbox
sends the state of every node back, after a return or an exception alike, and the
parent changes its own objects in place to match: exactly what the function did to them.

A node the sandbox still holds after the request (its code kept it: an instance
attribute, a global, a default argument, a generator) stays *linked*: from then on every
request carries its state both ways, so changes on either side are seen by the other, as
if the two processes shared it. Only the sandbox can tell what it holds (from reference
counts, :meth:`Graph.held`); a false "held" costs only bandwidth, and hiding one only
makes the code behave as if it had copied the object, which it may do anyway.

Imported by both sides; standard library only. Everything from the other side is
checked: an unknown node of ours, a node of the other side's numbering we do not know
(except as a new one), or a state whose type differs from the node's is :class:`Malformed`.
"""

from __future__ import annotations

import sys
from collections import Counter
from typing import Any

from .codec import MAX_NODES, Malformed, decode, encode

_KINDS: dict[type, str] = {list: "list", dict: "dict", set: "set"}


def _kind_of_state(data: object) -> type:
    if type(data) is list:
        return list
    if type(data) is dict and len(data) == 1:
        tag = next(iter(data))
        if tag == "dict":
            return dict
        if tag == "set":
            return set
    raise Malformed("bad node state")


class Graph:
    """The mutable containers one side has sent or received, by number and identity."""

    def __init__(self, sign: int) -> None:
        self.sign = sign  # +1 in the parent, -1 in the sandbox
        self.objects: dict[int, Any] = {}
        self._ids: dict[int, int] = {}  # id(object) -> number, while we hold the object
        self._next = 1
        self._order: list[int] = []

    # -- sending --------------------------------------------------------------------------

    def node(self, obj: object) -> int:
        """The number of *obj* (a list, dict or set), assigning one if it is new."""
        number = self._ids.get(id(obj))
        if number is None:
            number = self.sign * self._next
            self._next += 1
            self.objects[number] = obj
            self._ids[id(obj)] = number
            self._order.append(number)
        return number

    def mark(self) -> int:
        return len(self._order)

    def rollback(self, mark: int) -> None:
        """Forget the nodes numbered since *mark* (an encoding that failed half-way)."""
        while len(self._order) > mark:
            number = self._order.pop()
            obj = self.objects.pop(number, None)
            self._ids.pop(id(obj), None)

    def encode(self, value: object, refs: Any = None) -> Any:
        return encode(value, refs, graph=self)

    def states(self, refs: Any = None) -> list[list[Any]]:
        """``[[number, contents], …]`` for every node (and every node they reach)."""
        out: list[list[Any]] = []
        budget = [MAX_NODES]
        done = 0
        while done < len(self._order):  # encoding contents may number new nodes
            number = self._order[done]
            done += 1
            obj = self.objects.get(number)
            if obj is None:
                continue
            if type(obj) is list:
                state: Any = [encode(v, refs, 1, budget, self) for v in obj]
            elif type(obj) is dict:
                state = {"dict": [[encode(k, refs, 1, budget, self),
                                   encode(v, refs, 1, budget, self)] for k, v in obj.items()]}
            else:
                state = {"set": [encode(v, refs, 1, budget, self) for v in obj]}
            out.append([number, state])
        return out

    # -- receiving ------------------------------------------------------------------------

    def apply(self, states: object, refs: list[object] | None = None) -> None:
        """Make our nodes match the other side's *states*, in place; create the nodes it
        numbered itself that we have not seen."""
        if type(states) is not list or len(states) > MAX_NODES:
            raise Malformed("bad node states")
        plan: list[tuple[Any, object]] = []
        for item in states:
            if type(item) is not list or len(item) != 2 or type(item[0]) is not int:
                raise Malformed("bad node state")
            number, data = item
            kind = _kind_of_state(data)
            obj = self.objects.get(number)
            if obj is None:
                if number * self.sign >= 0:  # ours, yet unknown: never sent
                    raise Malformed("unknown node")
                obj = kind()
                self.objects[number] = obj
                self._ids[id(obj)] = number
                self._order.append(number)
            elif type(obj) is not kind:
                raise Malformed("a node changed its type")
            plan.append((obj, data))
        budget = [MAX_NODES]
        for obj, data in plan:
            fresh: Any = decode(data, refs, nodes=self.objects, budget_box=budget)
            if type(obj) is list:
                obj[:] = fresh
            else:
                obj.clear()
                obj.update(fresh)

    def keep(self, numbers: object, fresh_from: int | None = None) -> None:
        """Keep only the linked nodes *numbers* (an answer's ``linked``: unknown ones are
        ignored), and those numbered since the mark *fresh_from*; forget the rest (only
        the tests hold them now)."""
        wanted = {n for n in numbers if type(n) is int} if type(numbers) is list else set()
        if fresh_from is not None:
            wanted.update(self._order[fresh_from:])
        for number in list(self.objects):
            if number not in wanted:
                self._ids.pop(id(self.objects.pop(number)), None)
        self._order = [n for n in self._order if n in self.objects]

    # -- what the sandbox still holds -----------------------------------------------------

    def held(self) -> list[int]:
        """(Sandbox side.) The nodes that something besides this graph and the nodes' own
        contents still refers to (the code kept them), and every node those reach: these
        stay linked. Counted with ``sys.getrefcount`` once the request's own references
        (arguments, result, exception) are gone, against a probe counted the same way."""
        nodes = {id(obj): number for number, obj in self.objects.items()}
        expected, edges, tuples = _walk(list(self.objects.values()), nodes)
        excess = _excess({id(o): o for o in self.objects.values()}, expected, ours=1)
        # A tuple the code kept keeps the nodes in it. Only tuples that hold a node are
        # counted (others may be shared constants, and their identity cannot matter).
        holding = {key: obj for key, obj in tuples.items() if _reaches(key, edges, nodes)}
        excess.update(_excess(holding, expected, ours=0))
        linked: set[int] = set()
        stack = [key for key, extra in excess.items() if extra > 0]
        seen: set[int] = set()
        while stack:
            key = stack.pop()
            if key in seen:
                continue
            seen.add(key)
            if key in nodes:
                linked.add(nodes[key])
            stack.extend(edges.get(key, []))
        return sorted(linked)


def _children(obj: object) -> list[object]:
    if type(obj) is dict:
        return [*obj.keys(), *obj.values()]
    if type(obj) in (list, set, tuple, frozenset):
        return list(obj)  # type: ignore[call-overload]
    return []


def _walk(objs: list[object], nodes: dict[int, int]) -> tuple[
        Counter[int], dict[int, list[int]], dict[int, object]]:
    """References between nodes (and the non-empty tuples and frozensets between them),
    by id: how many each receives, the edges, and the tuples met."""
    expected: Counter[int] = Counter()
    edges: dict[int, list[int]] = {}
    tuples: dict[int, object] = {}
    todo = list(objs)
    while todo:
        current = todo.pop()
        out = edges.setdefault(id(current), [])
        for kid in _children(current):
            if id(kid) in nodes or (type(kid) in (tuple, frozenset) and kid):
                expected[id(kid)] += 1
                out.append(id(kid))
                if id(kid) not in nodes and id(kid) not in tuples:
                    tuples[id(kid)] = kid
                    todo.append(kid)
    return expected, edges, tuples


def _excess(holder: dict[int, object], expected: Counter[int], ours: int) -> dict[int, int]:
    """For each object in *holder*: references beyond the *expected* ones from the graph
    and *ours* from elsewhere in this module, measured against a fresh probe that only
    *holder* refers to."""
    holder[0] = []  # the probe: no other name may refer to it
    try:
        counts = {key: sys.getrefcount(obj) for key, obj in holder.items()}
    finally:
        del holder[0]
    base = counts.pop(0)
    return {key: count - base - expected[key] - ours for key, count in counts.items()}


def _reaches(key: int, edges: dict[int, list[int]], nodes: dict[int, int]) -> bool:
    stack, seen = [key], set()
    while stack:
        for kid in edges.get(stack.pop(), []):
            if kid in nodes:
                return True
            if kid not in seen:
                seen.add(kid)
                stack.append(kid)
    return False
