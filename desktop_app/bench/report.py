"""A bench report as one list of rows, and its two renderings: the README's Markdown table
(``triptych bench --markdown``) and the terminal's plain text (``triptych bench``).

Reports made before a figure existed simply lack its section: its row is left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Row:
    """One measure: what Triptych got, against what, the ratio and the target."""

    measure: str
    triptych: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    headline: bool = False  # a ratio held to a target: bold in the README


def report_rows(report: dict[str, Any]) -> list[Row]:
    """Every figure of ``report`` in the README's order."""
    rows: list[Row] = []
    single, comparison = report.get("single_pane"), report.get("comparison")
    if single:
        rows.append(Row(
            f"one pane, decode tokens/s ({single['model']}, {single['threads']} threads)",
            str(single["engine_tokens_per_s"]),
            f"{single['bare_tokens_per_s']} (bare llama-cpp-python loop)",
            str(single["ratio"]), "≥ 0.95", headline=True))
    if comparison:
        rows.append(Row(
            f"three panes ({', '.join(comparison['models'])}), wall s until all finish",
            str(comparison["wall_s"]),
            f"{comparison['sum_alone_s']} (each alone, best thread count, summed)",
            str(comparison["ratio"]), "≤ 1.0", headline=True))
        ttfts = ", ".join(f"{p['model']} {p['ttft_s']} s" for p in comparison["panes"] if p)
        rows.append(Row("time to first token in each pane of the comparison", ttfts))
    rows += _engine_rows(report)
    rows += _serve_rows(report)
    rows += _window_rows(report)
    startup = report.get("startup")
    if startup:
        rows.append(Row("start-up: launch to window shown / to first token",
                        f"{startup.get('launch_to_window_s')} s / "
                        f"{startup.get('launch_to_first_token_s')} s"))
    memory = report.get("memory")
    if memory:
        workers = ", ".join(f"{k} {v} MB" for k, v in memory["worker_peak_rss_mb"].items())
        rows.append(Row("peak memory: window app / each worker",
                        f"{memory['app_peak_rss_mb']} MB / {workers}"))
    return rows


def _engine_rows(report: dict[str, Any]) -> list[Row]:
    rows = []
    native = report.get("native")
    for model in (native.get("models", [native]) if native else []):
        rows.append(Row(
            f"one pane, decode tokens/s ({model['model']}, {model['threads']} threads)",
            str(model["engine_tokens_per_s"]),
            f"{model['native_tokens_per_s']} (native llama-bench, alternating runs)",
            str(model["ratio"]), "≥ 0.95", headline=True))
    for key, what in (("contention", "keeps a core busy"),
                      ("contention_light", "keeps 60 % of a core busy")):
        contention = report.get(key)
        if not contention:
            continue
        rates = contention["baseline_tokens_per_s"]
        best = max((v for v in rates.values() if v), default=None)
        ended = sorted({p for p in contention.get("engine_ended_on") or [] if p})
        threads = f"; ended on {', '.join(ended)}" if ended else ""
        best_at = (f" at {contention['baseline_best_threads']} threads"
                   if contention.get("baseline_best_threads") else "")
        rows.append(Row(
            f"one pane while another process {what}, tokens/s{threads}",
            str(contention["engine_tokens_per_s"]),
            f"{best}{best_at} ({contention['baseline']}, best of {len(rates)} thread counts)",
            str(contention["ratio"]), "≥ 0.8", headline=key == "contention"))
    reuse = report.get("prompt_reuse")
    if reuse:
        rows.append(Row(
            f"time to first token of turn 3 ({reuse['turn3_prompt_cached']} of "
            f"{reuse['turn3_prompt_tokens']} prompt tokens cached)",
            f"{reuse['turn3_ttft_s']} s",
            f"{reuse['fresh_ttft_s']} s (the same question asked fresh; "
            f"{reuse['turn3_uncached_ttft_s']} s with nothing cached)",
            str(reuse["ratio"]), "≤ 1.2", headline=True))
    many = report.get("many_sequences")
    if many:
        totals = many["total_tokens_per_s"]
        rows.append(Row(
            f"{many['sequences']} sequences from one prompt, total tokens/s",
            str(totals[str(many["sequences"])]), f"{totals.get('1')} (one sequence)",
            str(many["ratio"]), "≥ 1.6", headline=True))
    logprobs = report.get("logprobs")
    if logprobs:
        sampling = logprobs.get("sampling")  # reports before issue 29: greedy, no sampled one
        what = (f"decode tokens/s with each token's top-{logprobs['k']} of the model's and of "
                f"the sampled distribution (temperature {sampling['temperature']:g}, top-k "
                f"{sampling['top_k']})" if sampling else
                f"decode tokens/s with each token's top-{logprobs['k']} log-probabilities")
        rows.append(Row(what, str(logprobs["on_tokens_per_s"]),
                        f"{logprobs['off_tokens_per_s']} (without)",
                        str(logprobs["ratio"]), "≥ 0.8", headline=True))
    embeddings = report.get("embeddings")
    if embeddings:
        rows.append(Row(
            f"embedding {embeddings['texts']} answers ({embeddings['model']}, "
            f"{embeddings['threads']} threads), s",
            str(embeddings["engine_s"]),
            f"{embeddings['bare_s']} (llama-cpp-python's own embed)",
            str(embeddings["ratio"]), "≤ 2.0", headline=True))
    fit = report.get("reward_fit")
    if fit:
        rows.append(Row(f"training the reward model on {fit['votes']} votes "
                        f"({fit['answers']} answers, {fit['dimensions']} features), s",
                        str(fit["fit_s"]), target="< 1.0", headline=True))
    return rows


