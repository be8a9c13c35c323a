"""Images larger than memory: lazy pyramids on Dask and exports to OME-Zarr, bit-identical to `core.pyramid`.

The public face of the big-image engine, in modules by concern:
- `core.tiling`: the exact block geometry (which rows and columns of level i a piece of level i+1 needs);
- `core.graphs`: the tile engine, lazy `gaussian_pyramid` / `laplacian_pyramid` of a dask array;
- `core.strips`: the strip engine, a pyramid in one pass over the input (the local exports);
- `core.readers`: lazy inputs (`lazy_image`, `stored_levels`: big TIFFs, OME-Zarr, anything else);
- `core.scheduling`: running tile stages locally within a memory budget or on a dask.distributed cluster;
- `core.omezarr` and `core.tiff`: the formats; `core.bigtiff`: pyramidal TIFF of any size.

`export_ome_zarr` writes both pyramids of a lazily read image as one OME-Zarr folder. Locally it runs the
strip engine: level 0 is read once, strip by strip, written straight from those strips while it is
reduced, and every level and band is written as soon as its rows exist; memory is a few strips (whole
rows of `chunk` rows) whatever the height, and `memory_limit` bounds the blocks in flight to the writers.
On a cluster (`scheduler`) and for BORDER_WRAP (whose first rows need the last ones) the tile engine runs
instead: it writes level 0, then each task of level i+1 reads from the stored level i exactly the block it
needs, computes and writes its tile, so peak memory is the number of worker threads times one task.
"""

from __future__ import annotations

import datetime
import functools
import os
import secrets
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import dask
import dask.array as da
import numpy as np
import zarr
from dask.utils import parse_bytes

import pyramid_explorer
from pyramid_explorer.core import omezarr
from pyramid_explorer.core.export import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ExportConflictError,
    ExportError,
    ExportProgress,
)
from pyramid_explorer.core.graphs import (
    DEFAULT_CHUNK,
    check_chunk_options,
    check_lazy_image,
    gaussian_pyramid,
    laplacian_pyramid,
)
from pyramid_explorer.core.pyramid import BAND_ENCODINGS, BORDERS, STORAGE_DTYPES, level_sizes, max_levels
from pyramid_explorer.core.readers import lazy_image, source_pixel_size, stored_levels, tiff_strips
from pyramid_explorer.core.scheduling import (
    Cancelled,
    MemoryLimitError,
    Runner,
    stage_bytes,
    tile_stages,
)
from pyramid_explorer.core.strips import (
    Blocks,
    Cascade,
    Writes,
    dask_strips,
    finite_span,
    plan_memory,
    prefetched,
    writer_threads,
)
from pyramid_explorer.core.tiling import border_index

__all__ = ["DEFAULT_CHUNK", "ExportError", "MemoryLimitError", "OmeZarrResult", "border_index",
           "export_ome_zarr", "gaussian_pyramid", "laplacian_pyramid", "lazy_image", "stored_levels"]


# What the allocator and the libraries keep beside the strips' own memory (measured: ~30 MB; the strip
# engine allocates the same few sizes over and over, unlike the tile engine's RESERVE).
STRIP_RESERVE = 64 * 2**20

Ranges = dict[str, tuple[float, float] | None]  # dataset label -> its finite (min, max), None if none


@dataclass(frozen=True)
class OmeZarrResult:
    """An OME-Zarr export: where it is, how many levels, its manifest; `cancelled` exports left nothing."""

    path: Path
    levels: int
    manifest: Path | None
    cancelled: bool = False
    seconds: float = 0.0


class Progress:
    """Bytes written so far, reported to `progress` (an ExportProgress in bytes) with `cancel()` polled
    after every block; raises Cancelled when it returns True. Called on the exporting thread only."""

    def __init__(self, total: int, progress: Callable[[ExportProgress], object] | None,
                 cancel: Callable[[], bool] | None, where: Callable[[str], Path]) -> None:
        self.total, self.done, self.progress, self.cancel, self.where = total, 0, progress, cancel, where

    def __call__(self, label: str, nbytes: int) -> None:
        self.done += nbytes
        if self.progress is not None:
            self.progress(ExportProgress(self.done, self.total, self.where(label), unit="bytes"))
        if self.cancel is not None and self.cancel():
            raise Cancelled


