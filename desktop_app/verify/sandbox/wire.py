"""Reading what the sandbox sends: every byte is hostile.

One answer is one line of JSON. Before it is parsed the line's size is bounded (by the
reader) and its nesting is measured without recursion, in time linear in its length (no
regular expression touches child data: a backtracking one was quadratic and held the
GIL); after parsing it must be an object. Values inside it are decoded by :func:`.child.codec.decode`, which is iterative,
budgeted and refuses hash-collision floods. Anything else is :class:`Hostile`.
"""

from __future__ import annotations

import json
from typing import Any

from desktop_app.text.i18n import _
from desktop_app.verify.sandbox.child.codec import MAX_DEPTH, MAX_NODES, Malformed, decode

MAX_LINE_BYTES = 4 * 1024 * 1024
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


class Hostile(ValueError):  # reads better at the raise sites
    """The sandbox sent something our own harness never would."""


def _outside_strings(line: bytes) -> bytes:
    """The bytes of *line* outside JSON strings, found in linear time with C-speed
    primitives only. Escapes are read as the JSON decoder reads them, left to right: a
    backslash pair is removed first, then an escaped quote, so every quote left is a string
    delimiter, and the pieces between the 1st and 2nd, 3rd and 4th… quote are strings. For
    valid JSON this is exact; for invalid JSON the decoder stops at the same place or
    earlier, so it never nests deeper than counted here."""
    unescaped = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    return b"".join(unescaped.split(b'"')[0::2])


def _check_nesting(line: bytes) -> None:
    brackets = _outside_strings(line).translate(None, _NOT_BRACKETS)
    if len(brackets) > 4 * MAX_NODES:
        raise Hostile(_("too many values in one answer"))
    if len(brackets) <= 2 * (MAX_DEPTH + 4):
        return
    depth = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > MAX_DEPTH * 2 + 8:
            raise Hostile(_("values nested too deeply"))


def parse_line(line: bytes) -> dict[str, Any]:
    """One answer line as a dict, or :class:`Hostile`."""
    if len(line) > MAX_LINE_BYTES:
        raise Hostile(_("an answer larger than 4 MB"))
    _check_nesting(line)
    try:
        message = json.loads(line.decode("utf-8"))
    except (ValueError, RecursionError, MemoryError) as exc:
        raise Hostile(_("an answer that is not valid JSON")) from exc
    if type(message) is not dict:
        raise Hostile(_("an answer that is not a JSON object"))
    return message


def value(data: object, nodes: dict[int, object] | None = None) -> Any:
    """Decode one plain-data value (lists, dicts and sets of *nodes* by number), or
    :class:`Hostile`."""
    try:
        return decode(data, nodes=nodes)
    except (Malformed, RecursionError, MemoryError, OverflowError, TypeError) as exc:
        raise Hostile(_("a malformed value ({error})").format(error=exc)) from exc


def text(data: object, limit: int = 500) -> str:
    """A short string field, or :class:`Hostile`."""
    if type(data) is not str:
        raise Hostile(_("a field of the wrong type"))
    return data[:limit]
