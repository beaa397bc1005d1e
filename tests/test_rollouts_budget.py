"""Thinking budget (budget forcing, issue 12) on a scripted reasoning GGUF and real llama.cpp:
thinking is capped at B tokens, then closed, and the model's answer follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.engine.protocol import GenerationRequest, Sampling
from desktop_app.engine.worker import ModelWorker
from desktop_app.rollouts.run import AnswerKey, budget_applies, parse_budgets, run_rollouts
from tests.scripted_gguf import scripted_entry, write_scripted_gguf

THOUGHTS = "One two three four five six seven eight nine ten eleven twelve."
SCRIPT = f"<think>{THOUGHTS}</think>\n\nThe answer is 4."


def test_parse_budgets() -> None:
    assert parse_budgets("0, 64,256,unlimited") == [0, 64, 256, None]
    for bad in ("", "-1", "lots", "1,,2"):
        with pytest.raises(ValueError):
            parse_budgets(bad)


def _request(entry, budget: int | None) -> GenerationRequest:
    return GenerationRequest("What is 2+2?", Sampling.for_entry(entry, max_tokens=64),
                             thinking_budget=budget)


@pytest.mark.slow
def test_budget_caps_thinking_then_the_answer_follows(tmp_path: Path) -> None:
    entry = scripted_entry(write_scripted_gguf(tmp_path / "reasoner.gguf", SCRIPT))
    assert budget_applies(entry)
    with ModelWorker(entry) as worker:
        runs = {budget: run_rollouts(worker, _request(entry, budget), [1, 2], AnswerKey(expect="4"))
                for budget in (None, 3, 0)}
    full = runs[None].rollouts[0]
    assert full.thinking == THOUGHTS and full.answer == "The answer is 4."
    for budget in (3, 0):
        for rollout in runs[budget].rollouts:
            assert rollout.result is not None and rollout.result.finish_reason == "stop"
            assert not rollout.result.thinking_unterminated
            assert rollout.answer == "The answer is 4." and rollout.correct
            # B thinking tokens, plus the opening tag and the forced closing one
            assert rollout.thinking_tokens <= budget + 2
            assert len(rollout.thinking.split()) <= budget
    assert runs[3].rollouts[0].thinking == "One two three"
    assert runs[0].rollouts[0].thinking == ""
    assert runs[3].to_dict()["thinking_budget"] == 3


@pytest.mark.slow
def test_budget_with_a_template_that_opens_thinking(tmp_path: Path) -> None:
    path = write_scripted_gguf(tmp_path / "r1.gguf", SCRIPT.removeprefix("<think>"),
                               start_after="<think>")
    entry = scripted_entry(path, prefill=True)
    with ModelWorker(entry) as worker:
        run = run_rollouts(worker, _request(entry, 0), [5], AnswerKey(expect="4"))
        capped = run_rollouts(worker, _request(entry, 2), [5], AnswerKey(expect="4"))
    assert run.rollouts[0].thinking == "" and run.rollouts[0].answer == "The answer is 4."
    assert capped.rollouts[0].thinking == "One two"
    assert capped.rollouts[0].answer == "The answer is 4."


@pytest.mark.slow
def test_budget_does_not_apply_to_a_model_that_does_not_think(tmp_path: Path) -> None:
    entry = scripted_entry(write_scripted_gguf(tmp_path / "plain.gguf", "The answer is 4."),
                           role="instruct")
    assert not budget_applies(entry)
    with ModelWorker(entry) as worker:
        run = run_rollouts(worker, _request(entry, 0), [1], AnswerKey(expect="4"))
    assert run.rollouts[0].answer == "The answer is 4." and run.correct == 1


@pytest.mark.parametrize("fmt, opening", [("think-tags", "<think>"),
                                          ("gpt-oss-channels", "<|channel|>analysis<|message|>")])
def test_forced_close_switches_the_splitter_to_the_answer(fmt: str, opening: str) -> None:
    from desktop_app.text.thinking import ThinkingSplitter, get_format

    splitter = ThinkingSplitter(fmt, prefilled=False)
    assert splitter.feed(opening + "Let me think") == [("thinking", "Let me think")]
    assert splitter.in_thinking
    splitter.feed(get_format(fmt).budget_close)
    assert not splitter.in_thinking
    assert splitter.feed("\n\nThe answer is 4.") + splitter.finish() == [
        ("answer", "The answer is 4.")]


MESSAGE_SCRIPT = ("<think>One two three four five six. Out of time, answering now.\n</think>\n\n"
                  "The answer is 4.")


@pytest.mark.slow
def test_a_spent_budget_can_close_with_the_models_own_sentence(tmp_path: Path) -> None:
    """As llama.cpp's --reasoning-budget-message: the sentence, then the closing tag."""
    from dataclasses import replace

    message = " Out of time, answering now.\n"
    entry = scripted_entry(write_scripted_gguf(tmp_path / "reasoner.gguf", MESSAGE_SCRIPT))
    entry = replace(entry, prompt=replace(entry.prompt, budget_message=message))
    with ModelWorker(entry) as worker:
        plain = run_rollouts(worker, _request(entry, 2), [1], AnswerKey(expect="4"))
        own = run_rollouts(worker, replace(_request(entry, 2), budget_message=message), [1],
                           AnswerKey(expect="4"))
    assert plain.rollouts[0].thinking == "One two"
    closed = own.rollouts[0]
    assert closed.result is not None
    # The scripted vocabulary has no merges, so the forced sentence is spelled in byte
    # tokens, and SentencePiece's escaping shows its blanks (and a prefix blank) as "▁".
    assert closed.result.reply_text.replace("\u2581", " ") == (
        "<think>One two  Out of time, answering now.\n</think>\n\nThe answer is 4.")
    assert closed.thinking.replace("\u2581", " ") == "One two  Out of time, answering now.\n"
    assert closed.answer == "The answer is 4." and closed.correct


def test_the_budget_message_is_the_catalogs_and_only_on_request(capsys) -> None:
    import argparse

    from desktop_app.cli.rollouts import _budget_message
    from desktop_app.models.catalog import load_catalog

    catalog = load_catalog()
    qwen3, smollm3 = catalog.get("qwen3-0.6b"), catalog.get("smollm3-3b")
    asked = argparse.Namespace(budget_message=True, budgets=[0, None])
    assert "Considering the limited time by the user" in _budget_message(qwen3, asked)
    assert _budget_message(qwen3, argparse.Namespace(budget_message=False, budgets=[0])) == ""
    assert _budget_message(qwen3, argparse.Namespace(budget_message=True, budgets=[None])) == ""
    assert capsys.readouterr().err == ""
    # a model without one says so in one note, and its budget closes with the tag alone
    assert _budget_message(smollm3, asked) == ""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "smollm3-3b has no stop-thinking sentence" in err
