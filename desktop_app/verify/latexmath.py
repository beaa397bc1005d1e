"""Numbers and LaTeX in math answers: exact parsing, cleanup, one canonical spelling,
and a small safe evaluator for values written with roots and π.

Numbers are parsed into exact fractions; only values that look like binary floating point
(an exponent, or more than six decimals) are compared with a tolerance. Nothing is ever
exec'd: expressions are evaluated by a small walk over Python's AST. No Qt, no I/O.
"""

from __future__ import annotations

import ast
import math
import re
from dataclasses import dataclass
from fractions import Fraction

MAX_ANSWER_CHARS = 10_000  # a final answer is read from at most this much text

# -------------------------------------------------------------------------- numbers


@dataclass(frozen=True)
class Number:
    """A parsed number: exact value, and whether it looks like a binary float."""

    value: Fraction
    inexact: bool = False
    decimals: int = 0
    text: str = ""

    def __str__(self) -> str:
        if self.value.denominator == 1:
            return str(self.value.numerator)
        if self.inexact or self.decimals:
            return self.text or str(float(self.value))
        return f"{self.value.numerator}/{self.value.denominator}"


# thousands groups only after a non-zero lead ("1,000"; "0,056" is no number)
_NUM = r"(?:[1-9]\d{0,2}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
NUMBER_RE = re.compile(
    r"(?:(?<![\w).])(?P<sign>[-−–+]))?(?P<cur>[$€£¥]\s?)?(?P<sign2>[-−])?(?P<num>" + _NUM + r")"
    r"(?:[eE](?P<exp>[-+]?\d+))?(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?(?P<pct>\s?%)?"
)
_FULL_NUMBER_RE = re.compile(r"^\s*" + NUMBER_RE.pattern + r"\s*\.?\s*$")
_FLOAT_DECIMALS = 6
_TAIL_CHARS = 100_000  # the last number of a long reply is looked for here first
_MAX_FRAC_DEPTH = 20


def _to_number(match: re.Match) -> Number | None:
    num = match.group("num").replace(",", "")
    negative = (match.group("sign") in ("-", "−", "–")) ^ (match.group("sign2") in ("-", "−"))
    if match.group("pct"):
        pass  # "50%" reads as 50: answer keys state percentages without the sign
    try:
        value = Fraction(num)
    except (ValueError, ZeroDivisionError):
        return None
    decimals = len(num.split(".", 1)[1]) if "." in num else 0
    inexact = decimals > _FLOAT_DECIMALS
    exp = match.group("exp")
    if exp is not None:
        if abs(int(exp)) > 400:
            return None
        value *= Fraction(10) ** int(exp)
        inexact = True
    den = match.group("den")
    if den is not None:
        try:
            d = Fraction(den)
        except ValueError:
            return None
        if d == 0:
            return None
        value /= d
    if negative:
        value = -value
    return Number(value, inexact, decimals, match.group(0).strip())


def parse_number(text: str) -> Number | None:
    """Parse a whole string as one number: ``42``, ``-5``, ``1,000``, ``$12``, ``12.0``,
    ``3/4``, ``1e-3``, ``50%`` (percent is ignored: ``50%`` reads as 50). LaTeX such as
    ``\\frac{3}{4}`` and ``\\$`` is understood."""
    cleaned = clean_latex(text)
    match = _FULL_NUMBER_RE.match(cleaned)
    if match:
        return _to_number(match)
    return None


def first_number(text: str) -> Number | None:
    """The first number inside *text* (``"42 apples"`` -> 42)."""
    cleaned = clean_latex(text)
    for match in NUMBER_RE.finditer(cleaned):
        number = _to_number(match)
        if number is not None:
            return number
    return None


def last_number(text: str) -> Number | None:
    """The last number in *text*. Only the tail is cleaned and scanned when it holds a
    number (the last one is there); the whole text otherwise. Linear either way."""
    for window in ((text[-_TAIL_CHARS:], text) if len(text) > _TAIL_CHARS else (text,)):
        matches = list(NUMBER_RE.finditer(clean_latex(window)))
        for match in reversed(matches):
            if window is not text and match.start() == 0:
                break  # may be the end of a number cut by the window: read it whole
            number = _to_number(match)
            if number is not None:
                return number
    return None


