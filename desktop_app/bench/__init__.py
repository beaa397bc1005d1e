"""``triptych bench``: Triptych measured against bare llama.cpp, in one run.

Every figure is a ratio against a baseline run in the same process tree, on this
machine, in the same invocation, so the numbers mean something on any laptop:

1. one pane: decode tokens/s through the engine vs a plain llama-cpp-python loop
   (same model, threads, prompt and token count) — target ≥ 0.95; against native
   ``llama-bench`` when one is given; with a core kept busy (``--contention``);
2. a comparison: three panes at once, wall time until all finish vs the sum of each
   model alone at its best thread count — target ≤ 1.0; time to first token per pane;
3. prompt reuse, N sequences from one prompt, the cost of top-k log-probabilities;
4. the window: the GUI thread's longest stall while three panes stream, and while three
   Rollouts windows sample 16 answers each (target ≤ 50 ms), and the cost of appending
   token N as a transcript grows to 20 000 tokens;
5. start-up: launch to window shown, and to first token on a starter model;
6. memory: peak RSS of the app and of each worker process.

:mod:`.engine` and :mod:`.app` measure, :mod:`.command` runs them, :mod:`.report` renders;
the ``triptych bench`` command itself is :mod:`desktop_app.cli.bench`.
"""

from __future__ import annotations

from desktop_app.bench.report import format_markdown, format_table
from desktop_app.bench.run import run_benchmarks

__all__ = ["format_markdown", "format_table", "run_benchmarks"]
