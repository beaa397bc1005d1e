"""Triptych: base, instruct and reasoning language models side by side."""

__version__ = "0.1.0"
APP_NAME = "Triptych"
