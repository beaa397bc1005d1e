"""Lesson packs (issue 30, item 3): ``triptych pack`` on a teacher's TRIPTYCH_HOME, ``triptych
unpack`` into a fresh one, on real GGUF files and real zip archives; a tampered, truncated,
incomplete or unsafe pack refused with one sentence and nothing half-installed."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from desktop_app import paths
from desktop_app.models import catalog as cat
from desktop_app.models import download, pack, user_catalog
from desktop_app.models.sources import FileSource
from desktop_app.verify.practice import find_set, load_practice_sets, problem_count
from tests.hub_fixtures import MiB, make_gguf

ROOT = Path(__file__).resolve().parent.parent
PROMPTS = """
[[prompts]]
prompt = "What is 7 * 8?"
answer = 56
settings = { temperature = 0.0, max_tokens = 64 }

[[prompts]]
title = "Pelican joke"
prompt = "Write a funny joke about pelicans."
settings = { temperature = 1.2, seed = 7, thinking = false }
"""


def _cli(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRIPTYCH_HOME": str(home), "HF_HUB_OFFLINE": "1",
           "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "desktop_app.cli.main", *args], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tree(home: Path) -> dict[str, str]:
    """Every file and folder under *home*, with each file's SHA-256."""
    return {str(p.relative_to(home)): (_sha(p) if p.is_file() else "dir")
            for p in sorted(home.rglob("*"))}


@pytest.fixture
def teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A teacher's home with two imported GGUFs (different roles) and a prompts file."""
    home = tmp_path / "teacher"
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    files = {}
    for name, role, seed in (("tiny-base", "base", 1), ("tiny-chat", "instruct", 2)):
        gguf = make_gguf(tmp_path / f"{name}.gguf", pad_bytes=MiB, seed=seed)
        user_catalog.import_model(gguf, role, name, sha256=_sha(gguf))
        files[name] = gguf
    prompts = tmp_path / "prompts.toml"
    prompts.write_text(PROMPTS, encoding="utf-8")
    files["prompts"] = prompts
    files["home"] = home
    return files


def _pack(teacher: dict[str, Path], out: Path, *models: str, practice: str = "gsm8k-mini",
          title: str = "Lesson 3: sampling") -> Path:
    result = _cli(teacher["home"], "pack", str(out), "--models", ",".join(models),
                  "--practice", practice, "--prompts", str(teacher["prompts"]), "--title", title)
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture
def lesson(teacher: dict[str, Path], tmp_path: Path) -> Path:
    return _pack(teacher, tmp_path / "lesson.zip", "tiny-base", "tiny-chat")


def _student(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str = "student") -> Path:
    home = tmp_path / name
    monkeypatch.setenv("TRIPTYCH_HOME", str(home))
    return home


def _unpack(path: Path, **kwargs) -> pack.Installed:
    return pack.unpack(path, check_practice=problem_count, **kwargs)


