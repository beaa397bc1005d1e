"""The outcome of verifying one reply: a state from one enum, with one label table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any

from desktop_app.text.escape import visible_controls


class VerdictState(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"
    RAN = "ran"


# state -> (symbol, label): the one table the window, the CLI and export read.
VERDICT_LABELS: dict[VerdictState, tuple[str, str]] = {
    VerdictState.PASS: ("✓", "passed"),
    VerdictState.FAIL: ("✗", "failed"),
    VerdictState.ERROR: ("!", "error"),
    VerdictState.TIMEOUT: ("⏱", "timed out"),
    VerdictState.NO_ANSWER: ("–", "no answer"),
    VerdictState.RAN: ("▶", "ran, nothing to check against"),
}

VERDICTS = tuple(state.value for state in VerdictState)


def verdict_title(state: VerdictState | str) -> str:
    """``✓ Passed``: the symbol and label from the one table, as a title (the window, the
    rollouts figures and export all show this); an unknown state reads ``? <state>``."""
    try:
        symbol, label = VERDICT_LABELS[VerdictState(state)]
    except ValueError:
        symbol, label = "?", str(state)
    return f"{symbol} {label[:1].upper()}{label[1:]}"


@dataclass
class Verdict:
    """The outcome of verifying one reply (what the Verify button and the CLI show).

    Every text field may carry what the model's code printed; :meth:`escaped` returns a
    copy in which control characters, bidi overrides and lone surrogates are shown as
    escapes (``verify_reply`` always returns that copy)."""

    verdict: VerdictState
    expected: str | None = None
    got: str | None = None
    stdout: str = ""
    stderr: str = ""
    duration_s: float = 0.0
    reason: str = ""
    isolation: str = "No code was run."
    low_confidence: bool = False
    kind: str = "open"  # math | code | open
    details: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verdict = VerdictState(self.verdict)

    @property
    def symbol(self) -> str:
        return VERDICT_LABELS[self.verdict][0]

    @property
    def label(self) -> str:
        return VERDICT_LABELS[self.verdict][1]

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verdict"] = self.verdict.value
        return data

    def escaped(self) -> Verdict:
        """A copy safe for a terminal, a window and JSON."""
        changes: dict[str, Any] = {}
        for item in fields(self):
            current = getattr(self, item.name)
            if isinstance(current, str) and item.name != "verdict":
                changes[item.name] = visible_controls(current)
            elif isinstance(current, list):
                changes[item.name] = [visible_controls(str(line)) for line in current]
        data = {item.name: getattr(self, item.name) for item in fields(self)}
        data.update(changes)
        return Verdict(**data)
