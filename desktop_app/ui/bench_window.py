"""Window figures for ``triptych bench``: GUI-thread stalls and append cost.

Run in its own offscreen process by :func:`desktop_app.bench.bench_window`, so the
benchmark's own process never loads Qt.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

APPEND_CHECKPOINTS = (1_000, 5_000, 10_000, 20_000)


_APP: Any = None  # held for the process's life: Qt must outlive every widget


def _app() -> Any:
    global _APP
    from PySide6.QtWidgets import QApplication

    _APP = QApplication.instance() or QApplication(["triptych-bench"])
    return _APP


def _dispose(widget: Any) -> None:
    """Delete a widget now, on this thread, while the application still exists."""
    from PySide6.QtCore import QCoreApplication, QEvent

    widget.close()
    widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


def measure_streaming(model_ids: list[str], n_tokens: int) -> dict[str, Any]:
    """Three panes stream at once; a 5 ms timer on the GUI thread records every gap."""
    from PySide6.QtCore import QEventLoop, QTimer

    from desktop_app.catalog import load_catalog
    from desktop_app.ui.main_window import MainWindow

    app = _app()
    window = MainWindow(load_catalog(), models=model_ids, remember=False)
    window.resize(1600, 900)
    for pane in window.panes:
        pane.set_overrides(max_tokens=n_tokens, temperature=0.8)
    window.prompt.setPlainText("Write a short essay about rivers and mountains.")
    window.show()
    app.processEvents()
    ticks: list[float] = []
    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    loop = QEventLoop()
    window.allFinished.connect(lambda _ok: loop.quit())
    QTimer.singleShot(300_000, loop.quit)
    started = time.perf_counter()
    timer.start()
    window.send_all()
    loop.exec()
    timer.stop()
    wall = time.perf_counter() - started
    tokens = sum(turn.tokens for pane in window.panes for turn in pane.session.turns)
    window.shutdown()
    _dispose(window)
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    return {
        "panes": model_ids,
        "tokens_streamed": tokens,
        "wall_s": round(wall, 3),
        "longest_stall_ms": round(max(gaps) * 1000, 1) if gaps else None,
        "mean_frame_interval_ms": round(statistics.mean(gaps) * 1000, 2) if gaps else None,
        "timer_interval_ms": 5,
    }


def measure_append_cost(samples: int = 40) -> dict[str, float]:
    """Median µs to append one token (and repaint) as a thinking section grows."""
    from desktop_app.catalog import load_catalog
    from desktop_app.conversation import Turn
    from desktop_app.ui.pane import Pane, PaneConfig
    from desktop_app.ui.turn import TurnWidget

    app = _app()
    catalog = load_catalog()
    entry = next(iter(catalog))
    pane = Pane(catalog, PaneConfig(model_id=entry.id))
    pane.resize(500, 800)
    pane.show()
    turn = TurnWidget(Turn(prompt="bench"), entry)
    pane.transcript_layout.insertWidget(0, turn)
    turn.thinking.start_live()
    size = 0
    costs: dict[str, float] = {}
    for checkpoint in APPEND_CHECKPOINTS:
        while size < checkpoint:
            turn.thinking.append("word " * 500)
            size += 500
        app.processEvents()
        times = []
        for _ in range(samples):
            started = time.perf_counter()
            turn.thinking.append("word ")
            app.processEvents()
            times.append(time.perf_counter() - started)
        size += samples
        costs[str(checkpoint)] = round(statistics.median(times) * 1e6, 1)
    pane.shutdown()
    _dispose(pane)
    return costs


def measure_window(model_ids: list[str], n_tokens: int) -> dict[str, Any]:
    """Every window figure as one dict (see ``desktop_app.bench``)."""
    figures = measure_streaming(model_ids, n_tokens)
    costs = measure_append_cost()
    figures["append_cost_us"] = costs
    first, last = costs[str(APPEND_CHECKPOINTS[0])], costs[str(APPEND_CHECKPOINTS[-1])]
    figures["append_cost_growth"] = round(last / first, 2) if first else None
    from desktop_app.worker_process import peak_rss_mb

    peak = peak_rss_mb()  # this process is the whole window app: three panes, one turn each
    figures["app_peak_rss_mb"] = round(peak, 1) if peak is not None else None
    return figures
