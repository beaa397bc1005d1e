"""``triptych models pull|rm|import|verify``: subprocesses against the local Hub, plus in-process runs."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from desktop_app import catalog as cat
from desktop_app import models_cli
from tests.hub_fixtures import (
    MiB,
    hub_model_toml,
    make_gguf,
    subprocess_env,
    write_user_catalog,
)
from tests.hub_server import FakeHub

ROOT = Path(__file__).resolve().parent.parent
REPO = "acme/tiny-GGUF"
FILE = "tiny-Q8_0.gguf"


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop_app.models_cli", *args],
        cwd=ROOT, env=subprocess_env(env), capture_output=True, text=True, timeout=timeout,
    )


@pytest.fixture
def tiny_repo(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> bytes:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf})
    write_user_catalog(
        hub_model_toml("tiny", REPO, FILE, sha256=hashlib.sha256(tiny_gguf).hexdigest())
        + hub_model_toml("gone", REPO, "missing-Q4_0.gguf")
    )
    return tiny_gguf


def test_pull_json_reports_progress_and_result(hub_env, tiny_repo: bytes) -> None:
    result = _cli(hub_env, "pull", "tiny", "--json")
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert {e["event"] for e in events[:-1]} == {"progress"}
    assert any(e["phase"] == "downloading" for e in events)
    assert any(e["phase"] == "verifying" for e in events)
    final = events[-1]
    assert final["event"] == "done" and final["model"] == "tiny" and final["verified"] is True
    assert Path(final["path"]).read_bytes() == tiny_repo
    assert final["sha256"] == hashlib.sha256(tiny_repo).hexdigest()


def test_pull_errors_are_one_line(hub_env, tiny_repo: bytes, fake_hub: FakeHub) -> None:
    result = _cli(hub_env, "pull", "gone")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: Cannot download 'gone':")
    assert "missing-Q4_0.gguf" in result.stderr

    unknown = _cli(hub_env, "pull", "nope", "--json")
    assert unknown.returncode == 1 and "Unknown model 'nope'" in unknown.stderr
    assert json.loads(unknown.stdout)["event"] == "error"


def test_pull_while_offline(hub_env, tiny_repo: bytes, fake_hub: FakeHub) -> None:
    result = _cli({**hub_env, "HF_HUB_OFFLINE": "1"}, "pull", "tiny")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "offline" in result.stderr.lower() or "switched off" in result.stderr
    assert fake_hub.requests == []


def test_resume_after_the_process_is_killed(hub_env, tiny_repo: bytes, fake_hub: FakeHub) -> None:
    """An app crash mid-download: the next pull fetches only the missing bytes."""
    fake_hub.throttle = 4 * MiB  # ~1.5 s for the whole file
    blobs = Path(hub_env["HF_HOME"]) / "hub" / f"models--{REPO.replace('/', '--')}" / "blobs"
    partial = blobs / f"{hashlib.sha256(tiny_repo).hexdigest()}.incomplete"
    proc = subprocess.Popen(
        [sys.executable, "-m", "desktop_app.models_cli", "pull", "tiny", "--json"],
        cwd=ROOT, env=subprocess_env(hub_env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if partial.exists() and partial.stat().st_size >= MiB:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the download never started")
    finally:
        if os.name == "posix":
            proc.send_signal(signal.SIGKILL)
        else:
            proc.kill()
        proc.communicate(timeout=10)
    kept = partial.stat().st_size
    assert 0 < kept < len(tiny_repo)

    fake_hub.throttle = None
    result = _cli(hub_env, "pull", "tiny")
    assert result.returncode == 0, result.stderr
    last = fake_hub.downloads()[-1]
    assert last.range == f"bytes={kept}-" and last.status == 206
    assert last.body_bytes == len(tiny_repo) - kept
    assert not partial.exists()


def test_import_verify_rm_in_process(hub_env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_gguf(tmp_path / "Mine-Q5_K_M.gguf", pad_bytes=4096)
    assert models_cli.main(["import", str(path), "--role", "reasoning", "--name", "Mine"]) == 0
    out = capsys.readouterr().out
    assert "Imported mine (reasoning)" in out
    assert cat.load_catalog().get("mine").quantization == "Q5_K_M"

    assert models_cli.main(["verify", "mine"]) == 0
    assert "mine is ready" in capsys.readouterr().out

    assert models_cli.main(["rm", "mine"]) == 0
    assert "mine" not in cat.load_catalog()
    assert path.exists()  # an imported file is the user's: never deleted

    assert models_cli.main(["verify", "mine"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown model 'mine'") and err.count("\n") == 1

    assert models_cli.main(["import", str(tmp_path / "nope.gguf"), "--role", "base"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_verify_reports_damage(hub_env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_gguf(tmp_path / "m.gguf", pad_bytes=4096)
    write_user_catalog(
        "[[model]]\nid = \"m\"\nrole = \"base\"\n[model.source]\n"
        f"path = {json.dumps(str(path))}\nsha256 = \"{'0' * 64}\"\n"
    )
    assert models_cli.main(["verify", "m"]) == 1
    assert "damaged" in capsys.readouterr().err
    assert cat.availability(cat.load_catalog().get("m")) == "damaged"


def test_add_models_commands_plugs_into_a_parser() -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="triptych")
    top = parser.add_subparsers(dest="command")
    models = top.add_parser("models").add_subparsers(dest="models_command")
    models.add_parser("list")
    models_cli.add_models_commands(models)
    args = parser.parse_args(["models", "pull", "x", "--json"])
    assert args.models_action == "pull" and args.json and args.model_id == "x"
    args = parser.parse_args(["models", "import", "f.gguf", "--role", "base"])
    assert args.models_action == "import" and args.name is None
