"""Downloads against a real local HTTP server speaking the Hub protocol (tests/hub_server.py).

huggingface_hub is not mocked: it makes its real requests to 127.0.0.1 via HF_ENDPOINT.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from desktop_app.models import catalog as cat
from desktop_app.models import download, hub, sources, user_catalog
from tests.hub_fixtures import (
    MiB,
    hub_model_toml,
    make_gguf,
    write_user_catalog,
)
from tests.hub_server import FakeHub, HubFile

REPO = "acme/tiny-GGUF"
FILE = "tiny-Q8_0.gguf"


def _entry(model_id: str = "tiny") -> cat.ModelEntry:
    return cat.load_catalog().get(model_id)


@pytest.fixture
def tiny_repo(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> bytes:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf, "README.md": HubFile(b"# tiny\n", lfs=False)})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE, sha256=hashlib.sha256(tiny_gguf).hexdigest()))
    return tiny_gguf


def test_full_download_then_verify(fake_hub: FakeHub, tiny_repo: bytes, tmp_path: Path) -> None:
    entry = _entry()
    assert cat.availability(entry) == "not-downloaded"
    seen: list[download.DownloadProgress] = []

    path = download.pull(entry, progress=seen.append)

    assert path.read_bytes() == tiny_repo
    # In the normal Hugging Face cache, where huggingface_hub itself finds it.
    assert path.is_relative_to(tmp_path / "hf" / "hub")
    assert isinstance(entry.source, sources.HubSource) and cat.hub_cached_path(entry.source) == path
    assert cat.availability(entry) == "ready"
    state = cat.read_states()["tiny"]
    assert state["state"] == "ready" and state["verified"] is True
    assert state["sha256"] == hashlib.sha256(tiny_repo).hexdigest()
    phases = [p.phase for p in seen]
    assert phases[0] == "connecting" and "downloading" in phases and phases[-1] == "verifying"
    assert seen[-1].done == seen[-1].total == len(tiny_repo)

    # The requests huggingface_hub made, with the headers the Hub expects.
    head = next(r for r in fake_hub.requests if r.method == "HEAD")
    assert head.path == f"/{REPO}/resolve/main/{FILE}" and head.status == 302
    assert head.headers["accept-encoding"] == "identity"
    assert "hf_hub/" in head.headers["user-agent"]
    (get,) = fake_hub.downloads()
    assert get.range is None and get.status == 200 and get.body_bytes == len(tiny_repo)

    assert download.verify(entry) is True
    # Pulling again is a no-op: nothing more is fetched.
    before = len(fake_hub.downloads())
    assert download.pull(entry) == path
    assert len(fake_hub.downloads()) == before


def test_pinned_revision_gets_its_own_bytes_after_a_reupload(
    fake_hub: FakeHub, hub_env, tiny_gguf: bytes, tmp_path: Path
) -> None:
    """The file is re-uploaded under the same name: a pinned entry still gets the bytes
    its sha256 names; an entry following main gets the new bytes and calls them damaged."""
    original = fake_hub.add_repo(REPO, {FILE: tiny_gguf}).commit
    reuploaded = make_gguf(tmp_path / "v2.gguf", pad_bytes=MiB + 7).read_bytes()
    head = fake_hub.push(REPO, {FILE: reuploaded})
    assert head != original
    sha = hashlib.sha256(tiny_gguf).hexdigest()
    write_user_catalog(hub_model_toml("pinned", REPO, FILE, sha256=sha, revision=original)
                       + hub_model_toml("follows-main", REPO, FILE, sha256=sha))

    pinned = _entry("pinned")
    path = download.pull(pinned)
    assert path.read_bytes() == tiny_gguf
    assert path.parent.name == original  # snapshots/<pinned commit>/<file>
    assert isinstance(pinned.source, sources.HubSource) and cat.hub_cached_path(pinned.source) == path
    assert cat.availability(pinned) == "ready"
    asked = [r.path for r in fake_hub.requests if r.method == "HEAD"]
    assert asked and set(asked) == {f"/{REPO}/resolve/{original}/{FILE}"}  # never main

    with pytest.raises(hub.DownloadError, match="damaged"):
        download.pull(_entry("follows-main"))
    assert cat.availability(_entry("follows-main")) == "damaged"
    assert path.read_bytes() == tiny_gguf  # the pinned copy is untouched
    assert cat.availability(pinned) == "ready"


def test_unknown_pinned_revision_is_one_sentence(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf})
    write_user_catalog(hub_model_toml("gone", REPO, FILE, revision="0" * 40))
    with pytest.raises(hub.DownloadError) as info:
        download.pull(_entry("gone"))
    assert str(info.value) == f"Cannot download 'gone': {REPO} has no revision '{'0' * 40}'."


def test_cancel_leaves_partial_then_resume_fetches_only_the_rest(
    fake_hub: FakeHub, tiny_repo: bytes
) -> None:
    entry = _entry()
    fake_hub.throttle = 12 * MiB  # bytes per second: ~0.5 s for the file
    cancel = threading.Event()

    def cancel_after_a_megabyte(progress: download.DownloadProgress) -> None:
        if progress.done >= MiB:
            cancel.set()

    with pytest.raises(hub.DownloadCancelled):
        download.pull(entry, progress=cancel_after_a_megabyte, cancel=cancel)
    kept = download.partial_bytes(entry)
    assert 0 < kept < len(tiny_repo)
    assert cat.availability(entry) == "not-downloaded"

    fake_hub.throttle = None
    path = download.pull(entry)

    assert hashlib.sha256(path.read_bytes()).hexdigest() == hashlib.sha256(tiny_repo).hexdigest()
    first, second = fake_hub.downloads()
    assert first.range is None
    assert second.range == f"bytes={kept}-" and second.status == 206
    assert second.body_bytes == len(tiny_repo) - kept  # the kept bytes were not fetched again
    assert download.partial_bytes(entry) == 0


def test_connection_dropped_mid_file_is_resumed(fake_hub: FakeHub, tiny_repo: bytes) -> None:
    entry = _entry()
    fake_hub.drop_after = 2 * MiB + 12345  # the server hangs up mid-file, once

    path = download.pull(entry)

    assert path.read_bytes() == tiny_repo
    first, second = fake_hub.downloads()
    assert first.body_bytes == 2 * MiB + 12345
    assert second.status == 206 and second.range_start is not None
    assert 0 < second.range_start <= first.body_bytes
    assert second.body_bytes == len(tiny_repo) - second.range_start


def test_wrong_catalog_checksum_marks_damaged(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE, sha256="ab" * 32))
    entry = _entry()

    with pytest.raises(hub.DownloadError, match="damaged") as info:
        download.pull(entry)

    assert "\n" not in str(info.value)
    assert cat.availability(entry) == "damaged"
    assert cat.local_path(entry) is None  # the bad bytes are not in the cache: never loaded
    assert "damaged" in cat.missing_message(entry, "damaged")


def test_bytes_not_matching_the_hubs_lfs_sha_are_damaged_then_refetched(
    fake_hub: FakeHub, hub_env, tiny_gguf: bytes
) -> None:
    corrupted = bytearray(tiny_gguf)
    corrupted[len(corrupted) // 2] ^= 0xFF
    hub_file = HubFile(tiny_gguf, served=bytes(corrupted))
    fake_hub.add_repo(REPO, {FILE: hub_file})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE))  # no sha256: the Hub's LFS one is used
    entry = _entry()

    with pytest.raises(hub.DownloadError, match="damaged"):
        download.pull(entry)
    assert cat.availability(entry) == "damaged"

    hub_file.served = None  # the CDN recovers
    path = download.pull(entry)
    assert path.read_bytes() == tiny_gguf
    assert cat.availability(entry) == "ready"
    assert cat.read_states()["tiny"]["verified"] is True


def test_missing_file_is_one_sentence(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf})
    write_user_catalog(hub_model_toml("gone", REPO, "nope-Q2_K.gguf"))

    with pytest.raises(hub.DownloadError) as info:
        download.pull(_entry("gone"))

    message = str(info.value)
    assert "no file 'nope-Q2_K.gguf'" in message and REPO in message
    assert "\n" not in message and "Traceback" not in message
    assert [r.status for r in fake_hub.requests] == [404]


def test_missing_repo_is_one_sentence(fake_hub: FakeHub, hub_env) -> None:
    write_user_catalog(hub_model_toml("ghost", "acme/ghost", FILE))
    with pytest.raises(hub.DownloadError, match="does not exist"):
        download.pull(_entry("ghost"))


@pytest.mark.parametrize(
    ("token", "status", "expected"),
    [
        (None, 401, "set HF_TOKEN"),
        ("hf_good", 403, "has not been granted access"),
        ("hf_bad", 401, "rejected your Hugging Face token"),
    ],
)
def test_gated_repo_errors(
    fake_hub: FakeHub, hub_env, tiny_gguf: bytes, monkeypatch: pytest.MonkeyPatch,
    token: str | None, status: int, expected: str,
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf}, gated=True, granted_tokens={"hf_granted"})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE))
    if token:
        monkeypatch.setenv("HF_TOKEN", token)

    with pytest.raises(hub.DownloadError, match=expected) as info:
        download.pull(_entry())

    assert "\n" not in str(info.value)
    (head,) = fake_hub.requests
    assert head.status == status
    assert (head.headers.get("authorization") == f"Bearer {token}") if token else \
        ("authorization" not in head.headers)
    assert fake_hub.downloads() == []


def test_gated_repo_with_granted_token_downloads(
    fake_hub: FakeHub, hub_env, tiny_gguf: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub.add_repo(REPO, {FILE: tiny_gguf}, gated=True, granted_tokens={"hf_granted"})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE))
    monkeypatch.setenv("HF_TOKEN", "hf_granted")

    path = download.pull(_entry())

    assert path.read_bytes() == tiny_gguf
    head = fake_hub.requests[0]
    assert head.headers["authorization"] == "Bearer hf_granted"
    (get,) = fake_hub.downloads()
    assert "authorization" not in get.headers  # the token never goes to the CDN


def test_not_enough_disk_space(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    huge = 2**60  # what the Hub says the file weighs
    fake_hub.add_repo(REPO, {FILE: HubFile(tiny_gguf, advertised_size=huge)})
    write_user_catalog(hub_model_toml("tiny", REPO, FILE))

    with pytest.raises(hub.DownloadError, match="Not enough disk space") as info:
        download.pull(_entry())

    assert download.format_size(huge) in str(info.value)
    assert fake_hub.downloads() == []


def test_check_disk_space_names_amounts(tmp_path: Path) -> None:
    import shutil

    download.check_disk_space(1, tmp_path)  # fits: no error
    needed = shutil.disk_usage(tmp_path).free + 10**12
    with pytest.raises(hub.DownloadError) as info:
        download.check_disk_space(needed, tmp_path / "not" / "yet", "'x'")
    message = str(info.value)
    assert f"needs {download.format_size(needed)} free in {tmp_path}" in message
    assert "but only" in message


def test_offline_pull_fails_in_one_sentence_without_any_request(
    fake_hub: FakeHub, tiny_repo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.DownloadError, match="HF_HUB_OFFLINE") as info:
        download.pull(_entry())
    assert "\n" not in str(info.value)
    assert fake_hub.requests == []


def test_unreachable_hub_fails_in_one_sentence(
    tiny_repo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.DownloadError, match="cannot be reached") as info:
        download.pull(_entry())
    assert "\n" not in str(info.value)


def test_ready_model_needs_no_network(
    fake_hub: FakeHub, tiny_repo: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = download.pull(_entry())
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    count = len(fake_hub.requests)
    entry = _entry()
    assert cat.availability(entry) == "ready"
    assert download.pull(entry) == path
    assert download.verify(entry) is True
    assert len(fake_hub.requests) == count


def test_verify_detects_a_file_damaged_after_download(fake_hub: FakeHub, tiny_repo: bytes) -> None:
    entry = _entry()
    path = download.pull(entry)
    blob = path.resolve()
    data = bytearray(blob.read_bytes())
    data[100] ^= 0xFF
    blob.write_bytes(bytes(data))

    assert download.verify(entry) is False
    assert cat.availability(entry) == "damaged"
    # Pulling again replaces the damaged copy.
    path = download.pull(entry)
    assert path.read_bytes() == tiny_repo
    assert cat.availability(entry) == "ready"


def test_remove_deletes_file_and_partial(fake_hub: FakeHub, tiny_repo: bytes) -> None:
    entry = _entry()
    path = download.pull(entry)
    blob = path.resolve()
    removed = download.remove(entry)
    assert path in removed and blob in removed
    assert not blob.exists() and cat.availability(entry) == "not-downloaded"
    with pytest.raises(hub.DownloadError, match="nothing to remove"):
        download.remove(entry)


def test_list_repo_ggufs_and_add_hub_model(fake_hub: FakeHub, hub_env, tiny_gguf: bytes) -> None:
    small = tiny_gguf[: len(tiny_gguf) // 2]
    fake_hub.add_repo("acme/two-GGUF", {
        "two-Q8_0.gguf": tiny_gguf, "two-Q4_K_M.gguf": small, "README.md": HubFile(b"hi", lfs=False),
    })
    files = hub.list_repo_ggufs("acme/two-GGUF")
    assert [f.filename for f in files] == ["two-Q4_K_M.gguf", "two-Q8_0.gguf"]
    assert files[1].size == len(tiny_gguf)
    assert files[1].sha256 == hashlib.sha256(tiny_gguf).hexdigest()
    request = fake_hub.requests[-1]
    assert request.path.startswith("/api/models/acme/two-GGUF/revision/main") and "blobs=" in request.path

    entry = user_catalog.add_hub_model("acme/two-GGUF", files[1].filename, "reasoning",
                                   size=files[1].size, sha256=files[1].sha256)
    assert entry.role == "reasoning" and entry.quantization == "Q8_0"
    assert entry.source.sha256 == files[1].sha256
    assert download.pull(entry).read_bytes() == tiny_gguf

    with pytest.raises(hub.DownloadError, match="does not exist"):
        hub.list_repo_ggufs("acme/nothing")


def test_import_model_adds_a_user_catalog_entry(hub_env, tmp_path: Path) -> None:
    path = make_gguf(tmp_path / "My-Model.Q4_K_M.gguf", pad_bytes=1024)
    entry = user_catalog.import_model(path, "base", "My Model")
    assert entry.role == "base" and entry.name == "My Model" and entry.quantization == "Q4_K_M"
    assert isinstance(entry.source, sources.FileSource) and Path(entry.source.path) == path.resolve()
    assert cat.availability(entry) == "ready"
    again = user_catalog.import_model(path, "base", "My Model")
    assert again.id != entry.id  # ids stay unique
    assert download.verify(entry) is True

    download.remove(entry)
    assert entry.id not in cat.load_catalog() and path.exists()

    not_gguf = tmp_path / "notes.gguf"
    not_gguf.write_text("hello")
    with pytest.raises(hub.DownloadError, match="not a GGUF"):
        user_catalog.import_model(not_gguf, "base")


def test_real_starter_model_bytes(fake_hub: FakeHub, hub_env, smollm2_gguf: Path) -> None:
    """The real SmolLM2 GGUF, served by the local Hub, checked against the shipped catalog hash."""
    gguf = smollm2_gguf
    data = gguf.read_bytes()
    fake_hub.add_repo("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", {gguf.name: data})
    write_user_catalog(hub_model_toml(
        "smol-hub", "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", gguf.name,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        size=len(data),
    ))
    path = download.pull(_entry("smol-hub"))
    assert path.stat().st_size == len(data)
    assert cat.read_states()["smol-hub"]["verified"] is True
