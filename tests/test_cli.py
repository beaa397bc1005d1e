"""`triptych` as a user runs it: real subprocesses, real models, one sentence per mistake."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from desktop_app import __version__

SUMMARY_FIELDS = {"model", "role", "prompt_sent", "thinking", "answer", "thinking_tokens",
                  "answer_tokens", "ttft_s", "tokens_per_s", "finish_reason", "error"}


def triptych(*args: str, timeout: float = 120, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "desktop_app", *args], capture_output=True,
                          text=True, timeout=timeout, input=stdin, env=os.environ.copy())


def test_version():
    done = triptych("--version")
    assert done.returncode == 0 and done.stdout.strip() == f"Triptych {__version__}"


@pytest.mark.parametrize("args, message", [
    (("compare", "   "), "The prompt is empty"),
    (("compare", "hi", "--models", "nope"), "Unknown model 'nope'"),
    (("compare", "hi", "--models", ","), "--models needs at least one model id"),
    (("compare", "hi", "--max-tokens", "0"), "--max-tokens must be at least 1"),
    (("--screenshot", "x.png"), "--screenshot needs --prompt"),
    (("--prompt", "hi", "--screenshot", ""), "--screenshot needs a file name, such as shot.png."),
    (("--prompt", "hi", "--screenshot", "x.png", "--size", "big"), "--size must be WIDTHxHEIGHT"),
    (("--prompt", "hi", "--screenshot", "x.png", "--models", "nope"), "Unknown model 'nope'"),
    (("compare", "hi", "--gpu-layers", "lots"), "--gpu-layers must be auto, 0 or a number"),
    (("compare", "hi", "--gpu-layers", "-3"), "--gpu-layers cannot be negative"),
])
def test_usage_mistakes_are_one_line_and_exit_2(args, message):
    done = triptych(*args)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in done.stderr


def _unwritable_folder(tmp_path) -> str:
    """A folder no file can be written in: read-only for a user, /sys for root."""
    if os.geteuid() == 0:
        if not os.path.isdir("/sys"):
            pytest.skip("no read-only folder for root here")
        return "/sys"
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    return str(folder)


def test_a_bad_screenshot_path_is_one_sentence_and_exit_2_before_any_model_runs(tmp_path):
    """Issue 27: under a file, in a folder that can't be written, a folder itself, an
    image type Qt does not write: one sentence, exit status 2, no window, no model."""
    blocker = tmp_path / "notes.txt"
    blocker.write_text("a file")
    unwritable = _unwritable_folder(tmp_path)
    cases = {
        str(blocker / "shots" / "x.png"):
            f"triptych: --screenshot {blocker / 'shots' / 'x.png'} cannot be saved: "
            f"{blocker} is a file, not a folder.",
        f"{unwritable}/x.png":
            f"triptych: --screenshot {unwritable}/x.png cannot be saved there: "
            "Permission denied.",
        str(tmp_path):
            f"triptych: --screenshot {tmp_path} must end in .png (or .jpg, .bmp).",
        str(tmp_path / "pictures.png"): None,  # a folder called pictures.png
        str(tmp_path / "shot.gif"):
            f"triptych: --screenshot {tmp_path / 'shot.gif'} must end in .png (or .jpg, .bmp).",
    }
    (tmp_path / "pictures.png").mkdir()
    for path, expected in cases.items():
        done = triptych("--prompt", "What is 7 * 8?", "--models", "smollm2-135m-instruct",
                        "--screenshot", path, timeout=60)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1, (path, done.stderr)
        if expected is None:
            assert lines[0].startswith(f"triptych: --screenshot {path} is a folder; ")
        else:
            assert lines[0] == expected
    assert not [*tmp_path.rglob("x.png"), *tmp_path.rglob("shot.gif")]  # nothing was written


def test_the_screenshot_check_makes_the_folder_and_leaves_no_file(tmp_path):
    from desktop_app.ui.app import check_screenshot_path

    target = tmp_path / "new" / "deeper" / "shot.png"
    assert check_screenshot_path(str(target)) == target
    assert target.parent.is_dir() and not target.exists()
    target.write_bytes(b"an earlier shot")
    assert check_screenshot_path(str(target)) == target
    assert target.read_bytes() == b"an earlier shot"  # checked, not touched


def test_compare_says_which_default_pane_it_leaves_out_as_the_window_does(starter_models,
                                                                         capsys):
    """Issue 27: no --models, a role whose model can't run: compare leaves its pane out
    and says so, one line per pane on stderr, in the sentence that pane shows in the
    window; information is a ``note:``, not a ``triptych:`` error."""
    from desktop_app.cli.compare import _panes
    from desktop_app.models.catalog import (
        default_pane_ids,
        load_catalog,
        missing_message,
        state_of,
    )

    catalog = load_catalog()
    panes = [catalog.entries[model_id] for model_id in default_pane_ids(catalog)]
    left_out = [entry for entry in panes if state_of(entry) != "ready"]
    if not left_out:
        pytest.skip("every role's model is ready here")
    entries = _panes(None)
    assert [entry.id for entry in entries] == [e.id for e in panes if e not in left_out]
    assert capsys.readouterr().err.splitlines() == [
        f"note: the {entry.role} pane is left out: {missing_message(entry, state_of(entry))}"
        for entry in left_out]


def test_information_is_a_note_and_errors_say_triptych(capsys):
    from desktop_app.cli.common import EXIT_FAILED, note, report

    note("saved results.json and results.csv")
    assert report("cannot save results: Permission denied.", EXIT_FAILED) == EXIT_FAILED
    assert capsys.readouterr().err.splitlines() == [
        "note: saved results.json and results.csv",
        "triptych: cannot save results: Permission denied."]


@pytest.mark.parametrize("argv", [
    ["models", "frob"], ["compare"], ["bench", "--tokens", "many"], ["practice", "pull"],
    ["frobnicate"], ["models", "pull"], ["rollouts", "-n", "x", "q", "--models", "a"],
])
def test_argparse_mistakes_are_the_one_usage_error_in_every_command(capsys, argv):
    from desktop_app.cli.main import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("triptych: ")
    assert "--help')." in err and "usage:" not in err


@pytest.mark.slow
def test_compare_json_streams_events_and_ends_with_summaries(starter_models):
    done = triptych("compare", "What is the capital of France?", "--json", "--temperature", "0",
                    "--seed", "3", "--max-tokens", "16",
                    "--models", "gemma3-270m-base,smollm2-135m-instruct")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    summaries = [r for r in records if r["type"] == "summary"]
    assert [s["model"] for s in summaries] == ["gemma3-270m-base", "smollm2-135m-instruct"]
    assert records[-2:] == summaries  # summaries come last
    for summary in summaries:
        assert summary.keys() >= SUMMARY_FIELDS
        assert summary["error"] is None and summary["answer"]
        assert summary["answer_tokens"] > 0 and summary["ttft_s"] > 0
        deltas = "".join(r["answer"] for r in records
                         if r["type"] == "delta" and r["model"] == summary["model"])
        assert deltas == summary["answer"]
    base, instruct = summaries
    assert base["role"] == "base" and "Question: What is the capital of France?" in base["prompt_sent"]
    assert instruct["role"] == "instruct" and "<|im_start|>user" in instruct["prompt_sent"]
    types = {r["type"] for r in records}
    assert {"loading", "loaded", "promptsent", "delta", "finished", "summary"} <= types
    loaded = [r for r in records if r["type"] == "loaded"]
    assert all(r["placement"].startswith(("CPU · ", "Metal · ", "CUDA · ", "Vulkan · "))
               for r in loaded)
    assert all(s["placement"] for s in summaries)  # where each pane ran


@pytest.mark.slow
def test_compare_cpu_only_says_so(starter_models):
    done = triptych("compare", "Hi", "--json", "--max-tokens", "2", "--gpu-layers", "0",
                    "--models", "smollm2-135m-instruct")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    loaded = next(r for r in records if r["type"] == "loaded")
    assert loaded["gpu_layers"] == 0 and loaded["placement"].startswith("CPU · ")
    assert records[-1]["placement"].startswith("CPU · ")


@pytest.mark.slow
def test_missing_model_fails_its_pane_and_others_finish(starter_models):
    done = triptych("compare", "Say hi.", "--json", "--max-tokens", "4",
                    "--models", "qwen3-0.6b,smollm2-135m-instruct")
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "triptych: qwen3-0.6b: Model 'qwen3-0.6b' is not downloaded yet; run 'triptych models "
        "pull qwen3-0.6b' or open the model manager."]
    summaries = {r["model"]: r for r in map(json.loads, done.stdout.splitlines())
                 if r["type"] == "summary"}
    assert summaries["qwen3-0.6b"]["error"] and summaries["qwen3-0.6b"]["finish_reason"] == "error"
    assert summaries["smollm2-135m-instruct"]["error"] is None


@pytest.mark.slow
def test_text_output_labels_every_pane(starter_models):
    done = triptych("compare", "Name a colour.", "--max-tokens", "8", "--temperature", "0",
                    "--models", "smollm2-135m-instruct")
    assert done.returncode == 0
    assert done.stdout.startswith("[smollm2-135m-instruct] │ ")
    assert "tok/s" in done.stderr and "finish:" in done.stderr


@pytest.mark.slow
def test_corrupt_gguf_in_user_catalog_is_one_line(tmp_path, starter_models):
    from desktop_app import paths

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model at all")
    paths.user_catalog_path().write_text(
        f'[[model]]\nid = "broken"\nrole = "instruct"\n[model.source]\npath = "{broken}"\n')
    done = triptych("compare", "Hi", "--models", "broken")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    errors = [line for line in done.stderr.splitlines() if line.startswith("triptych:")]
    assert errors == [
        "triptych: broken: broken.gguf is not a GGUF model file (it does not start with 'GGUF')."]


def test_window_without_a_display_is_one_sentence(starter_models):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    done = subprocess.run([sys.executable, "-m", "desktop_app"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "triptych: no display found (DISPLAY / WAYLAND_DISPLAY unset); use 'triptych compare "
        "PROMPT' in a terminal, or --screenshot to render offscreen."]


@pytest.mark.slow
def test_snapshot_needs_no_display(starter_models, tmp_path):
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    shot = tmp_path / "shot.png"
    done = subprocess.run([sys.executable, "-m", "desktop_app", "--prompt", "Say hi.",
                           "--models", "smollm2-135m-instruct", "--max-tokens", "4",
                           "--screenshot", str(shot)],
                          capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    assert shot.stat().st_size > 10_000


@pytest.mark.slow
def test_compare_says_how_the_prompt_was_adapted(starter_models):
    """A chat model whose file has no chat template gets ChatML, and compare says so:
    in the JSON promptsent event, the summary, and the text output."""
    from desktop_app import paths
    from desktop_app.models.catalog import local_path

    model_file = local_path(starter_models["base"])  # this GGUF carries no chat template
    paths.user_catalog_path().write_text(
        f'[[model]]\nid = "templateless"\nrole = "instruct"\n[model.source]\npath = "{model_file}"\n')
    note = "The model file has no chat template; a plain ChatML layout was used."
    done = triptych("compare", "Hi", "--json", "--max-tokens", "2", "--models", "templateless")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stdout.splitlines()]
    sent = next(r for r in records if r["type"] == "promptsent")
    assert sent["notes"] == [note] and "<|im_start|>user" in sent["text"]
    assert records[-1]["type"] == "summary" and records[-1]["prompt_notes"] == [note]
    done = triptych("compare", "Hi", "--max-tokens", "2", "--models", "templateless")
    assert done.returncode == 0, done.stderr
    assert f"[templateless]   (note: {note})" in done.stderr.splitlines()


def test_models_list_shows_source_and_revision(triptych_home):
    """The text listing has the JSON's source and revision (a commit abbreviated)."""
    from desktop_app.models.catalog import load_catalog
    from desktop_app.models.sources import HubSource

    done = triptych("models", "list")
    assert done.returncode == 0, done.stderr
    header, *lines = done.stdout.splitlines()
    assert header.split() == ["ID", "ROLE", "SIZE", "STATE", "REVISION", "NAME", "SOURCE"]
    hub = next(entry for entry in load_catalog() if isinstance(entry.source, HubSource)
               and len(entry.source.revision) == 40)
    line = next(line for line in lines if line.startswith(hub.id + " "))
    assert f"  {hub.source.revision[:12]}  " in line and hub.source.revision not in line
    assert line.endswith(hub.source.describe())
    assert "Traceback" not in done.stderr


