"""RLHF's three steps: votes, Bradley–Terry, the reward model, best-of-N (core and CLI).

Every figure is checked against an independent computation: Bradley–Terry against
Hunter's MM algorithm and a closed form, the reward model against its optimality
condition and a planted preference, best-of-n against enumerating every draw.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import math
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from desktop_app.engine.protocol import GenerationRequest
from desktop_app.rollouts.preferences import (
    Vote,
    VoteError,
    Winner,
    bradley_terry,
    next_pair,
    parse_votes,
    votes_csv,
)
from desktop_app.rollouts.reward import (
    answer_features,
    best_of_n_curve,
    cross_validated_agreement,
    fit_reward,
    held_out_rewards,
    pick_probabilities,
    proxy_agreement,
)
from desktop_app.rollouts.rlhf import Answer, RlhfSession, analyse, embed_answers, sample_answers
from tests.fake_engine import FakeWorker, answer_script

INSTRUCT = "smollm2-135m-instruct"

# ------------------------------------------------------------------ independent references


def mm_strengths(n: int, votes: list[Vote], iterations: int = 20000) -> list[float]:
    """Hunter's (2004) MM algorithm for the plain Bradley–Terry MLE, ties as half-wins:
    πᵢ ← Wᵢ / Σⱼ nᵢⱼ/(πᵢ+πⱼ). Returns centred log-strengths."""
    wins = [0.0] * n
    meetings = [[0] * n for _ in range(n)]
    for vote in votes:
        wins[vote.a] += vote.score_a
        wins[vote.b] += 1 - vote.score_a
        meetings[vote.a][vote.b] += 1
        meetings[vote.b][vote.a] += 1
    pi = [1.0] * n
    for _ in range(iterations):
        pi = [wins[i] / sum(meetings[i][j] / (pi[i] + pi[j]) for j in range(n) if meetings[i][j])
              for i in range(n)]
        total = math.prod(pi) ** (1 / n)
        pi = [p / total for p in pi]
    logs = [math.log(p) for p in pi]
    mean = sum(logs) / n
    return [x - mean for x in logs]


def enumerated_best_of_n(rewards: list[float], gold: list[float], n: int) -> tuple[float, float]:
    """Every ordered draw of n answers with replacement, the first highest reward picked."""
    m = len(rewards)
    total_reward = total_gold = 0.0
    for draw in itertools.product(range(m), repeat=n):
        pick = max(draw, key=lambda i: (rewards[i], -i))
        total_reward += rewards[pick]
        total_gold += gold[pick]
    return total_reward / m ** n, total_gold / m ** n


def class_votes(n_answers: int, count: int, prefers: Any, seed: int = 0) -> list[Vote]:
    """A test script standing in for a class: ``count`` votes on the pairs the window would
    show (next_pair), each won by the answer ``prefers`` scores higher (equal: a tie)."""
    rng = random.Random(seed)
    votes: list[Vote] = []
    for _ in range(count):
        a, b = next_pair(n_answers, votes, rng)
        sa, sb = prefers(a), prefers(b)
        votes.append(Vote(a, b, Winner.TIE if sa == sb else Winner.A if sa > sb else Winner.B))
    return votes


# ------------------------------------------------------------------------------ votes


def test_votes_round_trip_through_csv_and_bad_lines_are_one_sentence() -> None:
    votes = [Vote(0, 1, Winner.A), Vote(2, 0, Winner.TIE), Vote(1, 2, Winner.B)]
    assert parse_votes(votes_csv(votes), 3) == votes
    assert parse_votes("0,1,A\n\n# a comment\n1, 2 ,tie\n", 3) == [
        Vote(0, 1, Winner.A), Vote(1, 2, Winner.TIE)]
    for text, words in [("0,1", "a,b,winner"), ("0,x,a", "numbers from 0"),
                        ("0,3,a", "from 0 to 2"), ("1,1,a", "two different"),
                        ("0,1,left", "a, b or tie")]:
        with pytest.raises(VoteError, match=words) as caught:
            parse_votes(text, 3)
        assert str(caught.value).count(". ") == 0 and "line 1" in str(caught.value)


def test_next_pair_shows_every_pair_before_any_twice_in_both_orders() -> None:
    rng = random.Random(3)
    votes: list[Vote] = []
    shown = []
    for _ in range(28):  # 8 answers: 28 pairs
        a, b = next_pair(8, votes, rng)
        shown.append((a, b))
        votes.append(Vote(a, b, Winner.A))
    assert len({(min(p), max(p)) for p in shown}) == 28
    assert any(a > b for a, b in shown) and any(a < b for a, b in shown)  # sides shuffled
    with pytest.raises(VoteError):
        next_pair(1, [], rng)


# ------------------------------------------------------------------------ Bradley–Terry


def test_bradley_terry_two_answers_matches_the_closed_form() -> None:
    # 3 wins, 1 loss, 1 tie for answer 0: 3.5 of 5 → θ₀ − θ₁ = log(3.5 / 1.5)
    votes = [Vote(0, 1, Winner.A)] * 3 + [Vote(1, 0, Winner.A), Vote(0, 1, Winner.TIE)]
    fit = bradley_terry(2, votes, prior_sd=None)
    difference = math.log(3.5 / 1.5)
    assert fit.strength[0] - fit.strength[1] == pytest.approx(difference, abs=1e-9)
    assert sum(fit.strength) == pytest.approx(0.0, abs=1e-12)
    p = 0.7  # Fisher information of the difference: 5·p(1−p); each strength is ±half of it
    sd = math.sqrt(1 / (5 * p * (1 - p))) / 2
    assert fit.high[0] - fit.strength[0] == pytest.approx(1.959964 * sd, rel=1e-6)
    assert fit.votes == (5, 5)


def test_bradley_terry_matches_hunters_mm_algorithm() -> None:
    rng = random.Random(7)
    truth = [1.5, 0.8, 0.0, -0.4, -1.2, 0.3]
    votes = []
    for _ in range(120):
        a, b = rng.sample(range(6), 2)
        p = 1 / (1 + math.exp(truth[b] - truth[a]))
        u = rng.random()
        votes.append(Vote(a, b, Winner.TIE if abs(u - p) < 0.05 else
                          Winner.A if u < p else Winner.B))
    fit = bradley_terry(6, votes, prior_sd=None)
    assert fit.strength == pytest.approx(mm_strengths(6, votes), abs=1e-6)
    assert fit.ranking()[0] == 0 and fit.ranking()[-1] == 4
    # more votes settle it: the intervals narrow
    fewer = bradley_terry(6, votes[:40], prior_sd=None)
    assert all(fit.width(i) < fewer.width(i) for i in range(6))


def test_an_unbeaten_answer_stays_finite_with_the_prior() -> None:
    votes = [Vote(0, 1, Winner.A), Vote(0, 2, Winner.A), Vote(1, 2, Winner.TIE)]
    fit = bradley_terry(3, votes)
    assert all(math.isfinite(x) for x in fit.strength + fit.low + fit.high)
    assert fit.ranking()[0] == 0 and fit.strength[1] == pytest.approx(fit.strength[2])
    unvoted = bradley_terry(4, votes)  # answer 3 in no vote: at 0, its interval the prior's
    assert unvoted.votes[3] == 0 and unvoted.width(3) > unvoted.width(0)


# ------------------------------------------------------------------------- reward model


def test_the_reward_model_is_the_penalised_optimum() -> None:
    rng = np.random.default_rng(1)
    features = rng.normal(size=(10, 30))  # more dimensions than answers: solved in their span
    votes = class_votes(10, 40, lambda i: float(features[i, 0] + rng.normal()), seed=2)
    model = fit_reward(features, votes, l2=0.5)
    diffs = np.array([features[v.a] - features[v.b] for v in votes])
    y = np.array([v.score_a for v in votes])
    p = 1 / (1 + np.exp(-(diffs @ model.weights)))
    gradient = diffs.T @ (y - p) - 0.5 * model.weights  # zero in every one of 30 dimensions
    assert np.max(np.abs(gradient)) < 1e-8


def test_the_reward_model_learns_a_planted_preference_the_length_misses() -> None:
    rng = np.random.default_rng(4)
    n = 16
    embeddings = rng.normal(size=(n, 12))
    answers = ["word " * int(rng.integers(1, 30)) for _ in range(n)]  # length unrelated
    liked = embeddings[:, 3]
    votes = class_votes(n, 100, lambda i: float(liked[i]), seed=5)
    features = answer_features(answers, embeddings.tolist())
    learned = cross_validated_agreement(features, votes)
    length = proxy_agreement("longest", [float(len(a)) for a in answers], votes)
    assert learned.votes == length.votes == 100
    assert learned.rate is not None and learned.rate > 0.85
    assert length.rate is not None and learned.rate > length.rate + 0.2
    # held out: a model trained without answer i's votes still ranks i by the planted taste
    rewards = held_out_rewards(features, votes)
    assert np.corrcoef(rewards, liked)[0, 1] > 0.8


def test_answer_features_are_standardised_and_constant_columns_vanish() -> None:
    features = answer_features(["a", "bb!", "ccc??"], [[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert features.shape == (3, 2 + 6)
    assert np.allclose(features.mean(axis=0), 0.0)
    assert np.allclose(features[:, 4], 0.0)  # one line each: no information


# --------------------------------------------------------------------------- best-of-N


def test_best_of_n_matches_enumerating_every_draw() -> None:
    rewards = [0.3, -1.0, 0.3, 2.0, 0.5]
    gold = [1.0, 0.0, 0.0, 0.0, 1.0]  # the reward model's favourite is wrong: Goodhart
    assert sum(pick_probabilities(rewards, 3)) == pytest.approx(1.0)
    curve = best_of_n_curve(rewards, gold, ns=(1, 2, 3, 4))
    for point in curve:
        reward, gold_value = enumerated_best_of_n(rewards, gold, point.n)
        assert point.reward == pytest.approx(reward) and point.gold == pytest.approx(gold_value)
    assert curve[0].gold == pytest.approx(0.4)
    assert [p.reward for p in curve] == sorted(p.reward for p in curve)
    assert curve[-1].gold < curve[0].gold  # reward up, gold down


# ------------------------------------------------------------------ the loop, fake engine


JOKES = ["Why do pelicans carry fish? Because they can't afford wallets!",
         "A pelican walks into a bar. The bartender says: big bill!",
         "Pelicans are birds.",
         "What do you call a pelican lawyer? A bill collector!",
         "I don't know any jokes about pelicans.",
         "Pelican pelican pelican pelican pelican pelican pelican pelican pelican.",
         "Why did the pelican get kicked out? He had a big bill and no tip!",
         "Birds fly."]


def _joke_script(request: GenerationRequest) -> list[Any]:
    return answer_script(JOKES[(request.sampling.seed or 0) % len(JOKES)])


def _check_report(session: RlhfSession) -> dict[str, Any]:
    """Analyse, and check every figure against the independent references."""
    report = analyse(session)
    votes = session.votes
    n = len(session.answers)
    assert list(report.strengths.strength) == pytest.approx(
        list(bradley_terry(n, votes).strength))
    plain = bradley_terry(n, votes, prior_sd=None)
    if all(0 < sum(v.score_a if v.a == i else 1 - v.score_a for v in votes if i in (v.a, v.b))
           < report.strengths.votes[i] for i in range(n)):  # no unbeaten answer: an MLE exists
        assert list(plain.strength) == pytest.approx(mm_strengths(n, votes), abs=1e-5)
    rewards, gold = list(report.rewards), list(report.gold)
    for point in report.best_of_n[:3]:  # n = 1, 2, 4: every draw enumerated
        expected = enumerated_best_of_n(rewards, gold, point.n)
        assert (point.reward, point.gold) == pytest.approx(expected)
    assert [p.n for p in report.best_of_n] == [1, 2, 4, 8, 16, 32, 64]
    decided = sum(v.winner != Winner.TIE for v in votes)
    assert report.reward_agreement.votes == decided
    assert report.proxies[0].votes == decided
    return report.to_dict()


def _liked(text: str) -> float:
    """The stand-in class's taste: a question-and-punchline joke, the shorter the better."""
    return ("?" in text) * 2 + ("!" in text) - len(text) / 200


