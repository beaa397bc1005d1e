"""The window on a real X11 server (Xvfb), not only offscreen: Qt's X11 plugin loads, the
window opens within a 1280x800 screen, and the screen grab shows it drawn. And where the
plugin cannot load, one sentence says what to install, instead of Qt's core dump."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests import x11

pytestmark = pytest.mark.slow


def test_the_window_opens_on_a_1280x800_x11_screen(tmp_path: Path):
    from desktop_app.ui import qt_platform

    x11.apt_install(*x11.X11_PACKAGES)  # a desktop has them; `pip install` uses the system's
    with x11.display(1280, 800) as name:
        shot = tmp_path / "x11-1280x800.png"
        done = x11.open_window([sys.executable, "-m", "desktop_app"], name,
                               tmp_path / "home", shot)
    if done.returncode == 1 and "cannot open its window" in done.stderr:
        pytest.skip(f"this machine lacks Qt's X11 libraries: {done.stderr.strip()}")
    x11.assert_window_fits(done, shot, (1280, 800))
    assert qt_platform.check() is None or "offscreen" in os.environ.get("QT_QPA_PLATFORM", "")


def _stub_plugin(folder: Path, needs: str) -> Path:
    """A platform plugin ``libqxcb.so`` that links to ``needs``, a library no system
    has: what Qt's plugin is on a desktop without libxcb-cursor0."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("needs a C compiler to make the stand-in plugin")
    lib = folder / "lib"
    plugins = folder / "platforms"
    lib.mkdir()
    plugins.mkdir()
    (folder / "empty.c").write_text("int stand_in(void) { return 0; }\n")
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib / needs), f"-Wl,-soname,{needs}",
                    str(folder / "empty.c")], check=True, capture_output=True)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(plugins / "libqxcb.so"),
                    str(folder / "empty.c"), f"-L{lib}", "-Wl,--no-as-needed", f"-l:{needs}"],
                   check=True, capture_output=True)
    shutil.rmtree(lib)  # now nothing provides it
    return plugins


@pytest.mark.parametrize("wayland", [False, True])
def test_a_missing_x11_library_is_one_sentence_not_a_core_dump(tmp_path: Path, wayland):
    plugins = _stub_plugin(tmp_path, "libxcb-cursor.so.9")
    env = {key: value for key, value in os.environ.items()
           if key not in ("QT_QPA_PLATFORM", "WAYLAND_DISPLAY")}
    env.update({"DISPLAY": ":77", "QT_QPA_PLATFORM_PLUGIN_PATH": str(plugins),
                "TRIPTYCH_HOME": str(tmp_path / "home")})
    if wayland:  # no Wayland plugin there either: the same sentence
        env["WAYLAND_DISPLAY"] = "wayland-77"
    done = subprocess.run([sys.executable, "-m", "desktop_app"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 1, done.stderr[-3000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "libxcb-cursor.so.9 is missing" in lines[0]
    assert "sudo apt install libxcb-cursor0" in lines[0] and "xcb-util-cursor" in lines[0]
    assert "Traceback" not in done.stderr and "core dumped" not in done.stderr


def test_the_sentence_names_each_package_and_never_guesses(monkeypatch):
    from desktop_app.ui import qt_platform

    both = qt_platform.sentence(["libxcb-icccm.so.4", "libxcb-keysyms.so.1"])
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1 are missing" in both
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in both
    assert "sudo dnf install xcb-util-wm xcb-util-keysyms" in both
    odd = qt_platform.sentence(["/opt/x/libqxcb.so: undefined symbol: xcb_foo"])
    assert "does not load here (/opt/x/libqxcb.so: undefined symbol: xcb_foo)" in odd
    assert "install" not in odd
    assert qt_platform.package_for("libxcb-xinput.so.0") == ("libxcb-xinput0", "libxcb")
    # a list of platforms is Qt's to fall back through; offscreen needs no X11 at all
    for chosen in ("xcb;wayland", "offscreen", "wayland"):
        monkeypatch.setenv("QT_QPA_PLATFORM", chosen)
        assert qt_platform.check() is None
