"""A comparison round: one prompt sent to several panes at once, as plain data.

The window (``ui.main_window``) and ``triptych compare`` both keep their round here: which
panes started, which are still running, what each produced, which failed and why, and
whether the round is over. Panes are keys of any kind (the window's pane widgets, the
command line's pane indexes).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from desktop_app.engine.protocol import GenerationResult

Key = TypeVar("Key", bound=Hashable)


@dataclass
class Round(Generic[Key]):
    """The panes of one round, in the order they started."""

    labels: dict[Key, str] = field(default_factory=dict)  # "pane 2 (qwen3-0.6b)"
    pending: set[Key] = field(default_factory=set)
    results: dict[Key, GenerationResult] = field(default_factory=dict)
    failures: dict[Key, str] = field(default_factory=dict)

    def start(self, pane: Key, label: str) -> None:
        self.labels[pane] = label
        self.pending.add(pane)

    def finish(self, pane: Key, result: GenerationResult | None = None, *,
               failure: str | None = None) -> None:
        """A pane's reply ended: with its result, and a sentence if it failed."""
        if result is not None:
            self.results[pane] = result
        if failure is not None:
            self.failures[pane] = failure
        self.pending.discard(pane)

    def drop(self, pane: Key) -> None:
        """The pane left the round (removed from the window): it no longer counts."""
        self.pending.discard(pane)
        self.labels.pop(pane, None)
        self.results.pop(pane, None)
        self.failures.pop(pane, None)

    @property
    def started(self) -> int:
        return len(self.labels)

    @property
    def done(self) -> bool:
        return not self.pending

    @property
    def ok(self) -> bool:
        """Every pane that started finished without failing (one that never finished, as
        after Ctrl+C, counts as failed)."""
        return not self.failures and all(pane in self.results for pane in self.labels)

    def failure_lines(self) -> list[str]:
        """``pane 2 (qwen3-0.6b): The model's worker process was killed.``, in start order."""
        return [f"{self.labels[pane]}: {message}" for pane, message in self.failures.items()]
