"""A tiny *real* GGUF model that replays a script through llama.cpp.

There is no packaged reasoning model small enough for tests, so the tests write one:
a one-layer llama whose token embeddings are one-hot, whose attention and
feed-forward outputs are zero, and whose output matrix maps each token of the script
to the next. Real llama.cpp then generates the script exactly, token by token, at any
low temperature. The GGUF carries a real chat template, so the app's prompt building,
thinking splitter and token accounting all run for real.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from desktop_app.models.catalog import ModelEntry, PromptStyle
from desktop_app.models.sources import FileSource

# A reasoning-style template: the user turn, then the assistant marker. With
# ``prefill`` it opens <think> itself (like DeepSeek-R1's), with enable_thinking=false
# it writes an empty thinking block (like Qwen3's).
REASONING_TEMPLATE = (
    "{% for message in messages %}"
    "{% if message['role'] == 'user' %}<|user|>{{ message['content'] }}<|end|>"
    "{% elif message['role'] == 'assistant' %}<|assistant|>{{ message['content'] }}<|end|>"
    "{% else %}<|system|>{{ message['content'] }}<|end|>{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>"
    "{% if prefill_think is defined and prefill_think %}<think>{% endif %}"
    "{% endif %}"
)

SPECIALS = ["<unk>", "<s>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>",
            "<think>", "</think>"]
TOKEN_TYPE_NORMAL, TOKEN_TYPE_UNKNOWN, TOKEN_TYPE_CONTROL = 1, 2, 3
TOKEN_TYPE_USER_DEFINED, TOKEN_TYPE_BYTE = 4, 6


def split_script(text: str) -> list[str]:
    """Split a script into pieces: the tags, then words keeping their leading blanks."""
    pieces: list[str] = []
    rest = text
    while rest:
        next_tag = min((i for i in (rest.find("<think>"), rest.find("</think>")) if i != -1),
                       default=-1)
        chunk = rest if next_tag == -1 else rest[:next_tag]
        word = ""
        for char in chunk:
            if char in " \n" and word.strip():
                pieces.append(word)
                word = ""
            word += char
        if word:
            pieces.append(word)
        if next_tag == -1:
            break
        tag = "</think>" if rest.startswith("</think>", next_tag) else "<think>"
        pieces.append(tag)
        rest = rest[next_tag + len(tag):]
    return pieces


def _make_unique(pieces: list[str]) -> list[str]:
    """llama.cpp needs every vocab string once: re-split repeated words into unused parts."""
    used: set[str] = set()
    out: list[str] = []

    def place(word: str) -> list[str] | None:
        if word not in used:
            return [word]
        for cut in range(len(word) - 1, 0, -1):
            head = word[:cut]
            if head in used:
                continue
            used.add(head)
            tail = place(word[cut:])
            if tail is not None:
                return [head, *tail]
            used.discard(head)
        return None

    for piece in pieces:
        if piece in ("<think>", "</think>"):
            out.append(piece)  # tags are separate specials-like entries: see below
            continue
        parts = place(piece)
        if parts is None:
            raise ValueError(f"The script repeats {piece!r} too often for a one-token-per-"
                             "position model; vary the wording.")
        used.update(parts)
        out.extend(parts)
    if out.count("<think>") > 1 or out.count("</think>") > 1:
        raise ValueError("A script may open and close thinking once.")
    return out


def write_scripted_gguf(path: Path, script: str, *, chat_template: str = REASONING_TEMPLATE,
                        start_after: str = "<|assistant|>") -> Path:
    """Write a GGUF that, after the token ``start_after``, generates ``script`` then EOS."""
    import gguf

    pieces = _make_unique(split_script(script))
    vocab: list[str] = []
    types: list[int] = []
    for special in SPECIALS:
        vocab.append(special)
        types.append(TOKEN_TYPE_UNKNOWN if special == "<unk>" else
                     TOKEN_TYPE_USER_DEFINED if "think" in special else TOKEN_TYPE_CONTROL)
    for byte in range(256):
        vocab.append(f"<0x{byte:02X}>")
        types.append(TOKEN_TYPE_BYTE)
    ids: list[int] = []
    for piece in pieces:  # the tags reuse the special entries; words get their own
        if piece in SPECIALS:
            ids.append(SPECIALS.index(piece))
            continue
        ids.append(len(vocab))
        vocab.append(piece.replace(" ", "\u2581"))
        types.append(TOKEN_TYPE_NORMAL)
    n_vocab = len(vocab)
    n_embd = ((n_vocab + 63) // 64) * 64
    n_ff = 64
    eos = SPECIALS.index("</s>")

    chain = [SPECIALS.index(start_after), *ids, eos]
    successor: dict[int, int] = {}
    for current, following in zip(chain, chain[1:]):
        if successor.setdefault(current, following) != following:
            raise ValueError(f"Token {vocab[current]!r} would need two successors.")

    embeddings = np.zeros((n_vocab, n_embd), dtype=np.float32)
    embeddings[np.arange(n_vocab), np.arange(n_vocab)] = 1.0
    output = np.zeros((n_vocab, n_embd), dtype=np.float32)
    for source in range(n_vocab):
        output[successor.get(source, eos), source] = 10.0

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("scripted-test-model")
    writer.add_context_length(2048)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(1)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(1)
    writer.add_head_count_kv(1)
    writer.add_rope_dimension_count(n_embd)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_file_type(0)  # all F32
    writer.add_tokenizer_model("llama")
    writer.add_token_list(vocab)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(types)
    writer.add_bos_token_id(SPECIALS.index("<s>"))
    writer.add_eos_token_id(eos)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(chat_template)

    ones = np.ones(n_embd, dtype=np.float32)
    writer.add_tensor("token_embd.weight", embeddings)
    writer.add_tensor("output_norm.weight", ones)
    writer.add_tensor("output.weight", output)
    writer.add_tensor("blk.0.attn_norm.weight", ones)
    rng = np.random.default_rng(0)
    for name in ("attn_q", "attn_k", "attn_v"):
        writer.add_tensor(f"blk.0.{name}.weight",
                          rng.normal(0, 0.02, (n_embd, n_embd)).astype(np.float32))
    writer.add_tensor("blk.0.attn_output.weight", np.zeros((n_embd, n_embd), dtype=np.float32))
    writer.add_tensor("blk.0.ffn_norm.weight", ones)
    writer.add_tensor("blk.0.ffn_gate.weight",
                      rng.normal(0, 0.02, (n_ff, n_embd)).astype(np.float32))
    writer.add_tensor("blk.0.ffn_up.weight", rng.normal(0, 0.02, (n_ff, n_embd)).astype(np.float32))
    writer.add_tensor("blk.0.ffn_down.weight", np.zeros((n_embd, n_ff), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def scripted_entry(path: Path, *, model_id: str = "scripted-reasoner", role: str = "reasoning",
                   prefill: bool = False, toggle_flag: str | None = None,
                   max_tokens: int = 256) -> ModelEntry:
    """A catalog entry for a scripted GGUF (``prefill`` makes the template open <think>)."""
    flags = {"prefill_think": True} if prefill else {}
    return ModelEntry(
        id=model_id,
        name="Scripted reasoner",
        role=role,  # type: ignore[arg-type]
        family="test",
        source=FileSource(path=str(path)),
        prompt=PromptStyle(style="chat", thinking="think-tags" if role == "reasoning" else "none",
                           template_flags=flags, thinking_toggle_flag=toggle_flag),
        context_length=512,
        sampling={"temperature": 0.0, "top_p": 1.0, "top_k": 40, "min_p": 0.0,
                  "repeat_penalty": 1.0, "max_tokens": max_tokens},
    )
