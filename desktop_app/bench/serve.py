"""``triptych bench --serve``: what a room gives each student (issue 30).

A room (the same one ``triptych serve`` runs: llama-cpp-python's server behind the front
door) serves one model on 127.0.0.1; 1, 4 and then 8 students ask at the same moment,
each through its own remote pane (:class:`~desktop_app.engine.remote.RemoteWorker`, real
HTTP). A student's tokens/s is its answer's tokens over the time from sending the
question to its last token, waiting in the room's queue included: what a student sees.
Beside it, one local pane on the same model and cores, as a laptop would run it alone.
"""

from __future__ import annotations

import os
import statistics
import threading
import time
from typing import Any

from desktop_app.bench.engine import _finish, _median_rate

STUDENTS = (1, 4, 8)
KEY_VARIABLE = "TRIPTYCH_BENCH_ROOM_KEY"
# A chat question with a long answer: the served model's own server applies the template
# and has no ignore_eos, so the question itself must ask for many tokens.
QUESTION = "Write a long story about a dragon who learns to read."


def _request(n_tokens: int) -> Any:
    from desktop_app.engine.protocol import GenerationRequest, Sampling

    return GenerationRequest(prompt=QUESTION, sampling=Sampling(
        temperature=0.0, repeat_penalty=1.0, top_k=40, top_p=1.0, min_p=0.0,
        max_tokens=n_tokens, seed=0))


def _ask(entry: Any, request: Any, barrier: threading.Barrier, out: list[dict[str, Any]]
         ) -> None:
    from desktop_app.engine.remote import RemoteWorker

    with RemoteWorker(entry) as worker:
        barrier.wait()
        sent = time.perf_counter()
        result = _finish(worker.generate(request))
        done = time.perf_counter()
    tokens = result.answer_tokens + result.thinking_tokens
    out.append({"tokens": tokens, "wall_s": done - sent, "ttft_s": result.ttft_s,
                "stream_tokens_per_s": result.tokens_per_s})


def _round(entry: Any, request: Any, students: int) -> dict[str, Any]:
    """*students* questions at the same moment; every one's figures."""
    barrier = threading.Barrier(students)
    out: list[dict[str, Any]] = []
    threads = [threading.Thread(target=_ask, args=(entry, request, barrier, out),
                                name=f"bench-student-{i}") for i in range(students)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - began
    if len(out) != students or not all(o["tokens"] for o in out):
        raise RuntimeError("a student's question failed or got no answer in the served-room "
                           "benchmark")
    per_student = [o["tokens"] / o["wall_s"] for o in out if o["wall_s"] > 0]
    return {
        "students": students,
        "tokens_per_student": [o["tokens"] for o in out],
        "per_student_tokens_per_s_median": round(statistics.median(per_student), 2),
        "per_student_tokens_per_s_min": round(min(per_student), 2),
        "room_tokens_per_s": round(sum(o["tokens"] for o in out) / wall, 2),
        "longest_wait_for_first_token_s": round(max(o["ttft_s"] or 0.0 for o in out), 2),
        "wall_s": round(wall, 2),
    }


def bench_serve(entry: Any, n_tokens: int, cores: int,
                students: tuple[int, ...] = STUDENTS) -> dict[str, Any]:
    """Tokens/s per student with each number of students at once, and one local pane."""
    from desktop_app.engine.cores import ThreadBudget
    from desktop_app.engine.room.supervisor import Room, RoomSettings
    from desktop_app.engine.worker import ModelWorker
    from desktop_app.models.catalog import parse_entry
    from desktop_app.models.room import new_key

    request = _request(n_tokens)
    local_answers = []
    with ModelWorker(entry, n_threads=cores, budget=ThreadBudget(cores=cores)) as worker:
        _finish(worker.generate(request))  # warm up
        decode = _median_rate(worker, request, 3)
        for _ in range(3):  # measured as a student's: from sending to the last token
            sent = time.perf_counter()
            result = _finish(worker.generate(request))
            local_answers.append((result.answer_tokens + result.thinking_tokens)
                                 / (time.perf_counter() - sent))
    local = statistics.median(local_answers)

    key = new_key()
    room = Room(RoomSettings(models=(entry,), host="127.0.0.1", port=0, key=key,
                             announce=False, hand_out=(), threads=cores))
    previous = os.environ.get(KEY_VARIABLE)
    os.environ[KEY_VARIABLE] = key
    try:
        room.start()
        served = parse_entry({"id": f"room-{entry.id}", "role": entry.role,
                              "source": {"endpoint": room.status().endpoints[0],
                                         "model": entry.id, "api_key_env": KEY_VARIABLE}},
                             "bench", 0)
        _round(served, request, 1)  # warm up: the first question loads the template
        rounds = [_round(served, request, count) for count in students]
    finally:
        room.stop()
        if previous is None:
            os.environ.pop(KEY_VARIABLE, None)
        else:
            os.environ[KEY_VARIABLE] = previous
    alone = rounds[0]["per_student_tokens_per_s_median"] if rounds else None
    return {
        "model": entry.id,
        "threads": cores,
        "tokens": n_tokens,
        "engine": "llama-cpp-python's server (llama_cpp.server) behind the room's door",
        "local_pane_tokens_per_s": round(local, 2),  # as a student's: whole answer
        "local_pane_decode_tokens_per_s": round(decode, 2),
        "rounds": rounds,
        "ratio": round(alone / local, 3) if alone and local else None,
    }
