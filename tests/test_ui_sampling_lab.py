"""The explorer's sampling lab on the real Qt event loop: sliders reshape the distribution a
model already sent (no new request), "Sample ×100" draws from exactly what is shown with a
seed, and the lab fits a projector. The scripted engine stands in for the models (a
5,000-token distribution); one test drags the sliders over the real starters' whole
vocabularies, as ``triptych bench`` does."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtGui import QColor

from desktop_app.engine.protocol import (
    Delta,
    Finished,
    FinishReason,
    GenerationResult,
    PromptSent,
    Sampling,
    TokenLogprob,
)
from desktop_app.engine.sampling import draw_counts, sampled_distribution, sorted_log_softmax
from desktop_app.session.generation import wait_for_closing
from desktop_app.ui import theme
from desktop_app.ui.explorer import NextTokenExplorer, open_explorer
from desktop_app.ui.sampling_lab import DRAWS, row_text
from desktop_app.ui.tasks import wait_for_tasks

VOCABULARY = 5000
WHOLE = sorted_log_softmax(np.random.default_rng(7).normal(0, 2.5, VOCABULARY)
                           .astype(np.float32))
TOP = tuple((f" t{i}", float(lp)) for i, lp in enumerate(WHOLE[:20]))


def whole_script(request):
    """A local model's answer to an explorer step: 20 tokens named, every token's figure."""
    whole = WHOLE.tobytes() if request.whole_distribution else b""
    return [PromptSent(text=request.prompt, n_tokens=3, starts_in_thinking=False, seed=0),
            Delta(thinking="", answer=TOP[0][0], thinking_tokens=0, answer_tokens=1,
                  elapsed_s=0.01, logprob=TokenLogprob(TOP[0][0], TOP[0][1], TOP, whole=whole)),
            Finished(result=GenerationResult(model="", role="",
                                             finish_reason=FinishReason.LENGTH))]


def server_script(request):
    """A server's: its top three only."""
    top = TOP[:3]
    return [PromptSent(text=request.prompt, n_tokens=3, starts_in_thinking=False, seed=0),
            Delta(thinking="", answer=top[0][0], thinking_tokens=0, answer_tokens=1,
                  elapsed_s=0.01, logprob=TokenLogprob(top[0][0], top[0][1], top)),
            Finished(result=GenerationResult(model="", role="",
                                             finish_reason=FinishReason.LENGTH))]


@pytest.fixture
def explorer(qtbot, fake_models, engine):
    engine.default = whole_script
    entries = [e for e in fake_models if e.role in ("base", "instruct")]
    dialog = NextTokenExplorer(entries, engine.worker, text="Once upon a")
    qtbot.addWidget(dialog)
    dialog.resize(1200, 800)
    dialog.show()
    dialog.ask()
    qtbot.waitUntil(lambda: not dialog.busy and all(c.distribution for c in dialog.columns),
                    timeout=5000)
    yield dialog
    assert wait_for_tasks(timeout=5)
    dialog.close()
    assert wait_for_closing()


def shown(column) -> list[str]:
    return [column.tokens.item(i).text() for i in range(column.tokens.count())
            if not column.tokens.item(i).isHidden()]


def expected(column, sampling: Sampling, draws: int = 0, seed: int = 0) -> list[str]:
    """The rows the core computes for this column's distribution (the bars' room as the
    column has it)."""
    from desktop_app.ui.sampling_lab import row_widths

    view = column.distribution.reshape(sampling, draws=draws, seed=seed)
    name, bar = row_widths(column.text_width(), column.tokens.fontMetrics())
    return ([row_text(row, name=name, bar=bar) for row in view.rows]
            + [row_text(view.other, other=view.others, name=name, bar=bar)])


def requests(engine) -> int:
    return sum(len(worker.requests) for worker in engine.workers)


def test_the_sliders_reshape_what_came_back_with_no_new_request(qtbot, explorer, engine):
    asked = requests(engine)
    assert asked == 2 and all(r.whole_distribution for w in engine.workers for r in w.requests)
    column = explorer.columns[0]
    assert column.distribution.complete and column.distribution.size == VOCABULARY
    own = column.distribution.reshape(explorer.lab.sampling())
    assert all(row.sampled == pytest.approx(row.model, rel=1e-5) for row in own.rows)
    assert shown(column) == expected(column, explorer.lab.sampling())
    assert f"{VOCABULARY:,} of {VOCABULARY:,} tokens kept" in column.summary.text()

    lab = explorer.lab
    lab.temperature.setValue(50)
    lab.top_k.setValue(10)
    lab.top_p.setValue(80)
    lab.min_p.setValue(5)
    settings = Sampling(temperature=0.5, top_k=10, top_p=0.8, min_p=0.05, repeat_penalty=1.0)
    assert lab.sampling() == settings
    assert requests(engine) == asked  # reshaped here, not asked again
    for each in explorer.columns:
        assert shown(each) == expected(each, settings)
    view = column.distribution.reshape(settings)
    assert 1 <= view.kept < 10 and f"{view.kept} of {VOCABULARY:,} tokens kept" in \
        column.summary.text()
    muted = QColor(theme.muted_fg())
    for index, row in enumerate(view.rows):  # a token the chain cut is shown, greyed
        colour = column.tokens.item(index).foreground().color()
        assert (colour == muted) == (row.sampled == 0)
    assert sum(row.sampled for row in view.rows) == pytest.approx(1.0, abs=1e-5)


