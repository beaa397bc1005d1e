"""Pull something checkable out of a model's reply: a Python program or a final answer.

Thinking (``<think>…</think>``) is removed first. Numbers are parsed into exact
fractions; only values that look like binary floating point (an exponent, or more than
six decimals) are compared with a tolerance. No Qt, no I/O.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction

from desktop_app.text.fences import CodeBlock, code_blocks
from desktop_app.text.thinking import split_reply

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
MAX_PARSE_CHARS = 200_000  # longer text is not parsed here to see if it is Python

# ------------------------------------------------------------------------- thinking


@dataclass(frozen=True)
class Visible:
    """The part of a reply that is answer, not thinking."""

    text: str
    still_thinking: bool = False
    had_thinking: bool = False


def strip_thinking(reply: str) -> Visible:
    """Remove thinking, with the engine's own splitter (:func:`split_reply`).

    A template may pre-fill ``<think>``, so a reply that closes thinking without opening
    it is split as pre-filled. After a closed thinking block, the answer is what follows
    the last ``</think>``; an answer that merely mentions ``<think>`` is still an answer.
    A reply whose thinking never closed has no answer yet.
    """
    lower = reply.lower()
    close = lower.find(THINK_CLOSE)
    prefilled = close >= 0 and THINK_OPEN not in lower[:close]
    thinking, answer, unterminated = split_reply(reply, prefilled=prefilled)
    opened = lower.lstrip().startswith(THINK_OPEN)
    if unterminated or (opened and THINK_CLOSE not in lower):
        return Visible("", still_thinking=True, had_thinking=True)
    had = bool(thinking) or prefilled or opened
    last = answer.lower().rfind(THINK_CLOSE)
    if last >= 0:  # thinking reopened inside the answer, and closed again
        answer = answer[last + len(THINK_CLOSE):]
        had = True
    return Visible(answer.strip(), had_thinking=had)


# ---------------------------------------------------------------------- code blocks

_PY_LANGS = {"python", "py", "python3", "py3", "ipython", "python3.11", "pycon"}


def looks_like_python(source: str) -> bool:
    """True if *source* parses as Python and does more than state a constant."""
    if len(source) > MAX_PARSE_CHARS:
        return False
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    for node in ast.walk(tree):
        if isinstance(node, ast.stmt) and not isinstance(node, ast.Expr):
            return True
        if isinstance(node, ast.Call):
            return True
    return False


_REAL_CODE = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Import, ast.ImportFrom,
              ast.For, ast.AsyncFor, ast.While, ast.If, ast.With, ast.AsyncWith, ast.Try,
              ast.Return, ast.Assign, ast.AugAssign, ast.Lambda)


def looks_like_bare_code(source: str) -> bool:
    """True if text with no code fence is a program, not prose that happens to parse.

    ``"40\\nAnswer: 20"`` parses as Python (a number, then an annotation) but is an answer:
    outside a fence, code must define, import, loop, branch, assign or call something, and
    hold no annotation of a constant with no value (``Answer: 20``): no program writes one."""
    if not looks_like_python(source):
        return False
    tree = ast.parse(source)
    if any(isinstance(node, ast.AnnAssign) and node.value is None
           and isinstance(node.annotation, ast.Constant) for node in ast.walk(tree)):
        return False  # "Answer: 20", "Total: 40": prose with a colon
    return any(isinstance(node, _REAL_CODE) for node in ast.walk(tree)) \
        or any(isinstance(node, ast.Expr) and isinstance(node.value, ast.Call)
               for node in tree.body)


def _strip_repl_prompts(code: str) -> str:
    lines = code.splitlines()
    if lines and lines[0].startswith(">>> "):
        kept = [line[4:] for line in lines if line.startswith((">>> ", "... "))]
        return "\n".join(kept) + "\n"
    return code


@functools.lru_cache(maxsize=4)
def _blocks(text: str) -> tuple[CodeBlock, ...]:
    """The reply's code blocks, parsed once per text (extraction asks several times)."""
    return tuple(code_blocks(text))