def test_the_loop_on_the_fake_engine(triptych_home: Path) -> None:
    from desktop_app.models.catalog import load_catalog

    entry = load_catalog().get(INSTRUCT)
    worker = FakeWorker(entry, script=_joke_script)
    try:
        session = RlhfSession(prompt="Write a funny joke about pelicans.")
        session.answers = sample_answers([worker], session.prompt, 8, seed=5)
        assert len(session.answers) == 8 and all(a.correct is None for a in session.answers)
        session.embeddings = embed_answers(worker, session.answers)
        assert worker.embedded == [a.text for a in session.answers]
        session.votes = class_votes(8, 20, lambda i: _liked(session.answers[i].text))
    finally:
        worker.close()
    data = _check_report(session)
    liked = [_liked(a.text) for a in session.answers]
    assert np.corrcoef(data["strengths"], liked)[0, 1] > 0.7
    assert data["gold_kind"] == "class"
    again = RlhfSession.from_dict(json.loads(json.dumps(session.to_dict())))
    assert again.votes == session.votes and again.answers == session.answers


def test_a_key_is_the_gold_where_one_exists() -> None:
    session = RlhfSession(prompt="7*8?", answers=[
        Answer("56", "m", True), Answer("The answer is 54, clearly and at length.", "m", False),
        Answer("56!", "m", True), Answer("I think it is 48 because...", "m", False)])
    session.votes = class_votes(4, 12, lambda i: len(session.answers[i].text))  # likes length
    report = analyse(session)
    assert report.gold_kind == "key" and report.gold == (1.0, 0.0, 1.0, 0.0)
    assert report.best_of_n[0].gold == pytest.approx(0.5)
    assert report.best_of_n[-1].gold < 0.5  # it learned the class's taste for length


