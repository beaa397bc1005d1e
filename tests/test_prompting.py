"""Prompt building: document wrapping for base models, chat templates for the others."""

from __future__ import annotations

from desktop_app.catalog import load_catalog
from desktop_app.prompting import Turn, build_document_prompt, build_prompt
from tests.scripted_gguf import REASONING_TEMPLATE, scripted_entry

QWEN3_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)


def test_base_model_gets_a_document_with_stops():
    base = load_catalog().get("gemma3-270m-base")
    built = build_prompt(base, "  Why is the sky blue? ")
    assert built.text.endswith("Question: Why is the sky blue?\nAnswer:")
    assert "\nQuestion:" in built.stop
    raw = build_prompt(base, "Once upon a time", raw=True)
    assert raw.text == "Once upon a time" and raw.stop == ()
    custom = build_prompt(base, "2+2?", document_template="Q: {question}\nA:")
    assert custom.text == "Q: 2+2?\nA:"


def test_base_history_repeats_the_question_block():
    template = "Intro.\n\nQuestion: {question}\nAnswer:"
    text = build_document_prompt(template, "third?", (Turn("first?", " one"), Turn("second?", "two")))
    assert text == ("Intro.\n\nQuestion: first?\nAnswer: one\n\nQuestion: second?\nAnswer: two"
                    "\n\nQuestion: third?\nAnswer:")


def test_thinking_flag_reaches_the_template(tmp_path):
    entry = scripted_entry(tmp_path / "x.gguf", toggle_flag="enable_thinking")
    on = build_prompt(entry, "hi", chat_template=QWEN3_LIKE, thinking=True)
    off = build_prompt(entry, "hi", chat_template=QWEN3_LIKE, thinking=False)
    assert on.text.endswith("<|im_start|>assistant\n") and not on.starts_in_thinking
    assert off.text.endswith("<think>\n\n</think>\n\n") and not off.starts_in_thinking


def test_prefilled_think_is_detected_and_missing_switch_is_closed_for_the_model(tmp_path):
    prefilled = scripted_entry(tmp_path / "x.gguf", prefill=True)
    built = build_prompt(prefilled, "hi", chat_template=REASONING_TEMPLATE,
                         history=(Turn("before", "answer"),), system_prompt="Be brief.")
    assert built.starts_in_thinking
    assert built.text == ("<|system|>Be brief.<|end|><|user|>before<|end|>"
                          "<|assistant|>answer<|end|><|user|>hi<|end|><|assistant|><think>")
    plain = scripted_entry(tmp_path / "x.gguf")
    off = build_prompt(plain, "hi", chat_template=REASONING_TEMPLATE, thinking=False)
    assert off.text.endswith("<|assistant|><think>\n\n</think>\n\n")


def test_broken_template_is_a_sentence(tmp_path):
    entry = scripted_entry(tmp_path / "x.gguf")
    import pytest

    from desktop_app.prompting import PromptError
    with pytest.raises(PromptError, match="could not be rendered"):
        build_prompt(entry, "hi", chat_template="{% for %}")
    with pytest.raises(PromptError, match="refused"):
        build_prompt(entry, "hi", chat_template="{{ raise_exception('no system role') }}")
