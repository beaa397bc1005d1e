"""A wrong solution must never pass: hostile replies by class (issue 18).

Each reply here is wrong (or tries to read the key) and uses one trick to make the
checker say "pass". The design keeps the key out of the model's process: the tests, their
expected values and every comparison run in the parent; the sandbox only computes the
reply's outputs for inputs it is sent. Every case must end in fail or error (never pass)
and leave nothing behind.
"""

from __future__ import annotations

import os
import textwrap

import pytest

from desktop_app.verify import Problem, find_problem, verify_reply
from tests.sandbox_attacks import FIND_ANSWER_FD, nothing_left_running

TIMEOUT = 3.0


def _verify(code: str, tests: str, **kw: object):
    verdict = verify_reply(f"```python\n{code}\n```", tests=tests, timeout_s=TIMEOUT, **kw)
    assert verdict.verdict != "pass", verdict.reason
    return verdict


# ------------------------------------------------------------ builtin shadowing


@pytest.mark.parametrize("shadow, tests", [
    ("abs = lambda *a: 0", "assert abs(square(1.5) - 2.25) < 1e-9\n"),
    ("round = lambda *a, **k: 2.25", "assert round(square(1.5), 2) == 2.25\n"),
    ("sorted = lambda *a, **k: [1, 4, 9]", "assert sorted(squares([3, 1, 2])) == [1, 4, 9]\n"),
    ("int = lambda *a: 4", "assert int(square(2)) == 4\n"),
    ("len = lambda *a: 3", "assert len(squares([1, 2, 3])) == 3\n"),
])
def test_builtin_shadowing_does_not_reach_the_tests(shadow: str, tests: str):
    code = f"{shadow}\ndef square(x):\n    return 0\ndef squares(xs):\n    return []\n"
    assert _verify(code, tests).verdict == "fail"


def test_a_module_name_defined_by_the_reply_is_an_error_not_a_pass():
    code = ("class math:\n    isclose = staticmethod(lambda *a, **k: True)\n"
            "def square(x):\n    return 0\n")
    verdict = _verify(code, "assert math.isclose(square(1.5), 2.25)\n")
    assert verdict.verdict == "error"
    assert "cannot be checked safely" in verdict.reason


def test_a_real_module_imported_by_the_reply_is_shared_with_the_tests():
    code = "import math\ndef square(x):\n    return x * x\n"
    verdict = verify_reply(f"```python\n{code}```",
                           tests="assert math.isclose(square(1.5), 2.25)\n", timeout_s=TIMEOUT)
    assert verdict.verdict == "pass", verdict.reason


# -------------------------------------------------- shared globals, frames, probes

TABLE_TESTS = ("CASES = [(1, 31337), (2, 27182)]\n"
               "for x, want in CASES:\n    assert f(x) == want\n")


@pytest.mark.parametrize("body", [
    "return globals()['want']",
    "import sys\n    return sys._getframe(1).f_locals['want']",
    "import sys\n    f = sys._getframe()\n    while f:\n        if 'want' in f.f_locals:\n"
    "            return f.f_locals['want']\n        f = f.f_back\n    return 0",
    "import gc\n    for o in gc.get_objects():\n        if type(o) is dict and 'want' in o:\n"
    "            return o['want']\n    return 0",
    "import sys\n    for m in list(sys.modules.values()):\n"
    "        w = getattr(m, 'CASES', None)\n        if w:\n            return dict(w)[x]\n    return 0",
])
def test_answer_tables_never_reach_the_reply(body: str):
    assert _verify(f"def f(x):\n    {body}\n", TABLE_TESTS).verdict == "fail"


def test_check_functions_locals_cannot_be_walked():
    tests = ("def check(candidate):\n    secret = 424242\n    assert candidate(1) == secret\n")
    code = ("import sys, gc\ndef solve(x):\n    for o in gc.get_objects():\n"
            "        if type(o) is dict and 'secret' in o:\n            return o['secret']\n"
            "    f = sys._getframe()\n    while f:\n        if 'secret' in f.f_locals:\n"
            "            return f.f_locals['secret']\n        f = f.f_back\n    return 0\n")
    assert _verify(code, tests, problem=None).verdict == "fail"


