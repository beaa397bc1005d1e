"""Arguments are shared as Python shares them (issue 25).

Tests that check a function mutates, or does not mutate, its arguments must get the
verdict plain Python gives. Each row runs twice: through the sandbox (the reply's code
there, the tests here) and in this process as ``exec`` of the trusted test code on the
reply (only ever on the rows below). The verdicts must be the same. Real subprocesses.
"""

from __future__ import annotations

import textwrap

import pytest

from desktop_app.verify import verify_reply
from tests.sandbox_attacks import nothing_left_running

TIMEOUT = 5.0

# (id, reply code, tests): every behaviour twice where it matters, right and wrong.
ROWS = [
    ("append", "def f(l):\n    l.append(1)\n", "a = []\nf(a)\nassert a == [1]\n"),
    ("append-missing", "def f(l):\n    return l + [1]\n", "a = []\nf(a)\nassert a == [1]\n"),
    ("must-not-mutate", "def f(l):\n    return sorted(l)\n",
     "a = [3, 1]\nassert f(a) == [1, 3]\nassert a == [3, 1]\n"),
    ("mutates-wrongly", "def f(l):\n    l.sort()\n    return l\n",
     "a = [3, 1]\nassert f(a) == [1, 3]\nassert a == [3, 1]\n"),
    # changes made before the function raises stay made
    ("mutate-then-raise", "def f(l):\n    l.append(1)\n    raise ValueError('late')\n",
     "a = []\ntry:\n    f(a)\nexcept ValueError:\n    pass\nassert a == [1]\n"),
    ("raise-before-mutating", "def f(l):\n    raise ValueError('early')\n",
     "a = []\ntry:\n    f(a)\nexcept ValueError:\n    pass\nassert a == [1]\n"),
    # keyword arguments are shared too
    ("keyword", "def f(*, out):\n    out.append(2)\n", "a = []\nf(out=a)\nassert a == [2]\n"),
    ("keyword-dict", "def f(x, acc=None):\n    acc[x] = x * x\n",
     "d = {}\nf(3, acc=d)\nassert d == {3: 9}\n"),
    ("keyword-untouched", "def f(*, out):\n    out = out + [2]\n", "a = []\nf(out=a)\nassert a == [2]\n"),
    # nested containers the test also holds keep their identity
    ("nested-row", "def f(m):\n    m[0].append(9)\n",
     "row = [1]\nm = [row]\nf(m)\nassert row == [1, 9]\nassert m[0] is row\n"),
    ("nested-replaced", "def f(m):\n    m[0] = [7]\n",
     "row = [1]\nm = [row]\nf(m)\nassert row == [1]\nassert m == [[7]]\n"),
    ("nested-dict-of-lists", "def f(g):\n    g['a'].append('b')\n",
     "adj = []\ng = {'a': adj}\nf(g)\nassert adj == ['b']\n"),
    ("tuple-holds-list", "def f(t):\n    t[0].append(1)\n", "a = []\nf((a,))\nassert a == [1]\n"),
    ("same-list-twice", "def f(a, b):\n    a.append(1)\n    return len(b)\n",
     "x = []\nassert f(x, x) == 1\n"),
    ("returns-its-argument", "def f(l):\n    l.append(1)\n    return l\n",
     "a = []\nassert f(a) is a\n"),
    ("returns-a-copy", "def f(l):\n    return list(l)\n", "a = []\nassert f(a) is a\n"),
    ("cycle", "def f(l):\n    l.append(l)\n", "a = []\nf(a)\nassert a[0] is a\n"),
    ("dict-and-set", "def f(d, s):\n    d['k'] = 1\n    s.add(2)\n    s.discard(5)\n",
     "d, s = {}, {5}\nf(d, s)\nassert d == {'k': 1} and s == {2}\n"),
    # kept by the code across calls: both sides see every later change
    ("kept-by-instance",
     "class Stack:\n    def __init__(self, items):\n        self.items = items\n"
     "    def push(self, x):\n        self.items.append(x)\n"
     "    def size(self):\n        return len(self.items)\n",
     "it = [1]\ns = Stack(it)\ns.push(2)\nassert it == [1, 2]\nit.append(3)\n"
     "assert s.size() == 3\ns.push(4)\nassert it == [1, 2, 3, 4]\n"),
    ("copied-by-instance",
     "class Stack:\n    def __init__(self, items):\n        self.items = list(items)\n"
     "    def push(self, x):\n        self.items.append(x)\n"
     "    def size(self):\n        return len(self.items)\n",
     "it = [1]\ns = Stack(it)\ns.push(2)\nassert it == [1, 2]\n"),
    ("internal-list-handed-out",
     "class Box:\n    def __init__(self):\n        self.v = []\n"
     "    def get(self):\n        return self.v\n    def size(self):\n        return len(self.v)\n",
     "b = Box()\nv = b.get()\nv.append(1)\nassert b.size() == 1\nassert b.get() is v\n"),
    ("default-argument",
     "def f(x, acc=[]):\n    acc.append(x)\n    return acc\n",
     "r1 = f(1)\nr2 = f(2)\nassert r1 is r2 and r2 == [1, 2]\n"),
    ("module-global", "DATA = [1]\ndef add_data(x):\n    DATA.append(x)\n",
     "add_data(2)\nassert DATA == [1, 2]\nDATA.append(3)\nadd_data(4)\nassert DATA == [1, 2, 3, 4]\n"),
    ("generator-sees-later-changes",
     "def each(l):\n    for x in l:\n        yield x\n",
     "a = [1]\ng = each(a)\na.append(2)\nassert list(g) == [1, 2]\n"),
    ("kept-then-replaced-contents", "KEPT = []\ndef keep(l):\n    KEPT.append(l)\n"
     "def total():\n    return sum(len(l) for l in KEPT)\n",
     "a = [1]\nkeep(a)\na.extend([2, 3])\nassert total() == 3\na.clear()\nassert total() == 0\n"),
    ("setattr-shares", "class C:\n    def n(self):\n        return len(self.items)\n",
     "c = C()\nitems = [1]\nc.items = items\nitems.append(2)\nassert c.n() == 2\n"),
]


