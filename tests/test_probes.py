"""Probe images and bundled samples."""

from __future__ import annotations

import numpy as np
import pytest

from pyramid_explorer.core.probes import (
    checkerboard,
    impulse_grid,
    ramp,
    resolution_chart,
    slanted_edge,
    zone_plate,
)
from pyramid_explorer.samples import (
    DEFAULT_SAMPLE,
    PROBE_SIZES,
    PROBES,
    SAMPLES,
    load_sample,
    make_probe,
    probe_title,
)


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


@pytest.mark.parametrize(("w", "h"), [(1, 1), (1, 7), (9, 4), (65, 33)])
def test_generated_probes_have_the_asked_size(w, h):
    for name in PROBES:
        img = make_probe(name, w, h)
        assert img.shape == (h, w) and img.dtype == np.uint8, name


def test_checkerboard_cells():
    board = checkerboard(7, 5, cell=2)
    y, x = np.mgrid[:5, :7]
    np.testing.assert_array_equal(board, np.where((y // 2 + x // 2) % 2 == 0, 255, 0))
    assert checkerboard(4, 4, cell=1)[0, 0] == 255 and checkerboard(4, 4, cell=1)[0, 1] == 0
    with pytest.raises(ValueError, match="cell"):
        checkerboard(4, 4, cell=0)


def test_impulse_grid_positions():
    grid = impulse_grid(21, 13, spacing=8)
    rows, cols = np.nonzero(grid)
    assert set(rows) == {4, 12} and set(cols) == {4, 12, 20}
    assert grid.sum() == 255 * 6
    with pytest.raises(ValueError, match="spacing"):
        impulse_grid(4, 4, spacing=0)


def test_slanted_edge_matches_supersampled_area():
    """Each pixel is 32 + 192 * the fraction of its area right of the edge, which runs through the
    centre 5 degrees off vertical: checked against 64x64 point samples per pixel."""
    w, h, degrees = 41, 31, 5.0
    edge = slanted_edge(w, h, degrees).astype(float)
    n = 64
    sub = (np.arange(n) + 0.5) / n - 0.5
    t = np.tan(np.radians(degrees))
    for y in (0, 7, 15, 30):
        ys = y + sub[:, None]
        for x in range(14, 27):  # around the edge; the rest is flat
            xs = x + sub[None, :]
            fraction = np.mean((xs - (w - 1) / 2) - t * (ys - (h - 1) / 2) > 0)
            assert abs(edge[y, x] - (32 + 192 * fraction)) <= 1.0, (y, x)
    assert edge.min() == 32 and edge.max() == 224


def test_ramp_spans_the_range_left_to_right():
    r = ramp(256, 3)
    np.testing.assert_array_equal(r[0], np.arange(256))
    np.testing.assert_array_equal(r[2], r[0])
    np.testing.assert_array_equal(ramp(1, 2), np.zeros((2, 1)))


def test_probe_menu_sizes_include_odd_ones_and_bad_requests_are_refused():
    assert any(w % 2 for w, _ in PROBE_SIZES) and any(h % 2 for _, h in PROBE_SIZES)
    assert probe_title("Ramp", 65, 33) == "Ramp (65x33)"
    with pytest.raises(ValueError, match="probes:"):
        make_probe("Spiral", 8, 8)
    with pytest.raises(ValueError, match="size"):
        make_probe("Ramp", 0, 8)
