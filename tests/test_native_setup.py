"""No CPU can crash a pane: llama.cpp's extra weight buffers (AMX, repacking) are probed,
fallen back from when a model process dies of a crash signal, and the verdict remembered.

This machine may have no AMX, so the crash is injected (``TRIPTYCH_INJECT_CRASH``): the
model process kills itself with the signal a faulting kernel dies of, at the point the
real fault happens (the probe batch, the load, the first generation's prompt). Everything
else is real: spawned processes, llama.cpp, the scripted GGUF, the file on disk.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from desktop_app.engine.llama import native_setup
from desktop_app.engine.llama.native_setup import (
    EXTRA_BUFFERS_ENV,
    INJECT_CRASH_ENV,
    NativeSetup,
    Verdict,
    current_setup,
    fallback,
    kernel_variant,
    load_record,
    needs_probe,
    remember_crash,
    remember_safe,
    signal_name,
)
from desktop_app.engine.protocol import (
    Delta,
    Failed,
    Finished,
    GenerationRequest,
    Loaded,
    Loading,
    Sampling,
)
from desktop_app.engine.worker import ModelWorker
from tests.scripted_gguf import scripted_entry, write_scripted_gguf

SCRIPT = "<think>Seven eights.</think>\n\nThe answer is 56."
SAFE_NOTE = "(llama.cpp crashes on it here)"


@pytest.fixture(autouse=True)
def undecided(monkeypatch: pytest.MonkeyPatch, triptych_home: Path) -> None:
    """These tests decide the setting themselves (the suite shares its verdict with the
    others' homes): nothing known yet, nothing set by hand."""
    monkeypatch.delenv(EXTRA_BUFFERS_ENV, raising=False)
    monkeypatch.delenv(INJECT_CRASH_ENV, raising=False)
    (triptych_home / "data" / native_setup.CHECKS_FILE).unlink(missing_ok=True)


@pytest.fixture
def scripted(tmp_path: Path):
    return scripted_entry(write_scripted_gguf(tmp_path / "reasoner.gguf", SCRIPT))


def request() -> GenerationRequest:
    return GenerationRequest("What is 7 * 8?", Sampling(temperature=0.0, seed=1, max_tokens=32))


# ------------------------------------------------------------------ the rules, as data


def test_the_ladder_goes_down_one_rung_at_a_time():
    top = NativeSetup()
    assert top.extra_buffers and not top.avoid_kernels
    second = fallback(top, kernels="sapphirerapids", died_of="SIGSEGV")
    assert second == NativeSetup(extra_buffers=False, crashed_with="SIGSEGV")
    third = fallback(second, kernels="sapphirerapids", died_of="SIGILL")  # other kernels
    assert third == NativeSetup(extra_buffers=True, avoid_kernels=("sapphirerapids",),
                                crashed_with="SIGILL")
    assert fallback(NativeSetup(extra_buffers=False), kernels="") is None  # nothing left
    assert fallback(NativeSetup(extra_buffers=False, forced=True)) is None


def test_a_verdict_is_kept_per_machine_and_read_back(triptych_home: Path):
    assert current_setup() == NativeSetup()
    assert needs_probe(NativeSetup())
    remember_safe(NativeSetup())
    assert load_record().extra_buffers is Verdict.SAFE
    assert not needs_probe(NativeSetup())
    remember_crash(NativeSetup(), NativeSetup(extra_buffers=False), "SIGSEGV")
    setup = current_setup()
    assert not setup.extra_buffers and setup.crashed_with == "SIGSEGV"
    assert not needs_probe(setup)
    assert load_record("another-machine").extra_buffers is Verdict.UNTESTED
    saved = json.loads((triptych_home / "data" / native_setup.CHECKS_FILE).read_text())
    assert saved[native_setup.machine_key()]["extra_buffers"] == "crashes"


def test_a_damaged_record_file_means_untested(triptych_home: Path):
    path = triptych_home / "data" / native_setup.CHECKS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    assert current_setup() == NativeSetup()
    path.write_text(json.dumps({native_setup.machine_key(): {"extra_buffers": "sideways"}}))
    assert load_record().extra_buffers is Verdict.UNTESTED


def test_a_setting_by_hand_wins_and_is_never_probed(monkeypatch: pytest.MonkeyPatch):
    remember_crash(NativeSetup(), NativeSetup(extra_buffers=False), "SIGILL")
    monkeypatch.setenv(EXTRA_BUFFERS_ENV, "1")
    setup = current_setup()
    assert setup.extra_buffers and setup.forced and not needs_probe(setup)
    monkeypatch.setenv(EXTRA_BUFFERS_ENV, "0")
    assert current_setup().note(amx=False) == "weight repacking off (set by hand)"


def test_the_note_says_what_is_off_and_why():
    crashed = NativeSetup(extra_buffers=False, crashed_with="SIGSEGV")
    assert crashed.note(amx=True) == f"AMX and weight repacking off {SAFE_NOTE}"
    assert crashed.note(amx=False) == f"weight repacking off {SAFE_NOTE}"
    assert NativeSetup().note(amx=True) == ""
    kernels = NativeSetup(avoid_kernels=("sapphirerapids",))
    assert kernels.note(amx=True) == "sapphirerapids kernels skipped (they crash here)"
    assert crashed.as_llama_bench_args() == ["--repack", "0"]
    assert NativeSetup().as_llama_bench_args() == []


def test_crash_signals_and_kernel_names():
    assert signal_name(-signal.SIGSEGV) == "SIGSEGV"
    assert signal_name(-signal.SIGILL) == "SIGILL"
    assert signal_name(-signal.SIGKILL) is None  # out of memory: no fault of the kernels
    assert signal_name(1) is None and signal_name(None) is None
    maps = ["/usr/lib/libc.so.6", "/app/_internal/llama_cpp/lib/libggml-cpu-icelake.so"]
    assert kernel_variant(maps) == "icelake"
    assert kernel_variant(["C:/app/llama_cpp/lib/ggml-cpu-haswell.dll"]) == "haswell"
    assert kernel_variant(["/venv/llama_cpp/lib/libggml-cpu.so"]) == ""


def test_the_machine_key_changes_with_the_library(tmp_path: Path, monkeypatch):
    package = tmp_path / "llama_cpp"
    (package / "lib").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    library = package / "lib" / "libggml-cpu.so"
    library.write_bytes(b"one")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "llama_cpp", raising=False)
    first = native_setup.machine_key()
    library.write_bytes(b"a rebuilt one")
    assert native_setup.machine_key() != first


