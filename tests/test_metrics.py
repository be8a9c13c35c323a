"""Metrics against direct formulas and scikit-image's SSIM."""

import math
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
from helpers import DTYPES, dtype_range, natural_image, random_image
from skimage.metrics import structural_similarity

from pyramid_explorer.core import metrics
from pyramid_explorer.core.metrics import SsimBatch, mse, psnr, ssim


def test_mse_and_psnr_follow_their_formulas():
    a = np.array([[0, 10], [20, 30]], np.uint8)
    b = np.array([[1, 10], [17, 30]], np.uint8)  # uint8 subtraction would wrap; the metric must not
    assert mse(a, b) == pytest.approx((1 + 9) / 4)
    assert psnr(a, b, 255) == pytest.approx(10 * math.log10(255**2 / 2.5))
    assert psnr(a, a, 255) == math.inf
    with pytest.raises(ValueError, match="shape"):
        mse(a, b[:1])
    with pytest.raises(ValueError, match="data_range"):
        psnr(a, b, 0)


def skimage_ssim(a, b, data_range):
    return structural_similarity(a, b, data_range=data_range, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, channel_axis=-1 if a.ndim == 3 else None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize("shape", [(11, 11), (11, 40), (67, 45)])
def test_ssim_agrees_with_scikit_image(dtype, channels, shape):
    a = random_image(shape, dtype, channels, seed=5)
    b = random_image(shape, dtype, channels, seed=6)
    blend = (0.7 * a.astype(np.float64) + 0.3 * b).astype(dtype)  # correlated, so SSIM is far from 0
    r = dtype_range(dtype)
    assert ssim(a, blend, r) == pytest.approx(skimage_ssim(a, blend, r), abs=1e-4)


def test_ssim_on_a_photograph_and_identity():
    a = natural_image()
    rng = np.random.default_rng(7)
    noisy = np.clip(a + rng.normal(0, 15, a.shape), 0, 255).astype(np.uint8)
    assert ssim(a, noisy, 255) == pytest.approx(skimage_ssim(a, noisy, 255), abs=1e-4)
    assert ssim(a, a, 255) == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(1, 1), (10, 40), (40, 10)])
def test_ssim_is_nan_below_the_window(shape):
    a = np.zeros(shape, np.float32)
    assert math.isnan(ssim(a, a, 1.0))


def gaussian_taps() -> np.ndarray:
    radius = 5  # int(3.5 * 1.5 + 0.5), scikit-image's truncation
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-(x**2) / (2 * 1.5**2))
    return taps / taps.sum()


def window_means(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted means of every 11x11 window lying inside the image (float64, 'valid' filtering)."""
    taps = gaussian_taps()
    windows = np.lib.stride_tricks.sliding_window_view(x, (11, 11), axis=(0, 1))
    return np.einsum("...ij,i,j->...", windows, taps, taps)


def formula_ssim(a, b, data_range):
    """Wang et al. 2004 written out: population statistics over Gaussian windows, mean over channels."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_a, mu_b = window_means(a), window_means(b)
    var_a = window_means(a * a) - mu_a**2
    var_b = window_means(b * b) - mu_b**2
    cov = window_means(a * b) - mu_a * mu_b
    s = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(s.reshape(s.shape[0], s.shape[1], -1).mean(axis=(0, 1)).mean())


def formula_mse(a, b):
    return float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def correlated_pair(shape, dtype, channels, seed=5):
    a = random_image(shape, dtype, channels, seed=seed)
    b = random_image(shape, dtype, channels, seed=seed + 1)
    return a, (0.7 * a.astype(np.float64) + 0.3 * b).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize("shape", [(11, 11), (12, 17), (33, 13), (67, 45)])
def test_ssim_follows_the_formula(dtype, channels, shape):
    a, b = correlated_pair(shape, dtype, channels)
    r = dtype_range(dtype)
    assert ssim(a, b, r) == pytest.approx(formula_ssim(a, b, r), abs=1e-5)


@pytest.fixture
def small_strips(monkeypatch):
    """Strips of a few rows, tiles of a few pixels and their arithmetic by runs of a few rows, so small
    test images run through many of them on several threads."""
    monkeypatch.setattr(metrics, "_STRIP_VALUES", 1 << 8)
    monkeypatch.setattr(metrics, "_TILE_VALUES", 1 << 8)
    monkeypatch.setattr(metrics, "_CHUNK_VALUES", 1 << 6)
    monkeypatch.setattr(cv2, "getNumThreads", lambda: 3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3])
