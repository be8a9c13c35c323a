"""The window's state and its requests: what is open, which level and view, what to compute next.

The controller owns the state, turns every change into a (debounced) request for what the visible
view needs, serves it from the result cache or schedules a job, and announces results with
signals. It never draws; views never compute.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from pyramid_explorer.analysis_jobs import (
    EqualizerRequest,
    EqualizerView,
    IntegrityRequest,
    IntegrityView,
    KernelInspection,
    KernelRequest,
    ToolExportRequest,
    UnpoolRequest,
    UnpoolView,
    equalize,
    export_tool,
    inspect_kernels,
    integrity_view,
    unpool_view,
)
from pyramid_explorer.app.worker import JobFunction, JobRunner
from pyramid_explorer.cache import ResultCache, default_memory_budget
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.jobs import (
    CompareRequest,
    DeconvResult,
    DeconvSettings,
    ExportDone,
    ExportRequest,
    LevelRequest,
    LevelView,
    LoadedImage,
    ModeResult,
    Mosaic,
    MosaicRequest,
    OpenRequest,
    Pyramid,
    PyramidRequest,
    TooLarge,
    build_pyramid,
    compare,
    compare_pixel_budget,
    export,
    level_view,
    mosaic,
)
from pyramid_explorer.jobs_lazy import StoredImage, open_any

VIEWS = ("pyramid", "compare", "integrity", "equalizer", "kernels", "unpool")
DEBOUNCE_MS = 30
_OPEN, _BUILD, _VIEW, _EXPORT = "open", "build", "view", "export"


class Controller(QObject):
    """State of the explorer and the requests it implies."""

    image_loaded = Signal(object)  # LoadedImage
    stored_opened = Signal(object)  # jobs_lazy.StoredImage: a stored pyramid, shown by the lazy view
    pyramid_changed = Signal(object)  # Pyramid
    level_changed = Signal(int)
    level_view_ready = Signal(object)  # LevelView
    mosaic_ready = Signal(object)  # Mosaic
    mode_ready = Signal(object)  # ModeResult
    deconv_ready = Signal(object)  # DeconvResult
    compare_unavailable = Signal(str)
    integrity_ready = Signal(object)  # analysis_jobs.IntegrityView
    equalizer_ready = Signal(object)  # analysis_jobs.EqualizerView
    kernels_ready = Signal(object)  # analysis_jobs.KernelInspection
    unpool_ready = Signal(object)  # analysis_jobs.UnpoolView
    unpool_unavailable = Signal(str)
    mode_unavailable = Signal(str, str)  # mode, why it cannot be computed at this level
    export_finished = Signal(object)  # core.export.ExportResult
    error = Signal(str)
    preview_offered = Signal(str, int)  # path, pyrDown steps that would fit the memory budget
    status = Signal(str)

    def __init__(self, runner: JobRunner | None = None, memory_budget: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner if runner is not None else JobRunner(self)
        # The budget bounds what one view may hold (the Compare panels of a level); the cache keeps
        # earlier results within half of it, so going back is instant without doubling the peak.
        self.memory_budget = default_memory_budget() if memory_budget is None else memory_budget
        self.cache = ResultCache(self.memory_budget // 2)
        self.loaded: LoadedImage | None = None
        self.pyramid: Pyramid | None = None
        self.stored: StoredImage | None = None
        self.level = 0
        self.depth: int | None = None  # None: every level down to 1 pixel
        self.view = "pyramid"
        self.layout_kind = "panels"
        self.deconv = DeconvSettings()
        self.storage = "float32"  # Laplacian band storage of the integrity tool
        self.gains: tuple[float, ...] | None = None  # band equalizer; None: every gain 1
        self.kernel_entry = "pyrup"  # upsampler shown by the kernel inspector
        self._next_id = 0
        self._pending_path: str | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        self._rebuild_pending = False

    # --- state changes ---------------------------------------------------------------------------

    def open_path(self, path: str) -> None:
        """Load a file on the worker; on failure the current image stays and `error` says why. A file
        too large for the memory budget is refused the same way, and `preview_offered` tells how many
        halvings would make it fit (`open_preview`)."""
        self._pending_path = path
        self._open(OpenRequest(self._new_id(), path=path, levels=self.depth, view_budget=self.memory_budget))

    def open_preview(self, path: str, steps: int) -> None:
        """Load a file downscaled `steps` times by pyrDown, without the memory check."""
        self._pending_path = path
        self._open(OpenRequest(self._new_id(), path=path, levels=self.depth, preview_steps=steps))

    def open_sample(self, name: str) -> None:
        self._pending_path = None
        self._open(OpenRequest(self._new_id(), sample=name, levels=self.depth))

    def open_probe(self, name: str, width: int, height: int) -> None:
        """Generate the probe `name` (samples.PROBES) at width x height on the worker and open it."""
        self._pending_path = None
        self._open(OpenRequest(self._new_id(), probe=name, size=(width, height), levels=self.depth))

    def set_level(self, level: int) -> None:
        """Select a level everywhere (clamped to the pyramid); the views update after a short debounce."""
        count = self.level_count()
        if count is not None:
            level = max(0, min(level, count - 1))
        level = max(0, level)
        if level == self.level:
            return
        self.level = level
        self.level_changed.emit(level)
        self._schedule()

    def level_count(self) -> int | None:
        """Levels of the pyramid built or stored, None while there is none."""
        if self.stored is not None:
            return len(self.stored.levels)
        return None if self.pyramid is None else self.pyramid.levels

    def step_level(self, delta: int) -> None:
        self.set_level(self.level + delta)

    def set_depth(self, depth: int | None) -> None:
        """Number of levels built (None: all); rebuilds the pyramid on the worker."""
        if depth == self.depth:
            return
        self.depth = depth
        self._rebuild_pending = True
        self._schedule()

    def set_view(self, view: str) -> None:
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")
        if view != self.view:
            self.view = view
            self._schedule()

    def set_layout_kind(self, kind: str) -> None:
        if kind != self.layout_kind:
            self.layout_kind = kind
            self._schedule()

    def set_deconv(self, settings: DeconvSettings) -> None:
        if settings != self.deconv:
            self.deconv = settings
            self._schedule()

    def set_storage(self, storage: str) -> None:
        """Band storage of the integrity tool (float32, int16, uint8_saturate)."""
        if storage != self.storage:
            self.storage = storage
            self._schedule()

    def set_gains(self, gains: tuple[float, ...]) -> None:
        """Band gains of the equalizer, one per band; rapid changes (a dragged slider) are debounced."""
        gains = tuple(float(g) for g in gains)
        if gains != self.current_gains():
            self.gains = gains
            self._schedule()

    def current_gains(self) -> tuple[float, ...] | None:
        """The equalizer's gains for the current pyramid (all 1 unless set), None without a pyramid."""
        if self.pyramid is None:
            return None
        if self.gains is None or len(self.gains) != self.pyramid.levels:
            return (1.0,) * self.pyramid.levels
        return self.gains

    def set_kernel_entry(self, entry: str) -> None:
        if entry != self.kernel_entry:
            self.kernel_entry = entry
            self._schedule()

    def export_tool(self, request: ToolExportRequest) -> None:
        """Write an analysis tool's arrays on the worker; `export_finished` or `error` tells how it ended."""
        self.runner.submit(_EXPORT, export_tool, request, self._on_export_item, self._on_job_error)

    def export(self, request: ExportRequest) -> None:
        """Run the core's export on the worker; `export_finished` or `error` tells how it ended."""
        self.runner.submit(_EXPORT, export, request, self._on_export_item, self._on_job_error)

    def cancel(self) -> None:
        """Stop every job; what is on screen stays."""
        self._debounce.stop()
        self._rebuild_pending = False
        self.runner.cancel()
        self.status.emit("Cancelled")

    def is_idle(self) -> bool:
        """No job running or queued and no request waiting for its debounce."""
        return not self.runner.busy and not self._debounce.isActive()

    def shutdown(self) -> None:
        self._debounce.stop()
        self.runner.shutdown()

    def refresh(self) -> None:
        """Request what the current view needs now (skipping the debounce)."""
        self._debounce.stop()
        self._on_debounce_timeout()

    # --- requests --------------------------------------------------------------------------------

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _open(self, request: OpenRequest) -> None:
        self._debounce.stop()
        self.runner.cancel(_BUILD)
        self.runner.cancel(_VIEW)  # for the image on screen; redone (mostly cached) if this open fails
        self.runner.submit(_OPEN, open_any, request, self._on_open_item, self._on_open_error)

    def _schedule(self) -> None:
        self._debounce.start()

    def _on_debounce_timeout(self) -> None:
        building = self.runner.is_current(_OPEN) or self.runner.is_current(_BUILD)
        if self.loaded is not None and (self._rebuild_pending or (self.pyramid is None and not building)):
            self._rebuild_pending = False
            self.runner.cancel(_VIEW)
            request = PyramidRequest(self.loaded.image_id, self.loaded.image, self.depth)
            self.runner.submit(_BUILD, build_pyramid, request, self._on_pyramid_item, self._on_job_error)
            return
        if self.pyramid is None or building:
            return
        requesters = {"pyramid": self._request_pyramid_view, "compare": self._request_compare,
                      "integrity": self._request_integrity, "equalizer": self._request_equalizer,
                      "kernels": self._request_kernels, "unpool": self._request_unpool}
        requesters[self.view](self.pyramid)

    def _serve(self, key: tuple, ready: SignalInstance, job: JobFunction,
               request: Callable[[], object]) -> None:
        """Emit the cached result for `key` on `ready`, or compute it on the worker (`request()` makes
        the job's request only then)."""
        cached = self.cache.get(key)
        if cached is not None:
            self.runner.cancel(_VIEW)
            ready.emit(cached)
            return
        self.runner.submit(_VIEW, job, request(), self._on_view_item, self._on_job_error)

    def _request_integrity(self, p: Pyramid) -> None:
        if self.storage != "float32" and self.loaded.image.dtype != np.uint8:
            self.storage = "float32"  # the integer storages exist for uint8 images only
        self._serve(("integrity", p.image_id, p.levels, self.storage), self.integrity_ready, integrity_view,
                    lambda: IntegrityRequest(p.image_id, self.loaded.image, p.levels, self.storage))

    def _request_equalizer(self, p: Pyramid) -> None:
        gains = self.current_gains()
        self._serve(("equalizer", p.image_id, p.levels, gains), self.equalizer_ready, equalize,
                    lambda: EqualizerRequest(p, gains))

    def _request_kernels(self, p: Pyramid) -> None:
        level, entry, deconv = self.level, self.kernel_entry, self.deconv
        self._serve(("kernels", p.image_id, p.levels, level, entry, deconv), self.kernels_ready,
                    inspect_kernels, lambda: KernelRequest(p, level, entry, deconv))

    def _request_unpool(self, p: Pyramid) -> None:
        g = p.gaussian[self.level]
        if min(g.shape[:2]) < 2:
            self.runner.cancel(_VIEW)
            self.unpool_unavailable.emit(
                f"Level {self.level} ({g.shape[1]} x {g.shape[0]}) is smaller than the 2x2 pooling window. "
                "Select a finer level.")
            return
        self._serve(("unpool", p.image_id, self.level), self.unpool_ready, unpool_view,
                    lambda: UnpoolRequest(p, self.level))

    def _request_pyramid_view(self, p: Pyramid) -> None:
        level, kind = self.level, self.layout_kind
        if kind == "panels":
            self._serve(("level", p.image_id, p.levels, level), self.level_view_ready, level_view,
                        lambda: LevelRequest(p, level))
        else:
            self._serve(("mosaic", p.image_id, p.levels, kind), self.mosaic_ready, mosaic,
                        lambda: MosaicRequest(p, kind))

    def _request_compare(self, p: Pyramid) -> None:
        level = self.level
        if level >= p.levels - 1:
            self.runner.cancel(_VIEW)
            self.compare_unavailable.emit(
                f"Level {level} is the coarsest level built: there is no G[{level + 1}] to upsample. "
                "Select a finer level or build more levels.")
            return
        missing = []
        h, w = p.gaussian[level].shape[:2]
        for mode in MODES:
            if mode == "unpool" and min(h, w) < 2:
                self.mode_unavailable.emit(mode, f"max pooling needs 2 x 2 pixels; G[{level}] is {w} x {h}")
                continue
            cached = self.cache.get(("mode", p.image_id, level, mode))
            if cached is not None:
                self.mode_ready.emit(cached)
            if cached is None or cached.psnr is None:
                missing.append(mode)
        deconv = self.cache.get(("deconv", p.image_id, level, self.deconv))
        if deconv is not None:
            self.deconv_ready.emit(deconv)
        need_deconv = deconv is None or (deconv.difference is not None and deconv.psnr is None)
        if not missing and not need_deconv:
            self.runner.cancel(_VIEW)
            return
        request = CompareRequest(p, level, tuple(missing), self.deconv if need_deconv else None,
                                 self._compare_pixel_budget(p))
        self.runner.submit(_VIEW, compare, request, self._on_view_item, self._on_job_error)

    def _compare_pixel_budget(self, p: Pyramid) -> int:
        return compare_pixel_budget(p.gaussian[0].shape, self.memory_budget)

    # --- results ---------------------------------------------------------------------------------

    def _on_open_item(self, item: object) -> None:
        if isinstance(item, TooLarge):
            self._on_open_error(item.message)
            if item.preview_steps is not None:
                self.preview_offered.emit(item.path, item.preview_steps)
        elif isinstance(item, LoadedImage):
            self.cache.clear()
            self.loaded, self.pyramid, self.stored = item, None, None
            self.image_loaded.emit(item)
            frames = f": the first of its {item.frames} frames" if item.frames > 1 else ""
            self.status.emit(f"Opened {item.name}{frames}")
        elif isinstance(item, StoredImage):
            self.cache.clear()
            self.loaded, self.pyramid, self.stored = None, None, item
            self.level = 0  # the views start at level 0 (the lazy view then follows the zoom)
            self.stored_opened.emit(item)
            self.status.emit(f"Opened {item.name}: {len(item.levels)} stored levels, read region by region")
        elif isinstance(item, Pyramid):
            self._set_pyramid(item)

    def _on_open_error(self, message: str) -> None:
        self.error.emit(f"Cannot open: {message}" if self._pending_path is None else message)
        self._schedule()  # the current image stays: finish what its view was computing

    def _on_pyramid_item(self, item: object) -> None:
        if isinstance(item, Pyramid) and self.loaded is not None and item.image_id == self.loaded.image_id:
            self._set_pyramid(item)

    def _set_pyramid(self, pyramid: Pyramid) -> None:
        self.pyramid = pyramid
        self.gains = None  # the equalizer starts exact on every new pyramid
        self.pyramid_changed.emit(pyramid)
        if self.level > pyramid.levels - 1:
            self.level = pyramid.levels - 1
        self.level_changed.emit(self.level)
        self._schedule()

    def _on_view_item(self, item: object) -> None:
        p = self.pyramid
        if p is None or getattr(item, "image_id", None) != p.image_id:
            return
        if isinstance(item, LevelView):
            self.cache.put(("level", p.image_id, item.levels, item.level), item)
            if item.level == self.level and self.view == "pyramid":
                self.level_view_ready.emit(item)
        elif isinstance(item, Mosaic):
            self.cache.put(("mosaic", p.image_id, item.levels, item.kind), item)
            if self.view == "pyramid" and self.layout_kind == item.kind:
                self.mosaic_ready.emit(item)
        elif isinstance(item, ModeResult):
            self.cache.put(("mode", p.image_id, item.level, item.mode), item)
            if item.level == self.level and self.view == "compare":
                self.mode_ready.emit(item)
        elif isinstance(item, DeconvResult):
            self.cache.put(("deconv", p.image_id, item.level, item.settings), item)
            if item.level == self.level and self.view == "compare" and item.settings == self.deconv:
                self.deconv_ready.emit(item)
        elif isinstance(item, IntegrityView):
            self.cache.put(("integrity", p.image_id, item.levels, item.storage), item)
            if self.view == "integrity" and item.storage == self.storage and item.levels == p.levels:
                self.integrity_ready.emit(item)
        elif isinstance(item, EqualizerView):
            self.cache.put(("equalizer", p.image_id, item.levels, item.gains), item)
            if self.view == "equalizer" and item.gains == self.current_gains():
                self.equalizer_ready.emit(item)
        elif isinstance(item, KernelInspection):
            self.cache.put(("kernels", p.image_id, p.levels, item.level, item.entry, item.deconv), item)
            if (self.view == "kernels" and (item.level, item.entry, item.deconv)
                    == (self.level, self.kernel_entry, self.deconv)):
                self.kernels_ready.emit(item)
        elif isinstance(item, UnpoolView):
            self.cache.put(("unpool", p.image_id, item.level), item)
            if self.view == "unpool" and item.level == self.level:
                self.unpool_ready.emit(item)

    def _on_export_item(self, item: object) -> None:
        if isinstance(item, ExportDone):
            self.export_finished.emit(item.result)

    def _on_job_error(self, message: str) -> None:
        self.error.emit(message)
