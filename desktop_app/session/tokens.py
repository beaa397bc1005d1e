"""Token probabilities as data: what the window tints, the CLI prints and branching reads.

The engine attaches a :class:`~desktop_app.engine.protocol.TokenLogprob` to each Delta when a
request asks for ``top_logprobs``; this module turns those into the records the CLI and
export write (``{text, logprob, top: [{text, logprob}]}``), the probability bands the
window tints by, and the exact text a branch is sent as: the prompt the model received,
the reply's tokens up to the branch point and the chosen token, continued raw, so the
model carries on from precisely there.

No Qt in this module.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from desktop_app.engine.protocol import (
    Delta,
    Event,
    Failed,
    Finished,
    GenerationRequest,
    GenerationResult,
    PromptSent,
    Sampling,
    TokenLogprob,
)
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.sources import RemoteSource
from desktop_app.text.i18n import N_, _
from desktop_app.text.thinking import THINKING, ThinkingSplitter

TOP_K = 5  # alternatives asked for when a pane shows probabilities
EXPLORER_ROWS = 20  # tokens the explorer names (its lab reshapes every token's figure)

# Probability bands, most likely first: the window tints a token by the band it falls in
# (a calm scale: a likely token is barely tinted, an unlikely one stands out).
BAND_FLOORS: tuple[float, ...] = (0.9, 0.6, 0.3, 0.1, 0.0)
# (these texts are marked here and translated where they are shown: _(NOT_OFFERED))
BAND_LABELS: tuple[str, ...] = (N_("90% or more"), "60–90%", "30–60%", "10–30%", N_("under 10%"))

NOT_OFFERED = N_("Token probabilities: not offered by this server.")
NOT_RECORDED = N_("Token probabilities: none were recorded for this reply.")


def probability(logprob: float) -> float:
    """exp(logprob), clamped to [0, 1] (a rounding error never makes it 1.0000001)."""
    return min(1.0, max(0.0, math.exp(logprob))) if logprob > -745 else 0.0


def band(logprob: float) -> int:
    """Index into :data:`BAND_FLOORS` for a token of this log-probability."""
    p = probability(logprob)
    for index, floor in enumerate(BAND_FLOORS):
        if p >= floor:
            return index
    return len(BAND_FLOORS) - 1


def percent(logprob: float) -> str:
    """``93%``, ``4.2%``, ``<0.1%``: readable at a glance, exact enough to compare."""
    p = probability(logprob) * 100
    if p >= 9.95:
        return f"{p:.0f}%"
    if p >= 0.1:
        return f"{p:.1f}%"
    return "<0.1%"


def shown_token(text: str) -> str:
    """A token's text as a list shows it: spaces and line breaks made visible."""
    if text == "":
        return _("(end of text)")
    return (text.replace("\n", "↵").replace("\t", "⇥").replace(" ", "·")
            .replace("\r", "\\r"))


def token_record(logprob: TokenLogprob) -> dict[str, Any]:
    """The CLI's and export's form of one generated token: ``top`` is the model's own
    distribution, ``top_sampled`` the one the sampler drew from (where it is known)."""
    record: dict[str, Any] = {
        "text": logprob.token, "logprob": logprob.logprob,
        "top": [{"text": text, "logprob": lp} for text, lp in logprob.top]}
    if logprob.top_sampled:
        record["top_sampled"] = [{"text": text, "logprob": lp}
                                 for text, lp in logprob.top_sampled]
        sampled = logprob.sampled_logprob
        record["sampled_logprob"] = (sampled if sampled is not None and math.isfinite(sampled)
                                     else None)
    return record


MODEL_HEADING = N_("The model's own distribution:")
SAMPLED_HEADING = N_("Sampled from (after penalty, top-k/p, min-p, temperature):")


