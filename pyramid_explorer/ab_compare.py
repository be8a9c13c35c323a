"""Qt-free A/B comparison of two same-shaped images: their difference, its statistics, a swipe composite.

The A/B view (`app.ab_view`) shows two panels' arrays in one large view; this module computes what
it draws and exports, as pure functions on numpy arrays plus one job (`compare_pair`) that the view
runs on the worker. The difference A - B is taken in float32 whatever the input dtype, so uint8 and
uint16 differences neither wrap nor saturate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyramid_explorer.core.analysis import dtype_span
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.metrics import psnr
from pyramid_explorer.display import Layer, channel_mean, display_limits, make_layer
from pyramid_explorer.jobs import Progress

MODE_TITLES = {
    "nearest": "Nearest", "bilinear": "Bilinear", "bicubic": "Bicubic", "area": "Area",
    "lanczos": "Lanczos", "pyrup": "pyrUp", "zero_insert": "Zero insertion",
    "deconv_bilinear": "FCN bilinear deconv", "unpool": "Max unpool",
}
"""Human names of the upsampling modes, by code name."""


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if a.shape != b.shape:
        raise ValueError(f"A and B differ in shape: {a.shape} vs {b.shape}")
    if a.ndim not in (2, 3) or a.size == 0:
        raise ValueError(f"need non-empty (H, W) or (H, W, C) images, got shape {a.shape}")


def difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A - B in float32, every channel kept (no overflow for integer inputs)."""
    _check_pair(a, b)
    with np.errstate(invalid="ignore"):  # inf - inf is NaN, as in the Compare tab's differences
        return np.subtract(a, b, dtype=np.float32)


def symmetric_limits(values: np.ndarray) -> tuple[float, float]:
    """(-m, m) with m the largest finite |value|, so 0 sits in the middle of a diverging map; (-1, 1)
    when every value is 0 (or none is finite), so an all-zero difference still draws as the centre."""
    finite = values[np.isfinite(values)]
    m = float(np.abs(finite).max()) if finite.size else 0.0
    return (-m, m) if m > 0 else (-1.0, 1.0)


@dataclass(frozen=True)
class PairStats:
    """How far A is from B over every pixel and channel (finite values only)."""

    max_abs: float
    rms: float
    psnr: float
    """dB for values spanning the data range; inf when A equals B."""

    def text(self) -> str:
        p = "PSNR inf (identical)" if math.isinf(self.psnr) else f"PSNR {self.psnr:.2f} dB"
        return f"max |A - B| {self.max_abs:.6g}, RMS {self.rms:.4g}, {p}"


def pair_stats(a: np.ndarray, b: np.ndarray, data_range: float) -> PairStats:
    """max |A - B|, RMS of A - B and PSNR(A, B) for values spanning `data_range`."""
    d = difference(a, b)
    finite = d[np.isfinite(d)].astype(np.float64)
    max_abs = float(np.abs(finite).max()) if finite.size else math.nan
    rms = float(np.sqrt(np.mean(np.square(finite)))) if finite.size else math.nan
    return PairStats(max_abs, rms, psnr(a, b, data_range))


def swipe(a: np.ndarray, b: np.ndarray, column: int) -> np.ndarray:
    """The swipe composite: columns left of `column` from A, the others from B (clipped to the width)."""
    _check_pair(a, b)
    out = b.copy()
    x = min(max(int(column), 0), a.shape[1])
    out[:, :x] = a[:, :x]
    return out


def data_range_of(a: np.ndarray, b: np.ndarray) -> float:
    """The range PSNR is taken over: the dtype's nominal range for integers; for floats the span of
    A and B together, at least the nominal 1.0."""
    if a.dtype.kind != "f":
        return dtype_span(a.dtype)
    both = np.concatenate([a[np.isfinite(a)].ravel(), b[np.isfinite(b)].ravel()])
    span = float(both.max() - both.min()) if both.size else 0.0
    return max(span, dtype_span(a.dtype))


def crop_to_layer(reference: np.ndarray, shape: tuple[int, ...], scale: float,
                  origin: tuple[float, float]) -> np.ndarray:
    """The part of `reference` (a level drawn at `scale`, pixel (0, 0) centred on source (0, 0)) that a
    layer of `shape` placed at `origin` covers: G[i] cropped like a Compare result made on a crop."""
    left = round((origin[0] + scale / 2) / scale)
    top = round((origin[1] + scale / 2) / scale)
    return reference[top:top + shape[0], left:left + shape[1]]