def _in_process(code: str, tests: str) -> str:
    """The verdict plain Python gives: run the reply, then the tests, in one namespace
    (trusted test code, and only the replies above)."""
    namespace: dict[str, object] = {"__name__": "solution"}
    try:
        exec(compile(code, "solution.py", "exec"), namespace)  # the rows above
        exec(compile(tests, "tests.py", "exec"), namespace)
    except Exception:  # noqa: BLE001 - an assert failed or the code raised: a fail
        return "fail"
    return "pass"


@pytest.mark.parametrize("code, tests", [pytest.param(c, t, id=i) for i, c, t in ROWS])
def test_mutation_verdicts_match_plain_python(code: str, tests: str):
    expected = _in_process(code, tests)
    with nothing_left_running():
        verdict = verify_reply(f"```python\n{code}```", tests=tests, timeout_s=TIMEOUT)
    assert verdict.verdict == expected, (verdict.reason, verdict.details)


def test_the_table_has_both_outcomes():
    outcomes = {_in_process(c, t) for _, c, t in ROWS}
    assert outcomes == {"pass", "fail"}


def test_a_shared_list_holding_a_non_plain_object_is_an_honest_error():
    code = textwrap.dedent("""\
        class Item:
            pass
        def f(l):
            l.append(Item())
        """)
    tests = "a = []\nf(a)\nassert len(a) == 1\n"
    assert _in_process(code, tests) == "pass"
    with nothing_left_running():
        verdict = verify_reply(f"```python\n{code}```", tests=tests, timeout_s=TIMEOUT)
    assert verdict.verdict == "error" and "cannot be checked safely" in verdict.reason