@dataclass(frozen=True)
class TokenStep:
    """One generated token of a reply: its figures and whether it was thinking."""

    logprob: TokenLogprob
    thinking: bool = False

    @property
    def text(self) -> str:
        return self.logprob.token

    @property
    def band(self) -> int:
        return band(self.logprob.logprob)

    def alternatives(self) -> list[tuple[str, float, bool]]:
        """``(text, logprob, chosen)`` for the top-k, most likely first; the chosen token
        is added at the end if it was not among them (sampling can pick an outsider)."""
        rows = [(text, lp, text == self.text) for text, lp in self.logprob.top]
        if not any(chosen for _, _, chosen in rows):
            rows.append((self.text, self.logprob.logprob, True))
        return rows

    def sampled_alternatives(self) -> list[tuple[str, float, bool]]:
        """The same for the distribution the sampler drew from (empty where it is not
        known): at temperature 0 the chosen token is its first, always."""
        rows = [(text, lp, text == self.text) for text, lp in self.logprob.top_sampled]
        sampled = self.logprob.sampled_logprob
        if rows and not any(chosen for _, _, chosen in rows) and sampled is not None:
            rows.append((self.text, sampled, True))
        return rows

    def headline(self) -> str:
        """``·actual  30% by the model · 100% as sampled``."""
        line = f"{shown_token(self.text)}  {percent(self.logprob.logprob)}"
        sampled = self.logprob.sampled_logprob
        if self.logprob.top_sampled and sampled is not None:
            line += " " + _("by the model · {percent} as sampled").format(
                percent=percent(sampled))
        return line + ("  " + _("(thinking)") if self.thinking else "")

    def describe(self) -> str:
        """A tooltip: the token, its probability, the alternatives it was weighed against
        and, where known, the distribution it was drawn from."""
        lines = [self.headline()]
        sampled = self.sampled_alternatives()
        if sampled:
            lines.append(_(MODEL_HEADING))
        for text, lp, chosen in self.alternatives():
            lines.append(f"{'▸' if chosen else '  '} {shown_token(text)}  {percent(lp)}")
        if sampled:
            lines.append(_(SAMPLED_HEADING))
        for text, lp, chosen in sampled:
            lines.append(f"{'▸' if chosen else '  '} {shown_token(text)}  {percent(lp)}")
        return "\n".join(lines)


def chosen_step(step: TokenStep, text: str) -> TokenStep:
    """The step a branch starts with: ``text`` picked instead, with its own probability."""
    logprob = next((lp for t, lp in step.logprob.top if t == text), step.logprob.logprob)
    return TokenStep(TokenLogprob(token=text, logprob=logprob, top=step.logprob.top),
                     thinking=step.thinking)


def stop_cut_index(steps: list[TokenStep], answer: str, thinking_format: str) -> int | None:
    """The first token past the reply's end: a stop sequence (a base model's next
    "Question:") is generated, then cut from the answer; the window shows those tokens
    struck through. None when nothing was cut (or the reply has a thinking part)."""
    if thinking_format != "none" or not answer.strip():
        return None
    joined = "".join(step.text for step in steps)
    start = joined.find(answer.strip())  # the answer may have lost its outer blanks
    end = start + len(answer.strip())
    if start < 0 or not joined[end:].strip():
        return None
    offset = 0
    for index, step in enumerate(steps):
        if offset >= end:
            return index
        offset += len(step.text)
    return None


NO_EXACT_PROMPT = N_("A server's chat API applies its own template and does not show the "
                     "exact text, so it can't be continued token by token.")


def exact_prompt_known(entry: ModelEntry) -> bool:
    """Whether the prompt shown as sent is exactly what the model read: not so for a
    server's chat API (it applies its own template). Continuing from a token needs it."""
    return not (isinstance(entry.source, RemoteSource) and entry.prompt.style == "chat")


def can_branch(entry: ModelEntry, turn: Any, index: int, chosen: str) -> bool:
    """A finished turn can continue from its token ``index`` with a non-empty ``chosen``
    when the exact prompt it was sent is known."""
    return (turn.done and bool(chosen) and 0 <= index < len(turn.token_steps)
            and exact_prompt_known(entry))


