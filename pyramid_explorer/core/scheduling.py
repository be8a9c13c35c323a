"""Running the tile engine's export stages: Dask's threaded scheduler within a memory budget, or a cluster.

A stage computes one level tile by tile and stores each tile in its OME-Zarr array. Locally, the number of
worker threads is what `memory_limit` allows for tasks of a stage's estimated size; on a
`dask.distributed` cluster the same tasks run on the workers (which must see the output folder and the
input file at the same paths), and a cancelled stage waits until none of its tasks still runs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dask
import dask.array as da
import numpy as np
import zarr
from dask.base import tokenize
from dask.callbacks import Callback
from dask.highlevelgraph import HighLevelGraph
from dask.typing import Key
from dask.utils import format_bytes

from pyramid_explorer.core import omezarr
from pyramid_explorer.core.graphs import Chunks, Stored, band_level, cast_level, reduce_level, tiled
from pyramid_explorer.core.pyramid import STORAGE_DTYPES
from pyramid_explorer.core.strips import finite_span
from pyramid_explorer.core.tiling import ALIGN_DOWN, ALIGN_UP, MARGIN_DOWN, MARGIN_UP

if TYPE_CHECKING:
    from distributed import Client


class Cancelled(Exception):
    """The export's `cancel()` returned True."""


class MemoryLimitError(ValueError):
    """The memory limit is too small for even one tile task at the chunk size asked for."""


def rss_bytes() -> int:
    """Resident memory of this process now (Linux), else its peak so far (other Unixes), else 0."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    with contextlib.suppress(ImportError, AttributeError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if os.uname().sysname == "Darwin" else peak * 1024
    return 0


@dataclass(frozen=True)
class Stage:
    """One step of an export: compute `array` tile by tile and store it in `target`."""

    label: str
    array: da.Array
    target: zarr.Array[Any]
    task_bytes: int  # estimated peak memory of one task


def _store_tile(tile: np.ndarray, target: zarr.Array[Any], y: int, x: int) -> tuple[Any, int]:
    """Write a tile; returns its finite (min, max) for the level's value range, and its bytes."""
    omezarr.write_tile(target, y, x, tile)
    return finite_span(tile), tile.nbytes


def _store_graph(stage: Stage) -> tuple[HighLevelGraph, list[Any]]:
    """The stage's graph with one store task per tile (each depends on its tile only)."""
    array = stage.array
    name = f"store-{tokenize(array.name, str(stage.target.store), stage.target.path)}"
    starts = [np.cumsum((0, *sizes[:-1])) for sizes in array.chunks[:2]]
    tail = (0,) * (array.ndim - 2)
    layer: dict[Key, tuple[Any, ...]] = {
        (name, i, j): (_store_tile, (array.name, i, j, *tail), stage.target, int(y), int(x))
        for i, y in enumerate(starts[0]) for j, x in enumerate(starts[1])}
    # dask's Array fails dask's own DaskCollection protocol (its __dask_scheduler__ is no staticmethod)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[array])  # type: ignore[list-item]
    return graph, list(layer)


_CONNECT_TIMEOUT = "10s"  # to reach a scheduler; a cluster on the other side of a network can be slow
# Memory that the allocator and the libraries keep once tasks have freed theirs (measured: ~170 MB after
# an export in 2048-pixel tiles on Linux), counted once beside the process's own memory at the start.
RESERVE = 256 * 2**20


