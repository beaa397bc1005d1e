"""llama.cpp through llama-cpp-python's low-level C API — the only module that touches it.

We run our own decode loop instead of ``Llama.generate``: per token it is one
``llama_decode`` on a reused one-token batch, one ``llama_sampler_sample`` on llama.cpp's
own sampler chain (top-k, top-p, min-p, temperature, seeded draw; the repetition penalty
and the greedy argmax at temperature 0 are done on the logits row, see
:class:`SamplerChain`), one ``llama_token_to_piece`` and one end-of-generation check. No
Python loop runs over the vocabulary, and no private attribute of
llama-cpp-python's high-level classes is used.

The KV cache outlives a generation: :meth:`LlamaModel.start` keeps the longest common
prefix of what the cache holds and the new prompt, so a follow-up turn evaluates only
its new tokens. Stop during prompt evaluation uses llama.cpp's abort callback (armed
only while the prompt is evaluated: it runs between graph nodes) and is recognised by
``llama_decode``'s return code.
"""

from __future__ import annotations

import ctypes
import functools
import re
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import llama_cpp
import numpy as np

from desktop_app.engine import sentences as S
from desktop_app.engine.llama.vocab import LlamaError, Vocabulary, init_backend
from desktop_app.engine.protocol import Sampling
from desktop_app.engine.sampling import (
    PENALTY_LAST_N,
    Sampled,
    penalised,
    sampled_distribution,
    sorted_log_softmax,
    top_k_ids,
)
from desktop_app.models.devices import offloaded_layers
from desktop_app.models.gguf import check_magic
from desktop_app.text.i18n import _

MAX_SEQUENCES = 8  # sequences one context can sample at once (GenerateMany)
ALL_LAYERS = 0x7FFFFFFF  # "offload every layer" for llama.cpp

DECODE_OK, DECODE_NO_SLOT, DECODE_ABORTED = 0, 1, 2  # llama_decode's return codes


class DecodeEnd(StrEnum):
    """Why the decode loop ended on its own (not because the caller stopped reading)."""

    ABORTED = "aborted"  # Stop during prompt evaluation
    CONTEXT_FULL = "context full"  # no KV slot left for the next token


def supports_gpu_offload() -> bool:
    """True when this llama-cpp-python was built with a GPU backend (Metal, CUDA, Vulkan...)."""
    init_backend()
    return bool(llama_cpp.llama_supports_gpu_offload())


def gpu_backend_name() -> str:
    """The GPU backend this build offloads to, from llama.cpp's system info ("GPU" if unsure)."""
    info = llama_cpp.llama_print_system_info().decode("utf-8", "replace")
    for name in ("Metal", "CUDA", "Vulkan", "ROCm", "HIP", "SYCL", "OpenCL", "MUSA", "CANN"):
        if re.search(rf"\b{name}\b", info, re.IGNORECASE):
            return name
    return "GPU"


def set_extra_buffers(model_params: Any, on: bool) -> None:
    """Turn llama.cpp's extra weight buffer types (AMX, CPU repacking) on or off in a
    ``llama_model_params`` (a build too old to have the switch keeps its default)."""
    if hasattr(model_params, "use_extra_bufts"):
        model_params.use_extra_bufts = on


def use_extra_buffers_by_default(on: bool) -> None:
    """Make llama-cpp-python's own API (``Llama(...)``, its server) load models with the
    extra buffers ``on`` or off in this process: the same setting as our model processes,
    so the baselines and peers we compare with do not crash where they would."""
    from llama_cpp import llama_cpp as bindings

    original = getattr(bindings.llama_model_default_params, "_triptych_original",
                       bindings.llama_model_default_params)

    def default_params() -> Any:
        params = original()
        set_extra_buffers(params, on)
        return params

    default_params._triptych_original = original  # type: ignore[attr-defined]
    bindings.llama_model_default_params = default_params
    llama_cpp.llama_model_default_params = default_params


