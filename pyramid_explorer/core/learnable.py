"""Learnable upsamplers at their initialisation: transposed convolution, resize-convolution and sub-pixel
convolution (Odena, Dumoulin & Olah 2016; Shi et al. 2016; Aitken et al. 2017), and their checkerboards.

An :class:`Upsampler` holds one method's weights; every method maps an ``(H, W[, C])`` image to exactly
``(H*f, W*f[, C])`` and is a linear, ``f``-periodic operator, i.e. a transposed convolution by some
kernel (:func:`transposed_equivalent`). The checkerboard of any of them is therefore measured as the
Kernels tab measures it: the phase sums of that kernel (``core.analysis.polyphase_sums``), what a
constant image of 1 becomes on each output phase.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.analysis import impulse_kernel, overlap_verdict, polyphase_sums
from pyramid_explorer.core.upsampling import (
    bilinear_kernel,
    icnr,
    resize_conv2d,
    subpixel_conv2d,
    transposed_conv2d,
)

METHODS = ("transposed", "resize", "subpixel")
INITIALISATIONS: dict[str, tuple[str, ...]] = {
    "transposed": ("bilinear", "box", "random"),
    "resize": ("bilinear", "box", "random"),
    "subpixel": ("bilinear", "box", "random", "icnr"),
}


@dataclass(frozen=True, eq=False)
class Upsampler:
    """One learnable upsampler: ``method`` (:data:`METHODS`), integer ``factor`` and its float32 ``weights``.

    - ``transposed``: a ``(kh, kw)`` kernel, stride ``factor``, cropping ``padding`` output pixels at the
      top-left (PyTorch's ``padding``): ``out[y] = sum_n x[n] * kernel[y - n*f + padding]``;
    - ``resize``: a ``k x k`` kernel (k odd) for :func:`~pyramid_explorer.core.upsampling.resize_conv2d`;
    - ``subpixel``: ``(f*f, k, k)`` sub-kernels for :func:`~pyramid_explorer.core.upsampling.subpixel_conv2d`.
    """

    method: str
    factor: int
    weights: np.ndarray
    padding: int = 0

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown upsampler method {self.method!r}; allowed: {', '.join(METHODS)}")
        for name, minimum in (("factor", 1), ("padding", 0)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
                raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.padding and self.method != "transposed":
            raise ValueError(f"padding applies to transposed convolution only, not to {self.method!r}")
        weights = np.array(self.weights, dtype=np.float32)
        weights.setflags(write=False)
        object.__setattr__(self, "weights", weights)
        if self.method == "transposed" and (weights.ndim != 2 or weights.size == 0):
            raise ValueError(f"a transposed convolution needs a 2-D kernel, got shape {weights.shape}")
        self.apply(np.zeros((1, 1), np.float32))  # resize/subpixel: their own shape checks

    def apply(self, x: np.ndarray, size: tuple[int, int] | None = None) -> np.ndarray:
        """``x`` upsampled to ``(H*f, W*f[, C])``, float32, zeros assumed outside the image; ``size`` =
        ``(width, height)`` crops the bottom and right to match an odd-sized finer pyramid level."""
        f = self.factor
        if self.method == "resize":
            out = resize_conv2d(x, self.weights, f)
        elif self.method == "subpixel":
            out = subpixel_conv2d(x, self.weights, f)
        else:
            full = transposed_conv2d(x, self.weights, f)
            out = np.zeros((x.shape[0] * f, x.shape[1] * f, *full.shape[2:]), np.float32)
            p = self.padding
            part = full[p : p + out.shape[0], p : p + out.shape[1]]
            out[: part.shape[0], : part.shape[1]] = part
        if size is None:
            return out
        width, height = size
        if not (0 < width <= out.shape[1] and 0 < height <= out.shape[0]):
            raise ValueError(
                f"size {tuple(size)} must lie within the upsampled {out.shape[1]}x{out.shape[0]}"
            )
        return out[:height, :width]


def _random_taps(shape: tuple[int, ...], seed: int, total: float) -> np.ndarray:
    """Uniform random taps in [0, 1) scaled to sum to ``total``, so a constant keeps its mean brightness."""
    taps = np.random.default_rng(seed).random(shape)
    return (taps * (total / taps.sum())).astype(np.float32)


def _bilinear_resize_kernel(factor: int) -> np.ndarray:
    """The odd kernel that makes nearest upsampling by ``factor`` bilinear (half-pixel centres).

    Bilinear interpolation is zero insertion followed by the triangle ``box_f * box_f / f``; nearest
    upsampling is the first box, so the kernel is ``box_f / f``, written with half taps at both ends
    when ``f`` is even so that its length is odd and centred.
    """
    profile = np.ones(factor) if factor % 2 else np.r_[0.5, np.ones(factor - 1), 0.5]
    profile /= factor
    return np.outer(profile, profile).astype(np.float32)


def subpixel_from_transposed(kernel: np.ndarray, factor: int, padding: int = 0) -> np.ndarray:
    """The ``(f*f, k, k)`` sub-kernels whose sub-pixel convolution equals the transposed convolution by
    ``kernel`` (stride ``factor``, ``padding``, as :class:`Upsampler` crops it), at every pixel.

    Output ``(h*f + i, w*f + j)`` of the transposed convolution takes ``x[h + m, w + n] *
    kernel[i + padding - m*f, j + padding - n*f]``, which is the correlation tap ``(m + r, n + r)`` of
    sub-kernel ``i*f + j``; ``r`` is the smallest radius that reaches every tap.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    f = factor
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    # tap t of an axis serves phase i at offset m when t = i + padding - m*f
    lag = np.arange(f)[:, None] + padding - np.arange(max(kernel.shape))[None, :]
    r = int(np.abs(lag[lag % f == 0] // f).max())
    m = np.arange(-r, r + 1)
    tap = np.arange(f)[:, None] + padding - m[None, :] * f  # (phase, offset) -> kernel index, either axis
    inside = ((tap >= 0) & (tap < kernel.shape[0]))[:, None, :, None] & \
        ((tap >= 0) & (tap < kernel.shape[1]))[None, :, None, :]
    taps = kernel[tap.clip(0, kernel.shape[0] - 1)[:, None, :, None],
                  tap.clip(0, kernel.shape[1] - 1)[None, :, None, :]]
    subs = np.where(inside, taps, 0.0)
    return subs.reshape(f * f, 2 * r + 1, 2 * r + 1).astype(np.float32)


def bilinear_init(method: str, factor: int) -> Upsampler:
    """The bilinear initialisation (FCN's, Long et al. 2015) of ``method``: bilinear interpolation
    with half-pixel centres away from the borders."""
    kernel = bilinear_kernel(2 * factor - factor % 2)
    padding = math.ceil((factor - 1) / 2)
    if method == "resize":
        return Upsampler(method, factor, _bilinear_resize_kernel(factor))
    if method == "subpixel":
        return Upsampler(method, factor, subpixel_from_transposed(kernel, factor, padding))
    return Upsampler(method, factor, kernel, padding)


def box_init(method: str, factor: int) -> Upsampler:
    """The box initialisation of ``method``: nearest-neighbour upsampling (each pixel copied f x f times)."""
    if method == "transposed":
        return Upsampler(method, factor, np.ones((factor, factor)))
    if method == "subpixel":
        return Upsampler(method, factor, icnr(np.ones((1, 1)), factor))
    return Upsampler(method, factor, np.ones((1, 1)))


def random_init(method: str, factor: int, size: int | None = None, seed: int = 0) -> Upsampler:
    """Random initialisation of ``method`` with a fixed ``seed``: uniform taps in [0, 1), scaled so a
    constant image keeps its mean brightness. ``size`` is the kernel side: by default the bilinear
    kernel's ``2f - f % 2`` for transposed convolution (so any checkerboard comes from the random
    weights alone, not from ``k % f``), 3 for the others (which need it odd)."""
    if method == "transposed":
        k = 2 * factor - factor % 2 if size is None else size
        return Upsampler(method, factor, _random_taps((k, k), seed, factor * factor),
                         max(0, math.ceil((k - factor) / 2)))
    k = 3 if size is None else size
    if method == "subpixel":
        return Upsampler(method, factor, _random_taps((factor * factor, k, k), seed, factor * factor))
    return Upsampler(method, factor, _random_taps((k, k), seed, 1.0))


def icnr_init(factor: int, size: int = 3, seed: int = 0) -> Upsampler:
    """ICNR (Aitken et al. 2017): one random ``size x size`` kernel copied to every sub-kernel of a
    sub-pixel convolution, which is then resize-convolution by that kernel: no checkerboard."""
    return Upsampler("subpixel", factor, icnr(_random_taps((size, size), seed, 1.0), factor))


def initialise(method: str, init: str, factor: int, size: int | None = None, seed: int = 0) -> Upsampler:
    """``method`` initialised by ``init`` (one of ``INITIALISATIONS[method]``); ``size`` and ``seed``
    apply to the random initialisations."""
    if method not in METHODS:
        raise ValueError(f"unknown upsampler method {method!r}; allowed: {', '.join(METHODS)}")
    if init not in INITIALISATIONS[method]:
        raise ValueError(f"initialisation {init!r} does not apply to {method!r}; "
                         f"allowed: {', '.join(INITIALISATIONS[method])}")
    if init == "bilinear":
        return bilinear_init(method, factor)
    if init == "box":
        return box_init(method, factor)
    if init == "icnr":
        return icnr_init(factor, 3 if size is None else size, seed)
    return random_init(method, factor, size, seed)


def transposed_equivalent(upsampler: Upsampler) -> tuple[np.ndarray, int]:
    """(kernel, padding): the transposed convolution ``upsampler`` performs away from the borders,
    measured as its response to an impulse (float64, the smallest square holding every tap)."""
    reach = max(upsampler.weights.shape[-2:]) // upsampler.factor + 2
    return impulse_kernel(upsampler.apply, upsampler.factor, radius=reach)


@dataclass(frozen=True, eq=False)
class Checkerboard:
    """What a constant image of 1 becomes on each of the ``f x f`` output phases of an upsampler."""

    phase_sums: np.ndarray  # (f, f), row phase first
    ratio: float  # largest phase sum over the smallest (inf when the smallest is <= 0); 1 = none
    verdict: str  # one line, from core.analysis.overlap_verdict


def checkerboard(upsampler: Upsampler) -> Checkerboard:
    """The checkerboard of ``upsampler``: the phase sums of its transposed-convolution equivalent."""
    kernel, padding = transposed_equivalent(upsampler)
    sums = polyphase_sums(kernel, upsampler.factor, padding)
    low, high = float(sums.min()), float(sums.max())
    ratio = high / low if low > 0 else math.inf
    return Checkerboard(sums, ratio, overlap_verdict(kernel, upsampler.factor, padding))


def _placed(kernel: np.ndarray, padding: int, lead: int, size: int) -> np.ndarray:
    """``kernel`` on a ``size``-square grid whose index 0 is output offset ``-lead``."""
    grid = np.zeros((size, size))
    start = lead - padding
    grid[start : start + kernel.shape[0], start : start + kernel.shape[1]] = kernel
    return grid


def distance(upsampler: Upsampler, reference: Upsampler) -> float:
    """Relative L2 distance ``|K - K_ref| / |K_ref|`` between the transposed-convolution equivalents of
    two upsamplers of the same factor, aligned on the output grid; 0 means the same operator."""
    if upsampler.factor != reference.factor:
        raise ValueError(f"factors differ: {upsampler.factor} vs {reference.factor}")
    (k, p), (k_ref, p_ref) = transposed_equivalent(upsampler), transposed_equivalent(reference)
    lead = max(p, p_ref)
    size = lead + max(k.shape[0] - p, k_ref.shape[0] - p_ref)
    a, b = _placed(k, p, lead, size), _placed(k_ref, p_ref, lead, size)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def icnr_distance(upsampler: Upsampler) -> float:
    """How far the sub-kernels of a sub-pixel convolution are from ICNR (all equal): ``|K - icnr(mean
    K)| / |K|``; 0 for an ICNR initialisation (no checkerboard from unequal sub-kernels)."""
    if upsampler.method != "subpixel":
        raise ValueError(f"ICNR applies to sub-pixel convolution only, not to {upsampler.method!r}")
    subs = upsampler.weights.astype(np.float64)
    norm = np.linalg.norm(subs)
    return float(np.linalg.norm(subs - subs.mean(axis=0)) / norm) if norm else 0.0
