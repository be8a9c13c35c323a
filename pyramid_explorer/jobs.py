"""Qt-free job layer: frozen requests go in, generators come out that yield `Progress`, then results.

The window's worker runs one of these generators at a time and checks between two `yield`s whether
the job was superseded, so every step here is one bounded piece of work. Results are immutable and
carry the image id they answer, so the window can drop late ones and cache the rest.

This module opens images, builds their pyramids and exports them; what each tab computes from a
pyramid lives in its tool module (`pyramid_explorer.tools`), the arrays made ready to draw in
`pyramid_explorer.display` (which also states the placement convention of every `Layer`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np

from pyramid_explorer.core.analysis import SizeLink, band_energy, dtype_span, size_chain
from pyramid_explorer.core.budget import (
    MemoryBudgetError,
    check_memory,
    compare_pixel_budget,
    estimate_memory,
    memory_budget,
    preview,
    suggest,
)
from pyramid_explorer.core.export import (
    ExportOptions,
    ExportProgress,
    ExportResult,
    NamedArray,
    iter_export,
    iter_export_arrays,
)
from pyramid_explorer.core.io import load_image, probe_image
from pyramid_explorer.core.pyramid import (
    gaussian_pyramid,
    laplacian_pyramid,
    max_levels,
    reconstruct,
    residual,
)
from pyramid_explorer.display import Layer, display_limits, finite_max, finite_stats, make_layer, thumbnail
from pyramid_explorer.samples import load_sample, make_probe, probe_title

# --- results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """How far a job is: `done` of `total` steps, and what it is doing now."""

    done: int
    total: int
    text: str



@dataclass(frozen=True)
class LevelStats:
    """One row of the level table: size and statistics of Gaussian level `level` and its band."""

    level: int
    width: int
    height: int
    minimum: float
    maximum: float
    mean: float
    band_energy: float
    """Mean square of the Laplacian band (for the last level, the coarsest Gaussian level itself)."""
    max_abs_residual: float
    """Largest |G[level] - image rebuilt from bands level..end|, after rounding to the input dtype."""


@dataclass(frozen=True, eq=False)
class LoadedImage:
    image_id: int
    image: np.ndarray
    name: str
    path: str | None
    source: Layer
    frames: int = 1
    """Frames (pages) in the file; only the first is loaded."""
    preview_steps: int = 0
    """How many times the file's image was halved (pyrDown) to make this preview; 0: the image itself."""


@dataclass(frozen=True)
class TooLarge:
    """A file whose pyramid would not fit the memory budget: why, and the preview that would fit."""

    image_id: int
    path: str
    message: str
    preview_steps: int | None


@dataclass(frozen=True, eq=False)
class Pyramid:
    image_id: int
    gaussian: tuple[np.ndarray, ...]
    laplacian: tuple[np.ndarray, ...]
    stats: tuple[LevelStats, ...]
    thumbnails: tuple[np.ndarray, ...]
    data_range: float
    """Value range PSNR/SSIM are relative to: the core's `dtype_span` of the image's dtype."""
    links: tuple[SizeLink, ...] = ()
    """The size chain: each level's size, the dstsize its expansion gets, and pyrUp's size without it."""

    @property
    def levels(self) -> int:
        return len(self.gaussian)


# --- requests ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenRequest:
    """Load a file (`path`), a bundled sample (`sample`, a name from `samples.SAMPLES`), or generate a
    probe (`probe`, a name from `samples.PROBES`, at `size` = (width, height))."""

    image_id: int
    path: str | None = None
    sample: str | None = None
    levels: int | None = None
    probe: str | None = None
    size: tuple[int, int] | None = None
    view_budget: int | None = None
    """Bytes one view's comparisons may hold (`compare_pixel_budget`); with it, a file whose pyramid
    would not fit the memory budget (`core.budget`) is refused from its header: `TooLarge`."""
    preview_steps: int = 0
    """Halve the image this many times (pyrDown) after loading: a preview of one too large to explore."""

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.path, self.sample, self.probe)) != 1:
            raise ValueError("give exactly one of path, sample and probe")
        if (self.probe is None) != (self.size is None):
            raise ValueError("a probe needs a size (width, height), and only a probe has one")


@dataclass(frozen=True, eq=False)
class PyramidRequest:
    image_id: int
    image: np.ndarray
    levels: int | None = None
    storage: str = "float32"



@dataclass(frozen=True, eq=False)
class ExportRequest:
    """Export `image` (read from `source_path`, if any) into `out_dir` with the core's options."""

    image: np.ndarray
    out_dir: str
    options: ExportOptions
    source_path: str | None = None


@dataclass(frozen=True)
class ExportDone:
    result: ExportResult



# --- jobs ----------------------------------------------------------------------------------------

STEP_THREAD_PREFIX = "pyramid-explorer-step"
"""Name prefix of the threads `parallel_steps` starts (tests check none outlives its job)."""
T = TypeVar("T")


