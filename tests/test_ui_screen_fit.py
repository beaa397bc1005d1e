"""The first window fits the screen: the default size on small screens, and a size
remembered on a big monitor when the app comes back on a laptop or a projector."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.ui.screen_fit import DEFAULT_SIZE, FRAME_ALLOWANCE, Rect, centred, fitted

SCREENS = [(1024, 768), (1280, 800), (1366, 768), (1920, 1080)]


def inside(box: Rect, area: Rect, allowance: tuple[int, int] = FRAME_ALLOWANCE) -> bool:
    """The client area and the frame around it lie within ``area``."""
    border = allowance[0] // 2
    title = allowance[1] - border
    return (box.x - border >= area.x and box.y - title >= area.y
            and box.x + box.width + border <= area.x + area.width
            and box.y + box.height + border <= area.y + area.height)


@pytest.mark.parametrize("screen", SCREENS)
def test_the_default_window_fits_and_is_centred(screen):
    area = Rect(0, 0, *screen)
    box = centred(DEFAULT_SIZE, area)
    assert inside(box, area)
    assert box.width == min(DEFAULT_SIZE[0], screen[0] - FRAME_ALLOWANCE[0])
    assert box.height == min(DEFAULT_SIZE[1], screen[1] - FRAME_ALLOWANCE[1])
    left, right = box.x, screen[0] - box.x - box.width
    assert abs(left - right) <= 1


def test_a_remembered_window_is_clamped_to_a_smaller_screen_and_a_panel():
    laptop = Rect(0, 27, 1280, 773)  # a top panel of 27 pixels
    remembered = Rect(300, 200, 1800, 1000)  # from the 1920x1080 desk monitor
    box = fitted(remembered, laptop)
    assert inside(box, laptop) and box.width == 1264 and box.height == 725
    small = Rect(100, 120, 800, 500)
    assert fitted(small, laptop) == small  # a window that fits stays where it was
    right_monitor = Rect(1920, 0, 1920, 1080)
    assert inside(fitted(Rect(100, 100, 1600, 900), right_monitor), right_monitor)


def _open_window(tmp_path: Path, screen: tuple[int, int], *args: str,
                 home: Path | None = None) -> tuple[Rect, Rect]:
    """Start the real app offscreen on a screen of that size until its window shows;
    return where the window went (frame) and the screen's available area."""
    config = tmp_path / f"screen-{screen[0]}x{screen[1]}.json"
    config.write_text(json.dumps({"screens": [{"name": "projector", "x": 0, "y": 0,
                                               "width": screen[0], "height": screen[1],
                                               "logicalDpiX": 96, "logicalDpiY": 96}]}))
    env = {**os.environ, "QT_QPA_PLATFORM": f"offscreen:configfile={config}",
           "TRIPTYCH_STARTUP_PROBE": "window", "TRIPTYCH_HOME": str(home or tmp_path / "home")}
    done = subprocess.run([sys.executable, "-m", "desktop_app", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("WINDOW "))
    numbers = [int(v) for v in line.replace("SCREEN", "").split()[1:]]
    return Rect(*numbers[:4]), Rect(*numbers[4:])


@pytest.mark.parametrize("screen", SCREENS)
def test_the_app_opens_within_the_screen(tmp_path, screen):
    frame, area = _open_window(tmp_path, screen)
    assert area == Rect(0, 0, *screen)
    assert frame.width <= screen[0] and frame.height <= screen[1], (frame, screen)
    assert frame.x >= 0 and frame.y >= 0
    assert frame.x + frame.width <= screen[0] and frame.y + frame.height <= screen[1]


def test_presentation_mode_opens_within_a_1024x768_projector(tmp_path):
    frame, _ = _open_window(tmp_path, (1024, 768), "--presentation")
    assert frame.width <= 1024 and frame.height <= 768, frame


def test_a_size_remembered_on_a_big_screen_is_clamped_on_a_small_one(qtbot, fake_models):
    """Saved at 1800x1000 on a desk monitor, opened again on the tests' small offscreen
    screen: the window fits it (down to its own minimum width, which three panes need)."""
    from PySide6.QtWidgets import QApplication

    from desktop_app.ui.main_window import MainWindow
    from desktop_app.ui.settings import load_settings, save_settings

    first = MainWindow(fake_models, remember=True)
    qtbot.addWidget(first)
    first.setGeometry(40, 40, 1800, 1000)
    save_settings(first.current_settings())
    first.shutdown()
    assert base64.b64decode(load_settings().geometry)
    again = MainWindow(fake_models, remember=True)
    qtbot.addWidget(again)
    area = QApplication.primaryScreen().availableGeometry()
    box = again.geometry()
    assert box.width() < 1800 and box.height() < 1000
    assert box.width() <= area.width() and box.height() <= area.height() - 40, (box, area)
    assert box.x() >= area.x() and box.y() >= area.y()
    assert box.right() <= area.right() and box.bottom() <= area.bottom(), (box, area)
    again.shutdown()