def prepare(source: str | os.PathLike[str] | da.Array, levels: int | None, border: int, storage: str,
            chunk: int) -> tuple[da.Array, int, list[tuple[int, ...]]]:
    """The lazy image, its number of levels (clamped to the image's, as `core.export` does) and their
    shapes, after every argument check."""
    image = source if isinstance(source, da.Array) else lazy_image(source, chunk)
    check_lazy_image(image)
    if isinstance(levels, int | np.integer) and not isinstance(levels, bool):
        levels = min(int(levels), max_levels(image.shape))
    count = check_chunk_options(image.shape, image.dtype, levels, border, storage, chunk)
    return image, count, [(h, w, *image.shape[2:]) for h, w in level_sizes(image.shape, count)]


def strip_workers(limit: int | None, baseline: int, shape: Sequence[int], itemsize: int, chunk: int,
                  band_itemsize: int | None) -> int:
    """Blocks the strip engine may have in flight within `limit`; MemoryLimitError when none fits."""
    budget = None if limit is None else limit - baseline - STRIP_RESERVE
    in_flight = plan_memory(shape, itemsize, chunk, band_itemsize, budget, writer_threads())
    if in_flight < 1:
        raise MemoryLimitError(f"the memory limit of {limit:,} bytes is too small for strips of {chunk} rows "
                               f"of a {shape[1]}-pixel-wide image: use a smaller chunk or a higher limit")
    return in_flight


def export_ome_zarr(source: str | os.PathLike[str] | da.Array, out_path: str | os.PathLike[str], *,
                    levels: int | None = None, border: int = cv2.BORDER_REFLECT_101, storage: str = "float32",
                    laplacian: bool = True, band_encoding: str = "scaled-int16", chunk: int = DEFAULT_CHUNK,
                    memory_limit: int | str | None = None,
                    scheduler: str | None = None, force: bool = False,
                    progress: Callable[[ExportProgress], object] | None = None,
                    cancel: Callable[[], bool] | None = None) -> OmeZarrResult:
    """Write the Gaussian pyramid (and the Laplacian bands) of an image as one OME-Zarr folder.

    `source` is a path (`lazy_image`: nothing is read whole) or a dask array. The folder is an NGFF 0.4
    image of the Gaussian levels (datasets "0".."n-1", level i at scale 2**i, times the source's pixel size
    in micrometres when it has one, in the image's dtype), with the bands in the image group `laplacian/`
    (`storage` dtype, float32 by default) and `manifest.json` describing both; every level equals the
    in-memory engine's bit for bit. `band_encoding` "scaled-int16" stores the float32 bands of a uint8
    image as int16 through Zarr's `fixedscaleoffset` filter (`BAND_ENCODINGS`: exact, half the
    bytes; other images' bands stay float32), "float32" as they are (for readers without numcodecs).

    Runs locally (the strip engine; the tile engine for BORDER_WRAP) within `memory_limit` (bytes or "2GB"),
    or on the `dask.distributed` scheduler at address `scheduler` (whose workers have their own memory
    limits; `memory_limit` is then not used). `progress(ExportProgress)` is called after each stored block
    with the bytes written so far (`path` names the level) and `cancel()` polled then; when it returns True
    the export stops. Everything is written in a hidden sibling folder renamed at the end, so a cancelled,
    interrupted (Ctrl+C) or failed export leaves nothing behind. `levels` beyond the image's are clamped
    (the manifest records both numbers). Raises ExportConflictError when `out_path` exists (unless
    `force`), ImageLoadError for unreadable input, MemoryLimitError (a ValueError) when one tile or strip
    cannot fit the limit, ValueError for other bad arguments, ExportError for failed writes.
    """
    started = time.monotonic()
    image, count, shapes = prepare(source, levels, border, storage, chunk)
    if band_encoding not in BAND_ENCODINGS:
        raise ValueError(f"band encoding {band_encoding!r} is not supported; allowed: "
                         f"{', '.join(BAND_ENCODINGS)}")
    scaled = laplacian and band_encoding == "scaled-int16" and storage == "float32" and \
        image.dtype == np.uint8
    limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
    out = Path(out_path).absolute()
    if (out.exists() or out.is_symlink()) and not force:
        raise ExportConflictError(f"{out}: already exists; nothing was written", [out])
    if out.exists() and not out.is_dir():
        raise ExportError(f"{out}: a file is in the way of the output folder")
    runner = Runner(scheduler, limit)
    partial = out.parent / f".{out.name}.partial-{secrets.token_hex(4)}"
    strips = scheduler is None and border != cv2.BORDER_WRAP
    band_itemsize = np.dtype(STORAGE_DTYPES[storage]).itemsize if laplacian else None
    try:
        channels = image.shape[2] if image.ndim == 3 else 1
        runner.workers(max(stage_bytes(kind, chunk, channels, image.dtype.itemsize)
                           for kind in ("copy", "reduce", "band")))  # refuse a limit too small before writing
        in_flight = strip_workers(limit, runner.baseline, image.shape, image.dtype.itemsize, chunk,
                                  band_itemsize) if strips else 0
        out.parent.mkdir(parents=True, exist_ok=True)
        groups = _create_groups(partial, shapes, image.dtype, storage, laplacian, chunk, scaled)
        total = sum(array.nbytes for group in groups for array in group.arrays)
        report = Progress(total, progress, cancel, lambda label: out / label)
        if strips:
            ranges = _run_strips(level_zero(source, image, chunk), groups, shapes, border, storage, chunk,
                                 in_flight, report)
        else:
            ranges = _run_tiles(image, groups, border, storage, chunk, runner, report)
        seconds = time.monotonic() - started
        pixel_size = None if isinstance(source, da.Array) else source_pixel_size(source)
        manifest = _describe(source, image, groups, ranges, (count, levels), border, storage, chunk,
                             seconds, "strips" if strips else "tiles")
        _finish_metadata(groups, ranges, count, image, border, storage, pixel_size)
        omezarr.write_manifest(partial / MANIFEST_NAME, manifest)
        _replace(partial, out)
    except Cancelled:
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
    arrays: list[zarr.Array[Any]]


