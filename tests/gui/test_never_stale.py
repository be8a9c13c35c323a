"""Never stale (issue 15, item 1): in the frame of any change, what no longer answers the state is
cleared or marked out of date; cancelled work says so; the readout follows; "Ready" is true."""

from __future__ import annotations

import dataclasses
import threading

import pytest
from guitools import make_image, wait_idle, write_png
from PySide6.QtCore import Qt

from pyramid_explorer.core.pyramid import max_levels
from pyramid_explorer.jobs import Progress
from pyramid_explorer.tools import compare as compare_tool
from pyramid_explorer.tools import pyramid as pyramid_tool


@pytest.fixture
def opened(open_image):
    return open_image(40, 56)


@pytest.fixture
def gate(monkeypatch):
    """Every Pyramid and Compare job waits (yielding progress, so it can be cancelled) until the gate
    is set: a job made as slow as a large image's."""
    gate = threading.Event()

    def gated(job):
        def run(request):
            while not gate.is_set():
                yield Progress(0, 0, "held by the test")
            yield from job(request)
        return run

    monkeypatch.setattr(pyramid_tool, "level_view", gated(pyramid_tool.level_view))
    monkeypatch.setattr(compare_tool, "compare", gated(compare_tool.compare))
    yield gate
    gate.set()


def served_panels(window):
    return [p for name in ("pyramid", "compare") for p in window.tab(name).served_panels]


def test_a_new_image_clears_every_panel_in_the_frame_it_arrives(qtbot, opened, gate, tmp_path):
    gate.set()
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    gate.clear()
    kept = [p.layer for tab in opened.tool_tabs.values() for p in tab.panels if p.layer is not None]
    old_layers = {id(layer) for layer in kept}  # kept alive, so no new layer can reuse an id
    assert old_layers
    seen: list[tuple[str, str, bool]] = []

    def check(loaded):  # runs right after the window's own handler of the same signal
        for tab in opened.tool_tabs.values():
            for panel in tab.panels:
                old = panel.layer is not None and id(panel.layer) in old_layers
                seen.append((panel.title(), loaded.name, old))
        seen.append(("levels", loaded.name, opened.level_panel.model.rowCount() > 0))

    opened.controller.image_loaded.connect(check)
    opened.controller.open_path(write_png(tmp_path / "second.png", make_image(30, 44)))
    qtbot.waitUntil(lambda: bool(seen))
    qtbot.waitUntil(lambda: opened.controller.pyramid is not None
                    and opened.controller.pyramid.image_id == opened.controller.loaded.image_id)
    for title, name, old in seen:
        assert not old, f"{title!r} still shows the previous image"
        if title != "levels" and not title.startswith("Source"):
            assert name in title, title
    compare = opened.tab("compare")
    assert all(p.layer is None and p.is_stale for p in compare.panels)
    assert "second.png" in compare.mode_panels["lanczos"].stale_text()
    assert opened.status_message() != "Ready"
    gate.set()
    wait_idle(qtbot, opened)
    assert not any(p.is_stale for p in compare.panels)
    assert all(id(p.layer) not in old_layers for p in compare.panels if p.layer is not None)
    assert opened.status_message() == "Ready"


def test_a_level_change_marks_the_panels_out_of_date_until_they_are_redrawn(qtbot, opened, gate):
    tab = opened.tab("pyramid")
    assert opened.status_message() == "Ready"
    opened.controller.set_level(2)
    for panel in (tab.gaussian, tab.laplacian, tab.residual):  # at once, not after the debounce
        assert panel.is_stale and panel.title().startswith("[out of date]")
        assert "level 2" in panel.stale_text()
    assert not tab.source.is_stale  # the source does not depend on the level
    assert opened.status_message() != "Ready"
    qtbot.waitUntil(lambda: opened.cancel_button.isVisible())
    assert opened.status_message() != "Ready"
    gate.set()
    wait_idle(qtbot, opened)
    assert opened.status_message() == "Ready"
    assert not any(p.is_stale for p in tab.panels if p.isVisible())
    assert "G[2]" in tab.residual.title() and tab.gaussian.layer.level == 2


def test_cached_results_make_the_panels_current_again(qtbot, opened):
    tab = opened.tab("pyramid")
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    opened.controller.set_level(0)  # cached: marked at once, drawn again without a job
    assert tab.gaussian.is_stale
    wait_idle(qtbot, opened)
    assert not any(p.is_stale for p in tab.panels if p.isVisible()) and opened.status_message() == "Ready"


def test_escape_leaves_cancelled_and_no_title_says_computing(qtbot, opened, monkeypatch):
    real = compare_tool.compare
    stop = threading.Event()

    def images_then_stall(request):  # the images arrive, their PSNR/SSIM never does
        for item in real(request):
            if getattr(item, "psnr", None) is not None:
                while not stop.is_set():  # progress in a tight loop: it must not flood the GUI thread
                    yield Progress(0, 0, "held before the metrics")
            yield item

    monkeypatch.setattr(compare_tool, "compare", images_then_stall)
    try:
        opened.show_view("compare")
        tab = opened.tab("compare")
        qtbot.waitUntil(lambda: not any(p.is_stale for p in tab.panels) and opened.render_queue.empty
                        and any("computing" in p.title() for p in tab.panels), timeout=60_000)
        opened.controller.set_level(1)  # dims them, and Esc then comes before the next job's results
        opened.tabs.currentWidget().setFocus()
        qtbot.keyClick(opened.tabs.currentWidget(), Qt.Key.Key_Escape)
    finally:
        stop.set()
    qtbot.waitUntil(opened.is_settled, timeout=60_000)
    assert opened.status_message() == "Cancelled"
    for panel in tab.panels:
        assert "computing" not in panel.title()
        assert "computing" not in panel.stale_text()
        assert not panel.is_stale or "cancelled" in panel.stale_text()
    assert any(p.is_stale for p in tab.panels)


