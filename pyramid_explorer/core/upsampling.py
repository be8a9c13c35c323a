"""Upsampling methods compared by the app: OpenCV interpolation, pyrUp, zero insertion, learned-style
transposed convolution with a bilinear kernel, and max-unpooling.

Every function takes arrays of shape ``(H, W)`` or ``(H, W, C)`` (C channels treated independently, the
same kernel for each). :func:`upsample` converts its input to float32 *before* any resampling, so every
mode works on the same values (uint8 and uint16 images keep their 0..255 / 0..65535 scale, no
normalisation) and the float32 rounding of ``cv2.resize`` applies, not its fixed-point uint8 path.

:func:`transposed_conv2d`, :func:`max_pool_with_indices` and :func:`max_unpool` reproduce PyTorch's
``conv_transpose2d``, ``max_pool2d(..., return_indices=True)`` and ``max_unpool2d`` with numpy and
OpenCV only (the layout differs: channels last here, ``(N, C, H, W)`` in PyTorch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from pyramid_explorer.core.arrays import as_hwc, check_int, in_bands
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


# Pooling works on strips of about this many output pixels, so that its temporary arrays stay in cache.
_STRIP_PIXELS = 1 << 14


def _in_bands(n_rows: int, n_pixels: int, work: Callable[[int, int], None]) -> None:
    """``core.arrays.in_bands`` over ``range(n_rows)``, in the calling thread for small arrays."""
    in_bands(n_rows, work, most=n_pixels // (4 * _STRIP_PIXELS))


def _pixels(a: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` array seen as ``(H, W)`` opaque pixels, so strided pixel copies move C values at once."""
    return a.view(np.dtype((np.void, a.shape[2] * a.itemsize)))[:, :, 0]


_NEAREST_DEPTHS = {np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.float32, np.float64)}


def _phase(rows: np.ndarray, s: int, dy: int, dx: int, out: np.ndarray) -> None:
    """``rows[dy::s, dx::s]`` into ``out`` (``(n, pw, C)``, contiguous): the window position (dy, dx) of
    every ``s x s`` window of ``rows`` (``(n * s, >= pw * s, C)``).

    OpenCV's nearest-neighbour halving picks exactly positions (0, 0) (INTER_NEAREST: ``floor(2 x)``) and
    (1, 1) (INTER_NEAREST_EXACT: ``floor(2 x + 1)``), ~1.7x faster than numpy's strided pixel copy.
    """
    n, pw = out.shape[:2]
    if s == 2 and dy == dx and rows.dtype in _NEAREST_DEPTHS and rows.shape[2] <= 4 and n * pw > 4:
        flag = cv2.INTER_NEAREST if dy == 0 else cv2.INTER_NEAREST_EXACT
        dst = out if out.shape[2] > 1 else out[:, :, 0]  # OpenCV's one-channel images are (H, W)
        cv2.resize(rows[:, : 2 * pw], (pw, n), dst=dst, interpolation=flag)
        return
    _pixels(out)[:] = _pixels(rows)[dy::s, dx : pw * s : s]


