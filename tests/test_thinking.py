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


# Replies as llama.cpp's own tests write them for these models (tests/test-chat.cpp), or as
# the model card shows them; ``True``: the chat template pre-fills the opening marker.
FORMAT_REPLIES = [
    ("gemma4-channel", False, "<|channel>thought\nI'm\nthinking<channel|>Hello, world!",
     ("I'm\nthinking", "Hello, world!")),
    ("seed-think", False, "<seed:think>I'm thinking about the answer</seed:think>\nHello, world!",
     ("I'm thinking about the answer", "Hello, world!")),
    ("cohere-thinking", False, "<|START_THINKING|>I'm\nthinking<|END_THINKING|>"
     "<|START_RESPONSE|>Hello, world!\nWhat's up?<|END_RESPONSE|>",
     ("I'm\nthinking", "Hello, world!\nWhat's up?")),
    ("cohere-thinking", True, "I'm\nthinking<|END_THINKING|><|START_TEXT|>Hello, world!"
     "<|END_TEXT|>", ("I'm\nthinking", "Hello, world!")),
    ("cohere-thinking", False, "<|START_RESPONSE|>Hi<|END_RESPONSE|>", ("", "Hi")),
    ("apertus-inner", False, "<|inner_prefix|>Let me see.<|inner_suffix|>It is 4.",
     ("Let me see.", "It is 4.")),
    ("minimax-think", True, "I'm thinking</mm:think>\nHello", ("I'm thinking", "Hello")),
    ("mistral-think", False, "[THINK]I'm\nthinking[/THINK]Hello, world!",
     ("I'm\nthinking", "Hello, world!")),
    ("kimi-k3", True, "I'm thinking<|close|>think<|sep|><|open|>response<|sep|>Hello"
     "<|close|>response<|sep|>", ("I'm thinking", "Hello")),
    ("hy3-think", False, "<think:opensource>6 and 7</think:opensource>42",
     ("6 and 7", "42")),
    ("solar-think", False, "<|think|>6 and 7<|end|><|begin|>assistant<|content|>42<|end|>",
     ("6 and 7", "42")),
    ("solar-think", False, "<|content|>42<|end|>", ("", "42")),
    ("apriel-steps", True, "I'm\nthinking\n[BEGIN FINAL RESPONSE]\nHello, world!\nWhat's up?",
     ("I'm\nthinking\n", "Hello, world!\nWhat's up?")),
    ("apriel-steps", False, "Here are my reasoning steps:\n6 and 7\n[BEGIN FINAL RESPONSE]\n42"
     "\n[END FINAL RESPONSE]", ("6 and 7\n", "42\n")),
    ("muse-self", False, " to=self<|message|>6 and 7<|eom|><|start|>assistant to=user"
     "<|message|>42<|eot|>", ("6 and 7", "42")),
]


@pytest.mark.parametrize("name, prefilled, reply, expected", FORMAT_REPLIES)
def test_every_format_splits_its_own_replies_however_they_are_cut(name, prefilled, reply,
                                                                  expected):
    assert split_reply(reply, name, prefilled=prefilled)[:2] == expected
    rng = random.Random(name)
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(reply)), k=min(len(reply) - 1, 9)))
        chunks = [reply[a:b] for a, b in zip([0, *cuts], [*cuts, len(reply)])]
        assert run(chunks, fmt=name, prefilled=prefilled)[:2] == expected


def test_every_format_closes_its_budget_and_has_a_signature():
    from desktop_app.text.thinking import FORMATS

    for fmt in FORMATS.values():
        if fmt.thinks:
            assert fmt.budget_forcing and fmt.signature and fmt.open and fmt.close, fmt.name
            # what the budget writes ends the thinking: the reply after it is answer
            assert split_reply(fmt.budget_close + "42", fmt, prefilled=True)[:2] == ("", "42")
