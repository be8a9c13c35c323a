"""Writing an export's files: targets checked first, each file atomic, a manifest describing them all.

The part every export shares (`core.export`'s pyramid and array exports): the errors and records they
report, the checks that refuse before anything is written, each file written atomically by its format
(`core.formats`: one module per format, one registry), the manifest, and the generator that writes a
list of items with progress and cancellation.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import tifffile

import pyramid_explorer
from pyramid_explorer.core.arrays import finite_range
from pyramid_explorer.core.formats import WriteContext, format_named
from pyramid_explorer.core.io import ImageSaveError, atomic_write

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1


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


@dataclass(frozen=True)
class _Item:
    """One file to write: its name and manifest identity, and how to compute its content from the
    export's context (the pyramids, or nothing for arrays given whole)."""

    name: str
    kind: str
    level: int | None
    mode: str | None
    make: Callable[..., Any]  # called with the context; lambdas bind their level by default arguments
    signed: bool = False
    details: dict[str, Any] = field(default_factory=dict)
    drawn: dict[str, Any] | None = None  # a picture made from data (how, for the manifest); None: data


def _write_item(path: Path, item: _Item, context: Any, fmt: str, source_dtype: np.dtype,
                source_range: tuple[float, float] | None, pyramid_options: dict[str, Any]) -> FileRecord:
    """Compute one item, write it atomically in its format, and describe what landed on disk."""
    content = item.make(context)
    written = format_named(fmt).write(path, content, WriteContext(item.signed, source_dtype, source_range,
                                                                  pyramid_options))
    array, role, details = written.array, written.role, {**item.details, **written.details}
    if item.drawn is not None:
        role, details["visualisation"] = "visualisation", {**item.drawn, **details.get("visualisation", {})}
    return FileRecord(item.name, item.kind, item.level, item.mode, tuple(array.shape), str(array.dtype),
                      finite_range(array), role, details)


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


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
                   "shape": list(source.shape), "dtype": str(source.dtype), "range": finite_range(source)},
        "parameters": parameters,
        "files": [record.to_json() for record in records],
        "skipped": list(skipped),
    }


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


def _write_all(image: np.ndarray, out_dir: Path, items: Sequence[_Item], context: Any, fmt: str,
               parameters: dict[str, Any], skipped: Sequence[dict[str, Any]],
               source_path: str | os.PathLike[str] | None, cancel: Callable[[], bool] | None,
               pyramid_options: dict[str, Any] | None = None
               ) -> Generator[ExportProgress, None, ExportResult]:
    """Write `items` (targets already checked) and the manifest: the part every export shares.

    `pyramid_options` are `tiff.write_pyramid`'s (layout, compression) for the ome-tiff format."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"{out_dir}: cannot create the output folder: {_reason(exc)}") from exc
    source_abs = None if source_path is None else Path(source_path).absolute()
    try:
        source_hash = None if source_abs is None else file_sha256(source_abs)
    except OSError as exc:
        raise ExportError(f"{source_abs}: cannot read the source for its checksum: {_reason(exc)}") from exc
    source_range = finite_range(image) if image.dtype.kind == "f" else None
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
            records.append(_write_item(path, item, context, fmt, image.dtype, source_range,
                                       pyramid_options or {}))
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
