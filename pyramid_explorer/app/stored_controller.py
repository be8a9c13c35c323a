"""State and requests of the stored view: which stored level, which region of it, read on the worker.

The view reports the source rectangle it shows; after a short debounce the controller works out the
region of the selected level that covers it (plus a margin, on a tile grid), serves it from a small cache
or reads it on the shared worker (channel "region": a newer request supersedes an older one, whose late
result the runner drops), and emits it. In automatic mode the level follows the zoom (`level_for_zoom`)
and the window's level (the Levels dock, PgUp/PgDn) follows it; choosing a level there turns automatic mode
off. The main controller says what is open: a stored pyramid (`stored_opened`) or an ordinary image.
"""

from __future__ import annotations

import collections

from PySide6.QtCore import QObject, QTimer, Signal

from pyramid_explorer.app.controller import Controller
from pyramid_explorer.tools.stored import (
    RegionRequest,
    RegionResult,
    StoredImage,
    contains,
    level_for_zoom,
    level_window,
    read_region,
    region_for,
)

DEBOUNCE_MS = 60
CACHE_BYTES = 256 << 20
"""Regions kept for going back (values and drawn pixels); the region on screen is kept whatever its size."""

_REGION = "region"


class StoredController(QObject):
    """The stored pyramid on screen, its level, the view's rectangle and the regions read."""

    region_ready = Signal(object)  # RegionResult
    auto_changed = Signal(bool)
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
        self._cache: collections.OrderedDict[tuple, RegionResult] = collections.OrderedDict()
        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._on_debounce_timeout)
        controller.stored_opened.connect(self.set_image)
        controller.image_loaded.connect(self._on_image_loaded)
        controller.level_changed.connect(self.select_level)

    def set_image(self, image: StoredImage | None) -> None:
        """Show `image` (None: leave stored mode); regions of the previous image are forgotten."""
        self.runner.cancel(_REGION)
        self._debounce.stop()
        self._cache.clear()
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
                self._main.set_level(level)  # its level_changed comes back to select_level: no change
        self._schedule()

    def select_level(self, level: int) -> None:
        """`level` was chosen in the window: show it at any zoom (automatic mode off)."""
        if self.image is None or level == self.level:
            return
        self.level = max(0, min(level, len(self.image.levels) - 1))
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

    def cached(self) -> tuple[int, int]:
        """(regions, bytes) held for going back, the one on screen included."""
        return len(self._cache), sum(map(_bytes, self._cache.values()))

    def is_idle(self) -> bool:
        return not self._debounce.isActive() and not self.runner.is_current(_REGION)

    def _on_image_loaded(self, _loaded: object) -> None:
        self.set_image(None)

    def _schedule(self) -> None:
        self._debounce.start()

    def _on_debounce_timeout(self) -> None:
        image, view = self.image, self._view
        if image is None or view is None:
            return
        level = image.levels[self.level]
        visible = level_window(level, view)
        if visible is None:
            return
        shown = self.shown
        if shown is not None and shown.level == self.level and contains((*shown.rows, *shown.cols), visible):
            self.runner.cancel(_REGION)
            return
        rows_cols = region_for(level, view)
        assert rows_cols is not None  # the view touches the level: visible is not None
        key = (image.image_id, self.level, rows_cols)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            self.runner.cancel(_REGION)
            self._show(cached)
            return
        request = RegionRequest(image, self.level, rows_cols[:2], rows_cols[2:])
        self.runner.submit(_REGION, read_region, request, self._on_region_item, self.error.emit)

    def _on_region_item(self, item: object) -> None:
        if not isinstance(item, RegionResult) or self.image is None or item.image_id != self.image.image_id:
            return
        self._cache[(item.image_id, item.level, (*item.rows, *item.cols))] = item
        while len(self._cache) > 1 and self.cached()[1] > CACHE_BYTES:
            self._cache.popitem(last=False)
        if item.level == self.level:
            self._show(item)

    def _show(self, region: RegionResult) -> None:
        self.shown = region
        self.region_ready.emit(region)


def _bytes(region: RegionResult) -> int:
    layer = region.layer
    shown = 0 if layer.display is layer.data else layer.display.nbytes
    return layer.data.nbytes + layer.pixels.nbytes + shown
