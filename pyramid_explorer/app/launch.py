"""Start the window from parsed command-line arguments; the screenshot mode renders and exits."""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
from PySide6.QtCore import (
    QBuffer,
    QByteArray,
    QCoreApplication,
    QEvent,
    QIODevice,
    QLibraryInfo,
    QSettings,
    QTimer,
    QtMsgType,
    qInstallMessageHandler,
)
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.controller import Controller
from pyramid_explorer.app.errors import install_error_reporting, stop_log_file
from pyramid_explorer.core.io import ImageSaveError, atomic_write
from pyramid_explorer.samples import COMMAND_LINE_PROBE_SIZE, COMMAND_LINE_SAMPLES, DEFAULT_SAMPLE
from pyramid_explorer.tools.registry import NAMES as VIEWS

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow

ORGANIZATION = "pyramid-explorer"
APPLICATION = "Pyramid Explorer"
SCREENSHOT_TIMEOUT_MS = 300_000
_POLL_MS = 50

XCB_PACKAGES = {
    "libGL.so.1": "libgl1", "libEGL.so.1": "libegl1", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libglib-2.0.so.0": "libglib2.0-0",
    "libgthread-2.0.so.0": "libglib2.0-0",
    "libX11.so.6": "libx11-6", "libX11-xcb.so.1": "libx11-xcb1", "libxcb.so.1": "libxcb1",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-randr.so.0": "libxcb-randr0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0", "libxcb-xkb.so.1": "libxcb-xkb1",
    "libxkbcommon.so.0": "libxkbcommon0", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
"""Library -> Debian/Ubuntu package, for every library Qt's xcb plugin, libQt6XcbQpa, libQt6Gui and
libQt6DBus link beyond the C/C++ runtime (`objdump -p` NEEDED entries, packages from `dpkg -S`); the
README's apt-get line is the same list."""


class ScreenshotTaker:
    """Waits until every computation has finished, then saves a PNG of the whole window and quits.

    It polls the controller on a timer (never blocking the event loop); a job error or the timeout
    ends it with a non-zero status.
    """

    def __init__(self, window: MainWindow, path: str, level: int | None) -> None:
        self.window = window
        self.path = path
        self.level = level
        self.status: int | None = None
        self._elapsed = 0
        self._level_set = level is None
        self._failure: str | None = None
        window.controller.error.connect(self._on_error)
        self._timer = QTimer(window)
        self._timer.setInterval(_POLL_MS)
        self._timer.timeout.connect(self._on_poll)
        self._timer.start()

    def _on_error(self, message: str) -> None:
        self._failure = message

    def _on_poll(self) -> None:
        self._elapsed += _POLL_MS
        c = self.window.controller
        if self._failure is not None:
            self._finish(1, f"pyramid-explorer: {self._failure}")
            return
        if self._elapsed > SCREENSHOT_TIMEOUT_MS:
            self._finish(1, "pyramid-explorer: timed out waiting for the computations")
            return
        count = c.level_count()
        if not self.window.is_settled() or count is None:
            return
        if not self._level_set and self.level is not None:
            self._level_set = True
            if not 0 <= self.level < count:
                last = count - 1
                self._finish(2, f"pyramid-explorer: level {self.level} is out of range 0..{last}")
                return
            c.set_level(self.level)
            return
        try:
            save_png(self.window.grab().toImage(), self.path)
        except ImageSaveError as error:
            self._finish(1, f"pyramid-explorer: {error}")
            return
        self._finish(0, None)

    def _finish(self, status: int, message: str | None) -> None:
        self._timer.stop()
        self.status = status
        if message:
            print(message, file=sys.stderr)
        self.window.close()
        app = QApplication.instance()
        if app is not None:
            app.exit(status)


def save_png(image: QImage, path: str) -> None:
    """Encode `image` as PNG and write it atomically (ImageSaveError on failure)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    # PySide6's stub types the format as bytes, but only a str is accepted at run time.
    if not image.save(buffer, "PNG"):  # type: ignore[call-overload]
        raise ImageSaveError(path, "the PNG encoder failed")
    with atomic_write(path) as fh:
        fh.write(data.data())


def leave_a_core_for_the_gui() -> None:
    """Let OpenCV's parallel loops use every core but one.

    By default OpenCV spreads the worker's calls over all cores, and on a small machine the GUI
    thread then waits for a core: the window stutters although it is never blocked.
    """
    cv2.setNumThreads(max(1, (os.cpu_count() or 2) - 1))


def missing_libraries(library: Path) -> list[str]:
    """The shared libraries `ldd` reports as not found for `library`, sorted ([] without ldd).

    ldd runs in a subprocess: it lists every missing library at once (loading the plugin stops at
    the first) and cannot disturb this process, for about 10 ms.
    """
    try:
        listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted({line.split("=>")[0].strip() for line in listing.splitlines() if "not found" in line})


def display_problem() -> str | None:
    """Why Qt cannot open a window here, in one sentence saying what to do, or None when it should.

    Decided from the environment before any QApplication exists, because Qt aborts the process
    (status 134) when its platform plugin fails. Only the X11 and Wayland platforms of Linux are
    checked; any other platform, or another system, is left to Qt.
    """
    if not sys.platform.startswith("linux"):
        return None
    platform = os.environ.get("QT_QPA_PLATFORM", "").split(";")[0].split(":")[0].strip()
    wayland = bool(os.environ.get("WAYLAND_DISPLAY"))
    if platform not in ("", "xcb") and not platform.startswith("wayland"):
        return None
    if platform.startswith("wayland") or (not platform and wayland):
        return None if wayland else "no Wayland display (WAYLAND_DISPLAY is not set); run it on the desktop"
    if not os.environ.get("DISPLAY"):
        return "no display to open the window on (DISPLAY is not set); run it on the desktop"
    plugin = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    missing = missing_libraries(plugin)
    if not missing:
        return None
    packages = dict.fromkeys(XCB_PACKAGES.get(name, name) for name in missing)
    return (f"Qt's X11 plugin cannot load, {', '.join(missing)} missing; "
            f"install with: sudo apt-get install {' '.join(packages)}")


def create_application(screenshot: bool) -> QApplication | None:
    """The QApplication, or None after printing one line when no display can be opened.

    A screenshot needs no screen: without a usable display it renders offscreen. Any failure the
    checks did not foresee (a display that refuses the connection, say) is caught from Qt's fatal
    message, which would otherwise abort the process: one line, exit status 2.
    """
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing
    problem = display_problem()
    if problem is not None and screenshot:
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    elif problem is not None:
        print(f"pyramid-explorer: {problem} (or set QT_QPA_PLATFORM=offscreen to run without a screen)",
              file=sys.stderr)
        return None
    qt_said: list[str] = []

    def on_qt_message(kind: QtMsgType, _context: object, message: str) -> None:
        qt_said.append(message.strip().splitlines()[0] if message.strip() else "")
        if kind == QtMsgType.QtFatalMsg:
            print(f"pyramid-explorer: Qt could not open a display ({qt_said[0]}); check DISPLAY "
                  "(or set QT_QPA_PLATFORM=offscreen to run without a screen)", file=sys.stderr, flush=True)
            os._exit(2)

    previous = qInstallMessageHandler(on_qt_message)
    try:
        app = QApplication(sys.argv[:1])
    finally:
        qInstallMessageHandler(previous)
    for message in qt_said:
        print(message, file=sys.stderr)
    if os.environ.get("QT_QPA_PLATFORM") == "offscreen":
        qInstallMessageHandler(_without_offscreen_noise)
    return app


OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"
"""What Qt's offscreen platform says for every window shown: it has no window manager to tell."""


def _without_offscreen_noise(_kind: QtMsgType, _context: object, message: str) -> None:
    if message != OFFSCREEN_NOISE:
        print(message, file=sys.stderr)


def open_first_image(c: Controller, args: argparse.Namespace) -> None:
    """Open `args.image`, the `--sample` named (cli checked the name), or the default sample."""
    if args.image:
        c.open_path(args.image)
    elif args.sample is not None:
        kind, name = COMMAND_LINE_SAMPLES[args.sample]
        if kind == "probe":
            c.open_probe(name, *COMMAND_LINE_PROBE_SIZE)
        else:
            c.open_sample(name)
    else:
        c.open_sample(DEFAULT_SAMPLE)


def open_window(store: QSettings, persist: bool, open_first: Callable[[Controller], object]) -> MainWindow:
    """The window, with `open_first(controller)` asked before the window is built: the worker reads
    the first image while the GUI thread imports the window's modules (pyqtgraph among them) and builds
    the window; each of the two takes a few hundred milliseconds for a 4K image."""
    controller = Controller()
    open_first(controller)
    from pyramid_explorer.app.main_window import MainWindow  # here: after the open, see above

    window = MainWindow(store, persist=persist, controller=controller)
    controller.setParent(window)
    return window


def run(args: argparse.Namespace) -> int:
    """Open the window (with `args.image`, `args.sample` or the default sample) and run the event loop."""
    if args.view is not None and args.view not in VIEWS:
        print(f"pyramid-explorer: unknown view {args.view!r}; views: {', '.join(VIEWS)}", file=sys.stderr)
        return 2
    leave_a_core_for_the_gui()
    app = create_application(args.screenshot is not None)
    if app is None:
        return 2
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    screenshot = args.screenshot is not None
    store = QSettings(ORGANIZATION, APPLICATION)
    window = open_window(store, not screenshot, partial(open_first_image, args=args))
    if args.view is not None:
        window.show_view(args.view)
    taker = ScreenshotTaker(window, args.screenshot, args.level) if screenshot else None
    if not screenshot and args.level is not None:
        window.controller.set_level(args.level)
    # Interactive runs log unexpected errors and show them; a screenshot run reports through its exit
    # status instead. OpenCV's own log lines would only repeat, on a console, what the window says.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    reporter, log_handler = install_error_reporting(window) if not screenshot else (None, None)
    window.show()
    try:
        status = app.exec()
    finally:
        if reporter is not None:
            reporter.uninstall()
        stop_log_file(log_handler)
    if taker is not None and taker.status is not None:
        status = taker.status
    _dispose(window)
    return status


def _dispose(window: MainWindow) -> None:
    """Delete the window while Qt is still up.

    pyqtgraph's items form reference cycles; left to the garbage collection at interpreter exit
    they are destroyed after Qt and the process aborts (seen with PySide6 6.x and pyqtgraph 0.14).
    """
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
