"""Unexpected errors: logged to a file and shown in a non-modal window with details; the app keeps running.

PySide6 prints an exception raised in a slot and carries on, so without this nothing would tell the user.
`ErrorReporter.install()` replaces `sys.excepthook` (exceptions on the GUI thread, slots included) and
`threading.excepthook` (Python threads); each exception is logged with its traceback and shown in one
`ErrorDialog`, which collects a burst of errors instead of stacking windows. Exceptions from any thread
reach the dialog through a queued signal, so widgets are only touched on the GUI thread.

The log is `LOG_NAME` in the platform's user log folder (`log_folder()`): `~/.local/state/<org>/<app>/log`
on Linux, `~/Library/Logs/<app>` on macOS, `%LOCALAPPDATA%/<org>/<app>/State/log` on Windows. It rotates
at `LOG_BYTES` and also receives library warnings (Python warnings, tifffile's log), which would otherwise
go to stderr.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6.QtCore import QObject, QStandardPaths, Qt, Signal
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

LOG_NAME = "pyramid-explorer.log"
LOG_BYTES = 1 << 20
LOG_BACKUPS = 2
MAX_DETAILS = 20  # tracebacks kept in the dialog; older ones are only in the log

log = logging.getLogger("pyramid_explorer")


def log_folder() -> Path:
    """The platform's folder for this application's logs (set the application and organisation names
    on the QApplication first)."""
    if sys.platform == "darwin":
        home = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.HomeLocation)
        return Path(home) / "Library" / "Logs" / (QApplication.applicationName() or "pyramid-explorer")
    location = getattr(QStandardPaths.StandardLocation, "StateLocation", None)  # Qt 6.7
    if location is None:
        location = QStandardPaths.StandardLocation.AppLocalDataLocation
    return Path(QStandardPaths.writableLocation(location)) / "log"


def start_log_file(folder: Path | None = None) -> logging.Handler | None:
    """Send the root logger's records (and Python warnings) to `folder / LOG_NAME`, rotated.

    Returns the handler (to remove later), or None when the folder cannot be written: the app then
    runs without a log file rather than not at all.
    """
    folder = log_folder() if folder is None else folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        # Appending to a log never replaces user data, so it does not go through atomic_write.
        handler = logging.handlers.RotatingFileHandler(folder / LOG_NAME, maxBytes=LOG_BYTES,
                                                       backupCount=LOG_BACKUPS, encoding="utf-8")
    except OSError:
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)
    logging.getLogger().addHandler(handler)
    logging.captureWarnings(True)
    return handler


def stop_log_file(handler: logging.Handler | None) -> None:
    """Undo `start_log_file`."""
    if handler is None:
        return
    logging.getLogger().removeHandler(handler)
    handler.close()
    logging.captureWarnings(False)


def describe(exc: BaseException) -> str:
    """One line for the user: the exception's type and first line."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class ErrorDialog(QMessageBox):
    """A non-modal error window: a summary line, the latest tracebacks behind "Show Details...",
    and a count when several errors arrive before it is closed."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setIcon(QMessageBox.Icon.Critical)
        self.setWindowTitle("Pyramid Explorer: unexpected error")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.setStandardButtons(QMessageBox.StandardButton.Close)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.count = 0
        self._details: list[str] = []
        self.finished.connect(self._on_finished)

    def add(self, summary: str, details: str, log_path: Path | None) -> None:
        self.count += 1
        self._details = [*self._details, details][-MAX_DETAILS:]
        more = f" ({self.count} errors so far; this is the latest)" if self.count > 1 else ""
        where = f"It is logged in {log_path}." if log_path is not None else "No log file could be written."
        self.setText(f"Something went wrong{more}:\n{summary}")
        self.setInformativeText(f"The application keeps running; what is on screen is unchanged. {where}")
        self.setDetailedText("\n".join(self._details))
        self.show()

    def _on_finished(self, _result: int) -> None:
        self.count = 0
        self._details = []


class ErrorReporter(QObject):
    """Catches exceptions nobody handled, logs them and shows them in an `ErrorDialog`."""

    reported = Signal(str, str)  # summary, details; emitted from any thread, shown on the GUI thread

    def __init__(self, parent: QWidget | None = None, log_path: Path | None = None) -> None:
        super().__init__(parent)
        self.log_path = log_path
        self.dialog = ErrorDialog(parent)
        self.reported.connect(self._on_reported, Qt.ConnectionType.QueuedConnection)
        self._previous: tuple | None = None

    def install(self) -> None:
        """Become `sys.excepthook` and `threading.excepthook` (the previous hooks are kept)."""
        if self._previous is None:
            self._previous = (sys.excepthook, threading.excepthook)
            sys.excepthook = self._on_exception
            threading.excepthook = self._on_thread_exception

    def uninstall(self) -> None:
        """Put the previous hooks back (only if they are still ours)."""
        if self._previous is None:
            return
        if sys.excepthook == self._on_exception:
            sys.excepthook = self._previous[0]
        if threading.excepthook == self._on_thread_exception:
            threading.excepthook = self._previous[1]
        self._previous = None

    def report(self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None,
               where: str = "") -> None:
        """Log an exception and show it (thread-safe)."""
        log.error("unexpected error%s", f" in {where}" if where else "", exc_info=(exc_type, exc, tb))
        details = "".join(traceback.format_exception(exc_type, exc, tb))
        self.reported.emit(describe(exc), f"{where}:\n{details}" if where else details)

    def _on_exception(self, exc_type: type[BaseException], exc: BaseException,
                      tb: TracebackType | None) -> None:
        if issubclass(exc_type, KeyboardInterrupt | SystemExit) or self._previous is None:
            (self._previous or (sys.__excepthook__,))[0](exc_type, exc, tb)
            return
        try:
            self.report(exc_type, exc, tb)
        except RuntimeError:  # the reporter's Qt object is gone (shutting down): fall back
            self._previous[0](exc_type, exc, tb)

    def _on_thread_exception(self, args: threading.ExceptHookArgs) -> None:
        if issubclass(args.exc_type, SystemExit) or self._previous is None:
            return
        name = args.thread.name if args.thread is not None else "a thread"
        try:
            self.report(args.exc_type, args.exc_value or args.exc_type(), args.exc_traceback,
                        where=f"thread {name}")
        except RuntimeError:
            self._previous[1](args)

    def _on_reported(self, summary: str, details: str) -> None:
        self.dialog.add(summary, details, self.log_path)


def install_error_reporting(window: QWidget) -> tuple[ErrorReporter, logging.Handler | None]:
    """Start the log file and the reporter for `window`; returns both (for `uninstall`/`stop_log_file`)."""
    handler = start_log_file()
    path = Path(handler.baseFilename) if isinstance(handler, logging.FileHandler) else None
    reporter = ErrorReporter(window, path)
    reporter.install()
    return reporter, handler
