"""The blind "which stage is this?" quiz, as plain data (issue 28, item 5).

The panes answer under neutral labels (``Pane A``, ``Pane B``, ...) in a shuffled order;
every name a model could give itself away by -- its catalog name, id and family, and the
known aliases of its family (the maker, the product) -- is masked, in streamed text too
(:class:`Masker` holds back a tail that could still become a name split across chunks).
The class guesses a stage per pane; :meth:`Quiz.reveal` shows the truth and the score.

The window (``ui/quiz_bar.py``) and ``triptych quiz`` (``cli/quiz.py``) share this module.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from desktop_app.text.i18n import N_, _

STAGES = ("base", "instruct", "reasoning")
LABELS = tuple(f"Pane {letter}" for letter in "ABCDEFGH")  # ids too: shown through shown_label
MASK = N_("[name hidden]")  # in the window's language where it is shown

# What the prompt shown says in blind mode: the chat template names the family (Qwen's
# <|im_start|>, Gemma's <start_of_turn>) as surely as the model would, so it is a tell.
# marked here, translated where it is shown: _(TEMPLATE_HIDDEN)
TEMPLATE_HIDDEN = N_("Hidden in the blind quiz: the text around your question (a chat "
                     "template, or a document to continue) would give the stage and the "
                     "family away.")

# Names a family's models write about themselves beyond the catalog's own words: the
# maker, the product, the lab. Keyed by a lower-case prefix of the catalog's family.
FAMILY_ALIASES: dict[str, tuple[str, ...]] = {
    "qwen": ("Qwen", "Alibaba Cloud", "Alibaba", "Tongyi Qianwen", "Tongyi", "通义千问", "通义"),
    "gemma": ("Gemma", "Google DeepMind", "DeepMind", "Google", "Gemini"),
    "smollm": ("SmolLM", "Hugging Face", "HuggingFace", "Huggingface", "HuggingFaceTB"),
    "deepseek": ("DeepSeek", "深度求索"),
    "gpt-oss": ("gpt-oss", "OpenAI", "ChatGPT", "GPT-4", "GPT"),
    "olmo": ("OLMo", "Tülu", "Tulu", "Allen Institute for AI", "AllenAI", "Ai2"),
    "llama": ("Llama", "LLaMA", "Meta AI", "Meta"),
    "mistral": ("Mistral AI", "Mistral"),
    "phi": ("Phi", "Microsoft"),
}


def aliases_for(family: str) -> tuple[str, ...]:
    """The known aliases of a catalog family ("Qwen2 (R1 distill)" has Qwen's and DeepSeek's)."""
    words = family.lower()
    found: list[str] = []
    for key, names in FAMILY_ALIASES.items():
        if key in words:
            found.extend(names)
    return tuple(found)


def mask_terms(models: Iterable[tuple[str, str, str]]) -> tuple[str, ...]:
    """Every word to mask for these ``(id, name, family)`` triples: the catalog's name, id
    and family, the name without its parenthesis ("Qwen3 0.6B" of "Qwen3 0.6B (thinking)"),
    and the family's aliases. Longest first, so "Hugging Face" masks before "Face" could."""
    terms: set[str] = set()
    for model_id, name, family in models:
        bare = re.sub(r"\s*\(.*?\)\s*", " ", name).strip()
        for term in (model_id, name, bare, family, *aliases_for(family), *aliases_for(name)):
            if term.strip():
                terms.add(term.strip())
    return tuple(sorted(terms, key=lambda term: (-len(term), term)))


def shown_label(label: str) -> str:
    """A neutral label ("Pane A", also an id in the quiz's data) in the window's language."""
    letter = label.removeprefix("Pane ")
    return _("Pane {letter}").format(letter=letter) if letter != label else label


class Masker:
    """Masks the terms in a stream of text, case-insensitively, chunk by chunk.

    :meth:`feed` returns what is safe to show now and keeps back the longest tail that is
    the start of a term ("Qw" of "Qwen" arriving as "Qw" + "en"); :meth:`flush` returns the
    rest at the end of the stream. ``mask(text)`` does one whole text.
    """

    def __init__(self, terms: Sequence[str], replacement: str | None = None):
        self.terms = tuple(term for term in terms if term)
        self.replacement = _(MASK) if replacement is None else replacement
        self._lower = tuple(term.lower() for term in self.terms)
        # a name stands alone: "Phi" is not the start of "philosophy", nor "Meta" of "metadata"
        self._pattern = (re.compile(
            r"(?<![A-Za-z])(?:" + "|".join(re.escape(term) for term in self.terms)
            + r")(?![A-Za-z])", re.IGNORECASE) if self.terms else None)
        self._held = ""

    def mask(self, text: str) -> str:
        return self._pattern.sub(self.replacement, text) if self._pattern else text

    def feed(self, text: str) -> str:
        text = self._held + text
        self._held = ""
        if not self._pattern:
            return text
        cut = len(text) - self._partial_tail(text)  # "Qw" may yet become "Qwen"
        for match in self._pattern.finditer(text):
            if match.start() < cut < match.end() or match.end() == len(text):
                # hold the whole name: "Phi" may become "Philosophy", "Alibaba" "Alibaba Cloud"
                cut = min(cut, match.start())
        self._held = text[cut:]
        return self.mask(text[:cut])

    def flush(self) -> str:
        rest, self._held = self._held, ""
        return self.mask(rest)

    def _partial_tail(self, text: str) -> int:
        """The length of the longest tail of ``text`` that starts some term (not a whole one)."""
        lower = text.lower()
        best = 0
        for term in self._lower:
            for size in range(min(len(term) - 1, len(lower)), best, -1):
                if term.startswith(lower[-size:]):
                    best = size
                    break
        return best


