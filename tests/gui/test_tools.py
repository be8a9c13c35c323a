"""The analysis tools driven through their widgets: what each shows is checked against the core."""

from __future__ import annotations

import math

import numpy as np
import pytest
from guitools import export_through_dialog, make_image, show, wait_idle, write_png
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.level_model import BROKEN_COLUMN, DSTSIZE_COLUMN, NAIVE_COLUMN, SIZE_COLUMN
from pyramid_explorer.app.probe_menu import OTHER_SIZE, ProbeMenu
from pyramid_explorer.app.tabs.kernels import OVERLAP_COLUMN
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.core.analysis import (
    equivalent_kernel,
    gaussian_round_trip,
    integrity,
    nyquist_peaks,
    polyphase_sums,
)
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.deconv import deconv_kernel
from pyramid_explorer.core.probes import slanted_edge, zone_plate
from pyramid_explorer.core.pyramid import laplacian_pyramid, level_sizes, reconstruct
from pyramid_explorer.core.upsampling import max_pool_with_indices
from pyramid_explorer.display import mode_label
from pyramid_explorer.tools.kernels import CUSTOM, KERNEL_ENTRIES


def expected_numbers(max_error: float, rmse: float, psnr: float) -> str:
    shown_psnr = "PSNR inf (exact)" if math.isinf(psnr) else f"PSNR {psnr:.2f} dB"
    return f"max |error| {max_error:.4g}, RMSE {rmse:.4g}, {shown_psnr}"


# --- integrity ----------------------------------------------------------------------------------


def test_integrity_shows_the_cores_numbers_for_each_storage(qtbot, opened):
    show(qtbot, opened, "integrity")
    view, image, levels = opened.tab("integrity"), make_image(), opened.controller.pyramid.levels
    assert view.laplacian.numbers.text() == "max |error| 0, RMSE 0, PSNR inf (exact)"
    assert view.laplacian.sentence.text() == "Exact: every pixel identical"
    rt = gaussian_round_trip(image)
    assert view.gaussian.numbers.text() == expected_numbers(rt.max_abs_error, rt.rmse, rt.psnr)
    np.testing.assert_array_equal(view.gaussian.panel.layer.data, rt.residual)
    for storage in ("uint8_saturate", "int16"):
        qtbot.mouseClick(view.storage_buttons[storage], Qt.MouseButton.LeftButton)
        wait_idle(qtbot, opened)
        core = integrity(image, levels, storage=storage)
        assert opened.controller.settings["storage"] == storage and view.result.storage == storage
        assert view.laplacian.numbers.text() == expected_numbers(core.max_abs_error, core.rmse, core.psnr)
        assert view.laplacian.sentence.text().lower() == core.sentence.lower()
        np.testing.assert_array_equal(view.laplacian.panel.layer.data, core.residual)
        centres, counts = view.laplacian.histogram.histogram()
        values, expected = np.unique(core.residual, return_counts=True)
        np.testing.assert_array_equal(counts[np.isin(centres, values)], expected)
        assert counts.sum() == core.residual.size
    assert "clipped at levels" not in view.laplacian.sentence.text()  # int16 is exact


def test_saturated_storage_says_which_levels_were_clipped(qtbot, opened):
    opened.controller.set_setting("storage", "uint8_saturate")
    show(qtbot, opened, "integrity")
    core = integrity(make_image(), opened.controller.pyramid.levels, storage="uint8_saturate")
    assert core.clipped_levels and core.differing_pixels > 0
    levels = ", ".join(map(str, core.clipped_levels))
    sentence = opened.tab("integrity").laplacian.sentence.text()
    assert sentence.endswith(f"negative detail was clipped at levels {levels}")
    lo, hi = opened.tab("integrity").laplacian.panel.limits()
    assert lo == -hi > -math.inf  # diverging heat map, zero in the middle


def test_integer_storages_are_offered_for_uint8_images_only(qtbot, window, tmp_path):
    window.controller.open_path(write_png(tmp_path / "deep.png", make_image().astype(np.uint16) * 257))
    wait_idle(qtbot, window)
    buttons = window.tab("integrity").storage_buttons
    assert buttons["float32"].isEnabled()
    assert not buttons["int16"].isEnabled() and not buttons["uint8_saturate"].isEnabled()
    show(qtbot, window, "integrity")
    assert window.tab("integrity").result.laplacian.differing_pixels == 0


