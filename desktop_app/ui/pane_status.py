"""What a pane's footer says: a state from one enum, and the one table of its words.

The pane decides from the state, never from the footer's text, so the words can change
(or be translated) without changing what the pane does.
"""

from __future__ import annotations

from enum import StrEnum

from desktop_app.engine.protocol import FAILURE_LABELS, FINISH_LABELS, FailureKind, FinishReason
from desktop_app.models.catalog import Availability
from desktop_app.session.turn import TURN_STATE_LABELS, TurnState
from desktop_app.text.i18n import N_, _, ngettext, number


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


# the streaming line counts tokens: its singular and plural go through ngettext
STREAMING_LABEL = "{turn} {tokens} tokens · {elapsed}"

# status -> the footer's words (str.format fields: the status's figures, numbers already
# written the locale's way). The one table; translated where it is shown.
FOOTER_LABELS: dict[PaneStatus, str] = {
    PaneStatus.READY: N_("Ready"),
    PaneStatus.UNKNOWN_MODEL: N_("Unknown model"),
    PaneStatus.NOT_READY: "{availability}",
    PaneStatus.TURN: "{turn}",
    PaneStatus.STREAMING: STREAMING_LABEL,
    PaneStatus.LOADING: N_("Loading model…"),
    PaneStatus.LOADED: N_("Loaded in {seconds} s"),
    PaneStatus.STOPPING: N_("Stopping…"),
    PaneStatus.FINISHED: "{finish}",
    PaneStatus.FAILED: "{failure}",
    PaneStatus.CONTINUE_FAILED: N_("Continue failed"),
}

# a run's progress: once a stop is asked for, "Stopping…" stands until the run ends
RUN_STATUSES = frozenset({PaneStatus.TURN, PaneStatus.STREAMING, PaneStatus.LOADING,
                          PaneStatus.LOADED})

# the footer is about the model (not about the last run): "Ready" replaces it once it can run
MODEL_STATUSES = frozenset({PaneStatus.UNKNOWN_MODEL, PaneStatus.NOT_READY})


def _capitalised(label: str) -> str:
    return label[:1].upper() + label[1:]


def _words(value: object) -> object:
    """A figure as the footer shows it: an enum by its own label table (translated), a
    number the locale's way."""
    if isinstance(value, Availability):
        return _capitalised(_(value.label))
    if isinstance(value, TurnState):
        return _(TURN_STATE_LABELS[value])
    if isinstance(value, FinishReason):
        return _capitalised(_(FINISH_LABELS[value]))
    if isinstance(value, FailureKind):
        return _(FAILURE_LABELS[value])
    if isinstance(value, float) and not isinstance(value, bool):
        return number(value, 1)
    if isinstance(value, int) and not isinstance(value, bool):
        return number(value)
    return value


def footer_text(status: PaneStatus, figures: dict[str, object]) -> str:
    """The footer's words for ``status`` and its figures, in the window's language."""
    template = FOOTER_LABELS[status]
    if template == STREAMING_LABEL:  # a count: the language's plural form
        tokens = figures.get("tokens", 0)
        template = ngettext("{turn} {tokens} token · {elapsed}",
                            "{turn} {tokens} tokens · {elapsed}",
                            tokens if isinstance(tokens, int) else 0)
    else:
        template = _(template) if template else template
    return template.format(**{name: _words(v) for name, v in figures.items()})
