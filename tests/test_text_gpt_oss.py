"""gpt-oss's analysis/final channels end to end: catalog entry, prompt, real llama.cpp,
the splitter's channel table. The model is a scripted GGUF whose template is laid out
like harmony (``<|start|>role<|message|>…<|end|>``) and whose script is a harmony reply."""

from __future__ import annotations

from pathlib import Path

import pytest

from desktop_app.engine.protocol import Delta, Finished, GenerationRequest, Sampling
from desktop_app.engine.worker import ModelWorker
from desktop_app.models import catalog as cat
from tests.scripted_gguf import write_scripted_gguf

pytestmark = pytest.mark.slow

HARMONY_STYLE_TEMPLATE = (
    "{% for message in messages %}"
    "<|start|>{{ message['role'] }}<|message|>{{ message['content'] }}<|end|>"
    "{% endfor %}"
    # Real harmony ends with "<|start|>assistant"; the scripted model starts after one token.
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SCRIPT = ("<|channel|>analysis<|message|>Two plus two.\nThat makes four.<|end|>"
          "<|start|>assistant<|channel|>final<|message|>The answer is 4.")


def test_channels_split_into_thinking_and_answer(tmp_path: Path) -> None:
    path = write_scripted_gguf(tmp_path / "harmony.gguf", SCRIPT, chat_template=HARMONY_STYLE_TEMPLATE)
    entry = cat.parse_entry({
        "id": "scripted-gpt-oss", "role": "reasoning", "context_length": 512,
        "source": {"path": str(path)},
        "prompt": {"thinking": "gpt-oss-channels"},
    }, "test", 0)
    assert entry.prompt.thinking == "gpt-oss-channels"
    sampling = Sampling.for_entry(entry, temperature=0.0, seed=7, max_tokens=64)
    with ModelWorker(entry) as worker:
        events = list(worker.generate(GenerationRequest("What is 2+2?", sampling)))
    last = events[-1]
    assert isinstance(last, Finished), last
    result = last.result
    assert result.prompt_sent.startswith("<|start|>user<|message|>What is 2+2?<|end|>")
    assert result.thinking == "Two plus two.\nThat makes four."
    assert result.answer == "The answer is 4."
    assert result.finish_reason == "stop" and not result.thinking_unterminated
    streamed = "".join(e.answer for e in events if isinstance(e, Delta))
    assert streamed == result.answer and "<|channel|>" not in streamed
