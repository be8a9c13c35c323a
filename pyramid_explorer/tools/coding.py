"""The Pyramid coding tool (Burt & Adelson 1983, "The Laplacian pyramid as a compact image code"): every
band quantised with its own step, what that costs (bits per pixel) and keeps (PSNR, SSIM), the
rate-distortion curve of a step sweep beside JPEG's real file sizes, and JPEG at the same rate."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.analysis import (
    CODING_PRESETS,
    RatePoint,
    code_pyramid,
    coding_curve,
    dtype_span,
    jpeg_at_rate,
    jpeg_curve,
    preset_steps,
)
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool

SCALES = (0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
"""The step sweep of the rate-distortion curve: every band's step times each scale."""
QUALITIES = (5, 10, 20, 30, 50, 70, 85, 95, 98, 100)
"""The JPEG qualities of JPEG's rate-distortion curve."""
DEFAULT_PRESET = "coarse_fine_bands"


def jpeg_unavailable(image: np.ndarray) -> str | None:
    """Why JPEG cannot code `image` (it takes 8-bit grey or RGB), or None."""
    if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] in (1, 3)):
        return None
    channels = 1 if image.ndim == 2 else image.shape[2]
    return f"JPEG takes 8-bit grey or RGB images; this one is {image.dtype} with {channels} channels"


def _jpeg_input(image: np.ndarray) -> np.ndarray:
    return image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image


@dataclass(frozen=True, eq=False)
class CodingRequest:
    """Code the pyramid's source with `steps` (one per band) and/or sweep the `preset`'s steps."""

    pyramid: Pyramid
    steps: tuple[float, ...]
    preset: str
    code: bool = True
    curves: bool = True


@dataclass(frozen=True, eq=False)
class CodingResult:
    """The source coded with `steps`: its rate, quality, the rebuilt image and residual, and JPEG at
    (at most) the same rate (None, with `jpeg_note` saying why, when JPEG cannot code the image)."""

    image_id: int
    levels: int
    steps: tuple[float, ...]
    unit: float
    """One grey level: the image's value range / 255 (steps are shown in these units)."""
    band_bits: tuple[float, ...]
    bits_per_pixel: float
    psnr: float
    ssim: float
    rebuilt: Layer
    residual: Layer
    jpeg: RatePoint | None
    jpeg_image: Layer | None
    jpeg_note: str


@dataclass(frozen=True, eq=False)
class CodingCurves:
    """Rate-distortion points of the pyramid code (the preset's steps times each of SCALES) and of JPEG
    (each of QUALITIES), filled in as the job goes; `complete` when both sweeps are done."""

    image_id: int
    levels: int
    preset: str
    pyramid: tuple[RatePoint, ...]
    jpeg: tuple[RatePoint, ...]
    jpeg_note: str

    @property
    def complete(self) -> bool:
        return len(self.pyramid) == len(SCALES) and (bool(self.jpeg_note) or len(self.jpeg) == len(QUALITIES))


def code_source(req: CodingRequest) -> Iterator[Progress | CodingResult | CodingCurves]:
    """The code at the chosen steps first (what the sliders wait for), then the two curves, one point at
    a time so the plot fills as they come."""
    p = req.pyramid
    image = p.gaussian[0]
    note = jpeg_unavailable(image) or ""
    total = int(req.code) + (len(SCALES) + (0 if note else len(QUALITIES))) * int(req.curves)
    done = 0
    if req.code:
        yield Progress(done, total, f"Coding {p.levels} bands")
        code = code_pyramid(image, req.steps)
        jpeg = None if note else jpeg_at_rate(_jpeg_input(image), code.bits_per_pixel)
        done += 1
        yield CodingResult(
            image_id=p.image_id, levels=p.levels, steps=req.steps, unit=dtype_span(image.dtype) / 255,
            band_bits=code.band_bits, bits_per_pixel=code.bits_per_pixel, psnr=code.psnr, ssim=code.ssim,
            rebuilt=make_layer(to_dtype(code.rebuilt, image.dtype), 0),
            residual=make_layer(code.residual, 0, signed=True),
            jpeg=None if jpeg is None else jpeg[0],
            jpeg_image=None if jpeg is None else make_layer(jpeg[1].reshape(image.shape), 0), jpeg_note=note)
    if not req.curves:
        return
    steps = preset_steps(req.preset, p.levels, image.dtype)
    points: list[RatePoint] = []
    jpeg_points: list[RatePoint] = []
    for scale in SCALES:
        yield Progress(done, total, f"Rate-distortion curve: steps x {scale:g}")
        points += coding_curve(image, steps, (scale,))
        done += 1
        yield CodingCurves(p.image_id, p.levels, req.preset, tuple(points), (), note)
    for quality in () if note else QUALITIES:
        yield Progress(done, total, f"JPEG curve: quality {quality}")
        jpeg_points += jpeg_curve(_jpeg_input(image), (quality,))
        done += 1
        yield CodingCurves(p.image_id, p.levels, req.preset, tuple(points), tuple(jpeg_points), note)


