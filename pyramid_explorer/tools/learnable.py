"""The Learnable tool: the three upsamplers decoders learn (transposed convolution, resize-convolution,
sub-pixel convolution) at their initialisations, applied to G[level + 1] and measured against G[level];
and a kernel of the user's own network, read from a file; and their export.

Random-initialised transposed and sub-pixel convolutions leave checkerboards (Odena, Dumoulin & Olah
2016; Shi et al. 2016), resize-convolution and ICNR (Aitken et al. 2017) do not: each view shows the
upsampler's transposed-convolution equivalent, its phase sums and the spectrum of its output.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.learnable import (
    METHODS,
    Checkerboard,
    Upsampler,
    bilinear_init,
    checkerboard,
    distance,
    icnr_distance,
    initialise,
    transposed_equivalent,
)
from pyramid_explorer.core.metrics import psnr, ssim
from pyramid_explorer.core.weights import LAYOUTS, KernelLoadError, load_upsampler, tensor_names
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool
from pyramid_explorer.tools.shared import level_spectrum

FACTOR = 2
"""Each pyramid level is half the size of the one below: the upsamplers enlarge G[level + 1] by 2."""
METHOD_TITLES = {"transposed": "Transposed convolution", "resize": "Resize-convolution",
                 "subpixel": "Sub-pixel convolution"}
INIT_TITLES = {"bilinear": "bilinear", "box": "box (nearest)", "random": "random", "icnr": "ICNR"}
OWN = "own"
"""The stem of the user's kernel in the export."""
TensorShapes = tuple[tuple[str, tuple[int, ...]], ...]
"""A kernel file's tensors: (name, shape) of each."""


def init_setting(method: str) -> str:
    """The name of the setting holding `method`'s initialisation."""
    return f"learnable_init_{method}"


@dataclass(frozen=True)
class OwnKernel:
    """A kernel of the user's network: the file, the method it is used as, the tensor (None: the file's
    first), its layout (core.weights.LAYOUTS; sub-pixel weights are always a Conv2d's) and the channel
    pair (None: the mean over that axis)."""

    path: str
    method: str = "transposed"
    name: str | None = None
    layout: str = "ConvTranspose2d"
    in_channel: int | None = None
    out_channel: int | None = None


