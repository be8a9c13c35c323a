"""The launch path (issue 13): the source image is drawn before its pyramid exists, and a tab is built
only when first shown (or asked for), with the state and settings it missed."""

from __future__ import annotations

import threading

import numpy as np
from guitools import make_image, open_and_wait, wait_idle, write_png

from pyramid_explorer import jobs
from pyramid_explorer.core.deconv import DeconvSettings
from pyramid_explorer.core.pyramid import gaussian_pyramid
from pyramid_explorer.tools.registry import NAMES


def test_the_source_is_drawn_while_the_pyramid_is_still_being_built(qtbot, window, tmp_path, monkeypatch):
    release, entered = threading.Event(), threading.Event()
    build = jobs.laplacian_pyramid

    def blocked(*args, **kwargs):
        entered.set()
        release.wait(30)
        return build(*args, **kwargs)

    monkeypatch.setattr(jobs, "laplacian_pyramid", blocked)
    image = make_image(45, 61)
    tab = window.tab("pyramid")
    try:
        window.controller.open_path(write_png(tmp_path / "a.png", image))
        qtbot.waitUntil(lambda: tab.source.layer is not None and entered.is_set())
        qtbot.waitUntil(lambda: window.render_queue.empty)
        assert window.controller.pyramid is None  # the pyramid waits in laplacian_pyramid
        np.testing.assert_array_equal(tab.source.layer.data, image)
        assert not tab.source.is_stale and tab.source.title().startswith("Source: ")
        for panel in (tab.gaussian, tab.laplacian, tab.residual):
            assert panel.is_stale and panel.layer is None
            assert "computing" in panel.title() and "a.png" in panel.title()
        assert not window.all_current()
        # what the worker computes now: its progress, or the open's message if that came after it
        assert window.status_message() in ("Laplacian pyramid", "Opened a.png; building its pyramid...")
    finally:
        release.set()
    wait_idle(qtbot, window)
    assert window.status_message() == "Ready"
    assert not any(p.is_stale for p in tab.level_panels)
    np.testing.assert_array_equal(tab.gaussian.layer.data, gaussian_pyramid(image, 1)[0])


def test_only_the_visible_tab_is_built_at_launch(window):
    assert list(window.tool_tabs) == [NAMES[0]]
    assert window.tabs.currentWidget() is window.tool_tabs[NAMES[0]]


def test_the_compare_tab_is_built_ahead_while_idle_and_computes_only_once_shown(qtbot, opened):
    """Built hidden once the window is settled (its ten panels held the GUI thread 50-90 ms on the click),
    it computes nothing until shown, and showing it builds nothing more."""
    qtbot.waitUntil(lambda: "compare" in opened.tool_tabs, timeout=5_000)
    tab = opened.tool_tabs["compare"]
    assert opened.tabs.currentWidget() is not tab and not tab.isVisible()
    assert opened.is_settled() and tab.results == {} and all(p.layer is None for p in tab.panels)
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    assert tab.results == {}
    opened.show_view("compare")
    assert opened.tab("compare") is tab and opened.tabs.currentWidget() is tab
    wait_idle(qtbot, opened)
    assert set(tab.results) == set(tab.mode_panels)
    assert all(r.level == 1 and r.psnr is not None for r in tab.results.values())
    assert not any(p.is_stale for p in tab.panels)


def test_a_tab_built_on_demand_shows_the_current_level(qtbot, window, tmp_path, monkeypatch):
    monkeypatch.setattr(window.prebuild, "start", lambda: None)  # Compare is built on the click below
    opened = open_and_wait(qtbot, window, write_png(tmp_path / "src.png", make_image()))
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    assert "compare" not in opened.tool_tabs
    opened.show_view("compare")
    tab = opened.tab("compare")
    assert opened.tabs.currentWidget() is tab
    wait_idle(qtbot, opened)
    pyramid = opened.controller.pyramid
    assert set(tab.results) == set(tab.mode_panels)
    for mode, panel in tab.mode_panels.items():
        assert not panel.is_stale and panel.layer is not None, mode
        assert tab.results[mode].level == 1
        assert panel.layer.shape[:2] == pyramid.gaussian[1].shape[:2]
    assert opened.status_message() == "Ready"


def test_a_tab_asked_for_before_it_is_shown_is_wired_like_the_others(qtbot, opened):
    tab = opened.tab("compare")  # built now, in its place, without a tab change
    assert opened.tabs.widget(NAMES.index("compare")) is tab
    assert opened.tabs.currentIndex() == 0 and opened.controller.view == NAMES[0]
    opened.actions["difference"].setChecked(True)
    assert tab.difference.isChecked()
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    assert all(not p.is_stale and p.layer is not None for p in tab.mode_panels.values())
    assert all(p.layer.signed for p in tab.mode_panels.values())  # differences from G[i]


def test_settings_chosen_before_a_tab_is_built_apply_to_it(qtbot, make_window, settings_store, tmp_path):
    first = make_window()
    first.show_view("kernels")
    first.close()
    second = make_window(settings_store)  # restored on the Kernels tab: only that one is built
    assert list(second.tool_tabs) == ["kernels"] and second.tabs.currentWidget() is second.tab("kernels")
    second.controller.open_path(write_png(tmp_path / "a.png", make_image()))
    wait_idle(qtbot, second)
    chosen = DeconvSettings(3, 2, "box")
    controls = second.tab("kernels").controls
    controls.kernel_size.setValue(3)
    controls.kernel.setCurrentIndex(controls.kernel.findData("box"))
    qtbot.waitUntil(lambda: second.controller.settings["deconv"] == chosen)
    second.show_view("compare")
    wait_idle(qtbot, second)
    compare = second.tab("compare")
    assert compare.controls.settings() == chosen
    assert compare.deconv_panel.layer is not None and not compare.deconv_panel.is_stale
