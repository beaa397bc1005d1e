"""Sentences composed in another process, read in the window's language.

A model's worker process (spawned: it never sets a language) writes its sentences in
English. The window's process recognises each known sentence by its English template and
writes it again with :func:`desktop_app.text.i18n._`: the figures are kept (a decimal
figure is written the locale's way by ``number()``), and llama.cpp's own words, quoted in a
figure, stay as they came. An unknown sentence passes unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from desktop_app.text.i18n import _, number

_PLACEHOLDER = re.compile(r"\{(\w+)\}")
_DECIMAL = re.compile(r"-?\d+\.(\d+)")


@lru_cache(maxsize=512)
def _pattern(template: str) -> re.Pattern[str]:
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(re.escape(template[position:match.start()]))
        name = match.group(1)
        parts.append(f"(?P={name})" if name in seen else f"(?P<{name}>.+?)")
        seen.add(name)
        position = match.end()
    parts.append(re.escape(template[position:]))
    return re.compile("".join(parts), re.DOTALL)


def _figure(text: str) -> str:
    decimal = _DECIMAL.fullmatch(text)
    return number(float(text), len(decimal.group(1))) if decimal else text


def localize(english: str, templates: Sequence[str]) -> str:
    """``english`` (a sentence made from one of ``templates``, ``N_()`` messages) in the
    current language; itself when no template matches."""
    for template in templates:
        found = _pattern(template).fullmatch(english)
        if found:
            figures = {name: _figure(localize(value, templates))
                       for name, value in found.groupdict().items()}
            return _(template).format(**figures)
    return english
