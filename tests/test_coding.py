"""Pyramid coding (Burt & Adelson 1983): quantisation and entropy against formulas written here, the bit
count against a by-hand sum over bands, and JPEG's curve against files written and measured here."""

import collections
import math

import cv2
import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, dtype_range, natural_image, random_image
from skimage.metrics import peak_signal_noise_ratio

from pyramid_explorer.core.analysis import (
    CODING_PRESETS,
    code_pyramid,
    coding_curve,
    entropy_bits,
    jpeg_at_rate,
    jpeg_curve,
    jpeg_round_trip,
    preset_steps,
    quantize,
)
from pyramid_explorer.core.pyramid import laplacian_pyramid, reconstruct


def entropy_by_definition(values):
    counts = collections.Counter(np.asarray(values).ravel().tolist())
    n = sum(counts.values())
    return -sum(c / n * math.log2(c / n) for c in counts.values())


@pytest.mark.parametrize("step", [0.1, 1, 2.5, 7, 1e-3])
def test_quantize_rounds_to_the_nearest_multiple_of_the_step(step):
    band = np.random.default_rng(0).normal(0, 20, (31, 17)).astype(np.float32)
    q = quantize(band, step)
    assert q.dtype == np.float32 and q.shape == band.shape
    np.testing.assert_allclose(q, step * np.round(band.astype(np.float64) / step), rtol=1e-7, atol=0)
    assert np.abs(q - band).max() <= step / 2 * (1 + 1e-4)


@pytest.mark.parametrize("step", [0, -1, math.nan, math.inf, True, "1"])
def test_quantize_refuses_a_step_that_is_not_positive(step):
    with pytest.raises(ValueError, match="step must be a finite number > 0"):
        quantize(np.zeros(3), step)


@pytest.mark.parametrize(
    "values",
    [
        np.zeros(10, np.uint8),
        np.arange(256, dtype=np.uint8),
        np.array([1, 1, 2, 3, 3, 3], np.int16),
        np.random.default_rng(1).integers(-40, 40, 5000),
        np.array([-(2**40), 0, 2**40, 2**40], np.int64),  # a range too wide to count by bins
        quantize(np.random.default_rng(2).normal(size=1000), 0.5),
    ],
)
def test_entropy_bits_is_shannon_entropy_of_the_distinct_values(values):
    assert entropy_bits(values) == pytest.approx(entropy_by_definition(values), abs=1e-12)


