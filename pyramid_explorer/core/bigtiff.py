"""Pyramidal TIFF of images of any size: the chunked engine's Gaussian levels written tile by tile.

`export_pyramid_tiff(source, out_dir, ...)` writes `gaussian.ome.tif` (layout "subifds": OME-TIFF, the
levels as SubIFDs) or `gaussian.tif` (layout "pages": generic tiled TIFF that OpenSlide reads, not OME)
and `manifest.json` into `out_dir`, the same files `core.export` writes for an image in memory; every
level equals `core.pyramid.gaussian_pyramid`'s bit for bit.

A TIFF stores level 0 first and each sub-resolution after it, while the strip engine makes all levels at
once. So level 0 goes to the file as it forms (a writer thread takes its rows from a short queue and
writes tiles), levels 1 and on go to scratch files of raw rows in a hidden folder beside the output (a
third of level 0's size together), and are copied into the file once level 0 is complete. The file is
written through `core.io.atomic_write` (a temporary file renamed at the end) and the scratch folder is
removed in every case, so a cancelled, interrupted (Ctrl+C) or failed export leaves nothing. BORDER_WRAP
(which the strip engine cannot do) computes the levels with the tile engine into the scratch folder first.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import queue
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import dask.array as da
import numpy as np
import tifffile
from dask.utils import parse_bytes

import pyramid_explorer
from pyramid_explorer.core import chunked, omezarr, tiff
from pyramid_explorer.core.export import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ExportConflictError,
    ExportError,
    ExportProgress,
    FileRecord,
)
from pyramid_explorer.core.io import ImageSaveError, atomic_write
from pyramid_explorer.core.pyramid import BORDERS
from pyramid_explorer.core.readers import source_pixel_size
from pyramid_explorer.core.scheduling import Cancelled, rss_bytes
from pyramid_explorer.core.strips import Blocks, Cascade, finite_span

# Uncompressed by default, as libvips' fastest pyramidal tiffsave: zlib (deflate, read by every TIFF reader)
# even at its fastest level makes this export 2-3x slower; zstd costs little but not every reader has it.
DEFAULT_COMPRESSION: str | None = None


@dataclass(frozen=True)
class TiffExportResult:
    """A pyramidal TIFF export: the file, its manifest, how many levels; `cancelled` exports left nothing."""

    path: Path
    manifest: Path | None
    levels: int
    cancelled: bool = False
    seconds: float = 0.0


class _Aborted(Exception):
    """The exporting thread stopped; the writer thread gives up its file."""


class _RowFile:
    """A level's rows in a raw scratch file (rows in order), read back in strips for the TIFF."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.path, self.shape, self.dtype = path, shape, np.dtype(dtype)
        self.row_bytes = int(np.prod(shape[1:])) * self.dtype.itemsize
        self.file = open(path, "wb")  # closed by `close` (twice is harmless), always by the export
        self.span: list[Any] = []

    def put(self, start: int, rows: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(rows).data)
        self.span.append(finite_span(rows))

    def close(self) -> None:
        self.file.close()

    def tiles(self, side: int) -> Iterator[np.ndarray]:
        height = self.shape[0]
        with open(self.path, "rb") as fh:
            for y in range(0, height, side):
                count = min(side, height - y)
                rows = np.fromfile(fh, self.dtype, count * self.row_bytes // self.dtype.itemsize)
                rows = rows.reshape(count, *self.shape[1:])
                yield from (rows[:, x : x + side] for x in range(0, self.shape[1], side))


class _Writer:
    """The thread that writes the TIFF: level 0 from a queue of row blocks as they come, then the other
    levels from their scratch files once `ready` is set."""

    def __init__(self, path: Path, shapes: Sequence[tuple[int, ...]], dtype: np.dtype,
                 scratch: Sequence[_RowFile], options: dict[str, Any]) -> None:
        self.path, self.shapes, self.dtype, self.scratch, self.options = path, shapes, dtype, scratch, options
        self.blocks: queue.Queue[Any] = queue.Queue(maxsize=2)
        self.ready, self.abort = threading.Event(), threading.Event()
        self.copied = 0  # bytes of levels 1.. written so far
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="pyramid-explorer-tiff", daemon=True)
        self.thread.start()

    def send(self, y: int, rows: np.ndarray | None) -> None:
        """Queue block `rows` of level 0 from row `y` (None: level 0 is complete), waiting while the writer
        is behind; raises _Aborted when it has stopped."""
        while True:
            if self.error is not None:
                raise _Aborted
            if not self.thread.is_alive():
                if rows is None:
                    return  # tifffile took the last tile and finished without asking for more
                raise _Aborted
            try:
                self.blocks.put(rows, timeout=0.1)
                return
            except queue.Full:
                continue

    def _level0(self) -> Iterator[np.ndarray]:
        side = self.options["tile"]
        while True:
            rows = self.blocks.get()
            if self.abort.is_set():
                raise _Aborted
            if rows is None:
                return
            yield from (rows[:, x : x + side] for x in range(0, rows.shape[1], side))

    def _scratch(self, level: int) -> Iterator[np.ndarray]:
        self.ready.wait()
        if self.abort.is_set():
            raise _Aborted
        for tile in self.scratch[level - 1].tiles(self.options["tile"]):
            self.copied += tile.nbytes
            yield tile

    def _run(self) -> None:
        levels = [tiff.TiledLevel(self.shapes[0], self.dtype, self._level0)]
        levels += [tiff.TiledLevel(shape, self.dtype, partial(self._scratch, level))
                   for level, shape in enumerate(self.shapes[1:], 1)]
        try:
            with atomic_write(self.path) as fh:
                tiff.write_pyramid(fh, levels, **self.options)
        except BaseException as error:  # handed to the exporting thread
            self.error = error

    def stop(self) -> None:
        """Give up: the writer removes its temporary file and ends."""
        self.abort.set()
        self.ready.set()
        while self.thread.is_alive():
            with contextlib.suppress(queue.Empty):
                self.blocks.get_nowait()  # room for the wake-up call
            with contextlib.suppress(queue.Full):
                self.blocks.put_nowait(None)
            self.thread.join(0.05)


