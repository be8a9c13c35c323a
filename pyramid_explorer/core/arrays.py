"""Checks shared by the core: which arrays count as images, and how floats go back to integer dtypes; and
the one way the core splits work on an array over threads."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol, TypeVar

import cv2
import numpy as np

SUPPORTED_DTYPES = (np.uint8, np.uint16, np.float32)
SUPPORTED_CHANNELS = (3, 4)
_BANDS_PER_THREAD = 4
_CV_DEPTHS = {np.dtype(np.uint8): cv2.CV_8U, np.dtype(np.int8): cv2.CV_8S, np.dtype(np.uint16): cv2.CV_16U,
              np.dtype(np.int16): cv2.CV_16S}
_CV_FLOATS = (np.dtype(np.float32), np.dtype(np.float64))
_INT32_SAFE = 2.0**31 - 256  # below it every float32 rounds to an int32 (and -inf saturates correctly)


def check_image(image: np.ndarray, name: str = "image") -> np.ndarray:
    """Return `image` if it is a non-empty (H, W) or (H, W, 3|4) uint8, uint16 or float32 array."""
    if not isinstance(image, np.ndarray):
        raise ValueError(f"{name} must be a numpy array, got {type(image).__name__}")
    return check_layout(image, name)


class _Layout(Protocol):
    """What `check_layout` reads of an array: numpy's and dask's arrays both have it."""

    @property
    def dtype(self) -> np.dtype[Any]: ...
    @property
    def ndim(self) -> int: ...
    @property
    def shape(self) -> tuple[Any, ...]: ...


_LayoutT = TypeVar("_LayoutT", bound=_Layout)


def check_layout(image: _LayoutT, name: str = "image") -> _LayoutT:
    """The dtype and shape rules of `check_image` for any array-like with `.dtype` and `.shape` (dask too)."""
    if image.dtype.type not in SUPPORTED_DTYPES:
        raise ValueError(f"{name} has dtype {image.dtype}; supported: uint8, uint16, float32")
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in SUPPORTED_CHANNELS):
        raise ValueError(f"{name} has shape {image.shape}; supported: (H, W), (H, W, 3) RGB, (H, W, 4) RGBA")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"{name} is empty: shape {image.shape}")
    return image


def to_dtype(image: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Round (half to even) and saturate a float image to an integer `dtype` (float dtypes are a plain cast).

    8- and 16-bit results of float32/float64 images take one OpenCV pass over the image seen as one channel
    (a 4K RGB float32 image to uint8: ~10 ms, where numpy's three passes take ~25 and OpenCV's per-channel
    scalar path ~23). OpenCV rounds through int32, so an image holding a value beyond its range (or NaN)
    goes numpy's way, and so do tiny ones (OpenCV's Python binding takes an array of up to four values for
    a scalar).
    """
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return image.astype(dtype, copy=False)
    depth = _CV_DEPTHS.get(dtype)
    if (depth is not None and image.dtype in _CV_FLOATS and image.size > 4 and image.ndim in (2, 3)
            and image.max() < _INT32_SAFE):
        rows = image.reshape(image.shape[0], -1)
        return cv2.add(rows, 0.0, dtype=depth).reshape(image.shape)
    info = np.iinfo(dtype)
    return np.clip(np.rint(image), info.min, info.max).astype(dtype)


def even_bands(n_rows: int, count: int) -> list[tuple[int, int]]:
    """`count` contiguous (start, stop) bands covering ``range(n_rows)``, their sizes differing by one at
    most (1 <= count <= n_rows)."""
    bounds = [n_rows * i // count for i in range(count + 1)]
    return list(itertools.pairwise(bounds))


def in_bands(n_rows: int, work: Callable[[int, int], None], most: int | None = None,
             threads: int | None = None) -> None:
    """Call ``work(start, stop)`` on contiguous bands covering ``range(n_rows)``, on `threads` threads (by
    default one per OpenCV thread).

    numpy and OpenCV release the GIL inside their loops, so the bands run in parallel like OpenCV's own
    loops (``cv2.setNumThreads`` limits both). There are a few bands per thread, taken by whichever thread
    is free, so a thread the OS preempts on a busy machine does not hold the others up. ``most`` caps the
    number of bands (small work runs in the calling thread); exceptions raised by ``work`` reach the
    caller, and no thread outlives the call.
    """
    threads = max(1, min(threads or cv2.getNumThreads(), n_rows, n_rows if most is None else most))
    if threads == 1:
        work(0, n_rows)
        return
    n = min(n_rows, _BANDS_PER_THREAD * threads, n_rows if most is None else most)
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, start, stop) for start, stop in even_bands(n_rows, n)]:
            future.result()


def finite_range(array: np.ndarray) -> tuple[float, float] | None:
    """(min, max) over the finite values, as Python numbers; None when there is none."""
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            array = array[finite]
    if array.size == 0:
        return None
    low, high = array.min(), array.max()
    return (low.item(), high.item())


def as_hwc(x: np.ndarray, name: str) -> np.ndarray:
    """View ``x`` as ``(H, W, C)`` (a 2-D array gets C = 1), after checking it is a real 2-D/3-D array."""
    x = np.asarray(x)
    if x.ndim not in (2, 3) or x.size == 0:
        raise ValueError(f"{name} must be a non-empty (H, W) or (H, W, C) array, got shape {x.shape}")
    if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(
            f"{name} must have an integer or float dtype (uint8, uint16, float32), got {x.dtype}"
        )
    return x if x.ndim == 3 else x[:, :, np.newaxis]


def check_int(value: object, name: str, minimum: int) -> int:
    """`value` as an int when it is an integer (not a bool) >= `minimum`; ValueError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
