"""``triptych prompt``: the exact prompt from a template file or a model's GGUF header."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.cli.main import main
from tests.scripted_gguf import REASONING_TEMPLATE, write_scripted_gguf

QWEN3_LIKE = (
    "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n"
    "{% endif %}{% endif %}"
)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["prompt", *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def qwen_template(tmp_path: Path) -> Path:
    path = tmp_path / "qwen3-like.jinja"
    path.write_text(QWEN3_LIKE, encoding="utf-8")
    return path


def test_template_file_prints_the_exact_prompt(capsys, qwen_template, tmp_path):
    code, out, err = run(capsys, "--template", str(qwen_template), "--system", "Be brief.",
                         "What is 2+2?")
    assert code == 0 and err == ""
    assert out == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nWhat is 2+2?"
                   "<|im_end|>\n<|im_start|>assistant\n")
    code, out, _ = run(capsys, "--template", str(qwen_template), "--no-thinking", "hi")
    assert code == 0 and out.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")


def test_history_as_pairs_or_as_chat_messages(capsys, qwen_template, tmp_path):
    pairs = tmp_path / "pairs.json"
    pairs.write_text(json.dumps([{"user": "2+2?", "assistant": "4"}]), encoding="utf-8")
    messages = tmp_path / "messages.json"
    messages.write_text(json.dumps([{"role": "user", "content": "2+2?"},
                                    {"role": "assistant", "content": "4"}]), encoding="utf-8")
    outputs = [run(capsys, "--template", str(qwen_template), "--history", str(path), "3+3?")
               for path in (pairs, messages)]
    expected = ("<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n"
                "<|im_start|>user\n3+3?<|im_end|>\n<|im_start|>assistant\n")
    assert outputs == [(0, expected, ""), (0, expected, "")]


def test_json_names_the_thinking_switch_and_notes(capsys, tmp_path):
    template = tmp_path / "gemma-like.jinja"
    template.write_text(
        "{{ bos_token }}{% for m in messages %}{% if m.role == 'system' %}"
        "{{ raise_exception('System role not supported') }}{% endif %}"
        "<start>{{ m.role }}\n{{ m.content }}<end>\n{% endfor %}<start>model\n<think>\n",
        encoding="utf-8")
    code, out, err = run(capsys, "--template", str(template), "--bos", "<bos>", "--system",
                         "Be brief.", "--no-thinking", "--json", "hi")
    record = json.loads(out)
    assert code == 0 and err == ""
    assert record["prompt"] == ("<bos><start>user\nBe brief.\n\nhi<end>\n<start>model\n"
                                "<think>\n\n</think>\n\n")
    assert record["thinking_switch"] == "empty-block" and not record["starts_in_thinking"]
    assert "no system role" in record["notes"][0]
    code, out, err = run(capsys, "--template", str(template), "hi")
    assert out.endswith("<start>model\n<think>")  # Jinja drops a template's final newline
    assert "inside the model's thinking" in err


@pytest.mark.parametrize("argv, message", [
    (["hi"], "exactly one of --model"),
    (["--model", "x", "--template", "y.jinja", "hi"], "exactly one of --model"),
    (["--template", "missing.jinja", "hi"], "Cannot read the template"),
    (["--template", "{t}", "  "], "The question is empty"),
    (["--template", "{t}", "--history", "{bad}", "hi"], "is not valid JSON"),
    (["--template", "{t}", "--history", "{odd}", "hi"], "must alternate user and assistant"),
    (["--template", "{t}", "--reasoning-effort", "max", "hi"], "low, medium or high"),
    (["--model", "no-such-model", "hi"], "Unknown model 'no-such-model'"),
])
def test_usage_mistakes_are_one_line_and_exit_2(capsys, qwen_template, tmp_path, argv, message):
    (tmp_path / "bad.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "odd.json").write_text(json.dumps([{"role": "assistant", "content": "x"}]),
                                       encoding="utf-8")
    names = {"{t}": str(qwen_template), "{bad}": str(tmp_path / "bad.json"),
             "{odd}": str(tmp_path / "odd.json")}
    code, out, err = run(capsys, *[names.get(arg, arg) for arg in argv])
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("triptych: ") and message in err


def test_a_broken_template_fails_in_one_sentence(capsys, tmp_path):
    template = tmp_path / "broken.jinja"
    template.write_text("{% for %}", encoding="utf-8")
    code, out, err = run(capsys, "--template", str(template), "hi")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "could not be rendered" in err


def _user_catalog(entry: str) -> None:
    catalog = paths.user_catalog_path()
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_text(entry, encoding="utf-8")


def test_model_reads_template_and_special_tokens_from_the_gguf_header(capsys, tmp_path):
    gguf = write_scripted_gguf(tmp_path / "scripted.gguf", "Fine.",
                               chat_template="{{ bos_token }}" + REASONING_TEMPLATE + "{{ eos_token }}")
    _user_catalog(f"""
