"""The engine's figures for ``triptych bench``: decode speed, a comparison, prompt reuse,
N sequences, log-probabilities, contention, and native llama.cpp.

Each figure is a ratio against a baseline run in the same process tree, on this machine,
in the same invocation: a plain llama-cpp-python loop in a process of its own, the same
model alone, the same text fresh, or llama.cpp's own ``llama-bench`` when one is given.
"""

from __future__ import annotations

import functools
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any

BENCH_PROMPT = "Explain, step by step, why the sky is blue and why sunsets are red."
_BARE_MODEL: Any = None  # the baseline process's model, kept between its runs


# ------------------------------------------------------------------- bare llama-cpp-python


def _quiet_native_stderr() -> None:
    """Baseline process initializer: llama.cpp's console chatter would garble the table;
    and llama-cpp-python's own API loads models with the engine's weight buffers (where
    its defaults crash, native_setup, so would the baseline)."""
    from desktop_app.engine.llama.backend import use_extra_buffers_by_default
    from desktop_app.engine.llama.native_setup import current_setup

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    use_extra_buffers_by_default(current_setup().extra_buffers)


def _bare_decode(path: str, n_ctx: int, threads: int, prompt: str, n_tokens: int) -> float:
    """Decode tokens/s of a plain llama-cpp-python loop (runs in a baseline process)."""
    global _BARE_MODEL
    from llama_cpp import Llama

    if _BARE_MODEL is None or _BARE_MODEL.model_path != path:
        _BARE_MODEL = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads,
                            n_threads_batch=threads, flash_attn=True, verbose=False)
    llm = _BARE_MODEL
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
    first = last = 0.0
    count = 0
    for token in llm.generate(tokens, temp=0.0, repeat_penalty=1.0, reset=True):
        llm.detokenize([token])
        now = time.perf_counter()
        if count == 0:
            first = now
        last = now
        count += 1
        if count >= n_tokens:
            break
    return (count - 1) / (last - first) if count > 1 and last > first else 0.0


def _fixed_request(entry: Any, n_tokens: int, raw: bool) -> Any:
    from desktop_app.engine.protocol import GenerationRequest, Sampling

    return GenerationRequest(
        prompt=BENCH_PROMPT,
        sampling=Sampling(temperature=0.0, repeat_penalty=1.0, top_k=40, top_p=1.0, min_p=0.0,
                          max_tokens=n_tokens, seed=0),
        raw=raw,
        ignore_eos=True,
    )


def _finish(events: Any) -> Any:
    from desktop_app.engine.protocol import Failed, Finished

    for event in events:
        if isinstance(event, Finished):
            return event.result
        if isinstance(event, Failed):
            raise RuntimeError(event.message)
    raise RuntimeError("the generation ended without a result")


@dataclass
class Alternated:
    """Rates of a baseline and of the engine, run in turns (the warm-up round dropped)."""

    baseline: list[float]
    engine: list[float]
    ended_on: list[str | None]  # the engine's placement after each run


def _alternate(entry: Any, threads: int, n_tokens: int, repeats: int,
               baseline: Callable[[], float | None]) -> Alternated:
    """One baseline run, then one engine generation, ``repeats + 1`` times, so a noisy
    neighbour hits both alike; the first round warms both up and is discarded. Stops
    early when the baseline gives no figure."""
    from desktop_app.engine.cores import ThreadBudget
    from desktop_app.engine.worker import ModelWorker

    runs = Alternated([], [], [])
    with ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads)) as worker:
        for _ in range(repeats + 1):
            rate = baseline()
            if rate is None:
                break
            result = _finish(worker.generate(_fixed_request(entry, n_tokens, raw=True)))
            runs.baseline.append(rate)
            runs.engine.append(result.tokens_per_s or 0.0)
            runs.ended_on.append(result.placement)
    return Alternated(runs.baseline[1:], runs.engine[1:], runs.ended_on[1:])