def extract_code(text: str) -> CodeBlock | None:
    """The last Python code block of the whole answer, by CommonMark's rules (one parser
    for the app: :func:`desktop_app.text.fences.code_blocks`): fenced ```python (or py,
    python3…), or an unlabelled fence whose content parses as Python. Nothing inside an
    HTML comment counts. The block may be unclosed (``closed=False``): callers decide
    whether to run it (Verify does not). *text* should already be free of thinking."""
    found = None
    for block in _blocks(text):
        if block.language in _PY_LANGS:
            code = _strip_repl_prompts(block.code) if block.language == "pycon" else block.code
            found = CodeBlock(block.info, "python", code, block.closed)
        elif block.language == "" and looks_like_python(block.code):
            found = block
    return found


_FENCE_LINE = re.compile(r"^[ \t]{0,3}(?:`{3,}|~{3,})[^\n]*$", re.MULTILINE)


def remove_code_blocks(text: str) -> str:
    """*text* without its fenced blocks (so their digits don't pass for an answer): the
    blocks :func:`code_blocks` finds are cut out in order, then the fence lines."""
    out: list[str] = []
    cursor = 0
    for block in _blocks(text):
        if not block.code:
            continue
        at = text.find(block.code, cursor)
        if at < 0:
            continue
        out.append(text[cursor:at])
        cursor = at + len(block.code)
    out.append(text[cursor:])
    return _FENCE_LINE.sub("", "".join(out))


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


_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_NUMBER_RE = re.compile(
    r"(?:(?<![\w).])(?P<sign>[-−–+]))?(?P<cur>[$€£¥]\s?)?(?P<sign2>[-−])?(?P<num>" + _NUM + r")"
    r"(?:[eE](?P<exp>[-+]?\d+))?(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?(?P<pct>\s?%)?"
)
_FULL_NUMBER_RE = re.compile(r"^\s*" + _NUMBER_RE.pattern + r"\s*\.?\s*$")
_FLOAT_DECIMALS = 6
_TAIL_CHARS = 100_000  # the last number of a long reply is looked for here first
_MAX_FRAC_DEPTH = 20
_MAX_ANSWER_CHARS = 10_000  # a final answer is read from at most this much text


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
    for match in _NUMBER_RE.finditer(cleaned):
        number = _to_number(match)
        if number is not None:
            return number
    return None


def last_number(text: str) -> Number | None:
    """The last number in *text*. Only the tail is cleaned and scanned when it holds a
    number (the last one is there); the whole text otherwise. Linear either way."""
    for window in ((text[-_TAIL_CHARS:], text) if len(text) > _TAIL_CHARS else (text,)):
        matches = list(_NUMBER_RE.finditer(clean_latex(window)))
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


def _brace_pairs(text: str) -> dict[int, int]:
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


def _braced(text: str, start: int, pairs: dict[int, int] | None = None
            ) -> tuple[str, int] | None:
    """Content of the ``{…}`` group opening at *start* (nested braces), and the index after it."""
    if start >= len(text) or text[start] != "{":
        return None
    end = (pairs if pairs is not None else _brace_pairs(text)).get(start)
    if end is None:
        return None
    return text[start + 1:end], end + 1


def _replace_frac(text: str, depth: int = 0) -> str:
    if depth > _MAX_FRAC_DEPTH or "frac" not in text:
        return text
    out, i = [], 0
    pattern = re.compile(r"\\[dt]?frac")
    pairs = _brace_pairs(text)
    while True:
        match = pattern.search(text, i)
        if not match:
            out.append(text[i:])
            return "".join(out)
        out.append(text[i:match.start()])
        j = match.end()
        while j < len(text) and text[j] == " ":
            j += 1
        num = _braced(text, j, pairs)
        if num is None and j < len(text) and text[j].isdigit():
            num = (text[j], j + 1)  # \frac12
        if num is None:
            out.append(match.group(0))
            i = match.end()
            continue
        k = num[1]
        while k < len(text) and text[k] == " ":
            k += 1
        den = _braced(text, k, pairs)
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


# -------------------------------------------------------------------- final answers


@dataclass(frozen=True)
class FinalAnswer:
    """A final answer found in a reply."""

    text: str
    source: str  # "boxed" | "gsm8k" | "answer-is" | "last-number" | "program-output"
    number: Number | None = None
    low_confidence: bool = False

    def display(self) -> str:
        return str(self.number) if self.number is not None else self.text


