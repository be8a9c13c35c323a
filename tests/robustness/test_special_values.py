"""Odd pixel values: float images with NaN and +-inf, and constant images (where a range is zero).

The rule (README "Robustness"): non-finite values load and are kept as they are; statistics (value
ranges, band energy, MSE/PSNR) ignore them, SSIM is NaN when any is present; nothing divides by a
zero range. Constant images run through every numerical path with numpy's floating-point errors
raised as exceptions, so a division by zero cannot hide behind a warning.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import CHANNELS, DTYPES
from robust_corpus import GENERATED, SPECIAL_FLOATS

from pyramid_explorer.core import analysis, export
from pyramid_explorer.core.analysis import band_energy
from pyramid_explorer.core.export import export_pyramid, finite_range
from pyramid_explorer.core.io import load_image
from pyramid_explorer.core.metrics import mse, psnr, ssim
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid, reconstruct, residual


def test_float_tiff_with_nan_and_inf_loads_bit_exact(tmp_path):
    path = tmp_path / "special.tif"
    path.write_bytes(GENERATED["float-nan-inf.tif"].make())
    image = load_image(path)
    assert image.dtype == np.float32 and image.tobytes() == SPECIAL_FLOATS.tobytes()


def test_statistics_ignore_non_finite_values():
    finite = SPECIAL_FLOATS[np.isfinite(SPECIAL_FLOATS)]
    assert finite_range(SPECIAL_FLOATS) == (float(finite.min()), float(finite.max()))
    assert band_energy(SPECIAL_FLOATS) == pytest.approx(float(np.mean(finite.astype(np.float64) ** 2)))
    assert finite_range(np.full((3, 3), np.nan, np.float32)) is None
    assert band_energy(np.full((3, 3), np.inf, np.float32)) == 0.0


def test_metrics_ignore_non_finite_pixels_and_never_raise():
    rng = np.random.default_rng(3)
    a = rng.random((16, 16), dtype=np.float32)
    b = a + np.float32(0.1)
    a_special = a.copy()
    a_special[0, 0], a_special[5, 5], a_special[9, 9] = np.inf, -np.inf, np.nan
    keep = np.isfinite(a_special)
    expected = float(np.mean((a[keep].astype(np.float64) - b[keep]) ** 2))
    assert mse(a_special, b) == pytest.approx(expected)
    assert psnr(a_special, b, 1.0) == pytest.approx(10 * math.log10(1 / expected))
    assert psnr(a_special, a, 1.0) == math.inf  # identical wherever both are finite
    nothing = np.full((4, 4), np.nan, np.float32)
    assert math.isnan(mse(nothing, nothing)) and math.isnan(psnr(nothing, a[:4, :4], 1.0))
    assert math.isnan(ssim(a_special, b, 1.0)) and not math.isnan(ssim(a, b, 1.0))


def test_pyramid_of_an_image_with_nan_keeps_statistics_finite(tmp_path):
    """pyrDown spreads NaN, so coarse levels may hold nothing finite: their range is None, never NaN."""
    bands = laplacian_pyramid(SPECIAL_FLOATS)
    ranges = [finite_range(band) for band in bands]
    assert ranges[0] is not None and ranges[-1] is None
    assert all(math.isfinite(v) for r in ranges if r is not None for v in r)
    result = export_pyramid(SPECIAL_FLOATS, tmp_path, kinds=["gaussian", "laplacian", "residual"], fmt="png")
    for record in result.files:
        assert record.value_range is None or all(math.isfinite(v) for v in record.value_range)
    assert analysis.integrity(SPECIAL_FLOATS).rmse >= 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (12, 13), (16, 16)])
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", DTYPES)
def test_constant_image_never_divides_by_zero(tmp_path, shape, channels, dtype):
    full = shape if channels is None else (*shape, channels)
    image = np.full(full, 0.25 if dtype == np.float32 else 7, dtype)
    data_range = 1.0 if dtype == np.float32 else float(np.iinfo(dtype).max)
    with np.errstate(all="raise"):
        bands = laplacian_pyramid(image)
        assert not residual(image, reconstruct(bands)).any()
        assert all(not band.any() for band in bands[:-1])  # a constant has no detail at any scale
        report = analysis.integrity(image)
        assert report.differing_pixels == 0 and report.psnr == math.inf
        analysis.gaussian_round_trip(image)
        analysis.nyquist_peaks(analysis.log_spectrum(image))
        assert psnr(image, image, data_range) == math.inf
        if min(shape) >= 11:
            assert ssim(image, image, data_range) == pytest.approx(1.0)
        assert finite_range(image) == (image.flat[0].item(),) * 2
        for level in gaussian_pyramid(image):
            assert np.all(level == image.flat[0])
        result = export_pyramid(image, tmp_path, kinds=export.KINDS, fmt="png", modes=("nearest", "bilinear"))
    for record in result.files:  # signed kinds: a zero scale; float levels: an empty source range
        mapping = record.details.get("visualisation", {})
        assert mapping.get("scale", 0.0) == 0.0 and mapping.get("low") == mapping.get("high")
