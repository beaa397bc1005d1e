"""A small OpenAI-compatible endpoint on 127.0.0.1 for the protocol variants a real
llama.cpp server cannot produce: separated reasoning (``reasoning_content`` and
``reasoning``), keys, 429 with Retry-After, 5xx, a stream cut mid-way, a malformed chunk,
a server that goes silent, a stream ended by a bare ``[DONE]`` (how llama-cpp-python's
server breaks off an answer when another request interrupts it). Plain ``http.server`` in a thread; the model name in the
request picks the behaviour. Every request body is kept in ``requests`` for assertions.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODELS = ("reasoning-content", "reasoning", "think-tags", "prefilled", "plain", "busy",
          "busy-once", "broken", "forbidden", "cut", "malformed", "slow", "silent", "hang",
          "usage", "logprobs", "hostile", "interrupted", "interrupted-empty")

THOUGHT = ["Two ", "and two ", "make four."]
ANSWER = ["The answer ", "is ", "4."]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client hanging up mid-stream (Stop) is what the tests do on purpose."""


class StubServer:
    """Start with :meth:`start` (or as a context manager); ``url`` is the ``/v1`` endpoint."""

    def __init__(self, api_key: str | None = None):
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.models_asked = 0  # GET /v1/models answered
        self.headers: list[dict[str, str]] = []
        self.closing = threading.Event()
        self.busy_count = 0
        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = False
        self._httpd.block_on_close = True  # server_close() joins every handler thread
        self._httpd.stub = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="openai-stub",
                                        kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> StubServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def __enter__(self) -> StubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    @property
    def stub(self) -> StubServer:
        return self.server.stub  # type: ignore[attr-defined,no-any-return]

    def _json(self, code: int, data: Any, headers: dict[str, str] | None = None) -> None:
        body = json.dumps(data).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)

    def _authorized(self) -> bool:
        key = self.stub.api_key
        if key is None or self.headers.get("Authorization") == f"Bearer {key}":
            return True
        self._json(401, {"error": {"message": "Invalid API key", "type": "auth"}})
        return False

    def do_GET(self) -> None:
        if not self._authorized():
            return
        if self.path.rstrip("/") == "/v1/models":
            self.server.stub.models_asked += 1  # type: ignore[attr-defined]
            self._json(200, {"object": "list",
                             "data": [{"id": name, "object": "model"} for name in MODELS]})
        else:
            self._json(404, {"error": {"message": "no such page"}})

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        self.stub.requests.append(body)
        self.stub.headers.append(dict(self.headers))
        if not self._authorized():
            return
        if self.path.endswith("/embeddings"):  # each input's vector: its length and vowels
            inputs = body.get("input") or []
            rows = [{"object": "embedding", "index": i,
                     "embedding": [float(len(t)), float(sum(c in "aeiou" for c in t))]}
                    for i, t in enumerate(inputs)]
            self._json(200, {"object": "list", "data": list(reversed(rows))})  # any order
            return
        chat = self.path.endswith("/chat/completions")
        if not chat and not self.path.endswith("/completions"):
            self._json(404, {"error": {"message": "no such page"}})
            return
        model = body.get("model")
        if model not in MODELS:
            self._json(404, {"error": {"message": f"The model `{model}` does not exist."}})
            return
        if model == "hang":  # not even the response headers until the server stops
            self.stub.closing.wait(30)
            self.close_connection = True
            return
        if model == "forbidden":
            self._json(403, {"error": {"message": "this key may not use this model"}})
            return
        if model == "hostile":  # a server whose error text would repaint a terminal
            self._json(500, {"error": {"message": "\x1b[2J\u202eevil\nsecond line"}})
            return
        if model == "broken":
            self._json(503, {"error": {"message": "the GPU fell over"}})
            return
        if model == "busy" or (model == "busy-once" and self.stub.busy_count == 0):
            self.stub.busy_count += 1
            self._json(429, {"error": {"message": "too many requests"}}, {"Retry-After": "1"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        getattr(self, f"_stream_{str(model).replace('-', '_')}", self._stream_plain)(chat)

    # -- streaming

    def _raw(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def _event(self, data: Any) -> None:
        text = data if isinstance(data, str) else json.dumps(data)
        self._raw(f"data: {text}\n\n".encode())

    def _piece(self, chat: bool, finish: str | None = None, **delta: str) -> None:
        if chat:
            choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish}
        else:
            choice = {"index": 0, "text": delta.get("content", ""), "finish_reason": finish}
        self._event({"object": "chunk", "choices": [choice]})

    def _done(self, chat: bool, usage: dict[str, Any] | None = None) -> None:
        self._piece(chat, finish="stop")
        if usage is not None:
            self._event({"object": "chunk", "choices": [], "usage": usage})
        self._event("[DONE]")
        self._raw(b"")  # the last chunk of the chunked body

    def _stream_plain(self, chat: bool) -> None:
        for text in ANSWER:
            self._piece(chat, content=text)
        self._done(chat)

    def _stream_reasoning_content(self, chat: bool) -> None:
        for text in THOUGHT:
            self._piece(chat, reasoning_content=text)
        for text in ANSWER:
            self._piece(chat, content=text)
        self._done(chat)

    def _stream_reasoning(self, chat: bool) -> None:
        for text in THOUGHT:
            self._piece(chat, reasoning=text)
        for text in ANSWER:
            self._piece(chat, content=text)
        self._done(chat)

    def _stream_think_tags(self, chat: bool) -> None:
        for text in ["<thi", "nk>", *THOUGHT, "</th", "ink>\n\n", *ANSWER]:
            self._piece(chat, content=text)
        self._done(chat)

    def _stream_prefilled(self, chat: bool) -> None:
        """A template that opened <think> itself: the model only closes it."""
        for text in [*THOUGHT, "</think>\n\n", *ANSWER]:
            self._piece(chat, content=text)
        self._done(chat)

    def _stream_logprobs(self, chat: bool) -> None:
        """Each piece with its log-probability and two alternatives, in each API's form."""
        for index, text in enumerate(ANSWER):
            chosen, other = -0.25 * (index + 1), -2.0
            if chat:
                logprobs: dict[str, Any] = {"content": [{
                    "token": text, "logprob": chosen, "bytes": None,
                    "top_logprobs": [{"token": text, "logprob": chosen},
                                     {"token": "other", "logprob": other}]}]}
                choice: dict[str, Any] = {"index": 0, "delta": {"content": text},
                                          "logprobs": logprobs, "finish_reason": None}
            else:
                logprobs = {"tokens": [text], "token_logprobs": [chosen], "text_offset": [0],
                            "top_logprobs": [{"other": other, text: chosen}]}
                choice = {"index": 0, "text": text, "logprobs": logprobs, "finish_reason": None}
            self._event({"object": "chunk", "choices": [choice]})
        self._done(chat)

    def _stream_usage(self, chat: bool) -> None:
        for text in ANSWER:
            self._piece(chat, content=text)
        self._done(chat, usage={"prompt_tokens": 17, "completion_tokens": 5, "total_tokens": 22,
                                "prompt_tokens_details": {"cached_tokens": 9}})

    def _stream_cut(self, chat: bool) -> None:
        for text in ANSWER[:2]:
            self._piece(chat, content=text)
        self.close_connection = True  # no terminating chunk: the body ends mid-way

    def _stream_interrupted(self, chat: bool) -> None:
        """llama-cpp-python's server with interrupt_requests on: a bare [DONE] mid-answer."""
        for text in ANSWER[:2]:
            self._piece(chat, content=text)
        self._event("[DONE]")
        self._raw(b"")

    def _stream_interrupted_empty(self, chat: bool) -> None:
        self._event("[DONE]")
        self._raw(b"")

    def _stream_malformed(self, chat: bool) -> None:
        self._piece(chat, content=ANSWER[0])
        self._raw(b'data: {"choices": [{"delta": {"content": "x"\n\n')
        self._raw(b"")

    def _stream_slow(self, chat: bool) -> None:
        for index in range(400):
            if self.stub.closing.wait(0.05):
                break
            try:
                self._piece(chat, content=f"word{index} ")
            except OSError:
                return  # the client hung up (Stop)
        self.close_connection = True

    def _stream_silent(self, chat: bool) -> None:
        self._piece(chat, content="Hmm")
        self.stub.closing.wait(30)  # says nothing more until the server stops
        self.close_connection = True
