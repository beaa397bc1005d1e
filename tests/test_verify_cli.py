"""``triptych verify FILE [--expect V | --tests T] [--json]``: verdicts exit 0, misuse does not."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.cli.verify import add_verify_parser, main, run_verify

REPO = Path(__file__).resolve().parents[1]


def _write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_module_entry_point_with_expect(tmp_path: Path):
    reply = _write(tmp_path, "reply.md", "<think>7*8…</think>\nThe answer is **56**.")
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli.verify", reply,
                           "--expect", "56", "--json"], capture_output=True, text=True,
                          cwd=REPO, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "pass" and data["expected"] == "56" and data["got"] == "56"
    for key in ("verdict", "expected", "got", "stdout", "stderr", "duration_s", "reason",
                "isolation"):
        assert key in data


def test_fail_is_still_exit_zero(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "#### 54")
    data = _json(capsys, [reply, "--expect", "56", "--json"])
    assert data["verdict"] == "fail" and data["got"] == "54"


def test_tests_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "```python\ndef add(a, b):\n    return a + b\n```")
    tests = _write(tmp_path, "tests.py", "assert add(2, 3) == 5\nassert add(-1, 1) == 0\n")
    data = _json(capsys, [reply, "--tests", tests, "--json"])
    assert data["verdict"] == "pass", data["reason"]
    assert data["isolation"].startswith("Separate Python process")


def test_humaneval_tests_with_entry_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "```python\ndef double(x):\n    return 2 * x\n"
                   "def unused():\n    pass\n```")
    tests = _write(tmp_path, "tests.py", "def check(candidate):\n    assert candidate(4) == 8\n")
    data = _json(capsys, [reply, "--tests", tests, "--entry-point", "double", "--json"])
    assert data["verdict"] == "pass", data["reason"]


def test_timeout_and_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "```python\nwhile True:\n    pass\n```")
    assert main([reply, "--timeout", "0.5"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("⏱ TIMEOUT:")
    assert "isolation:" in out


def test_free_reply_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "```python\nprint('hi')\n```")
    data = _json(capsys, [reply, "--json"])
    assert data["verdict"] == "ran" and data["stdout"].strip() == "hi"


def test_no_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "<think>still working on it")
    data = _json(capsys, [reply, "--expect", "1", "--json"])
    assert data["verdict"] == "no-answer"


@pytest.mark.parametrize("argv", [
    ["missing-file.md", "--expect", "1"],
    ["{reply}", "--expect", "1", "--tests", "{reply}"],
    ["{reply}", "--tests", "missing-tests.py"],
    ["{reply}", "--timeout", "-1"],
    ["{reply}", "--problem", "no-such-problem"],
    [],
])
def test_misuse_is_non_zero(tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]):
    reply = _write(tmp_path, "reply.md", "#### 1")
    argv = [a.replace("{reply}", reply) for a in argv]
    assert main(argv) != 0
    assert capsys.readouterr().err


def test_subparser_wiring(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    parser = argparse.ArgumentParser(prog="triptych")
    commands = parser.add_subparsers(dest="command")
    add_verify_parser(commands)
    reply = _write(tmp_path, "reply.md", r"\boxed{3/4}")
    args = parser.parse_args(["verify", reply, "--expect", "0.75", "--json"])
    assert run_verify(args) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "pass"


def test_tests_without_entry_point_never_guess(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    # issue 25: a last function named like a builtin the test uses was taken as the candidate
    tests = _write(tmp_path, "tests.py",
                   "def check(candidate):\n    assert abs(candidate(1.5) - 2.25) < 1e-9\n")
    reply = _write(tmp_path, "reply.md", "```python\ndef square(x):\n    return 0\n"
                   "def abs(x):\n    return 0\n```")
    data = _json(capsys, [reply, "--tests", tests, "--json", "--timeout", "3"])
    assert data["verdict"] == "error" and "--entry-point" in data["reason"]
    data = _json(capsys, [reply, "--tests", tests, "--entry-point", "square", "--json",
                          "--timeout", "3"])
    assert data["verdict"] == "fail", data["reason"]
