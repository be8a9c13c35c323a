"""The Integrity tab's numbers and histograms go out of date with the state, and a failed job says
"failed", never "computing" or "Ready" (issue 15, item 1)."""

from __future__ import annotations

import pytest
from guitools import make_image, wait_idle, write_png

from pyramid_explorer.tools import compare, integrity


@pytest.fixture
def opened(open_image):
    return open_image(45, 61)


def test_integrity_numbers_and_histograms_are_marked_in_the_frame_of_a_change(qtbot, opened):
    opened.show_view("integrity")
    wait_idle(qtbot, opened)
    tab = opened.tab("integrity")
    columns = (tab.laplacian, tab.gaussian)
    before = [c.numbers.text() for c in columns]
    assert not tab.is_stale and all(t and not t.startswith("[out of date]") for t in before)
    tab.storage_buttons["uint8_saturate"].click()  # no event loop turn before the checks
    assert tab.is_stale and tab.verdict.text().startswith("[out of date] float32 bands")
    for column, text in zip(columns, before, strict=True):
        assert column.numbers.text() == f"[out of date] {text}"
        assert column.histogram.stale and column.panel.is_stale
    wait_idle(qtbot, opened)
    assert not tab.is_stale and tab.verdict.text().startswith("uint8_saturate bands")
    assert all(not c.histogram.stale and not c.numbers.text().startswith("[out of date]") for c in columns)
    assert tab.laplacian.histogram.histogram()[0].size > 0


def test_a_new_image_clears_the_integrity_numbers(qtbot, opened, tmp_path):
    opened.show_view("integrity")
    wait_idle(qtbot, opened)
    tab = opened.tab("integrity")
    shown = []
    opened.controller.pyramid_changed.connect(lambda _p: shown.append(
        (tab.verdict.text(), tab.laplacian.numbers.text(), tab.laplacian.histogram.histogram()[0].size)))
    opened.controller.open_path(write_png(tmp_path / "b.png", make_image(30, 20)))
    wait_idle(qtbot, opened)
    assert shown == [("", "", 0)]  # nothing of the first image's was left beside the new one
    assert tab.result is not None and tab.verdict.text()


def raise_synthetic(*_args, **_kwargs):
    raise ValueError("synthetic failure")


def test_a_failed_job_says_failed_and_not_ready(qtbot, opened, monkeypatch):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    monkeypatch.setattr(compare, "_ssim_batch", raise_synthetic)  # the images arrive, their numbers fail
    tab = opened.tab("compare")
    tab.controls.kernel_size.setValue(3)  # a new transposed convolution: a job for its panel
    qtbot.waitUntil(lambda: opened.is_settled() and "synthetic failure" in opened.status_message())
    panel = tab.deconv_panel
    assert "computing" not in panel.title() and "PSNR/SSIM failed" in panel.title(), panel.title()
    assert opened.status_message() == "Computation failed: synthetic failure"
    # the nine mode panels' layers did not change: they are current again; only the numbers failed
    assert not any(p.is_stale for p in tab.mode_panels.values())


def test_a_failed_integrity_job_leaves_its_panels_marked_failed(qtbot, opened, monkeypatch):
    opened.show_view("integrity")
    wait_idle(qtbot, opened)
    monkeypatch.setattr(integrity, "gaussian_round_trip", raise_synthetic)
    tab = opened.tab("integrity")
    tab.storage_buttons["int16"].click()
    qtbot.waitUntil(lambda: opened.is_settled() and "synthetic failure" in opened.status_message())
    for panel in tab.panels:
        assert panel.stale_text() == "failed: synthetic failure"
        assert "computing" not in panel.title()
    assert tab.is_stale and opened.status_message() != "Ready"
