"""Prompt building: document wrapping for base models, chat templates for the others."""

from __future__ import annotations

from desktop_app.engine.prompting import Turn, build_document_prompt, build_prompt
from desktop_app.models.catalog import load_catalog
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

    from desktop_app.engine.prompting import PromptError
    with pytest.raises(PromptError, match="could not be rendered"):
        build_prompt(entry, "hi", chat_template="{% for %}")
    with pytest.raises(PromptError, match="refused"):
        build_prompt(entry, "hi", chat_template="{{ raise_exception('no system role') }}")


# Small templates written for these tests, each using one feature real templates rely on.
R1_PREFILLED = (
    "{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}<|User|>{{ m.content }}"
    "{% else %}<|Assistant|>{{ m.content }}<|eos|>{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|Assistant|><think>\n{% endif %}"
)
HARMONY_LIKE = (
    "<|start|>system<|message|>Reasoning: {{ reasoning_effort | default('medium') }}<|end|>"
    "{% for m in messages %}<|start|>{{ m.role }}<|message|>{{ m.content }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|start|>assistant{% endif %}"
)
NO_SYSTEM_ROLE = (
    "{% for m in messages %}{% if m.role == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<turn>{{ m.role }}\n{{ m.content }}</turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<turn>model\n{% endif %}"
)


def _chat_entry(thinking: str = "think-tags", **prompt: object):
    from desktop_app.models.catalog import ModelEntry, PromptStyle
    from desktop_app.models.sources import FileSource

    return ModelEntry(id="t", name="T", role="reasoning" if thinking != "none" else "instruct",
                      family="test", source=FileSource(path="t.gguf"),
                      prompt=PromptStyle(style="chat", thinking=thinking, **prompt))  # type: ignore[arg-type]


def test_templates_render_in_the_transformers_environment():
    template = (
        "{% for m in messages %}{% if loop.index > 1 %}{% break %}{% endif %}"
        "{% generation %}{{ m | tojson }}{% endgeneration %}{% endfor %}"
    )
    built = build_prompt(_chat_entry("none"), "<b>&'", chat_template=template)
    assert built.text == '{"role": "user", "content": "<b>&\'"}'  # tojson: not HTML-escaped


def test_thinking_off_closes_a_prefilled_think_block():
    entry = _chat_entry()
    on = build_prompt(entry, "hi", chat_template=R1_PREFILLED, bos_token="<s>")
    off = build_prompt(entry, "hi", chat_template=R1_PREFILLED, bos_token="<s>", thinking=False)
    assert on.text == "<s><|User|>hi<|Assistant|><think>\n" and on.starts_in_thinking
    assert off.text == "<s><|User|>hi<|Assistant|><think>\n\n</think>\n\n"
    assert not off.starts_in_thinking and "no thinking switch" in off.notes[0] and not on.notes


def test_enable_thinking_is_found_in_the_template_without_a_catalog_flag():
    from desktop_app.engine.prompting import ThinkingSwitch, thinking_control

    entry = _chat_entry()
    assert thinking_control(entry, QWEN3_LIKE).switch == ThinkingSwitch.TEMPLATE_FLAG
    off = build_prompt(entry, "hi", chat_template=QWEN3_LIKE, thinking=False)
    assert off.text.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    # A namespace attribute of the same name is not the template's switch.
    own = "{% set ns = namespace(enable_thinking=true) %}" + R1_PREFILLED
    assert thinking_control(entry, own).switch == ThinkingSwitch.EMPTY_BLOCK


def test_harmony_thinking_off_lowers_reasoning_effort_and_writes_no_think_tags():
    import pytest

    from desktop_app.engine.prompting import PromptError, ThinkingSwitch, thinking_control

    entry = _chat_entry("gpt-oss-channels")
    assert thinking_control(entry, HARMONY_LIKE).switch == ThinkingSwitch.REASONING_EFFORT
    on = build_prompt(entry, "hi", chat_template=HARMONY_LIKE)
    off = build_prompt(entry, "hi", chat_template=HARMONY_LIKE, thinking=False)
    high = build_prompt(entry, "hi", chat_template=HARMONY_LIKE, reasoning_effort="high")
    assert "Reasoning: medium" in on.text and not on.notes
    assert "Reasoning: low" in off.text and off.text.endswith("<|start|>assistant")
    assert "<think>" not in off.text and "always thinks" in off.notes[0]
    assert "Reasoning: high" in high.text
    with pytest.raises(PromptError, match="low, medium or high"):
        build_prompt(entry, "hi", chat_template=HARMONY_LIKE, reasoning_effort="max")
    fixed = "{% for m in messages %}{{ m.content }}{% endfor %}<|start|>assistant"
    assert thinking_control(entry, fixed).switch == ThinkingSwitch.ALWAYS
    always = build_prompt(entry, "hi", chat_template=fixed, thinking=False)
    assert always.text == "hi<|start|>assistant" and "always thinks" in always.notes[0]


def test_system_text_is_folded_into_the_first_user_turn_when_the_template_has_no_role():
    import pytest

    from desktop_app.engine.prompting import PromptError

    entry = _chat_entry("none")
    built = build_prompt(entry, "hi", chat_template=NO_SYSTEM_ROLE, system_prompt="Be brief.",
                         history=(Turn("first", "one"),))
    assert built.text == ("<turn>user\nBe brief.\n\nfirst</turn>\n<turn>assistant\none</turn>\n"
                          "<turn>user\nhi</turn>\n<turn>model\n")
    assert "no system role" in built.notes[0]
    plain = build_prompt(entry, "hi", chat_template=NO_SYSTEM_ROLE)
    assert plain.text == "<turn>user\nhi</turn>\n<turn>model\n" and not plain.notes
    with pytest.raises(PromptError, match="refused the conversation: no"):
        build_prompt(entry, "hi", system_prompt="x",
                     chat_template="{{ raise_exception('no') }}")


def test_every_thinking_switch_has_a_label():
    from desktop_app.engine.prompting import THINKING_SWITCH_LABELS, ThinkingSwitch

    assert set(THINKING_SWITCH_LABELS) == set(ThinkingSwitch)


def test_a_catalog_flag_the_template_does_not_read_falls_back_to_the_empty_block(tmp_path):
    entry = scripted_entry(tmp_path / "x.gguf", toggle_flag="enable_thinking")
    off = build_prompt(entry, "hi", chat_template=REASONING_TEMPLATE, thinking=False)
    assert off.text == "<|user|>hi<|end|><|assistant|><think>\n\n</think>\n\n"


def test_a_model_without_a_template_gets_chatml_and_a_note():
    built = build_prompt(_chat_entry("none"), "hi")
    assert built.text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
    assert "no chat template" in built.notes[0]


def test_token_texts_reads_only_the_wanted_vocabulary_entries(tmp_path):
    """The BOS/EOS texts for ``triptych prompt`` come from the public header reader."""
    import pytest

    from desktop_app.models import gguf
    from tests.scripted_gguf import SPECIALS, write_scripted_gguf

    path = write_scripted_gguf(tmp_path / "vocab.gguf", "<think>ok</think>done")
    bos, eos, end = (SPECIALS.index(token) for token in ("<s>", "</s>", "<|end|>"))
    assert gguf.token_texts(path, [bos, eos, end, 10**6]) == {
        bos: "<s>", eos: "</s>", end: "<|end|>"}  # an id past the vocabulary is left out
    assert gguf.token_texts(path, []) == {}
    (tmp_path / "not.gguf").write_bytes(b"nothing like a model")
    with pytest.raises(gguf.GGUFError, match="bad magic"):
        gguf.token_texts(tmp_path / "not.gguf", [1])
