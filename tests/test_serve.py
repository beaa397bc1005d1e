"""One laptop serves the room, end to end: ``triptych serve`` in a process of its own (the
teacher) runs llama-cpp-python's own server on the SmolLM2 starter; students are other
processes (``triptych compare``, ``triptych models add-server``, ``triptych models pull``)
with their own config and Hub cache, talking real HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from desktop_app.engine.protocol import Delta, Event, Failed, Finished, GenerationRequest, Sampling
from desktop_app.engine.remote import RemoteWorker
from desktop_app.models import catalog as cat
from desktop_app.models import download, servers
from tests.hub_fixtures import hub_model_toml, subprocess_env, write_user_catalog
from tests.hub_server import FakeHub
from tests.test_remote import remote_entry
from tests.test_room import DroppingRelay

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

ROOT = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"
KEY = "ABC234"


@dataclass
class Teacher:
    process: subprocess.Popen[str]
    endpoint: str
    key: str | None
    files: list[dict[str, object]]
    events: queue.Queue[dict[str, object]] = field(default_factory=queue.Queue)

    def asks(self, count: int, state: str, timeout: float = 60) -> list[dict[str, object]]:
        """The first *count* 'ask' events in *state* (waiting for them)."""
        seen: list[dict[str, object]] = []
        deadline = time.monotonic() + timeout
        while len(seen) < count:
            event = self.events.get(timeout=max(0.1, deadline - time.monotonic()))
            if event.get("event") == "ask" and event.get("state") == state:
                seen.append(event)
        return seen


@contextmanager
def teacher(*args: str, env: dict[str, str] | None = None, as_json: bool = True
            ) -> Iterator[Teacher]:
    """``triptych serve --port 0 [--json] ARGS`` in its own process, until SIGTERM (not
    announced: tests/test_room.py finds its own room on the network). Without --json, what
    it prints for people is read back into the same events."""
    process = subprocess.Popen(
        [sys.executable, "-m", "desktop_app", "serve", "--port", "0", "--no-announce",
         *(["--json"] if as_json else []), *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env=env or dict(os.environ))
    lines: queue.Queue[dict[str, object]] = queue.Queue()
    assert process.stdout is not None

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if as_json:
                lines.put(json.loads(line))
            elif match := re.match(r"Students type:  (\S+)   (?:key: (\S+)|\(no key)", line):
                lines.put({"event": "serving", "endpoints": [match.group(1)],
                           "key": match.group(2), "files": []})
            elif match := re.match(r"\d\d:\d\d:\d\d  (\S+)  (\S+)  \"(.*)\"  (answered|"
                                   r"waiting in the queue)", line):
                lines.put({"event": "ask", "client": match.group(1), "model": match.group(2),
                           "question": match.group(3),
                           "state": "answered" if match.group(4) == "answered" else "waiting"})

    reader = threading.Thread(target=read, name="teacher-stdout")
    reader.start()
    try:
        try:
            first = lines.get(timeout=240)
        except queue.Empty:
            raise AssertionError("the room did not start") from None
        assert first["event"] == "serving", (first, process.stderr and process.stderr.read())
        yield Teacher(process, str(first["endpoints"][0]),  # type: ignore[index]
                      first["key"], first["files"], lines)  # type: ignore[arg-type]
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        reader.join(10)
        if process.stderr is not None:
            process.stderr.close()
        servers.check_due()
        servers.forget()


def student_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ROOM_KEY", "HF_TOKEN")}
    env.update({"TRIPTYCH_HOME": str(home), "HF_HOME": str(home / "hf"), **extra})
    return env


def student(home: Path, *args: str, key: str | None = KEY) -> subprocess.Popen[str]:
    env = student_env(home, **({"ROOM_KEY": key} if key else {}))
    return subprocess.Popen([sys.executable, "-m", "desktop_app", *args], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen[str], timeout: float = 240) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def test_two_students_at_once_in_their_own_processes(tmp_path: Path, starter_models):
    """The served starter answers two students' compare processes started together;
    the room queues them (neither is interrupted), a wrong key is refused, and
    add-server takes the address the room prints."""
    with teacher("--models", MODEL, "--key", KEY) as room:
        assert room.endpoint.startswith("http://127.0.0.1:") and room.key == KEY
        homes = [tmp_path / "student-1", tmp_path / "student-2", tmp_path / "student-3"]
        for home in homes:
            code, out, err = finished(student(
                home, "models", "add-server", room.endpoint, "--key-env", "ROOM_KEY",
                "--add", f"{MODEL}=instruct", "--json"))
            assert code == 0, err
            assert json.loads(out)["served"] == [MODEL]
        added = json.loads(out)["added"][0]
        question = ["compare", "Name three colours.", "--json", "--temperature", "0",
                    "--max-tokens", "48", "--models", added]
        both = [student(home, *question) for home in homes[:2]]
        results = [finished(process) for process in both]
        answers = []
        for code, out, err in results:
            assert code == 0, err
            summary = next(r for r in map(json.loads, out.splitlines()) if r["type"] == "summary")
            assert summary["error"] is None and summary["answer"].strip()
            assert summary["finish_reason"] in ("stop", "length")
            assert "(remote)" in summary["placement"]
            answers.append(summary["answer"])
        assert answers[0] == answers[1]  # greedy, one model: the same answer for both
        answered = room.asks(2, "answered")
        assert {a["question"] for a in answered} == {"Name three colours."}
        assert all(a["client"] == "127.0.0.1" and a["model"] == MODEL for a in answered)

        code, out, err = finished(student(homes[2], *question, key="WRONG1"))
        assert code == 1
        assert "refused the request (HTTP 401)" in err and "ROOM_KEY" in err
        assert "Traceback" not in err


def _stream(worker: RemoteWorker, request: GenerationRequest, events: list[Event],
            started: threading.Event) -> None:
    for event in worker.generate(request):
        events.append(event)
        if isinstance(event, Delta) and event.answer:
            started.set()


def test_a_second_question_waits_instead_of_breaking_off_the_first(
        monkeypatch: pytest.MonkeyPatch, starter_models):
    """llama-cpp-python's server cuts a running stream when another request comes
    (tests/test_remote_llama.py); through the room the second waits its turn."""
    with teacher("--models", MODEL, "--key", KEY) as room:
        monkeypatch.setenv("ROOM_KEY", KEY)
        entry = remote_entry(room.endpoint, MODEL, role="instruct",
                             source={"api_key_env": "ROOM_KEY"})
        long = GenerationRequest(prompt="Write a long story about a dragon.",
                                 sampling=Sampling(temperature=0.0, max_tokens=120, seed=1))
        short = GenerationRequest(prompt="Say hi.", sampling=Sampling(temperature=0.0,
                                                                      max_tokens=8, seed=1))
        first_events: list[Event] = []
        second_events: list[Event] = []
        first_started, second_started = threading.Event(), threading.Event()
        with RemoteWorker(entry) as first, RemoteWorker(entry) as second:
            one = threading.Thread(target=_stream, args=(first, long, first_events,
                                                         first_started))
            one.start()
            assert first_started.wait(120)
            two = threading.Thread(target=_stream, args=(second, short, second_events,
                                                         second_started))
            two.start()
            one.join(240)
            two.join(240)
        first_end, second_end = first_events[-1], second_events[-1]
        assert isinstance(first_end, Finished), first_end
        assert isinstance(second_end, Finished), second_end
        assert first_end.result.answer_tokens > 8  # not cut at the second's arrival
        assert second_end.result.answer.strip()
        waited = room.asks(1, "waiting")  # the second was queued behind the first
        assert waited[0]["question"] in ("Write a long story about a dragon.", "Say hi.")


def test_stopping_the_room_breaks_off_answers_everywhere(monkeypatch: pytest.MonkeyPatch,
                                                         starter_models):
    with teacher("--models", MODEL, as_json=False) as room:
        assert room.key is None  # on this computer only: no key
        children = psutil.Process(room.process.pid).children(recursive=True)
        assert children  # llama-cpp-python's server
        entry = remote_entry(room.endpoint, MODEL, role="instruct")
        events: list[Event] = []
        started = threading.Event()
        with RemoteWorker(entry) as worker:
            thread = threading.Thread(target=_stream, args=(worker, GenerationRequest(
                prompt="Write a long story about a dragon.",
                sampling=Sampling(temperature=0.7, max_tokens=1500, seed=3)), events, started))
            thread.start()
            assert started.wait(120)
            room.process.send_signal(signal.SIGTERM)
            thread.join(60)
        end = events[-1]
        assert isinstance(end, Failed), end
        assert "broke off the answer" in end.message and "partial answer is kept" in end.message
        assert end.result is not None and end.result.answer
        assert room.process.wait(30) == 0
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.cmdline()[:4] for p in alive]


def test_a_student_pulls_a_model_from_the_teacher_through_a_dropped_connection(
        fake_hub: FakeHub, hub_env: dict[str, str], tiny_gguf: bytes, tmp_path: Path,
        starter_models):
    """The teacher pulled a model from the Hub; the room hands it out; a student laptop
    (its own process, Hub cache and catalog with the same pin) pulls it from the room,
    the connection drops mid-file, huggingface_hub resumes it, and the SHA-256 holds.
    The Hub is gone by then: the bytes can only have come from the teacher."""
    repo, name = "acme/tiny-GGUF", "tiny-Q8_0.gguf"
    commit = fake_hub.add_repo(repo, {name: tiny_gguf}).commit
    sha = hashlib.sha256(tiny_gguf).hexdigest()
    entry_toml = hub_model_toml("tiny", repo, name, sha256=sha, revision=commit)
    write_user_catalog(entry_toml)
    download.pull(cat.load_catalog().get("tiny"))
    fake_hub.stop()
    teacher_env = subprocess_env(hub_env)
    with teacher("--models", MODEL, "--host", "127.0.0.1", "--key", KEY,
                 env=teacher_env) as room:
        assert [(f["model"], f["repo"], f["revision"], f["size"]) for f in room.files] == [
            ("tiny", repo, commit, len(tiny_gguf))]
        port = int(room.endpoint.split(":")[2].split("/")[0])
        relay = DroppingRelay(port, drop_after=3 * 1024 * 1024 + 17)
        try:
            home = tmp_path / "student"
            (home / "config").mkdir(parents=True)
            (home / "config" / "models.toml").write_text(entry_toml, encoding="utf-8")
            env = student_env(home, HF_ENDPOINT="http://127.0.0.1:9",  # not the Hub
                              HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_XET="1")
            process = subprocess.Popen(
                [sys.executable, "-m", "desktop_app", "models", "pull", "tiny", "--json",
                 "--from", f"http://127.0.0.1:{relay.port}/v1", "--key", KEY],
                cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            code, out, err = finished(process)
        finally:
            relay.close()
        assert code == 0, err
        done = json.loads(out.splitlines()[-1])
        assert done["event"] == "done" and done["verified"] is True and done["sha256"] == sha
        assert Path(done["path"]).read_bytes() == tiny_gguf
        assert f"/snapshots/{commit}/" in done["path"]  # the catalog's pin holds
        assert relay.dropped == 1
        gets = [r for r in relay.requests if r.startswith(b"GET ") and b"/resolve/" in r]
        assert len(gets) == 2 and b"range: bytes=" in gets[1].lower()


def test_a_model_server_that_dies_fails_the_room_in_one_sentence(starter_models):
    """The supervised child (llama-cpp-python's server) is killed: the room says so to
    whoever asks next, and ``triptych serve`` ends with exit code 1 and one sentence."""
    with teacher("--models", MODEL) as room:
        (child,) = psutil.Process(room.process.pid).children(recursive=True)
        child.kill()
        child.wait(10)
        entry = remote_entry(room.endpoint, MODEL, role="instruct")
        with RemoteWorker(entry) as worker:
            end = list(worker.generate(GenerationRequest(prompt="Say hi.")))[-1]
        # the room answers 503 with its sentence, or has already closed its door
        assert isinstance(end, Failed), end
        assert "HTTP 503" in end.message or "Cannot reach" in end.message, end
        assert room.process.wait(30) == 1
        assert room.process.stderr is not None
        err = room.process.stderr.read()
        assert "triptych: The room's model server stopped (exit code -9)" in err
        assert "Traceback" not in err
