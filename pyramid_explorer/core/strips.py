"""The strip engine: a pyramid in one pass over the input, every level written as soon as its rows form.

The local export engine of `core.chunked` (the tile engine of `core.graphs` serves dask.distributed
clusters and BORDER_WRAP, whose first rows depend on the image's last ones). Level 0 arrives in strips
of whole rows (one row of the input's tiles); each strip goes straight to its writer and into the
cascade: level i+1's rows are made by `cv2.pyrDown` as soon as level i holds the rows they need
(`tiling.down_window` on rows; a block spans the whole width, so columns see the real image edges and the
float32 SIMD grid of the whole row), and a block of band i's rows is handed over as soon as levels i and
i+1 hold what it needs (`tiling.up_window` on rows) as `BandRows`: the rows it reads, not the float32
band, which its writer computes chunk by chunk (`tiling.up_window` on columns, as the tile engine does)
into buffers that thread keeps. A level keeps only the rows still needed (about a strip and a halo), in
the pieces they were made in: a block is a view into one piece except at a seam between two, where a few
rows are copied. Writers regroup rows into the blocks their store wants and compute, compress and write
them on a thread pool while the next strip is read and reduced, so both cores are busy. Every row equals
the in-memory engine's, bit for bit.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Any, Protocol

import cv2
import dask.array as da
import numpy as np

from pyramid_explorer.core.pyramid import STORAGE_DTYPES, UINT8_BAND_SCALE
from pyramid_explorer.core.scratch import thread_buffer
from pyramid_explorer.core.tiling import (
    ALIGN_DOWN,
    ALIGN_ROWS_DOWN,
    ALIGN_UP,
    MARGIN_DOWN,
    MARGIN_ROWS_DOWN,
    MARGIN_UP,
    Runs,
    Window,
    band_tile,
    down_window,
    run_indices,
    up_window,
)


class RowSink(Protocol):
    """Where a level's rows go, in order: `put(start, rows)`, then `close()` once the level is complete."""

    def put(self, start: int, rows: np.ndarray) -> None: ...

    def close(self) -> None: ...


class BandSink(Protocol):
    """Where a band's rows go, in order: `put(start, rows)` with rows to compute, then `close()`."""

    def put(self, start: int, rows: BandRows) -> None: ...

    def close(self) -> None: ...


@dataclass
class _Held:
    """The rows of a level kept in memory, as the pieces they were made in."""

    height: int
    stop: int = 0
    pieces: list[tuple[int, np.ndarray]] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.stop == self.height

    def add(self, rows: np.ndarray) -> None:
        self.pieces.append((self.stop, rows))
        self.stop += len(rows)

    def views(self, runs: Runs) -> list[np.ndarray]:
        """Rows `runs` (runs of consecutive row numbers) as views into the pieces they lie in, in order."""
        return [data[max(first, start) - start : min(first + count, start + len(data)) - start]
                for first, count in runs for start, data in self.pieces
                if start < first + count and start + len(data) > first]

    def take(self, runs: Runs) -> np.ndarray:
        """Rows `runs` as one array: a view when they lie in one piece."""
        parts = self.views(runs)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def drop_before(self, row: int) -> None:
        self.pieces = [(start, data) for start, data in self.pieces if start + len(data) > row]


def _columns(runs: Runs, width: int) -> np.ndarray | None:
    """Column indices a whole-width block reads (None: the columns as they are)."""
    return None if runs == ((0, width),) else run_indices(runs)