def _serve_rows(report: dict[str, Any]) -> list[Row]:
    serve = report.get("serve")
    if not serve:
        return []
    rounds = serve["rounds"]
    counts = " / ".join(str(r["students"]) for r in rounds)
    return [
        Row(f"a room serving {serve['model']}: tokens/s per student, {counts} asking at once "
            f"(median, sending to last token)",
            " / ".join(str(r["per_student_tokens_per_s_median"]) for r in rounds),
            f"{serve['local_pane_tokens_per_s']} (one local pane, the same way)",
            str(serve["ratio"]) if serve.get("ratio") is not None else ""),
        Row(f"the same room: all students' tokens/s together, {counts} at once",
            " / ".join(str(r["room_tokens_per_s"]) for r in rounds)),
    ]


def _window_rows(report: dict[str, Any]) -> list[Row]:
    rows = []
    window = report.get("window")
    streaming = "GUI thread while three panes stream"
    if window and "error" in window:
        rows.append(Row(streaming, window["error"]))
    elif window:
        rows.append(Row(
            f"{streaming}: longest stall / mean interval of a 5 ms timer",
            f"{window['longest_stall_ms']} ms / {window['mean_frame_interval_ms']} ms",
            target="stall < 100 ms"))
    rollouts = report.get("rollouts_window")
    if rollouts:
        what = (f"GUI thread while {len(rollouts['panes'])} Rollouts windows each sample "
                f"{rollouts['rollouts_per_pane']} answers")
        if "error" in rollouts:
            rows.append(Row(what, rollouts["error"]))
        else:
            rows.append(Row(
                f"{what} (at most {rollouts['tokens_per_rollout']} tokens each): longest "
                f"stall / mean interval of a 5 ms timer",
                f"{rollouts['longest_stall_ms']} ms / {rollouts['mean_frame_interval_ms']} ms",
                target=f"stall ≤ {rollouts['target_ms']} ms"))
    lab = report.get("lab_window")
    if lab:
        what = "GUI thread while the explorer's sampling-lab sliders are dragged"
        if "error" in lab:
            rows.append(Row(what, lab["error"]))
        else:
            vocab = ", ".join(f"{m} {n:,}" for m, n in zip(lab["models"], lab["vocabulary"]))
            rows.append(Row(
                f"{what} ({lab['moves']} moves over whole distributions: {vocab} tokens; "
                f"{lab['decodes']} decodes): longest stall / mean interval of a 5 ms timer",
                f"{lab['longest_stall_ms']} ms / {lab['mean_frame_interval_ms']} ms",
                target=f"stall ≤ {lab['target_ms']} ms"))
    if window and "error" not in window:
        costs = " / ".join(str(v) for v in window["append_cost_us"].values())
        rows.append(Row("appending one token to thinking at 1k / 5k / 10k / 20k tokens",
                        f"{costs} µs", ratio=f"{window['append_cost_growth']} (20k vs 1k)",
                        target="flat"))
    return rows


# ----------------------------------------------------------------------------- renderings


def _markdown_row(cells: list[str]) -> str:
    return "|" + "".join(f" {cell} |" if cell else " |" for cell in cells)


def format_markdown(report: dict[str, Any]) -> str:
    """The README's figures table for a report (``triptych bench --markdown``)."""
    machine, single = report["machine"], report.get("single_pane") or {}
    lines = ["| measure | Triptych | baseline | ratio | target |", "|---|---|---|---|---|"]
    for row in report_rows(report):
        ratio = f"**{row.ratio}**" if row.headline and row.ratio else row.ratio
        lines.append(_markdown_row([row.measure, row.triptych, row.baseline, ratio, row.target]))
    head = (f"On {machine['cpu']}, {machine['physical_cores']} cores, {machine['memory_gb']} GB, "
            f"{machine['os']}, Python {machine['python']}, llama-cpp-python "
            f"{machine['llama_cpp_python']}, {single.get('tokens')} tokens per generation, "
            f"medians of {single.get('runs')} runs"
            + (f"; {machine['llama_cpp_here']}" if machine.get("llama_cpp_here") else "") + ":")
    return head + "\n\n" + "\n".join(lines)


def format_table(report: dict[str, Any]) -> str:
    """The same rows as plain text for a terminal: each measure, then its figures."""
    machine = report["machine"]
    lines = [f"Triptych {machine['triptych']} · {machine['cpu']} · "
             f"{machine['physical_cores']} cores · {machine['memory_gb']} GB · "
             f"llama-cpp-python {machine['llama_cpp_python']}"]
    if machine.get("llama_cpp_here"):
        lines.append(machine["llama_cpp_here"])
    for row in report_rows(report):
        figures = [row.triptych]
        if row.baseline:
            figures.append(f"baseline {row.baseline}")
        if row.ratio:
            figures.append(f"ratio {row.ratio}")
        if row.target:
            figures.append(f"target {row.target}")
        lines += ["", row.measure, "    " + " · ".join(figures)]
    return "\n".join(lines)
