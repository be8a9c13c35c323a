"""The Unpool tool: G[level], its 2x2 max pool, the unpooled result and where every maximum was
recorded; and their export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.level_input import POOL as FACTOR
from pyramid_explorer.core.level_input import unavailable
from pyramid_explorer.core.upsampling import max_pool_with_indices, upsample
from pyramid_explorer.display import Layer, make_layer
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool


@dataclass(frozen=True, eq=False)
class UnpoolRequest:
    pyramid: Pyramid
    level: int


@dataclass(frozen=True, eq=False)
class UnpoolResult:
    """G[level], its 2x2 max pool, the unpooled result, and where every maximum was recorded.

    `indices` are `max_pool_with_indices`'s flat positions (int64, the pooled shape);
    `argmax_rows`/`argmax_cols` are int32 (H // 2, W // 2, C): the row and column in G[level] of the
    maximum of window (i, j) in channel c, i.e. divmod(indices, W); the unpooled output holds the
    pooled values there and zeros everywhere else, and `mask` (uint8, G[level]'s shape) is 255 there.
    """

    image_id: int
    level: int
    source: Layer
    pooled: Layer
    unpooled: Layer
    indices: np.ndarray
    argmax_rows: np.ndarray
    argmax_cols: np.ndarray
    mask: np.ndarray

    @property
    def dropped(self) -> tuple[int, int]:
        """Rows and columns at the bottom and right that pooling's floor mode leaves out (0 or 1)."""
        h, w = self.source.shape[:2]
        return h % FACTOR, w % FACTOR


def locate_maxima(req: UnpoolRequest) -> Iterator[Progress | UnpoolResult]:
    """Max-pool G[level] 2x2 with indices, unpool it back to G[level]'s size, and locate each maximum."""
    p, i = req.pyramid, req.level
    if not 0 <= i < p.levels:
        raise ValueError(f"level {i} is out of range 0..{p.levels - 1}")
    fine = p.gaussian[i]
    h, w = fine.shape[:2]
    if min(h, w) < FACTOR:
        raise ValueError(f"level {i} ({w} x {h}) is smaller than the {FACTOR}x{FACTOR} pooling window")
    yield Progress(0, 2, f"Level {i}: max pool with indices")
    pooled, indices = max_pool_with_indices(fine, FACTOR)
    yield Progress(1, 2, f"Level {i}: unpool")
    out = upsample(pooled, "unpool", FACTOR, size=(w, h), indices=indices)
    rows, cols = np.divmod(indices.reshape(*indices.shape[:2], -1), w)
    mask = np.zeros((h, w, rows.shape[2]), np.uint8)
    for c in range(rows.shape[2]):
        mask[rows[..., c], cols[..., c], c] = 255
    source = make_layer(fine, i)
    # a pooled pixel covers a 2x2 window of G[i]: twice its pixel, from the same outer corner (not
    # G[i + 1]'s placement, whose pixels are centred on every other pixel of G[i])
    yield UnpoolResult(image_id=p.image_id, level=i, source=source,
                     pooled=make_layer(pooled, i + 1, origin=source.origin),
                     unpooled=make_layer(to_dtype(out, fine.dtype), i),
                     indices=indices, argmax_rows=rows.astype(np.int32), argmax_cols=cols.astype(np.int32),
                     mask=mask.reshape(fine.shape))



def unpool_arrays(result: UnpoolResult, fmt: str) -> Arrays:
    """Pooled and unpooled images and a uint8 mask of the recorded maxima (255 there, per channel);
    the flat indices too, except in PNG, which cannot hold int64."""
    i = result.level
    arrays = [NamedArray("pooled", result.pooled.data, "unpool", level=i + 1),
              NamedArray("unpooled", result.unpooled.data, "unpool", level=i),
              NamedArray("argmax_mask", result.mask, "unpool", level=i,
                         details={"what": "255 where a window's maximum was recorded, per channel"})]
    if fmt != "png":
        arrays.append(NamedArray("indices", result.indices, "unpool", level=i + 1,
                                 details={"what": "flat index row * W + col in G[level] of each maximum "
                                                  "(max_pool_with_indices)"}))
    return tuple(arrays), {"tool": "unpool", "level": i, "window": FACTOR}




def _key(result: UnpoolResult) -> Key:
    return ("unpool", result.image_id, result.level)


def _plan(state: State) -> Plan:
    p, level = state.pyramid, state.level
    g = p.gaussian[level]
    if unavailable("unpool", g.shape, level) is not None:
        return Plan(message=f"Level {level} ({g.shape[1]} x {g.shape[0]}) is smaller than the 2x2 pooling "
                            "window. Select a finer level.")
    return Plan((("unpool", p.image_id, level),), locate_maxima, lambda _: UnpoolRequest(p, level))


TOOL = Tool("unpool", "&Unpool", "pyramid_explorer.app.tabs.unpool:UnpoolTab", _plan, _key,
            export=unpool_arrays)
