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


def _all_finite(*arrays: np.ndarray) -> bool:
    return all(np.asarray(x).dtype.kind in "biu" or np.isfinite(x).all() for x in arrays)


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel (those finite in both images; NaN if none is)."""
    a64, b64 = _pair(a, b)
    if not _all_finite(a64, b64):
        finite = np.isfinite(a64) & np.isfinite(b64)
        a64, b64 = a64[finite], b64[finite]
    return float(np.mean(np.square(a64 - b64))) if a64.size else math.nan


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
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")
    if min(a.shape[:2]) < SSIM_WINDOW or not _all_finite(a, b):
        return math.nan
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    # float32 filtering is ~10x faster than float64 in OpenCV; centring both images on one offset keeps the
    # variances (differences of large squares) accurate, and the offset is added back for the luminance term.
    offset = np.float32(np.mean(a, dtype=np.float64))
    a32 = np.asarray(a, dtype=np.float32) - offset
    b32 = np.asarray(b, dtype=np.float32) - offset
    taps = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_32F)
    pad = SSIM_WINDOW // 2
    inner = (slice(pad, -pad), slice(pad, -pad))  # only pixels whose window lies inside the image count

    def blur(x: np.ndarray) -> np.ndarray:
        return cv2.sepFilter2D(x, cv2.CV_32F, taps, taps, borderType=cv2.BORDER_REFLECT)[inner]

    mu_a, mu_b = blur(a32), blur(b32)
    # In place, because at 4K every temporary is 100 MB: sigma terms first, then the luminance terms.
    var_sum = blur(a32 * a32)
    var_sum += blur(b32 * b32)
    var_sum -= mu_a * mu_a
    var_sum -= mu_b * mu_b
    var_sum += c2
    cov2 = blur(a32 * b32)
    cov2 -= mu_a * mu_b
    cov2 *= 2
    cov2 += c2
    mu_a += offset
    mu_b += offset
    numerator = mu_a * mu_b
    numerator *= 2
    numerator += c1
    numerator *= cov2
    denominator = np.square(mu_a, out=mu_a)
    denominator += np.square(mu_b, out=mu_b)
    denominator += c1
    denominator *= var_sum
    numerator /= denominator
    return float(numerator.reshape(numerator.shape[0], numerator.shape[1], -1)
                 .mean(axis=(0, 1), dtype=np.float64).mean())