@dataclass(frozen=True)
class Placement:
    """Where a loaded model runs: on the CPU, or with ``gpu_layers`` of ``n_layers`` offloaded."""

    device: str
    gpu_layers: int
    n_layers: int
    note: str = ""  # what is off and why: "AMX off (llama.cpp crashes on it here)"

    @property
    def on_gpu(self) -> bool:
        return self.gpu_layers > 0

    def describe(self, n_threads: int) -> str:
        """``CPU · 2 threads``, ``Metal · 29/29 layers``, with the note if any:
        ``CPU · 2 threads · AMX and weight repacking off (llama.cpp crashes on it here)``."""
        if self.on_gpu:
            where = f"{self.device} · {self.gpu_layers}/{self.n_layers} layers"
        else:
            where = f"CPU · {n_threads} thread{'s' if n_threads != 1 else ''}"
        return f"{where} · {self.note}" if self.note else where


def resolve_gpu_layers(requested: int | None, n_layers: int, offload: bool) -> int:
    """Layers to offload: ``None`` means auto (all of them when the build can), 0 is CPU only."""
    if not offload:
        return 0
    return offloaded_layers(None if requested is None or requested < 0 else requested,
                            n_layers) or 0


def gpu_layers_param(requested: int | None, offload: bool) -> int:
    """The ``n_gpu_layers`` we hand llama.cpp: 0 on a CPU-only build, "all" for auto."""
    if not offload:
        return 0
    return ALL_LAYERS if requested is None or requested < 0 else requested


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token lists."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


@dataclass(frozen=True)
class TopLogprobs:
    """The ``k`` most likely next tokens under the model (before sampling), with log-probs,
    and the log-prob of the token actually chosen; ``sampled``: the distribution the
    sampler drew it from (its ``k`` most likely); ``whole``: every token's log-probability
    under the model, largest first (the explorer's, when asked for)."""

    tokens: tuple[int, ...]
    logprobs: tuple[float, ...]
    chosen_logprob: float
    sampled: Sampled | None = None
    whole: np.ndarray | None = None


def top_logprobs(logits: np.ndarray, k: int, chosen: int | None = None, *,
                 sampled: Sampled | None = None, whole: bool = False) -> TopLogprobs:
    """Top-``k`` log-probabilities of one logits row: numpy over the row (a few vectorised
    passes over the vocabulary, no Python loop), then ``k`` Python steps."""
    top = top_k_ids(logits, k)
    peak = float(logits[top[0]])
    log_total = peak + float(np.log(np.exp(logits - np.float32(peak)).sum(dtype=np.float64)))
    chosen_logprob = float(logits[chosen]) - log_total if chosen is not None else 0.0
    return TopLogprobs(tuple(int(t) for t in top),
                       tuple(float(logits[t]) - log_total for t in top), chosen_logprob,
                       sampled, sorted_log_softmax(logits) if whole else None)


@functools.lru_cache(maxsize=MAX_SEQUENCES)
def _row_at(address: int, n_vocab: int) -> np.ndarray:
    return np.ctypeslib.as_array((ctypes.c_float * n_vocab).from_address(address))


def logits_row(pointer: Any, n_vocab: int) -> np.ndarray:
    """A numpy view of one logits row. llama.cpp writes each decode's logits into the same
    buffer, so the view for an address is made once (a new view costs more than the draw).
    The cache holds views only: a stale one is never read, because the address is always
    the one llama.cpp just returned."""
    address = ctypes.cast(pointer, ctypes.c_void_p).value
    if not address:
        raise LlamaError(_(S.NO_LOGITS))
    return _row_at(address, n_vocab)


_CANDIDATE = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
assert _CANDIDATE.itemsize == ctypes.sizeof(llama_cpp.llama_token_data)


