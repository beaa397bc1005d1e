"""Core counting, the shared thread budget and the per-generation thread tuner."""

from __future__ import annotations

import subprocess
import sys

import psutil
import pytest

from desktop_app.engine.cores import ThreadBudget, ThreadTuner, free_cores, physical_cores


class Clock:
    """Feeds a tuner tokens whose duration depends on the thread count it chose."""

    def __init__(self, tuner: ThreadTuner, per_token: dict[int, float]):
        self.tuner, self.per_token, self.now = tuner, per_token, 0.0
        self.history: list[int] = []

    def run(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.now += self.per_token[self.tuner.threads]
            self.history.append(self.tuner.observe(self.now))


def test_physical_cores_is_within_what_the_os_reports():
    assert 1 <= physical_cores() <= (psutil.cpu_count(logical=True) or 1)


def test_tuner_drops_a_thread_when_fewer_are_faster():
    tuner = ThreadTuner(2)
    clock = Clock(tuner, {1: 0.012, 2: 0.5})  # the 2-thread collapse under contention
    clock.run(2.0)
    assert tuner.threads == 1
    assert clock.history.count(2) < 10  # the slow count was left after a short window


def test_tuner_keeps_all_threads_when_they_are_faster():
    tuner = ThreadTuner(4)
    clock = Clock(tuner, {1: 0.04, 2: 0.022, 3: 0.016, 4: 0.012})
    clock.run(10.0)
    assert tuner.threads == 4
    assert clock.history.count(4) > 0.9 * len(clock.history)  # brief probes of 3 only


def test_tuner_walks_down_while_fewer_keeps_winning():
    tuner = ThreadTuner(4)
    Clock(tuner, {1: 0.1, 2: 0.01, 3: 0.05, 4: 0.2}).run(3.0)
    assert tuner.threads == 2


def test_tuner_rechecks_and_backs_off_after_a_losing_probe():
    tuner = ThreadTuner(2, recheck_s=1.0)
    clock = Clock(tuner, {1: 0.01, 2: 0.3})
    clock.run(30.0)
    assert tuner.threads == 1
    assert tuner.recheck_s > 1.0  # probing 2 lost, so it waits longer each time
    slow = clock.history.count(2)
    assert 0 < slow < len(clock.history) * 0.05


def test_tuner_goes_back_up_when_the_other_program_stops():
    tuner = ThreadTuner(2, recheck_s=1.0)
    clock = Clock(tuner, {1: 0.01, 2: 0.3})
    clock.run(3.0)
    assert tuner.threads == 1
    clock.per_token = {1: 0.01, 2: 0.006}  # the other program ended
    clock.run(10.0)
    assert tuner.threads == 2


def test_later_generations_do_not_probe_while_the_machine_is_as_quiet_as_before():
    """The first generation finds that 2 threads win; the next ones, sharing what it
    measured, stay on 2 from the first token (no 8 tokens at half speed each)."""
    fastest: dict[int, float] = {}
    quiet = {1: 0.016, 2: 0.0085}
    first = Clock(ThreadTuner(2, fastest=fastest), quiet)
    first.run(1.0)
    assert 1 in first.history  # it had to look once
    for _ in range(5):
        later = Clock(ThreadTuner(2, fastest=fastest), quiet)
        later.run(1.0)
        assert set(later.history) == {2}


def test_a_later_generation_still_drops_a_thread_when_another_program_starts():
    fastest: dict[int, float] = {}
    Clock(ThreadTuner(2, fastest=fastest), {1: 0.016, 2: 0.0085}).run(1.0)
    busy = Clock(ThreadTuner(2, fastest=fastest), {1: 0.02, 2: 0.3})  # 2 threads collapse
    busy.run(2.0)
    assert busy.tuner.threads == 1


def test_a_slow_best_does_not_keep_a_generation_on_too_many_threads():
    """Busy from the start: the best seen at 2 threads is itself slow, and 1 thread was
    faster, so a later generation on 2 threads probes down again rather than holding."""
    fastest: dict[int, float] = {}
    contended = {1: 0.02, 2: 0.3}
    Clock(ThreadTuner(2, fastest=fastest), contended).run(2.0)
    later = Clock(ThreadTuner(2, fastest=fastest), contended)
    later.run(2.0)
    assert later.tuner.threads == 1
    assert later.history.count(2) < 10


def test_tuner_restarts_from_a_new_ceiling():
    tuner = ThreadTuner(4)
    assert tuner.set_ceiling(2) == 2 and tuner.threads == 2
    assert tuner.set_ceiling(2, start=1) == 1  # the free cores looked fewer: start lower


def test_under_a_light_load_the_tuner_climbs_to_the_faster_count():
    """Another program's light load made the free cores look like one of two; two
    threads are still faster here (as native llama.cpp's best was): the tuner finds it."""
    light = {1: 0.020, 2: 0.012}
    clock = Clock(ThreadTuner(2, start=1), light)
    clock.run(2.0)
    assert clock.history[0] == 1 and clock.tuner.threads == 2


def test_under_a_busy_core_the_tuner_stays_below_and_rarely_probes():
    """One core kept busy: a second thread collapses (10x per token); the tuner stays at
    one and its probes of two back off, so they cost a few percent at most."""
    busy = {1: 0.020, 2: 0.200}
    clock = Clock(ThreadTuner(2, start=1), busy)
    clock.run(30.0)
    assert clock.tuner.threads == 1
    assert clock.history.count(2) / len(clock.history) < 0.03


def test_a_lost_probe_of_one_more_thread_waits_across_replies():
    """Two threads collapse under this load: each short reply (a new tuner) does not probe
    them again until the shared wait has passed, and the wait doubles."""
    from desktop_app.engine.cores import UpProbes

    busy = {1: 0.020, 2: 0.300}
    shared = UpProbes()
    probes = 0
    now = 0.0
    for _ in range(40):  # 40 replies of 1 s
        clock = Clock(ThreadTuner(2, start=1, up_probes=shared), busy)
        clock.now = now
        clock.run(1.0)
        now = clock.now
        probes += clock.history.count(2) > 0
    assert 2 <= probes <= 6, probes  # 3 s, 6 s, 12 s, 24 s apart: not 40
    light = {1: 0.020, 2: 0.012}
    clock = Clock(ThreadTuner(2, start=1, up_probes=shared), light)
    clock.now = now + shared.wait_s
    clock.run(2.0)
    assert clock.tuner.threads == 2 and shared.lost_at is None  # the load left: 2 again


def test_started_below_the_ceiling_the_tuner_also_tries_fewer():
    """Three of four cores looked free, but the load is heavier than the sample showed:
    one more thread loses, so the next re-check tries one fewer, and keeps it."""
    loaded = {1: 0.040, 2: 0.015, 3: 0.030, 4: 0.200}
    clock = Clock(ThreadTuner(4, start=3, recheck_s=0.5), loaded)
    clock.run(10.0)
    assert clock.tuner.threads == 2


def test_budget_offers_a_ceiling_above_the_free_cores():
    class Pane:
        threads = ceiling = 0

        def set_threads(self, n: int, ceiling: int | None = None) -> None:
            self.threads, self.ceiling = n, ceiling or n

    budget = ThreadBudget(cores=4)
    budget.available = 3  # what free_and_possible says with a light load on one core
    pane = Pane()
    assert budget.acquire(pane) == 3 and (pane.threads, pane.ceiling) == (3, 4)
    budget.release(pane)


def test_budget_shares_and_rebalances():
    class Pane:
        threads = 0

        def set_threads(self, n: int, ceiling: int | None = None) -> None:
            self.threads = n

    budget = ThreadBudget(cores=4)
    a, b = Pane(), Pane()
    assert budget.acquire(a) == 4
    assert budget.acquire(b) == 2 and a.threads == 2
    budget.release(b)
    assert a.threads == 4
    budget.release(a)


@pytest.fixture
def busy_stranger():
    """A process that keeps one core busy and is not ours (its parent exits at once)."""
    launcher = subprocess.run(
        [sys.executable, "-c",
         "import subprocess, sys\n"
         "p = subprocess.Popen([sys.executable, '-c', 'while True: pass'],"
         " stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)\n"
         "print(p.pid)"],
        capture_output=True, text=True, timeout=30, check=True)
    stranger = psutil.Process(int(launcher.stdout.strip()))
    try:
        yield stranger
    finally:
        stranger.kill()
        stranger.wait(10)


def test_free_cores_leaves_out_a_core_another_program_keeps_busy(busy_stranger):
    total = physical_cores()
    assert free_cores(total) <= max(1, total - 1)
    assert free_cores(total) >= 1


@pytest.mark.parametrize(("others", "expected"), [
    (0.3, (2, 2)),  # a little load: both cores
    (0.6, (1, 2)),  # a light load: start on one, two worth trying
    (0.95, (1, 1)),  # a busy core: one, and no probe of two
    (1.7, (1, 1)),
])
def test_free_and_possible_cores_under_other_programs_load(monkeypatch, others, expected):
    from desktop_app.engine import cores

    class Load:
        def others_busy(self) -> float:
            return others

    monkeypatch.setattr(cores, "_SAMPLER", Load())
    assert cores.free_and_possible(2) == expected
