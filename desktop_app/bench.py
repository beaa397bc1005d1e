"""``triptych bench``: Triptych measured against bare llama-cpp-python, in one run.

Every figure is a ratio against a baseline run in the same process tree, on this
machine, in the same invocation, so the numbers mean something on any laptop:

1. one pane: decode tokens/s through the engine vs a plain llama-cpp-python loop
   (same model, threads, prompt and token count) — target ≥ 0.95;
2. a comparison: three panes at once, wall time until all finish vs the sum of each
   model alone at its best thread count — target ≤ 1.0; time to first token per pane;
3. the window: the GUI thread's longest stall and mean frame interval while three panes
   stream, and the cost of appending token N as a transcript grows to 20 000 tokens;
4. start-up: launch to window shown, and to first token on a starter model;
5. memory: peak RSS of the app and of each worker process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from typing import Any

from desktop_app import __version__

BENCH_PROMPT = "Explain, step by step, why the sky is blue and why sunsets are red."
_BARE_MODEL: Any = None


# ------------------------------------------------------------------------------ machine


def machine_description() -> dict[str, Any]:
    """What this machine is: enough to compare figures between runs."""
    from desktop_app.cores import physical_cores

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory_gb = None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    try:
        import llama_cpp

        llama_version = llama_cpp.__version__
    except ImportError:
        llama_version = None
    return {
        "os": f"{platform.system()} {platform.release()}",
        "cpu": cpu,
        "physical_cores": physical_cores(),
        "logical_cpus": os.cpu_count(),
        "memory_gb": memory_gb,
        "python": platform.python_version(),
        "llama_cpp_python": llama_version,
        "triptych": __version__,
    }


# ------------------------------------------------------------------- bare llama-cpp-python


def _quiet_native_stderr() -> None:
    """Baseline process initializer: llama.cpp's console chatter would garble the table."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)


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
    from desktop_app.protocol import GenerationRequest, Sampling

    return GenerationRequest(
        prompt=BENCH_PROMPT,
        sampling=Sampling(temperature=0.0, repeat_penalty=1.0, top_k=40, top_p=1.0, min_p=0.0,
                          max_tokens=n_tokens, seed=0),
        raw=raw,
        ignore_eos=True,
    )


def _finish(events: Any) -> Any:
    from desktop_app.protocol import Failed, Finished

    for event in events:
        if isinstance(event, Finished):
            return event.result
        if isinstance(event, Failed):
            raise RuntimeError(event.message)
    raise RuntimeError("the generation ended without a result")


def bench_single_pane(entry: Any, n_tokens: int, repeats: int, threads: int) -> dict[str, Any]:
    """Engine vs bare llama-cpp-python decode speed, alternating runs, medians compared."""
    from desktop_app.catalog import ensure_local
    from desktop_app.cores import ThreadBudget
    from desktop_app.engine import ModelWorker

    path = str(ensure_local(entry))
    engine_rates: list[float] = []
    bare_rates: list[float] = []
    worker = ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads))
    try:
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"),
                                 initializer=_quiet_native_stderr) as baseline:
            for _ in range(repeats + 1):  # the first round warms both up and is discarded
                bare = baseline.submit(_bare_decode, path, entry.context_length, threads,
                                       BENCH_PROMPT, n_tokens).result()
                result = _finish(worker.generate(_fixed_request(entry, n_tokens, raw=True)))
                bare_rates.append(bare)
                engine_rates.append(result.tokens_per_s or 0.0)
    finally:
        worker.close()
    engine = statistics.median(engine_rates[1:])
    bare = statistics.median(bare_rates[1:])
    return {
        "model": entry.id,
        "threads": threads,
        "tokens": n_tokens,
        "engine_tokens_per_s": round(engine, 2),
        "bare_tokens_per_s": round(bare, 2),
        "ratio": round(engine / bare, 3) if bare else None,
        "runs": repeats,
    }


