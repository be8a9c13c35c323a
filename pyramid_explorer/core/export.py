"""Export pyramid levels to files: exact data, a manifest saying what each file is, never destructive.

Shared by the GUI (Ctrl+E) and the command line (`pyramid-explorer export`). Qt-free. What every export
shares (checks, atomic writes, the manifest, the records and errors) is `core.export_files`, re-exported
here.

API
---
`export_pyramid(image, out_dir, *, source_path=None, levels=None, kinds=DEFAULT_KINDS, fmt="tiff",
modes=MODES, storage="float32", border=cv2.BORDER_REFLECT_101, force=False, progress=None, cancel=None)
-> ExportResult` writes the requested files and `manifest.json` into `out_dir` (created if missing).
`iter_export(image, out_dir, options, *, source_path=None, cancel=None)` is the same work as a generator
that yields an `ExportProgress` after each file and returns the `ExportResult`, for workers that step
through generators; `export_pyramid` is a thin loop over it. `ExportOptions` (frozen, validated) holds
the parameters; `levels` beyond the image's `max_levels` are clamped (the manifest records both).
`selected_levels` picks which levels of that pyramid are written (None: all; `export_levels(shape,
options)` says which, and refuses levels the pyramid does not have): a Laplacian band is the band of
the `levels`-level pyramid (the last level's is its coarsest Gaussian level), "upsampled" files exist for
selected levels below the last, "residual" (a level-0 image) only when level 0 is selected (otherwise it is
listed under "skipped"), and "mosaic" packs the selected levels. The manifest's parameters give `levels`
(the pyramid's count) and `levels_exported`. A pyramid file (ome-tiff) starts at level 0: it takes a
selection 0..K only (the first K + 1 levels) and refuses others.
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

Formats (`FORMATS`, from the registry `core.formats.REGISTRY`: one module per format):
- "tiff": tifffile, zlib-compressed (lossless), in the data's own dtype (float32 bit-exact).
- "npy": numpy arrays, bit-exact.
- "png": uint8/uint16 data as-is. Signed kinds (Laplacian bands but the last, residual) become an 8-bit
  visualisation: pixel = round(128 + 127 * value / scale), scale = the file's largest |value| (0 stays
  grey 128, every channel alike). Other float data is rounded to the source's integer dtype, which is
  data if it is exact and a visualisation if not; float sources map their value range to 0..255.
  The manifest marks every visualisation ("role": "visualisation") and gives its mapping.
- "ome-tiff": one pyramidal TIFF of every Gaussian level, tiled (`core.tiff.write_pyramid`): with
  `tiff_layout` "subifds" (the default) an OME-TIFF, `gaussian.ome.tif`, whose sub-resolutions are SubIFDs
  (tifffile reads it back as one series whose `levels` are the Gaussian levels); with "pages" a generic
  tiled TIFF (not OME), `gaussian.tif`, whose levels are pages, as OpenSlide reads pyramids.
  `tiff_compression` is zlib by default (or zstd, or None). Only the "gaussian" kind can be written in
  this format.

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

import os
import re
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from pyramid_explorer.core import tiff
from pyramid_explorer.core.arrays import check_image, finite_range
from pyramid_explorer.core.export_files import (
    MANIFEST_NAME,
    MANIFEST_VERSION,
    ExportConflictError,
    ExportError,
    ExportProgress,
    ExportResult,
    FileRecord,
    _check_targets,
    _drain,
    _Item,
    _write_all,
    existing_files,
    file_sha256,
)
from pyramid_explorer.core.formats import REGISTRY, format_named
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

__all__ = [
    "ARRAY_FORMATS",
    "DEFAULT_KINDS",
    "EXTENSIONS",
    "FACTOR",
    "FORMATS",
    "KINDS",
    "MANIFEST_NAME",
    "MANIFEST_VERSION",
    "ExportConflictError",
    "ExportError",
    "ExportOptions",
    "ExportProgress",
    "ExportResult",
    "FileRecord",
    "NamedArray",
    "array_files",
    "existing_files",
    "existing_targets",
    "export_arrays",
    "export_levels",
    "export_pyramid",
    "export_with_options",
    "file_sha256",
    "finite_range",
    "iter_export",
    "iter_export_arrays",
    "mosaic_layout",
    "planned_files",
    "pyramid_mosaic",
]

KINDS = ("gaussian", "laplacian", "residual", "upsampled", "mosaic")
DEFAULT_KINDS = ("gaussian", "laplacian")
FORMATS = tuple(f.name for f in REGISTRY)
EXTENSIONS = {f.name: f.extension for f in REGISTRY}
ARRAY_FORMATS = tuple(f.name for f in REGISTRY if f.arrays)
FACTOR = 2


@dataclass(frozen=True)
class ExportOptions:
    """What to export; validated on construction (ValueError listing the allowed values)."""

    levels: int | None = None
    selected_levels: tuple[int, ...] | None = None  # which levels of those `levels` to write; None: all
    kinds: tuple[str, ...] = DEFAULT_KINDS
    fmt: str = "tiff"
    modes: tuple[str, ...] = MODES
    storage: str = "float32"
    border: int = cv2.BORDER_REFLECT_101
    force: bool = False
    tiff_layout: str = "subifds"  # ome-tiff: "subifds" (OME-TIFF) or "pages" (generic tiled TIFF, not OME)
    tiff_compression: str | None = "zlib"  # ome-tiff: "zlib", "zstd" or None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kinds", _checked_names("kind", self.kinds, KINDS))
        object.__setattr__(self, "modes", _checked_names("mode", self.modes, MODES))
        fmt = format_named(self.fmt)
        if fmt.kinds is not None and not set(self.kinds) <= set(fmt.kinds):
            raise ValueError(f"the {fmt.name} format holds the {', '.join(fmt.kinds)} kind(s) only "
                             f"(kinds={','.join(fmt.kinds)}); use {_per_level_formats()} for the other kinds")
        if self.tiff_layout not in tiff.LAYOUTS:
            raise ValueError(f"unknown TIFF layout {self.tiff_layout!r}; allowed: {', '.join(tiff.LAYOUTS)}")
        if self.tiff_compression not in tiff.COMPRESSIONS:
            raise ValueError(f"unknown TIFF compression {self.tiff_compression!r}; allowed: "
                             + ", ".join(str(c).lower() for c in tiff.COMPRESSIONS))
        if self.storage not in STORAGES:
            raise ValueError(f"unknown storage {self.storage!r}; allowed: {', '.join(STORAGES)}")
        if self.border not in BORDERS:
            raise ValueError(f"unsupported border {self.border!r}; allowed: "
                             + ", ".join(f"cv2.BORDER_{name.upper()}" for name in BORDERS.values()))
        if self.levels is not None and (isinstance(self.levels, bool) or not isinstance(self.levels, int)
                                        or self.levels < 1):
            raise ValueError(f"levels must be a positive integer or None, got {self.levels!r}")
        if self.selected_levels is not None:
            object.__setattr__(self, "selected_levels", _checked_selection(self.selected_levels))
            if format_named(self.fmt).pyramid_name is not None and \
                    self.selected_levels != tuple(range(len(self.selected_levels))):
                raise ValueError(f"the {self.fmt} format writes a pyramid from level 0: choose levels 0 to K "
                                 "(or a count); levels without level 0 or with gaps are written one file "
                                 f"per level, in {_per_level_formats()}")


def _per_level_formats() -> str:
    """The formats that write one file per item (any kind, any level), for error messages."""
    return ", ".join(f.name for f in REGISTRY if f.pyramid_name is None and f.kinds is None)


def _checked_selection(levels: Iterable[int]) -> tuple[int, ...]:
    """Level indices sorted, without duplicates; ValueError for none, negatives or non-integers."""
    levels = tuple(levels)
    if not levels or any(isinstance(i, bool) or not isinstance(i, int | np.integer) or i < 0 for i in levels):
        raise ValueError(f"selected levels must be level numbers 0, 1, 2, ..., got {levels!r}")
    return tuple(sorted({int(i) for i in levels}))


def _checked_names(what: str, names: Iterable[str], allowed: Sequence[str]) -> tuple[str, ...]:
    """Names as a tuple in `allowed`'s order, without duplicates; ValueError for unknown or none."""
    names = tuple(names) if not isinstance(names, str) else (names,)
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; allowed: {', '.join(allowed)}")
    if not names:
        raise ValueError(f"no {what} given; allowed: {', '.join(allowed)}")
    return tuple(n for n in allowed if n in names)


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


