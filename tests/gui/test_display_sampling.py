"""Zoomed out, panels draw area-averaged reductions (no display aliasing); zoomed in, crisp pixels.

The drawn pixels are read back by grabbing the panel's canvas, so what is asserted is what the
screen shows.
"""

from __future__ import annotations

import numpy as np
import pytest
import shiboken6
from guitools import wait_idle
from PySide6.QtCore import QPointF, QThreadPool
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app import image_panel
from pyramid_explorer.app.image_panel import DIVERGING, ImagePanel, set_exact_samples_everywhere
from pyramid_explorer.app.linking import ViewLinker
from pyramid_explorer.display import PREVIEW_SIDE
from pyramid_explorer.jobs import make_layer
from pyramid_explorer.screen_sampling import area_reduce

SIDE = 2048  # large enough to fill the view at 1/4 zoom


def checkerboard(side: int = SIDE) -> np.ndarray:
    return np.indices((side, side)).sum(axis=0) % 2 == 1


@pytest.fixture
def panel(qtbot):
    widget = ImagePanel("test", histogram=False)
    qtbot.addWidget(widget)
    widget.resize(320, 300)
    widget.show()
    qtbot.waitExposed(widget)
    linker = ViewLinker(widget)
    linker.add(widget.view_box)
    widget.linker = linker
    yield widget
    QThreadPool.globalInstance().waitForDone()


def settle(qtbot, panel: ImagePanel) -> None:
    """Let every reduction in flight arrive and be drawn."""
    QThreadPool.globalInstance().waitForDone()
    qtbot.waitUntil(lambda: not panel.reduction_pending)


def zoom_to(qtbot, panel: ImagePanel, centre: tuple[float, float], zoom: float) -> None:
    """Show `zoom` screen pixels per source pixel around `centre` and let the reduction arrive."""
    panel.linker.set_camera(centre, 1 / zoom)
    settle(qtbot, panel)


def drawn(panel: ImagePanel, channels: int = 1) -> np.ndarray:
    """The view box's pixels as painted (grey or RGB), less a 2-pixel margin."""
    panel.paint_now()
    fmt = QImage.Format.Format_Grayscale8 if channels == 1 else QImage.Format.Format_RGB888
    image = panel._canvas.viewport().grab().toImage().convertToFormat(fmt)
    rows = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    # a copy: the QImage's buffer goes with it
    shot = rows[:, :image.width() * channels].reshape(image.height(), image.width(), channels).copy()
    box = panel.view_box.sceneBoundingRect()
    return shot[int(box.top()) + 2:int(box.bottom()) - 2, int(box.left()) + 2:int(box.right()) - 2].squeeze()


def test_checkerboard_at_a_quarter_is_flat_grey_and_at_four_times_two_values(qtbot, panel):
    board = checkerboard().astype(np.uint8) * 255
    panel.show_layer(make_layer(board, 0), "board")
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 0.25)
    assert panel.display_factor == 4
    grey = drawn(panel).astype(int)
    assert grey.size > 10_000
    assert grey.min() >= 124 and grey.max() <= 131
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 4.0)
    assert panel.display_factor == 1
    assert set(np.unique(drawn(panel))) == {0, 255}


def test_exact_samples_restore_the_aliasing(qtbot, panel):
    board = checkerboard().astype(np.uint8) * 255
    panel.show_layer(make_layer(board, 0), "board")
    panel.set_exact_samples(True)
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 0.25)
    assert panel.display_factor == 1 and panel.exact_samples
    assert set(np.unique(drawn(panel))) <= {0, 255}  # every 4th pixel: one colour, never grey
    assert "exact samples" in panel.zoom_label()
    panel.set_exact_samples(False)
    settle(qtbot, panel)
    assert panel.display_factor == 4
    assert 124 <= drawn(panel).mean() <= 131


def test_the_setting_reaches_every_panel_and_panels_made_later(qtbot, panel):
    try:
        set_exact_samples_everywhere(True)
        assert panel.exact_samples
        later = ImagePanel("later")
        qtbot.addWidget(later)
        assert later.exact_samples
    finally:
        set_exact_samples_everywhere(False)
    assert not panel.exact_samples and not later.exact_samples
    assert not image_panel.ImagePanel.exact_samples_by_default


