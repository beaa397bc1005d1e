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

from desktop_app.cli import models as models_cli
from desktop_app.models import catalog as cat
from desktop_app.models import sources
from tests.hub_fixtures import (
    MiB,
    hub_model_toml,
    make_gguf,
    subprocess_env,
    write_user_catalog,
)
from tests.hub_server import FakeHub, HubFile

ROOT = Path(__file__).resolve().parent.parent
REPO = "acme/tiny-GGUF"
FILE = "tiny-Q8_0.gguf"


def _cli(env: dict[str, str], *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "desktop_app.cli.models", *args],
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
    assert result.stderr.startswith("triptych: Cannot download 'gone':")
    assert "missing-Q4_0.gguf" in result.stderr

    unknown = _cli(hub_env, "pull", "nope", "--json")
    assert unknown.returncode == 2 and "Unknown model 'nope'" in unknown.stderr
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
        [sys.executable, "-m", "desktop_app.cli.models", "pull", "tiny", "--json"],
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

    assert models_cli.main(["verify", "mine"]) == 2  # an unknown id: a usage error
    err = capsys.readouterr().err
    assert err.startswith("triptych: Unknown model 'mine'") and err.count("\n") == 1

    assert models_cli.main(["import", str(tmp_path / "nope.gguf"), "--role", "base"]) == 1
    assert "no such file" in capsys.readouterr().err


