"""The wire protocol between the app and a model process — plain data both sides import.

Commands go parent → child (:class:`Generate`, :class:`GenerateMany`, :class:`Shutdown`;
stopping is a shared flag, not a message, because a busy child reads no messages
mid-generation). Events go child → parent, in this order::

    Loading -> Loaded -> PromptSent -> Delta* -> Finished      (or Failed at any point)

:class:`GenerationResult` is everything about one finished (or failed) generation: the
CLI's JSON summary, what export and Verify read. States are enums whose values are the
strings the JSON output has always used; each has one label table.

This module imports nothing of ours but ``catalog`` and ``prompting``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

from desktop_app.engine.prompting import Turn
from desktop_app.models.catalog import ModelEntry
from desktop_app.text.i18n import N_, _, ngettext, number, whole

# ------------------------------------------------------------------------------ states


class FinishReason(StrEnum):
    """Why a generation ended."""

    STOP = "stop"  # end of sequence or a stop sequence
    LENGTH = "length"  # the token limit (or the context) was reached
    CANCELLED = "cancelled"  # the user pressed Stop
    ERROR = "error"  # see the Failed event / the result's error


# Shown translated: _(FINISH_LABELS[reason]) (N_ marks them; the language is set later).
FINISH_LABELS: dict[FinishReason, str] = {
    FinishReason.STOP: N_("finished"),
    FinishReason.LENGTH: N_("token limit reached"),
    FinishReason.CANCELLED: N_("stopped"),
    FinishReason.ERROR: N_("failed"),
}


class FailureKind(StrEnum):
    """What went wrong in a pane; decides the pane's title and whether Retry makes sense."""

    MISSING = "missing"  # the model file is not there (not downloaded)
    LOAD = "load"  # llama.cpp could not load the file
    CRASH = "crash"  # the model process died
    OOM = "oom"  # out of memory
    ERROR = "error"  # anything else (prompt too long, bad template, internal error)

    @property
    def process_gone(self) -> bool:
        """The model process cannot serve another request; the next one starts afresh."""
        return self in (FailureKind.CRASH, FailureKind.OOM)


FAILURE_LABELS: dict[FailureKind, str] = {
    FailureKind.MISSING: N_("Not downloaded"),
    FailureKind.LOAD: N_("Could not load the model"),
    FailureKind.CRASH: N_("Model process crashed"),
    FailureKind.OOM: N_("Out of memory"),
    FailureKind.ERROR: N_("Failed"),
}

