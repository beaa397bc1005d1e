"""A model an OpenAI-compatible server serves, in a pane like a local one.

:class:`RemoteWorker` has :class:`~desktop_app.engine.worker.ModelWorker`'s public surface and
yields exactly its events (Loading, Loaded, PromptSent, Delta*, Finished or Failed, with a
:class:`~desktop_app.engine.protocol.GenerationResult`). Instruct and reasoning models stream
``/chat/completions``; base models stream ``/completions`` with the same document wrapping
a local base model gets (``prompting.build_prompt``), so the prompt shown is the prompt sent.

Thinking arrives as ``delta.reasoning_content`` (vLLM, SGLang, DeepSeek), ``delta.reasoning``
(newer servers) or ``<think>`` tags inside the content (llama-server without a reasoning
parser, Ollama); all of it goes through :class:`~desktop_app.text.thinking.ThinkingSplitter`
and is counted as the local worker counts it: one streamed piece, one token, unless the
server reports ``usage``.

The HTTP client is httpx2 (huggingface-hub's own client, so nothing new to install); each
generation runs on a thread of its own that sends events down a pipe, which is what
``engine.run_comparison`` waits on. ``stop()`` shuts the socket down, which wakes a read
blocked on a silent server at once (even one still waiting for the response headers), and
the pane still gets a ``Finished`` (stopped) with everything received so far.
"""

from __future__ import annotations

import json
import multiprocessing
import random
import socket
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import httpx2

from desktop_app.engine.prompting import PromptError
from desktop_app.engine.protocol import (
    Delta,
    EmbeddingError,
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
    TokenLogprob,
)
from desktop_app.engine.remote_request import (  # noqa: F401 - the request's parts, re-exported
    MAX_TOP_LOGPROBS,
    chat_messages,
    chunk_logprob,
    request_body,
    shown_messages,
)
from desktop_app.models import servers
from desktop_app.models.catalog import ModelEntry
from desktop_app.models.servers import ServerError, ServerProblem
from desktop_app.models.sources import RemoteSource
from desktop_app.text.escape import visible_controls
from desktop_app.text.i18n import N_, _, number
from desktop_app.text.thinking import THINKING, ThinkingSplitter

CONNECT_TIMEOUT_S = 10.0
# Longest silence accepted mid-answer (a big model on a busy server may take a while
# to evaluate a long prompt before its first token).
READ_TIMEOUT_S = 300.0
MAX_RETRY_AFTER_S = 60.0  # a 429's Retry-After is honoured once, up to this long

FINISH_REASONS = {"stop": FinishReason.STOP, "length": FinishReason.LENGTH,
                  "eos": FinishReason.STOP, "content_filter": FinishReason.STOP,
                  "tool_calls": FinishReason.STOP, "function_call": FinishReason.STOP}


# How a stream that ended without a finish reason is told: (a bare [DONE], any answer yet)
_CUT_SENTENCES = {
    (True, True): N_("The server at {host} broke off the answer: it ended the stream without "
                     "a finish reason (another request may have interrupted it); the partial "
                     "answer is kept."),
    (True, False): N_("The server at {host} broke off the answer before its first word: it "
                      "ended the stream without a finish reason (another request may have "
                      "interrupted it)."),
    (False, True): N_("The server at {host} broke off the answer: the stream ended before "
                      "the answer was done; the partial answer is kept."),
    (False, False): N_("The server at {host} broke off the answer before its first word: the "
                       "stream ended before the answer was done."),
}


class _Cancelled(Exception):
    """Stop was pressed (raised inside the request thread)."""


# --------------------------------------------------------------------------- reply


def _joined(segments: list[tuple[str, str]]) -> tuple[str, str]:
    return ("".join(text for kind, text in segments if kind == THINKING),
            "".join(text for kind, text in segments if kind != THINKING))


