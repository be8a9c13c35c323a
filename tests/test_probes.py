"""Probe images and bundled samples."""

from __future__ import annotations

import numpy as np
import pytest

from pyramid_explorer.core.probes import resolution_chart, zone_plate
from pyramid_explorer.samples import DEFAULT_SAMPLE, SAMPLES, load_sample


@pytest.mark.parametrize(("w", "h"), [(1, 1), (1, 7), (9, 4), (513, 385)])
def test_zone_plate_shape_and_formula(w, h):
    z = zone_plate(w, h)
    assert z.shape == (h, w) and z.dtype == np.uint8
    cy, cx = (h - 1) / 2, (w - 1) / 2
    corner = max(np.hypot(cx, cy), 0.5)
    y, x = h // 3, w // 4
    expected = 127.5 + 127.5 * np.cos(np.pi * ((x - cx) ** 2 + (y - cy) ** 2) / (2 * corner))
    assert abs(int(z[y, x]) - expected) <= 0.5


def test_zone_plate_reaches_nyquist_at_the_corners_only():
    """Local frequency r / R with R twice the corner distance: 0.5 cycles/pixel exactly at a corner."""
    z = zone_plate(201, 201).astype(float)
    assert z[100, 100] == 255
    np.testing.assert_array_equal(z, z[::-1, ::-1])  # point symmetric about the centre
    row = z[100, 100:]
    crossings = np.count_nonzero(np.diff(np.sign(row - 127.5)) != 0)
    # phase at the edge is pi * 100^2 / (2 * 100 * sqrt 2): about 35 half periods, not 100
    assert 30 <= crossings <= 40


@pytest.mark.parametrize(("w", "h"), [(1, 1), (17, 5), (641, 481)])
def test_resolution_chart_shape_and_content(w, h):
    c = resolution_chart(w, h)
    assert c.shape == (h, w, 3) and c.dtype == np.uint8
    np.testing.assert_array_equal(c, resolution_chart(w, h))


def test_resolution_chart_has_one_pixel_line_pairs_and_both_extremes():
    c = resolution_chart()
    assert c.min() == 0 and c.max() == 255
    grey = c.mean(axis=2)
    block = grey[2 * 481 // 3: 2 * 481 // 3 + 40, 481 // 40: 481 // 40 + 40]
    np.testing.assert_array_equal(block[:, ::2], 0)
    np.testing.assert_array_equal(block[:, 1::2], 255)


def test_probe_sizes_are_checked():
    with pytest.raises(ValueError):
        zone_plate(0, 5)
    with pytest.raises(ValueError):
        resolution_chart(5, 0)


def test_every_sample_loads():
    for name in SAMPLES:
        img = load_sample(name)
        assert img.dtype == np.uint8 and img.ndim in (2, 3)
    assert load_sample(DEFAULT_SAMPLE).shape == (300, 451, 3)
    with pytest.raises(ValueError, match="samples:"):
        load_sample("no such sample")
