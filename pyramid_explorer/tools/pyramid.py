"""The Pyramid tool: one level's Gaussian image, Laplacian band and reconstruction residual, or all
levels of one kind packed in a mosaic."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.export import mosaic_layout
from pyramid_explorer.core.pyramid import reconstruct, residual
from pyramid_explorer.display import Layer, channel_mean, display_limits, finite_max, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Key, Plan, State, Tool

MOSAIC_KINDS = ("gaussian", "laplacian")


@dataclass(frozen=True, eq=False)
class LevelResult:
    """What the pyramid view shows for one level."""

    image_id: int
    levels: int
    level: int
    gaussian: Layer
    laplacian: Layer
    residual: Layer
    max_abs_residual: float
    differing_pixels: int


@dataclass(frozen=True, eq=False)
class MosaicResult:
    """All levels of one kind packed in the classic layout; `boxes` are (x, y, w, h) per level."""

    image_id: int
    levels: int
    kind: str
    layer: Layer
    boxes: tuple[tuple[int, int, int, int], ...]



@dataclass(frozen=True, eq=False)
class LevelRequest:
    pyramid: Pyramid
    level: int


@dataclass(frozen=True, eq=False)
class MosaicRequest:
    pyramid: Pyramid
    kind: str = "gaussian"




def level_view(req: LevelRequest) -> Iterator[Progress | LevelResult]:
    """Gaussian level, Laplacian band and reconstruction residual of one level, ready to draw.

    The residual is G[level] minus the image rebuilt from bands level..end (the core rounds and clips
    the rebuild to the input dtype for integer images): all zeros when exact.
    """
    p, i = req.pyramid, req.level
    if not 0 <= i < p.levels:
        raise ValueError(f"level {i} is out of range 0..{p.levels - 1}")
    yield Progress(0, 3, f"Level {i}: Gaussian")
    g = make_layer(p.gaussian[i], i)
    yield Progress(1, 3, f"Level {i}: Laplacian band")
    band = p.laplacian[i]
    lap = make_layer(band, i, signed=i < p.levels - 1)
    yield Progress(2, 3, f"Level {i}: reconstruction residual")
    res = residual(p.gaussian[i], reconstruct(p.laplacian[i:]))
    mag = np.abs(res)
    differing = int(np.count_nonzero(mag.max(axis=2) if mag.ndim == 3 else mag))
    yield LevelResult(image_id=p.image_id, levels=p.levels, level=i, gaussian=g, laplacian=lap,
                    residual=make_layer(res, i, signed=True),
                    max_abs_residual=finite_max(mag),
                    differing_pixels=differing)


def mosaic(req: MosaicRequest) -> Iterator[Progress | MosaicResult]:
    """All Gaussian levels, or all Laplacian bands, packed in the classic pyramid layout.

    Level 0 on the left, levels 1, 2, ... stacked top-down in a column to its right. Laplacian bands
    are drawn as the mean over colour channels, each scaled by its own symmetric limit to [-1, 1]
    (their ranges differ by orders of magnitude); the last one, the coarsest Gaussian level, is
    mapped from its own range to [-1, 1].
    """
    if req.kind not in MOSAIC_KINDS:
        raise ValueError(f"unknown mosaic kind {req.kind!r}; kinds: {', '.join(MOSAIC_KINDS)}")
    p = req.pyramid
    boxes = mosaic_layout([g.shape[:2] for g in p.gaussian])
    width = max(x + w for x, _, w, _ in boxes)
    height = max(y + h for _, y, _, h in boxes)
    yield Progress(0, p.levels, f"{req.kind.capitalize()} mosaic")
    if req.kind == "gaussian":
        src = p.gaussian
        canvas = np.zeros((height, width, *src[0].shape[2:]), src[0].dtype)
    else:
        canvas = np.zeros((height, width), np.float32)
    for i, (x, y0, w, h) in enumerate(boxes):
        yield Progress(i, p.levels, f"{req.kind.capitalize()} mosaic: level {i}")
        if req.kind == "gaussian":
            canvas[y0:y0 + h, x:x + w] = p.gaussian[i]
            continue
        band = channel_mean(p.laplacian[i])
        if i < p.levels - 1:
            band = band / display_limits(band, signed=True)[1]
        else:
            lo, hi = display_limits(band, signed=False)
            band = (band - lo) * (2 / (hi - lo)) - 1
        canvas[y0:y0 + h, x:x + w] = np.clip(band, -1, 1)
    layer = make_layer(canvas, 0, signed=req.kind == "laplacian", scale=1.0)
    yield MosaicResult(image_id=p.image_id, levels=p.levels, kind=req.kind, layer=layer, boxes=tuple(boxes))




def _key(result: LevelResult | MosaicResult) -> Key:
    if isinstance(result, LevelResult):
        return ("level", result.image_id, result.levels, result.level)
    return ("mosaic", result.image_id, result.levels, result.kind)


def _plan(state: State) -> Plan:
    p, level, kind = state.pyramid, state.level, state.settings["layout_kind"]
    if kind == "panels":
        return Plan((("level", p.image_id, p.levels, level),), level_view, lambda _: LevelRequest(p, level))
    return Plan((("mosaic", p.image_id, p.levels, kind),), mosaic, lambda _: MosaicRequest(p, kind))


TOOL = Tool("pyramid", "&Pyramid", "pyramid_explorer.app.tabs.pyramid:PyramidTab", _plan, _key,
            settings={"layout_kind": "panels"})
