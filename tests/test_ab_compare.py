"""The A/B comparison's arrays against direct numpy formulas (and OpenCV's PSNR)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pyramid_explorer.ab_compare import (
    MODE_TITLES,
    ABRequest,
    ABResult,
    compare_pair,
    crop_to_layer,
    data_range_of,
    difference,
    level_candidates,
    pair_stats,
    swipe,
    symmetric_limits,
)
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.display import make_layer

SHAPES = [(1, 1), (7, 5), (7, 5, 3), (6, 9, 4), (1, 13, 3)]
DTYPES = [np.uint8, np.uint16, np.float32]


def pair(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.normal(0, 1, shape).astype(dtype), rng.normal(0, 1, shape).astype(dtype)
    top = np.iinfo(dtype).max
    return (rng.integers(0, top, shape, endpoint=True).astype(dtype),
            rng.integers(0, top, shape, endpoint=True).astype(dtype))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", DTYPES)
def test_difference_is_a_minus_b_in_float32_without_overflow(shape, dtype):
    a, b = pair(shape, dtype)
    d = difference(a, b)
    assert d.dtype == np.float32 and d.shape == a.shape
    np.testing.assert_array_equal(d, (a.astype(np.float64) - b.astype(np.float64)).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_integer_extremes_neither_wrap_nor_saturate(dtype):
    top = np.iinfo(dtype).max
    a = np.array([[0, top]], dtype)
    d = difference(a, a[:, ::-1])
    assert d.tolist() == [[-float(top), float(top)]]


def test_pairs_of_other_shapes_are_refused_in_one_line():
    with pytest.raises(ValueError, match=r"A and B differ in shape: \(2, 3\) vs \(3, 2\)"):
        difference(np.zeros((2, 3)), np.zeros((3, 2)))


def test_symmetric_limits_span_the_largest_finite_magnitude():
    values = np.array([[-3.0, 2.0], [np.nan, np.inf]], np.float32)
    assert symmetric_limits(values) == (-3.0, 3.0)
    assert symmetric_limits(np.zeros((2, 2), np.float32)) == (-1.0, 1.0)
    assert symmetric_limits(np.full((2, 2), np.nan, np.float32)) == (-1.0, 1.0)


@pytest.mark.parametrize("shape", SHAPES[1:])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pair_stats_match_direct_formulas(shape, dtype):
    a, b = pair(shape, dtype, seed=3)
    data_range = data_range_of(a, b)
    stats = pair_stats(a, b, data_range)
    d = a.astype(np.float64) - b.astype(np.float64)
    assert stats.max_abs == pytest.approx(np.abs(d).max(), rel=1e-6)
    assert stats.rms == pytest.approx(math.sqrt(np.mean(d**2)), rel=1e-6)
    assert stats.psnr == pytest.approx(10 * math.log10(data_range**2 / np.mean(d**2)), rel=1e-6)


def test_psnr_of_uint8_matches_opencv():
    a, b = pair((31, 17, 3), np.uint8, seed=5)
    assert pair_stats(a, b, 255.0).psnr == pytest.approx(cv2.PSNR(a, b), rel=1e-9)


def test_identical_images_have_zero_difference_and_infinite_psnr():
    a, _ = pair((5, 4, 3), np.uint16)
    stats = pair_stats(a, a.copy(), data_range_of(a, a))
    assert stats.max_abs == 0 and stats.rms == 0 and math.isinf(stats.psnr)
    assert "identical" in stats.text()


def test_data_range_is_the_dtype_range_for_integers_and_the_span_for_floats():
    assert data_range_of(*pair((3, 3), np.uint8)) == 255
    assert data_range_of(*pair((3, 3), np.uint16)) == 65535
    a = np.array([[0.0, 10.0]], np.float32)
    assert data_range_of(a, np.array([[-5.0, np.nan]], np.float32)) == 15.0
    assert data_range_of(a / 100, a / 100) == 1.0  # at least the nominal 1.0


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (6, 9, 4)])
@pytest.mark.parametrize("column", [-3, 0, 1, 2, 4, 5, 9, 50])
def test_swipe_takes_columns_left_of_the_divider_from_a(shape, column):
    a, b = pair(shape, np.uint8, seed=1)
    out = swipe(a, b, column)
    x = min(max(column, 0), shape[1])
    expected = np.concatenate([a[:, :x], b[:, x:]], axis=1)
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == a.dtype


def test_crop_to_layer_finds_the_region_a_cropped_comparison_covers():
    reference = np.arange(40 * 60).reshape(40, 60)
    level, top, left = 2, 6, 10
    scale = 2.0**level
    origin = (left * scale - scale / 2, top * scale - scale / 2)  # as jobs.compare places a crop
    np.testing.assert_array_equal(crop_to_layer(reference, (8, 12), scale, origin),
                                  reference[top:top + 8, left:left + 12])
    np.testing.assert_array_equal(crop_to_layer(reference, (40, 60), 1.0, (-0.5, -0.5)), reference)


def test_level_candidates_offer_the_reference_and_each_mode_by_its_human_name():
    reference = np.zeros((6, 8, 3), np.uint8)
    layers = {mode: make_layer(np.full((6, 8, 3), n, np.uint8), 1) for n, mode in enumerate(MODES)}
    layers["deconv"] = make_layer(np.zeros((9, 12, 3), np.uint8), 1)  # stride 3: another shape
    candidates = level_candidates(reference, layers)
    assert list(candidates) == ["G[1]", *(MODE_TITLES[m] for m in MODES)]
    assert candidates["pyrUp"] is layers["pyrup"].data
    assert level_candidates(reference, {}) == {}


def test_compare_pair_draws_a_and_b_alike_and_the_difference_symmetrically():
    a, b = pair((9, 11, 3), np.uint16, seed=2)
    request = ABRequest({"x": a, "y": b}, "x", "y", level=1, origin=(-1.0, -1.0), scale=2.0)
    *_, result = compare_pair(request)
    assert isinstance(result, ABResult)
    assert result.a.data is a and result.b.data is b
    assert result.a.limits == result.b.limits == (float(min(a.min(), b.min())), float(max(a.max(), b.max())))
    np.testing.assert_array_equal(result.difference.data, a.astype(np.float32) - b.astype(np.float32))
    lo, hi = result.difference.limits
    assert lo == -hi and hi == pytest.approx(np.abs(result.difference.display).max())
    assert result.difference.signed and result.difference.display.ndim == 2
    assert (result.a.scale, result.a.origin) == (2.0, (-1.0, -1.0))
