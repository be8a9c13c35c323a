"""Export pyramid levels to files: exact data, a manifest saying what each file is, never destructive.

Shared by the GUI (Ctrl+E) and the command line (`pyramid-explorer export`). Qt-free.

API
---
`export_pyramid(image, out_dir, *, source_path=None, levels=None, kinds=DEFAULT_KINDS, fmt="tiff",
modes=MODES, storage="float32", border=cv2.BORDER_REFLECT_101, force=False, progress=None, cancel=None)
-> ExportResult` writes the requested files and `manifest.json` into `out_dir` (created if missing).
`iter_export(image, out_dir, options, *, source_path=None, cancel=None)` is the same work as a generator
that yields an `ExportProgress` after each file and returns the `ExportResult`, for workers that step
through generators; `export_pyramid` is a thin loop over it. `ExportOptions` (frozen, validated) holds
the parameters; `levels` beyond the image's `max_levels` are clamped (the manifest records both).
`planned_files(shape, options)` and `existing_targets(out_dir, shape, options)` tell a dialog, before
any work, which files an export would write and which of them already exist.

`export_arrays(image, out_dir, arrays, *, fmt="tiff", parameters=None, ...)` (and its generator
`iter_export_arrays`) writes arrays computed elsewhere (the window's analysis tools: a residual heat map,
a kernel, a spectrum), each a `NamedArray`, in the same way: the same formats but ome-tiff, the same
never-destructive checks, atomic writes, cancellation and manifest; `parameters` describes how they were
made. `array_files(arrays, fmt)` names the files it would write.

Kinds (`KINDS`), one file per item unless said otherwise:
- "gaussian": every Gaussian level, `gaussian_LL.EXT` (LL = two-digit level).
- "laplacian": every Laplacian band (`storage` float32, int16 or uint8_saturate), `laplacian_LL.EXT`;
  the last band is the coarsest Gaussian level.
- "residual": image - reconstruct(laplacian), `residual.EXT` (level 0).
- "upsampled": for each level i < last and each mode in `modes`, level i+1 brought back to the size of
  level i, `upsampled_LL_MODE.EXT` (level i). "unpool" unpools the 2x2 max pool of level i (it needs the
  pooling indices, and the max pool is not the Gaussian level); levels with a side of 1 cannot be pooled
  and are listed under "skipped" in the manifest.
- "mosaic": all Gaussian levels in the classic layout (level 0 on the left, the others stacked on its
  right, background 0), `mosaic.EXT`; the manifest gives each level's rectangle.

Formats (`FORMATS`):
- "tiff": tifffile, zlib-compressed (lossless), in the data's own dtype (float32 bit-exact).
- "npy": numpy arrays, bit-exact.
- "png": uint8/uint16 data as-is. Signed kinds (Laplacian bands but the last, residual) become an 8-bit
  visualisation: pixel = round(128 + 127 * value / scale), scale = the file's largest |value| (0 stays
  grey 128, every channel alike). Other float data is rounded to the source's integer dtype, which is
  data if it is exact and a visualisation if not; float sources map their value range to 0..255.
  The manifest marks every visualisation ("role": "visualisation") and gives its mapping.
- "ome-tiff": one pyramidal OME-TIFF, `gaussian.ome.tif`, holding every Gaussian level as a tiled
  sub-resolution (tifffile reads it back as one series whose `levels` are the Gaussian levels). Only the
  "gaussian" kind can be written in this format.

Never destructive: every target (including `manifest.json`) is checked before anything is written, and
existing files raise `ExportConflictError` unless `force=True`. Each file is written through
`core.io.atomic_write` (a temporary file in the same folder, renamed over the target), so an interruption
never leaves a partial file. A failure half-way raises `ExportError` whose `written` lists the files
already complete (a manifest with status "failed" describing them is attempted too).

Progress and cancellation: `progress(ExportProgress)` is called once before the first file (done=0) and
after every file; `cancel()` is polled before every file, and when it returns True the export stops,
writes a manifest with status "cancelled" describing the files written so far (no manifest when nothing
was written) and returns with `cancelled=True`. Both are called on the
exporting thread (a GUI worker passes a signal's `emit` and an Event's `is_set`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import tifffile

import pyramid_explorer
from pyramid_explorer.core.arrays import check_image, to_dtype
from pyramid_explorer.core.io import ImageSaveError, atomic_write, save_image
from pyramid_explorer.core.pyramid import (
    BORDERS,
    STORAGES,
    gaussian_pyramid,
    laplacian_pyramid,
    level_sizes,
    max_levels,
    reconstruct,
    residual,
)
from pyramid_explorer.core.upsampling import MODES, max_pool_with_indices, upsample

KINDS = ("gaussian", "laplacian", "residual", "upsampled", "mosaic")
DEFAULT_KINDS = ("gaussian", "laplacian")
FORMATS = ("tiff", "npy", "png", "ome-tiff")
EXTENSIONS = {"tiff": ".tiff", "npy": ".npy", "png": ".png", "ome-tiff": ".ome.tif"}
MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
FACTOR = 2
OME_TILE = 256


class ExportError(Exception):
    """An export that could not finish; `written` lists the files completed before the failure."""

    def __init__(self, message: str, written: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.written = tuple(written)


class ExportConflictError(ExportError):
    """Targets already exist and `force` was not given; nothing was written."""

    def __init__(self, message: str, existing: Sequence[Path]) -> None:
        super().__init__(message)
        self.existing = tuple(existing)


@dataclass(frozen=True)
class ExportOptions:
    """What to export; validated on construction (ValueError listing the allowed values)."""

    levels: int | None = None
    kinds: tuple[str, ...] = DEFAULT_KINDS
    fmt: str = "tiff"
    modes: tuple[str, ...] = MODES
    storage: str = "float32"
    border: int = cv2.BORDER_REFLECT_101
    force: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", _checked_names("kind", self.kinds, KINDS))
        object.__setattr__(self, "modes", _checked_names("mode", self.modes, MODES))
        if self.fmt not in FORMATS:
            raise ValueError(f"unknown format {self.fmt!r}; allowed: {', '.join(FORMATS)}")
        if self.fmt == "ome-tiff" and self.kinds != ("gaussian",):
            raise ValueError("the ome-tiff format holds the Gaussian levels only (kinds=gaussian); "
                             "use tiff, npy or png for the other kinds")
        if self.storage not in STORAGES:
            raise ValueError(f"unknown storage {self.storage!r}; allowed: {', '.join(STORAGES)}")
        if self.border not in BORDERS:
            raise ValueError(f"unsupported border {self.border!r}; allowed: "
                             + ", ".join(f"cv2.BORDER_{name.upper()}" for name in BORDERS.values()))
        if self.levels is not None and (isinstance(self.levels, bool) or not isinstance(self.levels, int)
                                        or self.levels < 1):
            raise ValueError(f"levels must be a positive integer or None, got {self.levels!r}")


def _checked_names(what: str, names: Iterable[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """Names as a tuple in `allowed`'s order, without duplicates; ValueError for unknown or none."""
    names = tuple(names) if not isinstance(names, str) else (names,)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; allowed: {', '.join(allowed)}")
    if not names:
        raise ValueError(f"no {what} given; allowed: {', '.join(allowed)}")
    return tuple(n for n in allowed if n in names)


