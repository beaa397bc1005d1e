"""Reinforcement learning from human feedback, the whole loop on one prompt.

1. **Rank**: N sampled answers (one model or several), the class's pairwise votes on them
   (:mod:`desktop_app.rollouts.preferences`).
2. **Score and train**: Bradley–Terry strengths from the votes; a reward model trained on
   the votes, on the answers' embeddings and text features, and its cross-validated
   agreement with the class beside the proxies' (the longest answer, a judge's P("yes")),
   on the same votes (:mod:`desktop_app.rollouts.reward`).
3. **Optimise**: best-of-n against the reward model for n = 1, 2, 4 … 64, with each pick
   judged by the gold: the class's votes on it, or the key where one exists.

:class:`RlhfSession` is the data (what the window saves and exports, what ``triptych
rlhf`` prints); :func:`sample_answers` and :func:`embed_answers` talk to models (blocking:
off the GUI thread); :func:`analyse` is arithmetic. The window and the command line share
all of it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app import paths
from desktop_app.engine.protocol import GenerationRequest, Sampling
from desktop_app.rollouts.preferences import Strengths, Vote, bradley_terry
from desktop_app.rollouts.reward import (
    BEST_OF_NS,
    Agreement,
    BestOfN,
    answer_features,
    best_of_n_curve,
    cross_validated_agreement,
    held_out_rewards,
    proxy_agreement,
)
from desktop_app.rollouts.run import AnswerKey, Rollout, rollout_seeds, run_rollouts
from desktop_app.text.i18n import N_

MAX_ANSWERS = 64
# the length proxy's name in its agreement (the window translates it: N_ marks it)
LONGEST_ANSWER = N_("the longest answer")


@dataclass
class Answer:
    """One sampled answer: its text, the model that wrote it, and (with a key) whether it
    is right (None: no key, or not checked)."""

    text: str
    model: str
    correct: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "model": self.model, "correct": self.correct}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Answer:
        correct = data.get("correct")
        return cls(str(data["text"]), str(data.get("model", "")),
                   None if correct is None else bool(correct))


@dataclass
class RlhfSession:
    """A prompt, its answers, the class's votes, and (once computed) the embeddings and a
    judge's scores. Saved with the window's session and exported."""

    prompt: str
    answers: list[Answer] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    embeddings: list[list[float]] | None = None
    embedding_model: str | None = None
    judge_scores: list[float | None] | None = None
    judge_model: str | None = None

    @property
    def keyed(self) -> bool:
        return any(a.correct is not None for a in self.answers)

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.prompt, "answers": [a.to_dict() for a in self.answers],
                "votes": [v.to_dict() for v in self.votes],
                "embedding_model": self.embedding_model, "judge_model": self.judge_model,
                "judge_scores": self.judge_scores}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RlhfSession:
        """A saved session (embeddings are not saved: they are recomputed)."""
        answers = [Answer.from_dict(a) for a in data.get("answers", [])]
        votes = [Vote.from_dict(v) for v in data.get("votes", [])]
        session = cls(prompt=str(data.get("prompt", "")), answers=answers,
                      votes=[v for v in votes if v.a != v.b
                             and 0 <= v.a < len(answers) and 0 <= v.b < len(answers)],
                      judge_model=data.get("judge_model"))
        scores = data.get("judge_scores")
        if isinstance(scores, list) and len(scores) == len(session.answers):
            session.judge_scores = [None if s is None else float(s) for s in scores]
        return session


def session_path() -> Path:
    """Where the window keeps the class's last RLHF session (answers and votes)."""
    return paths.data_dir() / "rlhf" / "session.json"


def save_session(session: RlhfSession, path: Path | None = None) -> Path:
    """Write the session as JSON (atomically: a crash never leaves half a file)."""
    target = path or session_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(session.to_dict(), ensure_ascii=False, indent=1),
                         encoding="utf-8")
    os.replace(temporary, target)
    return target


def load_session(path: Path | None = None) -> RlhfSession | None:
    """The saved session, or None when there is none (or it cannot be read)."""
    try:
        data = json.loads((path or session_path()).read_text(encoding="utf-8"))
        return RlhfSession.from_dict(data) if isinstance(data, dict) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def export_summary(session: RlhfSession, mask: Callable[[str], str] | None = None
                   ) -> dict[str, Any] | None:
    """The class's votes for the main window's export: the prompt, each answer with its
    Bradley–Terry strength, 95 % interval and votes, and the votes (``a``, ``b``,
    ``winner``), or None while there are no votes. ``mask`` (the blind quiz) masks the
    texts and leaves out every model's name: the answers' models, the judge and the
    embedding model."""
    if not session.votes or not session.answers:
        return None
    strengths = bradley_terry(len(session.answers), session.votes)
    blind = mask is not None
    shown = mask or (lambda text: text)
    scores = session.judge_scores
    answers = []
    for index, answer in enumerate(session.answers):
        row: dict[str, Any] = {
            "index": index, "text": shown(answer.text),
            "model": "" if blind else answer.model,
            "strength": strengths.strength[index],
            "interval": [strengths.low[index], strengths.high[index]],
            "votes": strengths.votes[index]}
        if answer.correct is not None:
            row["correct"] = answer.correct
        if scores is not None:
            row["judge_p_yes"] = scores[index]
        answers.append(row)
    return {"prompt": shown(session.prompt), "answers": answers,
            "votes": [v.to_dict() for v in session.votes],
            "strengths": list(strengths.strength), "ranking": strengths.ranking(),
            "judge_model": None if blind else session.judge_model,
            "embedding_model": None if blind else session.embedding_model}


