"""The prompt as tokens (issue 29.4): what the model process evaluated, shown as its ids.

The ids the model process reports with PromptSent (what the window's Tokens view and
``triptych prompt --tokens`` show) must be llama.cpp's own tokenization of the exact text
sent, special tokens parsed as special, on both starter models.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from desktop_app.cli.main import main
from desktop_app.engine.protocol import GenerationRequest, PromptSent, PromptToken, Sampling
from desktop_app.engine.worker import ModelWorker
from desktop_app.models.catalog import ModelEntry, ensure_local

QUESTION = "What is 7 * 8?"
# The tokens that mark structure in each starter's prompt: the base model reads a document
# that only its tokenizer's BOS precedes; the chat model reads its template's turn markers.
SPECIAL_TEXTS = {"base": {"<bos>"}, "instruct": {"<|im_start|>", "<|im_end|>"}}


def _llama_tokenize(path: Path, text: str) -> tuple[list[int], int]:
    """llama-cpp-python's own tokenization of ``text`` (special tokens parsed), and the
    model's BOS id."""
    import llama_cpp

    llm = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    try:
        return llm.tokenize(text.encode("utf-8"), add_bos=True, special=True), llm.token_bos()
    finally:
        llm.close()


def _sent(entry: ModelEntry) -> PromptSent:
    with ModelWorker(entry) as worker:
        events = list(worker.generate(GenerationRequest(QUESTION, Sampling(max_tokens=1,
                                                                           temperature=0))))
    return next(event for event in events if isinstance(event, PromptSent))


@pytest.mark.slow
@pytest.mark.parametrize("role", ["base", "instruct"])
def test_the_tokens_sent_are_the_models_own_tokenization(starter_models, capsys, role):
    entry = starter_models[role]
    sent = _sent(entry)
    ids, bos = _llama_tokenize(ensure_local(entry), sent.text)
    assert [token.id for token in sent.tokens] == ids and sent.n_tokens == len(ids)
    assert {token.text for token in sent.tokens if token.special} == SPECIAL_TEXTS[role]
    # the tokens spell the text sent; the base model's BOS is its tokenizer's, not the text's
    spelled = "".join(token.text for token in sent.tokens)
    if role == "base":
        assert sent.tokens[0] == PromptToken(bos, "<bos>", True)
        assert not sent.text.startswith("<bos>")
        spelled = spelled.removeprefix("<bos>")
    assert spelled == sent.text
    # the command line shows the same ids, from the vocabulary alone
    code = main(["prompt", "--model", entry.id, "--tokens", "--json", QUESTION])
    assert code == 0
    shown = json.loads(capsys.readouterr().out)
    assert [token["id"] for token in shown["tokens"]] == ids and shown["n_tokens"] == len(ids)
    assert [token["special"] for token in shown["tokens"]] == [t.special for t in sent.tokens]


@pytest.mark.slow
def test_prompt_tokens_prints_one_line_per_token(starter_models, capsys):
    code = main(["prompt", "--model", "smollm2-135m-instruct", "--tokens", QUESTION])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert code == 0 and err == ""
    # position, id, the text with blanks made visible, and "special" for the markers
    assert lines[0].split() == ["0", "1", "<|im_start|>", "special"]
    assert "·is" in [line.split()[2] for line in lines[:-1]]  # " is": one token, its blank
    assert [line.split()[2] for line in lines if line.endswith(" special")] == [
        "<|im_start|>", "<|im_end|>", "<|im_start|>", "<|im_end|>", "<|im_start|>"]
    assert lines[-1].startswith(f"{len(lines) - 1} tokens, 5 special")


@pytest.mark.parametrize("argv, code, message", [
    (["--template", "{t}", "--tokens", "hi"], 2, "--tokens goes with --model ID"),
    (["--model", "lab-model", "--tokens", "hi"], 1, "runs on a server"),
])
def test_tokens_need_a_local_models_vocabulary(capsys, tmp_path, argv, code, message):
    from desktop_app import paths

    template = tmp_path / "t.jinja"
    template.write_text("{{ messages[0]['content'] }}", encoding="utf-8")
    catalog = paths.user_catalog_path()
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_text('[[model]]\nid = "lab-model"\nname = "Lab"\nrole = "instruct"\n'
                       'family = "test"\n[model.source]\nendpoint = "http://127.0.0.1:9/v1"\n'
                       'model = "m"\n', encoding="utf-8")
    assert main(["prompt", *[str(template) if arg == "{t}" else arg for arg in argv]]) == code
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err
