"""The Blend tool: Burt & Adelson's multiresolution blend of the open image with a second one under a mask,
beside the plain alpha blends (hard and feathered), with the selected level's band and mask; and their
export.

The open image is `a` (the mask's 1), the second image `b`: the bundled coffee photograph or a file the
user opens, fitted to `a`'s size (resized or centre-cropped, stated in `fit_note`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.blend import (
    FITS,
    alpha_blend,
    blended_bands,
    ellipse_mask,
    feather,
    fit_to,
    half_mask,
    mask_from_image,
)
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.io import ImageLoadError, load_image
from pyramid_explorer.core.pyramid import gaussian_pyramid, reconstruct
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.samples import load_bundled
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool

BUNDLED_SECOND = "coffee.png"
"""The second image offered with the app (scikit-image's coffee cup, CC0: resources/README.md)."""
MASKS = {"left": "Left half", "right": "Right half", "ellipse": "Soft ellipse", "image": "Mask image"}
"""Mask -> its name on screen: where the open image (A) shows; B fills the rest."""
FIT_TITLES = {"resize": "Resize (may stretch)", "crop": "Centre-crop (keeps shape)"}
FIT_TIPS = {"resize": "Stretch the second image to exactly the open image's size",
            "crop": "Cut the open image's size out of the second image's centre, at its own scale (enlarged "
                    "first only if a side is too short)"}
ELLIPSE_SCALE, ELLIPSE_SOFTNESS = 0.7, 0.15
"""The soft ellipse: semi-axes 0.7 of the half sides, its edge a ramp 0.15 of the radius wide."""
TUTORIAL_STORAGE = "uint8_saturate"
"""The popular tutorial's bands: uint8 `cv2.subtract`, every negative detail clipped to 0."""


@dataclass(frozen=True)
class BlendOptions:
    """What the user chose: the second image (None: the bundled one), how it is fitted, the mask (and its
    image), the feather width of the alpha blend in pixels, and the tutorial's uint8 bands."""

    second: str | None = None
    fit: str = "crop"
    mask: str = "left"
    mask_path: str | None = None
    feather: int = 24
    clip: bool = False

    def __post_init__(self) -> None:
        if self.fit not in FITS or self.mask not in MASKS:
            raise ValueError(f"fit must be one of {', '.join(FITS)} and mask one of {', '.join(MASKS)}; "
                             f"got {self.fit!r} and {self.mask!r}")


@dataclass(frozen=True, eq=False)
class BlendRequest:
    pyramid: Pyramid
    level: int
    options: BlendOptions


@dataclass(frozen=True, eq=False)
class BlendResult:
    """The blends of the open image (`first`) and the fitted `second` under `mask`, float32 values shown
    in the image's dtype; `band` is what band `level` of the blend adds to it (collapsed alone, signed) and
    `mask_level` the mask's Gaussian level GM[level] that weighted it. `error` is one line saying why
    nothing could be blended (then every layer but `first` is None)."""

    image_id: int
    levels: int
    level: int
    options: BlendOptions
    first: Layer
    second: Layer | None = None
    mask: Layer | None = None
    spline: Layer | None = None
    hard: Layer | None = None
    feathered: Layer | None = None
    band: Layer | None = None
    mask_level: Layer | None = None
    bands: tuple[np.ndarray, ...] = ()
    fit_note: str = ""
    mask_note: str = ""
    clip_note: str = ""
    error: str = ""


def clip_applies(dtype: np.dtype) -> bool:
    """The tutorial's mistake is a uint8 one: only uint8 images can show it."""
    return np.dtype(dtype) == np.uint8


def second_name(options: BlendOptions) -> str:
    return BUNDLED_SECOND if options.second is None else os.path.basename(options.second)


def _mask(options: BlendOptions, a: np.ndarray) -> tuple[np.ndarray, str]:
    """The (H, W) float mask, and what it is."""
    if options.mask in ("left", "right"):
        return half_mask(a.shape, options.mask), f"A on the {options.mask} half, B on the other"
    if options.mask == "ellipse":
        return (ellipse_mask(a.shape, ELLIPSE_SCALE, ELLIPSE_SOFTNESS),
                f"A inside a soft ellipse ({ELLIPSE_SCALE:g} of the half sides), B outside")
    assert options.mask_path is not None, "blend_images asks for a mask image before using one"
    fitted = fit_to(load_image(options.mask_path), a, options.fit)
    return (mask_from_image(fitted.image),
            f"A where {os.path.basename(options.mask_path)} is white, B where black; {fitted.note}")


def blend_images(req: BlendRequest) -> Iterator[Progress | BlendResult]:
    """Fit the second image and make the mask, then the multiresolution and alpha blends, and the band
    of `level` with its mask level."""
    pyramid, level, options = req.pyramid, req.level, req.options
    a = pyramid.gaussian[0]
    base = BlendResult(image_id=pyramid.image_id, levels=pyramid.levels, level=level, options=options,
                       first=make_layer(a, 0))
    if options.mask == "image" and options.mask_path is None:
        yield replace(base, error="No mask image yet: open one with Open mask image...")
        return
    yield Progress(0, 4, f"Fitting {second_name(options)}")
    try:
        b = load_bundled(BUNDLED_SECOND) if options.second is None else load_image(options.second)
        fitted = fit_to(b, a, options.fit)
        mask, mask_note = _mask(options, a)
    except ImageLoadError as error:
        yield replace(base, error=str(error))
        return
    storage = TUTORIAL_STORAGE if options.clip and clip_applies(a.dtype) else "float32"
    yield Progress(1, 4, "Multiresolution blend")
    bands = blended_bands(a, fitted.image, mask, pyramid.levels, storage=storage)
    spline = reconstruct(bands)
    yield Progress(2, 4, "Alpha blends")
    soft = np.clip(feather(mask, options.feather), 0, 1)  # the blur's rounding strays ~1e-7 past [0, 1]
    yield Progress(3, 4, f"Band {level}")
    alone = [b.astype(np.float32) for b in bands]  # what band `level` adds: collapsed on its own
    gains = [1.0 if n == level else 0.0 for n in range(len(alone))]
    band = reconstruct(alone, gains=gains)
    masks = gaussian_pyramid(mask, len(bands))
    clip_note = ""
    if options.clip:
        clip_note = ("uint8 bands, as the popular tutorial makes them: negative detail is clipped to 0"
                     if storage == TUTORIAL_STORAGE else
                     f"the tutorial's uint8 clipping applies to uint8 images only; this one is {a.dtype}")

    def shown(values: np.ndarray) -> Layer:
        return make_layer(to_dtype(values, a.dtype), 0)

    yield replace(
        base, second=make_layer(fitted.image, 0), mask=make_layer(mask, 0, limits=(0.0, 1.0)),
        spline=shown(spline), hard=shown(alpha_blend(a, fitted.image, mask)),
        feathered=shown(alpha_blend(a, fitted.image, soft)), band=make_layer(band, 0, signed=True),
        mask_level=make_layer(masks[level], level, limits=(0.0, 1.0)), bands=tuple(bands),
        fit_note=f"{second_name(options)}: {fitted.note}", mask_note=mask_note, clip_note=clip_note)


def blend_arrays(result: BlendResult, _fmt: str) -> Arrays:
    """The blends, the fitted second image, the mask and every blended band, and what was chosen."""
    if result.error:
        raise ValueError(f"nothing to export: {result.error}")

    def data(layer: Layer | None) -> np.ndarray:
        assert layer is not None, "a blend without an error has every layer"
        return layer.data

    arrays = [NamedArray("multiresolution_blend", data(result.spline), "blend", level=0,
                         details={"values": "rounded and saturated to the image's dtype"}),
              NamedArray("alpha_blend_hard", data(result.hard), "blend", level=0),
              NamedArray("alpha_blend_feathered", data(result.feathered), "blend", level=0,
                         details={"feather_px": result.options.feather}),
              NamedArray("second_fitted", data(result.second), "blend", level=0,
                         details={"fit": result.fit_note}),
              NamedArray("mask", data(result.mask), "blend", level=0, details={"mask": result.mask_note})]
    arrays += [NamedArray(f"blended_band_{n}", band, "blend", signed=n < len(result.bands) - 1, level=n)
               for n, band in enumerate(result.bands)]
    o = result.options
    return tuple(arrays), {"tool": "blend", "levels": result.levels, "second": second_name(o),
                           "fit": o.fit, "fit_note": result.fit_note, "mask": o.mask,
                           "mask_note": result.mask_note, "feather_px": o.feather,
                           "uint8_clipping": result.clip_note}


def _options(settings: Mapping[str, Any]) -> BlendOptions:
    """The options held in the settings `blend_<field>`."""
    return BlendOptions(**{f.name: settings[f"blend_{f.name}"] for f in fields(BlendOptions)})


def _key(result: BlendResult) -> Key:
    return ("blend", result.image_id, result.levels, result.level, result.options)


def _plan(state: State) -> Plan:
    p, level, options = state.pyramid, state.level, _options(state.settings)
    return Plan((("blend", p.image_id, p.levels, level, options),), blend_images,
                lambda _: BlendRequest(p, level, options))


TOOL = Tool("blend", "&Blend", "pyramid_explorer.app.tabs.blend:BlendTab", _plan, _key,
            settings={f"blend_{name}": value for name, value in asdict(BlendOptions()).items()},
            export=blend_arrays)
