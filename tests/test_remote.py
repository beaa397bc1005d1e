"""Remote panes against a small local OpenAI-compatible endpoint (tests/openai_stub_server.py):
the protocol variants a real llama.cpp server does not produce. Real HTTP, real sockets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.backends.fail import Keyring as FailKeyring

from desktop_app.engine.prompting import Turn
from desktop_app.engine.protocol import (
    Delta,
    Event,
    Failed,
    Finished,
    FinishReason,
    GenerationRequest,
    Loaded,
    Loading,
    PromptSent,
    Sampling,
)
from desktop_app.engine.remote import RemoteWorker
from desktop_app.engine.worker import open_worker, run_comparison
from desktop_app.models import servers
from desktop_app.models.catalog import Availability, ModelEntry, availability, parse_entry
from tests.openai_stub_server import ANSWER, StubServer

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def stub() -> Iterator[StubServer]:
    with StubServer() as server:
        yield server
    servers.check_due()
    servers.forget()


@pytest.fixture
def keyed_stub(monkeypatch: pytest.MonkeyPatch) -> Iterator[StubServer]:
    monkeypatch.delenv("STUB_KEY", raising=False)
    with StubServer(api_key="sesame") as server:
        yield server
    servers.check_due()
    servers.forget()


def remote_entry(endpoint: str, model: str, role: str = "reasoning", **extra: Any) -> ModelEntry:
    source = {"endpoint": endpoint, "model": model, **extra.pop("source", {})}
    table = {"id": f"remote-{model}", "role": role, "source": source, **extra}
    return parse_entry(table, "test", 0)


def run(entry: ModelEntry, request: GenerationRequest | None = None) -> list[Event]:
    with RemoteWorker(entry) as worker:
        return list(worker.generate(request or GenerationRequest(prompt="What is 2+2?")))


def final(events: list[Event]) -> Finished | Failed:
    last = events[-1]
    assert isinstance(last, Finished | Failed)
    return last


def text_of(events: list[Event], kind: str) -> str:
    return "".join(getattr(e, kind) for e in events if isinstance(e, Delta))


# ------------------------------------------------------------------- thinking


@pytest.mark.parametrize("model", ["reasoning-content", "reasoning", "think-tags"])
def test_thinking_arrives_split_from_the_answer(stub: StubServer, model: str):
    events = run(remote_entry(stub.url, model))
    kinds = [type(e) for e in events]
    assert kinds[:3] == [Loading, Loaded, PromptSent]
    end = final(events)
    assert isinstance(end, Finished)
    result = end.result
    assert result.thinking == "Two and two make four."
    assert result.answer == "The answer is 4."
    assert text_of(events, "thinking") == result.thinking
    assert text_of(events, "answer") == result.answer
    # one streamed piece, one token, counted as the local worker counts them (the piece
    # that opens <think> is still counted as answer, the one that closes it as thinking)
    expected = {"think-tags": (6, 4)}.get(model, (3, 3))
    assert (result.thinking_tokens, result.answer_tokens) == expected
    assert result.finish_reason == FinishReason.STOP
    assert result.ttft_s is not None and result.thinking_s is not None
    assert result.placement and "(remote)" in result.placement


@pytest.mark.parametrize("model", ["prefilled", "reasoning-content"])
def test_a_template_that_opens_thinking_itself(stub: StubServer, model: str):
    """R1-style templates write <think> for the model: without a reasoning parser the
    content starts inside thinking; with one, thinking arrives apart and content is answer."""
    entry = remote_entry(stub.url, model, prompt={"thinking_prefilled": True})
    events = run(entry)
    assert next(e for e in events if isinstance(e, PromptSent)).starts_in_thinking
    result = final(events).result
    assert result is not None
    assert (result.thinking, result.answer) == ("Two and two make four.", "The answer is 4.")


def test_think_tags_stay_in_the_answer_of_a_model_that_does_not_think(stub: StubServer):
    events = run(remote_entry(stub.url, "think-tags", role="instruct"))
    result = final(events).result
    assert result is not None
    assert result.thinking == "" and result.answer.startswith("<think>")


def test_usage_from_the_server_replaces_the_count(stub: StubServer):
    result = final(run(remote_entry(stub.url, "usage", role="instruct"))).result
    assert result is not None
    assert (result.prompt_tokens, result.prompt_cached, result.answer_tokens) == (17, 9, 5)


@pytest.mark.parametrize("role", ["instruct", "base"])
def test_token_logprobs_in_either_api_form(stub: StubServer, role: str):
    events = run(remote_entry(stub.url, "logprobs", role=role),
                 GenerationRequest(prompt="2+2?", top_logprobs=2))
    body = stub.requests[-1]
    if role == "base":
        assert body["logprobs"] == 2 and "top_logprobs" not in body
    else:
        assert body["logprobs"] is True and body["top_logprobs"] == 2
    figures = [e.logprob for e in events if isinstance(e, Delta) and e.logprob]
    assert [(f.token, f.logprob) for f in figures] == [
        (text, -0.25 * (i + 1)) for i, text in enumerate(ANSWER)]
    for figure in figures:  # most likely first, whichever order the server used
        assert [t for t, _ in figure.top] == [figure.token, "other"]


# ------------------------------------------------------------------- requests


def test_sampling_seed_stop_and_history_are_sent(stub: StubServer):
    entry = remote_entry(stub.url, "plain", role="reasoning")
    request = GenerationRequest(
        prompt="And 3+3?", sampling=Sampling(temperature=0.2, top_p=0.5, top_k=7, min_p=0.1,
                                             repeat_penalty=1.3, max_tokens=33, seed=1234),
        history=(Turn("What is 2+2?", "4"),), system_prompt="Be brief.", thinking=False,
        stop=("END",))
    events = run(entry, request)
    body = stub.requests[-1]
    assert body["model"] == "plain" and body["stream"] is True
    assert (body["temperature"], body["top_p"], body["top_k"], body["min_p"]) == (0.2, 0.5, 7, 0.1)
    assert body["repeat_penalty"] == 1.3 and body["max_tokens"] == 33 and body["seed"] == 1234
    assert body["stop"] == ["END"]
    assert body["chat_template_kwargs"] == {"enable_thinking": False}
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "And 3+3?"
    sent = next(e for e in events if isinstance(e, PromptSent))
    assert sent.seed == 1234 and "And 3+3?" in sent.text and "[system]" in sent.text


def test_a_base_model_gets_the_document_wrapping_on_completions(stub: StubServer):
    entry = remote_entry(stub.url, "plain", role="base")
    events = run(entry, GenerationRequest(prompt="What is 2+2?"))
    body = stub.requests[-1]
    assert "messages" not in body
    assert body["prompt"].endswith("Question: What is 2+2?\nAnswer:")
    assert body["stop"] == list(entry.prompt.stop)
    sent = next(e for e in events if isinstance(e, PromptSent))
    assert sent.text == body["prompt"]
    assert final(events).result.answer == "".join(ANSWER)  # type: ignore[union-attr]


def test_no_seed_given_means_a_random_one_that_is_reported(stub: StubServer):
    events = run(remote_entry(stub.url, "plain", role="instruct"))
    sent = next(e for e in events if isinstance(e, PromptSent))
    assert stub.requests[-1]["seed"] == sent.seed
    assert "logprobs" not in stub.requests[-1]  # nothing asked, nothing computed


# --------------------------------------------------------------------- errors


def test_unreachable_server_is_one_sentence(stub: StubServer):
    port = stub.url.rsplit(":", 1)[1].split("/")[0]
    stub.stop()  # nothing listens there any more
    end = final(run(remote_entry(f"http://127.0.0.1:{port}/v1", "plain")))
    assert isinstance(end, Failed)
    assert end.message.startswith("Cannot reach the server at 127.0.0.1:") and "\n" not in end.message
    assert end.result is not None and end.result.error == end.message


def test_tls_failure_is_named(stub: StubServer):
    end = final(run(remote_entry(stub.url.replace("http://", "https://"), "plain")))
    assert isinstance(end, Failed)
    assert "secure connection" in end.message


def test_a_refused_key_names_the_variable(keyed_stub: StubServer,
                                          monkeypatch: pytest.MonkeyPatch):
    entry = remote_entry(keyed_stub.url, "plain", source={"api_key_env": "STUB_KEY"})
    monkeypatch.setenv("STUB_KEY", "wrong")
    end = final(run(entry))
    assert isinstance(end, Failed)
    assert "HTTP 401" in end.message and "STUB_KEY" in end.message
    monkeypatch.setenv("STUB_KEY", "sesame")
    end = final(run(entry))
    assert isinstance(end, Finished) and end.result.answer == "The answer is 4."
    assert keyed_stub.headers[-1]["Authorization"] == "Bearer sesame"


def test_a_forbidden_model_names_the_variable(stub: StubServer, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("STUB_KEY", "sesame")
    end = final(run(remote_entry(stub.url, "forbidden", source={"api_key_env": "STUB_KEY"})))
    assert isinstance(end, Failed)
    assert "HTTP 403" in end.message and "STUB_KEY" in end.message


def test_unknown_model_is_404(stub: StubServer):
    end = final(run(remote_entry(stub.url, "no-such-model")))
    assert isinstance(end, Failed)
    assert "does not know the model 'no-such-model'" in end.message


def test_server_error_is_reported_with_its_words(stub: StubServer):
    end = final(run(remote_entry(stub.url, "broken")))
    assert isinstance(end, Failed)
    assert "HTTP 503" in end.message and "the GPU fell over" in end.message


def test_a_servers_control_characters_are_shown_escaped(stub: StubServer):
    end = final(run(remote_entry(stub.url, "hostile")))
    assert isinstance(end, Failed)
    assert "\x1b" not in end.message and "\u202e" not in end.message and "\n" not in end.message
    assert "\\x1b[2J" in end.message and "evil second line" in end.message


def test_429_is_retried_once_after_retry_after(stub: StubServer):
    end = final(run(remote_entry(stub.url, "busy-once")))
    assert isinstance(end, Finished) and end.result.answer == "The answer is 4."
    assert len(stub.requests) == 2


def test_429_twice_says_it_already_waited(stub: StubServer):
    end = final(run(remote_entry(stub.url, "busy")))
    assert isinstance(end, Failed)
    assert "HTTP 429" in end.message and "tried once more" in end.message
    assert len(stub.requests) == 2


def test_a_cut_stream_keeps_the_partial_answer(stub: StubServer):
    events = run(remote_entry(stub.url, "cut", role="instruct"))
    end = final(events)
    assert isinstance(end, Failed) and end.result is not None
    assert end.result.answer == "The answer is "
    assert "broke off the answer" in end.message and "partial answer is kept" in end.message
    assert end.result.finish_reason == FinishReason.ERROR


@pytest.mark.parametrize(("model", "kept"), [("interrupted", "The answer is "),
                                              ("interrupted-empty", "")])
def test_a_stream_ended_without_a_finish_reason_is_broken_off_not_finished(
        stub: StubServer, model: str, kept: str):
    """llama-cpp-python's server ends an interrupted stream with a bare [DONE]: the pane
    says the server broke off the answer (an empty one too), never 'Finished'."""
    end = final(run(remote_entry(stub.url, model, role="instruct")))
    assert isinstance(end, Failed) and end.result is not None
    assert end.message.startswith(f"The server at {stub.url.split('/')[2]} broke off the answer")
    assert "without a finish reason" in end.message and "\n" not in end.message
    assert end.result.answer == kept and end.result.finish_reason == FinishReason.ERROR
    assert ("partial answer is kept" in end.message) == bool(kept)
    assert ("before its first word" in end.message) == (not kept)


def test_a_malformed_chunk_is_one_sentence_and_keeps_what_came(stub: StubServer):
    end = final(run(remote_entry(stub.url, "malformed", role="instruct")))
    assert isinstance(end, Failed) and end.result is not None
    assert "malformed chunk" in end.message and end.result.answer == "The answer "


# ----------------------------------------------------------------------- stop


def _stop_after_first_delta(worker: RemoteWorker, request: GenerationRequest) -> list[Event]:
    events: list[Event] = []
    for event in worker.generate(request):
        events.append(event)
        if isinstance(event, Delta) and len(events) and sum(
                isinstance(e, Delta) for e in events) == 1:
            threading.Timer(0.05, worker.stop).start()
    return events


@pytest.mark.parametrize("model", ["slow", "silent"])
def test_stop_ends_the_stream_and_keeps_the_text(stub: StubServer, model: str):
    entry = remote_entry(stub.url, model, role="instruct")
    with RemoteWorker(entry) as worker:
        started = time.monotonic()
        events = _stop_after_first_delta(worker, GenerationRequest(prompt="go"))
        waited = time.monotonic() - started
        end = final(events)
        assert isinstance(end, Finished), end
        assert end.result.finish_reason == FinishReason.CANCELLED
        assert end.result.answer  # what arrived before the stop is kept
        assert waited < 20  # a silent server does not hold the pane (a hang bound, not a speed)
        assert worker.alive


def test_stop_before_the_server_answers_at_all(stub: StubServer):
    """The request thread is woken too (the leak check fails a test that leaves it)."""
    with RemoteWorker(remote_entry(stub.url, "hang")) as worker:
        events: list[Event] = []
        for event in worker.generate(GenerationRequest(prompt="go")):
            events.append(event)
            if isinstance(event, Loading):
                threading.Timer(0.2, worker.stop).start()
        end = final(events)
        assert isinstance(end, Finished) and end.result.finish_reason == FinishReason.CANCELLED
        for thread in worker._threads:
            thread.join(10)
            assert not thread.is_alive()


def test_remote_pane_beside_a_failing_one_in_run_comparison(stub: StubServer):
    entries = [remote_entry(stub.url, "reasoning-content"), remote_entry(stub.url, "broken")]
    workers = [open_worker(entry) for entry in entries]
    try:
        ends: dict[int, Event] = {}
        for pane, event in run_comparison(workers, [GenerationRequest(prompt="2+2?")] * 2):
            if isinstance(event, Finished | Failed):
                ends[pane] = event
    finally:
        for worker in workers:
            worker.close()
    assert isinstance(ends[0], Finished) and ends[0].result.answer == "The answer is 4."
    assert isinstance(ends[1], Failed) and "HTTP 503" in ends[1].message


# -------------------------------------------------------------- availability


def test_availability_never_waits_and_follows_the_server(stub: StubServer):
    entry = remote_entry(stub.url, "plain")
    assert availability(entry) == Availability.CHECKING  # asked in the background
    assert servers.check_due()
    assert availability(entry) == Availability.READY
    missing = remote_entry(stub.url, "not-listed")
    assert availability(missing) == Availability.NOT_SERVED


def test_availability_of_a_refused_key(keyed_stub: StubServer):
    entry = remote_entry(keyed_stub.url, "plain", source={"api_key_env": "STUB_KEY"})
    servers.check(entry.source.endpoint, "STUB_KEY")  # type: ignore[union-attr]
    assert availability(entry) == Availability.KEY_REFUSED


def test_a_remote_pane_needs_no_local_memory():
    from desktop_app.models import fit

    entry = remote_entry("http://127.0.0.1:9/v1", "big-70b")
    report = fit.fit_check([(entry, 32768)], catalog=[entry], available=1024, devices=())
    assert report.needed == 0 and report.fits and report.warning is None


# ------------------------------------------------------- adding a server's models


def test_add_server_lists_then_adds_models_without_a_key_in_the_file(
        keyed_stub: StubServer, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]):
    from desktop_app import paths
    from desktop_app.cli import models as models_cli
    from desktop_app.models.catalog import load_catalog
    from desktop_app.models.sources import RemoteSource

    assert models_cli.main(["add-server", keyed_stub.url, "--key-env", "STUB_KEY"]) == 1
    assert "refused the request (HTTP 401)" in capsys.readouterr().err
    monkeypatch.setenv("STUB_KEY", "sesame")
    assert models_cli.main(["add-server", keyed_stub.url, "--key-env", "STUB_KEY"]) == 0
    assert "serves: reasoning-content, reasoning" in capsys.readouterr().out
    assert models_cli.main(["add-server", keyed_stub.url, "--key-env", "STUB_KEY", "--json",
                            "--add", "reasoning-content=reasoning", "--add", "plain=base"]) == 0
    added = json.loads(capsys.readouterr().out)["added"]
    catalog = load_catalog()
    entries = [catalog.get(model_id) for model_id in added]
    assert [(e.role, e.source.model) for e in entries] == [  # type: ignore[union-attr]
        ("reasoning", "reasoning-content"), ("base", "plain")]
    assert all(isinstance(e.source, RemoteSource) and e.source.api_key_env == "STUB_KEY"
               for e in entries)
    assert "sesame" not in paths.user_catalog_path().read_text()
    # adding the same again reuses the entries
    assert models_cli.main(["add-server", keyed_stub.url, "--key-env", "STUB_KEY", "--json",
                            "--add", "plain=base"]) == 0
    assert json.loads(capsys.readouterr().out)["added"] == [added[1]]
    # the added base model runs on /completions with the key from the variable
    end = final(run(entries[1]))
    assert isinstance(end, Finished) and end.result.answer == "The answer is 4."
    assert models_cli.main(["rm", added[0]]) == 0
    assert added[0] not in load_catalog()


@pytest.mark.parametrize(("args", "said", "code"), [
    (["ftp://x"], "is not an http:// or https:// address", 2),  # a mistake in the command
    (["{url}", "--add", "plain"], "write it as MODEL=ROLE", 2),
    (["{url}", "--add", "nope=base"], "does not serve 'nope'", 1),  # the server's answer
    (["{url}", "--key-env", "1X", "--add", "plain=base"], "not the name of an environment", 1),
])
def test_add_server_mistakes_are_one_sentence(stub: StubServer, args: list[str], said: str,
                                              code: int, capsys: pytest.CaptureFixture[str]):
    from desktop_app.cli import models as models_cli

    assert models_cli.main(["add-server", *[a.format(url=stub.url) for a in args]]) == code
    err = capsys.readouterr().err
    assert said in err and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("triptych: ")


class MemoryKeyring(KeyringBackend):
    """A keyring backend in memory (keyring's own plugin interface), so the test never
    touches the keychain of the machine it runs on."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.saved.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.saved[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.saved.pop((service, username), None)


@pytest.fixture
def keychain() -> Iterator[None]:
    previous = keyring.get_keyring()
    yield
    keyring.set_keyring(previous)


def test_a_typed_key_lives_in_the_keychain_and_is_used(keyed_stub: StubServer, keychain: None):
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    servers.store_key(keyed_stub.url, "sesame")
    assert memory.saved == {("triptych", keyed_stub.url): "sesame"}
    entry = remote_entry(keyed_stub.url, "plain")
    end = final(run(entry))
    assert isinstance(end, Finished), end
    assert servers.check(keyed_stub.url).answered


def test_no_keychain_is_one_sentence(keychain: None):
    keyring.set_keyring(FailKeyring())
    with pytest.raises(ValueError, match="No OS keychain is available here"):
        servers.store_key("http://127.0.0.1:9/v1", "sesame")
    assert servers.stored_key("http://127.0.0.1:9/v1") is None


def test_generate_many_sends_one_request_per_seed(stub: StubServer):
    entry = remote_entry(stub.url, "reasoning-content")
    with RemoteWorker(entry) as worker:
        events = list(worker.generate_many(GenerationRequest(prompt="2+2?"), [11, 22, None]))
    assert sum(isinstance(e, PromptSent) for e in events) == 1
    assert sum(isinstance(e, Loaded) for e in events) == 1
    ends = {e.sequence: e.result for e in events if isinstance(e, Finished)}
    assert sorted(ends) == [0, 1, 2]
    assert all(r.answer == "The answer is 4." and r.thinking for r in ends.values())
    assert (ends[0].seed, ends[1].seed) == (11, 22) and ends[2].seed is not None
    assert sorted(body["seed"] for body in stub.requests) == sorted(r.seed for r in ends.values())
    for sequence in range(3):
        answer = "".join(e.answer for e in events
                         if isinstance(e, Delta) and e.sequence == sequence)
        assert answer == "The answer is 4."


def test_generate_many_stops_every_sequence(stub: StubServer):
    entry = remote_entry(stub.url, "slow", role="instruct")
    with RemoteWorker(entry) as worker:
        events: list[Event] = []
        for event in worker.generate_many(GenerationRequest(prompt="go"), [1, 2]):
            events.append(event)
            if isinstance(event, Delta) and sum(isinstance(e, Delta) for e in events) == 4:
                threading.Timer(0.05, worker.stop).start()
    ends = [e for e in events if isinstance(e, Finished)]
    assert sorted(e.sequence for e in ends) == [0, 1]
    assert all(e.result.finish_reason == FinishReason.CANCELLED for e in ends)


def test_models_list_asks_the_servers_first(stub: StubServer, capsys: pytest.CaptureFixture[str]):
    from desktop_app import paths
    from desktop_app.cli import main as cli

    paths.user_catalog_path().write_text(f"""
[[model]]
id = "served"
role = "instruct"
[model.source]
endpoint = "{stub.url}"
model = "plain"

[[model]]
id = "gone"
role = "instruct"
[model.source]
endpoint = "{stub.url}"
model = "retired"
""", encoding="utf-8")
    assert cli.main(["models", "list", "--json"]) == 0
    rows = {row["id"]: row for row in json.loads(capsys.readouterr().out)["models"]}
    assert rows["served"]["state"] == "ready" and rows["served"]["source_kind"] == "remote"
    assert rows["gone"]["state"] == "not-served"
    assert rows["served"]["endpoint"] == stub.url


def test_looking_at_a_served_model_starts_no_work(stub: StubServer):
    """Issue 26: availability is a pure read. It asks no server and starts no thread; it
    notes the server as wanted, and whoever may work asks it (here, check_due)."""
    import threading

    entry = remote_entry(stub.url, "plain", role="instruct")
    before = {t.ident for t in threading.enumerate()}
    assert availability(entry) == Availability.CHECKING
    assert availability(entry) == Availability.CHECKING
    assert {t.ident for t in threading.enumerate()} <= before and stub.models_asked == 0
    assert servers.due() == [(stub.url, None)]
    assert servers.check_due()
    assert availability(entry) == Availability.READY and servers.due() == []
    assert stub.models_asked == 1


def test_a_served_model_embeds_through_the_servers_embeddings(stub: StubServer,
                                                              keyed_stub: StubServer,
                                                              monkeypatch: pytest.MonkeyPatch):
    from desktop_app.engine.protocol import EmbeddingError

    with RemoteWorker(remote_entry(stub.url, "plain")) as worker:
        vectors = worker.embed(["pelican", "a b"])
    assert vectors == [[7.0, 3.0], [3.0, 1.0]]  # in input order (the stub answers reversed)
    assert stub.requests[-1] == {"model": "plain", "input": ["pelican", "a b"]}
    keyed = remote_entry(keyed_stub.url, "plain", source={"api_key_env": "STUB_KEY"})
    with RemoteWorker(keyed) as worker, pytest.raises(EmbeddingError) as caught:
        worker.embed(["x"])  # no key: the server's refusal, in one sentence
    assert "\n" not in str(caught.value) and str(caught.value)
