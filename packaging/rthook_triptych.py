"""PyInstaller runtime hook: runs before Triptych's own code in the frozen app."""

import os
import sys

# A windowed Windows/macOS app has no console: give print() and the worker processes a
# harmless place to write instead of None.
for _name in ("stdout", "stderr"):
    if getattr(sys, _name) is None:
        setattr(sys, _name, open(os.devnull, "w", encoding="utf-8"))  # noqa: SIM115