@dataclass(frozen=True, eq=False)
class ABRequest:
    """Compare candidate `a_name` with `b_name` of `candidates` (arrays of one shape, one level)."""

    candidates: Mapping[str, np.ndarray]
    a_name: str
    b_name: str
    level: int
    origin: tuple[float, float]
    scale: float


@dataclass(frozen=True, eq=False)
class ABResult:
    """A and B drawn with the same display limits (so flicker and swipe change only what differs), and
    their difference drawn as its channel mean between symmetric limits."""

    a_name: str
    b_name: str
    a: Layer
    b: Layer
    difference: Layer
    stats: PairStats


def _joint_limits(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    (a_lo, a_hi), (b_lo, b_hi) = display_limits(a, False), display_limits(b, False)
    return min(a_lo, b_lo), max(a_hi, b_hi)


def compare_pair(req: ABRequest) -> Iterator[Progress | ABResult]:
    """The A/B comparison of two candidates: their layers, their difference and its statistics."""
    a, b = req.candidates[req.a_name], req.candidates[req.b_name]
    yield Progress(0, 2, f"A/B: {req.a_name} - {req.b_name}")
    d = difference(a, b)
    stats = pair_stats(a, b, data_range_of(a, b))
    yield Progress(1, 2, "A/B: drawing")
    limits = _joint_limits(a, b)
    shown = channel_mean(d) if d.ndim == 3 else d
    yield ABResult(req.a_name, req.b_name,
                   a=make_layer(a, req.level, limits=limits, scale=req.scale, origin=req.origin),
                   b=make_layer(b, req.level, limits=limits, scale=req.scale, origin=req.origin),
                   difference=make_layer(d, req.level, signed=True, display=shown,
                                         limits=symmetric_limits(shown), scale=req.scale, origin=req.origin),
                   stats=stats)


def level_candidates(reference: np.ndarray, layers: Mapping[str, Layer]) -> dict[str, np.ndarray]:
    """A/B candidates of one Compare level: "G[i]" (cropped like the results, if they were made on a
    crop) and each mode's result under its human name; layers of another shape (a transposed
    convolution at stride 3) are left out."""
    if not layers:
        return {}
    first = next(iter(layers.values()))
    shape = first.shape
    candidates = {f"G[{first.level}]": crop_to_layer(reference, shape, first.scale, first.origin)}
    for mode, layer in layers.items():
        if layer.shape == shape:
            candidates[MODE_TITLES.get(mode, mode)] = layer.data
    return candidates


def file_stem(name: str) -> str:
    """A candidate's name as a plain file stem: "G[1]" -> "G_1", "Max unpool" -> "Max_unpool"."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", name).strip("_") or "array"


def _json_number(x: float) -> float | str:
    return x if math.isfinite(x) else str(x)


def ab_arrays(r: ABResult, level: int, shown: str, flicker: bool,
              column: int) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """What the A/B view shows as named arrays for its export (A, B, A - B as data; the swipe composite at
    `column` as a picture of A and B; a flicker as A and B), and the manifest's parameters."""
    a_stem, b_stem = file_stem(r.a_name), file_stem(r.b_name)
    a = NamedArray(f"A_{a_stem}", r.a.data, "ab", level=level, details={"what": f"A: {r.a_name}"})
    b = NamedArray(f"B_{b_stem}", r.b.data, "ab", level=level, details={"what": f"B: {r.b_name}"})
    arrays: tuple[NamedArray, ...]
    if flicker:
        arrays = (a, b)
    elif shown == "difference":
        arrays = (NamedArray(f"{a_stem}_minus_{b_stem}", r.difference.data, "ab", signed=True,
                             level=level, details={"what": f"{r.a_name} - {r.b_name}, float32"}),)
    elif shown == "swipe":
        arrays = (NamedArray(f"swipe_{a_stem}_{b_stem}", swipe(r.a.data, r.b.data, column), "ab",
                             level=level,
                             details={"visualisation": f"columns 0..{column - 1} from A ({r.a_name}), "
                                                       f"the others from B ({r.b_name})",
                                      "divider_column": column}),)
    else:
        arrays = (a if shown == "A" else b,)
    stats = r.stats
    parameters = {"tool": "ab", "a": r.a_name, "b": r.b_name, "level": level, "shown": shown,
                  "flicker": flicker, "max_abs_difference": _json_number(stats.max_abs),
                  "rms_difference": _json_number(stats.rms), "psnr_db": _json_number(stats.psnr)}
    return arrays, parameters
