"""The shipped practice sets load, are well formed, and their answer keys are right."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.verify import find_problem, load_practice_sets, verify_reply
from desktop_app.verify.extract import parse_number
from desktop_app.verify.practice import PracticeError, load_practice_file

SETS = load_practice_sets()
# The hand-written sets (math, code, open); the benchmark sets have their own tests
# (tests/test_practice_benchmarks.py).
OWN_SETS = [s for s in SETS if not s.format]
PROBLEMS = [p for s in OWN_SETS for p in s.problems]

REFERENCE = {
    "code-add": "def add(a, b):\n    return a + b\n",
    "code-is-even": "def is_even(n):\n    return n % 2 == 0\n",
    "code-reverse-string": "def reverse_string(s):\n    return s[::-1]\n",
    "code-factorial": "def factorial(n):\n    out = 1\n    for i in range(2, n + 1):\n        out *= i\n    return out\n",
    "code-max-of-list": "def max_of_list(xs):\n    best = xs[0]\n    for x in xs:\n        if x > best:\n            best = x\n    return best\n",
    "code-count-vowels": "def count_vowels(s):\n    return sum(c in 'aeiouAEIOU' for c in s)\n",
    "code-is-palindrome": "def is_palindrome(s):\n    return s == s[::-1]\n",
    "code-fizzbuzz": (
        "def fizzbuzz(n):\n    out = []\n    for i in range(1, n + 1):\n"
        "        word = ('Fizz' if i % 3 == 0 else '') + ('Buzz' if i % 5 == 0 else '')\n"
        "        out.append(word or str(i))\n    return out\n"
    ),
}

MATH_CHECK = {  # the arithmetic behind each answer key
    "math-mul-7-8": 7 * 8, "math-add-15-27": 15 + 27, "math-sub-100-37": 100 - 37,
    "math-apples": 5 + 3, "math-pencil-boxes": 12 * 4, "math-muffins": 24 + 24 // 2,
    "math-reading": 120 // 15, "math-sale-price": 20 * 0.75, "math-change": 50 - 12 - 8.5,
    "math-temperature": 3 - 8, "math-fractions": 0.75, "math-school": 4 * 10 * 25,
}


def test_three_kinds_and_a_dozen_plus_problems():
    kinds = {p.kind for p in PROBLEMS}
    assert kinds == {"math", "code", "open"}
    assert len(PROBLEMS) >= 12
    assert len({p.id for p in PROBLEMS}) == len(PROBLEMS)
    assert all(p.prompt and p.title and p.set_name for p in PROBLEMS)


def test_open_prompts_are_marked_unverifiable():
    opens = [p for p in PROBLEMS if p.kind == "open"]
    assert opens and all(not p.verifiable and p.answer is None and p.tests is None for p in opens)
    assert any("pelican" in p.prompt for p in opens)
    assert all(p.verifiable for p in PROBLEMS if p.kind != "open")


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if p.kind == "math"], ids=lambda p: p.id)
def test_math_answer_keys(problem):
    number = parse_number(problem.answer)
    assert number is not None
    assert float(number.value) == pytest.approx(MATH_CHECK[problem.id])
    assert verify_reply(f"The answer is {problem.answer}.", problem).verdict == "pass"
    assert verify_reply(f"\\boxed{{{MATH_CHECK[problem.id] + 1}}}", problem).verdict == "fail"


def test_every_code_problem_has_a_reference_solution():
    assert {p.id for p in PROBLEMS if p.kind == "code"} == set(REFERENCE)


@pytest.mark.parametrize("problem", [p for p in PROBLEMS if p.kind == "code"], ids=lambda p: p.id)
def test_code_problems_pass_reference_and_fail_a_wrong_answer(problem):
    good = verify_reply(f"Here you go:\n```python\n{REFERENCE[problem.id]}```", problem, timeout_s=3)
    assert good.verdict == "pass", good.reason
    wrong = REFERENCE[problem.id].replace("return", "return None and", 1)
    bad = verify_reply(f"```python\n{wrong}```", problem, timeout_s=3)
    assert bad.verdict == "fail", bad.reason


def test_find_problem():
    assert find_problem("math-mul-7-8").answer == "56"
    with pytest.raises(KeyError):
        find_problem("no-such-problem")


def test_malformed_files_are_reported(tmp_path: Path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[[problems]]\nid = "x"\nkind = "math"\nprompt = "1+1?"\n')
    with pytest.raises(PracticeError, match="answer"):
        load_practice_file(bad)
    bad.write_text('[[problems]]\nid = "x"\nkind = "riddle"\nprompt = "?"\n')
    with pytest.raises(PracticeError, match="kind"):
        load_practice_file(bad)
    assert load_practice_sets(tmp_path / "missing") == []
