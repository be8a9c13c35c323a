"""Odd inputs in the window: EXIF orientation applied, a multi-frame file shows its first frame and says
so (tests/test_io.py and tests/robustness/test_load_paths.py cover the loader and the command line),
float images with NaN and +-inf, constant images and one-pixel sides display and compare without an
error (a RuntimeWarning in the worker would be one: the suite turns warnings into errors)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tifffile
from helpers import turned_png
from PIL import Image

from pyramid_explorer.core.io import save_image


def settle(qtbot, window) -> None:
    qtbot.waitUntil(lambda: window.controller.pyramid is not None and window.is_settled(), timeout=20_000)


@pytest.mark.parametrize("orientation", range(2, 9))
def test_window_shows_the_image_upright(qtbot, window, tmp_path, orientation):
    path, upright = turned_png(tmp_path, orientation)
    window.controller.open_path(str(path))
    settle(qtbot, window)
    assert np.array_equal(window.tab("pyramid").source.layer.data, upright)
    assert window.controller.pyramid.gaussian[0].shape == upright.shape


def test_window_says_it_shows_the_first_frame(qtbot, window, tmp_path):
    frames = [Image.new("RGB", (6, 4), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "blink.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    messages = []
    window.controller.status.connect(messages.append)
    window.controller.open_path(str(path))
    settle(qtbot, window)
    assert "Opened blink.gif: the first of its 3 frames; building its pyramid..." in messages
    assert "(frame 1 of 3)" in window.tab("pyramid").source.title()
    assert (window.tab("pyramid").source.layer.data[..., :3] == (255, 0, 0)).all()


def compare_everything(qtbot, window) -> None:
    """Visit every level in both views: no job may fail, and every panel shown has finite limits."""
    for view in ("pyramid", "compare"):
        window.show_view(view)
        for level in range(window.controller.pyramid.levels):
            window.controller.set_level(level)
            settle(qtbot, window)
            assert not window.banner.isVisible(), window.banner.label.text()
            for panel in [*window.tab("pyramid").panels, *window.tab("compare").panels]:
                if panel.layer is not None:
                    low, high = panel.layer.limits
                    assert math.isfinite(low) and math.isfinite(high) and low < high, panel.name


def test_float_image_with_nan_and_inf_displays_with_finite_limits(qtbot, window, tmp_path):
    image = np.random.default_rng(4).random((37, 29, 3), dtype=np.float32)
    image[0, 0, 0], image[5, 7, 1], image[20, 3, 2] = np.nan, np.inf, -np.inf
    path = tmp_path / "special.tif"
    tifffile.imwrite(path, image, photometric="rgb")
    window.controller.open_path(str(path))
    settle(qtbot, window)
    assert window.tab("pyramid").source.layer.data.tobytes() == image.tobytes()
    for stats in window.controller.pyramid.stats:
        assert all(math.isfinite(v) or math.isnan(v) for v in (stats.minimum, stats.maximum, stats.mean))
    first = window.controller.pyramid.stats[0]
    finite = image[np.isfinite(image)]
    assert (first.minimum, first.maximum) == (float(finite.min()), float(finite.max()))
    compare_everything(qtbot, window)


@pytest.mark.parametrize(("shape", "dtype"), [((40, 50), np.uint8), ((9, 7, 3), np.float32),
                                              ((1, 1), np.uint16), ((1, 13, 4), np.uint8)])
def test_constant_and_one_pixel_images_display_without_dividing_by_zero(qtbot, window, tmp_path, shape,
                                                                         dtype):
    path = tmp_path / "flat.tif"
    save_image(path, np.full(shape, 0.5 if dtype == np.float32 else 7, dtype))
    window.controller.open_path(str(path))
    settle(qtbot, window)
    compare_everything(qtbot, window)
