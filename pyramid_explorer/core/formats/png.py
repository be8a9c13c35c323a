"""PNG: uint8/uint16 data as it is; anything else as an 8-bit visualisation whose mapping the manifest gives.

Signed data (Laplacian bands but the last, residuals, differences) becomes pixel = round(128 + 127 *
value / scale), scale = the file's largest |value| (0 stays grey 128, every channel alike). Other float
data is rounded to the source's integer dtype, which is data if it is exact and a visualisation if not;
float sources map their value range to 0..255.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pyramid_explorer.core.arrays import finite_range, to_dtype
from pyramid_explorer.core.formats.base import Format, WriteContext, Written
from pyramid_explorer.core.io import save_image


def _payload(array: np.ndarray, signed: bool, source_dtype: np.dtype,
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



def write(path: Path, array: np.ndarray, context: WriteContext) -> Written:
    pixels, mapping = _payload(array, context.signed, context.source_dtype, context.source_range)
    save_image(path, pixels)
    if mapping is None:
        return Written(pixels)
    return Written(pixels, "visualisation", {"visualisation": {**mapping, "data_dtype": str(array.dtype),
                                                                "data_range": finite_range(array)}})


FORMAT = Format("png", ".png", write, "uint8/uint16 exact; other data (signed kinds) as a visualisation",
                exact=("uint8", "uint16"))