class SamplerChain:
    """One sequence's sampling: llama.cpp's samplers, with the two costly steps done on the
    logits row with numpy.

    llama.cpp's own chain costs over 1 ms per token on a 262k-token vocabulary (Gemma 3),
    most of a pane's gap to native decode speed: its penalties sampler looks every token
    up in a hash map, and top-k copies and partially sorts the whole vocabulary. Here the
    repetition penalty changes only the logits of recently generated tokens (llama.cpp's
    formula: a logit above zero is divided by the penalty, one at or below zero
    multiplied; put back after the draw, so the row stays the model's for the
    log-probabilities), and the top-k tokens are found with a threshold below the
    largest logit, sorted, and handed to llama.cpp's top-p, min-p, temperature and seeded
    draw. The draw is the one llama.cpp's full chain makes (tests compare them). At
    temperature 0 it is numpy's argmax: the first maximum, as llama.cpp's greedy picks.
    """

    def __init__(self, sampling: Sampling, seed: int, n_vocab: int):
        lc = llama_cpp
        self.n_vocab = n_vocab
        self.settings = sampling
        # > 0: after each draw, ``last_sampled`` holds the ``figures`` most likely tokens of
        # the distribution it was drawn from (engine.sampling, from the row as the model
        # wrote it and this window of recent tokens: computed apart from the draw)
        self.figures = 0
        self.last_sampled: Sampled | None = None
        self.penalty = np.float32(sampling.repeat_penalty)
        self._recent: deque[int] = deque(maxlen=PENALTY_LAST_N)
        self._counts: dict[int, int] = {}
        self.greedy = sampling.temperature <= 0
        self.top_k = min(int(sampling.top_k), n_vocab) if sampling.top_k > 0 else 0
        self._chain: Any = None
        if self.greedy:
            return
        self._chain = lc.llama_sampler_chain_init(lc.llama_sampler_chain_default_params())
        for sampler in (lc.llama_sampler_init_top_p(float(sampling.top_p), 1),
                        lc.llama_sampler_init_min_p(float(sampling.min_p), 1),
                        lc.llama_sampler_init_temp(float(sampling.temperature)),
                        lc.llama_sampler_init_dist(seed & 0xFFFFFFFF)):
            lc.llama_sampler_chain_add(self._chain, sampler)
        # the candidates handed to the chain: the top k, or (no top-k) the whole vocabulary
        self._candidates = np.zeros(self.top_k or n_vocab, dtype=_CANDIDATE)
        self._array = lc.llama_token_data_array(
            data=ctypes.cast(self._candidates.ctypes.data, lc.llama_token_data_p),
            size=0, selected=-1, sorted=False)

    def sample(self, ctx: Any, index: int) -> int:
        """The next token from output ``index`` of the last decode (and remember it)."""
        return self.draw(logits_row(llama_cpp.llama_get_logits_ith(ctx, index), self.n_vocab))

    def draw(self, row: np.ndarray) -> int:
        """The next token for one logits row (restored before returning), remembered for
        the repetition penalty."""
        penalise = bool(self._counts) and self.penalty != 1
        if penalise or self.figures:
            recent = np.fromiter(self._counts, dtype=np.intp, count=len(self._counts))
        if penalise:
            kept = row[recent]
            row[recent] = penalised(kept, self.penalty)
        try:
            if self.greedy:
                token = int(np.argmax(row))
            elif self.top_k:
                token = self._draw_top_k(row)
            else:
                token = self._draw_all(row)
        finally:
            if penalise:
                row[recent] = kept
        if self.figures:
            self.last_sampled = sampled_distribution(row, self.settings, recent=recent,
                                                     limit=self.figures, chosen=token)
        self.accept(token)
        return token

    def _apply_chain(self, size: int, is_sorted: bool) -> int:
        array = self._array
        array.size, array.selected, array.sorted = size, -1, is_sorted
        llama_cpp.llama_sampler_apply(self._chain, ctypes.byref(array))
        return int(self._candidates["id"][array.selected])

    def _draw_top_k(self, row: np.ndarray) -> int:
        """llama.cpp's draw over the ``top_k`` largest logits of ``row``, largest first."""
        ids = top_k_ids(row, self.top_k)
        candidates = self._candidates
        candidates["id"] = ids
        candidates["logit"] = row[ids]
        return self._apply_chain(len(ids), True)

    def _draw_all(self, row: np.ndarray) -> int:
        """No top-k: the chain sees the whole vocabulary, as llama.cpp would give it."""
        candidates = self._candidates
        candidates["id"] = np.arange(self.n_vocab, dtype=np.int32)
        candidates["logit"] = row
        return self._apply_chain(self.n_vocab, False)

    def accept(self, token: int) -> None:
        """Record a generated token (sampled or forced) for the repetition penalty."""
        recent, counts = self._recent, self._counts
        if len(recent) == recent.maxlen:
            old = recent[0]
            left = counts[old] - 1
            if left:
                counts[old] = left
            else:
                del counts[old]
        recent.append(token)
        counts[token] = counts.get(token, 0) + 1

    def close(self) -> None:
        if self._chain is not None:
            llama_cpp.llama_sampler_free(self._chain)  # frees the samplers it holds
            self._chain = None

    def __del__(self) -> None:
        self.close()


