"""The display's area-averaged reductions, against a direct formula of the area mean."""

from __future__ import annotations

import gc
import math

import numpy as np
import pytest

from pyramid_explorer.screen_sampling import (
    ReductionCache,
    area_reduce,
    reduced_shape,
    reduction_factor,
    zoom_text,
)


def overlap_weights(size: int, reduced: int) -> np.ndarray:
    """(reduced, size): the share of reduced cell j = [j, j + 1) * size / reduced taken by pixel i."""
    edges = np.arange(reduced + 1) * size / reduced
    lo, hi = edges[:-1, None], edges[1:, None]
    pixel = np.arange(size)[None, :]
    overlap = np.clip(np.minimum(hi, pixel + 1) - np.maximum(lo, pixel), 0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def area_mean(image: np.ndarray, factor: int) -> np.ndarray:
    rows, cols = math.ceil(image.shape[0] / factor), math.ceil(image.shape[1] / factor)
    wy, wx = overlap_weights(image.shape[0], rows), overlap_weights(image.shape[1], cols)
    return np.einsum("ri,ij...,cj->rc...", wy, image.astype(np.float64), wx)


def random_image(shape: tuple[int, ...], dtype: type, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
@pytest.mark.parametrize("shape", [(37, 53), (1, 1), (5, 1), (1, 9), (64, 64), (33, 17, 3)])
@pytest.mark.parametrize("factor", [2, 4, 8])
def test_reduction_is_the_area_mean(dtype, shape, factor):
    image = random_image(shape, dtype)
    reduced = area_reduce(image, factor)
    assert reduced.dtype == image.dtype
    assert reduced.shape == reduced_shape(shape, factor) + shape[2:]
    # integers: rounding, plus float32 accumulation in OpenCV (1e-5 of a uint16 value is 0.65)
    tolerance = 0.5 + 1e-5 * float(image.max()) if image.dtype.kind == "u" else 1e-5
    np.testing.assert_allclose(reduced, area_mean(image, factor), atol=tolerance, rtol=0)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_rgba_colour_is_averaged_weighted_by_alpha(dtype):
    image = random_image((19, 26, 4), dtype, seed=3)
    full = 1.0 if image.dtype.kind == "f" else float(np.iinfo(dtype).max)
    image[:, ::3, 3] = 0  # transparent columns must not pull the colour
    if image.dtype.kind == "f":
        image[..., 3] = np.abs(image[..., 3])
    reduced = area_reduce(image, 4)
    alpha = area_mean(image[..., 3], 4)
    weighted = area_mean(image[..., :3] * image[..., 3:].astype(np.float64), 4)
    tolerance = 0.5 + 1e-3 if image.dtype.kind == "u" else 1e-4 * full
    np.testing.assert_allclose(reduced[..., 3], alpha, atol=tolerance, rtol=0)
    np.testing.assert_allclose(reduced[..., :3], weighted / alpha[..., None], atol=tolerance, rtol=1e-4)


def test_uniform_alpha_averages_colour_plainly():
    image = random_image((21, 30, 4), np.uint8, seed=4)
    image[..., 3] = 200
    reduced = area_reduce(image, 2)
    np.testing.assert_allclose(reduced, area_mean(image, 2), atol=0.5 + 1e-6, rtol=0)


def test_fully_transparent_areas_reduce_to_transparent_black():
    image = np.zeros((8, 8, 4), np.uint8)
    image[..., 2] = 255  # blue, but invisible...
    image[:, 4:] = (10, 20, 30, 255)  # ...beside opaque pixels
    np.testing.assert_array_equal(area_reduce(image, 4), [[[0, 0, 0, 0], [10, 20, 30, 255]]] * 2)


def test_a_checkerboard_reduces_to_flat_grey():
    board = (np.indices((64, 64)).sum(axis=0) % 2 * 255).astype(np.uint8)
    for factor in (2, 4, 8):
        assert set(np.unique(area_reduce(board, factor))) <= {127, 128}


def test_factor_one_is_the_image_itself_and_below_one_is_refused():
    image = random_image((4, 5), np.uint8)
    assert area_reduce(image, 1) is image
    with pytest.raises(ValueError, match="at least 1"):
        area_reduce(image, 0)


@pytest.mark.parametrize(("image_per_screen", "factor"), [
    (0.25, 1), (1.0, 1), (1.41, 1), (2 ** 0.5 - 1e-9, 2), (1.99, 2), (2.0, 2), (2.82, 2), (2.83, 4),
    (3.999999999, 4), (7.9, 8), (100.0, 128), (float("nan"), 1),
])
def test_factor_is_the_power_of_two_nearest_the_image_pixels_per_screen_pixel(image_per_screen, factor):
    assert reduction_factor(image_per_screen, 4000) == factor


def test_factor_stops_at_one_pixel():
    assert reduction_factor(1000.0, 10) == 16  # 10 / 16 rounds up to one pixel
    assert reduction_factor(1000.0, 1) == 1


@pytest.mark.parametrize(("zoom", "text"), [
    (16.0, "1600%"), (1.0, "100%"), (0.9999, "100%"), (0.5, "50.0%"), (1 / 3, "33.3%"), (1 / 256, "0.391%"),
    (0.032, "3.20%"), (0.0317, "3.17%"),
])
def test_zoom_text(zoom, text):
    assert zoom_text(zoom) == text


def test_cache_holds_reductions_by_image_identity_and_lets_images_go():
    cache = ReductionCache(images=2)
    a, b, c = (np.zeros((4, 4), np.uint8) for _ in range(3))
    cache.put(a, 2, a[::2, ::2])
    assert cache.get(a, 2) is not None
    assert cache.get(a, 4) is None
    assert cache.get(a.copy(), 2) is None  # equal values, another image
    cache.put(b, 2, b[::2, ::2])
    cache.get(a, 2)  # a was used last: b is the oldest
    cache.put(c, 2, c[::2, ::2])
    assert cache.get(b, 2) is None and cache.get(a, 2) is not None
    del a
    gc.collect()
    d = np.zeros((4, 4), np.uint8)
    cache.put(d, 4, d)
    assert len(cache._entries) == 2  # the dead image's entry went
