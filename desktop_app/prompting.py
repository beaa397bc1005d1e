"""What text each kind of model is sent.

Base models get a *document* to continue (the user's question wrapped as a Q&A page),
with stop sequences so they do not run on into the next question they invent.
Instruct and reasoning models get their GGUF chat template, rendered here with the
same Jinja2 conventions llama.cpp uses, so template flags like ``enable_thinking``
reach the template and the exact text sent can be shown to the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from desktop_app.catalog import ModelEntry


@dataclass(frozen=True)
class Turn:
    """One earlier exchange in a pane: the user's message and the model's answer."""

    user: str
    assistant: str


@dataclass(frozen=True)
class BuiltPrompt:
    """The exact text to send and how to read what comes back."""

    text: str
    stop: tuple[str, ...]
    starts_in_thinking: bool


class PromptError(Exception):
    """The prompt could not be built (e.g. a broken chat template)."""


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


def render_chat_template(
    template: str,
    messages: list[dict[str, str]],
    *,
    bos_token: str = "",
    eos_token: str = "",
    flags: dict[str, Any] | None = None,
) -> str:
    """Render a Hugging Face-style Jinja2 chat template, sandboxed, as llama.cpp does."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise PromptError(f"The model's chat template refused the conversation: {message}")

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True
    )
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
    try:
        return env.from_string(template).render(
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=True,
            **(flags or {}),
        )
    except PromptError:
        raise
    except Exception as exc:  # a template is code from the model file: report, never crash
        raise PromptError(f"The model's chat template could not be rendered: {exc}") from exc


FALLBACK_CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


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
) -> BuiltPrompt:
    """Render an instruct/reasoning model's chat template for this conversation."""
    messages: list[dict[str, str]] = []
    system = system_prompt if system_prompt is not None else entry.prompt.system_prompt
    if system:
        messages.append({"role": "system", "content": system})
    for turn in history:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    messages.append({"role": "user", "content": question})
    flags = dict(entry.prompt.template_flags)
    supports_thinking = entry.prompt.supports_thinking
    if supports_thinking and entry.prompt.thinking_toggle_flag:
        flags[entry.prompt.thinking_toggle_flag] = thinking
    text = render_chat_template(
        chat_template or FALLBACK_CHATML,
        messages,
        bos_token=bos_token,
        eos_token=eos_token,
        flags=flags,
    )
    starts_in_thinking = False
    if supports_thinking:
        tail = text.rstrip()
        if tail.endswith("</think>"):
            starts_in_thinking = False  # the template closed thinking (thinking off)
        elif tail.endswith("<think>"):
            starts_in_thinking = True  # the template pre-filled the opening tag
        elif not thinking and not entry.prompt.thinking_toggle_flag:
            text += "<think>\n\n</think>\n\n"  # no switch in the template: close it for it
        elif thinking and entry.prompt.thinking_prefilled:
            text += "<think>\n"
            starts_in_thinking = True
    return BuiltPrompt(text=text, stop=(), starts_in_thinking=starts_in_thinking)


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
    )
    if extra_stop:
        built = BuiltPrompt(built.text, built.stop + extra_stop, built.starts_in_thinking)
    return built