class RemoteReply:
    """Turns streamed pieces into split Delta events and the generation's result."""

    def __init__(self, entry: ModelEntry, request: GenerationRequest, started: float,
                 prefilled: bool):
        fmt = entry.prompt.thinking if entry.prompt.supports_thinking and not request.raw else "none"
        self.splitter = ThinkingSplitter(fmt, prefilled=prefilled, keep_blanks=request.raw)
        self.started = started
        self.result = GenerationResult(model=entry.id, role=entry.role)
        self.written: list[str] = []  # the content as the server sent it (reply_text)
        self.thinking_tokens = self.answer_tokens = 0
        self.first_at: float | None = None
        self.last_at = started
        self.thinking_closed_at: float | None = None
        self.saw_reasoning_field = False
        self.finish_reason: FinishReason | None = None
        self.usage: dict[str, Any] | None = None

    @property
    def generated(self) -> int:
        return self.thinking_tokens + self.answer_tokens

    def _delta(self, thinking: str, answer: str, now: float,
               logprob: TokenLogprob | None = None) -> Delta:
        """One Delta per streamed piece, as the local worker sends one per token (its text
        may be empty while the splitter holds back what could become a tag)."""
        self.result.thinking += thinking
        self.result.answer += answer
        return Delta(thinking=thinking, answer=answer, thinking_tokens=self.thinking_tokens,
                     answer_tokens=self.answer_tokens, elapsed_s=now - self.started,
                     logprob=logprob)

    def _arrived(self, now: float) -> None:
        if self.first_at is None:
            self.first_at = now
        self.last_at = now

    def reasoning(self, text: str, now: float, logprob: TokenLogprob | None = None) -> Delta:
        """Thinking the server separated itself (``reasoning_content`` / ``reasoning``)."""
        self._arrived(now)
        if not self.saw_reasoning_field and self.splitter.in_thinking and not self.answer_tokens:
            # The catalog says the template opens <think>, but this server's reasoning
            # parser takes the thinking out: the content that follows is the answer.
            self.splitter = ThinkingSplitter(self.splitter.format,
                                             keep_blanks=self.splitter.keep_blanks)
        self.saw_reasoning_field = True
        self.thinking_tokens += 1
        return self._delta(text, "", now, logprob)

    def content(self, text: str, now: float, logprob: TokenLogprob | None = None) -> Delta:
        """Answer text, which may still carry ``<think>`` tags."""
        self._arrived(now)
        splitter = self.splitter
        was_thinking = splitter.in_thinking
        if self.saw_reasoning_field and self.thinking_closed_at is None:
            self.thinking_closed_at = now  # the first content after separated thinking
        self.written.append(text)
        segments = splitter.feed(text)
        if was_thinking or splitter.in_thinking:
            self.thinking_tokens += 1
        else:
            self.answer_tokens += 1
        if was_thinking and not splitter.in_thinking and self.thinking_closed_at is None:
            self.thinking_closed_at = now
        thinking, answer = _joined(segments)
        return self._delta(thinking, answer, now, logprob)

    def flush(self) -> Delta | None:
        """What the splitter still held back (None if nothing)."""
        thinking, answer = _joined(self.splitter.finish())
        if not thinking and not answer:
            return None
        return self._delta(thinking, answer, time.perf_counter())

    def _apply_usage(self) -> None:
        usage = self.usage or {}
        result = self.result
        prompt_tokens = usage.get("prompt_tokens")
        if isinstance(prompt_tokens, int):
            result.prompt_tokens = prompt_tokens
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and isinstance(details.get("cached_tokens"), int):
            result.prompt_cached = details["cached_tokens"]
        completion = usage.get("completion_tokens")
        if isinstance(completion, int) and completion >= 0:
            done = usage.get("completion_tokens_details")
            reasoning = done.get("reasoning_tokens") if isinstance(done, dict) else None
            if isinstance(reasoning, int) and 0 <= reasoning <= completion:
                self.thinking_tokens = reasoning
            self.thinking_tokens = min(self.thinking_tokens, completion)
            self.answer_tokens = completion - self.thinking_tokens

    def finish(self, reason: FinishReason, error: str | None = None) -> GenerationResult:
        """Fill in the figures: from ``usage`` where the server sent it, else as counted."""
        self._apply_usage()
        result = self.result
        now = time.perf_counter()
        result.thinking_tokens, result.answer_tokens = self.thinking_tokens, self.answer_tokens
        result.finish_reason = FinishReason.ERROR if error else reason
        result.error = error
        result.total_s = now - self.started
        first, last = self.first_at, self.last_at
        if first is not None:
            result.ttft_s = first - self.started
            if self.generated > 1 and last > first:
                result.tokens_per_s = (self.generated - 1) / (last - first)
        if self.splitter.saw_thinking or self.saw_reasoning_field:
            result.thinking_s = (self.thinking_closed_at or last) - (first or self.started)
        result.thinking_unterminated = self.splitter.in_thinking
        # the reply as written is known only when the server left the thinking in the text
        result.reply_text = "" if self.saw_reasoning_field else "".join(self.written)
        return result


