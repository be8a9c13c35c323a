"""NPY: numpy arrays, bit-exact."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pyramid_explorer.core.formats.base import Format, WriteContext, Written
from pyramid_explorer.core.io import save_image


def write(path: Path, array: np.ndarray, context: WriteContext) -> Written:
    save_image(path, array)
    return Written(array)


FORMAT = Format("npy", ".npy", write, "exact, numpy arrays")
