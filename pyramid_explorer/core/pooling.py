"""Max pooling that records where each maximum came from, and max-unpooling that puts it back: PyTorch's
``max_pool2d(..., return_indices=True)`` and ``max_unpool2d`` with numpy and OpenCV only (channels last
here, ``(N, C, H, W)`` in PyTorch; the indices are the same int64 values).

Both work on strips of rows small enough for their temporary arrays to stay in cache, spread over
OpenCV's threads (``core.arrays.in_bands``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from pyramid_explorer.core.arrays import as_hwc, check_int, in_bands

# Pooling works on strips of about this many output pixels, so that its temporary arrays stay in cache.
_STRIP_PIXELS = 1 << 14
# Dtypes OpenCV's mixChannels copies: it splits 2x2 windows of up to 4 channels into their four positions
# ~2x faster than numpy's strided copies.
_CV_DEPTHS = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64)}


def _in_bands(n_rows: int, n_pixels: int, work: Callable[[int, int], None]) -> None:
    """``core.arrays.in_bands`` over ``range(n_rows)``, in the calling thread for small arrays."""
    in_bands(n_rows, work, most=n_pixels // (4 * _STRIP_PIXELS))


def _pixels(a: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` array seen as ``(H, W)`` opaque pixels, so strided pixel copies move C values at once."""
    return a.view(np.dtype((np.void, a.shape[2] * a.itemsize)))[:, :, 0]


@dataclass
class _Strip:
    """One thread's scratch arrays for strips of ``shape = (rows, pooled width, C)`` output values, and the
    winners' offsets ``dy * W + dx`` inside their windows (``which``, in the narrowest dtype that holds
    them)."""

    shape: tuple[int, int, int]
    dtype: np.dtype
    offset_type: np.dtype
    values: list[np.ndarray] = field(init=False)
    masks: list[np.ndarray] = field(init=False)
    which: np.ndarray = field(init=False)
    spare: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.values = [np.empty(self.shape, self.dtype) for _ in range(5)]
        self.masks = [np.empty(self.shape, np.bool_) for _ in range(3)]
        self.which = np.empty(self.shape, self.offset_type)
        self.spare = np.empty(self.shape, self.offset_type)


def _scan(phase: Callable[[int], np.ndarray], offsets: list[int], best: np.ndarray, work: _Strip,
          nan_aware: bool) -> None:
    """Maxima of the window positions ``phase(0), phase(1), ...`` (row-major order) into ``best``, and the
    winners' offsets into ``work.which``: as PyTorch's CPU kernel, a later position wins only if strictly
    greater (the first maximum keeps ties) or, when ``nan_aware``, NaN (the last NaN wins)."""
    n = best.shape[0]
    which, candidate, greater = work.which[:n], work.spare[:n], work.masks[0][:n]
    np.copyto(best, phase(0))
    which[:] = 0
    for k in range(1, len(offsets)):
        value = phase(k)
        np.greater(value, best, out=greater)
        if nan_aware:
            greater |= np.isnan(value)
        np.maximum(best, value, out=best)
        # ``which`` only grows with k, so max(which, offset * greater) records the newest winner.
        np.multiply(greater, which.dtype.type(offsets[k]), out=candidate)
        np.maximum(which, candidate, out=which)


def _has_nan(best: np.ndarray) -> bool:
    """Whether ``best`` (np.maximum's results, which propagate NaN) holds a NaN."""
    return best.dtype.kind == "f" and bool(np.isnan(best.max()))


def _pool_any(rows: np.ndarray, s: int, offsets: list[int], best: np.ndarray, work: _Strip) -> None:
    """``_scan`` over the ``s * s`` positions of the windows of ``rows``, copied out one at a time; NaN-aware
    only when the plain scan met a NaN (np.maximum propagates it)."""
    n, pw = best.shape[:2]
    value = work.values[0][:n]

    def phase(k: int) -> np.ndarray:
        dy, dx = divmod(k, s)
        _pixels(value)[:] = _pixels(rows)[dy::s, dx : pw * s : s]
        return value

    _scan(phase, offsets, best, work, nan_aware=False)
    if _has_nan(best):
        _scan(phase, offsets, best, work, nan_aware=True)


def _pool_2x2(rows: np.ndarray, s: int, offsets: list[int], best: np.ndarray, work: _Strip) -> None:
    """``_pool_any`` for 2x2 windows, as a knock-out: the first maximum of each row of a window, then the
    lower row's only if strictly greater, which is the first maximum in row-major order."""
    n, pw, c = best.shape
    phases = [v[:n] for v in work.values[:4]]
    # Both rows of a window seen as (n, pw, 2C) pairs of pixels: mixChannels deals their halves out.
    pairs = [rows[dy :: 2, : 2 * pw].reshape(n, pw, 2 * c) for dy in (0, 1)]
    cv2.mixChannels(pairs, phases, [i for k in range(4 * c) for i in (k, k)])
    top_left, top_right, low_left, low_right = phases
    right_top, right_low, low = (m[:n] for m in work.masks)
    lower = work.values[4][:n]
    np.greater(top_right, top_left, out=right_top)
    np.maximum(top_left, top_right, out=best)
    np.greater(low_right, low_left, out=right_low)
    np.maximum(low_left, low_right, out=lower)
    np.greater(lower, best, out=low)
    np.maximum(best, lower, out=best)
    if _has_nan(best):
        _scan(phases.__getitem__, offsets, best, work, nan_aware=True)
        return
    # which = W * low + (low ? right_low : right_top), in bit operations on the masks' bytes.
    right = right_top.view(np.uint8)
    right ^= (right_low.view(np.uint8) ^ right) & low.view(np.uint8)
    which, spare = work.which[:n], work.spare[:n]
    np.copyto(which, low)
    which *= which.dtype.type(offsets[2])
    np.copyto(spare, right_top)
    which += spare


