"""Fixtures for download tests: tiny real GGUF files, a local Hub, an isolated environment.

Import the fixtures explicitly in a test module::

    from tests.hub_fixtures import fake_hub, hub_env, tiny_gguf  # noqa: F401
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hub_server import FakeHub

MiB = 1024 * 1024


def make_gguf(
    path: Path,
    *,
    arch: str = "llama",
    n_layers: int = 2,
    n_embd: int = 64,
    n_head: int = 4,
    n_head_kv: int = 2,
    n_ctx: int = 512,
    pad_bytes: int = 6 * MiB,
    seed: int = 0,
) -> Path:
    """Write a small valid GGUF (header + metadata + one int8 tensor of ``pad_bytes``)."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), arch=arch)
    writer.add_name(f"tiny-{arch}-{seed}")
    writer.add_block_count(n_layers)
    writer.add_context_length(n_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(n_embd * 2)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0)
    pad = np.random.default_rng(seed).integers(-128, 127, size=pad_bytes, dtype=np.int8)
    writer.add_tensor("pad", pad)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a ~6 MiB valid GGUF."""
    path = make_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")
    return path.read_bytes()


@pytest.fixture
def fake_hub() -> Iterator[FakeHub]:
    hub = FakeHub(valid_tokens={"hf_good", "hf_granted"}).start()
    try:
        yield hub
    finally:
        hub.stop()


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_hub: FakeHub) -> dict[str, str]:
    """Point Triptych and huggingface_hub at temporary folders and the local Hub.

    Environment variables are what a user would set; huggingface_hub reads a few of them
    only at import, so its ``constants`` are set to the same values (configuration, not
    mocking: the real huggingface_hub code runs against the real server).
    """
    from huggingface_hub import constants

    env = {
        "TRIPTYCH_HOME": str(tmp_path / "home"),
        "HF_HOME": str(tmp_path / "hf"),
        "HF_ENDPOINT": fake_hub.endpoint,
        "HF_HUB_OFFLINE": "0",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_XET": "1",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for key in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    # Otherwise the first request fetches an "agent harness" list from the import-time endpoint.
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_TELEMETRY", True)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf" / "token"))
    monkeypatch.setattr(constants, "HF_STORED_TOKENS_PATH", str(tmp_path / "hf" / "stored_tokens"))
    return env


def subprocess_env(env: dict[str, str]) -> dict[str, str]:
    """os.environ plus ``env``, without any real token, for CLI subprocesses."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE")}
    full.update(env)
    full["HF_TOKEN_PATH"] = str(Path(env["HF_HOME"]) / "token")
    return full


def write_user_catalog(text: str) -> Path:
    """Write the user catalog under TRIPTYCH_HOME (call after ``hub_env``)."""
    from desktop_app import paths

    target = paths.user_catalog_path()
    target.write_text(text, encoding="utf-8")
    return target


def hub_model_toml(model_id: str, repo: str, filename: str, *, role: str = "instruct",
                   sha256: str | None = None, size: int | None = None,
                   quantization: str = "Q8_0", family: str = "Tiny",
                   revision: str | None = None) -> str:
    lines = [
        "[[model]]",
        f'id = "{model_id}"',
        f'name = "{model_id}"',
        f'role = "{role}"',
        f'family = "{family}"',
        f'quantization = "{quantization}"',
        'license = "Apache-2.0"',
        "[model.source]",
        f'repo = "{repo}"',
        f'filename = "{filename}"',
    ]
    if sha256:
        lines.append(f'sha256 = "{sha256}"')
    if size:
        lines.append(f"size = {size}")
    if revision:
        lines.append(f'revision = "{revision}"')
    return "\n".join(lines) + "\n\n"