# ------------------------------------------------------------------------------- CLI


def _cli(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> tuple[int, str, str]:
    import desktop_app.engine.worker
    from desktop_app.cli.main import main

    monkeypatch.setattr(desktop_app.engine.worker, "open_worker",
                        lambda entry, **_: FakeWorker(entry, script=_joke_script))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, out.getvalue(), err.getvalue()


def test_cli_json_reads_votes_and_prints_the_loop(monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    votes = class_votes(8, 20, lambda i: -i)  # by index: answer 0 best
    path = tmp_path / "votes.csv"
    path.write_text(votes_csv(votes), encoding="utf-8")
    code, out, err = _cli(monkeypatch, ["rlhf", "Write a funny joke about pelicans.",
                                        "--models", INSTRUCT, "-n", "8", "--seed", "3",
                                        "--votes", str(path), "--json"])
    assert code == 0, err
    data = json.loads(out)
    assert len(data["answers"]) == 8 and len(data["strengths"]) == 8
    assert np.corrcoef(data["strengths"], [-i for i in range(8)])[0, 1] > 0.8
    assert data["strengths"] == pytest.approx(list(bradley_terry(8, votes).strength))
    assert [p["n"] for p in data["best_of_n"]] == [1, 2, 4, 8, 16, 32, 64]
    assert set(data["best_of_n"][0]) == {"n", "reward", "gold"}
    assert data["reward_agreement"]["votes"] == 20
    code, out, _ = _cli(monkeypatch, ["rlhf", "Write a joke.", "--models", INSTRUCT, "-n", "4",
                                      "--seed", "3"])
    assert code == 0 and "BRADLEY-TERRY (0 votes" in out and "BEST-OF-N" in out


@pytest.mark.parametrize("argv, words", [
    (["-n", "1"], "-n must be between 2 and 64"),
    (["--votes", "missing.csv"], "Cannot read --votes missing.csv"),
    (["--max-tokens", "0"], "--max-tokens must be at least 1"),
])
def test_cli_misuse_is_one_sentence(monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                    words: str) -> None:
    code, _, err = _cli(monkeypatch, ["rlhf", "A joke.", "--models", INSTRUCT, *argv])
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1


def test_cli_bad_vote_line_is_one_sentence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "votes.csv"
    path.write_text("0,9,a\n", encoding="utf-8")
    code, _, err = _cli(monkeypatch, ["rlhf", "A joke.", "--models", INSTRUCT, "-n", "4",
                                      "--votes", str(path)])
    assert code == 2 and "line 1" in err and len(err.strip().splitlines()) == 1


# ------------------------------------------------------------------- real llama.cpp


@pytest.mark.slow
def test_the_whole_loop_on_the_starters(starter_models: dict[str, Any]) -> None:
    """8 jokes from SmolLM2, 20 votes from a script standing in for the class, embeddings
    from llama.cpp, Bradley–Terry, the reward model held out, and the best-of-N curve."""
    from desktop_app.engine.worker import ModelWorker

    instruct, base = starter_models["instruct"], starter_models["base"]
    with ModelWorker(instruct) as smol, ModelWorker(base) as gemma:  # type: ignore[arg-type]
        session = RlhfSession(prompt="Write a funny joke about pelicans.")
        session.answers = sample_answers([smol, gemma], session.prompt, 8, seed=11,
                                         max_tokens=48, temperature=1.0)
        session.embeddings = embed_answers(smol, session.answers)
        again = embed_answers(smol, session.answers[:2])
    assert [a.model for a in session.answers] == [instruct.id] * 4 + [base.id] * 4  # type: ignore[attr-defined]
    assert len({a.text for a in session.answers}) >= 4
    vectors = np.array(session.embeddings)
    assert vectors.shape == (8, 576) and np.allclose(np.linalg.norm(vectors, axis=1), 1.0)
    assert np.allclose(vectors[:2], np.array(again), atol=1e-5)  # deterministic
    session.votes = class_votes(8, 20, lambda i: _liked(session.answers[i].text), seed=1)
    data = _check_report(session)
    assert len(data["strengths"]) == 8 and 0.0 <= (data["reward_agreement"]["rate"] or 0) <= 1
