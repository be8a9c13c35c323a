"""200 random changes to the real window as fast as events can be sent, then: the display matches the
final settings, nothing was logged, no thread is left, and memory is back where it was.

Memory is compared after a warm-up round of the same kind of changes, with a small result cache so
that the warm-up fills it: what the second round adds beyond allocator noise (10 %) is a leak. RSS is
read from /proc/self/statm after a garbage collection and glibc's `malloc_trim`, so freed memory is
returned to the OS before it is measured.
"""

from __future__ import annotations

import ctypes
import gc
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from helpers import random_image
from PySide6.QtCore import QThreadPool
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.controller import Controller
from pyramid_explorer.app.errors import LOG_NAME, ErrorReporter, start_log_file, stop_log_file
from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.core.deconv import KERNELS
from pyramid_explorer.core.io import save_image

CHANGES = 200
CACHE_BUDGET = 16 << 20


def resident_bytes() -> int:
    """The process's resident memory after returning freed memory to the OS where possible."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def random_changes(qtbot, window: MainWindow, rng: np.random.Generator, count: int) -> None:
    """`count` random user actions on the widgets, each followed by one turn of the event loop and
    now and then by a pause of up to 40 ms, long enough for the debounce to start a job that the
    next changes must then supersede mid-flight."""
    panel, compare, pyramid = window.level_panel, window.tab("compare"), window.tab("pyramid")
    actions = [
        lambda: panel.level.setValue(int(rng.integers(panel.level.minimum(), panel.level.maximum() + 1))),
        lambda: window.controller.step_level(int(rng.choice([-1, 1]))),
        lambda: window.tabs.setCurrentIndex(int(rng.integers(0, 2))),
        lambda: pyramid.layout_combo.setCurrentIndex(int(rng.integers(0, pyramid.layout_combo.count()))),
        lambda: compare.controls.kernel_size.setValue(int(rng.integers(1, 6))),
        lambda: compare.controls.stride.setValue(int(rng.integers(1, 4))),
        lambda: compare.controls.kernel.setCurrentIndex(int(rng.integers(0, len(KERNELS)))),
        lambda: compare.difference.setChecked(bool(rng.integers(0, 2))),
        lambda: panel.lock_contrast.setChecked(bool(rng.integers(0, 2))),
        lambda: panel.depth.setValue(int(rng.integers(2, panel.depth.maximum() + 1))),
    ]
    weights = np.array([6, 3, 2, 2, 2, 2, 1, 1, 1, 1], float)
    for choice in rng.choice(len(actions), size=count, p=weights / weights.sum()):
        actions[choice]()
        QApplication.processEvents()
        if rng.random() < 0.3:
            qtbot.wait(int(rng.integers(0, 41)))


def assert_display_matches_settings(window: MainWindow, source: np.ndarray) -> None:
    c = window.controller
    levels = [source]
    while len(levels) < c.pyramid.levels:
        levels.append(cv2.pyrDown(levels[-1]))  # independent reference for what a level holds
    assert window.level_panel.level.value() == c.level < c.pyramid.levels
    assert c.view == ("pyramid", "compare")[window.tabs.currentIndex()]
    assert c.settings["deconv"] == window.tab("compare").controls.settings()
    assert c.settings["layout_kind"] == window.tab("pyramid").layout_kind
    assert c.pyramid.levels == window.level_panel.depth.value()
    if c.view == "pyramid" and c.settings["layout_kind"] == "panels":
        pv = window.tab("pyramid")
        assert pv.gaussian.layer.level == pv.laplacian.layer.level == pv.residual.layer.level == c.level
        assert np.array_equal(pv.gaussian.layer.data, levels[c.level])
    elif c.view == "pyramid":
        assert window.tab("pyramid").mosaic.layer.data.shape[1] == source.shape[1] + levels[1].shape[1]
    elif c.level < c.pyramid.levels - 1:
        cv = window.tab("compare")
        shown = [panel for panel in cv.mode_panels.values() if panel.layer is not None]
        assert {panel.layer.level for panel in shown} == {c.level}
        assert len(shown) == len(cv.mode_panels) - (min(levels[c.level].shape[:2]) < 2)  # unpool needs 2x2
        assert cv.deconv_result.settings == c.settings["deconv"] and cv.deconv_result.level == c.level
        assert all(result.psnr is not None for result in cv.results.values())


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="reads RSS from /proc (Linux)")
def test_two_hundred_random_changes(qtbot, settings_store, tmp_path, monkeypatch):
    source = random_image((480, 640), np.uint8, 3, seed=11)
    path = tmp_path / "stress.png"
    save_image(path, source)
    window = MainWindow(settings_store, persist=False, controller=Controller(memory_budget=CACHE_BUDGET))
    qtbot.addWidget(window)
    window.show()
    handler = start_log_file(tmp_path)
    reporter = ErrorReporter(window, tmp_path / LOG_NAME)
    reporter.install()
    try:
        window.controller.open_path(str(path))
        qtbot.waitUntil(lambda: window.controller.pyramid is not None and window.is_settled(), timeout=20_000)
        threads = {t.ident for t in threading.enumerate()}
        rng = np.random.default_rng(2024)
        random_changes(qtbot, window, rng, CHANGES)  # warm-up: fills the cache and every lazy structure
        qtbot.waitUntil(window.is_settled, timeout=60_000)
        before = resident_bytes()
        submitted = []
        runner = window.controller.runner
        real_submit = runner.submit
        monkeypatch.setattr(runner, "submit", lambda *args: submitted.append(1) or real_submit(*args))
        random_changes(qtbot, window, rng, CHANGES)
        qtbot.waitUntil(window.is_settled, timeout=60_000)
        after = resident_bytes()
        assert len(submitted) >= 5  # the second round computed, not only read the cache
        assert_display_matches_settings(window, source)
        assert not window.banner.isVisible()
        assert reporter.dialog.count == 0
    finally:
        reporter.uninstall()
        stop_log_file(handler)
        window.close()
    assert (tmp_path / LOG_NAME).read_text(encoding="utf-8") == ""
    assert window.controller.runner.active_threads() == 0
    assert QThreadPool.globalInstance().activeThreadCount() == 0
    assert {t.ident for t in threading.enumerate()} <= threads
    assert after <= before * 1.10, f"resident memory grew from {before >> 20} MiB to {after >> 20} MiB"
    assert window.controller.cache.used <= window.controller.cache.budget