# --- equalizer ----------------------------------------------------------------------------------


def test_equalizer_gains_rebuild_like_the_core_and_reset_is_exact(qtbot, opened):
    show(qtbot, opened, "equalizer")
    view, image = opened.tab("equalizer"), make_image()
    levels = opened.controller.pyramid.levels
    assert len(view.sliders) == levels and view.result.exact
    view.sliders[0].setValue(0)  # drop the finest band
    view.sliders[1].setValue(250)  # boost the next one 2.5x
    wait_idle(qtbot, opened)
    gains = (0.0, 2.5, *(1.0,) * (levels - 2))
    assert view.result.gains == gains
    rebuilt = reconstruct(laplacian_pyramid(image), gains=gains)
    np.testing.assert_array_equal(view.image.layer.data, to_dtype(rebuilt, np.uint8))
    assert not view.result.exact and "pixels changed" in view.summary.text()
    qtbot.mouseClick(view.reset_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, opened)
    assert view.gains() == (1.0,) * levels
    np.testing.assert_array_equal(view.image.layer.data, image)  # every pixel identical again
    assert not view.change.layer.data.any()
    assert view.summary.text().startswith("Exact")


def test_dragging_a_slider_shows_only_the_last_gains(qtbot, opened):
    show(qtbot, opened, "equalizer")
    view = opened.tab("equalizer")
    shown: list[tuple[float, ...]] = []
    opened.controller.result_ready.connect(lambda tool, r: tool == "equalizer" and shown.append(r.gains))
    for n, value in enumerate(range(100, 400, 10)):
        view.sliders[2].setValue(value)
        if n % 7 == 0:
            opened.controller.refresh()  # a job starts now and must be superseded
        QApplication.processEvents()
    wait_idle(qtbot, opened)
    assert shown[-1][2] == 3.9 and view.result.gains[2] == 3.9
    assert opened.controller.runner.active_threads() == 0


# --- size chain ---------------------------------------------------------------------------------


def test_level_table_shows_the_size_chain(qtbot, opened):
    model, panel = opened.level_panel.model, opened.level_panel
    sizes = level_sizes(make_image().shape)
    assert model.rowCount() == len(sizes)
    for row, (h, w) in enumerate(sizes):
        text = model.index(row, DSTSIZE_COLUMN).data()
        odd = model.index(row, SIZE_COLUMN).data(Qt.ItemDataRole.DecorationRole) is not None
        if row == len(sizes) - 1:
            assert text == "-" and not odd  # nothing is expanded into the coarsest level
            continue
        hc, wc = sizes[row + 1]
        assert text == f"({w}, {h})"
        assert odd == (w % 2 == 1 or h % 2 == 1)
        assert model.index(row, NAIVE_COLUMN).data() == f"{2 * wc} x {2 * hc}"
        broken = model.index(row, BROKEN_COLUMN).data()
        assert broken == (f"L[{row}] breaks: {2 * wc} x {2 * hc} vs {w} x {h}" if odd else "fits")
    assert odd is False
    table = panel.table
    assert table.isColumnHidden(NAIVE_COLUMN) and table.isColumnHidden(BROKEN_COLUMN)
    panel.without_dstsize.click()
    assert not table.isColumnHidden(NAIVE_COLUMN) and not table.isColumnHidden(BROKEN_COLUMN)
    assert panel.dstsize_note.isVisible()
    assert model.index(0, SIZE_COLUMN).data(Qt.ItemDataRole.ToolTipRole).startswith("Odd size")
    assert model.index(0, BROKEN_COLUMN).data(Qt.ItemDataRole.ForegroundRole).color().name() == "#b3261e"
    fitting = next(row for row, (h, w) in enumerate(sizes[:-1]) if h % 2 == 0 and w % 2 == 0)
    assert model.index(fitting, BROKEN_COLUMN).data(Qt.ItemDataRole.ForegroundRole) is None
    assert model.index(fitting, SIZE_COLUMN).data(Qt.ItemDataRole.ToolTipRole) == "Width x height, in pixels"


