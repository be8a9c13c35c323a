"""TIFF: zlib-compressed (lossless), in the data's own dtype (int16 bands and float32 bit-exact)."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import numpy as np

from pyramid_explorer.core import tiff as tiff_writer
from pyramid_explorer.core.formats.base import Format, WriteContext, Written
from pyramid_explorer.core.io import atomic_write


def _write_tiff(fh: BinaryIO, array: np.ndarray) -> None:
    tiff_writer.write_tiff(fh, array, compression="zlib")


def write(path: Path, array: np.ndarray, context: WriteContext) -> Written:
    with atomic_write(path) as fh:  # not save_image: int16 bands, and zlib compression
        _write_tiff(fh, array)
    return Written(array)


FORMAT = Format("tiff", ".tiff", write, "exact, the data's own dtype, zlib-compressed")
