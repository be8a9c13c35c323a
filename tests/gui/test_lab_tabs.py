"""The coding, shift and convmatrix labs driven through their widgets: what each shows is the core's,
what the user moves reaches the controller, and what each exports is what it shows."""

from __future__ import annotations

import numpy as np
import pytest
from guitools import export_through_dialog, make_image, show, wait_idle, write_png
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from pyramid_explorer.core.analysis import CODING_PRESETS, code_pyramid, coding_curve, preset_steps
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.convmatrix import Geometry, size_formula
from pyramid_explorer.core.equivariance import DOWNSAMPLERS, shift_study
from pyramid_explorer.tools.coding import DEFAULT_PRESET, SCALES
from pyramid_explorer.tools.shift import NAMES


def torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# --- coding -------------------------------------------------------------------------------------


def test_coding_tab_codes_with_the_presets_steps_and_plots_both_curves(qtbot, opened):
    show(qtbot, opened, "coding")
    tab, image, levels = opened.tab("coding"), make_image(), opened.controller.pyramid.levels
    steps = preset_steps(DEFAULT_PRESET, levels, np.uint8)
    assert len(tab.sliders) == levels and tab.steps() == steps
    code, curves = tab.result
    core = code_pyramid(image, steps)
    assert tab.summary.text().startswith(f"{core.bits_per_pixel:.3f} bits per pixel")
    assert f"PSNR {core.psnr:.2f} dB, SSIM {core.ssim:.3f}" in tab.summary.text()
    assert tab.rebuilt.title() == f"Rebuilt: {core.bits_per_pixel:.2f} bpp"
    qtbot.waitUntil(lambda: tab.rebuilt.layer is code.rebuilt and tab.jpeg.layer is code.jpeg_image)
    np.testing.assert_array_equal(tab.rebuilt.layer.data, to_dtype(core.rebuilt, np.uint8))
    bpp, psnr = tab.plot.pyramid.getData()
    expected = coding_curve(image, steps, SCALES)
    np.testing.assert_allclose(bpp, [p.bits_per_pixel for p in expected])
    np.testing.assert_allclose(psnr, [p.psnr for p in expected])
    assert len(tab.plot.jpeg.getData()[0]) == len(curves.jpeg) > 0
    assert tab.plot.current.getData()[0][0] == pytest.approx(core.bits_per_pixel)


def test_coding_sliders_and_presets_reach_the_code_and_export(qtbot, opened, tmp_path):
    show(qtbot, opened, "coding")
    tab, image = opened.tab("coding"), make_image()
    curves = tab.result[1]
    tab.sliders[0].setValue(32 * 4)  # 32 grey levels on the finest band
    wait_idle(qtbot, opened)
    steps = tab.steps()
    assert steps[0] == 32.0 and opened.controller.settings["coding_steps"] == steps
    code = tab.result[0]
    assert code.steps == steps and code.bits_per_pixel == code_pyramid(image, steps).bits_per_pixel
    assert tab.result[1] is curves  # the curves belong to the preset: not computed again
    assert tab.bits_labels[0].text() == f"{code.band_bits[0]:.2f} bits"

    tab.preset.setCurrentIndex(CODING_PRESETS.index("uniform"))
    wait_idle(qtbot, opened)
    assert [s.value() for s in tab.sliders] == [16] * len(tab.sliders)  # 4 grey levels each
    assert opened.controller.settings["coding_preset"] == "uniform"
    assert tab.result[0].steps == preset_steps("uniform", len(tab.sliders), np.uint8)
    assert tab.result[1].preset == "uniform" and tab.result[1].complete

    manifest = export_through_dialog(qtbot, opened, tab, tmp_path / "out")
    code, curves = tab.result
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "rebuilt.npy"), code.rebuilt.data)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "jpeg_same_rate.npy"), code.jpeg_image.data)
    parameters = manifest["parameters"]
    assert parameters["tool"] == "coding" and parameters["preset"] == "uniform"
    assert parameters["bits_per_pixel"] == pytest.approx(code.bits_per_pixel)
    assert len(parameters["pyramid_curve"]) == len(SCALES)


