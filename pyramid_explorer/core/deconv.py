"""The free transposed convolution of the Compare and Kernels tools: its settings, kernel and alignment.

A transposed convolution with kernel size k and stride s runs (k - s) / 2 output pixels ahead of its
input's grid; `aligned` cuts a stride-2 output back onto the finer pyramid level's grid, so it can be
compared pixel for pixel with what pyrDown made that level from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.upsampling import bilinear_kernel, transposed_conv2d

KERNELS = ("bilinear", "box", "random")
"""Kernels offered for the free transposed convolution; "random" uses a fixed seed (0)."""


@dataclass(frozen=True)
class DeconvSettings:
    """Free transposed convolution: kernel size, stride and kernel kind (see `deconv_kernel`)."""

    kernel_size: int = 4
    stride: int = 2
    kernel: str = "bilinear"

    def __post_init__(self) -> None:
        if not 1 <= self.kernel_size <= 16:
            raise ValueError(f"kernel size must be 1..16, got {self.kernel_size}")
        if not 1 <= self.stride <= 8:
            raise ValueError(f"stride must be 1..8, got {self.stride}")
        if self.kernel not in KERNELS:
            raise ValueError(f"unknown kernel {self.kernel!r}; kernels: {', '.join(KERNELS)}")



def deconv_kernel(settings: DeconvSettings) -> np.ndarray:
    """The kernel of the free transposed convolution, float32 (k, k).

    `bilinear` is `bilinear_kernel(k)`, `box` a constant, `random` uniform noise from seed 0. All
    are scaled so their taps sum to stride**2: on average a constant input keeps its level, and any
    ripple left is the uneven overlap of the kernel, not a change of brightness.
    """
    k, s = settings.kernel_size, settings.stride
    if settings.kernel == "bilinear":
        kernel = bilinear_kernel(k).astype(np.float64)
    elif settings.kernel == "box":
        kernel = np.ones((k, k))
    else:
        kernel = np.random.default_rng(0).random((k, k))
    return (kernel * (s * s / kernel.sum())).astype(np.float32)


def window(a: np.ndarray, top: int, left: int, height: int, width: int) -> np.ndarray:
    """a[top:top+height, left:left+width] as a new array, zero-filled where the window leaves `a`."""
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + height, a.shape[0]), min(left + width, a.shape[1])
    out = np.zeros((height, width, *a.shape[2:]), a.dtype)
    if y1 > y0 and x1 > x0:
        out[y0 - top:y1 - top, x0 - left:x1 - left] = a[y0:y1, x0:x1]
    return out



def deconv_offset(settings: DeconvSettings) -> float:
    """Output pixels by which the unpadded transposed convolution runs ahead of the input grid.

    Input pixel j's kernel is centred on output (k - 1) / 2 + j * s, while the input pixel's own
    centre falls on output j * s + (s - 1) / 2: the difference is (k - s) / 2.
    """
    return (settings.kernel_size - settings.stride) / 2


def deconv_output(coarse: np.ndarray, settings: DeconvSettings) -> np.ndarray:
    """The whole (unpadded) float32 output of the free transposed convolution."""
    return transposed_conv2d(np.asarray(coarse, np.float32), deconv_kernel(settings), settings.stride)


def aligned(output: np.ndarray, settings: DeconvSettings, height: int, width: int) -> np.ndarray:
    """The stride-2 output cut to the finer level's grid (rounding a half-pixel offset down).

    Output pixels are half a coarse pixel's footprint wide, and the finer level's pixels sit half of
    one of them inside a coarse pixel's edge (pyrDown centres coarse pixel j on fine pixel 2j).
    """
    shift = math.floor(deconv_offset(settings) + 0.5)
    return window(output, shift, shift, height, width)


DEFAULT_DECONV = DeconvSettings()
"""The settings the window starts with."""


def twin_mode(settings: DeconvSettings) -> str | None:
    """The upsampling mode whose 2x result is `aligned` output of these settings, or None.

    FCN's bilinear kernel of size 4 at stride 2 (the default) is the ``deconv_bilinear`` mode: the same
    transposed convolution, which the mode computes another way at exactly twice the size (equal to
    float32 rounding, a few 1e-5 at 8-bit values; tested).
    """
    if settings.stride == 2 and np.array_equal(deconv_kernel(settings), bilinear_kernel(4)):
        return "deconv_bilinear"
    return None