@dataclass(frozen=True)
class ExportProgress:
    """`done` of `total` files (or bytes, when `unit` is "bytes") are written; `path` is what was just
    written (None before the first)."""

    done: int
    total: int
    path: Path | None
    unit: str = "files"


@dataclass(frozen=True)
class FileRecord:
    """One written file as the manifest describes it (shape, dtype and range of what is on disk)."""

    name: str
    kind: str
    level: int | None
    mode: str | None
    shape: tuple[int, ...]
    dtype: str
    value_range: tuple[float, float] | None
    role: str  # "data" or "visualisation"
    details: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"file": self.name, "kind": self.kind, "level": self.level, "mode": self.mode,
                "shape": list(self.shape), "dtype": self.dtype,
                "range": None if self.value_range is None else list(self.value_range),
                "role": self.role, **self.details}


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote: the data files (in order), the manifest, and whether it was cancelled."""

    out_dir: Path
    files: tuple[FileRecord, ...]
    manifest: Path | None
    cancelled: bool = False
    skipped: tuple[dict[str, Any], ...] = ()

    @property
    def paths(self) -> tuple[Path, ...]:
        """Every file written, manifest last."""
        written = tuple(self.out_dir / record.name for record in self.files)
        return (*written, self.manifest) if self.manifest is not None else written


# ---------------------------------------------------------------------------------------------- writing


def _write_tiff(fh: BinaryIO, array: np.ndarray) -> None:
    tifffile.imwrite(fh, array, compression="zlib", **_tiff_colour(array))


def _tiff_colour(array: np.ndarray) -> dict[str, Any]:
    if array.ndim == 2:
        return {"photometric": "minisblack"}
    extra = {"extrasamples": ("unassalpha",)} if array.shape[2] == 4 else {}
    return {"photometric": "rgb", "planarconfig": "contig", **extra}


def _write_ome(fh: BinaryIO, levels: Sequence[np.ndarray]) -> None:
    """Level 0 as the main image, every other level as a tiled sub-resolution (SubIFD)."""
    colour = _tiff_colour(levels[0])
    axes = "YX" if levels[0].ndim == 2 else "YXS"
    options = {"tile": (OME_TILE, OME_TILE), "compression": "zlib", **colour}
    with tifffile.TiffWriter(fh, ome=True, bigtiff=sum(g.nbytes for g in levels) > 2**31) as tiff:
        tiff.write(levels[0], subifds=len(levels) - 1, metadata={"axes": axes, "Name": "gaussian pyramid"},
                   **options)
        for level in levels[1:]:
            tiff.write(level, subfiletype=1, **options)


# -------------------------------------------------------------------------------------- what to write


def value_range(array: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values, as Python numbers; None when there is none."""
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            array = array[finite]
    if array.size == 0:
        return None
    low, high = array.min(), array.max()
    return (low.item(), high.item())