# ------------------------------------------------------ real model processes, crashes injected


@pytest.mark.slow
def test_a_probe_that_crashes_falls_back_and_is_remembered(scripted, monkeypatch):
    monkeypatch.setenv(INJECT_CRASH_ENV, "probe:SIGSEGV")
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
    final = events[-1]
    assert isinstance(final, Finished), final
    assert final.result.answer == "The answer is 56."
    again = [e for e in events if isinstance(e, Loading) and "again" in e.detail]
    assert len(again) == 1 and "SIGSEGV" in again[0].detail
    assert again[0].detail.startswith("loading")  # the command line prints it
    loaded = [e for e in events if isinstance(e, Loaded)]
    assert len(loaded) == 1 and SAFE_NOTE in loaded[0].placement
    assert SAFE_NOTE in (final.result.placement or "")
    assert load_record().extra_buffers is Verdict.CRASHES
    # the next process starts on the safe rung at once: no probe, no crash, same note
    with ModelWorker(scripted) as worker:
        assert not worker.setup.extra_buffers
        events = list(worker.generate(request()))
    assert not any(isinstance(e, Loading) and "again" in e.detail for e in events)
    assert isinstance(events[-1], Finished) and SAFE_NOTE in (events[-1].result.placement or "")


@pytest.mark.slow
def test_a_first_generation_that_crashes_is_run_again_without_them(scripted, monkeypatch):
    remember_safe(NativeSetup())  # the probe passed (another model), the prompt crashes
    monkeypatch.setenv(INJECT_CRASH_ENV, "decode:SIGILL")
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
        followup = list(worker.generate(request()))
    final = events[-1]
    assert isinstance(final, Finished), final
    assert final.result.answer == "The answer is 56."
    assert not any(isinstance(e, Failed) for e in events)
    assert [e.detail for e in events if isinstance(e, Loading) and "SIGILL" in e.detail]
    assert "".join(e.answer for e in events if isinstance(e, Delta)) == final.result.answer
    assert isinstance(followup[-1], Finished)
    assert load_record().extra_buffers is Verdict.CRASHES


