"""The engine seam (issue 26): one ModelHandle interface, and the comparison loop that
drives any handle, reading what already arrived before waiting on a pipe."""

from __future__ import annotations

import threading

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.protocol import Delta, Finished, GenerationRequest
from desktop_app.engine.remote import RemoteWorker
from desktop_app.engine.worker import ModelWorker, open_worker, run_comparison
from desktop_app.models.catalog import load_catalog, parse_entry
from tests.fake_engine import FakeWorker, answer_script


def test_every_side_of_the_seam_is_a_model_handle(tmp_path) -> None:
    """mypy checks the signatures (tests/fake_engine.py is in its files); this checks that
    what open_worker hands out and the fake all carry every member at run time."""
    entry = load_catalog().get("smollm2-135m-instruct")
    assert entry is not None
    served = parse_entry({"id": "served", "role": "instruct", "name": "Served",
                          "source": {"endpoint": "http://127.0.0.1:9/v1", "model": "m"}},
                         "test", 0)
    local, remote = open_worker(entry), open_worker(served)
    try:
        assert isinstance(local, ModelWorker) and isinstance(remote, RemoteWorker)
        members = {name for name in vars(ModelHandle) if not name.startswith("_")}
        assert {"generate", "generate_many", "wait_loaded", "connection", "buffered"} <= members
        for handle in (local, remote, FakeWorker(entry)):
            missing = {name for name in members if not hasattr(type(handle), name)}
            assert not missing and handle.entry is not None, (type(handle), missing)
    finally:
        local.close()
        remote.close()


def test_compare_hands_out_what_already_arrived_without_waiting_on_the_pipe() -> None:
    """A batch of Deltas arrives as one pipe message: its tail must go out at once, not
    wait for the next message. The fake's events are all already there and its pipe is
    never readable, so a loop that waited on the pipe would never finish."""
    entry = load_catalog().get("smollm2-135m-instruct")
    assert entry is not None
    workers = [FakeWorker(entry, script=answer_script("Four, as asked.")),
               FakeWorker(entry, script=answer_script("Five."))]
    seen: list[tuple[int, object]] = []
    done = threading.Event()

    def consume() -> None:
        for index, event in run_comparison(workers, [GenerationRequest("2 + 2?")] * 2):
            seen.append((index, event))
        done.set()

    thread = threading.Thread(target=consume, name="compare", daemon=True)
    thread.start()
    try:
        assert done.wait(30), f"the comparison waited on a pipe: {len(seen)} events out"
        thread.join(5)
        for index, answer in enumerate(("Four, as asked.", "Five.")):
            events = [event for pane, event in seen if pane == index]
            assert "".join(e.answer for e in events if isinstance(e, Delta)) == answer
            assert isinstance(events[-1], Finished)
    finally:
        for worker in workers:
            worker.close()
