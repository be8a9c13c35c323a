"""Image quality metrics: MSE, PSNR and SSIM (Wang et al. 2004), computed with OpenCV filters and norms.

Both images must have the same shape; their dtypes may differ. Non-finite values (NaN, +-inf, which float
TIFFs may hold): MSE and PSNR ignore the pixels where either image has one (NaN when none is left); SSIM is
NaN, since every window touching such a pixel is undefined.

Nothing here copies a whole image to float64: sums are accumulated in double by OpenCV (`cv2.norm`) or by
numpy over row strips, and SSIM filters float32 tiles small enough to stay in cache, on one thread per
OpenCV thread. To compare many candidates with one image, use one :class:`SsimBatch` for all of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial

import cv2
import numpy as np

from pyramid_explorer.core.arrays import even_bands, in_bands
from pyramid_explorer.core.scratch import thread_buffer

SSIM_WINDOW = 11  # side of the Gaussian window: radius int(3.5 * sigma + 0.5) = 5, as scikit-image uses
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

_PAD = SSIM_WINDOW // 2
# Values per row block of the squared error (2 MB of float32; 45 rows of a 4K RGB image).
_STRIP_VALUES = 1 << 19
# Values per SSIM tile (1 MB of float32: about 295x295 pixels of RGB, 512x512 of grey). A tile's ten
# scratch arrays stay within a core's share of the shared cache, and the 2 * _PAD halo rows and columns
# that neighbouring tiles both filter add about 7%. Full-width strips as large took ~25% longer at 4K
# RGB: their halo added 22%, and their scratch (25 MB) did not stay in the cache.
_TILE_VALUES = 1 << 18
# Values per run of rows of the per-pixel arithmetic after a tile's blurs: its seven arrays stay in a
# core's L2 cache (256 KB each), where passes over the whole tile's (1 MB each) streamed from L3: the
# arithmetic took ~30% less time at 4K RGB.
_CHUNK_VALUES = 1 << 16
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
    """Gaussian-weighted window means of a tile (times `column`'s sum, plus `delta`) written to `out`
    (the tile's shape) and returned.

    Only the tile's inner pixels (those whose window lies inside it) are window means, and only they are
    ever summed, so the border mode never matters; REFLECT_101 is OpenCV's quickest. The arithmetic after
    the blurs runs over whole rows (contiguous runs, `_chunks`): over the inner pixels' strided view,
    numpy's element-wise passes took twice as long.
    """
    cv2.sepFilter2D(x, cv2.CV_32F, _KERNEL, column, dst=out, delta=delta, borderType=cv2.BORDER_REFLECT_101)
    return out


def _chunks(shape: tuple[int, ...]) -> list[slice]:
    """A tile's inner rows in runs of about `_CHUNK_VALUES` values (see `_CHUNK_VALUES`)."""
    step = max(1, _CHUNK_VALUES // math.prod(shape[1:]))
    return [slice(r, min(r + step, shape[0] - _PAD)) for r in range(_PAD, shape[0] - _PAD, step)]


_Tile = tuple[slice, slice]
"""A tile's inner rows and columns: the image's pixels whose window lies inside the tile with its halo."""


def _spans(length: int, side: int) -> list[slice]:
    """Spans of about `side` (at most) covering [_PAD, _PAD + length) evenly."""
    n = -(-length // side)
    return [slice(_PAD + length * k // n, _PAD + length * (k + 1) // n) for k in range(n)]


def _tile_shape(tile: _Tile, channels: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of `tile` with its halo."""
    rows, cols = (span.stop - span.start + 2 * _PAD for span in tile)
    return (rows, cols, *channels)


def _scratch(shape: tuple[int, ...]) -> list[np.ndarray]:
    """This thread's eleven float32 arrays of a tile's `shape`, kept by the thread for its next tile and call
    (fresh memory is faulted in and zeroed by the kernel; reused, it costs nothing and stays in cache)."""
    return [thread_buffer(f"ssim tile {k}", shape, np.float32) for k in range(11)]


_Maps = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""The reference's side of SSIM over a tile: twice its centred window mean, its window variance plus c2,
its true (uncentred) window mean squared plus c1, and twice its true window mean."""


class _Statistics:
    """The reference's side of SSIM for one image: its centring offset, its tiles and their window
    statistics."""

    def __init__(self, image: np.ndarray, data_range: float) -> None:
        self.image = image
        self.c1 = float((SSIM_K1 * data_range) ** 2)
        self.c2 = float((SSIM_K2 * data_range) ** 2)
        # float32 filtering is ~10x faster than float64; centring both images on one offset keeps the
        # variances (differences of large squares) accurate, and the offset is added back for the luminance
        # term. A strided sample of the image is close enough to its mean for that.
        with np.errstate(over="ignore", invalid="ignore"):  # a sampled NaN/inf: SSIM is NaN anyway
            self.offset = np.float32(np.mean(image[::7, ::7], dtype=np.float64))
        side = max(1, math.isqrt(_TILE_VALUES // math.prod(image.shape[2:])))
        height, width = image.shape[0] - 2 * _PAD, image.shape[1] - 2 * _PAD
        self.tiles = [(rows, cols) for rows in _spans(height, side) for cols in _spans(width, side)]

    def centred(self, x: np.ndarray, tile: _Tile, out: np.ndarray) -> np.ndarray:
        """`tile` of `x` with its halo, minus the offset, in float32, written to `out` (non-finite values
        stay so, and float64 values beyond float32 become infinite: the callers ignore those warnings)."""
        rows, cols = tile
        return np.subtract(x[rows.start - _PAD : rows.stop + _PAD, cols.start - _PAD : cols.stop + _PAD],
                           self.offset, out=out)

    def reference_maps(self, a32: np.ndarray, scratch: np.ndarray, maps: _Maps) -> None:
        """The reference tile's `_Maps`, from its centred pixels `a32`, written to `maps`; `scratch`: an
        array of the tile's shape."""
        twice_mean, variance, square, twice_true = maps
        _blur(a32, twice_mean, _TWICE_KERNEL)
        moment = _blur(np.square(a32, out=square), scratch, delta=self.c2)  # E[a^2] + c2
        np.multiply(twice_mean, twice_mean, out=square)
        square *= np.float32(0.25)  # the centred mean squared (scaling by 4 and 1/4 is exact)
        np.subtract(moment, square, out=variance)
        np.add(twice_mean, np.float32(2 * self.offset), out=twice_true)
        np.multiply(twice_true, twice_true, out=square)
        square *= np.float32(0.25)
        square += np.float32(self.c1)

    def ssim_sum(self, a32: np.ndarray, b32: np.ndarray, maps: _Maps, full: list[np.ndarray],
                 work: np.ndarray) -> float:
        """Sum of the SSIM map over one tile's inner pixels and channels (accumulated in double); NaN or
        inf when a value of either tile is not finite, from the centred tiles `a32` (read only) and `b32`
        (overwritten). `full`: four scratch arrays of the tiles' shape, `work` a fifth.

        numpy's in-place operations, not OpenCV's: their results do not depend on where an array starts in
        memory (a thread's scratch moves when it grows), so a number never depends on what ran before it.
        """
        mean_b = _blur(b32, full[0])
        structure = _blur(np.multiply(a32, b32, out=full[3]), full[1], _TWICE_KERNEL, self.c2)  # 2E[ab]+c2
        spread = _blur(np.square(b32, out=b32), full[2])  # E[b^2]
        total = 0.0
        for rows in _chunks(a32.shape):
            total += self._chunk_sum(*(x[rows] for x in (mean_b, structure, spread, work, *maps)))
        return total

    def _chunk_sum(self, mean_b: np.ndarray, structure: np.ndarray, spread: np.ndarray, work: np.ndarray,
                   twice_mean: np.ndarray, variance: np.ndarray, square: np.ndarray,
                   twice_true: np.ndarray) -> float:
        """The SSIM map's sum over the inner columns of a few of a tile's rows (see `ssim_sum`), from the
        blurred candidate's window mean, 2 E[ab] + c2 and E[b^2] (all three overwritten), a scratch `work`
        and the reference's `_Maps`."""
        structure -= np.multiply(twice_mean, mean_b, out=work)  # 2 cov + c2
        spread -= np.square(mean_b, out=work)
        spread += variance  # var_a + var_b + c2
        # Luminance on the true (uncentred) means: (2 mu_a mu_b + c1) / (mu_a^2 + mu_b^2 + c1).
        mean_b += self.offset
        np.multiply(twice_true, mean_b, out=work)
        work += np.float32(self.c1)
        structure *= work
        np.square(mean_b, out=work)
        work += square
        spread *= work
        structure /= spread
        inner = structure[:, _PAD:-_PAD]
        return cv2.sumElems(inner.reshape(inner.shape[0], -1))[0]  # numpy's float64 sum is ~50x slower

    def tile_sums(self, k: int, candidates: Sequence[np.ndarray]) -> list[float]:
        """Each candidate's SSIM map summed over tile `k`'s inner pixels, the image's `_Maps` of the tile
        made once for all of them (in this thread's scratch, so they stay in the cache)."""
        tile = self.tiles[k]
        b32, a32, *full, spare, m0, m1, m2, m3 = _scratch(_tile_shape(tile, self.image.shape[2:]))
        maps = m0, m1, m2, m3
        self.reference_maps(self.centred(self.image, tile, a32), spare, maps)
        return [self.ssim_sum(a32, self.centred(b, tile, b32), maps, full, spare) for b in candidates]


def _ssim_defined(image: np.ndarray) -> bool:
    return image.ndim in (2, 3) and min(image.shape[:2]) >= SSIM_WINDOW


def ssim(a: np.ndarray, b: np.ndarray, data_range: float) -> float:
    """Mean structural similarity (Wang et al. 2004), averaged over channels.

    11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, population (not sample) covariances, and the
    mean taken over the pixels whose window lies inside the image — the same definition as scikit-image's
    `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False)`. Returns NaN
    when a side is shorter than the window (coarse pyramid levels), where SSIM is undefined, rather than
    raising. Uses no whole-image temporaries: everything is computed on float32 tiles.
    """
    return SsimBatch(a, [b], data_range).run()[0]


class SsimBatch:
    """The SSIM of several candidates against one image (a pyramid level G[i] and its upsamplings).

    Tile by tile: each tile's window statistics of the image are filtered once and used for every
    candidate while they are in the cache, so a candidate costs 3 Gaussian filters instead of 5 and nothing
    is kept between tiles (a reference keeping its statistics for later candidates would hold ~17 bytes
    per value, 425 MB at 4K RGB, and read them back from memory for each candidate). The numbers are
    exactly `ssim(image, candidate, data_range)`'s, which is a batch of one.

    `parts(count)` splits the work into callables over disjoint tiles, to run once each on any threads in
    any order (a job's cancellable steps); `ssim()` gives the numbers once they all have. `run()` does
    both on OpenCV's thread count. The images must not change until then.
    """

    def __init__(self, image: np.ndarray, candidates: Sequence[np.ndarray], data_range: float) -> None:
        data_range = _check_data_range(data_range)
        for candidate in candidates:
            _check_pair(image, candidate)
        self._candidates = list(candidates)
        self._statistics = _Statistics(image, data_range) if _ssim_defined(image) else None
        tiles = len(self._statistics.tiles) if self._statistics is not None else 0
        self._sums = np.zeros((tiles, len(self._candidates)))
        # every channel has the same pixels, so the mean of the channels' means is the mean of all values
        self._values = (image.shape[0] - 2 * _PAD) * (image.shape[1] - 2 * _PAD) * math.prod(image.shape[2:])

    def parts(self, count: int) -> list[Callable[[], None]]:
        """At most `count` callables (fewer for a small image, none when SSIM is undefined) that together
        compute every tile of every candidate."""
        tiles = len(self._sums)
        if not tiles:
            return []
        bands = even_bands(tiles, min(max(1, count), tiles))
        return [partial(self._work, first, last) for first, last in bands]

    def run(self, threads: int | None = None) -> list[float]:
        """Every part on `threads` threads (OpenCV's count by default), then `ssim()`."""
        if len(self._sums):
            in_bands(len(self._sums), self._work, threads=threads)
        return self.ssim()

    def ssim(self) -> list[float]:
        """Each candidate's mean SSIM, once every part has run: NaN when a side is shorter than the window
        or a value of either image is not finite. Every pixel lies in the window of some inner pixel, so a
        non-finite value anywhere makes the sum non-finite: no separate scan for NaN or inf is needed."""
        if self._statistics is None:
            return [math.nan] * len(self._candidates)
        totals = [math.fsum(column) for column in self._sums.T.tolist()]
        return [total / self._values if math.isfinite(total) else math.nan for total in totals]

    def _work(self, first: int, last: int) -> None:
        assert self._statistics is not None  # no tiles otherwise
        with np.errstate(invalid="ignore", over="ignore"):  # (per thread) non-finite: the sum says so
            for k in range(first, last):
                self._sums[k] = self._statistics.tile_sums(k, self._candidates)
