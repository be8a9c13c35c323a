"""The Blend tab driven through its widgets: the second image and mask opened with the file dialog, fit,
mask, feather and the tutorial's clipping as the user sets them, the level's band, bad files, export."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from guitools import export_through_dialog, make_image, open_tab, wait_idle, write_png
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog


@pytest.fixture
def tab(qtbot, window, tmp_path):
    return open_tab(qtbot, window, write_png(tmp_path / "src.png", make_image(45, 67)), "blend")


def pick_file(monkeypatch, path) -> None:
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *args: (str(path), ""))


def test_every_panel_is_drawn_and_titled(tab):
    result = tab.result
    assert result.options.second is None and result.options.mask == "left"
    for name, panel in tab.image_panels.items():
        assert panel.layer is getattr(result, name)
    assert tab.fit_note.text() == "coffee.png: centre-cropped from 600x400 to 67x45"
    assert tab.image_panels["feathered"].title() == "alpha blend, feathered 24 px"


def test_out_of_date_titles_name_the_panels_as_their_titles_do(qtbot, window, tab, tmp_path):
    """A new image clears the panels: their titles say what each is in words, not its code name."""
    titles: dict[str, str] = {}

    def record(_loaded) -> None:  # connected after the window's own handler, which clears the panels
        titles.update({name: panel.title() for name, panel in tab.image_panels.items()})

    window.controller.image_loaded.connect(record)
    with qtbot.waitSignal(window.controller.image_loaded):
        window.controller.open_path(write_png(tmp_path / "other.png", make_image(30, 41)))
    wait_idle(qtbot, window)
    assert titles["mask_level"] == "mask at the level: computing for other.png..."
    assert titles["first"].startswith("A (the open image): computing")
    for name, title in titles.items():
        assert title.split(": ")[0] != name and "_" not in title, title


def test_fit_mask_feather_and_level_follow_the_widgets(qtbot, window, tab):
    tab.fit_buttons["resize"].click()
    wait_idle(qtbot, window)
    assert window.controller.settings["blend_fit"] == "resize"
    assert tab.fit_note.text() == "coffee.png: resized from 600x400 to 67x45"
    tab.mask_box.setCurrentIndex(tab.mask_box.findData("ellipse"))
    tab.feather.setValue(6)
    wait_idle(qtbot, window)
    assert tab.result.options.mask == "ellipse" and tab.result.options.feather == 6
    assert tab.mask_note.text().startswith("A inside a soft ellipse")
    assert tab.image_panels["feathered"].title() == "alpha blend, feathered 6 px"
    window.controller.set_level(2)
    wait_idle(qtbot, window)
    assert tab.result.level == 2 and tab.image_panels["mask_level"].layer.level == 2
    assert tab.image_panels["band"].title() == "band 2 of the blend, alone"


def test_the_tutorials_clipping_is_a_toggle(qtbot, window, tab):
    plain = tab.result.spline.data
    tab.clip.click()
    wait_idle(qtbot, window)
    assert tab.result.options.clip and tab.clip_note.text().startswith("uint8 bands")
    assert tab.image_panels["spline"].title() == "multiresolution blend (uint8 bands)"
    assert np.abs(tab.result.spline.data.astype(float) - plain).mean() > 1


def test_second_image_and_mask_image_from_the_dialog(qtbot, window, tab, tmp_path, monkeypatch):
    second = np.full((20, 30, 3), (200, 30, 30), np.uint8)
    pick_file(monkeypatch, write_png(tmp_path / "red.png", second))
    qtbot.mouseClick(tab.open_second_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert window.controller.settings["blend_second"].endswith("red.png")
    assert tab.second_label.text().endswith("red.png")
    assert tab.fit_note.text().startswith("red.png: scaled by")
    np.testing.assert_array_equal(tab.result.second.data[5, 5], (200, 30, 30))
    mask = np.zeros((45, 67), np.uint8)
    mask[:, 40:] = 255
    pick_file(monkeypatch, tmp_path / "mask.png")
    assert cv2.imwrite(str(tmp_path / "mask.png"), mask)
    qtbot.mouseClick(tab.open_mask_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert tab.mask_box.currentData() == "image"
    np.testing.assert_array_equal(tab.result.mask.data, mask / np.float32(255))
    qtbot.mouseClick(tab.bundled_button, Qt.MouseButton.LeftButton)
    wait_idle(qtbot, window)
    assert tab.result.options.second is None and tab.second_label.text().endswith("(bundled)")


def test_a_bad_second_image_is_one_line_in_the_tab(qtbot, window, tab, tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG broken")
    tab.open_second(str(path))
    wait_idle(qtbot, window)
    text = tab.error.text()
    assert text.startswith("cannot load") and "broken.png" in text and "\n" not in text
    assert tab.result is None and not tab.export_button.isEnabled()
    assert tab.image_panels["first"].layer is not None
    tab.bundled_button.click()
    wait_idle(qtbot, window)
    assert tab.error.text() == "" and tab.export_button.isEnabled()


def test_export_writes_the_blends(qtbot, window, tab, tmp_path):
    out = tmp_path / "out"
    parameters = export_through_dialog(qtbot, window, tab, out)["parameters"]
    np.testing.assert_array_equal(np.load(out / "multiresolution_blend.npy"), tab.result.spline.data)
    np.testing.assert_array_equal(np.load(out / "blended_band_0.npy"), tab.result.bands[0])
    assert parameters["tool"] == "blend" and parameters["mask"] == "left"


def test_the_clipping_toggle_is_off_for_images_that_are_not_uint8(qtbot, window, tab, tmp_path):
    deep = (make_image(45, 67).astype(np.uint16) * 257)[:, :, ::-1]  # BGR for OpenCV
    assert cv2.imwrite(str(tmp_path / "deep.png"), deep)
    window.controller.open_path(str(tmp_path / "deep.png"))
    wait_idle(qtbot, window)
    assert tab.result.first.data.dtype == np.uint16
    assert not tab.clip.isEnabled() and "uint8 images only; this one is uint16" in tab.clip_note.text()
    assert "uint8 values rescaled to uint16" in tab.fit_note.text()
