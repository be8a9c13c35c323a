"""Exact tile geometry: which block of level i a tile of level i+1 (or of a band) is computed from.

How a tile is made exactly. Tile [y0, y1) x [x0, x1) of level i+1 is `cv2.pyrDown` run on a block of level
i around rows and columns [2*y0 - 2, 2*y1] (the 5x5 kernel's halo), cropped. Tile boundaries of level i+1
fall at even offsets of level i by construction (2 * y0), so decimation lines up. Three things make the
crop equal the whole-image result, not just close to it:
- Image edges: pyrDown's border (reflect101, reflect, replicate, wrap) and its odd-size right and bottom
  columns only behave as on the whole image if OpenCV sees the real edge. A block that reaches within a
  halo of an edge is therefore extended to the edge itself, never padded; for BORDER_WRAP, whose border
  pixels come from the far side, the block's two outermost pixels are swapped for those far-side pixels,
  so OpenCV's wrap inside the block reads exactly what it reads on the whole image.
- float32 rounding: OpenCV computes a row's interior with SIMD and its first pixel, its vector-width
  remainder and its border pixels with scalar code, and the two round differently. A pixel is exact only if
  the block computes it on the same path: a block starts at a multiple of `ALIGN_*` pixels of the row
  (same vector grid), and ends either at the image's edge or `MARGIN_*` pixels past the last pixel kept.
  (Integer dtypes are exact on any path; rows need none of this, only the halo.)
- Laplacian bands: `expand` (pyrUp to the finer level's exact size, or for borders other than reflect101
  pyrUp of the level padded by one pixel) follows the same rules, with pyrUp's own edge rule (reflection
  about the last upsampled sample) kept by the same edge extension.

The same windows serve the tile engine (`core.graphs`, blocks in both axes) and the strip engine
(`core.strips`, blocks of rows spanning the whole width).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import zarr

from pyramid_explorer.core import omezarr
from pyramid_explorer.core.pyramid import UINT8_BAND_SCALE

# Block geometry (see the module docstring). Columns of a pyrDown block start on a multiple of
# ALIGN_DOWN input pixels (64 output pixels: a whole number of vectors for any SIMD width up to 64
# floats) and end MARGIN_DOWN input pixels past the last input pixel used, so that no kept pixel is in
# the block's scalar remainder; pyrUp blocks the same in coarse pixels. Measured on an AVX-512 machine,
# pyrDown needs 8 and 12 and pyrUp none; these values leave room for wider vectors and unrolling in other
# builds at a cost of ~5% more work per 2048-pixel tile.
ALIGN_DOWN, MARGIN_DOWN = 128, 132
ALIGN_UP, MARGIN_UP = 32, 34
# Rows have no SIMD path: pyrDown blocks only need an even first row and room for the wrap partners.
ALIGN_ROWS_DOWN, MARGIN_ROWS_DOWN = 2, 2

Runs = tuple[tuple[int, int], ...]  # (first index, count) of consecutive source indices
_BAND_SHIFT = UINT8_BAND_SCALE.bit_length() - 1  # scaled bands: * 64 is << 6, pyrUp's own shift


# ------------------------------------------------------------------------------------------ geometry


def border_index(position: int, size: int, border: int) -> int:
    """The pixel of an axis of `size` pixels that OpenCV reads at `position` (its borderInterpolate)."""
    if 0 <= position < size:
        return position
    if border == cv2.BORDER_REPLICATE:
        return 0 if position < 0 else size - 1
    if border == cv2.BORDER_WRAP:
        return position % size
    if size == 1:
        return 0
    delta = 1 if border == cv2.BORDER_REFLECT_101 else 0
    while not 0 <= position < size:
        position = -position - 1 + delta if position < 0 else 2 * size - 1 - position - delta
    return position


def to_runs(indices: np.ndarray) -> Runs:
    """Compress indices into runs of consecutive values (a block's rows are a few runs at most)."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(indices)]
    return tuple((int(indices[a]), int(b - a)) for a, b in zip(starts, ends, strict=True))


def run_indices(runs: Runs) -> np.ndarray:
    return np.concatenate([np.arange(first, first + count) for first, count in runs])


@dataclass(frozen=True)
class Window:
    """One axis of a tile: read source pixels `runs`, run OpenCV on the block, keep [start, stop) of its
    result. `size` is the result length to ask pyrUp for (None: pyrDown's own)."""

    runs: Runs
    start: int
    stop: int
    size: int | None = None


def exact_window(lo: int, hi: int) -> Window:
    return Window(((lo, hi - lo),), 0, hi - lo)


def down_window(size: int, lo: int, hi: int, border: int, align: int, margin: int) -> Window:
    """The block of an input axis of `size` pixels whose pyrDown holds output pixels [lo, hi) exactly."""
    first = 0 if lo == 0 else max(0, (2 * lo - 4) // align * align)
    end = 2 * hi + 1 + margin
    if end >= size:
        end = size
    indices = np.arange(first, end)
    if border == cv2.BORDER_WRAP and first == 0 and end < size:
        indices[-2:] = (size - 2, size - 1)  # what pyrDown's wrap at the block's left edge must read
    elif border == cv2.BORDER_WRAP and first > 0 and end == size:
        indices[:2] = (0, 1)  # what it must read past the block's (the image's) right edge
    return Window(to_runs(indices), lo - first // 2, hi - first // 2)


def up_window(size: int, fine: int, lo: int, hi: int, border: int, align: int, margin: int) -> Window:
    """The block of a coarse axis of `size` pixels whose `expand` to `fine` pixels holds [lo, hi) exactly.

    `expand` is pyrUp of P at the fine size (reflect101: P is the coarse level) or of P = the level padded
    by one pixel at twice P's size, cropped by 2 (other borders). The block is taken from P and mapped back
    to coarse pixels.
    """
    if border == cv2.BORDER_REFLECT_101:
        padded, up_size, offset = size, fine, 0
    else:
        padded, up_size, offset = size + 2, 2 * (size + 2), 2
    lo, hi = lo + offset, hi + offset
    first = max(0, (lo // 2 - 1) // align * align)
    end = (hi - 1) // 2 + 2 + margin
    if end >= padded:
        end = padded
    indices = np.arange(first, end)
    if offset:
        indices -= 1
        for k in (0, -1):
            indices[k] = border_index(int(indices[k]), size, border)
    length = up_size - 2 * first if end == padded else 2 * (end - first)
    return Window(to_runs(indices), lo - 2 * first, hi - 2 * first, length)


# ------------------------------------------------------------------------------------------- tiles


def reduce_tile(block: np.ndarray, border: int, rows: Window, cols: Window) -> np.ndarray:
    return cv2.pyrDown(block, borderType=border)[rows.start : rows.stop, cols.start : cols.stop]


def band_tile(fine: np.ndarray, coarse: np.ndarray, storage: str, rows: Window, cols: Window,
              buffer: Callable[[str, tuple[int, ...], np.dtype], np.ndarray] | None = None,
              scaled: bool = False) -> np.ndarray:
    """Laplacian band tile: fine - expand(coarse), as `core.pyramid.laplacian_pyramid` computes it.

    `buffer(use, shape, dtype)` (`scratch.thread_buffer`), when given, supplies the arrays pyrUp (and a
    scaled band) write into (a float32 band is then subtracted in place, so the result is a view into
    it). `scaled` (float32 bands of uint8 levels): the band times `UINT8_BAND_SCALE` (64) as int16
    instead, computed in integers: pyrUp of 64 * coarse in int16 sums 64 times pyrUp's integer sums
    (< 2**31) and shifts them right by 6, so it is exactly 64 * expand(coarse), and 64 * fine minus it
    is the band times 64 (|k| <= 16320)."""
    assert cols.size is not None and rows.size is not None  # an up_window always sets the size

    def scratch(use: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray | None:
        return None if buffer is None else buffer(use, shape, dtype)

    if scaled:
        coarse = np.left_shift(coarse, _BAND_SHIFT, dtype=np.int16,
                               out=scratch("coarse", coarse.shape, np.int16))
    elif storage == "float32":
        coarse = coarse.astype(np.float32, copy=False)
    into = scratch("expand", (rows.size, cols.size, *coarse.shape[2:]), coarse.dtype)
    up = cv2.pyrUp(coarse, dst=into, dstsize=(cols.size, rows.size))[rows.start : rows.stop,
                                                                      cols.start : cols.stop]
    if scaled:
        band = np.left_shift(fine, _BAND_SHIFT, dtype=np.int16, out=scratch("band", fine.shape, np.int16))
        return np.subtract(band, up, out=band)
    if storage == "float32" and fine.dtype != np.float32:
        # one pass, no float32 copy of `fine`: its integer samples convert to float32 exactly
        return cv2.subtract(fine, up, dst=up, dtype=cv2.CV_32F)
    if storage == "float32":
        with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in `laplacian_pyramid`
            return np.subtract(fine, up, out=up)
    return cv2.subtract(fine, up, dtype=cv2.CV_16S if storage == "int16" else -1)


def cast_tile(tile: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return tile.astype(dtype, copy=False)


def _orthogonal(rows: np.ndarray, cols: np.ndarray) -> tuple[Any, ...]:
    """Index selecting rows x cols; runs become slices (basic indexing, fast), the rest np.ix_."""
    index = [slice(int(p[0]), int(p[-1]) + 1) if p[-1] - p[0] == len(p) - 1 and np.all(np.diff(p) == 1) else p
             for p in (rows, cols)]
    return np.ix_(*index) if all(isinstance(i, np.ndarray) for i in index) else tuple(index)


def _fill(rows: Window, cols: Window, row_boxes: Sequence[tuple[int, int]],
          col_boxes: Sequence[tuple[int, int]], fetch: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """The block image[rows, cols], from boxes of the image: fetch(i, j) is row_boxes[i] x col_boxes[j]."""
    ridx, cidx = run_indices(rows.runs), run_indices(cols.runs)
    block = None
    for i, (r0, r1) in enumerate(row_boxes):
        rpos = np.flatnonzero((ridx >= r0) & (ridx < r1))
        for j, (c0, c1) in enumerate(col_boxes):
            cpos = np.flatnonzero((cidx >= c0) & (cidx < c1))
            if not (len(rpos) and len(cpos)):
                continue
            data = fetch(i, j)
            if block is None:
                block = np.empty((len(ridx), len(cidx), *data.shape[2:]), data.dtype)
            block[_orthogonal(rpos, cpos)] = data[_orthogonal(ridx[rpos] - r0, cidx[cpos] - c0)]
    assert block is not None, "a block always reads at least one box"
    return block


def gather_chunks(pieces: list[list[np.ndarray]], row_boxes: list[tuple[int, int]],
                   col_boxes: list[tuple[int, int]], rows: Window, cols: Window) -> np.ndarray:
    return _fill(rows, cols, row_boxes, col_boxes, lambda i, j: pieces[i][j])


def gather_stored(array: zarr.Array[Any], rows: Window, cols: Window) -> np.ndarray:
    """The block from a stored level, read one stored chunk at a time: reading the whole region at once
    would let zarr decode all its chunks concurrently, several times the block's memory."""
    row_boxes, col_boxes = _boxes(rows.runs, array.chunks[-2]), _boxes(cols.runs, array.chunks[-1])
    return _fill(rows, cols, row_boxes, col_boxes,
                 lambda i, j: omezarr.read_region(array, slice(*row_boxes[i]), slice(*col_boxes[j])))


def _boxes(runs: Runs, chunk: int) -> list[tuple[int, int]]:
    """The parts of the stored chunks (of side `chunk`) that `runs` touch, in order."""
    touched = sorted({k for first, count in runs
                      for k in range(first // chunk, (first + count - 1) // chunk + 1)})
    boxes = []
    for k in touched:
        lo, hi = k * chunk, (k + 1) * chunk
        inside = [(max(lo, first), min(hi, first + count)) for first, count in runs
                  if first < hi and first + count > lo]
        boxes.append((min(a for a, _ in inside), max(b for _, b in inside)))
    return boxes