def test_entropy_bits_of_k_equally_likely_values_is_log2_k():
    assert entropy_bits(np.repeat(np.arange(8), 5)) == pytest.approx(3.0)
    assert entropy_bits(np.array([7])) == 0.0
    with pytest.raises(ValueError, match="values is empty"):
        entropy_bits(np.array([], np.int64))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_code_pyramid_counts_bits_band_by_band(dtype, channels):
    image = random_image((37, 29), dtype, channels, seed=3)
    steps = tuple(dtype_range(dtype) * s for s in (0.1, 0.05, 0.02, 0.01))
    code = code_pyramid(image, steps)
    bands = laplacian_pyramid(image, 4)
    quantised = [quantize(b, s) for b, s in zip(bands, steps, strict=True)]
    bits = [entropy_by_definition(np.round(q / s)) for q, s in zip(quantised, steps, strict=True)]
    assert code.band_bits == pytest.approx(bits, abs=1e-9)
    assert code.bits_per_pixel == pytest.approx(sum(e * b.size for e, b in zip(bits, bands, strict=True))
                                                / (37 * 29))
    for ours, theirs in zip(code.bands, quantised, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_allclose(code.rebuilt, reconstruct(quantised), rtol=1e-6)
    stored = code.rebuilt if dtype == np.float32 else np.clip(np.rint(code.rebuilt), 0, dtype_range(dtype))
    expected = image.astype(np.float64) - stored
    np.testing.assert_allclose(code.residual, expected, atol=1e-6 * dtype_range(dtype))
    assert code.psnr == pytest.approx(peak_signal_noise_ratio(image.astype(np.float64), stored,
                                                              data_range=dtype_range(dtype)), rel=1e-6)


def test_finer_steps_cost_more_bits_and_keep_more():
    image = natural_image()
    points = coding_curve(image, preset_steps("uniform", 5, image.dtype), scales=(0.5, 1, 4, 16))
    bits = [p.bits_per_pixel for p in points]
    quality = [p.psnr for p in points]
    assert bits == sorted(bits, reverse=True) and quality == sorted(quality, reverse=True)
    assert [p.setting for p in points] == [0.5, 1, 4, 16]
    assert points[0].ssim > points[-1].ssim


def test_a_one_pixel_image_codes_to_its_rounded_value():
    code = code_pyramid(np.array([[101]], np.uint8), (8.0,))
    assert code.bits_per_pixel == 0.0 and code.rebuilt[0, 0] == 104 and math.isnan(code.ssim)


def test_code_pyramid_refuses_non_finite_images_and_empty_steps():
    with pytest.raises(ValueError, match="NaN or infinite"):
        code_pyramid(np.full((4, 4), np.nan, np.float32), (0.1,))
    with pytest.raises(ValueError, match="steps is empty"):
        code_pyramid(np.zeros((4, 4), np.uint8), ())
    with pytest.raises(ValueError, match="levels must be an integer from 1 to 3"):
        code_pyramid(np.zeros((4, 4), np.uint8), (1.0,) * 4)


@pytest.mark.parametrize("dtype", DTYPES)
def test_presets_give_one_step_per_band_in_the_dtype_units(dtype):
    for name in CODING_PRESETS:
        steps = preset_steps(name, 6, dtype)
        assert len(steps) == 6 and min(steps) >= dtype_range(dtype) / 255 - 1e-12
    fine_coarse = preset_steps("coarse_fine_bands", 6, dtype)
    assert fine_coarse == tuple(sorted(fine_coarse, reverse=True)) and fine_coarse[0] > fine_coarse[-1]
    with pytest.raises(ValueError, match="allowed: uniform, coarse_fine_bands, near_lossless"):
        preset_steps("best", 3, dtype)


@pytest.mark.parametrize("channels", [None, 3])
def test_jpeg_curve_uses_real_file_sizes(tmp_path, channels):
    image = natural_image()[:, :, 0] if channels is None else natural_image()
    points = jpeg_curve(image, (10, 50, 90))
    h, w = image.shape[:2]
    for point in points:
        path = tmp_path / f"q{int(point.setting)}.jpg"
        bgr = image if channels is None else cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
        cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, int(point.setting)])
        assert point.bits_per_pixel == pytest.approx(8 * path.stat().st_size / (h * w))
        decoded = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if channels:
            decoded = cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB)
        assert point.psnr == pytest.approx(peak_signal_noise_ratio(image, decoded, data_range=255), rel=1e-9)
    assert [p.bits_per_pixel for p in points] == sorted(p.bits_per_pixel for p in points)
    assert [p.psnr for p in points] == sorted(p.psnr for p in points)


@pytest.mark.parametrize(
    ("image", "quality", "message"),
    [
        (np.zeros((8, 8), np.uint16), 50, "8-bit grey or RGB"),
        (np.zeros((8, 8, 4), np.uint8), 50, "8-bit grey or RGB"),
        (np.zeros((8, 8), np.uint8), 101, "quality must be an integer 0..100"),
        (np.zeros((8, 8), np.uint8), 50.0, "quality must be an integer 0..100"),
    ],
)
def test_jpeg_round_trip_says_what_it_takes(image, quality, message):
    with pytest.raises(ValueError, match=message):
        jpeg_round_trip(image, quality)


def test_jpeg_at_rate_is_the_best_quality_within_the_budget():
    image = natural_image()
    h, w = image.shape[:2]
    sizes = {q: jpeg_round_trip(image, q)[1] for q in range(1, 101)}
    for target in (0.3, 1.0, 2.5):
        point, decoded = jpeg_at_rate(image, target)
        quality = int(point.setting)
        # within the budget, and one quality step more is not (sizes grow with quality)
        assert 8 * sizes[quality] / (h * w) <= target < 8 * sizes[quality + 1] / (h * w)
        assert point.bits_per_pixel == pytest.approx(8 * sizes[quality] / (h * w))
        assert point.psnr == pytest.approx(peak_signal_noise_ratio(image, decoded, data_range=255))
    assert jpeg_at_rate(image, 0.001)[0].setting == 1  # nothing fits: the smallest file
