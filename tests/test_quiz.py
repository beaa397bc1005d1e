"""The blind "which stage is this?" quiz (issue 28, items 5 and 7) and stage trios (item 6):
the core (``session/quiz.py``, ``models/trios.py``), the window's quiz on the fake engine
with the real Qt event loop, and ``triptych quiz`` as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.models.catalog import load_catalog
from desktop_app.models.trios import load_trios, mix_note, stage, trio_panes
from desktop_app.session.quiz import (
    LABELS,
    MASK,
    TEMPLATE_HIDDEN,
    Masker,
    Quiz,
    aliases_for,
    blind_export,
    mask_terms,
    shuffled,
)

STARTERS = [("gemma3-270m-base", "Gemma 3 270M (base)", "Gemma 3", "base"),
            ("smollm2-135m-instruct", "SmolLM2 135M Instruct", "SmolLM2", "instruct"),
            ("qwen3-0.6b", "Qwen3 0.6B (thinking)", "Qwen3", "reasoning")]
SELF_NAMING = ("I am Qwen, a model by Alibaba Cloud. Hugging Face trained SmolLM2; Google "
               "made Gemma 3. Philosophy, metadata and a gemstone stay.")


# ------------------------------------------------------------------------------ core

def test_the_mask_covers_names_ids_families_and_aliases_and_nothing_else():
    quiz, _ = Quiz.start(STARTERS, seed=1)
    masked = quiz.masker().mask(SELF_NAMING + " qwen3-0.6b, gemma3-270m-base. I'm Tongyi.")
    for word in ("Qwen", "Alibaba", "Hugging", "SmolLM", "Google", "Gemma", "Tongyi",
                 "qwen3-0.6b", "gemma3"):
        assert word.lower() not in masked.lower(), masked
    assert "Philosophy, metadata and a gemstone stay." in masked  # whole names only
    assert masked.count(MASK) == 9
    assert {"Qwen", "Alibaba", "Tongyi"} <= set(aliases_for("Qwen2 (R1 distill)"))
    assert {"DeepSeek", "Qwen", "Alibaba"} <= set(mask_terms(  # the name's aliases too
        [("deepseek-r1-distill-qwen-1.5b", "DeepSeek-R1-Distill-Qwen 1.5B", "Qwen2 (R1 distill)")]))
    assert "Qwen3 0.6B" in mask_terms([STARTERS[2][:3]])  # the name without "(thinking)"


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 13])
def test_streamed_text_is_masked_however_the_names_are_split(size):
    """Names split across chunks ("Qw" + "en", "Alibaba" then " Cloud") come out masked,
    and what is held back comes out by the end: the stream equals the whole text masked."""
    masker = Masker(Quiz.start(STARTERS)[0].terms)
    pieces = [SELF_NAMING[i:i + size] for i in range(0, len(SELF_NAMING), size)]
    streamed = "".join(masker.feed(piece) for piece in pieces) + masker.flush()
    assert streamed == masker.mask(SELF_NAMING)
    assert "Qw" not in streamed and "Alibaba Cloud" not in streamed


def test_the_shuffle_is_seeded_and_the_labels_are_neutral():
    assert shuffled(3, seed=7) == shuffled(3, seed=7)
    assert sorted(shuffled(4, seed=2)) == [0, 1, 2, 3]
    assert len({tuple(shuffled(3, seed=s)) for s in range(30)}) == 6  # every order occurs
    quiz, order = Quiz.start(STARTERS, seed=7)
    assert quiz.labels == list(LABELS[:3])
    assert [pane.model_id for pane in quiz.panes] == [STARTERS[i][0] for i in order]


def test_guesses_reveal_and_score():
    quiz, _ = Quiz.start(STARTERS, seed=3)
    truth = [pane.stage for pane in quiz.panes]
    quiz.guess_all([truth[0], truth[1], "base" if truth[2] != "base" else "instruct"])
    shown = quiz.reveal()
    assert (shown.score, shown.total) == (2, 3) and shown.headline() == "Score: 2 of 3"
    assert shown.lines()[0].startswith(f"Pane A: {truth[0]} (")
    assert shown.lines()[0].endswith("✓") and shown.lines()[2].endswith("✗")
    assert shown.to_dict()["panes"][2]["correct"] is False
    with pytest.raises(ValueError, match="'thinking' is not a stage"):
        quiz.guess("Pane A", "thinking")
    with pytest.raises(ValueError, match="one guess per pane: 3 guesses, not 2"):
        quiz.guess_all(["base", "base"])
    with pytest.raises(ValueError, match="no 'Pane Z'"):
        quiz.guess("Pane Z", "base")
    quiz.guesses.clear()
    assert quiz.reveal().score == 0 and "no guess" in quiz.reveal().lines()[0]


def test_the_blind_export_names_nothing():
    masker = Masker(Quiz.start(STARTERS)[0].terms)
    pane = {"model": "Qwen3 0.6B (thinking)", "model_id": "qwen3-0.6b", "role": "reasoning",
            "missing": "", "turns": [{
                "prompt": "Who are you?", "prompt_sent": "<|im_start|>user\nWho are you?",
                "prompt_notes": ["Qwen3's template folds the system text in"],
                "thinking": "I am Qwen.", "answer": "Qwen, by Alibaba.", "answer_tokens": 4,
                "metrics": "4 tokens · finish: stop", "error": None, "verdict": None,
                "verdict_detail": None, "tokens": [{"text": "Qwen"}]}]}
    blind = blind_export(pane, "Pane B", masker)
    text = json.dumps(blind)
    assert blind["model"] == "Pane B" and blind["role"] == "" and blind["model_id"] == ""
    assert not re.search("qwen|alibaba|im_start|reasoning", text, re.IGNORECASE), text
    assert blind["turns"][0]["prompt_sent"] == TEMPLATE_HIDDEN
    assert blind["turns"][0]["answer"] == f"{MASK}, by {MASK}."


# ------------------------------------------------------------------------------ trios

def test_the_catalog_has_same_family_stage_trios_and_the_starters_say_they_mix():
    catalog = load_catalog()
    problems: list[str] = []
    trios = {trio.id: trio for trio in load_trios(catalog, problems=problems)}
    assert not problems
    qwen = trio_panes(trios["qwen3-0.6b-stages"], catalog)
    assert [stage(entry, thinking) for entry, thinking in qwen] == [
        "base", "instruct", "reasoning"]
    assert mix_note(qwen) == ""
    starters = [(catalog.get(mid), True) for mid in
                ("gemma3-270m-base", "smollm2-135m-instruct", "qwen3-0.6b")]
    assert mix_note(starters) == (
        "This trio mixes families (Gemma 3 base, SmolLM2 instruct, Qwen3 reasoning).")


def test_a_bad_trio_is_one_sentence_and_the_rest_load(tmp_path):
    catalog = load_catalog()
    path = tmp_path / "models.toml"
    path.write_text('[[trio]]\nid = "bad"\npanes = [{ model = "nope" }]\n'
                    '[[trio]]\nid = "worse"\npanes = [{ thinking = "yes" }]\n'
                    '[[trio]]\nid = "ok"\npanes = [{ model = "qwen3-0.6b", thinking = false }]\n',
                    encoding="utf-8")
    problems: list[str] = []
    trios = load_trios(catalog, [path], problems)
    assert [trio.id for trio in trios] == ["ok"] and not trios[0].panes[0].thinking
    assert problems == [f"{path}: trio 'bad' names 'nope', which is not in the catalog.",
                        f"{path}: trio number 2: each pane of trio 'worse' needs a model id."]


# ------------------------------------------------------------------------------ CLI

def triptych(*args: str, stdin: str | None = None, timeout: float = 240):
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], capture_output=True,
                          text=True, timeout=timeout, input=stdin, env=os.environ.copy())


@pytest.mark.parametrize("args, message", [
    (("quiz", "  "), "The prompt is empty"),
    (("quiz", "hi", "--trio", "nope"), "Unknown trio 'nope'. Known trios: qwen3-0.6b-stages"),
    (("quiz", "hi", "--trio", "qwen3-0.6b-stages", "--models", "a"), "not both"),
    (("quiz", "hi", "--models", "nope"), "Unknown model 'nope'"),
    (("quiz", "hi", "--guesses", " "), "--guesses needs one stage per pane"),
    (("quiz", "hi", "--max-tokens", "0"), "--max-tokens must be at least 1"),
])
def test_quiz_usage_mistakes_are_one_line_and_exit_2(args, message):
    done = triptych(*args, timeout=60)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def test_quiz_says_before_it_starts_which_models_are_not_ready():
    """In a fresh home the Qwen3 trio is not downloaded: one sentence, exit 1, no quiz."""
    done = triptych("quiz", "hi", "--trio", "qwen3-0.6b-stages", "--guesses", "base,base,base",
                    timeout=60)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.strip() == ("triptych: Not ready for the quiz: qwen3-0.6b-base, qwen3-0.6b "
                                   "(run 'triptych models pull ID' or open the model manager).")


def _names(*ids: str) -> list[str]:
    catalog = load_catalog()
    return list(mask_terms((e.id, e.name, e.family) for e in map(catalog.get, ids)))


@pytest.mark.slow
def test_quiz_on_the_real_starters_json_guesses_and_typed_guesses(starter_models):
    """Real llama.cpp on the two offline starters: neutral labels, nothing named, the
    reveal scores the guesses given with --guesses, then the guesses typed at the prompt."""
    ids = "gemma3-270m-base,smollm2-135m-instruct"
    question = "Who made you? Say the name of your company and your model."
    done = triptych("quiz", question, "--models", ids, "--seed", "5", "--temperature", "0",
                    "--max-tokens", "24", "--json", "--guesses", "base,instruct")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    deltas, reveal = records[:-1], records[-1]
    assert deltas and {r["type"] for r in deltas} == {"delta"}
    assert {r["label"] for r in deltas} == {"Pane A", "Pane B"}
    streamed = json.dumps(deltas) + done.stderr
    for name in _names(*ids.split(",")):
        assert not re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", streamed,
                             re.IGNORECASE), name
    assert reveal["type"] == "reveal" and reveal["total"] == 2
    truth = [pane["stage"] for pane in reveal["panes"]]
    assert sorted(truth) == ["base", "instruct"]
    assert reveal["score"] == sum(g == t for g, t in zip(["base", "instruct"], truth, strict=True))
    assert {pane["model"] for pane in reveal["panes"]} == set(ids.split(","))

    typed = triptych("quiz", question, "--models", ids, "--seed", "5", "--temperature", "0",
                     "--max-tokens", "8", stdin=f"frog\n{truth[0]}\nb\n")
    assert typed.returncode == 0, typed.stderr
    assert "Type one of base, instruct, reasoning." in typed.stderr  # "frog"; "b" is base
    lines = typed.stdout.splitlines()
    assert lines[-1] == f"Score: {1 + int(truth[1] == 'base')} of 2"
    assert any(line.startswith("Pane A ") for line in lines)  # the answers, labelled
    assert not any("gemma" in line.lower() for line in lines[:-3])


@pytest.mark.slow
def test_quiz_without_typed_guesses_is_one_sentence(starter_models):
    done = triptych("quiz", "Hi", "--models", "smollm2-135m-instruct", "--max-tokens", "2",
                    stdin="")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "triptych: No guess was typed: give them with --guesses base,instruct,reasoning.")


def test_quiz_guess_count_is_checked_before_any_model_loads(starter_models):
    done = triptych("quiz", "Hi", "--models", "gemma3-270m-base,smollm2-135m-instruct",
                    "--guesses", "base", timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip() == "triptych: --guesses: Give one guess per pane: 2 guesses, not 1."


# ------------------------------------------------------------------------------ window

SHOTS = Path(os.environ.get("TRIPTYCH_QUIZ_SHOTS", "")) if os.environ.get(
    "TRIPTYCH_QUIZ_SHOTS") else None


def _shown_text(root, skip=()) -> str:
    """Every piece of text the window shows or says on hover: labels, buttons, boxes and
    their items, text views, tooltips, accessible names."""
    from PySide6.QtWidgets import (
        QAbstractButton,
        QComboBox,
        QLabel,
        QPlainTextEdit,
        QTextEdit,
        QWidget,
    )

    parts = []  # the title is "Triptych — base · instruct · reasoning" whatever the panes
    for widget in root.findChildren(QWidget):
        if not widget.isVisibleTo(root) or widget in skip:
            continue
        parts += [widget.toolTip(), widget.accessibleName()]
        if isinstance(widget, QLabel | QAbstractButton):
            parts.append(widget.text())
        elif isinstance(widget, QComboBox):
            parts += [widget.itemText(i) for i in range(widget.count())]
        elif isinstance(widget, QPlainTextEdit | QTextEdit):
            parts.append(widget.toPlainText())
    return "\n".join(parts)


def _leaks(text: str, names) -> list[str]:
    return [name for name in names
            if re.search(rf"(?<![A-Za-z]){re.escape(name)}(?![A-Za-z])", text, re.IGNORECASE)]


def test_window_blind_quiz_hides_every_name_then_reveals(qtbot, fake_models, engine, tmp_path):
    """View → Blind quiz on three panes of three families whose models name themselves:
    nothing on screen or in the export names a model, family or role, in presentation
    mode at 1024×768 and at 1600×900; Reveal scores the guesses; leaving puts the panes
    back. The GUI thread never waits: the replies stream on the real Qt event loop."""
    from PySide6.QtGui import QGuiApplication

    from desktop_app.engine.protocol import PromptSent
    from desktop_app.ui.main_window import MainWindow
    from tests.fake_engine import answer_script
    from tests.test_ui_projector import PROJECTOR, assert_fits, settle

    entries = list(fake_models)
    ids = [entry.id for entry in entries]
    for entry in entries:
        script = answer_script(f"Hello! I am {entry.name}, by Alibaba Cloud and Hugging Face "
                               "and Google. 2 + 2 = 4.",
                               thinking=(f"The user asks. I'm {entry.family}; stay brief."
                                         if entry.role == "reasoning" else ""), chunk=3)
        script[0] = PromptSent(text=f"<|im_start|>user\nI am {entry.name}<|im_end|>",
                               n_tokens=9, starts_in_thinking=entry.role == "reasoning", seed=1)
        engine.scripts[entry.id] = script
    window = MainWindow(fake_models, models=ids, remember=False, presentation=True,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(*PROJECTOR)
    window.show()
    names = sorted({*mask_terms((e.id, e.name, e.family) for e in entries),
                    "base", "instruct", "reasoning", "<|im_start|>"}, key=len, reverse=True)
    try:
        window.quiz_bar.seed = 4
        quiz_action = next(a for a in window.menuBar().actions()[2].menu().actions()
                           if a.text() == "&Blind quiz")
        quiz_action.setChecked(True)
        quiz = window.quiz_bar.quiz
        assert quiz is not None and window.quiz_bar.isVisible()
        order = [pane.config.model_id for pane in window.panes]
        assert order == [pane.model_id for pane in quiz.panes]  # shown in the quiz's order
        assert order != ids  # seed 4 shuffles these three
        window.prompt.setPlainText("Who are you?")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            assert window.send_all() == 3
        settle(qtbot)
        reasoning = window.panes[[p.stage for p in quiz.panes].index("reasoning")]
        assert not reasoning.turns[0].thinking.isHidden()
        assert not reasoning.turns[0].thinking.expanded  # folded, as it is without the quiz
        for pane in window.panes:
            assert pane.turns[0].prompt_view.toPlainText() == TEMPLATE_HIDDEN
            assert not pane.turns[0].prompt_section.expanded  # a base pane's open one would tell
            assert MASK in pane.turns[0].answer.toPlainText()
            pane.turns[0].show_loading("loading SmolLM2-135M-Instruct.Q4_1.gguf")
            assert pane.turns[0].loading_label.text() == "Loading the model…"
            pane.turns[0].hide_loading()
            pane.turns[0].copy_answer()  # the clipboard gets what is shown
            assert QGuiApplication.clipboard().text().startswith(f"Hello! I am {MASK}, by {MASK}")
        settle(qtbot)
        combos = window.quiz_bar.combos  # the guesses offer the three stages, and only they
        assert [combo.itemText(3) for combo in combos] == ["reasoning"] * 3
        shown = _shown_text(window, skip=combos)
        found = [shown[max(0, m.start() - 60):m.end() + 60] for name in _leaks(shown, names)
                 for m in re.finditer(re.escape(name), shown, re.IGNORECASE)]
        assert not found, "\n---\n".join(found)
        assert_fits(window, PROJECTOR)
        exported = window.export_markdown(tmp_path / "blind.md").read_text(encoding="utf-8")
        exported += window.export_html(tmp_path / "blind.html").read_text(encoding="utf-8")
        assert not _leaks(exported.replace("Triptych comparison", ""), names)
        assert "## 1. Pane A" in exported and "<|im_start|>" not in exported
        if SHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(SHOTS / "quiz-1024x768-presentation.png"))
            window.set_presentation(False)
            window.resize(1600, 900)
            settle(qtbot)
            assert not _leaks(_shown_text(window, skip=combos), names)
            window.grab().save(str(SHOTS / "quiz-1600x900.png"))
            window.set_presentation(True)
            window.resize(*PROJECTOR)
            settle(qtbot)

        truth = [pane.stage for pane in quiz.panes]
        window.quiz_bar.guess([truth[0], truth[1], truth[0]])
        window.quiz_bar.reveal_button.click()
        result = window.quiz_bar.result.text()
        assert result.splitlines()[-1] == f"Score: {2 + (truth[2] == truth[0])} of 3"
        assert all(pane.name in result for pane in quiz.panes)  # the truth, named
        settle(qtbot)
        if SHOTS:
            window.grab().save(str(SHOTS / "quiz-revealed-1024x768-presentation.png"))

        quiz_action.setChecked(False)
        assert [pane.config.model_id for pane in window.panes] == ids  # back in order
        assert not window.quiz_bar.isVisible()
        assert all(pane.picker.isVisible() and pane.badge.text() != "Pane A"
                   for pane in window.panes)
        assert window.quiz_bar.quiz is None
    finally:
        assert window.shutdown()



def _placeholder_qwen3(tmp_path: Path) -> None:
    """The user's catalog points Qwen3-0.6B-Base and Qwen3-0.6B at placeholder files, so the
    stage trio is "all downloaded" without a download (the fake engine never reads them)."""
    from desktop_app import paths

    blocks = []
    for model_id, name, role, prompt in (
            ("qwen3-0.6b-base", "Qwen3 0.6B Base", "base", ""),
            ("qwen3-0.6b", "Qwen3 0.6B (thinking)", "reasoning",
             '[model.prompt]\nthinking = "think-tags"\nthinking_toggle_flag = "enable_thinking"\n')):
        path = tmp_path / f"{model_id}.gguf"
        path.write_bytes(b"GGUF placeholder")
        blocks.append(f'[[model]]\nid = "{model_id}"\nname = "{name}"\nrole = "{role}"\n'
                      f'family = "Qwen3"\n[model.source]\npath = "{path}"\n{prompt}')
    paths.user_catalog_path().write_text("\n".join(blocks), encoding="utf-8")


def test_stage_trio_from_the_manager_and_the_mixed_families_note(qtbot, engine, tmp_path):
    """The starters' panes say in one line that they mix families; the model manager offers
    the Qwen3 0.6B stage trio first; taking it puts base, thinking off and thinking on in
    the panes (the note goes), the thinking-off pane really asks for no thinking, and the
    blind quiz counts that pane as the instruct stage."""
    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.model_manager import ModelManagerDialog
    from tests.fake_engine import answer_script

    _placeholder_qwen3(tmp_path)
    catalog = load_catalog()
    asked: list[tuple[str, bool]] = []

    def script(request):
        asked.append((request.prompt, request.thinking))
        return answer_script("Four.")

    engine.default = script
    window = MainWindow(catalog, models=["gemma3-270m-base", "smollm2-135m-instruct",
                                         "qwen3-0.6b"], remember=False,
                        worker_factory=engine.worker)
    qtbot.addWidget(window)
    window.resize(1024, 768)
    window.show()
    dialog = None
    try:
        assert window.trio_note.isVisible()
        assert window.trio_note.text() == (
            "This trio mixes families (Gemma 3 base, SmolLM2 instruct, Qwen3 reasoning).")
        if SHOTS:
            SHOTS.mkdir(parents=True, exist_ok=True)
            window.grab().save(str(SHOTS / "mixed-note-1024x768.png"))
        dialog = ModelManagerDialog(window.catalog, window,
                                    panes=[p.config.model_id for p in window.panes])
        dialog.stagesChosen.connect(window.use_stages)
        bar = dialog.stage_trios
        assert bar.box.itemText(0) == "Qwen3 0.6B: Base, thinking off, thinking on"
        assert bar.label.text() == ("Qwen3 0.6B Base → Qwen3 0.6B (thinking), thinking off → "
                                    "Qwen3 0.6B (thinking), thinking on; all downloaded.")
        layout = dialog.layout()
        assert layout.indexOf(bar) < layout.indexOf(dialog.recommend)  # offered first
        if SHOTS:
            dialog.resize(1600, 900)
            dialog.show()
            qtbot.wait(50)
            dialog.grab().save(str(SHOTS / "manager-stage-trios-1600x900.png"))
        window.quiz_bar.seed = 4
        window.quiz_bar.set_on(True)  # the trio is taken during a blind quiz
        assert not window.trio_note.isVisible()  # it would name the families
        first = window.quiz_bar.quiz
        bar.button.click()
        assert dialog.status.text() == ("The panes now show Qwen3 0.6B: Base, thinking off, "
                                        "thinking on.")
        qtbot.waitUntil(lambda: window.quiz_bar.quiz is not first, timeout=5_000)  # anew
        quiz = window.quiz_bar.quiz
        assert sorted(pane.stage for pane in quiz.panes) == ["base", "instruct", "reasoning"]
        assert {pane.model_id for pane in quiz.panes} == {"qwen3-0.6b-base", "qwen3-0.6b"}
        assert [pane.badge.text() for pane in window.panes] == ["Pane A", "Pane B", "Pane C"]
        assert not window.trio_note.isVisible()
        window.prompt.setPlainText("What is 2 + 2?")
        with qtbot.waitSignal(window.allFinished, timeout=10_000):
            assert window.send_all() == 3
        assert sorted(thinking for _, thinking in asked) == [False, True, True]
        window.quiz_bar.set_on(False)
        assert [p.config.model_id for p in window.panes] == [
            "qwen3-0.6b-base", "qwen3-0.6b", "qwen3-0.6b"]  # the trio's order, unshuffled
        assert [p.config.thinking for p in window.panes] == [True, False, True]
        assert [p.badge.text() for p in window.panes] == ["BASE", "REASONING", "REASONING"]
        assert not window.trio_note.isVisible() and window.trio_note.text() == ""
    finally:
        if dialog is not None:
            assert dialog.shutdown()
        assert window.shutdown()
