"""What a mode upsamples at pyramid level i, written once for every tool.

Every mode upsamples the coarser level G[i + 1] back to the size of G[i], except "unpool": max
unpooling needs the indices of a max pool, so it unpools the 2x2 max pool of G[i] itself.
"""

from __future__ import annotations

import numpy as np

from pyramid_explorer.core.upsampling import max_pool_with_indices, upsample

POOL = 2
"""Side of unpooling's max-pool window (and its stride)."""


def needs_finer(mode: str) -> bool:
    """True for the modes that take G[i] (pooled) rather than G[i + 1] as their input."""
    return mode == "unpool"


def pool_level(fine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2x2 max pool of `fine` (as float32, what unpooling upsamples) and its indices."""
    pooled, indices = max_pool_with_indices(fine, POOL)
    return pooled.astype(np.float32, copy=False), indices


def unpool_level(fine: np.ndarray) -> np.ndarray:
    """max_unpool of the 2x2 max pool of `fine`, at `fine`'s size."""
    values, indices = pool_level(fine)
    return upsample(values, "unpool", POOL, size=(fine.shape[1], fine.shape[0]), indices=indices)


def upsample_level(fine: np.ndarray, coarse: np.ndarray, mode: str,
                   size: tuple[int, int] | None = None) -> np.ndarray:
    """`mode`'s upsampling at a level: `coarse` (G[i + 1]) to `size` (width, height; None: twice its
    size), or for "unpool" the unpooled max pool of `fine` (G[i]), at its size."""
    if needs_finer(mode):
        return unpool_level(fine)
    return upsample(coarse, mode, POOL, size=size)


def unavailable(mode: str, fine_shape: tuple[int, ...], level: int) -> str | None:
    """Why `mode` cannot run at a level whose G[i] has `fine_shape`, or None when it can."""
    h, w = fine_shape[:2]
    if needs_finer(mode) and min(h, w) < POOL:
        return f"max pooling needs {POOL} x {POOL} pixels; G[{level}] is {w} x {h}"
    return None