# --- kernels ------------------------------------------------------------------------------------


def test_kernel_inspector_shows_the_cores_kernels_and_phase_sums(qtbot, opened):
    show(qtbot, opened, "kernels")
    view = opened.tab("kernels")
    assert view.result.entry == "pyrup"
    w = np.array([1, 4, 6, 4, 1]) / 16
    np.testing.assert_allclose(view.kernel_panel.layer.data, 4 * np.outer(w, w), atol=1e-7)
    np.testing.assert_allclose(view.phase_values(), np.ones((2, 2)))
    assert "5x5 is not a multiple of stride 2, but its phases balance" in view.verdict.text()
    assert "pyrUp is itself a 5x5 stride-2 transposed convolution" in view.note.text()
    for row, entry in enumerate(KERNEL_ENTRIES):
        view.table.setCurrentCell(row, 0)
        wait_idle(qtbot, opened)
        assert view.result.entry == entry and opened.controller.settings["kernel_entry"] == entry
        if entry == "unpool":
            expected = np.array([[1.0, 0.0], [0.0, 0.0]])
            assert view.kernel_panel.layer is None
        elif entry == CUSTOM:
            expected = polyphase_sums(deconv_kernel(opened.controller.settings["deconv"]), 2)
        else:
            kernel, padding = equivalent_kernel(entry)
            expected = polyphase_sums(kernel, 2, padding)
            np.testing.assert_array_equal(view.kernel_panel.layer.data, kernel)
        np.testing.assert_allclose(view.phase_values(), expected, rtol=1e-3)
        even = bool(np.allclose(expected, expected.flat[0]))
        assert view.table.item(row, OVERLAP_COLUMN).text() == ("even" if even else "uneven")
        assert view.verdict.text().startswith(f"{mode_label(entry)}: {'even' if even else 'uneven'}")
        if entry != "unpool":  # the spectrum names the mode as the table does, not by its code name
            assert f"upsampled by {view.table.item(row, 0).text()}" in view.result.spectrum_note
        peaks = nyquist_peaks(view.result.spectrum.data)
        assert view.peaks() == [(float(c), float(r)) for r, c, _ in peaks]


def test_transposed_conv_settings_are_shared_by_compare_and_kernels(qtbot, opened):
    show(qtbot, opened, "kernels")
    view = opened.tab("kernels")
    view.table.setCurrentCell(KERNEL_ENTRIES.index(CUSTOM), 0)
    view.controls.kernel.setCurrentIndex(view.controls.kernel.findData("box"))
    view.controls.kernel_size.setValue(3)
    wait_idle(qtbot, opened)
    assert opened.controller.settings["deconv"].kernel_size == 3
    assert opened.tab("compare").controls.kernel_size.value() == 3
    assert view.result.deconv.kernel_size == 3 and view.verdict.text().startswith(f"{CUSTOM}: uneven")
    expected = polyphase_sums(deconv_kernel(opened.controller.settings["deconv"]), 2)
    np.testing.assert_allclose(view.phase_values(), expected, rtol=1e-3)
    opened.tab("compare").controls.stride.setValue(3)
    wait_idle(qtbot, opened)
    assert view.controls.stride.value() == 3 and opened.controller.settings["deconv"].stride == 3


# --- unpool -------------------------------------------------------------------------------------


def test_unpool_markers_sit_on_the_recorded_maxima(qtbot, window, tmp_path):
    image = np.random.default_rng(4).integers(0, 256, (11, 9, 3), np.uint8)
    window.controller.open_path(write_png(tmp_path / "small.png", image))
    show(qtbot, window, "unpool")
    view = window.tab("unpool")
    _, indices = max_pool_with_indices(image)
    for markers in (view.unpooled_markers, view.source_markers):
        assert len(markers.items) == 3 and not markers.hidden_reason
        for c in range(3):
            rows, cols = markers.positions(c)
            expected = {divmod(int(i), 9) for i in indices[..., c].ravel()}
            assert set(zip(rows.tolist(), cols.tolist(), strict=True)) == expected
            assert len(rows) == len(expected) == 5 * 4
    assert "drops the last row and the last column" in view.note.text()
    np.testing.assert_array_equal(view.unpooled.layer.data != 0, view.result.mask != 0)
    window.linker.set_camera((4.0, 5.0), 1.0)  # one screen pixel per image pixel: too far out
    assert view.unpooled_markers.hidden_reason and not len(view.unpooled_markers.items[0].getData()[0])
    assert "Zoom in" in view.note.text()