@pytest.mark.slow
def test_a_crash_on_every_rung_is_shown_and_not_blamed_on_the_buffers(scripted, monkeypatch):
    monkeypatch.setenv(INJECT_CRASH_ENV, "kernels:SIGSEGV")  # dies whatever the buffers
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
    final = events[-1]
    assert isinstance(final, Failed) and "SIGSEGV" in final.message
    assert load_record().extra_buffers is Verdict.UNTESTED


@pytest.mark.slow
def test_a_prompt_that_crashes_on_every_setting_is_not_blamed_on_the_buffers(
        scripted, monkeypatch):
    """The first generation dies (a llama.cpp bug of this prompt, say), and dies again one
    rung down: one retry only, the crash is shown, and the verdict stays as it was."""
    remember_safe(NativeSetup())
    monkeypatch.setenv(INJECT_CRASH_ENV, "decode:SIGSEGV:always")
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
    final = events[-1]
    assert isinstance(final, Failed) and "SIGSEGV" in final.message
    assert len([e for e in events if isinstance(e, Loading) and "again" in e.detail]) == 1
    assert load_record().extra_buffers is Verdict.SAFE


@pytest.mark.slow
def test_a_pane_may_try_more_threads_than_the_free_cores(scripted):
    """The budget's ceiling (its share of every core) reaches the model process, not only
    the share of the free cores it starts from."""
    from desktop_app.engine.cores import ThreadBudget

    budget = ThreadBudget(cores=2)
    budget.available = 1  # a light load on one core, as free_and_possible sees it
    with ModelWorker(scripted, budget=budget) as worker:
        assert isinstance(list(worker.generate(request()))[-1], Finished)
        assert (worker._threads.value, worker._ceiling.value) == (1, 2)


@pytest.mark.slow
def test_closing_a_worker_while_it_falls_back_leaves_no_process(scripted, monkeypatch):
    """The pane is closed just as its model process starts again one rung down: the
    stream ends with a sentence and no process is left (the leak check)."""
    monkeypatch.setenv(INJECT_CRASH_ENV, "probe:SIGSEGV")
    worker = ModelWorker(scripted)
    events = []
    for event in worker.generate(request()):
        events.append(event)
        if isinstance(event, Loading) and "again" in event.detail:
            worker.close()
    assert isinstance(events[-1], Failed | Finished)
    assert not worker.alive


@pytest.mark.slow
def test_a_process_killed_for_memory_is_not_a_kernel_crash(scripted, monkeypatch):
    monkeypatch.setenv(INJECT_CRASH_ENV, "probe:SIGKILL")
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
    final = events[-1]
    assert isinstance(final, Failed) and "out of memory" in final.message
    assert not any(isinstance(e, Loading) and "again" in e.detail for e in events)
    assert load_record().extra_buffers is Verdict.UNTESTED


@pytest.mark.slow
def test_a_probe_that_passes_is_remembered_as_safe(scripted):
    with ModelWorker(scripted) as worker:
        events = list(worker.generate(request()))
        assert worker.setup == NativeSetup()
    loaded = next(e for e in events if isinstance(e, Loaded))
    assert loaded.probed and loaded.placement.startswith("CPU · ")
    assert "off" not in loaded.placement
    assert load_record().extra_buffers is Verdict.SAFE
    with ModelWorker(scripted) as worker:
        loaded = next(e for e in worker.wait_loaded() if isinstance(e, Loaded))
    assert not loaded.probed