def mosaic_layout(sizes: Sequence[tuple[int, int]]) -> list[tuple[int, int, int, int]]:
    """(x, y, width, height) of each level given as (height, width): level 0 on the left, the others
    stacked top-down on its right (the classic pyramid picture)."""
    first_h, first_w = sizes[0]
    rects = [(0, 0, first_w, first_h)]
    y = 0
    for h, w in sizes[1:]:
        rects.append((first_w, y, w, h))
        y += h
    return rects


def pyramid_mosaic(levels: Sequence[np.ndarray]) -> np.ndarray:
    """All levels packed in one image (`mosaic_layout`), in the levels' dtype, background 0."""
    rects = mosaic_layout([level.shape[:2] for level in levels])
    width = max(x + w for x, _, w, _ in rects)
    height = max(y + h for _, y, _, h in rects)
    mosaic = np.zeros((height, width, *levels[0].shape[2:]), levels[0].dtype)
    for level, (x, y, w, h) in zip(levels, rects, strict=True):
        mosaic[y : y + h, x : x + w] = level
    return mosaic


def _png_payload(array: np.ndarray, signed: bool, source_dtype: np.dtype,
                 source_range: tuple[float, float] | None) -> tuple[np.ndarray, dict[str, Any] | None]:
    """What goes into a PNG for `array`, and the visualisation mapping (None when it is the data itself)."""
    if array.dtype in (np.uint8, np.uint16):
        return array, None
    values = array.astype(np.float32)
    if signed:
        finite = np.isfinite(values)
        scale = float(np.max(np.abs(values), initial=0.0, where=finite))
        values = np.nan_to_num(values, nan=0.0, posinf=scale, neginf=-scale)
        pixels = to_dtype(128 + values * np.float32(127 / scale if scale > 0 else 0), np.uint8)
        return pixels, {"mapping": "pixel = round(128 + 127 * value / scale), clipped to 0..255; "
                                   "NaN -> 128, +inf -> 255, -inf -> 1", "scale": scale}
    if source_dtype.kind == "u":
        info = np.iinfo(source_dtype)
        pixels = to_dtype(np.nan_to_num(values, nan=0.0, posinf=info.max, neginf=0.0), source_dtype)
        if np.array_equal(pixels, array):
            return pixels, None
        return pixels, {"mapping": f"value rounded and clipped to {source_dtype} (NaN -> 0)"}
    low, high = source_range if source_range is not None else (0.0, 1.0)
    span = high - low if high > low else 1.0
    values = np.nan_to_num(values, nan=low, posinf=high, neginf=low)
    pixels = to_dtype((values - np.float32(low)) * np.float32(255 / span), np.uint8)
    return pixels, {"mapping": "pixel = round(255 * (value - low) / (high - low)), clipped to 0..255; "
                               "NaN -> 0", "low": low, "high": high}


