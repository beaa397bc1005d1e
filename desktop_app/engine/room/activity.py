"""What a room has seen: which laptops are connected, what they asked and how each
question went, which model files went out. The teacher's window and ``triptych serve``
show it; the request threads write it. A pure read for whoever shows it (a lock, no
waiting on the network)."""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum

from desktop_app.text.i18n import N_, _

RECENT_S = 120.0  # a laptop counts as connected while it was heard from this recently
KEEP_ASKS = 200  # questions remembered (the latest)
QUESTION_CHARS = 160  # of each question, kept and shown


class AskState(StrEnum):
    """How a student's question fared in the room."""

    WAITING = "waiting"
    ANSWERING = "answering"
    ANSWERED = "answered"
    LEFT = "left"  # the student stopped it or closed the pane
    BROKEN_OFF = "broken-off"  # the model server failed or the room stopped mid-answer
    REFUSED = "refused"  # a limit, an unknown model, a bad request


ASK_LABELS: dict[AskState, str] = {
    AskState.WAITING: N_("waiting in the queue"),
    AskState.ANSWERING: N_("answering"),
    AskState.ANSWERED: N_("answered"),
    AskState.LEFT: N_("stopped by the student"),
    AskState.BROKEN_OFF: N_("broken off"),
    AskState.REFUSED: N_("refused"),
}


@dataclass(frozen=True)
class Ask:
    """One question a laptop sent."""

    number: int
    at: float  # wall-clock time it arrived
    client: str
    model: str
    question: str
    state: AskState = AskState.WAITING
    seconds: float | None = None  # from arrival to the end, once over
    why: str = ""  # for a refusal or a break: one sentence

    @property
    def label(self) -> str:
        return _(ASK_LABELS[self.state])

    def to_dict(self) -> dict[str, object]:
        return {"number": self.number, "at": round(self.at, 3), "client": self.client,
                "model": self.model, "question": self.question, "state": str(self.state),
                "seconds": None if self.seconds is None else round(self.seconds, 2),
                "why": self.why}


def question_of(body: dict[str, object]) -> str:
    """The question a request carries: the last user message of a chat, else the end of
    a completion prompt (a base model's prompt ends with the question it wraps)."""
    text = ""
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                content = message.get("content")
                text = content if isinstance(content, str) else str(content)
                break
    elif isinstance(body.get("prompt"), str):
        prompt = str(body["prompt"]).rstrip()
        text = prompt.rsplit("Question:", 1)[-1] if "Question:" in prompt else prompt[-200:]
        text = text.removesuffix("Answer:")
    words = " ".join(text.split())
    return words[:QUESTION_CHARS] + ("…" if len(words) > QUESTION_CHARS else "")


class Activity:
    """The room's record, shared by its request threads."""

    def __init__(self, on_ask: Callable[[Ask], None] | None = None):
        self.on_ask = on_ask  # called (on a request thread) when a question arrives or ends
        self._seen: dict[str, float] = {}
        self._asks: deque[Ask] = deque(maxlen=KEEP_ASKS)
        self._started: dict[int, float] = {}
        self._numbers = itertools.count(1)
        self.files_sent = 0  # whole files handed out
        self.bytes_sent = 0
        self._lock = threading.Lock()

    def seen(self, client: str) -> None:
        with self._lock:
            self._seen[client] = time.monotonic()

    def connected(self) -> int:
        """Laptops heard from in the last :data:`RECENT_S` seconds."""
        now = time.monotonic()
        with self._lock:
            return sum(1 for at in self._seen.values() if now - at < RECENT_S)

    def ask(self, client: str, model: str, question: str) -> int:
        """Record a question; returns its number."""
        with self._lock:
            number = next(self._numbers)
            ask = Ask(number, time.time(), client, model, question)
            self._asks.append(ask)
            self._started[number] = time.monotonic()
        self._tell(ask)
        return number

    def update(self, number: int, state: AskState, why: str = "") -> None:
        """Move a question on; an ending state records how long it took."""
        with self._lock:
            for index, ask in enumerate(self._asks):
                if ask.number == number:
                    over = state not in (AskState.WAITING, AskState.ANSWERING)
                    started = self._started.pop(number, None) if over else None
                    seconds = time.monotonic() - started if started is not None else None
                    ask = replace(ask, state=state, seconds=seconds, why=why)
                    self._asks[index] = ask
                    break
            else:
                return
        if state != AskState.ANSWERING:
            self._tell(ask)

    def _tell(self, ask: Ask) -> None:
        if self.on_ask is not None:
            self.on_ask(ask)

    def file_sent(self, size: int, whole: bool) -> None:
        with self._lock:
            self.bytes_sent += size
            self.files_sent += int(whole)

    def asks(self) -> tuple[Ask, ...]:
        """The questions, the latest first."""
        with self._lock:
            return tuple(reversed(self._asks))