@pytest.mark.parametrize(("zoom", "factor", "label"), [
    (4.0, 1, "400%"), (1.0, 1, "100%"), (0.75, 1, "75.0%"), (0.6, 2, "60.0%"), (0.5, 2, "50.0%"),
    (0.4, 2, "40.0%"), (1 / 3, 4, "33.3%"), (0.25, 4, "25.0%"), (1 / 8, 8, "12.5%"),
])
def test_zoom_chooses_the_reduction_and_is_shown(qtbot, panel, zoom, factor, label):
    panel.show_layer(make_layer(checkerboard(512).astype(np.uint8) * 255, 0), "board")
    zoom_to(qtbot, panel, (256, 256), zoom)
    assert panel.display_factor == factor
    assert panel.zoom_label() == label
    assert panel.zoom() == pytest.approx(zoom)


def test_zoom_is_counted_in_pixels_of_the_layer(qtbot, panel):
    """A level-2 layer's pixels are 4 source pixels wide: at 1/4 source zoom they are shown 1:1."""
    panel.show_layer(make_layer(np.zeros((64, 64), np.uint8), 2), "level 2")
    zoom_to(qtbot, panel, (128, 128), 0.25)
    assert panel.zoom() == pytest.approx(1.0) and panel.display_factor == 1
    zoom_to(qtbot, panel, (128, 128), 1 / 16)
    assert panel.display_factor == 4


def test_reduction_keeps_the_layers_placement(qtbot, panel):
    """A ramp along x at level 2 (pixel j centred on source 4j), width not a multiple of the factor:
    each drawn reduced pixel's centre lies where the ramp has the reduced pixel's value."""
    ramp = np.tile(np.arange(250, dtype=np.uint8), (40, 1))  # value = column of level 2
    layer = make_layer(ramp, 2, limits=(0.0, 255.0))
    panel.show_layer(layer, "ramp")
    zoom_to(qtbot, panel, (500, 80), 1 / 16)  # 4 layer pixels per screen pixel
    assert panel.display_factor == 4
    reduced = panel.image_item.image
    assert reduced.shape == (10, 63)
    for j in range(reduced.shape[1]):
        centre = panel.image_item.mapToParent(QPointF(j + 0.5, 0.5))  # source coordinates
        assert reduced[0, j] == pytest.approx(centre.x() / 4, abs=0.5 + 1e-6)
    # and on screen: each column shows the ramp's value at its centre (bilinear between reduced pixels)
    shot = drawn(panel).astype(float)
    box = panel.view_box.sceneBoundingRect()
    middle = panel.view_box.mapViewToScene(QPointF(500, 78))  # the image spans source rows -2 to 158
    row = int(middle.y() - box.top()) - 2
    checked = 0
    for col in range(shot.shape[1]):
        x = panel.view_box.mapSceneToView(QPointF(box.left() + 2 + col + 0.5, middle.y())).x()
        if 20 < x < 4 * 249 - 20:  # away from the image's edges
            assert shot[row, col] == pytest.approx(x / 4, abs=2.0)
            checked += 1
    assert checked > 50


def test_signed_layers_reduce_to_the_colour_of_their_mean(qtbot, panel):
    signs = np.where(checkerboard(), 1.0, -1.0).astype(np.float32)
    panel.show_layer(make_layer(signs, 0, signed=True, limits=(-1.0, 1.0)), "signed")
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 0.25)
    assert panel.display_factor == 4
    shot = drawn(panel, channels=3).reshape(-1, 3).astype(int)
    zero = DIVERGING.map(np.array([127.5 / 255]), mode="byte")[0][:3].astype(int)
    assert np.abs(shot - zero).max() <= 6


