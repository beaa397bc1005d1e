"""``triptych practice list`` and ``triptych practice pull`` (issue 19), the pull against
the local Hub server (tests/hub_server.py) serving a dataset repo, with huggingface-hub's
real download code and the same cache, offline and one-sentence rules as models."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import pytest

from desktop_app.cli.main import main
from desktop_app.verify.practice import find_set, load_practice_sets, practice_dir
from tests.hub_fixtures import subprocess_env
from tests.hub_server import FakeHub


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["practice", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_list_shows_sets_sizes_sources_and_licences(capsys):
    code, out, err = _run(capsys, "list")
    assert code == 0 and err == ""
    lines = {line.split()[0]: line for line in out.splitlines()[1:] if line.strip()}
    assert "50/1319" in lines["gsm8k-mini"] and "MIT" in lines["gsm8k-mini"]
    assert "40/427" in lines["mbpp-mini"] and "CC BY 4.0" in lines["mbpp-mini"]
    assert "50/500" in lines["math500-mini"] and "written for Triptych" in lines["math"]
    assert "triptych practice pull NAME" in out


def test_list_json(capsys):
    code, out, _ = _run(capsys, "list", "--json")
    sets = {row["key"]: row for row in json.loads(out)["sets"]}
    assert code == 0
    math500 = sets["math500-mini"]
    assert math500["problems"] == 50 and math500["full_size"] == 500
    assert math500["levels"] == ["Level 1", "Level 2", "Level 3", "Level 4", "Level 5"]
    assert math500["hub"] == "HuggingFaceH4/MATH-500/test.jsonl"
    assert "Hendrycks" in math500["attribution"] and "every 10th" in math500["selection"]
    assert sets["open"]["kinds"] == ["open"] and sets["open"]["licence"] == ""


def _serve_math500(hub: FakeHub) -> bytes:
    # The benchmark's own records (the shipped ones), as the Hub dataset's test.jsonl.
    data = (practice_dir() / "math500-mini.jsonl").read_bytes()
    hub.add_repo("datasets/HuggingFaceH4/MATH-500", {"test.jsonl": data})
    return data


def test_pull_downloads_a_dataset_into_the_hub_cache(capsys, fake_hub, hub_env):
    _serve_math500(fake_hub)
    code, out, err = _run(capsys, "pull", "math500")
    assert (code, err) == (0, "")
    assert out.startswith("math500: 50 problems (MIT) at ")
    assert "datasets--HuggingFaceH4--MATH-500" in out and hub_env["HF_HOME"] in out
    full = find_set("math500")  # listed from now on, next to its subset
    assert full.complete and len(full.problems) == 50
    assert full.problems[0].id == find_set("math500-mini").problems[0].id
    requests = len(fake_hub.requests)
    assert _run(capsys, "pull", "math500-mini")[0] == 0  # already here: no download
    assert len(fake_hub.requests) == requests
    assert any(s.key == "math500" for s in load_practice_sets())


def test_pull_errors_are_one_sentence(capsys, fake_hub, hub_env, monkeypatch):
    code, out, err = _run(capsys, "pull", "math500")  # the server has no such dataset
    assert code == 1 and out == ""
    assert err.strip() == ("triptych: Cannot download 'math500': the dataset "
                           "HuggingFaceH4/MATH-500 does not exist, or it is private or gated "
                           "and needs HF_TOKEN to be set.")
    fake_hub.add_repo("datasets/HuggingFaceH4/MATH-500", {"other.jsonl": b"{}\n"})
    code, _, err = _run(capsys, "pull", "math500")
    assert code == 1 and "has no file 'test.jsonl'" in err and len(err.splitlines()) == 1
    code, _, err = _run(capsys, "pull", "triviaqa")  # a mistake in the command: exit 2
    assert code == 2 and err.startswith("triptych: No benchmark called 'triviaqa'")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    code, _, err = _run(capsys, "pull", "gsm8k")
    assert code == 1 and "HF_HUB_OFFLINE is set" in err


@pytest.mark.skipif(importlib.util.find_spec("pyarrow") is not None,
                    reason="pyarrow is installed: the Parquet file would be read")
def test_a_parquet_set_without_pyarrow_says_so(capsys, fake_hub, hub_env):
    fake_hub.add_repo("datasets/openai/gsm8k", {"main/test-00000-of-00001.parquet": b"PAR1"})
    code, _, err = _run(capsys, "pull", "gsm8k")
    assert code == 1 and "needs the pyarrow package" in err and len(err.splitlines()) == 1
    assert [s.key for s in load_practice_sets() if s.key == "gsm8k"] == []  # subset only


def test_pull_through_the_console_script(fake_hub, hub_env):
    _serve_math500(fake_hub)
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli.main", "practice", "pull",
                           "math500"], env=subprocess_env(hub_env), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "math500: 50 problems" in done.stdout