def parallel_steps(steps: Sequence[Callable[[], T]], threads: int) -> Iterator[T]:
    """Run `steps` on up to `threads` threads, started in their order, and yield their results in that
    order as they are ready.

    For a job's independent steps: numpy and OpenCV release the GIL, so they run on several cores while
    the job still yields one item at a time, in a fixed order. Closed early (a cancelled job), it drops
    the steps not started and waits for the running ones, so no thread outlives it; a step's exception
    is raised here after the same clean-up. With one thread the steps run in the caller's thread.
    """
    if threads <= 1 or len(steps) <= 1:
        for step in steps:
            yield step()
        return
    pool = ThreadPoolExecutor(min(threads, len(steps)), thread_name_prefix=STEP_THREAD_PREFIX)
    try:
        for future in [pool.submit(step) for step in steps]:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def open_image(req: OpenRequest) -> Iterator[Progress | TooLarge | LoadedImage | Pyramid]:
    """Check the file's header against the memory budget, load the file or sample (or generate the
    probe), yield it, then build its pyramid."""
    if req.probe is not None and req.size is not None:  # a probe always has a size (__post_init__)
        name = probe_title(req.probe, *req.size)
    else:
        name = req.sample if req.sample is not None else os.path.basename(str(req.path))
    yield Progress(0, 1, f"Loading {name}")
    frames = 1
    if req.path is not None:
        info = probe_image(req.path)
        frames = info.frames
        if req.view_budget is not None and req.preview_steps == 0:
            estimate = estimate_memory(info.shape, info.dtype, req.levels,
                                       comparison_pixels=compare_pixel_budget(info.shape, req.view_budget))
            try:
                check_memory(estimate, memory_budget())
            except MemoryBudgetError as error:
                steps = suggest(error.estimate, error.budget).preview_steps
                yield TooLarge(req.image_id, req.path, f"{name}: {error}", steps)
                return
    if req.probe is not None and req.size is not None:
        image = make_probe(req.probe, *req.size)
    elif req.sample is not None:
        image = load_sample(req.sample)
    else:
        assert req.path is not None  # exactly one of path, sample and probe (__post_init__)
        image = load_image(req.path)
    if req.preview_steps:
        image = preview(image, req.preview_steps)
        name = f"{name} (preview, 1/{2 ** req.preview_steps} scale)"
    image.flags.writeable = False  # shared between the worker and the GUI thread: read-only
    yield LoadedImage(image_id=req.image_id, image=image, name=name, path=req.path,
                      source=make_layer(image, 0), frames=frames, preview_steps=req.preview_steps)
    yield from build_pyramid(PyramidRequest(req.image_id, image, req.levels))


def build_pyramid(req: PyramidRequest) -> Iterator[Progress | Pyramid]:
    """Gaussian and Laplacian pyramids, per-level statistics and thumbnails."""
    image = req.image
    n = max_levels(image.shape) if req.levels is None else max(1, min(req.levels, max_levels(image.shape)))
    total = 2 + n
    yield Progress(0, total, "Gaussian pyramid")
    gaussian = gaussian_pyramid(image, n)
    yield Progress(1, total, "Laplacian pyramid")
    laplacian = laplacian_pyramid(image, n, storage=req.storage)
    for a in (*gaussian, *laplacian):
        a.flags.writeable = False
    limits = display_limits(image, signed=False)
    stats, thumbs = [], []
    for i in range(n):
        yield Progress(2 + i, total, f"Statistics of level {i}")
        g = gaussian[i]
        res = residual(g, reconstruct(laplacian[i:]))
        lo, hi, mean = finite_stats(g)
        stats.append(LevelStats(
            level=i, width=g.shape[1], height=g.shape[0], minimum=lo, maximum=hi, mean=mean,
            band_energy=band_energy(laplacian[i]),
            max_abs_residual=finite_max(np.abs(res)),
        ))
        thumbs.append(thumbnail(g, limits))
    yield Pyramid(image_id=req.image_id, gaussian=tuple(gaussian), laplacian=tuple(laplacian),
                  stats=tuple(stats), thumbnails=tuple(thumbs), data_range=dtype_span(image.dtype),
                  links=tuple(size_chain(image.shape, n)))



def export(req: ExportRequest) -> Iterator[Progress | ExportDone]:
    """The core's export (the same code as `pyramid-explorer export`), one file per step.

    When the job is stopped between two files, the core is told to cancel and runs to its
    cancellation point, so the folder gets a manifest with status "cancelled" listing what was
    written (every file written is complete: the core writes atomically).
    """
    stop = threading.Event()
    files = iter_export(req.image, req.out_dir, req.options, source_path=req.source_path, cancel=stop.is_set)
    yield from drive_export(files, stop)


def drive_export(files: Generator[ExportProgress, None, ExportResult],
                 stop: threading.Event) -> Iterator[Progress | ExportDone]:
    """Step through a core export generator whose `cancel` is `stop.is_set`: one Progress per file,
    then ExportDone; closed early, it sets `stop` and runs the core to its cancellation point."""
    try:
        while True:
            try:
                step = next(files)
            except StopIteration as finished:
                yield ExportDone(finished.value)
                return
            name = "" if step.path is None else f": {step.path.name}"
            yield Progress(step.done, step.total, f"Exporting {step.done}/{step.total}{name}")
    except GeneratorExit:
        stop.set()
        for _ in files:  # to the core's cancellation point, which writes the manifest
            pass
        raise


@dataclass(frozen=True, eq=False)
class ToolExportRequest:
    """Write a tool's arrays (made from `image`, read from `source_path` if any) through the core."""

    image: np.ndarray
    out_dir: str
    arrays: tuple[NamedArray, ...]
    fmt: str = "tiff"
    parameters: dict[str, Any] = field(default_factory=dict)
    source_path: str | None = None
    force: bool = False


def export_tool(req: ToolExportRequest) -> Iterator[Progress | ExportDone]:
    """The core's `iter_export_arrays`, one file per step; stopped, it cancels like `jobs.export`."""
    stop = threading.Event()
    files = iter_export_arrays(req.image, req.out_dir, req.arrays, fmt=req.fmt, parameters=req.parameters,
                               source_path=req.source_path, force=req.force, cancel=stop.is_set)
    yield from drive_export(files, stop)

