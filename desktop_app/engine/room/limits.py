"""How a room shares one model server among a classroom: a fair queue, and limits per
laptop.

The model server answers one request at a time, so the room hands it one at a time,
choosing the next by laptop, not by arrival: the laptop served longest ago goes next,
its oldest request first. A student who starts Rollouts ×16 queues sixteen requests,
and the others still get a turn after each of them. Per laptop (client address) there
are also a request rate (a token bucket), a cap on requests waiting, a cap on files
being fetched at once, and a cap on refused keys (so a six-character key cannot be
guessed). Plain threading: the room's request threads wait here, never the window.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field

REQUESTS_PER_MINUTE = 120  # steady rate per laptop (a burst of as many is allowed)
MAX_WAITING = 16  # requests one laptop may have queued or running (Rollouts ×16 fits)
MAX_FILES = 2  # model files one laptop may fetch at once
BAD_KEYS_PER_MINUTE = 10  # refused keys per laptop before it must wait
QUEUE_SLOTS = 1  # requests handed to the model server at once: it runs one at a time


class Refused(Exception):
    """A limit was reached: one sentence, and how long to wait (``Retry-After``)."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class _Bucket:
    tokens: float
    at: float


class RateLimits:
    """Token buckets per laptop: requests, and refused keys."""

    def __init__(self, per_minute: int = REQUESTS_PER_MINUTE,
                 bad_keys_per_minute: int = BAD_KEYS_PER_MINUTE):
        self.per_minute = per_minute
        self.bad_keys_per_minute = bad_keys_per_minute
        self._requests: dict[str, _Bucket] = {}
        self._bad_keys: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _take(buckets: dict[str, _Bucket], client: str, per_minute: int, now: float
              ) -> float:
        """Take one token; return 0, or the seconds until one is there (none taken)."""
        bucket = buckets.setdefault(client, _Bucket(float(per_minute), now))
        rate = per_minute / 60.0
        bucket.tokens = min(float(per_minute), bucket.tokens + (now - bucket.at) * rate)
        bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / rate

    def request(self, client: str) -> None:
        """Count a request from *client*; Refused once it asks faster than the limit, or
        while it is barred for refused keys."""
        now = time.monotonic()
        with self._lock:
            barred = self._bad_keys.get(client)
            if barred is not None and barred.tokens < 1.0:
                rate = self.bad_keys_per_minute / 60.0
                wait = (1.0 - min(1.0, barred.tokens + (now - barred.at) * rate)) / rate
                if wait > 0:
                    raise Refused("Too many wrong keys from this laptop; wait a minute and "
                                  "check the key the teacher shows.", wait)
            wait = self._take(self._requests, client, self.per_minute, now)
        if wait:
            raise Refused(f"This laptop sent more than {self.per_minute} requests a minute; "
                          f"the room asks it to slow down.", wait)

    def bad_key(self, client: str) -> None:
        """Count a refused key from *client*."""
        with self._lock:
            self._take(self._bad_keys, client, self.bad_keys_per_minute, time.monotonic())


class Turn:
    """A request's place in the queue: :meth:`wait` until it may run, :meth:`done` after."""

    def __init__(self, queue: FairQueue, client: str, number: int):
        self.queue, self.client, self.number = queue, client, number
        self.running = False
        self.finished = False
        self._ready = threading.Event()

    def wait(self, timeout: float | None) -> bool:
        """True once it is this request's turn (False on timeout; Refused if the room
        closed meanwhile)."""
        ready = self._ready.wait(timeout)
        if ready and not self.running:
            raise Refused("The room stopped serving.", 0.0)
        return ready

    def done(self) -> None:
        """The request is over (answered, failed or abandoned): free its place."""
        self.queue._done(self)


@dataclass
class _Client:
    waiting: deque[Turn] = field(default_factory=deque)
    served_at: float = 0.0  # when it last got a turn (0: never)
    holding: int = 0  # queued or running


class FairQueue:
    """Requests wait here for the model server, the laptop served longest ago first."""

    def __init__(self, slots: int = QUEUE_SLOTS, max_waiting: int = MAX_WAITING):
        self.slots, self.max_waiting = slots, max_waiting
        self._clients: dict[str, _Client] = {}
        self._running = 0
        self._closed = False
        self._numbers = itertools.count()
        self._lock = threading.Lock()

    def enter(self, client: str) -> Turn:
        """Queue a request from *client*; Refused when it already has too many."""
        with self._lock:
            if self._closed:
                raise Refused("The room stopped serving.", 0.0)
            record = self._clients.setdefault(client, _Client())
            if record.holding >= self.max_waiting:
                raise Refused(f"This laptop already has {self.max_waiting} questions waiting "
                              f"in the room's queue; wait for their answers.", 5.0)
            record.holding += 1
            turn = Turn(self, client, next(self._numbers))
            record.waiting.append(turn)
            self._dispatch()
        return turn

    def _dispatch(self) -> None:
        """Hand free slots to the laptops served longest ago (lock held)."""
        while self._running < self.slots:
            candidates = [(record.served_at, record.waiting[0].number, record)
                          for record in self._clients.values() if record.waiting]
            if not candidates:
                return
            _, _, record = min(candidates, key=lambda item: (item[0], item[1]))
            turn = record.waiting.popleft()
            record.served_at = time.monotonic()
            turn.running = True
            self._running += 1
            turn._ready.set()

    def _done(self, turn: Turn) -> None:
        with self._lock:
            if turn.finished:
                return
            turn.finished = True
            record = self._clients.get(turn.client)
            if record is not None:
                record.holding -= 1
                if turn in record.waiting:
                    record.waiting.remove(turn)
            if turn.running:
                self._running -= 1
            self._dispatch()

    def counts(self) -> tuple[int, int]:
        """(running, waiting) now."""
        with self._lock:
            return self._running, sum(len(r.waiting) for r in self._clients.values())

    def close(self) -> None:
        """Stop: every waiting request is woken and told the room stopped."""
        with self._lock:
            self._closed = True
            for record in self._clients.values():
                for turn in record.waiting:
                    turn._ready.set()  # running is False: wait() raises Refused


class FileSlots:
    """At most :data:`MAX_FILES` model files fetched at once per laptop."""

    def __init__(self, per_client: int = MAX_FILES):
        self.per_client = per_client
        self._taken: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, client: str) -> None:
        with self._lock:
            if self._taken.get(client, 0) >= self.per_client:
                raise Refused(f"This laptop is already fetching {self.per_client} model files "
                              f"from the room; one at a time is faster for everyone.", 10.0)
            self._taken[client] = self._taken.get(client, 0) + 1

    def give(self, client: str) -> None:
        with self._lock:
            self._taken[client] = max(0, self._taken.get(client, 0) - 1)

    def active(self) -> int:
        with self._lock:
            return sum(self._taken.values())