def shuffled(count: int, seed: int | None = None) -> list[int]:
    """A seeded order of ``range(count)``: position i of the quiz shows pane ``order[i]``."""
    order = list(range(count))
    random.Random(seed).shuffle(order)
    return order


@dataclass(frozen=True)
class QuizPane:
    """One pane of the quiz: its neutral label and the truth it hides."""

    label: str
    model_id: str
    name: str
    family: str
    stage: str


@dataclass(frozen=True)
class Reveal:
    """The truth per pane beside the guess, and the score."""

    rows: tuple[tuple[QuizPane, str | None], ...]
    score: int

    @property
    def total(self) -> int:
        return len(self.rows)

    def lines(self) -> list[str]:
        """``Pane A: instruct (Qwen3 0.6B, Qwen3) -- you guessed base ✗`` per pane."""
        out = []
        for pane, guess in self.rows:
            mark = "✓" if guess == pane.stage else "✗"
            said = (_("you guessed {stage} {mark}").format(stage=guess, mark=mark) if guess
                    else _("no guess ✗"))
            out.append(f"{pane.label}: {pane.stage} ({pane.name}, {pane.family}) — {said}")
        return out

    def headline(self) -> str:
        return _("Score: {score} of {total}").format(score=self.score, total=self.total)

    def to_dict(self) -> dict[str, object]:
        return {
            "score": self.score,
            "total": self.total,
            "panes": [{"label": pane.label, "model": pane.model_id, "name": pane.name,
                       "family": pane.family, "stage": pane.stage, "guess": guess,
                       "correct": guess == pane.stage} for pane, guess in self.rows],
        }


@dataclass
class Quiz:
    """A blind round: the panes in shown order, the guesses, whether it is revealed."""

    panes: list[QuizPane]
    terms: tuple[str, ...] = ()
    guesses: dict[str, str] = field(default_factory=dict)
    revealed: bool = False

    @classmethod
    def start(cls, models: Sequence[tuple[str, str, str, str]], seed: int | None = None,
              ) -> tuple[Quiz, list[int]]:
        """A quiz over ``(id, name, family, stage)`` per pane, shuffled by ``seed``; returns
        the quiz and the order (shown position -> original pane index)."""
        if len(models) > len(LABELS):
            raise ValueError(f"A quiz holds at most {len(LABELS)} panes.")
        order = shuffled(len(models), seed)
        panes = [QuizPane(LABELS[shown], *models[original])
                 for shown, original in enumerate(order)]
        terms = mask_terms((m[0], m[1], m[2]) for m in models)
        return cls(panes, terms), order

    @property
    def labels(self) -> list[str]:
        return [pane.label for pane in self.panes]

    def masker(self) -> Masker:
        """A fresh masker for one stream (a pane's thinking, or its answer)."""
        return Masker(self.terms)

    def guess(self, label: str, stage: str | None) -> None:
        """Record (or with None, clear) the guess for a pane; one sentence if it is wrong."""
        if label not in self.labels:
            raise ValueError(f"There is no {label!r} in this quiz: the panes are "
                             f"{', '.join(self.labels)}.")
        if stage is None:
            self.guesses.pop(label, None)
            return
        if stage not in STAGES:
            raise ValueError(f"'{stage}' is not a stage: guess one of {', '.join(STAGES)}.")
        self.guesses[label] = stage

    def guess_all(self, stages: Sequence[str]) -> None:
        """One guess per pane in shown order (``--guesses base,instruct,reasoning``)."""
        if len(stages) != len(self.panes):
            raise ValueError(f"Give one guess per pane: {len(self.panes)} guesses, "
                             f"not {len(stages)}.")
        for label, stage in zip(self.labels, stages, strict=True):
            self.guess(label, stage)

    def reveal(self) -> Reveal:
        self.revealed = True
        rows = tuple((pane, self.guesses.get(pane.label)) for pane in self.panes)
        return Reveal(rows, sum(1 for pane, guess in rows if guess == pane.stage))


_TURN_KEYS = ("prompt", "thinking_s", "thinking_tokens", "thinking_unterminated",
              "answer_tokens", "finish_reason", "still_thinking", "verdict")


def blind_export(pane: dict[str, Any], label: str, masker: Masker) -> dict[str, Any]:
    """A pane's export data (``PaneSession.export``) as the blind quiz shows it: the neutral
    label for model and role, the names masked, the text sent replaced by
    :data:`TEMPLATE_HIDDEN`, and the tokens left out (their text is unmasked)."""
    turns = []
    for turn in pane.get("turns", []):
        blind = {key: turn.get(key) for key in _TURN_KEYS}
        for key in ("thinking", "answer", "metrics", "error"):
            value = turn.get(key)
            blind[key] = masker.mask(value) if isinstance(value, str) else value
        blind["prompt_sent"] = TEMPLATE_HIDDEN if turn.get("prompt_sent") else ""
        blind["prompt_notes"] = []  # how the prompt was adapted names the template
        detail = turn.get("verdict_detail")
        blind["verdict_detail"] = (None if detail is None else
                                   {key: masker.mask(str(value)) for key, value in detail.items()})
        turns.append(blind)
    missing = pane.get("missing") or ""
    return {"model": label, "model_id": "", "role": "",
            "missing": "This pane's model can't run." if missing else "", "turns": turns}