def bench_single_pane(entry: Any, n_tokens: int, repeats: int, threads: int) -> dict[str, Any]:
    """Engine vs bare llama-cpp-python decode speed, alternating runs, medians compared."""
    from desktop_app.models.catalog import ensure_local

    path = str(ensure_local(entry))
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                             initializer=_quiet_native_stderr) as pool:
        runs = _alternate(entry, threads, n_tokens, repeats, lambda: pool.submit(
            _bare_decode, path, entry.context_length, threads, BENCH_PROMPT, n_tokens).result())
    engine = statistics.median(runs.engine)
    bare = statistics.median(runs.baseline)
    return {
        "model": entry.id,
        "threads": threads,
        "tokens": n_tokens,
        "engine_tokens_per_s": round(engine, 2),
        "bare_tokens_per_s": round(bare, 2),
        "ratio": round(engine / bare, 3) if bare else None,
        "runs": repeats,
        # ``threads`` is a ceiling: within it the engine's tuner keeps the faster count, so
        # under load a run can end on fewer (e.g. "CPU · 1 thread"); the bare loop cannot.
        "engine_ended_on": runs.ended_on,
    }


def bench_comparison(entries: list[Any], n_tokens: int, cores: int) -> dict[str, Any]:
    """Three panes at once vs the sum of each model alone at its best thread count."""
    from desktop_app.engine.cores import ThreadBudget
    from desktop_app.engine.protocol import Finished
    from desktop_app.engine.worker import ModelWorker, run_comparison

    requests = [_fixed_request(entry, n_tokens, raw=False) for entry in entries]
    alone_by_model: dict[str, dict[str, Any]] = {}  # a model in two panes is timed once
    for entry, request in zip(entries, requests):
        if entry.id in alone_by_model:
            continue
        best: dict[str, Any] | None = None
        for threads in sorted({1, max(1, cores // 2), cores}):
            worker = ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads))
            try:
                list(worker.wait_loaded())
                started = time.perf_counter()
                result = _finish(worker.generate(request))
                wall = time.perf_counter() - started
            finally:
                worker.close()
            if best is None or wall < best["wall_s"]:
                best = {"model": entry.id, "threads": threads, "wall_s": round(wall, 3),
                        "ttft_s": round(result.ttft_s or 0, 3), "ended_on": result.placement}
        assert best is not None
        alone_by_model[entry.id] = best
    alone = [alone_by_model[entry.id] for entry in entries]

    budget = ThreadBudget(cores=cores)
    workers = [ModelWorker(entry, budget=budget) for entry in entries]
    panes: list[dict[str, Any]] = [{} for _ in entries]
    try:
        for worker in workers:
            worker.start()
        for worker in workers:
            list(worker.wait_loaded())
        started = time.perf_counter()
        for index, event in run_comparison(workers, requests):
            if isinstance(event, Finished):
                result = event.result
                panes[index] = {
                    "model": result.model,
                    "ttft_s": round(result.ttft_s or 0, 3),
                    "tokens_per_s": round(result.tokens_per_s or 0, 2),
                    "done_after_s": round(time.perf_counter() - started, 3),
                    "worker_peak_rss_mb": round(result.peak_rss_mb or 0, 1),
                    "ended_on": result.placement,
                }
        wall = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.close()
    sum_alone = sum(item["wall_s"] for item in alone)
    return {
        "models": [entry.id for entry in entries],
        "tokens_per_pane": n_tokens,
        "wall_s": round(wall, 3),
        "sum_alone_s": round(sum_alone, 3),
        "ratio": round(wall / sum_alone, 3) if sum_alone else None,
        "alone": alone,
        "panes": panes,
    }


# ------------------------------------------------------------ engine: issue 11 figures


def _median_rate(worker: Any, request: Any, repeats: int) -> float:
    rates = [_finish(worker.generate(request)).tokens_per_s or 0.0 for _ in range(repeats)]
    return float(statistics.median(rates))


def _shared_budget(cores: int) -> Any:
    """A budget like the app's (other programs' load measured) over the cores benchmarked."""
    from desktop_app.engine.cores import ThreadBudget

    return ThreadBudget(cores, measure_load=True)


def bench_prompt_reuse(entry: Any, n_tokens: int, cores: int) -> dict[str, Any]:
    """Time to first token of a conversation's third turn (cache reused) against the same
    question asked fresh, and against the third turn with nothing cached."""
    from desktop_app.engine.prompting import Turn
    from desktop_app.engine.protocol import GenerationRequest, Sampling
    from desktop_app.engine.worker import ModelWorker

    sampling = Sampling(temperature=0.0, max_tokens=max(2, min(n_tokens, 48)), seed=0)
    questions = ["Explain in detail why the sky is blue.", "And why are sunsets red?",
                 "Summarise both answers in one sentence."]
    figures: dict[str, Any] = {"model": entry.id}
    with ModelWorker(entry, budget=_shared_budget(cores)) as worker:
        history: tuple[Turn, ...] = ()
        for question in questions:
            result = _finish(worker.generate(GenerationRequest(question, sampling,
                                                               history=history)))
            history = (*history, Turn(question, result.answer))
        figures["turn3_ttft_s"] = round(result.ttft_s or 0, 4)
        figures["turn3_prompt_tokens"] = result.prompt_tokens
        figures["turn3_prompt_cached"] = result.prompt_cached
    # Each in a new model process, so that nothing is cached: the question alone, and
    # the whole conversation.
    with ModelWorker(entry, budget=_shared_budget(cores)) as cold:
        fresh = _finish(cold.generate(GenerationRequest(questions[-1], sampling)))
        figures["fresh_ttft_s"] = round(fresh.ttft_s or 0, 4)
        figures["fresh_prompt_tokens"] = fresh.prompt_tokens
    with ModelWorker(entry, budget=_shared_budget(cores)) as cold:
        result = _finish(cold.generate(GenerationRequest(questions[-1], sampling,
                                                         history=history[:-1])))
        figures["turn3_uncached_ttft_s"] = round(result.ttft_s or 0, 4)
    fresh_ttft = figures["fresh_ttft_s"]
    figures["ratio"] = round(figures["turn3_ttft_s"] / fresh_ttft, 3) if fresh_ttft else None
    return figures


def bench_many_sequences(entry: Any, n_tokens: int, cores: int,
                         counts: tuple[int, ...] = (1, 4, 8),
                         sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """Total tokens/s of N sequences sampled from one prompt at once, against one, with
    the model's sampler (``sampler`` replacing its defaults)."""
    from desktop_app.engine.protocol import Finished, GenerationRequest, Sampling
    from desktop_app.engine.worker import ModelWorker

    request = GenerationRequest(BENCH_PROMPT, Sampling.for_entry(entry, max_tokens=n_tokens,
                                                                 **(sampler or {})),
                                raw=True, ignore_eos=True)
    totals: dict[str, float] = {}
    with ModelWorker(entry, budget=_shared_budget(cores)) as worker:
        _finish(worker.generate(request))  # warm up
        for count in counts:
            started = time.perf_counter()
            results = [event.result for event in worker.generate_many(request, range(count))
                       if isinstance(event, Finished)]
            if len(results) != count:
                raise RuntimeError("a sequence failed during the N-sequence benchmark")
            generated = sum(r.answer_tokens + r.thinking_tokens for r in results)
            first = min(started + (r.ttft_s or 0) for r in results)
            wall = time.perf_counter() - first
            totals[str(count)] = round(generated / wall, 2) if wall > 0 else 0.0
    one = totals.get("1") or 0.0
    best = str(max(counts))
    return {"model": entry.id, "tokens_per_sequence": n_tokens, "total_tokens_per_s": totals,
            "ratio": round(totals[best] / one, 3) if one else None, "sequences": int(best)}


def bench_logprobs(entry: Any, n_tokens: int, repeats: int, threads: int, k: int = 5,
                   sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """Decode speed with each token's figures (the top-k of the model's own distribution
    and of the one the sampler drew from) against without, sampling with the model's
    settings (``sampler`` replacing its defaults), on one model process, alternating runs
    (the first round of each warms up and is discarded)."""
    from dataclasses import asdict, replace

    from desktop_app.engine.cores import ThreadBudget
    from desktop_app.engine.protocol import Sampling
    from desktop_app.engine.worker import ModelWorker

    sampling = Sampling.for_entry(entry, max_tokens=n_tokens, seed=0, **(sampler or {}))
    plain = replace(_fixed_request(entry, n_tokens, raw=True), sampling=sampling)
    with_k = replace(plain, top_logprobs=k)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads)) as worker:
        for _ in range(repeats + 1):
            for key, request in (("off", plain), ("on", with_k)):
                rates[key].append(_finish(worker.generate(request)).tokens_per_s or 0.0)
    off = statistics.median(rates["off"][1:])
    on = statistics.median(rates["on"][1:])
    used = {name: value for name, value in asdict(sampling).items()
            if name not in ("max_tokens", "seed")}
    return {"model": entry.id, "k": k, "threads": threads, "sampling": used,
            "off_tokens_per_s": round(off, 2), "on_tokens_per_s": round(on, 2),
            "ratio": round(on / off, 3) if off else None}


# A process that keeps ``duty`` of one core busy: busy for duty x 10 ms, then asleep.
_DUTY_LOOP = ("import time, sys\nduty = float(sys.argv[1])\nwhile True:\n"
              "    end = time.perf_counter() + duty * 0.01\n"
              "    while time.perf_counter() < end: pass\n"
              "    time.sleep((1 - duty) * 0.01)\n")


def _start_stranger(duty: float = 1.0) -> int:
    """Start a process that keeps ``duty`` of one core busy (1.0: all of it) and is not
    ours (another program, to the thread budget); return its pid. The caller kills it."""
    loop = "while True: pass" if duty >= 1 else _DUTY_LOOP
    launcher = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         f"p = subprocess.Popen([sys.executable, '-c', {loop!r}, {str(duty)!r}],"
         " stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,"
         " start_new_session=True)\n"
         "print(p.pid)"],
        capture_output=True, text=True, timeout=60, check=True)
    return int(launcher.stdout.strip())


