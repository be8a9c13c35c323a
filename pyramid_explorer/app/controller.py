"""The window's state and its requests: what is open, which level and tool, what to compute next.

The controller owns the state, turns every change into a (debounced) request for what the visible
tool needs, serves it from the result cache or schedules a job, and announces results with
signals. It never draws; tabs never compute. It knows no tool by name: one serve loop asks the
visible tool (`tools.registry`) for its plan and delivers its results (`result_ready`).
"""

from __future__ import annotations

from functools import partial
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from pyramid_explorer.app.serving import serve_plan
from pyramid_explorer.app.worker import JobRunner
from pyramid_explorer.cache import ResultCache, default_memory_budget
from pyramid_explorer.core.deconv import DeconvSettings
from pyramid_explorer.jobs import (
    ExportDone,
    ExportRequest,
    LoadedImage,
    OpenRequest,
    Progress,
    Pyramid,
    PyramidRequest,
    TooLarge,
    ToolExportRequest,
    build_pyramid,
    export,
    export_tool,
)
from pyramid_explorer.tools.base import Plan, State, Tool
from pyramid_explorer.tools.registry import NAMES, default_settings, tool_named
from pyramid_explorer.tools.stored import StoredImage, open_any

DEBOUNCE_MS = 30
_OPEN, _BUILD, _VIEW, _EXPORT = "open", "build", "view", "export"