class _Pyramids:
    """The arrays an export needs: the pyramids up front (so engine errors come before any write), the
    rest per file."""

    def __init__(self, image: np.ndarray, options: ExportOptions, levels: int) -> None:
        self.image = image
        self.border = options.border
        self.gaussian = gaussian_pyramid(image, levels, options.border)
        self.laplacian: list[np.ndarray] = []
        if format_named(options.fmt).pyramid_name is None and {"laplacian", "residual"} & set(options.kinds):
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


def _plan(sizes: Sequence[tuple[int, int]], selected: Sequence[int],
          options: ExportOptions) -> tuple[list[_Item], list[dict[str, Any]]]:
    """Every file of the export in writing order, plus the items that cannot exist (with the reason).

    `sizes` are the (height, width) of the pyramid's Gaussian levels; `selected` the levels written.
    """
    fmt = format_named(options.fmt)
    ext = fmt.extension
    count = len(sizes)
    if fmt.pyramid_name is not None:  # a prefix of the levels (checked by ExportOptions), in one file
        return [_Item(fmt.pyramid_name(options.tiff_layout), "gaussian", None, None,
                      lambda p: p.gaussian[:len(selected)])], []
    items: list[_Item] = []
    skipped: list[dict[str, Any]] = []
    for kind in options.kinds:
        if kind == "gaussian":
            items += [_Item(f"gaussian_{i:02d}{ext}", kind, i, None, lambda p, i=i: p.gaussian[i])
                      for i in selected]
        elif kind == "laplacian":
            items += [_Item(f"laplacian_{i:02d}{ext}", kind, i, None, lambda p, i=i: p.laplacian[i],
                            signed=i < count - 1) for i in selected]
        elif kind == "residual":
            if 0 in selected:
                items.append(_Item(f"residual{ext}", kind, 0, None, _Pyramids.residual, signed=True))
            else:
                skipped.append({"kind": kind, "level": 0, "mode": None,
                                "reason": "the residual is a level-0 image and level 0 is not exported"})
        elif kind == "upsampled":
            for i in (i for i in selected if i < count - 1):
                for mode in options.modes:
                    if mode == "unpool" and min(sizes[i]) < FACTOR:
                        skipped.append({"kind": kind, "level": i, "mode": mode,
                                        "reason": f"level {i} has a side shorter than the {FACTOR}x{FACTOR} "
                                                  "pooling window"})
                        continue
                    items.append(_Item(f"upsampled_{i:02d}_{mode}{ext}", kind, i, mode,
                                       lambda p, i=i, mode=mode: p.upsampled(i, mode)))
        else:
            rects = mosaic_layout([sizes[i] for i in selected])
            layout = [{"level": i, "x": x, "y": y, "width": w, "height": h}
                      for i, (x, y, w, h) in zip(selected, rects, strict=True)]
            items.append(_Item(f"mosaic{ext}", kind, None, None,
                               lambda p: pyramid_mosaic([p.gaussian[i] for i in selected]),
                               details={"layout": layout}))
    return items, skipped


