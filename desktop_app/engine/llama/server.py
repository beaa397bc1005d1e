"""llama-cpp-python's own OpenAI-compatible server (``llama_cpp.server``), which a room
(:mod:`desktop_app.engine.room`) serves its models through: Triptych runs no inference
server of its own.

The room writes its multi-model configuration (``--config_file``, llama-cpp-python's
``ConfigFileSettings``): one entry per served model, aliased by its catalog id, on
127.0.0.1 with a key only the room knows, and ``interrupt_requests`` off. With it on (the
library's default) a request arriving while another streams cuts the running one short
with a bare ``[DONE]``: in a classroom every question would break off the one before.
The server answers one request at a time and loads one model at a time (asking for
another model closes the one loaded), so the room queues requests itself. Its thread count
is fixed when it starts (our own model processes re-balance theirs as load comes and
goes): the room gives it the cores no other program keeps busy then, since llama.cpp's
threads spin at barriers and one more thread than free cores collapses its speed.

Run as ``python -m desktop_app.engine.llama.server --extra-buffers on|off --config_file
PATH``: it applies this machine's llama.cpp setting (``native_setup``: on an AMX Xeon
llama.cpp's default buffers crash) as our model processes do, then runs the library's
own ``__main__``. It exits when the process that started it is gone, so a room never
outlives the app that opened it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# llama_cpp.server's own imports: without them `python -m llama_cpp.server` cannot start
SERVER_MODULES = ("llama_cpp.server", "uvicorn", "fastapi", "sse_starlette",
                  "starlette_context", "pydantic_settings")
PARENT_POLL_S = 1.0


def server_missing() -> str | None:
    """One sentence when llama-cpp-python's server cannot run here (its extra is not
    installed, or this build left it out), else None."""
    missing = []
    for name in SERVER_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    if not missing:
        return None
    return ("Serving needs llama-cpp-python's server, which is not installed here (missing: "
            f"{', '.join(missing)}); install it with: pip install 'llama-cpp-python[server]'.")


@dataclass(frozen=True)
class ServedModel:
    """One model in the server's configuration."""

    alias: str  # the catalog id: the name clients ask for
    path: Path
    n_ctx: int
    gpu_layers: int  # llama.cpp's n_gpu_layers: -1 every layer, 0 the CPU only


def config(models: list[ServedModel], *, port: int, api_key: str, n_threads: int
           ) -> dict[str, Any]:
    """The ``--config_file`` JSON for these models on 127.0.0.1:*port*."""
    return {
        "host": "127.0.0.1",
        "port": port,
        "api_key": api_key,
        "interrupt_requests": False,  # queue, never cut a running answer short
        "models": [{
            "model": str(model.path),
            "model_alias": model.alias,
            "n_ctx": model.n_ctx,
            "n_threads": n_threads,
            "n_threads_batch": n_threads,
            "n_gpu_layers": model.gpu_layers,
            "flash_attn": True,  # as our own model processes: the same arithmetic
            # Logits for every position cost n_ctx x vocabulary floats (gigabytes for a
            # 150k vocabulary); the room refuses token probabilities instead.
            "logits_all": False,
            "verbose": False,
        } for model in models],
    }


def write_config(path: Path, settings: dict[str, Any]) -> Path:
    """Write the configuration readable by this user only (it holds the inner key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(settings, handle, indent=2)
    return path


def command(config_path: Path, extra_buffers: bool) -> list[str]:
    """The command line of the server process."""
    return [sys.executable, "-m", __name__, "--extra-buffers", "on" if extra_buffers else "off",
            "--config_file", str(config_path)]


def _exit_with_parent(parent: int) -> None:
    """Leave when the process that started this one is gone (killed, crashed)."""
    while True:
        time.sleep(PARENT_POLL_S)
        if os.getppid() != parent:
            os._exit(0)


def main(argv: list[str]) -> None:
    """Apply this machine's llama.cpp setting, then run ``llama_cpp.server``."""
    import runpy

    from desktop_app.engine.llama.backend import use_extra_buffers_by_default

    args = list(argv)
    if args[:1] == ["--extra-buffers"]:
        use_extra_buffers_by_default(args[1] == "on")
        args = args[2:]
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True,
                     name="exit-with-parent").start()
    sys.argv = ["llama_cpp.server", *args]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