class LlamaModel(Vocabulary):
    """One GGUF loaded with its context. Not thread-safe: one generation at a time."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, gpu_layers: int | None = None,
                 n_sequences: int = MAX_SEQUENCES, extra_buffers: bool = True):
        """``extra_buffers``: llama.cpp's AMX and repacked weight buffers (its default;
        off where they crash, see ``native_setup``)."""
        check_magic(path)  # a sentence for a file that is not a GGUF, before llama.cpp sees it
        init_backend()
        lc = llama_cpp
        offload = bool(lc.llama_supports_gpu_offload())
        model_params = lc.llama_model_default_params()
        model_params.n_gpu_layers = gpu_layers_param(gpu_layers, offload)
        set_extra_buffers(model_params, extra_buffers)
        self.extra_buffers = extra_buffers
        model = lc.llama_model_load_from_file(str(path).encode("utf-8"), model_params)
        if not model:
            raise ValueError(_(S.DAMAGED_FILE).format(file=path.name))
        self._init_vocab(model)
        n_layers = int(lc.llama_model_n_layer(model))
        self.placement = Placement(device=gpu_backend_name() if offload else "CPU",
                                   gpu_layers=resolve_gpu_layers(gpu_layers, n_layers, offload),
                                   n_layers=n_layers)
        params = lc.llama_context_default_params()
        params.n_ctx = n_ctx
        params.n_batch = params.n_ubatch = min(n_ctx, 512)
        params.n_seq_max = max(1, n_sequences)
        params.kv_unified = True  # sequences share one cache: a copied prompt costs nothing
        params.n_threads = params.n_threads_batch = max(1, n_threads)
        # llama.cpp's own default: flash attention where the backend has it (on the CPU,
        # +11 % decode for SmolLM2 at 1 thread; llama-bench uses it too). Llama(...) turns
        # it off unless flash_attn=True; with it on, the two give the same greedy text.
        params.flash_attn_type = lc.LLAMA_FLASH_ATTN_TYPE_AUTO
        params.no_perf = True
        ctx = lc.llama_init_from_model(model, params)
        if not ctx:
            lc.llama_model_free(model)
            self._model = None
            raise ValueError(_(S.NO_CONTEXT).format(n_ctx=n_ctx, file=path.name))
        self._ctx = ctx
        self._memory = lc.llama_get_memory(ctx)
        self.n_ctx = int(lc.llama_n_ctx(ctx))
        self.n_batch = min(self.n_ctx, 512)
        self.n_sequences = max(1, n_sequences)
        self.n_threads = max(1, n_threads)
        self._cached: list[int] = []  # the tokens of sequence 0 in the KV cache, in order
        self._prompt_ends: list[tuple[int, int]] = []  # (start, end) of each prompt's last batch
        self._one_token = (lc.llama_token * 1)()
        self._one_batch = lc.llama_batch_get_one(self._one_token, 1)
        self._should_abort: Callable[[], bool] = lambda: False
        self._abort_callback = lc.ggml_abort_callback(lambda _data: bool(self._should_abort()))
        self._no_abort = lc.ggml_abort_callback(0)

    def probe(self, n_tokens: int = 32) -> None:
        """Decode one batch of ``n_tokens`` and forget it: the path a prompt takes, which
        is where llama.cpp's AMX kernels fault on machines that cannot run them (one
        token at a time does not reach them)."""
        lc = llama_cpp
        n = max(2, min(n_tokens, self.n_batch, self.n_ctx - 1))
        seed = self.tokenize("The quick brown fox jumps over the lazy dog. " * 8,
                             add_special=False) or [0]
        tokens = (seed * (n // len(seed) + 1))[:n]
        array = (lc.llama_token * n)(*tokens)
        code = lc.llama_decode(self._ctx, lc.llama_batch_get_one(array, n))
        lc.llama_memory_clear(self._memory, True)
        self._cached, self._prompt_ends = [], []
        if code != DECODE_OK:
            raise LlamaError(_(S.TEST_BATCH).format(code=code))

    # -- vocabulary

    def tokenize_continuing(self, text: str) -> list[int]:
        """Tokens of ``text`` that keep the cached tokens whose text it starts with.

        An answer put back into the next turn's prompt often tokenizes differently from
        how the model generated it ("Sun" + "sets" against "S" + "unsets"), which would end
        the reusable cache at the start of every answer. The text is the same, so the
        tokens the model generated are kept and only the text after them is tokenized.
        """
        tokens = self.tokenize(text)
        cached = self._cached
        same = common_prefix(cached, tokens)
        if same == 0 or same >= len(cached):
            return tokens
        data = text.encode("utf-8")
        first = 1 if self.adds_bos and tokens[0] == llama_cpp.llama_vocab_bos(self._vocab) else 0
        prefix = b"".join(self.piece(token, True) for token in tokens[first:same])
        if not data.startswith(prefix):  # pieces do not spell the text (e.g. a space prefix)
            return tokens
        position, end = len(prefix), same
        while end < len(cached):
            piece = self.piece(cached[end], True)
            if not piece or not data.startswith(piece, position):
                break
            position += len(piece)
            end += 1
        while end > same and position < len(data) and data[position] & 0xC0 == 0x80:
            end -= 1  # never split a UTF-8 character between the two tokenizations
            position -= len(self.piece(cached[end], True))
        if end == same:
            return tokens
        return list(cached[:end]) + self.tokenize(data[position:], add_special=False)

    # -- threads

    def set_threads(self, n_threads: int) -> None:
        n_threads = max(1, n_threads)
        if n_threads != self.n_threads:
            self.n_threads = n_threads
            llama_cpp.llama_set_n_threads(self._ctx, n_threads, n_threads)

    # -- decoding

    def sampler(self, sampling: Sampling, seed: int) -> SamplerChain:
        return SamplerChain(sampling, seed, self.n_vocab)

    def evaluate_prompt(self, tokens: Sequence[int], should_stop: Callable[[], bool]) -> int:
        """Bring sequence 0 of the cache to ``tokens``; return how many were evaluated.

        The longest prefix already in the cache is kept (at least the last token is
        evaluated, for its logits). Raises :class:`PromptAborted` if ``should_stop``
        turned true meanwhile; the cache keeps whatever was evaluated.
        """
        lc = llama_cpp
        common = common_prefix(self._cached, tokens)
        keep = min(common, len(tokens) - 1)
        for start, end in self._prompt_ends:
            if end == len(tokens) == common and start <= keep:
                # This exact prompt was evaluated before: redo its last batch as it was,
                # so a repeated request sees bit-identical logits (greedy stays greedy).
                keep = start
        lc.llama_memory_seq_keep(self._memory, 0)  # other sequences (GenerateMany) go
        if not lc.llama_memory_seq_rm(self._memory, 0, keep, -1):
            lc.llama_memory_clear(self._memory, True)
            keep = 0
        del self._cached[keep:]
        self._prompt_ends = [(a, b) for a, b in self._prompt_ends if b <= keep]
        self._should_abort = should_stop
        lc.llama_set_abort_callback(self._ctx, self._abort_callback, None)
        try:
            for start in range(keep, len(tokens), self.n_batch):
                chunk = tokens[start:start + self.n_batch]
                array = (lc.llama_token * len(chunk))(*chunk)
                code = lc.llama_decode(self._ctx, lc.llama_batch_get_one(array, len(chunk)))
                if code == DECODE_ABORTED:
                    self._sync_cached(tokens)
                    raise PromptAborted
                if code != DECODE_OK:
                    self._sync_cached(tokens)
                    raise LlamaError(_(S.PROMPT_EVALUATION).format(code=code))
                self._cached.extend(chunk)
            self._prompt_ends.append((start, len(tokens)))
        finally:
            lc.llama_set_abort_callback(self._ctx, self._no_abort, None)
            self._should_abort = lambda: False
        return len(tokens) - keep

    def _sync_cached(self, tokens: Sequence[int]) -> None:
        """After a failed or aborted decode: the cache holds a prefix of ``tokens``."""
        last = int(llama_cpp.llama_memory_seq_pos_max(self._memory, 0))
        self._cached = list(tokens[: max(0, last + 1)])

    def decode_next(self, token: int) -> DecodeEnd | None:
        """Append one sampled token to sequence 0 (one-token batch, reused)."""
        self._one_token[0] = token
        code = llama_cpp.llama_decode(self._ctx, self._one_batch)
        if code == DECODE_OK:
            self._cached.append(token)
            return None
        if code == DECODE_NO_SLOT:
            return DecodeEnd.CONTEXT_FULL
        if code == DECODE_ABORTED:
            return DecodeEnd.ABORTED
        raise LlamaError(_(S.DECODE_FAILED).format(code=code))

    def logits(self, index: int = -1) -> np.ndarray:
        """The logits row of output ``index`` of the last decode (a view, valid until the next)."""
        return logits_row(llama_cpp.llama_get_logits_ith(self._ctx, index), self.n_vocab)

    def stream(self, tokens: Sequence[int], sampler: SamplerChain, max_new: int,
               should_stop: Callable[[], bool]) -> TokenStream:
        """A single-sequence decode loop over ``tokens`` (see :class:`TokenStream`)."""
        return TokenStream(self, tokens, sampler, max_new, should_stop)

    def many(self, tokens: Sequence[int], samplers: Sequence[SamplerChain], max_new: int,
             should_stop: Callable[[], bool]) -> ManyStream:
        """Several sequences from one prompt (see :class:`ManyStream`)."""
        return ManyStream(self, tokens, samplers, max_new, should_stop)

    @property
    def cached_tokens(self) -> int:
        return len(self._cached)

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            llama_cpp.llama_free(self._ctx)
            self._ctx = None
        if getattr(self, "_model", None):
            llama_cpp.llama_model_free(self._model)
            self._model = None

    def __del__(self) -> None:
        self.close()


class PromptAborted(Exception):
    """Stop was pressed while the prompt was being evaluated."""


class TokenStream:
    """Tokens sampled on sequence 0, one per iteration; ``ended`` says why it stopped
    by itself. The caller stops early by no longer iterating (or via ``should_stop``).

    ``evaluated`` is how many prompt tokens were evaluated (the rest came from the cache).
    """

    def __init__(self, model: LlamaModel, tokens: Sequence[int], sampler: SamplerChain,
                 max_new: int, should_stop: Callable[[], bool]):
        self.model = model
        self.tokens = tokens
        self.sampler = sampler
        self.max_new = max_new
        self.should_stop = should_stop
        self.ended: DecodeEnd | None = None
        self.evaluated = 0
        self.top_k_logprobs = 0  # > 0: fill ``last_logprobs`` for every sampled token
        self.whole = False  # with top_k_logprobs: every token's log-probability too
        self.last_logprobs: TopLogprobs | None = None
        self.forced: list[int] = []  # tokens to emit next instead of sampling (budget forcing)

    def __iter__(self) -> Iterator[int]:
        model, ctx = self.model, self.model._ctx
        try:
            self.evaluated = model.evaluate_prompt(self.tokens, self.should_stop)
        except PromptAborted:
            self.ended = DecodeEnd.ABORTED
            return
        self.sampler.figures = self.top_k_logprobs
        sample = self.sampler.sample
        decode = model.decode_next
        for produced in range(self.max_new):
            if self.forced:  # budget forcing: a token the caller chose
                token = self.forced.pop(0)
                self.sampler.accept(token)
                self.last_logprobs = None
            else:
                token = sample(ctx, -1)
                if self.top_k_logprobs:  # the logits row is intact until the next decode
                    self.last_logprobs = top_logprobs(
                        model.logits(-1), self.top_k_logprobs, token,
                        sampled=self.sampler.last_sampled, whole=self.whole)
            yield token
            if produced + 1 >= self.max_new:
                return
            ended = decode(token)
            if ended is not None:
                self.ended = ended
                return


class ManyStream:
    """N sequences sampled from one prompt at once, each with its own sampler (and seed).

    The prompt is evaluated once on sequence 0 and its cache entries are shared with
    sequences 1..N-1 (``llama_memory_seq_cp``: no copy of the data with a unified
    cache); then each step decodes one token of every live sequence in one batch.
    Iterating yields ``(sequence, token)``; :meth:`finish` retires a sequence.
    """

    def __init__(self, model: LlamaModel, tokens: Sequence[int], samplers: Sequence[SamplerChain],
                 max_new: int, should_stop: Callable[[], bool]):
        if not 1 <= len(samplers) <= model.n_sequences:
            raise ValueError(_(S.TOO_MANY_RUNNING).format(most=model.n_sequences))
        self.model = model
        self.tokens = tokens
        self.samplers = list(samplers)
        self.max_new = max_new
        self.should_stop = should_stop
        self.ended: DecodeEnd | None = None
        self.evaluated = 0
        self.top_k_logprobs = 0  # > 0: fill ``last_logprobs[sequence]`` for sampled tokens
        self.last_logprobs: dict[int, TopLogprobs] = {}
        self._live = set(range(len(samplers)))
        self.forced: dict[int, list[int]] = {}  # per sequence: tokens to emit next (budget)

    def finish(self, sequence: int) -> None:
        self._live.discard(sequence)

    def _next(self, sequence: int, row: int) -> int:
        """The sequence's next token: a forced one (budget forcing), else a sampled one."""
        queue = self.forced.get(sequence)
        if queue:
            token = queue.pop(0)
            self.samplers[sequence].accept(token)
            self.last_logprobs.pop(sequence, None)
            return token
        sampler = self.samplers[sequence]
        sampler.figures = self.top_k_logprobs
        token = sampler.sample(self.model._ctx, row)
        if self.top_k_logprobs:  # every row is intact until the next decode
            self.last_logprobs[sequence] = top_logprobs(
                self.model.logits(row), self.top_k_logprobs, token,
                sampled=sampler.last_sampled)
        return token

    def __iter__(self) -> Iterator[tuple[int, int]]:
        lc, model = llama_cpp, self.model
        try:
            self.evaluated = model.evaluate_prompt(self.tokens, self.should_stop)
        except PromptAborted:
            self.ended = DecodeEnd.ABORTED
            return
        n = len(self.samplers)
        for sequence in range(1, n):
            lc.llama_memory_seq_cp(model._memory, 0, sequence, -1, -1)
        # what a later prompt can reuse is the prompt: sequence 0's own tokens after it are
        # removed by the next evaluate_prompt (they lie beyond the kept prefix)
        model._cached = list(self.tokens)
        batch = lc.llama_batch_init(n, 0, 1)
        try:
            position = len(self.tokens)
            rows = {sequence: -1 for sequence in range(n)}  # logits row: the prompt's last
            for produced in range(self.max_new):
                sampled = [(sequence, self._next(sequence, rows[sequence]))
                           for sequence in sorted(self._live)]
                for sequence, token in sampled:
                    yield sequence, token
                if produced + 1 >= self.max_new:
                    return
                live = [(s, t) for s, t in sampled if s in self._live]
                if not live:
                    return
                batch.n_tokens = len(live)
                for row, (sequence, token) in enumerate(live):
                    batch.token[row] = token
                    batch.pos[row] = position
                    batch.n_seq_id[row] = 1
                    batch.seq_id[row][0] = sequence
                    batch.logits[row] = 1
                    rows[sequence] = row
                code = lc.llama_decode(model._ctx, batch)
                if code == DECODE_NO_SLOT:
                    self.ended = DecodeEnd.CONTEXT_FULL
                    return
                if code != DECODE_OK:
                    raise LlamaError(_(S.DECODE_FAILED).format(code=code))
                position += 1
        finally:
            lc.llama_batch_free(batch)
