"""Image quality metrics: MSE, PSNR and SSIM (Wang et al. 2004), computed with OpenCV filters and norms.

Both images must have the same shape; their dtypes may differ. Non-finite values (NaN, +-inf, which float
TIFFs may hold): MSE and PSNR ignore the pixels where either image has one (NaN when none is left); SSIM is
NaN, since every window touching such a pixel is undefined.

Nothing here copies a whole image to float64: sums are accumulated in double by OpenCV (`cv2.norm`) or by
numpy over row strips, and SSIM filters float32 strips small enough to stay in cache, on one thread per
OpenCV thread. To compare many candidates with one image, build a :class:`Reference` once.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from pyramid_explorer.core.arrays import in_bands

SSIM_WINDOW = 11  # side of the Gaussian window: radius int(3.5 * sigma + 0.5) = 5, as scikit-image uses
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

_PAD = SSIM_WINDOW // 2
# Values per strip (2 MB of float32; 45 rows of a 4K RGB image): a strip's temporaries stay within the
# shared cache and never grow with the image, while the 2 * _PAD halo rows that two strips both filter
# stay about a fifth of a strip's rows.
_STRIP_VALUES = 1 << 19
# dtypes cv2.norm takes and accumulates in double without overflow.
_NORM_DTYPES = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64)}


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"images differ in shape: {a.shape} vs {b.shape}")


def _check_data_range(data_range: float) -> float:
    if not data_range > 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    return float(data_range)


def _rows_per_strip(shape: tuple[int, ...]) -> int:
    return max(1, _STRIP_VALUES // max(1, math.prod(shape[1:])))


def _row_blocks(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    rows = _rows_per_strip(shape)
    return [(r, min(r + rows, shape[0])) for r in range(0, shape[0], rows)]


def _squared_error(a: np.ndarray, b: np.ndarray) -> tuple[float, int]:
    """Sum of squared differences over the values finite in both images, and their count.

    Equal dtypes go to one `cv2.norm` call (what `cv2.PSNR` does); other pairs are converted by row blocks.
    A finite sum proves every value was finite (a NaN or inf difference poisons it), so integer images and
    clean float images are never scanned for non-finite values.
    """
    common = np.result_type(a.dtype, b.dtype, np.float32) if a.dtype != b.dtype else a.dtype
    if common not in _NORM_DTYPES:
        common = np.dtype(np.float64)
    if a.size and a.ndim <= 3 and a.dtype == b.dtype == common:
        total = cv2.norm(a, b, cv2.NORM_L2SQR)
        if math.isfinite(total):
            return total, a.size
    total, count = 0.0, 0
    for start, stop in _row_blocks(a.shape):
        x = np.asarray(a[start:stop], common).reshape(stop - start, -1)
        y = np.asarray(b[start:stop], common).reshape(stop - start, -1)
        part = cv2.norm(x, y, cv2.NORM_L2SQR)
        if math.isfinite(part):
            total, count = total + part, count + x.size
            continue
        x, y = x.astype(np.float64), y.astype(np.float64)  # one block, to subtract without overflow
        finite = np.isfinite(x) & np.isfinite(y)
        diff = x[finite] - y[finite]
        total, count = total + float(diff @ diff), count + diff.size
    return total, count


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error over every pixel and channel (those finite in both images; NaN if none is)."""
    _check_pair(a, b)
    total, count = _squared_error(a, b)
    return total / count if count else math.nan


