"""The outcome of verifying one reply: a state from one enum, with one label table."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import StrEnum
from typing import Any, NamedTuple

from desktop_app.text.escape import visible_controls
from desktop_app.text.i18n import NC_, _, pgettext


class VerdictState(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"
    TIMEOUT = "timeout"
    NO_ANSWER = "no-answer"
    RAN = "ran"
    ANSWERED = "answered"  # a final answer was found, but there is no key to check it


class VerdictLabel(NamedTuple):
    """How a state reads. ``note``: a state whose finding is the answer itself says so in
    its headline (``• Answer found: 4 · no key to check against``)."""

    symbol: str
    label: str
    note: str = ""


# state -> symbol, label, note: the one table the window, the CLI and export read. The
# words are marked (N_) and translated where they are read (:func:`verdict_label`): the
# language is chosen after import. The state's value ("pass") is a field, never a word.
VERDICT_LABELS: dict[VerdictState, VerdictLabel] = {
    # TRANSLATORS: a verdict's label, lower case; a title capitalises it ("✓ Passed")
    VerdictState.PASS: VerdictLabel("✓", NC_("verdict", "passed")),
    VerdictState.FAIL: VerdictLabel("✗", NC_("verdict", "failed")),
    VerdictState.ERROR: VerdictLabel("!", NC_("verdict", "error")),
    VerdictState.TIMEOUT: VerdictLabel("⏱", NC_("verdict", "timed out")),
    VerdictState.NO_ANSWER: VerdictLabel("–", NC_("verdict", "no answer")),
    VerdictState.RAN: VerdictLabel("▶", NC_("verdict", "ran, nothing to check against")),
    VerdictState.ANSWERED: VerdictLabel("•", NC_("verdict", "answer found"),
                                        NC_("verdict", "no key to check against")),
}

VERDICTS = tuple(state.value for state in VerdictState)
HEADLINE_ANSWER_CHARS = 80  # an answer in a headline is cut to this many characters


def verdict_label(state: VerdictState | str) -> VerdictLabel:
    """The state's symbol, label and note in the current language (an unknown state reads
    ``? <state>``)."""
    try:
        symbol, label, note = VERDICT_LABELS[VerdictState(state)]
    except ValueError:
        return VerdictLabel("?", str(state))
    return VerdictLabel(symbol, pgettext("verdict", label),
                        pgettext("verdict", note) if note else "")


_label = verdict_label


def verdict_title(state: VerdictState | str) -> str:
    """``✓ Passed``: the symbol and label from the one table, as a title (the window, the
    rollouts figures and export all show this); an unknown state reads ``? <state>``."""
    symbol, label, note = _label(state)
    return f"{symbol} {label[:1].upper()}{label[1:]}" + (f" · {note}" if note else "")


def verdict_headline(state: VerdictState | str, got: str | None = None) -> str:
    """The verdict's first line: its title, with the answer inside it where the answer is
    the finding (``• Answer found: 4 · no key to check against``); else :func:`verdict_title`
    and *got* stays in the small print (``expected 5 · got 4``)."""
    symbol, label, note = _label(state)
    answer = " ".join((got or "").split())
    if not note or not answer:
        return verdict_title(state)
    if len(answer) > HEADLINE_ANSWER_CHARS:
        answer = answer[:HEADLINE_ANSWER_CHARS - 1] + "…"
    return _("{symbol} {label}: {answer} · {note}").format(
        symbol=symbol, label=f"{label[:1].upper()}{label[1:]}", answer=answer, note=note)


def got_in_headline(state: VerdictState | str, got: str | None) -> bool:
    """Whether :func:`verdict_headline` already shows *got* (so the small print does not)."""
    return bool(_label(state).note and (got or "").strip())


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
    isolation: str = field(default_factory=lambda: _("No code was run."))
    low_confidence: bool = False
    kind: str = "open"  # math | code | open
    details: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.verdict = VerdictState(self.verdict)

    @property
    def symbol(self) -> str:
        return VERDICT_LABELS[self.verdict].symbol

    @property
    def label(self) -> str:
        return verdict_label(self.verdict).label

    @property
    def headline(self) -> str:
        """``✗ Failed``, ``• Answer found: 4 · no key to check against``."""
        return verdict_headline(self.verdict, self.got)

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