@dataclass(frozen=True)
class _Item:
    """One file to write: its name and manifest identity, and how to compute its content from the
    export's context (the pyramids, or nothing for arrays given whole)."""

    name: str
    kind: str
    level: int | None
    mode: str | None
    make: Callable[[_Pyramids | None], Any]
    signed: bool = False
    details: dict[str, Any] = field(default_factory=dict)


class _Pyramids:
    """The arrays an export needs: the pyramids up front (so engine errors come before any write), the
    rest per file."""

    def __init__(self, image: np.ndarray, options: ExportOptions, levels: int) -> None:
        self.image = image
        self.border = options.border
        self.gaussian = gaussian_pyramid(image, levels, options.border)
        self.laplacian: list[np.ndarray] = []
        if options.fmt != "ome-tiff" and {"laplacian", "residual"} & set(options.kinds):
            self.laplacian = laplacian_pyramid(image, levels, options.border, options.storage)

    def residual(self) -> np.ndarray:
        return residual(self.image, reconstruct(self.laplacian, self.border))

    def upsampled(self, level: int, mode: str) -> np.ndarray:
        fine = self.gaussian[level]
        size = (fine.shape[1], fine.shape[0])
        if mode == "unpool":
            pooled, indices = max_pool_with_indices(fine, FACTOR)
            return upsample(pooled, mode, FACTOR, size=size, indices=indices)
        return upsample(self.gaussian[level + 1], mode, FACTOR, size=size)


def _plan(sizes: Sequence[tuple[int, int]],
          options: ExportOptions) -> tuple[list[_Item], list[dict[str, Any]]]:
    """Every file of the export in writing order, plus the items that cannot exist (with the reason).

    `sizes` are the (height, width) of the Gaussian levels.
    """
    ext = EXTENSIONS[options.fmt]
    count = len(sizes)
    if options.fmt == "ome-tiff":
        return [_Item(f"gaussian{ext}", "gaussian", None, None, lambda p: p.gaussian)], []
    items: list[_Item] = []
    skipped: list[dict[str, Any]] = []
    for kind in options.kinds:
        if kind == "gaussian":
            items += [_Item(f"gaussian_{i:02d}{ext}", kind, i, None, lambda p, i=i: p.gaussian[i])
                      for i in range(count)]
        elif kind == "laplacian":
            items += [_Item(f"laplacian_{i:02d}{ext}", kind, i, None, lambda p, i=i: p.laplacian[i],
                            signed=i < count - 1) for i in range(count)]
        elif kind == "residual":
            items.append(_Item(f"residual{ext}", kind, 0, None, _Pyramids.residual, signed=True))
        elif kind == "upsampled":
            for i in range(count - 1):
                for mode in options.modes:
                    if mode == "unpool" and min(sizes[i]) < FACTOR:
                        skipped.append({"kind": kind, "level": i, "mode": mode,
                                        "reason": f"level {i} has a side shorter than the {FACTOR}x{FACTOR} "
                                                  "pooling window"})
                        continue
                    items.append(_Item(f"upsampled_{i:02d}_{mode}{ext}", kind, i, mode,
                                       lambda p, i=i, mode=mode: p.upsampled(i, mode)))
        else:
            layout = [{"level": i, "x": x, "y": y, "width": w, "height": h}
                      for i, (x, y, w, h) in enumerate(mosaic_layout(sizes))]
            items.append(_Item(f"mosaic{ext}", kind, None, None, lambda p: pyramid_mosaic(p.gaussian),
                               details={"layout": layout}))
    return items, skipped


