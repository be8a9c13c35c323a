"""Transposed convolution explained (Dumoulin & Visin 2016, "A guide to convolution arithmetic for deep
learning"): its output size, where each input pixel's kernel lands, how often output pixels are hit, and
the matrix view: the convolution as a matrix ``C`` (rows = output pixels of the convolution), the
transposed convolution as ``C^T``.

Conventions are PyTorch's (and :func:`~pyramid_explorer.core.upsampling.transposed_conv2d`'s): input pixel
``(i, j)`` adds ``x[i, j] * kernel[a, b]`` to output ``(i*s + a - p, j*s + b - p)``, no kernel flip. The
convolution ``C`` stands for is the cross-correlation with the same kernel, stride and padding of an image
the size of the transposed convolution's output, which maps it back to the input's size: ``C^T``
restores the size, not the values (``C^T C`` is not the identity).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from pyramid_explorer.core.io import ImageSaveError, atomic_write
from pyramid_explorer.core.upsampling import transposed_conv2d

MAX_FRAMES = 1024  # placement frames are for small inputs: one frame per input pixel
ANIMATION_FORMATS = {".gif": "GIF", ".png": "PNG", ".apng": "PNG"}  # APNG is PNG with frames


def _positive(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def transposed_output_size(n: int, kernel: int, stride: int, padding: int = 0,
                           output_padding: int = 0) -> int:
    """Output side of a transposed convolution: ``(n - 1)*stride - 2*padding + kernel + output_padding``
    (PyTorch's ``ConvTranspose2d``, dilation 1). ValueError when ``output_padding >= stride`` (PyTorch
    refuses it) or the result is below 1."""
    n, k = _positive(n, "input size", 1), _positive(kernel, "kernel size", 1)
    s, p = _positive(stride, "stride", 1), _positive(padding, "padding", 0)
    op = _positive(output_padding, "output_padding", 0)
    if op >= s:
        raise ValueError(f"output_padding must be smaller than the stride: {op} >= {s}")
    size = (n - 1) * s - 2 * p + k + op
    if size < 1:
        raise ValueError(f"the output would have {size} pixels: (n - 1)*s - 2*p + k + op with n={n}, s={s}, "
                         f"p={p}, k={k}, op={op}; reduce the padding")
    return size


def size_formula(n: int, kernel: int, stride: int, padding: int = 0, output_padding: int = 0) -> str:
    """The output-size formula with the numbers filled in, e.g. ``(5 - 1)*2 - 2*1 + 4 + 0 = 10``."""
    size = transposed_output_size(n, kernel, stride, padding, output_padding)
    return f"({n} - 1)*{stride} - 2*{padding} + {kernel} + {output_padding} = {size}"


def conv_output_size(n: int, kernel: int, stride: int, padding: int = 0) -> int:
    """Output side of a convolution: ``floor((n + 2*padding - kernel) / stride) + 1`` (PyTorch's Conv2d)."""
    n, k = _positive(n, "input size", 1), _positive(kernel, "kernel size", 1)
    s, p = _positive(stride, "stride", 1), _positive(padding, "padding", 0)
    if n + 2 * p < k:
        raise ValueError(f"a {k}-pixel kernel does not fit in {n} pixels padded by {p} on each side")
    return (n + 2 * p - k) // s + 1


@dataclass(frozen=True)
class Geometry:
    """A transposed convolution's shapes: ``input_shape`` ``(h, w)``, ``kernel_shape`` ``(kh, kw)``, and
    the stride, padding and output padding that fix where things land."""

    input_shape: tuple[int, int]
    kernel_shape: tuple[int, int]
    stride: int
    padding: int = 0
    output_padding: int = 0

    def __post_init__(self) -> None:
        if len(self.input_shape) != 2 or len(self.kernel_shape) != 2:
            raise ValueError(f"input_shape and kernel_shape are (rows, cols) pairs, got {self.input_shape} "
                             f"and {self.kernel_shape}")
        self.output_shape  # noqa: B018 - checks every number and that the output is not empty

    @property
    def output_shape(self) -> tuple[int, int]:
        """The output ``(H, W)``."""
        (h, w), (kh, kw) = self.input_shape, self.kernel_shape
        args = (self.stride, self.padding, self.output_padding)
        return transposed_output_size(h, kh, *args), transposed_output_size(w, kw, *args)


@dataclass(frozen=True)
class Placement:
    """Where the kernel of input pixel ``source`` lands: tap ``(0, 0)`` at output ``corner`` (which may
    lie outside the output when ``padding`` crops it); ``rows`` and ``cols`` are the ``[start, stop)``
    output ranges it covers inside the output (empty when it falls wholly outside)."""

    source: tuple[int, int]
    corner: tuple[int, int]
    rows: tuple[int, int]
    cols: tuple[int, int]


def placements(geometry: Geometry) -> list[Placement]:
    """One :class:`Placement` per input pixel, in row-major order (the order of the animation)."""
    (h, w), (kh, kw), (out_h, out_w) = geometry.input_shape, geometry.kernel_shape, geometry.output_shape
    s, p = geometry.stride, geometry.padding
    result = []
    for i in range(h):
        for j in range(w):
            top, left = i * s - p, j * s - p
            rows = (min(max(top, 0), out_h), min(max(top + kh, 0), out_h))
            cols = (min(max(left, 0), out_w), min(max(left + kw, 0), out_w))
            result.append(Placement((i, j), (top, left), rows, cols))
    return result


def placement_frames(geometry: Geometry, kernel: np.ndarray | None = None) -> np.ndarray:
    """``(h*w, H, W)`` float32: frame ``t`` is the output after the kernels of input pixels ``0..t``
    (row-major) have landed, each input being 1. With the default all-ones kernel the last frame is the
    :func:`overlap_counts` map; with a real kernel it is the response to a constant image of 1."""
    (h, w), (kh, kw), (out_h, out_w) = geometry.input_shape, geometry.kernel_shape, geometry.output_shape
    if h * w > MAX_FRAMES:
        raise ValueError(f"{h}x{w} input pixels would make {h * w} frames; at most {MAX_FRAMES}")
    taps = np.ones((kh, kw), np.float32) if kernel is None else np.asarray(kernel, np.float32)
    if taps.shape != (kh, kw):
        raise ValueError(f"kernel has shape {taps.shape}, the geometry says {(kh, kw)}")
    s, p = geometry.stride, geometry.padding
    # Every input pixel's kernel on an uncropped canvas, then the crop by padding, then the running sum.
    full_h, full_w = (h - 1) * s + kh + geometry.output_padding, (w - 1) * s + kw + geometry.output_padding
    canvas = np.zeros((h * w, full_h, full_w), np.float32)
    t = np.arange(h * w)
    rows = (t // w * s)[:, None, None] + np.arange(kh)[None, :, None]
    cols = (t % w * s)[:, None, None] + np.arange(kw)[None, None, :]
    canvas[t[:, None, None], rows, cols] = taps
    return np.cumsum(canvas[:, p : p + out_h, p : p + out_w], axis=0, dtype=np.float32)


def overlap_counts(geometry: Geometry) -> np.ndarray:
    """``(H, W)`` int32: how many kernel taps land on each output pixel (unequal counts with a flat
    kernel are the checkerboard). Computed as the transposed convolution of ones by ones."""
    ones, flat = np.ones(geometry.input_shape, np.float32), np.ones(geometry.kernel_shape, np.float32)
    out = transposed_conv2d(ones, flat, geometry.stride, geometry.padding, geometry.output_padding)
    return np.rint(out).astype(np.int32)


def conv_matrix(geometry: Geometry, kernel: np.ndarray) -> np.ndarray:
    """The matrix ``C`` (float64) of the convolution that the transposed convolution is the transpose of.

    ``C`` has ``h*w`` rows (the convolution's output pixels: the transposed convolution's input, row-major)
    and ``H*W`` columns (its input pixels: the transposed convolution's output). Row ``(i, j)`` holds the
    kernel at ``(i*s - p, j*s - p)``, taps falling outside cut off: ``C @ X.ravel()`` is the strided
    cross-correlation of :func:`strided_conv2d`, and ``C.T @ x.ravel()`` is ``transposed_conv2d(x)``.
    """
    kernel = np.asarray(kernel, np.float64)
    if kernel.shape != geometry.kernel_shape:
        raise ValueError(f"kernel has shape {kernel.shape}, the geometry says {geometry.kernel_shape}")
    (h, w), (kh, kw), (out_h, out_w) = geometry.input_shape, geometry.kernel_shape, geometry.output_shape
    if h * w * out_h * out_w > 1 << 24:
        raise ValueError(f"C would be {h * w} x {out_h * out_w}: the matrix view is for small inputs")
    s, p = geometry.stride, geometry.padding
    i, j, a, b = np.meshgrid(np.arange(h), np.arange(w), np.arange(kh), np.arange(kw), indexing="ij")
    y, x = i * s - p + a, j * s - p + b
    inside = (y >= 0) & (y < out_h) & (x >= 0) & (x < out_w)
    matrix = np.zeros((h * w, out_h * out_w))
    taps = np.broadcast_to(kernel, y.shape)
    np.add.at(matrix, ((i * w + j)[inside], (y * out_w + x)[inside]), taps[inside])
    return matrix


def strided_conv2d(x: np.ndarray, kernel: np.ndarray, stride: int, padding: int = 0) -> np.ndarray:
    """PyTorch's ``conv2d`` (cross-correlation, zero padding) per channel of ``(H, W[, C])``, float32."""
    kernel = np.asarray(kernel, np.float32)
    s, p = _positive(stride, "stride", 1), _positive(padding, "padding", 0)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    image = np.asarray(x, np.float32)
    rows = conv_output_size(image.shape[0], kernel.shape[0], s, p)
    cols = conv_output_size(image.shape[1], kernel.shape[1], s, p)
    padded = cv2.copyMakeBorder(image, p, p, p, p, cv2.BORDER_CONSTANT, value=0)
    full = cv2.filter2D(padded, cv2.CV_32F, kernel, anchor=(0, 0), borderType=cv2.BORDER_CONSTANT)
    return full.reshape(padded.shape)[: (rows - 1) * s + 1 : s, : (cols - 1) * s + 1 : s]


def round_trip(image: np.ndarray, kernel: np.ndarray, stride: int, padding: int = 0) -> np.ndarray:
    """``C^T C x`` on a whole image: the strided convolution, then the transposed convolution back to the
    image's size (``output_padding`` chosen to restore it), float32. Not ``x``: ``C^T`` is not ``C``'s
    inverse."""
    small = strided_conv2d(image, kernel, stride, padding)
    kernel = np.asarray(kernel, np.float32)
    sides = zip(np.shape(image)[:2], kernel.shape, strict=True)
    extra = tuple((n + 2 * padding - k) % stride for n, k in sides)
    return transposed_conv2d(small, kernel, stride, padding, extra)


def render_frames(geometry: Geometry, frames: np.ndarray, cell: int = 16) -> list[np.ndarray]:
    """RGB uint8 pictures of ``placement_frames``, ``cell`` pixels per output pixel: the running sum in
    grey (black 0, white its final maximum), the current input pixel's kernel outlined in red."""
    cell = _positive(cell, "cell", 2)
    peak = float(np.abs(frames[-1]).max()) or 1.0
    pictures = []
    for frame, placed in zip(frames, placements(geometry), strict=True):
        grey = np.clip(frame / peak * 255, 0, 255).astype(np.uint8)
        picture = np.repeat(np.repeat(grey, cell, axis=0), cell, axis=1)
        picture = np.repeat(picture[:, :, None], 3, axis=2)
        (r0, r1), (c0, c1) = placed.rows, placed.cols
        if r1 > r0 and c1 > c0:
            cv2.rectangle(picture, (c0 * cell, r0 * cell), (c1 * cell - 1, r1 * cell - 1), (255, 0, 0), 2)
        pictures.append(picture)
    return pictures


def save_animation(path: str | os.PathLike[str], pictures: Sequence[np.ndarray], frame_ms: int = 300) -> None:
    """Write RGB uint8 ``pictures`` as a looping animated GIF (``.gif``) or APNG (``.png``/``.apng``),
    atomically (``core.io.atomic_write``: an interrupted save leaves any existing file untouched).
    ImageSaveError naming the file and the reason otherwise."""
    name = os.fsdecode(path)
    fmt = ANIMATION_FORMATS.get(os.path.splitext(name)[1].lower())
    if fmt is None:
        raise ImageSaveError(name, f"animations are saved as {', '.join(ANIMATION_FORMATS)}")
    if not pictures:
        raise ImageSaveError(name, "there are no frames to save")
    images = [Image.fromarray(np.ascontiguousarray(p, np.uint8), "RGB") for p in pictures]
    with atomic_write(name) as fh:
        images[0].save(fh, format=fmt, save_all=True, append_images=images[1:], duration=int(frame_ms),
                       loop=0)


def pytorch_output_shape(geometry: Geometry) -> tuple[int, int] | None:
    """The output ``(H, W)`` PyTorch's own ``ConvTranspose2d`` gives for ``geometry``, to show beside
    the formula; None when PyTorch is not installed (it is never a dependency)."""
    try:
        import torch
    except ImportError:
        return None
    out = torch.nn.functional.conv_transpose2d(
        torch.zeros(1, 1, *geometry.input_shape), torch.zeros(1, 1, *geometry.kernel_shape),
        stride=geometry.stride, padding=geometry.padding, output_padding=geometry.output_padding,
    )
    return int(out.shape[2]), int(out.shape[3])
