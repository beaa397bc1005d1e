"""The room's front door (desktop_app/engine/room/front.py) on real sockets: the key, the
limits, read-only, the fair queue, and model files handed out as the Hub hands them out,
fetched by huggingface_hub itself. The model server behind the door is the small
OpenAI-compatible stub here (tests/openai_stub_server.py), so these run without
llama.cpp; tests/test_serve.py drives the whole room on llama-cpp-python's own server."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2
import pytest

from desktop_app.engine.remote import RemoteWorker
from desktop_app.engine.room.activity import Activity, AskState, question_of
from desktop_app.engine.room.front import Door, Front
from desktop_app.engine.room.hubfiles import HubFiles, handed_files
from desktop_app.engine.room.limits import FairQueue, RateLimits, Refused
from desktop_app.models import catalog as cat
from desktop_app.models import download, room
from tests.hub_fixtures import hub_model_toml, write_user_catalog
from tests.hub_server import FakeHub
from tests.openai_stub_server import StubServer

pytestmark = pytest.mark.timeout(120)

KEY = "K7M2QX"
REPO = "acme/tiny-GGUF"
FILE = "tiny-Q8_0.gguf"


@contextmanager
def front(upstream: StubServer | None, *, key: str | None = KEY, files: HubFiles | None = None,
          limits: RateLimits | None = None, models: dict[str, str] | None = None
          ) -> Iterator[tuple[str, Door]]:
    """A front door on 127.0.0.1 before *upstream*; yields its /v1 address and its door."""
    door = Door(key=key, models=models or {"plain": "instruct", "slow": "instruct"},
                inner=upstream.url.removesuffix("/v1") if upstream else "http://127.0.0.1:9",
                inner_key="inner-secret", files=files or HubFiles([]), activity=Activity(),
                limits=limits or RateLimits())
    server = Front("127.0.0.1", 0, door)
    server.start()
    try:
        yield room.endpoint_for("127.0.0.1", server.port), door
    finally:
        server.close()


def auth(key: str | None = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"} if key else {}


def chat(model: str = "plain", **extra: object) -> dict[str, object]:
    return {"model": model, "stream": True, "max_tokens": 8,
            "messages": [{"role": "user", "content": "What is 2+2?"}], **extra}


# ------------------------------------------------------------------------ the key


def test_a_wrong_or_missing_key_is_refused_and_the_right_one_in_any_case_is_not():
    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, door):
        for headers in ({}, auth("WRONG1"), {"Authorization": "Basic K7M2QX"}):
            answer = httpx2.get(url + "/models", headers=headers)
            assert answer.status_code == 401
            assert "needs its key" in answer.json()["error"]["message"]
            assert "needs its key" in answer.headers["x-error-message"]  # the Hub's form
        answer = httpx2.get(url + "/models", headers=auth(KEY.lower()))
        assert answer.status_code == 200
        assert [m["id"] for m in answer.json()["data"]] == ["plain", "slow"]
        assert stub.models_asked == 0  # the door answers the list itself
        answer = httpx2.post(url + "/chat/completions", json=chat(), headers=auth())
        assert answer.status_code == 200 and "The answer " in answer.text
        # the stub checks the inner key: only the door knows it
        assert stub.headers[-1]["Authorization"] == "Bearer inner-secret"


def test_a_pane_on_the_room_with_a_wrong_key_says_so_in_one_sentence(
        monkeypatch: pytest.MonkeyPatch):
    from tests.test_remote import final, remote_entry

    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, _door):
        entry = remote_entry(url, "plain", role="instruct", source={"api_key_env": "ROOM_KEY"})
        monkeypatch.setenv("ROOM_KEY", "WRONG1")
        with RemoteWorker(entry) as worker:
            end = final(list(worker.generate(_request())))
        assert end.message.startswith(f"The server at 127.0.0.1:{url.split(':')[2][:-3]} "
                                      f"refused the request (HTTP 401)")
        assert "ROOM_KEY" in end.message and stub.requests == []
        monkeypatch.setenv("ROOM_KEY", KEY)
        with RemoteWorker(entry) as worker:
            end = final(list(worker.generate(_request())))
        assert end.result is not None and end.result.answer == "The answer is 4."


def _request():
    from desktop_app.engine.protocol import GenerationRequest

    return GenerationRequest(prompt="What is 2+2?")


def test_wrong_keys_are_limited_per_laptop():
    limits = RateLimits(bad_keys_per_minute=3)
    with front(None, limits=limits) as (url, _door):
        codes = [httpx2.get(url + "/models", headers=auth("WRONG1")).status_code
                 for _ in range(4)]
        assert codes == [401, 401, 401, 429]
        barred = httpx2.get(url + "/models", headers=auth())  # even the right key, for now
        assert barred.status_code == 429 and int(barred.headers["retry-after"]) >= 1
        assert "Too many wrong keys" in barred.json()["error"]["message"]
        other = httpx2.Client(transport=httpx2.HTTPTransport(local_address="127.0.0.2"))
        with other:  # another laptop is not barred
            assert other.get(url + "/models", headers=auth()).status_code == 200


def test_no_key_on_this_computer_only():
    with front(None, key=None) as (url, _door):
        assert httpx2.get(url + "/models").status_code == 200


# ------------------------------------------------------------------ rate limits


def test_requests_are_rate_limited_per_laptop():
    with front(None, limits=RateLimits(per_minute=5)) as (url, door):
        codes = [httpx2.get(url + "/models", headers=auth()).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        with httpx2.Client(transport=httpx2.HTTPTransport(local_address="127.0.0.2")) as other:
            assert other.get(url + "/models", headers=auth()).status_code == 200
        assert door.activity.connected() == 2


def test_the_fair_queue_serves_the_laptop_served_longest_ago_first():
    queue = FairQueue(slots=1, max_waiting=3)
    first = queue.enter("a")
    assert first.wait(0)
    waiting = [queue.enter("a"), queue.enter("a"), queue.enter("b")]
    with pytest.raises(Refused, match="already has 3 questions waiting"):
        queue.enter("a")
    assert queue.counts() == (1, 3)
    order = []
    turn = first
    for _ in range(3):
        turn.done()
        turn = next(t for t in waiting if t.running and not t.finished)
        order.append((turn.client, waiting.index(turn)))
    assert order == [("b", 2), ("a", 0), ("a", 1)]  # b waited for a's first, not a's three
    turn.done()
    assert queue.counts() == (0, 0)
    late = queue.enter("b")
    queue.close()
    assert late.wait(0)  # it ran at once: the queue was empty
    late.done()
    with pytest.raises(Refused, match="stopped"):
        queue.enter("b")


def test_a_queued_question_is_woken_and_refused_when_the_room_stops():
    queue = FairQueue(slots=1)
    running = queue.enter("a")
    assert running.wait(0)
    waiting = queue.enter("b")
    assert not waiting.wait(0)
    queue.close()
    with pytest.raises(Refused, match="stopped serving"):
        waiting.wait(1)


# ---------------------------------------------------------------- read-only


@pytest.mark.parametrize(("method", "path"), [
    ("PUT", "/v1/models"), ("DELETE", "/v1/models/plain"), ("PATCH", "/acme/x/resolve/main/f"),
    ("POST", "/api/repos/create"), ("POST", "/v1/models"), ("POST", "/extras/tokenize"),
    ("POST", "/api/models/acme/x/commit/main")])
def test_the_room_is_read_only(method: str, path: str):
    with front(None) as (url, _door):
        answer = httpx2.request(method, url.removesuffix("/v1") + path, headers=auth(),
                                content=b"{}")
        assert answer.status_code == 405
        assert "read-only" in answer.json()["error"]["message"]


def test_what_the_room_refuses_is_one_sentence_and_recorded():
    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, door):
        unknown = httpx2.post(url + "/chat/completions", json=chat("gpt-9"), headers=auth())
        assert unknown.status_code == 404
        assert unknown.json()["error"]["message"] == (
            "This room does not serve 'gpt-9'; it serves: plain, slow.")
        probabilities = httpx2.post(url + "/chat/completions", headers=auth(),
                                    json=chat(logprobs=True, top_logprobs=3))
        assert probabilities.status_code == 400
        assert "without token probabilities" in probabilities.json()["error"]["message"]
        assert httpx2.post(url + "/completions", content=b"not json",
                           headers=auth()).status_code == 400
        assert stub.requests == []  # nothing reached the model server
        asks = door.activity.asks()
        assert [(a.model, a.state) for a in asks] == [("plain", AskState.REFUSED)]
        assert asks[0].question == "What is 2+2?"


def test_what_they_asked_is_recorded_with_how_it_went():
    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, door):
        httpx2.post(url + "/chat/completions", json=chat(), headers=auth())
        httpx2.post(url + "/completions", headers=auth(), json={
            "model": "plain", "stream": True,
            "prompt": "A page of questions.\n\nQuestion: Why is the sky blue?\nAnswer:"})
        asks = door.activity.asks()
        assert [(a.question, a.state) for a in asks] == [
            ("Why is the sky blue?", AskState.ANSWERED), ("What is 2+2?", AskState.ANSWERED)]
        assert all(a.client == "127.0.0.1" and a.seconds is not None for a in asks)
        assert [b["model"] for b in stub.requests] == ["plain", "plain"]
        # one answer cannot hold the model for the class: its length is bounded
        httpx2.post(url + "/chat/completions", json=chat(max_tokens=10**9), headers=auth())
        assert [b["max_tokens"] for b in stub.requests] == [8, 8192, 8192]


def test_question_of_a_long_or_odd_body():
    assert question_of({"messages": [{"role": "user", "content": "x " * 200}]}).endswith("…")
    assert question_of({"messages": "nonsense"}) == ""
    assert question_of({"prompt": "The capital of France is"}) == "The capital of France is"


def test_a_student_who_leaves_while_queued_frees_the_place():
    """A question waiting its turn whose student closes the connection is dropped
    without ever reaching the model server."""
    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, door):
        blocker = door.queue.enter("someone else")  # the model server is busy
        assert blocker.wait(0)
        with httpx2.stream("POST", url + "/chat/completions", json=chat(),
                           headers=auth()) as response:
            assert response.status_code == 200  # the stream opens while it waits
            assert door.queue.counts() == (1, 1)
        for _ in range(50):  # the door notices within a second or so
            if door.queue.counts() == (1, 0):
                break
            threading.Event().wait(0.1)
        assert door.queue.counts() == (1, 0)
        blocker.done()
        assert stub.requests == []
        assert door.activity.asks()[0].state == AskState.LEFT


# ------------------------------------------------------------------ model files


@pytest.fixture
def teachers_file(fake_hub: FakeHub, hub_env: dict[str, str], tiny_gguf: bytes
                  ) -> tuple[HubFiles, bytes]:
    """The teacher pulled a Hub model (pinned, checked): the files a room hands out."""
    commit = fake_hub.add_repo(REPO, {FILE: tiny_gguf}).commit
    sha = hashlib.sha256(tiny_gguf).hexdigest()
    write_user_catalog(hub_model_toml("tiny", REPO, FILE, sha256=sha, revision=commit))
    download.pull(cat.load_catalog().get("tiny"))
    files = handed_files(cat.load_catalog())
    assert [(f.model_id, f.repo, f.commit, f.filename, f.size, f.sha256) for f in files] == [
        ("tiny", REPO, commit, FILE, len(tiny_gguf), sha)]
    return HubFiles(files), tiny_gguf


def test_huggingface_hub_downloads_from_the_room(teachers_file: tuple[HubFiles, bytes],
                                                 tmp_path: Path, fake_hub: FakeHub,
                                                 monkeypatch: pytest.MonkeyPatch):
    from huggingface_hub import errors, hf_hub_download
    from tqdm import std as tqdm_std

    # huggingface_hub draws its own progress bar here: without tqdm's monitor thread
    monkeypatch.setattr(tqdm_std.tqdm, "monitor_interval", 0)

    files, data = teachers_file
    commit = files.files[0].commit
    with front(None, files=files) as (url, door):
        root = room.hub_root(url)
        fake_hub.stop()  # the Hub is gone: only the room answers now
        got = hf_hub_download(REPO, FILE, revision=commit, endpoint=root, token=KEY,
                              cache_dir=tmp_path / "student-cache")
        assert Path(got).read_bytes() == data
        assert Path(got).parent.name == commit  # the pin holds: snapshots/<commit>/
        with pytest.raises(errors.RevisionNotFoundError):
            hf_hub_download(REPO, FILE, revision="0" * 40, endpoint=root, token=KEY,
                            cache_dir=tmp_path / "other")
        with pytest.raises(errors.RemoteEntryNotFoundError):
            hf_hub_download(REPO, "other.gguf", revision=commit, endpoint=root, token=KEY,
                            cache_dir=tmp_path / "other")
        with pytest.raises(errors.RepositoryNotFoundError):
            hf_hub_download("acme/else", FILE, endpoint=root, token=KEY,
                            cache_dir=tmp_path / "other")
        with pytest.raises(errors.HfHubHTTPError) as refused:
            hf_hub_download(REPO, FILE, revision=commit, endpoint=root, token="WRONG1",
                            cache_dir=tmp_path / "other")
        assert refused.value.response.status_code == 401
        ranged = httpx2.get(f"{root}/{REPO}/resolve/{commit}/{FILE}",
                            headers={**auth(), "Range": "bytes=1000-"})
        assert ranged.status_code == 206 and ranged.content == data[1000:]
        assert ranged.headers["content-range"] == f"bytes 1000-{len(data) - 1}/{len(data)}"
        info = httpx2.get(f"{root}/api/models/{REPO}/revision/main", headers=auth()).json()
        assert info["sha"] == commit and info["siblings"][0]["lfs"]["sha256"] == \
            hashlib.sha256(data).hexdigest()
        # two transfers reached the file's end: the whole file, and the resumed rest
        assert door.activity.files_sent == 2
        assert door.activity.bytes_sent == 2 * len(data) - 1000


class DroppingRelay:
    """A TCP relay on 127.0.0.1 to *target* that cuts its first connection whose answer
    goes past *drop_after* bytes, as a Wi-Fi dropout does (real sockets both ways)."""

    def __init__(self, target_port: int, drop_after: int):
        self.target_port, self.drop_after = target_port, drop_after
        self.dropped = 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.requests: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._accept = threading.Thread(target=self._serve, name="relay")
        self._accept.start()

    def _serve(self) -> None:
        self.listener.settimeout(0.1)
        while not self._stopping.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            thread = threading.Thread(target=self._pipe, args=(client,), name="relay-pipe")
            thread.start()
            self._threads.append(thread)

    def _pipe(self, client: socket.socket) -> None:
        upstream = socket.create_connection(("127.0.0.1", self.target_port))
        try:
            client.settimeout(5)
            head = client.recv(65536)
            self.requests.append(head)
            upstream.sendall(head)
            sent = 0
            cut = self.dropped == 0 and head.startswith(b"GET ") and b"/resolve/" in head
            while piece := upstream.recv(65536):
                if cut and sent + len(piece) > self.drop_after:
                    client.sendall(piece[: self.drop_after - sent])
                    self.dropped += 1
                    return  # hang up mid-file
                client.sendall(piece)
                sent += len(piece)
        except OSError:
            pass
        finally:
            upstream.close()
            client.close()

    def close(self) -> None:
        self._stopping.set()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        self.listener.close()


def test_models_pull_from_a_room_survives_a_dropped_connection(
        teachers_file: tuple[HubFiles, bytes], hub_env: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, fake_hub: FakeHub,
        capsys: pytest.CaptureFixture[str]):
    """A student laptop (its own Hub cache and state) pulls the catalog's pinned model
    from the room; the connection drops mid-file once; huggingface_hub resumes with a
    Range request and the SHA-256 check still holds."""
    from desktop_app.cli import models as models_cli

    files, data = teachers_file
    with front(None, files=files) as (url, _door):
        fake_hub.stop()
        port = int(url.split(":")[2].split("/")[0])
        relay = DroppingRelay(port, drop_after=2 * 1024 * 1024)
        try:
            monkeypatch.setenv("HF_HOME", str(tmp_path / "student-hf"))
            monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "student"))
            catalog_text = hub_model_toml("tiny", REPO, FILE, revision=files.files[0].commit,
                                          sha256=files.files[0].sha256)
            write_user_catalog(catalog_text)
            wrong = models_cli.main(["pull", "tiny", "--from", f"127.0.0.1:{relay.port}",
                                     "--key", "WRONG1"])
            assert wrong == 1
            assert "refused the request (HTTP 401)" in capsys.readouterr().err
            assert cat.local_path(cat.load_catalog().get("tiny")) is None
            code = models_cli.main(["pull", "tiny", "--json", "--from",
                                    f"http://127.0.0.1:{relay.port}/v1#key={KEY.lower()}"])
            out = capsys.readouterr().out
            assert code == 0, out
            done = json.loads(out.splitlines()[-1])
            assert done["event"] == "done" and done["verified"] is True
            assert done["sha256"] == hashlib.sha256(data).hexdigest()
            assert Path(done["path"]).read_bytes() == data
            assert relay.dropped == 1
            gets = [r for r in relay.requests if r.startswith(b"GET ") and b"/resolve/" in r]
            assert len(gets) == 2 and b"range: bytes=" in gets[1].lower()
            assert b"range" not in gets[0].lower()
            missing = models_cli.main(["pull", "qwen3-0.6b", "--from", f"127.0.0.1:{relay.port}",
                                       "--key", KEY])
            assert missing == 1
            err = capsys.readouterr().err
            assert "Cannot pull 'qwen3-0.6b': The room at" in err and "does not hand out" in err
        finally:
            relay.close()


# ------------------------------------------------------------- starting a room


def _room(entry: cat.ModelEntry, **settings: object):
    from desktop_app.engine.room.supervisor import Room, RoomSettings

    return Room(RoomSettings(models=(entry,), **settings))  # type: ignore[arg-type]


def test_a_room_that_cannot_start_says_why_in_one_sentence_and_leaves_nothing(
        tmp_path: Path, starter_models):
    from desktop_app.engine.room.supervisor import RoomState
    from tests.test_remote import remote_entry

    instruct = cat.load_catalog().get("smollm2-135m-instruct")
    taken = socket.create_server(("127.0.0.1", 0))
    try:
        busy = _room(instruct, port=taken.getsockname()[1])
        with pytest.raises(room.RoomError, match=r"^Port \d+ on 127.0.0.1 is already in use"):
            busy.start()
        assert busy.status().state == RoomState.STOPPED
    finally:
        taken.close()
    with pytest.raises(room.RoomError, match="at least 6 characters"):
        _room(instruct, host="0.0.0.0", port=0, key="abc").start()
    with pytest.raises(room.RoomError, match="not an address of this computer"):
        _room(instruct, host="203.0.113.7", port=0).start()
    served = remote_entry("http://127.0.0.1:9/v1", "plain", role="instruct")
    with pytest.raises(room.RoomError, match="a room serves models on this computer"):
        _room(served, port=0).start()
    # a model llama.cpp cannot load: the model server exits, the room says so, the door
    # it had opened is closed (never started, so closing it must not wait for it)
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF" + b"\0" * 4096)
    write_user_catalog(f'[[model]]\nid = "bogus"\nrole = "instruct"\n[model.source]\n'
                       f'path = "{bogus}"\nsize = {bogus.stat().st_size}\n')
    broken = _room(cat.load_catalog().get("bogus"), port=0, announce=False)
    with pytest.raises(room.RoomError, match=r"^The model server did not start \(exit code"):
        broken.start()
    assert broken.status().state == RoomState.STOPPED


def test_beyond_this_computer_a_room_always_has_a_key():
    assert room.is_loopback("127.0.0.1") and room.is_loopback("localhost")
    assert room.is_loopback("::1") and not room.is_loopback("0.0.0.0")
    keys = {room.new_key() for _ in range(50)}
    assert len(keys) == 50
    assert all(len(k) == 6 and set(k) <= set(room.KEY_ALPHABET) for k in keys)
    assert not set("01ILO") & set(room.KEY_ALPHABET)
    assert room.same_key(" k7m2qx ", "K7M2QX") and not room.same_key("K7M2QY", "K7M2QX")
    assert not room.same_key(None, "K7M2QX")
    assert room.split_link("http://10.0.0.5:8000/v1#key=K7M2QX") == (
        "http://10.0.0.5:8000/v1", "K7M2QX")
    assert room.split_link("10.0.0.5:8000") == ("10.0.0.5:8000", None)
    assert room.hub_root("http://10.0.0.5:8000/v1") == "http://10.0.0.5:8000"
    assert room.link("http://10.0.0.5:8000/v1", "K7M2QX") == "http://10.0.0.5:8000/v1#key=K7M2QX"
    assert room.qr_png(room.link("http://10.0.0.5:8000/v1", "K7M2QX")).startswith(b"\x89PNG")


# ------------------------------------------------------------ finding the room


def test_a_student_finds_the_room_on_the_network_and_adds_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    """The room announces itself over mDNS (zeroconf, here on the loopback interface);
    ``models add-server`` with no address finds it and adds its model."""
    from desktop_app.cli import models as models_cli

    with StubServer(api_key="inner-secret") as stub, front(stub) as (url, _door):
        port = int(url.split(":")[2].split("/")[0])
        announcement = room.Announcement("127.0.0.1", port, key_required=True, models=["plain"])
        try:
            announcement.start()
        except room.RoomError as exc:  # a machine whose network allows no multicast
            pytest.skip(str(exc))
        try:
            found = room.discover(timeout=2.0, host="127.0.0.1")
            assert [(r.endpoint, r.key_required, r.models) for r in found] == [
                (url, True, ("plain",))]
            monkeypatch.setenv("ROOM_KEY", KEY)
            code = models_cli.main(["add-server", "--key-env", "ROOM_KEY", "--json",
                                    "--add", "plain=instruct"])
            captured = capsys.readouterr()
            assert code == 0, captured.err
            assert "Found Triptych room on" in captured.err
            added = json.loads(captured.out)
            assert added["endpoint"] == url and added["served"] == ["plain", "slow"]
            entry = cat.load_catalog().get(added["added"][0])
            assert entry.source.endpoint == url  # type: ignore[union-attr]
        finally:
            announcement.close()


@pytest.mark.parametrize(("args", "said"), [
    (["--key", "abc"], "The key must be at least 6 characters long."),
    (["--key", "has space"], "no spaces"),
    (["--port", "70000"], "--port must be between 0 and 65535."),
    (["--models", "no-such-model"], "no-such-model"),
    (["--models", ""], "--models needs at least one model id."),
    (["--hots", "0.0.0.0"], "unrecognized arguments"),
])
def test_serve_mistakes_are_one_usage_sentence(args: list[str], said: str,
                                               capsys: pytest.CaptureFixture[str]):
    from desktop_app.cli import main as cli

    try:
        code = cli.main(["serve", *args])
    except SystemExit as exc:  # argparse's own complaints exit through one_line_parser_errors
        code = int(exc.code or 0)
    err = capsys.readouterr().err
    assert code == 2 and said in err and err.startswith("triptych: ")
    assert err.count("\n") == 1 and "Traceback" not in err


def test_serve_refuses_a_model_that_is_itself_on_a_server(capsys: pytest.CaptureFixture[str]):
    from desktop_app.cli import main as cli

    write_user_catalog('[[model]]\nid = "lab"\nrole = "instruct"\n[model.source]\n'
                       'endpoint = "http://127.0.0.1:9/v1"\nmodel = "x"\n')
    assert cli.main(["serve", "--models", "lab"]) == 2
    assert "a room serves the models on this computer" in capsys.readouterr().err
