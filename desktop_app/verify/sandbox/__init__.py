"""Run untrusted, model-written Python in a separate, confined interpreter.

See README.md in this directory for the threat model. ``run_code`` is the entry point;
``child/`` is what runs inside the sandbox (standard library only).
"""

from desktop_app.verify.sandbox.protections import Limits, Protections
from desktop_app.verify.sandbox.runner import (
    RunResult,
    SandboxBroken,
    Session,
    detect_protections,
    find_python,
    isolation_summary,
    run_code,
)

__all__ = [
    "Limits",
    "Protections",
    "RunResult",
    "SandboxBroken",
    "Session",
    "detect_protections",
    "find_python",
    "isolation_summary",
    "run_code",
]
