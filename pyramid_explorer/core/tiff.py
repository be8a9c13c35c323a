"""The project's one TIFF writer: plain TIFF images and pyramidal TIFF (OME-TIFF with SubIFDs, or pages).

`write_tiff(fh, image)` writes one image (grey, RGB or RGBA; uint8, uint16, int16 or float32), bit-exact,
with its colour model and an unassociated alpha marked as such; `core.io.save_image` (uncompressed) and
`core.export` (zlib) both write through it.

`write_pyramid(fh, levels, ...)` writes a pyramid whose levels are arrays or `TiledLevel`s (tiles made on
demand, so images larger than memory go through it tile by tile) in one of two layouts (`LAYOUTS`):
- "subifds" (OME-TIFF): level 0 is the one top-level page, every other level a tiled sub-resolution in its
  SubIFDs, as the OME-TIFF specification asks; Bio-Formats (QuPath, Fiji), tifffile and libvips read every
  level. The OME-XML names the channels (Grey, or Red, Green, Blue and Alpha) and carries the physical
  pixel size when it is known.
- "pages" (generic tiled TIFF, not OME): every level is a top-level page, level i+1 marked as a reduced
  image (NewSubfileType 1). This is what OpenSlide (and QuPath's OpenSlide path) reads as a pyramid; it
  finds only level 0 of an OME-TIFF, because it does not follow SubIFDs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import tifffile

LAYOUTS = ("subifds", "pages")
TIFF_NAMES = {"subifds": "gaussian.ome.tif", "pages": "gaussian.tif"}  # a pyramid export's file, by layout
COMPRESSIONS = ("zlib", "zstd", None)  # lossless; zlib (deflate) is read everywhere, zstd is ~3x faster
PYRAMID_TILE = 256
CHANNEL_NAMES = {1: ("Grey",), 3: ("Red", "Green", "Blue"), 4: ("Red", "Green", "Blue", "Alpha")}
_BIGTIFF_BYTES = 2**31  # beyond this, classic TIFF's 32-bit offsets may overflow (with some slack)


def channel_count(shape: Sequence[int]) -> int:
    return shape[2] if len(shape) == 3 else 1


def colour_options(shape: Sequence[int]) -> dict[str, Any]:
    """tifffile's options for an (H, W) or (H, W, 3|4) image: its colour model, interleaved samples, and
    the fourth sample marked as unassociated alpha."""
    if len(shape) == 2:
        return {"photometric": "minisblack"}
    extra = {"extrasamples": ("unassalpha",)} if shape[2] == 4 else {}
    return {"photometric": "rgb", "planarconfig": "contig", **extra}


def write_tiff(fh: BinaryIO, image: np.ndarray, *, compression: str | None = None) -> None:
    """One image as a plain TIFF, bit-exact in its own dtype (`compression`: None or a tifffile name)."""
    tifffile.imwrite(fh, image, compression=compression, metadata=None, **colour_options(image.shape))


@dataclass(frozen=True)
class TiledLevel:
    """A pyramid level made on demand: `tiles()` yields its (tile, tile[, C]) tiles in row-major order
    (edge tiles may be smaller; they are zero-padded in the file)."""

    shape: tuple[int, ...]
    dtype: np.dtype
    tiles: Callable[[], Iterator[np.ndarray]]


Level = np.ndarray | TiledLevel


def array_tiles(array: Any, tile: int) -> Iterator[np.ndarray]:
    """The tiles of an in-memory (or sliceable) array, row-major."""
    height, width = array.shape[:2]
    for y in range(0, height, tile):
        rows = np.asarray(array[y : y + tile])
        for x in range(0, width, tile):
            yield rows[:, x : x + tile]


def write_pyramid(fh: BinaryIO, levels: Sequence[Level], *, layout: str = "subifds",
                  compression: str | None = "zlib", compression_level: int | None = None,
                  tile: int = PYRAMID_TILE, name: str = "gaussian pyramid",
                  pixel_size: tuple[float, float] | None = None, workers: int | None = None) -> None:
    """A tiled pyramidal TIFF of `levels` (finest first) in `layout` ("subifds": OME-TIFF; "pages").

    `pixel_size` is level 0's (y, x) pixel size in micrometres (level i's is 2**i times it); it becomes
    the OME-XML PhysicalSize and every page's resolution tags. `workers` threads compress tiles.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown TIFF layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    shape0, dtype = tuple(levels[0].shape), np.dtype(levels[0].dtype)
    total = sum(int(np.prod(level.shape)) for level in levels) * dtype.itemsize
    options: dict[str, Any] = {"tile": (tile, tile), "compression": compression, "maxworkers": workers,
                               **colour_options(shape0)}
    if compression_level is not None:
        options["compressionargs"] = {"level": compression_level}
    ome = layout == "subifds"
    with tifffile.TiffWriter(fh, ome=ome, bigtiff=total > _BIGTIFF_BYTES) as tiff:
        for number, level in enumerate(levels):
            page = dict(options, **_resolution(pixel_size, number))
            if number == 0:
                if ome:
                    page["subifds"] = len(levels) - 1
                    page["metadata"] = _ome_metadata(shape0, name, pixel_size)
                else:
                    page["metadata"] = None
            else:
                page["subfiletype"] = 1
                if not ome:
                    page["metadata"] = None
            if isinstance(level, TiledLevel):
                tiff.write(level.tiles(), shape=level.shape, dtype=level.dtype, **page)
            else:
                tiff.write(np.ascontiguousarray(level), **page)


def _ome_metadata(shape: Sequence[int], name: str, pixel_size: tuple[float, float] | None) -> dict[str, Any]:
    """OME-XML fields: axes, the channel (one OME channel of interleaved samples, named by its samples;
    the alpha sample is also marked in the TIFF's ExtraSamples tag) and the physical pixel size."""
    channels = channel_count(shape)
    names = CHANNEL_NAMES[channels]
    metadata: dict[str, Any] = {"axes": "YX" if channels == 1 else "YXS", "Name": name,
                                "Channel": {"Name": [", ".join(names)]}}
    if channels == 4:
        metadata["Description"] = "samples: Red, Green, Blue, Alpha (unassociated alpha)"
    if pixel_size is not None:
        metadata.update(PhysicalSizeY=pixel_size[0], PhysicalSizeYUnit="µm",
                        PhysicalSizeX=pixel_size[1], PhysicalSizeXUnit="µm")
    return metadata


def _resolution(pixel_size: tuple[float, float] | None, level: int) -> dict[str, Any]:
    """Resolution tags of level `level` (pixels per centimetre), when the pixel size is known."""
    if pixel_size is None:
        return {}
    scale = 2.0**level
    return {"resolution": (1e4 / (pixel_size[1] * scale), 1e4 / (pixel_size[0] * scale)),
            "resolutionunit": "CENTIMETER"}


def pixel_size_of(page: tifffile.TiffPage) -> tuple[float, float] | None:
    """A TIFF page's (y, x) pixel size in micrometres from its resolution tags (None without a unit)."""
    unit = page.tags.valueof(296, 2)  # ResolutionUnit: 1 none, 2 inch, 3 centimetre
    per_unit = {2: 25400.0, 3: 10000.0}.get(int(unit))
    xres, yres = page.tags.valueof(282), page.tags.valueof(283)
    if per_unit is None or not xres or not yres:
        return None
    x, y = (value[0] / value[1] if isinstance(value, tuple) else float(value) for value in (xres, yres))
    return (per_unit / y, per_unit / x) if x > 0 and y > 0 else None