def test_temperature_zero_leaves_the_top_token_for_certain(qtbot, explorer):
    explorer.lab.temperature.setValue(0)
    column = explorer.columns[0]
    first = shown(column)[0]
    assert "100%" in first and first.startswith("·t0")
    assert column.summary.text().startswith(f"1 of {VOCABULARY:,} tokens kept · entropy 0.00")
    explorer.lab.reset_button.click()
    assert explorer.lab.sampling() == Sampling(temperature=1.0, top_k=0, top_p=1.0, min_p=0.0,
                                                repeat_penalty=1.0)


def test_sample_draws_from_exactly_the_shown_distribution_with_a_seed(qtbot, explorer):
    lab, column = explorer.lab, explorer.columns[0]
    lab.temperature.setValue(150)
    lab.top_p.setValue(90)
    lab.sample_button.click()
    assert (lab.draws, lab.seed) == (DRAWS, 1)
    view = column.distribution.reshape(lab.sampling(), draws=DRAWS, seed=1)
    assert sum(row.drawn for row in view.rows) + view.other.drawn == DRAWS
    assert shown(column) == expected(column, lab.sampling(), DRAWS, 1)
    survivors = sampled_distribution(WHOLE, lab.sampling(), is_sorted=True)
    counts = list(draw_counts(survivors.probabilities, DRAWS, 1)) + [0] * VOCABULARY
    assert [row.drawn for row in view.rows] == counts[: len(view.rows)]  # the draws shown
    first = shown(column)
    lab.sample_button.click()  # again: the next seed, other draws
    assert lab.seed == 2 and shown(column) != first
    lab.seed_box.setValue(1)  # the first seed again: the first draws again
    assert shown(column) == first
    lab.top_k.setValue(3)  # the histogram follows the sliders, drawn from what is shown
    view = column.distribution.reshape(lab.sampling(), draws=DRAWS, seed=1)
    assert [row.drawn for row in view.rows[3:]] == [0] * (len(view.rows) - 3)
    assert shown(column) == expected(column, lab.sampling(), DRAWS, 1)


def test_a_servers_few_tokens_are_reshaped_and_said_to_be(qtbot, fake_models, engine):
    engine.default = server_script
    entries = [e for e in fake_models if e.role == "instruct"]
    dialog = NextTokenExplorer(entries, engine.worker, text="Hi")
    qtbot.addWidget(dialog)
    dialog.show()
    try:
        dialog.ask()
        qtbot.waitUntil(lambda: dialog.columns[0].distribution is not None, timeout=5000)
        column = dialog.columns[0]
        assert not column.distribution.complete and column.distribution.size == 3
        assert "3 of the 3 the server sent kept" in column.summary.text()
        dialog.lab.top_k.setValue(1)
        assert "1 of the 3 the server sent kept" in column.summary.text()
    finally:
        assert wait_for_tasks(timeout=5)
        dialog.close()
        assert wait_for_closing()


def test_the_lab_fits_a_projector_with_three_models(qtbot, fake_models, engine, tmp_path):
    """1024×768 in presentation mode, a column per pane (three): nothing overlaps or is
    cut off, the rows keep their figures (the bars give way first)."""
    from desktop_app.ui.main_window import MainWindow
    from tests.test_ui_projector import PROJECTOR, layout_problems

    engine.default = whole_script
    ids = {entry.role: entry.id for entry in fake_models}
    window = MainWindow(fake_models, models=[ids["base"], ids["instruct"], ids["reasoning"]],
                        remember=False, presentation=True, worker_factory=engine.worker)
    qtbot.addWidget(window)
    dialog = open_explorer(window)
    try:
        dialog.resize(*PROJECTOR)
        dialog.text.setPlainText("The capital of France is")
        dialog.ask()
        qtbot.waitUntil(lambda: all(c.distribution for c in dialog.columns), timeout=5000)
        dialog.lab.sample_button.click()
        qtbot.wait(50)
        assert len(dialog.columns) == 3
        assert (dialog.width(), dialog.height()) == PROJECTOR
        problems = layout_problems(dialog)
        assert not problems, "\n".join(problems)
        for column in dialog.columns:  # every row's figures are in view, none elided
            metrics = column.tokens.fontMetrics()
            for text in shown(column):
                figures = text.rstrip(" █")
                assert metrics.horizontalAdvance(figures) <= column.text_width(), text
                assert figures.split()[-1].isdigit()  # the draws: the last figure
        dialog.grab().save(str(tmp_path / "lab-projector.png"))
    finally:
        assert wait_for_tasks(timeout=5)
        dialog.close()
        window.shutdown()
        assert wait_for_closing()


@pytest.mark.slow
def test_dragging_over_the_starters_whole_vocabularies_never_decodes(qtbot, starter_models):
    """``triptych bench``'s lab figure on the real models: the explorer asks once, then
    every slider is dragged a value a frame with the histogram on, a 5 ms timer ticking.
    No request reaches a model meanwhile; the stall is a figure, not held to a time here."""
    from desktop_app.ui.bench_window import measure_lab

    figures = measure_lab(["gemma3-270m-base", "smollm2-135m-instruct"])
    assert figures["vocabulary"] == [262_144, 49_152]
    assert figures["decodes"] == 0 and figures["moves"] > 150
    assert figures["timer_ticks"] > 1
    assert 0 < figures["mean_frame_interval_ms"] <= figures["longest_stall_ms"]
    assert 0 < figures["reshape_ms_median"] <= figures["reshape_ms_max"]
    assert math.isfinite(figures["wall_s"])