def _write_item(path: Path, item: _Item, context: _Pyramids | None, fmt: str, source_dtype: np.dtype,
                source_range: tuple[float, float] | None) -> FileRecord:
    """Compute one item, write it atomically, and describe what landed on disk."""
    content = item.make(context)
    details = dict(item.details)
    role = "data"
    if fmt == "ome-tiff":
        array = content[0]
        details["levels"] = [list(level.shape) for level in content]
        details["level_ranges"] = [value_range(level) for level in content]
        with atomic_write(path) as fh:
            _write_ome(fh, content)
    else:
        array = content
        if fmt == "png":
            array, mapping = _png_payload(content, item.signed, source_dtype, source_range)
            if mapping is not None:
                role = "visualisation"
                details["visualisation"] = {**mapping, "data_dtype": str(content.dtype),
                                            "data_range": value_range(content)}
        if fmt == "tiff":  # not save_image: int16 bands, and zlib compression
            with atomic_write(path) as fh:
                _write_tiff(fh, array)
        else:
            save_image(path, array)
    return FileRecord(item.name, item.kind, item.level, item.mode, tuple(array.shape), str(array.dtype),
                      value_range(array), role, details)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _pyramid_parameters(options: ExportOptions, levels: int) -> dict[str, Any]:
    """The manifest's "parameters" of a pyramid export."""
    return {
        "levels": levels, "levels_requested": options.levels, "kinds": list(options.kinds),
        "format": options.fmt, "storage": options.storage,
        "border": BORDERS[options.border], "border_code": options.border,
        "modes": list(options.modes), "factor": FACTOR,
        "kernels": {
            "pyramid": "cv2.pyrDown / cv2.pyrUp: 5x5 binomial [1 4 6 4 1]/16 (x4 in pyrUp)",
            "upsampled": "level i+1 upsampled to the exact size of level i",
            "deconv_bilinear": f"transposed convolution, bilinear_kernel({2 * FACTOR - FACTOR % 2}), "
                               f"stride {FACTOR}, padding {(FACTOR) // 2}",
            "unpool": f"max_unpool of the {FACTOR}x{FACTOR} max pool (stride {FACTOR}) of level i",
        },
    }


def _manifest(source: np.ndarray, source_path: Path | None, source_hash: str | None,
              parameters: dict[str, Any], records: Sequence[FileRecord], skipped: Sequence[dict[str, Any]],
              status: str, error: str | None) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "status": status,
        **({"error": error} if error is not None else {}),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "program": {"name": "pyramid-explorer", "version": pyramid_explorer.__version__,
                    "numpy": np.__version__, "opencv": cv2.__version__, "tifffile": tifffile.__version__},
        "source": {"path": None if source_path is None else str(source_path), "sha256": source_hash,
                   "shape": list(source.shape), "dtype": str(source.dtype), "range": value_range(source)},
        "parameters": parameters,
        "files": [record.to_json() for record in records],
        "skipped": list(skipped),
    }


def _level_count(shape: Sequence[int], options: ExportOptions) -> int:
    most = max_levels(shape)
    return most if options.levels is None else min(options.levels, most)


def planned_files(shape: Sequence[int], options: ExportOptions) -> list[str]:
    """Names of the files an export of an image of `shape` writes, manifest last."""
    items, _ = _plan(level_sizes(shape, _level_count(shape, options)), options)
    return [item.name for item in items] + [MANIFEST_NAME]


def existing_targets(out_dir: str | os.PathLike[str], shape: Sequence[int],
                     options: ExportOptions) -> list[Path]:
    """The planned files already present in `out_dir` (what `force=True` would overwrite)."""
    return existing_files(out_dir, planned_files(shape, options))


def existing_files(out_dir: str | os.PathLike[str], names: Iterable[str]) -> list[Path]:
    """Those of `names` already present in `out_dir`."""
    return [path for path in (Path(out_dir) / name for name in names) if _present(path)]


def _present(path: Path) -> bool:
    """Something is at `path` (a dangling symlink counts: replacing it is still overwriting)."""
    return path.exists() or path.is_symlink()


def _check_targets(out_dir: Path, names: Sequence[str], force: bool) -> None:
    """Refuse before writing anything: targets that are folders always, existing files unless forced."""
    if out_dir.exists() and not out_dir.is_dir():
        raise ExportError(f"{out_dir}: the output path exists and is not a folder")
    targets = [out_dir / name for name in names]
    folders = [t for t in targets if t.is_dir()]
    if folders:
        raise ExportError(f"{folders[0]}: a folder is in the way of an output file")
    existing = [t for t in targets if _present(t)]
    if existing and not force:
        shown = ", ".join(t.name for t in existing[:3]) + (", ..." if len(existing) > 3 else "")
        raise ExportConflictError(f"{out_dir}: {len(existing)} file(s) already exist ({shown}); "
                                  "nothing was written", existing)


