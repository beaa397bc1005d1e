"""Token probabilities and branching: the figures on real starter models, the records the
CLI writes, and a branch continuing from the chosen token (fake engine for the session's
bookkeeping, real llama.cpp for what the model does)."""

from __future__ import annotations

import json
import math
import time

import pytest

from desktop_app.engine.protocol import Delta, TokenLogprob
from desktop_app.session.generation import wait_for_closing
from desktop_app.session.pane import PaneConfig, PaneSession
from desktop_app.session.tokens import (
    TOP_K,
    TokenStep,
    band,
    continuation_prompt,
    percent,
    shown_token,
    stop_cut_index,
    token_record,
)
from desktop_app.session.turn import TurnState
from tests.fake_engine import FakeEngine, fake_catalog, token_script
from tests.test_cli import triptych

# ------------------------------------------------------------------------------ figures


def test_bands_go_from_likely_to_unlikely():
    assert band(math.log(0.99)) == 0
    assert band(math.log(0.7)) == 1
    assert band(math.log(0.05)) == 4
    assert band(0.0) == 0 and band(-1000.0) == 4
    assert percent(math.log(0.934)) == "93%" and percent(math.log(0.042)) == "4.2%"
    assert percent(-50.0) == "<0.1%"
    assert shown_token(" a\n") == "·a↵" and shown_token("") == "(end of text)"


def test_record_and_alternatives_keep_the_chosen_token():
    logprob = TokenLogprob(token="x", logprob=-3.0, top=(("a", -0.1), ("b", -2.5)))
    assert token_record(logprob) == {"text": "x", "logprob": -3.0,
                                     "top": [{"text": "a", "logprob": -0.1},
                                             {"text": "b", "logprob": -2.5}]}
    step = TokenStep(logprob)
    assert step.alternatives()[-1] == ("x", -3.0, True)  # sampled outside the top-k
    assert "▸ x" in step.describe()
    steps = [TokenStep(TokenLogprob(t, -0.1, ())) for t in ("He", "llo", ",")]
    assert continuation_prompt("Q: hi\nA:", steps, 2, "!") == "Q: hi\nA:Hello!"


# ------------------------------------------------------------------- session, fake engine


def _run(session: PaneSession, turn) -> None:
    deadline = time.monotonic() + 10
    while session.running and time.monotonic() < deadline:
        session.poll()
        time.sleep(0.005)
    assert not session.running and turn.done


@pytest.fixture
def session(tmp_path):
    catalog = fake_catalog(tmp_path)
    engine = FakeEngine()
    instruct = next(e for e in catalog if e.role == "instruct")
    made = PaneSession(catalog, PaneConfig(model_id=instruct.id, probabilities=True),
                       worker_factory=engine.worker)
    made.engine = engine  # type: ignore[attr-defined]
    yield made
    if (worker := made.shutdown()) is not None:
        worker.close()
    assert wait_for_closing()


def test_probabilities_off_asks_for_none(session):
    session.config.probabilities = False
    session.engine.default = token_script(["Hi", "."])
    turn = session.send("Hello")
    _run(session, turn)
    assert session.engine.workers[0].requests[0].top_logprobs == 0
    assert turn.token_steps == [] and "tokens" not in turn.to_dict()


def test_branch_sends_the_exact_continuation_and_keeps_the_original(session):
    session.engine.default = token_script(["The", " sky", " is", " blue", "."])
    turn = session.send("Colour of the sky?")
    _run(session, turn)
    assert session.engine.workers[0].requests[0].top_logprobs == TOP_K
    assert [s.text for s in turn.token_steps] == ["The", " sky", " is", " blue", "."]
    assert turn.answer == "The sky is blue." and turn.branches.count == 1

    session.engine.default = token_script([" today", "."])
    branched = session.branch(turn, 3, "alt")
    assert branched is turn
    _run(session, turn)
    request = session.engine.workers[0].requests[-1]
    assert request.raw and request.prompt == "<p>The sky isalt" and request.history == ()
    assert turn.answer == "The sky isalt today."
    assert turn.answer_tokens == 6 and turn.state == TurnState.DONE
    assert [s.text for s in turn.token_steps][:4] == ["The", " sky", " is", "alt"]
    assert turn.result is not None and turn.result.answer == turn.answer
    exported = turn.to_dict()
    assert exported["answer"] == turn.answer and exported["branch"] == {
        "shown": 2, "of": 2, "from_token": 3, "chosen": "alt"}
    assert [t["text"] for t in exported["tokens"]][-2:] == [" today", "."]

    assert turn.branches.switch(turn, 0)
    assert turn.answer == "The sky is blue." and turn.to_dict()["branch"]["shown"] == 1
    assert turn.branches.switch(turn, 1) and turn.answer == "The sky isalt today."
    assert not turn.branches.switch(turn, 2)
    assert session.branch(turn, 99, "x") is None and session.branch(turn, 0, "") is None


