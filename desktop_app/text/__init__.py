"""Text handling with one implementation each: thinking split, code fences, sizes and
durations, escaping.

Kept Qt-free and cheap to import: the submodules are imported by name
(``from desktop_app.text.units import format_bytes``) so that, for instance, the worker
process never loads the Markdown parser it does not need.
"""
