"""Qt-free display resampling: area-averaged reductions of a drawn image, so zooming out never aliases.

A view that shows fewer screen pixels than image pixels and samples the image nearest-neighbour skips
pixels and invents moire. Instead it draws a reduction of the image by a power-of-two `factor`:
pixel (r, c) of the reduction is the mean of the image over the source area the reduction's pixel
covers once the reduction is stretched over the image's own rectangle (so it keeps the image's
placement). Its size is ceil(h / factor) x ceil(w / factor); when `factor` does not divide the size
each reduced pixel covers slightly less than `factor` image pixels, still an exact area mean.

Choice of the factor (`reduction_factor`): with r image pixels per screen pixel (r = 1 / zoom), the
factor is the power of two nearest to r on a log scale, f = 2**round(log2 r). The reduction then
has between 1/sqrt(2) and sqrt(2) of its pixels per screen pixel and is drawn with bilinear
filtering, so no pixel of it is ever skipped, detail is blurred by at most sqrt(2), and what is
finer than the screen is mostly averaged away. (On the zone plate, the RMS of the false rings where
the pattern is finer than the screen is 90 grey levels drawn nearest-neighbour, 10-19 this way, and
45-52 with the larger factor 2**floor(log2 r), which at 50-100 % zoom only filters bilinearly.)
At r < sqrt(2) the factor is 1: the image itself, crisp (nearest) when zoomed in, bilinear between
71 % and 100 %.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from weakref import ReferenceType, ref

import cv2
import numpy as np

_ROUNDING = 1e-6
"""log2 slack so that a zoom of exactly 1/sqrt(2), computed as 1.41421355 image pixels per screen
pixel, still chooses the reduction by 2."""


def reduction_factor(image_per_screen: float, longest_side: int) -> int:
    """The power-of-two reduction to draw at `image_per_screen` image pixels per screen pixel.

    2**round(log2(image_per_screen)) (halves round up), at least 1, and no larger than needed to
    bring `longest_side` down to one pixel.
    """
    if not image_per_screen > 1.0:  # also NaN: draw the image itself
        return 1
    steps = math.floor(math.log2(image_per_screen) + 0.5 + _ROUNDING)
    most = math.ceil(math.log2(max(longest_side, 1)))
    return 2 ** max(0, min(steps, most))


def zoom_text(zoom: float) -> str:
    """A zoom (screen pixels per image pixel) as a percentage, to three significant digits below 100%
    (trailing zeros kept, so views side by side read alike): '1600%', '100%', '50.0%', '3.20%'."""
    percent = 100.0 * zoom
    return f"{percent:.0f}%" if percent >= 99.5 else f"{percent:#.3g}%"


def reduced_shape(shape: tuple[int, ...], factor: int) -> tuple[int, int]:
    """(rows, columns) of the reduction by `factor` of an image of `shape`."""
    return -(-shape[0] // factor), -(-shape[1] // factor)


def area_reduce(image: np.ndarray, factor: int) -> np.ndarray:
    """The area mean of `image` (H, W) or (H, W, C) reduced by `factor` (see the module docstring).

    Same dtype as `image` (integers rounded). Colour is averaged weighted by alpha in an RGBA image
    (premultiplied), so transparent pixels do not darken their neighbours. Factor 1 returns
    `image` itself.
    """
    if factor < 1:
        raise ValueError(f"reduction factor must be at least 1, not {factor}")
    if factor == 1:
        return image
    rows, cols = reduced_shape(image.shape, factor)
    if image.ndim == 3 and image.shape[2] == 4 and not _uniform(image[..., 3]):
        return _reduce_premultiplied(image, (cols, rows))
    return cv2.resize(image, (cols, rows), interpolation=cv2.INTER_AREA)


def _uniform(channel: np.ndarray) -> bool:
    low, high, _, _ = cv2.minMaxLoc(channel)
    return low == high


def _reduce_premultiplied(rgba: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    values = rgba.astype(np.float32)
    values[..., :3] *= values[..., 3:]
    mean = cv2.resize(values, size, interpolation=cv2.INTER_AREA)
    alpha = mean[..., 3:]
    colour = np.zeros_like(mean[..., :3])
    np.divide(mean[..., :3], alpha, out=colour, where=alpha > 0)
    mean[..., :3] = colour
    if rgba.dtype.kind in "ui":
        info = np.iinfo(rgba.dtype)
        return np.clip(np.rint(mean), info.min, info.max).astype(rgba.dtype)
    return mean.astype(rgba.dtype, copy=False)


class ReductionCache:
    """Reductions of the last few drawn images, by image and factor.

    An entry is held by a weak reference to its image, so a cache never keeps an image alive, and
    an image's reductions go when it does (or when more than `images` newer images have entries).
    """

    def __init__(self, images: int = 8) -> None:
        self._images = images
        self._entries: OrderedDict[int, tuple[ReferenceType[np.ndarray], dict[int, np.ndarray]]]
        self._entries = OrderedDict()  # id(image) -> (image, its reductions by factor), oldest first

    def get(self, image: np.ndarray, factor: int) -> np.ndarray | None:
        entry = self._entries.get(id(image))
        if entry is None or entry[0]() is not image:
            return None
        self._entries.move_to_end(id(image))
        return entry[1].get(factor)

    def put(self, image: np.ndarray, factor: int, reduced: np.ndarray) -> None:
        entry = self._entries.get(id(image))
        if entry is None or entry[0]() is not image:
            entry = (ref(image), {})
            self._entries[id(image)] = entry
        entry[1][factor] = reduced
        self._entries.move_to_end(id(image))
        for key in [k for k, (r, _) in self._entries.items() if r() is None]:
            del self._entries[key]
        while len(self._entries) > self._images:
            self._entries.popitem(last=False)
