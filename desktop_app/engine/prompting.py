"""What text each kind of model is sent.

Base models get a *document* to continue (the user's question wrapped as a Q&A page),
with stop sequences so they do not run on into the next question they invent.
Instruct and reasoning models get their GGUF chat template, rendered by
llama-cpp-python's own ``Jinja2ChatFormatter`` (see :mod:`desktop_app.engine.chat_template`),
so a prompt shown here is byte for byte the one llama-cpp-python and transformers
would build.

Only what templates do not do is ours: the document wrapping, noticing a template that
pre-fills ``<think>``, turning thinking on and off in the way each format allows, and
folding the system text into the first user turn for templates without a system role.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desktop_app.engine import sentences as S
from desktop_app.engine.chat_template import (
    TemplateBroken,
    TemplateRefused,
    mentions,
    render_template,
)
from desktop_app.models.catalog import ModelEntry
from desktop_app.text.i18n import _
from desktop_app.text.thinking import ThinkingFormat, get_format

REASONING_EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange in a pane: the user's message and the model's answer."""

    user: str
    assistant: str


@dataclass(frozen=True)
class BuiltPrompt:
    """The exact text to send and how to read what comes back.

    ``notes`` are sentences for the user about what was done to make the prompt fit the
    template (system text folded, thinking that cannot be turned off, ...).
    """

    text: str
    stop: tuple[str, ...]
    starts_in_thinking: bool
    notes: tuple[str, ...] = ()


class PromptError(Exception):
    """The prompt could not be built (e.g. a broken chat template)."""


class ThinkingSwitch(StrEnum):
    """How thinking is turned on and off for one model and template."""

    NONE = "none"  # not a reasoning model: nothing to switch
    TEMPLATE_FLAG = "template-flag"  # the template reads a flag such as enable_thinking
    SYSTEM_TAG = "system-tag"  # the template looks for /no_think in the messages
    EMPTY_BLOCK = "empty-block"  # we close thinking with an empty <think></think>
    REASONING_EFFORT = "reasoning-effort"  # harmony channels: low/medium/high, never off
    ALWAYS = "always"  # the format has no way to turn thinking off


THINKING_SWITCH_LABELS: dict[ThinkingSwitch, str] = {
    ThinkingSwitch.NONE: "this model does not think",
    ThinkingSwitch.TEMPLATE_FLAG: "the chat template's own switch",
    ThinkingSwitch.SYSTEM_TAG: "the chat template's own switch (/no_think in the system text)",
    ThinkingSwitch.EMPTY_BLOCK: "an empty thinking block written for the model",
    ThinkingSwitch.REASONING_EFFORT: "reasoning effort (this model always thinks; off means low)",
    ThinkingSwitch.ALWAYS: "none: this model always thinks",
}


@dataclass(frozen=True)
class ThinkingControl:
    """The switch for a model and its template, the flag it sets (if any) and the flag's
    value for thinking on and off (``None``: left unset, the template's default)."""

    switch: ThinkingSwitch
    flag: str | None = None
    on: object = True
    off: object = False

    @property
    def label(self) -> str:
        return THINKING_SWITCH_LABELS[self.switch]

    def flags(self, thinking: bool) -> dict[str, object]:
        """The template variables that set thinking on or off."""
        value = self.on if thinking else self.off
        return {self.flag: value} if self.flag and value is not None else {}


NO_THINK_TAG = "/no_think"
_READS_NO_THINK = re.compile(r"""['"]/no_think['"]\s+in\b""")


def thinking_control(entry: ModelEntry, template: str | None) -> ThinkingControl:
    """How this model's thinking is switched: decided once, used by prompt and window.

    The template's own switch wins: the catalog's flag, the format family's variable
    (Seed-OSS's ``thinking_budget``, MiniMax's ``thinking_mode``, …), ``enable_thinking``,
    a ``/no_think`` the template looks for; else a format with an empty block gets one
    written for the model, and one without has only an effort, or no off at all.
    """
    fmt = get_format(entry.prompt.thinking)
    if not fmt.thinks:
        return ThinkingControl(ThinkingSwitch.NONE)
    # Each flag is used only if this template really reads it (a GGUF may carry an older
    # template than the one the catalog entry was written for).
    if template and entry.prompt.thinking_toggle_flag and mentions(
            template, entry.prompt.thinking_toggle_flag):
        return ThinkingControl(ThinkingSwitch.TEMPLATE_FLAG, entry.prompt.thinking_toggle_flag)
    if template and fmt.switch and mentions(template, fmt.switch.flag):
        return ThinkingControl(ThinkingSwitch.TEMPLATE_FLAG, fmt.switch.flag, fmt.switch.on,
                               fmt.switch.off)
    if template and mentions(template, "enable_thinking"):
        return ThinkingControl(ThinkingSwitch.TEMPLATE_FLAG, "enable_thinking")
    if template and _READS_NO_THINK.search(template):
        return ThinkingControl(ThinkingSwitch.SYSTEM_TAG)
    if not fmt.empty_block:  # no block closes it (channels): only an effort, if any
        if template and mentions(template, "reasoning_effort"):
            return ThinkingControl(ThinkingSwitch.REASONING_EFFORT, "reasoning_effort")
        return ThinkingControl(ThinkingSwitch.ALWAYS)
    return ThinkingControl(ThinkingSwitch.EMPTY_BLOCK)