# --- shift --------------------------------------------------------------------------------------


def test_shift_tab_plots_every_downsampler_at_the_selected_level(qtbot, opened):
    opened.controller.set_level(1)
    show(qtbot, opened, "shift")
    tab = opened.tab("shift")
    level = opened.controller.pyramid.gaussian[1]
    assert tab.result.complete and tab.result.level == 1
    h, w = level.shape[:2]
    assert tab.note.text().startswith(f"G[1], {w - w % 2} x {h - h % 2}, diagonal shifts")
    for name in DOWNSAMPLERS:
        study = shift_study(level, name, 8, "diagonal")
        shifts, rms = tab.rms_curves[name].getData()
        np.testing.assert_array_equal(shifts, np.arange(9))
        np.testing.assert_allclose(rms, study.rms)
        finite = np.isfinite(study.psnr)
        np.testing.assert_allclose(tab.psnr_curves[name].getData()[1], study.psnr[finite])
        assert NAMES[name] in tab.legend.text()
    tab.shown.setCurrentIndex(DOWNSAMPLERS.index("pyrdown"))
    curve = tab.curve("pyrdown")
    qtbot.waitUntil(lambda: tab.first.layer is curve.first and tab.difference.layer is curve.difference)
    assert tab.first.title() == f"{NAMES['pyrdown']}, shift {curve.pair[0]}"
    assert tab.difference.title().endswith(f"RMS {curve.pair_rms:.3g}")


def test_shift_direction_and_range_reach_the_study_and_export(qtbot, opened, tmp_path):
    show(qtbot, opened, "shift")
    tab = opened.tab("shift")
    tab.direction.setCurrentIndex(tab.direction.findData("vertical"))
    tab.max_shift.setValue(3)
    wait_idle(qtbot, opened)
    assert opened.controller.settings["shift_direction"] == "vertical"
    result = tab.result
    assert result.direction == "vertical" and result.max_shift == 3
    study = shift_study(opened.controller.pyramid.gaussian[0], "maxpool", 3, "vertical")
    np.testing.assert_allclose(tab.rms_curves["maxpool"].getData()[1], study.rms)
    manifest = export_through_dialog(qtbot, opened, tab, tmp_path / "out")
    a, b = study.pair
    saved = np.load(tmp_path / "out" / f"maxpool_shift{b}.npy")
    np.testing.assert_array_equal(saved, to_dtype(study.pair_outputs[1], np.uint8))
    assert manifest["parameters"]["direction"] == "vertical"
    assert manifest["parameters"]["curves"]["maxpool"]["most_different"] == [a, b]


# --- convmatrix ---------------------------------------------------------------------------------


def set_geometry(qtbot, window, tab, **values) -> None:
    for name, value in values.items():
        tab.spins[f"convmatrix_{name}"].setValue(value)
    wait_idle(qtbot, window)


def test_convmatrix_tab_shows_the_formula_frames_and_check(qtbot, opened):
    show(qtbot, opened, "convmatrix")
    tab = opened.tab("convmatrix")
    set_geometry(qtbot, opened, tab, input=3, kernel_size=4, stride=2, padding=1, output_padding=1)
    result = tab.result
    assert result.geometry == Geometry((3, 3), (4, 4), 2, 1, 1)
    assert size_formula(3, 4, 2, 1, 1) in tab.formula.text()  # (3 - 1)*2 - 2*1 + 4 + 1 = 7
    torch = "PyTorch ConvTranspose2d gives 7 x 7" if torch_installed() else "PyTorch not installed"
    assert torch in tab.formula.text()
    assert f"max difference {result.max_difference:.2g}" in tab.check.text()
    assert tab.c.title() == "C: 9 x 49" and tab.gram.title() == "C^T C: 49 x 49"
    assert tab.round_trip.title() == f"C^T C x: mean x{result.round_trip_gain:.2f}"
    tab.slider.setValue(4)
    assert tab.frame.layer is result.frames[4] and tab.frame.title() == "Frame 5/9"
    assert "(row 1, column 1)" in tab.frame_label.text()
    tab.slider.setValue(0)
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.slider.value() >= 1, timeout=5000)
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    assert tab.play_button.text() == "Play" and not tab.player.isActive()
    qtbot.mouseClick(tab.play_button, Qt.MouseButton.LeftButton)
    assert tab.player.isActive()
    opened.show_view("shift")  # leaving the tab stops the animation
    assert not tab.player.isActive() and not tab.play_button.isChecked()
    wait_idle(qtbot, opened)


