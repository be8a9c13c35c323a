"""The Compare tool: every upsampling mode (and the free transposed convolution) of G[level + 1]
against G[level], images first and their PSNR/SSIM after."""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

import cv2
import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.budget import compare_pixel_budget
from pyramid_explorer.core.deconv import (
    DEFAULT_DECONV,
    DeconvSettings,
    aligned,
    deconv_offset,
    deconv_output,
    twin_mode,
)
from pyramid_explorer.core.level_input import (
    unavailable,
    upsample_level,
)
from pyramid_explorer.core.metrics import SsimBatch, psnr
from pyramid_explorer.core.upsampling import MODES, same_result
from pyramid_explorer.display import Layer, channel_mean, make_layer
from pyramid_explorer.jobs import Progress, Pyramid, parallel_steps
from pyramid_explorer.tools.base import Key, Plan, State, Tool

COMPARE_THREADS = max(1, min(4, os.cpu_count() or 1))
"""Threads one comparison runs on: every core (a few at most; the GUI thread mostly waits)."""
METRIC_PARTS = 16
"""Steps the PSNR/SSIM of a level's candidates is split into, besides one PSNR step per candidate: at 4K
RGB each takes about 0.2 s of one core, so a superseded comparison stops within that."""


@dataclass(frozen=True, eq=False)
class ModeResult:
    """G[level + 1] brought back to the size of G[level] by `mode`, and its difference from G[level].

    The difference layer holds the mean over colour channels (what is drawn), to halve the memory
    of a comparison; it is None until made after every panel's image, and `psnr`/`ssim` are None until
    the metrics have run. `cropped` says the
    comparison covers a centred part of the level only (memory budget).
    """

    image_id: int
    level: int
    mode: str
    image: Layer
    difference: Layer | None
    cropped: bool
    psnr: float | None = None
    ssim: float | None = None



@dataclass(frozen=True, eq=False)
class DeconvResult:
    """The free transposed convolution of G[level + 1]; difference and metrics only at stride 2 (those of
    its twin mode when it has one and that mode is compared with it: see `compare`), None until made."""

    image_id: int
    level: int
    settings: DeconvSettings
    image: Layer
    difference: Layer | None
    cropped: bool
    psnr: float | None = None
    ssim: float | None = None


@dataclass(frozen=True, eq=False)
class CompareRequest:
    """Upsample G[level + 1] by each of `modes` (and the free transposed convolution unless None).

    `max_pixels` bounds the part of G[level] compared (a centred crop), so a very large level
    cannot exhaust memory; None compares the whole level. `threads` run the comparisons (1: one
    after another in the job's thread).
    """

    pyramid: Pyramid
    level: int
    modes: tuple[str, ...] = MODES
    deconv: DeconvSettings | None = DEFAULT_DECONV
    max_pixels: int | None = None
    threads: int = COMPARE_THREADS



