"""Fenced code blocks by CommonMark's rules: the cases a line-by-line regex got wrong."""

from __future__ import annotations

from desktop_app.text.fences import CodeBlock, code_blocks


def test_labelled_and_unlabelled_blocks_in_order():
    reply = "Try this:\n\n```python\nprint(1)\n```\n\nor\n\n~~~\nx = 2\n~~~\n"
    assert code_blocks(reply) == [
        CodeBlock(info="python", language="python", code="print(1)\n", closed=True),
        CodeBlock(info="", language="", code="x = 2\n", closed=True),
    ]


def test_fence_closes_only_with_the_same_char_at_least_as_long():
    # Four backticks open; three do not close; five do. The shorter run is content.
    reply = "````py\nprint('```')\n```\nstill code\n`````\nafter\n"
    [block] = code_blocks(reply)
    assert block.code == "print('```')\n```\nstill code\n"
    assert block.closed
    # A tilde line never closes a backtick fence.
    [block] = code_blocks("```\na\n~~~\nb\n```\n")
    assert block.code == "a\n~~~\nb\n"


def test_unclosed_block_runs_to_the_end_and_says_so():
    [block] = code_blocks("Here:\n```python\ndef f():\n    return 1")
    assert block == CodeBlock("python", "python", "def f():\n    return 1", closed=False)
    [empty] = code_blocks("```python")
    assert empty == CodeBlock("python", "python", "", closed=False)
    [blank_lines] = code_blocks("```\n\n\n")
    assert not blank_lines.closed and blank_lines.code == "\n\n"


def test_closed_block_without_trailing_newline_and_empty_block():
    assert code_blocks("```js\nlet a\n```") == [CodeBlock("js", "js", "let a\n", True)]
    assert code_blocks("```\n```\n") == [CodeBlock("", "", "", True)]


def test_nothing_inside_html_comments_or_blocks_counts():
    reply = ("<!--\n```python\nhidden = 1\n```\n-->\n\n<div>\n\n```\nnot html\n```\n\n</div>\n"
             "<pre>\n```\nraw\n```\n</pre>\n")
    assert [b.code for b in code_blocks(reply)] == ["not html\n"]


def test_info_string_language_and_backtick_rule():
    [block] = code_blocks("```  Python3 title=\"a.py\"\nx\n```\n")
    assert block.info == 'Python3 title="a.py"' and block.language == "python3"
    [pandoc] = code_blocks("``` {.python}\nx\n```\n")
    assert pandoc.language == "python"
    # A backtick in a backtick fence's info string makes it inline code, not a fence.
    # So here only the last line opens a fence, which never closes.
    assert code_blocks("```a`b\nx\n```\n") == [CodeBlock("", "", "", False)]
    assert code_blocks("~~~ a`b\nx\n~~~\n")[0].info == "a`b"
    # Backslash escapes and entities in the info string are resolved.
    assert code_blocks("``` c\\+\\+ &amp;\nx\n```\n")[0].info == "c++ &"


def test_indentation_rules():
    # Up to three spaces may indent a fence; its content loses that much indentation.
    [block] = code_blocks("   ```\n   indented\n  two\n   ```\n")
    assert block.code == "indented\ntwo\n" and block.closed
    # Four spaces make an indented code block, which has no fence.
    assert code_blocks("    ```\n    x\n    ```\n") == []


def test_fences_in_block_quotes_and_lists_end_with_their_container():
    [quoted] = code_blocks("> ```python\n> x = 1\n\nafter the quote\n")
    assert quoted == CodeBlock("python", "python", "x = 1\n", closed=False)
    [listed] = code_blocks("1. step\n\n   ```sh\n   ls -l\n   ```\n")
    assert listed == CodeBlock("sh", "sh", "ls -l\n", closed=True)


def test_inline_code_and_crlf():
    assert code_blocks("use ```x``` inline") == []
    assert code_blocks("```py\r\na = 1\r\n```\r\n") == [CodeBlock("py", "py", "a = 1\n", True)]