def _points(points: tuple[RatePoint, ...], setting: str) -> list[dict[str, float | None]]:
    return [{setting: pt.setting, "bits_per_pixel": pt.bits_per_pixel, "psnr_db": _number(pt.psnr),
             "ssim": _number(pt.ssim)} for pt in points]


def _number(value: float) -> float | None:
    """A JSON-safe number: None for NaN (SSIM of an image smaller than its window) or inf."""
    return value if math.isfinite(value) else None


def _curve_table(name: str, points: tuple[RatePoint, ...]) -> NamedArray:
    return NamedArray(name, np.array([[pt.setting, pt.bits_per_pixel, pt.psnr, pt.ssim] for pt in points],
                                     np.float32), "coding",
                      details={"columns": ["setting", "bits_per_pixel", "psnr_db", "ssim"]})


def coding_arrays(result: CodingResult | CodingCurves | tuple[CodingResult | CodingCurves, ...],
                  _fmt: str) -> Arrays:
    """What the tab shows: the rebuilt image, its residual and JPEG at the same rate (of a code), the
    rate-distortion curves as tables (setting, bits per pixel, PSNR, SSIM per point), and the numbers."""
    arrays: list[NamedArray] = []
    parameters: dict[str, object] = {"tool": "coding"}
    for part in result if isinstance(result, tuple) else (result,):
        if isinstance(part, CodingResult):
            arrays += [NamedArray("rebuilt", part.rebuilt.data, "coding", level=0),
                       NamedArray("residual", part.residual.data, "coding", signed=True, level=0,
                                  details={"what": "source - rebuilt (rounded to the source dtype)"})]
            parameters.update(steps=list(part.steps), band_bits=list(part.band_bits),
                              bits_per_pixel=part.bits_per_pixel, psnr_db=_number(part.psnr),
                              ssim=_number(part.ssim))
            if part.jpeg is not None and part.jpeg_image is not None:
                arrays.append(NamedArray("jpeg_same_rate", part.jpeg_image.data, "coding", level=0))
                parameters["jpeg_same_rate"] = _points((part.jpeg,), "quality")[0]
        else:
            arrays += [_curve_table(f"{name}_rate_distortion", points)
                       for name, points in (("pyramid", part.pyramid), ("jpeg", part.jpeg)) if points]
            parameters.update(preset=part.preset, step_scales=list(SCALES),
                              pyramid_curve=_points(part.pyramid, "step_scale"),
                              jpeg_curve=_points(part.jpeg, "quality"))
    return tuple(arrays), parameters


def steps_for(pyramid: Pyramid, steps: tuple[float, ...] | None, preset: str) -> tuple[float, ...]:
    """The steps to use on `pyramid`: `steps` when there is one per band, else the preset's."""
    if steps is not None and len(steps) == pyramid.levels and all(s > 0 for s in steps):
        return tuple(float(s) for s in steps)
    return preset_steps(preset, pyramid.levels, pyramid.gaussian[0].dtype)


def _key(result: CodingResult | CodingCurves) -> Key:
    if isinstance(result, CodingResult):
        return ("coding", result.image_id, result.levels, result.steps)
    return ("coding_curves", result.image_id, result.levels, result.preset)


def _plan(state: State) -> Plan:
    p = state.pyramid
    preset = state.settings["coding_preset"]
    if preset not in CODING_PRESETS:
        preset = DEFAULT_PRESET
    steps = steps_for(p, state.settings["coding_steps"], preset)
    code, curves = ("coding", p.image_id, p.levels, steps), ("coding_curves", p.image_id, p.levels, preset)

    def request(missing: tuple[Key, ...]) -> CodingRequest:
        return CodingRequest(p, steps, preset, code in missing, curves in missing)

    return Plan((code, curves), code_source, request)


TOOL = Tool("coding", "Pyramid &coding", "pyramid_explorer.app.tabs.coding:CodingTab", _plan, _key,
            settings={"coding_preset": DEFAULT_PRESET, "coding_steps": None}, per_pyramid=("coding_steps",),
            complete=lambda result: not isinstance(result, CodingCurves) or result.complete,
            export=coding_arrays)
