"""Unexpected exceptions anywhere reach the user (a non-modal window with details) and the log file.

The hooks are installed inside each test body: pytest-qt puts its own `sys.excepthook` in place for
every test phase, and the reporter must sit on top of it while the test runs.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QStandardPaths, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton, QWidget

from pyramid_explorer.app import errors
from pyramid_explorer.app.errors import LOG_NAME, ErrorReporter, start_log_file, stop_log_file


@pytest.fixture
def host(qtbot) -> QWidget:
    widget = QWidget()
    qtbot.addWidget(widget)
    widget.show()
    return widget


@contextlib.contextmanager
def reporting(host: QWidget, folder: Path | None) -> Iterator[ErrorReporter]:
    handler = start_log_file(folder) if folder is not None else None
    reporter = ErrorReporter(host, Path(handler.baseFilename) if handler is not None else None)
    reporter.install()
    try:
        yield reporter
    finally:
        reporter.uninstall()
        stop_log_file(handler)


def raise_value_error() -> None:
    raise ValueError("boom in a slot")


def test_exception_in_a_slot_shows_details_and_is_logged(qtbot, host, tmp_path):
    with reporting(host, tmp_path) as reporter:
        QTimer.singleShot(0, raise_value_error)
        qtbot.waitUntil(reporter.dialog.isVisible)
    dialog = reporter.dialog
    assert "ValueError: boom in a slot" in dialog.text()
    assert "raise_value_error" in dialog.detailedText() and "Traceback" in dialog.detailedText()
    assert str(tmp_path / LOG_NAME) in dialog.informativeText()
    assert QApplication.activeModalWidget() is None  # non-modal: the window stays usable
    log = (tmp_path / LOG_NAME).read_text(encoding="utf-8")
    assert "ValueError: boom in a slot" in log and "raise_value_error" in log
    button = QPushButton("still works", host)
    clicks = []
    button.clicked.connect(lambda: clicks.append(1))
    button.click()
    assert clicks == [1]


def test_exception_in_a_python_thread_reaches_the_gui_thread(qtbot, host, tmp_path):
    def work() -> None:
        raise RuntimeError("worker exploded")

    with reporting(host, tmp_path) as reporter:
        thread = threading.Thread(target=work, name="explorer-test-thread")
        thread.start()
        thread.join()
        qtbot.waitUntil(reporter.dialog.isVisible)
    assert "RuntimeError: worker exploded" in reporter.dialog.text()
    assert "thread explorer-test-thread" in reporter.dialog.detailedText()
    assert "worker exploded" in (tmp_path / LOG_NAME).read_text(encoding="utf-8")


def test_a_burst_of_errors_is_one_window_with_a_count(qtbot, host, tmp_path):
    with reporting(host, tmp_path) as reporter:
        for _ in range(5):
            QTimer.singleShot(0, raise_value_error)
        qtbot.waitUntil(lambda: reporter.dialog.count == 5)
    assert "5 errors so far" in reporter.dialog.text()
    assert reporter.dialog.detailedText().count("Traceback") == 5
    shown = [w for w in QApplication.topLevelWidgets() if isinstance(w, QMessageBox) and w.isVisible()]
    assert len(shown) == 1
    reporter.dialog.done(0)  # closing starts the count again
    assert reporter.dialog.count == 0


def test_without_a_log_folder_the_dialog_still_appears(qtbot, host, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert start_log_file(blocked / "log") is None
    with reporting(host, None) as reporter:
        QTimer.singleShot(0, raise_value_error)
        qtbot.waitUntil(reporter.dialog.isVisible)
    assert "No log file could be written" in reporter.dialog.informativeText()


def test_ctrl_c_and_exit_are_not_reported(host):
    seen = []
    previous = sys.excepthook
    sys.excepthook = lambda *args: seen.append(args[0])
    try:
        with reporting(host, None) as reporter:
            sys.excepthook(KeyboardInterrupt, KeyboardInterrupt(), None)
            sys.excepthook(SystemExit, SystemExit(0), None)
    finally:
        sys.excepthook = previous
    assert seen == [KeyboardInterrupt, SystemExit] and reporter.dialog.count == 0


def test_uninstall_restores_the_previous_hooks(host):
    before = (sys.excepthook, threading.excepthook)
    reporter = ErrorReporter(host)
    reporter.install()
    assert sys.excepthook != before[0] and threading.excepthook != before[1]
    reporter.uninstall()
    assert (sys.excepthook, threading.excepthook) == before


def test_warnings_go_to_the_log_not_stderr(tmp_path, capfd):
    handler = start_log_file(tmp_path)
    try:
        logging.getLogger("some.library").warning("invalid page offset 19398656")
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("invalid value encountered in subtract", RuntimeWarning, stacklevel=1)
    finally:
        stop_log_file(handler)
    log = (tmp_path / LOG_NAME).read_text(encoding="utf-8")
    assert "invalid page offset" in log and "RuntimeWarning: invalid value encountered" in log
    err = capfd.readouterr().err
    assert "invalid page offset" not in err and "invalid value" not in err


@pytest.mark.skipif(sys.platform != "linux", reason="the XDG layout is Linux's")
def test_log_folder_is_the_platform_state_folder(qapp):
    QStandardPaths.setTestModeEnabled(True)
    try:
        folder = errors.log_folder()
    finally:
        QStandardPaths.setTestModeEnabled(False)
    assert folder.name == "log" and qapp.applicationName() in str(folder)
