"""The status bar's badge for the Verify sandbox, read from the :class:`Protections` the
sandbox reported (never from its sentence)."""

from __future__ import annotations

from dataclasses import dataclass

from desktop_app.text.i18n import N_, _
from desktop_app.verify import Protections, detect_protections

SANDBOX_PREFIX = N_("Verify sandbox: {isolation}")
SANDBOX_UNAVAILABLE = N_("not available in this build")
PARTIAL_MARK = "⚠"  # after the isolation's name: a protection is missing on this machine


@dataclass(frozen=True)
class SandboxBadge:
    """The status bar's few words on the Verify sandbox, and its full sentence (the
    tooltip), both from the :class:`Protections` the sandbox reported."""

    text: str
    tooltip: str
    partial: bool  # something is not confined on this machine (or no sandbox ran)


def isolation_name(protections: Protections) -> str:
    """The outermost isolation that took effect, in a word or two (the badge's text):
    Linux namespaces, Landlock, macOS sandbox-exec, a Windows Job Object, or none beyond
    a separate process with limits."""
    if protections.namespaces:
        return _("namespaces")
    if protections.landlock_fs or protections.landlock_net or protections.landlock_scope:
        return "Landlock"
    if protections.sandbox_exec:
        return "sandbox-exec"
    if protections.job_object:
        return "Job Object"
    return _("process only")


def isolation_badge(protections: Protections | None) -> SandboxBadge:
    """The badge for what confined the sandbox's trial run; None: no sandbox could run."""
    if protections is None:
        return SandboxBadge(_(SANDBOX_PREFIX).format(isolation=_("unavailable")),
                            _(SANDBOX_PREFIX).format(isolation=_(SANDBOX_UNAVAILABLE)),
                            partial=True)
    partial = bool(protections.missing())
    text = _(SANDBOX_PREFIX).format(
        isolation=isolation_name(protections) + (PARTIAL_MARK if partial else ""))
    return SandboxBadge(text, _(SANDBOX_PREFIX).format(isolation=protections.summary()),
                        partial=partial)


def sandbox_protections() -> Protections | None:
    """What confines model code here (the first call runs a trivial program in the
    sandbox); None if no sandbox can run."""
    try:
        return detect_protections()
    except Exception:  # noqa: BLE001 - e.g. no Python to run the sandbox with
        return None
