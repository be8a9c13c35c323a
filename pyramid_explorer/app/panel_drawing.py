"""What a panel's image item draws: a layer's uint8 codes, or zoomed out an area-averaged reduction.

Zoomed out, drawing the layer's pixels nearest-neighbour would skip pixels and add moire of the
display's own. A zoomed-out panel therefore draws an area-averaged reduction of its pixels instead
(`pyramid_explorer.screen_sampling`: the factor rule is in its docstring), made on the global
QThreadPool and cached per image and factor, stretched over the layer's own rectangle so it keeps
the layer's placement, and drawn with bilinear filtering. A large layer carries one reduction made on
the worker (`display.Layer.preview`, screen-sized): drawn at once when it is the one the zoom asks for,
and in the meantime otherwise, so the GUI thread never hands Qt megapixels to show a zoomed-out
panel (a smaller layer's exact pixels are drawn until its reduction arrives). Zoomed in, pixels
stay crisp.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QRunnable, QThreadPool, Signal
from PySide6.QtGui import QPainter

from pyramid_explorer.app.worker import run_in_background
from pyramid_explorer.display import Layer
from pyramid_explorer.screen_sampling import ReductionCache, area_reduce, reduction_factor

log = logging.getLogger(__name__)


class _ReductionSignals(QObject):
    done = Signal(object, int, object)  # image, factor, its reduction (None: not made, no longer wanted)


class _ReductionNews(QObject):
    arrived = Signal()  # some panel's reduction task reported back (on the GUI thread)


REDUCTION_NEWS = _ReductionNews()
"""Tells a window waiting for its drawings to be final (`image_panel.reductions_pending`) that one
more reduction has arrived: when it was the last, nothing else would say that the window settled."""


class _ReductionTask(QRunnable):
    """Makes `area_reduce(image, factor)` on a pool thread; always reports back, so the drawing can
    forget the task. `wanted` is cleared (from the GUI thread) to skip a stale one."""

    def __init__(self, image: np.ndarray, factor: int) -> None:
        super().__init__()
        self.signals = _ReductionSignals()
        self.image = image
        self.factor = factor
        self.wanted = True

    def run(self) -> None:
        run_in_background()
        reduced = None
        if self.wanted:
            try:
                reduced = area_reduce(self.image, self.factor)
            except Exception:  # e.g. out of memory: draw the exact pixels rather than retry forever
                log.exception("display reduction by %d failed", self.factor)
                reduced = self.image
        self.signals.done.emit(self.image, self.factor, reduced)


class ReducedDrawing(QObject):
    """Hands one panel's image item its pixels at the zoom: the codes themselves, or their reduction.

    `redraw()` is called when a reduction of the codes in use is ready. It is held weakly: a strong
    reference to the panel's method would make a cycle that only the garbage collector frees, perhaps
    on a worker thread, where deleting Qt objects can deadlock against the GUI thread.
    """

    def __init__(self, canvas: pg.GraphicsLayoutWidget, image_item: pg.ImageItem,
                 redraw: Callable[[], None], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._redraw = weakref.WeakMethod(redraw)
        self._canvas = canvas
        self._item = image_item
        self.codes: np.ndarray | None = None  # the layer's uint8 codes at the limits in use
        self.factor = 1  # the reduction factor of the image drawn now: 1 for the codes themselves
        self._drawn: np.ndarray | None = None  # the array handed to the image item (it keeps a view)
        self._reductions = ReductionCache()
        self._tasks: dict[tuple[int, int], _ReductionTask] = {}  # (id(codes), factor) -> task in flight

    @property
    def pending(self) -> bool:
        return bool(self._tasks)

    def set_codes(self, codes: np.ndarray | None) -> None:
        """New pixels to draw (None: none): stale reductions in flight are no longer wanted."""
        self.codes = codes
        for task in self._tasks.values():
            task.wanted = False

    def clear(self) -> None:
        """Draw nothing."""
        self.set_codes(None)
        self._drawn, self.factor = None, 1
        self._item.clear()

    def draw(self, layer: Layer | None, zoom: float | None, visible: bool) -> None:
        """Draw the reduction `zoom` asks for if it is ready (or is the layer's preview), else the
        preview or the codes, and ask for it (only while `visible`). `zoom` None: the codes
        themselves, nearest-neighbour."""
        codes = self.codes
        if codes is None or layer is None:
            return
        want = 1 if zoom is None else reduction_factor(1 / zoom, max(codes.shape[:2]))
        image = codes if want == 1 else self._reductions.get(codes, want)
        preview = layer.preview if codes is layer.pixels else None  # codes at other limits: none
        if image is None and preview is not None and preview.factor == want:
            self._reductions.put(codes, want, preview.pixels)  # made on the worker: no wait
            image = preview.pixels
        ready = image is not None
        if image is None:
            self._request(codes, want, visible)
            image, want = (codes, 1) if preview is None else (preview.pixels, preview.factor)
        smooth = (ready or want > 1) and zoom is not None and zoom < 1
        h, w = codes.shape[:2]  # a reduction covers the same rectangle as the pixels it averages
        rect = QRectF(layer.origin[0], layer.origin[1], w * layer.scale, h * layer.scale)
        self._hand_over(image, want, smooth, rect)

    def _hand_over(self, image: np.ndarray, factor: int, smooth: bool, rect: QRectF) -> None:
        """Hand `image` to the image item over `rect`; smooth: with bilinear filtering."""
        hint = QPainter.RenderHint.SmoothPixmapTransform
        if self._drawn is image and bool(self._canvas.renderHints() & hint) == smooth:
            return
        self._canvas.setRenderHint(hint, smooth)
        self._drawn = image
        self._item.setImage(image, autoLevels=False, levels=None)
        self._item.setRect(rect)
        self.factor = factor

    def _request(self, codes: np.ndarray, factor: int, visible: bool) -> None:
        """Make the reduction on a pool thread (a hidden panel waits until it is shown)."""
        key = (id(codes), factor)
        for k, task in self._tasks.items():
            task.wanted = k == key
        if key in self._tasks or not visible:
            return
        task = _ReductionTask(codes, factor)
        task.signals.done.connect(self._on_reduction_done)
        self._tasks[key] = task
        QThreadPool.globalInstance().start(task)

    def _on_reduction_done(self, image: np.ndarray, factor: int, reduced: np.ndarray | None) -> None:
        self._tasks.pop((id(image), factor), None)
        if reduced is not None:
            self._reductions.put(image, factor, reduced)
        redraw = self._redraw()
        if image is self.codes and redraw is not None:
            redraw()
        REDUCTION_NEWS.arrived.emit()
