"""Pyramids of images larger than memory, on Dask: tile by tile, bit-identical to `core.pyramid`.

`gaussian_pyramid` and `laplacian_pyramid` take a dask array `(H, W)` or `(H, W, C)` (uint8, uint16 or
float32) and return lazy dask arrays, one per level, in square tiles of `chunk` pixels (channels whole).
Every pixel equals the in-memory engine's, bit for bit, for every size, chunk size, dtype and border.
`export_ome_zarr` writes both pyramids of a lazily read image (`lazy_image`: big TIFF, pyramidal TIFF,
OME-Zarr, or anything `load_image` opens) as one OME-Zarr folder, in bounded memory on Dask's local
threaded scheduler or on a `dask.distributed` cluster.

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
  the block computes it on the same path: a block starts at a multiple of `_ALIGN_*` pixels of the row
  (same vector grid), and ends either at the image's edge or `_MARGIN_*` pixels past the last pixel kept.
  (Integer dtypes are exact on any path; rows need none of this, only the halo.)
- Laplacian bands: `expand` (pyrUp to the finer level's exact size, or for borders other than reflect101
  pyrUp of the level padded by one pixel) follows the same rules, with pyrUp's own edge rule (reflection
  about the last upsampled sample) kept by the same edge extension.

Memory. The dask-array API shares input chunks between the tasks that need them, which is right for
computing what a view needs. The export does not hold levels in memory at all: it writes level 0, then
each task of level i+1 reads from the stored level i exactly the block it needs, computes and writes its
tile; bands read the stored Gaussian levels the same way. Nothing flows between tasks, so peak memory is
the process's own plus the number of worker threads times one task's working set; `memory_limit` sets
that number. On a cluster the same tasks run on the workers, which must see the output folder (and the
input file) at the same paths.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import itertools
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import dask
import dask.array as da
import numpy as np
import tifffile
import zarr
from dask.base import tokenize
from dask.callbacks import Callback
from dask.highlevelgraph import HighLevelGraph
from dask.utils import format_bytes, parse_bytes

import pyramid_explorer
from pyramid_explorer.core import omezarr
from pyramid_explorer.core.arrays import SUPPORTED_DTYPES, check_layout
from pyramid_explorer.core.export import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ExportConflictError,
    ExportError,
    ExportProgress,
)
from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image
from pyramid_explorer.core.pyramid import BORDERS, STORAGE_DTYPES, check_options, level_sizes, max_levels
from pyramid_explorer.core.stores import is_zarr_folder

DEFAULT_CHUNK = 1024

# Block geometry (see the module docstring). Columns of a pyrDown block start on a multiple of
# _ALIGN_DOWN input pixels (64 output pixels: a whole number of vectors for any SIMD width up to 64
# floats) and end _MARGIN_DOWN input pixels past the last input pixel used, so that no kept pixel is in
# the block's scalar remainder; pyrUp blocks the same in coarse pixels. Measured on an AVX-512 machine,
# pyrDown needs 8 and 12 and pyrUp none; these values leave room for wider vectors and unrolling in other
# builds at a cost of ~5% more work per 2048-pixel tile.
_ALIGN_DOWN, _MARGIN_DOWN = 128, 132
_ALIGN_UP, _MARGIN_UP = 32, 34
# Rows have no SIMD path: pyrDown blocks only need an even first row and room for the wrap partners.
_ALIGN_ROWS_DOWN, _MARGIN_ROWS_DOWN = 2, 2

Runs = tuple[tuple[int, int], ...]  # (first index, count) of consecutive source indices


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


def _runs(indices: np.ndarray) -> Runs:
    """Compress indices into runs of consecutive values (a block's rows are a few runs at most)."""
    breaks = np.flatnonzero(np.diff(indices) != 1) + 1
    starts, ends = np.r_[0, breaks], np.r_[breaks, len(indices)]
    return tuple((int(indices[a]), int(b - a)) for a, b in zip(starts, ends, strict=True))


def _indices(runs: Runs) -> np.ndarray:
    return np.concatenate([np.arange(first, first + count) for first, count in runs])


@dataclass(frozen=True)
class _Window:
    """One axis of a tile: read source pixels `runs`, run OpenCV on the block, keep [start, stop) of its
    result. `size` is the result length to ask pyrUp for (None: pyrDown's own)."""

    runs: Runs
    start: int
    stop: int
    size: int | None = None


def _exact_window(lo: int, hi: int) -> _Window:
    return _Window(((lo, hi - lo),), 0, hi - lo)


def _down_window(size: int, lo: int, hi: int, border: int, align: int, margin: int) -> _Window:
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
    return _Window(_runs(indices), lo - first // 2, hi - first // 2)


def _up_window(size: int, fine: int, lo: int, hi: int, border: int, align: int, margin: int) -> _Window:
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
    return _Window(_runs(indices), lo - 2 * first, hi - 2 * first, length)


# ------------------------------------------------------------------------------------------- tiles


def _reduce_tile(block: np.ndarray, border: int, rows: _Window, cols: _Window) -> np.ndarray:
    return cv2.pyrDown(block, borderType=border)[rows.start : rows.stop, cols.start : cols.stop]


def _band_tile(fine: np.ndarray, coarse: np.ndarray, storage: str, rows: _Window,
               cols: _Window) -> np.ndarray:
    """Laplacian band tile: fine - expand(coarse), as `core.pyramid.laplacian_pyramid` computes it."""
    if storage == "float32":
        fine, coarse = fine.astype(np.float32), coarse.astype(np.float32)
    up = cv2.pyrUp(coarse, dstsize=(cols.size, rows.size))[rows.start : rows.stop, cols.start : cols.stop]
    if storage == "float32":
        fine -= up  # a float32 copy already
        return fine
    return cv2.subtract(fine, up, dtype=cv2.CV_16S if storage == "int16" else -1)


def _cast_tile(tile: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return tile.astype(dtype, copy=False)


def _orthogonal(rows: np.ndarray, cols: np.ndarray) -> tuple:
    """Index selecting rows x cols; runs become slices (basic indexing, fast), the rest np.ix_."""
    index = [slice(int(p[0]), int(p[-1]) + 1) if p[-1] - p[0] == len(p) - 1 and np.all(np.diff(p) == 1) else p
             for p in (rows, cols)]
    return np.ix_(*index) if all(isinstance(i, np.ndarray) for i in index) else tuple(index)


def _fill(rows: _Window, cols: _Window, row_boxes: Sequence[tuple[int, int]],
          col_boxes: Sequence[tuple[int, int]], fetch: Callable[[int, int], np.ndarray]) -> np.ndarray:
    """The block image[rows, cols], from boxes of the image: fetch(i, j) is row_boxes[i] x col_boxes[j]."""
    ridx, cidx = _indices(rows.runs), _indices(cols.runs)
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


def _gather_chunks(pieces: list[list[np.ndarray]], row_boxes: list[tuple[int, int]],
                   col_boxes: list[tuple[int, int]], rows: _Window, cols: _Window) -> np.ndarray:
    return _fill(rows, cols, row_boxes, col_boxes, lambda i, j: pieces[i][j])


def _gather_stored(array: zarr.Array, rows: _Window, cols: _Window) -> np.ndarray:
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


# -------------------------------------------------------------------------------------------- graphs


class _Source(Protocol):
    """A level that tile tasks read blocks from."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str
    dependencies: list[da.Array]

    def task(self, rows: _Window, cols: _Window) -> tuple: ...


class _Chunks:
    """A dask array: each task takes the chunks its block touches (shared with the tasks next to it)."""

    def __init__(self, array: da.Array) -> None:
        self.array, self.shape, self.dtype, self.name = array, array.shape, array.dtype, array.name
        self.dependencies = [array]
        self._bounds = [np.cumsum((0, *sizes)) for sizes in array.chunks[:2]]

    def task(self, rows: _Window, cols: _Window) -> tuple:
        row_ids, col_ids = (self._touched(bounds, window.runs)
                            for bounds, window in zip(self._bounds, (rows, cols), strict=True))
        tail = (0,) * (self.array.ndim - 2)
        keys = [[(self.name, i, j, *tail) for j in col_ids] for i in row_ids]
        row_boxes = [(int(self._bounds[0][i]), int(self._bounds[0][i + 1])) for i in row_ids]
        col_boxes = [(int(self._bounds[1][j]), int(self._bounds[1][j + 1])) for j in col_ids]
        return (_gather_chunks, keys, row_boxes, col_boxes, rows, cols)

    @staticmethod
    def _touched(bounds: np.ndarray, runs: Runs) -> list[int]:
        ids: set[int] = set()
        for first, count in runs:
            a, b = np.searchsorted(bounds, [first, first + count - 1], side="right") - 1
            ids.update(range(int(a), int(b) + 1))
        return sorted(ids)


class _Stored:
    """A level stored in an OME-Zarr array: each task reads its own block (nothing shared, nothing held)."""

    def __init__(self, array: zarr.Array) -> None:
        self.array, self.shape, self.dtype = array, omezarr.image_shape(array), array.dtype
        self.name = f"stored-{tokenize(str(array.store), array.path)}"
        self.dependencies: list[da.Array] = []

    def task(self, rows: _Window, cols: _Window) -> tuple:
        return (_gather_stored, self.array, rows, cols)


def _tile_bounds(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(size, lo + chunk)) for lo in range(0, size, chunk)]


def _tile_array(name: str, shape: tuple[int, ...], dtype: np.dtype, chunk: int,
                tile_task: Callable[[int, int, int, int], tuple], sources: Sequence[_Source]) -> da.Array:
    """A dask array of `shape` in chunk x chunk tiles; tile [y0, y1) x [x0, x1) is the task
    tile_task(y0, y1, x0, x1) returns."""
    rows, cols = _tile_bounds(shape[0], chunk), _tile_bounds(shape[1], chunk)
    tail = (0,) * (len(shape) - 2)
    layer = {(name, i, j, *tail): tile_task(y0, y1, x0, x1)
             for i, (y0, y1) in enumerate(rows) for j, (x0, x1) in enumerate(cols)}
    graph = HighLevelGraph.from_collections(
        name, layer, dependencies=[array for source in sources for array in source.dependencies])
    chunks = (tuple(b - a for a, b in rows), tuple(b - a for a, b in cols), *((n,) for n in shape[2:]))
    return da.Array(graph, name, chunks, dtype=dtype, meta=np.empty((0,) * len(shape), dtype))


def _reduce(source: _Source, border: int, chunk: int) -> da.Array:
    """Level i+1 (pyrDown with `border`) of level `source`, in tiles of `chunk`."""
    height, width = source.shape[:2]
    shape = ((height + 1) // 2, (width + 1) // 2, *source.shape[2:])

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple:
        rows = _down_window(height, y0, y1, border, _ALIGN_ROWS_DOWN, _MARGIN_ROWS_DOWN)
        cols = _down_window(width, x0, x1, border, _ALIGN_DOWN, _MARGIN_DOWN)
        return (_reduce_tile, source.task(rows, cols), border, rows, cols)

    name = f"pyrdown-{tokenize(source.name, border, chunk)}"
    return _tile_array(name, shape, source.dtype, chunk, tile, [source])


def _band(fine: _Source, coarse: _Source, border: int, storage: str, chunk: int) -> da.Array:
    """Laplacian band of level `fine` given the next level `coarse`, in tiles of `chunk`."""
    height, width = fine.shape[:2]

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple:
        rows = _up_window(coarse.shape[0], height, y0, y1, border, 1, 0)
        cols = _up_window(coarse.shape[1], width, x0, x1, border, _ALIGN_UP, _MARGIN_UP)
        return (_band_tile, fine.task(_exact_window(y0, y1), _exact_window(x0, x1)),
                coarse.task(rows, cols), storage, rows, cols)

    name = f"band-{tokenize(fine.name, coarse.name, border, storage, chunk)}"
    return _tile_array(name, fine.shape, STORAGE_DTYPES[storage], chunk, tile, [fine, coarse])


def _cast(source: _Source, dtype: np.dtype, chunk: int) -> da.Array:
    """`source` in `dtype`, in tiles of `chunk`."""

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple:
        return (_cast_tile, source.task(_exact_window(y0, y1), _exact_window(x0, x1)), dtype)

    name = f"cast-{tokenize(source.name, np.dtype(dtype).str, chunk)}"
    return _tile_array(name, source.shape, np.dtype(dtype), chunk, tile, [source])


# ------------------------------------------------------------------------------------------ checks


def _check_lazy_image(image: da.Array, name: str = "image") -> da.Array:
    if not isinstance(image, da.Array):
        raise ValueError(f"{name} must be a dask array, got {type(image).__name__}")
    if any(np.isnan(size) for size in image.shape):
        raise ValueError(f"{name} is of unknown size: shape {image.shape}")
    return check_layout(image, name)


def _check_options(shape: tuple[int, ...], dtype: np.dtype, levels: int | None, border: int, storage: str,
                   chunk: int) -> int:
    """Validate the arguments the pyramids share (as the in-memory engine does, plus the chunk size);
    returns the number of levels."""
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of pixels, got {chunk!r}")
    return check_options(shape, dtype, levels, border, storage)


def _tiled(image: da.Array, chunk: int) -> da.Array:
    return image.rechunk((chunk, chunk, *image.shape[2:]))


# ----------------------------------------------------------------------------------------- public API


def gaussian_pyramid(image: da.Array, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                     chunk: int = DEFAULT_CHUNK) -> list[da.Array]:
    """Lazy Gaussian pyramid of a dask array: level i equals `core.pyramid.gaussian_pyramid`'s, bit for bit.

    Level 0 is `image` in chunk x chunk tiles; every level is tiled the same way (channels whole).
    """
    _check_lazy_image(image)
    count = _check_options(image.shape, image.dtype, levels, border, "float32", chunk)
    pyramid = [_tiled(image, chunk)]
    for _ in range(count - 1):
        pyramid.append(_reduce(_Chunks(pyramid[-1]), border, chunk))
    return pyramid


def laplacian_pyramid(image: da.Array, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                      storage: str = "float32", chunk: int = DEFAULT_CHUNK) -> list[da.Array]:
    """Lazy Laplacian pyramid of a dask array, equal bit for bit to `core.pyramid.laplacian_pyramid`'s.

    Band i = G[i] - expand(G[i+1]); the last band is the coarsest Gaussian level. `storage` as in the
    in-memory engine: "float32", "int16" (uint8 images) or "uint8_saturate".
    """
    _check_lazy_image(image)
    _check_options(image.shape, image.dtype, levels, border, storage, chunk)
    gauss = [_Chunks(level) for level in gaussian_pyramid(image, levels, border, chunk)]
    bands = [_band(fine, coarse, border, storage, chunk) for fine, coarse in itertools.pairwise(gauss)]
    return [*bands, _cast(gauss[-1], STORAGE_DTYPES[storage], chunk)]


# -------------------------------------------------------------------------------------- lazy inputs


class _TiffPage:
    """The first page of a TIFF level as an array-like for `da.from_array`: a slice reads only the tiles or
    strips it touches, through tifffile's zarr store. Pickles as (path, level) and reopens the file in
    each process, so a cluster's workers read it themselves."""

    def __init__(self, path: str, level: int, shape: tuple[int, ...], dtype: np.dtype, axes: str) -> None:
        self.path, self.level, self.shape, self.dtype, self.axes = path, level, shape, dtype, axes
        self.ndim = len(shape)

    def __getitem__(self, key: tuple[slice, ...]) -> np.ndarray:
        store = _OPEN_TIFFS.page(self.path, self.level)
        if self.axes == "SYX":  # planar RGB: samples stored first
            return np.moveaxis(np.asarray(store[(key[2], key[0], key[1]) if len(key) == 3 else key]), 0, -1)
        return np.asarray(store[key])


class _OpenTiffs:
    """TIFF files kept open for reading in this process (parsing a big TIFF's header for every tile would
    cost more than the tile); the least recently used file is closed beyond `size` open files."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._open: collections.OrderedDict[tuple, tuple[tifffile.TiffFile, zarr.Array]]
        self._open = collections.OrderedDict()
        self._lock = threading.Lock()

    def page(self, path: str, level: int) -> zarr.Array:
        """tifffile's zarr view of the first page of a level (a file changed on disk is opened anew)."""
        key = (path, os.stat(path).st_mtime_ns, level)
        with self._lock:
            if key not in self._open:
                tif = tifffile.TiffFile(path)
                store = tif.series[0].levels[level].pages[0].aszarr()
                self._open[key] = (tif, zarr.open_array(store, mode="r"))
                while len(self._open) > self.size:
                    self._open.popitem(last=False)[1][0].close()
            self._open.move_to_end(key)
            return self._open[key][1]


_OPEN_TIFFS = _OpenTiffs()


def _tiff_levels(path: Path, chunk: int | None) -> list[da.Array] | None:
    """Every level of a TIFF as lazy arrays, or None when its first page needs `load_image`'s conversions
    (palette, min-is-white, under 8 bits, other sample types, an orientation tag, unusual axes)."""
    with tifffile.TiffFile(path) as tif:
        levels = tif.series[0].levels
        pages = [level.pages[0] for level in levels]
    page = pages[0]
    samples, axes = page.samplesperpixel, page.axes
    simple = (page.dtype in SUPPORTED_DTYPES and int(page.photometric) in (1, 2)
              and page.compression in tifffile.TIFF.DECOMPRESSORS and int(page.tags.valueof(274, 1)) == 1
              and (axes, samples) in (("YX", 1), ("YXS", 3), ("YXS", 4), ("SYX", 3), ("SYX", 4)))
    if not simple:
        return None
    arrays = []
    for number, level in enumerate(pages):
        if level.axes != axes or level.dtype != page.dtype:
            break
        shape = (level.imagelength, level.imagewidth, *((samples,) if samples > 1 else ()))
        reader = _TiffPage(str(path), number, shape, np.dtype(level.dtype), axes)
        own = (level.tilelength or min(level.rowsperstrip, level.imagelength),
               level.tilewidth or level.imagewidth)
        tile = (chunk, chunk) if chunk else own
        name = f"tiff-{tokenize(str(path), os.stat(path).st_mtime_ns, number)}"
        arrays.append(da.from_array(reader, chunks=(*tile, *shape[2:]), name=name,
                                    meta=np.empty((0,) * len(shape), level.dtype)))
    return arrays


def stored_levels(path: str | os.PathLike[str], chunk: int | None = None) -> list[da.Array]:
    """The levels a file already holds, lazily, finest first: an OME-Zarr image's datasets, a pyramidal
    TIFF's sub-resolutions, or [the image] for any other file `load_image` opens (one chunk).

    Nothing is decoded until a region is computed, so opening a 100k x 100k image is instant: this is what
    a viewer reads tiles from. Dask chunks are `chunk` x `chunk` pixels, or when None the file's own tiles,
    strips or Zarr chunks. Raises `ImageLoadError` (one line naming the file and the reason).
    """
    path = Path(path)
    try:
        if is_zarr_folder(path):
            levels = omezarr.open_levels(path, chunk)
        elif probe_image(path).format == "TIFF":  # probing refuses what is not an image, in one line
            levels = _tiff_levels(path, chunk) or [_loaded(path)]
        else:
            levels = [_loaded(path)]
        for number, level in enumerate(levels):
            _check_lazy_image(level, f"level {number}")
    except ImageLoadError:
        raise
    except (ValueError, KeyError, IndexError, OSError, tifffile.TiffFileError) as error:
        reason = getattr(error, "strerror", None) or (str(error).splitlines() or [type(error).__name__])[0]
        raise ImageLoadError(path, reason) from None
    return levels


def lazy_image(path: str | os.PathLike[str], chunk: int | None = None) -> da.Array:
    """An image as a lazy dask array (H, W[, C]) without reading its pixels: level 0 of `stored_levels`.

    Big TIFFs (plain or pyramidal, tiled or striped, uint8/uint16/float32 grey/RGB/RGBA) are read region
    by region through tifffile's zarr store, OME-Zarr images through zarr; other images, and TIFFs that
    need conversions, are loaded whole by `load_image` (its pixel limit applies) as one chunk.
    """
    return stored_levels(path, chunk)[0]


def _loaded(path: Path) -> da.Array:
    image = load_image(path)
    name = f"image-{tokenize(str(path), os.stat(path).st_mtime_ns)}"
    return da.from_array(image, chunks=image.shape, name=name)


# ---------------------------------------------------------------------------------------- execution


class _Cancelled(Exception):
    """The export's `cancel()` returned True."""


class MemoryLimitError(ValueError):
    """The memory limit is too small for even one tile task at the chunk size asked for."""


def _rss_bytes() -> int:
    """Resident memory of this process now (Linux), else its peak so far (other Unixes), else 0."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(ImportError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024
    return 0


@dataclass(frozen=True)
class _Stage:
    """One step of an export: compute `array` tile by tile and store it in `target`."""

    label: str
    array: da.Array
    target: zarr.Array
    task_bytes: int  # estimated peak memory of one task


def _store_tile(tile: np.ndarray, target: zarr.Array, y: int, x: int) -> tuple[float, float] | None:
    """Write a tile; returns its finite (min, max) for the level's value range."""
    omezarr.write_tile(target, y, x, tile)
    values = tile[np.isfinite(tile)] if tile.dtype.kind == "f" else tile
    return (values.min().item(), values.max().item()) if values.size else None


def _store_graph(stage: _Stage) -> tuple[HighLevelGraph, list[tuple]]:
    """The stage's graph with one store task per tile (each depends on its tile only)."""
    array = stage.array
    name = f"store-{tokenize(array.name, str(stage.target.store), stage.target.path)}"
    starts = [np.cumsum((0, *sizes[:-1])) for sizes in array.chunks[:2]]
    tail = (0,) * (array.ndim - 2)
    layer = {(name, i, j): (_store_tile, (array.name, i, j, *tail), stage.target, int(y), int(x))
             for i, y in enumerate(starts[0]) for j, x in enumerate(starts[1])}
    return HighLevelGraph.from_collections(name, layer, dependencies=[array]), list(layer)


_CONNECT_TIMEOUT = "10s"  # to reach a scheduler; a cluster on the other side of a network can be slow
# Memory that the allocator and the libraries keep once tasks have freed theirs (measured: ~170 MB after
# an export in 2048-pixel tiles on Linux), counted once beside the process's own memory at the start.
_RESERVE = 256 * 2**20


class _Runner:
    """Runs stages on Dask's threaded scheduler within a memory budget, or on a distributed cluster."""

    def __init__(self, scheduler: str | None, memory_limit: int | None) -> None:
        self.memory_limit = memory_limit
        self.baseline = _rss_bytes()
        self.client = None
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("a scheduler address needs dask.distributed: pip install "
                                 "'pyramid-explorer[cluster]'") from None
            try:
                self.client = Client(scheduler, timeout=_CONNECT_TIMEOUT, set_as_default=False)
            except OSError as error:
                raise ValueError(f"cannot connect to the Dask scheduler at {scheduler}: {error}") from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def workers(self, task_bytes: int) -> int:
        """Threads for tasks of `task_bytes` each: all cores, fewer when the memory limit says so."""
        cores = os.cpu_count() or 1
        if self.memory_limit is None:
            return cores
        budget = self.memory_limit - self.baseline - _RESERVE
        if budget < task_bytes:
            raise MemoryLimitError(
                f"the memory limit of {format_bytes(self.memory_limit)} leaves "
                f"{format_bytes(max(budget, 0))} for tile tasks after this process's own "
                f"{format_bytes(self.baseline)} and {format_bytes(_RESERVE)} of allocator slack, and one "
                f"task needs about {format_bytes(task_bytes)}: use a smaller chunk or a higher limit")
        return max(1, min(cores, budget // task_bytes))

    def run(self, stage: _Stage, on_tile: Callable[[Any], None]) -> None:
        graph, keys = _store_graph(stage)
        if self.client is None:
            self._run_local(graph, keys, self.workers(stage.task_bytes), on_tile)
        else:
            self._run_distributed(graph, keys, on_tile)

    @staticmethod
    def _run_local(graph: HighLevelGraph, keys: list, workers: int, on_tile: Callable[[Any], None]) -> None:
        wanted = set(keys)

        def finished(key: Any, result: Any, *_: Any) -> None:
            if key in wanted:
                on_tile(result)

        pool = ThreadPoolExecutor(workers, thread_name_prefix="pyramid-explorer-tile")
        try:
            with Callback(posttask=finished):
                dask.threaded.get(graph, keys, num_workers=workers, pool=pool)
        finally:  # tasks already running finish before the caller removes their output folder
            pool.shutdown(wait=True, cancel_futures=True)

    def _run_distributed(self, graph: HighLevelGraph, keys: list, on_tile: Callable[[Any], None]) -> None:
        from distributed import as_completed

        futures = self.client.get(dict(graph), keys, sync=False)
        try:
            for future in as_completed(futures, loop=self.client.loop):
                on_tile(future.result())
        except BaseException:
            self.client.cancel(futures)
            self.client.run(_wait_for_tasks, keys[0][0])
            raise


def _wait_for_tasks(prefix: str, dask_worker: Any = None, timeout: float = 120.0) -> None:
    """On a worker: wait until no task of a cancelled stage is still running (its write would land in a
    folder the client is about to remove)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [task.key for task in getattr(dask_worker.state, "executing", ())]
        if not any(isinstance(key, tuple) and key[0] == prefix for key in running):
            return
        time.sleep(0.05)


def _stage_bytes(kind: str, chunk: int, channels: int, itemsize: int) -> int:
    """A generous estimate of one tile task's peak memory, from the block sizes in the geometry above."""
    tile = chunk * chunk * channels
    if kind == "copy":
        return 4 * tile * max(itemsize, 4)
    if kind == "reduce":  # the gathered block, pyrDown's result, a stored chunk read and one written
        block = (2 * chunk + 8) * (2 * chunk + _ALIGN_DOWN + _MARGIN_DOWN + 8) * channels * itemsize
        return 2 * block + 4 * tile * itemsize
    side = chunk // 2 + _ALIGN_UP + _MARGIN_UP + 4  # band: coarse block, its float32 and pyrUp in float32
    return 2 * side * side * channels * (itemsize + 4) + 4 * side * side * channels * 4 + 6 * tile * 4


# ------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class OmeZarrResult:
    """An OME-Zarr export: where it is, how many levels, its manifest; `cancelled` exports left nothing."""

    path: Path
    levels: int
    manifest: Path | None
    cancelled: bool = False
    seconds: float = 0.0


def export_ome_zarr(source: str | os.PathLike[str] | da.Array, out_path: str | os.PathLike[str], *,
                    levels: int | None = None, border: int = cv2.BORDER_REFLECT_101, storage: str = "float32",
                    laplacian: bool = True, chunk: int = DEFAULT_CHUNK, memory_limit: int | str | None = None,
                    scheduler: str | None = None, force: bool = False,
                    progress: Callable[[ExportProgress], object] | None = None,
                    cancel: Callable[[], bool] | None = None) -> OmeZarrResult:
    """Write the Gaussian pyramid (and the Laplacian bands) of an image as one OME-Zarr folder.

    `source` is a path (`lazy_image`: nothing is read whole) or a dask array. The folder is an NGFF 0.4
    image of the Gaussian levels (datasets "0".."n-1", level i at scale 2**i, in the image's dtype), with
    the bands in the image group `laplacian/` (`storage` dtype, float32 by default) and `manifest.json`
    describing both; every level equals the in-memory engine's bit for bit.

    Runs on Dask's local threaded scheduler, with as many threads as `memory_limit` (bytes or "2GB")
    allows for tiles of `chunk` pixels, or on the `dask.distributed` scheduler at address `scheduler`
    (whose workers have their own memory limits; `memory_limit` is then not used).
    `progress(ExportProgress)` is called after each tile (`path` names the level being written) and
    `cancel()` polled then; when it returns True the export stops. Everything is written in a hidden sibling
    folder renamed at the end, so a cancelled, interrupted (Ctrl+C) or failed export leaves nothing behind.
    `levels` beyond the image's are clamped, as `core.export` does (the manifest records both numbers).
    Raises ExportConflictError when `out_path` exists (unless `force`), ImageLoadError for unreadable
    input, MemoryLimitError (a ValueError) when one tile cannot fit the limit, ValueError for other bad
    arguments, ExportError for failed writes.
    """
    started = time.monotonic()
    image = source if isinstance(source, da.Array) else lazy_image(source, chunk)
    _check_lazy_image(image)
    requested = levels
    if isinstance(levels, int | np.integer) and not isinstance(levels, bool):
        levels = min(int(levels), max_levels(image.shape))  # as core.export does: clamped to the image's
    count = _check_options(image.shape, image.dtype, levels, border, storage, chunk)
    limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
    out = Path(out_path).absolute()
    if (out.exists() or out.is_symlink()) and not force:
        raise ExportConflictError(f"{out}: already exists; nothing was written", [out])
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: a file is in the way of the output folder")
    shapes = [(h, w, *image.shape[2:]) for h, w in level_sizes(image.shape, count)]
    runner = _Runner(scheduler, limit)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    try:
        channels = image.shape[2] if image.ndim == 3 else 1
        runner.workers(max(_stage_bytes(kind, chunk, channels, image.dtype.itemsize)
                           for kind in ("copy", "reduce", "band")))  # refuse a limit too small before writing
        out.parent.mkdir(parents=True, exist_ok=True)
        stages, groups = _plan_export(image, shapes, partial, border, storage, laplacian, chunk)
        total, done = sum(stage.array.npartitions for stage in stages), 0
        ranges: dict[str, list] = {}
        for stage in stages:
            level_path = out / stage.label

            def on_tile(value_range: Any, label: str = stage.label, path: Path = level_path) -> None:
                nonlocal done
                done += 1
                ranges.setdefault(label, []).append(value_range)
                if progress is not None:
                    progress(ExportProgress(done, total, path))
                if cancel is not None and cancel():
                    raise _Cancelled

            runner.run(stage, on_tile)
        ranges = {label: _merge_ranges(found) for label, found in ranges.items()}
        seconds = time.monotonic() - started
        manifest = _describe(source, image, groups, ranges, (count, requested), border, storage, chunk,
                             seconds)
        _finish_metadata(groups, ranges, count, image, border, storage)
        omezarr.write_manifest(partial / MANIFEST_NAME, manifest)
        _replace(partial, out)
    except _Cancelled:
        shutil.rmtree(partial, ignore_errors=True)
        return OmeZarrResult(out, count, None, cancelled=True, seconds=time.monotonic() - started)
    except OSError as error:
        shutil.rmtree(partial, ignore_errors=True)
        raise ExportError(f"{out}: {error.strerror or error}; nothing was written") from error
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    finally:
        runner.close()
    return OmeZarrResult(out, count, out / MANIFEST_NAME, seconds=time.monotonic() - started)


@dataclass(frozen=True)
class _Group:
    """An image group of the export: its zarr group, its level arrays, its NGFF name and type."""

    key: str  # "gaussian" or "laplacian"
    group: zarr.Group
    arrays: list[zarr.Array]


def _plan_export(image: da.Array, shapes: list[tuple[int, ...]], folder: Path, border: int, storage: str,
                 laplacian: bool, chunk: int) -> tuple[list[_Stage], list[_Group]]:
    """Create the empty OME-Zarr layout in `folder` and list the stages that fill it, in order."""
    root = zarr.open_group(str(folder), mode="w-", zarr_format=2)
    gauss = _Group("gaussian", root, omezarr.create_image(root, shapes, image.dtype, chunk))
    channels = shapes[0][2] if len(shapes[0]) == 3 else 1
    size = image.dtype.itemsize
    stages = [_Stage("0", _cast(_Chunks(_tiled(image, chunk)), image.dtype, chunk), gauss.arrays[0],
                     _stage_bytes("copy", chunk, channels, size))]
    for level in range(1, len(shapes)):
        array = _reduce(_Stored(gauss.arrays[level - 1]), border, chunk)
        stages.append(_Stage(str(level), array, gauss.arrays[level],
                             _stage_bytes("reduce", chunk, channels, size)))
    groups = [gauss]
    if laplacian:
        dtype = STORAGE_DTYPES[storage]
        sub = root.create_group("laplacian")
        bands = _Group("laplacian", sub, omezarr.create_image(sub, shapes, dtype, chunk))
        stored = [_Stored(array) for array in gauss.arrays]
        for level in range(len(shapes) - 1):
            band = _band(stored[level], stored[level + 1], border, storage, chunk)
            stages.append(_Stage(f"laplacian/{level}", band, bands.arrays[level],
                                 _stage_bytes("band", chunk, channels, size)))
        stages.append(_Stage(f"laplacian/{len(shapes) - 1}", _cast(stored[-1], dtype, chunk),
                             bands.arrays[-1], _stage_bytes("copy", chunk, channels, size)))
        groups.append(bands)
    return stages, groups


def _merge_ranges(found: Sequence[tuple[float, float] | None]) -> tuple[float, float] | None:
    present = [r for r in found if r is not None]
    return (min(r[0] for r in present), max(r[1] for r in present)) if present else None


def _level_label(group: _Group, level: int) -> str:
    return str(level) if group.key == "gaussian" else f"laplacian/{level}"


def _finish_metadata(groups: Sequence[_Group], ranges: dict, count: int, image: da.Array, border: int,
                     storage: str) -> None:
    """NGFF multiscales and display hints for both image groups, once their values are known."""
    channels = image.shape[2] if image.ndim == 3 else 1
    for group in groups:
        dtype = group.arrays[0].dtype
        span = _merge_ranges([ranges.get(_level_label(group, level)) for level in range(count)])
        if group.key == "laplacian" and span is not None:
            reach = max(abs(span[0]), abs(span[1]))
            span = (-reach, reach)
        gaussian = group.key == "gaussian"
        method = "cv2.pyrDown" if gaussian else "band i = G[i] - cv2.pyrUp(G[i+1], size of G[i])"
        meta = {"method": method, "version": cv2.__version__, "kwargs": {"borderType": BORDERS[border]},
                "storage": None if gaussian else storage}
        group.group.attrs.update({
            "multiscales": omezarr.multiscales(group.key, count, channels, group.key, meta),
            "omero": omezarr.omero(channels, span, dtype),
        })


def _describe(source: Any, image: da.Array, groups: Sequence[_Group], ranges: dict, levels: tuple[int, Any],
              border: int, storage: str, chunk: int, seconds: float) -> dict[str, Any]:
    """The manifest: what was exported from what, how, and what each dataset holds.

    `levels` is (levels written, levels requested)."""
    path = None if isinstance(source, da.Array) else Path(source).absolute()
    stat = path.stat() if path is not None and path.is_file() else None
    datasets = []
    for group in groups:
        for level, array in enumerate(group.arrays):
            label = _level_label(group, level)
            datasets.append({"path": label, "kind": group.key, "level": level,
                             "shape": list(omezarr.image_shape(array)), "stored_shape": list(array.shape),
                             "dtype": str(array.dtype), "chunks": list(array.chunks),
                             "range": None if ranges.get(label) is None else list(ranges[label]),
                             "scale": 2**level, "translation": 0.0})
    versions = {"name": "pyramid-explorer", "version": pyramid_explorer.__version__, "numpy": np.__version__,
                "opencv": cv2.__version__, "dask": dask.__version__, "zarr": zarr.__version__}
    return {
        "manifest_version": MANIFEST_VERSION,
        "status": "complete",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "program": versions,
        "format": {"name": "OME-Zarr", "ngff_version": omezarr.NGFF_VERSION, "zarr_format": 2,
                   "gaussian_group": "", "laplacian_group": "laplacian" if len(groups) > 1 else None,
                   "axes": [axis["name"] for axis in omezarr.axes(image.shape[2] if image.ndim == 3 else 1)],
                   "compressor": omezarr.COMPRESSOR.get_config()},
        "source": {"path": None if path is None else str(path), "shape": list(image.shape),
                   "dtype": str(image.dtype), "bytes": None if stat is None else stat.st_size,
                   "modified": None if stat is None else datetime.datetime.fromtimestamp(
                       stat.st_mtime, datetime.UTC).isoformat(timespec="seconds")},
        "parameters": {"levels": levels[0], "levels_requested": levels[1], "border": BORDERS[border],
                       "border_code": border, "storage": storage,
                       "chunk": chunk, "factor": 2,
                       "kernels": "cv2.pyrDown / cv2.pyrUp: 5x5 binomial [1 4 6 4 1]/16 (x4 in pyrUp)",
                       "exact": "every level equals pyramid_explorer.core.pyramid gaussian_pyramid / "
                                "laplacian_pyramid bit for bit",
                       "pixel_centres": "level i pixel j is centred on level 0 pixel 2**i * j "
                                        "(translation 0)"},
        "seconds": round(seconds, 3),
        "datasets": datasets,
    }


def _replace(partial: Path, out: Path) -> None:
    """Move the finished folder into place; an existing `out` (force) is swapped out, then removed."""
    if out.exists() or out.is_symlink():
        old = out.parent / f".{out.name}.old-{secrets.token_hex(4)}"
        os.replace(out, old)
        try:
            os.replace(partial, out)
        except BaseException:
            os.replace(old, out)  # the earlier export goes back where it was
            raise
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink()
    else:
        os.replace(partial, out)

