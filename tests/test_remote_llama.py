"""Remote panes against a real OpenAI-compatible server: llama-cpp-python's own
``llama_cpp.server`` on 127.0.0.1 serving the SmolLM2 starter GGUF, started once for the
module (a server loads the model, FastAPI and uvicorn: seconds of CPU each time) and
stopped after its last test; each test forgets what the app learnt about it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from desktop_app import paths
from desktop_app.engine.protocol import (
    Delta,
    Event,
    Failed,
    Finished,
    FinishReason,
    GenerationRequest,
    PromptSent,
    Sampling,
)
from desktop_app.engine.remote import RemoteWorker
from desktop_app.models import servers
from desktop_app.models.catalog import Availability, ModelEntry, availability, load_catalog

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SERVED_NAME = "smollm2"
ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SERVE_WITH_SETTING = (
    "import runpy, sys\n"
    "from desktop_app.engine.llama.backend import use_extra_buffers_by_default\n"
    "use_extra_buffers_by_default(sys.argv.pop(1) == 'True')\n"
    "sys.argv[0] = 'llama_cpp.server'\n"
    "runpy.run_module('llama_cpp.server', run_name='__main__', alter_sys=True)\n"
)


@pytest.fixture(scope="module")
def served(smollm2_gguf: Path, tmp_path_factory: pytest.TempPathFactory,
           native_decision) -> Iterator[str]:
    """``python -m llama_cpp.server`` serving SmolLM2 as 'smollm2'; yields its /v1 address."""
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama-server") / "llama-server.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        # llama-cpp-python's own server, with this machine's buffer setting (on an AMX
        # Xeon its defaults crash at the first prompt): the peer stays its own code
        [sys.executable, "-c", SERVE_WITH_SETTING, str(native_decision.extra_buffers),
         "--model", str(smollm2_gguf),
         "--model_alias", SERVED_NAME, "--host", "127.0.0.1", "--port", str(port),
         "--n_ctx", "2048", "--n_threads", "1",
         "--logits_all", "true",  # logprobs need it
         "--flash_attn", "true"],  # as the local engine: the same arithmetic, the same tokens
        stdout=log, stderr=subprocess.STDOUT)
    endpoint = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, log_path.read_text()[-2000:]
            try:
                if httpx2.get(endpoint + "/models", timeout=2).status_code == 200:
                    break
            except httpx2.HTTPError:
                pass
            assert time.monotonic() < deadline, "llama_cpp.server did not start"
            time.sleep(0.5)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@pytest.fixture
def llama_server(served: str) -> Iterator[str]:
    """The module's server, as a test sees it: what the app found out about it (its
    availability, its models) is forgotten after each test."""
    yield served
    servers.check_due()
    servers.forget()


def write_remote_catalog(endpoint: str) -> None:
    paths.user_catalog_path().write_text(f"""
[[model]]
id = "remote-smollm2"
name = "SmolLM2 on a server"
role = "instruct"
[model.source]
endpoint = "{endpoint}"
model = "{SERVED_NAME}"

[[model]]
id = "remote-smollm2-base"
name = "SmolLM2 on a server, as a base model"
role = "base"
[model.source]
endpoint = "{endpoint}"
model = "{SERVED_NAME}"
""", encoding="utf-8")


def entries(endpoint: str) -> tuple[ModelEntry, ModelEntry]:
    write_remote_catalog(endpoint)
    catalog = load_catalog()
    assert catalog.problems == []
    return catalog.get("remote-smollm2"), catalog.get("remote-smollm2-base")


def greedy(max_tokens: int = 24) -> Sampling:
    return Sampling(temperature=0.0, max_tokens=max_tokens, seed=7)


def test_chat_streams_like_a_local_pane(llama_server: str):
    chat, _ = entries(llama_server)
    with RemoteWorker(chat) as worker:
        events = list(worker.generate(GenerationRequest(prompt="What is the capital of France?",
                                                        sampling=greedy())))
    end = events[-1]
    assert isinstance(end, Finished), end
    deltas = [e for e in events if isinstance(e, Delta)]
    assert len(deltas) > 1  # streamed, not one block
    result = end.result
    assert result.answer.strip() and result.answer == "".join(d.answer for d in deltas)
    assert result.answer_tokens == deltas[-1].answer_tokens > 1
    assert result.finish_reason in (FinishReason.STOP, FinishReason.LENGTH)
    assert result.ttft_s is not None and result.tokens_per_s is not None
    assert "What is the capital of France?" in result.prompt_sent


def test_token_logprobs_match_the_local_model(llama_server: str, starter_models):
    """The same GGUF, greedy, in a local process and on the server: the same tokens with
    the same log-probabilities and alternatives, through both APIs' logprobs forms."""
    from desktop_app.engine.worker import ModelWorker

    chat, _ = entries(llama_server)
    request = GenerationRequest(prompt="Name a colour.", sampling=greedy(5), top_logprobs=3)
    with RemoteWorker(chat) as remote:
        served = [e for e in remote.generate(request) if isinstance(e, Delta) and e.logprob]
    # one thread, as the server: greedy text depends on the thread count (float sums)
    with ModelWorker(starter_models["instruct"], n_threads=1) as local:  # type: ignore[arg-type]
        here = [e for e in local.generate(request) if isinstance(e, Delta) and e.logprob]
    assert len(served) >= 3 and len(here) >= 3
    for mine, theirs in zip(here, served):
        assert mine.logprob is not None and theirs.logprob is not None
        assert theirs.logprob.token == mine.logprob.token
        assert abs(theirs.logprob.logprob - mine.logprob.logprob) < 0.05
        assert len(theirs.logprob.top) == 3
        assert [t for t, _ in theirs.logprob.top][:1] == [t for t, _ in mine.logprob.top][:1]


