"""Conformance over llama.cpp's own collection of real chat templates.

The collection (``vendor/llama.cpp/models/templates/`` in llama-cpp-python's source
distribution, about 70 templates of real models) is fetched with pip for the installed
version and cached; it is not part of this repository. For every template that
llama-cpp-python's formatter renders for a short conversation, the app's prompt must be
the same text; with thinking off it must equal the template's own ``enable_thinking=False``
rendering wherever the template has that switch, and otherwise end in a closed, empty
thinking block (never tags in a harmony template).
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
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
from desktop_app.engine.prompting import SYSTEM_FOLDED_NOTE, BuiltPrompt, Turn, build_prompt
from desktop_app.models.catalog import ModelEntry, PromptStyle
from desktop_app.models.sources import FileSource

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


def _ends_open(text: str) -> bool:
    start = text.rfind("<think>")
    return start != -1 and not text[start + len("<think>"):].strip()


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


def test_thinking_on_and_off_match_the_templates_own_switch(template_collection):
    with_flag, without_flag, failures = [], [], []
    for name, template in template_collection.items():
        if "<|channel|>" in template:
            continue  # harmony: see the next test
        plain = _reference(template, _messages(None))
        if plain is None:
            continue
        on, off = _ours(template, "think-tags"), _ours(template, "think-tags", thinking=False)
        if mentions(template, "enable_thinking"):
            with_flag.append(name)
            expected_on = _reference(template, _messages(None), enable_thinking=True)
            expected_off = _reference(template, _messages(None), enable_thinking=False)
            if on.text != expected_on or off.text != expected_off:
                failures.append(f"{name}: the template's own enable_thinking was not used")
        else:
            without_flag.append(name)
            if on.text != plain or not off.text.startswith(plain):
                failures.append(f"{name}: more than a thinking block was changed")
            if not off.text.rstrip().endswith("</think>"):
                failures.append(f"{name}: thinking off does not end in a closed block")
        if on.starts_in_thinking != _ends_open(on.text) or off.starts_in_thinking:
            failures.append(f"{name}: starts_in_thinking is wrong")
    assert not failures, "\n".join(failures)
    assert len(with_flag) >= 15 and len(without_flag) >= 30, (len(with_flag), len(without_flag))


def test_harmony_templates_switch_by_reasoning_effort(template_collection):
    harmony = {name: text for name, text in template_collection.items()
               if "<|channel|>" in text and mentions(text, "reasoning_effort")}
    assert "openai-gpt-oss-120b.jinja" in harmony
    for name, template in harmony.items():
        on = _ours(template, "gpt-oss-channels")
        off = _ours(template, "gpt-oss-channels", thinking=False)
        assert on.text == _reference(template, _messages(None)), name
        assert off.text == _reference(template, _messages(None), reasoning_effort="low"), name
        assert "<think>" not in off.text and off.notes, name