def bench_comparison(entries: list[Any], n_tokens: int, cores: int) -> dict[str, Any]:
    """Three panes at once vs the sum of each model alone at its best thread count."""
    from desktop_app.cores import ThreadBudget
    from desktop_app.engine import ModelWorker, run_comparison
    from desktop_app.protocol import Finished

    requests = [_fixed_request(entry, n_tokens, raw=False) for entry in entries]
    alone: list[dict[str, Any]] = []
    for entry, request in zip(entries, requests):
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
                        "ttft_s": round(result.ttft_s or 0, 3)}
        assert best is not None
        alone.append(best)

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


def bench_prompt_reuse(entry: Any, n_tokens: int) -> dict[str, Any]:
    """Time to first token of a conversation's third turn (cache reused) against the same
    question asked fresh, and against the third turn with nothing cached."""
    from desktop_app.engine import ModelWorker
    from desktop_app.prompting import Turn
    from desktop_app.protocol import GenerationRequest, Sampling

    sampling = Sampling(temperature=0.0, max_tokens=max(2, min(n_tokens, 48)), seed=0)
    questions = ["Explain in detail why the sky is blue.", "And why are sunsets red?",
                 "Summarise both answers in one sentence."]
    figures: dict[str, Any] = {"model": entry.id}
    with ModelWorker(entry) as worker:
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
    with ModelWorker(entry) as cold:
        fresh = _finish(cold.generate(GenerationRequest(questions[-1], sampling)))
        figures["fresh_ttft_s"] = round(fresh.ttft_s or 0, 4)
        figures["fresh_prompt_tokens"] = fresh.prompt_tokens
    with ModelWorker(entry) as cold:
        result = _finish(cold.generate(GenerationRequest(questions[-1], sampling,
                                                         history=history[:-1])))
        figures["turn3_uncached_ttft_s"] = round(result.ttft_s or 0, 4)
    fresh_ttft = figures["fresh_ttft_s"]
    figures["ratio"] = round(figures["turn3_ttft_s"] / fresh_ttft, 3) if fresh_ttft else None
    return figures


def bench_many_sequences(entry: Any, n_tokens: int, counts: tuple[int, ...] = (1, 4, 8)
                         ) -> dict[str, Any]:
    """Total tokens/s of N sequences sampled from one prompt at once, against one."""
    from desktop_app.engine import ModelWorker
    from desktop_app.protocol import Finished, GenerationRequest, Sampling

    request = GenerationRequest(BENCH_PROMPT, Sampling(temperature=0.8, max_tokens=n_tokens),
                                raw=True, ignore_eos=True)
    totals: dict[str, float] = {}
    with ModelWorker(entry) as worker:
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


def bench_logprobs(entry: Any, n_tokens: int, repeats: int, threads: int, k: int = 5
                   ) -> dict[str, Any]:
    """Decode speed with each token's top-k log-probabilities against without, on one model
    process, alternating runs (the first round of each warms up and is discarded)."""
    from dataclasses import replace

    from desktop_app.cores import ThreadBudget
    from desktop_app.engine import ModelWorker

    plain = _fixed_request(entry, n_tokens, raw=True)
    with_k = replace(plain, top_logprobs=k)
    rates: dict[str, list[float]] = {"off": [], "on": []}
    with ModelWorker(entry, n_threads=threads, budget=ThreadBudget(cores=threads)) as worker:
        for _ in range(repeats + 1):
            for key, request in (("off", plain), ("on", with_k)):
                rates[key].append(_finish(worker.generate(request)).tokens_per_s or 0.0)
    off = statistics.median(rates["off"][1:])
    on = statistics.median(rates["on"][1:])
    return {"model": entry.id, "k": k, "threads": threads, "off_tokens_per_s": round(off, 2),
            "on_tokens_per_s": round(on, 2), "ratio": round(on / off, 3) if off else None}


