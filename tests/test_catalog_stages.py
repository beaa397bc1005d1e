"""Same-family stages in the shipped catalog (issue 28, item 6): the SmolLM3 and OLMo 2
entries carry full pins, and SmolLM3's two stages are offered as one family."""

from __future__ import annotations

import re

from desktop_app import paths
from desktop_app.models import recommend
from desktop_app.models.catalog import load_catalog
from desktop_app.models.fit import Machine
from desktop_app.models.sources import HubSource
from desktop_app.models.trios import load_trios, mix_note, stage, trio_panes

GB = 1024**3

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


def test_smollm3_is_offered_as_one_family_after_the_full_trios():
    catalog = load_catalog()
    problems: list[str] = []
    trios = load_trios(catalog, problems=problems)
    assert not problems
    assert [trio.id for trio in trios] == [
        "qwen3-0.6b-stages", "qwen3-4b-stages", "smollm3-3b-stages"]
    assert [trio.complete for trio in trios] == [True, True, False]
    smol = trios[-1]
    assert smol.name == "SmolLM3 3B: thinking off, thinking on"
    panes = trio_panes(smol, catalog)
    assert [(entry.id, stage(entry, thinking)) for entry, thinking in panes] == [
        ("smollm3-3b", "instruct"), ("smollm3-3b", "reasoning")]
    assert mix_note(panes) == ""  # one family


def test_the_trio_bar_shows_the_smollm3_pair(qtbot):
    from desktop_app.ui.stage_trios import StageTrioBar

    bar = StageTrioBar(load_catalog())
    qtbot.addWidget(bar)
    assert [bar.box.itemText(i) for i in range(bar.box.count())] == [
        "Qwen3 0.6B: Base, thinking off, thinking on", "Qwen3 4B: Base, thinking off, thinking on",
        "SmolLM3 3B: thinking off, thinking on"]
    bar.box.setCurrentIndex(2)
    text = bar.label.text()
    assert text.startswith("SmolLM3 3B (thinking or not), thinking off → "
                           "SmolLM3 3B (thinking or not), thinking on; 1 to download (")
    assert "mixes families" not in text
    with qtbot.waitSignal(bar.chosen) as chosen:
        bar.button.click()
    assert chosen.args == [[["smollm3-3b", False], ["smollm3-3b", True]]]


def test_the_recommendation_stays_a_three_stage_trio():
    catalog = load_catalog()
    chosen = recommend.recommend_trio(catalog, Machine(8 * GB, 8 * GB, 4), load_trios(catalog))
    assert chosen is not None and chosen.trio is not None and chosen.trio.complete
