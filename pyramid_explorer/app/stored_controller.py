"""State and requests of the stored view: which stored level, which region of it, read on the worker.

The view reports the source rectangle it shows; after a short debounce the controller serves the stored
view's plan (`tools.stored.plan_region`: the region of the selected level that covers the view, plus a
margin, on a tile grid) the way `Controller` serves a tool: the wanted region comes from the result cache
(`cache.ResultCache`) or is read on the shared worker (channel "region": a newer request supersedes an
older one, whose late result the runner drops), cached under `region_key` and emitted. In automatic mode
the level follows the zoom (`level_for_zoom`) and the window's level (the Levels dock, PgUp/PgDn) follows
it; choosing a level there turns automatic mode off. The main controller says what is open: a stored
pyramid (`stored_opened`) or an ordinary image.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from pyramid_explorer.app.controller import Controller
from pyramid_explorer.app.serving import serve_plan
from pyramid_explorer.cache import ResultCache
from pyramid_explorer.tools.stored import (
    RegionResult,
    StoredImage,
    StoredState,
    level_for_zoom,
    plan_region,
    region_key,
    region_nbytes,
)

DEBOUNCE_MS = 60
CACHE_BYTES = 256 << 20
"""Regions kept for going back (values and drawn pixels); the region on screen is kept whatever its size."""

_REGION = "region"


class StoredController(QObject):
    """The stored pyramid on screen, its level, the view's rectangle and the regions read."""

    region_ready = Signal(object)  # RegionResult
    auto_changed = Signal(bool)
    outdated = Signal(int)  # the level now selected: the region on screen is of another level until read
    error = Signal(str)

    def __init__(self, controller: Controller, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._main = controller
        self.runner = controller.runner  # the window's one worker thread
        self.image: StoredImage | None = None
        self.level = 0
        self.auto = True
        self.shown: RegionResult | None = None
        self._view: tuple[float, float, float, float] | None = None
        self._units_per_pixel = 1.0
        # the region on screen is the one last put or read: `keep_newest` keeps it however large
        self.cache = ResultCache(CACHE_BYTES, size_of=region_nbytes, keep_newest=True)
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._serve)
        controller.stored_opened.connect(self.set_image)
        controller.image_loaded.connect(self._on_image_loaded)
        controller.level_changed.connect(self.select_level)

    def set_image(self, image: StoredImage | None) -> None:
        """Show `image` (None: leave stored mode); regions of the previous image are forgotten."""
        self.runner.cancel(_REGION)
        self._debounce.stop()
        self.cache.clear()
        self.image, self.shown, self.level = image, None, 0
        if image is not None:
            self._schedule()

    def set_view(self, x0: float, y0: float, x1: float, y1: float, units_per_pixel: float) -> None:
        """The view now shows source rectangle (x0, y0)-(x1, y1) at `units_per_pixel` source pixels per
        screen pixel."""
        if self.image is None:
            return
        self._view, self._units_per_pixel = (x0, y0, x1, y1), units_per_pixel
        if self.auto:
            level = level_for_zoom(self.image.levels, units_per_pixel)
            if level != self.level:
                self.level = level
                self.outdated.emit(level)
                self._main.set_level(level)  # its level_changed comes back to select_level: no change
        self._schedule()

    def select_level(self, level: int) -> None:
        """`level` was chosen in the window: show it at any zoom (automatic mode off)."""
        if self.image is None or level == self.level:
            return
        self.level = max(0, min(level, len(self.image.levels) - 1))
        self.outdated.emit(self.level)
        self.set_auto(False)
        self._schedule()

    def set_auto(self, auto: bool) -> None:
        """Let the level follow the zoom (True) or stay where it was chosen."""
        if auto == self.auto:
            return
        self.auto = auto
        self.auto_changed.emit(auto)
        if auto and self._view is not None:
            self.set_view(*self._view, self._units_per_pixel)

    def state(self) -> StoredState | None:
        """What the stored view's plan reads, None until an image is open and its view reported."""
        if self.image is None or self._view is None:
            return None
        return StoredState(self.image, self.level, self._view, self.shown)

    def cached(self) -> tuple[int, int]:
        """(regions, bytes) held for going back, the one on screen included."""
        return len(self.cache), self.cache.used

    def is_idle(self) -> bool:
        return not self._debounce.isActive() and not self.runner.is_current(_REGION)

    def _on_image_loaded(self, _loaded: object) -> None:
        self.set_image(None)

    def _schedule(self) -> None:
        self._debounce.start()

    def _serve(self) -> None:
        """Serve the stored view's plan as `Controller` serves a tool's (`serving.serve_plan`): show
        the cached regions it wants, read the others in one job."""
        state = self.state()
        if state is not None:
            serve_plan(plan_region(state), self.cache, self.runner, _REGION, self._show, self._on_region_item,
                       self.error.emit)

    def _on_region_item(self, item: object) -> None:
        """Cache a region read for this image; show it if it is of the level selected now.

        Unlike a tool's result (shown only while a fresh plan still wants its key), any region of the
        selected level is shown when it arrives, even if the view has moved on meanwhile: it is closer
        to the view than the one on screen, and the debounce then asks for the one that covers."""
        if not isinstance(item, RegionResult) or self.image is None or item.image_id != self.image.image_id:
            return
        self.cache.put(region_key(item), item)
        if item.level == self.level:
            self._show(item)

    def _show(self, region: RegionResult) -> None:
        self.shown = region
        self.region_ready.emit(region)
