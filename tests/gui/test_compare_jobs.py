"""The Compare job in the window: its numbers computed on several threads, cancelled or superseded
without a thread left running or a stale number shown; exports running alongside the views."""

from __future__ import annotations

import threading

import pytest
from guitools import wait_idle

from pyramid_explorer.app import controller as controller_module
from pyramid_explorer.core.metrics import SsimBatch
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.jobs import STEP_THREAD_PREFIX, Progress
from pyramid_explorer.tools import compare as compare_tool
from pyramid_explorer.tools.compare import ModeResult


class MetricsGate:
    """Holds the Compare job's metrics of the level `level` (its first SSIM step, on a step thread) until
    released, as a long SSIM would."""

    def __init__(self, level_shape: tuple[int, ...]) -> None:
        self.shape = level_shape
        self.entered = threading.Event()
        self.release = threading.Event()

    def ssim_batch(self, fine, candidates, data_range):
        batch = SsimBatch(fine, candidates, data_range)
        if fine.shape != self.shape:
            return batch
        parts = batch.parts

        def held_parts(count):
            first, *rest = parts(count)

            def held():
                self.entered.set()
                assert self.release.wait(20)
                first()

            return [held, *rest]

        batch.parts = held_parts
        return batch


def step_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(STEP_THREAD_PREFIX)]


@pytest.fixture
def opened(open_image):
    return open_image(45, 61)


@pytest.fixture
def delivered(opened):
    """Every Compare result the controller delivers to the tab, in order."""
    items: list[object] = []
    opened.controller.result_ready.connect(lambda tool, r: tool == "compare" and items.append(r))
    return items


def numbers_at(results, level):
    return [r for r in results if r.level == level and r.psnr is not None]


def test_the_window_shows_the_numbers_of_the_plain_metrics(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    p = opened.controller.pyramid
    plain = [r for r in compare_tool.compare(compare_tool.CompareRequest(p, 0, threads=1))
             if isinstance(r, ModeResult) and r.psnr is not None]
    shown = opened.tab("compare").results
    assert [(r.mode, r.psnr, r.ssim) for r in plain] == [(m, r.psnr, r.ssim) for m, r in shown.items()]


def test_cancelling_midway_leaves_no_thread_and_no_numbers(qtbot, opened, delivered, monkeypatch):
    gate = MetricsGate(opened.controller.pyramid.gaussian[0].shape)
    monkeypatch.setattr(compare_tool, "_ssim_batch", gate.ssim_batch)
    opened.show_view("compare")
    qtbot.waitUntil(gate.entered.is_set, timeout=20_000)  # the images made or under way, the metrics held
    opened.controller.cancel()
    gate.release.set()
    qtbot.waitUntil(lambda: not opened.controller.runner.busy, timeout=20_000)
    qtbot.waitUntil(opened.is_settled)
    assert step_threads() == []
    assert opened.controller.runner.active_threads() == 0
    assert numbers_at(delivered, 0) == []
    tab = opened.tab("compare")  # the images that arrived before the cancel stay, without numbers,
    # and their titles say the numbers were cancelled, not that they are still being computed
    assert all(r.psnr is None and "PSNR/SSIM cancelled" in tab.mode_panels[mode].title()
               and "computing" not in tab.mode_panels[mode].title() for mode, r in tab.results.items())


def test_a_level_change_drops_the_superseded_numbers(qtbot, opened, delivered, monkeypatch):
    c = opened.controller
    gate = MetricsGate(c.pyramid.gaussian[0].shape)
    monkeypatch.setattr(compare_tool, "_ssim_batch", gate.ssim_batch)
    opened.show_view("compare")
    qtbot.waitUntil(gate.entered.is_set, timeout=20_000)
    c.set_level(1)
    c.refresh()  # the level-1 job supersedes the held one now
    gate.release.set()
    wait_idle(qtbot, opened)
    assert numbers_at(delivered, 0) == []
    cached = [c.cache.get(("mode", c.pyramid.image_id, 0, mode)) for mode in MODES]
    assert numbers_at([r for r in cached if r is not None], 0) == []
    shown = opened.tab("compare").results
    assert shown and all(r.level == 1 and r.psnr is not None for r in shown.values())
    assert step_threads() == []


def test_an_export_blocked_midway_does_not_hold_up_a_level_change(qtbot, opened, monkeypatch):
    c, entered, release = opened.controller, threading.Event(), threading.Event()

    def blocked_export(_request):
        yield Progress(0, 2, "a long test export")
        entered.set()
        assert release.wait(20)
        yield Progress(1, 2, "a long test export")

    monkeypatch.setattr(controller_module, "export_tool", blocked_export)
    c.export_tool(object())
    qtbot.waitUntil(entered.is_set, timeout=20_000)
    c.set_level(2)
    pyramid_tab = opened.tab("pyramid")
    qtbot.waitUntil(lambda: pyramid_tab.gaussian.layer is not None and pyramid_tab.gaussian.layer.level == 2,
                    timeout=20_000)
    assert not release.is_set() and c.runner.is_current("export")  # the export is still held
    release.set()
    wait_idle(qtbot, opened)
    assert not c.runner.is_current("export")


def test_a_difference_asked_for_before_it_exists_says_computing_and_never_shows_the_image(
        qtbot, opened, monkeypatch):
    """The differences are made after every image: "Show difference" ticked before a panel's exists
    draws "computing" there, not the upsampled image, and the difference once it arrives."""
    entered, release = threading.Event(), threading.Event()
    make_difference = compare_tool._difference

    def held(up, reference_mean):
        entered.set()
        assert release.wait(20)
        return make_difference(up, reference_mean)

    monkeypatch.setattr(compare_tool, "_difference", held)
    opened.show_view("compare")
    qtbot.waitUntil(entered.is_set, timeout=20_000)
    tab = opened.tab("compare")
    qtbot.waitUntil(lambda: set(tab.results) == set(MODES), timeout=20_000)  # every image is in
    panel = tab.mode_panels["nearest"]
    assert panel.layer is tab.results["nearest"].image and tab.results["nearest"].difference is None
    tab.difference.setChecked(True)
    qtbot.waitUntil(lambda: panel.layer is None)
    assert "computing the difference from G[0]" in panel._message.text()
    assert panel.title().startswith("Nearest - G[0] (channel mean): PSNR/SSIM computing")
    release.set()
    wait_idle(qtbot, opened)
    result = tab.results["nearest"]
    assert result.difference is not None and panel.layer is result.difference
    assert panel.title().startswith("Nearest - G[0] (channel mean): PSNR ")