# ------------------------------------------------------------------------ the models


def answer_request(entry: Any, prompt: str, *, max_tokens: int | None = None,
                   temperature: float | None = None) -> GenerationRequest:
    """The request each answer is sampled with (the model's own sampling settings unless
    given; thinking off: the class votes on answers)."""
    return GenerationRequest(prompt=prompt, thinking=False, sampling=Sampling.for_entry(
        entry, temperature=temperature, max_tokens=max_tokens))


def sample_answers(workers: Sequence[Any], prompt: str, n: int, key: AnswerKey | None = None, *,
                   seed: int | None = None, max_tokens: int | None = None,
                   temperature: float | None = None,
                   should_stop: Callable[[], bool] = lambda: False,
                   on_update: Callable[[Rollout], None] | None = None) -> list[Answer]:
    """``n`` answers to ``prompt``, dealt across ``workers`` (the first gets any extra),
    each sampled in one several-sequences call and, with a verifiable ``key``, checked.
    Raises RuntimeError with the model's message if a model fails."""
    if not 1 <= n <= MAX_ANSWERS:
        raise ValueError(f"Between 1 and {MAX_ANSWERS} answers can be sampled.")
    key = key or AnswerKey()
    seeds = rollout_seeds(seed, n)
    answers: list[Answer] = []
    share, extra = divmod(n, len(workers))
    offset = 0
    for index, worker in enumerate(workers):
        count = share + (1 if index < extra else 0)
        if count == 0:
            continue
        request = answer_request(worker.entry, prompt, max_tokens=max_tokens,
                                 temperature=temperature)
        run = run_rollouts(worker, request, seeds[offset:offset + count], key,
                           should_stop=should_stop, on_update=on_update)
        offset += count
        if run.error:
            raise RuntimeError(f"{worker.entry.id}: {run.error}")
        answers.extend(Answer(r.answer.strip(), worker.entry.id,
                              r.correct if key.verifiable and r.verdict is not None else None)
                       for r in run.rollouts if r.finished)
        if run.stopped:
            break
    return answers


def embed_answers(worker: Any, answers: Sequence[Answer]) -> list[list[float]]:
    """The answers' embeddings from ``worker``'s model (llama.cpp's embedding mode)."""
    return worker.embed([a.text for a in answers])


# -------------------------------------------------------------------------- analysis


@dataclass(frozen=True)
class RlhfReport:
    """Everything the loop computes from a session's answers, votes and embeddings."""

    strengths: Strengths
    reward_agreement: Agreement
    proxies: tuple[Agreement, ...]
    rewards: tuple[float, ...]  # each answer's reward, from a model blind to its votes
    gold: tuple[float, ...]  # each answer's gold: the key (1/0) or its strength
    gold_kind: str  # "key" or "class"
    best_of_n: tuple[BestOfN, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "strengths": list(self.strengths.strength),
            "intervals": [[lo, hi] for lo, hi in zip(self.strengths.low, self.strengths.high,
                                                      strict=True)],
            "votes_per_answer": list(self.strengths.votes),
            "ranking": self.strengths.ranking(),
            "reward_agreement": self.reward_agreement.to_dict(),
            "proxies": [p.to_dict() for p in self.proxies],
            "rewards": list(self.rewards),
            "gold": list(self.gold),
            "gold_kind": self.gold_kind,
            "best_of_n": [b.to_dict() for b in self.best_of_n],
        }


def analyse(session: RlhfSession, ns: Sequence[int] = BEST_OF_NS) -> RlhfReport:
    """Bradley–Terry, the reward model's held-out agreement beside the proxies', and the
    best-of-n curve, from the session's answers, votes and embeddings."""
    answers = session.answers
    texts = [a.text for a in answers]
    votes = session.votes
    strengths = bradley_terry(len(answers), votes)
    features = answer_features(texts, session.embeddings)
    agreement = cross_validated_agreement(features, votes)
    proxies = [proxy_agreement(LONGEST_ANSWER, [float(len(t)) for t in texts], votes)]
    if session.judge_scores is not None:
        proxies.append(proxy_agreement(f"the judge's P(\"yes\") ({session.judge_model})",
                                       session.judge_scores, votes))
    rewards = held_out_rewards(features, votes)
    if session.keyed:
        gold = [1.0 if a.correct else 0.0 for a in answers]
        gold_kind = "key"
    else:
        gold = list(strengths.strength)
        gold_kind = "class"
    curve = best_of_n_curve(rewards, gold, ns)
    return RlhfReport(strengths, agreement, tuple(proxies), tuple(rewards), tuple(gold),
                      gold_kind, tuple(curve))
