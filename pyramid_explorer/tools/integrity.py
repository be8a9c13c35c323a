"""The Integrity tool: the Laplacian round trip with a chosen band storage next to the Gaussian-only
one, pyrUp(pyrDown(x)); the residuals ready to draw, their histograms, and their export."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyramid_explorer.core.analysis import Integrity, gaussian_round_trip, integrity
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.pyramid import STORAGES, max_levels, storage_allowed
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool

_HISTOGRAM_BINS = 101  # odd: one bin is centred on zero
_INTEGER_BINS = 1024  # integer residuals spanning up to this many values get one bin per value


@dataclass(frozen=True, eq=False)
class IntegrityRequest:
    """Rebuild `image` from its Laplacian pyramid (`levels`, bands kept as `storage`) and measure it."""

    image_id: int
    image: np.ndarray
    levels: int | None = None
    storage: str = "float32"

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r} is not supported; allowed: {', '.join(STORAGES)}")


@dataclass(frozen=True, eq=False)
class ErrorReport:
    """One reconstruction against its source: the core's numbers, the residual ready to draw, and its
    histogram.

    `layer.data` is the residual (source - reconstruction, float32, every channel); `layer.display`
    is, per pixel, the channel value of largest magnitude with its sign, so no error hides in a mean.
    `histogram` is (bin centres, counts) over every value of every channel (not a subsample):
    one bin per integer for integer images, else `_HISTOGRAM_BINS` bins symmetric about zero.
    """

    max_abs_error: float
    rmse: float
    psnr: float
    differing_pixels: int
    sentence: str
    layer: Layer
    histogram: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class IntegrityResult:
    """The Laplacian round trip with `storage` bands next to the Gaussian-only one, pyrUp(pyrDown(x))."""

    image_id: int
    levels: int
    storage: str
    laplacian: ErrorReport
    gaussian: ErrorReport
    clipped_levels: tuple[int, ...]


def strongest_channel(data: np.ndarray) -> np.ndarray:
    """(H, W) float32: per pixel the colour-channel value of largest magnitude, sign kept (alpha left
    out); a grey image as it is."""
    if data.ndim == 2:
        return data.astype(np.float32, copy=False)
    colour = data[..., :3] if data.shape[2] == 4 else data
    pick = np.nan_to_num(np.abs(colour), nan=np.inf).argmax(axis=2)
    return np.take_along_axis(colour, pick[..., None], axis=2)[..., 0].astype(np.float32, copy=False)


def error_histogram(values: np.ndarray, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) of the finite values; one bin per integer when `integer` and the span
    allows, else `_HISTOGRAM_BINS` bins over [-m, m], m the largest |value| (1 when all are zero)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        return np.zeros(1, np.float32), np.zeros(1, np.int64)
    lo, hi = float(finite.min()), float(finite.max())
    if integer and hi - lo < _INTEGER_BINS:
        counts = np.bincount((finite - lo).astype(np.int64).ravel(), minlength=int(hi - lo) + 1)
        return np.arange(lo, hi + 1, dtype=np.float32), counts
    m = max(abs(lo), abs(hi)) or 1.0
    counts, edges = np.histogram(finite, _HISTOGRAM_BINS, range=(-m, m))
    return ((edges[:-1] + edges[1:]) / 2).astype(np.float32), counts


def _report(measured: Integrity, integer: bool) -> ErrorReport:
    lost = measured.residual
    return ErrorReport(max_abs_error=measured.max_abs_error, rmse=measured.rmse, psnr=measured.psnr,
                       differing_pixels=measured.differing_pixels, sentence=measured.sentence,
                       layer=make_layer(lost, 0, signed=True, display=strongest_channel(lost)),
                       histogram=error_histogram(lost, integer))


def measure_integrity(req: IntegrityRequest) -> Iterator[Progress | IntegrityResult]:
    """The core's `integrity` with the chosen storage, and its `gaussian_round_trip`, ready to draw."""
    image = req.image
    integer = image.dtype.kind in "ui"
    yield Progress(0, 2, f"Reconstruction from {req.storage} bands")
    laplacian = integrity(image, req.levels, storage=req.storage)
    lap = _report(laplacian, integer)
    yield Progress(1, 2, "Gaussian round trip pyrUp(pyrDown(x))")
    gauss = _report(gaussian_round_trip(image), integer)
    levels = req.levels if req.levels is not None else max_levels(image.shape)
    yield IntegrityResult(image_id=req.image_id, levels=levels, storage=req.storage, laplacian=lap,
                        gaussian=gauss, clipped_levels=laplacian.clipped_levels)



def json_number(x: float) -> float | str:
    """A float for JSON: infinities and NaN as the strings "inf", "-inf", "nan" (JSON has none)."""
    return x if math.isfinite(x) else str(x)


def _report_details(report: ErrorReport) -> dict[str, Any]:
    return {"max_abs_error": report.max_abs_error, "rmse": report.rmse, "psnr_db": json_number(report.psnr),
            "differing_pixels": report.differing_pixels, "sentence": report.sentence}


def integrity_arrays(result: IntegrityResult) -> Arrays:
    """The integrity tool's residuals as named arrays, and the manifest's parameters."""
    arrays = (
        NamedArray("integrity_residual", result.laplacian.layer.data, "integrity", signed=True, level=0,
                   details={"what": f"source - reconstruction from {result.storage} Laplacian bands",
                            **_report_details(result.laplacian)}),
        NamedArray("gaussian_round_trip_residual", result.gaussian.layer.data, "integrity", signed=True,
                   level=0,
                   details={"what": "source - pyrUp(pyrDown(source))", **_report_details(result.gaussian)}),
    )
    return arrays, {"tool": "integrity", "storage": result.storage, "levels": result.levels,
                    "clipped_levels": list(result.clipped_levels)}




def _key(result: IntegrityResult) -> Key:
    return ("integrity", result.image_id, result.levels, result.storage)


def _plan(state: State) -> Plan:
    p, image = state.pyramid, state.loaded.image
    storage = state.settings["storage"]
    corrected = {}
    if not storage_allowed(storage, image.dtype):
        storage = corrected["storage"] = "float32"  # the integer storages exist for uint8 images only
    return Plan((("integrity", p.image_id, p.levels, storage),), measure_integrity,
                lambda _: IntegrityRequest(p.image_id, image, p.levels, storage), corrected=corrected)


TOOL = Tool("integrity", "&Integrity", "pyramid_explorer.app.tabs.integrity:IntegrityTab", _plan, _key,
            settings={"storage": "float32"}, export=lambda result, _fmt: integrity_arrays(result))
