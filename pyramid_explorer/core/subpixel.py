"""Learnable upsamplers' building blocks (Shi et al. 2016; Aitken et al. 2017): pixel shuffle, sub-pixel
convolution, ICNR and resize-convolution, channels last, identical to PyTorch's ``pixel_shuffle``,
``conv2d(padding=k // 2)`` + ``pixel_shuffle`` and ``interpolate(mode="nearest")`` + ``conv2d``.

Public through :mod:`pyramid_explorer.core.upsampling`, beside the fixed upsampling modes.
"""

from __future__ import annotations

import cv2
import numpy as np

from pyramid_explorer.core.arrays import as_hwc, check_int


def _check_odd_kernel(kernel: np.ndarray, name: str) -> np.ndarray:
    """``kernel`` as a float32 ``k x k`` array with k odd (zero padding ``k // 2`` keeps the size)."""
    kernel = np.asarray(kernel, dtype=np.float32)
    if kernel.ndim != 2 or kernel.shape[0] != kernel.shape[1] or kernel.shape[0] % 2 == 0:
        raise ValueError(
            f"{name} must be a square k x k array with k odd (1, 3, 5, ...), got shape {kernel.shape}"
        )
    return kernel


def _correlate(x3: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """``(H, W, C)`` float32 correlation of every channel with an odd kernel, zeros outside the image."""
    out = cv2.filter2D(np.ascontiguousarray(x3), cv2.CV_32F, kernel, borderType=cv2.BORDER_CONSTANT)
    return out.reshape(x3.shape)


def pixel_shuffle(x: np.ndarray, factor: int) -> np.ndarray:
    """Rearrange ``(H, W, C*f*f)`` into ``(H*f, W*f, C)`` as PyTorch's ``pixel_shuffle`` (float32).

    ``out[h*f + i, w*f + j, c] = x[h, w, c*f*f + i*f + j]``: sub-pixel channel ``i*f + j`` of output
    channel ``c`` fills phase ``(i, j)``. A single output channel comes back as a 2-D ``(H*f, W*f)`` array,
    so a 2-D input (one channel) is accepted for ``factor`` 1 only.
    """
    f = check_int(factor, "factor", 1)
    x3 = as_hwc(x, "x")
    h, w, channels = x3.shape
    if channels % (f * f):
        raise ValueError(
            f"x has {channels} channels, which is not a multiple of factor**2 = {f * f}: pixel_shuffle "
            f"needs (H, W, C*{f * f})"
        )
    c = channels // (f * f)
    out = x3.astype(np.float32, copy=False).reshape(h, w, c, f, f).transpose(0, 3, 1, 4, 2)
    out = np.ascontiguousarray(out).reshape(h * f, w * f, c)
    return out[:, :, 0] if c == 1 else out


def subpixel_conv2d(x: np.ndarray, kernels: np.ndarray, factor: int) -> np.ndarray:
    """Sub-pixel convolution (ESPCN, Shi et al. 2016): correlate, then :func:`pixel_shuffle` (float32).

    ``kernels`` has shape ``(factor**2, k, k)``, k odd. Every channel of ``x`` is cross-correlated with
    each sub-kernel (zeros outside the image, padding ``k // 2``) and sub-kernel ``i*f + j`` fills output
    phase ``(i, j)``: PyTorch's ``pixel_shuffle(conv2d(x, w, padding=k // 2, groups=C), f)`` with ``w`` the
    sub-kernels repeated per channel as ``(C*f*f, 1, k, k)``. The result is ``(H*f, W*f[, C])``.
    """
    f = check_int(factor, "factor", 1)
    kernels = np.asarray(kernels, dtype=np.float32)
    if kernels.ndim != 3 or kernels.shape[0] != f * f:
        raise ValueError(
            f"kernels must have shape (factor**2, k, k) = ({f * f}, k, k) with k odd, got {kernels.shape}"
        )
    for sub in kernels:
        _check_odd_kernel(sub, f"each of the {f * f} kernels")
    x3 = as_hwc(x, "x")
    h, w, c = x3.shape
    phases = np.empty((h, f, w, f, c), np.float32)
    for index, sub in enumerate(kernels):
        phases[:, index // f, :, index % f] = _correlate(x3, sub)
    out = phases.reshape(h * f, w * f, c)
    return out if np.ndim(x) == 3 else out[:, :, 0]


def icnr(kernel: np.ndarray, factor: int) -> np.ndarray:
    """ICNR initialisation (Aitken et al. 2017): ``factor**2`` copies of ``kernel``, shape ``(f*f, k, k)``.

    With every sub-kernel the same, every output phase gets the same value, so
    ``subpixel_conv2d(x, icnr(kernel, f), f)`` is nearest upsampling of ``x`` correlated with ``kernel``:
    free of checkerboards at initialisation.
    """
    f = check_int(factor, "factor", 1)
    kernel = _check_odd_kernel(kernel, "kernel")
    return np.repeat(kernel[np.newaxis], f * f, axis=0)


def resize_conv2d(x: np.ndarray, kernel: np.ndarray, factor: int) -> np.ndarray:
    """Resize-convolution (Odena et al. 2016): nearest upsampling by ``factor``, then correlation (float32).

    ``kernel`` is ``k x k`` with k odd, zeros outside the upsampled image (padding ``k // 2``): PyTorch's
    ``conv2d(interpolate(x, scale_factor=f, mode="nearest"), kernel, padding=k // 2)`` per channel. Every
    output pixel sees the whole kernel, so a constant image stays constant away from the borders.
    """
    f = check_int(factor, "factor", 1)
    kernel = _check_odd_kernel(kernel, "kernel")
    x3 = as_hwc(x, "x").astype(np.float32, copy=False)
    near = np.repeat(np.repeat(x3, f, axis=0), f, axis=1)
    out = _correlate(near, kernel)
    return out if np.ndim(x) == 3 else out[:, :, 0]
