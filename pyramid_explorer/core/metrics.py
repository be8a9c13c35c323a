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
from collections.abc import Sequence

import cv2
import numpy as np

from pyramid_explorer.core.arrays import in_bands
from pyramid_explorer.core.scratch import thread_buffer

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


_KERNEL = cv2.getGaussianKernel(SSIM_WINDOW, SSIM_SIGMA, cv2.CV_32F)
_TWICE_KERNEL = _KERNEL * np.float32(2)  # powers of two scale exactly: twice the window mean


def _blur(x: np.ndarray, out: np.ndarray, column: np.ndarray = _KERNEL, delta: float = 0.0) -> np.ndarray:
    """Gaussian-weighted window means of a strip (times `column`'s sum, plus `delta`) written to `out`
    (the strip's shape), returned for the strip's rows whose window lies inside it.

    Only pixels whose window lies inside the strip are used (the SSIM mean leaves out the `_PAD` columns
    at each side too), so the border mode never matters; REFLECT_101 is OpenCV's quickest.
    """
    cv2.sepFilter2D(x, cv2.CV_32F, _KERNEL, column, dst=out, delta=delta, borderType=cv2.BORDER_REFLECT_101)
    return out[_PAD:-_PAD]


class _Strips:
    """One thread's scratch for SSIM strips: float32 arrays of the largest strip, used again for every
    strip and kept by the thread for its next call (fresh memory is faulted in and zeroed by the kernel;
    reused, it costs nothing and stays in cache). Ten strips: about 25 MB at 4K RGB."""

    def __init__(self, shape: tuple[int, ...], rows: int) -> None:
        full, inner = (rows + 2 * _PAD, *shape[1:]), (rows, *shape[1:])
        self.full = [thread_buffer(f"ssim strip {k}", full, np.float32) for k in range(6)]
        self.inner = [thread_buffer(f"ssim rows {k}", inner, np.float32) for k in range(4)]

    def take(self, rows: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(six strip arrays of `rows` inner rows plus the halo, four arrays of `rows` rows)."""
        return [x[: rows + 2 * _PAD] for x in self.full], [x[:rows] for x in self.inner]


_Maps = tuple[np.ndarray, np.ndarray, np.ndarray]
"""The reference's side of SSIM over its inner rows: twice its centred window mean, its window variance
plus c2, and its true (uncentred) window mean squared plus c1."""


def _rows_of(maps: Sequence[np.ndarray], rows: slice = slice(None)) -> _Maps:
    """`rows` of each of three arrays, as `_Maps`."""
    return maps[0][rows], maps[1][rows], maps[2][rows]


class _Statistics:
    """The reference's side of SSIM for one image: its centring offset and per-strip window statistics."""

    def __init__(self, image: np.ndarray, data_range: float) -> None:
        self.image = image
        self.c1 = float((SSIM_K1 * data_range) ** 2)
        self.c2 = float((SSIM_K2 * data_range) ** 2)
        # float32 filtering is ~10x faster than float64; centring both images on one offset keeps the
        # variances (differences of large squares) accurate, and the offset is added back for the luminance
        # term. A strided sample of the image is close enough to its mean for that.
        with np.errstate(over="ignore", invalid="ignore"):  # a sampled NaN/inf: SSIM is NaN anyway
            self.offset = np.float32(np.mean(image[::7, ::7], dtype=np.float64))
        last, self.rows = image.shape[0] - _PAD, _rows_per_strip(image.shape)
        # Output rows [start, stop) of the image's inner rows (those whose window lies inside it).
        self.strips = [(r, min(r + self.rows, last)) for r in range(_PAD, last, self.rows)]

    def centred(self, x: np.ndarray, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Rows [start - pad, stop + pad) of `x` minus the offset, in float32, written to `out` (non-finite
        values stay so, and float64 values beyond float32 become infinite)."""
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, float64 beyond float32
            return np.subtract(x[start - _PAD : stop + _PAD], self.offset, out=out)

    def reference_maps(self, a32: np.ndarray, full: list[np.ndarray], maps: _Maps) -> None:
        """The reference strip's `_Maps`, from its centred rows `a32`, written to `maps`; `full`: two
        scratch arrays of the strip's shape."""
        twice_mean, variance, square = maps
        np.copyto(twice_mean, _blur(a32, full[0], _TWICE_KERNEL))
        moment = _blur(np.square(a32, out=full[0]), full[1], delta=self.c2)  # E[a^2] + c2
        np.multiply(twice_mean, twice_mean, out=square)
        square *= np.float32(0.25)  # the centred mean squared (scaling by 4 and 1/4 is exact)
        np.subtract(moment, square, out=variance)
        np.add(twice_mean, np.float32(2 * self.offset), out=square)  # twice the true mean
        np.multiply(square, square, out=square)
        square *= np.float32(0.25)
        square += np.float32(self.c1)

    def ssim_sum(self, a32: np.ndarray, b32: np.ndarray, maps: _Maps, full: list[np.ndarray],
                 work: np.ndarray) -> float:
        """Sum of the SSIM map over one strip's inner pixels and channels (accumulated in double); NaN or
        inf when a value of either strip is not finite, from the centred strips `a32` (read only) and `b32`
        (overwritten). `full`: four scratch arrays of the strips' shape, `work` one of the maps' shape.

        numpy's in-place operations, not OpenCV's: their results do not depend on where an array starts in
        memory, so a `Reference` and a plain `ssim` agree to the last bit.
        """
        twice_mean, variance, square = maps
        mean_b = _blur(b32, full[0])
        structure = _blur(np.multiply(a32, b32, out=full[3]), full[1], _TWICE_KERNEL, self.c2)  # 2E[ab]+c2
        spread = _blur(np.square(b32, out=b32), full[2])  # E[b^2]
        structure -= np.multiply(twice_mean, mean_b, out=work)  # 2 cov + c2
        spread -= np.square(mean_b, out=work)
        spread += variance  # var_a + var_b + c2
        # Luminance on the true (uncentred) means: (2 mu_a mu_b + c1) / (mu_a^2 + mu_b^2 + c1).
        mean_b += self.offset
        np.add(twice_mean, np.float32(2 * self.offset), out=work)  # twice the true mean of the reference
        work *= mean_b
        work += np.float32(self.c1)
        structure *= work
        np.square(mean_b, out=work)
        work += square
        spread *= work
        structure /= spread
        inner = structure[:, _PAD:-_PAD]
        return cv2.sumElems(inner.reshape(inner.shape[0], -1))[0]  # numpy's float64 sum is ~50x slower

    def mean_ssim(self, b: np.ndarray, stored: tuple[np.ndarray, _Maps] | None) -> float:
        """Mean SSIM of `b` against the image; `stored`: the centred image and its reference maps, or None
        to make them strip by strip."""
        sums = [0.0] * len(self.strips)

        def work(first: int, last: int) -> None:
            scratch = _Strips(b.shape, self.rows)
            with np.errstate(invalid="ignore", over="ignore"):  # (per thread) non-finite: the sum says so
                for k in range(first, last):
                    start, stop = self.strips[k]
                    (b32, a32, *full), (*made, spare) = scratch.take(stop - start)
                    self.centred(b, start, stop, b32)
                    if stored is None:
                        self.centred(self.image, start, stop, a32)
                        strip_maps = _rows_of(made)
                        self.reference_maps(a32, full, strip_maps)
                    else:
                        a32 = stored[0][start - _PAD : stop + _PAD]
                        rows = slice(start - _PAD, stop - _PAD)
                        strip_maps = _rows_of(stored[1], rows)
                    sums[k] = self.ssim_sum(a32, b32, strip_maps, full, spare)

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
    SSIM four float32 arrays are stored: the image centred on an offset (what every candidate's strips
    are multiplied by) and its `_Maps` (twice its Gaussian window mean, centred; its window variance plus
    c2; its true window mean squared plus c1) for its rows whose window lies inside the image — 16 bytes
    per value, so about 400 MB for a 3840x2160 RGB image and 133 MB for grey (nothing when SSIM is
    undefined: a side under 11 pixels, or a non-finite value). Each call uses only strip-sized scratch,
    which its thread keeps for the next call (about 25 MB per thread at 4K RGB).

    Threads: the object is read-only after construction (the maps are write-protected), so any number of
    threads may call its methods at once; each call also splits its own strips over OpenCV's thread count.
    """

    def __init__(self, image: np.ndarray, data_range: float) -> None:
        self.image = image
        self.data_range = _check_data_range(data_range)
        self._statistics = _Statistics(image, self.data_range) if _ssim_defined(image) else None
        self._stored = self._prepare(self._statistics) if self._statistics is not None else None

    def _prepare(self, statistics: _Statistics) -> tuple[np.ndarray, _Maps] | None:
        """The centred image and its `_Maps`; None when the image holds a non-finite value."""
        centred = np.empty(self.image.shape, np.float32)
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf, float64 beyond float32
            np.subtract(self.image, statistics.offset, out=centred)
        if self.image.dtype.kind == "f" and not np.isfinite(centred).all():
            return None
        maps = tuple(np.empty((self.image.shape[0] - 2 * _PAD, *self.image.shape[1:]), np.float32)
                     for _ in range(3))

        def work(first: int, last: int) -> None:
            scratch = _Strips(self.image.shape, statistics.rows)
            for k in range(first, last):
                start, stop = statistics.strips[k]
                full = scratch.take(stop - start)[0][2:]
                rows = slice(start - _PAD, stop - _PAD)
                statistics.reference_maps(centred[start - _PAD : stop + _PAD], full,
                                          _rows_of(maps, rows))

        in_bands(len(statistics.strips), work)
        for m in (centred, *maps):
            m.flags.writeable = False
        return centred, _rows_of(maps)

    def mse(self, candidate: np.ndarray) -> float:
        """``mse(image, candidate)``."""
        return mse(self.image, candidate)

    def psnr(self, candidate: np.ndarray) -> float:
        """``psnr(image, candidate, data_range)``."""
        return psnr(self.image, candidate, self.data_range)

    def ssim(self, candidate: np.ndarray) -> float:
        """``ssim(image, candidate, data_range)``, reusing the stored reference maps."""
        _check_pair(self.image, candidate)
        if self._statistics is None or self._stored is None:
            return math.nan
        return self._statistics.mean_ssim(candidate, self._stored)