@pytest.mark.parametrize("suffix", [".gif", ".png"])
def test_convmatrix_saves_its_frames_as_an_animation(qtbot, opened, tmp_path, monkeypatch, suffix):
    show(qtbot, opened, "convmatrix")
    tab = opened.tab("convmatrix")
    path = tmp_path / f"frames{suffix}"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", staticmethod(lambda *args, **kw: (str(path), "")))
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    pictures = tab.result.pictures
    assert tab.saved.text() == f"Saved {len(pictures)} frames to {path.name}"
    with Image.open(path) as saved:
        assert saved.n_frames == len(pictures) == 16
        for index in (0, 7, 15):
            saved.seek(index)
            np.testing.assert_array_equal(np.asarray(saved.convert("RGB")), pictures[index])


def test_convmatrix_refuses_a_bad_file_and_a_bad_geometry(qtbot, opened, tmp_path):
    show(qtbot, opened, "convmatrix")
    tab = opened.tab("convmatrix")
    assert tab.save_animation_to(str(tmp_path / "frames.jpg")).startswith("Could not save the animation")
    assert not (tmp_path / "frames.jpg").exists()
    set_geometry(qtbot, opened, tab, stride=2, output_padding=2)
    assert tab.result is None and not tab.export_button.isEnabled() and not tab.save_button.isEnabled()
    assert "output_padding must be smaller than the stride" in tab.formula.text()
    set_geometry(qtbot, opened, tab, output_padding=1)
    assert tab.result is not None and tab.export_button.isEnabled()


def test_convmatrix_export_writes_what_it_shows(qtbot, opened, tmp_path):
    opened.controller.set_level(1)
    show(qtbot, opened, "convmatrix")
    tab = opened.tab("convmatrix")
    tab.weights.setCurrentIndex(tab.weights.findData("box"))
    wait_idle(qtbot, opened)
    manifest = export_through_dialog(qtbot, opened, tab, tmp_path / "out")
    result = tab.result
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "conv_matrix.npy"), result.c.data)
    np.testing.assert_array_equal(np.load(tmp_path / "out" / "ct_c_image.npy"), result.round_trip.data)
    assert manifest["parameters"]["weights"] == "box" and manifest["parameters"]["level"] == 1


# --- other images -------------------------------------------------------------------------------


def test_the_labs_take_a_16_bit_grey_image(qtbot, window, tmp_path):
    deep = make_image()[:, :, 0].astype(np.uint16) * 257
    window.controller.open_path(write_png(tmp_path / "deep.png", deep))
    wait_idle(qtbot, window)
    show(qtbot, window, "coding")
    tab = window.tab("coding")
    assert tab.jpeg.title() == "JPEG: not available" and "this one is uint16" in tab.summary.text()
    assert tab.result[0].rebuilt.data.dtype == np.uint16 and tab.plot.jpeg.getData()[0] is None
    assert tab.result[0].unit == pytest.approx(65535 / 255)
    show(qtbot, window, "shift")
    assert window.tab("shift").result.complete
    show(qtbot, window, "convmatrix")
    np.testing.assert_array_equal(window.tab("convmatrix").result.source.data, deep)
