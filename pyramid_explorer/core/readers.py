"""Lazy inputs: an image file or OME-Zarr folder as dask arrays, read region by region, never whole.

Big TIFFs (plain or pyramidal, tiled or striped) go through tifffile's zarr store, OME-Zarr images through
zarr; other images, and TIFFs that need `load_image`'s conversions, are loaded whole as one chunk.
"""

from __future__ import annotations

import collections
import os
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, cast

import dask.array as da
import numpy as np
import tifffile
import zarr
from dask.base import tokenize

from pyramid_explorer.core import omezarr, tiff
from pyramid_explorer.core.arrays import SUPPORTED_DTYPES
from pyramid_explorer.core.graphs import check_lazy_image
from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image
from pyramid_explorer.core.scratch import Recycled, thread_buffer
from pyramid_explorer.core.stores import is_zarr_folder


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
        self._open: collections.OrderedDict[tuple[str, int, int], tuple[tifffile.TiffFile, zarr.Array[Any]]]
        self._open = collections.OrderedDict()
        self._lock = threading.Lock()

    def page(self, path: str, level: int) -> zarr.Array[Any]:
        """tifffile's zarr view of the first page of a level (a file changed on disk is opened anew)."""
        key = (path, os.stat(path).st_mtime_ns, level)
        with self._lock:
            if key not in self._open:
                tif = tifffile.TiffFile(path)
                page = _first_page(tif.series[0].levels[level])
                if page is None:
                    tif.close()
                    raise ValueError(f"{path}: level {level} has no first page tifffile can read")
                store = page.aszarr()
                self._open[key] = (tif, zarr.open_array(store, mode="r"))
                while len(self._open) > self.size:
                    self._open.popitem(last=False)[1][0].close()
            self._open.move_to_end(key)
            return self._open[key][1]


_OPEN_TIFFS = _OpenTiffs()


def _first_page(series: tifffile.TiffPageSeries) -> tifffile.TiffPage | None:
    """The first page of one level of a series; None when tifffile holds it only as a frame, or not."""
    page = series.pages[0]
    return page if isinstance(page, tifffile.TiffPage) else None


def _simple(page: tifffile.TiffPage, axes: Sequence[str] = ("YX", "YXS", "SYX")) -> bool:
    """A page read as it is stored: grey, RGB or RGBA samples of a supported dtype, no orientation tag,
    a codec tifffile decodes, `axes` among those given."""
    return (page.dtype in SUPPORTED_DTYPES and int(page.photometric) in (1, 2)
            and page.compression in tifffile.TIFF.DECOMPRESSORS and int(page.tags.valueof(274, 1)) == 1
            and page.axes in axes and page.samplesperpixel in ((1,) if page.axes == "YX" else (3, 4)))


def _tiff_levels(path: Path, chunk: int | None) -> list[da.Array] | None:
    """Every level of a TIFF as lazy arrays, or None when its first page needs `load_image`'s conversions
    (palette, min-is-white, under 8 bits, other sample types, an orientation tag, unusual axes)."""
    with tifffile.TiffFile(path) as tif:
        firsts = [_first_page(level) for level in tif.series[0].levels]
    pages = [page for page in firsts if page is not None]
    if len(pages) < len(firsts) or not _simple(pages[0]):
        return None
    page = pages[0]
    samples, axes = page.samplesperpixel, page.axes
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
            check_lazy_image(level, f"level {number}")
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



_MICROMETRES = {"µm": 1.0, "um": 1.0, "nm": 1e-3, "mm": 1e3, "cm": 1e4}


def source_pixel_size(path: str | os.PathLike[str]) -> tuple[float, float] | None:
    """Level 0's (y, x) pixel size in micrometres, when a TIFF file says it: its OME-XML PhysicalSize, or
    its resolution tags with a unit of inch or centimetre. None otherwise (and for any other input)."""
    path = Path(path)
    if is_zarr_folder(path) or path.is_dir():
        return None
    try:
        with tifffile.TiffFile(path) as tif:
            if tif.is_ome:
                size = _ome_pixel_size(tif.ome_metadata)
                if size is not None:
                    return size
            return tiff.pixel_size_of(tif.pages.first)
    except (OSError, ValueError, KeyError, TypeError, tifffile.TiffFileError):
        return None


