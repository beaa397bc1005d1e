"""A turn of a pane's conversation as plain data: the prompt, the reply so far, its result
and verdict, and the conversation's history of turns.

The window, export, Verify and the command line read these; none of them keeps its own copy
of what a model said. No Qt here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from desktop_app.engine.prompting import Turn as Exchange
from desktop_app.engine.protocol import (
    FAILURE_LABELS,
    Failed,
    FailureKind,
    FinishReason,
    GenerationResult,
    Loaded,
    PromptToken,
    ended_still_thinking,
)
from desktop_app.session.tokens import (
    Branches,
    TokenStep,
    tokens_export,
)
from desktop_app.text.i18n import N_, _, ngettext, whole
from desktop_app.text.units import format_duration
from desktop_app.verify import Problem, Verdict
from desktop_app.verify.extract import Visible

# ------------------------------------------------------------------------------- turns


class TurnState(StrEnum):
    """Where one turn is; the pane's footer and the turn's view follow it."""

    STARTING = "starting"  # sent; the model process is starting or loading
    THINKING = "thinking"  # the reply so far is thinking
    ANSWERING = "answering"  # the answer is streaming
    DONE = "done"  # Finished arrived (``result.finish_reason`` says how)
    FAILED = "failed"  # Failed arrived, or the turn could not start


# marked here, translated where they are shown (_(TURN_STATE_LABELS[state]))
TURN_STATE_LABELS: dict[TurnState, str] = {
    TurnState.STARTING: N_("Loading…"),
    TurnState.THINKING: N_("Thinking…"),
    TurnState.ANSWERING: N_("Generating…"),
    TurnState.DONE: N_("Done"),
    TurnState.FAILED: N_("Failed"),
}


@dataclass
class Turn:
    """One prompt and the model's reply, as data (the widgets only draw it)."""

    prompt: str
    problem: Problem | None = None  # a practice problem: Verify checks against its key
    prompt_sent: str = ""
    prompt_notes: tuple[str, ...] = ()  # how the prompt was adapted to the model
    # each prompt this turn sent (a branch sends its own), as the model's tokens, by its text
    prompt_tokens: dict[str, tuple[PromptToken, ...]] = field(default_factory=dict)
    thinking: str = ""
    answer: str = ""
    result: GenerationResult | None = None
    failure: Failed | None = None
    verdict: Verdict | None = None
    state: TurnState = TurnState.STARTING
    loading_detail: str = field(default_factory=lambda: _("starting"))
    loaded: Loaded | None = None
    thinking_tokens: int = 0
    answer_tokens: int = 0
    elapsed_s: float = 0.0  # the model process's clock since the generation started
    thinking_s: float | None = None  # how long it thought (same clock)
    has_thinking: bool = False  # the reply has (or starts in) a thinking part
    started_at: float = 0.0  # time.monotonic() when sent: the window's clock between tokens
    max_tokens: int = 0  # the token limit it was sent with (each Continue adds to it)
    probabilities: bool = False  # it was sent asking for token probabilities
    token_steps: list[TokenStep] = field(default_factory=list)  # with probabilities
    reply_prompt: str = ""  # the prompt the first reply continued (branches extend it)
    starts_in_thinking: bool = False  # that prompt ends inside thinking
    thinking_format: str = "none"  # how the reply is split (the model's, unless raw)
    branched_at: tuple[int, str] | None = None  # (token index, chosen text) of this branch
    branches: Branches = field(default_factory=lambda: Branches([]))  # the fields: one
    continue_error: str = ""  # why the last Continue failed (the reply before it is kept)

    @property
    def done(self) -> bool:
        return self.state in (TurnState.DONE, TurnState.FAILED)

    @property
    def thinking_live(self) -> bool:
        return self.state == TurnState.THINKING

    @property
    def tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.result.finish_reason if self.result is not None else None

    @property
    def still_thinking(self) -> bool:
        """The reply ended inside its thinking (token limit, Stop, no ``</think>``): the
        model never got to its answer, so the thinking is not "done"."""
        return self.result is not None and ended_still_thinking(
            self.result, has_thinking=self.has_thinking, answer=self.answer)

    @property
    def cut_off(self) -> bool:
        """The token limit ended the reply: Continue can extend it."""
        return self.state == TurnState.DONE and self.finish_reason == FinishReason.LENGTH

    def room_to_continue(self, context_length: int) -> bool:
        """Cut off with room left in the model's context for more of the reply."""
        used = (self.result.prompt_tokens if self.result is not None else 0) + self.tokens
        return self.cut_off and max(used, self.max_tokens) + 1 < context_length

    def elapsed_now(self, now: float | None = None) -> float:
        """Seconds since the turn started, ticking between slow tokens: the window's clock,
        never less than the model process's last figure (which replaces it at the end)."""
        if self.done or not self.started_at:
            return self.elapsed_s
        return max(self.elapsed_s, (now if now is not None else time.monotonic())
                   - self.started_at)

    def thinking_header(self, *, live: bool = False, now: float | None = None) -> str:
        """The thinking fold's header for this turn (see :func:`thinking_header`)."""
        seconds = self.thinking_s
        if live and self.state == TurnState.THINKING:
            seconds = self.elapsed_now(now)
        return thinking_header(live, seconds, self.thinking_tokens,
                               still_thinking=self.still_thinking,
                               finish_reason=self.finish_reason)

    def visible_reply(self) -> Visible:
        """What Verify reads: the answer the engine split off, and whether the reply ended
        still thinking (so Verify says so rather than checking nothing)."""
        return Visible(self.answer, still_thinking=self.still_thinking,
                       had_thinking=self.has_thinking)

    @property
    def failure_label(self) -> str:
        """``Out of memory``, ``Could not load the model``… (empty unless failed)."""
        if self.failure is None:
            return ""
        return FAILURE_LABELS.get(FailureKind(self.failure.kind), "Failed")

    def counts_as_history(self) -> bool:
        """Whether a follow-up question sees this exchange (a failed turn is left out)."""
        return (self.state == TurnState.DONE and self.result is not None
                and self.result.finish_reason != FinishReason.ERROR
                and bool(self.answer.strip() or self.thinking))

    def to_dict(self) -> dict[str, Any]:
        """The turn for export: what was asked, sent, thought and answered, and its verdict."""
        result = self.result
        return {
            "prompt": self.prompt,
            "prompt_sent": self.prompt_sent, "prompt_notes": list(self.prompt_notes),
            "thinking": self.thinking,
            "thinking_s": self.thinking_s,
            "thinking_tokens": self.thinking_tokens,
            "thinking_unterminated": bool(result and result.thinking_unterminated),
            "answer": self.answer,
            "answer_tokens": self.answer_tokens,
            "finish_reason": str(result.finish_reason) if result else None,
            "metrics": result.metrics_line() if result else "",
            "error": self.failure.message if self.failure else None,
            "still_thinking": self.still_thinking,
            "verdict": (str(self.verdict.verdict) if self.verdict is not None else None),
            "verdict_detail": None if self.verdict is None else {  # as plain strings
                key: str(getattr(self.verdict, key, "") or "") for key in ("expected", "got", "reason")},
            **tokens_export(self.token_steps, self.branches, self.branched_at),
        }