@dataclass(frozen=True)
class BandRows:
    """Rows of a Laplacian band, computed column block by column block on demand: `columns(x0, x1)` is
    band[:, x0:x1] of these rows, fine - expand(coarse) over the coarse block those columns need
    (`tiling.up_window`, exact like the whole rows). The writer computes each chunk's columns into its own
    buffers, so a float32 band never exists whole-width in memory. `coarse` None: the last band, the
    coarsest level itself in the band dtype. `scaled`: float32 bands of uint8 levels given as int16
    band * `UINT8_BAND_SCALE` (`omezarr`'s scaled-int16 encoding)."""

    fine: np.ndarray  # the level's rows
    coarse: np.ndarray | None  # the next level's rows they read (`rows`.runs)
    rows: Window | None
    border: int
    storage: str
    scaled: bool = False

    def __len__(self) -> int:
        return len(self.fine)

    @property
    def shape(self) -> tuple[int, ...]:
        return self.fine.shape

    @property
    def dtype(self) -> np.dtype:
        """The dtype `columns` gives."""
        return np.dtype(np.int16 if self.scaled else STORAGE_DTYPES[self.storage])

    @property
    def nbytes(self) -> int:
        """The bytes of these rows of the band (in its storage dtype, scaled or not)."""
        return self.fine.size * np.dtype(STORAGE_DTYPES[self.storage]).itemsize

    def columns(self, x0: int, x1: int) -> np.ndarray:
        """Band[:, x0:x1] of these rows: a view into this thread's buffer, valid until its next call."""
        fine = self.fine[:, x0:x1]
        if self.coarse is None or self.rows is None:
            return fine.astype(self.dtype) * self.dtype.type(UINT8_BAND_SCALE if self.scaled else 1)
        cols = up_window(self.coarse.shape[1], self.fine.shape[1], x0, x1, self.border, ALIGN_UP, MARGIN_UP)
        if len(cols.runs) == 1:
            first, count = cols.runs[0]
            coarse = self.coarse[:, first : first + count]
        else:
            coarse = self.coarse[:, run_indices(cols.runs)]
        return band_tile(fine, coarse, self.storage, self.rows, cols, thread_buffer, self.scaled)