def _start_stranger() -> int:
    """Start a process that keeps one core busy and is not ours (another program, to the
    thread budget); return its pid. The caller kills it."""
    launcher = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'],"
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
    """Decode tokens/s that llama.cpp's own ``llama-bench`` measures (tg test)."""
    try:
        done = subprocess.run(
            [binary, "-m", model_path, "-t", str(threads), "-p", "0", "-n", str(n_tokens),
             "-r", str(repeats), "-o", "json"],
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


def bench_native(entry: Any, binary: str, n_tokens: int, threads: int, repeats: int,
                 engine_rate: float) -> dict[str, Any]:
    """The engine's single-pane decode rate against native llama.cpp at the same threads."""
    from desktop_app.catalog import ensure_local

    native = native_llama_bench(binary, str(ensure_local(entry)), threads, n_tokens, repeats)
    return {"model": entry.id, "threads": threads, "native_tokens_per_s": native,
            "engine_tokens_per_s": round(engine_rate, 2),
            "ratio": round(engine_rate / native, 3) if native else None}


def bench_contention(entry: Any, n_tokens: int, repeats: int, cores: int,
                     llama_bench: str | None) -> dict[str, Any]:
    """One pane while another program keeps a core busy, against the best thread count of
    the baseline (native llama-bench when given, else a bare llama-cpp-python loop)."""
    from desktop_app.catalog import ensure_local
    from desktop_app.cores import ThreadBudget
    from desktop_app.engine import ModelWorker

    path = str(ensure_local(entry))
    request = _fixed_request(entry, n_tokens, raw=True)
    stranger = _start_stranger()
    try:
        time.sleep(0.5)
        with ModelWorker(entry, budget=ThreadBudget()) as worker:  # the app's own budget
            _finish(worker.generate(request))
            engine = _median_rate(worker, request, repeats)
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
    return {"model": entry.id, "busy_processes": 1, "busy_pid": stranger,
            "baseline": "native llama-bench" if llama_bench else "bare llama-cpp-python loop",
            "engine_tokens_per_s": round(engine, 2), "baseline_tokens_per_s": baseline,
            "ratio": round(engine / best, 3) if best else None}


def bench_startup(model_id: str) -> dict[str, Any]:
    """Launch to window shown, and launch to first token, each in a fresh process."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    figures: dict[str, Any] = {}
    for key, extra in (("launch_to_window_s", "window"), ("launch_to_first_token_s", "token")):
        env["TRIPTYCH_STARTUP_PROBE"] = extra
        started = time.perf_counter()
        launched_at = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "desktop_app", "--models", model_id, "--prompt", "Hi",
             "--max-tokens", "2"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        marker = [line for line in done.stdout.splitlines() if line.startswith("STARTUP ")]
        if done.returncode == 0 and marker:
            figures[key] = round(float(marker[-1].split()[1]) - launched_at, 3)
        else:
            figures[key] = None
            figures[f"{key}_error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
        figures[f"{key}_process_wall_s"] = round(time.perf_counter() - started, 3)
    return figures


def bench_window(entries: list[Any], n_tokens: int) -> dict[str, Any]:
    """GUI-thread stall, frame interval and append cost (in a separate offscreen app)."""
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    code = (
        "import json, sys\n"
        "from desktop_app.ui.bench_window import measure_window\n"
        "print('WINDOW ' + json.dumps(measure_window(sys.argv[1].split(','), int(sys.argv[2]))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, ",".join(entry.id for entry in entries), str(n_tokens)],
        env=env, capture_output=True, text=True, timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WINDOW ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"window benchmark failed: {tail}"}
    return dict(json.loads(lines[-1][len("WINDOW "):]))


# ------------------------------------------------------------------------------- report


def _choose_models(ids: list[str] | None) -> list[Any]:
    from desktop_app.catalog import default_model_ids, load_catalog

    catalog = load_catalog()
    chosen = ids or default_model_ids(catalog)
    if not chosen:
        raise ValueError("No model is ready to benchmark; install the starter models.")
    entries = [catalog.get(model_id) for model_id in chosen]
    while len(entries) < 3:  # a comparison is three panes; repeat models if fewer are here
        entries.append(entries[len(entries) % len(chosen)])
    return entries[:4]


def run_benchmarks(ids: list[str] | None, n_tokens: int, repeats: int,
                   window: bool = True, startup: bool = True, contention: bool = False,
                   llama_bench: str | None = None) -> dict[str, Any]:
    """Run every measurement; return one JSON-ready dict."""
    from desktop_app.cores import physical_cores

    entries = _choose_models(ids)
    cores = physical_cores()
    report: dict[str, Any] = {"machine": machine_description()}
    single = bench_single_pane(entries[0], n_tokens, repeats, cores)
    comparison = bench_comparison(entries[:3], n_tokens, cores)
    report["single_pane_ratio"] = single["ratio"]
    report["comparison_ratio"] = comparison["ratio"]
    report["single_pane"] = single
    report["comparison"] = comparison
    report["prompt_reuse"] = bench_prompt_reuse(entries[0], n_tokens)
    report["many_sequences"] = bench_many_sequences(entries[0], n_tokens)
    report["logprobs"] = bench_logprobs(entries[0], n_tokens, repeats, cores)
    if llama_bench:
        report["native"] = bench_native(entries[0], llama_bench, n_tokens, cores, repeats,
                                        single["engine_tokens_per_s"])
    if contention:
        report["contention"] = bench_contention(entries[0], n_tokens, repeats, cores,
                                                llama_bench)
    report["window"] = bench_window(entries[:3], max(n_tokens, 64)) if window else None
    report["startup"] = bench_startup(entries[0].id) if startup else None
    from desktop_app.worker_process import peak_rss_mb

    window_figures = report["window"] or {}
    own_peak = round(peak_rss_mb() or 0, 1)
    report["memory"] = {
        # the window app's own process (from the window run), else this headless one
        "app_peak_rss_mb": window_figures.get("app_peak_rss_mb") or own_peak,
        "bench_process_peak_rss_mb": own_peak,
        "worker_peak_rss_mb": {pane["model"]: pane["worker_peak_rss_mb"]
                               for pane in comparison["panes"] if pane},
    }
    return report


def format_table(report: dict[str, Any]) -> str:
    """A human-readable summary of a report."""
    machine = report["machine"]
    single, comparison = report["single_pane"], report["comparison"]
    lines = [
        f"Triptych {machine['triptych']} · {machine['cpu']} · {machine['physical_cores']} cores · "
        f"{machine['memory_gb']} GB · llama-cpp-python {machine['llama_cpp_python']}",
        "",
        f"{'measure':44} {'Triptych':>12} {'baseline':>12} {'ratio':>8}",
        f"{'1 pane decode tok/s (' + single['model'] + ')':44} "
        f"{single['engine_tokens_per_s']:>12} {single['bare_tokens_per_s']:>12} "
        f"{single['ratio']:>8}",
        f"{'3 panes wall s vs sum alone':44} {comparison['wall_s']:>12} "
        f"{comparison['sum_alone_s']:>12} {comparison['ratio']:>8}",
    ]
    for pane in comparison["panes"]:
        if pane:
            lines.append(f"  {pane['model']:42} ttft {pane['ttft_s']} s · "
                         f"{pane['tokens_per_s']} tok/s")
    lines += _engine_lines(report)
    window = report.get("window") or {}
    if window and "error" not in window:
        lines.append(f"{'GUI longest stall ms / mean frame ms':44} "
                     f"{window.get('longest_stall_ms')!s:>12} "
                     f"{window.get('mean_frame_interval_ms')!s:>12}")
        costs = window.get("append_cost_us", {})
        if costs:
            lines.append("append cost µs at N tokens: " +
                         ", ".join(f"{n}: {v}" for n, v in costs.items()))
    elif window:
        lines.append(window["error"])
    startup = report.get("startup") or {}
    if startup:
        lines.append(f"start-up: window {startup.get('launch_to_window_s')} s, first token "
                     f"{startup.get('launch_to_first_token_s')} s")
    memory = report["memory"]
    lines.append(f"memory: app {memory['app_peak_rss_mb']} MB; workers " +
                 ", ".join(f"{k} {v} MB" for k, v in memory["worker_peak_rss_mb"].items()))
    return "\n".join(lines)


def _engine_lines(report: dict[str, Any]) -> list[str]:
    """Table lines for the engine figures (absent from reports made before they existed)."""
    lines = []
    native = report.get("native")
    if native:
        lines.append(f"{'1 pane vs native llama-bench tok/s':44} "
                     f"{native['engine_tokens_per_s']!s:>12} {native['native_tokens_per_s']!s:>12} "
                     f"{native['ratio']!s:>8}")
    reuse = report.get("prompt_reuse")
    if reuse:
        lines.append(f"{'turn 3 TTFT s vs same text fresh':44} {reuse['turn3_ttft_s']!s:>12} "
                     f"{reuse['fresh_ttft_s']!s:>12} {reuse['ratio']!s:>8}")
    many = report.get("many_sequences")
    if many:
        totals = many["total_tokens_per_s"]
        lines.append(f"{str(many['sequences']) + ' sequences total tok/s vs one':44} "
                     f"{totals[str(many['sequences'])]!s:>12} {totals.get('1')!s:>12} "
                     f"{many['ratio']!s:>8}")
    logprobs = report.get("logprobs")
    if logprobs:
        lines.append(f"{'decode tok/s with top-' + str(logprobs['k']) + ' log-probs vs without':44} "
                     f"{logprobs['on_tokens_per_s']!s:>12} {logprobs['off_tokens_per_s']!s:>12} "
                     f"{logprobs['ratio']!s:>8}")
    contention = report.get("contention")
    if contention:
        best = max((v for v in contention["baseline_tokens_per_s"].values() if v), default=None)
        lines.append(f"{'1 pane with a core kept busy, tok/s':44} "
                     f"{contention['engine_tokens_per_s']!s:>12} {best!s:>12} "
                     f"{contention['ratio']!s:>8}")
    return lines


def _engine_rows(report: dict[str, Any]) -> list[str]:
    """README rows for the engine figures (absent from reports made before they existed)."""
    rows = []
    native = report.get("native")
    if native:
        rows.append(f"| one pane, decode tokens/s ({native['model']}, {native['threads']} threads) "
                    f"| {native['engine_tokens_per_s']} | {native['native_tokens_per_s']} (native "
                    f"llama-bench) | **{native['ratio']}** | ≥ 0.95 |")
    contention = report.get("contention")
    if contention:
        rates = contention["baseline_tokens_per_s"]
        best = max((v for v in rates.values() if v), default=None)
        rows.append(f"| one pane while another process keeps a core busy, tokens/s | "
                    f"{contention['engine_tokens_per_s']} | {best} ({contention['baseline']}, best "
                    f"of {len(rates)} thread counts) | **{contention['ratio']}** | ≥ 0.8 |")
    reuse = report.get("prompt_reuse")
    if reuse:
        rows.append(f"| time to first token of turn 3 ({reuse['turn3_prompt_cached']} of "
                    f"{reuse['turn3_prompt_tokens']} prompt tokens cached) | {reuse['turn3_ttft_s']} s "
                    f"| {reuse['fresh_ttft_s']} s (the same question asked fresh; "
                    f"{reuse['turn3_uncached_ttft_s']} s with nothing cached) | **{reuse['ratio']}** "
                    f"| ≤ 1.2 |")
    many = report.get("many_sequences")
    if many:
        totals = many["total_tokens_per_s"]
        rows.append(f"| {many['sequences']} sequences from one prompt, total tokens/s | "
                    f"{totals[str(many['sequences'])]} | {totals.get('1')} (one sequence) | "
                    f"**{many['ratio']}** | ≥ 1.6 |")
    logprobs = report.get("logprobs")
    if logprobs:
        rows.append(f"| decode tokens/s with each token's top-{logprobs['k']} log-probabilities "
                    f"| {logprobs['on_tokens_per_s']} | {logprobs['off_tokens_per_s']} (without) "
                    f"| **{logprobs['ratio']}** | ≥ 0.8 |")
    return rows


def format_markdown(report: dict[str, Any]) -> str:
    """The README's figures table for a report (``triptych bench --markdown``)."""
    machine, single, comparison = report["machine"], report["single_pane"], report["comparison"]
    window = report.get("window") or {}
    startup = report.get("startup") or {}
    memory = report["memory"]
    ttfts = ", ".join(f"{p['model']} {p['ttft_s']} s" for p in comparison["panes"] if p)
    rows = [
        "| measure | Triptych | baseline | ratio | target |",
        "|---|---|---|---|---|",
        f"| one pane, decode tokens/s ({single['model']}, {single['threads']} threads) | "
        f"{single['engine_tokens_per_s']} | {single['bare_tokens_per_s']} (bare llama-cpp-python "
        f"loop) | **{report['single_pane_ratio']}** | ≥ 0.95 |",
        f"| three panes ({', '.join(comparison['models'])}), wall s until all finish | "
        f"{comparison['wall_s']} | {comparison['sum_alone_s']} (each alone, best thread count, "
        f"summed) | **{report['comparison_ratio']}** | ≤ 1.0 |",
        f"| time to first token in each pane of the comparison | {ttfts} | | | |",
        *_engine_rows(report),
    ]
    if window and "error" not in window:
        costs = " / ".join(str(v) for v in window["append_cost_us"].values())
        rows += [
            f"| GUI thread while three panes stream: longest stall / mean interval of a 5 ms "
            f"timer | {window['longest_stall_ms']} ms / {window['mean_frame_interval_ms']} ms "
            f"| | | stall < 100 ms |",
            f"| appending one token to thinking at 1k / 5k / 10k / 20k tokens | {costs} µs | | "
            f"{window['append_cost_growth']} (20k vs 1k) | flat |",
        ]
    if startup:
        rows.append(f"| start-up: launch to window shown / to first token | "
                    f"{startup.get('launch_to_window_s')} s / "
                    f"{startup.get('launch_to_first_token_s')} s | | | |")
    workers = ", ".join(f"{k} {v} MB" for k, v in memory["worker_peak_rss_mb"].items())
    rows.append(f"| peak memory: window app / each worker | {memory['app_peak_rss_mb']} MB / "
                f"{workers} | | | |")
    head = (f"On {machine['cpu']}, {machine['physical_cores']} cores, {machine['memory_gb']} GB, "
            f"{machine['os']}, Python {machine['python']}, llama-cpp-python "
            f"{machine['llama_cpp_python']}, {single['tokens']} tokens per generation, medians "
            f"of {single['runs']} runs:")
    return head + "\n\n" + "\n".join(rows)


def add_bench_parser(subparsers: Any) -> None:
    bench = subparsers.add_parser("bench", help="measure Triptych against bare llama.cpp")
    bench.add_argument("--json", action="store_true", help="print one JSON object")
    bench.add_argument("--markdown", action="store_true", help="print the README's table")
    bench.add_argument("--models", help="comma-separated model ids (default: the ready ones)")
    bench.add_argument("--tokens", type=int, default=128, help="tokens per generation")
    bench.add_argument("--repeats", type=int, default=3, help="single-pane runs per side")
    bench.add_argument("--no-window", action="store_true", help="skip the window figures")
    bench.add_argument("--no-startup", action="store_true", help="skip the start-up figures")
    bench.add_argument("--contention", action="store_true",
                       help="also measure one pane while a busy process takes a core")
    bench.add_argument("--llama-bench", metavar="PATH",
                       help="native llama-bench binary for the ratio to llama.cpp "
                            "(default: llama-bench on PATH, if any)")


def run_bench(args: argparse.Namespace) -> int:
    from desktop_app.catalog import CatalogError

    if args.tokens < 2 or args.repeats < 1:
        print("triptych: --tokens must be at least 2 and --repeats at least 1.", file=sys.stderr)
        return 2
    ids = [part.strip() for part in args.models.split(",")] if args.models else None
    llama_bench = find_llama_bench(args.llama_bench)
    if args.llama_bench and llama_bench is None:
        print(f"triptych: {args.llama_bench} is not an executable llama-bench.", file=sys.stderr)
        return 2
    try:
        report = run_benchmarks(ids, args.tokens, args.repeats, window=not args.no_window,
                                startup=not args.no_startup, contention=args.contention,
                                llama_bench=llama_bench)
    except (CatalogError, ValueError, RuntimeError) as exc:
        print(f"triptych: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_markdown(report) if args.markdown else format_table(report))
    return 0
