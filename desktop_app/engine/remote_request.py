"""The request a remote generation sends: its path and JSON body, the prompt shown, and
each streamed chunk's log-probabilities (:mod:`desktop_app.engine.remote` streams them)."""

from __future__ import annotations

from typing import Any

from desktop_app.engine.prompting import BuiltPrompt, build_prompt
from desktop_app.engine.protocol import GenerationRequest, TokenLogprob
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.sources import RemoteSource

MAX_TOP_LOGPROBS = 20  # the most alternatives OpenAI's API (and vLLM by default) give


def chat_messages(request: GenerationRequest, entry: ModelEntry) -> list[dict[str, str]]:
    """The conversation as chat messages: system, earlier turns, the new question."""
    messages = []
    system = request.system_prompt or entry.prompt.system_prompt
    if system:
        messages.append({"role": "system", "content": system})
    for turn in request.history:
        messages.append({"role": "user", "content": turn.user})
        messages.append({"role": "assistant", "content": turn.assistant})
    messages.append({"role": "user", "content": request.prompt})
    return messages


def shown_messages(messages: list[dict[str, str]]) -> str:
    """The messages as the prompt panel shows them (the server applies its own template)."""
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def request_body(entry: ModelEntry, request: GenerationRequest, seed: int
                 ) -> tuple[str, dict[str, Any], BuiltPrompt]:
    """The path, JSON body and shown prompt for one generation.

    Raises PromptError (one sentence) for a document wrapping without ``{question}``."""
    source = entry.source
    assert isinstance(source, RemoteSource)
    sampling = request.sampling
    body: dict[str, Any] = {
        "model": source.model,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": sampling.max_tokens,
        "temperature": sampling.temperature,
        "top_p": sampling.top_p,
        "seed": seed,
        # not in OpenAI's own API, understood by llama-server, vLLM, SGLang and Ollama
        "top_k": sampling.top_k,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,  # llama.cpp's name
        "repetition_penalty": sampling.repeat_penalty,  # vLLM's and SGLang's
    }
    if request.ignore_eos:
        body["ignore_eos"] = True
    top_k = min(max(0, request.top_logprobs), MAX_TOP_LOGPROBS)
    if entry.prompt.style == "document" or request.raw:
        built = build_prompt(entry, request.prompt, history=request.history, raw=request.raw,
                             document_template=request.document_template,
                             extra_stop=request.stop)
        body["prompt"] = built.text
        if top_k:
            body["logprobs"] = top_k  # the completions API's form: how many alternatives
        path = "/completions"
    else:
        messages = chat_messages(request, entry)
        prefilled = entry.prompt.supports_thinking and entry.prompt.thinking_prefilled
        built = BuiltPrompt(text=shown_messages(messages),
                            stop=tuple(entry.prompt.stop) + tuple(request.stop),
                            starts_in_thinking=prefilled and request.thinking)
        body["messages"] = messages
        if top_k:
            body["logprobs"], body["top_logprobs"] = True, top_k
        flags = dict(entry.prompt.template_flags)
        if entry.prompt.supports_thinking and not request.thinking:
            flags[entry.prompt.thinking_toggle_flag or "enable_thinking"] = False
        if flags:
            body["chat_template_kwargs"] = flags
        path = "/chat/completions"
    if built.stop:
        body["stop"] = list(built.stop)
    return path, body, built


def chunk_logprob(choice: dict[str, Any]) -> TokenLogprob | None:
    """The first token's log-probability and alternatives in a streamed choice, in either
    API's form (chat: ``logprobs.content[]``; completions: ``tokens`` / ``top_logprobs``).
    A server streams one token per chunk; should a chunk hold more, the first is kept."""
    data = choice.get("logprobs")
    if not isinstance(data, dict):
        return None
    content = data.get("content")
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
        top = [(str(t.get("token", "")), float(t["logprob"]))
               for t in first.get("top_logprobs") or [] if isinstance(t, dict)
               and isinstance(t.get("logprob"), int | float)]
        if isinstance(first.get("logprob"), int | float):
            return TokenLogprob(str(first.get("token", "")), float(first["logprob"]), tuple(top))
        return None
    tokens, chosen = data.get("tokens"), data.get("token_logprobs")
    if isinstance(tokens, list) and tokens and isinstance(chosen, list) and chosen \
            and isinstance(chosen[0], int | float):
        alternatives = data.get("top_logprobs")
        first_top = alternatives[0] if isinstance(alternatives, list) and alternatives else {}
        top = sorted(((str(t), float(p)) for t, p in (first_top or {}).items()
                      if isinstance(p, int | float)), key=lambda item: -item[1])
        return TokenLogprob(str(tokens[0]), float(chosen[0]), tuple(top))
    return None