def continuation_prompt(prompt_sent: str, steps: list[TokenStep], index: int,
                        chosen: str) -> str:
    """The exact text a branch sends: the prompt the model received, the reply's tokens
    before ``index`` and the chosen token (the model then continues it, unwrapped)."""
    return prompt_sent + "".join(step.text for step in steps[:index]) + chosen


class BranchSplitter:
    """Splits a branch's raw continuation into thinking and answer as the original reply
    was split: the engine sees a raw prompt (no thinking format), so the split is ours.
    It also counts the continuation's tokens as thinking or answer."""

    def __init__(self, fmt: str, *, starts_in_thinking: bool):
        self.splitter = ThinkingSplitter(fmt, prefilled=starts_in_thinking)
        self.counted = 0  # tokens of the continuation counted so far

    @classmethod
    def starting(cls, turn: Any) -> BranchSplitter:
        """The splitter for a branch just begun (see :meth:`Branches.begin`): the reply's
        tokens so far are split and counted into the turn."""
        split = cls(turn.thinking_format, starts_in_thinking=turn.starts_in_thinking)
        turn.thinking, turn.answer = split.feed("".join(s.text for s in turn.token_steps))
        turn.has_thinking = turn.starts_in_thinking or bool(turn.thinking)
        turn.thinking_tokens = sum(1 for s in turn.token_steps if s.thinking)
        turn.answer_tokens = len(turn.token_steps) - turn.thinking_tokens
        return split

    @classmethod
    def resuming(cls, turn: Any, so_far: str) -> BranchSplitter:
        """The splitter for a Continue: left in the state the reply so far ended in (its
        text is the turn's already); the continuation's tokens are counted on top."""
        split = cls(turn.thinking_format, starts_in_thinking=turn.starts_in_thinking)
        split.feed(so_far)
        return split

    @property
    def in_thinking(self) -> bool:
        return self.splitter.in_thinking

    def feed(self, text: str) -> tuple[str, str]:
        return self._join(self.splitter.feed(text)) if text else ("", "")

    def feed_delta(self, text: str, total_tokens: int) -> tuple[str, str, bool, int]:
        """One Delta of the continuation: ``(thinking, answer, token was thinking, new
        tokens)``; a token that closes the thinking counts as thinking, as the engine's."""
        was_thinking = self.in_thinking
        thinking, answer = self.feed(text)
        new, self.counted = total_tokens - self.counted, total_tokens
        return thinking, answer, was_thinking or self.in_thinking, new

    def finish(self) -> tuple[str, str]:
        return self._join(self.splitter.finish())

    def whole_result(self, turn: Any, result: Any) -> Any:
        """A branch's result reads as the whole reply: the text before the branch point
        too, split as the original was (the engine saw one raw continuation)."""
        thinking, answer = self.finish()
        turn.thinking += thinking
        turn.answer += answer
        return replace(result, thinking=turn.thinking, answer=turn.answer,
                       thinking_tokens=turn.thinking_tokens, answer_tokens=turn.answer_tokens,
                       thinking_unterminated=self.in_thinking, thinking_s=None,
                       reply_text="")  # the whole reply's text is its tokens' (reply_as_written)

    @staticmethod
    def _join(segments: list[tuple[str, str]]) -> tuple[str, str]:
        thinking = "".join(text for kind, text in segments if kind == THINKING)
        answer = "".join(text for kind, text in segments if kind != THINKING)
        return thinking, answer


def reply_as_written(turn: Any) -> str | None:
    """The reply so far exactly as the model wrote it, thinking markup and the blanks the
    split drops included: what Continue hands back for the model to go on from. The
    engine's record of it, else its tokens' texts; None when neither is known."""
    result = turn.result
    if result is not None and result.reply_text:
        return str(result.reply_text)
    steps = turn.token_steps
    if steps and len(steps) >= turn.tokens:
        return "".join(step.text for step in steps)
    return None


def can_resume(entry: ModelEntry, turn: Any) -> bool:
    """Whether Continue can resume ``turn`` token for token: the exact prompt and the exact
    reply so far are known (else it runs the reply again with a larger limit)."""
    return exact_prompt_known(entry) and reply_as_written(turn) is not None


