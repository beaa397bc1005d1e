"""The core never imports Qt: the CLI and workers stay light, and the UI stays a layer."""

from __future__ import annotations

import subprocess
import sys

CORE = ["desktop_app.paths", "desktop_app.catalog", "desktop_app.text.thinking",
        "desktop_app.prompting", "desktop_app.protocol", "desktop_app.cores", "desktop_app.engine",
        "desktop_app.worker_process", "desktop_app.backends.llama", "desktop_app.cli"]
OPTIONAL_CORE = ["desktop_app.download", "desktop_app.fit", "desktop_app.models_cli",
                 "desktop_app.verify", "desktop_app.verify.cli", "desktop_app.bench"]


def test_core_modules_do_not_load_pyside6():
    code = (
        "import importlib, importlib.util, sys\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        f"for name in {OPTIONAL_CORE!r}:\n"
        "    if importlib.util.find_spec(name.rsplit('.', 1)[0]) and importlib.util.find_spec(name):\n"
        "        importlib.import_module(name)\n"
        "from desktop_app.cli import build_parser; build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