def test_base_model_completion_with_the_document_wrapping(llama_server: str):
    _, base = entries(llama_server)
    with RemoteWorker(base) as worker:
        events = list(worker.generate(GenerationRequest(prompt="What is 2+2?",
                                                        sampling=greedy(48))))
    sent = next(e for e in events if isinstance(e, PromptSent))
    assert sent.text.startswith(base.prompt.document_template.split("{question}")[0])
    assert all(e.logprob is None for e in events if isinstance(e, Delta))  # not asked for
    assert sent.text.endswith("Question: What is 2+2?\nAnswer:")
    end = events[-1]
    assert isinstance(end, Finished), end
    assert end.result.answer.strip()
    assert "\nQuestion:" not in end.result.answer  # the stop sequences went to the server
    assert end.result.reply_text.lstrip() == end.result.answer  # as written, blank and all


def test_a_raw_continuation_keeps_its_first_blank(llama_server: str):
    """Typed-as-is text (and a branch or a Continue) goes on from the prompt: the served
    continuation's leading blank is part of it, as in a local pane, and the reply as
    written is kept for Continue."""
    _, base = entries(llama_server)
    with RemoteWorker(base) as worker:
        events = list(worker.generate(GenerationRequest(
            prompt="The capital of France is", sampling=greedy(4), raw=True)))
    end = events[-1]
    assert isinstance(end, Finished), end
    assert end.result.answer.startswith(" ")
    assert end.result.reply_text == end.result.answer


def test_stop_mid_answer_then_the_next_request_works(llama_server: str):
    chat, _ = entries(llama_server)
    with RemoteWorker(chat) as worker:
        events: list[Event] = []
        request = GenerationRequest(prompt="Write a long story about a dragon.",
                                    sampling=Sampling(temperature=0.7, max_tokens=1500, seed=3))
        for event in worker.generate(request):
            events.append(event)
            if isinstance(event, Delta) and sum(isinstance(e, Delta) for e in events) == 3:
                threading.Thread(target=worker.stop).start()
        end = events[-1]
        assert isinstance(end, Finished), end
        assert end.result.finish_reason == FinishReason.CANCELLED
        assert end.result.answer and end.result.answer_tokens < 1500
        again = list(worker.generate(GenerationRequest(prompt="Say hi.", sampling=greedy(4))))
        assert isinstance(again[-1], Finished), again[-1]


def test_a_stream_the_server_interrupts_is_broken_off_not_finished(llama_server: str):
    """llama-cpp-python's server (``interrupt_requests`` is on by default) ends a running
    stream with a bare ``[DONE]`` when another request arrives. That answer is not whole:
    the pane says the server broke off the answer, never "Finished"; the newcomer is
    answered. (A room turns interrupting off: tests/test_serve.py.)"""
    chat, _ = entries(llama_server)
    first_events: list[Event] = []
    started = threading.Event()

    def long_answer(worker: RemoteWorker) -> None:
        for event in worker.generate(GenerationRequest(
                prompt="Write a long story about a dragon.",
                sampling=Sampling(temperature=0.7, max_tokens=1500, seed=3))):
            first_events.append(event)
            if sum(isinstance(e, Delta) and bool(e.answer) for e in first_events) == 3:
                started.set()

    with RemoteWorker(chat) as first, RemoteWorker(chat) as second:
        thread = threading.Thread(target=long_answer, args=(first,))
        thread.start()
        assert started.wait(120)
        newcomer = list(second.generate(GenerationRequest(prompt="Say hi.",
                                                          sampling=greedy(6))))
        thread.join(120)
    end = first_events[-1]
    assert isinstance(end, Failed), end
    assert end.message.startswith("The server at 127.0.0.1:")
    assert "broke off the answer" in end.message and "without a finish reason" in end.message
    assert end.result is not None and end.result.answer and end.result.answer_tokens < 1500
    assert isinstance(newcomer[-1], Finished) and newcomer[-1].result.answer.strip()


def test_availability_from_the_real_server(llama_server: str):
    chat, _ = entries(llama_server)
    assert availability(chat) in (Availability.CHECKING, Availability.READY)
    assert servers.check_due()
    assert availability(chat) == Availability.READY
    assert servers.list_models(llama_server) == [SERVED_NAME]


def _compare(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "desktop_app", "compare", *args],
                          capture_output=True, text=True, timeout=240, cwd=ROOT,
                          env={**os.environ})


def test_compare_runs_a_remote_pane_beside_a_local_one(llama_server: str, starter_models):
    write_remote_catalog(llama_server)
    done = _compare("Name a colour.", "--json", "--temperature", "0", "--max-tokens", "8",
                    "--models", "smollm2-135m-instruct,remote-smollm2")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    summaries = {r["model"]: r for r in records if r["type"] == "summary"}
    assert set(summaries) == {"smollm2-135m-instruct", "remote-smollm2"}
    for summary in summaries.values():
        assert summary["error"] is None and summary["answer"].strip()
    assert "(remote)" in summaries["remote-smollm2"]["placement"]
    # Token-for-token parity with the local model is checked with both sides on one thread
    # (test_token_logprobs_match_the_local_model): here the local pane's thread count follows
    # the machine's load, and greedy text depends on it.


def test_compare_exits_1_when_the_server_is_gone_and_the_local_pane_still_answers(
        starter_models):
    write_remote_catalog(f"http://127.0.0.1:{_free_port()}/v1")
    done = _compare("Name a colour.", "--max-tokens", "4",
                    "--models", "smollm2-135m-instruct,remote-smollm2")
    assert done.returncode == 1
    assert "remote-smollm2: Cannot reach the server at 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr
    assert "[smollm2-135m-instruct]" in done.stdout