BRANCH_FIELDS = ("prompt_sent", "thinking", "answer", "result", "failure", "verdict", "state",
                 "thinking_tokens", "answer_tokens", "elapsed_s", "thinking_s", "has_thinking",
                 "max_tokens", "token_steps", "branched_at")


@dataclass
class Branches:
    """A turn's branches: each a snapshot of the turn's reply fields (:data:`BRANCH_FIELDS`);
    the turn's own fields are the branch shown, so everything that reads a turn (window,
    export, Verify, history) reads the branch shown without knowing about branches."""

    items: list[dict[str, Any]]
    index: int = 0

    @property
    def count(self) -> int:
        return max(1, len(self.items))

    @staticmethod
    def snapshot(turn: Any) -> dict[str, Any]:
        return {name: getattr(turn, name) for name in BRANCH_FIELDS}

    def keep(self, turn: Any) -> None:
        """Store the branch shown (the first call makes it branch 1)."""
        if not self.items:
            self.items = [self.snapshot(turn)]
        else:
            self.items[self.index] = self.snapshot(turn)

    def switch(self, turn: Any, index: int) -> bool:
        if not self.items or not 0 <= index < len(self.items):
            return False
        self.keep(turn)
        for name, value in self.items[index].items():
            setattr(turn, name, value)
        self.index = index
        return True

    def begin(self, turn: Any, index: int, chosen: str, starting_state: Any, *,
              again: bool = False) -> str:
        """Keep the branch shown and make the turn a new one, shown last (``again``: the
        branch shown, run again in its place): the tokens before ``index``, then ``chosen``
        (:meth:`BranchSplitter.starting` splits their text).
        Returns the exact text to send (:func:`continuation_prompt`)."""
        prompt = continuation_prompt(turn.reply_prompt, turn.token_steps, index, chosen)
        self.keep(turn)
        turn.token_steps = (turn.token_steps[:index]
                            + [chosen_step(turn.token_steps[index], chosen)])
        turn.branched_at = (index, chosen)
        turn.result = turn.failure = turn.verdict = turn.thinking_s = None
        turn.state = starting_state
        turn.thinking = turn.answer = ""
        turn.elapsed_s = 0.0
        turn.started_at = time.monotonic()
        if again:
            self.items[self.index] = self.snapshot(turn)
            return prompt
        self.items.append(self.snapshot(turn))
        self.index = len(self.items) - 1
        return prompt


@dataclass(frozen=True)
class Resuming:
    """A Continue under way: the turn as it was (put back if the continuation fails), and
    the figures and clocks the continuation's are added to."""

    before: dict[str, Any]  # the turn's reply fields (:data:`BRANCH_FIELDS`)
    result: GenerationResult
    so_far: str  # the reply as the model wrote it, sent back after the prompt
    elapsed_s: float
    thinking_s: float
    max_tokens: int


def continued_result(resuming: Resuming, run: GenerationResult, whole: GenerationResult,
                     turn: Any) -> GenerationResult:
    """The result of a continued reply read as one generation: the text, token counts and
    thinking time of the whole reply, the first run's prompt and time to first token,
    the rate over both runs' tokens; ``run`` is the continuation's own result."""
    first = resuming.result
    tokens = seconds = 0.0
    for part in (first, run):
        produced = part.thinking_tokens + part.answer_tokens
        if part.tokens_per_s and produced > 1:
            tokens += produced - 1
            seconds += (produced - 1) / part.tokens_per_s
    peaks = [p for p in (first.peak_rss_mb, run.peak_rss_mb) if p is not None]
    return replace(whole, prompt_sent=first.prompt_sent, prompt_notes=first.prompt_notes,
                   prompt_tokens=first.prompt_tokens, prompt_cached=first.prompt_cached,
                   ttft_s=first.ttft_s, tokens_per_s=tokens / seconds if seconds else None,
                   thinking_s=turn.thinking_s if turn.has_thinking else None,
                   load_s=first.load_s, seed=first.seed,
                   total_s=(first.total_s or 0.0) + (run.total_s or 0.0),
                   peak_rss_mb=max(peaks) if peaks else None,
                   reply_text=resuming.so_far + run.reply_text)


