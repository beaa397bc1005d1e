"""A real X11 display for window tests: Xvfb (installed with apt-get when missing and we
can), the libraries Qt's X11 plugin needs, and the app started on it until its window
shows, with a screenshot of the whole screen as the X server has it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

# What Qt 6's X11 plugin links to beyond libxcb1/libx11 (packaging/build_linux.sh too).
X11_PACKAGES = ["libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0",
                "libxcb-render-util0", "libxcb-xkb1", "libxcb-util1", "libxkbcommon-x11-0",
                "libxkbcommon0"]


def apt_install(*packages: str) -> None:
    """Install Debian packages when we are root with apt-get (as CI is); else nothing."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    if subprocess.run(command, capture_output=True, timeout=900, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], capture_output=True, timeout=900, env=env)
        subprocess.run(command, capture_output=True, timeout=900, env=env)


def xvfb() -> str:
    """The Xvfb binary, installed first if need be; skips the test where it cannot be."""
    if not sys.platform.startswith("linux"):
        pytest.skip("Xvfb is an X11 server for Linux")
    if shutil.which("Xvfb") is None:
        apt_install("xvfb")
    found = shutil.which("Xvfb")
    if found is None:
        pytest.skip("Xvfb is not installed and could not be (apt-get install xvfb)")
    return found


@contextmanager
def display(width: int, height: int) -> Iterator[str]:
    """A fresh X server with one screen of that size; yields its DISPLAY (":93")."""
    binary = xvfb()
    number = next(n for n in range(90, 200) if not Path(f"/tmp/.X11-unix/X{n}").exists()
                  and not Path(f"/tmp/.X{n}-lock").exists())
    server = subprocess.Popen([binary, f":{number}", "-screen", "0", f"{width}x{height}x24",
                               "-nolisten", "tcp"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not Path(f"/tmp/.X11-unix/X{number}").exists():
            assert server.poll() is None, "Xvfb exited at start"
            assert time.monotonic() < deadline, "Xvfb did not start"
            time.sleep(0.05)
        yield f":{number}"
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)


def open_window(command: list[str], display_name: str, home: Path, shot: Path,
                extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the app on the display until its window shows; it saves the screen to ``shot``
    and prints ``WINDOW x y w h SCREEN x y w h``."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update({"DISPLAY": display_name, "TRIPTYCH_HOME": str(home), "HF_HUB_OFFLINE": "1",
                "TRIPTYCH_STARTUP_PROBE": "window", "TRIPTYCH_STARTUP_SCREENSHOT": str(shot),
                **(extra_env or {})})
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=240)


def window_and_screen(stdout: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    line = next(x for x in stdout.splitlines() if x.startswith("WINDOW "))
    numbers = tuple(int(v) for v in line.replace("SCREEN", "").split()[1:])
    return numbers[:4], numbers[4:]


def drawn_colours(png: Path, box: tuple[int, ...]) -> int:
    """How many distinct colours a grid of points inside ``box`` shows (a window drew
    itself: many; an empty X screen: one)."""
    from PySide6.QtGui import QImage

    image = QImage(str(png))
    assert not image.isNull(), f"{png} is not a readable PNG"
    x, y, width, height = box
    seen = set()
    for i in range(1, 40):
        for j in range(1, 40):
            px = min(image.width() - 1, x + width * i // 40)
            py = min(image.height() - 1, y + height * j // 40)
            seen.add(image.pixel(px, py))
    return len(seen)


def assert_window_fits(done: subprocess.CompletedProcess, shot: Path,
                       screen: tuple[int, int]) -> None:
    """The app ran, its window lies within the whole screen, and the grab shows it drawn."""
    assert done.returncode == 0, done.stderr[-3000:]
    window, area = window_and_screen(done.stdout)
    assert area == (0, 0, *screen)
    x, y, width, height = window
    assert x >= 0 and y >= 0 and x + width <= screen[0] and y + height <= screen[1], window
    assert drawn_colours(shot, window) > 5, f"the window did not draw itself: {shot}"