def test_branch_inside_thinking_is_split_as_the_original(session, tmp_path):
    reasoning = next(e for e in session.catalog if e.role == "reasoning")
    session.set_model(reasoning.id)
    session.config.probabilities = True
    session.engine.default = token_script(["Let", " me", " see", "</think>", "Yes"], thinking=4)
    turn = session.send("Is it?")
    _run(session, turn)
    assert turn.thinking.strip() == "Let me see" and turn.answer.strip() == "Yes"
    assert [s.thinking for s in turn.token_steps] == [True, True, True, True, False]
    session.engine.default = token_script([" hmm", "</think>", "No"])
    session.branch(turn, 1, " we")
    _run(session, turn)
    assert turn.thinking.strip() == "Let we hmm" and turn.answer.strip() == "No"
    assert turn.thinking_tokens == 4 and turn.answer_tokens == 1


# ----------------------------------------------------------------------- real models


def _compare_tokens(*args: str) -> list[dict]:
    done = triptych("compare", *args, "--json", "--top-logprobs", "5", timeout=240)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.slow
def test_compare_top_logprobs_on_real_models(starter_models):
    records = _compare_tokens("Name three primary colours.", "--temperature", "0",
                              "--max-tokens", "24",
                              "--models", "gemma3-270m-base,smollm2-135m-instruct")
    summaries = {r["model"]: r for r in records if r["type"] == "summary"}
    assert set(summaries) == {"gemma3-270m-base", "smollm2-135m-instruct"}
    for model, summary in summaries.items():
        tokens = summary["tokens"]
        assert tokens, model
        streamed = [r["token"] for r in records
                    if r["type"] == "delta" and r["model"] == model and "token" in r]
        assert streamed == tokens  # the delta events carry the same records
        for token in tokens:
            assert token["logprob"] <= 0 and len(token["top"]) == 5
            assert all(alt["logprob"] <= 0 for alt in token["top"])
            assert sum(math.exp(alt["logprob"]) for alt in token["top"]) <= 1 + 1e-6
            listed = {alt["text"]: alt["logprob"] for alt in token["top"]}
            if token["text"] in listed:  # one figure for a token, wherever it is shown
                assert listed[token["text"]] == pytest.approx(token["logprob"], abs=1e-5)
    chat = summaries["smollm2-135m-instruct"]
    assert "".join(t["text"] for t in chat["tokens"]) == chat["answer"]


@pytest.mark.slow
def test_greedy_picks_the_top_alternative_on_a_real_model(starter_models):
    """Temperature 0 with no repeat penalty (which reorders the candidates after the
    figures are taken): every chosen token is the top-1, with the same log-probability."""
    from desktop_app.engine.protocol import GenerationRequest, Sampling
    from desktop_app.engine.worker import ModelWorker
    from desktop_app.models.catalog import load_catalog

    entry = load_catalog().entries["smollm2-135m-instruct"]
    request = GenerationRequest(prompt="List the planets of the solar system.",
                                sampling=Sampling(temperature=0.0, repeat_penalty=1.0,
                                                  max_tokens=20, seed=1),
                                top_logprobs=3)
    worker = ModelWorker(entry, n_threads=1)
    try:
        worker.start()
        figures = [event.logprob for event in worker.generate(request)
                   if isinstance(event, Delta) and event.logprob is not None]
    finally:
        worker.close()
    assert len(figures) >= 5
    for figure in figures:
        assert figure.top[0][0] == figure.token
        assert figure.top[0][1] == pytest.approx(figure.logprob, abs=1e-5)
        assert [lp for _, lp in figure.top] == sorted((lp for _, lp in figure.top), reverse=True)


@pytest.mark.slow
def test_compare_without_top_logprobs_has_no_tokens(starter_models):
    done = triptych("compare", "Hi", "--json", "--max-tokens", "3",
                    "--models", "smollm2-135m-instruct")
    records = [json.loads(line) for line in done.stdout.splitlines()]
    # the prompt's own tokens are in promptsent (issue 29); the reply's figures are not asked
    sent = [r for r in records if r["type"] == "promptsent"]
    assert len(sent) == 1 and sent[0]["tokens"]
    assert all("token" not in r and "tokens" not in r for r in records if r not in sent)