def test_round_trip_into_a_fresh_home(teacher, lesson: Path, tmp_path: Path,
                                      monkeypatch) -> None:
    with zipfile.ZipFile(lesson) as archive:
        infos = {info.filename: info for info in archive.infolist()}
        manifest = json.loads(archive.read(pack.MANIFEST))
    assert manifest["format"] == pack.FORMAT and manifest["version"] == pack.VERSION
    assert [m["id"] for m in manifest["models"]] == ["tiny-base", "tiny-chat"]
    for model in manifest["models"]:
        member = model["files"][0]
        assert infos[member["name"]].compress_type == zipfile.ZIP_STORED
        assert member["sha256"] == _sha(teacher[model["id"]])
        assert model["entry"]["role"] in ("base", "instruct") and model["licence"] == "unknown"
        assert str(teacher[model["id"]].parent) not in model["source"]  # no teacher's folders
    assert manifest["prompts"] == "lesson-3-sampling"
    assert [p["key"] for p in manifest["practice"]] == ["lesson-3-sampling", "gsm8k-mini"]

    student = _student(tmp_path, monkeypatch)
    result = _cli(student, "unpack", str(lesson))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Installed 'Lesson 3: sampling' from lesson.zip: models "
                                    "tiny-base, tiny-chat")
    assert "2 prepared prompts" in result.stdout and result.stdout.count("\n") == 1
    catalog = cat.load_catalog()
    assert catalog.problems == []
    for model_id in ("tiny-base", "tiny-chat"):
        entry = catalog.get(model_id)
        assert isinstance(entry.source, FileSource) and cat.state_of(entry) == "ready"
        installed = Path(entry.source.path)
        assert installed.parent.parent == paths.lesson_models_dir()
        assert installed.read_bytes() == teacher[model_id].read_bytes()
        assert entry.source.sha256 == _sha(teacher[model_id])
        assert download.verify(entry)  # the recorded hash is the file's
    assert catalog.get("tiny-base").role == "base"

    sets = load_practice_sets()
    prepared = find_set("Lesson 3: sampling", sets)
    assert [p.prompt for p in prepared.problems] == ["What is 7 * 8?",
                                                     "Write a funny joke about pelicans."]
    assert prepared.problems[0].answer == "56" and prepared.problems[0].kind == "math"
    assert dict(prepared.problems[0].settings) == {"temperature": 0.0, "max_tokens": 64}
    assert dict(prepared.problems[1].settings) == {"temperature": 1.2, "seed": 7,
                                                   "thinking": False}
    assert not prepared.problems[1].verifiable and prepared.problems[1].title == "Pelican joke"
    # gsm8k-mini came along, identical to the shipped one: listed once, not twice
    assert [s.key for s in sets].count("gsm8k-mini") == 1

    again = _cli(student, "unpack", str(lesson), "--json")
    assert again.returncode == 0, again.stderr
    done = json.loads(again.stdout)
    assert done["models"] == [] and sorted(done["already"]) == ["tiny-base", "tiny-chat"]
    assert done["message"] == "Everything in lesson.zip ('Lesson 3: sampling') is already here."


def test_removing_an_unpacked_model_deletes_its_copy(lesson: Path, tmp_path: Path,
                                                     monkeypatch) -> None:
    _student(tmp_path, monkeypatch)
    _unpack(lesson)
    entry = cat.load_catalog().get("tiny-chat")
    folder = Path(entry.source.path).parent
    assert folder.is_dir()
    assert download.remove(entry) == [folder]
    assert not folder.exists() and "tiny-chat" not in cat.load_catalog()