def test_a_checking_helper_runs_with_the_tests_not_the_reply():
    tests = ("def check_eq(got, want):\n    assert got == want\n"
             "check_eq(f(2), 4)\ncheck_eq(f(3), 9)\n")
    code = ("def f(x):\n    g = globals()\n    for k in list(g):\n        if 'probe' in k or 'check' in k:\n"
            "            g[k] = lambda *a, **kw: True\n    return 0\n"
            "__triptych_probe__ = lambda pid, fn: 4\n__triptych_assert__ = lambda *a: None\n")
    assert _verify(code, tests).verdict == "fail"


def test_a_function_handed_to_the_reply_is_an_error_not_a_pass():
    tests = "assert apply(lambda x: x + 1, 1) == 2\n"
    verdict = _verify("def apply(f, x):\n    return 2\n", tests)
    assert verdict.verdict == "error" and "cannot be checked safely" in verdict.reason


def test_stop_iteration_cannot_cut_a_map_short():
    tests = "assert all(map(is_even, [2, 4, 5]))\n"
    code = "def is_even(n):\n    raise StopIteration\n"
    assert _verify(code, tests).verdict == "fail"


# ----------------------------------------------------------- reading the keys


def test_practice_keys_and_the_app_are_not_readable():
    problem = find_problem("code-add")
    code = textwrap.dedent("""\
        import os, sys
        found = []
        for root in ['/work', '/root', '/home', os.path.expanduser('~')] + sys.path:
            for top, dirs, files in os.walk(root):
                for name in files:
                    if name in ('code.toml', 'practice.py'):
                        found.append(os.path.join(top, name))
                if len(found) > 3:
                    break
        try:
            from desktop_app.verify import find_problem
            found.append('imported')
        except ImportError:
            pass
        print('FOUND', found)
        def add(a, b):
            return 0
        """)
    verdict = verify_reply(f"```python\n{code}```", problem, timeout_s=TIMEOUT)
    assert verdict.verdict == "fail", verdict.reason
    assert "FOUND []" in verdict.stdout, verdict.stdout


def test_site_packages_and_the_source_tree_are_not_readable():
    import desktop_app

    app_file = os.path.abspath(desktop_app.__file__)
    code = textwrap.dedent(f"""\
        import os, site
        for path in [{app_file!r}]:
            try:
                open(path).read()
                print('READ', path)
            except OSError as exc:
                print('refused', type(exc).__name__)
        """)
    verdict = verify_reply(f"```python\n{code}```", timeout_s=TIMEOUT)
    assert "READ" not in verdict.stdout and "refused" in verdict.stdout, verdict.stdout


# ------------------------------------------------------------- forged answers


def test_forged_answers_written_ahead_are_not_trusted():
    code = FIND_ANSWER_FD + textwrap.dedent("""\
        fd = _answer_fd()
        if fd is not None:
            for _ in range(50):
                os.write(fd, b'{"v": 5}\\n')
        def add(a, b):
            return 0
        """)
    verdict = _verify(code, "assert add(2, 3) == 5\nassert add(1, 4) == 5\n")
    assert verdict.verdict in ("fail", "error")


def test_a_complete_fake_conversation_does_not_pass():
    # The reply answers every request itself with the value the test wants: it cannot
    # know that value, the tests never send it.
    code = FIND_ANSWER_FD + textwrap.dedent("""\
        import json
        def add(a, b):
            fd = _answer_fd()
            os.write(fd, json.dumps({"v": a * b}).encode() + b'\\n')
            return a * b
        """)
    assert _verify(code, "assert add(2, 3) == 5\n").verdict in ("fail", "error")


# -------------------------------------------------- truncation and hidden blocks


