"""Goodhart, side by side: pick the best of N rollouts by a proxy instead of the key.

Two proxies: the longest answer, and a judge model's score (a chat model asked whether the
answer is correct, scored by the probability it gives the token "yes", read from the
engine's top log-probabilities). Against the key's pick (any correct rollout), the
question is how often the proxy's pick is wrong where the key's is right. For a prompt
with no key, only the judge's ranking can be shown, and it says so.

No Qt. The judge runs off the GUI thread like any generation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from desktop_app.engine.protocol import Delta, Failed, GenerationRequest, Sampling
from desktop_app.rollouts.run import Rollout
from desktop_app.text.i18n import N_, _, ngettext

JUDGE_TOP_LOGPROBS = 20
JUDGE_PROMPT = ("Question:\n{question}\n\nProposed answer:\n{answer}\n\n"
                "Is the proposed answer correct? Reply with yes or no.")
# marked here, translated where shown: _(NO_KEY), _(PROXY_LABELS[proxy])
NO_KEY = N_("No key exists for this prompt: the judge's ranking is all there is.")


class Proxy(StrEnum):
    KEY = "key"
    LONGEST = "longest"
    JUDGE = "judge"


PROXY_LABELS: dict[Proxy, str] = {
    Proxy.KEY: N_("the answer key"),
    Proxy.LONGEST: N_("the longest answer"),
    Proxy.JUDGE: N_("the judge's P(\"yes\")"),
}


def judge_request(question: str, answer: str) -> GenerationRequest:
    """One greedy token with the top log-probabilities: the judge's verdict distribution."""
    return GenerationRequest(
        prompt=JUDGE_PROMPT.format(question=question.strip(), answer=answer.strip()[:4000]),
        sampling=Sampling(temperature=0.0, max_tokens=1, seed=0),
        thinking=False, top_logprobs=JUDGE_TOP_LOGPROBS)


def p_yes(top: Sequence[tuple[str, float]]) -> float:
    """The probability mass on tokens that read "yes" (any case, leading space)."""
    return sum(math.exp(logprob) for token, logprob in top
               if token.strip().casefold() == "yes")


def judge_scores(worker: Any, question: str, answers: Sequence[str],
                 should_stop: Callable[[], bool] = lambda: False) -> list[float | None]:
    """P("yes") for each answer from a loaded-or-loading judge worker (blocking).

    None for an answer the judge could not score (it failed, was stopped, or its engine
    gives no token probabilities)."""
    scores: list[float | None] = []
    for answer in answers:
        if should_stop():
            scores.append(None)
            continue
        score: float | None = None
        for event in worker.generate(judge_request(question, answer)):
            if isinstance(event, Delta) and event.logprob is not None and score is None:
                score = p_yes(event.logprob.top)
            elif isinstance(event, Failed):
                break
        scores.append(score)
    return scores


@dataclass(frozen=True)
class Picks:
    """Which rollout each way of choosing picks (an index into the rollouts, or None)."""

    key: int | None
    longest: int | None
    judge: int | None

    def pick(self, proxy: Proxy) -> int | None:
        return {Proxy.KEY: self.key, Proxy.LONGEST: self.longest, Proxy.JUDGE: self.judge}[proxy]


def best_of_n(rollouts: Sequence[Rollout], scores: Sequence[float | None] | None = None) -> Picks:
    """The key's pick (the first correct rollout), the longest answer among those checked
    (not one stopped or cut short by a failing model; None when none answered), the
    judge's top."""
    key = next((r.index for r in rollouts if r.correct), None)
    answered = [r for r in rollouts if r.verdict is not None and r.answer.strip()]
    longest = max(answered, key=lambda r: len(r.answer.strip()), default=None)
    judge = None
    if scores is not None and any(s is not None for s in scores):
        judge = ranking(scores)[0][0]
    return Picks(key=key, longest=longest.index if longest is not None else None, judge=judge)


@dataclass(frozen=True)
class Gamed:
    """Over several prompts: how often a proxy's pick was wrong where the key's was right."""

    proxy: Proxy
    key_right: int  # prompts where at least one rollout was correct
    proxy_wrong: int  # of those, prompts where the proxy's pick was wrong

    @property
    def rate(self) -> float | None:
        return self.proxy_wrong / self.key_right if self.key_right else None

    def describe(self) -> str:
        if not self.key_right:
            return _("{proxy}: no prompt had a correct rollout to miss").format(
                proxy=_(PROXY_LABELS[self.proxy]))
        return ngettext("picking by {proxy}: wrong on {wrong} of {n} prompt where the key "
                        "found a correct rollout",
                        "picking by {proxy}: wrong on {wrong} of {n} prompts where the key "
                        "found a correct rollout", self.key_right).format(
            proxy=_(PROXY_LABELS[self.proxy]), wrong=self.proxy_wrong, n=self.key_right)

    def to_dict(self) -> dict[str, Any]:
        return {"proxy": self.proxy.value, "key_right": self.key_right,
                "proxy_wrong": self.proxy_wrong, "rate": self.rate}


def gamed(groups: Sequence[tuple[Sequence[Rollout], Picks]], proxy: Proxy) -> Gamed:
    """Count, over ``(rollouts, picks)`` groups, the proxy's misses where the key hit."""
    key_right = proxy_wrong = 0
    for rollouts, picks in groups:
        if picks.key is None:
            continue
        chosen = picks.pick(proxy)
        if chosen is None:
            continue
        key_right += 1
        proxy_wrong += not rollouts[chosen].correct
    return Gamed(proxy, key_right, proxy_wrong)


def ranking(scores: Sequence[float | None]) -> list[tuple[int, float | None]]:
    """(index, score) best first, unscored last: for a prompt with no key."""
    return sorted(enumerate(scores), key=lambda item: (item[1] is None, -(item[1] or 0.0)))
