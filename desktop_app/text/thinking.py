"""Thinking formats, and the streaming separation of a reasoning model's thinking from its answer.

A :class:`ThinkingFormat` is everything the app knows about one way of writing thinking:
its markers, the empty block that turns thinking off, what closes thinking when its
budget is spent, whether its markers are special tokens, how to recognise it in a chat
template, and a small state machine: each state says whether its text is ``thinking``,
``answer`` or discarded (``None``), and which markers move it to another state.
``<think>…</think>`` is one format; channel formats such as gpt-oss's
``<|channel|>analysis<|message|>…`` are another table, not new code. Every module (the
prompt builder, the model process, Verify, the window, the command line) reads these
objects; none spells a marker itself.

:class:`ThinkingSplitter` feeds arbitrary chunks (tokens) through a format. Markers may
be split across chunks: the splitter holds back only the shortest tail that could still
become a marker, so text is released as early as it can be.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from desktop_app.text.markers import first_marker, partial_marker_length

THINKING = "thinking"
ANSWER = "answer"


@dataclass(frozen=True)
class StateSpec:
    """One state: the kind of its text, its exits, and whether leading blanks are dropped."""

    kind: str | None
    transitions: dict[str, str] = field(default_factory=dict)
    strip_leading: bool = False


@dataclass(frozen=True)
class TemplateSwitch:
    """A chat-template variable that turns this format's thinking on and off, and the
    value for each (``None``: leave it unset, the template's own default)."""

    flag: str
    on: object = True
    off: object = False


@dataclass(frozen=True)
class ThinkingFormat:
    """One way of writing thinking. ``prefilled_state`` is used when the prompt opened
    thinking; the marker fields are empty where the format has no such thing."""

    name: str
    initial_state: str
    prefilled_state: str
    states: dict[str, StateSpec]
    open: str = ""  # what opens thinking (a template may pre-fill it)
    close: str = ""  # what ends it
    empty_block: str = ""  # a closed, empty thinking block: thinking off, for templates without a switch
    budget_close: str = ""  # written for the model when its thinking budget is spent
    special_tokens: bool = False  # the markers are special tokens: decode them as text
    signature: str = ""  # a regular expression that finds this format in a chat template
    switch: TemplateSwitch | None = None  # the family's own template switch, if not enable_thinking

    def kind_of(self, state: str) -> str | None:
        return self.states[state].kind

    @property
    def thinks(self) -> bool:
        return any(spec.kind == THINKING for spec in self.states.values())

    @property
    def budget_forcing(self) -> bool:
        """A thinking budget can be enforced (the format says how to close thinking)."""
        return bool(self.budget_close)

    def found_in(self, template: str) -> bool:
        return bool(self.signature) and re.search(self.signature, template) is not None


def tagged(name: str, open: str, close: str, *, signature: str, empty_block: str = "",
           budget_close: str | None = None, answer_open: tuple[str, ...] = (),
           answer_close: tuple[str, ...] = (), thinks_first: bool = False,
           special_tokens: bool = True, switch: TemplateSwitch | None = None) -> ThinkingFormat:
    """A format whose thinking sits between two markers, its answer after them, perhaps
    between markers of its own (``answer_open`` … ``answer_close``; the markers are
    dropped). ``thinks_first``: the reply starts inside the thinking, with no marker."""
    to_answer = {marker: "answer" for marker in answer_open}
    to_done = {marker: "done" for marker in answer_close}
    states = {
        # Text before the opening marker is answer text (some models say a word first).
        "start": StateSpec(ANSWER, {open: "thinking", **to_answer, **to_done}, strip_leading=True),
        # A template that pre-fills the marker may still see the model repeat it: swallow it.
        "thinking": StateSpec(THINKING, {close: "after", open: "thinking_body"},
                              strip_leading=True),
        "thinking_body": StateSpec(THINKING, {close: "after"}, strip_leading=True),
        "after": StateSpec(ANSWER, {**to_answer, **to_done}, strip_leading=True),
        "answer": StateSpec(ANSWER, dict(to_done), strip_leading=True),
        "done": StateSpec(None, {}),
    }
    return ThinkingFormat(
        name=name, initial_state="thinking" if thinks_first else "start",
        prefilled_state="thinking", states=states, open=open, close=close,
        empty_block=empty_block, budget_close=close if budget_close is None else budget_close,
        special_tokens=special_tokens, signature=signature, switch=switch)


THINK_TAGS = tagged(
    "think-tags", "<think>", "</think>",
    empty_block="<think>\n\n</think>\n\n",
    # the closing tag alone: the model writes its own blank line after it, as it was trained
    signature=r"</?think>", special_tokens=False)

GPT_OSS_CHANNELS = ThinkingFormat(
    name="gpt-oss-channels",
    initial_state="start",
    prefilled_state="thinking",
    states={
        "start": StateSpec(None, {
            "<|channel|>analysis<|message|>": "thinking",
            "<|channel|>final<|message|>": "answer",
        }),
        "thinking": StateSpec(THINKING, {"<|end|>": "between"}, strip_leading=True),
        "between": StateSpec(None, {
            "<|channel|>analysis<|message|>": "thinking",
            "<|channel|>final<|message|>": "answer",
        }),
        "answer": StateSpec(ANSWER, {"<|return|>": "done", "<|end|>": "done"},
                            strip_leading=True),
        "done": StateSpec(None, {}),
    },
    open="<|channel|>analysis<|message|>",
    close="<|end|>",
    # end the analysis message and open the final channel
    budget_close="<|end|><|start|>assistant<|channel|>final<|message|>",
    special_tokens=True,
    signature=re.escape("<|channel|>"),
)

# The formats of llama.cpp's template collection (models/templates) beyond these two,
# with the markers its parsers (common/parsers/*.cpp) and the templates themselves use.
GEMMA4_CHANNEL = tagged(  # Gemma 4: thinking is the "thought" channel
    "gemma4-channel", "<|channel>thought", "<channel|>",
    empty_block="<|channel>thought\n<channel|>", signature=re.escape("<|channel>"))
SEED_THINK = tagged(  # ByteDance Seed-OSS; a thinking_budget of 0 turns thinking off
    "seed-think", "<seed:think>", "</seed:think>",
    empty_block="<seed:think></seed:think>", signature=re.escape("<seed:think>"),
    switch=TemplateSwitch("thinking_budget", None, 0))
COHERE_THINKING = tagged(  # Command R7B and Command A; Cohere2 MoE switches by effort
    "cohere-thinking", "<|START_THINKING|>", "<|END_THINKING|>",
    empty_block="<|START_THINKING|><|END_THINKING|>",
    answer_open=("<|START_RESPONSE|>", "<|START_TEXT|>"),
    answer_close=("<|END_RESPONSE|>", "<|END_TEXT|>"),
    signature=re.escape("<|START_THINKING|>"),
    switch=TemplateSwitch("reasoning_effort", None, "none"))
APERTUS_INNER = tagged(  # Apertus: "Deliberation: enabled", thoughts as an inner block
    "apertus-inner", "<|inner_prefix|>", "<|inner_suffix|>",
    empty_block="<|inner_prefix|><|inner_suffix|>", signature=re.escape("<|inner_prefix|>"))
MINIMAX_THINK = tagged(  # MiniMax-M3: a bare closing tag is its "thinking disabled"
    "minimax-think", "<mm:think>", "</mm:think>",
    empty_block="</mm:think>", signature=re.escape("<mm:think>"),
    switch=TemplateSwitch("thinking_mode", "enabled", "disabled"))
MISTRAL_THINK = tagged(  # Magistral and Ministral 3 reasoning models (no switch)
    "mistral-think", "[THINK]", "[/THINK]", signature=re.escape("[THINK]"))
KIMI_K3_THINK = tagged(  # Kimi K3: think and response sections
    "kimi-k3", "<|open|>think<|sep|>", "<|close|>think<|sep|>",
    empty_block="<|open|>think<|sep|><|close|>think<|sep|>",
    answer_open=("<|open|>response<|sep|>",), answer_close=("<|close|>response<|sep|>",),
    signature=re.escape("<|open|>"), switch=TemplateSwitch("thinking", True, False))
HY3_THINK = tagged(  # Tencent Hunyuan 3 (its tags carry a suffix); switched by effort
    "hy3-think", "<think:opensource>", "</think:opensource>",
    empty_block="<think:opensource></think:opensource>",
    signature=r"<think(\{\}|:opensource)>",
    switch=TemplateSwitch("reasoning_effort", "high", "no_think"))
SOLAR_THINK = tagged(  # Upstage Solar Open: a thinking message, then the content message
    "solar-think", "<|think|>", "<|end|>",
    empty_block="<|begin|>assistant<|think|><|end|><|begin|>assistant",
    budget_close="<|end|><|begin|>assistant<|content|>",
    answer_open=("<|begin|>assistant<|content|>", "<|content|>"),
    answer_close=("<|end|>",), signature=re.escape("<|think|>"),
    switch=TemplateSwitch("reasoning_effort", None, "low"))
APRIEL_STEPS = tagged(  # ServiceNow Apriel: plain-text markers, always thinks
    "apriel-steps", "Here are my reasoning steps:", "[BEGIN FINAL RESPONSE]",
    budget_close="\n[BEGIN FINAL RESPONSE]\n", answer_close=("[END FINAL RESPONSE]",),
    thinks_first=True, special_tokens=False, signature=re.escape("[BEGIN FINAL RESPONSE]"))
MUSE_SELF = tagged(  # Muse Glimmer: the reasoning is a message addressed to itself
    "muse-self", " to=self<|message|>", "<|eom|>",
    budget_close="<|eom|><|start|>assistant to=user<|message|>",
    answer_open=("<|start|>assistant to=user<|message|>", " to=user<|message|>"),
    answer_close=("<|eot|>", "<|eom|>"),
    signature=re.escape("to=self<|message|>"))

PLAIN = ThinkingFormat(
    name="none",
    initial_state="answer",
    prefilled_state="answer",
    states={"answer": StateSpec(ANSWER, {}, strip_leading=True)},
)

# Most specific first: a template is read as the first format whose signature it shows
# (Gemma 4's templates mention <|think|>, gpt-oss's may mention <think>).
DETECTION_ORDER: tuple[ThinkingFormat, ...] = (
    GPT_OSS_CHANNELS, GEMMA4_CHANNEL, MUSE_SELF, SEED_THINK, COHERE_THINKING, APERTUS_INNER,
    MINIMAX_THINK, MISTRAL_THINK, KIMI_K3_THINK, HY3_THINK, SOLAR_THINK, APRIEL_STEPS,
    THINK_TAGS)

FORMATS: dict[str, ThinkingFormat] = {
    fmt.name: fmt for fmt in (THINK_TAGS, GPT_OSS_CHANNELS, *DETECTION_ORDER, PLAIN)}


def format_in_template(template: str) -> ThinkingFormat:
    """The thinking format a chat template writes (``none`` when it shows no markers)."""
    for fmt in DETECTION_ORDER:
        if fmt.found_in(template):
            return fmt
    return PLAIN


def get_format(name: str) -> ThinkingFormat:
    """The format with this name (``none``, ``think-tags``, ``gpt-oss-channels``, …)."""
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"Unknown thinking format '{name}'.") from None


