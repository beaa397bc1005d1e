"""One pane's conversation as plain data: turns, their history, and the session that runs them.

The window, export, Verify and the CLI all read this; none of them keeps its own copy of
what a model said. A :class:`PaneSession` owns its model-process handle (made by a
factory: :class:`~desktop_app.engine.worker.ModelWorker` in the app, a scripted fake in tests),
builds each :class:`~desktop_app.engine.protocol.GenerationRequest` from the history and the
pane's settings, runs the blocking event stream on a plain thread that only appends to a
deque, and applies the events to the current :class:`Turn` when the owner calls
:meth:`PaneSession.poll` (the window does so once per frame). So the answer is
accumulated once, here, and thinking time is read from one clock: the model process's.

No Qt in this module (a static check in the test suite keeps it so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from enum import StrEnum
from typing import Any

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.prompting import Turn as Exchange
from desktop_app.engine.protocol import (
    FAILURE_LABELS,
    Delta,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationRequest,
    GenerationResult,
    Loaded,
    Loading,
    PromptSent,
    Sampling,
    ended_still_thinking,
)
from desktop_app.models.catalog import (
    Availability,
    Catalog,
    ModelEntry,
    availability,
    missing_message,
)
from desktop_app.session.generation import (  # the run thread; the window imports these from here
    GenerationRun,
    RunEnded,
    WorkerFactory,
    close_in_background,
    default_worker_factory,
)
from desktop_app.session.generation import wait_for_closing as wait_for_closing
from desktop_app.session.tokens import (
    BRANCH_FIELDS,
    TOP_K,
    Branches,
    BranchSplitter,
    Resuming,
    TokenStep,
    can_branch,
    can_resume,
    continued_result,
    reply_as_written,
    tokens_export,
)
from desktop_app.text.units import format_duration
from desktop_app.verify import Problem, Verdict
from desktop_app.verify.extract import Visible

# ------------------------------------------------------------------------------ settings


@dataclass
class PaneConfig:
    """A pane's remembered settings (``None`` means the catalog's default)."""

    model_id: str = ""
    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    system_prompt: str | None = None
    thinking: bool = True
    show_prompt: bool | None = None
    document_template: str | None = None  # base models: the wrapping, with {question}
    raw: bool = False  # base models: send the prompt as typed, unwrapped
    probabilities: bool = False  # ask for each token's top-k alternatives (off: free)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> PaneConfig:
        """Settings read back from disk; unknown keys and a non-dict are ignored."""
        if not isinstance(data, dict):
            return cls()
        config = cls()
        for key in cls.__dataclass_fields__:
            if key in data:
                setattr(config, key, data[key])
        if not isinstance(config.model_id, str):
            config.model_id = ""
        return config


# ------------------------------------------------------------------------------- turns


class TurnState(StrEnum):
    """Where one turn is; the pane's footer and the turn's view follow it."""

    STARTING = "starting"  # sent; the model process is starting or loading
    THINKING = "thinking"  # the reply so far is thinking
    ANSWERING = "answering"  # the answer is streaming
    DONE = "done"  # Finished arrived (``result.finish_reason`` says how)
    FAILED = "failed"  # Failed arrived, or the turn could not start


TURN_STATE_LABELS: dict[TurnState, str] = {
    TurnState.STARTING: "Loading…",
    TurnState.THINKING: "Thinking…",
    TurnState.ANSWERING: "Generating…",
    TurnState.DONE: "Done",
    TurnState.FAILED: "Failed",
}


@dataclass
class Turn:
    """One prompt and the model's reply, as data (the widgets only draw it)."""

    prompt: str
    problem: Problem | None = None  # a practice problem: Verify checks against its key
    prompt_sent: str = ""
    prompt_notes: tuple[str, ...] = ()  # how the prompt was adapted to the model
    thinking: str = ""
    answer: str = ""
    result: GenerationResult | None = None
    failure: Failed | None = None
    verdict: Verdict | None = None
    state: TurnState = TurnState.STARTING
    loading_detail: str = "starting"
    loaded: Loaded | None = None
    thinking_tokens: int = 0
    answer_tokens: int = 0
    elapsed_s: float = 0.0  # the model process's clock since the generation started
    thinking_s: float | None = None  # how long it thought (same clock)
    has_thinking: bool = False  # the reply has (or starts in) a thinking part
    started_at: float = 0.0  # time.monotonic() when sent: the window's clock between tokens
    max_tokens: int = 0  # the token limit it was sent with (each Continue adds to it)
    probabilities: bool = False  # it was sent asking for token probabilities
    token_steps: list[TokenStep] = field(default_factory=list)  # with probabilities
    reply_prompt: str = ""  # the prompt the first reply continued (branches extend it)
    starts_in_thinking: bool = False  # that prompt ends inside thinking
    thinking_format: str = "none"  # how the reply is split (the model's, unless raw)
    branched_at: tuple[int, str] | None = None  # (token index, chosen text) of this branch
    branches: Branches = field(default_factory=lambda: Branches([]))  # the fields: one
    continue_error: str = ""  # why the last Continue failed (the reply before it is kept)

    @property
    def done(self) -> bool:
        return self.state in (TurnState.DONE, TurnState.FAILED)

    @property
    def thinking_live(self) -> bool:
        return self.state == TurnState.THINKING

    @property
    def tokens(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    @property
    def finish_reason(self) -> FinishReason | None:
        return self.result.finish_reason if self.result is not None else None

    @property
    def still_thinking(self) -> bool:
        """The reply ended inside its thinking (token limit, Stop, no ``</think>``): the
        model never got to its answer, so the thinking is not "done"."""
        return self.result is not None and ended_still_thinking(
            self.result, has_thinking=self.has_thinking, answer=self.answer)

    @property
    def cut_off(self) -> bool:
        """The token limit ended the reply: Continue can extend it."""
        return self.state == TurnState.DONE and self.finish_reason == FinishReason.LENGTH

    def room_to_continue(self, context_length: int) -> bool:
        """Cut off with room left in the model's context for more of the reply."""
        used = (self.result.prompt_tokens if self.result is not None else 0) + self.tokens
        return self.cut_off and max(used, self.max_tokens) + 1 < context_length

    def elapsed_now(self, now: float | None = None) -> float:
        """Seconds since the turn started, ticking between slow tokens: the window's clock,
        never less than the model process's last figure (which replaces it at the end)."""
        if self.done or not self.started_at:
            return self.elapsed_s
        return max(self.elapsed_s, (now if now is not None else time.monotonic())
                   - self.started_at)

    def thinking_header(self, *, live: bool = False, now: float | None = None) -> str:
        """The thinking fold's header for this turn (see :func:`thinking_header`)."""
        seconds = self.thinking_s
        if live and self.state == TurnState.THINKING:
            seconds = self.elapsed_now(now)
        return thinking_header(live, seconds, self.thinking_tokens,
                               still_thinking=self.still_thinking,
                               finish_reason=self.finish_reason)

    def visible_reply(self) -> Visible:
        """What Verify reads: the answer the engine split off, and whether the reply ended
        still thinking (so Verify says so rather than checking nothing)."""
        return Visible(self.answer, still_thinking=self.still_thinking,
                       had_thinking=self.has_thinking)

    @property
    def failure_label(self) -> str:
        """``Out of memory``, ``Could not load the model``… (empty unless failed)."""
        if self.failure is None:
            return ""
        return FAILURE_LABELS.get(FailureKind(self.failure.kind), "Failed")

    def counts_as_history(self) -> bool:
        """Whether a follow-up question sees this exchange (a failed turn is left out)."""
        return (self.state == TurnState.DONE and self.result is not None
                and self.result.finish_reason != FinishReason.ERROR
                and bool(self.answer.strip() or self.thinking))

    def to_dict(self) -> dict[str, Any]:
        """The turn for export: what was asked, sent, thought and answered, and its verdict."""
        result = self.result
        return {
            "prompt": self.prompt,
            "prompt_sent": self.prompt_sent, "prompt_notes": list(self.prompt_notes),
            "thinking": self.thinking,
            "thinking_s": self.thinking_s,
            "thinking_tokens": self.thinking_tokens,
            "thinking_unterminated": bool(result and result.thinking_unterminated),
            "answer": self.answer,
            "answer_tokens": self.answer_tokens,
            "finish_reason": str(result.finish_reason) if result else None,
            "metrics": result.metrics_line() if result else "",
            "error": self.failure.message if self.failure else None,
            "still_thinking": self.still_thinking,
            "verdict": (str(self.verdict.verdict) if self.verdict is not None else None),
            "verdict_detail": None if self.verdict is None else {  # as plain strings
                key: str(getattr(self.verdict, key, "") or "") for key in ("expected", "got", "reason")},
            **tokens_export(self.token_steps, self.branches, self.branched_at),
        }


def thinking_header(live: bool, seconds: float | None, tokens: int, *,
                    still_thinking: bool = False,
                    finish_reason: FinishReason | str | None = None) -> str:
    """``Thinking… 5 s · 120 tokens`` while live, ``Thought for 14 s · 812 tokens`` after,
    and, when the reply ended before the thinking did, says so: ``Still thinking when the
    token limit was reached · 812 tokens``. One wording for the window and the export."""
    secs = "—" if seconds is None else format_duration(seconds)  # never "0 s": "<1 s"
    toks = f"{tokens:,} token{'s' if tokens != 1 else ''}"
    if live:
        return f"Thinking… {secs} · {toks}"
    if still_thinking:
        if finish_reason == FinishReason.LENGTH:
            return f"Still thinking when the token limit was reached · {toks}"
        if finish_reason == FinishReason.CANCELLED:
            return f"Stopped while still thinking · {toks}"
        return f"Still thinking when the reply ended (its thinking never closed) · {toks}"
    if seconds is None:  # a branch: its thinking was written in two runs
        return f"Thought · {toks}"
    return f"Thought for {secs} · {toks}"


@dataclass
class Conversation:
    """A pane's turns in order; the history a new request carries is derived from them."""

    turns: list[Turn] = field(default_factory=list)

    def add(self, prompt: str, problem: Any = None, *, at: int | None = None) -> Turn:
        """A new turn at the end, or at index ``at`` (a retried turn keeps its place)."""
        turn = Turn(prompt=prompt, problem=problem)
        self.turns.insert(len(self.turns) if at is None else at, turn)
        return turn

    def remove(self, turn: Turn) -> None:
        if turn in self.turns:
            self.turns.remove(turn)

    def clear(self) -> None:
        self.turns.clear()

    @property
    def current(self) -> Turn | None:
        return self.turns[-1] if self.turns else None

    def history(self, before: Turn | None = None) -> tuple[Exchange, ...]:
        """The earlier exchanges a request for ``before`` (default: a new turn) carries."""
        turns = self.turns
        if before is not None and before in turns:
            turns = turns[: turns.index(before)]
        return tuple(Exchange(user=t.prompt, assistant=t.answer)
                     for t in turns if t.counts_as_history())


# ----------------------------------------------------------------------------- session


@dataclass(frozen=True)
class Streamed:
    """Text that arrived since the last poll, merged (one append per view per frame)."""

    thinking: str
    answer: str
    delta: Delta  # the last one: running token counts and the process's clock
    tokens: tuple[TokenStep, ...] = ()  # the tokens' probabilities, when asked for


Step = Streamed | Loading | Loaded | PromptSent | Finished | Failed


class PaneSession:
    """One pane: its model and settings, its conversation, and its model process."""

    def __init__(self, catalog: Catalog, config: PaneConfig | None = None, *,
                 worker_factory: WorkerFactory | None = None):
        self.catalog = catalog
        self.config = config or PaneConfig()
        self.conversation = Conversation()
        self.worker_factory: WorkerFactory = worker_factory or default_worker_factory
        self.worker: ModelHandle | None = None
        self.run: GenerationRun | None = None
        self.turn: Turn | None = None  # the turn the running generation fills
        self.closing = False
        self.branch_split: BranchSplitter | None = None  # set while a branch or Continue runs
        self.resuming: Resuming | None = None  # set while a Continue runs

    # -- model and settings

    @property
    def entry(self) -> ModelEntry | None:
        return self.catalog.entries.get(self.config.model_id)

    @property
    def turns(self) -> list[Turn]:
        return self.conversation.turns

    @property
    def running(self) -> bool:
        return self.run is not None

    def model_state(self) -> Availability | None:
        """Whether the model can run now; None if it is not in the catalog. A check that
        fails counts as not downloaded."""
        entry = self.entry
        if entry is None:
            return None
        try:
            return availability(entry)
        except Exception:  # noqa: BLE001 - e.g. an unreadable models folder
            return Availability.NOT_DOWNLOADED

    @property
    def ready(self) -> bool:
        """Runnable now. A model on a server whose answer has not come back yet counts:
        the request itself then says, in one sentence, if the server does not answer."""
        return self.model_state() in (Availability.READY, Availability.CHECKING)

    def set_model(self, model_id: str) -> None:
        """Another model: the old process is closed and the settings are its defaults."""
        if self.running:
            self.stop()
        self.close_worker()
        self.config = PaneConfig(model_id=model_id)

    def set_catalog(self, catalog: Catalog) -> None:
        self.catalog = catalog

    def sampling(self, *, max_tokens: int | None = None, seed: int | None = None) -> Sampling:
        """The sampling the next request uses: the catalog's defaults, then the settings,
        then ``max_tokens``/``seed`` if given (Continue)."""
        entry = self.entry
        assert entry is not None
        cfg = self.config
        return Sampling.for_entry(entry, temperature=cfg.temperature,
                                  max_tokens=max_tokens or cfg.max_tokens,
                                  seed=seed if seed is not None else cfg.seed)

    def request_for(self, prompt: str, before: Turn | None = None, *,
                    max_tokens: int | None = None, seed: int | None = None
                    ) -> GenerationRequest:
        """The request for ``prompt``: the history before ``before`` and the settings."""
        entry = self.entry
        assert entry is not None
        cfg = self.config
        system = cfg.system_prompt if entry.prompt.style == "chat" else None
        document = entry.prompt.style == "document"
        return GenerationRequest(
            prompt=prompt, sampling=self.sampling(max_tokens=max_tokens, seed=seed),
            history=self.conversation.history(before),
            system_prompt=system or None,
            thinking=cfg.thinking if entry.prompt.supports_thinking else True,
            raw=bool(cfg.raw) and document,
            document_template=cfg.document_template if document else None,
            top_logprobs=TOP_K if cfg.probabilities else 0)

    # -- running

    def send(self, prompt: str, problem: Problem | None = None, *, max_tokens: int | None = None,
             seed: int | None = None, at: int | None = None) -> Turn | None:
        """Start a turn (at the end, or at index ``at``: its history is the turns before
        it); None if the pane can't (busy, closing, empty, model not ready).

        A turn that could not start (no process could be made) is returned failed."""
        entry = self.entry
        if (self.running or self.closing or not prompt.strip() or entry is None
                or not self.ready):
            return None
        turn = self.conversation.add(prompt, problem, at=at)
        turn.started_at = time.monotonic()
        return self._start(turn, lambda: self.request_for(prompt, before=turn,
                                                          max_tokens=max_tokens, seed=seed))

    def _start(self, turn: Turn, make_request: Callable[[], GenerationRequest]) -> Turn:
        entry = self.entry
        assert entry is not None
        self.turn = turn
        try:
            if self.worker is None:
                self.worker = self.worker_factory(entry)
            request = make_request()
            turn.max_tokens = request.sampling.max_tokens + (
                self.resuming.max_tokens if self.resuming is not None else 0)
            turn.probabilities = request.top_logprobs > 0
            if self.branch_split is None:
                thinks = entry.prompt.supports_thinking and not request.raw
                turn.thinking_format = entry.prompt.thinking if thinks else "none"
            self.run = GenerationRun(self.worker, request)
        except Exception as exc:  # noqa: BLE001 - e.g. no semaphores in a sandbox
            self.run = None
            self._fail(turn, Failed(message=f"Could not start the model: {exc}",
                                    kind=FailureKind.ERROR))
            return turn
        turn.loading_detail = "sending the prompt" if self.worker.loaded else "starting"
        self.run.start()
        return turn

    def branch(self, turn: Turn, index: int, chosen: str, *, again: int | None = None,
               seed: int | None = None) -> Turn | None:
        """Continue ``turn`` from its token ``index`` with ``chosen`` instead, as a new branch
        sent raw (see :func:`~desktop_app.session.tokens.continuation_prompt`); None if it can't.
        ``again``: the branch shown runs again in its place, with this token limit."""
        entry = self.entry
        if (self.running or self.closing or entry is None or not self.ready
                or turn not in self.turns or not can_branch(entry, turn, index, chosen)):
            return None
        limit = again or max(1, (turn.max_tokens or index + 1) - index - 1)
        stops = self._continuation_stops(turn)
        prompt = turn.branches.begin(turn, index, chosen, TurnState.STARTING, again=bool(again))
        self.branch_split = BranchSplitter.starting(turn)
        base = self.request_for(turn.prompt, before=turn, max_tokens=limit, seed=seed)
        return self._start(turn, lambda: replace(
            base, prompt=prompt, raw=True, history=(), system_prompt=None,
            document_template=None, stop=stops, top_logprobs=TOP_K))

    def _continuation_stops(self, turn: Turn) -> tuple[str, ...]:
        """A raw continuation of a wrapped document stops where the reply would have."""
        entry = self.entry
        assert entry is not None
        return (tuple(entry.prompt.stop) if entry.prompt.style == "document"
                and turn.reply_prompt != turn.prompt else ())

    def can_resume(self, turn: Turn) -> bool:
        """Whether Continue resumes ``turn`` in place (see :meth:`extend`)."""
        return self.entry is not None and can_resume(self.entry, turn)

    def extend(self, turn: Turn) -> Turn | None:
        """Continue a reply the token limit cut off, in the same turn: the exact prompt it
        had plus the reply so far (thinking markup included) is sent raw, so the model goes
        on from its last token; only that token is evaluated again (the rest is in the KV
        cache), and the pane's limit applies once more. A served chat model, whose prompt
        text is not known, runs the reply again with a larger limit instead."""
        entry = self.entry
        if (self.running or self.closing or entry is None or not self.ready
                or turn not in self.turns or not turn.cut_off or turn.result is None):
            return None
        so_far = reply_as_written(turn)
        if so_far is None or not can_resume(entry, turn):
            return self._run_again_longer(turn)
        worker = self.worker
        if worker is not None and (worker.loaded is None or not worker.alive):
            self.close_worker()
        before = {name: getattr(turn, name) for name in BRANCH_FIELDS}
        before["token_steps"] = list(turn.token_steps)  # appended to in place
        self.resuming = Resuming(before, turn.result, so_far, turn.elapsed_s,
                                 turn.thinking_s or 0.0, turn.max_tokens)
        self.branch_split = BranchSplitter.resuming(turn, so_far)
        turn.state, turn.verdict, turn.continue_error = TurnState.STARTING, None, ""
        turn.started_at = time.monotonic() - turn.elapsed_s  # the clock goes on
        base = self.request_for(turn.prompt, before=turn)
        return self._start(turn, lambda: replace(
            base, prompt=turn.reply_prompt + so_far, raw=True, history=(), system_prompt=None,
            document_template=None, stop=self._continuation_stops(turn),
            top_logprobs=TOP_K if turn.probabilities else 0, reply_so_far=so_far))

    def _run_again_longer(self, turn: Turn) -> Turn | None:
        """Continue where the reply can't be resumed: the same prompt, seed and settings
        with twice the limit, so the reply is written again as far as it went and carries
        on. The engine clamps the limit to the model's context."""
        seed = turn.result.seed if turn.result is not None else None
        limit = max(turn.max_tokens, turn.tokens, 1) * 2
        if self.entry is not None:
            limit = min(limit, self.entry.context_length)
        return self.retry(turn, max_tokens=limit, seed=seed)

    def stop(self) -> None:
        if self.run is not None:
            self.run.stop()

    def poll(self) -> tuple[list[Step], bool]:
        """Apply the events that arrived to the current turn (call it on one thread).

        Returns what changed, in order, with consecutive Deltas merged, and whether the
        generation has ended (the session is then idle again)."""
        run = self.run
        if run is None:
            return [], True
        steps: list[Step] = []
        thinking: list[str] = []
        answer: list[str] = []
        tokens: list[TokenStep] = []
        last: Delta | None = None
        ended = False

        def flush() -> None:
            nonlocal thinking, answer, tokens, last
            if last is not None:
                steps.append(Streamed("".join(thinking), "".join(answer), last, tuple(tokens)))
            thinking, answer, tokens, last = [], [], [], None

        while run.events:
            event = run.events.popleft()
            if isinstance(event, Delta):
                shown_thinking, shown_answer, token = self._apply_delta(event)
                thinking.append(shown_thinking)
                answer.append(shown_answer)
                tokens.extend([token] if token is not None else [])
                last = event
                continue
            flush()
            if isinstance(event, RunEnded):
                ended = True
                break
            self._apply(event)
            steps.append(event)
        flush()
        if ended:
            self.run = None
            if self.turn is not None and not self.turn.done:  # ended without an end event
                self._fail(self.turn, Failed(message="The generation ended without a result.",
                                             kind=FailureKind.ERROR))
            self.branch_split = None
            self.resuming = None
        return steps, ended

    def _apply_delta(self, delta: Delta) -> tuple[str, str, TokenStep | None]:
        """Apply one Delta; returns the thinking and answer text it added and its token."""
        turn = self.turn
        if turn is None:
            return "", "", None
        thinking, answer = delta.thinking, delta.answer
        thinking_tokens, answer_tokens = delta.thinking_tokens, delta.answer_tokens
        token_thinking = thinking_tokens > turn.thinking_tokens
        split = self.branch_split
        if split is not None:  # a raw continuation: split it as the original reply was
            thinking, answer, token_thinking, new = split.feed_delta(
                thinking + answer, delta.thinking_tokens + delta.answer_tokens)
            thinking_tokens = turn.thinking_tokens + (new if token_thinking else 0)
            answer_tokens = turn.answer_tokens + (0 if token_thinking else new)
        if thinking:
            turn.thinking += thinking
            turn.has_thinking = True
            if turn.state != TurnState.ANSWERING:
                turn.state = TurnState.THINKING
        # the process's clock; a Continue's goes on from where the reply was cut off
        before = self.resuming
        elapsed = delta.elapsed_s + (before.elapsed_s if before is not None else 0.0)
        thought = delta.elapsed_s + (before.thinking_s if before is not None else 0.0)
        if answer:
            if turn.state == TurnState.THINKING:
                turn.thinking_s = thought  # thinking is over
            turn.answer += answer
            turn.state = TurnState.ANSWERING
        elif turn.state == TurnState.THINKING:
            turn.thinking_s = thought
            if split is not None and not split.in_thinking:  # its closing tag: thought
                turn.state = TurnState.ANSWERING
        turn.thinking_tokens = thinking_tokens
        turn.answer_tokens = answer_tokens
        turn.elapsed_s = elapsed
        token = None
        if delta.logprob is not None:
            token = TokenStep(delta.logprob, thinking=token_thinking)
            turn.token_steps.append(token)
        return thinking, answer, token

    def _apply(self, event: Event) -> None:
        turn = self.turn
        if turn is None:
            return
        if isinstance(event, Loading):
            turn.loading_detail = event.detail
        elif isinstance(event, Loaded):
            turn.loaded = event
            turn.loading_detail = "sending the prompt"
        elif isinstance(event, PromptSent):
            if self.resuming is None:  # a Continue's prompt is the turn's plus its reply
                turn.prompt_sent = event.text
            if self.branch_split is not None:  # the reply so far decides where it is
                turn.state = (TurnState.THINKING if self.branch_split.in_thinking
                              else TurnState.ANSWERING)
                return
            turn.reply_prompt, turn.starts_in_thinking = event.text, event.starts_in_thinking
            turn.prompt_notes = event.notes  # a branch's raw continuation keeps them
            if event.starts_in_thinking:
                turn.has_thinking = True
                turn.state = TurnState.THINKING
                turn.thinking_s = 0.0
            else:
                turn.state = TurnState.ANSWERING
        elif isinstance(event, Finished):
            result = event.result
            resuming = self.resuming
            if (resuming is not None and result.finish_reason == FinishReason.CANCELLED
                    and not result.thinking_tokens + result.answer_tokens):
                self._put_back(turn, resuming)  # stopped before a token: still cut off
                return
            if self.branch_split is not None:
                result = self.branch_split.whole_result(turn, result)
            if self.resuming is not None:
                result = continued_result(self.resuming, event.result, result, turn)
            turn.result = result
            if result.thinking_s is not None:
                turn.thinking_s = result.thinking_s  # the process's own measure, exact
            turn.thinking_tokens = result.thinking_tokens or turn.thinking_tokens
            turn.answer_tokens = result.answer_tokens or turn.answer_tokens
            turn.state = TurnState.DONE
        elif isinstance(event, Failed):
            self._fail(turn, event)

    def _fail(self, turn: Turn, failed: Failed) -> None:
        resuming = self.resuming
        if resuming is not None:  # a Continue failed: the reply before it stays as it was
            self._put_back(turn, resuming)
            turn.continue_error = (f"Continue failed: {failed.message.rstrip('.')}; "
                                   "the reply before it is kept.")
        else:
            turn.failure = failed
            if failed.result is not None:
                turn.result = failed.result
            turn.state = TurnState.FAILED
        worker = self.worker
        if FailureKind(failed.kind) in (FailureKind.CRASH, FailureKind.OOM, FailureKind.LOAD,
                                        FailureKind.MISSING) or not (worker and worker.alive):
            self.close_worker()  # the next send starts a fresh process

    def _put_back(self, turn: Turn, resuming: Resuming) -> None:
        """The turn as it was before a Continue that added nothing."""
        self.resuming = None
        for name, value in resuming.before.items():
            setattr(turn, name, value)

    def abandon(self, reason: str) -> None:
        """Showing the reply broke: end the run, start afresh next time, fail the turn."""
        run, self.run = self.run, None
        self.branch_split = self.resuming = None
        if run is not None:
            run.stop()
        self.close_worker()  # it may still be streaming the abandoned run
        turn = self.turn
        if turn is not None and turn.failure is None:  # even if its Finished had arrived
            turn.failure = Failed(message=reason, kind=FailureKind.ERROR)
            turn.state = TurnState.FAILED

    def retry(self, turn: Turn, *, max_tokens: int | None = None,
              seed: int | None = None) -> Turn | None:
        """Send ``turn``'s prompt again (a fresh process if the old one died), or run the
        branch shown again from its token; the turn's other branches stay either way."""
        if self.running:
            return None
        worker = self.worker
        if worker is not None and (worker.loaded is None or not worker.alive):
            self.close_worker()
        if turn.branched_at is not None and turn in self.turns:
            return self.branch(turn, *turn.branched_at, again=max_tokens or turn.max_tokens,
                               seed=seed)
        place = self.turns.index(turn) if turn in self.turns else None
        self.remove(turn)
        new = self.send(turn.prompt, turn.problem, max_tokens=max_tokens, seed=seed, at=place)
        if new is not None and turn.branches.count > 1:
            new.branches = turn.branches  # the new reply is the branch shown
        return new

    def remove(self, turn: Turn) -> None:
        self.conversation.remove(turn)
        if self.turn is turn:
            self.turn = None

    def clear(self) -> None:
        """Forget the conversation; while generating, stop too (the run's last events
        land on no turn, and the next send waits for it to end)."""
        if self.running:
            self.stop()
        self.conversation.clear()
        self.turn = None

    def restore(self, turns: list[Turn]) -> None:
        """Put back a removed pane's turns (undo); a turn cut short by the removal is
        marked stopped."""
        for turn in turns:
            if not turn.done:
                turn.failure = Failed(message="Stopped when the pane was removed.",
                                      kind=FailureKind.ERROR)
                turn.state = TurnState.FAILED
            self.conversation.turns.append(turn)

    # -- verify

    def verify(self, turn: Turn) -> Verdict:
        """Check the turn's answer in the sandbox (blocking: call it off the GUI thread)."""
        from desktop_app.verify import VerdictState, verify_reply

        try:
            return verify_reply(turn.visible_reply(), turn.problem)
        except Exception as exc:  # noqa: BLE001 - the checker's own bug is a verdict too
            return Verdict(verdict=VerdictState.ERROR, reason=f"The checker failed: {exc}")

    # -- export and teardown

    def export(self) -> dict[str, Any]:
        """The pane for export: model, role and every turn as data."""
        entry = self.entry
        state = self.model_state()
        missing = ""
        if entry is None:
            missing = f"The model '{self.config.model_id}' is not in the catalog."
        elif state != Availability.READY and state is not None:
            missing = missing_message(entry, state)
        return {
            "model": entry.name if entry else self.config.model_id,
            "model_id": self.config.model_id,
            "role": entry.role if entry else "",
            "missing": missing,  # why the pane could not run, if it could not
            "turns": [turn.to_dict() for turn in self.turns],
        }

    def close_worker(self) -> None:
        worker, self.worker = self.worker, None
        close_in_background(worker)

    def background_threads(self) -> list[threading.Thread]:
        run = self.run
        return [run.thread] if run is not None and run.thread.is_alive() else []

    def shutdown(self) -> ModelHandle | None:
        """Stop generating and hand back the worker for the caller to close."""
        self.closing = True
        if self.run is not None:
            self.run.stop()
        worker, self.worker = self.worker, None
        return worker
