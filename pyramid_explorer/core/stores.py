"""Recognising stored pyramids by their files, without importing zarr or dask (the `big` extra)."""

from __future__ import annotations

import os
from pathlib import Path

ZARR_GROUP_FILES = (".zgroup", "zarr.json")  # a Zarr group's metadata, format 2 and 3
ZARR_METADATA_FILES = (".zgroup", ".zattrs", "zarr.json")  # any file a user may pick inside such a folder


def is_zarr_folder(path: str | os.PathLike[str]) -> bool:
    """True for a folder holding a Zarr group (format 2 or 3): an OME-Zarr input, not a folder of images."""
    path = Path(path)
    return path.is_dir() and any((path / name).is_file() for name in ZARR_GROUP_FILES)