def fill_document(template: str, question: str) -> str:
    """Put the question into a document template (only ``{question}`` is substituted)."""
    return template.replace("{question}", question.strip())


def _question_block(template: str) -> str:
    """The part of the template that repeats for each question (its last paragraph)."""
    head, _, tail = template.partition("{question}")
    block_start = head.rfind("\n\n")
    return (head[block_start + 2:] if block_start != -1 else head) + "{question}" + tail


def build_document_prompt(
    template: str, question: str, history: tuple[Turn, ...] = ()
) -> str:
    """A base model's document: earlier turns as answered questions, then the new one."""
    if not history:
        return fill_document(template, question)
    text = fill_document(template, history[0].user) + " " + history[0].assistant.strip()
    block = _question_block(template)
    for turn in history[1:]:
        text += "\n\n" + fill_document(block, turn.user) + " " + turn.assistant.strip()
    return text + "\n\n" + fill_document(block, question)


def _prompt_error(exc: TemplateRefused | TemplateBroken) -> PromptError:
    """One sentence for the user about a template that failed."""
    if isinstance(exc, TemplateRefused):
        return PromptError(_(S.TEMPLATE_REFUSED).format(error=exc))
    return PromptError(_(S.TEMPLATE_BROKEN).format(error=exc))


FALLBACK_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

EMPTY_BLOCK_NOTE = ("This chat template has no thinking switch, so an empty thinking block "
                    "was written for the model; it usually answers directly.")
ALWAYS_NOTE = "This model always thinks: its format has no way to turn thinking off."
REASONING_LOW_NOTE = ("This model always thinks; with thinking off it is asked for "
                      "low reasoning effort.")
SYSTEM_FOLDED_NOTE = ("This chat template has no system role, so the system text was put "
                      "at the start of the first user message.")


def _messages(system: str | None, history: tuple[Turn, ...], question: str,
              *, fold_system: bool = False) -> list[dict[str, str]]:
    """The conversation as chat messages; ``fold_system`` puts the system text in turn one."""
    messages: list[dict[str, str]] = []
    if system and not fold_system:
        messages.append({"role": "system", "content": system})
    for turn in history:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    messages.append({"role": "user", "content": question})
    if system and fold_system:
        messages[0] = {"role": "user", "content": f"{system}\n\n{messages[0]['content']}"}
    return messages


def _render_conversation(template: str, system: str | None, history: tuple[Turn, ...],
                         question: str, *, bos_token: str, eos_token: str,
                         flags: dict[str, Any]) -> tuple[str, list[str]]:
    """Render, folding the system text into the first user turn if the template refuses it."""
    def render(fold: bool) -> str:
        return render_template(template, _messages(system, history, question, fold_system=fold),
                               bos_token=bos_token, eos_token=eos_token, flags=flags)

    try:
        try:
            return render(False), []
        except TemplateRefused:
            if not system:
                raise
            try:
                return render(True), [SYSTEM_FOLDED_NOTE]
            except (TemplateRefused, TemplateBroken):
                pass
            raise  # the fold did not help: report the template's own complaint
    except (TemplateRefused, TemplateBroken) as exc:
        raise _prompt_error(exc) from exc


def _open_think_tail(text: str, fmt: ThinkingFormat) -> str | None:
    """If the prompt ends inside an opened thinking block, the blanks after it; else None."""
    start = text.rfind(fmt.open) if fmt.open else -1
    if start == -1:
        return None
    tail = text[start + len(fmt.open):]
    return tail if not tail.strip() else None


