"""Fenced code blocks of a Markdown reply, by CommonMark's rules.

One implementation for every reader ("Copy code" in the window, Verify's code extraction,
export), so they all see the same blocks. The rules are subtle enough that a regular
expression gets them wrong: a fence closes only with the same character repeated at least
as often as it opened, up to three spaces of indentation; a backtick fence's info string
may not contain a backtick; nothing inside an HTML comment or HTML block counts; a fence
inside a block quote or list item ends with its container. markdown-it-py implements the
CommonMark spec and is only asked for block tokens here (no inline parsing, no rendering).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from markdown_it import MarkdownIt
from markdown_it.common.utils import unescapeAll


@dataclass(frozen=True)
class CodeBlock:
    """One fenced block.

    ``info`` is the whole info string after the opening fence (``"python title=x.py"``);
    ``language`` its first word, lower-cased, with Pandoc-style ``{.python}`` braces and dot
    removed (``""`` when unlabelled); ``code`` the content exactly as CommonMark defines it
    (each line ending in ``\\n``, container indentation removed); ``closed`` is False for a
    block that runs to the end of the reply (or of its container) without a closing fence,
    e.g. a reply cut off mid-block.
    """

    info: str
    language: str
    code: str
    closed: bool


@functools.cache
def _parser() -> MarkdownIt:
    # Block structure is all we need; skipping inline parsing keeps long replies cheap.
    return MarkdownIt("commonmark").disable("inline")


def _language(info: str) -> str:
    words = info.split()
    if not words:
        return ""
    return words[0].strip("{}").lstrip(".").lower()


def _line_count(content: str) -> int:
    if not content:
        return 0
    return content.count("\n") + (0 if content.endswith("\n") else 1)


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced code block in *markdown*, in document order (indented code blocks,
    which have no fence and no language, are not included)."""
    blocks: list[CodeBlock] = []
    for token in _parser().parse(markdown):
        if token.type != "fence" or token.map is None:
            continue
        start, end = token.map
        # The token spans the opening line, the content lines and, if there is one, the
        # closing line: one line more than opener + content means the fence was closed.
        closed = end - start - 1 > _line_count(token.content)
        info = unescapeAll(token.info).strip()  # CommonMark: escapes and entities apply
        blocks.append(CodeBlock(info, _language(info), token.content, closed))
    return blocks
