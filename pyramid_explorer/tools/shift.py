"""The Shift-equivariance tool (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again"): how far
each downsampler's output moves when G[level] is shifted by 0..max pixels, and the two outputs of one
downsampler that differ most; and their export."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.equivariance import DIRECTIONS, DOWNSAMPLERS, shift_study
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool

NAMES = {"stride2": "stride-2 subsampling", "average": "2x2 average pool", "maxpool": "2x2 max pool",
         "pyrdown": "pyrDown (5x5 blur, stride 2)", "maxblurpool": "max-blur-pool (max, blur, stride 2)"}
"""Each downsampler of `core.equivariance.DOWNSAMPLERS` as the tab names it."""
MAX_SHIFT = 16
DEFAULT_MAX_SHIFT = 8


@dataclass(frozen=True, eq=False)
class ShiftRequest:
    pyramid: Pyramid
    level: int
    direction: str
    max_shift: int


@dataclass(frozen=True, eq=False)
class ShiftCurve:
    """One downsampler's study: RMS and PSNR (dB) from the unshifted output per shift, and its two most
    different outputs (rounded to the image's dtype, on G[level]'s grid) and their difference."""

    downsampler: str
    shifts: tuple[int, ...]
    rms: np.ndarray
    psnr: np.ndarray
    pair: tuple[int, int]
    pair_rms: float
    first: Layer
    second: Layer
    difference: Layer


@dataclass(frozen=True, eq=False)
class ShiftResult:
    """The curves done so far, in DOWNSAMPLERS order; `complete` once every downsampler has one."""

    image_id: int
    level: int
    direction: str
    max_shift: int
    size: tuple[int, int]
    """(width, height) measured: G[level] cropped to even sides."""
    curves: tuple[ShiftCurve, ...]

    @property
    def complete(self) -> bool:
        return len(self.curves) == len(DOWNSAMPLERS)


def study_shifts(req: ShiftRequest) -> Iterator[Progress | ShiftResult]:
    """`core.equivariance.shift_study` of every downsampler on G[level], one result per curve done."""
    p, i = req.pyramid, req.level
    image = p.gaussian[i]
    h, w = image.shape[:2]
    size = (w - w % 2, h - h % 2)
    curves: list[ShiftCurve] = []
    for done, name in enumerate(DOWNSAMPLERS):
        yield Progress(done, len(DOWNSAMPLERS), f"Shift study: {NAMES[name]}")
        study = shift_study(image, name, req.max_shift, req.direction)
        first, second = (to_dtype(out.reshape(out.shape[:2] + image.shape[2:]), image.dtype)
                         for out in study.pair_outputs)
        change = second.astype(np.float32) - first.astype(np.float32)
        layers = make_layer(first, i), make_layer(second, i), make_layer(change, i, signed=True)
        curves.append(ShiftCurve(name, study.shifts, study.rms, study.psnr, study.pair, study.pair_rms,
                                 *layers))
        yield ShiftResult(p.image_id, i, req.direction, req.max_shift, size, tuple(curves))


def _number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def shift_arrays(result: ShiftResult, _fmt: str) -> Arrays:
    """Each downsampler's two most different outputs, and every curve (RMS, PSNR per shift) as
    parameters; PSNR at shift 0 (identical) is written as null."""
    arrays = []
    for curve in result.curves:
        for shift, layer in zip(curve.pair, (curve.first, curve.second), strict=True):
            name = f"{curve.downsampler}_shift{shift}"
            arrays.append(NamedArray(name, layer.data, "shift", level=result.level))
    curves = {c.downsampler: {"name": NAMES[c.downsampler], "rms": [float(v) for v in c.rms],
                              "psnr_db": [_number(v) for v in c.psnr], "most_different": list(c.pair),
                              "most_different_rms": c.pair_rms} for c in result.curves}
    return tuple(arrays), {"tool": "shift", "level": result.level, "direction": result.direction,
                           "shifts": list(range(result.max_shift + 1)), "size": list(result.size),
                           "curves": curves}


def _key(result: ShiftResult) -> Key:
    return ("shift", result.image_id, result.level, result.direction, result.max_shift)


def _plan(state: State) -> Plan:
    p, level = state.pyramid, state.level
    h, w = p.gaussian[level].shape[:2]
    if min(h, w) < 2:
        return Plan(message=f"Level {level} ({w} x {h}) is too small to halve. Select a finer level.")
    direction = state.settings["shift_direction"]
    direction = direction if direction in DIRECTIONS else "diagonal"
    max_shift = int(min(max(1, state.settings["shift_max"]), MAX_SHIFT))
    key = ("shift", p.image_id, level, direction, max_shift)
    return Plan((key,), study_shifts, lambda _: ShiftRequest(p, level, direction, max_shift))


TOOL = Tool("shift", "&Shift equivariance", "pyramid_explorer.app.tabs.shift:ShiftTab", _plan, _key,
            settings={"shift_direction": "diagonal", "shift_max": DEFAULT_MAX_SHIFT},
            complete=lambda result: result.complete, export=shift_arrays)
