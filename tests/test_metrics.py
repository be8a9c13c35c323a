"""Metrics against direct formulas and scikit-image's SSIM."""

import math

import numpy as np
import pytest
from helpers import DTYPES, dtype_range, natural_image, random_image
from skimage.metrics import structural_similarity

from pyramid_explorer.core.metrics import mse, psnr, ssim


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
