"""The core never imports Qt: the CLI and workers stay light, and the UI stays a layer."""

from __future__ import annotations

import subprocess
import sys

CORE = ["desktop_app.paths", "desktop_app.models.catalog", "desktop_app.text.thinking",
        "desktop_app.engine.prompting", "desktop_app.engine.protocol", "desktop_app.engine.cores", "desktop_app.engine.worker",
        "desktop_app.engine.child", "desktop_app.engine.llama.backend", "desktop_app.cli.main"]
OPTIONAL_CORE = ["desktop_app.models.download", "desktop_app.models.fit", "desktop_app.cli.models",
                 "desktop_app.verify", "desktop_app.cli.verify", "desktop_app.bench"]


def test_core_modules_do_not_load_pyside6():
    code = (
        "import importlib, importlib.util, sys\n"
        f"for name in {CORE!r}: importlib.import_module(name)\n"
        f"for name in {OPTIONAL_CORE!r}:\n"
        "    if importlib.util.find_spec(name.rsplit('.', 1)[0]) and importlib.util.find_spec(name):\n"
        "        importlib.import_module(name)\n"
        "from desktop_app.cli.main import build_parser; build_parser()\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('PySide6', 'shiboken6')))\n"
        "print(bad)\n"
        "assert not bad, bad\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr + done.stdout