def test_unpool_of_a_level_smaller_than_the_window_says_so(qtbot, opened):
    opened.controller.set_level(opened.controller.pyramid.levels - 1)
    show(qtbot, opened, "unpool")
    view = opened.tab("unpool")
    assert view.result is None and "smaller than the 2x2 pooling window" in view.note.text()
    assert all(panel.layer is None for panel in view.panels)


# --- probes and export --------------------------------------------------------------------------


def probe_action(window, probe: str, text: str):
    submenu = next(a.menu() for a in window.probe_menu.actions() if a.text() == probe)
    return next(a for a in submenu.actions() if a.text() == text)


def test_probe_menu_generates_probes_at_odd_sizes(qtbot, window, monkeypatch):
    probe_action(window, "Zone plate", "65 x 65 (odd)").trigger()
    qtbot.waitUntil(lambda: window.controller.loaded is not None
                    and window.controller.loaded.name == "Zone plate (65x65)")
    wait_idle(qtbot, window)
    np.testing.assert_array_equal(window.controller.loaded.image, zone_plate(65, 65))
    assert window.level_panel.model.rowCount() == len(level_sizes((65, 65)))
    monkeypatch.setattr(ProbeMenu, "ask_size", lambda self, probe: (33, 17))
    probe_action(window, "Slanted edge", OTHER_SIZE).trigger()
    qtbot.waitUntil(lambda: window.controller.loaded.name == "Slanted edge (33x17)")
    wait_idle(qtbot, window)
    np.testing.assert_array_equal(window.controller.loaded.image, slanted_edge(33, 17))


def test_tool_export_writes_the_shown_arrays_and_asks_before_replacing(qtbot, opened, tmp_path, monkeypatch):
    opened.controller.set_setting("storage", "uint8_saturate")
    show(qtbot, opened, "integrity")
    out = tmp_path / "out"
    parameters = export_through_dialog(qtbot, opened, opened.tab("integrity"), out)["parameters"]
    result = opened.tab("integrity").result
    np.testing.assert_array_equal(np.load(out / "integrity_residual.npy"), result.laplacian.layer.data)
    round_trip = np.load(out / "gaussian_round_trip_residual.npy")
    np.testing.assert_array_equal(round_trip, result.gaussian.layer.data)
    assert parameters["tool"] == "integrity" and parameters["storage"] == "uint8_saturate"
    before = (out / "integrity_residual.npy").read_bytes()
    monkeypatch.setattr(ToolExportDialog, "confirm_overwrite", lambda self, existing: False)
    qtbot.mouseClick(opened.tab("integrity").export_button, Qt.MouseButton.LeftButton)
    dialog = opened.findChildren(ToolExportDialog)[-1]
    dialog.folder.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData("npy"))
    dialog.export_button.click()
    assert "Nothing exported" in dialog.summary.text()
    assert (out / "integrity_residual.npy").read_bytes() == before
    dialog.close()


@pytest.mark.parametrize("view", ["integrity", "equalizer", "kernels", "unpool"])
def test_every_tool_view_is_reachable_by_name_and_shortcut(qtbot, opened, view):
    index = ("pyramid", "compare", "integrity", "equalizer", "kernels", "unpool").index(view)
    qtbot.keyClick(opened, Qt.Key(Qt.Key.Key_1 + index), Qt.KeyboardModifier.ControlModifier)
    assert opened.tabs.currentWidget() is opened.tool_tabs[view]
    wait_idle(qtbot, opened)
    assert opened.tool_tabs[view].result is not None
    assert opened.tool_tabs[view].export_button.isEnabled()