# -------------------------------------------------------------------------- worker


class _Call:
    """One generation's request: its stop flag and the socket stop() shuts down."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.stopped_at = 0.0
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def stop(self) -> None:
        if not self.stopped.is_set():
            self.stopped_at = time.monotonic()
        self.stopped.set()
        with self._lock:
            sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked on this socket
            except OSError:
                pass  # already closed

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace hook: the socket is known from the moment it connects, so a
        stop also wakes a request still waiting for the server's first byte."""
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete"):
            stream = info.get("return_value")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if isinstance(sock, socket.socket):
                with self._lock:
                    self._socket = sock
                if self.stopped.is_set():
                    self.stop()  # a stop that came while connecting

    def forget_socket(self) -> None:
        with self._lock:
            self._socket = None


class RemoteWorker:
    """A pane's handle on a served model: ``ModelWorker``'s surface, no process.

    ``n_threads``, ``budget`` and ``gpu_layers`` are accepted and ignored: the server
    decides where the model runs.
    """

    def __init__(self, entry: ModelEntry, **_local_settings: Any):
        if not isinstance(entry.source, RemoteSource):
            raise ValueError(_("'{model}' is not a model on a server.").format(model=entry.id))
        self.entry = entry
        self.source: RemoteSource = entry.source
        self._calls: list[_Call] = []
        self._closed = False
        self._loaded: Loaded | None = None
        self._conn: Connection | None = None
        self._threads: list[threading.Thread] = []
        self._client: httpx2.Client | None = None
        self._client_lock = threading.Lock()

    # -- ModelWorker's surface

    @property
    def pid(self) -> int | None:
        return None  # nothing runs here

    @property
    def alive(self) -> bool:
        return not self._closed

    @property
    def loaded(self) -> Loaded | None:
        return self._loaded

    def start(self) -> None:
        """Nothing to load; the first request connects."""

    def set_threads(self, n_threads: int, ceiling: int | None = None) -> None:
        """The server's threads are the server's."""

    def wait_loaded(self, abandon: Any = None) -> Iterator[Event]:
        return iter(())

    @property
    def connection(self) -> Connection:
        """The end ``run_comparison`` waits on: readable when an event is ready."""
        assert self._conn is not None, "generate() first"
        return self._conn

    @property
    def buffered(self) -> bool:
        """Each event travels alone: the pipe says when one is ready."""
        return False

    def stop(self) -> None:
        """Stop the current generation (any thread, returns at once)."""
        for call in self._calls:
            call.stop()

    def close(self, timeout: float = 2.0) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._client_lock:
            if self._client is not None:
                self._client.close()

    def __enter__(self) -> RemoteWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def generate(self, request: GenerationRequest) -> Generator[Event, None, None]:
        """Stream one generation's events. Blocking; run it off the GUI thread.

        After stop(), a request still waiting for the server's first byte is not waited
        for: the pane gets its Finished (stopped) within half a second regardless."""
        yield from self._generate([request])

    def generate_many(self, request: GenerationRequest,
                      seeds: Sequence[int | None]) -> Generator[Event, None, None]:
        """``len(seeds)`` sequences from one prompt, as ``ModelWorker.generate_many``: one
        PromptSent, Deltas and one Finished per sequence (tagged), a Failed ends them all.

        One request per seed, in parallel: the ``n`` parameter would give every sequence
        the same seed, and not every server honours it while streaming."""
        requests = [replace(request, sampling=replace(
            request.sampling, seed=seed if seed is not None else random.randrange(2**31)))
            for seed in seeds] or [request]
        yield from self._generate(requests)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's embedding from the server's OpenAI-style ``/embeddings`` (blocking);
        raises :class:`EmbeddingError` when it has none for this model."""
        source = self.source
        key = servers.api_key(source.endpoint, source.api_key_env)
        try:
            response = self._http().post(source.endpoint + "/embeddings",
                                         json={"model": source.model, "input": list(texts)},
                                         headers=servers.auth_headers(key))
        except httpx2.HTTPError as exc:
            raise EmbeddingError(str(servers.transport_error(exc, source.endpoint))) from None
        if response.status_code != 200:
            raise EmbeddingError(str(servers.status_error(
                response, source.endpoint, model=source.model, key_env=source.api_key_env,
                had_key=bool(key))))
        try:
            rows = sorted(response.json()["data"], key=lambda row: row.get("index", 0))
            return [[float(x) for x in row["embedding"]] for row in rows]
        except (ValueError, KeyError, TypeError):
            raise EmbeddingError(_("{host} answered /embeddings with something that is not a "
                                   "list of vectors.").format(
                host=servers.host_of(source.endpoint))) from None

    def _generate(self, requests: list[GenerationRequest]) -> Generator[Event, None, None]:
        calls = self._calls = [_Call() for _ in requests]
        reader, writer = multiprocessing.Pipe(duplex=False)
        self._conn = reader
        sender = _Sender(writer, len(requests))
        threads = [threading.Thread(target=self._run, args=(request, sender, call, index),
                                    name=f"remote-{self.entry.id}-{index}", daemon=True)
                   for index, (request, call) in enumerate(zip(requests, calls))]
        self._threads = [t for t in self._threads if t.is_alive()] + threads
        for thread in threads:
            thread.start()
        seen = [_Seen(self.entry) for _ in requests]
        finished: set[int] = set()
        shown: set[type] = set()  # Loading, Loaded and PromptSent are shown once
        ended = False
        try:
            while not ended:
                if not reader.poll(0.1):
                    stopped = calls[0].stopped
                    if stopped.is_set() and time.monotonic() - calls[0].stopped_at > 0.5:
                        ended = True  # a server that does not let go is not waited for
                        for index in sorted(set(range(len(requests))) - finished):
                            yield Finished(result=seen[index].cancelled(), sequence=index)
                    continue
                try:
                    index, event = reader.recv()
                except (EOFError, OSError):
                    ended = True
                    yield seen[0].failed(_("The request to the server ended without a final "
                                           "word."))
                    return
                seen[index].add(event)
                if isinstance(event, Loading | Loaded | PromptSent):
                    if type(event) in shown:
                        continue
                    shown.add(type(event))
                elif isinstance(event, Failed):
                    ended = True  # one failed sequence ends them all
                elif isinstance(event, Finished):
                    finished.add(index)
                    ended = len(finished) == len(requests)
                yield event
        finally:
            if not ended or len(finished) < len(requests):
                for call in calls:
                    call.stop()  # the caller stopped reading, or one sequence failed
            for thread in threads:
                thread.join(0.5)
            reader.close()

    # -- the request thread

    def _http(self) -> httpx2.Client:
        with self._client_lock:
            if self._client is None:
                # A fresh connection per request: its socket is then seen connecting (see
                # _Call.trace); a pooled one would be reused unseen.
                self._client = httpx2.Client(
                    timeout=httpx2.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S),
                    limits=httpx2.Limits(max_keepalive_connections=0))
            return self._client

    def _run(self, request: GenerationRequest, sender: _Sender, call: _Call,
             sequence: int) -> None:
        """Send every event of one generation to *sender*, the last one final."""
        try:
            for event in self._events(request, call):
                if isinstance(event, Delta | Finished) and sequence:
                    event = replace(event, sequence=sequence)
                sender.send(sequence, event)
        except (OSError, EOFError):
            pass  # the pane stopped listening
        except Exception as exc:  # noqa: BLE001 - every failure is data for the pane
            result = GenerationResult(model=self.entry.id, role=self.entry.role, error=str(exc))
            try:
                message = _("Internal error talking to the server: {error}").format(error=exc)
                sender.send(sequence, Failed(message=message, kind=FailureKind.ERROR,
                                             result=result))
            except (OSError, EOFError):
                pass
        finally:
            sender.done()

    def _events(self, request: GenerationRequest, call: _Call) -> Iterator[Event]:
        entry, source = self.entry, self.source
        started = time.perf_counter()
        seed = request.sampling.seed if request.sampling.seed is not None else random.randrange(2**31)
        try:
            path, body, built = request_body(entry, request, seed)
        except PromptError as exc:
            result = GenerationResult(model=entry.id, role=entry.role, error=str(exc))
            yield Failed(message=str(exc), kind=FailureKind.ERROR, result=result)
            return
        host = servers.host_of(source.endpoint)
        if self._loaded is None:
            yield Loading(entry.id, _("connecting to {host}").format(host=host))
        reply = RemoteReply(entry, request, started, built.starts_in_thinking)
        reply.result.prompt_sent, reply.result.seed = built.text, seed
        reply.result.prompt_notes = built.notes
        reply.result.placement = placement = _("{host} (remote)").format(host=host)
        try:
            with self._open(path, body, call) as response:
                if self._loaded is None:
                    self._loaded = Loaded(
                        model_id=entry.id, load_s=time.perf_counter() - started,
                        n_ctx=entry.context_length, n_threads=0, model_path=source.describe(),
                        has_chat_template=entry.prompt.style == "chat",
                        placement=placement)
                    yield self._loaded
                yield PromptSent(text=built.text, n_tokens=0,
                                 starts_in_thinking=built.starts_in_thinking, seed=seed,
                                 notes=built.notes)
                yield from self._stream(response, reply, call)
        except _Cancelled:
            yield from self._end(reply, FinishReason.CANCELLED)
        except ServerError as exc:
            if call.stopped.is_set():
                yield from self._end(reply, FinishReason.CANCELLED)
                return
            message = str(exc)
            if reply.generated and exc.problem != ServerProblem.CUT:
                message = _("{error} The answer is cut.").format(error=message)
            tail = reply.flush()
            if tail is not None:
                yield tail
            yield Failed(message=message, kind=FailureKind.ERROR,
                         result=reply.finish(FinishReason.ERROR, message))
        finally:
            call.forget_socket()

    def _end(self, reply: RemoteReply, reason: FinishReason) -> Iterator[Event]:
        tail = reply.flush()
        if tail is not None:
            yield tail
        yield Finished(result=reply.finish(reason))

    def _open(self, path: str, body: dict[str, Any], call: _Call) -> _Opened:
        """The streaming response, its socket registered for stop(); a 429 is retried once
        after its Retry-After. Raises ServerError or _Cancelled."""
        source = self.source
        key = servers.api_key(source.endpoint, source.api_key_env)
        for attempt in (1, 2):
            if call.stopped.is_set():
                raise _Cancelled
            context = self._http().stream("POST", source.endpoint + path, json=body,
                                          headers=servers.auth_headers(key),
                                          extensions={"trace": call.trace})
            try:
                response = context.__enter__()
            except httpx2.HTTPError as exc:
                if call.stopped.is_set():
                    raise _Cancelled from None
                raise servers.transport_error(exc, source.endpoint) from None
            if response.status_code == 200:
                return _Opened(context, response)
            try:
                error = servers.status_error(response, source.endpoint, model=source.model,
                                             key_env=source.api_key_env, had_key=bool(key))
            finally:
                _close(context)
            if error.problem != ServerProblem.RATE_LIMITED:
                raise error
            wait = min(error.retry_after if error.retry_after is not None else 1.0,
                       MAX_RETRY_AFTER_S)
            if attempt == 2:
                raise ServerError(ServerProblem.RATE_LIMITED, _(
                    "{error}; Triptych already waited {seconds} s and tried once more.").format(
                    error=str(error).rstrip("."), seconds=number(wait, 0)))
            if call.stopped.wait(wait):
                raise _Cancelled
        raise AssertionError("unreachable")

    def _stream(self, response: httpx2.Response, reply: RemoteReply,
                call: _Call) -> Iterator[Event]:
        """Delta events from the server-sent events, then Finished (or a ServerError)."""
        endpoint = self.source.endpoint
        done = False
        try:
            for line in response.iter_lines():
                if call.stopped.is_set():
                    raise _Cancelled
                if not line.startswith("data:"):
                    continue  # blank separators, ": keep-alive" comments, "event:" lines
                data = line[5:].strip()
                if data == "[DONE]":
                    done = True
                    break
                yield from self._chunk(data, reply)
        except httpx2.HTTPError as exc:
            if call.stopped.is_set():
                raise _Cancelled from None
            raise servers.transport_error(exc, endpoint, streaming=True) from None
        if call.stopped.is_set():
            raise _Cancelled
        if reply.finish_reason is None:
            # Ended with no finish reason: cut mid-way, or a bare [DONE] (llama-cpp-python's
            # server does that to a stream when another request interrupts it). Either way
            # the answer is not whole, and the pane must not call it finished.
            raise ServerError(ServerProblem.CUT, _(_CUT_SENTENCES[done, reply.generated > 0]
                                                   ).format(host=servers.host_of(endpoint)))
        yield from self._end(reply, reply.finish_reason)

    def _chunk(self, data: str, reply: RemoteReply) -> Iterator[Event]:
        host = servers.host_of(self.source.endpoint)
        try:
            chunk = json.loads(data)
        except ValueError:
            raise ServerError(ServerProblem.BAD_REPLY,
                              _("The server at {host} sent a malformed chunk ({chunk}).").format(
                                  host=host, chunk=repr(visible_controls(data[:60])))) from None
        if not isinstance(chunk, dict):
            raise ServerError(ServerProblem.BAD_REPLY, _(
                "The server at {host} sent a chunk that is not a JSON object.").format(host=host))
        if "error" in chunk:
            error = chunk["error"]
            said = error.get("message", error) if isinstance(error, dict) else error
            raise ServerError(ServerProblem.SERVER_ERROR, _(
                "The server at {host} reported an error mid-answer: {error}.").format(
                host=host, error=visible_controls(str(said))[:200]))
        if isinstance(chunk.get("usage"), dict):
            reply.usage = chunk["usage"]
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            raise ServerError(ServerProblem.BAD_REPLY, _(
                "The server at {host} sent a chunk without 'choices'.").format(host=host))
        for choice in choices[:1]:
            if not isinstance(choice, dict):
                raise ServerError(ServerProblem.BAD_REPLY, _(
                    "The server at {host} sent a malformed choice.").format(host=host))
            now = time.perf_counter()
            logprob = chunk_logprob(choice)
            delta = choice.get("delta")
            if isinstance(delta, dict):  # chat
                thought = delta.get("reasoning_content") or delta.get("reasoning")
                if isinstance(thought, str) and thought:
                    yield reply.reasoning(thought, now, logprob)
                    logprob = None
                text = delta.get("content")
            else:  # completions
                text = choice.get("text")
            if isinstance(text, str) and text:
                yield reply.content(text, now, logprob)
            reason = choice.get("finish_reason")
            if isinstance(reason, str) and reason:
                reply.finish_reason = FINISH_REASONS.get(reason, FinishReason.STOP)


def _close(context: Any) -> None:
    try:
        context.__exit__(None, None, None)
    except httpx2.HTTPError:
        pass


class _Opened:
    """A streaming response whose context is closed on leaving the ``with`` block."""

    def __init__(self, context: Any, response: httpx2.Response):
        self.context = context
        self.response = response

    def __enter__(self) -> httpx2.Response:
        return self.response

    def __exit__(self, *exc: object) -> None:
        _close(self.context)


class _Sender:
    """The request threads' shared end of the pipe: one message at a time, closed after
    the last thread is done (the reader then sees the end)."""

    def __init__(self, writer: Connection, senders: int):
        self._writer = writer
        self._left = senders
        self._lock = threading.Lock()

    def send(self, sequence: int, event: Event) -> None:
        with self._lock:
            self._writer.send((sequence, event))

    def done(self) -> None:
        with self._lock:
            self._left -= 1
            if self._left == 0:
                self._writer.close()


class _Seen:
    """What the pane has been sent so far, for a stop that does not wait for the server."""

    def __init__(self, entry: ModelEntry):
        self.result = GenerationResult(model=entry.id, role=entry.role)

    def add(self, event: Event) -> None:
        if isinstance(event, PromptSent):
            self.result.prompt_sent, self.result.seed = event.text, event.seed
            self.result.prompt_notes = event.notes
        elif isinstance(event, Delta):
            self.result.thinking += event.thinking
            self.result.answer += event.answer
            self.result.thinking_tokens = event.thinking_tokens
            self.result.answer_tokens = event.answer_tokens

    def cancelled(self) -> GenerationResult:
        self.result.finish_reason = FinishReason.CANCELLED
        return self.result

    def failed(self, message: str) -> Failed:
        self.result.error = message
        self.result.finish_reason = FinishReason.ERROR
        return Failed(message=message, kind=FailureKind.ERROR, result=self.result)
