"""Which of the reply's functions a ``check(candidate)`` test receives: never a guess.

The entry point comes from the problem (practice sets, HumanEval and MBPP name it, as does
``--entry-point``), or from the test file (its own ``check(name)`` call). Only when
neither names it is it read from the reply, and then only if exactly one function can be
meant; else the verdict is ``error`` with one sentence. A name that is also a built-in, a
standard-library module or a name the test file defines or uses is refused wherever it
comes from: with it, the candidate could silently be the built-in (``abs``), the test's
own reference implementation, or the reply's function could replace what the test uses
(``math.isclose`` answered by the reply's ``math``).

The reply's functions are listed by the sandbox after it loaded the code (the reply is
never parsed here, and a ``def`` inside a string is not a function). That list is hostile
input: it can only ever choose among the reply's own functions, every name is checked
here, and the function must then be found in the reply's namespace.
"""

from __future__ import annotations

import builtins
import keyword
import sys

from desktop_app.text.i18n import _

_BUILTIN_NAMES = frozenset(dir(builtins))
_STDLIB = frozenset(sys.stdlib_module_names)
_MAX_DEFS = 2000
_MAX_REFS = 5000


class EntryPointError(Exception):
    """Which function the tests check cannot be told safely (one sentence)."""


def plain_identifier(name: object) -> bool:
    """A short ASCII identifier: safe to show in a verdict and to use as a name."""
    return (type(name) is str and 0 < len(name) <= 60 and name.isascii()
            and name.isidentifier() and not keyword.iskeyword(name))


def shadowing(name: str, test_names: frozenset[str] | set[str]) -> str | None:
    """Why *name* cannot be the entry point, or None."""
    if name in _BUILTIN_NAMES:
        return _("the name of a built-in")
    if name in _STDLIB:
        return _("the name of a standard-library module")
    if name in test_names:
        return _("a name the test file itself defines or uses")
    return None


def check_named(entry_point: str, test_defined: set[str]) -> None:
    """A named entry point (from the problem or ``--entry-point``) must be usable."""
    if not plain_identifier(entry_point):
        raise EntryPointError(_("the entry point {name} is not a function name").format(
            name=repr(entry_point[:60])))
    why = shadowing(entry_point, test_defined)
    if why is not None:
        raise EntryPointError(_("the entry point `{name}` is also {why}, so the tests could "
                                "end up checking that instead of the reply's function").format(
            name=entry_point, why=why))


def _defs(answer: object) -> list[tuple[str, frozenset[str]]]:
    """The sandbox's list of the reply's top-level functions, validated; raises ValueError
    on anything the harness would never send."""
    if type(answer) is not list or len(answer) > _MAX_DEFS:
        raise ValueError("defs")
    out = []
    for item in answer:
        if type(item) is not list or len(item) != 2 or type(item[0]) is not str \
                or type(item[1]) is not list or len(item[1]) > _MAX_REFS \
                or not all(type(r) is str for r in item[1]):
            raise ValueError("defs")
        if plain_identifier(item[0]):
            out.append((item[0], frozenset(item[1])))
    return out


def choose(answer: object, tests_take: set[str], test_names: frozenset[str]) -> str:
    """The one function of the reply that ``check(candidate)`` can mean.

    *answer*: the sandbox's ``defs`` (``[[name, [global names its code uses]], …]`` in
    definition order). *tests_take*: names the tests use from the reply themselves (a
    helper such as HumanEval/32's ``poly``: not the candidate). Raises ValueError for a
    malformed answer and :class:`EntryPointError` when no single function can be meant.
    """
    defs = _defs(answer)
    eligible = [name for name, _ in defs if name != "main"
                and not name.startswith(("test", "_")) and name not in tests_take]
    eligible = list(dict.fromkeys(eligible))
    if not eligible:
        raise EntryPointError(_("the reply defines no function for check(candidate)"))
    if len(eligible) > 1:
        # Helpers are the functions another of the reply's functions calls.
        roots = [name for name in eligible
                 if not any(name in refs for other, refs in defs if other != name)]
        if len(roots) != 1:
            shown = ", ".join(f"`{n}`" for n in (roots or eligible)[:5])
            more = " …" if len(roots or eligible) > 5 else ""
            raise EntryPointError(_(
                "the reply defines several functions that could be the one checked "
                "({names}) and the tests do not name it; give the entry point "
                "(--entry-point NAME)").format(names=shown + more))
        eligible = roots
    entry = eligible[0]
    why = shadowing(entry, test_names)
    if why is not None:
        raise EntryPointError(_(
            "the reply's function `{name}` has {why}, so the tests could end up checking "
            "something else; give the entry point (--entry-point NAME)").format(
            name=entry, why=why))
    return entry
