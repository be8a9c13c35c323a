"""One image view: a title, a pyqtgraph ViewBox drawing a `Layer` in source coordinates, a histogram.

The panel only renders: it is given a `Layer` (values, display array, limits, placement) and never
computes anything from pixels beyond what pyqtgraph needs to draw and histogram them.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QLabel, QSizePolicy, QStackedWidget, QVBoxLayout, QWidget

from pyramid_explorer.display import Layer, quantize


def sampled_colormap(name: str, stops: int = 11) -> pg.ColorMap:
    """A named colour map reduced to a few stops: the gradient editor makes one item per stop, and
    the 256 of a CET map cost ~30 ms of GUI time on every switch between signed and unsigned."""
    pos = np.linspace(0.0, 1.0, stops)
    return pg.ColorMap(pos=pos, color=pg.colormap.get(name).map(pos, mode="byte"))


DIVERGING = sampled_colormap("CET-D1")  # blue - white - red, zero in the middle
_GREY = pg.ColorMap(pos=[0.0, 1.0], color=[(0, 0, 0), (255, 255, 255)])


def format_values(values: np.ndarray | np.generic) -> str:
    """Pixel values as text: integers as they are, floats to 5 significant digits."""
    flat = np.atleast_1d(values)
    text = [str(int(v)) if flat.dtype.kind in "ui" else f"{float(v):.5g}" for v in flat]
    return text[0] if len(text) == 1 else "(" + ", ".join(text) + ")"


class ImagePanel(QWidget):
    """Draws one Layer with crisp pixels at its scale and origin; emits where the mouse hovers.

    `linked` panels live in source coordinates and take part in view linking and the readout's
    source coordinate; an unlinked panel (the mosaic) has coordinates of its own. Unsigned layers
    are drawn with `unsigned_map` (grey by default), signed ones with the diverging map.
    """

    hovered = Signal(float, float)  # view coordinates under the mouse

    def __init__(self, name: str, *, histogram: bool = True, linked: bool = True,
                 unsigned_map: pg.ColorMap | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.linked = linked
        self._unsigned_map = _GREY if unsigned_map is None else unsigned_map
        self._layer: Layer | None = None
        self._signed: bool | None = None

        self._title = QLabel(name)
        self._title.setTextFormat(Qt.TextFormat.PlainText)
        self._title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self._message = QLabel()
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)

        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setAcceptDrops(False)  # drops go to the main window
        self._canvas.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
        self._canvas.ci.setContentsMargins(0, 0, 0, 0)
        self.view_box = self._canvas.addViewBox(row=0, col=0)
        self.view_box.setAspectLocked(True)
        self.view_box.invertY(True)
        self.view_box.setMenuEnabled(False)
        self.view_box.setDefaultPadding(0.0)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        # The histogram is fed the layer's precomputed histogram and drives the display limits;
        # it is not linked to the image item, which only ever receives ready uint8 pixels.
        self.histogram = pg.HistogramLUTItem()
        self.histogram.sigLevelsChanged.connect(self._on_levels_dragged)
        self.histogram.sigLookupTableChanged.connect(self._on_lookup_table_changed)
        self._canvas.addItem(self.histogram, row=0, col=1)
        self.histogram.setVisible(histogram)
        self._setting_levels = False
        self._on_lookup_table_changed()
        self._canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self._note = QLabel(self._canvas)
        self._note.setStyleSheet("background: rgba(255, 255, 255, 210); color: #202020; padding: 2px 5px;"
                                 "border-radius: 3px;")
        self._note.move(6, 6)
        self._note.hide()

        self._stack = QStackedWidget()
        self._stack.addWidget(self._canvas)
        self._stack.addWidget(self._message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(1)
        layout.addWidget(self._title)
        layout.addWidget(self._stack, 1)

    @property
    def layer(self) -> Layer | None:
        return self._layer

    def title(self) -> str:
        return self._title.text()

    def set_title(self, text: str) -> None:
        self._title.setText(text)
        self._title.setToolTip(text)

    def limits(self) -> tuple[float, float]:
        """The display limits in use (the histogram's region), in data units."""
        lo, hi = self.histogram.getLevels()
        return float(lo), float(hi)

    def show_layer(self, layer: Layer, title: str, *, keep_limits: bool = False) -> None:
        """Draw `layer` (unless it is already drawn) and set the title.

        With `keep_limits`, the display limits in use stay (if the new layer is signed the same way),
        so stepping through levels keeps one contrast; the pixels are then re-mapped here.
        """
        self.set_title(title)
        self._stack.setCurrentWidget(self._canvas)
        if layer is self._layer:
            return
        keep = keep_limits and self._layer is not None and self._signed == layer.signed
        limits = self.limits() if keep else layer.limits
        if layer.signed != self._signed:
            self.histogram.gradient.setColorMap(DIVERGING if layer.signed else self._unsigned_map)
            self.histogram.gradient.showTicks(False)
            self._signed = layer.signed
        self._layer = layer
        pixels = layer.pixels if limits == layer.limits else quantize(layer.display, limits)
        self.image_item.setImage(pixels, autoLevels=False, levels=None)
        h, w = pixels.shape[:2]
        self.image_item.setRect(QRectF(layer.origin[0], layer.origin[1], w * layer.scale, h * layer.scale))
        self._setting_levels = True
        try:
            self.histogram.plot.setData(*layer.histogram)
            self.histogram.setLevels(*limits)
        finally:
            self._setting_levels = False

    def show_message(self, text: str, title: str | None = None) -> None:
        """Show `text` instead of an image (nothing to draw for this selection)."""
        self._layer = None
        self.image_item.clear()
        self.histogram.plot.setData([], [])
        self._message.setText(text)
        self._stack.setCurrentWidget(self._message)
        if title is not None:
            self.set_title(title)

    def set_note(self, text: str) -> None:
        """A short note over the image's corner (empty: none), for what must not go unseen."""
        self._note.setText(text)
        self._note.adjustSize()
        self._note.setVisible(bool(text))

    def paint_now(self) -> None:
        """Paint the panel at once (pyqtgraph renders the image's QImage during the paint)."""
        self._canvas.viewport().repaint()

    def set_histogram_visible(self, visible: bool) -> None:
        self.histogram.setVisible(visible)

    def value_text(self, x: float, y: float) -> str | None:
        """'name (x, y): values' for the pixel (column x, row y) under view coordinate (x, y), else None."""
        layer = self._layer
        if layer is None:
            return None
        pixel = layer.pixel_at(x, y)
        if pixel is None:
            return None
        row, col = pixel
        return f"{self.name} ({col}, {row}): {format_values(layer.data[row, col])}"

    def _on_levels_dragged(self) -> None:
        """The user moved the histogram's limits: re-map the pixels (as pyqtgraph itself would)."""
        if self._setting_levels or self._layer is None:
            return
        self.image_item.setImage(quantize(self._layer.display, self.limits()), autoLevels=False, levels=None)

    def _on_lookup_table_changed(self) -> None:
        self.image_item.setLookupTable(self.histogram.getLookupTable(n=256))

    def _on_mouse_moved(self, pos: QPointF) -> None:
        if self._layer is None or not self.view_box.sceneBoundingRect().contains(pos):
            return
        p = self.view_box.mapSceneToView(pos)
        self.hovered.emit(p.x(), p.y())
