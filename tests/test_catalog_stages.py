"""Same-family stages in the shipped catalog (issue 28, item 6): the SmolLM3 and OLMo 2
entries carry full pins."""

from __future__ import annotations

import re

from desktop_app import paths
from desktop_app.models.catalog import load_catalog
from desktop_app.models.sources import HubSource

# (repo, filename, revision, size, sha256) as the public manifests pin them
PINS = {
    "smollm3-3b": ("ggml-org/SmolLM3-3B-GGUF", "SmolLM3-Q4_K_M.gguf",
                   "4965cb60b150737b68a0408c36aeefb65078f894", 1915305312,
                   "8334b850b7bd46238c16b0c550df2138f0889bf433809008cc17a8b05761863e"),
    "olmo2-1b-instruct": (
        "allenai/OLMo-2-0425-1B-Instruct-GGUF", "OLMo-2-0425-1B-Instruct-Q4_K_M.gguf",
        "62f8c199538474c3e33ed5d7e0580abd66686a27", 935515296,
        "abd8187934a438fbf7cfff0a1de5b9d2793ce913f158794df1951dcba6c93cc6"),
    "olmo2-7b-instruct": (
        "allenai/OLMo-2-1124-7B-Instruct-GGUF", "olmo-2-1124-7B-instruct-Q4_K_M.gguf",
        "410e0069f64869e4b1d17d8de04810b881fd824b", 4472020256,
        "e08112e5f84aab7c05fa6e713c58e5214cd5d8e32ed773ff3354b006eed41b95"),
}


def test_the_same_family_entries_carry_full_pins():
    catalog = load_catalog([paths.bundled_catalog_path()])
    assert catalog.problems == []
    for model_id, (repo, filename, revision, size, sha256) in PINS.items():
        source = catalog.get(model_id).source
        assert isinstance(source, HubSource), model_id
        assert (source.repo, source.filename, source.revision, source.size, source.sha256) == (
            repo, filename, revision, size, sha256), model_id
        assert source.pinned and re.fullmatch(r"[0-9a-f]{40}", source.revision), model_id
        assert re.fullmatch(r"[0-9a-f]{64}", source.sha256 or ""), model_id
        assert "revision, size and sha256" in source.provenance, model_id
    for model_id, ram in (("olmo2-1b-instruct", "8GB"), ("olmo2-7b-instruct", "16GB")):
        olmo = catalog.get(model_id)
        assert (olmo.role, olmo.family, olmo.license, olmo.ram_class) == (
            "instruct", "OLMo 2", "Apache-2.0", ram)
    smol = catalog.get("smollm3-3b")
    assert (smol.role, smol.family, smol.license) == ("reasoning", "SmolLM3", "Apache-2.0")
    assert smol.prompt.thinking == "think-tags"
    assert smol.prompt.thinking_toggle_flag == "enable_thinking"
    # No OLMo 2 Base/SFT/DPO nor SmolLM3 base: none could be cited with revision, size, sha256.
    assert {e.id for e in catalog if e.family in ("OLMo 2", "SmolLM3")} == {
        "smollm3-3b", "olmo2-1b-instruct", "olmo2-7b-instruct"}
