"""OME-TIFF: one tiled pyramidal file of every Gaussian level (`core.tiff.write_pyramid`).

Layout "subifds" writes an OME-TIFF whose sub-resolutions are SubIFDs (`gaussian.ome.tif`); "pages" a
generic tiled TIFF, not OME, whose levels are pages as OpenSlide reads pyramids (`gaussian.tif`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pyramid_explorer.core import tiff as tiff_writer
from pyramid_explorer.core.arrays import finite_range
from pyramid_explorer.core.formats.base import Format, WriteContext, Written
from pyramid_explorer.core.io import atomic_write


def write(path: Path, levels: Sequence[np.ndarray], context: WriteContext) -> Written:
    with atomic_write(path) as fh:
        tiff_writer.write_pyramid(fh, levels, **context.pyramid_options)
    return Written(levels[0], details={"levels": [list(level.shape) for level in levels],
                                       "level_ranges": [finite_range(level) for level in levels]})


FORMAT = Format("ome-tiff", ".ome.tif", write, "one pyramidal file of the Gaussian levels, any size",
                kinds=("gaussian",), pyramid_name=lambda layout: tiff_writer.TIFF_NAMES[layout])