# ------------------------------------------------- one usage error, one model resolver


def _unknown_id_sentence(model_id: str) -> str:
    from desktop_app.cli.common import UsageError, resolve_model

    with pytest.raises(UsageError) as caught:
        resolve_model(model_id)
    return str(caught.value)


@pytest.mark.parametrize("argv", [
    ["compare", "hi", "--models", "smollm2-135m-instruct,nope"],
    ["prompt", "--model", "nope", "hi"],
    ["rollouts", "q", "--models", "nope", "--expect", "1"],
    ["rollouts", "--set", "math", "--models", "smollm2-135m-instruct", "--judge", "nope"],
    ["bench", "--models", "nope"],
])
def test_every_command_says_an_unknown_model_id_in_the_same_sentence(capsys, argv):
    """Each command resolves ids with the one resolver and reports its UsageError the one
    way: the resolver's sentence on one line of stderr, exit status 2, nothing on stdout."""
    from desktop_app.cli.common import EXIT_USAGE
    from desktop_app.cli.main import main

    sentence = _unknown_id_sentence("nope")
    assert sentence.startswith("Unknown model 'nope'. Known models: ")
    assert "smollm2-135m-instruct" in sentence
    code = main(argv)
    out, err = capsys.readouterr()
    assert (code, out, err) == (EXIT_USAGE, "", f"triptych: {sentence}\n")


