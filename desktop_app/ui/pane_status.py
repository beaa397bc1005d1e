"""What a pane's footer says: a state from one enum, and the one table of its words.

The pane decides from the state, never from the footer's text, so the words can change
(or be translated) without changing what the pane does.
"""

from __future__ import annotations

from enum import StrEnum

from desktop_app.engine.protocol import FAILURE_LABELS, FINISH_LABELS, FailureKind, FinishReason
from desktop_app.models.catalog import Availability
from desktop_app.session.turn import TURN_STATE_LABELS, TurnState


class PaneStatus(StrEnum):
    """What the pane's footer says. The pane decides from this state, never from the
    footer's words: those come from :data:`FOOTER_LABELS`, filled in with the state's
    figures (a model's :class:`Availability`, a :class:`TurnState`, a :class:`FinishReason`
    or a :class:`FailureKind` is shown by that enum's own label table)."""

    READY = "ready"  # the model can run and nothing else needs saying
    UNKNOWN_MODEL = "unknown-model"  # the pane's model left the catalog
    NOT_READY = "not-ready"  # the model can't run: not downloaded, file missing…
    TURN = "turn"  # a turn has started (its TurnState)
    STREAMING = "streaming"  # a turn is thinking or answering, with its figures
    LOADING = "loading"  # the model is loading
    LOADED = "loaded"  # the model has loaded
    STOPPING = "stopping"  # asked to stop; the run has not ended yet
    FINISHED = "finished"  # the reply ended (its FinishReason)
    FAILED = "failed"  # the turn failed (its FailureKind)
    CONTINUE_FAILED = "continue-failed"  # a Continue failed; the reply is as it was


# status -> the footer's words (str.format fields: the status's figures). The one table.
FOOTER_LABELS: dict[PaneStatus, str] = {
    PaneStatus.READY: "Ready",
    PaneStatus.UNKNOWN_MODEL: "Unknown model",
    PaneStatus.NOT_READY: "{availability}",
    PaneStatus.TURN: "{turn}",
    PaneStatus.STREAMING: "{turn} {tokens:,} tokens · {elapsed}",
    PaneStatus.LOADING: "Loading model…",
    PaneStatus.LOADED: "Loaded in {seconds:.1f} s",
    PaneStatus.STOPPING: "Stopping…",
    PaneStatus.FINISHED: "{finish}",
    PaneStatus.FAILED: "{failure}",
    PaneStatus.CONTINUE_FAILED: "Continue failed",
}

# a run's progress: once a stop is asked for, "Stopping…" stands until the run ends
RUN_STATUSES = frozenset({PaneStatus.TURN, PaneStatus.STREAMING, PaneStatus.LOADING,
                          PaneStatus.LOADED})

# the footer is about the model (not about the last run): "Ready" replaces it once it can run
MODEL_STATUSES = frozenset({PaneStatus.UNKNOWN_MODEL, PaneStatus.NOT_READY})


def _capitalised(label: str) -> str:
    return label[:1].upper() + label[1:]


def _words(value: object) -> object:
    """A figure as the footer shows it: an enum by its own label table."""
    if isinstance(value, Availability):
        return _capitalised(value.label)
    if isinstance(value, TurnState):
        return TURN_STATE_LABELS[value]
    if isinstance(value, FinishReason):
        return _capitalised(FINISH_LABELS[value])
    if isinstance(value, FailureKind):
        return FAILURE_LABELS[value]
    return value


def footer_text(status: PaneStatus, figures: dict[str, object]) -> str:
    """The footer's words for ``status`` and its figures."""
    return FOOTER_LABELS[status].format(**{name: _words(v) for name, v in figures.items()})
