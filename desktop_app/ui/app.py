"""Entry point for the window (``triptych`` / ``triptych --screenshot``)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, cast

SNAPSHOT_TIMEOUT_S = 300
SNAPSHOT_SIZE = (1600, 900)


def parse_size(text: str) -> tuple[int, int]:
    """``1024x768`` → (1024, 768); ValueError with one sentence otherwise."""
    parts = text.lower().replace("×", "x").split("x")
    try:
        width, height = (int(part) for part in parts)
    except ValueError:
        raise ValueError(f"--size must be WIDTHxHEIGHT, like 1024x768, not '{text}'.") from None
    if not (320 <= width <= 8192 and 240 <= height <= 8192):
        raise ValueError(f"--size {text} is out of range (320x240 to 8192x8192).")
    return width, height


SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")  # what Qt writes everywhere


def check_screenshot_path(text: str) -> Path:
    """The ``--screenshot`` file, checked before any model runs: its folder is made and a
    file can be written there. ValueError with one sentence otherwise (a folder given, a
    file where a folder should be, a folder that can't be written, an unknown image type)."""
    if not text.strip():
        raise ValueError("--screenshot needs a file name, such as shot.png.")
    path = Path(text).expanduser()
    if path.suffix.lower() not in SCREENSHOT_SUFFIXES:
        raise ValueError(f"--screenshot {text} must end in .png (or .jpg, .bmp).")
    if path.is_dir():
        raise ValueError(f"--screenshot {text} is a folder; give a file name such as "
                         f"{path / 'shot.png'}.")
    above = next((parent for parent in path.parents if parent.exists()), None)
    if above is not None and not above.is_dir():
        raise ValueError(f"--screenshot {text} cannot be saved: {above} is a file, "
                         "not a folder.")
    existed = path.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("ab"):  # a probe: append mode leaves an existing file as it is
            pass
        if not existed:
            path.unlink()
    except OSError as exc:
        raise ValueError(f"--screenshot {text} cannot be saved there: "
                         f"{exc.strerror or exc}.") from None
    return path


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def run_app(*, models: list[str] | None = None, prompt: str | None = None,
            max_tokens: int | None = None, screenshot: str | Path | None = None,
            presentation: bool = False, size: tuple[int, int] | None = None,
            timeout_s: float = SNAPSHOT_TIMEOUT_S, language: str | None = None) -> int:
    """Open the Triptych window. With ``screenshot``, run ``prompt`` in every pane, wait
    for all of them, save a PNG of the window and return 0 (1 with a one-line message on
    stderr if a pane failed, the image could not be saved or the run timed out). ``size``
    (from :func:`parse_size`) sizes the window, so a snapshot shows what a projector at
    that resolution would. ``language`` overrides the saved or the OS's language for this
    run (``--language de``). The command line checks ``size`` and ``screenshot``
    (:func:`check_screenshot_path`) before it calls this: a mistake is a usage error."""
    window_size = size
    if not _display_available():
        if screenshot is None:
            print("triptych: no display found (DISPLAY / WAYLAND_DISPLAY unset); use "
                  "'triptych compare PROMPT' in a terminal, or --screenshot to render offscreen.",
                  file=sys.stderr)
            return 1
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # a snapshot needs no screen
    from desktop_app.ui import qt_platform

    problem = qt_platform.check()  # Qt would abort with a core dump instead
    if problem:
        print(f"triptych: {problem}", file=sys.stderr)
        return 1
    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtWidgets import QApplication

    from desktop_app.models.catalog import (
        availability,
        check_servers,
        load_catalog,
        missing_message,
    )
    from desktop_app.models.sources import CatalogError
    from desktop_app.ui import theme
    from desktop_app.ui.main_window import MainWindow

    app = cast(QApplication, QApplication.instance() or QApplication(sys.argv[:1]))
    app.setApplicationName("Triptych")
    app.setOrganizationName("Triptych")
    app.setApplicationDisplayName("Triptych")
    app.setWindowIcon(theme.app_icon())
    from desktop_app.ui import language as ui_language
    from desktop_app.ui.settings import load_language

    ui_language.install(ui_language.choose_language(load_language(), language))
    snapshot = screenshot is not None

    catalog = load_catalog()
    if models:
        for model_id in models:
            try:
                catalog.get(model_id)
            except CatalogError as exc:
                print(f"triptych: {_one_line(str(exc))}", file=sys.stderr)
                return 1
    if snapshot:
        if not prompt:
            print("triptych: --screenshot needs --prompt TEXT", file=sys.stderr)
            return 1
        check_servers(catalog.get(model_id) for model_id in models or [])  # may wait: no window yet
        for model_id in models or []:
            state = availability(catalog.get(model_id))
            if state != "ready":
                print(f"triptych: {_one_line(missing_message(catalog.get(model_id), state))}",
                      file=sys.stderr)
                return 1
        if not models:
            # The window's default panes (base, instruct, reasoning), as a user sees them: a
            # pane whose model is not downloaded shows that state and is not waited for,
            # since it was not asked for by name. At least one pane must be able to run.
            from desktop_app.models.catalog import default_model_ids

            if not default_model_ids(catalog):
                print("triptych: no model is downloaded; run 'triptych models pull ...'",
                      file=sys.stderr)
                return 1

    probe = os.environ.get("TRIPTYCH_STARTUP_PROBE")  # set by `triptych bench`
    window = MainWindow(catalog, models=models, remember=not snapshot and not probe,
                        presentation=presentation)
    if window_size is not None:
        window.resize(*window_size)
    elif snapshot:
        window.resize(*SNAPSHOT_SIZE)
    if snapshot:
        window.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen, False)
    if max_tokens is not None:
        for pane in window.panes:
            pane.set_overrides(max_tokens=max_tokens)
    if prompt:
        window.prompt.setPlainText(prompt)
    window.show()

    if not snapshot:
        if prompt:
            QTimer.singleShot(0, window.send_all)
        if probe:
            _install_startup_probe(app, window, probe)
        code = app.exec()
        window.shutdown()
        return int(code)

    outcome: dict[str, object] = {"code": None, "message": "", "panes_done": False}

    def finish(code: int, message: str = "") -> None:
        if outcome["code"] is not None:
            return
        outcome["code"], outcome["message"] = code, message
        app.exit(code)

    def grab_and_exit(ok: bool) -> None:
        outcome["panes_done"] = True

        def grab() -> None:
            path = Path(str(screenshot)).expanduser()
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                saved = window.grab().save(str(path))
            except Exception as exc:  # noqa: BLE001 - any failure to save is one sentence
                finish(1, f"could not save the screenshot to {path}: {exc}")
                return
            if not saved:
                finish(1, f"could not save the screenshot to {path}")
            elif not ok:
                finish(1, "; ".join(window.failures) or "a pane failed")
            else:
                finish(0)
        QTimer.singleShot(300, grab)  # let the final Markdown render and layout settle

    def timed_out() -> None:
        if outcome["panes_done"]:  # the panes are not to blame
            finish(1, f"the panes finished, but the screenshot was not saved within "
                      f"{timeout_s:.0f} s")
        else:
            finish(1, f"timed out after {timeout_s:.0f} s waiting for the panes")

    def start() -> None:
        if window.send_all() == 0:
            finish(1, "no pane could start")

    window.allFinished.connect(grab_and_exit)
    QTimer.singleShot(200, start)
    QTimer.singleShot(int(timeout_s * 1000), timed_out)
    app.exec()
    window.shutdown()
    window.close()
    code = outcome["code"] if isinstance(outcome["code"], int) else 1
    if code != 0:
        print(f"triptych: {_one_line(str(outcome['message']))}", file=sys.stderr)
    return code


