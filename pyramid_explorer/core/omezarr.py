"""OME-Zarr (OME-NGFF 0.4) image groups: multiscales metadata, the arrays' layout, and reading them back.

The format layer under `core.chunked`. NGFF 0.4 on Zarr format 2 is what napari, Fiji/BigDataViewer,
QuPath, vizarr and ome-zarr-py all read. Its rules, as used here:
- An image group holds one array per level (dataset paths "0", "1", ...) and `multiscales` metadata listing
  them finest first, each with a `scale` transformation (2**i on y and x here) and an optional `translation`.
- Axes are ordered channel before space: `(c, y, x)` for RGB(A), `(y, x)` for grey. The arrays in memory
  stay `(H, W, C)` (OpenCV's order); `write_tile` and `read_region` move the channel axis.
- Chunk keys use "/" as the dimension separator.

Pixel-centre convention: `cv2.pyrDown` centres output pixel j on input pixel 2j (the 5-tap kernel is
symmetric about it), so level i's pixel j sits exactly on level 0's pixel 2**i * j and every level's
translation is 0. (The (2**i - 1) / 2 shift often seen in OME-Zarr pyramids belongs to 2x2 averaging,
whose output pixel lies between two input pixels; it would misplace a Gaussian pyramid by half a pixel
per level.) The zero translation is still written out, so no reader has to guess.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import dask.array as da
import numcodecs
import numpy as np
import zarr
from zarr.core.metadata import ArrayV2Metadata
from zarr.storage import LocalStore

from pyramid_explorer.core.chunkfiles import write_chunk
from pyramid_explorer.core.pyramid import UINT8_BAND_SCALE
from pyramid_explorer.core.scratch import thread_buffer
from pyramid_explorer.core.tiff import CHANNEL_NAMES

NGFF_VERSION = "0.4"
# Lossless LZ4 with byte shuffle: ~1.2 GB/s per core to compress, several GB/s to read back. zstd level 1
# makes float32 bands a third smaller (20% of their size instead of 30%) but compresses 4x slower, and
# compression is most of an export's CPU time.
COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)
# Band encodings (`BAND_ENCODINGS`): float32 bands of a uint8 image are stored as int16 band * 64 (exact, see
# `pyramid.UINT8_BAND_SCALE`) through Zarr v2's standard `fixedscaleoffset` filter, which zarr-python,
# dask, ome-zarr-py and napari (numcodecs) decode back to the float32 band; "float32" stores them as
# they are, for readers without numcodecs filters. Half the bytes to compress and write.
SCALED_BANDS = numcodecs.FixedScaleOffset(offset=0, scale=UINT8_BAND_SCALE, dtype="<f4", astype="<i2")
# Their int16 values compress best without shuffle at a higher level: measured on 15 chunks of a 16000^2
# photograph's bands (one core), LZ4 clevel 7 without shuffle gives 0.43 of the int16 bytes at 1.4 GB/s,
# byte shuffle at clevel 5 0.44 at 1.27 GB/s (clevel 1: 0.60 at 1.9 GB/s; 9: 0.39 at 1.2 GB/s); whole
# exports, interleaved: 0.5 s less user time for the same bytes.
SCALED_COMPRESSOR = numcodecs.Blosc(cname="lz4", clevel=7, shuffle=numcodecs.Blosc.NOSHUFFLE)
_CHANNEL_COLOURS = {"Grey": "FFFFFF", "Red": "FF0000", "Green": "00FF00", "Blue": "0000FF", "Alpha": "FFFFFF"}


def axes(channels: int, unit: str | None = None) -> list[dict[str, str]]:
    """NGFF axes of an image with `channels` samples per pixel (1: grey, no channel axis); the spatial
    axes carry `unit` when the pixel size is known."""
    space = [{"name": name, "type": "space", **({"unit": unit} if unit else {})} for name in ("y", "x")]
    return space if channels == 1 else [{"name": "c", "type": "channel"}, *space]


def multiscales(name: str, count: int, channels: int, kind: str, metadata: dict[str, Any],
                pixel_size: tuple[float, float] | None = None) -> list[dict[str, Any]]:
    """The `multiscales` attribute of an image group with `count` levels, level i scaled by 2**i (times
    level 0's (y, x) `pixel_size` in micrometres, when known)."""
    datasets = []
    size_y, size_x = pixel_size or (1.0, 1.0)
    for level in range(count):
        lead = [1.0] if channels > 1 else []
        datasets.append({"path": str(level), "coordinateTransformations": [
            {"type": "scale", "scale": [*lead, size_y * 2.0**level, size_x * 2.0**level]},
            {"type": "translation", "translation": [*([0.0] * len(lead)), 0.0, 0.0]},
        ]})
    unit = "micrometer" if pixel_size else None
    return [{"version": NGFF_VERSION, "name": name, "axes": axes(channels, unit), "datasets": datasets,
             "type": kind, "metadata": metadata}]


def omero(channels: int, value_range: tuple[float, float] | None, dtype: np.dtype) -> dict[str, Any]:
    """Display hints (the transitional `omero` block): channel names (`tiff.CHANNEL_NAMES`: Grey, or Red,
    Green, Blue and Alpha), colours and a contrast window; the alpha channel is named so and inactive."""
    dtype = np.dtype(dtype)
    if value_range is None:
        value_range = (0.0, float(np.iinfo(dtype).max)) if dtype.kind in "ui" else (0.0, 1.0)
    low, high = (float(v) for v in value_range)
    if dtype.kind == "u":
        low, high = 0.0, float(np.iinfo(dtype).max)
    labels = CHANNEL_NAMES[channels]
    window = {"min": low, "max": high, "start": low, "end": high}
    return {"channels": [{"label": label, "color": _CHANNEL_COLOURS[label], "window": window,
                          "active": label != "Alpha"} for label in labels],
            "rdefs": {"model": "greyscale" if channels == 1 else "color"}}


def create_image(group: zarr.Group, shapes: Sequence[tuple[int, ...]], dtype: np.dtype,
                 chunk: int, scaled: bool = False) -> list[zarr.Array[Any]]:
    """Empty level arrays "0", "1", ... in `group` for images of `shapes` ((H, W) or (H, W, C)); `scaled`:
    float32 arrays stored in the scaled-int16 band encoding (`SCALED_BANDS`).

    Every chunk is stored, even one of zeros: zarr's check for chunks equal to the fill value costs more
    than compressing them (it more than doubled an export's CPU time)."""
    if scaled and np.dtype(dtype) != np.float32:
        raise ValueError(f"the scaled-int16 band encoding stores float32 arrays, not {np.dtype(dtype)}")
    arrays = []
    for level, shape in enumerate(shapes):
        stored = _stored_shape(shape)
        chunks = (*stored[:-2], min(chunk, stored[-2]), min(chunk, stored[-1]))
        arrays.append(group.create_array(str(level), shape=stored, chunks=chunks, dtype=dtype,
                                         filters=[SCALED_BANDS] if scaled else None,
                                         compressors=SCALED_COMPRESSOR if scaled else COMPRESSOR,
                                         fill_value=0,
                                         chunk_key_encoding={"name": "v2", "separator": "/"},
                                         config={"write_empty_chunks": True}))
    return arrays


def _stored_shape(shape: Sequence[int]) -> tuple[int, ...]:
    return tuple(shape) if len(shape) == 2 else (shape[2], shape[0], shape[1])


def encoding(array: zarr.Array[Any]) -> tuple[np.dtype, int]:
    """How `array`'s chunks hold its values: (their dtype, the factor the values are multiplied by),
    (its dtype, 1) unless it has the scaled-int16 band encoding."""
    metadata = array.metadata
    filters = metadata.filters if isinstance(metadata, ArrayV2Metadata) else None
    if filters:
        if list(filters) != [SCALED_BANDS]:
            raise ValueError(f"filters {list(filters)} are not the scaled-int16 band encoding")
        return np.dtype(SCALED_BANDS.astype), UINT8_BAND_SCALE
    return np.dtype(array.dtype), 1


def write_tile(array: zarr.Array[Any], y: int, x: int, tile: np.ndarray) -> None:
    """Store an (h, w[, C]) tile with its top-left corner at (y, x)."""
    rows, cols = slice(y, y + tile.shape[0]), slice(x, x + tile.shape[1])
    if tile.ndim == 2:
        array[rows, cols] = tile
    else:  # all planes in one write (a chunk is encoded once); cv2.split is ~10x numpy's strided copy
        planes = np.empty((tile.shape[2], *tile.shape[:2]), tile.dtype)
        cv2.split(tile, list(planes))
        array[:, rows, cols] = planes


class ColumnSource(Protocol):
    """Rows computed on demand: `columns(x0, x1)` gives their pixels [:, x0:x1] (`strips.BandRows`)."""

    shape: tuple[int, ...]
    dtype: np.dtype

    def __len__(self) -> int: ...

    def columns(self, x0: int, x1: int) -> np.ndarray: ...


Rows = np.ndarray | ColumnSource


def write_rows(array: zarr.Array[Any], y: int, rows: Rows | Sequence[Rows],
               measure: Callable[[np.ndarray], Any] | None = None) -> list[Any]:
    """Store whole rows (H, W[, C]) from row `y` on, `y` a multiple of the chunk height, in an array of
    a local folder (as `create_image` makes them); `rows` may be one array, a `ColumnSource`, or
    consecutive pieces of rows, in the array's `encoding` (int16 band * 64 for scaled bands). Each
    chunk is assembled in its stored (C, h, w) layout in a buffer this thread keeps (fresh memory costs
    more than the copy), encoded with the array's compressor and written as its file; `measure(pixels)`
    is called on each chunk's pixels (padding excluded) and the results are returned. The same bytes as
    `write_tile` at a fraction of the CPU time: zarr's generic write path (selection, merge, async codec
    pipeline) costs several times the compression itself."""
    pieces = list(rows) if isinstance(rows, Sequence) else [rows]
    height, width = sum(len(piece) for piece in pieces), pieces[0].shape[1]
    chunk_h, chunk_w = array.chunks[-2:]
    metadata, store = array.metadata, array.store
    if not isinstance(metadata, ArrayV2Metadata) or metadata.compressor is None or \
            not isinstance(store, LocalStore):
        raise ValueError("write_rows writes compressed Zarr v2 arrays of a local folder only")
    compressor = metadata.compressor
    if pieces[0].dtype != encoding(array)[0]:
        raise ValueError(f"rows of {pieces[0].dtype} for an array whose chunks hold {encoding(array)[0]}")
    planar = len(pieces[0].shape) == 3
    folder = Path(store.root) / array.path / ("0" if planar else "") / str(y // chunk_h)
    folder.mkdir(parents=True, exist_ok=True)
    lead = (pieces[0].shape[2],) if planar else ()
    chunk = thread_buffer("chunk", (*lead, chunk_h, chunk_w), pieces[0].dtype)
    measured = []
    for column, x in enumerate(range(0, width, chunk_w)):
        cols = min(chunk_w, width - x)
        if (height, cols) != (chunk_h, chunk_w):
            chunk.fill(0)  # edge chunks are stored whole, padded with the fill value
        top = 0
        for piece in pieces:
            pixels = piece[:, x : x + cols] if isinstance(piece, np.ndarray) else piece.columns(x, x + cols)
            _copy_planes(pixels, chunk[..., top : top + len(piece), :cols])
            top += len(piece)
        if measure is not None:
            measured.append(measure(chunk[..., :height, :cols]))
        write_chunk(folder / str(column), chunk, compressor)
    return measured


def _copy_planes(pixels: np.ndarray, target: np.ndarray) -> None:
    """(h, w[, C]) pixels into `target`, (h, w) or (C, h, w); cv2.split is ~10x numpy's strided copy."""
    if pixels.ndim == 2:
        target[...] = pixels
    elif target[0].flags.c_contiguous:
        cv2.split(pixels, list(target))  # straight into the chunk's planes
    else:
        for plane, values in zip(target, cv2.split(pixels), strict=True):
            plane[...] = values


def read_region(array: Any, rows: slice, cols: slice) -> np.ndarray:
    """Pixels [rows, cols] of a level array as a C-contiguous (h, w) or (h, w, C) array."""
    if array.ndim == 2:
        return np.asarray(array[rows, cols])
    planes = np.asarray(array[:, rows, cols])
    return cv2.merge(list(planes)).reshape(*planes.shape[1:], len(planes))  # 10x faster than numpy here


def image_shape(array: Any) -> tuple[int, ...]:
    """(H, W) or (H, W, C) of a level array stored in NGFF order."""
    shape = tuple(array.shape)
    return shape if len(shape) == 2 else (shape[1], shape[2], shape[0])


def open_levels(path: str | os.PathLike[str], chunk: int | None = None) -> list[da.Array]:
    """The levels of an OME-Zarr image, finest first, as lazy (H, W[, C]) dask arrays in stored chunks.

    Reads NGFF 0.4 and 0.5 `multiscales` (the first one); axes other than c, y and x must have size 1.
    Raises ValueError with a one-line reason when the folder is not such an image.
    """
    with warnings.catch_warnings(action="ignore", category=UserWarning):  # zarr's on mixed v2/v3 metadata
        group = zarr.open_group(str(path), mode="r")
    attrs: dict[str, Any] = group.attrs.asdict()
    attrs = attrs.get("ome", attrs)  # NGFF 0.5 nests its metadata under "ome"
    scales = attrs.get("multiscales")
    if not scales:
        raise ValueError("no OME-NGFF multiscales metadata in this Zarr group")
    names = [axis["name"] if isinstance(axis, dict) else axis for axis in scales[0].get("axes", ["y", "x"])]
    levels = []
    for dataset in scales[0]["datasets"]:
        array = group[dataset["path"]]
        if not isinstance(array, zarr.Array) or array.ndim != len(names):
            raise ValueError(f"dataset {dataset['path']!r} does not match the {len(names)} axes {names}")
        tiles = None if chunk is None else tuple(
            min(chunk, n) if name in ("y", "x") else n for name, n in zip(names, array.shape, strict=True))
        levels.append(_as_image(da.from_zarr(array, chunks=tiles or array.chunks), names))
    return levels


def _as_image(array: da.Array, names: Sequence[str]) -> da.Array:
    """(..., c, ..., y, x) with every other axis of size 1, as (H, W) or (H, W, C)."""
    if not {"y", "x"} <= set(names):
        raise ValueError(f"axes {list(names)} lack y and x")
    extra = [name for name in names if name not in ("c", "y", "x")]
    if any(size != 1 for name, size in zip(names, array.shape, strict=True) if name in extra):
        raise ValueError(f"axes {list(names)} of shape {array.shape}: only 2-D images (one t, one z) "
                         "are supported")
    kept = [name for name in names if name not in extra]
    image = array[tuple(0 if name in extra else slice(None) for name in names)]
    image = image.transpose([kept.index(name) for name in ("y", "x", "c") if name in kept])
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


def write_manifest(path: Path, manifest: dict[str, Any]) -> None:
    """`manifest.json` (pretty-printed, strict JSON) at `path`."""
    path.write_text(json.dumps(manifest, indent=2, allow_nan=False) + "\n", encoding="utf-8")