@pytest.mark.slow
def test_branch_on_a_real_model_continues_from_the_chosen_token(starter_models):
    from desktop_app.models.catalog import load_catalog

    session = PaneSession(load_catalog(), PaneConfig(model_id="smollm2-135m-instruct",
                                                     temperature=0.0, max_tokens=12,
                                                     probabilities=True))
    try:
        turn = session.send("Name a fruit.")
        _run_real(session, turn)
        assert turn.state == TurnState.DONE and len(turn.token_steps) >= 3
        original = turn.answer
        step = turn.token_steps[1]
        chosen = next(text for text, _, is_chosen in step.alternatives()
                      if not is_chosen and text.strip())
        prefix = turn.token_steps[0].text + chosen
        assert session.branch(turn, 1, chosen) is turn
        _run_real(session, turn)
        assert turn.state == TurnState.DONE, turn.failure
        assert turn.answer.startswith(prefix)
        assert turn.prompt_sent.endswith(prefix)  # sent raw: the prompt, then the prefix
        assert turn.token_steps[1].text == chosen
        assert len(turn.token_steps) > 2  # it went on from there
        turn.branches.switch(turn, 0)
        assert turn.answer == original
    finally:
        if (worker := session.shutdown()) is not None:
            worker.close()
        assert wait_for_closing()


def _run_real(session: PaneSession, turn) -> None:
    deadline = time.monotonic() + 180
    while session.running and time.monotonic() < deadline:
        session.poll()
        time.sleep(0.02)
    assert turn.done


@pytest.mark.slow
def test_explorer_steps_follow_the_model_greedily(starter_models):
    """The explorer's first step wraps the question in the chat template; stepping on
    with the top token walks the same path as a greedy generation of the same prompt."""
    from desktop_app.engine.protocol import GenerationRequest, Sampling
    from desktop_app.engine.worker import ModelWorker
    from desktop_app.models.catalog import load_catalog
    from desktop_app.session.tokens import next_token_request, read_next_token

    entry = load_catalog().entries["smollm2-135m-instruct"]
    worker = ModelWorker(entry, n_threads=1)
    try:
        worker.start()
        greedy = GenerationRequest(prompt="Name a colour.", top_logprobs=3,
                                   sampling=Sampling(temperature=0.0, repeat_penalty=1.0,
                                                     max_tokens=4, seed=1))
        path = [e.logprob.token for e in worker.generate(greedy)
                if isinstance(e, Delta) and e.logprob is not None]
        step = read_next_token(worker.generate(next_token_request("Name a colour.", wrap=True)))
        assert not step.error and "Name a colour." in step.prompt_sent
        assert step.prompt_sent != "Name a colour."  # the chat template wrapped it
        walked = []
        for _ in range(len(path)):
            assert sum(math.exp(lp) for _, lp in step.top) <= 1 + 1e-6
            walked.append(step.top[0][0])
            step = read_next_token(worker.generate(
                next_token_request(step.prompt_sent + step.top[0][0], wrap=False)))
            assert not step.error
    finally:
        worker.close()
    assert walked == path


def test_a_served_chat_model_is_not_branched(tmp_path, monkeypatch):
    """A server's chat API applies its own template: the exact text is unknown, so a
    branch (which sends it raw) is refused rather than sent wrong."""
    from dataclasses import replace

    from desktop_app.models.catalog import Availability, Catalog
    from desktop_app.models.sources import RemoteSource
    from desktop_app.session import pane as pane_session

    # the server is never asked: the scripted engine stands in for it
    monkeypatch.setattr(pane_session, "state_of", lambda _entry: Availability.READY)
    instruct = next(e for e in fake_catalog(tmp_path) if e.role == "instruct")
    served = replace(instruct, id="served", source=RemoteSource(
        endpoint="http://127.0.0.1:9/v1", model="served"))
    engine = FakeEngine(default=token_script(["A", " b"]))
    session = PaneSession(Catalog(entries={"served": served}),
                          PaneConfig(model_id="served", probabilities=True),
                          worker_factory=engine.worker)
    try:
        turn = session.send("Hi")
        _run(session, turn)
        assert len(turn.token_steps) == 2
        assert session.branch(turn, 1, "alt") is None and turn.branches.count == 1
    finally:
        if (worker := session.shutdown()) is not None:
            worker.close()
        assert wait_for_closing()


def test_tokens_cut_by_a_stop_sequence_are_found():
    steps = [TokenStep(TokenLogprob(t, -0.1, ())) for t in (" Paris", ".", "\n", "Question", ":")]
    assert stop_cut_index(steps, " Paris.", "none") == 2
    assert stop_cut_index(steps, " Paris.\nQuestion:", "none") is None
    assert stop_cut_index(steps, " Paris.", "think-tags") is None
    assert stop_cut_index(steps, "something else", "none") is None
    assert stop_cut_index(steps, "Paris.", "none") == 2  # the answer lost its leading blank
    assert stop_cut_index(steps[:3], "Paris.", "none") is None  # only a blank was dropped


@pytest.mark.parametrize("value", ["-1", "21"])
def test_top_logprobs_out_of_range_is_one_sentence(value):
    done = triptych("compare", "hi", "--json", "--top-logprobs", value)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == "triptych: --top-logprobs must be between 0 and 20."