class Runner:
    """Runs stages on Dask's threaded scheduler within a memory budget, or on a distributed cluster."""

    def __init__(self, scheduler: str | None, memory_limit: int | None) -> None:
        self.memory_limit = memory_limit
        self.baseline = rss_bytes()
        self.client = None
        if scheduler is not None:
            try:
                from distributed import Client
            except ImportError:
                raise ValueError("a scheduler address needs dask.distributed: pip install "
                                 "'pyramid-explorer[cluster]'") from None
            try:
                self.client = Client(scheduler, timeout=_CONNECT_TIMEOUT, set_as_default=False)
            except OSError as error:
                raise ValueError(f"cannot connect to the Dask scheduler at {scheduler}: {error}") from None

    def close(self) -> None:
        if self.client is not None:
            self.client.close()

    def workers(self, task_bytes: int) -> int:
        """Threads for tasks of `task_bytes` each: all cores, fewer when the memory limit says so."""
        cores = os.cpu_count() or 1
        if self.memory_limit is None:
            return cores
        budget = self.memory_limit - self.baseline - RESERVE
        if budget < task_bytes:
            raise MemoryLimitError(
                f"the memory limit of {format_bytes(self.memory_limit)} leaves "
                f"{format_bytes(max(budget, 0))} for tile tasks after this process's own "
                f"{format_bytes(self.baseline)} and {format_bytes(RESERVE)} of allocator slack, and one "
                f"task needs about {format_bytes(task_bytes)}: use a smaller chunk or a higher limit")
        return max(1, min(cores, budget // task_bytes))

    def run(self, stage: Stage, on_tile: Callable[[Any], None]) -> None:
        graph, keys = _store_graph(stage)
        if self.client is None:
            self._run_local(graph, keys, self.workers(stage.task_bytes), on_tile)
        else:
            self._run_distributed(self.client, graph, keys, on_tile)

    @staticmethod
    def _run_local(graph: HighLevelGraph, keys: list[Any], workers: int,
                   on_tile: Callable[[Any], None]) -> None:
        wanted = set(keys)

        def finished(key: Any, result: Any, *_: Any) -> None:
            if key in wanted:
                on_tile(result)

        pool = ThreadPoolExecutor(workers, thread_name_prefix="pyramid-explorer-tile")
        try:
            with Callback(posttask=finished):
                dask.threaded.get(graph, keys, num_workers=workers, pool=pool)
        finally:  # tasks already running finish before the caller removes their output folder
            pool.shutdown(wait=True, cancel_futures=True)

    @staticmethod
    def _run_distributed(client: Client, graph: HighLevelGraph, keys: list[Any],
                         on_tile: Callable[[Any], None]) -> None:
        from distributed import as_completed

        futures = client.get(dict(graph), keys, sync=False)
        try:
            for future in as_completed(futures, loop=client.loop):
                on_tile(future.result())
        except BaseException:
            client.cancel(futures)
            client.run(_wait_for_tasks, keys[0][0])
            raise


def _wait_for_tasks(prefix: str, dask_worker: Any = None, timeout: float = 120.0) -> None:
    """On a worker: wait until no task of a cancelled stage is still running (its write would land in a
    folder the client is about to remove)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = [task.key for task in getattr(dask_worker.state, "executing", ())]
        if not any(isinstance(key, tuple) and key[0] == prefix for key in running):
            return
        time.sleep(0.05)


def stage_bytes(kind: str, chunk: int, channels: int, itemsize: int) -> int:
    """A generous estimate of one tile task's peak memory, from the block sizes in the geometry above."""
    tile = chunk * chunk * channels
    if kind == "copy":
        return 4 * tile * max(itemsize, 4)
    if kind == "reduce":  # the gathered block, pyrDown's result, a stored chunk read and one written
        block = (2 * chunk + 8) * (2 * chunk + ALIGN_DOWN + MARGIN_DOWN + 8) * channels * itemsize
        return 2 * block + 4 * tile * itemsize
    side = chunk // 2 + ALIGN_UP + MARGIN_UP + 4  # band: coarse block, its float32 and pyrUp in float32
    return 2 * side * side * channels * (itemsize + 4) + 4 * side * side * channels * 4 + 6 * tile * 4



def tile_stages(image: da.Array, gaussian: Sequence[zarr.Array[Any]], bands: Sequence[zarr.Array[Any]] | None,
                border: int, storage: str, chunk: int) -> list[Stage]:
    """The tile engine's stages filling the (empty) level arrays, in order: level 0 copied from the
    image, each level reduced from the stored one before, then each band from the stored levels."""
    channels = image.shape[2] if image.ndim == 3 else 1
    size = image.dtype.itemsize
    stages = [Stage("0", cast_level(Chunks(tiled(image, chunk)), image.dtype, chunk), gaussian[0],
                    stage_bytes("copy", chunk, channels, size))]
    for level in range(1, len(gaussian)):
        array = reduce_level(Stored(gaussian[level - 1]), border, chunk)
        stages.append(Stage(str(level), array, gaussian[level], stage_bytes("reduce", chunk, channels, size)))
    if bands is not None:
        stored = [Stored(array) for array in gaussian]
        for level in range(len(gaussian) - 1):
            band = band_level(stored[level], stored[level + 1], border, storage, chunk)
            stages.append(Stage(f"laplacian/{level}", band, bands[level],
                                stage_bytes("band", chunk, channels, size)))
        last = len(gaussian) - 1
        stages.append(Stage(f"laplacian/{last}", cast_level(stored[-1], STORAGE_DTYPES[storage], chunk),
                            bands[-1], stage_bytes("copy", chunk, channels, size)))
    return stages