def test_ssim_split_in_strips_and_threads_follows_the_formula(small_strips, dtype, channels):
    a, b = correlated_pair((71, 53), dtype, channels)
    r = dtype_range(dtype)
    assert ssim(a, b, r) == pytest.approx(formula_ssim(a, b, r), abs=1e-5)
    assert ssim(a, b, r) == pytest.approx(skimage_ssim(a, b, r), abs=1e-4)


def test_ssim_of_mixed_dtypes_and_strided_views():
    a = natural_image()
    b = np.clip(a + np.random.default_rng(2).normal(0, 9, a.shape), 0, 255).astype(np.float32)
    assert ssim(a, b, 255) == pytest.approx(formula_ssim(a, b, 255), abs=1e-5)
    green_a, green_b = a[..., 1], b[..., 1]  # channel views: not contiguous
    assert ssim(green_a, green_b, 255) == pytest.approx(formula_ssim(green_a, green_b, 255), abs=1e-5)


@pytest.mark.parametrize("dtype", DTYPES)
def test_ssim_of_constant_images(dtype):
    low, high = (0.25, 0.75) if dtype == np.float32 else (7, 200)
    a, b = np.full((13, 12, 3), low, dtype), np.full((13, 12, 3), high, dtype)
    r = dtype_range(dtype)
    c1 = (0.01 * r) ** 2
    luminance = (2 * float(low) * float(high) + c1) / (float(low) ** 2 + float(high) ** 2 + c1)
    with np.errstate(all="raise"):
        assert ssim(a, a, r) == pytest.approx(1.0)
        assert ssim(a, b, r) == pytest.approx(luminance, rel=1e-5)  # no structure: contrast term is 1


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (67, 45)])
def test_mse_and_psnr_follow_their_formulas_for_every_dtype(dtype, channels, shape):
    a, b = correlated_pair(shape, dtype, channels, seed=9)
    r = dtype_range(dtype)
    expected = formula_mse(a, b)
    assert mse(a, b) == pytest.approx(expected, rel=1e-6)
    assert psnr(a, b, r) == (math.inf if expected == 0 else pytest.approx(10 * math.log10(r**2 / expected)))


def test_mse_of_extremes_mixed_dtypes_and_views():
    zeros, full = np.zeros((3, 5), np.uint16), np.full((3, 5), 65535, np.uint16)
    assert mse(zeros, full) == pytest.approx(65535.0**2, rel=1e-12)  # no wrap-around, no overflow
    a = natural_image()
    b = a.astype(np.float32) + np.float32(0.5)
    assert mse(a, b) == pytest.approx(0.25)
    assert mse(a[..., 2], b[..., 0]) == pytest.approx(formula_mse(a[..., 2], b[..., 0]))
    big = np.array([[3e38, -3e38]], np.float32)  # differences beyond float32, squares beyond float64's half
    assert mse(big, -big) == pytest.approx((6e38) ** 2, rel=1e-6)


@pytest.mark.parametrize("where", ["reference", "candidate"])
def test_non_finite_values_follow_the_documented_rule(where):
    a = natural_image(np.float32)
    b = np.clip(a + np.float32(0.05), 0, 1)
    spoilt = (a if where == "reference" else b).copy()
    spoilt[100, 100, 1], spoilt[0, 0, 0], spoilt[-1, -1, 2] = np.nan, np.inf, -np.inf
    a2, b2 = (spoilt, b) if where == "reference" else (a, spoilt)
    keep = np.isfinite(a2) & np.isfinite(b2)
    expected = float(np.mean((a2[keep].astype(np.float64) - b2[keep]) ** 2))
    assert mse(a2, b2) == pytest.approx(expected, rel=1e-6)
    assert psnr(a2, b2, 1.0) == pytest.approx(10 * math.log10(1 / expected))
    assert math.isnan(ssim(a2, b2, 1.0))
    clean = b if where == "reference" else a  # the other image, finite: only the spoilt pairs are NaN
    batch = SsimBatch(a2, [b2, clean, b2], 1.0).run()
    assert math.isnan(batch[0]) and math.isnan(batch[2])
    assert math.isnan(batch[1]) == (where == "reference")
    assert not math.isnan(ssim(a, b, 1.0))


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf, np.float64(1e300)])
@pytest.mark.parametrize("corner", [(0, 0), (-1, -1), (700, 3)])
def test_one_non_finite_value_anywhere_in_a_large_image_makes_ssim_nan(value, corner):
    """Large enough for several strips on several threads; a corner pixel lies in one inner window only."""
    rng = np.random.default_rng(5)
    a = rng.random((1400, 1000), dtype=np.float32)
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1).astype(np.float32)
    fine = ssim(a, b, 1.0)
    assert math.isfinite(fine)
    spoilt = b.astype(np.float64)
    spoilt[corner] = value  # 1e300 is finite in float64 and infinite once in float32
    assert math.isnan(ssim(a, spoilt, 1.0)) and math.isnan(ssim(spoilt, a, 1.0))
    assert SsimBatch(a, [b, spoilt, b], 1.0).run() == [fine, pytest.approx(math.nan, nan_ok=True), fine]