def test_the_final_block_is_checked_however_long_the_reply():
    right = "```python\ndef add(a, b):\n    return a + b\n```\n"
    wrong = "```python\ndef add(a, b):\n    return a - b\n```\n"
    reply = right + ("Some thoughts. " * 40_000) + "\nOn second thought:\n" + wrong
    verdict = verify_reply(reply, tests="assert add(2, 3) == 5\n", timeout_s=TIMEOUT)
    assert verdict.verdict == "fail", verdict.reason


def test_an_unclosed_block_is_not_run():
    reply = "```python\ndef add(a, b):\n    return a + b\n```\nBetter:\n```python\ndef add(a, b):\n    ret"
    verdict = verify_reply(reply, tests="assert add(2, 3) == 5\n", timeout_s=TIMEOUT)
    assert verdict.verdict == "no-answer" and "never ends" in verdict.reason


def test_a_block_inside_an_html_comment_is_not_run():
    reply = ("```python\ndef add(a, b):\n    return a - b\n```\n"
             "<!--\n```python\ndef add(a, b):\n    return a + b\n```\n-->\n")
    verdict = verify_reply(reply, tests="assert add(2, 3) == 5\n", timeout_s=TIMEOUT)
    assert verdict.verdict == "fail", verdict.reason


def test_math_answer_comes_from_the_program_not_our_truncation_note():
    reply = "```python\nprint('7' * 100_000)\n```"
    for expect in ("64", "65536", "100000"):
        verdict = verify_reply(reply, expect=expect, timeout_s=TIMEOUT)
        assert verdict.verdict != "pass", verdict.reason


# ------------------------------------------------- tests that use randomness


def test_random_inputs_reach_both_sides_unchanged():
    tests = textwrap.dedent("""\
        import random
        def check(candidate):
            for _ in range(100):
                x, y = random.randint(0, 1000), random.randint(0, 1000)
                assert candidate(x, y) == x + y
        """)
    reply = "```python\ndef add(x: int, y: int):\n    return x + y\n```"
    problem = Problem(id="he53", title="add", prompt="", kind="code", tests=tests,
                      entry_point="add")
    verdict = verify_reply(reply, problem, timeout_s=TIMEOUT)
    assert verdict.verdict == "pass", verdict.reason
    wrong = verify_reply("```python\ndef add(x, y):\n    return x + y + (x > 990)\n```",
                         problem, timeout_s=TIMEOUT)
    # Wrong for about 1 % of draws: 100 draws catch it nearly always; never an error.
    assert wrong.verdict in ("pass", "fail")
    assert verify_reply("```python\ndef add(x, y):\n    return x - y\n```", problem,
                        timeout_s=TIMEOUT).verdict == "fail"


def test_generators_and_objects_are_checked_through_plain_data():
    code = textwrap.dedent("""\
        def evens(n):
            for i in range(n):
                if i % 2 == 0:
                    yield i
        class Counter:
            def __init__(self):
                self.n = 0
            def bump(self):
                self.n += 1
                return self.n
            def __len__(self):
                return self.n
        """)
    tests = ("assert list(evens(7)) == [0, 2, 4, 6]\nc = Counter()\nc.bump()\n"
             "assert c.bump() == 2\nassert len(c) == 2\nassert c.n == 2\n"
             "assert list(map(lambda v: v * 2, evens(3))) == [0, 4]\n")
    verdict = verify_reply(f"```python\n{code}```", tests=tests, timeout_s=TIMEOUT)
    assert verdict.verdict == "pass", verdict.reason
    lying = code.replace("return self.n\n        def __len__", "return 2\n        def __eq__(self, o):\n"
                         "            return True\n        def __len__")
    tests_eq = "c = Counter()\nassert c == 5\n"
    assert _verify(lying, tests_eq).verdict == "fail"


