"""Shift-equivariance of downsamplers (Zhang 2019, "Making Convolutional Networks Shift-Invariant Again").

Shift the input by ``s`` pixels (wrap-around), downsample by 2, bring the result back to the input grid
(``pyrUp`` with wrap-around borders: the same fixed interpolation for every downsampler) and undo the
shift. A shift-equivariant downsampler gives the same image for every ``s``; subsampling without a
blur (stride 2, max pooling) gives one image for even shifts and another for odd ones, and blurring
before subsampling (pyrDown, max-blur-pool) keeps them close. Everything is periodic, so images are
cropped to even sides first and no border effect enters the measurement.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from pyramid_explorer.core.analysis import dtype_span
from pyramid_explorer.core.arrays import check_image
from pyramid_explorer.core.pyramid import expand

DOWNSAMPLERS = ("stride2", "average", "maxpool", "pyrdown", "maxblurpool")
DIRECTIONS = {"horizontal": (0, 1), "vertical": (1, 0), "diagonal": (1, 1)}


def _corners(x: np.ndarray) -> list[np.ndarray]:
    """The four pixels of every 2x2 block of an even-sided array, as four strided views."""
    return [x[i::2, j::2] for i in (0, 1) for j in (0, 1)]


def _wrapped_max_2x2(x: np.ndarray) -> np.ndarray:
    """Max over every 2x2 window, stride 1, wrapping around the borders: ``max(x[i:i+2, j:j+2])``."""
    out = np.maximum(x, np.roll(x, -1, axis=0))
    return np.maximum(out, np.roll(out, -1, axis=1), out=out)


def _blur_subsample(x: np.ndarray) -> np.ndarray:
    """Zhang's BlurPool: the separable [1 2 1] / 4 blur (wrap-around), kept at every second pixel only.

    Output ``(i, j)`` is the blur at ``(2i, 2j)``: ``(x[2i-1] + 2 x[2i] + x[2i+1]) / 4`` along each axis,
    so the odd rows (and columns) are the neighbours of the even ones; nothing else is computed.
    """
    for axis in (0, 1):
        even = x[::2] if axis == 0 else x[:, ::2]
        odd = x[1::2] if axis == 0 else x[:, 1::2]
        x = (even * np.float32(2) + odd + np.roll(odd, 1, axis=axis)) * np.float32(0.25)
    return x


def downsample(image: np.ndarray, name: str) -> np.ndarray:
    """``image`` (even sides) halved by the downsampler ``name`` of :data:`DOWNSAMPLERS`, float32.

    - ``stride2``: ``x[::2, ::2]``, no filtering;
    - ``average``: the mean of every 2x2 block (``avg_pool2d(2)``);
    - ``maxpool``: the maximum of every 2x2 block (``max_pool2d(2)``);
    - ``pyrdown``: ``cv2.pyrDown``, the 5x5 binomial blur then every second pixel (wrap-around borders);
    - ``maxblurpool``: Zhang's MaxBlurPool: max over 2x2 windows with stride 1, then [1 2 1] / 4 blur
      and every second pixel (wrap-around borders).
    """
    if name not in DOWNSAMPLERS:
        raise ValueError(f"unknown downsampler {name!r}; allowed: {', '.join(DOWNSAMPLERS)}")
    check_image(image)
    h, w = image.shape[:2]
    if h % 2 or w % 2:
        raise ValueError(f"downsampling by 2 with wrap-around needs even sides, got {w}x{h}")
    x = image.astype(np.float32).reshape(h, w, -1)
    out: np.ndarray
    if name == "stride2":
        out = x[::2, ::2]
    elif name == "average":
        a, b, c, d = _corners(x)
        out = (a + b + c + d) * np.float32(0.25)
    elif name == "maxpool":
        a, b, c, d = _corners(x)
        out = np.maximum(np.maximum(a, b), np.maximum(c, d))
    elif name == "pyrdown":
        out = cv2.pyrDown(x, borderType=cv2.BORDER_WRAP).reshape(h // 2, w // 2, -1)
    else:
        out = _blur_subsample(_wrapped_max_2x2(x))
    out = np.ascontiguousarray(out)
    return out if image.ndim == 3 else out[:, :, 0]


@dataclass(frozen=True, eq=False)
class ShiftStudy:
    """How far one downsampler's output moves when its input is shifted, per shift."""

    downsampler: str
    shifts: tuple[int, ...]  # 0 .. max_shift pixels along the direction
    rms: np.ndarray  # RMS difference from the unshifted result, per shift (float64)
    psnr: np.ndarray  # PSNR in dB against the unshifted result over the dtype's range, per shift (inf at 0)
    pair: tuple[int, int]  # the two shifts whose outputs differ most
    pair_rms: float  # their RMS difference
    pair_outputs: tuple[np.ndarray, np.ndarray]  # those two outputs on the input grid, shift undone


