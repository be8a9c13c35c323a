"""The tile engine: lazy pyramids as dask graphs, one task per tile, bit-identical to `core.pyramid`.

`gaussian_pyramid` and `laplacian_pyramid` take a dask array `(H, W)` or `(H, W, C)` (uint8, uint16 or
float32) and return lazy dask arrays, one per level, in square tiles of `chunk` pixels (channels whole).
Every pixel equals the in-memory engine's, bit for bit, for every size, chunk size, dtype and border
(`core.tiling` says how). A tile task reads its block either from the chunks of a dask array (`Chunks`:
shared with the neighbouring tasks, right for computing what a view needs) or from a level already stored
in an OME-Zarr array (`Stored`: each task reads its own block, so an export holds nothing between tasks).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import cv2
import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize
from dask.highlevelgraph import HighLevelGraph
from dask.typing import DaskCollection, Key

from pyramid_explorer.core import omezarr
from pyramid_explorer.core.arrays import check_layout
from pyramid_explorer.core.pyramid import STORAGE_DTYPES, check_options
from pyramid_explorer.core.tiling import (
    ALIGN_DOWN,
    ALIGN_ROWS_DOWN,
    ALIGN_UP,
    MARGIN_DOWN,
    MARGIN_ROWS_DOWN,
    MARGIN_UP,
    Runs,
    Window,
    band_tile,
    cast_tile,
    down_window,
    exact_window,
    gather_chunks,
    gather_stored,
    reduce_tile,
    up_window,
)

DEFAULT_CHUNK = 1024



class Source(Protocol):
    """A level that tile tasks read blocks from."""

    shape: tuple[int, ...]
    dtype: np.dtype
    name: str
    dependencies: list[da.Array]

    def task(self, rows: Window, cols: Window) -> tuple[Any, ...]: ...


class Chunks:
    """A dask array: each task takes the chunks its block touches (shared with the tasks next to it)."""

    def __init__(self, array: da.Array) -> None:
        self.array, self.shape, self.dtype, self.name = array, array.shape, array.dtype, array.name
        self.dependencies = [array]
        self._bounds = [np.cumsum((0, *sizes)) for sizes in array.chunks[:2]]

    def task(self, rows: Window, cols: Window) -> tuple[Any, ...]:
        row_ids, col_ids = (self._touched(bounds, window.runs)
                            for bounds, window in zip(self._bounds, (rows, cols), strict=True))
        tail = (0,) * (self.array.ndim - 2)
        keys = [[(self.name, i, j, *tail) for j in col_ids] for i in row_ids]
        row_boxes = [(int(self._bounds[0][i]), int(self._bounds[0][i + 1])) for i in row_ids]
        col_boxes = [(int(self._bounds[1][j]), int(self._bounds[1][j + 1])) for j in col_ids]
        return (gather_chunks, keys, row_boxes, col_boxes, rows, cols)

    @staticmethod
    def _touched(bounds: np.ndarray, runs: Runs) -> list[int]:
        ids: set[int] = set()
        for first, count in runs:
            a, b = np.searchsorted(bounds, [first, first + count - 1], side="right") - 1
            ids.update(range(int(a), int(b) + 1))
        return sorted(ids)


class Stored:
    """A level stored in an OME-Zarr array: each task reads its own block (nothing shared, nothing held)."""

    def __init__(self, array: zarr.Array[Any]) -> None:
        self.array, self.shape, self.dtype = array, omezarr.image_shape(array), array.dtype
        self.name = f"stored-{tokenize(str(array.store), array.path)}"
        self.dependencies: list[da.Array] = []

    def task(self, rows: Window, cols: Window) -> tuple[Any, ...]:
        return (gather_stored, self.array, rows, cols)


def _tile_bounds(size: int, chunk: int) -> list[tuple[int, int]]:
    return [(lo, min(size, lo + chunk)) for lo in range(0, size, chunk)]


def _tile_array(name: str, shape: tuple[int, ...], dtype: np.dtype, chunk: int,
                tile_task: Callable[[int, int, int, int], tuple[Any, ...]],
                sources: Sequence[Source]) -> da.Array:
    """A dask array of `shape` in chunk x chunk tiles; tile [y0, y1) x [x0, x1) is the task
    tile_task(y0, y1, x0, x1) returns."""
    rows, cols = _tile_bounds(shape[0], chunk), _tile_bounds(shape[1], chunk)
    tail = (0,) * (len(shape) - 2)
    layer: dict[Key, tuple[Any, ...]] = {
        (name, i, j, *tail): tile_task(y0, y1, x0, x1)
        for i, (y0, y1) in enumerate(rows) for j, (x0, x1) in enumerate(cols)}
    # dask's Array fails dask's own DaskCollection protocol (its __dask_scheduler__ is no staticmethod)
    dependencies: list[DaskCollection] = [
        array for source in sources for array in source.dependencies]  # type: ignore[misc]
    graph = HighLevelGraph.from_collections(name, layer, dependencies=dependencies)
    chunks = (tuple(b - a for a, b in rows), tuple(b - a for a, b in cols), *((n,) for n in shape[2:]))
    return da.Array(graph, name, chunks, dtype=dtype, meta=np.empty((0,) * len(shape), dtype))


def reduce_level(source: Source, border: int, chunk: int) -> da.Array:
    """Level i+1 (pyrDown with `border`) of level `source`, in tiles of `chunk`."""
    height, width = source.shape[:2]
    shape = ((height + 1) // 2, (width + 1) // 2, *source.shape[2:])

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple[Any, ...]:
        rows = down_window(height, y0, y1, border, ALIGN_ROWS_DOWN, MARGIN_ROWS_DOWN)
        cols = down_window(width, x0, x1, border, ALIGN_DOWN, MARGIN_DOWN)
        return (reduce_tile, source.task(rows, cols), border, rows, cols)

    name = f"pyrdown-{tokenize(source.name, border, chunk)}"
    return _tile_array(name, shape, source.dtype, chunk, tile, [source])


def band_level(fine: Source, coarse: Source, border: int, storage: str, chunk: int) -> da.Array:
    """Laplacian band of level `fine` given the next level `coarse`, in tiles of `chunk`."""
    height, width = fine.shape[:2]

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple[Any, ...]:
        rows = up_window(coarse.shape[0], height, y0, y1, border, 1, 0)
        cols = up_window(coarse.shape[1], width, x0, x1, border, ALIGN_UP, MARGIN_UP)
        return (band_tile, fine.task(exact_window(y0, y1), exact_window(x0, x1)),
                coarse.task(rows, cols), storage, rows, cols)

    name = f"band-{tokenize(fine.name, coarse.name, border, storage, chunk)}"
    return _tile_array(name, fine.shape, STORAGE_DTYPES[storage], chunk, tile, [fine, coarse])


def cast_level(source: Source, dtype: np.dtype, chunk: int) -> da.Array:
    """`source` in `dtype`, in tiles of `chunk`."""

    def tile(y0: int, y1: int, x0: int, x1: int) -> tuple[Any, ...]:
        return (cast_tile, source.task(exact_window(y0, y1), exact_window(x0, x1)), dtype)

    name = f"cast-{tokenize(source.name, np.dtype(dtype).str, chunk)}"
    return _tile_array(name, source.shape, np.dtype(dtype), chunk, tile, [source])


# ------------------------------------------------------------------------------------------ checks


def check_lazy_image(image: da.Array, name: str = "image") -> da.Array:
    if not isinstance(image, da.Array):
        raise ValueError(f"{name} must be a dask array, got {type(image).__name__}")
    if any(np.isnan(size) for size in image.shape):
        raise ValueError(f"{name} is of unknown size: shape {image.shape}")
    return check_layout(image, name)


def check_chunk_options(shape: tuple[int, ...], dtype: np.dtype, levels: int | None, border: int,
                        storage: str, chunk: int) -> int:
    """Validate the arguments the pyramids share (as the in-memory engine does, plus the chunk size);
    returns the number of levels."""
    if isinstance(chunk, bool) or not isinstance(chunk, int | np.integer) or chunk < 1:
        raise ValueError(f"chunk must be a positive number of pixels, got {chunk!r}")
    return check_options(shape, dtype, levels, border, storage)


def tiled(image: da.Array, chunk: int) -> da.Array:
    return image.rechunk((chunk, chunk, *image.shape[2:]))


# ----------------------------------------------------------------------------------------- public API


def gaussian_pyramid(image: da.Array, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                     chunk: int = DEFAULT_CHUNK) -> list[da.Array]:
    """Lazy Gaussian pyramid of a dask array: level i equals `core.pyramid.gaussian_pyramid`'s, bit for bit.

    Level 0 is `image` in chunk x chunk tiles; every level is tiled the same way (channels whole).
    """
    check_lazy_image(image)
    count = check_chunk_options(image.shape, image.dtype, levels, border, "float32", chunk)
    pyramid = [tiled(image, chunk)]
    for _ in range(count - 1):
        pyramid.append(reduce_level(Chunks(pyramid[-1]), border, chunk))
    return pyramid


def laplacian_pyramid(image: da.Array, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                      storage: str = "float32", chunk: int = DEFAULT_CHUNK) -> list[da.Array]:
    """Lazy Laplacian pyramid of a dask array, equal bit for bit to `core.pyramid.laplacian_pyramid`'s.

    Band i = G[i] - expand(G[i+1]); the last band is the coarsest Gaussian level. `storage` as in the
    in-memory engine: "float32", "int16" (uint8 images) or "uint8_saturate".
    """
    check_lazy_image(image)
    check_chunk_options(image.shape, image.dtype, levels, border, storage, chunk)
    gauss = [Chunks(level) for level in gaussian_pyramid(image, levels, border, chunk)]
    bands = [band_level(fine, coarse, border, storage, chunk) for fine, coarse in itertools.pairwise(gauss)]
    return [*bands, cast_level(gauss[-1], STORAGE_DTYPES[storage], chunk)]