# ---------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class Sampling:
    """Sampling settings for one generation. ``seed=None`` picks a random seed."""

    temperature: float = 0.7
    top_p: float = 0.95
    top_k: int = 40
    min_p: float = 0.05
    repeat_penalty: float = 1.1
    max_tokens: int = 512
    seed: int | None = None

    @classmethod
    def for_entry(cls, entry: ModelEntry, **overrides: Any) -> Sampling:
        """The catalog's defaults for this model, with any non-None overrides applied."""
        values: dict[str, Any] = {k: v for k, v in entry.sampling.items() if k in cls.__dataclass_fields__}
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt for one pane.

    ``raw`` sends ``prompt`` to a base model exactly as typed; ``document_template``
    replaces the catalog's wrapping (must contain ``{question}``).
    """

    prompt: str
    sampling: Sampling = field(default_factory=Sampling)
    history: tuple[Turn, ...] = ()
    system_prompt: str | None = None
    thinking: bool = True
    raw: bool = False
    document_template: str | None = None
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False  # benchmarks: always generate max_tokens
    top_logprobs: int = 0  # > 0: each Delta carries the k most likely tokens (off: free)
    whole_distribution: bool = False  # with top_logprobs: every token's too (the explorer)
    # Budget forcing: after this many thinking tokens the thinking is closed and the model
    # answers (None: no cap; ignored by models that do not think).
    thinking_budget: int | None = None
    # written before the format's closing marker when the budget is spent: the model's
    # own stop-thinking sentence, as llama.cpp's --reasoning-budget-message ("": none)
    budget_message: str = ""
    # Continue: a raw ``prompt`` that ends with this, the model's own reply so far. Its
    # tokens count for the repetition penalty as if just generated, so the reply goes on
    # as one uninterrupted generation would.
    reply_so_far: str = ""


# ---------------------------------------------------------------------------- commands


@dataclass(frozen=True)
class Generate:
    """Parent → child: run one generation and stream its events."""

    request: GenerationRequest


@dataclass(frozen=True)
class GenerateMany:
    """Parent → child: ``len(seeds)`` sequences from one prompt at once.

    The prompt is evaluated once and its KV cache shared; each sequence has its own
    sampler and seed (None: a random one), streams Deltas tagged with its index and
    ends with its own Finished. Stop ends them all.
    """

    request: GenerationRequest
    seeds: tuple[int | None, ...]


@dataclass(frozen=True)
class Embed:
    """Parent → child: each text's embedding (llama.cpp's embedding mode, mean-pooled).

    The child answers with one :class:`Embedded`, or a :class:`Failed`."""

    texts: tuple[str, ...]


@dataclass(frozen=True)
class Embedded:
    """Child → parent: one vector per text of an :class:`Embed`, in order."""

    vectors: tuple[tuple[float, ...], ...]


class EmbeddingError(RuntimeError):
    """A model could not embed the texts (one sentence: why)."""


@dataclass(frozen=True)
class Shutdown:
    """Parent → child: exit the process."""


Command = Generate | GenerateMany | Embed | Shutdown


# ------------------------------------------------------------------------------ events


@dataclass(frozen=True)
class Loading:
    """The worker is preparing the model (``detail`` says what it is doing)."""

    model_id: str
    detail: str = "loading model"
    kernels: str = ""  # the CPU-kernel library a dispatch build loaded ("haswell"), if any


@dataclass(frozen=True)
class Loaded:
    model_id: str
    load_s: float
    n_ctx: int
    n_threads: int
    model_path: str
    has_chat_template: bool
    placement: str = ""  # where it runs: "CPU · 2 threads" or "Metal · 29/29 layers"
    gpu_layers: int = 0  # layers offloaded to a GPU (0: CPU only)
    probed: bool = False  # a test batch ran first (native_setup: the setting is safe here)


@dataclass(frozen=True)
class PromptToken:
    """One token of the prompt as the model read it: its id in the vocabulary, its text
    (a special token spelled out) and whether it is special (BOS, ``<|im_start|>``, …),
    a token the text stands for rather than spells."""

    id: int
    text: str
    special: bool


@dataclass(frozen=True)
class PromptSent:
    """The exact text the model received, and whether it starts inside thinking.

    ``notes`` say what was done to make the prompt fit the model (a system text folded into
    the first user turn, a fallback layout, thinking that cannot be turned off), so the
    window and ``compare`` can tell the user instead of leaving it silent. ``tokens``: the
    text as the model's own tokenizer split it, the ids it evaluated (empty for a model
    on a server, whose tokenizer is the server's).
    """

    text: str
    n_tokens: int
    starts_in_thinking: bool
    seed: int
    notes: tuple[str, ...] = ()
    tokens: tuple[PromptToken, ...] = ()


@dataclass(frozen=True)
class TokenLogprob:
    """How likely the model found a generated token, the alternatives it weighed, and the
    distribution the sampler actually drew it from.

    ``logprob`` and ``top`` are of the model's own distribution (before the repetition
    penalty, temperature, top-k and the other samplers), so they mean the same whatever
    the settings. ``top_sampled`` is what the sampler drew from after all of those
    (``engine.sampling``): at temperature 0 its first token is the one chosen, always.
    Empty where the engine cannot know it (a server).
    """

    token: str
    logprob: float
    top: tuple[tuple[str, float], ...]  # the k most likely tokens, most likely first
    top_sampled: tuple[tuple[str, float], ...] = ()  # the sampled distribution's k first
    sampled_logprob: float | None = None  # the chosen token's, in the sampled distribution
    # every token's log-probability under the model, largest first, as float32 bytes
    # (GenerationRequest.whole_distribution: the explorer's sampling lab reshapes it)
    whole: bytes = b""


@dataclass(frozen=True)
class Delta:
    """New text, already split; token counts are running totals for this generation."""

    thinking: str
    answer: str
    thinking_tokens: int
    answer_tokens: int
    elapsed_s: float
    sequence: int = 0  # which sequence of a GenerateMany (0 for a single generation)
    logprob: TokenLogprob | None = None  # with GenerationRequest.top_logprobs > 0


@dataclass
class GenerationResult:
    """Everything about one finished (or failed) generation — the CLI's JSON summary."""

    model: str
    role: str
    prompt_sent: str = ""
    prompt_notes: tuple[str, ...] = ()  # PromptSent.notes: how the prompt was adapted
    thinking: str = ""
    answer: str = ""
    thinking_tokens: int = 0
    answer_tokens: int = 0
    prompt_tokens: int = 0
    prompt_cached: int = 0  # of prompt_tokens, how many the KV cache already held
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    thinking_s: float | None = None
    load_s: float | None = None
    total_s: float | None = None
    finish_reason: FinishReason = FinishReason.ERROR
    error: str | None = None
    thinking_unterminated: bool = False
    seed: int | None = None
    peak_rss_mb: float | None = None
    placement: str | None = None  # "CPU · 2 threads" (threads at the end) or "Metal · 29/29 layers"
    # the reply exactly as the model wrote it, before the thinking split (its tags and
    # the blanks the split drops included) and before a stop sequence was cut, so that
    # Continue can hand it back; empty where the backend does not know it
    reply_text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def still_thinking(self) -> bool:
        """The reply ended inside its thinking, before any answer (see
        :func:`ended_still_thinking`)."""
        return ended_still_thinking(self, has_thinking=bool(self.thinking.strip())
                                    or self.thinking_tokens > 0, answer=self.answer)

    def metrics_line(self) -> str:
        """``TTFT 0.23 s · 58.3 tok/s · thinking 812 / answer 120 tokens · finish: stop``, in
        the language set (the finish reason is the API's word, as the JSON has it)."""
        parts = []
        if self.ttft_s is not None:
            # TRANSLATORS: TTFT: time to first token
            parts.append(_("TTFT {seconds} s").format(seconds=number(self.ttft_s, 2)))
        if self.tokens_per_s is not None:
            parts.append(_("{rate} tok/s").format(rate=number(self.tokens_per_s, 1)))
        if self.thinking_tokens:
            parts.append(ngettext("thinking {thinking} / answer {count} token",
                                  "thinking {thinking} / answer {count} tokens",
                                  self.answer_tokens).format(
                thinking=whole(self.thinking_tokens), count=whole(self.answer_tokens)))
        else:
            parts.append(ngettext("{count} token", "{count} tokens", self.answer_tokens).format(
                count=whole(self.answer_tokens)))
        if self.load_s is not None:
            parts.append(_("load {seconds} s").format(seconds=number(self.load_s, 1)))
        if self.placement:
            parts.append(placement_words(self.placement))
        parts.append(_("finish: {reason}").format(reason=self.finish_reason))
        return " · ".join(parts)