def _display_available() -> bool:
    """False on a Linux/BSD machine with no X11 or Wayland display and no Qt platform set."""
    if sys.platform in ("win32", "darwin") or os.environ.get("QT_QPA_PLATFORM"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _install_startup_probe(app: Any, window: Any, probe: str) -> None:
    """Print ``STARTUP <unix time>`` when the window is shown (``window``) or the first
    token is on screen (``token``), then quit: `triptych bench` times launches with it.
    Before it, ``LANGUAGE <code> qtbase=yes|no file_menu=<its title>`` (the language the
    window speaks) and ``WINDOW x y w h SCREEN x y w h``: where the window went on which
    available area. With ``TRIPTYCH_STARTUP_SCREENSHOT=PATH`` the whole screen, as the
    display server shows it, is saved there first (the real-window test under Xvfb)."""
    from PySide6.QtCore import QTimer

    shot = os.environ.get("TRIPTYCH_STARTUP_SCREENSHOT")

    def reached() -> bool:
        if probe == "window":
            return bool(window.isVisible())
        return any(turn.answer or turn.thinking
                   for pane in window.panes for turn in pane.session.turns[-1:])

    def report() -> None:
        from desktop_app.text import i18n
        from desktop_app.ui.language import qt_translation_loaded

        print(f"LANGUAGE {i18n.language()} qtbase={'yes' if qt_translation_loaded() else 'no'} "
              f"file_menu={window.menuBar().actions()[0].text()}", flush=True)
        frame, area = window.frameGeometry(), window.screen().availableGeometry()
        print(f"WINDOW {frame.x()} {frame.y()} {frame.width()} {frame.height()} SCREEN "
              f"{area.x()} {area.y()} {area.width()} {area.height()}", flush=True)
        if shot:
            window.screen().grabWindow(0).save(shot)
        print(f"STARTUP {time.time():.4f}", flush=True)
        app.quit()

    def check() -> None:
        if reached():
            timer.stop()
            if shot:
                QTimer.singleShot(1500, report)  # let it paint before the grab
            else:
                report()

    timer = QTimer(window)
    timer.setInterval(2)
    timer.timeout.connect(check)
    timer.start()
