"""Pull something checkable out of a model's reply: a Python program or a final answer.

Thinking (``<think>…</think>``) is removed first. A math reply has one final answer or
none: the last ``\\boxed{}`` outside comments, a GSM8K ``####`` line, or an explicit
final-answer line ("The answer is …", "Final answer: …", "A: …"). That answer must be one
value: a hedge ("56 or 57"), a negation ("not 56"), a range ("between 50 and 56") or an
expression around the number (``\\sqrt{56}``) is read as what it says, never as its first
number. It is compared with the key exactly when both are plain numbers, else by
equivalence (:mod:`desktop_app.verify.latexmath`, then math-verify in
:mod:`desktop_app.verify.equivalence`). A number that no marker points to is only a
low-confidence reading. No Qt, no I/O.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass

from desktop_app.text.fences import CodeBlock, code_blocks
from desktop_app.text.i18n import N_, _
from desktop_app.text.thinking import THINK_TAGS, split_reply
from desktop_app.verify.equivalence import DEADLINE_S, sympy_equivalent
from desktop_app.verify.latexmath import (
    MAX_ANSWER_CHARS,
    NUMBER_RE,
    Number,
    brace_pairs,
    braced,
    canonical_math,
    clean_latex,
    first_number,
    last_number,
    math_equal,
    numbers_equal,
    parse_number,
)

__all__ = [
    "MARKED_SOURCES", "REPLY_ENDED", "CodeBlock", "Comparison", "FinalAnswer", "Number",
    "Visible", "answer_flaws", "answer_value", "before_cut", "canonical_math", "clean_latex",
    "compare_answers", "cut_off_answer", "extract_answer", "extract_code", "first_number",
    "is_cut_off", "last_number", "looks_like_bare_code", "looks_like_python", "math_equal",
    "math_vote_key", "normalize_text_answer", "numbers_equal", "parse_number",
    "remove_code_blocks", "strip_comments", "strip_thinking",
]

THINK_OPEN, THINK_CLOSE = THINK_TAGS.open, THINK_TAGS.close  # a whole reply file: think tags
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


# -------------------------------------------------------------------- final answers


@dataclass(frozen=True)
class FinalAnswer:
    """A final answer found in a reply.

    ``number`` is set only when the answer is one plain number, possibly with words
    around it (``56 apples``, ``$18 per day``); an expression (``\\sqrt{56}``) has none.
    ``flaws`` names what makes it more or less than one answer ("a negation", …)."""

    text: str
    source: str  # boxed | gsm8k | answer-is | whole-reply | last-number | program-output
    number: Number | None = None
    low_confidence: bool = False
    flaws: tuple[str, ...] = ()
    raw: str = ""  # the answer as written (LaTeX kept), for math-verify

    def display(self) -> str:
        return str(self.number) if self.number is not None else self.text

    @property
    def empty(self) -> bool:
        """A marker with nothing after it (``\\boxed{}``, ``<b>Answer:</b>``): no answer."""
        return not self.display().strip(" \t\n.,;:!?*_`'\"")


_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|\Z)", re.S)
_MARKDOWN_COMMENT = re.compile(r"^[ \t]{0,3}\[(?://|comment)\]:[ \t]*[#<][^\n]*$", re.M | re.I)


def strip_comments(text: str) -> str:
    """*text* without what a reader never sees: HTML comments (an unclosed one hides the
    rest, as in a browser) and Markdown comment lines (``[//]: # (…)``)."""
    if "<!--" not in text and "]:" not in text:
        return text
    return _MARKDOWN_COMMENT.sub(" ", _HTML_COMMENT.sub(" ", text))


def _last_boxed(text: str) -> str | None:
    pairs = brace_pairs(text) if "box" in text else {}
    for match in reversed(list(re.finditer(r"\\(?:boxed|fbox)\s*", text))):
        group = braced(text, match.end(), pairs)
        if group is not None:
            return group[0]
    return None


_GSM8K_RE = re.compile(r"^[ \t>*]*####\s*(.+?)\s*$", re.M)
# A marker on word boundaries ("answer is" never matches inside "answer isn't"); "A: 18"
# only at the start of a line (the Q/A format of few-shot prompts and OpenAI's solutions).
_ANSWER_IS_RE = re.compile(
    r"\b(?:final\s+answer|the\s+answer|answer)\b[*_]*"
    r"(?:\s*[:=]|\s+(?:is|would\s+be|will\s+be|should\s+be)\b)[*_]*\s*:?\s*(?P<ans>[^\n]+)",
    re.I,
)
_A_LINE_RE = re.compile(r"^[ \t>*_]*A[*_]*[ \t]*:[ \t]*(?P<ans>[^\n]+)", re.M)


# A reason given after the answer ("56, since 8 * 7 = 56") is not part of it.
_JUSTIFICATION = re.compile(r"(?<=\S)(?:\s*[,;])?\s+(?:because|since|as|given|which|so|thus"
                            r"|hence|therefore|where)\b.*$", re.I | re.S)


def _trim_sentence(text: str) -> str:
    text = text.strip().strip("*").strip()
    text = re.split(r"(?<!\d)\.(?:\s|$)|\.\s", text + " ", maxsplit=1)[0]
    text = _JUSTIFICATION.sub("", text)
    return text.strip().rstrip(".").strip()


def _answer_line(prose: str) -> str | None:
    """The text of the last explicit final-answer line, or None."""
    found = [(m.start(), m.group("ans")) for regex in (_ANSWER_IS_RE, _A_LINE_RE)
             for m in regex.finditer(prose)]
    for _start, candidate in sorted(found, reverse=True):
        candidate = candidate[:MAX_ANSWER_CHARS]
        for _attempt in range(3):  # "Final Answer: The final answer is $56$."
            inner = _ANSWER_IS_RE.search(candidate)
            if inner is None:
                break
            candidate = inner.group("ans")
        boxed = _last_boxed(candidate)
        trimmed = boxed if boxed is not None else _trim_sentence(candidate)
        if trimmed:
            return trimmed
    return None


_MATH_SPAN = re.compile(r"\$\$?([^$]+)\$\$?|\\\[(.+)\\\]|\\\((.+)\\\)", re.S)


def _whole_reply(prose: str) -> str | None:
    """A reply that is nothing but one value (``56``, ``**56**``, ``$\\frac{1}{2}$``) states
    it as its answer; a sentence around a number does not."""
    text = prose.strip()
    if len(text) > 500:
        return None
    text = re.sub(r"^([*_]{1,3})(.+)\1$", r"\2", text, flags=re.S).strip().rstrip(".").strip()
    span = _MATH_SPAN.fullmatch(text)
    if span is not None:
        return next(group for group in span.groups() if group is not None)
    return text if parse_number(text) is not None else None


def extract_answer(text: str) -> FinalAnswer | None:
    """The reply's final answer, in this order of trust: the last ``\\boxed{…}`` (nested
    braces allowed), a GSM8K-style ``#### 42`` line, the last final-answer line ("the
    answer is …", "Final answer: …", "A: …"), all outside code blocks and comments, or a
    reply that is nothing but one value (``$56$``); else, marked low-confidence, the last number in the text (never a pass on its own)."""
    prose = strip_comments(remove_code_blocks(text))
    boxed = _last_boxed(prose)
    if boxed is not None:
        return _answer(boxed, "boxed")
    matches = _GSM8K_RE.findall(prose)
    if matches:
        return _answer(matches[-1], "gsm8k")
    line = _answer_line(prose)
    if line is not None:
        return _answer(line, "answer-is")
    whole = _whole_reply(prose)
    if whole is not None:
        return _answer(whole, "whole-reply")
    number = last_number(prose)
    if number is not None:
        return FinalAnswer(number.text, "last-number", number, low_confidence=True)
    return None


# ------------------------------------------------------------- how the reply ended

REPLY_ENDED = "stop"  # the engine's finish reason when the model ended the reply itself
MARKED_SOURCES = ("boxed", "gsm8k", "answer-is")  # a final answer the reply marks as one


def is_cut_off(finish: str | None) -> bool:
    """Whether a reply with this finish reason (the engine's ``FinishReason`` value: stop,
    length, cancelled, error) was cut off rather than ended by the model. None: not known
    (a saved file), which is not taken as cut off."""
    return finish is not None and str(finish) != REPLY_ENDED


_SENTENCE_END = re.compile(r"\n|[.!?。](?=[ \t]+\S)")


def before_cut(text: str) -> str:
    """What a cut-off reply wrote whole: everything up to its last line break or finished
    sentence. The unfinished rest may stop mid-value ("The answer is 1" of "1,250"), so it
    is dropped, unless it holds a closed ``\\boxed{…}`` (its brace says the value is
    whole)."""
    end = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
    head, tail = text[:end], text[end:]
    if "box" in tail and _last_boxed(strip_comments(tail)) is not None:
        return text
    return head


def cut_off_answer(text: str) -> FinalAnswer | None:
    """The final answer of a cut-off reply (token limit, Stop): only one the reply marks
    (``\\boxed{}``, ``####``, "the answer is") and wrote whole before the cut; a bare
    number in the working, or a reply that is one value so far, is no answer."""
    answer = extract_answer(before_cut(text))
    return answer if answer is not None and answer.source in MARKED_SOURCES else None


# What makes an answer more or less than one value. Read on the raw text, so LaTeX
# (\text{ or }, \neq) counts, and before anything is trimmed, so "56 (or 57)" is a hedge.
_FLAWS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a negation", re.compile(
        r"\b(?:not|never|neither|nor)\b|n[’']t\b|≠|\\(?:neq?|not|neg)(?![a-zA-Z])", re.I)),
    ("alternatives", re.compile(r"\b(?:or|either)\b|\\(?:lor|vee)(?![a-zA-Z])", re.I)),
    ("a range", re.compile(
        r"\b(?:between|range|at\s+(?:least|most)|up\s+to|(?:less|more|greater|fewer)"
        r"\s+than)\b|\bfrom\b[^\n]{0,200}?\bto\b|\d\s*(?:\bto\b|–|—|\.\.\.?|…)\s*[-$\\]?\d|[<>≤≥]|"
        r"\\(?:leq?|geq?|lt|gt)(?![a-zA-Z])", re.I)),
)
_FLAW_VERBS = {"a negation": N_("is a negation"), "alternatives": N_("gives alternatives"),
               "a range": N_("gives a range")}