def _reason(exc: BaseException) -> str:
    """One line for an OS or library error (without the path, which the caller names)."""
    if isinstance(exc, ImageSaveError):
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def iter_export(image: np.ndarray, out_dir: str | os.PathLike[str], options: ExportOptions, *,
                source_path: str | os.PathLike[str] | None = None,
                cancel: Callable[[], bool] | None = None) -> Generator[ExportProgress, None, ExportResult]:
    """The export as a generator: yields progress (done=0 first, then after every file), returns the result.

    Raises ValueError for bad arguments, ExportConflictError / ExportError before writing anything when a
    target is in the way, and ExportError (with `written`) when a write fails half-way.
    """
    check_image(image)
    out_dir = Path(out_dir)
    levels = _level_count(image.shape, options)
    items, skipped = _plan(level_sizes(image.shape, levels), options)
    _check_targets(out_dir, [item.name for item in items] + [MANIFEST_NAME], options.force)
    pyramids = _Pyramids(image, options, levels)
    return (yield from _write_all(image, out_dir, items, pyramids, options.fmt,
                                  _pyramid_parameters(options, levels), skipped, source_path, cancel))


def _write_all(image: np.ndarray, out_dir: Path, items: Sequence[_Item], context: _Pyramids | None, fmt: str,
               parameters: dict[str, Any], skipped: Sequence[dict[str, Any]],
               source_path: str | os.PathLike[str] | None,
               cancel: Callable[[], bool] | None) -> Generator[ExportProgress, None, ExportResult]:
    """Write `items` (targets already checked) and the manifest: the part every export shares."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create the output folder: {_reason(exc)}") from exc
    source_abs = None if source_path is None else Path(source_path).absolute()
    try:
        source_hash = None if source_abs is None else file_sha256(source_abs)
    except OSError as exc:
        raise ExportError(f"{source_abs}: cannot read the source for its checksum: {_reason(exc)}") from exc
    source_range = value_range(image) if image.dtype.kind == "f" else None
    total = len(items) + 1
    records: list[FileRecord] = []

    def written() -> list[Path]:
        return [out_dir / record.name for record in records]

    def manifest(status: str, error: str | None = None) -> Path:
        path = out_dir / MANIFEST_NAME
        text = json.dumps(_manifest(image, source_abs, source_hash, parameters, records, skipped, status,
                                    error), indent=2, allow_nan=False)
        with atomic_write(path) as fh:
            fh.write(text.encode("utf-8") + b"\n")
        return path

    yield ExportProgress(0, total, None)
    status = "complete"
    for item in items:
        if cancel is not None and cancel():
            status = "cancelled"
            break
        path = out_dir / item.name
        try:
            records.append(_write_item(path, item, context, fmt, image.dtype, source_range))
        except (ImageSaveError, OSError, ValueError, cv2.error, MemoryError) as exc:
            done = written()
            message = f"{path}: {_reason(exc)}; {len(done)} file(s) written before the failure"
            if records:  # best effort: describe what is on disk (the disk may be full)
                with contextlib.suppress(ImageSaveError, OSError, ValueError):
                    done.append(manifest("failed", message))
            raise ExportError(message, done) from exc
        yield ExportProgress(len(records), total, path)
    if status == "cancelled" and not records:
        return ExportResult(out_dir, (), None, cancelled=True, skipped=tuple(skipped))
    try:
        path = manifest(status)
    except (ImageSaveError, OSError, ValueError) as exc:
        raise ExportError(f"{out_dir / MANIFEST_NAME}: {_reason(exc)}; {len(records)} file(s) written, "
                          "but not the manifest", written()) from exc
    if status == "complete":
        yield ExportProgress(total, total, path)
    return ExportResult(out_dir, tuple(records), path, cancelled=status == "cancelled",
                        skipped=tuple(skipped))


# ------------------------------------------------------------------------------------- arrays given whole


ARRAY_FORMATS = ("tiff", "npy", "png")
_ARRAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True, eq=False)
class NamedArray:
    """One array for `export_arrays`: the file's stem, its manifest kind and level, and extra manifest
    fields (`details`, JSON values). `signed` arrays (differences, residuals) become a visualisation
    centred on grey 128 in PNG, like the pyramid's signed bands."""

    name: str
    array: np.ndarray
    kind: str
    signed: bool = False
    level: int | None = None
    details: dict[str, Any] = field(default_factory=dict)