@pytest.mark.parametrize("action", ["pull", "rm", "verify"])
def test_models_actions_say_an_unknown_id_as_every_command_does(capsys, action):
    """Issue 27: ``triptych models`` reports the same sentence the same way (``triptych:``,
    exit status 2); with --json also as an error event on stdout."""
    from desktop_app.cli.common import EXIT_USAGE
    from desktop_app.cli.main import main

    sentence = _unknown_id_sentence("nope")
    assert main(["models", action, "nope"]) == EXIT_USAGE
    assert capsys.readouterr() == ("", f"triptych: {sentence}\n")
    if action == "pull":
        assert main(["models", "pull", "nope", "--json"]) == EXIT_USAGE
        out, err = capsys.readouterr()
        assert json.loads(out) == {"event": "error", "message": sentence}
        assert err == f"triptych: {sentence}\n"


def test_the_resolver_takes_option_text_or_ids_and_names_what_is_wrong():
    from desktop_app.cli.common import UsageError, resolve_model, resolve_models
    from desktop_app.models.catalog import load_catalog

    catalog = load_catalog()
    ids = ["smollm2-135m-instruct", "gemma3-270m-base"]
    assert [e.id for e in resolve_models(" smollm2-135m-instruct, gemma3-270m-base,")] == ids
    assert [e.id for e in resolve_models(ids, catalog)] == ids
    assert resolve_model(ids[0], catalog) is catalog.get(ids[0])
    for empty in (",", " ", []):
        with pytest.raises(UsageError, match="^--models needs at least one model id.$"):
            resolve_models(empty)
    with pytest.raises(UsageError, match="^--judge needs at least one model id.$"):
        resolve_models(" , ", option="--judge")
    with pytest.raises(UsageError, match="^Unknown model 'nope'"):
        resolve_models(["smollm2-135m-instruct", "nope"])  # the first unknown id