def some_candidates(a):
    rng = np.random.default_rng(4)
    blurred = cv2.GaussianBlur(a, (5, 5), 1.0)
    noisy = np.clip(a + rng.normal(0, 0.1 * dtype_range(a.dtype), a.shape), 0, dtype_range(a.dtype))
    return [a, blurred, noisy.astype(a.dtype), noisy.astype(np.float32), np.zeros_like(a)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
def test_a_batch_gives_exactly_each_candidates_own_number(small_strips, dtype, channels):
    """Many candidates in one pass over the tiles: each gets the number it gets alone, whatever comes
    before or after it."""
    a = random_image((45, 38), dtype, channels, seed=1)
    a = cv2.GaussianBlur(a, (7, 7), 2.0)  # some structure, so the candidates differ
    r = dtype_range(dtype)
    candidates = some_candidates(a)
    alone = [ssim(a, candidate, r) for candidate in candidates]
    assert SsimBatch(a, candidates, r).run() == alone
    assert SsimBatch(a, candidates[::-1], r).run() == alone[::-1]
    assert len(set(alone)) >= 4  # a mix-up between candidates would show (two are alike for float32)


def test_a_batch_of_a_photograph_agrees_with_scikit_image():
    a = natural_image()
    candidates = some_candidates(a)
    want = [skimage_ssim(a, candidate.astype(np.float64), 255) for candidate in candidates]
    assert SsimBatch(a, candidates, 255).run() == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize("count", [1, 3, 7, 10_000])
def test_a_batch_split_into_parts_run_on_threads_in_any_order_gives_the_same_numbers(small_strips, count):
    a = np.ascontiguousarray(natural_image()[:70, :53])  # with small strips: about 40 tiles
    candidates = some_candidates(a) * 2
    want = [ssim(a, c, 255) for c in candidates]
    batch = SsimBatch(a, candidates, 255)
    parts = batch.parts(count)
    assert 1 <= len(parts) <= count
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda part: part(), parts[::-1]))
    assert batch.ssim() == want
    assert SsimBatch(a, candidates, 255).run(threads=2) == want


def test_a_batch_checks_its_images_and_is_nan_where_ssim_is_undefined():
    tiny = np.zeros((10, 40), np.uint8)
    batch = SsimBatch(tiny, [tiny, tiny], 255)
    assert batch.parts(4) == []
    assert all(math.isnan(v) for v in batch.run()) and len(batch.ssim()) == 2
    assert SsimBatch(np.zeros((20, 20), np.uint8), [], 255).run() == []
    with pytest.raises(ValueError, match="shape"):
        SsimBatch(tiny, [tiny, tiny[:5]], 255)
    with pytest.raises(ValueError, match="data_range"):
        SsimBatch(tiny, [tiny], 0)
    with pytest.raises(ValueError, match="data_range"):
        ssim(tiny, tiny, -1)


def test_scratch_kept_by_a_thread_gives_the_same_numbers_in_any_order():
    """Each thread keeps its strip scratch for its next call, grown to the largest strip: images of other
    sizes and channel counts before, after or on a fresh thread must not change a number."""
    pairs = [correlated_pair(shape, np.uint8, channels) for shape, channels in
             [((67, 45), 3), ((12, 17), None), ((40, 90), 4), ((11, 11), None)]]
    first = [ssim(a, b, 255) for a, b in pairs]
    assert [ssim(a, b, 255) for a, b in reversed(pairs)][::-1] == first
    with ThreadPoolExecutor(1) as pool:
        assert list(pool.map(lambda pair: ssim(pair[0], pair[1], 255), pairs)) == first
    assert first == pytest.approx([formula_ssim(a, b, 255) for a, b in pairs], abs=1e-5)
