"""How many cores a model may use right now, and how the panes share them.

Oversubscribing is the one thing that makes local inference collapse: llama.cpp's worker
threads wait for each other at every graph barrier, so a single thread that the OS
preempts (for a browser tab, a recorder, another pane) stalls them all. Everything here
exists to keep ``threads of all panes <= cores actually free``:

- :func:`physical_cores` — the physical cores this process may run on (psutil; affinity);
- :func:`free_cores` — those minus what *other* processes are using right now;
- :class:`ThreadBudget` — splits the free cores among the panes generating at once and
  re-balances as they start and finish.

The worker process then adapts within its share (see ``backends.llama.ThreadTuner``).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import psutil


def physical_cores() -> int:
    """Physical cores (not hyper-threads) among the CPUs this process may run on."""
    logical = psutil.cpu_count(logical=True) or os.cpu_count() or 1
    physical = psutil.cpu_count(logical=False) or logical
    allowed = _allowed_cpus()
    if allowed is None or allowed >= logical:
        return max(1, physical)
    # restricted by affinity: assume the allowed CPUs are as hyper-threaded as the machine
    return max(1, round(allowed * physical / logical))


def _allowed_cpus() -> int | None:
    try:
        return len(psutil.Process().cpu_affinity() or [])
    except (AttributeError, psutil.Error, OSError):  # macOS has no affinity API
        return None


class _LoadSampler:
    """CPU time used by processes other than ours, in cores, between two readings.

    Reading twice within a few seconds reuses the previous reading as the start of the
    window, so asking often costs nothing; otherwise it samples for ``window`` seconds.
    """

    def __init__(self, window: float = 0.1, reuse_for: float = 5.0):
        self.window = window
        self.reuse_for = reuse_for
        self._lock = threading.Lock()
        self._last: tuple[float, float, float] | None = None  # (wall, busy, ours)

    @staticmethod
    def _reading() -> tuple[float, float, float]:
        times = psutil.cpu_times()
        busy = sum(times) - times.idle - getattr(times, "iowait", 0.0)
        return time.monotonic(), busy, _our_cpu_seconds()

    def others_busy(self) -> float:
        with self._lock:
            now = self._reading()
            start = self._last
            if start is None or now[0] - start[0] > self.reuse_for or now[0] - start[0] < 0.05:
                start = now
                time.sleep(self.window)
                now = self._reading()
            self._last = now
        wall = now[0] - start[0]
        if wall <= 0:
            return 0.0
        others = (now[1] - start[1]) - (now[2] - start[2])
        return max(0.0, others / wall)


def _our_cpu_seconds() -> float:
    """CPU seconds of this process and every process it started (the model workers)."""
    total = 0.0
    try:
        me = psutil.Process()
        family = [me, *me.children(recursive=True)]
    except psutil.Error:
        return 0.0
    for process in family:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


_SAMPLER = _LoadSampler()


def free_cores(cores: int | None = None) -> int:
    """Physical cores not kept busy by other programs right now (at least one).

    A core counts as taken when another process used more than 60 % of one over the
    sampled window; our own model processes are not "other".
    """
    return free_and_possible(cores)[0]


def free_and_possible(cores: int | None = None) -> tuple[int, int]:
    """(free cores, cores worth trying), from one sample of other programs' load.

    Free: a core another program used more than 60 % of counts as taken (where a pane
    starts). Worth trying: only a core used 90 % or more is surely taken; one used less
    (a light load) may still make a thread more faster, which the thread tuner measures.
    Measured on 2 cores: with a process using 60 % of one core, native llama.cpp's best
    was 2 threads; with one using all of it, 2 threads fell to a few tokens/s and every
    probe of 2 cost a fifth of a short reply.
    """
    total = cores or physical_cores()
    others = _SAMPLER.others_busy()
    return max(1, total - int(others + 0.4)), max(1, total - int(others + 0.1))


class ThreadUser(Protocol):
    """Anything that runs threads on the budget (a ModelWorker): ``n_threads`` to start
    with, up to ``ceiling`` to try (its share of every core, busy ones included)."""

    def set_threads(self, n_threads: int, ceiling: int | None = None) -> None: ...


class ThreadBudget:
    """Shares the free cores among the workers generating right now.

    Each active worker gets ``free // active`` threads (at least one); when a pane
    finishes, the others get its cores back mid-generation. With ``measure_load`` the
    free cores are re-counted (other programs' load) each time a pane starts; a fixed
    budget (``cores=N`` given, as the benchmark and tests use) counts exactly N.
    """

    def __init__(self, cores: int | None = None, *, measure_load: bool | None = None):
        self.cores = cores or physical_cores()
        self.measure_load = cores is None if measure_load is None else measure_load
        self.available = self.cores
        self.possible = self.cores  # cores worth trying (free_and_possible)
        self._lock = threading.Lock()
        self._active: list[ThreadUser] = []

    def share(self, active: int) -> int:
        return max(1, self.available // max(1, active))

    def ceiling(self, active: int) -> int:
        """The most threads a pane may try: its share of the cores not surely taken. A
        light load of another program looks like a taken core to the start share, so
        the tuner starts at :meth:`share` and measures whether one more thread is faster."""
        return max(self.share(active), self.possible // max(1, active))

    def acquire(self, worker: ThreadUser) -> int:
        if self.measure_load:
            # Outside the lock: sampling may sleep a tenth of a second.
            self.available, self.possible = free_and_possible(self.cores)
        with self._lock:
            if worker not in self._active:
                self._active.append(worker)
            self._rebalance()
            return self.share(len(self._active))

    def release(self, worker: ThreadUser) -> None:
        with self._lock:
            if worker in self._active:
                self._active.remove(worker)
            self._rebalance()

    def _rebalance(self) -> None:
        threads = self.share(len(self._active))
        ceiling = self.ceiling(len(self._active))
        for active in self._active:
            active.set_threads(threads, ceiling)


_DEFAULT_BUDGET: ThreadBudget | None = None


def default_budget() -> ThreadBudget:
    """The process-wide budget all panes share."""
    global _DEFAULT_BUDGET
    if _DEFAULT_BUDGET is None:
        _DEFAULT_BUDGET = ThreadBudget()
    return _DEFAULT_BUDGET


@dataclass
class UpProbes:
    """How probes of one thread more than the free cores went, shared by the tuners of one
    model's generations (like ``fastest``): a probe that loses waits twice as long before
    the next, across replies, so a load that makes more threads slow costs one probe now
    and then, not one in every reply."""

    base_wait_s: float = 3.0
    max_wait_s: float = 48.0
    wait_s: float = 3.0
    lost_at: float | None = None

    def allowed(self, now: float) -> bool:
        return self.lost_at is None or now - self.lost_at >= self.wait_s

    def lost(self, now: float) -> None:
        self.wait_s = self.base_wait_s if self.lost_at is None else min(self.max_wait_s,
                                                                        self.wait_s * 2)
        self.lost_at = now

    def won(self) -> None:
        self.lost_at, self.wait_s = None, self.base_wait_s


class ThreadTuner:
    """Finds the fastest thread count within a ceiling from measured per-token time.

    A generation starts at the ceiling (its share of the free cores). After a short
    window the tuner tries one thread fewer and keeps whichever was faster per token
    (going further down while that keeps winning); then it holds, and every
    ``recheck_s`` measures again, since other programs come and go: below the ceiling
    it probes one thread more; at the ceiling it probes one fewer only when the count
    has slowed from its best (``fastest``) or another count was ever faster. A probe that loses doubles the wait
    before the next (up to ``max_recheck_s``): under contention a thread too many can
    cost 10x per token (measured: SmolLM2 on 2 cores with one busy process, 2 threads
    3.6-10 tok/s, 1 thread 41-55), because llama.cpp's threads wait for each other at
    every barrier and one preempted thread stalls every token.
    """

    def __init__(self, ceiling: int, *, start: int | None = None, window_tokens: int = 8,
                 window_s: float = 0.25, recheck_s: float = 3.0, max_recheck_s: float = 24.0,
                 margin: float = 0.03, fastest: dict[int, float] | None = None,
                 slower: float = 0.2, up_probes: UpProbes | None = None):
        """``fastest``: the best per-token time seen at each thread count, shared by the
        tuners of one model's generations. At the ceiling, a count that runs within
        ``slower`` of its best, with no other count ever faster, is not probed: the
        machine is as quiet as it has been, and a probe of one thread fewer costs a short
        generation several percent (8 tokens at half speed). Without it (the first generation), the tuner probes as before.

        ``start``: the count to begin with when it is below the ceiling (the free cores
        looked fewer than the share of every core): the first probe then goes one thread
        up, since under a light load of another program more threads can still be
        faster (measured in ``triptych bench --contention``)."""
        self.fastest = fastest if fastest is not None else {}
        self.up_probes = up_probes if up_probes is not None else UpProbes()
        self.slower = slower
        self.window_tokens = window_tokens
        self.window_s = window_s
        self.base_recheck_s = self.recheck_s = recheck_s
        self.max_recheck_s = max_recheck_s
        self.margin = margin
        self.ceiling = max(1, ceiling)
        self.start = min(self.ceiling, max(1, start or self.ceiling))
        self.threads = self.start
        self._per_token: dict[int, float] = {}
        self._probe_from: int | None = None  # the count the running probe is compared with
        self._held_since: float | None = None
        self._window_start: float | None = None
        self._window_tokens = 0
        # the first probe goes down from the ceiling (up from a start below it); later
        # re-checks go up
        self._explored = self.start < self.ceiling
        self._up_lost = False  # the last probe tried one thread more and lost

    def set_ceiling(self, ceiling: int, start: int | None = None) -> int:
        """The budget changed (a pane started or finished): start again from the new share."""
        ceiling = max(1, ceiling)
        start = min(ceiling, max(1, start or ceiling))
        if ceiling != self.ceiling or start != self.start:
            self.ceiling, self.start, self.threads = ceiling, start, start
            self._per_token.clear()
            self._probe_from = self._held_since = self._window_start = None
            self.recheck_s = self.base_recheck_s
            self._explored = start < ceiling
            self._up_lost = False
        return self.threads

    def observe(self, now: float) -> int:
        """Call once per generated token; returns the thread count to use from now on."""
        if self._held_since is not None:
            if now - self._held_since < self.recheck_s:
                return self.threads
            self._held_since = None  # time to re-check: measure the current count afresh
            self._window_start = None
        if self._window_start is None:
            self._window_start, self._window_tokens = now, 0
            return self.threads
        self._window_tokens += 1
        elapsed = now - self._window_start
        if self._window_tokens < self.window_tokens and elapsed < self.window_s:
            return self.threads
        measured, counted = elapsed / self._window_tokens, self.threads
        self._per_token[counted] = measured
        self._window_start, self._window_tokens = now, 0
        best = self.fastest.get(counted)
        threads = self._decide(now, best)
        self.fastest[counted] = measured if best is None else min(best, measured)
        return threads

    def _decide(self, now: float, best: float | None = None) -> int:
        current = self.threads
        if self._probe_from is None and current >= self.ceiling and best is not None:
            measured = self._per_token[current]
            elsewhere = min((t for c, t in self.fastest.items() if c != current),
                            default=float("inf"))
            if measured <= best * (1 + self.slower) and elsewhere > measured * (1 - self.margin):
                return self._hold(now)  # as fast as it has been, and no count was faster
        if self._probe_from is None:  # the current count is measured: probe a neighbour
            if not self._explored or current >= self.ceiling or self._up_lost:
                neighbour = current - 1  # (after one more thread lost: try one fewer once)
            elif current >= self.start and not self.up_probes.allowed(now):
                return self._hold(now)  # one more lost lately, in this reply or another
            else:
                neighbour = current + 1
            self._up_lost = False
            self._explored = True
            if not 1 <= neighbour <= self.ceiling:
                return self._hold(now)
            self._probe_from, self.threads = current, neighbour
            return self.threads
        before = self._probe_from
        self._probe_from = None
        if self._per_token[current] < self._per_token[before] * (1 - self.margin):
            self.recheck_s = self.base_recheck_s
            if current > before >= self.start:
                self.up_probes.won()
            step = current - before  # the direction that won: keep going while in range
            if 1 <= current + step <= self.ceiling:
                self._probe_from, self.threads = current, current + step
                return self.threads
            return self._hold(now)
        self.threads = before  # the probe lost: wait longer before the next one
        self.recheck_s = min(self.max_recheck_s, self.recheck_s * 2)
        if current > before >= self.start:
            self.up_probes.lost(now)
        self._up_lost = current > before and before > 1  # next re-check: one fewer
        return self._hold(now)

    def _hold(self, now: float) -> int:
        self._held_since = now
        self._per_token.clear()
        return self.threads