def export_pyramid_tiff(source: str | os.PathLike[str] | da.Array, out_dir: str | os.PathLike[str], *,
                        levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                        layout: str = "subifds", chunk: int = chunked.DEFAULT_CHUNK,
                        memory_limit: int | str | None = None, compression: str | None = DEFAULT_COMPRESSION,
                        force: bool = False,
                        progress: Callable[[ExportProgress], object] | None = None,
                        cancel: Callable[[], bool] | None = None) -> TiffExportResult:
    """Write the Gaussian pyramid of an image of any size as one tiled pyramidal TIFF, with a manifest.

    `source` as in `chunked.export_ome_zarr`; `layout` is "subifds" (OME-TIFF) or "pages" (generic TIFF,
    for OpenSlide). Level 0 is read once, in strips of `chunk` rows; memory stays within `memory_limit`
    as for the OME-Zarr export. `progress` gets the bytes written so far and `cancel()` is polled after
    every block. Raises ExportConflictError when a target exists (unless `force`), ImageLoadError,
    MemoryLimitError, ValueError and ExportError as the OME-Zarr export does; nothing is left behind.
    """
    if layout not in tiff.LAYOUTS:
        raise ValueError(f"unknown TIFF layout {layout!r}; allowed: {', '.join(tiff.LAYOUTS)}")
    started = time.monotonic()
    image, count, shapes = chunked.prepare(source, levels, border, "float32", chunk)
    limit = parse_bytes(memory_limit) if isinstance(memory_limit, str) else memory_limit
    out_dir = Path(out_dir).absolute()
    path, manifest_path = out_dir / tiff.TIFF_NAMES[layout], out_dir / MANIFEST_NAME
    existing = [p for p in (path, manifest_path) if p.exists() or p.is_symlink()]
    if any(p.is_dir() for p in existing):
        folder = next(p for p in existing if p.is_dir())
        raise ExportError(f"{folder}: a folder is in the way of an output file")
    if existing and not force:
        raise ExportConflictError(f"{out_dir}: {', '.join(p.name for p in existing)} already exist(s); "
                                  "nothing was written", existing)
    if border != cv2.BORDER_WRAP:
        chunked.strip_workers(limit, rss_bytes(), image.shape, image.dtype.itemsize, chunk, None)
    pixel_size = None if isinstance(source, da.Array) else source_pixel_size(source)
    options = {"layout": layout, "compression": compression,
               "tile": tiff.PYRAMID_TILE, "pixel_size": pixel_size, "workers": os.cpu_count() or 1}
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ExportError(f"{out_dir}: cannot create the output folder: {error.strerror or error}") from error
    scratch_dir = out_dir / f".{path.name}.scratch-{secrets.token_hex(4)}"
    writer, scratch = None, []
    try:
        scratch_dir.mkdir()
        for level, shape in enumerate(shapes[1:], 1):
            scratch.append(_RowFile(scratch_dir / f"{level}.raw", shape, image.dtype))
        total = sum(int(np.prod(shape)) for shape in shapes) * image.dtype.itemsize
        total += sum(int(np.prod(shape)) for shape in shapes[1:]) * image.dtype.itemsize  # the copy
        report = chunked.Progress(total, progress, cancel, lambda _: path)
        writer = _Writer(path, shapes, image.dtype, scratch, options)
        spans = _compute(source, image, shapes, border, chunk, scratch, writer, report, scratch_dir)
        writer.ready.set()
        copied = 0
        while writer.thread.is_alive():
            writer.thread.join(0.2)
            step, copied = writer.copied - copied, writer.copied
            report("", step)
        if writer.error is not None:
            raise writer.error
        spans += [chunked.merge_ranges(rows.span) for rows in scratch]
        record = FileRecord(path.name, "gaussian", None, None, shapes[0], str(image.dtype), spans[0], "data",
                            {"levels": [list(shape) for shape in shapes],
                             "level_ranges": [None if s is None else list(s) for s in spans]})
        manifest = _manifest(source, image, record, (count, levels), border, chunk, options,
                             time.monotonic() - started)
        try:
            with atomic_write(manifest_path) as fh:
                fh.write(json.dumps(manifest, indent=2, allow_nan=False).encode("utf-8") + b"\n")
        except BaseException:
            path.unlink(missing_ok=True)  # a pyramid without its manifest is not a finished export
            raise
    except BaseException as error:
        if writer is not None:
            writer.stop()
        failed = writer.error if writer is not None else None  # what stopped the writing thread
        cause = failed if isinstance(error, _Aborted) and failed is not None else error
        if isinstance(cause, Cancelled):
            return TiffExportResult(path, None, count, cancelled=True, seconds=time.monotonic() - started)
        if isinstance(cause, ImageSaveError | OSError):
            reason = getattr(cause, "reason", None) or getattr(cause, "strerror", None) or cause
            raise ExportError(f"{path}: {reason}; nothing was written") from cause
        if cause is not error:
            raise cause from None
        raise
    finally:
        for rows_file in scratch:
            rows_file.close()
        shutil.rmtree(scratch_dir, ignore_errors=True)
    return TiffExportResult(path, manifest_path, count, seconds=time.monotonic() - started)


