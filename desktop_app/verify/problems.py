"""The practice data model: a problem with its answer key, and a set of them.

Kept apart from the loaders (:mod:`desktop_app.verify.practice`,
:mod:`desktop_app.verify.benchmarks`) so both can build these without importing each
other. No Qt, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from desktop_app.text.i18n import _

KINDS = ("math", "code", "open")
# What a prepared prompt (a lesson pack's) may set in every pane when it is picked, and the
# type each value has: the pane settings a teacher fixes for a demonstration.
PROMPT_SETTINGS: dict[str, type] = {
    "temperature": float, "max_tokens": int, "seed": int, "thinking": bool,
    "system_prompt": str,
}
TYPED_KEY_ID = "typed-key"  # the id of a free question's key typed in the window


class PracticeError(ValueError):
    """A practice file is malformed, or a set cannot be found or read."""


@dataclass(frozen=True)
class Problem:
    """One practice problem. ``verifiable`` is False for prompts with no ground truth.

    Problems from a benchmark also carry their ``source_id`` (the benchmark's own id),
    the benchmark's reference ``solution`` (so extraction can be measured on it), and
    ``level``/``subject`` where the benchmark grades its problems."""

    id: str
    title: str
    prompt: str
    kind: str  # math | code | open
    answer: str | None = None
    tests: str | None = None
    verifiable: bool = True
    entry_point: str | None = None
    set_name: str = ""
    notes: str = ""
    source_id: str = ""
    solution: str = ""
    level: str = ""
    subject: str = ""
    settings: tuple[tuple[str, object], ...] = ()  # a prepared prompt's pane settings

    @property
    def typed(self) -> bool:
        """A key the user typed for a free question (:func:`typed_key`), not a practice
        problem."""
        return self.id == TYPED_KEY_ID


def typed_key(prompt: str, answer: str) -> Problem:
    """A free question with the answer key the user typed (the window's Answer key
    field): a math problem of its own, so Verify, Rollouts ×N and retries check against it
    as they do against a practice problem's key."""
    return Problem(id=TYPED_KEY_ID, title=_("Typed answer key"), prompt=prompt.strip(),
                   kind="math", answer=answer.strip())


@dataclass(frozen=True)
class PracticeSet:
    """A set of problems. Benchmark sets also say where they come from and under which
    licence (``source``, ``licence``, ``attribution``), how a shipped subset was chosen
    (``selection``), where the full set lives on the Hub (``hub_repo``/``hub_file``) and
    how large it is (``full_size``); ``complete`` is True for a whole benchmark."""

    name: str
    problems: list[Problem] = field(default_factory=list)
    description: str = ""
    path: str = ""
    key: str = ""
    format: str = ""  # the benchmark's record format (gsm8k, math500…); "" for our own TOML
    source: str = ""
    licence: str = ""
    attribution: str = ""
    selection: str = ""
    hub_repo: str = ""
    hub_file: str = ""
    full_size: int | None = None
    complete: bool = False

    def get(self, problem_id: str) -> Problem:
        for problem in self.problems:
            if problem.id == problem_id:
                return problem
        raise KeyError(problem_id)

    @property
    def levels(self) -> list[str]:
        """The difficulty levels present, in order (empty if the set has none)."""
        return sorted({p.level for p in self.problems if p.level})