def test_import_records_the_sha256_so_verify_sees_a_same_size_change(
        hub_env, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = make_gguf(tmp_path / "mine.gguf", pad_bytes=4096)
    assert models_cli.main(["import", str(path), "--role", "base"]) == 0
    source = cat.load_catalog().get("mine").source
    assert source.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert models_cli.main(["verify", "mine"]) == 0
    assert "matches its SHA-256" in capsys.readouterr().out
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the same size, one byte of padding changed
    path.write_bytes(bytes(data))
    assert cat.availability(cat.load_catalog().get("mine")) == "ready"  # size alone can't tell
    assert models_cli.main(["verify", "mine"]) == 1
    assert "damaged" in capsys.readouterr().err


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


# ------------------------------------------------------------- pull ORG/REPO:QUANT

QUANTS = "acme/quants-GGUF"


@pytest.fixture
def quant_repo(fake_hub: FakeHub, hub_env, tiny_gguf: bytes, tmp_path: Path) -> dict[str, bytes]:
    """A repo with two single-file quantizations, a split one in a folder, and a projector."""
    q4 = make_gguf(tmp_path / "q4.gguf", pad_bytes=MiB).read_bytes()
    whole = make_gguf(tmp_path / "q8.gguf", pad_bytes=3 * MiB).read_bytes()
    third = len(whole) // 3
    files: dict[str, bytes | HubFile] = {
        "Quants-Q4_K_M.gguf": q4,
        "Quants-Q4_K_S.gguf": q4[:-64] + b"\0" * 64,
        "Quants-Q8_0.gguf": tiny_gguf,
        "BF16/Quants-BF16-00001-of-00003.gguf": whole[:third],
        "BF16/Quants-BF16-00002-of-00003.gguf": whole[third:2 * third],
        "BF16/Quants-BF16-00003-of-00003.gguf": whole[2 * third:],
        "mmproj-Quants-F16.gguf": b"GGUF projector",
    }
    fake_hub.add_repo(QUANTS, files)
    return {name: data for name, data in files.items() if isinstance(data, bytes)}


def test_pull_repo_by_quantization_pins_the_commit(
    hub_env, quant_repo: dict[str, bytes], fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert models_cli.main(["pull", f"{QUANTS}:q4_k_m", "--role", "reasoning"]) == 0
    out = capsys.readouterr().out
    entry = next(e for e in cat.load_catalog() if e.origin.endswith("models.toml")
                 and isinstance(e.source, sources.HubSource) and e.source.repo == QUANTS)
    source = entry.source
    assert isinstance(source, sources.HubSource)
    commit = fake_hub.repos[QUANTS].commit
    assert (source.filename, source.revision, entry.role) == ("Quants-Q4_K_M.gguf", commit, "reasoning")
    assert source.sha256 == hashlib.sha256(quant_repo["Quants-Q4_K_M.gguf"]).hexdigest()
    assert source.size == len(quant_repo["Quants-Q4_K_M.gguf"]) and entry.quantization == "Q4_K_M"
    assert f"Added {entry.id} (reasoning)" in out and f"{entry.id} is ready" in out
    assert cat.local_path(entry).read_bytes() == quant_repo["Quants-Q4_K_M.gguf"]  # type: ignore[union-attr]
    assert cat.read_states()[entry.id]["verified"] is True

    # The same reference again (hf.co form, other case) reuses the entry: no duplicate.
    assert models_cli.main(["pull", f"hf.co/{QUANTS}:Q4_K_M", "--role", "reasoning"]) == 0
    capsys.readouterr()
    same = [e for e in cat.load_catalog() if isinstance(e.source, sources.HubSource) and e.source.repo == QUANTS]
    assert [e.id for e in same] == [entry.id]


def test_pull_reference_errors_are_one_sentence(
    hub_env, quant_repo: dict[str, bytes], capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {
        (f"{QUANTS}:Q2_K", "--role", "base"):
            f"triptych: {QUANTS} has no Q2_K file; its quantizations are: Q4_K_M, Q4_K_S, BF16, Q8_0.\n",
        (f"{QUANTS}:q4_k", "--role", "base"):
            f"triptych: 'q4_k' matches several files in {QUANTS} (Quants-Q4_K_M.gguf, "
            "Quants-Q4_K_S.gguf); name the quantization exactly.\n",
        (QUANTS, "--role", "base"):
            f"triptych: {QUANTS} has several quantizations; name one, e.g. {QUANTS}:Q4_K_M "
            "(available: Q4_K_M, Q4_K_S, BF16, Q8_0).\n",
        (f"{QUANTS}:Q8_0",):
            f"triptych: Pulling {QUANTS}:Q8_0 from the Hub needs --role (base, instruct or reasoning).\n",
        ("acme/nothing:Q4_K_M", "--role", "base"):
            None,
    }
    for args, expected in cases.items():
        usage = "--role" not in args  # a mistake in the command: exit 2; the Hub's: 1
        assert models_cli.main(["pull", *args]) == (2 if usage else 1), args
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "Traceback" not in err, err
        if expected is None:
            assert err.startswith("triptych: Cannot list acme/nothing:") and "does not exist" in err
        else:
            assert err == expected
    assert not [e for e in cat.load_catalog() if isinstance(e.source, sources.HubSource)
                and e.source.repo == QUANTS]  # nothing was added by a failed pull


def test_pull_split_gguf_fetches_every_part(
    hub_env, quant_repo: dict[str, bytes], fake_hub: FakeHub, capsys: pytest.CaptureFixture[str]
) -> None:
    assert models_cli.main(["pull", f"{QUANTS}:bf16", "--role", "base", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    added, done = events[0], events[-1]
    assert added["event"] == "added" and added["parts"] == 3
    assert added["filename"] == "BF16/Quants-BF16-00001-of-00003.gguf"
    assert done["event"] == "done"
    entry = cat.load_catalog().get(added["model"])
    assert entry.id == "quants-bf16" and entry.size == sum(
        len(quant_repo[f"BF16/Quants-BF16-0000{i}-of-00003.gguf"]) for i in (1, 2, 3))
    first = cat.local_path(entry)
    assert first is not None and first.name == "Quants-BF16-00001-of-00003.gguf"
    # llama.cpp finds the other parts beside the first one.
    for i in (1, 2, 3):
        name = f"Quants-BF16-0000{i}-of-00003.gguf"
        assert (first.parent / name).read_bytes() == quant_repo[f"BF16/{name}"]
    assert len(fake_hub.downloads()) == 3
    assert cat.availability(entry) == "ready"

    # Damage one part: verify says so; rm deletes every part.
    part2 = (first.parent / "Quants-BF16-00002-of-00003.gguf").resolve()
    part2.chmod(0o644)
    part2.write_bytes(b"GGUF" + b"\0" * 10)
    assert models_cli.main(["verify", entry.id]) == 1
    assert "damaged" in capsys.readouterr().err
    assert models_cli.main(["rm", entry.id]) == 0
    capsys.readouterr()
    assert not any((first.parent / f"Quants-BF16-0000{i}-of-00003.gguf").exists() for i in (1, 2, 3))
    assert cat.availability(entry) == "not-downloaded"


def test_models_list_shows_source_and_revision(hub_env, quant_repo: dict[str, bytes],
                                               fake_hub: FakeHub) -> None:
    assert models_cli.main(["pull", f"{QUANTS}:Q8_0", "--role", "instruct"]) == 0
    listed = subprocess.run([sys.executable, "-m", "desktop_app", "models", "list", "--json"],
                            cwd=ROOT, env=subprocess_env(hub_env), capture_output=True, text=True,
                            timeout=60)
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)["models"]}
    assert rows["quants-q8_0"]["revision"] == fake_hub.repos[QUANTS].commit
    assert rows["quants-q8_0"]["source"] == f"{QUANTS}/Quants-Q8_0.gguf"
    assert rows["qwen3-0.6b"]["revision"] == "23749fefcc72300e3a2ad315e1317431b06b590a"
    assert rows["smollm2-135m-instruct"]["source_kind"] == "package"
    assert rows["smollm2-135m-instruct"]["revision"] is None
