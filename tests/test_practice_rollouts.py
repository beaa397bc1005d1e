"""Rollouts' set runs work on the benchmark sets (issue 19): the rollouts CLI finds them
by name, and a run whose model replies with each problem's reference solution scores
every problem correct (math through extraction, code through the benchmark's tests)."""

from __future__ import annotations

import pytest

from desktop_app.cli.rollouts import find_set as rollouts_find_set
from desktop_app.engine.protocol import GenerationRequest, Sampling
from desktop_app.models.catalog import load_catalog
from desktop_app.rollouts.sets import run_set
from desktop_app.verify import PracticeSet
from desktop_app.verify.practice import find_set
from tests.fake_engine import FakeWorker, answer_script

INSTRUCT = "smollm2-135m-instruct"


def _reply(problem) -> str:
    if problem.kind == "code":
        return f"Here it is:\n```python\n{problem.solution}\n```\n"
    return problem.solution


@pytest.mark.parametrize("key", ["gsm8k-mini", "math500-mini", "humaneval-mini", "mbpp-mini"])
def test_a_set_run_on_a_benchmark_set(key: str) -> None:
    assert rollouts_find_set(key).name == find_set(key).name
    whole = find_set(key)
    practice = PracticeSet(name=whole.name, problems=whole.problems[:4])
    by_prompt = {p.prompt: _reply(p) for p in practice.problems}
    entry = load_catalog().get(INSTRUCT)
    worker = FakeWorker(entry, script=lambda request: answer_script(by_prompt[request.prompt]))
    outcome = run_set(practice, [worker], lambda e, p: GenerationRequest(p.prompt, Sampling()),
                      [0])
    table = [row.table_row() for row in outcome.rows]
    assert [(t["problem"], t["correct"], t["n"]) for t in table] == \
        [(p.id, 1, 1) for p in practice.problems], [r.run.rollouts[0] for r in outcome.rows]
