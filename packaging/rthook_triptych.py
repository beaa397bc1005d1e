"""PyInstaller runtime hook: runs before Triptych's own code in the frozen app."""

import importlib.abc
import importlib.machinery
import importlib.util
import os
import sys
import types
from collections.abc import Sequence
from pathlib import Path
from typing import Any

# A windowed Windows/macOS app has no console: give print() and the worker processes a
# harmless place to write instead of None.
for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115


# ------------------------------------------------------- llama.cpp's CPU variants
# A bundle's llama.cpp is built with GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS
# (packaging/bundle_venv.py): its CPU kernels are separate libraries
# (libggml-cpu-haswell.so, ggml-cpu-skylakex.dll, ...) that ggml scores against the CPU and
# loads at run time. On its own ggml only looks next to the executable and in the current
# folder; llama-cpp-python never tells it where its lib/ folder is. So right after
# llama_cpp's ctypes bindings load (and before any model, whose llama_backend_init would
# search those other places), hand ggml the folder. Done lazily: the window process and
# the Verify sandbox's Python never load llama.cpp at all.

_LLAMA_BINDINGS = "llama_cpp.llama_cpp"


def _llama_lib_dir() -> Path:
    return Path(getattr(sys, "_MEIPASS", os.path.dirname(sys.executable))) / "llama_cpp" / "lib"


def load_cpu_variants(bindings: object) -> None:
    """Let ggml pick the best CPU kernels in the bundle's llama_cpp/lib folder."""
    import ctypes

    folder = _llama_lib_dir()
    if not any(folder.glob("*ggml-cpu-*")):
        return  # a native or Metal build: the CPU backend is linked in, nothing to load
    if sys.platform == "win32":
        # GetProcAddress does not look into libllama's dependencies; this is the ggml.dll
        # libllama already loaded (same path), not a second copy.
        ggml = ctypes.CDLL(str(folder / "ggml.dll"))
    else:
        # dlsym on libllama's handle searches its dependencies, libggml among them. Opening
        # the libggml file again by another name would load a second, separate registry.
        ggml = bindings._lib  # type: ignore[attr-defined]
    avoid = {name for name in os.environ.get(_AVOID_KERNELS_ENV, "").split(",") if name}
    chosen = _best_variant(folder, avoid) if avoid else None
    if chosen is not None:
        # One CPU backend registered by hand: llama_backend_init then loads no other.
        load_one = ggml.ggml_backend_load
        load_one.argtypes = [ctypes.c_char_p]
        load_one.restype = ctypes.c_void_p
        if load_one(str(chosen).encode("utf-8")):
            os.environ[_CHOSEN_KERNELS_ENV] = _variant_name(chosen)  # reported by the worker
            return
    load_all = ggml.ggml_backend_load_all_from_path
    load_all.argtypes = [ctypes.c_char_p]
    load_all.restype = None
    load_all(str(folder).encode("utf-8"))


# A model process whose CPU kernels crashed here once (desktop_app/engine/llama/native_setup.py) names
# the kernel libraries not to load again; ggml's own choice would pick them every time.
_AVOID_KERNELS_ENV = "TRIPTYCH_AVOID_CPU_KERNELS"
_CHOSEN_KERNELS_ENV = "TRIPTYCH_CPU_KERNELS"


def _variant_name(path: Path) -> str:
    return path.name.split("ggml-cpu-", 1)[1].split(".", 1)[0]


def _best_variant(folder: Path, avoid: set[str]) -> Path | None:
    """The CPU-kernel library ggml would pick, leaving out ``avoid``: the highest
    ``ggml_backend_score`` (0: this CPU cannot run it)."""
    import ctypes

    best: tuple[int, Path] | None = None
    for path in sorted(folder.glob("*ggml-cpu-*")):
        if _variant_name(path) in avoid:
            continue
        try:
            library = ctypes.CDLL(str(path))
            score_fn = library.ggml_backend_score
        except (OSError, AttributeError):
            continue
        score_fn.restype = ctypes.c_int
        score = int(score_fn())
        if score > 0 and (best is None or score > best[0]):
            best = (score, path)
    return best[1] if best else None


class _AfterLoad(importlib.abc.Loader):
    def __init__(self, inner: importlib.abc.Loader) -> None:
        self.inner = inner

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return self.inner.create_module(spec)

    def exec_module(self, module: types.ModuleType) -> None:
        self.inner.exec_module(module)
        load_cpu_variants(module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)  # get_filename, get_resource_reader, ...


class _LlamaBindingsFinder(importlib.abc.MetaPathFinder):
    """Finds llama_cpp.llama_cpp the usual way and runs load_cpu_variants after it loads."""

    def find_spec(self, fullname: str, path: Sequence[str] | None,
                  target: types.ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if fullname != _LLAMA_BINDINGS:
            return None
        sys.meta_path.remove(self)  # once, and not for the lookup just below
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            spec.loader = _AfterLoad(spec.loader)
        return spec


sys.meta_path.insert(0, _LlamaBindingsFinder())