def test_the_tests_file_on_disk_is_not_readable(tmp_path, capsys):
    import json

    from desktop_app.cli.verify import main

    tests = tmp_path / "tests.py"
    tests.write_text("assert add(2, 3) == 31337\n")
    os.chmod(tmp_path, 0o755)
    os.chmod(tests, 0o644)
    code = textwrap.dedent(f"""\
        import re
        def add(a, b):
            try:
                text = open({str(tests)!r}).read()
            except OSError:
                return 0
            return int(re.findall(r'== (\\d+)', text)[0])
        """)
    reply = tmp_path / "reply.md"
    reply.write_text(f"```python\n{code}```")
    assert main([str(reply), "--tests", str(tests), "--json", "--timeout", str(TIMEOUT)]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "fail"


@pytest.mark.parametrize("module", ["unittest.__main__", "antigravity", "this", "numpy",
                                    "os;import sys"])
def test_the_sandbox_cannot_make_the_app_import_a_module(module: str):
    import json
    import sys

    forged = json.dumps({"loaded": True, "error": None}) + "\n" + json.dumps(
        {"names": {"add": {"h": 0, "t": "module", "c": False, "m": module}}}) + "\n"
    code = FIND_ANSWER_FD + textwrap.dedent(f"""\
        os.write(_answer_fd(), {forged.encode()!r})
        def add(a, b):
            return a + b
        """)
    before = set(sys.modules)
    verdict = _verify(code, "assert add(2, 3) == 5\n")
    assert verdict.verdict == "error"
    assert module not in sys.modules or module in before


# ------------------------------------------- math answers: one answer or none (issue 25)
# The red team's replies for key 56, and more of their kind. Each used to pass: the
# answer was read as the first number anywhere in it, or as the last number in the reply.
# Driven through `triptych verify FILE --expect 56 --json`, the path a saved reply takes.
# The third column, where there is one, is a key the same reply does match: the answer is
# read as what it says, not thrown away.

RED_TEAM = [
    (r"So \boxed{\sqrt{56}}", "fail", r"\sqrt{56}"),
    (r"\boxed{56^{2}}", "fail", "3136"),
    (r"\boxed{-{56}}", "fail", "-56"),
    (r"\boxed{56 \text{ or } 57}", "fail", None),                   # a hedge
    (r"\boxed{\text{not } 56}", "fail", None),                      # a negation
    (r"\boxed{0,056}", "fail", None),                               # not a thousands group
    ("the answer is not 56. It is 55.", "fail", None),
    ("The answer isn't 56, it's 55.", "fail", None),                # low confidence: 55
    ("The answer is 55.\n<!-- \\boxed{56} -->", "fail", "55"),      # hidden in a comment
    ("<!--\n\\boxed{56}\n-->\nFinal answer: 55", "fail", "55"),
    ("It is somewhere between 50 and 56.", "no-answer", None),      # the last-number fallback
    ("The answer is 56 or 57.", "fail", None),
    ("Final answer: between 50 and 56", "fail", None),              # a range
    ("#### 56 or 57", "fail", None),
    ("A: not 56", "fail", None),
    (r"\boxed{56, 57}", "fail", "56, 57"),                          # several candidates
    (r"\boxed{56 \text{ and } 57}", "fail", None),
    ("The answer is 56 (or maybe 57).", "fail", None),
    (r"\boxed{\neq 56}", "fail", None),
    (r"\boxed{50 \le x \le 56}", "fail", None),
    (r"\boxed{56x}", "fail", None),                                  # a product, not 56
    ("The answer is 5.6 million.", "fail", None),
    ("[//]: # (\\boxed{56})\nThe answer is 55.", "fail", "55"),     # a Markdown comment
    ("7 times 8 is 56", "no-answer", None),                         # no marker: a reading
]

HONEST = [  # (reply, key): must pass
    (r"\boxed{56}", "56"), (r"\boxed{56.0}", "56"), ("$56$", "56"), ("56", "56"),
    ("The answer is 56.", "56"), ("#### 56", "56"), ("Final answer: **56**", "56"),
    ("**Final Answer:** $56$", "56"), ("A: 56", "56"), (r"\boxed{x = 56}", "56"),
    (r"\boxed{56 \text{ cm}}", "56"), ("The answer is 56 apples.", "56"),
    (r"\boxed{\$56}", "56"), ("The answer is $18 per day.", "18"),
    (r"\boxed{\frac{1}{2}}", "0.5"), (r"\boxed{\frac{1}{2}}", "1/2"), (r"\boxed{\dfrac{1}{2}}", "1/2"),
    ("The answer is 1,000.", "1000"), (r"\boxed{1{,}000}", "1000"), (r"\boxed{50\%}", "50"),
    (r"\boxed{7 \times 8}", "56"), (r"\boxed{\sqrt{117}}", r"3\sqrt{13}"),
    (r"\boxed{\left( 3, \frac{\pi}{2} \right)}", r"(3, \frac{\pi}{2})"),
    (r"\boxed{[-2, 7)}", "[-2, 7)"), (r"\boxed{2 \text{ or } 3}", "2, 3"),
    ("Final Answer: The final answer is $56$. I hope it is correct.", "56"),
    ("<think>maybe 55</think>The answer is 56.", "56"),
    ("7 * 8 = 56. The answer is 56, since 8 * 7 = 56.", "56"),
    ("The answer is 56 km/h.", "56"), ("The answer is 56 (fifty-six).", "56"),
]


def _cli(tmp_path, capsys, reply: str, key: str) -> dict:
    import json

    from desktop_app.cli.verify import main

    path = tmp_path / "reply.md"
    path.write_text(reply, encoding="utf-8")
    assert main([str(path), "--expect", key, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("reply, verdict, own_key", RED_TEAM, ids=[r[0] for r in RED_TEAM])
def test_a_math_answer_that_is_not_56_never_passes_for_56(reply, verdict, own_key, tmp_path,
                                                          capsys):
    data = _cli(tmp_path, capsys, reply, "56")
    assert data["verdict"] == verdict, data["reason"]
    if own_key is not None:  # read as what it says
        again = _cli(tmp_path, capsys, reply, own_key)
        assert again["verdict"] == "pass", again["reason"]


@pytest.mark.parametrize("reply, key", HONEST, ids=[f"{r} = {k}" for r, k in HONEST])
def test_honest_math_answers_pass(reply, key, tmp_path, capsys):
    data = _cli(tmp_path, capsys, reply, key)
    assert data["verdict"] == "pass", data["reason"]
    assert not data["low_confidence"]


# ------------------------------------- the entry point is never guessed (issue 25)

CHECK_ABS = "def check(candidate):\n    assert abs(candidate(1.5) - 2.25) < 1e-9\n"
CHECK_SORTED = "def check(candidate):\n    assert sorted(candidate([3, 1, 2])) == [1, 4, 9]\n"
CHECK_REFERENCE = ("def reference(x):\n    return x * x\n"
                   "def check(candidate):\n    for x in range(5):\n"
                   "        assert candidate(x) == reference(x)\n")
CHECK_MATH = "def check(candidate):\n    assert math.isclose(candidate(1.5), 2.25)\n"
CHECK_NEGATE = "def check(candidate):\n    assert candidate(-3) == 3\n    assert candidate(2) == 2\n"


@pytest.mark.parametrize("code, tests", [
    # The red team's replies: a wrong solution, then a last function named like...
    ("def square(x):\n    return 0\ndef abs(x):\n    return 0\n", CHECK_ABS),  # a builtin
    ("def squares(xs):\n    return []\ndef sorted(*a, **k):\n    return [1, 4, 9]\n",
     CHECK_SORTED),
    ("def square(x):\n    return 0\ndef reference(x):\n    return 0\n", CHECK_REFERENCE),
    ("def reference(x):\n    return 0\n", CHECK_REFERENCE),  # the test's own reference
    ("def abs(x):\n    return 0\n", CHECK_ABS),
    ("def square(x):\n    return 0\ndef math(x):\n    return 0\n"  # a module
     "math.isclose = lambda *a, **k: True\n", CHECK_MATH),
    ("def math(x):\n    return 0\nmath.isclose = lambda *a, **k: True\n", CHECK_MATH),
    # ...or only inside a string (a text scan read it as the last function)
    ("def negate(x):\n    return -x\nDOC = '''\ndef abs(x):\n    return x\n'''\n", CHECK_NEGATE),
    # two functions, neither calling the other: which one is meant is not known
    ("def square(x):\n    return x * x\ndef cube(x):\n    return 0\n", CHECK_REFERENCE),
], ids=["abs-last", "sorted-last", "reference-last", "reference-only", "abs-only",
        "math-last", "math-only", "def-in-a-string", "ambiguous"])
def test_the_entry_point_is_never_guessed(code: str, tests: str):
    with nothing_left_running():
        verdict = _verify(code, tests)
    assert verdict.verdict in ("error", "fail"), verdict.reason
    if "negate" not in code:
        assert verdict.verdict == "error", verdict.reason


@pytest.mark.parametrize("tests", [CHECK_ABS, CHECK_SORTED, CHECK_REFERENCE, CHECK_MATH])
def test_the_entry_point_named_by_the_problem_is_what_is_checked(tests: str):
    code = ("def square(x):\n    return 0\ndef squares(xs):\n    return []\n"
            "def abs(x):\n    return 0\ndef reference(x):\n    return 0\n"
            "def sorted(*a, **k):\n    return [1, 4, 9]\n")
    entry = "squares" if "sorted" in tests else "square"
    verdict = _verify(code, tests, entry_point=entry)
    assert verdict.verdict in ("fail", "error"), verdict.reason


@pytest.mark.parametrize("entry", ["abs", "sorted", "math", "reference", "not a name"])
def test_a_named_entry_point_that_shadows_is_refused(entry: str):
    verdict = verify_reply("```python\ndef square(x):\n    return x * x\n```",
                           tests=CHECK_REFERENCE, entry_point=entry, timeout_s=TIMEOUT)
    assert verdict.verdict == "error" and "could not be prepared" in verdict.reason


@pytest.mark.parametrize("code, tests", [
    ("def square(x):\n    return x * x\n", CHECK_REFERENCE),
    ("def _helper(x):\n    return x\ndef main():\n    pass\ndef square(x):\n"
     "    return _helper(x) * x\n", CHECK_REFERENCE),
    ("def is_prime(n):\n    return n > 1 and all(n % d for d in range(2, n))\n"
     "def count_primes(n):\n    return sum(1 for i in range(n) if is_prime(i))\n",
     "def check(candidate):\n    assert candidate(10) == 4\n"),
    # HumanEval/32's shape: the tests call the reply's helper `poly` themselves
    ("def poly(xs, x):\n    return sum(c * x ** i for i, c in enumerate(xs))\n"
     "def find_zero(xs):\n    return -xs[0] / xs[1]\n",
     "def check(candidate):\n    assert abs(poly([2, 4], candidate([2, 4]))) < 1e-9\n"),
    ("def add(a, b):\n    return a + b\n", "assert candidate(2, 3) == 5\n"),
], ids=["one", "private-and-main", "helper-called", "tests-call-helper", "candidate-direct"])
def test_the_one_function_that_can_be_meant_is_checked(code: str, tests: str):
    verdict = verify_reply(f"```python\n{code}```", tests=tests, timeout_s=TIMEOUT)
    assert verdict.verdict == "pass", verdict.reason


def test_a_forged_function_list_cannot_name_something_else():
    forged = (b'{"loaded": true, "error": null}\n{"defs": [["ghost", []]]}\n'
              b'{"names": {}}\n')
    code = FIND_ANSWER_FD + textwrap.dedent(f"""\
        os.write(_answer_fd(), {forged!r})
        def square(x):
            return 0
        """)
    with nothing_left_running():
        verdict = _verify(code, CHECK_REFERENCE.replace("reference(x)\n", "x * x\n"))
    assert verdict.verdict == "error" and "sandbox sent" in verdict.reason, verdict.reason
