"""A trained network's upsampling kernel, read from a ``.npy`` array or a tensor of a ``.safetensors`` file
(the format PyTorch and JAX checkpoints are shared in, read with the ``safetensors`` package's numpy
loader: no PyTorch needed), and turned into a :class:`~pyramid_explorer.core.learnable.Upsampler`.

Layouts (:data:`LAYOUTS`): a ``ConvTranspose2d`` weight is ``(C_in, C_out, k, k)``, a ``Conv2d`` weight
``(C_out, C_in, k, k)``; ``plain`` is a bare ``(k, k)`` kernel, or ``(f*f, k, k)`` sub-kernels. One
input/output channel pair is shown, or the mean over either axis (``None``).
"""

from __future__ import annotations

import os

import numpy as np
from safetensors import SafetensorError, safe_open

from pyramid_explorer.core.io import ImageLoadError
from pyramid_explorer.core.learnable import Upsampler

LAYOUTS = {
    "ConvTranspose2d": "(C_in, C_out, k, k)",
    "Conv2d": "(C_out, C_in, k, k)",
    "plain": "(k, k), or (factor**2, k, k) sub-kernels",
}
EXTENSIONS = (".npy", ".safetensors")


class KernelLoadError(ImageLoadError):
    """A kernel cannot be loaded from a file; one line naming the file and the reason (a ValueError, and
    an ImageLoadError so the window reports it as it reports any file that cannot be loaded)."""

    verb = "load a kernel from"


def _first_line(error: BaseException) -> str:
    return str(error).partition("\n")[0] or type(error).__name__


def _extension(path: str | os.PathLike[str]) -> str:
    ext = os.path.splitext(os.fsdecode(path))[1].lower()
    if ext not in EXTENSIONS:
        allowed = ", ".join(EXTENSIONS)
        raise KernelLoadError(path, f"unsupported file type {ext or '(none)'!r}; allowed: {allowed}")
    return ext


def _open_safetensors(path: str | os.PathLike[str]) -> safe_open:
    if not os.path.isfile(path):
        raise KernelLoadError(path, "no such file")
    try:
        return safe_open(os.fsdecode(path), framework="np")
    except (SafetensorError, OSError) as error:
        raise KernelLoadError(path, f"not a safetensors file ({_first_line(error)})") from None


def tensor_names(path: str | os.PathLike[str]) -> dict[str, tuple[int, ...]]:
    """Name -> shape of every tensor in a ``.safetensors`` file (a ``.npy`` file holds one, named "")."""
    if _extension(path) == ".npy":
        return {"": load_weight(path).shape}
    with _open_safetensors(path) as handle:
        return {name: tuple(handle.get_slice(name).get_shape()) for name in handle.keys()}


def load_weight(path: str | os.PathLike[str], name: str | None = None) -> np.ndarray:
    """The float32 weight array of a ``.npy`` file, or the tensor ``name`` of a ``.safetensors`` file
    (``name`` may be left out when the file holds one tensor). KernelLoadError naming the file and the
    reason otherwise: missing file, not that format, unknown tensor (the available names are listed),
    a dtype numpy cannot hold (bfloat16), non-numeric or non-finite values."""
    if _extension(path) == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            raise KernelLoadError(path, "no such file") from None
        except (OSError, ValueError, EOFError) as error:
            raise KernelLoadError(path, f"not a .npy array ({_first_line(error)})") from None
    else:
        with _open_safetensors(path) as handle:
            names = list(handle.keys())
            if name is None and len(names) == 1:
                name = names[0]
            if name not in names:
                listed = ", ".join(names) if names else "none"
                what = "name the tensor to load" if name is None else f"no tensor named {name!r}"
                raise KernelLoadError(path, f"{what}; the file holds: {listed}")
            try:
                data = handle.get_tensor(name)
            except (SafetensorError, TypeError, ValueError) as error:
                raise KernelLoadError(
                    path, f"tensor {name!r} cannot be read without PyTorch ({_first_line(error)})"
                ) from None
    if data.dtype == np.bool_ or data.dtype.kind not in "iuf":
        raise KernelLoadError(path, f"the weights are {data.dtype}, not numbers")
    data = data.astype(np.float32)
    if data.size == 0 or not np.isfinite(data).all():
        raise KernelLoadError(path, f"the weights (shape {data.shape}) are empty or hold NaN/inf")
    return data


