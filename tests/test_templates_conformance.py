"""Conformance over llama.cpp's own collection of real chat templates.

The collection (``vendor/llama.cpp/models/templates/`` in llama-cpp-python's source
distribution, about 70 templates of real models) is fetched with pip for the installed
version and cached; it is not part of this repository. For every template that
llama-cpp-python's formatter renders for a short conversation, ``triptych prompt
--template`` must read the template's thinking format and print the formatter's own text,
with thinking on and with it off through the template's own switch (``enable_thinking``,
the family's variable, ``/no_think``); where a template has no switch, its rendering with
the format's empty block written after it, said so.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

import pytest
from platformdirs import user_cache_path

from desktop_app.engine.chat_template import mentions
from desktop_app.engine.prompting import (
    ALWAYS_NOTE,
    EMPTY_BLOCK_NOTE,
    REASONING_LOW_NOTE,
    SYSTEM_FOLDED_NOTE,
    BuiltPrompt,
    Turn,
    build_prompt,
)
from desktop_app.models.catalog import ModelEntry, PromptStyle
from desktop_app.models.sources import FileSource
from desktop_app.text.thinking import ThinkingFormat, format_in_template, get_format

TEMPLATES_IN_SDIST = "/vendor/llama.cpp/models/templates/"
BOS, EOS = "<|test_bos|>", "<|test_eos|>"
SYSTEM = "Answer briefly."
HISTORY = (Turn("What is 2+2?", "4"),)
QUESTION = "And 3+3?"


def _extract_templates(sdist: Path, target: Path) -> None:
    """Copy the collection's .jinja files out of the sdist into ``target`` (atomically)."""
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=target.name + "."))
    try:
        with tarfile.open(sdist) as archive:
            for member in archive:
                name = member.name
                if member.isfile() and TEMPLATES_IN_SDIST in name and name.endswith(".jinja"):
                    source = archive.extractfile(member)
                    assert source is not None
                    (partial / Path(name).name).write_bytes(source.read())
        try:
            partial.rename(target)
        except OSError:
            if not target.is_dir():  # another test run extracted it first: fine
                raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)


@pytest.fixture(scope="session")
def template_collection() -> dict[str, str]:
    """name -> template text, for the installed llama-cpp-python's vendored llama.cpp."""
    version = importlib.metadata.version("llama-cpp-python")
    # Kept in the user's cache so later runs, and fresh clones, skip pip (about 10 s even
    # from pip's cache, which still prepares the sdist's metadata; 30 s on a busy machine).
    # (Beside pytest's numbered temp dirs it was made again every run: each run numbers
    # a new one.) The folder is named by the version and written atomically.
    cache = Path(os.environ.get("TRIPTYCH_TEST_CACHE")
                 or user_cache_path("triptych") / "test-cache")
    target = cache / f"llama-cpp-python-{version}-templates"
    if not target.is_dir():
        download = cache / "sdist"
        download.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
             "--no-binary", ":all:", f"llama-cpp-python=={version}", "-d", str(download)],
            capture_output=True, text=True, timeout=600)
        sdists = sorted(download.glob(f"llama_cpp_python-{version}.tar.gz"))
        if done.returncode != 0 or not sdists:
            pytest.skip(f"could not download llama-cpp-python {version}'s sdist: "
                        f"{done.stderr.strip().splitlines()[-1:] or done.returncode}")
        _extract_templates(sdists[0], target)
    return {path.name: path.read_text(encoding="utf-8")
            for path in sorted(target.glob("*.jinja"))}


@functools.lru_cache(maxsize=4)
def _reference_formatter(template: str) -> Any:
    from llama_cpp.llama_chat_format import Jinja2ChatFormatter

    return Jinja2ChatFormatter(template=template, bos_token=BOS, eos_token=EOS)


def _reference(template: str, messages: list[dict[str, str]], **flags: Any) -> str | None:
    """What llama-cpp-python's own formatter renders, or None if it cannot."""
    try:
        return str(_reference_formatter(template)(messages=messages, **flags).prompt)
    except Exception:  # noqa: BLE001 - whatever the reference cannot render is skipped
        return None


def _messages(system: str | None) -> list[dict[str, str]]:
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user", "content": HISTORY[0].user},
                   {"role": "assistant", "content": HISTORY[0].assistant},
                   {"role": "user", "content": QUESTION}]


def _entry(thinking: str) -> ModelEntry:
    return ModelEntry(id="t", name="T", role="instruct" if thinking == "none" else "reasoning",
                      family="test", source=FileSource(path="t.gguf"),
                      prompt=PromptStyle(style="chat", thinking=thinking))


