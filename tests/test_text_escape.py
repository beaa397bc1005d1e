"""Escaping untrusted model text for rich text, terminals, windows and JSON."""

from __future__ import annotations

import json

from desktop_app.text.escape import html, visible_controls


def test_html_escapes_markup_and_both_quotes():
    assert html("<b title=\"x\">it's & ok</b>") == (
        "&lt;b title=&quot;x&quot;&gt;it&#x27;s &amp; ok&lt;/b&gt;")


def test_terminal_escapes_are_shown_not_obeyed():
    assert visible_controls("\x1b[2Jcleared\x07") == "\\x1b[2Jcleared\\x07"
    assert visible_controls("a\rb\x00c\x7f") == "a\\x0db\\x00c\\x7f"


def test_newline_and_tab_are_kept_and_ordinary_text_unchanged():
    text = "line 1\n\tindented — naïve 数学 🙂 \\x1b stays literal"
    assert visible_controls(text) == text


def test_c1_controls_and_bidi_controls_are_escaped():
    assert visible_controls("x\x85y\x9bz") == "x\\x85y\\x9bz"
    hidden = "access = 'user\u202e \u2066// admin\u2069\u2066'"
    shown = visible_controls(hidden)
    assert "\u202e" not in shown and "\u2066" not in shown and "\u2069" not in shown
    assert shown == "access = 'user\\u202e \\u2066// admin\\u2069\\u2066'"
    assert visible_controls("\u200e\u200f\u061c\u202a") == "\\u200e\\u200f\\u061c\\u202a"


def test_lone_surrogates_become_printable():
    raw = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    shown = visible_controls(raw)
    assert shown == "caf\\udce9"
    shown.encode("utf-8")  # would raise on the lone surrogate
    assert json.loads(json.dumps(shown, ensure_ascii=False)) == shown