def tokens_export(steps: list[TokenStep], branches: Branches,
                  branched_at: tuple[int, str] | None) -> dict[str, Any]:
    """Export's token figures and which branch is shown (only the keys that apply)."""
    data: dict[str, Any] = {}
    if steps:
        data["tokens"] = [token_record(step.logprob) for step in steps]
    if branches.count > 1:
        data["branch"] = {"shown": branches.index + 1, "of": branches.count,
                          "from_token": branched_at[0] if branched_at else None,
                          "chosen": branched_at[1] if branched_at else None}
    return data


# ------------------------------------------------------------------ next-token explorer


class Wrapping(StrEnum):
    """How the explorer hands a model the typed text."""

    AS_TYPED = "as-typed"  # the text itself, a document to continue (raw)
    AS_QUESTION = "as-question"  # the model's own wrapping: chat template or document page


WRAPPING_LABELS: dict[Wrapping, str] = {
    Wrapping.AS_TYPED: N_("As typed (a document to continue)"),
    Wrapping.AS_QUESTION: N_("As a question (each model's own wrapping)"),
}


def wrapping_note(entry: ModelEntry, wrapping: Wrapping, *, stepped: bool) -> str:
    """What the model was given, in words: which template wrapped the text, if any."""
    if wrapping == Wrapping.AS_TYPED:
        note = _("The text as typed, no template")
    elif entry.prompt.style == "chat":
        note = (_("Wrapped in {model}'s chat template as a user message, thinking on")
                if entry.prompt.supports_thinking
                else _("Wrapped in {model}'s chat template as a user message")).format(
            model=entry.name)
    else:
        note = _("Wrapped in the Q&A document page (Settings ▸ Wrapping)")
    return (_("{note}, then the chosen tokens.") if stepped else _("{note}.")).format(note=note)


def next_token_request(context: str, *, wrap: bool, k: int = EXPLORER_ROWS) -> GenerationRequest:
    """One step of the explorer: the model's distribution for the next token after
    ``context`` (sent raw unless ``wrap``: the first step of "as a question"), the ``k``
    likeliest named and every token's figure (for the sampling lab, which reshapes it
    without asking again). Greedy, no penalties, end of text allowed through, so the
    figures are the model's own."""
    return GenerationRequest(prompt=context, raw=not wrap, top_logprobs=k, ignore_eos=True,
                             whole_distribution=True,
                             sampling=Sampling(temperature=0.0, repeat_penalty=1.0,
                                               max_tokens=1, seed=0))


@dataclass(frozen=True)
class NextToken:
    """One model's next-token distribution: the exact text it saw and its top-k."""

    prompt_sent: str = ""
    top: tuple[tuple[str, float], ...] = ()
    error: str = ""
    notes: tuple[str, ...] = ()  # how the prompt was adapted to the model (PromptSent)
    whole: bytes = b""  # every token's log-probability, largest first (TokenLogprob.whole)


def read_next_token(events: Iterable[Event]) -> NextToken:
    """Drain one explorer request's events (blocking: off the GUI thread)."""
    prompt_sent, top, whole = "", None, b""
    notes: tuple[str, ...] = ()
    for event in events:
        if isinstance(event, PromptSent):
            prompt_sent, notes = event.text, event.notes
        elif isinstance(event, Delta) and event.logprob is not None and top is None:
            top, whole = event.logprob.top, event.logprob.whole
        elif isinstance(event, Failed):
            return NextToken(prompt_sent, (), event.message, notes)
        elif isinstance(event, Finished):
            break
    if top is None:
        return NextToken(prompt_sent, (), _("No token probabilities came back (not offered "
                                            "by this server, or the context is full)."), notes)
    return NextToken(prompt_sent, top, notes=notes, whole=whole)
