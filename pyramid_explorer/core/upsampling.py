"""Upsampling methods compared by the app: OpenCV interpolation, pyrUp, zero insertion, learned-style
transposed convolution with a bilinear kernel, and max-unpooling.

Every function takes arrays of shape ``(H, W)`` or ``(H, W, C)`` (C channels treated independently, the
same kernel for each). :func:`upsample` converts its input to float32 *before* any resampling, so every
mode works on the same values (uint8 and uint16 images keep their 0..255 / 0..65535 scale, no
normalisation) and the float32 rounding of ``cv2.resize`` applies, not its fixed-point uint8 path.

:func:`transposed_conv2d`, :func:`max_pool_with_indices` and :func:`max_unpool` reproduce PyTorch's
``conv_transpose2d``, ``max_pool2d(..., return_indices=True)`` and ``max_unpool2d`` with numpy and
OpenCV only (the layout differs: channels last here, ``(N, C, H, W)`` in PyTorch); the pooling pair
lives in :mod:`pyramid_explorer.core.pooling`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from pyramid_explorer.core.arrays import as_hwc, check_int
from pyramid_explorer.core.pooling import max_pool_with_indices, max_unpool
from pyramid_explorer.core.subpixel import icnr, pixel_shuffle, resize_conv2d, subpixel_conv2d

MODES = (
    "nearest",
    "bilinear",
    "bicubic",
    "area",
    "lanczos",
    "pyrup",
    "zero_insert",
    "deconv_bilinear",
    "unpool",
)

_RESIZE_FLAGS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def _pair(value: int | Sequence[int], name: str, minimum: int) -> tuple[int, int]:
    """``(rows, cols)`` from an int or a pair, each checked to be an integer >= ``minimum``."""
    if isinstance(value, Sequence | np.ndarray):
        if len(value) != 2:
            raise ValueError(f"{name} must be an integer or a pair of integers, got {value!r}")
        return check_int(value[0], name, minimum), check_int(value[1], name, minimum)
    v = check_int(value, name, minimum)
    return v, v


def bilinear_kernel(size: int) -> np.ndarray:
    """The ``size x size`` bilinear interpolation kernel of FCN's ``upsample_filt`` (float32).

    Long, Shelhamer & Darrell (2015) initialise their deconvolution layers with it; with stride ``f``,
    ``size = 2*f - f % 2`` and padding ``ceil((f - 1) / 2)`` a transposed convolution by this kernel is
    bilinear interpolation with half-pixel centres and zeros outside the image.
    """
    size = check_int(size, "size", 1)
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    profile = 1 - np.abs(np.arange(size) - center) / factor
    return np.outer(profile, profile).astype(np.float32)


def _phases(out: int, k: int, stride: int, padding: int) -> list[tuple[int, int, int]]:
    """Per output phase ``o`` (output indices ``o, o + stride, ...``) of one axis: ``(r, q0, taps)``.

    Output index ``y`` is position ``Y = y + padding`` of the uncropped transposed convolution, which
    receives ``x[i] * kernel[a]`` for every ``i * stride + a == Y``. With ``r = Y % stride`` and
    ``q = Y // stride`` that is the convolution ``sum_m x[q - m] * kernel[r + m * stride]`` of the
    input with the sub-kernel ``kernel[r::stride]`` (``taps`` long), read from ``q = q0`` on.
    """
    phases = []
    for o in range(min(stride, out)):
        r, q0 = (o + padding) % stride, (o + padding) // stride
        phases.append((r, q0, len(range(r, k, stride))))
    return phases


def transposed_conv2d(
    x: np.ndarray,
    kernel: np.ndarray,
    stride: int | Sequence[int],
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
) -> np.ndarray:
    """Transposed 2-D convolution of every channel of ``x`` by ``kernel``, as PyTorch computes it (float32).

    Same result as ``torch.nn.functional.conv_transpose2d`` on an ``(1, C, H, W)`` input with weight
    ``kernel`` repeated as ``(C, 1, kh, kw)`` and ``groups=C``: ``out[i*s + a - p, j*s + b - p] +=
    x[i, j] * kernel[a, b]`` (the kernel is not flipped), output side ``(n - 1)*s - 2*p + k + op``.
    ``stride``, ``padding`` and ``output_padding`` are an int or a ``(rows, cols)`` pair; ``output_padding``
    must be smaller than the stride, as in PyTorch. Kernels of any size work, including sizes that are not
    multiples of the stride (the checkerboard case) and kernels smaller than the stride (holes stay 0).

    Computed by polyphase decomposition: each of the ``stride**2`` output phases is a small correlation
    of the input with a sub-kernel (``cv2.filter2D``), and ``cv2.merge`` interleaves the phases of each
    output row set, so no pixel loop and no zero-stuffed intermediate image is needed.
    """
    x3 = as_hwc(x, "x")
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.size == 0:
        raise ValueError(f"kernel must be a non-empty 2-D array, got shape {kernel.shape}")
    strides = _pair(stride, "stride", 1)
    pads = _pair(padding, "padding", 0)
    out_pads = _pair(output_padding, "output_padding", 0)
    if out_pads[0] >= strides[0] or out_pads[1] >= strides[1]:
        raise ValueError(
            f"output_padding must be smaller than the stride, got {output_padding!r} with stride {stride!r}"
        )
    h, w, c = x3.shape
    out_shape = tuple(
        (n - 1) * s - 2 * p + k + op
        for n, s, p, k, op in zip((h, w), strides, pads, kernel.shape, out_pads, strict=True)
    )
    if min(out_shape) < 1:
        raise ValueError(f"output size {out_shape} of a {h}x{w} input is too small: reduce padding")
    (sy, sx), (oh, ow) = strides, out_shape
    rows = _phases(oh, kernel.shape[0], sy, pads[0])
    cols = _phases(ow, kernel.shape[1], sx, pads[1])
    # Every phase is computed on the same grid of ceil(out / s) samples per axis; the input is padded
    # with zeros once, so each phase's correlation reads a plain slice of it.
    gh, gw = -(-oh // sy), -(-ow // sx)
    top = max(0, *(t - 1 - q0 for _, q0, t in rows))
    bottom = max(0, *(q0 + gh - h for _, q0, _ in rows))
    left = max(0, *(t - 1 - q0 for _, q0, t in cols))
    right = max(0, *(q0 + gw - w for _, q0, _ in cols))
    xp = np.zeros((h + top + bottom, w + left + right, c), np.float32)
    xp[top : top + h, left : left + w] = x3

    out = np.zeros((oh, ow, c), np.float32)
    full_w, rest_w = divmod(ow, sx)
    for oy, (ry, qy, ty) in enumerate(rows):
        n_rows = len(range(oy, oh, sy))
        phase_row = []
        for rx, qx, tx in cols:
            if ty == 0 or tx == 0:
                phase_row.append(np.zeros((n_rows, gw, c), np.float32))
                continue
            sub = kernel[ry::sy, rx::sx][::-1, ::-1]
            y0, x0 = top + qy - (ty - 1), left + qx - (tx - 1)
            src = xp[y0 : y0 + gh + ty - 1, x0 : x0 + gw + tx - 1]
            res = cv2.filter2D(
                src, -1, np.ascontiguousarray(sub), anchor=(0, 0), borderType=cv2.BORDER_CONSTANT
            )
            phase_row.append(res.reshape(src.shape)[:n_rows, :gw])
        dst = out[oy::sy]
        if full_w:
            # The phases of one output row set, interleaved column by column, are exactly cv2.merge of
            # the phases seen as channel groups; it writes straight into the strided rows of ``out``.
            cv2.merge(
                [p[:, :full_w] for p in phase_row], dst=dst[:, : full_w * sx].reshape(n_rows, full_w, sx * c)
            )
        for ox in range(rest_w):
            dst[:, full_w * sx + ox] = phase_row[ox][:, full_w]
    return out if np.ndim(x) == 3 else out[:, :, 0]


def _deconv_bilinear(img: np.ndarray, factor: int, size: tuple[int, int],
                     out: np.ndarray | None = None) -> np.ndarray:
    """``transposed_conv2d`` by ``bilinear_kernel(2f - f % 2)``, stride f, padding ceil((f - 1) / 2), at size.

    That transposed convolution is bilinear interpolation with half-pixel centres and zeros outside
    the image: output pixel ``y`` weighs input ``i`` by ``max(0, 1 - |(y + 0.5)/f - 0.5 - i|)``. So at
    exactly ``f`` times the size it equals ``cv2.resize(INTER_LINEAR)`` (which repeats the edge pixel
    instead of fading to zero) with the outermost rows and columns, whose sample positions fall outside
    the input, scaled by their weight. That is the fast path used here, equal to ``transposed_conv2d``
    to float32 rounding (tested). Other sizes (one pixel more or fewer) run ``transposed_conv2d`` itself:
    the extra row or column comes from ``output_padding`` (zeros at factor 1, where PyTorch allows no
    output padding), a missing one is cropped. The fast path writes into ``out`` when one is given.
    """
    h, w = img.shape[:2]
    width, height = size
    if (width, height) == (w * factor, h * factor):
        out = cv2.resize(img, size, dst=out, interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
        for axis, n in ((0, h), (1, w)):
            pos = (np.arange(n * factor) + 0.5) / factor - 0.5
            weight = (1 - np.maximum(0, np.maximum(-pos, pos - (n - 1)))).astype(np.float32)
            edge = np.flatnonzero(weight != 1)
            if axis == 0:
                out[edge] *= weight[edge, None, None]
            else:
                out[:, edge] *= weight[edge, None]
        return out
    extra = tuple(min(1, max(0, t - n * factor), factor - 1) for t, n in ((height, h), (width, w)))
    out = transposed_conv2d(
        img, bilinear_kernel(2 * factor - factor % 2), factor, math.ceil((factor - 1) / 2), extra
    )
    if out.shape[:2] != (height, width):
        fitted = np.zeros((height, width, *img.shape[2:]), np.float32)
        rows, cols = min(height, out.shape[0]), min(width, out.shape[1])
        fitted[:rows, :cols] = out[:rows, :cols]
        out = fitted
    return out


def _check_unpool(indices: np.ndarray, factor: int, height: int, width: int) -> None:
    """Refuse indices that cannot come from pooling a ``width x height`` image by ``factor``.

    A wrong output size (typically the default ``factor`` times the pooled size for an original with
    an odd side) would put every maximum in the wrong place without any index leaving the range. Such a
    size shifts the windows of the last pooled row and column the most, so only those are checked.
    """
    if indices.ndim < 2 or indices.shape[:2] != (height // factor, width // factor):
        raise ValueError(
            f"mode 'unpool': a {width}x{height} image pooled by {factor} gives {width // factor}x"
            f"{height // factor} values, not indices of shape {indices.shape}; pass size=(width, height) "
            "of the image given to max_pool_with_indices"
        )
    ph, pw = indices.shape[:2]
    for rows, cols in ((slice(ph - 1, ph), slice(None)), (slice(None), slice(pw - 1, pw))):
        i = np.arange(ph)[rows, None]
        j = np.arange(pw)[None, cols]
        part = indices[rows, cols].reshape(i.shape[0], j.shape[1], -1)
        r, c = np.divmod(part, width)
        if ((r // factor != i[..., None]) | (c // factor != j[..., None])).any():
            raise ValueError(
                f"mode 'unpool': indices do not lie in their {factor}x{factor} windows of a {width}x{height} "
                "image; pass the indices of max_pool_with_indices(original, size=factor) and "
                "size=(width, height) of that original"
            )


def upsample(
    image: np.ndarray,
    mode: str,
    factor: int = 2,
    size: tuple[int, int] | None = None,
    indices: np.ndarray | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """``image`` made ``factor`` times larger (or exactly ``size = (width, height)``) by ``mode`` (float32).

    Modes (:data:`MODES`):

    - ``nearest``, ``bilinear``, ``bicubic``, ``area``, ``lanczos``: ``cv2.resize`` with the matching
      ``INTER_*`` flag, on float32 values.
    - ``pyrup``: ``cv2.pyrUp`` with ``dstsize=size`` (factor 2 only).
    - ``zero_insert``: pixel ``(y, x)`` goes to ``(f*y, f*x)``, zeros elsewhere (pyrUp's UP() step,
      before its Gaussian; values are not scaled).
    - ``deconv_bilinear``: :func:`transposed_conv2d` by ``bilinear_kernel(2*f - f % 2)``, stride ``f``,
      padding ``ceil((f - 1) / 2)``, i.e. bilinear interpolation with zeros outside the image.
    - ``unpool``: ``image`` is the output of ``max_pool_with_indices(original, size=factor)`` and
      ``indices`` its second result; :func:`max_unpool` puts the maxima back (zeros elsewhere). ``size``
      must then be the original's ``(width, height)`` when a side of it was not a multiple of
      ``factor``; a size that does not fit the indices raises ValueError. Other modes ignore ``indices``.

    ``size`` may differ from the factor's size by at most one pixel per side, so odd-sized pyramid
    levels can be matched (``upsample(g, "pyrup", size=(2*w - 1, 2*h - 1))``). The input may be uint8,
    uint16 or float32, ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)``; it is converted to float32 first.

    ``out``, a C-contiguous float32 array of the result's shape, receives the result (and is returned)
    instead of a new array: a caller upsampling many images of one size reuses its memory.
    """
    if mode not in MODES:
        raise ValueError(f"unknown upsampling mode {mode!r}; allowed: {', '.join(MODES)}")
    img = as_hwc(image, "image")
    if img.shape[2] not in (1, 3, 4):
        raise ValueError(f"image must be (H, W), (H, W, 3) or (H, W, 4), got shape {np.shape(image)}")
    f = check_int(factor, "factor", 1)
    if mode == "pyrup" and f != 2:
        raise ValueError(
            f"mode 'pyrup' supports factor 2 only (cv2.pyrUp doubles the size), got factor {factor!r}"
        )
    h, w = img.shape[:2]
    if size is None:
        size = (w * f, h * f)
    else:
        width, height = _pair(size, "size", 1)
        if abs(width - w * f) > 1 or abs(height - h * f) > 1:
            raise ValueError(
                f"size (width, height) = {tuple(size)} is more than one pixel per side from the "
                f"factor-{f} size ({w * f}, {h * f}); allowed widths {max(1, w * f - 1)}..{w * f + 1}, "
                f"heights {max(1, h * f - 1)}..{h * f + 1}"
            )
        size = (width, height)
    img = np.ascontiguousarray(image, dtype=np.float32)
    width, height = size
    shape = (height, width, *img.shape[2:])
    if out is not None and (out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, got "
                         f"{out.dtype} {out.shape}")
    if mode in _RESIZE_FLAGS:
        result = cv2.resize(img, size, dst=out, interpolation=_RESIZE_FLAGS[mode])
    elif mode == "pyrup":
        # OpenCV 5.0's pyrUp reads outside a 1-pixel-wide source when asked for 3 columns (garbage in the
        # last one). Along a 1-pixel side its result is constant, so make 2 columns and repeat one.
        if w == 1 and width == 3:
            result = np.repeat(cv2.pyrUp(img, dstsize=(2, height)).reshape(height, 2, -1)[:, :1], 3, axis=1)
        else:
            result = cv2.pyrUp(img, dst=out, dstsize=size)
    elif mode == "zero_insert":
        if out is None:
            result = np.zeros(shape, np.float32)
        else:
            result = out
            out.fill(0)
        rows, cols = min(h, len(range(0, height, f))), min(w, len(range(0, width, f)))
        result[: rows * f : f, : cols * f : f] = img[:rows, :cols]
    elif mode == "deconv_bilinear":
        result = _deconv_bilinear(img, f, size, out)
    else:
        if indices is None:
            raise ValueError(
                "mode 'unpool' needs indices: pass the indices returned by "
                "max_pool_with_indices(original, size=factor) together with its pooled image"
            )
        _check_unpool(np.asarray(indices), f, height, width)
        result = max_unpool(img, indices, shape, out=out)
    result = result.reshape(shape)
    if out is None:
        return result
    if not np.shares_memory(result, out):  # the paths that cannot write into it (odd sizes, 1-pixel sides)
        np.copyto(out, result)
    return out


def same_result(mode: str, shape: tuple[int, ...], size: tuple[int, int]) -> str | None:
    """An earlier mode of :data:`MODES` whose :func:`upsample` of a finite image of `shape` to `size`
    ``(width, height)`` is `mode`'s, value for value; None when there is none.

    Enlarging by a whole factor on both axes, OpenCV's INTER_AREA weights each pixel's nearest source
    pixel by 1 and the next by 0: ``area`` is ``nearest`` then (tested). Not for images holding NaN or
    infinity, which the zero weight turns into NaN. A caller comparing both computes one of them.
    """
    height, width = shape[:2]
    if mode == "area" and size[0] % width == 0 and size[1] % height == 0:
        return "nearest"
    return None


# ------------------------------------------------------------------------------ learnable upsamplers
# The three ways decoders learn to upsample (Odena, Dumoulin & Olah 2016; Shi et al. 2016): transposed
# convolution (above), resize-convolution and sub-pixel convolution, each exactly as PyTorch computes it.


__all__ = ["MODES", "bilinear_kernel", "icnr", "max_pool_with_indices", "max_unpool", "pixel_shuffle",
           "resize_conv2d", "same_result", "subpixel_conv2d", "transposed_conv2d", "upsample"]