def _channel(weight: np.ndarray, axis: int, index: int | None, label: str) -> np.ndarray:
    """One channel along ``axis`` (``index``), or the mean over it (``None``)."""
    if index is None:
        return weight.mean(axis=axis)
    count = weight.shape[axis]
    if isinstance(index, bool) or not isinstance(index, int | np.integer) or not 0 <= index < count:
        raise ValueError(f"{label} must be None (the mean) or an integer 0..{count - 1}, got {index!r}")
    return np.take(weight, int(index), axis=axis)


def pick_kernel(weight: np.ndarray, layout: str, in_channel: int | None = None,
                out_channel: int | None = None) -> np.ndarray:
    """The ``(k, k)`` kernel of one input/output channel pair of ``weight`` in ``layout`` (:data:`LAYOUTS`),
    or the mean over the channels left as ``None``; a ``plain`` weight must already be 2-D."""
    weight = np.asarray(weight, dtype=np.float32)
    if layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}; allowed: {', '.join(LAYOUTS)}")
    if layout == "plain":
        if weight.ndim != 2:
            raise ValueError(f"a plain kernel is 2-D (k, k), got shape {weight.shape}")
        return weight
    if weight.ndim != 4:
        raise ValueError(f"a {layout} weight is 4-D {LAYOUTS[layout]}, got shape {weight.shape}")
    if layout == "ConvTranspose2d":
        return _channel(_channel(weight, 1, out_channel, "out_channel"), 0, in_channel, "in_channel")
    return _channel(_channel(weight, 1, in_channel, "in_channel"), 0, out_channel, "out_channel")


def pick_subkernels(weight: np.ndarray, factor: int, in_channel: int | None = None,
                    out_channel: int | None = None) -> np.ndarray:
    """The ``(f*f, k, k)`` sub-kernels of a sub-pixel layer's ``Conv2d`` weight ``(C*f*f, C_in, k, k)``.

    PyTorch's pixel shuffle makes output channel ``c`` from conv channels ``c*f*f .. c*f*f + f*f - 1``, so
    ``out_channel`` picks that group (``None``: the mean over the ``C`` groups) and ``in_channel`` the
    input channel (``None``: the mean). A 3-D ``(f*f, k, k)`` weight is taken as it is.
    """
    weight = np.asarray(weight, dtype=np.float32)
    groups = factor * factor
    if weight.ndim == 3 and weight.shape[0] == groups:
        return weight
    if weight.ndim != 4 or weight.shape[0] % groups:
        raise ValueError(f"a sub-pixel weight is (C*{groups}, C_in, k, k) for factor {factor}, or "
                         f"({groups}, k, k); got shape {weight.shape}")
    per_input = _channel(weight, 1, in_channel, "in_channel")
    grouped = per_input.reshape(weight.shape[0] // groups, groups, *weight.shape[2:])
    return _channel(grouped, 0, out_channel, "out_channel")


def load_upsampler(path: str | os.PathLike[str], method: str, factor: int, name: str | None = None,
                   layout: str = "ConvTranspose2d", in_channel: int | None = None,
                   out_channel: int | None = None, padding: int = 0) -> Upsampler:
    """The ``method`` upsampler whose weights are the tensor ``name`` of the file at ``path``.

    Transposed convolution reads a ``(k, k)`` kernel through ``layout`` (``padding`` as in its layer),
    resize-convolution likewise (``Conv2d`` layout usually), sub-pixel convolution its ``(f*f, k, k)``
    sub-kernels (:func:`pick_subkernels`; ``layout`` is ignored). KernelLoadError naming the file
    and the reason for any problem, including a weight of the wrong shape for ``method``.
    """
    weight = load_weight(path, name)
    try:
        if method == "subpixel":
            return Upsampler(method, factor, pick_subkernels(weight, factor, in_channel, out_channel))
        return Upsampler(method, factor, pick_kernel(weight, layout, in_channel, out_channel), padding)
    except ValueError as error:
        raise KernelLoadError(path, str(error)) from None