def _compute(source: Any, image: da.Array, shapes: list[tuple[int, ...]], border: int, chunk: int,
             scratch: Sequence[_RowFile], writer: _Writer, report: chunked.Progress,
             scratch_dir: Path) -> list[Any]:
    """Every level: level 0 to the writer, the others to their scratch files; level 0's value range."""
    spans: list[Any] = []

    def send(y: int, rows: np.ndarray) -> None:
        spans.append(finite_span(rows))
        writer.send(y, rows)
        report("", rows.nbytes)

    def keep(rows_file: _RowFile) -> Callable[[int, np.ndarray], None]:
        def put(y: int, rows: np.ndarray) -> None:
            rows_file.put(y, rows)
            report("", rows.nbytes)
        return put

    level0 = Blocks(shapes[0][0], tiff.PYRAMID_TILE, send)
    sinks = [level0, *(Blocks(shape[0], tiff.PYRAMID_TILE, keep(f)) for shape, f in zip(shapes[1:], scratch,
                                                                                         strict=True))]
    if border == cv2.BORDER_WRAP:
        _tile_levels(image, shapes, border, chunk, sinks, scratch_dir)
    else:
        cascade = Cascade(shapes, border, "float32", sinks, None)
        for strip in chunked.level_zero(source, image, chunk):
            cascade.feed(strip)
    for rows_file in scratch:
        rows_file.close()
    writer.send(shapes[0][0], None)
    return [chunked.merge_ranges(spans)]


def _tile_levels(image: da.Array, shapes: list[tuple[int, ...]], border: int, chunk: int,
                 sinks: Sequence[Blocks], scratch_dir: Path) -> None:
    """BORDER_WRAP: the tile engine's levels (stored in a scratch OME-Zarr), fed to the sinks row by row."""
    folder = scratch_dir / "levels.ome.zarr"
    chunked.export_ome_zarr(image, folder, levels=len(shapes), border=border, laplacian=False, chunk=chunk)
    for level, sink in zip(omezarr.open_levels(folder), sinks, strict=True):
        for y in range(0, level.shape[0], chunk):
            sink.put(y, np.asarray(level[y : y + chunk].compute()))


def _manifest(source: Any, image: da.Array, record: FileRecord, levels: tuple[int, Any], border: int,
              chunk: int, options: dict[str, Any], seconds: float) -> dict[str, Any]:
    path = None if isinstance(source, da.Array) else Path(source).absolute()
    ome = options["layout"] == "subifds"
    return {
        "manifest_version": MANIFEST_VERSION,
        "status": "complete",
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "program": {"name": "pyramid-explorer", "version": pyramid_explorer.__version__,
                    "numpy": np.__version__, "opencv": cv2.__version__, "tifffile": tifffile.__version__},
        "format": {"name": "OME-TIFF" if ome else "tiled TIFF (not OME)", "layout": options["layout"],
                   "tile": options["tile"], "compression": options["compression"]},
        "source": {"path": None if path is None else str(path), "shape": list(image.shape),
                   "dtype": str(image.dtype), "pixel_size_um": options["pixel_size"]},
        "parameters": {"levels": levels[0], "levels_requested": levels[1], "kinds": ["gaussian"],
                       "border": BORDERS[border], "border_code": border, "chunk": chunk, "factor": 2,
                       "exact": "every level equals pyramid_explorer.core.pyramid.gaussian_pyramid "
                                "bit for bit"},
        "seconds": round(seconds, 3),
        "files": [record.to_json()],
        "skipped": [],
    }
