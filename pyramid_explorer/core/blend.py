"""Multiresolution blending (Burt & Adelson 1983, "A multiresolution spline with application to image
mosaics"), the plain alpha blends it improves on, the masks the blending lab offers, and fitting a second
image to the first.

Band ``i`` of the blend is ``GM[i] * LA[i] + (1 - GM[i]) * LB[i]``: the Laplacian bands of ``a`` and ``b``
weighted by the Gaussian pyramid of the mask, so each scale is joined over a transition as wide as that
scale; collapsing the blended bands gives the image. Masks are ``(H, W)`` floats in [0, 1], 1 taking
``a``, and apply to every channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from pyramid_explorer.core.analysis import dtype_span
from pyramid_explorer.core.arrays import check_image, to_dtype
from pyramid_explorer.core.pyramid import (
    check_options,
    gaussian_pyramid,
    laplacian_pyramid,
    reconstruct,
)

HALVES = ("left", "right", "top", "bottom")
FITS = ("resize", "crop")


def _check_pair(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Check ``a``, ``b`` and ``mask``; return the mask as float32."""
    check_image(a, "a")
    check_image(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}: fit b to a first")
    mask = np.asarray(mask)
    if mask.shape != a.shape[:2] or mask.dtype.kind != "f":
        raise ValueError(f"mask must be a float (H, W) = {a.shape[:2]} array in [0, 1], "
                         f"got {mask.dtype} {mask.shape}")
    if not (np.isfinite(mask).all() and mask.min() >= 0 and mask.max() <= 1):
        raise ValueError("mask values must lie in [0, 1] (1 takes a, 0 takes b)")
    return mask.astype(np.float32, copy=False)


def _weight(mask: np.ndarray, like: np.ndarray) -> np.ndarray:
    """The mask broadcast over the channels of ``like``."""
    return mask if like.ndim == 2 else mask[:, :, np.newaxis]


def blended_bands(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int | None = None,
                  border: int = cv2.BORDER_REFLECT_101, storage: str = "float32") -> list[np.ndarray]:
    """The bands ``GM[i] * LA[i] + (1 - GM[i]) * LB[i]`` of the blend, finest first (float32).

    ``storage="uint8_saturate"`` (uint8 images only) reproduces the popular tutorial's mistake: its
    bands are ``cv2.subtract`` of uint8 levels, so every negative detail is clipped to 0, and the
    blended bands are kept as uint8 too (``reconstruct`` then collapses them the way it adds them, with
    ``cv2.add`` saturation). The default float32 bands are exact.
    """
    weight = _check_pair(a, b, mask)
    check_options(a.shape, a.dtype, levels, border, storage)
    bands_a = laplacian_pyramid(a, levels, border, storage)
    bands_b = laplacian_pyramid(b, levels, border, storage)
    masks = gaussian_pyramid(weight, len(bands_a), border)
    bands = []
    for band_a, band_b, m in zip(bands_a, bands_b, masks, strict=True):
        la, lb = band_a.astype(np.float32, copy=False), band_b.astype(np.float32, copy=False)
        blended = lb + _weight(m, la) * (la - lb)
        bands.append(blended if storage == "float32" else to_dtype(blended, band_a.dtype))
    return bands


def laplacian_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray, levels: int | None = None,
                    border: int = cv2.BORDER_REFLECT_101, storage: str = "float32") -> np.ndarray:
    """Burt & Adelson's multiresolution blend of ``a`` (where ``mask`` is 1) and ``b`` (where it is 0).

    ``a`` and ``b`` have the same shape and any supported dtype (each in its own value scale: bring
    ``b`` to ``a``'s dtype with :func:`fit_to` first); ``mask`` is ``(H, W)`` float in [0, 1].
    The float32 Laplacian bands of ``a`` and ``b`` are weighted by the float32 Gaussian pyramid of the
    mask (:func:`blended_bands`) and collapsed with ``core.pyramid.reconstruct``: a float32 array shaped
    like ``a``, in ``a``'s value scale. ``levels`` defaults to all (down to 1x1); ``border`` is the
    pyramids' border mode.
    """
    return reconstruct(blended_bands(a, b, mask, levels, border, storage), border)