def _thinking_block(text: str, fmt: ThinkingFormat, control: ThinkingControl, thinking: bool,
                    prefill: bool) -> tuple[str, bool, bool]:
    """The prompt's end as thinking on or off needs it: ``(text, starts_in_thinking,
    closed)``, ``closed`` when an empty block was written for a model without a switch."""
    if not fmt.open:
        return text, False, False
    can_close = bool(fmt.empty_block) and control.switch in (ThinkingSwitch.TEMPLATE_FLAG,
                                                             ThinkingSwitch.EMPTY_BLOCK,
                                                             ThinkingSwitch.SYSTEM_TAG)
    open_tail = _open_think_tail(text, fmt)
    if open_tail is not None:
        if thinking or not can_close:
            return text, True, False  # the template pre-filled the opening marker
        # pre-filled, but thinking is off: the format's empty block in its place
        return text[:len(text) - len(open_tail) - len(fmt.open)] + fmt.empty_block, False, True
    if text.rstrip().endswith(fmt.close) or not can_close:
        return text, False, False  # the template closed thinking itself (thinking off)
    if not thinking and control.switch == ThinkingSwitch.EMPTY_BLOCK:
        return text + fmt.empty_block, False, True  # no switch in the template: close it
    if thinking and prefill:
        return text + fmt.open + "\n", True, False
    return text, False, False


def build_chat_prompt(
    entry: ModelEntry,
    question: str,
    *,
    chat_template: str | None,
    bos_token: str,
    eos_token: str,
    history: tuple[Turn, ...] = (),
    system_prompt: str | None = None,
    thinking: bool = True,
    reasoning_effort: str | None = None,
) -> BuiltPrompt:
    """Render an instruct/reasoning model's chat template for this conversation."""
    template = chat_template or FALLBACK_CHATML
    system = system_prompt if system_prompt is not None else entry.prompt.system_prompt
    control = thinking_control(entry, template)
    flags = dict(entry.prompt.template_flags)
    notes: list[str] = []
    if control.switch == ThinkingSwitch.TEMPLATE_FLAG:
        flags.update(control.flags(thinking))
    elif control.switch == ThinkingSwitch.SYSTEM_TAG and not thinking:
        system = f"{system} {NO_THINK_TAG}" if system else NO_THINK_TAG  # the template drops it
    elif control.switch == ThinkingSwitch.REASONING_EFFORT:
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise PromptError(_(S.BAD_EFFORT).format(effort=reasoning_effort))
        if not thinking:
            flags["reasoning_effort"] = "low"
            notes.append(REASONING_LOW_NOTE)
        elif reasoning_effort is not None:
            flags["reasoning_effort"] = reasoning_effort
    elif control.switch == ThinkingSwitch.ALWAYS and not thinking:
        notes.append(ALWAYS_NOTE)
    text, fold_notes = _render_conversation(template, system, history, question,
                                            bos_token=bos_token, eos_token=eos_token,
                                            flags=flags)
    notes[:0] = fold_notes
    if chat_template is None:
        notes.insert(0, "The model file has no chat template; a plain ChatML layout was used.")
    fmt = get_format(entry.prompt.thinking)
    text, starts_in_thinking, closed = _thinking_block(text, fmt, control, thinking,
                                                       entry.prompt.thinking_prefilled)
    if closed:
        notes.append(EMPTY_BLOCK_NOTE)
    return BuiltPrompt(text=text, stop=(), starts_in_thinking=starts_in_thinking,
                       notes=tuple(notes))


def build_prompt(
    entry: ModelEntry,
    question: str,
    *,
    chat_template: str | None = None,
    bos_token: str = "",
    eos_token: str = "",
    history: tuple[Turn, ...] = (),
    system_prompt: str | None = None,
    thinking: bool = True,
    raw: bool = False,
    document_template: str | None = None,
    extra_stop: tuple[str, ...] = (),
    reasoning_effort: str | None = None,
) -> BuiltPrompt:
    """The prompt for any model: document wrapping, raw text, or chat template."""
    if raw:
        return BuiltPrompt(text=question, stop=extra_stop, starts_in_thinking=False)
    if entry.prompt.style == "document":
        template = document_template or entry.prompt.document_template
        if "{question}" not in template:
            raise PromptError(_(S.NO_QUESTION))
        text = build_document_prompt(template, question, history)
        return BuiltPrompt(
            text=text, stop=tuple(entry.prompt.stop) + extra_stop, starts_in_thinking=False
        )
    built = build_chat_prompt(
        entry,
        question,
        chat_template=chat_template,
        bos_token=bos_token,
        eos_token=eos_token,
        history=history,
        system_prompt=system_prompt,
        thinking=thinking,
        reasoning_effort=reasoning_effort,
    )
    if extra_stop:
        built = BuiltPrompt(built.text, built.stop + extra_stop, built.starts_in_thinking,
                            built.notes)
    return built