# Words that change a number's value: "56 squared", "5 million", "negative 56", "56 pi".
_VALUE_WORDS = {
    "pi", "sqrt", "root", "ln", "log", "sin", "cos", "tan", "sec", "csc", "cot", "exp",
    "inf", "infinity", "squared", "cubed", "times", "plus", "minus", "over", "divided",
    "power", "factorial", "negative", "half", "halves", "third", "thirds", "quarter",
    "quarters", "dozen", "dozens", "hundred", "hundreds", "thousand", "thousands", "million",
    "millions", "billion", "billions", "trillion", "lakh", "crore",
}


def answer_flaws(text: str) -> tuple[str, ...]:
    """What makes *text* more or less than one answer: "a negation" (not 56, isn't, ≠),
    "alternatives" (56 or 57), "a range" (between 50 and 56, at least 56, 50–56)."""
    return tuple(name for name, regex in _FLAWS if regex.search(text))


def answer_value(text: str) -> Number | None:
    """The one number *text* states, with at most words around it (``56``, ``$18 per
    day``, ``56 \\text{ cm}``, ``x = 5``); None for an expression (``\\sqrt{56}``,
    ``56^{2}``, ``-{56}``, ``0,056``, ``56x``), for several numbers, and for flaws."""
    if answer_flaws(text):
        return None
    cleaned = clean_latex(text)
    cleaned = re.sub(r"^\s*[A-Za-z]\w*\s*=(?!=)", "", cleaned)  # "x = 5"
    for _round in range(5):  # braces around a plain number change nothing: "{5}", "{{5}}"
        cleaned = re.sub(r"\{\s*([\d.,]+)\s*\}", r"\1", cleaned)
    number = parse_number(cleaned)
    if number is not None:
        return number
    matches = list(NUMBER_RE.finditer(cleaned))
    if len(matches) != 1:
        return None
    match = matches[0]
    before, after = cleaned[:match.start()], cleaned[match.end():]
    word = r"[^\W\d_]+(?:[-/'’][^\W\d_]+)*"  # "apples", "km/h", "fifty-six", "o'clock"
    words = re.findall(word, before + " " + after)
    rest = re.sub(word, "", before + " " + after)
    if re.search(r"[^\s.,:;!?'’\"()*]", rest):
        return None  # an operator, a brace, a backslash, another digit: an expression
    if re.search(r"[^\W\d_]$", before) or re.match(r"[^\W\d_]", after):
        return None  # "56x", "x56": a product, not a number with a word beside it
    if any(len(w) < 2 or not _VALUE_WORDS.isdisjoint(re.split(r"[-/'’]", w.casefold()))
           for w in words):
        return None
    return parse_number(match.group(0))