Segment = tuple[str, str]  # (kind, text)


class ThinkingSplitter:
    """Feed text chunks, get ``(kind, text)`` segments back, kind ``thinking`` or ``answer``."""

    def __init__(self, fmt: ThinkingFormat | str = THINK_TAGS, *, prefilled: bool = False,
                 keep_blanks: bool = False):
        """``keep_blanks``: the text continues text already shown (a raw prompt, a branch),
        so its leading blanks belong to it (" Paris" after "The capital is")."""
        self.format = get_format(fmt) if isinstance(fmt, str) else fmt
        self.keep_blanks = keep_blanks
        self.state = self.format.prefilled_state if prefilled else self.format.initial_state
        self._pending = ""
        self._at_state_start = True
        self.saw_thinking = self.format.kind_of(self.state) == THINKING
        self.thinking_closed = False

    @property
    def in_thinking(self) -> bool:
        """True while the text being produced is thinking."""
        return self.format.kind_of(self.state) == THINKING

    def feed(self, text: str) -> list[Segment]:
        """Consume a chunk; return the segments that are now certain."""
        self._pending += text
        return self._drain(final=False)

    def finish(self) -> list[Segment]:
        """Flush held-back text at the end of the stream."""
        return self._drain(final=True)

    def _emit(self, out: list[Segment], text: str) -> None:
        spec = self.format.states[self.state]
        if spec.strip_leading and self._at_state_start and not self.keep_blanks:
            text = text.lstrip()
        if not text:
            return
        self._at_state_start = False
        if spec.kind is None:
            return
        if out and out[-1][0] == spec.kind:
            out[-1] = (spec.kind, out[-1][1] + text)
        else:
            out.append((spec.kind, text))

    def _enter(self, new_state: str) -> None:
        was_thinking = self.in_thinking
        self.state = new_state
        self._at_state_start = True
        if self.in_thinking:
            self.saw_thinking = True
        elif was_thinking:
            self.thinking_closed = True

    def _drain(self, *, final: bool) -> list[Segment]:
        out: list[Segment] = []
        while True:
            transitions = self.format.states[self.state].transitions
            best_index, best_marker = first_marker(self._pending, transitions)
            if best_index == -1:
                break
            self._emit(out, self._pending[:best_index])
            self._pending = self._pending[best_index + len(best_marker):]
            self._enter(transitions[best_marker])
        if final:
            self._emit(out, self._pending)
            self._pending = ""
            return out
        hold = partial_marker_length(self._pending, transitions)
        ready = self._pending[: len(self._pending) - hold] if hold else self._pending
        spec = self.format.states[self.state]
        if (spec.strip_leading and self._at_state_start and not self.keep_blanks
                and not ready.strip()):
            # Keep leading blanks until we know whether real text follows them.
            return out
        self._emit(out, ready)
        self._pending = self._pending[len(ready):]
        return out


def split_reply(text: str, fmt: ThinkingFormat | str = THINK_TAGS, *,
                prefilled: bool = False) -> tuple[str, str, bool]:
    """Split a whole reply into ``(thinking, answer, thinking_unterminated)``."""
    splitter = ThinkingSplitter(fmt, prefilled=prefilled)
    segments = splitter.feed(text) + splitter.finish()
    thinking = "".join(t for kind, t in segments if kind == THINKING)
    answer = "".join(t for kind, t in segments if kind == ANSWER)
    return thinking, answer, splitter.in_thinking
