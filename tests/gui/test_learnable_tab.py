"""The Learnable tab driven through its widgets: initialisations, reseeding, the user's kernel opened with
the file dialog (a bad file is one line in the tab), and its export."""

from __future__ import annotations

import numpy as np
import pytest
from guitools import export_through_dialog, make_image, open_tab, wait_idle, write_png
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog
from safetensors.numpy import save_file

from pyramid_explorer.core.learnable import checkerboard, initialise


@pytest.fixture
def tab(qtbot, window, tmp_path):
    return open_tab(qtbot, window, write_png(tmp_path / "src.png", make_image(61, 83)), "learnable")


def choose(box, data) -> None:
    box.setCurrentIndex(box.findData(data))


def test_each_column_shows_its_upsamplers_phase_sums_and_numbers(qtbot, window, tab):
    result = tab.result
    assert [init for _, init in result.inits] == ["random"] * 3 and not tab.own_column.isVisible()
    for view in result.views:
        column = tab.columns[view.method]
        np.testing.assert_allclose(column.phases.values(), view.board.phase_sums, rtol=1e-3)
        assert column.image.layer is view.image and column.weights.layer is view.weights
        assert f"PSNR {view.psnr:.2f} dB" in column.numbers.text().replace("\u00a0", " ")
        assert column.verdict.text().lower().startswith(view.board.verdict[:10].lower())
    choose(tab.init_boxes["subpixel"], "icnr")
    wait_idle(qtbot, window)
    assert window.controller.settings["learnable_init_subpixel"] == "icnr"
    icnr_view = tab.result.views[2]
    assert icnr_view.title.startswith("Sub-pixel convolution (ICNR")
    np.testing.assert_allclose(tab.columns["subpixel"].phases.values(), 1.0, rtol=1e-3)
    assert tab.columns["subpixel"].verdict.text().startswith("Even")


def test_reseed_draws_new_random_weights(qtbot, window, tab):
    before = tab.result.views[0].upsampler.weights
    qtbot.mouseClick(tab.reseed_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert tab.result.seed == 1 and tab.seed_label.text().endswith(": 1")
    after = tab.result.views[0].upsampler.weights
    np.testing.assert_array_equal(after, initialise("transposed", "random", 2, seed=1).weights)
    assert not np.array_equal(before, after)


def test_own_kernel_opened_from_the_dialog_and_its_channels(qtbot, window, tab, tmp_path, monkeypatch):
    weight = np.random.default_rng(5).random((2, 3, 4, 4)).astype(np.float32)
    path = tmp_path / "up.npy"
    np.save(path, weight)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(path), ""))
    qtbot.mouseClick(tab.open_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    own = tab.result.own
    assert tab.own_column.isVisible() and own is not None
    np.testing.assert_allclose(own.upsampler.weights, weight.mean(axis=(0, 1)), rtol=1e-6)
    np.testing.assert_allclose(tab.own_column.phases.values(), checkerboard(own.upsampler).phase_sums,
                               rtol=1e-3)
    assert tab.in_channel.maximum() == 1 and tab.out_channel.maximum() == 2
    assert "ConvTranspose2d (C_in, C_out, k, k)" in tab.own_note.text()
    tab.in_channel.setValue(1)
    tab.out_channel.setValue(2)
    wait_idle(qtbot, window)
    np.testing.assert_array_equal(tab.result.own.upsampler.weights, weight[1, 2])
    assert "distance to bilinear" in tab.own_column.numbers.text().replace("\u00a0", " ")


def test_a_bad_kernel_file_is_one_line_in_the_tab(qtbot, window, tab, tmp_path):
    path = tmp_path / "broken.safetensors"
    path.write_bytes(b"\x00" * 20)
    tab.open_kernel(str(path))
    wait_idle(qtbot, window)
    assert tab.result.own is None and not tab.own_column.isVisible()
    text = tab.own_note.text()
    assert text.startswith("cannot load a kernel from") and "broken.safetensors" in text and "\n" not in text
    assert all(column.image.layer is not None for column in tab.columns.values())


def test_export_writes_the_views(qtbot, window, tab, tmp_path):
    out = tmp_path / "out"
    parameters = export_through_dialog(qtbot, window, tab, out)["parameters"]
    views = tab.result.views
    np.testing.assert_array_equal(np.load(out / "subpixel_weights.npy"), views[2].upsampler.weights)
    np.testing.assert_array_equal(np.load(out / "transposed_upsampled.npy"), views[0].image.data)
    assert parameters["tool"] == "learnable" and parameters["seed"] == 0
    assert parameters["views"][1]["verdict"].startswith("even")


def test_another_tensor_of_the_file_can_be_chosen(qtbot, window, tab, tmp_path):
    path = tmp_path / "net.safetensors"
    weight = np.random.default_rng(6).random((2, 2, 4, 4)).astype(np.float32)
    save_file({"a.bias": np.ones(8, np.float32), "b.weight": weight}, str(path))
    tab.open_kernel(str(path))
    wait_idle(qtbot, window)
    assert tab.result.own is None and "4-D" in tab.own_note.text()
    assert [tab.tensor.itemData(i) for i in range(tab.tensor.count())] == ["a.bias", "b.weight"]
    tab.tensor.setCurrentIndex(1)
    wait_idle(qtbot, window)
    assert tab.result.own_kernel.name == "b.weight" and tab.own_column.isVisible()
    np.testing.assert_allclose(tab.result.own.upsampler.weights, weight.mean(axis=(0, 1)), rtol=1e-6)