def _create_groups(folder: Path, shapes: list[tuple[int, ...]], dtype: np.dtype, storage: str,
                   laplacian: bool, chunk: int, scaled: bool) -> list[_Group]:
    """The empty OME-Zarr layout in `folder`: the Gaussian image group, and the bands' under laplacian/
    (`scaled`: in the scaled-int16 band encoding)."""
    root = zarr.open_group(str(folder), mode="w-", zarr_format=2)
    groups = [_Group("gaussian", root, omezarr.create_image(root, shapes, dtype, chunk))]
    if laplacian:
        sub = root.create_group("laplacian")
        groups.append(_Group("laplacian", sub, omezarr.create_image(sub, shapes, STORAGE_DTYPES[storage],
                                                                    chunk, scaled)))
    return groups


def _store_rows(array: zarr.Array[Any], label: str, y: int, rows: Any) -> tuple[str, Any, int]:
    """Write whole rows (an array, consecutive pieces, or band rows computed chunk by chunk) from row `y`
    on (a thread-pool task); returns what the progress report needs (the range in the array's values,
    not in its encoding)."""
    span = merge_ranges(omezarr.write_rows(array, y, rows, finite_span))
    scale = omezarr.encoding(array)[1]
    if span is not None and scale != 1:
        span = (span[0] / scale, span[1] / scale)
    pieces = rows if isinstance(rows, Sequence) else [rows]
    return label, span, sum(piece.nbytes for piece in pieces)


class _Submit:
    """A RowSink handing each block of rows it is given to `submit(y, rows)` as it is (band blocks)."""

    def __init__(self, submit: Callable[[int, Any], Any]) -> None:
        self.put = submit

    def close(self) -> None:
        """Nothing to do: each block went out as it came."""


def level_zero(source: str | os.PathLike[str] | da.Array, image: da.Array, rows: int) -> Iterator[np.ndarray]:
    """The input's level 0 in strips of about `rows` rows, read ahead: straight from a TIFF's tiles when
    it can be, else through the dask array."""
    direct = None if isinstance(source, da.Array) else tiff_strips(source, rows)
    return prefetched(direct or dask_strips(image, rows, os.cpu_count() or 1))


def _run_strips(source: Iterator[np.ndarray], groups: Sequence[_Group], shapes: list[tuple[int, ...]],
                border: int, storage: str, chunk: int, in_flight: int, report: Progress) -> Ranges:
    """The strip engine: every level and band written block by block as the input's strips go through."""
    writes = Writes(writer_threads(), in_flight)
    ranges: dict[str, list[tuple[float, float] | None]] = {}

    def account(results: list[tuple[str, Any, int]]) -> None:
        for label, span, nbytes in results:
            ranges.setdefault(label, []).append(span)
            report(label, nbytes)

    def store(group: _Group, level: int) -> Callable[[int, Any], Any]:
        return functools.partial(writes.submit, _store_rows, group.arrays[level], _level_label(group, level))

    try:
        gaussian = [Blocks(shape[0], chunk, store(groups[0], level), views=True)
                    for level, shape in enumerate(shapes)]
        bands = None if len(groups) == 1 else [_Submit(store(groups[1], level))
                                               for level in range(len(shapes))]
        cascade = Cascade(shapes, border, storage, gaussian, bands, band_block=chunk,
                          scaled_bands=_band_encoding(groups) == "scaled-int16")
        for strip in source:
            cascade.feed(strip)
            account(writes.done())
        account(writes.done(wait_all=True))
    finally:
        writes.close()
    return {label: merge_ranges(found) for label, found in ranges.items()}