def max_pool_with_indices(x: np.ndarray, size: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling over ``size x size`` windows with stride ``size``, and where each maximum came from.

    PyTorch's ``max_pool2d(kernel_size=size, stride=size, return_indices=True)`` per channel: floor mode
    (trailing rows/columns that do not fill a window are dropped), ``indices`` are int64 flat positions
    ``row * W + col`` in the channel's ``H x W`` plane, the first maximum in row-major window order wins
    ties, and as in PyTorch's CPU kernel a NaN counts as a maximum (the last NaN of a window wins).
    ``pooled`` keeps the dtype of ``x``; both outputs have the shape ``(H // size, W // size[, C])``.
    """
    x3 = np.ascontiguousarray(as_hwc(x, "x"))
    s = check_int(size, "size", 1)
    h, w, c = x3.shape
    if h < s or w < s:
        raise ValueError(f"a {h}x{w} array is smaller than the {s}x{s} pooling window")
    ph, pw = h // s, w // s
    pooled = np.empty((ph, pw, c), x3.dtype)
    indices = np.empty((ph, pw, c), np.int64)
    # Flat index = (i*s + dy) * W + j*s + dx: the offset of the winning window position, plus the
    # window's column base (one row of it, repeated per channel) and row base. The offsets grow with the
    # window position, so the winner's offset itself is tracked (in the narrowest dtype that holds it).
    offsets = [dy * w + dx for dy in range(s) for dx in range(s)]
    col_base = np.repeat(np.arange(pw, dtype=np.int64) * s, c)
    floating = np.issubdtype(x3.dtype, np.floating)
    strip = max(1, _STRIP_PIXELS // pw)

    def work(start: int, stop: int) -> None:
        value = np.empty((strip, pw, c), x3.dtype)
        greater = np.empty(value.shape, np.bool_)
        which = np.empty(value.shape, np.min_scalar_type(offsets[-1]))
        candidate = np.empty_like(which)
        for r0 in range(start, stop, strip):
            r1 = min(stop, r0 + strip)
            n, best = r1 - r0, pooled[r0:r1]
            for nan_aware in (False, True):
                # The windows' positions are visited in row-major order; a later one wins only if
                # strictly greater (or NaN, as in PyTorch), so the first maximum keeps ties.
                _phase(x3[r0 * s : r1 * s], s, 0, 0, best)
                which[:n] = 0
                for k in range(1, s * s):
                    dy, dx = divmod(k, s)
                    _phase(x3[r0 * s : r1 * s], s, dy, dx, value[:n])
                    np.greater(value[:n], best, out=greater[:n])
                    if nan_aware:
                        greater[:n] |= np.isnan(value[:n])
                    np.maximum(best, value[:n], out=best)
                    # ``which`` only grows with k, so max(which, offset * greater) records the newest winner.
                    np.multiply(greater[:n], which.dtype.type(offsets[k]), out=candidate[:n])
                    np.maximum(which[:n], candidate[:n], out=which[:n])
                # np.maximum propagates NaN, so a window holding one shows it; only then redo it slowly.
                if not floating or nan_aware or not np.isnan(best.max()):
                    break
            rows = indices[r0:r1].reshape(n, pw * c)
            np.add(which[:n].reshape(n, pw * c), col_base, out=rows)
            rows += (np.arange(r0, r1, dtype=np.int64) * (s * w))[:, None]

    _in_bands(ph, ph * pw, work)
    if np.ndim(x) == 2:
        return pooled[:, :, 0], indices[:, :, 0]
    return pooled, indices


def max_unpool(pooled: np.ndarray, indices: np.ndarray, output_shape: Sequence[int]) -> np.ndarray:
    """Each pooled value put back at its flat index in a zero array of ``output_shape`` (max_unpool2d).

    ``output_shape`` is the full shape ``(H, W)`` or ``(H, W, C)`` of the array that was pooled, so odd
    sizes come back whole (rows and columns that pooling dropped are zero). The result keeps the dtype of
    ``pooled``. Indices outside ``[0, H*W)`` raise ValueError, as PyTorch raises. If an index repeats
    within a channel, which of its values lands is unspecified, as in PyTorch.
    """
    p3 = np.ascontiguousarray(as_hwc(pooled, "pooled"))
    indices = np.asarray(indices)
    if indices.shape != np.shape(pooled) or not np.issubdtype(indices.dtype, np.integer):
        raise ValueError(
            f"indices must be integers of the pooled shape {np.shape(pooled)}, "
            f"got {indices.dtype} {indices.shape}"
        )
    shape = tuple(int(n) for n in output_shape)
    if len(shape) != np.ndim(pooled) or (len(shape) == 3 and shape[2] != p3.shape[2]) or min(shape) < 1:
        raise ValueError(f"output_shape {shape} does not fit pooled values of shape {np.shape(pooled)}")
    ph, pw, c = p3.shape
    plane = shape[0] * shape[1]
    idx = np.ascontiguousarray(indices, np.int64).reshape(ph, pw * c)
    out = np.zeros(plane * c, p3.dtype)
    # Channel ch of flat position f lives at f*C + ch of the channels-last buffer.
    channel = np.tile(np.arange(c, dtype=np.int64), pw)
    strip = max(1, _STRIP_PIXELS // pw)

    def work(start: int, stop: int) -> None:
        flat = np.empty((strip, pw * c), np.int64)
        for r0 in range(start, stop, strip):
            r1 = min(stop, r0 + strip)
            part, pos = idx[r0:r1], flat[: r1 - r0]
            # Negative indices become huge as uint64, so one maximum checks both ends of the range.
            if part.view(np.uint64).max() >= plane:
                bad = part[(part < 0) | (part >= plane)][0]
                raise ValueError(f"index {bad} is outside [0, {plane}) for output_shape {shape}")
            np.multiply(part, c, out=pos)
            pos += channel
            out[pos.ravel()] = p3[r0:r1].ravel()

    _in_bands(ph, ph * pw, work)
    return out.reshape(shape)


def _deconv_bilinear(img: np.ndarray, factor: int, size: tuple[int, int]) -> np.ndarray:
    """``transposed_conv2d`` by ``bilinear_kernel(2f - f % 2)``, stride f, padding ceil((f - 1) / 2), at size.

    That transposed convolution is bilinear interpolation with half-pixel centres and zeros outside
    the image: output pixel ``y`` weighs input ``i`` by ``max(0, 1 - |(y + 0.5)/f - 0.5 - i|)``. So at
    exactly ``f`` times the size it equals ``cv2.resize(INTER_LINEAR)`` (which repeats the edge pixel
    instead of fading to zero) with the outermost rows and columns, whose sample positions fall outside
    the input, scaled by their weight. That is the fast path used here, equal to ``transposed_conv2d``
    to float32 rounding (tested). Other sizes (one pixel more or fewer) run ``transposed_conv2d`` itself:
    the extra row or column comes from ``output_padding`` (zeros at factor 1, where PyTorch allows no
    output padding), a missing one is cropped.
    """
    h, w = img.shape[:2]
    width, height = size
    if (width, height) == (w * factor, h * factor):
        out = cv2.resize(img, size, interpolation=cv2.INTER_LINEAR).reshape(height, width, -1)
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
    if mode in _RESIZE_FLAGS:
        out = cv2.resize(img, size, interpolation=_RESIZE_FLAGS[mode])
    elif mode == "pyrup":
        # OpenCV 5.0's pyrUp reads outside a 1-pixel-wide source when asked for 3 columns (garbage in the
        # last one). Along a 1-pixel side its result is constant, so make 2 columns and repeat one.
        widen = w == 1 and width == 3
        out = cv2.pyrUp(img, dstsize=(2, height) if widen else size).reshape(height, -1, *img.shape[2:])
        if widen:
            out = np.repeat(out[:, :1], 3, axis=1)
    elif mode == "zero_insert":
        out = np.zeros((height, width, *img.shape[2:]), np.float32)
        rows, cols = min(h, len(range(0, height, f))), min(w, len(range(0, width, f)))
        out[: rows * f : f, : cols * f : f] = img[:rows, :cols]
    elif mode == "deconv_bilinear":
        out = _deconv_bilinear(img, f, size)
    else:
        if indices is None:
            raise ValueError(
                "mode 'unpool' needs indices: pass the indices returned by "
                "max_pool_with_indices(original, size=factor) together with its pooled image"
            )
        _check_unpool(np.asarray(indices), f, height, width)
        out = max_unpool(img, indices, (height, width, *img.shape[2:]))
    return out.reshape(height, width, *img.shape[2:])


# ------------------------------------------------------------------------------ learnable upsamplers
# The three ways decoders learn to upsample (Odena, Dumoulin & Olah 2016; Shi et al. 2016): transposed
# convolution (above), resize-convolution and sub-pixel convolution, each exactly as PyTorch computes it.


__all__ = ["MODES", "bilinear_kernel", "icnr", "max_pool_with_indices", "max_unpool", "pixel_shuffle",
           "resize_conv2d", "subpixel_conv2d", "transposed_conv2d", "upsample"]