def _pyramid_parameters(options: ExportOptions, levels: int, selected: Sequence[int]) -> dict[str, Any]:
    """The manifest's "parameters" of a pyramid export: `levels` is the pyramid's number of levels,
    `levels_exported` the levels written."""
    return {
        "levels": levels, "levels_requested": options.levels, "levels_exported": list(selected),
        "kinds": list(options.kinds),
        "format": options.fmt, "storage": options.storage,
        **({"tiff_layout": options.tiff_layout, "tiff_compression": options.tiff_compression}
           if format_named(options.fmt).pyramid_name is not None else {}),
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


def export_levels(shape: Sequence[int], options: ExportOptions) -> tuple[int, tuple[int, ...]]:
    """(the pyramid's number of levels, the levels written) for an image of `shape`.

    The count is `options.levels` clamped to what the image has; the levels written are all of them, or
    `options.selected_levels`, which must lie within (ValueError naming the levels this image has).
    """
    most = max_levels(shape)
    count = most if options.levels is None else min(options.levels, most)
    if options.selected_levels is None:
        return count, tuple(range(count))
    outside = [i for i in options.selected_levels if i >= count]
    if outside:
        limit = "it has" if count == most else f"{options.levels} were asked for, of its"
        raise ValueError(f"level {outside[0]} is not in this pyramid: {limit} levels 0 to {most - 1} "
                         f"({most} levels, image {shape[1]}x{shape[0]})")
    return count, options.selected_levels


def planned_files(shape: Sequence[int], options: ExportOptions) -> list[str]:
    """Names of the files an export of an image of `shape` writes, manifest last."""
    count, selected = export_levels(shape, options)
    items, _ = _plan(level_sizes(shape, count), selected, options)
    return [item.name for item in items] + [MANIFEST_NAME]


def existing_targets(out_dir: str | os.PathLike[str], shape: Sequence[int],
                     options: ExportOptions) -> list[Path]:
    """The planned files already present in `out_dir` (what `force=True` would overwrite)."""
    return existing_files(out_dir, planned_files(shape, options))


def iter_export(image: np.ndarray, out_dir: str | os.PathLike[str], options: ExportOptions, *,
                source_path: str | os.PathLike[str] | None = None,
                cancel: Callable[[], bool] | None = None) -> Generator[ExportProgress, None, ExportResult]:
    """The export as a generator: yields progress (done=0 first, then after every file), returns the result.

    Raises ValueError for bad arguments, ExportConflictError / ExportError before writing anything when a
    target is in the way, and ExportError (with `written`) when a write fails half-way.
    """
    check_image(image)
    out_dir = Path(out_dir)
    levels, selected = export_levels(image.shape, options)
    items, skipped = _plan(level_sizes(image.shape, levels), selected, options)
    _check_targets(out_dir, [item.name for item in items] + [MANIFEST_NAME], options.force)
    pyramids = _Pyramids(image, options, levels)
    pyramid_options = {"layout": options.tiff_layout, "compression": options.tiff_compression}
    return (yield from _write_all(image, out_dir, items, pyramids, options.fmt,
                                  _pyramid_parameters(options, levels, selected), skipped, source_path,
                                  cancel, pyramid_options))


_ARRAY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True, eq=False)
class NamedArray:
    """One array for `export_arrays`: the file's stem, its manifest kind and level, and extra manifest
    fields (`details`, JSON values). `signed` arrays (differences, residuals) become a visualisation
    centred on grey 128 in PNG, like the pyramid's signed bands. `drawn` says how a picture was made
    from the data (a colour map, display limits) when the array is such a picture: the manifest then
    marks the file a visualisation with that description."""

    name: str
    array: np.ndarray
    kind: str
    signed: bool = False
    level: int | None = None
    details: dict[str, Any] = field(default_factory=dict)
    drawn: dict[str, Any] | None = None


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
                   details=dict(a.details), drawn=a.drawn) for name, a in zip(names, arrays, strict=False)]
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


