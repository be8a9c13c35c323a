"""The real window under faults: jobs cut short by closing or reopening, injected engine failures (an
exception, MemoryError, cv2.error) in the worker, an exception in a slot. Each is reported, nothing
hangs or leaks a thread, and the window keeps working.

Every test also fails on Qt warnings and leaked threads (tests/qt_fixtures.py), and pytest-qt fails it
on any exception raised in a slot that nothing caught, which is how "Internal C++ object already
deleted" errors would show.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from helpers import random_image
from PySide6.QtCore import QCoreApplication, QEvent, QSettings, Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from pyramid_explorer import jobs
from pyramid_explorer.app import controller as controller_module
from pyramid_explorer.app import errors, launch
from pyramid_explorer.app.errors import LOG_NAME, ErrorReporter, start_log_file, stop_log_file
from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.core import export_files as export_module  # where _write_item lives
from pyramid_explorer.core import io as image_io
from pyramid_explorer.core.budget import ENV_VARIABLE
from pyramid_explorer.core.export import MANIFEST_NAME, ExportOptions
from pyramid_explorer.core.io import ImageSaveError, save_image
from pyramid_explorer.jobs import ExportRequest, Progress
from pyramid_explorer.tools import pyramid as pyramid_tool


def settle(qtbot, window, timeout: int = 20_000) -> None:
    qtbot.waitUntil(lambda: window.controller.pyramid is not None and window.is_settled(), timeout=timeout)


@pytest.fixture
def image_path(tmp_path: Path) -> str:
    path = tmp_path / "first.png"
    save_image(path, random_image((45, 61), np.uint8, 3, seed=1))
    return str(path)


@pytest.fixture
def opened(qtbot, window, image_path):
    window.controller.open_path(image_path)
    settle(qtbot, window)
    return window


@contextlib.contextmanager
def reporting(window, folder: Path) -> Iterator[ErrorReporter]:
    """The app's exception hooks and log file, as `launch.run` installs them."""
    handler = start_log_file(folder)
    reporter = ErrorReporter(window, folder / LOG_NAME)
    reporter.install()
    try:
        yield reporter
    finally:
        reporter.uninstall()
        stop_log_file(handler)


class Gate:
    """A job step that waits until released (or until the job is told to stop), as a long OpenCV call
    would: the worker can only notice a cancel between two steps."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def endless_job(self, request: object) -> Iterator[Progress]:
        n = 0
        while True:
            self.entered.set()
            self.release.wait(0.01)
            n += 1
            yield Progress(n, 0, "a long test job")


def still_works(qtbot, window) -> None:
    """The window computes and shows a new level after the fault."""
    controller = window.controller
    target = 1 if controller.level != 1 else 2
    controller.set_level(target)
    settle(qtbot, window)
    assert window.tab("pyramid").gaussian.layer.level == target
    assert window.tab("pyramid").gaussian.layer.shape[:2] == controller.pyramid.gaussian[target].shape[:2]


# ------------------------------------------------------------------------------------- cut-short jobs


def test_closing_the_window_while_a_job_runs_stops_it(qtbot, settings_store, image_path, monkeypatch, capfd):
    window = MainWindow(settings_store)  # not the fixture's: this test deletes it
    window.show()
    window.controller.open_path(image_path)
    settle(qtbot, window)
    gate = Gate()
    monkeypatch.setattr(pyramid_tool, "level_view", gate.endless_job)
    window.controller.set_level(3)
    qtbot.waitUntil(gate.entered.is_set)
    runner = window.controller.runner
    window.close()
    assert runner.active_threads() == 0  # close waited for the job to stop
    QApplication.processEvents()  # its late signals arrive
    assert not runner.busy
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QApplication.processEvents()
    err = capfd.readouterr().err
    assert "Internal C++ object" not in err and "Traceback" not in err


def test_opening_another_file_while_a_job_runs_replaces_it(qtbot, opened, tmp_path, monkeypatch):
    gate = Gate()
    real_build = jobs.build_pyramid

    def slow_then_real(request):
        if request.image.shape[:2] == (45, 61):
            yield from gate.endless_job(request)
        yield from real_build(request)

    monkeypatch.setattr(controller_module, "build_pyramid", slow_then_real)
    opened.controller.set_depth(3)  # rebuild the first image's pyramid: stuck in the gate
    qtbot.waitUntil(gate.entered.is_set)
    second = tmp_path / "second.png"
    save_image(second, random_image((33, 20), np.uint16, None, seed=2))
    opened.controller.open_path(str(second))
    settle(qtbot, opened)
    assert opened.controller.loaded.path == str(second)
    assert opened.tab("pyramid").source.layer.shape == (33, 20)
    assert opened.controller.pyramid.gaussian[0].shape == (33, 20)
    still_works(qtbot, opened)


# ------------------------------------------------------------------------------------ injected faults


def raising(error: BaseException):
    def job(*args: object, **kwargs: object):
        raise error

    return job


def opencv_error() -> cv2.error:
    """A real cv2.error, with OpenCV's multi-line text naming its C++ source file."""
    try:
        cv2.pyrDown(np.zeros((0, 0), np.uint8))
    except cv2.error as error:
        return error
    raise AssertionError("OpenCV accepted an empty image")