def psnr(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Peak signal-to-noise ratio in dB for values spanning `data_range`; inf for identical images."""
    _check_data_range(data_range)
    error = mse(a, b)
    return math.inf if error == 0 else 10.0 * math.log10(data_range**2 / error)


def _blur(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted window means of a strip, for its rows whose window lies inside the strip.

    Only pixels whose window lies inside the strip are used (the SSIM mean leaves out the `_PAD` columns
    at each side too), so the border mode never matters; REFLECT_101 is OpenCV's quickest.
    """
    blurred = cv2.GaussianBlur(x, (SSIM_WINDOW, SSIM_WINDOW), SSIM_SIGMA, borderType=cv2.BORDER_REFLECT_101)
    return blurred.reshape(x.shape)[_PAD:-_PAD]  # reshape: OpenCV drops the channel axis of (H, W, 1)


class _Statistics:
    """The reference's side of SSIM for one image: its centring offset and per-strip window statistics."""

    def __init__(self, image: np.ndarray, data_range: float) -> None:
        self.image = image
        self.c1 = np.float32((SSIM_K1 * data_range) ** 2)
        self.c2 = np.float32((SSIM_K2 * data_range) ** 2)
        # float32 filtering is ~10x faster than float64; centring both images on one offset keeps the
        # variances (differences of large squares) accurate, and the offset is added back for the luminance
        # term. A strided sample of the image is close enough to its mean for that.
        with np.errstate(over="ignore", invalid="ignore"):  # a sampled NaN/inf: SSIM is NaN anyway
            self.offset = np.float32(np.mean(image[::7, ::7], dtype=np.float64))
        last, rows = image.shape[0] - _PAD, _rows_per_strip(image.shape)
        # Output rows [start, stop) of the image's inner rows (those whose window lies inside it).
        self.strips = [(r, min(r + rows, last)) for r in range(_PAD, last, rows)]

    def centred(self, x: np.ndarray, start: int, stop: int) -> np.ndarray:
        """Rows [start - pad, stop + pad) of `x` minus the offset, in float32 (non-finite values stay so,
        and float64 values beyond float32 become infinite)."""
        rows = x[start - _PAD : stop + _PAD]
        out = np.empty(rows.shape, np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, float64 beyond float32
            np.subtract(rows, self.offset, out=out)
        return out

    def reference_maps(self, a32: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Window mean of the centred reference strip, and its window variance plus c2."""
        mean = _blur(a32)
        variance = _blur(np.square(a32))
        variance -= np.square(mean)
        variance += self.c2
        return mean, variance

    def ssim_sum(self, a32: np.ndarray, b32: np.ndarray, mean_a: np.ndarray, variance_a: np.ndarray) -> float:
        """Sum of the SSIM map over one strip's inner pixels and channels (accumulated in double); NaN or
        inf when a value of either strip is not finite. Overwrites `a32` and `b32` (scratch).

        numpy's in-place operations, not OpenCV's: their results do not depend on where an array starts in
        memory, so a `Reference` and a plain `ssim` agree to the last bit.
        """
        mean_b = _blur(b32)
        structure = _blur(np.multiply(a32, b32, out=a32))  # becomes 2 cov + c2
        spread = _blur(np.square(b32, out=b32))  # becomes var_a + var_b + c2
        work = np.multiply(mean_a, mean_b)
        structure -= work
        structure *= 2
        structure += self.c2
        spread -= np.square(mean_b, out=work)
        spread += variance_a
        # Luminance on the true (uncentred) means: (2 mu_a mu_b + c1) / (mu_a^2 + mu_b^2 + c1).
        mean_b += self.offset
        true_a = np.add(mean_a, self.offset, out=work)
        luminance = np.multiply(true_a, mean_b)
        luminance *= 2
        luminance += self.c1
        structure *= luminance
        np.square(true_a, out=true_a)
        true_a += np.square(mean_b, out=mean_b)
        true_a += self.c1
        spread *= true_a
        structure /= spread
        inner = structure[:, _PAD:-_PAD]
        return cv2.sumElems(inner.reshape(inner.shape[0], -1))[0]  # numpy's float64 sum is ~50x slower

    def mean_ssim(self, b: np.ndarray, maps: tuple[np.ndarray, np.ndarray] | None) -> float:
        """Mean SSIM of `b` against the image; `maps` are the stored reference maps, or None to make them."""
        sums = [0.0] * len(self.strips)

        def work(first: int, last: int) -> None:
            with np.errstate(invalid="ignore", over="ignore"):  # (per thread) non-finite: the sum says so
                for k in range(first, last):
                    start, stop = self.strips[k]
                    b32, a32 = self.centred(b, start, stop), self.centred(self.image, start, stop)
                    if maps is None:
                        mean_a, variance_a = self.reference_maps(a32)
                    else:
                        rows = slice(start - _PAD, stop - _PAD)
                        mean_a, variance_a = maps[0][rows], maps[1][rows]
                    sums[k] = self.ssim_sum(a32, b32, mean_a, variance_a)

        in_bands(len(self.strips), work)
        total = math.fsum(sums)
        # Every pixel lies in the window of some inner pixel, so a non-finite value anywhere makes the
        # sum non-finite: no separate scan of the images for NaN or inf is needed.
        if not math.isfinite(total):
            return math.nan
        # Every channel has the same pixels, so the mean of the channels' means is the mean of all values.
        values = (b.shape[0] - 2 * _PAD) * (b.shape[1] - 2 * _PAD) * math.prod(b.shape[2:])
        return total / values


def _ssim_defined(image: np.ndarray) -> bool:
    return image.ndim in (2, 3) and min(image.shape[:2]) >= SSIM_WINDOW


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (not sample) covariances, and the
    mean taken over the pixels whose window lies inside the image — the same definition as scikit-image's
    `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`. Returns NaN
    when a side is shorter than the window (coarse pyramid levels), where SSIM is undefined, rather than
    raising. Uses no whole-image temporaries: everything is computed on float32 row strips.
    """
    data_range = _check_data_range(data_range)
    _check_pair(a, b)
    if not _ssim_defined(a):
        return math.nan
    return _Statistics(a, data_range).mean_ssim(b, None)


class Reference:
    """One image (a pyramid level G[i]) prepared for comparing many candidates against it.

    ``Reference(g, data_range).ssim(c)``, ``.psnr(c)`` and ``.mse(c)`` return exactly the numbers of
    ``ssim(g, c, data_range)``, ``psnr(g, c, data_range)`` and ``mse(g, c)``, but the reference's window
    statistics are filtered once here instead of once per candidate (3 Gaussian filters per SSIM instead
    of 5).

    Memory: the image itself is kept, not copied, and must not change while the reference is in use. For
    SSIM two float32 maps are stored: the reference's Gaussian window mean (centred on an offset) and its
    window variance plus c2, for its rows whose window lies inside the image — 8 bytes per value, so about
    200 MB for a 3840x2160 RGB image and 66 MB for grey (nothing when SSIM is undefined: a side under 11
    pixels, or a non-finite value). Each call allocates only strip-sized scratch (a few MB per thread).

    Threads: the object is read-only after construction (the maps are write-protected), so any number of
    threads may call its methods at once; each call also splits its own strips over OpenCV's thread count.
    """

    def __init__(self, image: np.ndarray, data_range: float) -> None:
        self.image = image
        self.data_range = _check_data_range(data_range)
        self._statistics = _Statistics(image, self.data_range) if _ssim_defined(image) else None
        self._maps = self._make_maps(self._statistics) if self._statistics is not None else None

    def _make_maps(self, statistics: _Statistics) -> tuple[np.ndarray, np.ndarray] | None:
        height = self.image.shape[0]
        mean = np.empty((height - 2 * _PAD, *self.image.shape[1:]), np.float32)
        variance = np.empty_like(mean)
        finite = [True] * len(statistics.strips)

        def work(first: int, last: int) -> None:
            for k in range(first, last):
                start, stop = statistics.strips[k]
                a32 = statistics.centred(self.image, start, stop)
                if self.image.dtype.kind == "f" and not np.isfinite(a32).all():
                    finite[k] = False
                    return
                rows = slice(start - _PAD, stop - _PAD)
                mean[rows], variance[rows] = statistics.reference_maps(a32)

        in_bands(len(statistics.strips), work)
        if not all(finite):
            return None
        mean.flags.writeable = variance.flags.writeable = False
        return mean, variance

    def mse(self, candidate: np.ndarray) -> float:
        """``mse(image, candidate)``."""
        return mse(self.image, candidate)

    def psnr(self, candidate: np.ndarray) -> float:
        """``psnr(image, candidate, data_range)``."""
        return psnr(self.image, candidate, self.data_range)

    def ssim(self, candidate: np.ndarray) -> float:
        """``ssim(image, candidate, data_range)``, reusing the stored reference maps."""
        _check_pair(self.image, candidate)
        if self._statistics is None or self._maps is None:
            return math.nan
        return self._statistics.mean_ssim(candidate, self._maps)