class Controller(QObject):
    """State of the explorer and the requests it implies."""

    image_loaded = Signal(object)  # LoadedImage
    stored_opened = Signal(object)  # tools.stored.StoredImage: a stored pyramid, shown by the stored view
    pyramid_changed = Signal(object)  # Pyramid
    level_changed = Signal(int)
    result_ready = Signal(str, object)  # tool name, one of its results
    tool_message = Signal(str, str)  # tool name, why its tab has nothing to show
    panel_unavailable = Signal(str, str, str)  # tool name, panel, why it cannot be computed here
    setting_changed = Signal(str, object)  # setting name, value
    outdated = Signal(str)  # tool name: the state changed, so what its tab shows is out of date
    cancelled = Signal()  # the user stopped every job
    failed = Signal(str)  # a build or view job failed (its one-line reason): what it computed will not come
    served = Signal()  # the visible tool's request needed no job: what it shows is all there is
    export_finished = Signal(object)  # core.export.ExportResult
    error = Signal(str)
    preview_offered = Signal(str, int)  # path, pyrDown steps that would fit the memory budget
    status = Signal(str)

    def __init__(self, runner: JobRunner | None = None, memory_budget: int | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner if runner is not None else JobRunner(self, own_threads=(_EXPORT,))
        # The budget bounds what one view may hold (the Compare panels of a level); the cache keeps
        # earlier results within half of it, so going back is instant without doubling the peak.
        self.memory_budget = default_memory_budget() if memory_budget is None else memory_budget
        self.cache = ResultCache(self.memory_budget // 2)
        self.loaded: LoadedImage | None = None
        self.pyramid: Pyramid | None = None
        self.stored: StoredImage | None = None
        self.level = 0
        self.depth: int | None = None  # None: every level down to 1 pixel
        self.view = NAMES[0]
        self.settings: dict[str, Any] = default_settings()
        """Every tool's settings by name (`Tool.settings`): layout_kind, deconv, storage, gains, ..."""
        self._next_id = 0
        self._pending_path: str | None = None
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        self._rebuild_pending = False
        self._serving: Tool = tool_named(self.view)  # whose job runs on the view channel
        self._arriving: LoadedImage | None = None  # an image opened whose pyramid is being built

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
        """Show the tool `view` (one of `tools.registry.NAMES`)."""
        tool_named(view)
        if view != self.view:
            self.view = view
            self._schedule()

    def set_setting(self, name: str, value: Any) -> None:
        """Change one tool setting (`Tool.settings`); rapid changes (a dragged slider) are debounced."""
        if name not in self.settings:
            raise ValueError(f"unknown setting {name!r}; settings: {', '.join(self.settings)}")
        if value != self.settings[name]:
            self.settings[name] = value
            self.setting_changed.emit(name, value)
            self._schedule()

    def set_deconv(self, settings: DeconvSettings) -> None:
        """The free transposed convolution's settings, shared by the Compare and Kernels tools."""
        self.set_setting("deconv", settings)

    def state(self) -> State | None:
        """What the tools' plans read, None until a pyramid is built."""
        if self.loaded is None or self.pyramid is None:
            return None
        return State(self.loaded, self.pyramid, self.level, dict(self.settings), self.memory_budget)

    def export_tool(self, request: ToolExportRequest) -> None:
        """Write a tool's arrays on the export worker (alongside the views); `export_finished` or
        `error` tells how it ended."""
        self.runner.submit(_EXPORT, export_tool, request, self._on_export_item, self._on_job_error)

    def export(self, request: ExportRequest) -> None:
        """Run the core's export on the export worker (alongside the views); `export_finished` or
        `error` tells how it ended."""
        self.runner.submit(_EXPORT, export, request, self._on_export_item, self._on_job_error)

    def cancel(self) -> None:
        """Stop every job; what is on screen stays."""
        self._debounce.stop()
        self._rebuild_pending = False
        self._arriving = None
        self.runner.cancel()
        self.cancelled.emit()
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
        self._arriving = None
        self._debounce.stop()
        self.runner.cancel(_BUILD)
        self.runner.cancel(_VIEW)  # for the image on screen; redone (mostly cached) if this open fails
        self.runner.submit(_OPEN, open_any, request, self._on_open_item, self._on_open_error)

    def _schedule(self) -> None:
        """After a change: the visible tool's tab is told at once that it is out of date; what it
        needs is served (from the cache, or a job) after the debounce."""
        if self.loaded is not None:
            self.outdated.emit(self.view)
        self._debounce.start()

    def _on_debounce_timeout(self) -> None:
        building = self.runner.is_current(_OPEN) or self.runner.is_current(_BUILD)
        if self.loaded is not None and (self._rebuild_pending or (self.pyramid is None and not building)):
            self._rebuild_pending = False
            self.runner.cancel(_VIEW)
            request = PyramidRequest(self.loaded.image_id, self.loaded.image, self.depth)
            self.runner.submit(_BUILD, build_pyramid, request, self._on_pyramid_item, self._on_compute_error)
            return
        if self.pyramid is None or building:
            return
        self._serve(tool_named(self.view))

    def _plan(self, tool: Tool) -> Plan | None:
        """The visible tool's plan for the current state, its corrections to the settings applied."""
        state = self.state()
        if state is None:
            return None
        plan = tool.plan(state)
        self.settings.update(plan.corrected)
        return plan

    def _serve(self, tool: Tool) -> None:
        """Emit what the tool's plan answers without a job (its message, unavailable panels, cached
        results) and compute the wanted results missing or incomplete on the worker, in one job."""
        plan = self._plan(tool)
        assert plan is not None  # served only with a pyramid
        if plan.message is not None:
            self.tool_message.emit(tool.name, plan.message)
            self.runner.cancel(_VIEW)
            self.served.emit()
            return
        for panel, why in plan.unavailable:
            self.panel_unavailable.emit(tool.name, panel, why)
        if serve_plan(plan, self.cache, self.runner, _VIEW, partial(self.result_ready.emit, tool.name),
                      self._on_view_item, self._on_compute_error, tool.complete):
            self._serving = tool  # before any item arrives: they come through the event loop
        else:
            self.served.emit()

    # --- results ---------------------------------------------------------------------------------

    def _on_open_item(self, item: object) -> None:
        if isinstance(item, TooLarge):
            self._on_open_error(item.message)
            if item.preview_steps is not None:
                self.preview_offered.emit(item.path, item.preview_steps)
        elif isinstance(item, LoadedImage):
            self._arriving = item  # shown at once; the same job builds its pyramid next
            self._show_loaded(item)
        elif isinstance(item, StoredImage):
            self.cache.clear()
            self.loaded, self.pyramid, self.stored = None, None, item
            self.level = 0  # the views start at level 0 (the stored view then follows the zoom)
            self.stored_opened.emit(item)
            self.status.emit(f"Opened {item.name}: {len(item.levels)} stored levels, read region by region")
        elif isinstance(item, Pyramid) and self._arriving is not None:
            if item.image_id == self._arriving.image_id:
                self._set_pyramid(item)
            self._arriving = None

    def _show_loaded(self, loaded: LoadedImage) -> None:
        """Make `loaded` the current image, before its pyramid: the source is drawn while it is built."""
        self.cache.clear()
        self.loaded, self.pyramid, self.stored = loaded, None, None
        self.image_loaded.emit(loaded)
        frames = f": the first of its {loaded.frames} frames" if loaded.frames > 1 else ""
        self.status.emit(f"Opened {loaded.name}{frames}; building its pyramid...")

    def _on_open_error(self, message: str) -> None:
        if self._arriving is not None:  # the image is shown: its pyramid failed
            self._arriving = None
            self._on_compute_error(message)
            return
        self.error.emit(f"Cannot open: {message}" if self._pending_path is None else message)
        self._schedule()  # the current image stays: finish what its view was computing

    def _on_pyramid_item(self, item: object) -> None:
        if isinstance(item, Pyramid) and self.loaded is not None and item.image_id == self.loaded.image_id:
            self._set_pyramid(item)

    def _set_pyramid(self, pyramid: Pyramid) -> None:
        self.pyramid = pyramid
        defaults = default_settings()
        for name in NAMES:  # e.g. the equalizer starts exact on every new pyramid
            for setting in tool_named(name).per_pyramid:
                self.settings[setting] = defaults[setting]
        self.pyramid_changed.emit(pyramid)
        if self.level > pyramid.levels - 1:
            self.level = pyramid.levels - 1
        self.level_changed.emit(self.level)
        self._schedule()

    def _on_view_item(self, item: object) -> None:
        """Cache a result of the job being served, and show it if the visible tool still wants it."""
        p, tool = self.pyramid, self._serving
        if isinstance(item, Progress) or p is None or getattr(item, "image_id", None) != p.image_id:
            return
        key = tool.key(item)
        self.cache.put(key, item)
        if tool.name != self.view:
            return
        plan = self._plan(tool)
        if plan is not None and key in plan.wanted:
            self.result_ready.emit(tool.name, item)

    def _on_export_item(self, item: object) -> None:
        if isinstance(item, ExportDone):
            self.export_finished.emit(item.result)

    def _on_job_error(self, message: str) -> None:
        self.error.emit(message)

    def _on_compute_error(self, message: str) -> None:
        """A build or view job failed: what waits for it is told, then the user."""
        self.failed.emit(message)
        self.error.emit(f"Computation failed: {message}")
