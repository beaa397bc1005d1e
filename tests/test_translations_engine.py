"""The engine's sentences in the window's language; the command line stays English."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.engine import sentences
from desktop_app.engine.protocol import (
    FAILURE_LABELS,
    Failed,
    FailureKind,
    Finished,
    GenerationRequest,
    Sampling,
)
from desktop_app.engine.worker import ModelWorker, run_comparison
from desktop_app.models import user_catalog
from desktop_app.models.wording import localize
from desktop_app.text import i18n
from desktop_app.text.i18n import _
from tests.scripted_gguf import scripted_entry

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def german():
    i18n.set_language("de")
    try:
        yield
    finally:
        i18n.set_language("en")
        i18n.set_number_format(None)


def _fail(entry) -> Failed:
    worker = ModelWorker(entry)
    request = GenerationRequest("Hi", Sampling.for_entry(entry, max_tokens=4))
    try:
        for _pane, event in run_comparison([worker], [request]):
            if isinstance(event, Finished | Failed):
                assert isinstance(event, Failed)
                return event
    finally:
        worker.close()
    raise AssertionError("no final event")


def test_a_file_that_is_not_gguf_fails_in_german(german, tmp_path):
    notes = tmp_path / "notes.gguf"
    notes.write_text("hello")
    failed = _fail(scripted_entry(notes, model_id="notes", role="instruct"))
    assert failed.kind == FailureKind.LOAD
    assert failed.message == "notes.gguf ist keine GGUF-Modelldatei (sie beginnt nicht mit „GGUF“)."
    assert _(FAILURE_LABELS[failed.kind]) == "Modell konnte nicht geladen werden"


def test_a_missing_file_fails_in_german(german, tmp_path):
    failed = _fail(scripted_entry(tmp_path / "absent.gguf", model_id="absent", role="instruct"))
    assert failed.kind == FailureKind.MISSING
    assert failed.message.startswith("Das Modell „absent“ verweist auf ")
    assert failed.message.endswith(", die es nicht gibt.")


def test_known_sentences_are_read_again_and_llama_cpp_is_quoted(german):
    english = "Generation failed: llama.cpp failed while generating (code -3)."
    assert sentences.localize(english) == (
        "Generieren fehlgeschlagen: llama.cpp ist beim Generieren gescheitert (Code -3).")
    # llama.cpp's own words stay as they came
    assert sentences.localize("Generation failed: ggml_abort bad tensor") == (
        "Generieren fehlgeschlagen: ggml_abort bad tensor")
    assert sentences.localize("Something else entirely.") == "Something else entirely."
    i18n.set_number_format(lambda value, decimals: f"{value:.{decimals}f}".replace(".", ","))
    assert localize("1.5 of 2", [i18n.N_("{a} of {b}")]) == "1,5 of 2"  # no German: the figures


def test_english_is_unchanged_without_a_language():
    english = "Generation failed: llama.cpp failed while generating (code -3)."
    assert sentences.localize(english) == english
    assert _(FAILURE_LABELS[FailureKind.OOM]) == "Out of memory"


def test_the_command_line_stays_english_under_a_german_locale(tmp_path):
    notes = tmp_path / "notes.gguf"
    notes.write_text("hello")
    home = tmp_path / "home"
    env = {**os.environ, "TRIPTYCH_HOME": str(home), "LANG": "de_DE.UTF-8",
           "LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8", "PYTHONPATH": str(ROOT)}
    previous = os.environ.get("TRIPTYCH_HOME")
    os.environ["TRIPTYCH_HOME"] = str(home)
    try:
        user_catalog.add_model({"id": "notes", "name": "Notes", "role": "instruct",
                                "family": "test", "context_length": 512},
                               {"path": str(notes)})
    finally:
        if previous is None:
            os.environ.pop("TRIPTYCH_HOME", None)
        else:
            os.environ["TRIPTYCH_HOME"] = previous
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli.main", "compare", "Hi", "--models", "notes",
         "--max-tokens", "4"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    output = done.stdout + done.stderr
    assert "notes.gguf is not a GGUF model file (it does not start with 'GGUF')." in output
    assert "keine" not in output


# ------------------------------------------------------------------ a remote server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_fails_in_german_and_the_command_line_stays_english(
        german, tmp_path):
    from tests.test_remote import final, remote_entry, run

    endpoint = f"http://127.0.0.1:{_free_port()}/v1"  # nothing listens there
    failed = final(run(remote_entry(endpoint, "served-model", role="instruct")))
    assert isinstance(failed, Failed)
    host = endpoint.split("//")[1].removesuffix("/v1")
    assert failed.message.startswith(f"Der Server unter {host} ist nicht erreichbar (")
    assert failed.message.endswith("); läuft er, und ist die Adresse richtig?")

    home = tmp_path / "home"
    previous = os.environ.get("TRIPTYCH_HOME")
    os.environ["TRIPTYCH_HOME"] = str(home)
    try:
        i18n.set_language("en")  # the catalog's own wording, as the command line writes it
        [entry] = user_catalog.add_remote_models(endpoint, [("served-model", "instruct")])
    finally:
        i18n.set_language("de")
        if previous is None:
            os.environ.pop("TRIPTYCH_HOME", None)
        else:
            os.environ["TRIPTYCH_HOME"] = previous
    env = {**os.environ, "TRIPTYCH_HOME": str(home), "LANG": "de_DE.UTF-8",
           "LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "desktop_app.cli.main", "compare", "Hi", "--models", entry.id,
         "--max-tokens", "4"], capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    output = done.stdout + done.stderr
    assert f"Cannot reach the server at {host} (" in output
    assert "is it running, and is the address right?" in output
    assert "erreichbar" not in output


# ------------------------------------------------------------- the catalog, the metrics


def _decimal_comma(value: float, decimals: int) -> str:
    return f"{value:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")


def test_a_bad_catalog_entry_and_the_metrics_line_read_in_german(german, tmp_path):
    from desktop_app.engine.protocol import GenerationResult
    from desktop_app.models.catalog import load_catalog

    i18n.set_number_format(_decimal_comma)
    catalog_file = tmp_path / "models.toml"
    catalog_file.write_text('[[model]]\nid = "odd"\nrole = "teacher"\n', encoding="utf-8")
    [problem] = load_catalog([catalog_file]).problems
    assert problem == (f"{catalog_file}: Modell 'odd': unbekannte Rolle „teacher“ (erwartet: "
                       "eine von base, instruct, reasoning).")

    result = GenerationResult(model="m", role="reasoning", ttft_s=0.01, tokens_per_s=50.0,
                              thinking_tokens=8, answer_tokens=1234, load_s=0.0,
                              finish_reason="stop")
    assert result.metrics_line() == ("TTFT 0,01 s · 50,0 tok/s · Denken 8 / Antwort 1.234 "
                                     "Token · Laden 0,0 s · Ende: stop")


def test_the_catalog_and_the_metrics_line_stay_english_without_a_language(tmp_path):
    from desktop_app.engine.protocol import GenerationResult
    from desktop_app.models.catalog import load_catalog

    catalog_file = tmp_path / "models.toml"
    catalog_file.write_text('[[model]]\nid = "odd"\nrole = "teacher"\n', encoding="utf-8")
    assert load_catalog([catalog_file]).problems == [
        f"{catalog_file}: model 'odd': unknown role 'teacher' (expected one of: base, "
        "instruct, reasoning)."]
    result = GenerationResult(model="m", role="reasoning", ttft_s=0.01, tokens_per_s=50.0,
                              thinking_tokens=8, answer_tokens=1234, load_s=0.0,
                              finish_reason="stop")
    assert result.metrics_line() == ("TTFT 0.01 s · 50.0 tok/s · thinking 8 / answer 1,234 "
                                     "tokens · load 0.0 s · finish: stop")


def test_where_a_model_ran_reads_in_the_window_language():
    """The model's process writes ``CPU · 2 threads`` in English; the metrics line says it
    in the window's language, a note after it as written."""
    from desktop_app.engine.protocol import placement_words
    from desktop_app.text import i18n

    try:
        i18n.set_language("de")
        assert placement_words("CPU · 1 thread") == "CPU · 1 Thread"
        assert placement_words("CPU · 2 threads · AMX off") == "CPU · 2 Threads · AMX off"
        assert placement_words("Metal · 29/29 layers") == "Metal · 29/29 Schichten"
        assert placement_words("somewhere else") == "somewhere else"
    finally:
        i18n.set_language("en")
    assert placement_words("CPU · 2 threads") == "CPU · 2 threads"