_HTML_TAG = re.compile(r"</?[A-Za-z][^<>\n]{0,200}>")


def _answer(raw: str, source: str) -> FinalAnswer:
    raw = _HTML_TAG.sub("", raw.strip()[:MAX_ANSWER_CHARS]).strip()  # <b>56</b>
    return FinalAnswer(clean_latex(raw), source, answer_value(raw), flaws=answer_flaws(raw),
                       raw=raw)


def normalize_text_answer(text: str) -> str:
    """Case-, space- and punctuation-insensitive form of a non-numeric answer."""
    s = clean_latex(text).casefold()
    s = re.sub(r"[\s*_`\"'“”‘’]+", " ", s)
    return s.strip(" .!,;:").strip()


@dataclass(frozen=True)
class Comparison:
    """``equal``; ``decided`` False when equivalence could not be settled in time;
    ``rejected`` says why the answer is not one value (then ``equal`` is False)."""

    equal: bool
    expected: str
    got: str
    note: str = ""
    decided: bool = True
    rejected: str = ""


def compare_answers(expected: str, got: FinalAnswer, *,
                    deadline_s: float = DEADLINE_S) -> Comparison:
    """Compare an answer key with a final answer. A flaw the key does not share (a
    negation, alternatives, a range) fails. Two plain numbers compare exactly as
    fractions; anything else is equal when its canonical spelling or its value says so
    (:func:`math_equal`) or math-verify does (within *deadline_s*; undecided after).
    Tuples, intervals and lists compare element by element, brackets too."""
    several = _is_several(expected)
    flaws = [flaw for flaw in got.flaws if flaw not in answer_flaws(expected)
             and not (several and flaw == "alternatives")]
    if flaws:
        return Comparison(False, expected.strip(), " ".join(got.text.split()),
                          rejected=_and([_(_FLAW_VERBS[flaw]) for flaw in flaws]))
    want = None if several else (parse_number(expected) or (
        first_number(expected) if _mostly_numeric(expected) else None))
    if want is not None and got.number is not None:
        equal = numbers_equal(want, got.number)
        note = _("within float tolerance") if equal and (want.inexact or got.number.inexact) \
            and want.value != got.number.value else ""
        return Comparison(equal, str(want), str(got.number), note)
    shown_expected = str(want) if want is not None else expected.strip()
    if want is None and normalize_text_answer(expected) == normalize_text_answer(got.text):
        return Comparison(True, shown_expected, got.text)
    if math_equal(expected, got.text):
        return Comparison(True, shown_expected, got.text,
                          _("the same value written differently"))
    judged = sympy_equivalent(expected.strip(), (got.raw or got.text).strip(), deadline_s)
    if not judged.decided:
        return Comparison(False, shown_expected, got.text, judged.reason, decided=False)
    return Comparison(judged.equal, shown_expected, got.text,
                      _("equivalent (math-verify)") if judged.equal else "")


