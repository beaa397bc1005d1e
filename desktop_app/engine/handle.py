"""The one interface every caller drives a model through: :class:`ModelHandle`.

A local model's process (:class:`~desktop_app.engine.worker.ModelWorker`), a model a
server serves (:class:`~desktop_app.engine.remote.RemoteWorker`) and the tests' scripted
fake all satisfy it, and mypy checks each against it, so none can drift. The session, the
command line, rollouts and bench call nothing else.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator, Sequence
from multiprocessing.connection import Connection
from typing import Protocol

from desktop_app.engine.protocol import Event, GenerationRequest, Loaded
from desktop_app.models.catalog import ModelEntry


class ModelHandle(Protocol):
    """One model, loaded once, asked for generations one at a time."""

    entry: ModelEntry

    @property
    def pid(self) -> int | None:
        """The model process's id while it runs (None for a served model)."""

    @property
    def alive(self) -> bool:
        """It can still answer: the process runs, or the server's model is reachable."""

    @property
    def loaded(self) -> Loaded | None:
        """What loading reported, once the model is loaded."""

    @property
    def connection(self) -> Connection:
        """Readable (``multiprocessing.connection.wait``) when the next event may be read."""

    @property
    def buffered(self) -> bool:
        """An event has already arrived and waits to be handed out: the next step of a
        generation needs no wait on :attr:`connection` (a batch of Deltas came at once)."""

    def start(self) -> None:
        """Begin loading now (every pane at once), without waiting."""

    def wait_loaded(self, abandon: Callable[[], bool] | None = None) -> Iterator[Event]:
        """Loading and Loaded (or Failed) until the model is ready; ``abandon`` ends the
        wait early without ending the load."""

    def generate(self, request: GenerationRequest) -> Generator[Event, None, None]:
        """One reply's events: PromptSent, Deltas, then Finished or Failed."""

    def generate_many(self, request: GenerationRequest,
                      seeds: Sequence[int | None]) -> Generator[Event, None, None]:
        """One sequence per seed sharing the prompt, their events tagged and interleaved."""

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Each text's embedding vector (mean-pooled, unit length), blocking; raises
        :class:`~desktop_app.engine.protocol.EmbeddingError` when the model cannot."""

    def stop(self) -> None:
        """End the current generation soon (cooperative); the model stays loaded."""

    def close(self, timeout: float = 2.0) -> None:
        """Stop and let go of the model (its process ends); safe to call twice."""