def thinking_header(live: bool, seconds: float | None, tokens: int, *,
                    still_thinking: bool = False,
                    finish_reason: FinishReason | str | None = None) -> str:
    """``Thinking… 5 s · 120 tokens`` while live, ``Thought for 14 s · 812 tokens`` after,
    and, when the reply ended before the thinking did, says so: ``Still thinking when the
    token limit was reached · 812 tokens``. One wording for the window and the export."""
    secs = "—" if seconds is None else format_duration(seconds)  # never "0 s": "<1 s"
    toks = ngettext("{n} token", "{n} tokens", tokens).format(n=whole(tokens))
    if live:
        return _("Thinking… {time} · {tokens}").format(time=secs, tokens=toks)
    if still_thinking:
        if finish_reason == FinishReason.LENGTH:
            return _("Still thinking when the token limit was reached · {tokens}").format(
                tokens=toks)
        if finish_reason == FinishReason.CANCELLED:
            return _("Stopped while still thinking · {tokens}").format(tokens=toks)
        return _("Still thinking when the reply ended (its thinking never closed) · "
                 "{tokens}").format(tokens=toks)
    if seconds is None:  # a branch: its thinking was written in two runs
        return _("Thought · {tokens}").format(tokens=toks)
    return _("Thought for {time} · {tokens}").format(time=secs, tokens=toks)


@dataclass
class Conversation:
    """A pane's turns in order; the history a new request carries is derived from them."""

    turns: list[Turn] = field(default_factory=list)

    def add(self, prompt: str, problem: Any = None, *, at: int | None = None) -> Turn:
        """A new turn at the end, or at index ``at`` (a retried turn keeps its place)."""
        turn = Turn(prompt=prompt, problem=problem)
        self.turns.insert(len(self.turns) if at is None else at, turn)
        return turn

    def remove(self, turn: Turn) -> None:
        if turn in self.turns:
            self.turns.remove(turn)

    def clear(self) -> None:
        self.turns.clear()

    @property
    def current(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def history(self, before: Turn | None = None) -> tuple[Exchange, ...]:
        """The earlier exchanges a request for ``before`` (default: a new turn) carries."""
        turns = self.turns
        if before is not None and before in turns:
            turns = turns[: turns.index(before)]
        return tuple(Exchange(user=t.prompt, assistant=t.answer)
                     for t in turns if t.counts_as_history())