def _ome_pixel_size(xml: str | None) -> tuple[float, float] | None:
    image = tifffile.xml2dict(xml or "").get("OME", {}).get("Image", {})
    pixels = (image[0] if isinstance(image, list) else image).get("Pixels", {})
    sizes = []
    for axis in ("Y", "X"):
        value, unit = pixels.get(f"PhysicalSize{axis}"), pixels.get(f"PhysicalSize{axis}Unit", "µm")
        if value is None or unit not in _MICROMETRES:
            return None
        sizes.append(float(value) * _MICROMETRES[unit])
    return sizes[0], sizes[1]


def tiff_strips(path: str | os.PathLike[str], rows: int) -> Iterator[np.ndarray] | None:
    """Level 0 of a TIFF in strips of about `rows` whole rows (a whole number of the file's tile rows or
    strips), each tile or strip of the file read and decoded once by tifffile, with nothing in between;
    None when the file needs the general reader (`lazy_image`: planar samples, conversions)."""
    path = Path(path)
    if is_zarr_folder(path) or path.is_dir() or probe_image(path).format != "TIFF":
        return None
    with tifffile.TiffFile(path) as tif:
        if not _simple(tif.pages.first, ("YX", "YXS")):
            return None
    return _decoded_strips(path, rows)


def _decoded_strips(path: Path, rows: int) -> Iterator[np.ndarray]:
    buffers = Recycled()
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        height, width = page.imagelength, page.imagewidth
        seg_h = page.tilelength or min(page.rowsperstrip, height)
        seg_w = page.tilewidth or width
        across, down = -(-width // seg_w), -(-height // seg_h)
        step = max(1, rows // seg_h)  # segment rows per strip
        tail = page.shape[2:] if page.axes == "YXS" else ()
        for first in range(0, down, step):
            y0, y1 = first * seg_h, min(height, (first + step) * seg_h)
            strip = buffers.empty((y1 - y0, width, *tail), page.dtype)
            ids = list(range(first * across, min(down, first + step) * across))
            for data, index in _segments(tif, ids):
                segment, position, _ = page.decode(data, index)
                y, x = position[2] - y0, position[3]
                h, w = min(seg_h, y1 - y0 - y), min(seg_w, width - x)
                block = strip[y : y + h, x : x + w]
                # an empty segment (byte count 0, a sparse file) is zeros, as tifffile reads it
                block[...] = 0 if segment is None else segment[0, :h, :w].reshape(block.shape)
            yield strip


def _segments(tif: tifffile.TiffFile, ids: list[int]) -> Iterator[tuple[Any, int]]:
    """The first page's segments `ids` as (encoded bytes, index), in order: when they lie end to end in
    the file, read at once into memory this thread keeps and handed out as views (tifffile's
    `read_segments` reads them into a new `bytes` and copies each segment out of it: fresh memory twice
    over, which costs more than the reading here)."""
    page, handle = tif.pages.first, tif.filehandle
    offsets = [page.dataoffsets[i] for i in ids]
    counts = [page.databytecounts[i] for i in ids]
    if not all(counts) or any(o + c != n for o, c, n in zip(offsets, counts, offsets[1:], strict=False)):
        pairs = handle.read_segments(offsets, counts, ids, lock=handle.lock, flat=True)
        yield from cast(Iterator[tuple[Any, int]], pairs)  # flat: (data, index) pairs, not lists of them
        return
    raw = thread_buffer("tiff-segments", (sum(counts),), np.uint8)
    with handle.lock:
        handle.seek(offsets[0])
        view, done = raw.data, 0
        # readinto takes any writable buffer (the stub says bytearray)
        while done < len(raw) and (got := handle.readinto(view[done:])):  # type: ignore[arg-type]
            done += got
    if done < len(raw):
        raise ImageLoadError(handle.path, "the file ends inside its image data")
    start = 0
    for index, count in zip(ids, counts, strict=True):
        yield view[start : start + count], index
        start += count
