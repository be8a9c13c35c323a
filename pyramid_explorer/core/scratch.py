"""Memory used again instead of allocated afresh, for the big-image exports.

Fresh memory is costly: every page of a new large array is faulted in and zeroed by the kernel (on a
virtual machine, also backed by the host), and glibc hands arrays over 32 MiB straight back to the kernel
when they are freed. The exports allocate the same few sizes over and over (a strip, a chunk, a chunk's
expansion), so they keep them: `thread_buffer` per thread, `Recycled` for strips handed to other threads.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

_THREAD = threading.local()
_KEPT = 8  # per thread: a chunk in each dtype, and a chunk's expansion at the interior and edge sizes


def thread_buffer(use: str, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """An uninitialised array of `shape` and `dtype` for `use` (a name: buffers used together need
    different ones) that this thread gets again the next time it asks for the same (the few used last are
    kept); its contents are the caller's until it asks again."""
    kept: dict[tuple[Any, ...], np.ndarray] = _THREAD.__dict__.setdefault("buffers", {})
    key = (use, tuple(shape), np.dtype(dtype).str)
    buffer = kept.pop(key, None)
    if buffer is None:
        buffer = np.empty(shape, dtype)
    kept[key] = buffer  # most recently used last
    while len(kept) > _KEPT:
        del kept[next(iter(kept))]
    return buffer


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
