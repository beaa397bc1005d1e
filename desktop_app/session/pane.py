"""A pane's session: its settings, its model handle, and the runs that fill its turns.

A :class:`PaneSession` owns its model handle (made by a factory: a
:class:`~desktop_app.engine.worker.ModelWorker` in the app, a scripted fake in tests), builds
each :class:`~desktop_app.engine.protocol.GenerationRequest` from the history
(:class:`~desktop_app.session.turn.Conversation`) and the pane's settings, runs the blocking
event stream on a plain thread that only appends to a deque, and applies the events to the
current :class:`~desktop_app.session.turn.Turn` when the owner calls :meth:`PaneSession.poll`
(the window does so once per frame). So the answer is accumulated once, here, and thinking
time is read from one clock: the model process's. No Qt here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from desktop_app.engine.handle import ModelHandle
from desktop_app.engine.protocol import (
    Delta,
    Event,
    Failed,
    FailureKind,
    Finished,
    FinishReason,
    GenerationRequest,
    Loaded,
    Loading,
    PromptSent,
    Sampling,
)
from desktop_app.models.catalog import (
    Availability,
    Catalog,
    ModelEntry,
    missing_message,
    sampling_problem,
    state_of,
)
from desktop_app.session.generation import (
    GenerationRun,
    RunEnded,
    WorkerFactory,
    close_in_background,
    default_worker_factory,
)
from desktop_app.session.tokens import (
    BRANCH_FIELDS,
    TOP_K,
    BranchSplitter,
    Resuming,
    TokenStep,
    can_branch,
    can_resume,
    continued_result,
    reply_as_written,
)
from desktop_app.session.turn import (
    Conversation,
    Turn,
    TurnState,
)
from desktop_app.text.i18n import _
from desktop_app.verify import Problem, Verdict

# ------------------------------------------------------------------------------ settings


SAMPLER_FIELDS = ("temperature", "top_k", "top_p", "min_p", "repeat_penalty", "max_tokens")


@dataclass
class PaneConfig:
    """A pane's remembered settings (``None`` means the catalog's default)."""

    model_id: str = ""
    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
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
        for name in SAMPLER_FIELDS:  # a value out of range falls back to the model's default
            value = getattr(config, name)
            if value is not None and sampling_problem(name, value) is not None:
                setattr(config, name, None)
        return config


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

    @property
    def stopping(self) -> bool:
        """Asked to stop and not ended yet: the pane says "Stopping…" until it ends."""
        return self.run is not None and self.run.stopping

    def model_state(self) -> Availability | None:
        """Whether the model can run now; None if it is not in the catalog. A check that
        fails counts as not downloaded."""
        entry = self.entry
        return state_of(entry) if entry is not None else None

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
        return Sampling.for_entry(entry, temperature=cfg.temperature, top_k=cfg.top_k,
                                  top_p=cfg.top_p, min_p=cfg.min_p,
                                  repeat_penalty=cfg.repeat_penalty,
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
            self._fail(turn, Failed(message=_("Could not start the model: {error}").format(
                error=exc),
                                    kind=FailureKind.ERROR))
            return turn
        turn.loading_detail = _("sending the prompt") if self.worker.loaded else _("starting")
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
                self._fail(self.turn, Failed(message=_("The generation ended without a result."),
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
            turn.loading_detail = _("sending the prompt")
        elif isinstance(event, PromptSent):
            if self.resuming is None:  # a Continue's prompt is the turn's plus its reply
                turn.prompt_sent = event.text
                turn.prompt_tokens[event.text] = event.tokens
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
            turn.continue_error = _("Continue failed: {error}; the reply before it is "
                                    "kept.").format(error=failed.message.rstrip("."))
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
                turn.failure = Failed(message=_("Stopped when the pane was removed."),
                                      kind=FailureKind.ERROR)
                turn.state = TurnState.FAILED
            self.conversation.turns.append(turn)

    # -- verify

    def verify(self, turn: Turn) -> Verdict:
        """Check the turn's answer in the sandbox (blocking: call it off the GUI thread)."""
        from desktop_app.verify import VerdictState, verify_reply

        try:
            return verify_reply(turn.visible_reply(), turn.problem,
                                finish=turn.result.finish_reason if turn.result else None)
        except Exception as exc:  # noqa: BLE001 - the checker's own bug is a verdict too
            return Verdict(verdict=VerdictState.ERROR,
                           reason=_("The checker failed: {error}").format(error=exc))

    # -- export and teardown

    def export(self) -> dict[str, Any]:
        """The pane for export: model, role and every turn as data."""
        entry = self.entry
        state = self.model_state()
        missing = ""
        if entry is None:
            missing = _("The model '{model}' is not in the catalog.").format(
                model=self.config.model_id)
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
