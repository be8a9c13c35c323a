"""Test images: random and structured, every supported dtype and channel count, odd sizes."""

from __future__ import annotations

import numpy as np

DTYPES = (np.uint8, np.uint16, np.float32)
CHANNELS = (None, 3, 4)  # None: grey (H, W)
ODD_SHAPES = ((1, 1), (1, 9), (9, 1), (3, 5), (2, 2), (17, 31), (153, 101))


def random_image(shape: tuple[int, int], dtype: type = np.uint8, channels: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """Uniform noise over the dtype's full range (floats in [0, 1]): the hardest case for exactness."""
    rng = np.random.default_rng(seed)
    full = shape if channels is None else (*shape, channels)
    if np.dtype(dtype).kind == "f":
        return rng.random(full, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, full, endpoint=True).astype(dtype)


def natural_image(dtype: type = np.uint8) -> np.ndarray:
    """A real photograph (scikit-image's astronaut, public domain), cropped to an odd size."""
    from skimage import data

    image = data.astronaut()[:301, :257]
    if dtype == np.uint16:
        return image.astype(np.uint16) * 257
    if dtype == np.float32:
        return image.astype(np.float32) / 255
    return image


def dtype_range(dtype: type) -> float:
    return 1.0 if np.dtype(dtype).kind == "f" else float(np.iinfo(dtype).max)
