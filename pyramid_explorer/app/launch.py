"""Start the window from parsed command-line arguments; the screenshot mode renders and exits."""

from __future__ import annotations

import argparse
import gc
import os
import sys

import cv2
from PySide6.QtCore import QBuffer, QByteArray, QCoreApplication, QEvent, QIODevice, QSettings, QTimer
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.errors import install_error_reporting, stop_log_file
from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.core.io import ImageSaveError, atomic_write
from pyramid_explorer.samples import DEFAULT_SAMPLE
from pyramid_explorer.tools.registry import NAMES as VIEWS

ORGANIZATION = "pyramid-explorer"
APPLICATION = "Pyramid Explorer"
SCREENSHOT_TIMEOUT_MS = 300_000
_POLL_MS = 50


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
        if not self._level_set:
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
        QApplication.instance().exit(status)


def save_png(image: QImage, path: str) -> None:
    """Encode `image` as PNG and write it atomically (ImageSaveError on failure)."""
    data = QByteArray()
    buffer = QBuffer(data)
    buffer.open(QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buffer, "PNG"):
        raise ImageSaveError(path, "the PNG encoder failed")
    with atomic_write(path) as fh:
        fh.write(data.data())


def leave_a_core_for_the_gui() -> None:
    """Let OpenCV's parallel loops use every core but one.

    By default OpenCV spreads the worker's calls over all cores, and on a small machine the GUI
    thread then waits for a core: the window stutters although it is never blocked.
    """
    cv2.setNumThreads(max(1, (os.cpu_count() or 2) - 1))


def run(args: argparse.Namespace) -> int:
    """Open the window (with `args.image` or the default sample) and run the event loop."""
    if args.view is not None and args.view not in VIEWS:
        print(f"pyramid-explorer: unknown view {args.view!r}; views: {', '.join(VIEWS)}", file=sys.stderr)
        return 2
    leave_a_core_for_the_gui()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    screenshot = args.screenshot is not None
    window = MainWindow(QSettings(ORGANIZATION, APPLICATION), persist=not screenshot)
    if args.view is not None:
        window.show_view(args.view)
    if args.image:
        window.controller.open_path(args.image)
    else:
        window.controller.open_sample(DEFAULT_SAMPLE)
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
