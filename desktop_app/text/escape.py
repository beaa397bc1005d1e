"""Escaping model output before it is shown.

Model text is untrusted: it can carry markup, terminal escape sequences (``\\x1b[2J``
clears a screen) or bidi overrides (``\\u202e`` makes text read backwards, hiding what a
line really says). :func:`html` is for anything put into rich text; :func:`visible_controls`
is for terminal, window and JSON output where such characters must be seen, not obeyed.
"""

from __future__ import annotations

import html as _html
import re

# C0 controls except tab and newline, DEL, C1 controls; the bidi marks, embeddings,
# overrides and isolates (U+061C, U+200E/F, U+202A-E, U+2066-9); and lone surrogates,
# which a terminal or UTF-8 encoder cannot print at all.
_INVISIBLE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)


def html(text: str) -> str:
    """*text* safe inside HTML element content and attribute values (quotes escaped too)."""
    return _html.escape(text, quote=True)


def breakable(text: str) -> str:
    """*text* for a word-wrapped label: a zero-width space after each ``/``, ``\\`` and
    ``_``, so a long path wraps at its folders (and long names) instead of widening the
    label and its pane."""
    for mark in ("/", "\\", "_"):
        text = text.replace(mark, mark + "\u200b")
    return text


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible_controls(text: str) -> str:
    """*text* with control characters, C1 controls and bidi controls written as escapes
    (``\\x1b``, ``\\x85``, ``\\u202e``); newline and tab are kept, everything else is
    unchanged (a literal backslash stays as it is: this is for reading, not for parsing)."""
    return _INVISIBLE.sub(_escape, text)
