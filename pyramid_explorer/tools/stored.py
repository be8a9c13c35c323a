"""Qt-free jobs of the stored-pyramid view: pyramids opened without reading them, then read region by region.

An OME-Zarr folder or a pyramidal TIFF already holds its levels. Opening one reads only metadata (and the
few levels small enough to read whole, for statistics and thumbnails); the window then asks for the part
of one level it shows, plus a margin, and nothing else is read: a 100k x 100k image opens in seconds and
a view of it costs about two screens of pixels. The reading goes through `core.chunked.stored_levels`
(Dask and Zarr, the optional `big` extra); without the extra a pyramidal TIFF is opened like any image
(whole, within the loader's pixel limit) and an OME-Zarr folder is refused in one line naming the extra.

Placement follows `jobs` (integer source coordinates are level-0 pixel centres). NGFF levels are placed
by their `coordinateTransformations` relative to level 0: scale s_i / s_0 and pixel 0 centred on
(t_i - t_0) / s_0, so the 2**i scale and zero translation `core.chunked` writes give pyrDown's placement
(scale 2**i, origin -2**i / 2). A TIFF says nothing about placement: a level whose size is the source's
halved k times, rounding up (what pyrDown makes), gets pyrDown's placement at scale 2**k; any other size
gets the ratio of widths as scale with its outer edges on the source's.

The view is served as the tools are (`tools.base`): `plan_region(StoredState)` is its `Plan` (the key
of the region that covers the view, and `read_region` to read it), `region_key` the key each result is
cached under, and `region_nbytes` what a region counts against the stored view's cache.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import tifffile

from pyramid_explorer.core.io import ImageLoadError
from pyramid_explorer.core.stores import ZARR_METADATA_FILES, is_zarr_folder
from pyramid_explorer.display import Layer, display_limits, finite_stats, make_layer, thumbnail
from pyramid_explorer.jobs import (
    LevelStats,
    LoadedImage,
    OpenRequest,
    Progress,
    Pyramid,
    TooLarge,
    open_image,
)
from pyramid_explorer.tools.base import Key, Plan

TILE = 256
"""Regions start and end on this grid of level pixels, so a small pan finds the region already read."""

MARGIN = 0.25
"""Part of the visible span read beyond each side of the view, so a pan shows pixels at once."""

MAX_REGION_SIDE = 4096
"""Most level pixels a region has on a side; a wider view of a fine level shows its centre only."""

WHOLE_LEVEL_PIXELS = 1 << 20
"""Levels up to this many pixels are read whole at opening, for their statistics and thumbnails."""

BIG_EXTRA = "pip install 'pyramid-explorer[big]'"
_TIFF_MAGIC = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")


# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredLevel:
    """One stored level: its shape (H, W[, C]) and its place in source coordinates (see `display.Layer`)."""

    level: int
    shape: tuple[int, ...]
    scale: float
    origin: tuple[float, float]


@dataclass(frozen=True, eq=False)
class StoredImage:
    """An opened stored pyramid: its levels' lazy arrays, placement, display limits and table rows.

    `stats` hold NaN where a level is too big to read whole (the table shows "-"); `thumbnails` of such
    levels are the finest level read whole, which at thumbnail size looks the same.
    """

    image_id: int
    name: str
    path: str
    kind: str  # "ome-zarr" or "tiff"
    levels: tuple[StoredLevel, ...]
    arrays: tuple[Any, ...]  # dask arrays (H, W[, C]), one per level, finest first
    dtype: np.dtype
    limits: tuple[float, float]
    stats: tuple[LevelStats, ...]
    thumbnails: tuple[np.ndarray, ...]

    @property
    def shape(self) -> tuple[int, ...]:
        return self.levels[0].shape


@dataclass(frozen=True)
class RegionRequest:
    """Read rows [rows[0], rows[1]) x columns [cols[0], cols[1]) of one stored level."""

    image: StoredImage
    level: int
    rows: tuple[int, int]
    cols: tuple[int, int]


@dataclass(frozen=True, eq=False)
class RegionResult:
    """A region of a stored level, ready to draw in source coordinates."""

    image_id: int
    level: int
    rows: tuple[int, int]
    cols: tuple[int, int]
    layer: Layer


@dataclass(frozen=True, eq=False)
class StoredState:
    """What the stored view's plan reads: the image, the level shown, the source rectangle in view
    (x0, y0, x1, y1) and the region on screen (None before the first)."""

    image: StoredImage
    level: int
    view: tuple[float, float, float, float]
    shown: RegionResult | None


# --- geometry (pure) -----------------------------------------------------------------------------


def stored_pyramid(path: str | os.PathLike[str]) -> tuple[str, Path] | None:
    """("ome-zarr" | "tiff", path) when `path` is a stored pyramid the stored view opens, else None.

    A Zarr group folder (or one of its metadata files, as a file dialog picks them) is an OME-Zarr
    candidate; a TIFF counts when its first series has more than one level. Reads a few header bytes.
    """
    p = Path(path)
    if p.is_file() and p.name in ZARR_METADATA_FILES:
        p = p.parent
    if p.is_dir():
        return ("ome-zarr", p) if is_zarr_folder(p) else None
    try:
        with open(p, "rb") as fh:
            if fh.read(4) not in _TIFF_MAGIC:
                return None
        with tifffile.TiffFile(p) as tif:
            return ("tiff", p) if tif.series and len(tif.series[0].levels) > 1 else None
    except (OSError, ValueError, IndexError, tifffile.TiffFileError):
        return None  # the ordinary loader then says what is wrong with the file


def level_for_zoom(levels: Sequence[StoredLevel], units_per_pixel: float) -> int:
    """The coarsest level whose pixels are no wider than a screen pixel (level 0 when zoomed in)."""
    fitting = [s.level for s in levels if s.scale <= units_per_pixel * (1 + 1e-9)]
    return max(fitting, default=0)


def level_window(level: StoredLevel, view: tuple[float, float, float, float]
                 ) -> tuple[int, int, int, int] | None:
    """(row0, row1, col0, col1) of the level pixels the source rectangle (x0, y0, x1, y1) touches,
    clamped to the level; None when the rectangle misses it."""
    x0, y0, x1, y1 = view
    ox, oy = level.origin
    h, w = level.shape[:2]
    c0, c1 = math.floor((x0 - ox) / level.scale), math.ceil((x1 - ox) / level.scale)
    r0, r1 = math.floor((y0 - oy) / level.scale), math.ceil((y1 - oy) / level.scale)
    r0, r1, c0, c1 = max(r0, 0), min(r1, h), max(c0, 0), min(c1, w)
    return (r0, r1, c0, c1) if r1 > r0 and c1 > c0 else None


def region_for(level: StoredLevel, view: tuple[float, float, float, float], *, margin: float = MARGIN,
               tile: int = TILE, max_side: int = MAX_REGION_SIDE) -> tuple[int, int, int, int] | None:
    """The region of `level` to read for the view (x0, y0, x1, y1): the visible pixels plus `margin` of
    their span on each side, widened to the `tile` grid, clamped to the level and, when wider than
    `max_side`, cut to `max_side` around the view's centre. None when the view misses the level."""
    window = level_window(level, view)
    if window is None:
        return None
    h, w = level.shape[:2]
    out = []
    for first, last, size in ((window[0], window[1], h), (window[2], window[3], w)):
        extra = math.ceil((last - first) * margin)
        lo, hi = max(0, (first - extra) // tile * tile), min(size, -(-(last + extra) // tile) * tile)
        if hi - lo > max_side:
            centre = (first + last) // 2
            lo = min(max(0, (centre - max_side // 2) // tile * tile), max(0, size - max_side))
            hi = min(size, lo + max_side)
        out += [lo, hi]
    return out[0], out[1], out[2], out[3]


def contains(region: tuple[int, int, int, int], window: tuple[int, int, int, int]) -> bool:
    """True when `region` (row0, row1, col0, col1) holds all of `window`."""
    return (region[0] <= window[0] and window[1] <= region[1] and region[2] <= window[2]
            and window[3] <= region[3])


# --- serving: the view's plan, cache key and size (pure) ----------------------------------------


def region_key(region: RegionResult) -> Key:
    """The cache key of a region: its image, level and (row0, row1, col0, col1)."""
    return (region.image_id, region.level, (*region.rows, *region.cols))


def region_nbytes(region: RegionResult) -> int:
    """What a region holds for the cache: its values, its uint8 codes and the drawn array when that is
    not the values (the histogram's few kilobytes are left out)."""
    layer = region.layer
    drawn = 0 if layer.display is layer.data else layer.display.nbytes
    return layer.data.nbytes + layer.pixels.nbytes + drawn


def plan_region(state: StoredState) -> Plan:
    """The stored view's plan: the region of the level that covers the view (`region_for`), read by
    `read_region`. Nothing is wanted while the region on screen already holds every visible pixel of
    the level (a small pan reads nothing) or when the view misses the level."""
    level = state.image.levels[state.level]
    visible = level_window(level, state.view)
    shown = state.shown
    if visible is None or (shown is not None and shown.level == state.level
                           and contains((*shown.rows, *shown.cols), visible)):
        return Plan()
    rows_cols = region_for(level, state.view)
    assert rows_cols is not None  # the view touches the level: visible is not None
    rows, cols = rows_cols[:2], rows_cols[2:]
    image, i = state.image, state.level
    return Plan(wanted=((image.image_id, i, rows_cols),), job=read_region,
                request=lambda _missing: RegionRequest(image, i, rows, cols))


# --- placement -----------------------------------------------------------------------------------


def tiff_placement(shapes: Sequence[tuple[int, ...]]) -> list[tuple[float, tuple[float, float]]]:
    """(scale, origin) of each TIFF level from its size alone (see the module docstring)."""
    h0, w0 = shapes[0][:2]
    places = []
    for shape in shapes:
        h, w = shape[:2]
        halvings = [k for k in range(64) if (h0 + 2**k - 1) >> k == h and (w0 + 2**k - 1) >> k == w]
        if halvings:
            scale = float(2 ** halvings[0])
            places.append((scale, (-scale / 2, -scale / 2)))
        else:
            places.append((w0 / w, (-0.5, -0.5)))
    return places


def ngff_placement(multiscale: dict[str, Any]) -> list[tuple[float, tuple[float, float]]]:
    """(scale, origin) of each dataset of an NGFF `multiscales` entry, relative to the first dataset."""
    names = [a["name"] if isinstance(a, dict) else a for a in multiscale.get("axes", ["y", "x"])]
    iy, ix = names.index("y"), names.index("x")
    transforms = []
    for dataset in multiscale["datasets"]:
        scale, shift = [1.0] * len(names), [0.0] * len(names)
        for t in dataset.get("coordinateTransformations", []):
            if t.get("type") == "scale" and "scale" in t:
                scale = [float(v) for v in t["scale"]]
            elif t.get("type") == "translation" and "translation" in t:
                shift = [float(v) for v in t["translation"]]
        transforms.append((scale[ix], scale[iy], shift[ix], shift[iy]))
    sx0, sy0, tx0, ty0 = transforms[0]
    places = []
    for sx, sy, tx, ty in transforms:
        ratio = sx / sx0
        places.append((ratio, ((tx - tx0) / sx0 - ratio / 2, (ty - ty0) / sy0 - sy / sy0 / 2)))
    return places


# --- jobs ----------------------------------------------------------------------------------------


def open_any(req: OpenRequest) -> Iterator[Progress | StoredImage | TooLarge | LoadedImage | Pyramid]:
    """A stored pyramid opens lazily (`open_stored`); every other file or sample as `jobs.open_image`."""
    found = stored_pyramid(req.path) if req.path is not None else None
    if found is not None:
        try:
            from pyramid_explorer.core import chunked
        except ImportError as exc:
            if found[0] == "ome-zarr":
                raise ImageLoadError(found[1], f"reading OME-Zarr needs the optional dependencies "
                                               f"({exc.name} is missing): {BIG_EXTRA}") from None
        else:
            yield from open_stored(req.image_id, found[1], found[0], chunked.stored_levels)
            return
    yield from open_image(req)


def open_stored(image_id: int, path: Path, kind: str, levels_of: Any) -> Iterator[Progress | StoredImage]:
    """Open a stored pyramid from its metadata; read whole only the levels of WHOLE_LEVEL_PIXELS or less.

    `levels_of(path)` gives the lazy levels (`core.chunked.stored_levels`).
    """
    name = path.name
    yield Progress(0, 2, f"Opening {name}")
    arrays = levels_of(path)
    shapes = [tuple(int(n) for n in a.shape) for a in arrays]
    places = _ngff_places(path, len(arrays)) if kind == "ome-zarr" else tiff_placement(shapes)
    levels = tuple(StoredLevel(i, shape, scale, origin)
                   for i, (shape, (scale, origin)) in enumerate(zip(shapes, places, strict=True)))
    yield Progress(1, 2, f"Reading the small levels of {name}")
    small = {i: _compute(a) for i, (a, shape) in enumerate(zip(arrays, shapes, strict=True))
             if shape[0] * shape[1] <= WHOLE_LEVEL_PIXELS}
    dtype = np.dtype(arrays[0].dtype)
    finest = small[min(small)] if small else None
    limits = display_limits(finest, signed=False) if finest is not None else _dtype_limits(dtype)
    nan = math.nan
    stats, thumbs = [], []
    for i, shape in enumerate(shapes):
        data = small.get(i)
        low, high, mean = (nan, nan, nan) if data is None else finite_stats(data)
        stats.append(LevelStats(level=i, width=shape[1], height=shape[0], minimum=low, maximum=high,
                                mean=mean, band_energy=nan, max_abs_residual=nan))
        shown = data if data is not None else finest
        thumbs.append(thumbnail(shown, limits) if shown is not None else _blank_thumbnail())
    yield StoredImage(image_id=image_id, name=name, path=str(path), kind=kind, levels=levels,
                      arrays=tuple(arrays), dtype=dtype, limits=limits, stats=tuple(stats),
                      thumbnails=tuple(thumbs))


def read_region(req: RegionRequest) -> Iterator[Progress | RegionResult]:
    """Read one region of a stored level (only the chunks it touches) and make it a drawable layer."""
    image, i = req.image, req.level
    (r0, r1), (c0, c1) = req.rows, req.cols
    yield Progress(0, 1, f"Reading level {i}: rows {r0}-{r1}, columns {c0}-{c1}")
    data = _compute(image.arrays[i][r0:r1, c0:c1])
    place = image.levels[i]
    origin = (place.origin[0] + c0 * place.scale, place.origin[1] + r0 * place.scale)
    display = data if data.ndim == 2 or data.shape[2] != 2 else data[..., 0]
    layer = make_layer(data, i, scale=place.scale, origin=origin, display=display, limits=image.limits)
    yield RegionResult(image_id=image.image_id, level=i, rows=req.rows, cols=req.cols, layer=layer)


def _compute(array: Any) -> np.ndarray:
    """A dask array's values, read on the calling thread (the worker): no pool of Dask's own."""
    data = np.ascontiguousarray(array.compute(scheduler="synchronous"))
    data.flags.writeable = False  # shared between the worker and the GUI thread
    return data


def _ngff_places(path: Path, count: int) -> list[tuple[float, tuple[float, float]]]:
    import zarr

    attrs: dict[str, Any] = zarr.open_group(str(path), mode="r").attrs.asdict()
    places = ngff_placement(attrs.get("ome", attrs)["multiscales"][0])
    if len(places) != count:
        raise ImageLoadError(path, f"{len(places)} datasets in the metadata, {count} levels read")
    return places


def _dtype_limits(dtype: np.dtype) -> tuple[float, float]:
    return (0.0, float(np.iinfo(dtype).max)) if dtype.kind in "ui" else (0.0, 1.0)


def _blank_thumbnail() -> np.ndarray:
    return np.full((8, 8), 128, np.uint8)