def _stop_stranger(pid: int) -> None:
    import psutil

    try:
        process = psutil.Process(pid)
        process.kill()
        process.wait(10)
    except psutil.Error:
        pass


def native_llama_bench(binary: str, model_path: str, threads: int, n_tokens: int,
                       repeats: int = 3) -> float | None:
    """Decode tokens/s that llama.cpp's own ``llama-bench`` measures (tg test), with the
    engine's weight buffers (``--repack``: AMX and repacking on or off, native_setup)."""
    from desktop_app.engine.llama.native_setup import current_setup

    try:
        done = subprocess.run(
            [binary, "-m", model_path, "-t", str(threads), "-p", "0", "-n", str(n_tokens),
             "-r", str(repeats), "-o", "json", *current_setup().as_llama_bench_args()],
            capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    try:
        rows = json.loads(done.stdout)
        return round(float(rows[0]["avg_ts"]), 2)
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def find_llama_bench(path: str | None) -> str | None:
    """``--llama-bench PATH``, else ``llama-bench`` on PATH, else None."""
    import shutil

    if path:
        return path if os.access(path, os.X_OK) else None
    return shutil.which("llama-bench")


def bench_native(entries: list[Any], binary: str, n_tokens: int, threads: int,
                 repeats: int) -> dict[str, Any]:
    """The engine's single-pane decode rate against native llama.cpp at the same threads,
    for each distinct model. Native and engine runs alternate (one llama-bench repetition,
    then one generation) and medians are compared, so a noisy neighbour hits both alike;
    the first round warms both up and is discarded. The engine samples every token with
    the catalog's settings; llama-bench only decodes."""
    from desktop_app.models.catalog import ensure_local

    models: list[dict[str, Any]] = []
    for entry in {e.id: e for e in entries}.values():
        path = str(ensure_local(entry))
        runs = _alternate(entry, threads, n_tokens, repeats, functools.partial(
            native_llama_bench, binary, path, threads, n_tokens, 1))
        if not runs.baseline:
            models.append({"model": entry.id, "threads": threads, "native_tokens_per_s": None,
                           "engine_tokens_per_s": None, "ratio": None})
            continue
        native = statistics.median(runs.baseline)
        engine = statistics.median(runs.engine)
        models.append({"model": entry.id, "threads": threads,
                       "native_tokens_per_s": round(native, 2),
                       "engine_tokens_per_s": round(engine, 2),
                       "ratio": round(engine / native, 3), "runs": len(runs.baseline),
                       "engine_ended_on": runs.ended_on})
    return {**models[0], "models": models}


def bench_contention(entry: Any, n_tokens: int, repeats: int, cores: int,
                     llama_bench: str | None, duty: float = 1.0) -> dict[str, Any]:
    """One pane while another program keeps ``duty`` of a core busy (1.0: all of it; a
    light load, 0.6, looks like a taken core to a short sample), against the best thread
    count of the baseline (native llama-bench when given, else a bare llama-cpp-python
    loop). Also says which thread count the engine ended on and the baseline's best."""
    from desktop_app.engine.worker import ModelWorker
    from desktop_app.models.catalog import ensure_local

    path = str(ensure_local(entry))
    request = _fixed_request(entry, n_tokens, raw=True)
    stranger = _start_stranger(duty)
    try:
        time.sleep(0.5)
        with ModelWorker(entry, budget=_shared_budget(cores)) as worker:
            _finish(worker.generate(request))
            results = [_finish(worker.generate(request)) for _ in range(repeats)]
            engine = float(statistics.median(r.tokens_per_s or 0.0 for r in results))
            ended_on = [r.placement for r in results]
        baseline: dict[str, float | None] = {}
        for threads in range(1, cores + 1):
            if llama_bench:
                baseline[str(threads)] = native_llama_bench(llama_bench, path, threads, n_tokens,
                                                            repeats)
            else:
                with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                         initializer=_quiet_native_stderr) as pool:
                    rates = [pool.submit(_bare_decode, path, entry.context_length, threads,
                                         BENCH_PROMPT, n_tokens).result()
                             for _ in range(repeats + 1)][1:]
                baseline[str(threads)] = round(statistics.median(rates), 2)
    finally:
        _stop_stranger(stranger)
    best = max((rate for rate in baseline.values() if rate), default=None)
    best_threads = max((k for k, v in baseline.items() if v), key=lambda k: baseline[k] or 0,
                       default=None)
    return {"model": entry.id, "busy_processes": 1, "busy_pid": stranger, "busy_duty": duty,
            "engine_ended_on": ended_on, "baseline_best_threads": best_threads,
            "baseline": "native llama-bench" if llama_bench else "bare llama-cpp-python loop",
            "engine_tokens_per_s": round(engine, 2), "baseline_tokens_per_s": baseline,
            "ratio": round(engine / best, 3) if best else None}



