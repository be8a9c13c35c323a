"""Qt-free display preparation shared by every tool: `Layer`, display limits, uint8 codes, histograms,
thumbnails and the finite statistics of the level table.

Everything here runs on the worker, so the GUI thread only hands ready pixels to Qt.

Placement convention (used by every `Layer`): an image whose pixels are `scale` source pixels wide
has the outer edge of its pixel (0, 0) at source coordinate `origin`. Integer source coordinates are
the centres of the source pixels. pyrDown's 5-tap kernel is centred on source pixel 2j, so pixel j of
pyramid level i is centred on source pixel 2**i * j: scale 2**i, origin -2**i / 2 (-0.5 at level 0,
-1 at level 1, -2 at level 2), and a level-i pixel covers the source pixels it was computed around.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pyramid_explorer.core.analysis import dtype_span
from pyramid_explorer.screen_sampling import area_reduce

THUMBNAIL_SIZE = 48

MODE_LABELS = {
    "nearest": "Nearest",
    "bilinear": "Bilinear",
    "bicubic": "Bicubic",
    "area": "Area",
    "lanczos": "Lanczos",
    "pyrup": "pyrUp",
    "zero_insert": "Zero insertion",
    "deconv_bilinear": "FCN bilinear deconv",
    "unpool": "Max unpool",
}
"""What the window calls each upsampling mode of `core.upsampling.MODES` (its code name is for the
command line and export)."""


def mode_label(mode: str) -> str:
    """The human name of an upsampling mode ('Zero insertion' for 'zero_insert')."""
    return MODE_LABELS.get(mode, mode)
"""Side of the square box level thumbnails are fitted into, in pixels."""

PREVIEW_SIDE = 256
"""A layer whose longest side exceeds this carries `Layer.preview`, a reduction no longer than this,
made on the worker: a zoomed-out panel draws it at once rather than hand megapixels to Qt on the GUI
thread (a 4K image costs tens of milliseconds to convert and paint, on every repaint)."""

_LIMIT_SAMPLES = 250_000  # pixels inspected to choose display limits; plenty for a percentile
_SIGNED_PERCENTILE = 99.5  # signed limits clip the rarest 0.5 % so detail is not a faint wash


@dataclass(frozen=True, eq=False)
class Preview:
    """`pixels` is `area_reduce(layer.pixels, factor)` (screen_sampling), made with the layer."""

    factor: int
    pixels: np.ndarray


def preview_factor(shape: tuple[int, ...]) -> int:
    """The smallest power of two that brings the longest side of `shape` to PREVIEW_SIDE or less."""
    factor = 1
    while -(-max(shape[:2]) // factor) > PREVIEW_SIDE:
        factor *= 2
    return factor


@dataclass(frozen=True, eq=False)
class Layer:
    """An image ready to draw: its values, the array drawn, display limits, and its place in the source.

    `data` holds the values the readout reports; `display` is what is drawn: `data` itself, or for
    signed data with colour channels their mean (a diverging colour map needs one value per pixel).
    `pixels` is `display` already mapped to uint8 codes between `limits` and `histogram` the
    histogram of `display`, both made on the worker so the GUI thread only hands them to Qt.
    `scale` is the width of one pixel in source pixels and `origin` the source coordinate (x, y) of
    the outer corner of pixel (0, 0) (see the module docstring).
    """

    data: np.ndarray
    display: np.ndarray
    limits: tuple[float, float]
    signed: bool
    level: int
    scale: float
    origin: tuple[float, float]
    pixels: np.ndarray
    histogram: tuple[np.ndarray, np.ndarray]
    preview: Preview | None = None


    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    def pixel_at(self, x: float, y: float) -> tuple[int, int] | None:
        """(row, column) of the pixel under source coordinate (x, y), or None outside the image."""
        col = math.floor((x - self.origin[0]) / self.scale)
        row = math.floor((y - self.origin[1]) / self.scale)
        if 0 <= row < self.data.shape[0] and 0 <= col < self.data.shape[1]:
            return row, col
        return None



def colour_channels(data: np.ndarray) -> np.ndarray:
    """The colour part of an image: RGBA loses its alpha."""
    return data[..., :3] if data.ndim == 3 and data.shape[2] == 4 else data


def _subsample(a: np.ndarray) -> np.ndarray:
    step = max(1, math.isqrt(a.shape[0] * a.shape[1] // _LIMIT_SAMPLES))
    return a[::step, ::step]


def display_limits(display: np.ndarray, signed: bool) -> tuple[float, float]:
    """Display limits: symmetric about 0 for signed data, the dtype or finite span otherwise.

    Signed limits are the 99.5th percentile of |value| (rare spikes would otherwise wash the band
    out), falling back to the largest |value|, and to 1 for an all-zero image so it still shows.
    """
    if signed:
        sample = _subsample(display)
        mag = np.abs(sample[np.isfinite(sample)])
        m = float(np.percentile(mag, _SIGNED_PERCENTILE)) if mag.size else 0.0
        if m <= 0:
            full = np.abs(display[np.isfinite(display)])
            m = float(full.max()) if full.size else 0.0
        return (-m, m) if m > 0 else (-1.0, 1.0)
    if display.dtype == np.uint8:
        return 0.0, 255.0
    finite = display[np.isfinite(display)] if display.dtype.kind == "f" else display
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def quantize(display: np.ndarray, limits: tuple[float, float]) -> np.ndarray:
    """uint8 codes to draw: limits[0] -> 0, limits[1] -> 255, rounded and saturated; NaN and
    infinities draw as 0.

    Colour channels are mapped by the limits; an alpha channel by its dtype's nominal range.
    A uint8 image drawn between 0 and 255 is returned as it is (no copy). One OpenCV pass: at 4K it
    is ~30 times faster than the same arithmetic in numpy.
    """
    lo, hi = limits
    if display.dtype == np.uint8 and (lo, hi) == (0.0, 255.0):
        return display
    gain = 255.0 / (hi - lo)
    out = cv2.addWeighted(display, gain, display, 0.0, -lo * gain, dtype=cv2.CV_8U)
    if display.ndim == 3 and display.shape[2] == 4:
        gain = 255.0 / dtype_span(display.dtype)
        out[..., 3] = cv2.addWeighted(display[..., 3], gain, display[..., 3], 0.0, 0.0, dtype=cv2.CV_8U)
    if display.dtype.kind == "f" and not cv2.checkRange(display)[0]:  # one read-only pass, no copy
        out[~np.isfinite(display)] = 0  # OpenCV 5.1 saturates NaN and -inf to 255, 4.x gave 0
    return out


def channel_mean(data: np.ndarray) -> np.ndarray:
    """float32 (H, W) mean over the colour channels (alpha left out); a grey image as float32."""
    if data.ndim == 2:
        return data.astype(np.float32, copy=False)
    weights = np.full((1, data.shape[2]), 1.0 / min(data.shape[2], 3), np.float32)
    if data.shape[2] == 4:
        weights[0, 3] = 0.0
    return cv2.transform(data.astype(np.float32, copy=False), weights)


def value_histogram(display: np.ndarray, bins: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """(left bin edges, counts) of the finite colour values of `display`, from a subsample."""
    sample = _subsample(colour_channels(display))
    sample = sample[np.isfinite(sample)] if sample.dtype.kind == "f" else sample.ravel()
    if sample.size == 0:
        return np.zeros(1, np.float32), np.zeros(1, np.int64)
    lo, hi = float(sample.min()), float(sample.max())
    if sample.dtype.kind == "u" and hi - lo < bins:  # one bin per integer value: no comb
        counts = np.bincount(sample)[int(lo):]  # ~10x np.histogram's speed
        return (np.arange(counts.size) + (lo - 0.5)).astype(np.float32), counts
    if sample.dtype.kind == "i" and hi - lo < bins:
        counts, edges = np.histogram(sample, int(hi - lo) + 1, range=(lo - 0.5, hi + 0.5))
    else:  # float64 edges: float32 ones cannot split a tiny range (a difference of 1e-8) into bins
        counts, edges = np.histogram(sample.astype(np.float64), bins, range=(lo, hi if hi > lo else lo + 1))
    return edges[:-1].astype(np.float32), counts


def make_layer(
    data: np.ndarray, level: int, *, signed: bool = False, scale: float | None = None,
    origin: tuple[float, float] | None = None, display: np.ndarray | None = None,
    limits: tuple[float, float] | None = None,
) -> Layer:
    """Wrap an array as a Layer of pyramid level `level` (scale 2**level unless given).

    `origin` defaults to minus half a pixel, which centres pixel (0, 0) on source pixel (0, 0).

    `display` defaults to `data`, or for signed colour data to the mean over its colour channels;
    `limits` to `display_limits` of it.
    """
    if display is None:
        display = channel_mean(data) if signed else data
    if limits is None:
        limits = display_limits(display, signed)
    scale = float(2**level if scale is None else scale)
    if origin is None:
        origin = (-scale / 2, -scale / 2)
    pixels = quantize(display, limits)
    factor = preview_factor(pixels.shape)
    preview = Preview(factor, area_reduce(pixels, factor)) if factor > 1 else None
    return Layer(data=data, display=display, limits=limits, signed=signed, level=level,
                 scale=scale, origin=origin, pixels=pixels, histogram=value_histogram(display),
                 preview=preview)


def finite_max(values: np.ndarray) -> float:
    """Largest finite value (0 for an empty array, NaN when none is finite): statistics ignore NaN/inf."""
    if values.dtype.kind == "f" and not np.isfinite(values).all():
        values = values[np.isfinite(values)]
        if values.size == 0:
            return math.nan
    return float(values.max()) if values.size else 0.0


def finite_stats(a: np.ndarray) -> tuple[float, float, float]:
    """min, max, mean over the finite values (all values of an integer image)."""
    if a.dtype.kind == "f":
        a = a[np.isfinite(a)]
        if a.size == 0:
            return math.nan, math.nan, math.nan
    return float(a.min()), float(a.max()), float(a.mean(dtype=np.float64))


def thumbnail(image: np.ndarray, limits: tuple[float, float], box: int = THUMBNAIL_SIZE) -> np.ndarray:
    """uint8 grey or RGB thumbnail fitted into box x box: area-averaged when shrinking, blocky when
    enlarging, so a coarse level looks as coarse as it is."""
    img = colour_channels(image)
    if img.dtype != np.uint8:
        lo, hi = limits
        finite = np.nan_to_num(img.astype(np.float32), posinf=hi, neginf=lo)  # no overflow from +-inf
        img = np.clip((finite - lo) * (255.0 / (hi - lo)), 0, 255)
        img = img.astype(np.uint8)
    h, w = img.shape[:2]
    f = box / max(h, w)
    size = (max(1, round(w * f)), max(1, round(h * f)))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_NEAREST)