def _even(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    if h < 2 or w < 2:
        raise ValueError(f"the image must be at least 2x2 to halve, got {w}x{h}")
    return image[: h - h % 2, : w - w % 2]


def shifted_output(image: np.ndarray, name: str, shift: int, direction: str = "diagonal") -> np.ndarray:
    """``image`` (odd sides cropped by one pixel) shifted by ``shift`` pixels along ``direction``
    (wrap-around), downsampled by ``name``, brought back to the input grid with pyrUp (wrap-around) and
    shifted back: float32, what :func:`shift_study` compares."""
    check_image(image)
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; allowed: {', '.join(DIRECTIONS)}")
    x = _even(image)
    h, w = x.shape[:2]
    dy, dx = DIRECTIONS[direction]
    low = downsample(np.roll(x, (dy * shift, dx * shift), axis=(0, 1)), name)
    return np.roll(expand(low, (w, h), cv2.BORDER_WRAP), (-dy * shift, -dx * shift), axis=(0, 1))


def shift_study(image: np.ndarray, name: str, max_shift: int = 8, direction: str = "diagonal") -> ShiftStudy:
    """Shift ``image`` by 0..``max_shift`` pixels along ``direction`` (:data:`DIRECTIONS`), wrapping
    around; downsample with ``name``; bring back to the input grid with pyrUp (wrap-around); undo the
    shift; compare with the unshifted result. Odd sides are cropped by one pixel first."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 1:
        raise ValueError(f"max_shift must be an integer >= 1, got {max_shift!r}")
    shifts = tuple(range(max_shift + 1))
    outputs = [shifted_output(image, name, s, direction) for s in shifts]
    gram = _difference_gram(outputs)
    squared = np.diag(gram)[:, None] + np.diag(gram)[None, :] - 2 * gram
    i, j = np.unravel_index(np.argmax(squared), squared.shape)
    pair = (int(min(i, j)), int(max(i, j)))
    count = outputs[0].size
    rms = np.sqrt(np.maximum(np.diag(gram), 0) / count)
    with np.errstate(divide="ignore"):  # rms 0: identical, inf dB (as core.metrics.psnr)
        psnrs = 20 * np.log10(dtype_span(image.dtype) / rms)
    return ShiftStudy(name, shifts, rms, psnrs, pair, float(np.sqrt(max(squared[i, j], 0) / count)),
                      (outputs[pair[0]], outputs[pair[1]]))


def _difference_gram(outputs: list[np.ndarray]) -> np.ndarray:
    """Gram matrix ``<d_i, d_j>`` (float64) of the outputs' differences ``d_i`` from the first output.

    Differences are small where outputs agree, so their products lose nothing to cancellation; chunks
    of the flattened arrays are multiplied in float32 and summed in float64.
    """
    base = outputs[0].ravel()
    gram = np.zeros((len(outputs), len(outputs)))
    chunk = 1 << 16
    part = np.empty((len(outputs), chunk), np.float32)
    for start in range(0, base.size, chunk):
        stop = min(base.size, start + chunk)
        for k, out in enumerate(outputs):
            np.subtract(out.ravel()[start:stop], base[start:stop], out=part[k, : stop - start])
        used = part[:, : stop - start]
        gram += (used @ used.T).astype(np.float64)
    return gram