# ------------------------------------------------------------------------- embeddings

EMBED_TEXTS = 64  # the answers a best-of-64 embeds


def embedding_texts(count: int = EMBED_TEXTS) -> list[str]:
    """``count`` different joke-length answers (what the RLHF window embeds)."""
    animals = ("pelican", "penguin", "heron", "goose", "owl", "parrot", "gull", "crow")
    return [f"Why did the {animals[i % 8]} bring a ladder to the {i}th party? Because it "
            f"heard the drinks were on the house, and it wanted {i % 5 + 1} of them!"
            for i in range(count)]


def _bare_embed(path: str, threads: int, texts: list[str]) -> float:
    """Seconds llama-cpp-python's own ``Llama(embedding=True).embed`` takes for ``texts``,
    in a baseline process (mean-pooled, normalised, as the model process embeds)."""
    global _BARE_MODEL
    import llama_cpp

    from desktop_app.engine.child import EMBED_CONTEXT

    if _BARE_MODEL is None or _BARE_MODEL.model_path != path:
        _BARE_MODEL = llama_cpp.Llama(
            model_path=path, embedding=True, n_ctx=EMBED_CONTEXT, n_batch=EMBED_CONTEXT,
            n_ubatch=EMBED_CONTEXT, n_gpu_layers=0, n_threads=threads, n_threads_batch=threads,
            pooling_type=llama_cpp.LLAMA_POOLING_TYPE_MEAN, verbose=False)
    started = time.perf_counter()
    _BARE_MODEL.embed(texts, normalize=True, truncate=True)
    return time.perf_counter() - started