def _run_tiles(image: da.Array, groups: Sequence[_Group], border: int, storage: str, chunk: int,
               runner: Runner, report: Progress) -> Ranges:
    """The tile engine: stage by stage, each tile task reading its block from the stored level before."""
    ranges: dict[str, list[tuple[float, float] | None]] = {}
    bands = groups[1].arrays if len(groups) > 1 else None
    for stage in tile_stages(image, groups[0].arrays, bands, border, storage, chunk):

        def on_tile(result: Any, label: str = stage.label) -> None:
            span, nbytes = result
            ranges.setdefault(label, []).append(span)
            report(label, nbytes)

        runner.run(stage, on_tile)
    return {label: merge_ranges(found) for label, found in ranges.items()}


def merge_ranges(found: Sequence[tuple[float, float] | None]) -> tuple[float, float] | None:
    present = [r for r in found if r is not None]
    return (min(r[0] for r in present), max(r[1] for r in present)) if present else None


def _level_label(group: _Group, level: int) -> str:
    return str(level) if group.key == "gaussian" else f"laplacian/{level}"


def _finish_metadata(groups: Sequence[_Group], ranges: Ranges, count: int, image: da.Array, border: int,
                     storage: str, pixel_size: tuple[float, float] | None) -> None:
    """NGFF multiscales and display hints for both image groups, once their values are known."""
    channels = image.shape[2] if image.ndim == 3 else 1
    for group in groups:
        dtype = group.arrays[0].dtype
        span = merge_ranges([ranges.get(_level_label(group, level)) for level in range(count)])
        if group.key == "laplacian" and span is not None:
            reach = max(abs(span[0]), abs(span[1]))
            span = (-reach, reach)
        gaussian = group.key == "gaussian"
        method = "cv2.pyrDown" if gaussian else "band i = G[i] - cv2.pyrUp(G[i+1], size of G[i])"
        meta = {"method": method, "version": cv2.__version__, "kwargs": {"borderType": BORDERS[border]},
                "storage": None if gaussian else storage}
        group.group.attrs.update({
            "multiscales": omezarr.multiscales(group.key, count, channels, group.key, meta, pixel_size),
            "omero": omezarr.omero(channels, span, dtype),
        })


def _describe(source: Any, image: da.Array, groups: Sequence[_Group], ranges: Ranges, levels: tuple[int, Any],
              border: int, storage: str, chunk: int, seconds: float, engine: str) -> dict[str, Any]:
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
                             "range": None if (span := ranges.get(label)) is None else list(span),
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
                   "compressor": omezarr.COMPRESSOR.get_config(),
                   "band_encoding": _band_encoding(groups),
                   "band_compressor": None if _band_encoding(groups) is None else
                   omezarr.SCALED_COMPRESSOR.get_config()},
        "source": {"path": None if path is None else str(path), "shape": list(image.shape),
                   "dtype": str(image.dtype), "bytes": None if stat is None else stat.st_size,
                   "modified": None if stat is None else datetime.datetime.fromtimestamp(
                       stat.st_mtime, datetime.UTC).isoformat(timespec="seconds")},
        "parameters": {"levels": levels[0], "levels_requested": levels[1], "border": BORDERS[border],
                       "border_code": border, "storage": storage,
                       "chunk": chunk, "factor": 2, "engine": engine,
                       "kernels": "cv2.pyrDown / cv2.pyrUp: 5x5 binomial [1 4 6 4 1]/16 (x4 in pyrUp)",
                       "exact": "every level equals pyramid_explorer.core.pyramid gaussian_pyramid / "
                                "laplacian_pyramid bit for bit",
                       "pixel_centres": "level i pixel j is centred on level 0 pixel 2**i * j "
                                        "(translation 0)"},
        "seconds": round(seconds, 3),
        "datasets": datasets,
    }


def _band_encoding(groups: Sequence[_Group]) -> str | None:
    """"scaled-int16" when the bands are stored so, None when they are stored as they are (or absent)."""
    scaled = len(groups) > 1 and omezarr.encoding(groups[1].arrays[0])[1] != 1
    return "scaled-int16" if scaled else None


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