def _last_boxed(text: str) -> str | None:
    pairs = _brace_pairs(text) if "box" in text else {}
    for match in reversed(list(re.finditer(r"\\(?:boxed|fbox)\s*", text))):
        group = _braced(text, match.end(), pairs)
        if group is not None:
            return group[0]
    return None


_GSM8K_RE = re.compile(r"^[ \t>*]*####\s*(.+?)\s*$", re.M)
_ANSWER_IS_RE = re.compile(
    r"(?:final\s+answer|the\s+answer|answer)\s*(?:is|:|=|would\s+be|will\s+be)\s*:?\s*"
    r"(?P<ans>[^\n]+)",
    re.I,
)


def _trim_sentence(text: str) -> str:
    text = text.strip().strip("*").strip()
    text = re.split(r"(?<!\d)\.(?:\s|$)|\.\s", text + " ", maxsplit=1)[0]
    return text.strip().rstrip(".").strip()


def extract_answer(text: str) -> FinalAnswer | None:
    """The reply's final answer, in this order of trust: the last ``\\boxed{…}``
    (nested braces allowed), a GSM8K-style ``#### 42`` line, the last "the answer is …",
    and, marked low-confidence, the last number in the text (outside code blocks)."""
    prose = remove_code_blocks(text)
    boxed = _last_boxed(prose)
    if boxed is not None:
        return _answer(boxed, "boxed")
    matches = _GSM8K_RE.findall(prose)
    if matches:
        return _answer(matches[-1], "gsm8k")
    matches = [m.group("ans") for m in _ANSWER_IS_RE.finditer(prose)]
    for candidate in reversed(matches):
        inner = _last_boxed(candidate)
        trimmed = inner if inner is not None else _trim_sentence(candidate)
        if trimmed:
            return _answer(trimmed, "answer-is")
    number = last_number(prose)
    if number is not None:
        return FinalAnswer(number.text, "last-number", number, low_confidence=True)
    return None


def _answer(raw: str, source: str) -> FinalAnswer:
    raw = raw.strip()[:_MAX_ANSWER_CHARS]
    number = parse_number(raw) or first_number(raw)
    return FinalAnswer(clean_latex(raw), source, number)


def normalize_text_answer(text: str) -> str:
    """Case-, space- and punctuation-insensitive form of a non-numeric answer."""
    s = clean_latex(text).casefold()
    s = re.sub(r"[\s*_`\"'“”‘’]+", " ", s)
    return s.strip(" .!,;:").strip()


@dataclass(frozen=True)
class Comparison:
    equal: bool
    expected: str
    got: str
    note: str = ""


def compare_answers(expected: str, got: FinalAnswer) -> Comparison:
    """Compare an answer key with a final answer: numbers as numbers, text as text;
    tuples, intervals and lists (``[-2, 7)``, ``1, 3``) element by element, brackets too."""
    if _is_several(expected):
        equal = normalize_text_answer(expected) == normalize_text_answer(got.text) \
            or math_equal(expected, got.text)
        return Comparison(equal, expected.strip(), got.text)
    want = parse_number(expected) or (first_number(expected) if _mostly_numeric(expected) else None)
    if want is not None:
        if got.number is None:
            return Comparison(False, str(want), got.text, "the answer is not a number")
        equal = numbers_equal(want, got.number)
        note = "within float tolerance" if equal and (want.inexact or got.number.inexact) \
            and want.value != got.number.value else ""
        return Comparison(equal, str(want), str(got.number), note)
    equal = normalize_text_answer(expected) == normalize_text_answer(got.text)
    note = ""
    if not equal and math_equal(expected, got.text):
        equal, note = True, "the same value written differently"
    return Comparison(equal, expected.strip(), got.text, note)


def _is_several(text: str) -> bool:
    """True for a tuple, interval or list of values (not ``1,000``)."""
    canonical = canonical_math(text)
    return "," in canonical and not re.fullmatch(r"[-+$]?\d{1,3}(?:,\d{3})+(?:\.\d+)?", canonical)


def _mostly_numeric(text: str) -> bool:
    return bool(re.search(r"\d", text)) and len(re.sub(r"[\d\s.,/$%-]", "", clean_latex(text))) <= 3


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
    while s.startswith("{") and s.endswith("}") and _braced(s, 0) == (s[1:-1], len(s)):
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
    if len(expected) > _MAX_ANSWER_CHARS or len(got) > _MAX_ANSWER_CHARS:
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
