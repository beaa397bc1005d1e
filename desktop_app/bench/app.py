"""The window's figures for ``triptych bench``, each measured in a fresh app process.

The GUI figures (the longest stall of the GUI thread while three panes stream, or while
three Rollouts windows sample at once; the cost of appending a token) come from
:mod:`desktop_app.ui.bench_window`, run offscreen in a child process, so this process (the
core) never loads Qt. Start-up times launch the app itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

# The rollouts issue's cost target: 3 panes × 16 rollouts keep every GUI stall at or under
# this many milliseconds.
ROLLOUTS_STALL_TARGET_MS = 50
# The sampling lab's: dragging a slider reshapes every column's distribution with no
# stall over this many milliseconds (issue 29).
LAB_STALL_TARGET_MS = 50
ROLLOUTS_PER_PANE = 16


def _offscreen_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    return env


def _run_window_probe(function: str, *args: Any, timeout: float = 600) -> dict[str, Any]:
    """Call ``desktop_app.ui.bench_window.<function>(*args)`` in a new process and return the
    dict it prints (or ``{"error": one sentence}``). The arguments travel as JSON."""
    code = (
        "import json, sys\n"
        f"from desktop_app.ui.bench_window import {function}\n"
        f"print('FIGURES ' + json.dumps({function}(*json.loads(sys.argv[1]))))\n"
    )
    try:
        done = subprocess.run([sys.executable, "-c", code, json.dumps(args)],
                              env=_offscreen_env(),
                              capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"the window benchmark did not finish within {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("FIGURES ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"the window benchmark failed: {tail}"}
    return dict(json.loads(lines[-1][len("FIGURES "):]))


def bench_window(entries: list[Any], n_tokens: int,
                 sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """GUI-thread stall and frame interval while three panes stream ``n_tokens`` each, and
    the cost of appending one token as a transcript grows."""
    return _run_window_probe("measure_window", [entry.id for entry in entries], n_tokens,
                             sampler or {})


def bench_rollouts_window(entries: list[Any], n_tokens: int,
                          rollouts: int = ROLLOUTS_PER_PANE,
                          sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """GUI-thread stall while each pane's Rollouts window samples ``rollouts`` answers of
    ``n_tokens`` at most, all three at once, each checked as it finishes."""
    ids = [entry.id for entry in entries]
    return {"panes": ids, "rollouts_per_pane": rollouts, "tokens_per_rollout": n_tokens,
            "target_ms": ROLLOUTS_STALL_TARGET_MS,
            **_run_window_probe("measure_rollouts", ids, n_tokens, rollouts, sampler or {})}


def bench_lab_window(entries: list[Any]) -> dict[str, Any]:
    """GUI-thread stall while the next-token explorer's sampling-lab sliders are dragged
    over each model's whole next-token distribution (no decode: the figure says how many
    requests reached the models meanwhile)."""
    return {"models": [entry.id for entry in entries], "target_ms": LAB_STALL_TARGET_MS,
            **_run_window_probe("measure_lab", [entry.id for entry in entries])}


def bench_startup(model_id: str) -> dict[str, Any]:
    """Launch to window shown, and launch to first token, each in a fresh process."""
    env = _offscreen_env()
    figures: dict[str, Any] = {}
    for key, extra in (("launch_to_window_s", "window"), ("launch_to_first_token_s", "token")):
        env["TRIPTYCH_STARTUP_PROBE"] = extra
        started = time.perf_counter()
        launched_at = time.time()
        done = subprocess.run(
            [sys.executable, "-m", "desktop_app", "--models", model_id, "--prompt", "Hi",
             "--max-tokens", "2"],
            env=env, capture_output=True, text=True, timeout=300,
        )
        marker = [line for line in done.stdout.splitlines() if line.startswith("STARTUP ")]
        if done.returncode == 0 and marker:
            figures[key] = round(float(marker[-1].split()[1]) - launched_at, 3)
        else:
            figures[key] = None
            figures[f"{key}_error"] = (done.stderr.strip().splitlines() or ["no output"])[-1]
        figures[f"{key}_process_wall_s"] = round(time.perf_counter() - started, 3)
    return figures
