"""The engine against real llama.cpp: starter models and scripted reasoning GGUFs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from desktop_app.engine.cores import ThreadBudget, physical_cores
from desktop_app.engine.prompting import Turn
from desktop_app.engine.protocol import (
    Delta,
    Failed,
    Finished,
    GenerationRequest,
    Loaded,
    PromptSent,
    Sampling,
)
from desktop_app.engine.worker import ModelWorker, run_comparison
from tests.scripted_gguf import scripted_entry, write_scripted_gguf

pytestmark = pytest.mark.slow

SCRIPT = "<think>Two plus two.\nThat makes four.</think>\n\nThe answer is **4**."


def collect(worker: ModelWorker, request: GenerationRequest) -> tuple[list, object]:
    events = list(worker.generate(request))
    return events, events[-1]


def greedy(entry, **kw) -> Sampling:
    return Sampling.for_entry(entry, temperature=0.0, seed=7, **kw)


@pytest.fixture
def reasoner(tmp_path: Path):
    path = write_scripted_gguf(tmp_path / "reasoner.gguf", SCRIPT)
    return scripted_entry(path)


def test_instruct_starter_answers_deterministically(starter_models):
    entry = starter_models["instruct"]
    request = GenerationRequest("What is the capital of France?", greedy(entry, max_tokens=24))
    with ModelWorker(entry) as worker:
        events, last = collect(worker, request)
        _, again = collect(worker, request)  # same worker, model stays loaded
    kinds = [type(e).__name__ for e in events]
    assert kinds[:2] == ["Loading", "Loading"] and "Loaded" in kinds and "PromptSent" in kinds
    assert isinstance(last, Finished)
    result = last.result
    # a 135M model's greedy answer depends on the thread count (float sums): check its gist
    assert "capital" in result.answer or "Paris" in result.answer
    assert result.answer == again.result.answer  # temperature 0 is deterministic
    assert result.prompt_sent.startswith("<|im_start|>") and "<|im_start|>assistant" in result.prompt_sent
    assert result.finish_reason in ("stop", "length")
    assert result.answer_tokens > 0 and result.thinking_tokens == 0
    assert result.ttft_s is not None and result.ttft_s > 0
    assert result.tokens_per_s is not None  # how fast is the bench's business
    assert result.load_s is not None
    deltas = "".join(e.answer for e in events if isinstance(e, Delta))
    assert deltas == result.answer


def test_base_starter_continues_a_document_and_stops(starter_models):
    entry = starter_models["base"]
    request = GenerationRequest("What is the capital of France?", greedy(entry, max_tokens=60))
    with ModelWorker(entry) as worker:
        _, last = collect(worker, request)
        _, raw = collect(worker, GenerationRequest("The capital of France is", greedy(entry, max_tokens=5),
                                                   raw=True))
    result = last.result
    assert result.prompt_sent.endswith("Question: What is the capital of France?\nAnswer:")
    assert "Paris" in result.answer
    assert "Question:" not in result.answer  # stop sequences end the invented next question
    assert raw.result.prompt_sent == "The capital of France is"
    assert raw.result.answer_tokens == 5 and raw.result.finish_reason == "length"
    # a raw continuation is text that goes on from the prompt: its first blank is kept
    # (" Paris" after "is"), or a branch reads "The capital isParis"
    assert raw.result.answer.startswith(" ")


def test_reasoning_model_thinking_is_split_and_counted(reasoner):
    with ModelWorker(reasoner) as worker:
        events, last = collect(worker, GenerationRequest("What is 2+2?", greedy(reasoner)))
    result = last.result
    assert result.thinking == "Two plus two.\nThat makes four."
    assert result.answer == "The answer is **4**."
    assert result.finish_reason == "stop"
    # tags count as thinking: <think> Two plus two. \nThat makes four. </think>
    assert result.thinking_tokens == 8
    assert result.answer_tokens == 4  # "\n\nThe" " answer" " is" " **4**."
    assert result.thinking_s is not None and not result.thinking_unterminated
    streamed = [(e.thinking, e.answer) for e in events
                if isinstance(e, Delta) and (e.thinking or e.answer)]
    assert "".join(t for t, _ in streamed) == result.thinking
    # thinking streams live, before any answer text
    first_answer = next(i for i, (_, a) in enumerate(streamed) if a)
    assert all(not a for _, a in streamed[:first_answer]) and streamed[0][0]


def test_prefilled_template_and_history(tmp_path):
    path = write_scripted_gguf(tmp_path / "r1.gguf", SCRIPT.removeprefix("<think>"),
                               start_after="<think>")
    entry = scripted_entry(path, prefill=True)
    request = GenerationRequest("And now?", greedy(entry),
                                history=(Turn("What is 2+2?", "4"),), system_prompt="Be brief.")
    with ModelWorker(entry) as worker:
        events, last = collect(worker, request)
    sent = next(e for e in events if isinstance(e, PromptSent))
    assert sent.starts_in_thinking and sent.text.endswith("<|assistant|><think>")
    assert "<|user|>What is 2+2?<|end|><|assistant|>4<|end|>" in sent.text
    assert last.result.thinking == "Two plus two.\nThat makes four."
    assert last.result.answer == "The answer is **4**."


def test_length_limit_leaves_thinking_unterminated(reasoner):
    with ModelWorker(reasoner) as worker:
        _, last = collect(worker, GenerationRequest("2+2?", greedy(reasoner, max_tokens=3)))
    assert last.result.finish_reason == "length"
    assert last.result.thinking_unterminated and last.result.answer == ""


def test_stop_from_another_thread_ends_the_generation(starter_models):
    entry = starter_models["instruct"]
    request = GenerationRequest("Write a very long story about a dragon.",
                                Sampling.for_entry(entry, temperature=0.8, seed=1, max_tokens=1500))
    with ModelWorker(entry) as worker:
        stopped_at = None
        finished_at = None
        last = None
        for event in worker.generate(request):
            if isinstance(event, Delta) and stopped_at is None and event.answer_tokens >= 10:
                stopper = threading.Thread(target=worker.stop)
                stopper.start()
                stopper.join()
                stopped_at = time.perf_counter()
            if isinstance(event, Finished):
                finished_at = time.perf_counter()
                last = event
    assert last is not None and last.result.finish_reason == "cancelled"
    assert last.result.answer_tokens < 1500
    assert finished_at - stopped_at < 30  # a bound so a missed stop fails, not a speed target


def test_killed_worker_fails_its_pane_and_the_other_finishes(starter_models):
    instruct = starter_models["instruct"]
    workers = [ModelWorker(instruct), ModelWorker(instruct)]
    requests = [GenerationRequest("Write a long story about a robot.",
                                  Sampling.for_entry(instruct, temperature=0.7, seed=s, max_tokens=m))
                for s, m in ((1, 400), (2, 40))]
    results: dict[int, object] = {}
    try:
        for pane, event in run_comparison(workers, requests):
            if pane == 0 and isinstance(event, Delta) and event.answer_tokens == 5:
                os.kill(workers[0].pid, signal.SIGKILL)
            if isinstance(event, Finished | Failed):
                results[pane] = event
    finally:
        for worker in workers:
            worker.close()
    assert isinstance(results[0], Failed) and results[0].kind == "crash"
    assert "killed" in results[0].message and "SIGKILL" in results[0].message
    assert results[0].result.answer  # what was streamed before the crash is kept
    assert isinstance(results[1], Finished) and results[1].result.answer_tokens > 0


def test_corrupt_and_missing_models_fail_with_a_sentence(tmp_path, starter_models):
    garbage = tmp_path / "broken.gguf"
    garbage.write_bytes(b"GGUF" + os.urandom(4096))
    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    entries = [scripted_entry(garbage, model_id="broken", role="instruct"),
               scripted_entry(not_gguf, model_id="notes", role="instruct"),
               scripted_entry(tmp_path / "absent.gguf", model_id="absent", role="instruct"),
               starter_models["instruct"]]
    workers = [ModelWorker(entry) for entry in entries]
    requests = [GenerationRequest("Hi", greedy(entry, max_tokens=4)) for entry in entries]
    outcome = {}
    try:
        for pane, event in run_comparison(workers, requests):
            if isinstance(event, Finished | Failed):
                outcome[entries[pane].id] = event
    finally:
        for worker in workers:
            worker.close()
    assert outcome["broken"].kind in ("load", "crash")
    assert "\n" not in outcome["broken"].message
    assert outcome["notes"].kind == "load" and "not a GGUF model file" in outcome["notes"].message
    assert outcome["absent"].kind == "missing" and "does not exist" in outcome["absent"].message
    assert isinstance(outcome["smollm2-135m-instruct"], Finished)


def test_context_overflow_is_a_sentence(reasoner):
    with ModelWorker(reasoner) as worker:
        _, last = collect(worker, GenerationRequest("word " * 700, greedy(reasoner)))
    assert isinstance(last, Failed) and "more than" in last.message and "context" in last.message


def test_thread_budget_shares_cores_and_rebalances(starter_models):
    budget = ThreadBudget(cores=4)
    entry = starter_models["instruct"]
    a, b = ModelWorker(entry, budget=budget), ModelWorker(entry, budget=budget)
    try:
        assert budget.acquire(a) == 4
        assert budget.acquire(b) == 2 and a._threads.value == 2
        budget.release(b)
        assert a._threads.value == 4
        budget.release(a)
    finally:
        a.close()
        b.close()
    assert physical_cores() >= 1


def test_loaded_event_reports_threads(starter_models):
    entry = starter_models["instruct"]
    with ModelWorker(entry, n_threads=1) as worker:
        loaded = [e for e in worker.wait_loaded() if isinstance(e, Loaded)]
    assert loaded and loaded[0].n_threads == 1 and loaded[0].n_ctx == entry.context_length


def test_stop_interrupts_a_long_prompt_evaluation(starter_models):
    entry = starter_models["base"]
    long_prompt = " ".join(f"Sentence number {i} is about the weather today." for i in range(150))
    request = GenerationRequest(long_prompt, greedy(entry, max_tokens=50), raw=True)
    with ModelWorker(entry, n_threads=1) as worker:
        list(worker.wait_loaded())
        timer = None
        finished_at = None
        last = None
        for event in worker.generate(request):
            if isinstance(event, PromptSent):
                assert event.n_tokens > 1500
                timer = threading.Timer(0.15, worker.stop)
                timer.start()
                stop_due = time.perf_counter() + 0.15
            if isinstance(event, Finished | Failed):
                finished_at = time.perf_counter()
                last = event
        timer.join()
        assert isinstance(last, Finished) and last.result.finish_reason == "cancelled"
        assert last.result.answer_tokens == 0  # stopped during prompt evaluation
        assert finished_at - stop_due < 30  # a bound so a missed stop fails, not a speed target
        # the worker is still usable after an aborted evaluation
        _, again = collect(worker, GenerationRequest("The sky is", greedy(entry, max_tokens=3),
                                                     raw=True))
    assert isinstance(again, Finished) and again.result.answer_tokens == 3


def test_stop_while_loading_cancels_without_waiting_for_the_load(starter_models):
    entry = starter_models["base"]
    with ModelWorker(entry) as worker:
        worker.start()
        threading.Timer(0.05, worker.stop).start()
        started = time.perf_counter()
        events = list(worker.generate(GenerationRequest("Hi", greedy(entry, max_tokens=3))))
        waited = time.perf_counter() - started
        assert isinstance(events[-1], Finished)
        assert events[-1].result.finish_reason == "cancelled"
        assert not any(isinstance(e, PromptSent) for e in events)  # never sent
        assert waited < 30  # a bound so a missed stop fails, not a speed target
        # the model went on loading; the next prompt runs normally
        _, again = collect(worker, GenerationRequest("Hi", greedy(entry, max_tokens=3)))
    assert isinstance(again, Finished) and again.result.answer_tokens > 0


def test_abandoned_stream_leaves_nothing_for_the_next_generation(starter_models):
    entry = starter_models["instruct"]
    with ModelWorker(entry) as worker:
        stream = worker.generate(GenerationRequest(
            "Write a long story about a lighthouse.", greedy(entry, max_tokens=400)))
        for event in stream:
            if isinstance(event, Delta) and event.answer_tokens >= 3:
                break
        stream.close()  # the caller walks away mid-stream
        events, last = collect(worker, GenerationRequest("Say yes.", greedy(entry, max_tokens=5)))
    sent = [e for e in events if isinstance(e, PromptSent)]
    assert len(sent) == 1 and "Say yes." in sent[0].text
    assert isinstance(last, Finished) and last.result.answer_tokens <= 5


def test_two_workers_assemble_the_base_starter_at_once(tmp_path, monkeypatch):
    from desktop_app.models.catalog import assembled_path, load_catalog

    monkeypatch.setenv("TRIPTYCH_HOME", str(tmp_path / "fresh-home"))
    entry = load_catalog().get("gemma3-270m-base")
    assert not assembled_path(entry).exists()
    workers = [ModelWorker(entry), ModelWorker(entry)]
    requests = [GenerationRequest("Hi", greedy(entry, max_tokens=2))] * 2
    outcome = []
    try:
        for _pane, event in run_comparison(workers, requests):
            if isinstance(event, Finished | Failed):
                outcome.append(event)
    finally:
        for worker in workers:
            worker.close()
    assert all(isinstance(event, Finished) for event in outcome), outcome
    leftovers = list(assembled_path(entry).parent.glob("*.partial"))
    assert assembled_path(entry).stat().st_size == entry.source.size and not leftovers


# ----------------------------------------------------------------- our own decode loop


def _run_in_process(model, entry, request):
    from desktop_app.engine.child import run_generation

    events = list(run_generation(model, entry, request))
    assert isinstance(events[-1], Finished), events[-1]
    return events[-1].result


@pytest.mark.parametrize("threads", [1, 2])
def test_greedy_text_matches_llama_cpp_pythons_own_api(starter_models, threads, native_decision):
    """Same prompt tokens, same threads, temperature 0: our loop and Llama.generate agree.

    (SmolLM2's greedy text depends on the thread count, so each count is compared.)
    """
    import llama_cpp

    from desktop_app.engine.llama.backend import LlamaModel
    from desktop_app.models.catalog import ensure_local

    entry = starter_models["instruct"]
    path = ensure_local(entry)
    request = GenerationRequest("Tell me about the Moon.", greedy(entry, max_tokens=48),
                                ignore_eos=True)
    model = LlamaModel(path, n_ctx=entry.context_length, n_threads=threads,
                       extra_buffers=native_decision.extra_buffers)
    try:
        ours = _run_in_process(model, entry, request)
        tokens = model.tokenize(ours.prompt_sent)
    finally:
        model.close()
    llm = llama_cpp.Llama(model_path=str(path), n_ctx=entry.context_length, n_threads=threads,
                          n_threads_batch=threads, flash_attn=True, verbose=False)
    try:
        theirs = b""
        for count, token in enumerate(llm.generate(
                tokens, temp=0.0, repeat_penalty=request.sampling.repeat_penalty, reset=True)):
            theirs += llm.detokenize([token])
            if count + 1 >= 48:
                break
    finally:
        llm.close()
    assert ours.answer_tokens == 48
    assert ours.answer == theirs.decode("utf-8", "replace")


def test_seeds_reproduce_and_differ(starter_models, native_decision):
    from desktop_app.engine.llama.backend import LlamaModel
    from desktop_app.models.catalog import ensure_local

    entry = starter_models["instruct"]
    model = LlamaModel(ensure_local(entry), n_ctx=entry.context_length, n_threads=1,
                       extra_buffers=native_decision.extra_buffers)

    def sample(seed: int) -> str:
        sampling = Sampling.for_entry(entry, temperature=1.0, top_k=100, top_p=1.0, min_p=0.0,
                                      seed=seed, max_tokens=24)
        return _run_in_process(model, entry, GenerationRequest(
            "Invent a name for a cat.", sampling, ignore_eos=True)).answer

    try:
        first, again, other = sample(11), sample(11), sample(12)
    finally:
        model.close()
    assert first == again
    assert first != other


def test_follow_up_turn_evaluates_only_the_new_tokens(starter_models, native_decision):
    from desktop_app.engine.llama.backend import LlamaModel
    from desktop_app.models.catalog import ensure_local

    entry = starter_models["instruct"]
    model = LlamaModel(ensure_local(entry), n_ctx=entry.context_length, n_threads=1,
                       extra_buffers=native_decision.extra_buffers)
    try:
        first = _run_in_process(model, entry, GenerationRequest(
            "Name a planet.", greedy(entry, max_tokens=12)))
        assert model.cached_tokens >= first.prompt_tokens
        follow = GenerationRequest("And a moon of it?", greedy(entry, max_tokens=12),
                                   history=(Turn("Name a planet.", first.answer),))
        second = _run_in_process(model, entry, follow)
    finally:
        model.close()
    assert second.prompt_sent.startswith(first.prompt_sent)
    assert first.prompt_cached == 0
    new_tokens = second.prompt_tokens - second.prompt_cached
    assert 0 < new_tokens < second.prompt_tokens - first.prompt_tokens + 8


def test_many_sequences_share_a_prompt_each_with_its_own_seed(starter_models):
    entry = starter_models["instruct"]
    sampling = Sampling.for_entry(entry, temperature=0.9, top_k=100, top_p=1.0, min_p=0.0,
                                  max_tokens=20)
    request = GenerationRequest("Invent a name for a cat.", sampling)
    seeds = (5, 6, 7, 8)
    with ModelWorker(entry, n_threads=1) as worker:
        events = list(worker.generate_many(request, seeds))
        again = list(worker.generate_many(request, seeds))
        single = list(worker.generate(GenerationRequest("Say yes.", greedy(entry, max_tokens=3))))
        too_many = list(worker.generate_many(request, range(9)))
    finished = {e.sequence: e.result for e in events if isinstance(e, Finished)}
    assert sorted(finished) == [0, 1, 2, 3]
    assert [finished[i].seed for i in range(4)] == list(seeds)
    for sequence, result in finished.items():
        streamed = "".join(e.answer for e in events
                           if isinstance(e, Delta) and e.sequence == sequence)
        assert streamed == result.answer and result.answer_tokens > 0
        assert result.prompt_tokens > 0 and result.finish_reason in ("stop", "length")
    assert len({result.answer for result in finished.values()}) > 1  # different seeds, texts
    assert sum(isinstance(e, PromptSent) for e in events) == 1  # one prompt, evaluated once
    repeated = {e.sequence: e.result.answer for e in again if isinstance(e, Finished)}
    assert repeated == {i: finished[i].answer for i in range(4)}  # seeds reproduce
    assert isinstance(single[-1], Finished) and single[-1].result.answer_tokens > 0
    assert isinstance(too_many[-1], Failed) and "sequences" in too_many[-1].message


def test_stop_ends_every_sequence(starter_models):
    entry = starter_models["instruct"]
    request = GenerationRequest("Write a long story about a ship.",
                                Sampling.for_entry(entry, temperature=0.8, max_tokens=2000))
    with ModelWorker(entry) as worker:
        finished = []
        for event in worker.generate_many(request, (1, 2, 3)):
            if isinstance(event, Delta) and event.answer_tokens >= 5:
                worker.stop()
            if isinstance(event, Finished):
                finished.append(event)
    assert sorted(e.sequence for e in finished) == [0, 1, 2]
    assert all(e.result.finish_reason in ("cancelled", "stop") for e in finished)
    assert any(e.result.finish_reason == "cancelled" for e in finished)


def test_top_logprobs_come_with_each_token_when_asked(starter_models):
    import math

    entry = starter_models["instruct"]
    plain = Sampling.for_entry(entry, temperature=0.0, repeat_penalty=1.0, max_tokens=8)
    with ModelWorker(entry, n_threads=1) as worker:
        asked = list(worker.generate(GenerationRequest("Name a colour.", plain, top_logprobs=5)))
        default = list(worker.generate(GenerationRequest("Name a colour.", plain)))
    deltas = [e for e in asked if isinstance(e, Delta) and e.logprob is not None]
    assert len(deltas) >= 1
    for delta in deltas:
        top = delta.logprob.top
        assert len(top) == 5
        values = [p for _, p in top]
        assert values == sorted(values, reverse=True) and all(p <= 0 for p in values)
        assert sum(math.exp(p) for p in values) <= 1.0001
        assert delta.logprob.token == top[0][0]  # greedy picks the most likely token
        assert math.isclose(delta.logprob.logprob, top[0][1], abs_tol=1e-4)
    assert all(e.logprob is None for e in default if isinstance(e, Delta))
    assert asked[-1].result.answer == default[-1].result.answer


def test_each_of_many_sequences_can_carry_logprobs(starter_models):
    entry = starter_models["instruct"]
    sampling = Sampling.for_entry(entry, temperature=0.9, max_tokens=6)
    with ModelWorker(entry, n_threads=1) as worker:
        events = list(worker.generate_many(
            GenerationRequest("Name a colour.", sampling, top_logprobs=3), (1, 2)))
    for sequence in (0, 1):
        deltas = [e for e in events if isinstance(e, Delta) and e.sequence == sequence
                  and e.logprob is not None]  # (a held-back tail at the end has none)
        assert deltas and all(len(e.logprob.top) == 3 for e in deltas)
        assert all(e.logprob.logprob <= e.logprob.top[0][1] + 1e-4 for e in deltas)


def test_a_reply_put_back_into_the_prompt_keeps_its_generated_tokens(starter_models, native_decision):
    """Re-tokenizing an answer often splits it differently from how it was generated;
    the cache is still reused through the answer, not only up to it."""
    from desktop_app.engine.llama.backend import LlamaModel
    from desktop_app.models.catalog import ensure_local

    entry = starter_models["instruct"]
    model = LlamaModel(ensure_local(entry), n_ctx=entry.context_length, n_threads=1,
                       extra_buffers=native_decision.extra_buffers)
    try:
        history: tuple[Turn, ...] = ()
        results = []
        for question in ("Explain in detail why the sky is blue.", "And why are sunsets red?",
                         "Summarise both answers in one sentence."):
            request = GenerationRequest(question, greedy(entry, max_tokens=40), history=history)
            results.append(_run_in_process(model, entry, request))
            history = (*history, Turn(question, results[-1].answer))
    finally:
        model.close()
    for before, after in zip(results, results[1:]):
        # everything up to the end of the previous answer came from the cache
        assert after.prompt_cached >= before.prompt_tokens + before.answer_tokens - 1


def test_deltas_of_one_frame_travel_as_one_message_in_order():
    """send_batched: a burst of Deltas is one pipe message, every other event goes alone
    and after the Deltas before it; Deltas a frame apart go one by one (a slow model)."""
    from multiprocessing import Pipe

    from desktop_app.engine.child import FRAME_S, send_batched
    from desktop_app.engine.protocol import Delta, Finished, GenerationResult, PromptSent

    def burst():
        yield PromptSent(text="p", n_tokens=1, starts_in_thinking=False, seed=0)
        for i in range(6):
            yield Delta(thinking="", answer=str(i), thinking_tokens=0, answer_tokens=i + 1, elapsed_s=0.0)
        yield Finished(result=GenerationResult(model="m", role="base"))

    def slow():
        for i in range(3):
            time.sleep(FRAME_S * 1.5)
            yield Delta(thinking="", answer=str(i), thinking_tokens=0, answer_tokens=i + 1, elapsed_s=0.0)

    here, there = Pipe()
    try:
        send_batched(there, burst())
        messages = []
        while here.poll(0):
            messages.append(here.recv())
        assert isinstance(messages[0], PromptSent) and isinstance(messages[-1], Finished)
        middle = messages[1:-1]
        flat = [d for m in middle for d in (m if isinstance(m, list) else [m])]
        assert [d.answer for d in flat] == [str(i) for i in range(6)]
        assert len(middle) < 6  # batched: fewer messages than tokens
        send_batched(there, slow())
        alone = []
        while here.poll(0):
            alone.append(here.recv())
        assert [m.answer for m in alone] == ["0", "1", "2"]  # each Delta its own message
    finally:
        here.close()
        there.close()