def test_rgb_and_rgba_layers_reduce_by_area(qtbot, panel):
    board = checkerboard()
    rgb = np.zeros((SIDE, SIDE, 3), np.uint8)
    rgb[board] = (255, 0, 0)
    rgb[~board] = (0, 0, 255)
    panel.show_layer(make_layer(rgb, 0), "rgb")
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 0.25)
    assert panel.display_factor == 4
    shot = drawn(panel, channels=3).reshape(-1, 3).astype(int)
    assert np.abs(shot - (128, 0, 128)).max() <= 3
    rgba = np.zeros((SIDE, SIDE, 4), np.uint8)
    rgba[board] = (255, 0, 0, 255)
    rgba[~board] = (0, 0, 255, 0)  # invisible blue must not tint the red
    panel.show_layer(make_layer(rgba, 0), "rgba")
    settle(qtbot, panel)
    assert panel.display_factor == 4
    shot = drawn(panel, channels=3).reshape(-1, 3).astype(int)
    assert np.abs(shot - (128, 0, 0)).max() <= 3  # half-opaque red over the black background


def test_histogram_and_readout_keep_the_exact_data(qtbot, panel):
    board = checkerboard().astype(np.uint8) * 255
    layer = make_layer(board, 0)
    panel.show_layer(layer, "board")
    zoom_to(qtbot, panel, (SIDE / 2, SIDE / 2), 0.25)
    assert panel.display_factor == 4
    assert panel.value_text(10.0, 11.0) == "test (10, 11): 255"
    assert panel.value_text(10.0, 10.0) == "test (10, 10): 0"
    _, counts = panel.histogram.plot.getData()
    np.testing.assert_array_equal(counts, layer.histogram[1])


def test_a_reduction_for_a_replaced_layer_is_never_drawn(qtbot, panel):
    first = make_layer(checkerboard().astype(np.uint8) * 255, 0)
    second = make_layer(np.full((SIDE, SIDE), 60, np.uint8), 0)
    panel.linker.set_camera((SIDE / 2, SIDE / 2), 4.0)
    panel.show_layer(first, "first")  # asks for the reduction of the board...
    panel.show_layer(second, "second")  # ...which is superseded before it can arrive
    settle(qtbot, panel)
    assert panel.display_factor == 4
    np.testing.assert_array_equal(panel.image_item.image, area_reduce(second.pixels, 4))
    assert set(np.unique(drawn(panel))) == {60}


def test_until_the_reduction_arrives_a_small_layer_draws_its_exact_pixels(qtbot, panel):
    side = PREVIEW_SIDE  # no preview
    layer = make_layer(checkerboard(side).astype(np.uint8) * 255, 0)
    assert layer.preview is None
    panel.linker.set_camera((side / 2, side / 2), 2.0)
    panel.show_layer(layer, "board")
    assert panel.display_factor == 1 and np.shares_memory(panel.image_item.image, layer.pixels)  # no wait
    settle(qtbot, panel)
    assert panel.display_factor == 2


def test_a_large_layer_draws_its_preview_at_once_and_until_the_reduction_arrives(qtbot, panel):
    layer = make_layer(checkerboard().astype(np.uint8) * 255, 0)
    assert layer.preview is not None and layer.preview.factor == 8
    panel.linker.set_camera((SIDE / 2, SIDE / 2), 8.0)  # the preview's factor: it is the reduction
    panel.show_layer(layer, "board")
    assert panel.display_factor == 8 and not panel.reduction_pending
    assert np.shares_memory(panel.image_item.image, layer.preview.pixels)
    panel.linker.set_camera((SIDE / 2, SIDE / 2), 4.0)  # another factor: the preview stands in
    assert panel.display_factor == 8 and panel.reduction_pending
    settle(qtbot, panel)
    assert panel.display_factor == 4
    np.testing.assert_array_equal(panel.image_item.image, area_reduce(layer.pixels, 4))
    assert set(np.unique(drawn(panel))) <= {127, 128}  # the board averaged, as the screen shows it


