"""Decide whether a reply is right: math against an answer key, code against tests.

Code is checked with the key kept out of the model's process: the reply's code runs in
the sandbox and only computes its outputs for the inputs it is given; the test program,
its expected values and every comparison run here (:mod:`desktop_app.verify.judge`).
The reply is read whole first (thinking split by the engine's own splitter, code blocks by
CommonMark rules), and only then is the chosen block size-checked. How the reply ended
matters: a last block that never closes is the model's final code when the model ended
the reply itself (it is run, and the verdict says the fence was unclosed), and an
unfinished program when the token limit or Stop cut it off (never run); a cut-off reply
has a final answer only where it marked one whole before the cut. Every text in the
verdict is escaped for terminals, windows and JSON.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from desktop_app.text.i18n import N_, _, ngettext, number
from desktop_app.verify.extract import (
    REPLY_ENDED,
    CodeBlock,
    FinalAnswer,
    Visible,
    answer_flaws,
    answer_value,
    compare_answers,
    cut_off_answer,
    extract_answer,
    extract_code,
    is_cut_off,
    looks_like_bare_code,
    strip_thinking,
)
from desktop_app.verify.judge import TestFormatError, TestOutcome, build_test_plan, judge_with
from desktop_app.verify.practice import Problem
from desktop_app.verify.sandbox import Limits, RunResult, run_code
from desktop_app.verify.verdict import Verdict, VerdictState

MAX_REPLY_CHARS = 1_000_000  # a reply longer than this is not read at all (~250k tokens)
MAX_CODE_CHARS = 200_000  # the chosen block must be at most this long to be run
_S = VerdictState
# what cut a reply off, by the engine's finish reason (stop is the model ending it itself)
# (phrases marked here, translated where a sentence takes them in)
_CUT_BY = {"length": N_("the token limit cut the reply off"),
           "cancelled": N_("Stop cut the reply off"),
           "error": N_("an error cut the reply off")}
UNCLOSED_NOTE = N_("The last code block was never closed (no closing fence); the reply ended "
                   "normally, so it was run as the model's final code.")


def _cut(finish: str | None) -> str:
    """What cut the reply off, as a phrase ("the token limit cut the reply off"); "" when
    the model ended it or how it ended is not known."""
    if not is_cut_off(finish):
        return ""
    return _(_CUT_BY.get(str(finish), N_("the reply was cut off")))


def _sentence(phrase: str) -> str:
    return phrase[:1].upper() + phrase[1:]


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"  # a name, like SIGKILL


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _isolation(run: RunResult) -> str:
    return run.protections.summary() if run.protections.reported else _("The sandbox did not start.")


def _run_failure(run: RunResult, timeout_s: float) -> tuple[VerdictState, str] | None:
    """(verdict, reason) when the run itself went wrong, else None."""
    if run.error:
        return _S.ERROR, run.error
    if run.timed_out:
        return _S.TIMEOUT, _("Timed out after {seconds} s; the program and everything it "
                             "started were killed.").format(seconds=_seconds(timeout_s))
    if run.output_exceeded:
        return _S.ERROR, _("The program produced far more output than allowed and was stopped.")
    if run.signal:
        name = _signal_name(run.signal)
        why = _DIED_BECAUSE.get(name)
        return _S.ERROR, _("The program died: {why} ({signal}).").format(
            why=_(why) if why else name, signal=name)
    return None


def _base(run: RunResult, kind: str) -> dict[str, Any]:
    return dict(stdout=run.stdout, stderr=run.stderr, duration_s=run.duration_s,
                isolation=_isolation(run), kind=kind)


def _run_verdict(code: CodeBlock, timeout_s: float, kind: str, note: str,
                 secrets: Sequence[str]) -> Verdict:
    run = run_code(code.code, limits=Limits(timeout_s=timeout_s), secret_paths=secrets)
    base = _base(run, kind)
    got = _last_line(run.program_stdout) or None
    failure = _run_failure(run, timeout_s)
    if failure:
        return Verdict(failure[0], reason=failure[1], got=got, **base)
    if run.exit_code:
        last = _last_line(run.stderr)
        reason = (_("Ran, but exited with code {code}: {last}.") if last
                  else _("Ran, but exited with code {code}.")).format(code=run.exit_code, last=last)
        return Verdict(_S.ERROR, got=got, reason=f"{reason} {note}".strip(), **base)
    return Verdict(_S.RAN, got=got,
                   reason=f"{_('Ran, nothing to check against (exit code 0).')} {note}".strip(),
                   **base)


def _broken_verdict(run: RunResult, expected: str, base: dict[str, Any]) -> Verdict | None:
    broken = run.broken
    if broken is None:
        return None
    if broken.kind == "output":
        return Verdict(_S.ERROR, expected=expected, reason=broken.reason, **base)
    if broken.kind == "ended":
        if run.signal:
            failure = _run_failure(run, 0)
            if failure:
                return Verdict(failure[0], expected=expected, reason=failure[1], **base)
        how = (_("exit code {code}").format(code=run.exit_code) if run.exit_code is not None
               else _("no exit code"))
        return Verdict(_S.ERROR, expected=expected,
                       reason=_("The program ended before the tests finished ({how}); results "
                                "are only trusted when every check was answered.").format(how=how),
                       **base)
    return Verdict(_S.ERROR, expected=expected,
                   reason=_("{reason} The run counts as an error.").format(reason=broken.reason),
                   **base)


def _assertions_hold(n: int) -> str:
    return ngettext("{n} assertion holds", "{n} assertions hold", n).format(n=n)


def _outcome_verdict(outcome: TestOutcome, plan_entry: str | None, total: int,
                     base: dict[str, Any]) -> Verdict:
    details = [r.line() for r in outcome.results]
    n_run = len(outcome.results)
    passed = outcome.passed
    if outcome.load_error:
        details.insert(0, _("! the code raised {error} while loading").format(
            error=outcome.load_error))
    if outcome.completed and n_run and passed == n_run:
        if n_run == 1:
            every = (_("The test assertion passed ({entry}).") if plan_entry
                     else _("The test assertion passed."))
        else:  # (the singular is never used: one assertion is "The test assertion")
            every = (ngettext("All {n} test assertion passed ({entry}).",
                              "All {n} test assertions passed ({entry}).", n_run) if plan_entry
                     else ngettext("All {n} test assertion passed.",
                                   "All {n} test assertions passed.", n_run))
        return Verdict(_S.PASS, expected=_assertions_hold(n_run),
                       got=_("{passed}/{n} passed").format(passed=passed, n=n_run),
                       reason=every.format(n=n_run, entry=plan_entry), details=details, **base)
    first = next((r for r in outcome.results if not r.passed), None)
    if first is not None:
        got = first.error or first.got
        expected = first.expected if first.expected is not None else "true"
        if first.error:
            what = f"`{first.source}` {first.error}"
        elif first.expected is not None:
            what = _("`{source}` got {got}, expected {expected}").format(
                source=first.source, got=first.got, expected=first.expected)
        else:
            what = _("`{source}` got {got}").format(source=first.source, got=first.got)
        reason = ngettext("{failed} of {n} test assertion failed; first: {what}.",
                          "{failed} of {n} test assertions failed; first: {what}.",
                          n_run).format(failed=n_run - passed, n=n_run, what=what)
    else:
        got, expected = None, _assertions_hold(total)
        reason = _("No test assertion ran to completion.")
    if not outcome.completed and outcome.problem:
        reason += " " + _("Then {problem}.").format(problem=outcome.problem)
    if outcome.load_error and passed < max(n_run, 1):
        reason += " " + _("(The code raised {error} while loading.)").format(
            error=outcome.load_error)
    return Verdict(_S.FAIL, expected=expected, got=got, reason=reason, details=details, **base)


def _code_verdict(code: CodeBlock, tests: str, entry_point: str | None,
                  timeout_s: float, secrets: Sequence[str]) -> Verdict:
    try:
        plan = build_test_plan(tests, code.code, entry_point)
    except TestFormatError as exc:
        return Verdict(_S.ERROR, kind="code",
                       reason=_("The tests could not be prepared: {why}.").format(why=exc))
    run = run_code(code.code, limits=Limits(timeout_s=timeout_s), judge=judge_with(plan),
                   secret_paths=secrets)
    base = _base(run, "code")
    total = len(plan.asserts)
    expected = ngettext("the {n} test passes", "all {n} tests pass", total).format(n=total)
    if run.error or run.timed_out:
        failure = _run_failure(run, timeout_s)
        assert failure is not None
        return Verdict(failure[0], reason=failure[1], expected=expected, **base)
    # Once the tests have their answers, how the process ended does not matter (it is
    # killed if it does not leave when told); before that, an early end is an error.
    broken = _broken_verdict(run, expected, base)
    if broken is not None:
        return broken
    outcome = run.judged
    if not isinstance(outcome, TestOutcome):
        return Verdict(_S.ERROR, expected=expected, reason=_("The tests did not run."), **base)
    if outcome.syntax_error is not None:
        return Verdict(_S.ERROR, expected=expected, reason=_(
            "The code does not parse: {error}.").format(error=outcome.syntax_error), **base)
    if outcome.entry_error is not None:
        return Verdict(_S.ERROR, expected=expected, reason=_(
            "Cannot tell which function the tests check: {why}.").format(
            why=outcome.entry_error), **base)
    if outcome.shape_error is not None:
        return Verdict(_S.ERROR, expected=expected, reason=_(
            "This test shape cannot be checked safely: {why}.").format(
            why=outcome.shape_error), **base)
    return _outcome_verdict(outcome, plan.entry_point, total, base)


def _program_answer(text: str, timeout_s: float, secrets: Sequence[str], finish: str | None
                    ) -> tuple[FinalAnswer | None, RunResult | None, str]:
    """When the reply marks no final answer: run its last Python block (an unclosed one
    only if the model ended the reply itself), and read the last line *the program*
    printed (never a note of ours: a cut-off output has no known last line) as one
    answer."""
    code = extract_code(text)
    if code is None or len(code.code) > MAX_CODE_CHARS \
            or not (code.closed or str(finish) == REPLY_ENDED):
        return None, None, ""
    unclosed = "" if code.closed else " " + _(UNCLOSED_NOTE)
    run = run_code(code.code, limits=Limits(timeout_s=timeout_s), secret_paths=secrets)
    line = _last_line(run.program_stdout)
    if run.stdout_truncated:
        return None, run, " " + _("(The program's output was too long to read an answer from.)")
    if not line or run.timed_out or run.exit_code or run.signal or run.output_exceeded:
        return None, run, unclosed
    marked = extract_answer(line)
    if marked is not None and not marked.low_confidence:  # "The answer is 56"
        return FinalAnswer(marked.text, "program-output", marked.number, flaws=marked.flaws,
                           raw=marked.raw), run, unclosed
    return FinalAnswer(line, "program-output", answer_value(line), flaws=answer_flaws(line),
                       raw=line), run, unclosed


# where an answer was read (marked here, translated where a sentence takes them in)
_SOURCES = {"boxed": N_("from \\boxed{}"), "gsm8k": N_("from the '####' line"),
            "answer-is": N_("from the final-answer line"), "whole-reply": N_("the whole reply"),
            "program-output": N_("printed by its code"),
            "last-number": N_("the last number in the reply")}
_DIED_BECAUSE = {"SIGSEGV": N_("it crashed (segmentation fault)"), "SIGKILL": N_("it was killed"),
                 "SIGXCPU": N_("it used up its CPU time"), "SIGABRT": N_("it aborted"),
                 "SIGBUS": N_("it crashed (bus error)"),
                 "SIGSYS": N_("it made a forbidden system call")}
_NO_MARKER = N_("No final answer found: no \\boxed{…}, no '#### …' line, no 'the answer is …', "
                "and no number.")


def _seconds(value: float) -> str:
    """A time limit as a sentence shows it: ``5``, ``0.5`` (``0,5`` in German)."""
    shown = f"{value:g}"
    return number(value, len(shown.split(".")[1]) if "." in shown and "e" not in shown else 0)


def _math_verdict(text: str, expected: str, timeout_s: float, secrets: Sequence[str],
                  finish: str | None) -> Verdict:
    run: RunResult | None = None
    note = ""
    cut = _cut(finish)
    if cut:  # judged only on a final answer marked whole before the cut (never a reading)
        answer = cut_off_answer(text)
        if answer is None:
            return Verdict(_S.NO_ANSWER, expected=expected.strip(), kind="math",
                           reason=_("No answer: {cut} before a final answer.").format(cut=cut))
        note = " " + _("{Cut} after this answer; it is judged as written.").format(
            Cut=_sentence(cut))
    else:
        answer = extract_answer(text)
        if answer is None or answer.low_confidence:
            printed, run, note = _program_answer(text, timeout_s, secrets, finish)
            answer = printed or answer
    extra: dict[str, Any] = {}
    if run is not None:
        extra = dict(stdout=run.stdout, stderr=run.stderr, duration_s=run.duration_s,
                     isolation=_isolation(run))
    if answer is None:
        return Verdict(_S.NO_ANSWER, expected=expected.strip(), kind="math",
                       reason=_(_NO_MARKER) + note, **extra)
    source = _(_SOURCES[answer.source])
    if answer.empty:
        return Verdict(_S.NO_ANSWER, expected=expected.strip(), kind="math",
                       reason=_empty_answer(source) + note, **extra)
    comparison = compare_answers(expected, answer)
    if answer.low_confidence and comparison.equal:
        # A number no marker points to is a reading, not an answer: it can fail a reply
        # ("Hmm, 48?") but never pass one ("somewhere between 50 and 56").
        return Verdict(_S.NO_ANSWER, expected=comparison.expected, got=comparison.got,
                       # TRANSLATORS: {{…}} is written \boxed{…} (braces doubled for format)
                       reason=_("No final answer marked (no \\boxed{{…}}, no '#### …' line, no "
                                "'the answer is …'). Low confidence: the last number in the "
                                "reply, {got}, matches the answer key, but a number without a "
                                "final-answer marker is not counted as an answer.").format(
                           got=comparison.got) + note,
                       low_confidence=True, kind="math", **extra)
    shown = f" ({comparison.note})" if comparison.note else ""
    got = comparison.got if len(comparison.got) <= 200 else comparison.got[:199] + "…"
    if comparison.rejected:
        verdict = _S.FAIL
        reason = _("Not one answer: '{got}' ({source}) {why}; one final answer is needed "
                   "(expected {key}).").format(got=got, source=source, why=comparison.rejected,
                                               key=comparison.expected)
    elif not comparison.decided:
        verdict = _S.ERROR
        reason = _("Could not compare '{got}' ({source}) with the answer key {key}: {why}. "
                   "Not counted as a pass.").format(got=got, source=source,
                                                   key=comparison.expected, why=comparison.note)
    elif comparison.equal:
        reason = _("Correct: {got} ({source}) matches the answer key{note}.").format(
            got=got, source=source, note=shown)
        verdict = _S.PASS
    else:
        reason = _("Wrong: expected {key}, got {got} ({source}).").format(
            key=comparison.expected, got=got, source=source)
        verdict = _S.FAIL
    low = answer.low_confidence
    caveat = (" " + _("Low confidence: the reply states no explicit final answer.")) if low else ""
    return Verdict(verdict, expected=comparison.expected, got=comparison.got,
                   reason=reason + caveat + note, low_confidence=low, kind="math", **extra)


def _find_code(text: str, finish: str | None) -> CodeBlock | None:
    """The last Python block, or a reply that is nothing but a program (unfinished, like
    an unclosed block, when the reply was cut off)."""
    code = extract_code(text)
    if code is None and looks_like_bare_code(text):
        code = CodeBlock("", "", text if text.endswith("\n") else text + "\n",
                         not is_cut_off(finish))
    return code


def _unrunnable(code: CodeBlock, finish: str | None) -> str | None:
    """Why the chosen block is not run, if it is not. An unclosed block is run only when
    the model ended the reply itself (then it is the model's final code)."""
    if not code.closed and str(finish) != REPLY_ENDED:
        cut = _cut(finish)
        if cut:
            return _("The last code block never ends: {cut} inside it; an unfinished program "
                     "is not run.").format(cut=cut)
        return _("The last code block never ends (no closing fence, and how the reply ended "
                 "is not known); an unfinished program is not run.")
    if len(code.code) > MAX_CODE_CHARS:
        return _("The last code block is {size} KB long; at most {limit} KB of code is "
                 "run.").format(size=len(code.code) // 1000, limit=MAX_CODE_CHARS // 1000)
    return None


def _noting_unclosed(verdict: Verdict, code: CodeBlock) -> Verdict:
    """The verdict of a run block, saying so when its fence never closed."""
    if code.closed:
        return verdict
    return replace(verdict, reason=f"{verdict.reason} {_(UNCLOSED_NOTE)}".strip())


def _verify(reply: str | Visible, problem: Problem | None, expect: str | None,
            tests: str | None, timeout_s: float, secrets: Sequence[str],
            entry_point: str | None, finish: str | None) -> Verdict:
    kind = problem.kind if problem is not None else None
    if expect is not None and not expect.strip():
        expect = None  # a blank key checks nothing: the reply is read as a free one
    if tests is None and problem is not None and problem.kind == "code":
        tests = problem.tests
    if expect is None and problem is not None and problem.kind == "math":
        expect = problem.answer
    if tests is not None:
        kind = "code"
    elif expect is not None:
        kind = "math"
    size = len(reply.text if isinstance(reply, Visible) else reply)
    if size > MAX_REPLY_CHARS:
        return Verdict(_S.ERROR, kind=kind or "open",
                       reason=_("The reply is {size} MB long; replies over {limit} MB are not "
                                "checked.").format(size=number(size / 1e6, 1),
                                                   limit=MAX_REPLY_CHARS // 1_000_000))

    visible = (Visible(reply.text.strip(), reply.still_thinking, reply.had_thinking)
               if isinstance(reply, Visible) else strip_thinking(reply))
    cut = _cut(finish)
    if visible.still_thinking:
        reason = (_("No answer (still thinking): {cut} inside its thinking, before any "
                    "answer.").format(cut=cut) if cut else
                  _("No answer (still thinking): the reply ended inside its thinking, before "
                    "any answer."))
        return Verdict(_S.NO_ANSWER, expected=expect if kind == "math" else None,
                       kind=kind or "open", reason=reason)
    text = visible.text

    if tests is not None:
        code = _find_code(text, finish)
        if code is None:
            return Verdict(_S.NO_ANSWER, kind="code", expected=_("code that passes the tests"),
                           reason=_("No Python code found in the reply (looked for the last "
                                    "```python block, or an unlabelled block that parses as "
                                    "Python).") + (f" {_sentence(cut)}." if cut else ""))
        why_not = _unrunnable(code, finish)
        if why_not:
            return Verdict(_S.NO_ANSWER if not code.closed else _S.ERROR, kind="code",
                           expected=_("code that passes the tests"), reason=why_not)
        entry = entry_point or (problem.entry_point if problem is not None else None)
        return _noting_unclosed(_code_verdict(code, tests, entry, timeout_s, secrets), code)
    if expect is not None:
        return _math_verdict(text, expect, timeout_s, secrets, finish)

    code = _find_code(text, finish)
    unverifiable = problem is not None and not problem.verifiable
    if code is not None:
        why_not = _unrunnable(code, finish)
        if why_not:
            return Verdict(_S.NO_ANSWER if not code.closed else _S.ERROR,
                           kind=kind or "code", reason=why_not)
        note = (_("This prompt is unverifiable: there is no ground truth.")
                if unverifiable else _("Free prompt: no answer key or tests."))
        return _noting_unclosed(_run_verdict(
            code, timeout_s, "code" if problem is None else (kind or "open"), note, secrets),
            code)
    if unverifiable:
        return Verdict(_S.NO_ANSWER, kind=kind or "open",
                       reason=_("Unverifiable: this prompt has no ground truth to check "
                                "against (nothing to run, nothing to compare)."))
    return _free_verdict(text, kind or "open", cut)


def _empty_answer(source: str) -> str:
    return _("No answer: the reply marks its final answer ({source}) but leaves it "
             "empty.").format(source=source)


def _free_verdict(text: str, kind: str, cut: str) -> Verdict:
    """A free prompt's reply with no code: its final answer, if it states one, with
    nothing to check it against."""
    answer = cut_off_answer(text) if cut else extract_answer(text)
    if answer is None or answer.low_confidence:
        reason = (_("No answer: {cut} before a final answer.").format(cut=cut) if cut else
                  _("No final answer found (no \\boxed{…}, no '#### …' line, no 'the answer "
                    "is …'), and no answer key or code to check."))
        return Verdict(_S.NO_ANSWER, kind=kind, reason=reason)
    source = _(_SOURCES[answer.source])
    if answer.empty:
        return Verdict(_S.NO_ANSWER, kind=kind, reason=_empty_answer(source))
    after = (" " + _("{Cut} after this answer.").format(Cut=_sentence(cut))) if cut else ""
    return Verdict(_S.ANSWERED, kind=kind, got=answer.display(),
                   reason=_("The reply's final answer ({source}), with no answer key to check "
                            "it against.").format(source=source) + after)


def verify_reply(
    reply: str | Visible,
    problem: Problem | None = None,
    *,
    expect: str | None = None,
    tests: str | None = None,
    timeout_s: float = 5.0,
    secret_paths: Sequence[str] = (),
    entry_point: str | None = None,
    finish: str | None = None,
) -> Verdict:
    """Check one reply. Blocks while model code runs (up to *timeout_s* plus ~1 s):
    call it from a worker thread, never the GUI thread.

    * *tests* (or a code problem's hidden tests): run the reply's last Python block
      against them (the code in the sandbox, the tests here);
    * *expect* (or a math problem's answer key): compare the reply's final answer;
    * an unverifiable problem or a free prompt: run the code if there is any
      (verdict ``ran``); else a free prompt's final answer is ``answered`` (found, with no
      key to check it), and no final answer is ``no-answer``.

    *finish*: how the reply ended, the engine's finish reason (``FinishReason`` values:
    ``stop`` when the model ended it; ``length``, ``cancelled``, ``error`` when it was cut
    off); None when not known (a saved file). A last code block that never closes is run
    only after ``stop`` (the verdict says the fence was unclosed). A cut-off reply is
    judged only on a final answer it marked (``\\boxed{}``, ``####``, "the answer is")
    and wrote whole before the cut; without one it has no answer (never a number from the
    middle of its working). An empty or blank *expect* is no key.

    *reply*: a :class:`Visible` is the answer the engine already split from the thinking
    (as a pane and rollouts hold it), with whether the reply ended still thinking, so it is
    not parsed for ``<think>`` again: an answer that mentions ``<think>`` is still an
    answer. A ``str`` is a whole reply as a file holds it (``triptych verify``), split with
    the engine's own splitter first.

    *entry_point*: the function a ``def check(candidate)`` test receives (else the
    problem's; else the tests' own ``check(name)`` call; else the reply's one function
    that can be meant, and an ``error`` verdict when several can, or when its name is also
    a built-in, a standard-library module or a name the tests define or use).

    *secret_paths*: files the model's code must not read (a tests file on disk), on top
    of what the sandbox always hides (site-packages, the app and its practice sets, home
    directories), where the OS allows it.

    Always returns a verdict (an unexpected failure is an ``error`` verdict with one
    sentence), with every text escaped for terminals, windows and JSON.
    """
    try:
        verdict = _verify(reply, problem, expect, tests, timeout_s, tuple(secret_paths),
                          entry_point, finish)
    except Exception as exc:  # noqa: BLE001 - one sentence, never a traceback
        # Only the type's name: an exception's text may be text the reply chose.
        verdict = Verdict(_S.ERROR, reason=_(
            "Verify failed unexpectedly ({error}); this is a fault in the checker, not a "
            "verdict on the reply.").format(error=type(exc).__name__))
    return verdict.escaped()