def test_native_llama_bench_runs_with_the_engines_setting(tmp_path: Path):
    """The bench's native rows use the same weight buffers as the engine (--repack)."""
    import sys

    from desktop_app.bench.engine import native_llama_bench

    seen = tmp_path / "argv.json"
    fake = tmp_path / "llama-bench"
    fake.write_text(f"#!{sys.executable}\nimport json, sys\n"
                    f"json.dump(sys.argv[1:], open({str(seen)!r}, 'w'))\n"
                    "print(json.dumps([{'avg_ts': 123.4}]))\n")
    fake.chmod(0o755)
    assert native_llama_bench(str(fake), "model.gguf", 2, 8, 1) == 123.4
    assert "--repack" not in json.loads(seen.read_text())  # llama-bench's default: on
    remember_crash(NativeSetup(), NativeSetup(extra_buffers=False), "SIGSEGV")
    native_llama_bench(str(fake), "model.gguf", 2, 8, 1)
    args = json.loads(seen.read_text())
    assert args[args.index("--repack") + 1] == "0"


def test_models_list_says_what_llama_cpp_uses_here(capsys):
    from desktop_app.cli.main import main

    assert main(["models", "list"]) == 0
    assert "llama.cpp here:" in capsys.readouterr().out
    remember_crash(NativeSetup(), NativeSetup(extra_buffers=False), "SIGSEGV")
    main(["models", "list", "--json"])
    here = json.loads(capsys.readouterr().out)["llama_cpp_here"]
    assert "off (llama.cpp crashes on it here, SIGSEGV)" in here


def _starters_undecided(starter_models, home: Path) -> tuple[str, str]:
    (home / "data" / native_setup.CHECKS_FILE).unlink(missing_ok=True)  # the session's
    return starter_models["base"].id, starter_models["instruct"].id


@pytest.mark.slow
def test_compare_on_both_starters_answers_where_the_fast_path_crashes(
        starter_models, triptych_home: Path):
    """`triptych compare` as on an AMX Xeon: the first prompt of each model crashes with
    the extra buffers on; both panes answer, and say what is off and why."""
    import os
    import subprocess
    import sys

    base, instruct = _starters_undecided(starter_models, triptych_home)
    env = {**os.environ, INJECT_CRASH_ENV: "decode:SIGSEGV", "TRIPTYCH_HOME": str(triptych_home)}
    done = subprocess.run([sys.executable, "-m", "desktop_app", "compare", "What is 7 * 8?",
                           "--models", f"{base},{instruct}", "--max-tokens", "12",
                           "--temperature", "0", "--seed", "1", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    events = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    summaries = {e["model"]: e for e in events if e["type"] == "summary"}
    assert set(summaries) == {base, instruct}
    for summary in summaries.values():
        assert summary["error"] is None and summary["answer"].strip(), summary
        assert "weight repacking off (llama.cpp crashes on it here)" in summary["placement"]
    assert load_record().extra_buffers is Verdict.CRASHES


@pytest.mark.slow
def test_the_window_shows_the_answer_and_what_is_off(starter_models, triptych_home: Path,
                                                     tmp_path: Path):
    import os
    import subprocess
    import sys

    _, instruct = _starters_undecided(starter_models, triptych_home)
    shot = tmp_path / "fallback.png"
    env = {**os.environ, INJECT_CRASH_ENV: "probe:SIGSEGV", "TRIPTYCH_HOME": str(triptych_home)}
    done = subprocess.run([sys.executable, "-m", "desktop_app", "--prompt", "What is 7 * 8?",
                           "--models", instruct, "--max-tokens", "16", "--size", "1024x768",
                           "--screenshot", str(shot)],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert shot.read_bytes()[:4] == b"\x89PNG"
    assert load_record().extra_buffers is Verdict.CRASHES