def export_pyramid(image: np.ndarray, out_dir: str | os.PathLike[str], *,
                   source_path: str | os.PathLike[str] | None = None, levels: int | None = None,
                   selected_levels: Iterable[int] | None = None,
                   kinds: Iterable[str] = DEFAULT_KINDS, fmt: str = "tiff", modes: Iterable[str] = MODES,
                   storage: str = "float32", border: int = cv2.BORDER_REFLECT_101, force: bool = False,
                   progress: Callable[[ExportProgress], object] | None = None,
                   cancel: Callable[[], bool] | None = None) -> ExportResult:
    """Export `image`'s pyramid into `out_dir` (see the module docstring); returns what was written.

    `levels` beyond what the image has are clamped (the manifest records both numbers);
    `selected_levels` (None: all) are the levels of that pyramid written.
    """
    options = ExportOptions(levels=levels, kinds=tuple(kinds), fmt=fmt, modes=tuple(modes), storage=storage,
                            border=border, force=force,
                            selected_levels=None if selected_levels is None else tuple(selected_levels))
    return export_with_options(image, out_dir, options, source_path=source_path, progress=progress,
                               cancel=cancel)


def export_with_options(image: np.ndarray, out_dir: str | os.PathLike[str], options: ExportOptions, *,
                        source_path: str | os.PathLike[str] | None = None,
                        progress: Callable[[ExportProgress], object] | None = None,
                        cancel: Callable[[], bool] | None = None) -> ExportResult:
    """`export_pyramid` with its options already made (every field of `ExportOptions` applies)."""
    return _drain(iter_export(image, out_dir, options, source_path=source_path, cancel=cancel), progress)