def _and(items: list[str]) -> str:
    """``a``, ``a and b``, ``a and b and c`` (the flaws of one answer: at most three)."""
    text = items[0]
    for item in items[1:]:
        text = _("{first} and {second}").format(first=text, second=item)
    return text


def _is_several(text: str) -> bool:
    """True for a tuple, interval or list of values (not ``1,000``)."""
    canonical = canonical_math(text)
    return "," in canonical and not re.fullmatch(r"[-+$]?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?",
                                                 canonical)


def _mostly_numeric(text: str) -> bool:
    return bool(re.search(r"\d", text)) and len(re.sub(r"[\d\s.,/$%-]", "", clean_latex(text))) <= 3


def math_vote_key(reply: str | Visible, *, finish: str | None = None) -> str | None:
    """What a majority vote counts for a math reply: its final answer as one canonical
    value (a number as its exact value, ``56.0`` and ``56`` alike; an expression in its
    canonical spelling; text case- and punctuation-insensitive). None when the reply has
    no final answer, only a low-confidence reading (the last number, no marker), or an
    answer that is not one value (a hedge, a negation, a range): those never vote.
    A :class:`Visible` is an answer the engine already split off; a ``str`` a whole reply.
    *finish*: how it ended (:func:`is_cut_off`): a cut-off reply votes only with
    :func:`cut_off_answer`, as Verify reads it."""
    visible = reply if isinstance(reply, Visible) else strip_thinking(reply)
    if visible.still_thinking:
        return None
    final = (cut_off_answer(visible.text) if is_cut_off(finish)
             else extract_answer(visible.text))
    if final is None or final.low_confidence or final.flaws or final.empty:
        return None
    number = final.number
    if number is not None:  # its exact value: 0.5 and \frac{1}{2} vote together
        return str(float(number.value)) if number.inexact else str(number.value)
    if re.search(r"[\d\\^_{}=+*/]", final.text):  # an expression (LaTeX text unwrapped)
        return canonical_math(final.text) or None
    return normalize_text_answer(final.text) or None  # words: "Paris" and "paris" alike