def _ours(template: str, thinking_format: str, **options: Any) -> BuiltPrompt:
    return build_prompt(_entry(thinking_format), QUESTION, chat_template=template,
                        bos_token=BOS, eos_token=EOS, history=HISTORY, **options)


def test_collection_is_there(template_collection):
    assert len(template_collection) >= 60
    assert "Qwen-Qwen3-0.6B.jinja" in template_collection


def test_every_renderable_template_renders_identically(template_collection):
    checked, failures = [], []
    for name, template in template_collection.items():
        expected = _reference(template, _messages(SYSTEM))
        notes: tuple[str, ...] = ()
        if expected is None:  # e.g. gemma-2 refuses a system role: we fold it instead
            folded = _messages(None)
            folded[0] = {"role": "user", "content": f"{SYSTEM}\n\n{folded[0]['content']}"}
            expected, notes = _reference(template, folded), (SYSTEM_FOLDED_NOTE,)
        if expected is None:
            continue  # llama-cpp-python cannot render this conversation either
        checked.append(name)
        built = _ours(template, "none", system_prompt=SYSTEM)
        if (built.text, built.notes) != (expected, notes):
            failures.append(f"{name}: {built.text[-80:]!r} {built.notes} != "
                            f"{expected[-80:]!r} {notes}")
    assert not failures, "\n".join(failures)
    assert len(checked) >= 60, f"only {len(checked)} templates rendered"
    # The templates that needed loop controls and the generation tag render now.
    for name in ("HuggingFaceTB-SmolLM3-3B.jinja", "CohereForAI-c4ai-command-r7b-12-2024-"
                 "tool_use.jinja", "Kimi-K3.jinja", "Reka-Edge.jinja"):
        assert name in checked or name not in template_collection, name


# The format ``triptych prompt`` must read in each template that is not plain <think> tags
# (those are found by their tags): the markers llama.cpp's parsers use for these models.
FORMAT_OF = {
    "Apertus-8B-Instruct.jinja": "apertus-inner",
    "Apriel-1.6-15b-Thinker-fixed.jinja": "apriel-steps",
    "unsloth-Apriel-1.5.jinja": "apriel-steps",
    "ByteDance-Seed-OSS.jinja": "seed-think",
    "Cohere2MoE.jinja": "cohere-thinking",
    "CohereForAI-c4ai-command-r7b-12-2024-tool_use.jinja": "cohere-thinking",
    "google-gemma-4-31B-it.jinja": "gemma4-channel",
    "google-gemma-4-31B-it-interleaved.jinja": "gemma4-channel",
    "Kimi-K3.jinja": "kimi-k3",
    "MiniMax-M3.jinja": "minimax-think",
    "mistralai-Ministral-3-14B-Reasoning-2512.jinja": "mistral-think",
    "muse-glimmer.jinja": "muse-self",
    "openai-gpt-oss-120b.jinja": "gpt-oss-channels",
    "tencent-Hy3.jinja": "hy3-think",
    "upstage-Solar-Open-100B.jinja": "solar-think",
}
# Each template's own switch where it is not enable_thinking: the variables its model card
# documents, as (thinking on, thinking off); {} leaves the template's default.
OWN_SWITCH: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "ByteDance-Seed-OSS.jinja": ({}, {"thinking_budget": 0}),
    "Cohere2MoE.jinja": ({}, {"reasoning_effort": "none"}),
    "Kimi-K3.jinja": ({"thinking": True}, {"thinking": False}),
    "MiniMax-M3.jinja": ({"thinking_mode": "enabled"}, {"thinking_mode": "disabled"}),
    "openai-gpt-oss-120b.jinja": ({}, {"reasoning_effort": "low"}),  # never off: low
    "tencent-Hy3.jinja": ({"reasoning_effort": "high"}, {"reasoning_effort": "no_think"}),
    "upstage-Solar-Open-100B.jinja": ({}, {"reasoning_effort": "low"}),
}
NO_THINK_IN_SYSTEM = {"NVIDIA-Nemotron-Nano-v2.jinja"}  # off: "/no_think" in the system text
ALWAYS_THINKS = {"apriel-steps", "mistral-think", "muse-self", "gpt-oss-channels"}


def _triptych_prompt(capsys: pytest.CaptureFixture[str], path: Path, history: Path,
                     *thinking: str) -> dict[str, Any]:
    """What ``triptych prompt --template PATH --json`` prints for the test conversation."""
    from desktop_app.cli.main import main

    code = main(["prompt", "--template", str(path), "--bos", BOS, "--eos", EOS, "--system",
                 SYSTEM, "--history", str(history), "--json", *thinking, QUESTION])
    out, err = capsys.readouterr()
    assert code == 0, f"{path.name}: {err}"
    record: dict[str, Any] = json.loads(out)
    return record


