"""The streaming thinking splitter, fed every way a token stream can cut the text."""

from __future__ import annotations

import random

import pytest

from desktop_app.text.thinking import (
    ANSWER,
    GPT_OSS_CHANNELS,
    THINKING,
    ThinkingSplitter,
    split_reply,
)


def run(chunks: list[str], **kwargs) -> tuple[str, str, ThinkingSplitter]:
    splitter = ThinkingSplitter(**kwargs)
    segments = []
    for chunk in chunks:
        segments += splitter.feed(chunk)
    segments += splitter.finish()
    thinking = "".join(t for k, t in segments if k == THINKING)
    answer = "".join(t for k, t in segments if k == ANSWER)
    return thinking, answer, splitter


def test_whole_reply_splits_and_trims_blank_lines():
    assert split_reply("<think>\nadd them: 4\n</think>\n\nThe answer is 4.") == (
        "add them: 4\n", "The answer is 4.", False)


@pytest.mark.parametrize("text", [
    "<think>step one\nstep two</think>\n\n**Answer:** 42",
    "Hmm. <think>a<b>c</think>final </think> text",
    "<think></think>empty thinking",
    "no tags at all, < think > lookalike <thi",
])
def test_every_chunking_gives_the_same_split(text):
    expected = split_reply(text)
    rng = random.Random(7)
    for _ in range(60):
        cuts = sorted(rng.sample(range(1, len(text)), k=min(len(text) - 1, rng.randint(1, 12))))
        chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        thinking, answer, splitter = run(chunks)
        assert (thinking, answer, splitter.in_thinking) == expected
    # one character at a time, the worst case for tags split across tokens
    thinking, answer, _ = run(list(text))
    assert (thinking, answer) == expected[:2]


def test_tag_split_across_tokens_is_not_leaked():
    splitter = ThinkingSplitter()
    assert splitter.feed("<th") == []
    assert splitter.feed("ink>Let me") == [(THINKING, "Let me")]
    assert splitter.feed(" see</th") == [(THINKING, " see")]
    assert splitter.feed("ink>") == []
    assert splitter.feed("\n\n42") == [(ANSWER, "42")]
    assert splitter.thinking_closed


def test_prefilled_template_only_closing_tag():
    thinking, answer, splitter = run(["Okay, 2+2", " is 4.</think>", "\n\n4"], prefilled=True)
    assert (thinking, answer) == ("Okay, 2+2 is 4.", "4")
    assert splitter.saw_thinking and splitter.thinking_closed


def test_prefilled_template_and_model_repeats_open_tag():
    thinking, answer, _ = run(["<think>\n", "hmm</think>ok"], prefilled=True)
    assert (thinking, answer) == ("hmm", "ok")


def test_unterminated_thinking_is_reported():
    thinking, answer, splitter = run(["<think>I keep thinking", " and thinking"])
    assert thinking == "I keep thinking and thinking"
    assert answer == ""
    assert splitter.in_thinking and not splitter.thinking_closed


def test_text_before_the_tag_is_answer_text():
    thinking, answer, _ = run(["Sure! ", "<think>plan</think>", "Done."])
    assert thinking == "plan"
    assert answer == "Sure! Done."


def test_plain_format_never_splits():
    thinking, answer, _ = run(["<think>x</think>"], fmt="none")
    assert thinking == "" and answer == "<think>x</think>"


def test_gpt_oss_channels_are_just_another_table():
    stream = ("<|channel|>analysis<|message|>Need 6*7.<|end|><|start|>assistant"
              "<|channel|>final<|message|>42<|return|>")
    rng = random.Random(3)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(stream)), k=10))
        chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)])]
        thinking, answer, _ = run(chunks, fmt=GPT_OSS_CHANNELS)
        assert (thinking, answer) == ("Need 6*7.", "42")


def test_unknown_format_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown thinking format"):
        ThinkingSplitter("nope")


def test_a_continuation_keeps_its_leading_blank():
    """Text that continues text already shown (a raw prompt, a branch) keeps its first
    blank; a fresh reply drops it."""
    for chunks in ([" Paris", " is"], [" ", "Paris is"]):
        kept = ThinkingSplitter("none", keep_blanks=True)
        fresh = ThinkingSplitter("none")
        assert "".join(t for c in chunks for _, t in kept.feed(c)) == " Paris is"
        assert "".join(t for c in chunks for _, t in fresh.feed(c)) == "Paris is"
