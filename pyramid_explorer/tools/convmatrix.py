"""The Transposed convolution tool (Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
learning"): where each input pixel's kernel lands, frame by frame, the overlap counts and the output-size
formula; the matrix view (C, C^T, C^T C) on a small input, C^T @ x checked against `transposed_conv2d`,
and what C^T C does to G[level]; and their export."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from pyramid_explorer.core.convmatrix import (
    Geometry,
    conv_matrix,
    overlap_counts,
    placement_frames,
    pytorch_output_shape,
    render_frames,
    round_trip,
    size_formula,
)
from pyramid_explorer.core.deconv import KERNELS, DeconvSettings, deconv_kernel
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.upsampling import transposed_conv2d
from pyramid_explorer.display import Layer, channel_mean, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool

MAX_INPUT = 8
"""Largest side of the small input: one animation frame per input pixel."""
MAX_GRAM = 2500
"""Largest output pixel count whose C^T C (a square of that side) is drawn."""
CELL = 12
"""Screen pixels per output pixel in the rendered (and saved) animation frames."""
DEFAULTS = {"convmatrix_kernel_size": 3, "convmatrix_stride": 2, "convmatrix_padding": 0,
            "convmatrix_output_padding": 0, "convmatrix_input": 4, "convmatrix_weights": "bilinear"}


@dataclass(frozen=True, eq=False)
class ConvMatrixRequest:
    pyramid: Pyramid
    level: int
    geometry: Geometry
    weights: str


@dataclass(frozen=True, eq=False)
class ConvMatrixResult:
    """Everything the tab shows for one geometry and kernel.

    `pictures` are `render_frames` of the placement frames (RGB uint8, one per input pixel: what the
    animation is made of) and `frames` the same as layers; `overlaps` the overlap counts; `c`,
    `c_transposed` and `gram` (None when too large) the matrices; `x` the small input (G[level]'s channel
    mean resized to the input size) and `max_difference` the largest |C^T x - transposed_conv2d(x)|;
    `round_trip` is C^T C applied to G[level] (None, with `round_trip_note`, when the kernel does not
    fit it).
    """

    image_id: int
    level: int
    geometry: Geometry
    weights: str
    kernel: np.ndarray
    formula: str
    pytorch_shape: tuple[int, int] | None
    pictures: tuple[np.ndarray, ...]
    frames: tuple[Layer, ...]
    overlaps: Layer
    c: Layer
    c_transposed: Layer
    gram: Layer | None
    x: np.ndarray
    max_difference: float
    source: Layer
    round_trip: Layer | None
    round_trip_note: str
    round_trip_gain: float
    """Mean of C^T C x over the mean of G[level] (NaN without a round trip, or for a black level)."""


def _small_input(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """G[level] as a small grey input: its channel mean, area-averaged to `shape` (rows, cols), float64."""
    grey = channel_mean(image.astype(np.float32)) if image.ndim == 3 else image.astype(np.float32)
    return cv2.resize(grey, (shape[1], shape[0]), interpolation=cv2.INTER_AREA).astype(np.float64)


def explain(req: ConvMatrixRequest) -> Iterator[Progress | ConvMatrixResult]:
    """The frames, overlaps and formula of `geometry`, its matrices and their check, and C^T C on G[level]."""
    g, p, i = req.geometry, req.pyramid, req.level
    kernel = deconv_kernel(DeconvSettings(g.kernel_shape[0], g.stride, req.weights))
    yield Progress(0, 3, "Placement frames")
    pictures = render_frames(g, placement_frames(g), CELL)
    counts = overlap_counts(g)
    yield Progress(1, 3, "Convolution matrix")
    c = conv_matrix(g, kernel)
    x = _small_input(p.gaussian[i], g.input_shape)
    check = transposed_conv2d(x.astype(np.float32), kernel, g.stride, g.padding, g.output_padding)
    difference = float(np.abs((c.T @ x.ravel()).reshape(g.output_shape) - check).max())
    gram = make_layer((c.T @ c).astype(np.float32), 0, scale=1.0) if c.shape[1] <= MAX_GRAM else None
    yield Progress(2, 3, f"C^T C on G[{i}]")
    source = p.gaussian[i]
    back: np.ndarray | None = None
    try:
        trip = round_trip(source, kernel, g.stride, g.padding)
    except ValueError as error:
        note, gain = f"C^T C cannot run on G[{i}]: {error}", math.nan
    else:
        back, mean = trip, float(source.mean())
        note, gain = "", float(trip.mean()) / mean if mean else math.nan
    yield ConvMatrixResult(
        image_id=p.image_id, level=i, geometry=g, weights=req.weights, kernel=kernel,
        formula=size_formula(g.input_shape[0], g.kernel_shape[0], g.stride, g.padding, g.output_padding),
        pytorch_shape=pytorch_output_shape(g), pictures=tuple(pictures),
        frames=tuple(make_layer(pic, 0, scale=1.0) for pic in pictures),
        overlaps=make_layer(counts.astype(np.float32), 0, scale=1.0),
        c=make_layer(c.astype(np.float32), 0, scale=1.0),
        c_transposed=make_layer(np.ascontiguousarray(c.T, np.float32), 0, scale=1.0), gram=gram, x=x,
        max_difference=difference, source=make_layer(source, i),
        round_trip=None if back is None else make_layer(back, i), round_trip_note=note, round_trip_gain=gain)


def convmatrix_arrays(result: ConvMatrixResult, _fmt: str) -> Arrays:
    """The overlap counts, C, C^T C (when drawn), the small input and C^T C applied to G[level]; the
    geometry, kernel, formula and check as parameters (the animation is saved from the tab)."""
    g = result.geometry
    arrays = [NamedArray("overlap_counts", result.overlaps.data.astype(np.uint16), "convmatrix"),
              NamedArray("conv_matrix", result.c.data, "convmatrix",
                         details={"what": "C: rows = the convolution's output pixels (the small input)"}),
              NamedArray("small_input", result.x.astype(np.float32), "convmatrix")]
    if result.gram is not None:
        arrays.append(NamedArray("ct_c", result.gram.data, "convmatrix"))
    if result.round_trip is not None:
        arrays.append(NamedArray("ct_c_image", result.round_trip.data, "convmatrix", level=result.level,
                                 details={"what": "C^T C applied to G[level] (core.convmatrix.round_trip)"}))
    return tuple(arrays), {
        "tool": "convmatrix", "level": result.level, "input_shape": list(g.input_shape),
        "kernel_size": g.kernel_shape[0], "stride": g.stride, "padding": g.padding,
        "output_padding": g.output_padding, "output_shape": list(g.output_shape), "formula": result.formula,
        "pytorch_output_shape": None if result.pytorch_shape is None else list(result.pytorch_shape),
        "weights": result.weights, "kernel": result.kernel.tolist(),
        "max_difference_ct_x_vs_transposed_conv2d": result.max_difference}


def geometry_of(s: Mapping[str, Any]) -> Geometry:
    """The Geometry the settings describe; ValueError naming what PyTorch would refuse."""
    side = int(s["convmatrix_input"])
    kernel = int(s["convmatrix_kernel_size"])
    return Geometry((side, side), (kernel, kernel), int(s["convmatrix_stride"]), int(s["convmatrix_padding"]),
                    int(s["convmatrix_output_padding"]))


def _key(result: ConvMatrixResult) -> Key:
    return ("convmatrix", result.image_id, result.level, result.geometry, result.weights)


def _plan(state: State) -> Plan:
    p, level = state.pyramid, state.level
    weights = state.settings["convmatrix_weights"]
    weights = weights if weights in KERNELS else "bilinear"
    try:
        geometry = geometry_of(state.settings)
        DeconvSettings(geometry.kernel_shape[0], geometry.stride, weights)  # its kernel can be made
    except ValueError as error:
        return Plan(message=f"Not a valid transposed convolution: {error}.")
    key = ("convmatrix", p.image_id, level, geometry, weights)
    return Plan((key,), explain, lambda _: ConvMatrixRequest(p, level, geometry, weights))


TOOL = Tool("convmatrix", "&Transposed conv", "pyramid_explorer.app.tabs.convmatrix:ConvMatrixTab", _plan,
            _key, settings=DEFAULTS, export=convmatrix_arrays)
