"""GUI fixtures: a real window on a settings file of its own; Qt warnings and leaked threads fail a test.

Shared by the GUI tests (tests/gui) and the GUI-under-faults tests (tests/robustness/gui), whose conftest
files import them.
"""

from __future__ import annotations

import gc
import threading

import pytest
from PySide6.QtCore import QSettings, QThreadPool, QtMsgType, qInstallMessageHandler

from pyramid_explorer.app.main_window import MainWindow

# The offscreen platform cannot resize native windows to their size hints and says so once per
# window; it is a limit of the test platform, not a fault of the app.
_HARMLESS = ("This plugin does not support propagateSizeHints()",)
_FAILING = (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)


@pytest.fixture(autouse=True)
def qt_warnings_fail():
    """Collect Qt warnings during the test (and its teardown) and fail the test if there were any."""
    messages: list[str] = []

    def handler(mode, _context, message):
        if mode in _FAILING and not message.startswith(_HARMLESS):
            messages.append(message)

    previous = qInstallMessageHandler(handler)
    yield messages
    qInstallMessageHandler(previous)
    assert not messages, f"Qt warnings: {messages}"


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves a Python thread or a global-pool Qt thread running.

    Earlier tests' garbage is collected first, here on the GUI thread: left to a collection that
    happens to start on the worker thread, it would delete Qt objects there, which can deadlock the
    worker against the GUI thread (seen in tests/gui/test_stored.py after the other GUI tests)."""
    gc.collect()
    before = {t.ident for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    yield
    assert QThreadPool.globalInstance().waitForDone(5000)
    after = {t.ident for t in threading.enumerate() if not isinstance(t, threading._DummyThread)}
    assert after <= before, f"threads left running: {after - before}"


@pytest.fixture
def settings_store(tmp_path):
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings_store):
    """Build shown windows on the test's settings file; at teardown each is closed and must have
    stopped its worker thread."""
    windows: list[MainWindow] = []

    def make(store: QSettings | None = None) -> MainWindow:
        w = MainWindow(store if store is not None else settings_store)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()
        assert w.controller.runner.active_threads() == 0, "the worker thread is still running a job"


@pytest.fixture
def window(make_window):
    return make_window()
