"""The Equalizer tool: the pyramid collapsed with one gain per band, its change from the source, and
its export."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.pyramid import reconstruct
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool


@dataclass(frozen=True, eq=False)
class EqualizerRequest:
    """Collapse the pyramid's bands with one gain per band (0 drops a band, > 1 boosts it)."""

    pyramid: Pyramid
    gains: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.gains) != self.pyramid.levels:
            raise ValueError(f"{len(self.gains)} gains for {self.pyramid.levels} bands; give one per band")
        if not all(math.isfinite(g) for g in self.gains):
            raise ValueError(f"gains must be finite numbers, got {self.gains}")


@dataclass(frozen=True, eq=False)
class EqualizerResult:
    """The equalized reconstruction (rounded and saturated to the source's dtype, as it would be saved)
    and its change from the source."""

    image_id: int
    levels: int
    gains: tuple[float, ...]
    image: Layer
    change: Layer
    """Reconstruction minus source, float32; drawn as the mean over colour channels."""
    max_abs_change: float
    changed_pixels: int
    saturated_values: int
    """Values of the float reconstruction outside the dtype's range (clipped when rounding)."""

    @property
    def exact(self) -> bool:
        return self.changed_pixels == 0


def equalize(req: EqualizerRequest) -> Iterator[Progress | EqualizerResult]:
    """`core.pyramid.reconstruct(bands, gains=...)`, rounded to the source dtype, and its change."""
    p = req.pyramid
    source = p.gaussian[0]
    yield Progress(0, 2, "Reconstruction with band gains")
    rebuilt = reconstruct(p.laplacian, gains=req.gains)
    saturated = 0
    if source.dtype.kind in "ui":
        info = np.iinfo(source.dtype)
        saturated = int(np.count_nonzero((rebuilt < info.min) | (rebuilt > info.max)))
    image = to_dtype(rebuilt, source.dtype)
    del rebuilt
    yield Progress(1, 2, "Change from the source")
    change = image.astype(np.float32) - source.astype(np.float32)
    moved = np.abs(change)
    per_pixel = moved.max(axis=2) if moved.ndim == 3 else moved
    yield EqualizerResult(image_id=p.image_id, levels=p.levels, gains=req.gains, image=make_layer(image, 0),
                        change=make_layer(change, 0, signed=True),
                        max_abs_change=float(np.nanmax(moved)) if moved.size else 0.0,
                        changed_pixels=int(np.count_nonzero(per_pixel)), saturated_values=saturated)



def equalizer_arrays(result: EqualizerResult) -> Arrays:
    """The equalized image and its change from the source, and the gains as parameters."""
    details = {"max_abs_change": result.max_abs_change, "changed_pixels": result.changed_pixels,
               "saturated_values": result.saturated_values}
    arrays = (
        NamedArray("equalized", result.image.data, "equalizer", level=0, details=details),
        NamedArray("equalized_change", result.change.data, "equalizer", signed=True, level=0,
                   details={"what": "equalized - source", **details}),
    )
    return arrays, {"tool": "equalizer", "levels": result.levels, "gains": list(result.gains),
                    "reconstruction": "core.pyramid.reconstruct(laplacian float32, gains), rounded to the "
                                      "source dtype"}




def gains_for(pyramid: Pyramid, gains: tuple[float, ...] | None) -> tuple[float, ...]:
    """The gains to use on `pyramid`: `gains` when there is one per band, else every gain 1."""
    if gains is None or len(gains) != pyramid.levels:
        return (1.0,) * pyramid.levels
    return gains


def _key(result: EqualizerResult) -> Key:
    return ("equalizer", result.image_id, result.levels, result.gains)


def _plan(state: State) -> Plan:
    p = state.pyramid
    gains = gains_for(p, state.settings["gains"])
    return Plan((("equalizer", p.image_id, p.levels, gains),), equalize, lambda _: EqualizerRequest(p, gains))


TOOL = Tool("equalizer", "&Equalizer", "pyramid_explorer.app.tabs.equalizer:EqualizerTab", _plan, _key,
            settings={"gains": None}, per_pyramid=("gains",),
            export=lambda result, _fmt: equalizer_arrays(result))