def test_view_menu_option_switches_every_panel_of_the_window(qtbot, window):
    """The zone plate in the Compare view at 1/4 zoom: zero insertion is drawn averaged (its mean,
    a quarter of the image's), not as the grid of lit samples nearest-neighbour picks."""
    window.controller.open_sample("Zone plate (513x385)")
    window.actions["view_compare"].trigger()
    wait_idle(qtbot, window)
    panel = window.tab("compare").mode_panels["zero_insert"]
    qtbot.waitUntil(lambda: panel.layer is not None, timeout=20_000)
    window.linker.set_camera((256, 192), 8.0)
    assert panel.reduction_pending and not window.is_settled()  # screenshots wait for the final drawing
    settle(qtbot, panel)
    window.linker.set_camera((256, 192), 4.0)  # the factor of the layer's preview: drawn at once
    assert not panel.reduction_pending
    assert panel.display_factor == 4 and panel.zoom_label() == "25.0%"
    qtbot.waitUntil(window.is_settled)
    mean = float(panel.layer.pixels.mean())
    averaged = drawn(panel).astype(float)
    assert np.abs(averaged - mean).max() < 50  # the zero holes are averaged in, everywhere
    window.actions["exact_samples"].trigger()
    panels = [w for w in QApplication.allWidgets() if isinstance(w, ImagePanel)]
    assert len(panels) > 10 and all(p.exact_samples for p in panels)
    assert panel.display_factor == 1
    exact = drawn(panel).astype(float)
    assert np.abs(exact - mean).max() > 100  # lit samples or holes
    window.actions["exact_samples"].trigger()
    settle(qtbot, panel)
    assert not any(p.exact_samples for p in panels) and panel.display_factor == 4


def test_a_panel_deleted_while_its_reduction_is_made_is_left_alone(qtbot):
    widget = ImagePanel("short-lived", histogram=False)
    widget.resize(320, 300)
    widget.show()
    qtbot.waitExposed(widget)
    linker = ViewLinker()
    linker.add(widget.view_box)
    linker.set_camera((SIDE / 2, SIDE / 2), 4.0)
    widget.show_layer(make_layer(checkerboard().astype(np.uint8) * 255, 0), "board")
    assert widget.reduction_pending
    shiboken6.delete(widget)  # at once: the reduction is still being made or its result still queued
    QThreadPool.globalInstance().waitForDone()
    QApplication.processEvents()  # the late result reaches no one, with no error or warning


def test_a_panel_without_its_histogram_draws_what_one_with_it_draws(qtbot, panel):
    """A hidden histogram is made only when shown or asked for; until then the panel keeps the limits
    and colours it would give, and the histogram made later starts from them."""
    shown = ImagePanel("shown")
    qtbot.addWidget(shown)
    ramp = np.linspace(-3, 5, 64 * 64, dtype=np.float32).reshape(64, 64)
    layer = make_layer(ramp, 0, signed=True)
    for p in (panel, shown):
        p.show_layer(layer, "ramp")
    assert not panel.histogram_shown and panel.histogram_width() == 0
    assert shown.histogram_shown and shown.histogram_width() > 0
    assert panel.limits() == shown.limits() == layer.limits
    np.testing.assert_array_equal(panel.lookup_table(), shown.lookup_table())
    np.testing.assert_array_equal(panel.image_item.lut, shown.image_item.lut)
    np.testing.assert_array_equal(panel.lookup_table(), shown.histogram.getLookupTable(n=256))
    panel.set_histogram_visible(True)  # made now, from the layer and the limits in use
    assert panel.histogram_shown
    assert panel.histogram.getLevels() == pytest.approx(layer.limits)
    np.testing.assert_array_equal(panel.histogram.plot.getData()[1], layer.histogram[1])
    np.testing.assert_array_equal(panel.histogram.getLookupTable(n=256), shown.lookup_table())
    panel.histogram.setLevels(-1.0, 1.0)  # the user drags the limits: the pixels are re-mapped
    assert panel.limits() == (-1.0, 1.0)


def test_building_the_compare_tab_makes_no_histogram(qtbot, window, monkeypatch):
    """Its panels show none by default: making ten hidden ones was most of the tab's first-show stall."""
    made = []
    real = image_panel.pg.HistogramLUTItem
    monkeypatch.setattr(image_panel.pg, "HistogramLUTItem", lambda *a, **k: made.append(1) or real(*a, **k))
    tab = window.tab("compare")
    assert made == [] and not any(p.histogram_shown for p in tab.panels)
    window.show_view("compare")
    window.actions["histograms"].trigger()
    assert len(made) == len(tab.panels) and all(p.histogram_shown for p in tab.panels)