def test_readout_is_redone_on_every_change(qtbot, opened):
    tab = opened.tab("pyramid")
    tab.source.hovered.emit(20.0, 16.0)
    before = opened.readout_label.text()
    assert "G[0]" in before
    opened.controller.set_level(2)
    assert "out of date" in opened.readout_label.text()  # at once, not at the next hover
    wait_idle(qtbot, opened)
    after = opened.readout_label.text()
    assert "G[2]" in after and "G[0]" not in after
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    compare = opened.tab("compare")
    compare.mode_panels["nearest"].hovered.emit(20.0, 16.0)
    plain = opened.readout_label.text()
    opened.actions["difference"].trigger()
    wait_idle(qtbot, opened)
    assert opened.readout_label.text() != plain and "- G[2]" in opened.readout_label.text()


def test_levels_dock_is_emptied_while_a_new_image_is_built(qtbot, opened, tmp_path):
    seen: list[tuple[int, bool]] = []
    levels = opened.level_panel
    opened.controller.image_loaded.connect(
        lambda _loaded: seen.append((levels.model.rowCount(), levels.table.isEnabled())))
    opened.controller.open_path(write_png(tmp_path / "other.png", make_image(20, 24)))
    qtbot.waitUntil(lambda: bool(seen))
    assert seen[0] == (0, False)
    wait_idle(qtbot, opened)
    assert opened.level_panel.model.rowCount() == opened.controller.pyramid.levels
    assert opened.level_panel.table.isEnabled()


def test_panels_a_setting_does_not_change_become_current_again(qtbot, opened):
    """A new transposed-convolution setting outdates the Compare tab; the nine mode panels get their
    cached layers back (the very layers they draw) and must say current, not "out of date" for good."""
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    tab = opened.tab("compare")
    before = {p.name: p.layer for p in tab.mode_panels.values()}
    opened.controller.set_deconv(dataclasses.replace(compare_tool.DEFAULT_DECONV, kernel_size=6))
    assert all(p.is_stale for p in tab.mode_panels.values())
    wait_idle(qtbot, opened)
    assert [p.name for p in tab.panels if p.isVisible() and p.is_stale] == []
    assert all(before[p.name] is p.layer for p in tab.mode_panels.values() if p.name in before)
    assert opened.status_message() == "Ready"


def test_a_layer_queued_before_a_change_is_never_drawn_after_it(qtbot, opened):
    opened.show_view("pyramid")
    wait_idle(qtbot, opened)
    panel = opened.tab("pyramid").gaussian
    old = panel.layer
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    level_one = panel.layer
    assert level_one is not old
    opened.render_queue.show(panel, old, "level 0, queued before the change")
    panel.mark_stale("computing level 2...")  # the state changes while the old layer waits
    qtbot.waitUntil(lambda: opened.render_queue.empty)
    assert panel.layer is level_one and panel.is_stale


def test_after_a_cancel_the_next_change_says_computing_again(qtbot, opened, gate):
    opened.show_view("compare")  # its job is held by the gate
    tab = opened.tab("compare")
    qtbot.waitUntil(lambda: opened.cancel_button.isVisible())
    opened.controller.cancel()
    assert all("cancelled" in p.title() for p in tab.panels)
    opened.controller.set_level(1)
    for panel in tab.panels:
        assert "cancelled" not in panel.title() and "computing" in panel.title(), panel.title()
        assert "cancelled" not in panel.caption.toolTip()
    gate.set()
    wait_idle(qtbot, opened)
    assert not any("cancelled" in p.title() or p.is_stale for p in tab.panels)


def test_a_new_image_shows_its_own_depth_before_its_pyramid(qtbot, opened, tmp_path):
    """The Levels dock drops the previous image's rows and count the moment a new image arrives: a
    cancelled build must not leave the previous image's "Levels built" beside the new image."""
    panel = opened.level_panel
    assert panel.depth.value() == max_levels((40, 56)) == 7
    seen: list[tuple[int, int, int]] = []
    opened.controller.image_loaded.connect(  # runs right after the window's own handler
        lambda _loaded: seen.append((panel.depth.maximum(), panel.depth.value(), panel.model.rowCount())))
    opened.controller.open_path(write_png(tmp_path / "wide.png", make_image(300, 500)))
    wait_idle(qtbot, opened)
    assert seen == [(10, 10, 0)]  # max_levels((300, 500)): ten levels asked for, no rows yet
    assert panel.depth.value() == 10 and panel.model.rowCount() == 10


def test_readout_of_a_point_a_smaller_new_image_lacks_says_it_is_outside(qtbot, opened, tmp_path):
    tab = opened.tab("pyramid")
    tab.source.hovered.emit(50.0, 30.0)  # inside the 56x40 image
    assert "G[0]" in opened.readout_label.text()
    opened.controller.open_path(write_png(tmp_path / "small.png", make_image(20, 24)))
    wait_idle(qtbot, opened)
    assert opened.readout_label.text() == "source (50.0, 30.0): outside the image"
