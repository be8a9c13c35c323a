"""The Unpool tab: G[i], its 2x2 max pool, and the unpooled result with the recorded argmax positions
marked (the places the maxima go back to; everything else is zero), as in SegNet/DeconvNet figures."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import export_button, row
from pyramid_explorer.display import mode_label
from pyramid_explorer.tools.stored import StoredImage
from pyramid_explorer.tools.unpool import UnpoolResult

MIN_ZOOM = 3.0
"""Screen pixels per image pixel below which markers are not drawn (they would cover the image)."""
_GREY = (("#ffb000", 0.0),)
_RGB = (("#ff2020", -0.22), ("#10c010", 0.0), ("#2060ff", 0.22))
"""Per channel: marker colour and its offset inside the pixel (in pixels, along both axes)."""


def marker_style(channels: int) -> tuple[tuple[str, float], ...]:
    """(colour, offset) of each channel's markers: one orange set for grey, red/green/blue offset
    diagonally inside the pixel for colour, so three maxima in one pixel stay distinguishable."""
    return _GREY if channels == 1 else _RGB[:channels]


class ArgmaxMarkers(QObject):
    """Draws the recorded maxima of an UnpoolResult on one panel: only those in view, only when zoomed in
    far enough to tell pixels apart (a 4K level has millions)."""

    def __init__(self, panel: ImagePanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel = panel
        self._view: UnpoolResult | None = None
        self.items: list[pg.ScatterPlotItem] = []
        self.hidden_reason = ""  # why no markers are drawn now, as a sentence; empty when they are
        panel.view_box.sigRangeChanged.connect(self._on_range_changed)

    def set_view(self, view: UnpoolResult | None) -> None:
        for item in self.items:
            self._panel.view_box.removeItem(item)
        self.items = []
        self._view = view
        if view is not None:
            for colour, _ in marker_style(view.argmax_rows.shape[2]):
                item = pg.ScatterPlotItem(symbol="s", pen=pg.mkPen("k", width=1), brush=pg.mkBrush(colour),
                                          pxMode=True)
                self._panel.view_box.addItem(item, ignoreBounds=True)
                self.items.append(item)
        self.update()

    def update(self) -> None:
        """Draw the markers of the windows in view (or none, and say why)."""
        view, box = self._view, self._panel.view_box
        if view is None or not self.items:
            return
        scale, (x0, y0) = view.source.scale, view.source.origin  # where G[level]'s pixels are drawn
        rect = box.viewRect()
        zoom = box.width() * scale / rect.width() if rect.width() > 0 else 0.0
        if zoom < MIN_ZOOM:
            for item in self.items:
                item.setData([], [])
            self.hidden_reason = f"Zoom in to {MIN_ZOOM:g} or more screen pixels per pixel to see the maxima."
            return
        self.hidden_reason = ""
        ph, pw = view.argmax_rows.shape[:2]
        # window (i, j) covers pixels 2i..2i+1: the windows touching the view, one extra on each side
        r0 = max(0, math.floor((rect.top() - y0) / scale) // 2 - 1)
        r1 = min(ph, math.ceil((rect.bottom() - y0) / scale) // 2 + 2)
        c0 = max(0, math.floor((rect.left() - x0) / scale) // 2 - 1)
        c1 = min(pw, math.ceil((rect.right() - x0) / scale) // 2 + 2)
        size = min(14.0, max(4.0, 0.3 * zoom))
        for channel, (item, (_, offset)) in enumerate(zip(self.items, marker_style(len(self.items)),
                                                          strict=True)):
            rows = view.argmax_rows[r0:r1, c0:c1, channel].ravel()
            cols = view.argmax_cols[r0:r1, c0:c1, channel].ravel()
            item.setData(x0 + (cols + 0.5 + offset) * scale, y0 + (rows + 0.5 + offset) * scale, size=size)

    def positions(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, cols) of the markers drawn now for `channel`, read back from the plot."""
        if self._view is None:
            raise ValueError("no markers are drawn: there is no unpool result")
        x, y = self.items[channel].getData()
        scale, (x0, y0) = self._view.source.scale, self._view.source.origin
        offset = marker_style(len(self.items))[channel][1]

        def back(v: np.ndarray, start: float) -> np.ndarray:
            return np.rint((v - start) / scale - 0.5 - offset).astype(int)

        return back(y, y0), back(x, x0)

    def _on_range_changed(self, *_args: object) -> None:
        self.update()


class UnpoolTab(ToolTab):
    """Renders UnpoolResult results; `export_requested` asks for an export of them."""


    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: UnpoolResult | None = None
        self.source = ImagePanel("G", histogram=False)
        self.pooled = ImagePanel("maxpool", histogram=False)
        self.unpooled = ImagePanel("unpool", histogram=False)
        self.unpooled.set_tip("mode: unpool (its name on the command line and in exports; max_unpool in "
                              "PyTorch's words)")
        self.source_markers = ArgmaxMarkers(self.source, self)
        self.unpooled_markers = ArgmaxMarkers(self.unpooled, self)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.export_button = export_button(self)
        bar = row(self.note, self.export_button, stretch=self.note)
        self.grid = PanelGrid(self.panels)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.grid, 1)
        self.unpooled.view_box.sigRangeChanged.connect(self._on_range_changed)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.source, self.pooled, self.unpooled]

    @property
    def result(self) -> UnpoolResult | None:
        return self._result

    def show_result(self, result: UnpoolResult, keep_limits: bool = False) -> None:
        self._result = result
        i = result.level
        h, w = result.source.shape[:2]
        self.source.name, self.pooled.name, self.unpooled.name = f"G[{i}]", f"maxpool[{i}]", f"unpool[{i}]"
        self._queue.show(self.source, result.source, f"G[{i}]: {w} x {h}, each window's maximum marked")
        ph, pw = result.pooled.shape[:2]
        self._queue.show(self.pooled, result.pooled, f"2x2 max pool of G[{i}]: {pw} x {ph}")
        self._queue.show(self.unpooled, result.unpooled, f"{mode_label('unpool')}: {w} x {h}, maxima back at "
                         "their recorded positions, zeros elsewhere")
        self.source_markers.set_view(result)
        self.unpooled_markers.set_view(result)
        self.export_button.setEnabled(True)
        self._update_note()

    def show_message(self, text: str) -> None:
        self._result = None
        self.source_markers.set_view(None)
        self.unpooled_markers.set_view(None)
        self.export_button.setEnabled(False)
        self.note.setText(text)
        show_message_in(self._queue, self.panels, text)

    def _update_note(self) -> None:
        result = self._result
        if result is None:
            return
        channels = result.argmax_rows.shape[2]
        colours = "" if channels == 1 else " (red, green, blue channel: each has its own maximum)"
        text = f"Markers: where max_pool_with_indices recorded each 2x2 window's maximum{colours}."
        rows, cols = result.dropped
        dropped = [f"the last {what}" for what, n in (("row", rows), ("column", cols)) if n]
        if dropped:
            text += f" Pooling drops {' and '.join(dropped)} (odd size): unpooling leaves zeros there."
        if self.unpooled_markers.hidden_reason:
            text += f" {self.unpooled_markers.hidden_reason}"
        self.note.setText(text)

    def _on_range_changed(self, *_args: object) -> None:
        self._update_note()

    def on_stored_opened(self, image: StoredImage) -> None:
        self.show_message(f"{image.name} is a stored pyramid: it is shown level by level, not built")