[[model]]
id = "scripted"
name = "Scripted"
role = "reasoning"
family = "test"
[model.source]
path = {json.dumps(str(gguf))}
[model.prompt]
thinking = "think-tags"
""")
    code, out, err = run(capsys, "--model", "scripted", "--no-thinking", "hi")
    assert code == 0, err
    assert out == "<s><|user|>hi<|end|><|assistant|></s><think>\n\n</think>\n\n"
    code, out, _ = run(capsys, "--model", "scripted", "--bos", "", "--eos", "", "hi")
    assert out == "<|user|>hi<|end|><|assistant|>"


def test_model_file_missing_says_what_to_do(capsys, tmp_path):
    _user_catalog(f"""
[[model]]
id = "gone"
name = "Gone"
role = "instruct"
family = "test"
[model.source]
path = {json.dumps(str(tmp_path / "gone.gguf"))}
""")
    code, out, err = run(capsys, "--model", "gone", "hi")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "gone.gguf, which does not exist" in err and "--template FILE.jinja" in err


def test_base_model_shows_its_document(capsys):
    code, out, err = run(capsys, "--model", "gemma3-270m-base", "Why is the sky blue?")
    assert code == 0 and err == ""
    assert out.endswith("\n\nQuestion: Why is the sky blue?\nAnswer:")


def test_header_reading_matches_llama_cpp_on_a_real_vocabulary(smollm2_gguf):
    """A 49k-token vocabulary: the token texts come from beyond the reader's array limit."""
    import llama_cpp

    from desktop_app.cli.prompt import read_model_prompting

    template, bos, eos = read_model_prompting(smollm2_gguf)
    llm = llama_cpp.Llama(str(smollm2_gguf), vocab_only=True, verbose=False)
    try:
        assert template == llm.metadata["tokenizer.chat_template"]
        assert bos == llm._model.token_get_text(llm.token_bos())
        assert eos == llm._model.token_get_text(llm.token_eos())
    finally:
        llm.close()


@pytest.mark.slow
def test_prompt_is_what_the_model_process_sends(capsys, tmp_path):
    """`triptych prompt` and `compare --json`'s prompt_sent come from the same code."""
    r1_like = ("{{ bos_token }}{% for m in messages %}{% if m.role == 'user' %}<|user|>"
               "{{ m.content }}<|end|>{% elif m.role == 'assistant' %}<|assistant|>{{ m.content }}"
               "<|end|>{% endif %}{% endfor %}{% if add_generation_prompt %}<|assistant|><think>\n"
               "{% endif %}")
    gguf = write_scripted_gguf(tmp_path / "r1.gguf", "Fine.", chat_template=r1_like)
    _user_catalog(f"""
[[model]]
id = "scripted-r1"
name = "Scripted R1"
role = "reasoning"
family = "test"
[model.source]
path = {json.dumps(str(gguf))}
""")
    for thinking in ([], ["--no-thinking"]):
        code, shown, err = run(capsys, "--model", "scripted-r1", *thinking, "hi")
        assert code == 0, err
        code = main(["compare", "hi", "--models", "scripted-r1", "--json", "--max-tokens", "2",
                     *thinking])
        out, err = capsys.readouterr()
        summary = [json.loads(line) for line in out.splitlines()][-1]
        assert code == 0, err
        assert summary["prompt_sent"] == shown
    assert shown == "<s><|user|>hi<|end|><|assistant|><think>\n\n</think>\n\n"


def test_argparse_mistakes_are_one_line_too(capsys, qwen_template):
    with pytest.raises(SystemExit) as exited:
        main(["prompt", "--template", str(qwen_template)])
    out, err = capsys.readouterr()
    assert exited.value.code == 2 and out == "" and err.count("\n") == 1
    assert err.startswith("triptych: ") and "question" in err
