"""Verify: check a model's reply against ground truth (math answers, code tests).

The public API (no Qt anywhere; call :func:`verify_reply` from a worker thread)::

    from desktop_app.verify import verify_reply, Verdict, VerdictState, isolation_summary, \\
        load_practice_sets, Problem

    verdict = verify_reply(reply_text, problem, expect=None, tests=None, timeout_s=5.0,
                           finish="stop")  # how the reply ended: the engine's finish reason
    verdict.verdict   # a VerdictState: pass | fail | error | timeout | no-answer | ran | answered
"""

from desktop_app.verify.checker import verify_reply
from desktop_app.verify.extract import Visible
from desktop_app.verify.judge import TestFormatError, build_test_plan
from desktop_app.verify.practice import (
    PracticeError,
    PracticeSet,
    Problem,
    find_problem,
    load_practice_sets,
)
from desktop_app.verify.sandbox import Limits, Protections, detect_protections, isolation_summary
from desktop_app.verify.verdict import VERDICT_LABELS, Verdict, VerdictState, verdict_label

__all__ = [
    "VERDICT_LABELS",
    "Limits",
    "PracticeError",
    "PracticeSet",
    "Problem",
    "Protections",
    "TestFormatError",
    "Verdict",
    "VerdictState",
    "Visible",
    "build_test_plan",
    "detect_protections",
    "find_problem",
    "isolation_summary",
    "load_practice_sets",
    "verdict_label",
    "verify_reply",
]