def numbers_equal(a: Number, b: Number) -> bool:
    """Exact comparison of fractions, unless one side looks like a float: then the
    difference may be up to half a unit in the last printed place, or one part in 10⁹."""
    if not (a.inexact or b.inexact):
        return a.value == b.value
    fa, fb = float(a.value), float(b.value)
    if not (math.isfinite(fa) and math.isfinite(fb)):
        return fa == fb
    tol = 1e-9 * max(abs(fa), abs(fb))
    for n in (a, b):
        if n.inexact and n.decimals and "e" not in n.text.lower():
            tol = max(tol, 0.5 * 10.0 ** (-n.decimals))
    return abs(fa - fb) <= tol


# ---------------------------------------------------------------------------- LaTeX


def brace_pairs(text: str) -> dict[int, int]:
    """Index of every ``{`` that closes -> index of its ``}`` (escaped braces skipped), in
    one pass: matching each group by scanning would be quadratic on ``\\boxed{`` × n."""
    pairs: dict[int, int] = {}
    stack: list[int] = []
    for match in re.finditer(r"\\?[{}]", text):
        token = match.group()
        if len(token) == 2:
            continue
        if token == "{":
            stack.append(match.start())
        elif stack:
            pairs[stack.pop()] = match.start()
    return pairs


def braced(text: str, start: int, pairs: dict[int, int] | None = None
            ) -> tuple[str, int] | None:
    """Content of the ``{…}`` group opening at *start* (nested braces), and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    end = (pairs if pairs is not None else brace_pairs(text)).get(start)
    if end is None:
        return None
    return text[start + 1:end], end + 1


def _replace_frac(text: str, depth: int = 0) -> str:
    if depth > _MAX_FRAC_DEPTH or "frac" not in text:
        return text
    out, i = [], 0
    pattern = re.compile(r"\\[dt]?frac")
    pairs = brace_pairs(text)
    while True:
        match = pattern.search(text, i)
        if not match:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:match.start()])
        j = match.end()
        while j < len(text) and text[j] == " ":
            j += 1
        num = braced(text, j, pairs)
        if num is None and j < len(text) and text[j].isdigit():
            num = (text[j], j + 1)  # \frac12
        if num is None:
            out.append(match.group(0))
            i = match.end()
            continue
        k = num[1]
        while k < len(text) and text[k] == " ":
            k += 1
        den = braced(text, k, pairs)
        if den is None and k < len(text) and text[k].isdigit():
            den = (text[k], k + 1)
        if den is None:
            out.append(match.group(0))
            i = match.end()
            continue
        out.append(f"({_replace_frac(num[0], depth + 1)})/({_replace_frac(den[0], depth + 1)})")
        i = den[1]


def clean_latex(text: str) -> str:
    """Reduce the LaTeX a math answer typically carries to plain text."""
    s = text
    s = re.sub(r"\\(?:text|textbf|mathrm|mathbf|operatorname|mbox)\s*\{([^{}]*)\}", r"\1", s)
    s = _replace_frac(s)
    s = re.sub(r"\((-?[\d.,]+)\)/\((-?[\d.,]+)\)", r"\1/\2", s)
    s = s.replace("\\left", "").replace("\\right", "")
    s = re.sub(r"\\[,;:! ]", "", s)
    s = s.replace("\\$", "$").replace("\\%", "%").replace("\\cdot", "*").replace("\\times", "*")
    s = re.sub(r"\^\s*\{?\\circ\}?", "", s)
    s = s.replace("\\dollar", "$").replace("**", "")
    s = re.sub(r"(?<=\d)\{,\}(?=\d)", ",", s)
    s = s.strip().strip("$").strip()
    return s


# ------------------------------------------------------------- LaTeX math answers
# MATH-style answers are LaTeX expressions: \frac{\pi}{2}, 3\sqrt{13}, (3, \frac{\pi}{2}),
# [-2, 7). Two answers are equal when their canonical strings are, or when both are
# expressions (or tuples/intervals of them, with the same brackets) of numbers, square
# roots and π that evaluate to the same values. Nothing is ever exec'd: a small AST walk.

_UNITLESS = re.compile(r"\\(?:text|mbox|mathrm)\s*\{\s*(?:units?|cm|m|inches|feet|degrees)\s*\}"
                       r"(?:\^\s*\{?\d\}?)?")  # a unit, squared or cubed too


def canonical_math(text: str) -> str:
    """A LaTeX answer in one spelling: ``\\dfrac``/``\\frac``/``a/b``, ``\\sqrt2``/``√2``,
    ``π``/``\\pi``, spaces, ``\\left``, degrees and ``x =`` prefixes all read alike."""
    s = text.strip()
    s = s.replace("π", "\\pi").replace("∞", "\\infty").replace("−", "-")
    s = re.sub(r"√\s*(\d+|[a-z])", r"\\sqrt{\1}", s)
    s = re.sub(r"√\s*\{", r"\\sqrt{", s)
    s = re.sub(r"\\[dt]frac", r"\\frac", s)
    s = re.sub(r"\\sqrt\s*(\d)", r"\\sqrt{\1}", s)
    s = s.replace("\\displaystyle", "")
    s = _UNITLESS.sub("", s)
    s = re.sub(r"\^\s*\{?\\circ\}?|°", "", s)
    s = clean_latex(s)
    s = re.sub(r"\\sqrt\s*\{([^{}]*)\}", r"sqrt(\1)", s)
    s = s.replace("\\pi", "pi").replace("\\infty", "inf").replace("\\%", "").replace("%", "")
    s = re.sub(r"\\leq?(?![a-z])", "<=", s)
    s = re.sub(r"\\geq?(?![a-z])", ">=", s)
    s = re.sub(r"\s+", "", s)
    s = re.sub(r"^[a-zA-Z]=(?!=)", "", s)  # "x=5" reads as "5"
    s = s.rstrip(".")
    while s.startswith("{") and s.endswith("}") and braced(s, 0) == (s[1:-1], len(s)):
        s = s[1:-1]
    s = re.sub(r"\(([\w.]+)\)/\(([\w.]+)\)", r"\1/\2", s)
    return s


_EVAL_NAMES = {"pi": math.pi, "inf": math.inf}
_MAX_POWER = 100


def _evaluate(node: ast.AST) -> float:
    """The value of a numeric expression tree (numbers, + - * / **, sqrt, pi); ValueError
    for anything else."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) \
            and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in _EVAL_NAMES:
        return _EVAL_NAMES[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        value = _evaluate(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
            and node.func.id == "sqrt" and len(node.args) == 1 and not node.keywords:
        return math.sqrt(_evaluate(node.args[0]))
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Add):
            return left + right
        if isinstance(node.op, ast.Sub):
            return left - right
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Div):
            return left / right
        if isinstance(node.op, ast.Pow) and abs(right) <= _MAX_POWER and abs(left) < 1e50:
            return float(left ** right)
    raise ValueError("not a numeric expression")