@pytest.mark.parametrize(
    ("error", "words"),
    [
        (RuntimeError("engine exploded"), "RuntimeError: engine exploded"),
        (MemoryError(), "out of memory"),
        (opencv_error(), "OpenCV error in pyrDown_: !_src.empty()"),
    ],
    ids=["exception", "memory-error", "cv2-error"],
)
def test_a_failing_engine_step_is_reported_and_the_window_keeps_working(qtbot, opened, monkeypatch,
                                                                         tmp_path, error, words):
    with reporting(opened, tmp_path) as reporter:
        monkeypatch.setattr(pyramid_tool, "residual", raising(error))  # used by the level view job
        opened.controller.set_level(2)
        qtbot.waitUntil(opened.banner.isVisible)
        message = opened.banner.label.text()
        assert words in message and "\n" not in message
        monkeypatch.undo()
        still_works(qtbot, opened)
    assert reporter.dialog.count == 0  # a job error is expected: the banner, not the crash dialog


def test_out_of_memory_building_a_new_images_pyramid_leaves_its_source_shown_and_the_rest_failed(
        qtbot, opened, tmp_path, monkeypatch):
    monkeypatch.setattr(jobs, "laplacian_pyramid", raising(MemoryError()))
    second = tmp_path / "second.png"
    save_image(second, random_image((30, 30), np.uint8, None))
    opened.controller.open_path(str(second))
    qtbot.waitUntil(opened.banner.isVisible)
    assert "out of memory" in opened.banner.label.text()
    monkeypatch.undo()
    tab = opened.tab("pyramid")
    assert opened.controller.pyramid is None  # the image is shown before its pyramid, which failed
    assert tab.source.layer is not None and tab.source.layer.shape[:2] == (30, 30) and not tab.source.is_stale
    assert "failed" in tab.gaussian.title() and "computing" not in tab.gaussian.title()
    assert tab.gaussian.layer is None and tab.gaussian.is_stale  # nothing of the first image's is left
    still_works(qtbot, opened)


def test_an_exception_in_a_slot_shows_the_error_window_and_the_app_goes_on(qtbot, opened, tmp_path):
    calls = []

    def broken_slot(_tool: str, view: object) -> None:
        calls.append(view)
        raise KeyError("a slot that fails")

    with reporting(opened, tmp_path) as reporter:
        opened.controller.result_ready.connect(broken_slot)
        opened.controller.set_level(2)
        qtbot.waitUntil(reporter.dialog.isVisible)
        opened.controller.result_ready.disconnect(broken_slot)
        assert "KeyError" in reporter.dialog.text() and "broken_slot" in reporter.dialog.detailedText()
        still_works(qtbot, opened)
    assert "a slot that fails" in (tmp_path / LOG_NAME).read_text(encoding="utf-8")
    reporter.dialog.close()


# ------------------------------------------------------------------------------------------- memory


def test_an_image_above_the_memory_budget_is_refused_and_a_preview_offered(qtbot, opened, tmp_path,
                                                                          monkeypatch):
    before = opened.controller.loaded
    big = tmp_path / "big.png"
    save_image(big, random_image((600, 800), np.uint8, 3, seed=3))
    monkeypatch.setenv(ENV_VARIABLE, "8M")
    opened.controller.open_path(str(big))
    qtbot.waitUntil(opened.banner.action.isVisible)
    message = opened.banner.label.text()
    assert message.startswith("big.png: exploring 800 x 600 x 3 uint8") and "8.0 MB" in message
    assert opened.controller.loaded is before  # the current image stays
    steps = int(opened.banner.action.text().split("downscaled ")[1].split("x")[0]).bit_length() - 1
    assert f"downscaled {2 ** steps}x" in message
    qtbot.mouseClick(opened.banner.action, Qt.MouseButton.LeftButton)
    settle(qtbot, opened)
    h, w = 600, 800
    for _ in range(steps):
        h, w = (h + 1) // 2, (w + 1) // 2
    assert opened.controller.loaded.image.shape == (h, w, 3)
    assert f"preview, 1/{2 ** steps} scale" in opened.windowTitle()
    assert not opened.banner.isVisible()
    still_works(qtbot, opened)


def test_a_malformed_budget_setting_is_one_line_in_the_window(qtbot, opened, image_path, monkeypatch):
    monkeypatch.setenv(ENV_VARIABLE, "plenty")
    opened.controller.open_path(image_path)
    qtbot.waitUntil(opened.banner.isVisible)
    assert opened.banner.label.text().startswith(f"{ENV_VARIABLE}: memory budget 'plenty' is not a size")
    monkeypatch.delenv(ENV_VARIABLE)
    still_works(qtbot, opened)


# -------------------------------------------------------------------------------------------- launch


def log_files() -> list[Path]:
    return [Path(h.baseFilename) for h in logging.getLogger().handlers if isinstance(h, logging.FileHandler)]