def _compare_region(shape: tuple[int, ...], max_pixels: int | None) -> tuple[int, int, int, int] | None:
    """(top, left, height, width) of a centred crop of a level with at most max_pixels, corners at
    even coordinates so the crop of the next level is exactly its half; None when it all fits."""
    h, w = shape[:2]
    if max_pixels is None or h * w <= max_pixels:
        return None
    f = math.sqrt(max_pixels / (h * w))
    ch, cw = max(2, int(h * f) & ~1), max(2, int(w * f) & ~1)
    return ((h - ch) // 2) & ~1, ((w - cw) // 2) & ~1, min(ch, h), min(cw, w)



def compare(req: CompareRequest) -> Iterator[Progress | ModeResult | DeconvResult]:
    """Each mode's upsampling of G[level + 1] (unpool: of max-pooled G[level]) against G[level].

    Yields every image as soon as it exists (so the panels fill quickly), then the same results again
    with their difference from G[level], and again with PSNR and SSIM filled in (SSIM is the slow part).
    The steps run on `req.threads` threads: first the images, then the differences (drawn only when asked
    for, so every image comes before them) and the metrics of all panels at once (`METRIC_PARTS` steps of
    an `SsimBatch`, which filters each tile of G[level] once for every candidate, and a PSNR step per
    candidate). The images are kept in the level's dtype, rounded and saturated as saving them would; the
    difference and the metrics come from the exact float results, held until the metrics are done (for a
    float level they are the images themselves). A transposed convolution that is a compared mode's
    (`twin_mode`: FCN's bilinear kernel 4 at stride 2, the default) shows its own output, with that mode's
    difference and numbers: the same operation computed another way, equal to float32 rounding (one SSIM
    less). A mode whose result is another's value for value (`same_result`: area at a whole factor is
    nearest) shows its own image with that mode's difference and numbers, which come with that mode's.
    """
    p, i = req.pyramid, req.level
    if not 0 <= i < p.levels - 1:
        raise ValueError(f"level {i} has no coarser level to compare from (levels 0..{p.levels - 2})")
    region = _compare_region(p.gaussian[i].shape, req.max_pixels)
    if region is None:
        top, left, (height, width) = 0, 0, p.gaussian[i].shape[:2]
        fine, coarse = p.gaussian[i], p.gaussian[i + 1]
    else:
        top, left, height, width = region
        fine = p.gaussian[i][top:top + height, left:left + width]
        coarse = p.gaussian[i + 1][top // 2:(top + height + 1) // 2, left // 2:(left + width + 1) // 2]
    origin = (left * 2**i - 2**i / 2, top * 2**i - 2**i / 2)
    cropped = region is not None
    coarse32 = np.ascontiguousarray(coarse, np.float32)  # what every mode upsamples, converted once
    shares = _shared_numbers(req.modes, coarse, coarse32, (width, height))
    candidates: dict[str, np.ndarray] = {}  # the float results the numbers are computed from, by panel

    def mode_image(mode: str) -> ModeResult:
        up = upsample_level(fine, coarse32, mode, size=(width, height))
        if mode not in shares:
            candidates[mode] = up
        return ModeResult(image_id=p.image_id, level=i, mode=mode, cropped=cropped,
                          image=make_layer(to_dtype(up, fine.dtype), i, origin=origin), difference=None)

    images: list[Callable[[], ModeResult | DeconvResult]] = [partial(mode_image, mode) for mode in req.modes]
    if req.deconv is not None:
        settings = req.deconv
        if (twin := twin_mode(settings)) in req.modes:
            shares[_DECONV] = twin

        def deconv_image() -> DeconvResult:
            output = deconv_output(coarse32, settings)
            if settings.stride == 2 and _DECONV not in shares:  # a twin shows its mode's difference, numbers
                candidates[_DECONV] = aligned(output, settings, height, width)
            return _deconv(p.image_id, i, settings, coarse.dtype, output, origin, cropped)

        images.append(deconv_image)
    shown: dict[str, ModeResult | DeconvResult] = {}
    for done, item in enumerate(parallel_steps(images, req.threads), start=1):
        yield Progress(done, len(images), f"Level {i}: {done} of {len(images)} images")
        shown[_name(item)] = item
        yield item
    if not candidates:
        return
    names = [name for name in (*req.modes, _DECONV) if name in candidates]  # filled in any order
    reference_mean = channel_mean(fine)  # difference of means = mean of differences, 3x cheaper

    def difference(name: str) -> Layer:
        return make_layer(_difference(candidates[name], reference_mean), i, signed=True, origin=origin)

    def sharing(name: str) -> tuple[str, ...]:
        """The panel `name` and those showing its result's difference and numbers."""
        return (name, *(panel for panel, leader in shares.items() if leader == name))

    batch = _ssim_batch(fine, [candidates[name] for name in names], p.data_range)
    parts = batch.parts(METRIC_PARTS)
    steps: list[Callable[[], Layer | float | None]] = [
        *(partial(difference, name) for name in names), *parts,
        *(partial(psnr, fine, candidates[name], p.data_range) for name in names)]
    outputs = []
    for done, output in enumerate(parallel_steps(steps, req.threads), start=1):
        outputs.append(output)
        yield Progress(done, len(steps), f"Level {i}: differences, PSNR, SSIM: {done} of {len(steps)} steps")
        if isinstance(output, Layer):  # the differences come first, each shown as soon as it exists
            for panel in sharing(names[done - 1]):
                shown[panel] = dataclasses.replace(shown[panel], difference=output)
                yield shown[panel]
    psnrs = [value for value in outputs[len(names) + len(parts):] if isinstance(value, float)]
    for name, psnr_value, ssim_value in zip(names, psnrs, batch.ssim(), strict=True):
        for panel in sharing(name):
            yield dataclasses.replace(shown[panel], psnr=psnr_value, ssim=ssim_value)


_DECONV = "transposed convolution"


def _shared_numbers(modes: tuple[str, ...], coarse: np.ndarray, coarse32: np.ndarray,
                    size: tuple[int, int]) -> dict[str, str]:
    """The compared modes whose result is another compared mode's (`same_result`), each mapped to that
    mode: they share its numbers (one SSIM less each). None for a float level holding NaN or infinity."""
    shares = {mode: leader for mode in modes if (leader := same_result(mode, coarse32.shape, size)) in modes}
    if shares and coarse.dtype.kind == "f" and not cv2.checkRange(coarse32)[0]:
        return {}
    return shares


def _name(result: ModeResult | DeconvResult) -> str:
    return result.mode if isinstance(result, ModeResult) else _DECONV


def _ssim_batch(fine: np.ndarray, candidates: list[np.ndarray], data_range: float) -> SsimBatch:
    """G[level]'s SSIM against every candidate, computed by the comparison's metrics steps."""
    return SsimBatch(fine, candidates, data_range)


def _difference(up: np.ndarray, reference_mean: np.ndarray) -> np.ndarray:
    """The channel mean of an upsampled level minus the level's (`reference_mean`), as a new array."""
    mean = channel_mean(up)  # a new array, but `up` itself for a grey level
    with np.errstate(invalid="ignore"):  # inf - inf (float images with inf) is NaN, by design
        return np.subtract(mean, reference_mean, out=None if mean is up else mean)


def _deconv(image_id: int, level: int, settings: DeconvSettings, dtype: np.dtype, output: np.ndarray,
            origin: tuple[float, float], cropped: bool) -> DeconvResult:
    """The free transposed convolution's result without its difference: its `output`, placed in source
    coordinates and kept in the level's `dtype`."""
    pixel = 2 ** (level + 1) / settings.stride  # output pixel width in source pixels
    # the coarse crop's outer corner lies half a fine pixel outside the fine crop's (`origin`), and the
    # output starts `deconv_offset` output pixels before the coarse corner
    start = 2**level / 2 + deconv_offset(settings) * pixel
    image = make_layer(to_dtype(output, dtype), level, scale=pixel,
                       origin=(origin[0] - start, origin[1] - start))
    return DeconvResult(image_id=image_id, level=level, settings=settings, image=image, difference=None,
                        cropped=cropped)




def _key(result: ModeResult | DeconvResult) -> Key:
    if isinstance(result, ModeResult):
        return ("mode", result.image_id, result.level, result.mode)
    return ("deconv", result.image_id, result.level, result.settings)


def _complete(result: ModeResult | DeconvResult) -> bool:
    """Done once its difference and metrics are in (a transposed convolution at a stride other than 2 has
    neither)."""
    return result.psnr is not None or (isinstance(result, DeconvResult) and result.settings.stride != 2)


def _plan(state: State) -> Plan:
    p, level, deconv = state.pyramid, state.level, state.settings["deconv"]
    if level >= p.levels - 1:
        return Plan(message=f"Level {level} is the coarsest level built: there is no G[{level + 1}] to "
                            "upsample. Select a finer level or build more levels.")
    fine_shape = p.gaussian[level].shape
    reasons = {mode: unavailable(mode, fine_shape, level) for mode in MODES}
    wanted = tuple(("mode", p.image_id, level, mode) for mode in MODES if reasons[mode] is None)
    wanted += (("deconv", p.image_id, level, deconv),)
    budget = compare_pixel_budget(p.gaussian[0].shape, state.memory_budget)

    def request(missing: tuple[Key, ...]) -> CompareRequest:
        modes = tuple(str(key[3]) for key in missing if key[0] == "mode")  # a mode key ends in its name
        need_deconv = any(key[0] == "deconv" for key in missing)
        return CompareRequest(p, level, modes, deconv if need_deconv else None, budget)

    return Plan(wanted, compare, request,
                unavailable=tuple((mode, why) for mode, why in reasons.items() if why is not None))


TOOL = Tool("compare", "&Compare modes", "pyramid_explorer.app.tabs.compare:CompareTab", _plan, _key,
            settings={"deconv": DEFAULT_DECONV}, complete=_complete)
