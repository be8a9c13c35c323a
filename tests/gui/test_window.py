"""The explorer window driven through its widgets: open, browse levels, compare modes, faults."""

from __future__ import annotations

import math
import os

import cv2
import numpy as np
import pytest
from guitools import drop, make_image, wait_idle, write_png
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QImage, QWheelEvent
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.dialogs import ShortcutsDialog
from pyramid_explorer.core.analysis import polyphase_sums
from pyramid_explorer.core.deconv import DeconvSettings, deconv_kernel
from pyramid_explorer.core.pyramid import max_levels
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.display import quantize
from pyramid_explorer.tools import pyramid as pyramid_tool
from pyramid_explorer.tools.compare import ModeResult


def pyrdown_chain(image: np.ndarray) -> list[np.ndarray]:
    """The Gaussian levels by a plain OpenCV loop, as the reference for what the window shows."""
    levels = [image]
    while levels[-1].shape[0] > 1 or levels[-1].shape[1] > 1:
        levels.append(cv2.pyrDown(levels[-1]))
    return levels


@pytest.fixture
def image_path(tmp_path):
    return write_png(tmp_path / "ramp noise.png", make_image())


@pytest.fixture
def opened(qtbot, window, image_path):
    window.controller.open_path(image_path)
    wait_idle(qtbot, window)
    return window


def test_open_file_fills_level_table_with_every_level(opened, image_path):
    image = make_image()
    model = opened.level_panel.model
    reference = pyrdown_chain(image)
    assert model.rowCount() == max_levels(image.shape) == len(reference)
    for row, level in enumerate(reference):
        stats = model.stats(row)
        assert (stats.width, stats.height) == (level.shape[1], level.shape[0])
        assert stats.minimum == level.min() and stats.maximum == level.max()
        assert model.index(row, 1).data() == f"{level.shape[1]} x {level.shape[0]}"
        thumb = model.index(row, 0).data(Qt.ItemDataRole.DecorationRole)
        assert not thumb.isNull() and max(thumb.width(), thumb.height()) == 48
    assert model.index(0, 6).data() == "0"  # exact reconstruction of a uint8 image
    np.testing.assert_array_equal(opened.tab("pyramid").source.layer.data, image)
    assert opened.windowTitle().startswith(os.path.basename(image_path))


def test_page_down_selects_the_level_in_every_panel(qtbot, opened):
    reference = pyrdown_chain(make_image())
    opened.activateWindow()
    for _ in range(2):
        qtbot.keyClick(opened, Qt.Key.Key_PageDown)
    wait_idle(qtbot, opened)
    view = opened.tab("pyramid")
    assert opened.controller.level == 2
    assert opened.level_panel.level.value() == 2
    assert opened.level_panel.table.currentIndex().row() == 2
    shape = reference[2].shape
    for panel in (view.gaussian, view.laplacian, view.residual):
        assert panel.layer.data.shape == shape
        assert panel.layer.level == 2
    np.testing.assert_array_equal(view.gaussian.layer.data, reference[2])
    assert view.source.layer.data.shape == reference[0].shape
    assert "max |r| = 0" in view.residual.title()
    qtbot.keyClick(opened, Qt.Key.Key_PageUp)
    wait_idle(qtbot, opened)
    assert view.gaussian.layer.data.shape == reference[1].shape


def test_level_is_selected_by_table_row_and_spin_box(qtbot, opened):
    panel = opened.level_panel
    panel.table.setCurrentIndex(panel.model.index(3, 0))
    wait_idle(qtbot, opened)
    assert opened.tab("pyramid").gaussian.layer.level == 3
    panel.level.setValue(1)
    wait_idle(qtbot, opened)
    assert opened.tab("pyramid").laplacian.layer.level == 1
    assert panel.table.currentIndex().row() == 1


def test_levels_are_placed_in_source_coordinates(qtbot, opened):
    opened.controller.set_level(2)
    wait_idle(qtbot, opened)
    item = opened.tab("pyramid").gaussian.image_item
    w = opened.tab("pyramid").gaussian.layer.data.shape[1]
    # pyrDown centres pixel j of level 2 on source pixel 4j
    for j in (0, 3, w - 1):
        centre = item.mapToParent(QPointF(j + 0.5, 0.5))
        assert centre.x() == pytest.approx(4 * j)
        assert centre.y() == pytest.approx(0)
    assert opened.tab("pyramid").gaussian.layer.pixel_at(4 * (w - 1) + 1.5, 1.5) == (0, w - 1)


