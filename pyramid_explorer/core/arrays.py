"""Checks shared by the core: which arrays count as images, and how floats go back to integer dtypes."""

from __future__ import annotations

import numpy as np

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)
SUPPORTED_CHANNELS = (3, 4)


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return `image` if it is a non-empty (H, W) or (H, W, 3|4) uint8, uint16 or float32 array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    return check_layout(image, name)


def check_layout(image: np.ndarray, name: str = "image") -> np.ndarray:
    """The dtype and shape rules of `check_image` for any array-like with `.dtype` and `.shape` (dask too)."""
    if image.dtype.type not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} has dtype {image.dtype}; supported: uint8, uint16, float32")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in SUPPORTED_CHANNELS):
        raise ValueError(f"{name} has shape {image.shape}; supported: (H, W), (H, W, 3) RGB, (H, W, 4) RGBA")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    return image


def to_dtype(image: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Round and saturate a float image to an integer `dtype` (float dtypes are a plain cast)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return image.astype(dtype, copy=False)
    info = np.iinfo(dtype)
    return np.clip(np.rint(image), info.min, info.max).astype(dtype)
