"""Image quality metrics: MSE, PSNR and SSIM (Wang et al. 2004), computed with numpy and OpenCV filters.

Both images must have the same shape; they are compared in float64 whatever their dtypes. Non-finite values
(NaN, +-inf, which float TIFFs may hold): MSE and PSNR ignore the pixels where either image has one (NaN
when none is left); SSIM is NaN, since every window touching such a pixel is undefined.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

SSIM_WINDOW = 11  # side of the Gaussian window: radius int(3.5 * sigma + 0.5) = 5, as scikit-image uses
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    return np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel (those finite in both images; NaN if none is)."""
    a64, b64 = _pair(a, b)
    finite = np.isfinite(a64) & np.isfinite(b64)
    difference = a64 - b64 if finite.all() else a64[finite] - b64[finite]
    return float(np.mean(np.square(difference))) if difference.size else math.nan


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB for values spanning `data_range`; inf for identical images."""
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    error = mse(a, b)
    return math.inf if error == 0 else 10.0 * math.log10(data_range**2 / error)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (not sample) covariances,
    mirror-reflected borders and the mean taken over the pixels whose window lies inside the image — the
    same definition as scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False)`. Returns NaN when a side is shorter than the window (coarse pyramid
    levels), where SSIM is undefined, rather than raising.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    a64, b64 = _pair(a, b)
    if min(a64.shape[:2]) < SSIM_WINDOW or not (np.isfinite(a64).all() and np.isfinite(b64).all()):
        return math.nan
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a64), blur(b64)
    var_a = blur(a64 * a64) - mu_a * mu_a
    var_b = blur(b64 * b64) - mu_b * mu_b
    cov = blur(a64 * b64) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    pad = SSIM_WINDOW // 2
    inner = index[pad:-pad, pad:-pad]
    return float(inner.reshape(inner.shape[0], inner.shape[1], -1).mean(axis=(0, 1)).mean())