def _embed_baseline_init() -> None:
    """The embedding baseline runs at the model process's niceness: the figure is the
    engine's overhead (a pipe, a process), not the priority it gives the window."""
    from desktop_app.engine.child import WORKER_NICENESS

    _quiet_native_stderr()
    try:
        os.nice(WORKER_NICENESS)
    except (AttributeError, OSError):
        pass


def bench_embeddings(entry: Any, repeats: int, threads: int) -> dict[str, Any]:
    """Embedding 64 answers through the model process (``ModelHandle.embed``) against
    llama-cpp-python's own embed in a process of its own at the same niceness, alternating runs (the first round
    of each warms up, its embedding context opened, and is discarded)."""
    from desktop_app.engine.cores import ThreadBudget
    from desktop_app.engine.worker import ModelWorker
    from desktop_app.models.catalog import ensure_local

    path = str(ensure_local(entry))
    texts = embedding_texts()
    engine_s: list[float] = []
    bare_s: list[float] = []
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                             initializer=_embed_baseline_init) as pool, \
            ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads)) as worker:
        for _ in range(repeats + 1):
            bare_s.append(pool.submit(_bare_embed, path, threads, texts).result())
            started = time.perf_counter()
            worker.embed(texts)
            engine_s.append(time.perf_counter() - started)
    engine = statistics.median(engine_s[1:])
    bare = statistics.median(bare_s[1:])
    return {"model": entry.id, "texts": len(texts), "threads": threads,
            "engine_s": round(engine, 3), "bare_s": round(bare, 3),
            "ratio": round(engine / bare, 3) if bare else None, "runs": repeats}
