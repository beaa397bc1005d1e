"""Window figures for ``triptych bench``: GUI-thread stalls and append cost.

Each ``measure_*`` runs in its own offscreen process (:mod:`desktop_app.bench.app`), so
the benchmark's own process never loads Qt. A stall is the longest gap between ticks of a
5 ms timer on the GUI thread: whatever held the thread that long held every repaint too.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

APPEND_CHECKPOINTS = (1_000, 5_000, 10_000, 20_000)
TIMER_INTERVAL_MS = 5
# A question every model answers with a number, so each rollout is checked against a key.
ROLLOUTS_PROMPT = "What is 7 * 8? Answer with the number."
ROLLOUTS_KEY = "56"


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


class _StallClock:
    """Records every tick of a 5 ms timer on the GUI thread while it runs."""

    def __init__(self) -> None:
        from PySide6.QtCore import QTimer

        self.ticks: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TIMER_INTERVAL_MS)
        self.timer.timeout.connect(lambda: self.ticks.append(time.perf_counter()))

    def figures(self) -> dict[str, Any]:
        gaps = [b - a for a, b in zip(self.ticks, self.ticks[1:])]
        return {
            "longest_stall_ms": round(max(gaps) * 1000, 1) if gaps else None,
            "mean_frame_interval_ms": round(statistics.mean(gaps) * 1000, 2) if gaps else None,
            "timer_interval_ms": TIMER_INTERVAL_MS,
            "timer_ticks": len(self.ticks),
        }


def measure_streaming(model_ids: list[str], n_tokens: int,
                      sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """Three panes stream at once; a 5 ms timer on the GUI thread records every gap."""
    from PySide6.QtCore import QEventLoop, QTimer

    from desktop_app.models.catalog import load_catalog
    from desktop_app.ui.main_window import MainWindow

    app = _app()
    window = MainWindow(load_catalog(), models=model_ids, remember=False)
    window.resize(1600, 900)
    for pane in window.panes:
        pane.set_overrides(max_tokens=n_tokens, **(sampler or {}))
    window.prompt.setPlainText("Write a short essay about rivers and mountains.")
    window.show()
    app.processEvents()
    clock = _StallClock()
    loop = QEventLoop()
    window.allFinished.connect(lambda _ok: loop.quit())
    QTimer.singleShot(300_000, loop.quit)
    started = time.perf_counter()
    clock.timer.start()
    window.send_all()
    loop.exec()
    clock.timer.stop()
    wall = time.perf_counter() - started
    tokens = sum(turn.tokens for pane in window.panes for turn in pane.session.turns)
    window.shutdown()
    _dispose(window)
    return {"panes": model_ids, "tokens_streamed": tokens, "wall_s": round(wall, 3),
            **clock.figures()}


def measure_rollouts(model_ids: list[str], n_tokens: int, rollouts: int,
                     sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """Each pane opens its Rollouts window and samples ``rollouts`` answers, all panes at
    once, each answer checked against the key as it finishes (the rollouts issue's cost
    case: 3 panes × 16); a 5 ms timer on the GUI thread records every gap meanwhile.

    Timed from the three Run presses until the last run has finished (its model loading
    included: the window must not wait on that either)."""
    from PySide6.QtCore import QEventLoop, QTimer

    from desktop_app.models.catalog import load_catalog
    from desktop_app.session.generation import wait_for_closing
    from desktop_app.ui.main_window import MainWindow

    app = _app()
    window = MainWindow(load_catalog(), models=model_ids, remember=False)
    window.resize(1600, 900)
    window.show()
    runs: dict[int, Any] = {}  # pane index -> its finished RolloutRun (None: it failed)
    loop = QEventLoop()
    clock = _StallClock()
    views: list[Any] = []

    def on_finished(index: int) -> Any:
        def finished(run: Any) -> None:
            runs[index] = run
            if len(runs) == len(views):
                loop.quit()
        return finished

    try:
        for pane in window.panes:
            pane.set_overrides(max_tokens=n_tokens, **(sampler or {}))
            view = pane.open_rollouts()
            if view is None:
                raise RuntimeError(f"{pane.config.model_id} is not in the catalog")
            view.prompt_edit.setPlainText(ROLLOUTS_PROMPT)
            view.key_edit.setText(ROLLOUTS_KEY)
            view.count.setValue(rollouts)
            view.runFinished.connect(on_finished(len(views)))
            views.append(view)
        app.processEvents()
        QTimer.singleShot(300_000, loop.quit)
        started = time.perf_counter()
        clock.timer.start()
        for view in views:
            if not view.run():
                raise RuntimeError(f"the rollouts did not start: {view.figures.text()}")
        loop.exec()
        clock.timer.stop()
        wall = time.perf_counter() - started
    finally:
        window.shutdown()  # closes every pane's Rollouts window and its model process
        _dispose(window)
        wait_for_closing()
    finished: list[Any] = [runs.get(index) for index in range(len(views))]
    if not all(run is not None and run.error is None for run in finished):
        failed = [run.error for run in finished if run is not None and run.error]
        raise RuntimeError(failed[0] if failed else "a rollouts run failed or never finished")
    return {
        "panes": model_ids,
        "rollouts_per_pane": rollouts,
        "tokens_per_rollout": n_tokens,
        "rollouts_finished": sum(r.finished for run in finished for r in run.rollouts),
        "rollouts_checked": sum(len(run.checked) for run in finished),
        "tokens_generated": sum(run.tokens for run in finished),
        "generation_wall_s": [round(run.wall_s, 3) for run in finished],
        "wall_s": round(wall, 3),
        **clock.figures(),
    }


def measure_append_cost(samples: int = 40) -> dict[str, float]:
    """Median µs to append one token (and repaint) as a thinking section grows."""
    from desktop_app.models.catalog import load_catalog
    from desktop_app.session.pane import PaneConfig
    from desktop_app.session.turn import Turn
    from desktop_app.ui.pane import Pane
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


def measure_window(model_ids: list[str], n_tokens: int,
                   sampler: dict[str, float | int] | None = None) -> dict[str, Any]:
    """Every window figure as one dict (see ``desktop_app.bench``)."""
    figures = measure_streaming(model_ids, n_tokens, sampler)
    costs = measure_append_cost()
    figures["append_cost_us"] = costs
    first, last = costs[str(APPEND_CHECKPOINTS[0])], costs[str(APPEND_CHECKPOINTS[-1])]
    figures["append_cost_growth"] = round(last / first, 2) if first else None
    from desktop_app.engine.child import peak_rss_mb

    peak = peak_rss_mb()  # this process is the whole window app: three panes, one turn each
    figures["app_peak_rss_mb"] = round(peak, 1) if peak is not None else None
    return figures


LAB_TEXT = "The capital of France is"
LAB_MOVE_MS = 16  # a dragged slider moves about once a frame


class _CountingHandle:
    """A model handle that counts the generations asked of it (the lab must ask none)."""

    def __init__(self, handle: Any, counter: list[int]):
        self._handle = handle
        self._counter = counter

    def generate(self, request: Any) -> Any:
        self._counter[0] += 1
        return self._handle.generate(request)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)


def _lab_moves() -> list[tuple[str, int]]:
    """A drag of every slider over its range and back, one value per frame, the way a
    hand moves them: (slider, value)."""
    moves: list[tuple[str, int]] = []
    for name, values in (("temperature", [*range(100, -1, -4), *range(0, 201, 4)]),
                         ("top_p", [*range(100, 4, -3)]),
                         ("min_p", [*range(0, 51, 2), *range(50, -1, -5)]),
                         ("top_k", [*range(0, 101, 4), 0]),
                         ("top_p", [*range(5, 101, 5)]),
                         ("temperature", [*range(200, 99, -5)])):
        moves += [(name, value) for value in values]
    return moves


def measure_lab(model_ids: list[str]) -> dict[str, Any]:
    """The next-token explorer on these models asks once; then every lab slider is
    dragged over its range (a value per frame, the histogram on) while a 5 ms timer on the
    GUI thread records every gap. ``decodes``: requests that reached a model meanwhile."""
    from PySide6.QtCore import QEventLoop, QTimer

    from desktop_app.models.catalog import load_catalog
    from desktop_app.session.generation import default_worker_factory, wait_for_closing
    from desktop_app.ui.explorer import NextTokenExplorer

    app = _app()
    catalog = load_catalog()
    entries = [catalog.get(model_id) for model_id in model_ids]
    counter = [0]
    dialog = NextTokenExplorer(
        entries, lambda entry: _CountingHandle(default_worker_factory(entry), counter),
        text=LAB_TEXT)
    dialog.resize(1600, 900)
    dialog.show()
    try:
        dialog.ask()
        deadline = time.monotonic() + 300
        while (dialog.busy or not all(c.result for c in dialog.columns)) \
                and time.monotonic() < deadline:
            app.processEvents()
            time.sleep(0.01)
        failed = [c.result.error for c in dialog.columns
                  if c.result is not None and c.result.error]
        if failed or not all(c.distribution is not None for c in dialog.columns):
            raise RuntimeError(failed[0] if failed else "the explorer got no distribution")
        vocabulary = [c.distribution.size for c in dialog.columns if c.distribution]
        asked = counter[0]
        dialog.lab.sample()  # the histogram follows every move: the costliest case
        moves = _lab_moves()
        sliders = {name: getattr(dialog.lab, name) for name, _ in moves}
        clock = _StallClock()
        loop = QEventLoop()
        step = [0]
        durations: list[float] = []

        def move() -> None:
            if step[0] >= len(moves):
                loop.quit()
                return
            name, value = moves[step[0]]
            step[0] += 1
            started = time.perf_counter()
            sliders[name].setValue(value)
            durations.append(time.perf_counter() - started)

        mover = QTimer()
        mover.setInterval(LAB_MOVE_MS)
        mover.timeout.connect(move)
        QTimer.singleShot(120_000, loop.quit)
        started = time.perf_counter()
        clock.timer.start()
        mover.start()
        loop.exec()
        mover.stop()
        clock.timer.stop()
        wall = time.perf_counter() - started
    finally:
        dialog.done(0)
        _dispose(dialog)
        wait_for_closing()
    return {"vocabulary": vocabulary, "moves": step[0], "decodes": counter[0] - asked,
            "reshape_ms_median": round(statistics.median(durations) * 1000, 2),
            "reshape_ms_max": round(max(durations) * 1000, 2), "wall_s": round(wall, 3),
            **clock.figures()}