def _rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes | None],
             manifest: Callable[[dict], dict] | None = None,
             extra: dict[str, bytes] | None = None) -> Path:
    """Copy a pack member by member; ``change(name, data)`` returns the new bytes or None
    to leave the member out; ``manifest`` edits the manifest; ``extra`` adds members."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            data = old.read(info.filename)
            if info.filename == pack.MANIFEST:
                if manifest is not None:
                    data = json.dumps(manifest(json.loads(data))).encode()
            else:
                data = change(info.filename, data)
                if data is None:
                    continue
            new.writestr(info.filename, data, info.compress_type)
        for name, data in (extra or {}).items():
            new.writestr(name, data)
    return target


def _flip(name: str, data: bytes) -> bytes:
    if name.endswith("tiny-chat.gguf"):
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
    return data


@pytest.fixture
def student_with_a_lesson(tmp_path: Path, monkeypatch, teacher, lesson: Path) -> Path:
    """A student's home that already holds another lesson: models dir, catalog and
    practice sets each have something in them that a refused pack must not touch."""
    monkeypatch.setenv("TRIPTYCH_HOME", str(teacher["home"]))
    earlier = _pack(teacher, tmp_path / "earlier.zip", "tiny-base", title="Earlier lesson")
    home = _student(tmp_path, monkeypatch)
    _unpack(earlier)
    assert "tiny-base" in cat.load_catalog() and "tiny-chat" not in cat.load_catalog()
    return home


def _refused(path: Path, home: Path, *phrases: str, **kwargs) -> None:
    before = _tree(home)
    with pytest.raises(pack.PackError) as caught:
        _unpack(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and all(p in message for p in phrases), message
    assert _tree(home) == before


def test_a_tampered_file_is_refused_and_nothing_changes(lesson: Path, student_with_a_lesson,
                                                        tmp_path: Path) -> None:
    home = student_with_a_lesson
    # re-zipped with a flipped byte: the archive is sound, the SHA-256 is not
    tampered = _rewrite(lesson, tmp_path / "tampered.zip", _flip)
    _refused(tampered, home, "tampered.zip is damaged: tiny-chat.gguf does not match its "
             "SHA-256", "nothing was installed")
    # a byte flipped in the archive itself: the member's CRC catches it first
    raw = bytearray(lesson.read_bytes())
    with zipfile.ZipFile(lesson) as archive:
        info = archive.getinfo("models/2/tiny-chat.gguf")
    raw[info.header_offset + 30 + len(info.filename) + 4096] ^= 0xFF
    flipped = tmp_path / "flipped.zip"
    flipped.write_bytes(bytes(raw))
    _refused(flipped, home, "flipped.zip is not a complete lesson pack", "CRC")
    # the command line says it in one line, exit status 1
    before = _tree(home)
    result = _cli(home, "unpack", str(tampered))
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith("triptych: tampered.zip is damaged") and \
        result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert _tree(home) == before


@pytest.mark.parametrize("keep", [0.5, 0.999, 22])
def test_a_truncated_pack_is_refused(lesson: Path, student_with_a_lesson, tmp_path: Path,
                                     keep: float) -> None:
    data = lesson.read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(data[:int(len(data) * keep)] if keep < 1 else data[:-int(keep)])
    _refused(cut, student_with_a_lesson, "cut.zip is not a complete lesson pack",
             "was not copied whole", "nothing was installed")


def test_a_manifest_listing_a_file_the_pack_lacks_is_refused(
        lesson: Path, student_with_a_lesson, tmp_path: Path) -> None:
    partial = _rewrite(lesson, tmp_path / "partial.zip",
                       lambda name, data: None if name == "practice/gsm8k-mini.jsonl" else data)
    _refused(partial, student_with_a_lesson, "partial.zip is incomplete: its manifest lists "
             "practice/gsm8k-mini.jsonl, which it does not hold")
    result = _cli(student_with_a_lesson, "unpack", str(partial))
    assert result.returncode == 1 and result.stderr.count("\n") == 1


def test_unsafe_unlisted_and_absurd_members_are_refused(lesson: Path, student_with_a_lesson,
                                                        tmp_path: Path) -> None:
    home = student_with_a_lesson
    keep: Callable[[str, bytes], bytes] = lambda _name, data: data  # noqa: E731
    slip = _rewrite(lesson, tmp_path / "slip.zip", keep, extra={"../../evil.sh": b"rm -rf ~"})
    _refused(slip, home, "slip.zip is refused: it holds a file with an unsafe path "
             "('../../evil.sh')")
    assert not (tmp_path / "evil.sh").exists()

    def listed_slip(manifest: dict) -> dict:
        manifest["practice"][0]["files"][0]["name"] = "practice/../../../evil.toml"
        return manifest

    _refused(_rewrite(lesson, tmp_path / "slip2.zip", keep, listed_slip), home,
             "refused", "unsafe path")
    _refused(_rewrite(lesson, tmp_path / "extra.zip", keep, extra={"practice/more.toml": b"x"}),
             home, "it holds a file its manifest does not list (practice/more.toml)")

    def absurd(manifest: dict) -> dict:
        manifest["models"][0]["files"][0]["size"] = 1 << 50
        return manifest

    _refused(_rewrite(lesson, tmp_path / "absurd.zip", keep, absurd), home, "absurd size")

    def lying(manifest: dict) -> dict:
        manifest["models"][0]["files"][0]["size"] -= 1
        return manifest

    _refused(_rewrite(lesson, tmp_path / "lying.zip", keep, lying), home,
             "lying.zip is not a complete lesson pack", "its manifest says")

    def newer(manifest: dict) -> dict:
        manifest["version"] = pack.VERSION + 1
        return manifest

    _refused(_rewrite(lesson, tmp_path / "newer.zip", keep, newer), home,
             "made by a newer Triptych", "update Triptych")

    def sourced(manifest: dict) -> dict:
        manifest["models"][0]["entry"]["context_length"] = 5
        return manifest

    _refused(_rewrite(lesson, tmp_path / "bad-entry.zip", keep, sourced), home,
             "context_length")
    not_zip = tmp_path / "notes.zip"
    not_zip.write_text("just some notes", encoding="utf-8")
    _refused(not_zip, home, "notes.zip is not a complete lesson pack")
    plain = tmp_path / "plain.zip"
    with zipfile.ZipFile(plain, "w") as archive:
        archive.writestr("readme.txt", "hello")
    _refused(plain, home, "plain.zip is not a lesson pack: it has no triptych-pack.json")


def test_a_practice_set_that_does_not_load_is_refused(lesson: Path, student_with_a_lesson,
                                                      tmp_path: Path) -> None:
    def broken(name: str, data: bytes) -> bytes:
        return b'name = "x"\n[[problems]]\nid = "a"\n' if name.endswith("sampling.toml") else data

    def rehash(manifest: dict) -> dict:
        body = b'name = "x"\n[[problems]]\nid = "a"\n'
        entry = manifest["practice"][0]["files"][0]
        entry.update(size=len(body), sha256=hashlib.sha256(body).hexdigest())
        return manifest

    _refused(_rewrite(lesson, tmp_path / "broken.zip", broken, rehash), student_with_a_lesson,
             "its practice set 'Lesson 3: sampling' cannot be read", "'prompt' is required")


def test_a_failure_while_installing_is_rolled_back(lesson: Path, student_with_a_lesson) -> None:
    """The last step can fail too (here the window's progress callback raises once the
    first model is moved into place): every move is undone, the catalog put back."""
    moved: list[str] = []

    def progress(report: pack.PackProgress) -> None:
        if report.phase == pack.PackPhase.INSTALLING:
            moved.append(report.file)
            if len(moved) == 2:
                raise RuntimeError("the window went away")

    before = _tree(student_with_a_lesson)
    with pytest.raises(RuntimeError):
        _unpack(lesson, progress=progress)
    assert moved == ["tiny-chat.gguf", "lesson-3-sampling"]  # tiny-base was here already
    assert _tree(student_with_a_lesson) == before


def test_a_different_model_of_the_same_id_is_kept_and_the_packs_renamed(
        lesson: Path, tmp_path: Path, monkeypatch) -> None:
    _student(tmp_path, monkeypatch)
    own = make_gguf(tmp_path / "own.gguf", pad_bytes=MiB, seed=9)
    user_catalog.import_model(own, "instruct", "tiny-chat")
    result = _unpack(lesson)
    assert result.models == ["tiny-base", "tiny-chat-2"]
    assert result.renamed == {"tiny-chat": "tiny-chat-2"}
    assert "'tiny-chat' is installed as 'tiny-chat-2'" in result.describe()
    catalog = cat.load_catalog()
    assert Path(catalog.get("tiny-chat").source.path) == own.resolve()
    assert cat.state_of(catalog.get("tiny-chat-2")) == "ready"


def test_pack_refuses_what_it_cannot_carry(teacher, tmp_path: Path) -> None:
    home = teacher["home"]
    out = tmp_path / "x.zip"
    cases = [
        (("--models", "nope"), 2, "Unknown model 'nope'"),
        (("--models", "tiny-base", "--practice", "gsm8k"), 2, "No practice set called 'gsm8k'"),
        (("--models", "qwen3-0.6b"), 1, "'qwen3-0.6b' is not downloaded here"),
        (("--models", "tiny-base,tiny-base"), 2, "--models names 'tiny-base' twice"),
        (("--models", "tiny-base", "--prompts", str(tmp_path / "none.toml")), 2,
         "There is no prompts file"),
    ]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"prompt": "Hi", "settings": {"temprature": 1}}]', encoding="utf-8")
    cases.append((("--models", "tiny-base", "--prompts", str(bad)), 2,
                  "prompt 1: unknown setting 'temprature' (known: temperature, max_tokens"))
    for args, code, phrase in cases:
        result = _cli(home, "pack", str(out), *args)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("triptych: ") and phrase in result.stderr, result.stderr
        assert result.stderr.count("\n") == 1 and not out.exists()
    result = _cli(home, "pack", str(tmp_path / "x.tar"), "--models", "tiny-base")
    assert result.returncode == 2 and "A lesson pack is a .zip file" in result.stderr
    result = _cli(home, "unpack", str(tmp_path / "missing.zip"))
    assert result.returncode == 2 and "There is no file" in result.stderr


def test_a_damaged_model_is_not_packed(teacher, tmp_path: Path) -> None:
    target = teacher["tiny-chat"]
    data = bytearray(target.read_bytes())
    data[-10] ^= 0xFF  # same size: the catalog still lists it ready; its hash says otherwise
    target.write_bytes(bytes(data))
    result = _cli(teacher["home"], "pack", str(tmp_path / "x.zip"), "--models", "tiny-chat")
    assert result.returncode == 1, result.stderr
    assert "'tiny-chat' is damaged here" in result.stderr and result.stderr.count("\n") == 1
    assert not (tmp_path / "x.zip").exists() and list(tmp_path.glob(".x.zip*")) == []


@pytest.mark.slow
def test_an_unpacked_model_runs_in_a_fresh_home(tmp_path: Path, monkeypatch,
                                                native_decision) -> None:
    """The whole way: a reasoning model (a scripted GGUF, with its catalog entry's
    sampling and thinking format) packed on one home, unpacked on a fresh one, and run
    there by real llama.cpp through ``triptych compare``."""
    from tests.scripted_gguf import scripted_entry, write_scripted_gguf

    teacher = tmp_path / "teacher"
    monkeypatch.setenv("TRIPTYCH_HOME", str(teacher))
    gguf = write_scripted_gguf(tmp_path / "reasoner.gguf",
                               "<think>Seven eights are fifty-six.</think>The answer is 56.")
    entry = scripted_entry(gguf, model_id="lesson-reasoner")
    user_catalog.add_model(cat.entry_table(entry), {"path": str(gguf),
                                                    "size": gguf.stat().st_size,
                                                    "sha256": _sha(gguf)})
    out = tmp_path / "reasoning.zip"
    made = _cli(teacher, "pack", str(out), "--models", "lesson-reasoner")
    assert made.returncode == 0, made.stderr
    gguf.unlink()  # the student's laptop has only the pack

    student = _student(tmp_path, monkeypatch)
    assert _cli(student, "unpack", str(out)).returncode == 0
    installed = cat.load_catalog().get("lesson-reasoner")
    assert installed.sampling == entry.sampling and installed.prompt == entry.prompt
    ran = _cli(student, "compare", "What is 7 * 8?", "--models", "lesson-reasoner",
               "--json", "--temperature", "0", "--max-tokens", "40")
    assert ran.returncode == 0, ran.stderr
    summary = [json.loads(line) for line in ran.stdout.splitlines()][-1]
    assert summary["thinking"] == "Seven eights are fifty-six."
    assert summary["answer"] == "The answer is 56." and summary["error"] is None
