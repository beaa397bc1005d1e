"""Before Qt opens a window on Linux: can its X11 platform plugin load here?

Qt 6.5+'s xcb plugin links to X11 helper libraries a stock desktop may lack
(``libxcb-cursor0`` above all; Ubuntu does not install it). Qt then prints a paragraph
and aborts with a core dump. The bundle carries these libraries; a ``pip install`` uses
the system's. So before the QApplication exists, the plugin is opened the way Qt would
(``dlopen``), and a missing library becomes one sentence naming the package to install,
or, on a Wayland desktop, the window opens through Wayland instead.
"""

from __future__ import annotations

import ctypes
import os
import re
import sys
from pathlib import Path

# The library Qt's platform plugins link to → (Debian/Ubuntu package, Fedora package).
PACKAGES: dict[str, tuple[str, str]] = {
    "libxcb-cursor": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-keysyms": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-image": ("libxcb-image0", "xcb-util-image"),
    "libxcb-render-util": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-util": ("libxcb-util1", "xcb-util"),
    "libxkbcommon-x11": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libxkbcommon": ("libxkbcommon0", "libxkbcommon"),
    "libX11-xcb": ("libx11-xcb1", "libX11-xcb"),
    "libX11": ("libx11-6", "libX11"),
    "libxcb": ("libxcb1", "libxcb"),  # libxcb-xkb, -shape, -randr ...: one Fedora package
    "libEGL": ("libegl1", "libglvnd-egl"),
    "libGL": ("libgl1", "libglvnd-glx"),
    "libOpenGL": ("libopengl0", "libglvnd-opengl"),
    "libfontconfig": ("libfontconfig1", "fontconfig"),
    "libfreetype": ("libfreetype6", "freetype"),
    "libdbus-1": ("libdbus-1-3", "dbus-libs"),
    "libwayland-client": ("libwayland-client0", "libwayland-client"),
    "libwayland-cursor": ("libwayland-cursor0", "libwayland-cursor"),
}
_SONAME = re.compile(r"(lib[\w+.-]*?\.so(?:\.[\d.]+)?)")


def package_for(soname: str) -> tuple[str, str]:
    """The packages that install ``soname`` (``libxcb-cursor.so.0`` → libxcb-cursor0)."""
    stem = soname.split(".so", 1)[0]
    if stem in PACKAGES:
        return PACKAGES[stem]
    if stem.startswith("libxcb-"):  # libxcb-xkb.so.1 → libxcb-xkb1; Fedora: libxcb
        return f"{stem}{soname.rsplit('.', 1)[-1] if soname[-1].isdigit() else ''}", "libxcb"
    return stem, stem


def missing_library(plugin: Path) -> str | None:
    """The first library ``plugin`` needs that this system cannot find, or None when it
    loads (or is not there to try: Qt then reports that itself)."""
    if not plugin.is_file():
        return None
    try:
        handle = ctypes.CDLL(str(plugin), mode=getattr(os, "RTLD_LAZY", 1))
    except OSError as exc:
        text = str(exc)
        found = _SONAME.match(text.split(":", 1)[0].strip())
        if found and "cannot open shared object file" in text:
            return found.group(1)
        return text  # another failure (a symbol or version mismatch): said as it is
    del handle  # ctypes keeps it loaded; Qt's own dlopen then finds it at once
    return None


def all_missing(plugin: Path, first: str) -> list[str]:
    """Every library ``plugin`` lacks, as the dynamic loader lists them (``ldd``), so one
    install fixes it; just ``first`` where ldd is not there to ask."""
    import subprocess

    if not _SONAME.fullmatch(first):
        return [first]
    try:
        listed = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True,
                                timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        listed = ""
    names = [line.split("=>", 1)[0].strip() for line in listed.splitlines()
             if "not found" in line]
    unique = list(dict.fromkeys([first, *names]))
    return unique


def sentence(sonames: list[str], platform_name: str = "X11") -> str:
    """What the user reads, and what to do about it."""
    if not _SONAME.fullmatch(sonames[0]):  # not a missing library: the loader's own words
        return (f"Triptych cannot open its window on this {platform_name} desktop: Qt's "
                f"{platform_name} plugin does not load here ({' '.join(sonames[0].split())}).")
    debian = " ".join(dict.fromkeys(package_for(name)[0] for name in sonames))
    fedora = " ".join(dict.fromkeys(package_for(name)[1] for name in sonames))
    what = (f"the system library {sonames[0]} is missing" if len(sonames) == 1 else
            f"the system libraries {', '.join(sonames)} are missing")
    return (f"Triptych cannot open its window on this {platform_name} desktop: {what}; "
            f"install {'it' if len(sonames) == 1 else 'them'} (Debian/Ubuntu: sudo apt "
            f"install {debian}; Fedora: sudo dnf install {fedora}) and start Triptych again.")


def _plugin_dirs() -> list[Path]:
    given = os.environ.get("QT_QPA_PLATFORM_PLUGIN_PATH")
    if given:
        return [Path(p) for p in given.split(os.pathsep) if p]
    from PySide6.QtCore import QLibraryInfo

    plugins = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath))
    return [plugins / "platforms"]


def _plugin(name: str) -> Path:
    for folder in _plugin_dirs():
        candidate = folder / f"libq{name}.so"
        if candidate.is_file():
            return candidate
    return _plugin_dirs()[0] / f"libq{name}.so"


def check() -> str | None:
    """None when Qt can open a window as things are (switching a Wayland session to
    Qt's Wayland plugin where its X11 one cannot load); else the sentence to print."""
    if not sys.platform.startswith("linux"):
        return None
    chosen = [p.split(":")[0].strip() for p in os.environ.get("QT_QPA_PLATFORM", "").split(";")]
    chosen = [p for p in chosen if p]
    if len(chosen) > 1 or (chosen and chosen[0] != "xcb"):
        return None  # offscreen, wayland, or a list Qt falls back through: Qt's own choice
    wanted = chosen[0] if chosen else ""
    on_wayland = bool(os.environ.get("WAYLAND_DISPLAY"))
    xcb = _plugin("xcb")
    missing = missing_library(xcb)
    if missing is None:
        return None
    wayland = _plugin("wayland")
    if on_wayland and not wanted and wayland.is_file() and missing_library(wayland) is None:
        os.environ["QT_QPA_PLATFORM"] = "wayland"
        return None
    return sentence(all_missing(xcb, missing))
