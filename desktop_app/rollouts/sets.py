"""Practice-set runs: every problem of a set × models × N rollouts, as a table.

Each row is one model on one problem: correct of N, accuracy, and its 95 % Wilson
interval; rows are saved as JSON (everything, rollouts included) and CSV (the table).
The Goodhart figures compare best-of-N by a proxy with best-of-N by the key over the
problems. No Qt.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_app.rollouts.goodhart import NO_KEY, Picks, Proxy, best_of_n, gamed, judge_scores
from desktop_app.rollouts.run import AnswerKey, RolloutRun, run_rollouts, wilson_interval
from desktop_app.text.escape import visible_controls
from desktop_app.verify import PracticeSet, Problem

CSV_FIELDS = ("model", "problem", "kind", "n", "correct", "accuracy", "ci_low", "ci_high",
              "majority_verdict", "pick_longest_correct", "pick_judge_correct")


@dataclass
class SetRow:
    """One model on one problem."""

    problem: Problem
    run: RolloutRun
    scores: list[float | None] | None = None  # the judge's P("yes") per rollout

    @property
    def picks(self) -> Picks:
        return best_of_n(self.run.rollouts, self.scores)

    def table_row(self) -> dict[str, Any]:
        run, picks = self.run, self.picks
        low, high = wilson_interval(run.correct, run.n)

        def pick_correct(index: int | None) -> bool | None:
            return None if index is None else run.rollouts[index].correct

        majority = run.majority()
        return {
            "model": run.model, "problem": self.problem.id, "kind": self.problem.kind,
            "n": run.n, "correct": run.correct,
            "accuracy": round(run.correct / run.n, 4) if run.n else None,
            "ci_low": round(low, 4), "ci_high": round(high, 4),
            "majority_verdict": majority.verdict.value if majority.verdict else None,
            "pick_longest_correct": pick_correct(picks.longest),
            "pick_judge_correct": pick_correct(picks.judge),
        }


@dataclass
class SetRun:
    """A whole practice set × models × N."""

    set_name: str
    n: int
    seed: int | None
    rows: list[SetRow] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # problems with no key

    def gamed(self, proxy: Proxy) -> dict[str, Any]:
        """Per model: how often the proxy's pick was wrong where the key's was right."""
        by_model: dict[str, list[tuple[Sequence[Any], Picks]]] = {}
        for row in self.rows:
            by_model.setdefault(row.run.model, []).append((row.run.rollouts, row.picks))
        return {model: gamed(groups, proxy) for model, groups in by_model.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "set": self.set_name, "n": self.n, "seed": self.seed,
            "table": [row.table_row() for row in self.rows],
            "goodhart": {proxy.value: {model: figure.to_dict()
                                       for model, figure in self.gamed(proxy).items()}
                         for proxy in (Proxy.LONGEST, Proxy.JUDGE)},
            "skipped": {problem: NO_KEY for problem in self.skipped},
            "runs": [{"problem": row.problem.id, "judge_p_yes": row.scores, **row.run.to_dict()}
                     for row in self.rows],
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(row.table_row())
        return out.getvalue()

    def save(self, basename: str | Path) -> tuple[Path, Path]:
        """Write ``basename.json`` and ``basename.csv``; returns both paths."""
        base = Path(basename)
        json_path, csv_path = base.with_name(base.name + ".json"), base.with_name(base.name + ".csv")
        json_path.write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")
        csv_path.write_text(self.to_csv(), encoding="utf-8")
        return json_path, csv_path


def run_set(practice_set: PracticeSet, workers: Sequence[Any],
            request_for: Callable[[Any, Problem], Any], seeds: Sequence[int], *,
            judge: Any = None, should_stop: Callable[[], bool] = lambda: False,
            on_row: Callable[[SetRow], None] | None = None, seed: int | None = None) -> SetRun:
    """Every verifiable problem × every worker × ``len(seeds)`` rollouts (blocking).

    ``request_for(entry, problem)`` makes the request; ``judge``, a chat model's worker,
    scores each rollout by P("yes") for the Goodhart comparison."""
    result = SetRun(set_name=practice_set.name, n=len(seeds), seed=seed)
    for problem in practice_set.problems:
        if not problem.verifiable:
            result.skipped.append(problem.id)
            continue
        for worker in workers:
            if should_stop():
                return result
            run = run_rollouts(worker, request_for(worker.entry, problem), seeds,
                               AnswerKey(problem=problem), should_stop=should_stop)
            scores = None
            if judge is not None and run.error is None:
                scores = judge_scores(judge, problem.prompt, [r.answer for r in run.rollouts],
                                      should_stop)
            row = SetRow(problem=problem, run=run, scores=scores)
            result.rows.append(row)
            if on_row is not None:
                on_row(row)
    return result


# --------------------------------------------------------------------------------- CLI


def format_table(rows: Sequence[SetRow]) -> list[str]:
    """The table as aligned text lines."""
    lines = []
    width = max([len(row.run.model) for row in rows] + [5])
    pwidth = max([len(row.problem.id) for row in rows] + [7])
    lines.append(f"{'MODEL'.ljust(width)}  {'PROBLEM'.ljust(pwidth)}  CORRECT  ACCURACY  95% CI")
    for row in rows:
        table = row.table_row()
        accuracy = "–" if table["accuracy"] is None else f"{table['accuracy']:.2f}"
        lines.append(f"{row.run.model.ljust(width)}  {row.problem.id.ljust(pwidth)}  "
                     f"{row.run.correct:>3}/{row.run.n:<3}  {accuracy:>8}  "
                     f"[{table['ci_low']:.2f}, {table['ci_high']:.2f}]"
                     + (f"  ({visible_controls(row.run.error)})" if row.run.error else ""))
    return lines