def _reference_with_system(template: str, system: str,
                           **flags: Any) -> tuple[str | None, tuple[str, ...]]:
    """The reference rendering with the system text, folded into the first user turn
    (and said so) where the template has no system role."""
    rendered = _reference(template, _messages(system), **flags)
    if rendered is not None:
        return rendered, ()
    folded = _messages(None)
    folded[0] = {"role": "user", "content": f"{system}\n\n{folded[0]['content']}"}
    return _reference(template, folded, **flags), (SYSTEM_FOLDED_NOTE,)


def _expected_format(name: str, template: str) -> str:
    if name in FORMAT_OF:
        return FORMAT_OF[name]
    return "think-tags" if re.search(r"</?think>", template) else "none"


def _ends_open(text: str, fmt: ThinkingFormat) -> bool:
    start = text.rfind(fmt.open) if fmt.open else -1
    return start != -1 and not text[start + len(fmt.open):].strip()


def _expected_on_off(name: str, template: str,
                     fmt: ThinkingFormat) -> tuple[tuple[str | None, tuple[str, ...]], ...]:
    """(text, notes) with thinking on and with it off, from the reference formatter."""
    if not fmt.thinks:
        plain = _reference_with_system(template, SYSTEM)
        return plain, plain
    if name in OWN_SWITCH:
        flags_on, flags_off = OWN_SWITCH[name]
    elif mentions(template, "enable_thinking"):
        flags_on, flags_off = {"enable_thinking": True}, {"enable_thinking": False}
    else:
        flags_on = flags_off = {}
    on = _reference_with_system(template, SYSTEM, **flags_on)
    if name in NO_THINK_IN_SYSTEM:
        return on, _reference_with_system(template, f"{SYSTEM} /no_think")
    if flags_off:
        off = _reference_with_system(template, SYSTEM, **flags_off)
        if name == "openai-gpt-oss-120b.jinja":
            off = (off[0], off[1] + (REASONING_LOW_NOTE,))
        return on, off
    text, notes = on
    if text is None or fmt.name in ALWAYS_THINKS:  # no way to turn it off: said so
        return on, (text, notes + (ALWAYS_NOTE,))
    # no switch: the format's empty block, written for the model, in place of an open one
    if _ends_open(text, fmt):
        text = text[:text.rstrip().rfind(fmt.open)]
    return on, (text + fmt.empty_block, notes + (EMPTY_BLOCK_NOTE,))


def test_every_template_renders_the_same_in_triptych_prompt_with_thinking_on_and_off(
        template_collection, capsys, tmp_path):
    """Every template llama-cpp-python renders: ``triptych prompt --template`` reads its
    thinking format, and with thinking on and off prints the template's own rendering
    with its own switch (where it has none, the format's empty block, said so)."""
    history = tmp_path / "history.json"
    history.write_text(json.dumps([{"user": t.user, "assistant": t.assistant} for t in HISTORY]),
                       encoding="utf-8")
    checked: dict[str, list[str]] = {"on": [], "off": []}
    failures = []
    for name, template in template_collection.items():
        fmt = get_format(_expected_format(name, template))
        expected = _expected_on_off(name, template, fmt)
        if expected[0][0] is None:
            continue  # llama-cpp-python cannot render this conversation either
        path = tmp_path / name
        path.write_text(template, encoding="utf-8")
        for mode, thinking, (text, notes) in zip(("on", "off"), ((), ("--no-thinking",)),
                                                 expected, strict=True):
            shown = _triptych_prompt(capsys, path, history, *thinking)
            checked[mode].append(name)
            if shown["thinking_format"] != fmt.name:
                failures.append(f"{name}: read as {shown['thinking_format']}, not {fmt.name}")
            if (shown["prompt"], tuple(shown["notes"])) != (text, notes):
                failures.append(f"{name} thinking {mode}: {shown['prompt'][-70:]!r} "
                                f"{shown['notes']} != {(text or '')[-70:]!r} {notes}")
            opened = _ends_open(shown["prompt"], fmt) and (mode == "on"
                                                            or fmt.name in ALWAYS_THINKS)
            if shown["starts_in_thinking"] != opened:
                failures.append(f"{name} thinking {mode}: starts_in_thinking is wrong")
    assert not failures, f"{len(failures)} differ:\n" + "\n".join(failures)
    print(f"rendered the same: {len(checked['on'])} with thinking on, "
          f"{len(checked['off'])} with thinking off, of {len(template_collection)}")
    assert len(checked["on"]) == len(checked["off"]) >= 66, checked
    for name in FORMAT_OF:  # every new format was really exercised
        assert name in checked["on"] or name not in template_collection, name


def test_each_format_is_read_from_its_templates(template_collection):
    for name, template in template_collection.items():
        assert format_in_template(template).name == _expected_format(name, template), name
