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

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desktop_app.engine.chat_template import (
    TemplateBroken,
    TemplateRefused,
    mentions,
    render_template,
)
from desktop_app.models.catalog import ModelEntry
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
    EMPTY_BLOCK = "empty-block"  # we close thinking with an empty <think></think>
    REASONING_EFFORT = "reasoning-effort"  # harmony channels: low/medium/high, never off
    ALWAYS = "always"  # the format has no way to turn thinking off


THINKING_SWITCH_LABELS: dict[ThinkingSwitch, str] = {
    ThinkingSwitch.NONE: "this model does not think",
    ThinkingSwitch.TEMPLATE_FLAG: "the chat template's own switch",
    ThinkingSwitch.EMPTY_BLOCK: "an empty thinking block written for the model",
    ThinkingSwitch.REASONING_EFFORT: "reasoning effort (this model always thinks; off means low)",
    ThinkingSwitch.ALWAYS: "none: this model always thinks",
}


@dataclass(frozen=True)
class ThinkingControl:
    """The switch for a model and its template, and the flag it sets (if any)."""

    switch: ThinkingSwitch
    flag: str | None = None

    @property
    def label(self) -> str:
        return THINKING_SWITCH_LABELS[self.switch]


def thinking_control(entry: ModelEntry, template: str | None) -> ThinkingControl:
    """How this model's thinking is switched: decided once, used by prompt and window."""
    fmt = get_format(entry.prompt.thinking)
    if not fmt.thinks:
        return ThinkingControl(ThinkingSwitch.NONE)
    if not fmt.empty_block:  # no block closes it (channels): only an effort, if any
        if template and mentions(template, "reasoning_effort"):
            return ThinkingControl(ThinkingSwitch.REASONING_EFFORT, "reasoning_effort")
        return ThinkingControl(ThinkingSwitch.ALWAYS)
    # The catalog's flag, else the usual one; used only if this template really reads it
    # (a GGUF may carry an older template than the one the catalog entry was written for).
    for flag in (entry.prompt.thinking_toggle_flag, "enable_thinking"):
        if flag and template and mentions(template, flag):
            return ThinkingControl(ThinkingSwitch.TEMPLATE_FLAG, flag)
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
        return PromptError(f"The model's chat template refused the conversation: {exc}")
    return PromptError(f"The model's chat template could not be rendered: {exc}")


FALLBACK_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

EMPTY_BLOCK_NOTE = ("This chat template has no thinking switch, so an empty thinking block "
                    "was written for the model; it usually answers directly.")
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


def _close_thinking(text: str, tail: str, fmt: ThinkingFormat) -> str:
    """Close a pre-filled opening marker so the prompt ends in an empty thinking block."""
    pad = "\n\n"[len(tail):] if "\n\n".startswith(tail) else ""
    return text + pad + fmt.close + "\n\n"


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
    if control.switch == ThinkingSwitch.TEMPLATE_FLAG and control.flag:
        flags[control.flag] = thinking
    elif control.switch == ThinkingSwitch.REASONING_EFFORT:
        if reasoning_effort is not None and reasoning_effort not in REASONING_EFFORTS:
            raise PromptError(f"Reasoning effort must be low, medium or high, "
                              f"not '{reasoning_effort}'.")
        if not thinking:
            flags["reasoning_effort"] = "low"
            notes.append("This model always thinks; with thinking off it is asked for "
                         "low reasoning effort.")
        elif reasoning_effort is not None:
            flags["reasoning_effort"] = reasoning_effort
    elif control.switch == ThinkingSwitch.ALWAYS and not thinking:
        notes.append("This model always thinks: its format has no way to turn thinking off.")
    text, fold_notes = _render_conversation(template, system, history, question,
                                            bos_token=bos_token, eos_token=eos_token,
                                            flags=flags)
    notes[:0] = fold_notes
    if chat_template is None:
        notes.insert(0, "The model file has no chat template; a plain ChatML layout was used.")
    starts_in_thinking = False
    fmt = get_format(entry.prompt.thinking)
    if control.switch in (ThinkingSwitch.TEMPLATE_FLAG, ThinkingSwitch.EMPTY_BLOCK) and fmt.open:
        open_tail = _open_think_tail(text, fmt)
        if open_tail is not None and thinking:
            starts_in_thinking = True  # the template pre-filled the opening tag
        elif open_tail is not None:
            text = _close_thinking(text, open_tail, fmt)  # pre-filled, but thinking is off
            notes.append(EMPTY_BLOCK_NOTE)
        elif text.rstrip().endswith(fmt.close):
            pass  # the template closed thinking itself (thinking off)
        elif not thinking and control.switch == ThinkingSwitch.EMPTY_BLOCK:
            text += fmt.empty_block  # no switch in the template: close it for it
            notes.append(EMPTY_BLOCK_NOTE)
        elif thinking and entry.prompt.thinking_prefilled:
            text += fmt.open + "\n"
            starts_in_thinking = True
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
            raise PromptError("The document wrapping must contain {question}.")
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