def _as_python(expression: str) -> str:
    """Implicit multiplication and ``^`` made explicit: ``3sqrt(13)`` -> ``3*sqrt(13)``."""
    s = expression.replace("^", "**").replace("{", "(").replace("}", ")")
    s = re.sub(r"(?<=[\d)])\s*(?=[a-z(])", "*", s)
    s = re.sub(r"(?<=pi|nf)\s*(?=[\d(a-z])", "*", s)
    return s.replace("sqrt*(", "sqrt(")


def _values(canonical: str) -> tuple[str, list[float]] | None:
    """(brackets, values) of an expression, tuple or interval; None if not numeric."""
    if len(canonical) > 200 or not canonical:
        return None
    brackets = ""
    body = canonical
    if body[0] in "([" and body[-1] in ")]" and "," in body:
        brackets, body = body[0] + body[-1], body[1:-1]
    parts = body.split(",")
    values = []
    for part in parts:
        try:
            tree = ast.parse(_as_python(part), mode="eval")
            values.append(_evaluate(tree.body))
        except (SyntaxError, ValueError, ZeroDivisionError, OverflowError, RecursionError,
                MemoryError):
            return None
    return brackets, values


def math_equal(expected: str, got: str) -> bool:
    """True when two LaTeX answers say the same thing (see :func:`canonical_math`)."""
    if len(expected) > MAX_ANSWER_CHARS or len(got) > MAX_ANSWER_CHARS:
        return False
    a, b = canonical_math(expected), canonical_math(got)
    if not a or not b:
        return False
    if a == b:
        return True
    va, vb = _values(a), _values(b)
    if va is None or vb is None or va[0] != vb[0] or len(va[1]) != len(vb[1]):
        return False
    return all(x == y or math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
               for x, y in zip(va[1], vb[1], strict=True))
