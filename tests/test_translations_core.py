"""The core's sentences in the window's language (issue 31): a verdict from verify_reply
reads in German, with numbers written the German way, while its machine fields (the
state, the keys of its JSON) stay the same; the command line stays English."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_app.rollouts.summary import RunFigures
from desktop_app.session.turn import thinking_header
from desktop_app.text import i18n
from desktop_app.verify import VerdictState, verify_reply
from desktop_app.verify.verdict import verdict_headline, verdict_title

REPO = Path(__file__).resolve().parent.parent


def _german_number(value: float, decimals: int) -> str:
    """What QLocale("de") writes: 1.234,5."""
    return f"{value:,.{decimals}f}".replace(",", " ").replace(".", ",").replace(" ", ".")


@pytest.fixture
def german() -> Iterator[None]:
    i18n.set_language("de")
    i18n.set_number_format(_german_number)
    try:
        yield
    finally:
        i18n.set_language("en")
        i18n.set_number_format(None)


def test_a_wrong_answer_reads_in_german_and_its_fields_stay(german: None) -> None:
    verdict = verify_reply("Die Rechnung ergibt \\boxed{54}.", expect="56")
    assert verdict.verdict == VerdictState.FAIL
    assert verdict.reason == "Falsch: erwartet 56, erhalten 54 (aus \\boxed{})."
    assert verdict.headline == "✗ Nicht bestanden"
    data = verdict.to_dict()
    assert data["verdict"] == "fail" and data["expected"] == "56" and data["got"] == "54"
    assert set(data) >= {"verdict", "expected", "got", "reason", "isolation", "kind"}
    assert data["kind"] == "math"


def test_a_cut_off_reply_reads_in_german(german: None) -> None:
    verdict = verify_reply("Erst 7 mal 8, das ist", expect="56", finish="length")
    assert verdict.verdict == "no-answer"
    assert verdict.reason == ("Keine Antwort: das Token-Limit hat die Antwort abgeschnitten, "
                              "bevor eine Endantwort kam.")


def test_a_sandbox_timeout_reads_in_german_with_a_decimal_comma(german: None) -> None:
    verdict = verify_reply("```python\nwhile True:\n    pass\n```", timeout_s=0.5)
    assert verdict.verdict == "timeout"
    assert verdict.reason.startswith("Zeitlimit nach 0,5 s überschritten;"), verdict.reason
    assert "Zeitlimit 0,5 s" in verdict.isolation, verdict.isolation
    assert verdict.to_dict()["verdict"] == "timeout"


def test_labels_headlines_and_captions_in_german(german: None) -> None:
    assert verdict_title("pass") == "✓ Bestanden"
    assert verdict_headline("answered", "4") == ("• Antwort gefunden: 4 · kein "
                                                 "Lösungsschlüssel zum Prüfen")
    assert thinking_header(False, 14.0, 1234).endswith("· 1.234 Token")
    summary = RunFigures(n=4, sampled=4, correct=1, checked=4,
                             pass_at_k={"1": 0.25, "4": 1.0}, keyed=True,
                             majority_answer="56", majority_votes=3)
    assert summary.score() == ["1 richtig von 4 geprüften", "pass@1 0,25", "pass@4 1,00"]
    assert summary.details()[0].startswith("Mehrheitsentscheid: 56 (3 Stimmen)")


def test_french_puts_a_no_break_space_before_a_colon() -> None:
    i18n.set_language("fr")
    try:
        reason = verify_reply("#### 54", expect="56").reason
    finally:
        i18n.set_language("en")
    assert reason == "Faux\u00a0: attendu 56, obtenu 54 (de la ligne '####')."


def test_english_stays_the_default() -> None:
    verdict = verify_reply("#### 54", expect="56")
    assert verdict.reason == "Wrong: expected 56, got 54 (from the '####' line)."
    assert verdict.headline == "✗ Failed"


def test_the_command_line_stays_english_in_a_german_session(tmp_path: Path) -> None:
    reply = tmp_path / "reply.md"
    reply.write_text("#### 54")
    env = {**os.environ, "PYTHONPATH": str(REPO), "LANG": "de_DE.UTF-8",
           "LANGUAGE": "de", "LC_ALL": "de_DE.UTF-8", "LC_MESSAGES": "de_DE.UTF-8"}
    done = subprocess.run([sys.executable, "-m", "desktop_app.cli.verify", str(reply),
                           "--expect", "56", "--json"], capture_output=True, text=True,
                          cwd=REPO, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["verdict"] == "fail"
    assert data["reason"] == "Wrong: expected 56, got 54 (from the '####' line)."
    plain = subprocess.run([sys.executable, "-m", "desktop_app.cli.verify", str(reply),
                            "--expect", "56"], capture_output=True, text=True, cwd=REPO,
                           timeout=60, env=env)
    assert "Wrong: expected 56, got 54" in plain.stdout, plain.stdout
    assert "Falsch" not in plain.stdout
