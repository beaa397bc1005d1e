"""A model's vocabulary through llama.cpp: text to tokens and back, and which are special.

:class:`Vocabulary` is the tokenizer half of a loaded model. :class:`~desktop_app.engine.
llama.backend.LlamaModel` is one (with a context to generate in); :meth:`Vocabulary.open`
loads only the vocabulary of a GGUF (no weights: fast, little memory), for
``triptych prompt --tokens``. Both describe the prompt's tokens the same way
(:meth:`Vocabulary.describe`), so the window and the command line show the same ids.
"""

from __future__ import annotations

import ctypes
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import llama_cpp

from desktop_app.engine import sentences as S
from desktop_app.engine.protocol import PromptToken
from desktop_app.models.gguf import check_magic
from desktop_app.text.i18n import _

CONTROL = llama_cpp.LLAMA_TOKEN_ATTR_CONTROL  # BOS, <|im_start|>, <start_of_turn>
ADDED = llama_cpp.LLAMA_TOKEN_ATTR_USER_DEFINED  # Qwen3's <think>; Gemma's runs of blanks

_backend_ready = False


class LlamaError(RuntimeError):
    """llama.cpp failed in a way a sentence can describe."""


def init_backend() -> None:
    """llama.cpp's one-time set-up, before the first model is loaded."""
    global _backend_ready
    if not _backend_ready:
        llama_cpp.llama_backend_init()
        _backend_ready = True


class Vocabulary:
    """The tokenizer of a loaded llama.cpp model (``_model``)."""

    _model: Any = None

    def _init_vocab(self, model: Any) -> None:
        self._model = model
        self._vocab = llama_cpp.llama_model_get_vocab(model)
        self.n_vocab = int(llama_cpp.llama_vocab_n_tokens(self._vocab))
        self._piece = ctypes.create_string_buffer(64)

    @classmethod
    def open(cls, path: Path) -> Vocabulary:
        """Only the vocabulary of the GGUF at ``path`` (close it when done)."""
        check_magic(path)
        init_backend()
        params = llama_cpp.llama_model_default_params()
        params.vocab_only = True
        # llama-cpp-python prints llama.cpp's loader messages unless its logger says not to
        # (as Llama(verbose=False) does): they are no part of a command's output
        logger = logging.getLogger("llama-cpp-python")
        level = logger.level
        logger.setLevel(logging.ERROR)
        try:
            model = llama_cpp.llama_model_load_from_file(str(path).encode("utf-8"), params)
        finally:
            logger.setLevel(level)
        if not model:
            raise ValueError(_(S.BAD_VOCABULARY).format(file=path.name))
        vocabulary = cls()
        vocabulary._init_vocab(model)
        return vocabulary

    @property
    def chat_template(self) -> str | None:
        template = llama_cpp.llama_model_chat_template(self._model, None)
        return template.decode("utf-8", "replace") if template else None

    def token_text(self, token: int) -> str:
        if token < 0:
            return ""
        text = llama_cpp.llama_vocab_get_text(self._vocab, token)
        return text.decode("utf-8", "replace") if text else ""

    @property
    def bos_text(self) -> str:
        return self.token_text(int(llama_cpp.llama_vocab_bos(self._vocab)))

    @property
    def eos_text(self) -> str:
        return self.token_text(int(llama_cpp.llama_vocab_eos(self._vocab)))

    @property
    def adds_bos(self) -> bool:
        return bool(llama_cpp.llama_vocab_get_add_bos(self._vocab))

    def without_template_bos(self, text: str) -> str:
        """A prompt's text as tokenized: a BOS the template wrote is left to the tokenizer,
        which adds it when the model wants one (so it is not doubled)."""
        bos = self.bos_text
        return text[len(bos):] if bos and self.adds_bos and text.startswith(bos) else text

    def prompt_ids(self, text: str) -> list[int]:
        """The tokens of a whole prompt, as a fresh model process evaluates them."""
        return self.tokenize(self.without_template_bos(text))

    def tokenize(self, text: str | bytes, add_special: bool = True) -> list[int]:
        """Tokens of ``text``, special tokens parsed, BOS added when the model wants one."""
        data = text.encode("utf-8") if isinstance(text, str) else text
        capacity = len(data) + 8
        buffer = (llama_cpp.llama_token * capacity)()
        n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity, add_special,
                                     True)
        if n < 0:
            capacity = -n
            buffer = (llama_cpp.llama_token * capacity)()
            n = llama_cpp.llama_tokenize(self._vocab, data, len(data), buffer, capacity,
                                         add_special, True)
            if n < 0:
                raise LlamaError(_(S.NOT_TOKENIZED))
        return list(buffer[:n])

    def piece(self, token: int, special: bool = False) -> bytes:
        """The bytes of one token (a UTF-8 character may span several tokens)."""
        n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece, len(self._piece), 0,
                                           special)
        if n < 0:
            self._piece = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, self._piece, -n, 0, special)
        return self._piece.raw[:n]

    def is_eog(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self._vocab, token))

    def is_special(self, token: int, text: str) -> bool:
        """A token that marks structure rather than spells text: a control token, or an
        added one that is not just blanks (Gemma adds "\n\n" and runs of spaces as
        tokens of their own: they are text)."""
        attr = int(llama_cpp.llama_vocab_get_attr(self._vocab, token))
        return bool(attr & CONTROL) or bool(attr & ADDED) and bool(text.strip())

    def describe(self, tokens: Sequence[int]) -> tuple[PromptToken, ...]:
        """Each token's id, its text (special tokens spelled out; a byte that is part of a
        character as ``<0xE2>``) and whether it is special."""
        described = []
        for token in tokens:
            data = self.piece(token, True)
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                text = "".join(f"<0x{byte:02X}>" for byte in data)
            described.append(PromptToken(token, text, self.is_special(token, text)))
        return tuple(described)

    def close(self) -> None:
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __enter__(self) -> Vocabulary:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