class Cascade:
    """Makes every Gaussian level (and band) of an image fed to it strip by strip, top to bottom.

    `shapes` are the Gaussian levels' shapes; `gaussian[i]` receives level i's rows and `bands[i]` band i's
    (None: no Laplacian pyramid), each exactly once and in order. Band rows arrive as `BandRows`, computed
    by whoever writes them, in blocks of `band_block` rows (the last one shorter; None: as soon as they
    can be computed), `scaled_bands` as `BandRows.scaled` says.
    """

    def __init__(self, shapes: Sequence[tuple[int, ...]], border: int, storage: str,
                 gaussian: Sequence[RowSink], bands: Sequence[BandSink] | None,
                 band_block: int | None = None, scaled_bands: bool = False) -> None:
        if border == cv2.BORDER_WRAP:
            raise ValueError("the strip engine cannot wrap rows around; use the tile engine")
        self.shapes, self.border, self.storage, self.scaled = list(shapes), border, storage, scaled_bands
        self.gaussian, self.bands = list(gaussian), None if bands is None else list(bands)
        self.band_block = band_block
        self.held = [_Held(shape[0]) for shape in shapes]
        self.band_stop = [0] * len(shapes)
        self.down_cols = [down_window(shapes[i][1], 0, shapes[i + 1][1], border, ALIGN_DOWN, MARGIN_DOWN)
                          for i in range(len(shapes) - 1)]

    def feed(self, rows: np.ndarray) -> None:
        """The next rows of level 0."""
        self._add(0, rows)

    def _add(self, level: int, rows: np.ndarray) -> None:
        start = self.held[level].stop
        self.held[level].add(rows)
        self.gaussian[level].put(start, rows)
        if self.held[level].complete:
            self.gaussian[level].close()
        last = level == len(self.shapes) - 1
        if not last:
            self._reduce(level)
        if self.bands is not None:
            if level > 0:
                self._band(level - 1)
            if last:
                self._band(level)
        self._forget(level)

    def _reduce(self, level: int) -> None:
        """Level+1's rows that level's rows now allow, in two calls: the few whose block straddles the
        seam between the last two pieces (copied), then those inside the last piece (a view)."""
        fine, coarse = self.held[level], self.held[level + 1]
        a = coarse.stop
        # the block of rows [a, b) ends 1 + MARGIN_ROWS_DOWN rows past row 2b, or at the level's edge
        reach = (fine.stop - MARGIN_ROWS_DOWN - 1) // 2
        b = coarse.height if fine.complete else min(coarse.height, max(a, reach))
        seam = fine.pieces[-1][0]
        split = min(b, max(a, (seam + 5) // 2))  # first output row whose block starts inside the last piece
        for lo, hi in ((a, split), (split, b)):
            if hi > lo:
                self._add(level + 1, self._down(level, lo, hi))

    def _down(self, level: int, lo: int, hi: int) -> np.ndarray:
        rows = down_window(self.shapes[level][0], lo, hi, self.border, ALIGN_ROWS_DOWN, MARGIN_ROWS_DOWN)
        cols = self.down_cols[level]
        block = self.held[level].take(rows.runs)
        picked = _columns(cols.runs, self.shapes[level][1])
        if picked is not None:
            block = block[:, picked]
        out = cv2.pyrDown(block, borderType=self.border)
        return out[rows.start : rows.stop, cols.start : cols.stop]

    def _band(self, level: int) -> None:
        """Hand over band `level`'s rows that levels `level` and `level`+1 now allow, in whole blocks."""
        a, height = self.band_stop[level], self.shapes[level][0]
        last = level == len(self.shapes) - 1
        b = self.held[level].stop if last else self._band_limit(level, a)
        step = self.band_block or max(1, b - a)
        if b < height:
            b = a + (b - a) // step * step
        for lo in range(a, b, step):
            self._put_band(level, lo, self._band_rows(level, lo, min(b, lo + step)))

    def _band_rows(self, level: int, lo: int, hi: int) -> BandRows:
        fine = self.held[level].take(((lo, hi - lo),))
        if level == len(self.shapes) - 1:  # the last band is the coarsest level itself
            return BandRows(fine, None, None, self.border, self.storage, self.scaled)
        rows = up_window(self.shapes[level + 1][0], self.shapes[level][0], lo, hi, self.border, 1, 0)
        return BandRows(fine, self.held[level + 1].take(rows.runs), rows, self.border, self.storage,
                        self.scaled)

    def _band_limit(self, level: int, a: int) -> int:
        """The end of band `level`'s rows computable now: those whose coarse rows are all made."""
        fine, coarse = self.held[level], self.held[level + 1]
        if coarse.complete:
            return fine.stop
        b = min(fine.stop, max(a, 2 * coarse.stop - 4))
        while b > a and self._coarse_rows(level, a, b)[1] > coarse.stop:
            b -= 1
        return b

    def _coarse_rows(self, level: int, lo: int, hi: int) -> tuple[int, int]:
        """The first and last+1 coarse rows that band rows [lo, hi) read."""
        rows = up_window(self.shapes[level + 1][0], self.shapes[level][0], lo, hi, self.border, 1, 0)
        picked = run_indices(rows.runs)
        return int(picked.min()), int(picked.max()) + 1

    def _put_band(self, level: int, start: int, rows: BandRows) -> None:
        assert self.bands is not None  # bands are put only when they are written
        self.bands[level].put(start, rows)
        self.band_stop[level] = start + len(rows)
        if self.band_stop[level] == self.shapes[level][0]:
            self.bands[level].close()

    def _forget(self, level: int) -> None:
        """Drop the rows of `level` that no later step reads."""
        held, needed = self.held[level], [self.held[level].stop]
        if level + 1 < len(self.shapes) and not self.held[level + 1].complete:
            needed.append(max(0, 2 * self.held[level + 1].stop - 4))
        if self.bands is not None:
            if self.band_stop[level] < held.height:
                needed.append(self.band_stop[level])
            if level > 0 and self.band_stop[level - 1] < self.shapes[level - 1][0]:
                lo = self.band_stop[level - 1]
                needed.append(self._coarse_rows(level - 1, lo, lo + 1)[0])
        held.drop_before(min(needed))


# ------------------------------------------------------------------------------------------- writing


def writer_threads() -> int:
    """Threads that compute, compress and write blocks: one per core, and one more that works while
    another waits for the disk (chunk files are written with O_DIRECT, `core.chunkfiles`: a write waits
    for the device, about 2-4 s in all of a 16000 x 16000 RGB export with its bands)."""
    return (os.cpu_count() or 1) + 1


class Writes:
    """A thread pool for block writes with a bound on the blocks in flight (each holds its pixels).

    `submit(fn, *args)` runs fn(*args) on the pool; `done()` returns the results finished since the last
    call (re-raising a failed write's error), on the calling thread, for progress reports.
    """

    def __init__(self, workers: int, in_flight: int) -> None:
        self.pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="pyramid-explorer-write")
        self.in_flight = max(1, in_flight)
        self.pending: set[Future[Any]] = set()
        self.finished: list[Future[Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while len(self.pending) >= self.in_flight:
            finished, self.pending = wait(self.pending, return_when=FIRST_COMPLETED)
            self.finished += finished
        self.pending.add(self.pool.submit(fn, *args))

    def done(self, wait_all: bool = False) -> list[Any]:
        if wait_all:
            self.finished += self.pending
            wait(self.pending)
            self.pending = set()
        else:
            ready = {future for future in self.pending if future.done()}
            self.pending -= ready
            self.finished += ready
        finished, self.finished = self.finished, []
        return [future.result() for future in finished]

    def close(self) -> None:
        """Stop: queued writes are dropped, running ones finish (before their folder may be removed)."""
        self.pool.shutdown(wait=True, cancel_futures=True)


class Blocks:
    """A RowSink that regroups a level's rows into blocks of `block` rows (the last one shorter), handed
    in order to `emit(y, rows)`: one array, or with `views` the list of views into the pieces the rows
    came in (no copy of a block that straddles pieces)."""

    def __init__(self, height: int, block: int, emit: Callable[[int, Any], Any], views: bool = False) -> None:
        self.block, self.emit, self.as_views = block, emit, views
        self.rows = _Held(height)
        self.next = 0  # first row not yet handed over

    def put(self, start: int, rows: np.ndarray) -> None:
        self.rows.add(rows)
        while self.rows.stop - self.next >= self.block or (self.rows.complete and self.rows.stop > self.next):
            end = min(self.next + self.block, self.rows.stop)
            runs = ((self.next, end - self.next),)
            self.emit(self.next, self.rows.views(runs) if self.as_views else self.rows.take(runs))
            self.next = end
            self.rows.drop_before(end)

    def close(self) -> None:
        """Nothing to do: the last block went out with the level's last rows."""


def finite_span(rows: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values, as Python numbers (None when there is none); fast when all are."""
    if rows.size == 0:
        return None
    low, high = rows.min(), rows.max()
    if rows.dtype.kind == "f" and not (np.isfinite(low) and np.isfinite(high)):
        finite = rows[np.isfinite(rows)]
        if finite.size == 0:
            return None
        low, high = finite.min(), finite.max()
    return low.item(), high.item()


def dask_strips(image: da.Array, rows: int, workers: int) -> Iterator[np.ndarray]:
    """Level 0 of a dask array in strips of `rows` whole rows, top to bottom (each of its chunks is read
    once when `rows` is a multiple of their height), on threads of our own that end with the strips (dask
    would keep its pool for `num_workers` alive for the process's life)."""
    with ThreadPoolExecutor(max(1, workers), thread_name_prefix="pyramid-explorer-dask") as pool:
        for y in range(0, image.shape[0], rows):
            strip = image[y : y + rows].compute(scheduler="threads", pool=pool)
            yield np.ascontiguousarray(strip)


def prefetched(strips: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    """`strips`, the next one read on a thread of its own while the caller works on this one."""
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="pyramid-explorer-read") as reader:
            ahead = reader.submit(next, strips, None)
            while (strip := ahead.result()) is not None:
                ahead = reader.submit(next, strips, None)
                yield strip
    finally:
        close = getattr(strips, "close", None)
        if close is not None:
            close()


def strip_bytes(shape: Sequence[int], itemsize: int, rows: int) -> int:
    """The bytes of one input strip of `rows` rows of an image of `shape`."""
    return min(rows, shape[0]) * shape[1] * (shape[2] if len(shape) == 3 else 1) * itemsize


def plan_memory(shape: Sequence[int], itemsize: int, rows: int, band_itemsize: int | None,
                budget: int | None, workers: int) -> int:
    """How many blocks may be in flight to `workers` writer threads within `budget` bytes (None: no
    limit), at most one more than threads (more would only hold more strips alive: fresh memory to
    touch); 0 when not even one fits.

    Working set: the strip being read and the one ahead, the rows the cascade holds (about a strip over
    all levels, and with bands another: a band block waits for the next strip's coarse rows); per writer
    thread its buffers for one chunk (the chunk and its compressed copy; for a band chunk also its coarse
    block, expansion and difference in the band dtype); per block in flight the rows it keeps alive (a
    strip, and a band block's copy of the coarse rows it reads).
    """
    strip = strip_bytes(shape, itemsize, rows)
    channels = shape[2] if len(shape) == 3 else 1
    chunk = min(rows, shape[0]) * min(rows, shape[1]) * channels
    per_thread = chunk * (5 * band_itemsize if band_itemsize else 2 * itemsize)
    base = (5 if band_itemsize else 4) * strip + workers * per_thread
    per_block = strip + (strip // 4 if band_itemsize else 0)
    most = workers + 1  # a block for each thread, and the next one ready when a thread is free
    if budget is None:
        return most
    return max(0, min(most, (budget - base) // per_block))