_THREADS = re.compile(r"^CPU · (\d+) threads?(?= · |$)")
_LAYERS = re.compile(r"^(.+?) · (\d+)/(\d+) layers(?= · |$)")


def placement_words(placement: str) -> str:
    """Where a model ran, as its process wrote it (in English: ``CPU · 2 threads``,
    ``Metal · 29/29 layers``), in the window's language; a note after it stays as written."""
    if found := _THREADS.match(placement):
        count = int(found[1])
        return ngettext("CPU · {count} thread", "CPU · {count} threads", count).format(
            count=count) + placement[found.end():]
    if found := _LAYERS.match(placement):
        return _("{device} · {offloaded}/{layers} layers").format(
            device=found[1], offloaded=found[2], layers=found[3]) + placement[found.end():]
    return placement





@dataclass(frozen=True)
class Finished:
    """The generation ended; ``result.finish_reason`` says why."""

    result: GenerationResult
    sequence: int = 0  # which sequence of a GenerateMany ended (0 for a single generation)


@dataclass(frozen=True)
class Failed:
    """This pane failed; ``kind`` says how (see :class:`FailureKind`)."""

    message: str
    kind: FailureKind
    result: GenerationResult | None = None


Event = Loading | Loaded | PromptSent | Delta | Finished | Failed


def event_to_dict(event: Event) -> dict[str, Any]:
    """A JSON-ready dict with a ``type`` key, for ``--json`` output."""
    data = asdict(event)
    data["type"] = type(event).__name__.lower()
    return data


def is_final(event: Event) -> bool:
    """True for the event that ends a generation's stream."""
    return isinstance(event, Finished | Failed)


def ended_still_thinking(result: GenerationResult, *, has_thinking: bool, answer: str) -> bool:
    """The one rule for "the model never got to its answer": thinking never closed, or it
    thought and the token limit or Stop came before any answer. A pane (whose answer may
    span a Continue) and rollouts (one result each) both ask this."""
    if not has_thinking:
        return False
    return result.thinking_unterminated or (
        not answer.strip() and result.finish_reason in (FinishReason.LENGTH,
                                                         FinishReason.CANCELLED))