def test_launch_installs_the_hooks_and_the_log_for_the_session(qapp, tmp_path, monkeypatch):
    """An interactive run logs to the platform log folder and reports unexpected errors; both are
    removed when the event loop ends. (The event loop itself is replaced: this test only looks.)"""
    monkeypatch.setattr(errors, "log_folder", lambda: tmp_path / "log")
    monkeypatch.setattr(launch, "QSettings", lambda *_: QSettings(str(tmp_path / "s.ini"),
                                                                  QSettings.Format.IniFormat))
    hooks = (sys.excepthook, threading.excepthook)
    seen = {}

    def event_loop(app: QApplication) -> int:
        seen["hooks"] = (sys.excepthook, threading.excepthook)
        seen["logs"] = log_files()
        return 0

    monkeypatch.setattr(QApplication, "exec", event_loop)
    image = tmp_path / "in.png"
    save_image(image, random_image((20, 30), np.uint8, 3))
    assert launch.run(argparse.Namespace(image=str(image), screenshot=None, view=None, level=None)) == 0
    assert seen["hooks"][0] is not hooks[0] and seen["hooks"][1] is not hooks[1]
    assert tmp_path / "log" / LOG_NAME in seen["logs"]
    assert (sys.excepthook, threading.excepthook) == hooks
    assert tmp_path / "log" / LOG_NAME not in log_files()


def test_screenshot_write_is_atomic(qtbot, window, tmp_path, monkeypatch):
    target = tmp_path / "shot.png"
    target.write_bytes(b"an earlier screenshot")
    monkeypatch.setattr(QImage, "save", lambda *args: False)
    with pytest.raises(ImageSaveError, match="the PNG encoder failed"):
        launch.save_png(window.grab().toImage(), str(target))
    monkeypatch.undo()
    assert target.read_bytes() == b"an earlier screenshot"
    with pytest.raises(ImageSaveError, match="does not exist"):
        launch.save_png(window.grab().toImage(), str(tmp_path / "missing" / "shot.png"))
    launch.save_png(window.grab().toImage(), str(target))
    assert cv2.imread(str(target)).shape[:2] == (window.height(), window.width())
    assert [p.name for p in tmp_path.iterdir() if p.name != "settings.ini"] == ["shot.png"]


# -------------------------------------------------------------------------------------------- export


def export_request(window, out: Path, force: bool = False) -> ExportRequest:
    options = ExportOptions(kinds=("gaussian", "laplacian"), fmt="tiff", force=force)
    return ExportRequest(window.controller.loaded.image, str(out), options)


def test_a_disk_filling_up_during_an_export_keeps_the_earlier_files(qtbot, opened, tmp_path, monkeypatch):
    out = tmp_path / "out"
    with qtbot.waitSignal(opened.controller.export_finished, timeout=20_000):
        opened.controller.export(export_request(opened, out))
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    real = image_io._create_temporary
    created = []

    def disk_full_on_the_third_file(folder: str, name: str):
        created.append(name)
        temporary, fh = real(folder, name)
        if len(created) == 3:
            fh.close()
            os.unlink(temporary)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return temporary, fh

    monkeypatch.setattr(image_io, "_create_temporary", disk_full_on_the_third_file)
    opened.controller.export(export_request(opened, out, force=True))
    qtbot.waitUntil(opened.banner.isVisible)
    monkeypatch.undo()
    assert "No space left on device" in opened.banner.label.text()
    assert "2 file(s) written before the failure" in opened.banner.label.text()
    after = {path.name: path.read_bytes() for path in out.iterdir()}
    assert set(after) == set(before)  # no temporary file, nothing missing
    third = sorted(name for name in before if name != MANIFEST_NAME)[2]
    assert after[third] == before[third]
    still_works(qtbot, opened)


def test_closing_the_window_during_an_export_stops_it_between_files(qtbot, settings_store, image_path,
                                                                    tmp_path, monkeypatch):
    window = MainWindow(settings_store)
    window.show()
    window.controller.open_path(image_path)
    settle(qtbot, window)
    real = export_module._write_item
    written = []

    def slow_write(*args: object, **kwargs: object):
        record = real(*args, **kwargs)
        written.append(record.name)
        time.sleep(0.05)  # a large file takes a while: the close comes between two of them
        return record

    monkeypatch.setattr(export_module, "_write_item", slow_write)
    out = tmp_path / "out"
    window.controller.export(export_request(window, out))
    qtbot.waitUntil(lambda: len(written) >= 2)
    runner = window.controller.runner
    window.close()
    assert runner.active_threads() == 0
    manifest = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["status"] == "cancelled"
    listed = [entry["file"] for entry in manifest["files"]]
    assert listed == written and len(listed) < 2 * window.controller.pyramid.levels
    assert sorted(path.name for path in out.iterdir()) == sorted([*listed, MANIFEST_NAME])
    for entry in manifest["files"]:  # every file written is complete
        assert list(tifffile.imread(out / entry["file"]).shape) == entry["shape"]
    window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