def array_files(arrays: Sequence[NamedArray], fmt: str) -> list[str]:
    """Names of the files `export_arrays` writes for `arrays` in `fmt`, manifest last; ValueError for an
    unusable format, name or array."""
    if fmt not in ARRAY_FORMATS:
        raise ValueError(f"unknown format {fmt!r} for arrays; allowed: {', '.join(ARRAY_FORMATS)}")
    names = [a.name for a in arrays]
    if not names:
        raise ValueError("no arrays to export")
    bad = [n for n in names if not _ARRAY_NAME.fullmatch(n)]
    if bad:
        raise ValueError(f"array name {bad[0]!r} is not a plain file stem (letters, digits, _ . -)")
    if len(set(names)) != len(names):
        raise ValueError(f"array names repeat: {', '.join(sorted({n for n in names if names.count(n) > 1}))}")
    for a in arrays:
        if a.array.ndim not in (2, 3) or a.array.size == 0:
            raise ValueError(f"array {a.name!r} has shape {a.array.shape}; "
                             "need a non-empty (H, W) or (H, W, C)")
    return [f"{name}{EXTENSIONS[fmt]}" for name in names] + [MANIFEST_NAME]


def iter_export_arrays(image: np.ndarray, out_dir: str | os.PathLike[str], arrays: Sequence[NamedArray], *,
                       fmt: str = "tiff", parameters: dict[str, Any] | None = None,
                       source_path: str | os.PathLike[str] | None = None, force: bool = False,
                       cancel: Callable[[], bool] | None = None
                       ) -> Generator[ExportProgress, None, ExportResult]:
    """`export_arrays` as a generator (progress as in `iter_export`), returning the result."""
    check_image(image)
    out_dir = Path(out_dir)
    names = array_files(arrays, fmt)
    _check_targets(out_dir, names, force)
    items = [_Item(name, a.kind, a.level, None, lambda _, a=a: a.array, signed=a.signed,
                   details=dict(a.details)) for name, a in zip(names, arrays, strict=False)]
    return (yield from _write_all(image, out_dir, items, None, fmt, dict(parameters or {}), (), source_path,
                                  cancel))


def export_arrays(image: np.ndarray, out_dir: str | os.PathLike[str], arrays: Sequence[NamedArray], *,
                  fmt: str = "tiff", parameters: dict[str, Any] | None = None,
                  source_path: str | os.PathLike[str] | None = None, force: bool = False) -> ExportResult:
    """Write `arrays` (made from `image`, read from `source_path` if any) into `out_dir` with a manifest.

    Each array goes to NAME.EXT in its own dtype (tiff, npy; png as described in the module docstring),
    atomically; the manifest records the source, `parameters` and every file. Existing files raise
    ExportConflictError unless `force`.
    """
    return _drain(iter_export_arrays(image, out_dir, arrays, fmt=fmt, parameters=parameters,
                                     source_path=source_path, force=force))


def _drain(steps: Generator[ExportProgress, None, ExportResult],
           progress: Callable[[ExportProgress], object] | None = None) -> ExportResult:
    """Run an export generator to its end, passing each step to `progress`; its result."""
    while True:
        try:
            step = next(steps)
        except StopIteration as stop:
            return stop.value
        if progress is not None:
            progress(step)


def export_pyramid(image: np.ndarray, out_dir: str | os.PathLike[str], *,
                   source_path: str | os.PathLike[str] | None = None, levels: int | None = None,
                   kinds: Iterable[str] = DEFAULT_KINDS, fmt: str = "tiff", modes: Iterable[str] = MODES,
                   storage: str = "float32", border: int = cv2.BORDER_REFLECT_101, force: bool = False,
                   progress: Callable[[ExportProgress], object] | None = None,
                   cancel: Callable[[], bool] | None = None) -> ExportResult:
    """Export `image`'s pyramid into `out_dir` (see the module docstring); returns what was written.

    `levels` beyond what the image has are clamped (the manifest records both numbers).
    """
    options = ExportOptions(levels=levels, kinds=tuple(kinds), fmt=fmt, modes=tuple(modes), storage=storage,
                            border=border, force=force)
    return _drain(iter_export(image, out_dir, options, source_path=source_path, cancel=cancel), progress)