def test_depth_control_sets_the_number_of_levels(qtbot, opened):
    opened.level_panel.depth.setValue(3)
    qtbot.waitUntil(lambda: opened.controller.pyramid.levels == 3)
    wait_idle(qtbot, opened)
    assert opened.level_panel.model.rowCount() == 3
    opened.controller.set_level(2)
    wait_idle(qtbot, opened)
    assert "coarsest level" in opened.tab("pyramid").laplacian.title()


def test_compare_view_has_one_panel_per_mode_with_finite_psnr(qtbot, opened):
    qtbot.keyClick(opened, Qt.Key.Key_2, Qt.KeyboardModifier.ControlModifier)
    assert opened.tabs.currentWidget() is opened.tab("compare")
    wait_idle(qtbot, opened)
    view = opened.tab("compare")
    level0 = make_image()
    assert list(view.mode_panels) == list(MODES)
    for mode, panel in view.mode_panels.items():
        result = view.results[mode]
        assert result.level == 0 and panel.layer is result.image
        assert panel.layer.data.shape == level0.shape
        assert math.isfinite(result.psnr), mode
        assert f"PSNR {result.psnr:.2f} dB" in panel.title()
    assert view.deconv_panel.layer is not None


def test_difference_toggle_shows_signed_differences(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    qtbot.keyClick(opened, Qt.Key.Key_D)
    qtbot.waitUntil(opened.is_settled)
    view = opened.tab("compare")
    assert view.difference.isChecked()
    for mode, panel in view.mode_panels.items():
        result = view.results[mode]
        assert panel.layer is result.difference and panel.layer.signed
        # the image is kept rounded to uint8; the difference is from the exact float result
        expected = (result.image.data - make_image().astype(np.float32)).mean(axis=2)
        np.testing.assert_allclose(panel.layer.data, expected, atol=0.5 + 1e-4)


def test_transposed_conv_settings_show_kernel_and_checkerboard(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    controls = opened.tab("compare").controls
    controls.kernel.setCurrentIndex(controls.kernel.findData("box"))
    controls.kernel_size.setValue(3)
    wait_idle(qtbot, opened)
    settings = opened.controller.settings["deconv"]
    assert (settings.kernel_size, settings.stride, settings.kernel) == (3, 2, "box")
    np.testing.assert_allclose(controls.kernel_map.array(), deconv_kernel(settings))
    assert controls.verdict.text().startswith("Uneven overlap")
    layer = opened.tab("compare").deconv_panel.layer
    assert layer.shape[:2] == ((19 - 1) * 2 + 3, (27 - 1) * 2 + 3)  # (n - 1) * s + k of G[1]
    controls.kernel_size.setValue(4)
    wait_idle(qtbot, opened)
    assert controls.verdict.text().startswith("Even: every output phase sums to 1")


def test_the_kernel_maps_follow_the_settings_at_once(window):
    """The kernel, its phase sums and their verdict follow from the settings alone: shown before any
    result (no image is open here) and as soon as the settings change, by the user or another view."""
    controls = window.tab("compare").controls

    def shows(settings: DeconvSettings) -> None:
        kernel = deconv_kernel(settings)
        np.testing.assert_allclose(controls.kernel_map.array(), kernel)
        np.testing.assert_allclose(controls.phase_map.array(),
                                   np.tile(polyphase_sums(kernel, settings.stride), (2, 2)), rtol=1e-6)

    shows(DeconvSettings())
    assert controls.verdict.text().startswith("Even: every output phase sums to 1")
    controls.kernel.setCurrentIndex(controls.kernel.findData("box"))
    controls.kernel_size.setValue(3)
    shows(DeconvSettings(3, 2, "box"))
    assert controls.verdict.text().startswith("Uneven overlap")
    controls.set_settings(DeconvSettings(5, 3, "bilinear"))
    shows(DeconvSettings(5, 3, "bilinear"))


def test_coarsest_level_has_nothing_to_compare(qtbot, opened):
    opened.show_view("compare")
    opened.controller.set_level(opened.controller.pyramid.levels - 1)
    wait_idle(qtbot, opened)
    for panel in opened.tab("compare").panels:
        assert panel.layer is None


def test_corrupt_file_shows_message_and_keeps_previous_image(qtbot, opened, tmp_path):
    before = opened.tab("pyramid").source.layer
    bad = tmp_path / "not an image.png"
    bad.write_text("this is text, not a PNG")
    opened.controller.open_path(str(bad))
    qtbot.waitUntil(lambda: opened.banner.isVisible())
    wait_idle(qtbot, opened)
    assert "not an image.png" in opened.banner.label.text()
    assert "\n" not in opened.banner.label.text()
    assert opened.tab("pyramid").source.layer is before
    assert opened.controller.loaded.source is before
    opened.controller.step_level(1)  # the app keeps working
    wait_idle(qtbot, opened)
    assert opened.tab("pyramid").gaussian.layer.level == 1


def test_fifty_rapid_level_changes_display_only_the_last(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    shown: list[int] = []
    opened.controller.result_ready.connect(
        lambda _tool, r: isinstance(r, ModeResult) and shown.append(r.level))
    rng = np.random.default_rng(3)
    levels = rng.integers(0, opened.controller.pyramid.levels - 1, 50)
    levels[-1] = 2
    for n, level in enumerate(levels):
        opened.level_panel.level.setValue(int(level))
        marker = len(shown)  # what is shown from the last change on (a fast job may finish in the loop)
        if n % 5 == 0:
            opened.controller.refresh()  # start a job now, so later changes must supersede it
        QApplication.processEvents()
    wait_idle(qtbot, opened)
    assert set(shown[marker:]) == {2}
    for panel in opened.tab("compare").mode_panels.values():
        assert panel.layer.level == 2
    assert opened.controller.runner.active_threads() == 0


def test_drop_of_a_file_opens_it(qtbot, window, tmp_path):
    path = write_png(tmp_path / "dropped.png", make_image(20, 30))
    drop(window, path)
    qtbot.waitUntil(lambda: window.controller.loaded is not None and window.controller.loaded.path == path)
    wait_idle(qtbot, window)
    assert window.tab("pyramid").source.layer.data.shape == (20, 30, 3)


def test_text_drop_is_refused(window):
    mime = QMimeData()
    mime.setText("hello")
    enter = QDragEnterEvent(QPoint(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    QApplication.sendEvent(window, enter)
    assert not enter.isAccepted()


def test_samples_menu_opens_each_sample(qtbot, window):
    actions = [a for a in window.samples_menu.actions() if a.data()]
    assert len(actions) >= 3
    for action in actions:
        action.trigger()
        qtbot.waitUntil(lambda a=action: window.controller.loaded is not None
                        and window.controller.loaded.name == a.data())
        wait_idle(qtbot, window)
        assert window.level_panel.model.rowCount() == max_levels(window.controller.loaded.image.shape)


def test_recent_files_and_last_view_are_remembered(qtbot, make_window, settings_store, image_path):
    first = make_window()
    first.controller.open_path(image_path)
    wait_idle(qtbot, first)
    first.show_view("compare")
    first.close()
    second = make_window(settings_store)
    assert second.tabs.currentWidget() is second.tab("compare")
    second.recent_menu.aboutToShow.emit()
    paths = [a.data() for a in second.recent_menu.actions() if a.data()]
    assert paths == [os.path.abspath(image_path)]
    assert second.settings.last_folder == os.path.dirname(os.path.abspath(image_path))


def test_hover_reads_every_visible_panel(qtbot, opened):
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    panel = opened.tab("pyramid").gaussian
    x, y = 10.0, 6.0  # source pixel centre; level 1 pixel (floor((10 + 1) / 2), floor((6 + 1) / 2)) = (5, 3)
    scene_pos = panel.view_box.mapViewToScene(QPointF(x, y))
    viewport = panel._canvas.viewport()
    qtbot.mouseMove(viewport, panel._canvas.mapFromScene(scene_pos))
    qtbot.waitUntil(lambda: opened.readout_label.text().startswith("source"))
    text = opened.readout_label.text()
    g1 = pyrdown_chain(make_image())[1]
    assert "G[1] (5, 3): (" + ", ".join(str(v) for v in g1[3, 5]) + ")" in text
    assert "L[1] (5, 3)" in text and "residual[1] (5, 3): (0, 0, 0)" in text
    assert "source (10, 6)" in text.replace(".0", "")


def test_views_stay_linked_when_one_is_zoomed(qtbot, opened):
    view = opened.tab("pyramid")
    box = view.laplacian.view_box
    viewport = view.laplacian._canvas.viewport()
    centre = QPointF(viewport.width() / 2, viewport.height() / 2)
    wheel = QWheelEvent(centre, viewport.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 240),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    before = box.viewRect().width()
    QApplication.sendEvent(viewport, wheel)
    assert box.viewRect().width() < before
    rect = box.viewRect()
    upp = rect.width() / box.width()
    for panel in view.level_panels:
        r = panel.view_box.viewRect()
        assert r.center().x() == pytest.approx(rect.center().x(), abs=1e-6)
        assert r.center().y() == pytest.approx(rect.center().y(), abs=1e-6)
        assert r.width() / panel.view_box.width() == pytest.approx(upp, rel=1e-6)


def test_fit_and_one_to_one(qtbot, opened):
    box = opened.tab("pyramid").source.view_box
    qtbot.keyClick(opened, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert box.viewRect().width() / box.width() == pytest.approx(1.0)
    qtbot.keyClick(opened, Qt.Key.Key_F)
    rect = box.viewRect()
    assert rect.left() <= -0.5 and rect.right() >= 53 - 0.5
    assert rect.top() <= -0.5 and rect.bottom() >= 37 - 0.5


def test_lock_contrast_keeps_display_limits_across_levels(qtbot, opened):
    panel = opened.tab("pyramid").laplacian
    qtbot.keyClick(opened, Qt.Key.Key_L)
    assert opened.level_panel.lock_contrast.isChecked()
    locked = panel.limits()
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    assert panel.layer.level == 1 and panel.layer.limits != pytest.approx(locked)
    assert panel.limits() == pytest.approx(locked)
    np.testing.assert_array_equal(panel.image_item.image, quantize(panel.layer.display, locked))
    qtbot.keyClick(opened, Qt.Key.Key_L)
    opened.controller.set_level(2)
    wait_idle(qtbot, opened)
    assert panel.limits() == pytest.approx(panel.layer.limits)
    assert np.shares_memory(panel.image_item.image, panel.layer.pixels)  # no re-mapping


def test_signed_panels_use_a_diverging_map_with_symmetric_limits(opened):
    view = opened.tab("pyramid")
    for panel in (view.laplacian, view.residual):
        lo, hi = panel.limits()
        assert lo == -hi and hi > 0
        lut = panel.image_item.lut
        assert lut[0][2] > lut[0][0] and lut[-1][0] > lut[-1][2]  # blue below zero, red above
        middle = lut[len(lut) // 2][:3].astype(int)
        assert middle.min() > 200  # zero is (nearly) white
        codes = panel.image_item.image
        assert codes.dtype == np.uint8 and codes.ndim == 2
    assert view.gaussian.image_item.lut is not None and view.gaussian.image_item.image.ndim == 3


def test_mosaic_layouts(qtbot, opened):
    view = opened.tab("pyramid")
    levels = pyrdown_chain(make_image())
    view.layout_combo.setCurrentIndex(view.layout_combo.findData("gaussian"))
    wait_idle(qtbot, opened)
    layer = view.mosaic.layer
    # classic layout: level 0 on the left, levels 1, 2, ... stacked in a column to its right
    assert layer.data.shape[:2] == (max(37, sum(g.shape[0] for g in levels[1:])), 53 + levels[1].shape[1])
    np.testing.assert_array_equal(layer.data[:19, 53:53 + 27], levels[1])
    view.layout_combo.setCurrentIndex(view.layout_combo.findData("laplacian"))
    wait_idle(qtbot, opened)
    assert view.mosaic.layer.signed and view.mosaic.layer.data.ndim == 2


def test_a_failing_job_is_reported_and_the_app_keeps_working(qtbot, opened, monkeypatch):
    real = pyramid_tool.level_view

    def broken(request):
        yield from ()
        raise RuntimeError("injected failure")

    monkeypatch.setattr(pyramid_tool, "level_view", broken)
    opened.controller.set_level(2)
    qtbot.waitUntil(lambda: opened.banner.isVisible())
    assert "RuntimeError: injected failure" in opened.banner.label.text()
    monkeypatch.setattr(pyramid_tool, "level_view", real)
    opened.controller.set_level(3)
    wait_idle(qtbot, opened)
    assert opened.tab("pyramid").gaussian.layer.level == 3


def test_cancel_stops_a_running_job(qtbot, opened, monkeypatch):
    from pyramid_explorer.jobs import Progress

    def endless(request):
        n = 0
        while True:
            n += 1
            yield Progress(n, 0, "endless test job")

    monkeypatch.setattr(pyramid_tool, "level_view", endless)
    opened.controller.set_level(2)
    qtbot.waitUntil(lambda: opened.cancel_button.isVisible())
    qtbot.mouseClick(opened.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(opened.is_settled)
    assert not opened.cancel_button.isVisible()
    assert opened.controller.runner.active_threads() == 0


def test_help_lists_the_shortcuts(qtbot, window):
    window.actions["shortcuts"].trigger()
    dialogs = window.findChildren(ShortcutsDialog)
    assert dialogs
    table = dialogs[-1].table
    rows = {table.item(r, 0).text(): table.item(r, 1).text() for r in range(table.rowCount())}
    assert rows["Fit"] == "F" and rows["Coarser level"] == "PgDown"
    assert "Ctrl+O" in rows.values()
    dialogs[-1].close()


def test_zoomed_in_pixels_are_crisp(qtbot, window, tmp_path):
    """Display resampling must not blend pixels: at 16 screen pixels per image pixel every drawn
    colour is one of the image's own colours."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (6, 8, 3), np.uint8)
    window.controller.open_path(write_png(tmp_path / "tiny.png", image))
    wait_idle(qtbot, window)
    panel = window.tab("pyramid").source
    window.linker.set_camera((3.5, 2.5), 1 / 16)
    panel.paint_now()
    grabbed = panel._canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    shot = np.frombuffer(grabbed.constBits(), np.uint8).reshape(grabbed.height(), grabbed.bytesPerLine())
    shot = shot[:, :grabbed.width() * 3].reshape(grabbed.height(), grabbed.width(), 3)
    box = panel.view_box.sceneBoundingRect()
    inner = shot[int(box.top()) + 2:int(box.bottom()) - 2, int(box.left()) + 2:int(box.right()) - 2]
    drawn = {tuple(c) for c in inner.reshape(-1, 3)}
    assert drawn <= {tuple(c) for c in image.reshape(-1, 3)} | {(0, 0, 0)}  # and the black background
    assert len(drawn) > 10


def test_closing_the_window_during_a_job_stops_it(qtbot, opened, monkeypatch):
    from pyramid_explorer.jobs import Progress

    def endless(request):
        while True:
            yield Progress(0, 0, "endless test job")

    monkeypatch.setattr(pyramid_tool, "level_view", endless)
    opened.controller.set_level(2)
    qtbot.waitUntil(lambda: opened.controller.runner.active_threads() == 1)
    opened.close()  # waits for the job to stop at its next step
    assert opened.controller.runner.active_threads() == 0


def test_opening_another_file_drops_the_old_images_work(qtbot, opened, tmp_path):
    opened.show_view("compare")
    shown: list[int] = []
    opened.controller.result_ready.connect(
        lambda _tool, r: isinstance(r, ModeResult) and shown.append(r.image_id))
    path = write_png(tmp_path / "second.png", make_image(24, 30))
    opened.controller.open_path(path)
    qtbot.waitUntil(lambda: opened.controller.loaded.path == path)
    wait_idle(qtbot, opened)
    new_id = opened.controller.loaded.image_id
    assert shown and shown[-1] == new_id
    assert all(r.image_id == new_id for r in opened.tab("compare").results.values())