def max_pool_with_indices(x: np.ndarray, size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling over ``size x size`` windows with stride ``size``, and where each maximum came from.

    PyTorch's ``max_pool2d(kernel_size=size, stride=size, return_indices=True)`` per channel: floor mode
    (trailing rows/columns that do not fill a window are dropped), ``indices`` are int64 flat positions
    ``row * W + col`` in the channel's ``H x W`` plane, the first maximum in row-major window order wins
    ties, and as in PyTorch's CPU kernel a NaN counts as a maximum (the last NaN of a window wins).
    ``pooled`` keeps the dtype of ``x``; both outputs have the shape ``(H // size, W // size[, C])``.
    """
    x3 = np.ascontiguousarray(as_hwc(x, "x"))
    s = check_int(size, "size", 1)
    h, w, c = x3.shape
    if h < s or w < s:
        raise ValueError(f"a {h}x{w} array is smaller than the {s}x{s} pooling window")
    ph, pw = h // s, w // s
    pooled = np.empty((ph, pw, c), x3.dtype)
    indices = np.empty((ph, pw, c), np.int64)
    # Flat index = (i*s + dy) * W + j*s + dx: the window's base (i*s*W + j*s) plus the winner's offset
    # dy*W + dx. The bases of a strip's windows, relative to its first row:
    offsets = [dy * w + dx for dy in range(s) for dx in range(s)]
    strip = max(1, _STRIP_PIXELS // pw)
    bases = np.arange(strip, dtype=np.int64)[:, None] * (s * w) + np.repeat(np.arange(pw) * s, c)
    pool = _pool_2x2 if s == 2 and x3.dtype in _CV_DEPTHS and c <= 4 else _pool_any

    def work(start: int, stop: int) -> None:
        scratch = _Strip((strip, pw, c), x3.dtype, np.min_scalar_type(offsets[-1]))
        for r0 in range(start, stop, strip):
            r1 = min(stop, r0 + strip)
            n = r1 - r0
            pool(x3[r0 * s : r1 * s], s, offsets, pooled[r0:r1], scratch)
            rows = indices[r0:r1].reshape(n, pw * c)
            np.copyto(rows, scratch.which[:n].reshape(n, pw * c))  # same-dtype adds beat mixed ones ~3x
            rows += bases[:n]
            rows += r0 * s * w

    _in_bands(ph, ph * pw, work)
    if np.ndim(x) == 2:
        return pooled[:, :, 0], indices[:, :, 0]
    return pooled, indices


def max_unpool(pooled: np.ndarray, indices: np.ndarray, output_shape: Sequence[int],
               out: np.ndarray | None = None) -> np.ndarray:
    """Each pooled value put back at its flat index in a zero array of ``output_shape`` (max_unpool2d).

    ``output_shape`` is the full shape ``(H, W)`` or ``(H, W, C)`` of the array that was pooled, so odd
    sizes come back whole (rows and columns that pooling dropped are zero). The result keeps the dtype of
    ``pooled``. Indices outside ``[0, H*W)`` raise ValueError, as PyTorch raises. If an index repeats
    within a channel, which of its values lands is unspecified, as in PyTorch. ``out``, a C-contiguous
    array of ``output_shape`` and ``pooled``'s dtype, is overwritten with the result instead of a new array.
    """
    p3 = np.ascontiguousarray(as_hwc(pooled, "pooled"))
    indices = np.asarray(indices)
    if indices.shape != np.shape(pooled) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"indices must be integers of the pooled shape {np.shape(pooled)}, "
            f"got {indices.dtype} {indices.shape}"
        )
    shape = tuple(int(n) for n in output_shape)
    if len(shape) != np.ndim(pooled) or (len(shape) == 3 and shape[2] != p3.shape[2]) or min(shape) < 1:
        raise ValueError(f"output_shape {shape} does not fit pooled values of shape {np.shape(pooled)}")
    ph, pw, c = p3.shape
    plane = shape[0] * shape[1]
    idx = np.ascontiguousarray(indices, np.int64).reshape(ph, pw * c)
    if out is None:
        out = np.zeros(plane * c, p3.dtype)
    elif out.shape != shape or out.dtype != p3.dtype or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous {p3.dtype} array of shape {shape}, got "
                         f"{out.dtype} {out.shape}")
    else:
        out = out.reshape(-1)
        out.fill(0)
    # Channel ch of flat position f lives at f*C + ch of the channels-last buffer.
    channel = np.tile(np.arange(c, dtype=np.int64), pw)
    strip = max(1, _STRIP_PIXELS // pw)

    def work(start: int, stop: int) -> None:
        flat = np.empty((strip, pw * c), np.int64)
        for r0 in range(start, stop, strip):
            r1 = min(stop, r0 + strip)
            part, pos = idx[r0:r1], flat[: r1 - r0]
            # Negative indices become huge as uint64, so one maximum checks both ends of the range.
            if part.view(np.uint64).max() >= plane:
                bad = part[(part < 0) | (part >= plane)][0]
                raise ValueError(f"index {bad} is outside [0, {plane}) for output_shape {shape}")
            np.multiply(part, c, out=pos)
            pos += channel
            out[pos.ravel()] = p3[r0:r1].ravel()

    _in_bands(ph, ph * pw, work)
    return out.reshape(shape)