def test_the_resolver_gives_the_catalog_problem_that_dropped_a_model():
    """A user catalog entry that failed to load: the sentence is why, not "unknown"."""
    from desktop_app import paths
    from desktop_app.cli.common import UsageError, resolve_model

    paths.user_catalog_path().parent.mkdir(parents=True, exist_ok=True)
    paths.user_catalog_path().write_text('[[model]]\nid = "broken"\nrole = "instruct"\n')
    with pytest.raises(UsageError) as caught:
        resolve_model("broken")
    sentence = str(caught.value)
    assert "'broken'" in sentence and "source" in sentence
    assert not sentence.startswith("Unknown model")


@pytest.mark.parametrize("argv, sentence", [
    (["prompt"], "the following arguments are required: question "
                 "(see 'triptych prompt --help')."),
    (["rollouts", "q"], "the following arguments are required: --models "
                        "(see 'triptych rollouts --help')."),
    (["rollouts", "q", "--models", "x", "-n", "many"], "argument -n: invalid int value: "
                                                       "'many' (see 'triptych rollouts --help')."),
])
def test_a_subcommand_parser_complaint_is_the_one_usage_error(capsys, argv, sentence):
    from desktop_app.cli.common import EXIT_USAGE
    from desktop_app.cli.main import main

    with pytest.raises(SystemExit) as exited:  # as argparse exits
        main(argv)
    assert exited.value.code == EXIT_USAGE
    assert capsys.readouterr() == ("", f"triptych: {sentence}\n")


def test_usage_error_is_reported_as_one_line_with_controls_made_visible(capsys):
    from desktop_app.cli.common import EXIT_USAGE, UsageError, report

    assert report(UsageError("Unknown model 'a\x1b[2Jb'.")) == EXIT_USAGE
    assert capsys.readouterr() == ("", "triptych: Unknown model 'a\\x1b[2Jb'.\n")


def test_an_unknown_model_id_from_the_terminal_is_one_sentence_and_exit_2():
    """The same, as a user runs it: a real process, for a command per module."""
    sentence = _unknown_id_sentence("nope")
    for args in (("compare", "hi", "--models", "nope"), ("prompt", "--model", "nope", "hi"),
                 ("rollouts", "q", "--models", "nope", "--expect", "1"),
                 ("bench", "--models", "nope")):
        done = triptych(*args)
        assert (done.returncode, done.stdout, done.stderr) == (2, "", f"triptych: {sentence}\n")