def contributions(bands: list[np.ndarray], border: int = cv2.BORDER_REFLECT_101) -> list[np.ndarray]:
    """What each band adds to the collapsed image: band ``i`` alone collapsed to full size (float32).

    For float32 bands the collapse is linear, so the contributions sum to the blend.
    """
    one_hot = np.eye(len(bands))
    return [reconstruct(bands, border, gains=list(one_hot[i])) for i in range(len(bands))]


def alpha_blend(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The plain blend ``mask * a + (1 - mask) * b`` at full resolution, float32 (what the spline improves on:
    a hard mask leaves a seam, a wide feather a ghosted double image)."""
    weight = _check_pair(a, b, mask)
    fa, fb = a.astype(np.float32, copy=False), b.astype(np.float32, copy=False)
    return fb + _weight(weight, fa) * (fa - fb)


def feather(mask: np.ndarray, width: float) -> np.ndarray:
    """``mask`` softened over about ``width`` pixels: a Gaussian blur of sigma ``width / 4`` (so a hard
    edge rises from 2% to 98% over ``width`` pixels), mirrored at the borders; ``width`` 0 keeps it hard."""
    mask = np.asarray(mask, dtype=np.float32)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"mask must be a non-empty 2-D array, got shape {mask.shape}")
    if not math.isfinite(width) or width < 0:
        raise ValueError(f"width must be a number of pixels >= 0, got {width!r}")
    if width == 0:
        return mask.copy()
    sigma = width / 4
    soft = _blurred(mask, sigma)
    # Every step is a weighted mean with positive weights, so the result lies within the mask's range;
    # float32 rounding can step out of it by ~1e-7, which would make a blend weight exceed 1.
    return np.clip(soft, mask.min(), mask.max(), out=soft)


def _blurred(mask: np.ndarray, sigma: float) -> np.ndarray:
    # A wide Gaussian is as good on a mask shrunk to a quarter sigma per pixel, and 10-100x cheaper at
    # megapixel sizes; the area shrink and linear expansion widen sigma by under 1%.
    step = max(1, int(sigma // 4))
    if step == 1:
        return cv2.GaussianBlur(mask, (0, 0), sigma, borderType=cv2.BORDER_REFLECT_101)
    h, w = mask.shape
    small = cv2.resize(mask, (-(-w // step), -(-h // step)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / step, borderType=cv2.BORDER_REFLECT_101)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _check_shape(shape: tuple[int, ...]) -> tuple[int, int]:
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"shape {tuple(shape)} has an empty side")
    return h, w


def half_mask(shape: tuple[int, ...], side: str = "left") -> np.ndarray:
    """1 on one half of an ``(H, W)`` image (``side`` of :data:`HALVES`: the first ``W // 2`` columns for
    "left", the rest for "right"; rows alike), 0 elsewhere, float32: the apple-orange mask."""
    h, w = _check_shape(shape)
    if side not in HALVES:
        raise ValueError(f"side must be one of {', '.join(HALVES)}, got {side!r}")
    mask = np.zeros((h, w), np.float32)
    if side in ("left", "right"):
        mask[:, : w // 2] = 1
    else:
        mask[: h // 2] = 1
    return mask if side in ("left", "top") else 1 - mask


def ellipse_mask(shape: tuple[int, ...], scale: float = 0.8, softness: float = 0.0) -> np.ndarray:
    """1 inside the centred ellipse whose semi-axes are ``scale`` times half the sides, 0 outside, float32.

    With ``softness`` > 0 the edge is a linear ramp that wide, as a fraction of the radius, centred on
    the ellipse (pixel centres at ``x + 0.5``).
    """
    h, w = _check_shape(shape)
    if not scale > 0 or not softness >= 0:
        raise ValueError(f"scale must be > 0 and softness >= 0, got {scale!r} and {softness!r}")
    y = ((np.arange(h) + 0.5) - h / 2) / (scale * h / 2)
    x = ((np.arange(w) + 0.5) - w / 2) / (scale * w / 2)
    radius = np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)
    if softness == 0:
        return (radius <= 1).astype(np.float32)
    return np.clip((1 - radius) / softness + 0.5, 0, 1).astype(np.float32)


def mask_from_image(image: np.ndarray) -> np.ndarray:
    """A mask from an image: its grey value (mean of R, G, B; alpha ignored) over the dtype's full range,
    float32 in [0, 1]; float images are clipped to [0, 1]."""
    check_image(image)
    grey = image.astype(np.float32) if image.ndim == 2 else image[:, :, :3].astype(np.float32).mean(axis=2)
    grey /= dtype_span(image.dtype)
    return np.clip(np.nan_to_num(grey), 0, 1)


@dataclass(frozen=True, eq=False)
class Fitted:
    """A second image made to match the first, and what was done to it, in one sentence."""

    image: np.ndarray
    note: str


def _match_channels(image: np.ndarray, channels: int, peak: float) -> tuple[np.ndarray, str | None]:
    have = 1 if image.ndim == 2 else image.shape[2]
    if have == channels:
        return image, None
    colour = image if have != 1 else np.repeat(image[:, :, np.newaxis], 3, axis=2)
    if channels == 1:
        out = colour[:, :, :3].astype(np.float32).mean(axis=2)
    elif channels == 3:
        out = colour[:, :, :3]
    else:
        out = np.concatenate([colour[:, :, :3], np.full((*image.shape[:2], 1), peak, image.dtype)], axis=2)
    names = {1: "grey", 3: "RGB", 4: "RGBA"}
    return out, f"{names[have]} turned into {names[channels]}"


def fit_to(b: np.ndarray, like: np.ndarray, how: str = "resize") -> Fitted:
    """``b`` made the shape and dtype of ``like``, so the two can be blended; the note says how.

    ``how`` (:data:`FITS`): "resize" stretches ``b`` to exactly ``like``'s size (the aspect ratio may
    change); "crop" keeps the aspect ratio: ``b`` is scaled up only if a side is too short, then its
    centre is cut out. Channels are converted (grey <-> RGB, alpha dropped or made opaque) and values
    rescaled between dtypes by their full ranges (float images span [0, 1]).
    """
    check_image(b, "b")
    check_image(like, "the first image")
    if how not in FITS:
        raise ValueError(f"how must be one of {', '.join(FITS)}, got {how!r}")
    peak = dtype_span(b.dtype)
    notes = []
    image, note = _match_channels(b, 1 if like.ndim == 2 else like.shape[2], peak)
    if note:
        notes.append(note)
    (h, w), (th, tw) = b.shape[:2], like.shape[:2]
    work: np.ndarray = np.ascontiguousarray(image, dtype=np.float32)
    if (h, w) != (th, tw):
        if how == "resize":
            size = (tw, th)
            notes.append(f"resized from {w}x{h} to {tw}x{th}")
        else:
            s = max(1.0, th / h, tw / w)
            size = (max(tw, math.ceil(w * s)), max(th, math.ceil(h * s)))
            scaled = f"scaled by {s:.3g} and " if s > 1 else ""
            notes.append(f"{scaled}centre-cropped from {w}x{h} to {tw}x{th}")
        if size != (w, h):
            shrinking = size[0] < w and size[1] < h
            work = cv2.resize(work, size, interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
        top, left = (work.shape[0] - th) // 2, (work.shape[1] - tw) // 2
        work = work[top : top + th, left : left + tw]
    if like.dtype != b.dtype:
        work = work * np.float32(dtype_span(like.dtype) / peak)
        notes.append(f"{b.dtype} values rescaled to {like.dtype}")
    out = to_dtype(work.reshape(like.shape), like.dtype)
    return Fitted(out, "; ".join(notes) if notes else "same size and type: used as it is")