def channel_counts(shape: tuple[int, ...], method: str, layout: str) -> tuple[int, int] | None:
    """(input channels, output channels) a weight of `shape` offers as `method` in `layout`; None for a
    weight without channel axes."""
    if len(shape) != 4:
        return None
    if method == "subpixel":
        return shape[1], max(1, shape[0] // FACTOR**2)
    return (shape[0], shape[1]) if layout == "ConvTranspose2d" else (shape[1], shape[0])


@dataclass(frozen=True, eq=False)
class UpsamplerView:
    """One upsampler applied to G[level + 1]: its output at G[level]'s size, its own weights drawn
    (`weights`: the sub-kernels of a sub-pixel convolution side by side, `weights_mosaic`), its
    transposed-convolution equivalent (`kernel`, `padding`), checkerboard, the spectrum of its output
    (with `peaks` as the core's `nyquist_peaks`), PSNR/SSIM against G[level], and its relative distances
    from the initialisations (name, value)."""

    method: str
    title: str
    upsampler: Upsampler
    image: Layer
    weights: Layer
    kernel: Layer
    padding: int
    board: Checkerboard
    spectrum: Layer
    peaks: tuple[tuple[int, int, float], ...]
    spectrum_note: str
    psnr: float
    ssim: float
    distances: tuple[tuple[str, float], ...]


@dataclass(frozen=True, eq=False)
class LearnableRequest:
    pyramid: Pyramid
    level: int
    inits: tuple[tuple[str, str], ...]
    """(method, initialisation) of each view, in METHODS order."""
    seed: int = 0
    own: OwnKernel | None = None


@dataclass(frozen=True, eq=False)
class LearnableResult:
    """The views of the three methods, and of the user's kernel when one is loaded (`own`; `own_note`
    says what was read, or in one line why nothing could be; `tensors` are the file's (name, shape))."""

    image_id: int
    levels: int
    level: int
    inits: tuple[tuple[str, str], ...]
    seed: int
    own_kernel: OwnKernel | None
    views: tuple[UpsamplerView, ...]
    own: UpsamplerView | None = None
    own_note: str = ""
    tensors: TensorShapes = ()


def _distances(upsampler: Upsampler) -> tuple[tuple[str, float], ...]:
    out = [("bilinear", distance(upsampler, bilinear_init(upsampler.method, upsampler.factor)))]
    if upsampler.method == "subpixel":
        out.append(("ICNR", icnr_distance(upsampler)))
    return tuple(out)


def weights_mosaic(upsampler: Upsampler) -> np.ndarray:
    """The upsampler's weights as one 2-D array: a kernel as it is; the ``(f*f, k, k)`` sub-kernels of a
    sub-pixel convolution as an f x f grid, sub-kernel ``i*f + j`` (output phase (i, j)) at row i,
    column j, one zero row and column between them."""
    weights = upsampler.weights
    if weights.ndim == 2:
        return weights
    f, k = upsampler.factor, weights.shape[-1]
    grid = np.zeros((f * (k + 1) - 1, f * (k + 1) - 1), np.float32)
    for index, sub in enumerate(weights):
        row, col = divmod(index, f)
        grid[row * (k + 1):row * (k + 1) + k, col * (k + 1):col * (k + 1) + k] = sub
    return grid


def view_of(upsampler: Upsampler, title: str, pyramid: Pyramid, level: int) -> UpsamplerView:
    """`upsampler` applied to G[level + 1] and measured against G[level]."""
    fine, coarse = pyramid.gaussian[level], pyramid.gaussian[level + 1]
    up = upsampler.apply(coarse)  # exactly twice the size: the spectrum needs the period-2 grid whole
    h, w = fine.shape[:2]
    out = up[:h, :w]
    kernel, padding = transposed_equivalent(upsampler)
    spectrum, peaks, where = level_spectrum(up)
    return UpsamplerView(
        method=upsampler.method, title=title, upsampler=upsampler,
        image=make_layer(to_dtype(out, fine.dtype), level),
        weights=make_layer(weights_mosaic(upsampler), 0, signed=True, scale=1.0),
        kernel=make_layer(kernel.astype(np.float32), 0, signed=True, scale=1.0), padding=padding,
        board=checkerboard(upsampler), spectrum=spectrum, peaks=peaks,
        spectrum_note=f"log(1 + |FFT|) of G[{level + 1}] upsampled ({where}, periodic part)",
        psnr=psnr(out, fine, pyramid.data_range), ssim=ssim(out, fine, pyramid.data_range),
        distances=_distances(upsampler))


def _channel_text(index: int | None) -> str:
    return "mean" if index is None else str(index)


def _read_own(own: OwnKernel, tensors: TensorShapes) -> tuple[Upsampler, str]:
    """The user's upsampler from the file holding `tensors`, and what was read (one line);
    KernelLoadError otherwise."""
    names = [name for name, _ in tensors]
    if not names:
        raise KernelLoadError(own.path, "the file holds no tensor")
    name = own.name if own.name in names else names[0]
    upsampler = load_upsampler(own.path, own.method, FACTOR, name or None, own.layout, own.in_channel,
                               own.out_channel)
    if own.method == "transposed":  # centre it as PyTorch's padding = (k - stride) / 2 would
        k = upsampler.weights.shape[0]
        upsampler = Upsampler("transposed", FACTOR, upsampler.weights, max(0, math.ceil((k - FACTOR) / 2)))
    shape = dict(tensors)[name]
    layout = ("a sub-pixel Conv2d (C*4, C_in, k, k)" if own.method == "subpixel"
              else f"{own.layout} {LAYOUTS[own.layout]}")
    tensor = f"tensor {name!r} " if name else ""
    note = (f"{os.path.basename(own.path)}: {tensor}{shape} read as {layout}; input channel "
            f"{_channel_text(own.in_channel)}, output channel {_channel_text(own.out_channel)}")
    if upsampler.padding:
        note += f"; padding {upsampler.padding}"
    return upsampler, note


def learnable_views(req: LearnableRequest) -> Iterator[Progress | LearnableResult]:
    """Each method at its initialisation, then the user's kernel, applied to G[level + 1]."""
    p, i = req.pyramid, req.level
    if not 0 <= i < p.levels - 1:
        raise ValueError(f"level {i} has no coarser level to upsample (levels 0..{p.levels - 2})")
    total = len(req.inits) + 1
    views = []
    for n, (method, init) in enumerate(req.inits):
        yield Progress(n, total, f"{METHOD_TITLES[method]}, {INIT_TITLES[init]} initialisation")
        upsampler = initialise(method, init, FACTOR, seed=req.seed)
        seeded = f", seed {req.seed}" if init in ("random", "icnr") else ""
        views.append(view_of(upsampler, f"{METHOD_TITLES[method]} ({INIT_TITLES[init]}{seeded})", p, i))
    own, note = None, ""
    tensors: TensorShapes = ()
    if req.own is not None:
        yield Progress(total - 1, total, "Your kernel")
        try:
            tensors = tuple(tensor_names(req.own.path).items())  # kept when the chosen one is unusable
            upsampler, note = _read_own(req.own, tensors)
            own = view_of(upsampler, f"Your kernel as {METHOD_TITLES[req.own.method].lower()}", p, i)
        except KernelLoadError as error:
            note = str(error)
    yield LearnableResult(image_id=p.image_id, levels=p.levels, level=i, inits=req.inits, seed=req.seed,
                          own_kernel=req.own, views=tuple(views), own=own, own_note=note, tensors=tensors)


def _finite(value: float) -> float | None:
    """A number for the manifest's JSON, which holds no inf or NaN."""
    return value if math.isfinite(value) else None


def _view_arrays(stem: str, view: UpsamplerView, level: int, fmt: str) -> list[NamedArray]:
    arrays = [NamedArray(f"{stem}_upsampled", view.image.data, "learnable", level=level,
                         details={"what": view.title}),
              NamedArray(f"{stem}_kernel", view.kernel.data, "learnable", signed=True,
                         details={"what": "transposed-convolution equivalent", "padding": view.padding}),
              NamedArray(f"{stem}_phase_sums", view.board.phase_sums.astype(np.float32), "learnable",
                         details={"verdict": view.board.verdict}),
              NamedArray(f"{stem}_spectrum", view.spectrum.data, "learnable", level=level,
                         details={"what": view.spectrum_note})]
    if fmt != "png":  # the layer's own weights; sub-pixel ones are (4, k, k), not an image
        arrays.append(NamedArray(f"{stem}_weights", view.upsampler.weights, "learnable",
                                 details={"method": view.method}))
    return arrays


def _view_parameters(view: UpsamplerView) -> dict[str, object]:
    return {"method": view.method, "title": view.title, "psnr": _finite(view.psnr),
            "ssim": _finite(view.ssim), "phase_sums": view.board.phase_sums.tolist(),
            "checkerboard_ratio": _finite(view.board.ratio), "verdict": view.board.verdict,
            "distances": dict(view.distances)}


def learnable_arrays(result: LearnableResult, fmt: str) -> Arrays:
    """Every view's output, kernel, phase sums and spectrum (and its weights, except in PNG), and the
    numbers shown."""
    arrays = []
    for view in result.views:
        arrays += _view_arrays(view.method, view, result.level, fmt)
    if result.own is not None:
        arrays += _view_arrays(OWN, result.own, result.level, fmt)
    own = None if result.own is None else {**_view_parameters(result.own), "read": result.own_note}
    return tuple(arrays), {"tool": "learnable", "level": result.level, "factor": FACTOR, "seed": result.seed,
                           "views": [_view_parameters(v) for v in result.views], "own_kernel": own}


def _inits(settings: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple((method, settings[init_setting(method)]) for method in METHODS)


def _key(result: LearnableResult) -> Key:
    return ("learnable", result.image_id, result.levels, result.level, result.inits, result.seed,
            result.own_kernel)


def _plan(state: State) -> Plan:
    p, level = state.pyramid, state.level
    if level >= p.levels - 1:
        return Plan(message=f"Level {level} is the coarsest: there is no G[{level + 1}] to upsample. "
                            "Select a finer level.")
    inits, seed = _inits(state.settings), state.settings["learnable_seed"]
    own = state.settings["learnable_own"]
    return Plan((("learnable", p.image_id, p.levels, level, inits, seed, own),), learnable_views,
                lambda _: LearnableRequest(p, level, inits, seed, own))


TOOL = Tool("learnable", "&Learnable", "pyramid_explorer.app.tabs.learnable:LearnableTab", _plan, _key,
            settings={**{init_setting(method): "random" for method in METHODS},
                      "learnable_seed": 0, "learnable_own": None},
            export=learnable_arrays)
