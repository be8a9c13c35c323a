"""Memory used again instead of allocated afresh, for the big-image exports.

Fresh memory is costly: every page of a new large array is faulted in and zeroed by the kernel (on a
virtual machine, also backed by the host), and glibc hands arrays over 32 MiB straight back to the kernel
when they are freed. The exports allocate the same few sizes over and over (a strip, a chunk, a chunk's
expansion), so they keep them: `thread_buffer` per thread (`aligned_buffer` for O_DIRECT writes),
`Recycled` for strips handed to other threads.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import Any

import numpy as np

_THREAD = threading.local()


def thread_buffer(use: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised C-contiguous array of `shape` and `dtype` in the memory this thread keeps for
    `use` (a name: buffers used together need different ones), grown to the largest size asked for; its
    contents are the caller's until this thread asks for `use` again."""
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize  # np.prod of a tuple costs microseconds: called per tile
    kept: dict[str, np.ndarray] = _THREAD.__dict__.setdefault("buffers", {})
    raw = kept.get(use)
    if raw is None or raw.nbytes < nbytes:
        raw = kept[use] = np.empty(max(nbytes, 1), np.uint8)
    return raw[:nbytes].view(dtype).reshape(shape)


def aligned_buffer(use: str, nbytes: int, align: int) -> np.ndarray:
    """`thread_buffer(use, ...)` as `nbytes` uint8 starting at an address that is a multiple of `align`
    (a power of two), for O_DIRECT writes."""
    raw = thread_buffer(use, (nbytes + align,), np.uint8)
    skip = -raw.ctypes.data % align
    return raw[skip : skip + nbytes]


class Recycled:
    """Arrays handed out again once nothing but this pool refers to them (strips read on one thread and
    dropped by others). An array that no view, level or block in flight still holds has only the pool's
    references, so reusing it is safe."""

    def __init__(self, keep: int = 8) -> None:
        self.keep = keep
        self.arrays: list[np.ndarray] = []

    def empty(self, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        for array in self.arrays:
            # 3 references: the list's, the loop's and getrefcount's argument
            if array.shape == shape and array.dtype == dtype and sys.getrefcount(array) == 3:
                return array
        array = np.empty(shape, dtype)
        if len(self.arrays) < self.keep:
            self.arrays.append(array)
        return array
