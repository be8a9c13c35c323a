"""One image view: a title, a pyqtgraph ViewBox drawing a `Layer` in source coordinates, a histogram.

The panel only renders: it is given a `Layer` (values, display array, limits, placement) and never
computes anything from pixels beyond what pyqtgraph needs to draw and histogram them.

Zoomed out, a panel draws an area-averaged reduction of its pixels (`app.panel_drawing`); zoomed
in, pixels stay crisp. `set_exact_samples` (or `set_exact_samples_everywhere`) keeps
the nearest-neighbour drawing at every zoom. The histogram and the readout always use the layer's
exact data.
"""

from __future__ import annotations

import weakref

import numpy as np
import pyqtgraph as pg
import shiboken6
from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QPainter, QShowEvent
from PySide6.QtWidgets import QLabel, QStackedWidget, QVBoxLayout, QWidget

from pyramid_explorer.app.caption import Caption
from pyramid_explorer.app.panel_drawing import ReducedDrawing
from pyramid_explorer.app.stale_overlay import StaleOverlay
from pyramid_explorer.display import Layer, quantize
from pyramid_explorer.screen_sampling import zoom_text


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


def set_exact_samples_everywhere(exact: bool) -> None:
    """Draw every panel, and every panel made later, with exact samples (True: may alias) or with
    area-averaged reductions when zoomed out (False, the default)."""
    ImagePanel.exact_samples_by_default = exact
    for panel in _live_panels():
        panel.set_exact_samples(exact)


def reductions_pending() -> bool:
    """True while a panel waits for a reduction to arrive: what it shows is not its final drawing."""
    return any(panel.reduction_pending for panel in _live_panels())


_PANELS: weakref.WeakSet[ImagePanel] = weakref.WeakSet()  # every panel made, while Python holds it


def _live_panels() -> list[ImagePanel]:
    """The panels whose Qt side still exists (QApplication.allWidgets() may hand back widgets that are
    being deleted, and touching those crashes)."""
    return [panel for panel in list(_PANELS) if shiboken6.isValid(panel)]


_LOOKUP_TABLES: dict[int, tuple[pg.ColorMap, np.ndarray]] = {}


def colour_map_table(colour_map: pg.ColorMap) -> np.ndarray:
    """The 256-entry lookup table a histogram's gradient makes of `colour_map` (computed once per map by
    a gradient editor of its own, so a panel without its histogram draws the same colours as one with)."""
    kept = _LOOKUP_TABLES.get(id(colour_map))
    if kept is None or kept[0] is not colour_map:
        gradient = pg.GradientEditorItem()
        gradient.setColorMap(colour_map)
        kept = _LOOKUP_TABLES[id(colour_map)] = (colour_map, gradient.getLookupTable(256))
    return kept[1]


def _badge(canvas: QWidget, style: str) -> QLabel:
    """A hidden label drawn over the canvas, with rounded corners and the colours and padding of `style`."""
    label = QLabel(canvas)
    label.setStyleSheet(f"{style} border-radius: 3px;")
    label.hide()
    return label


class ImagePanel(QWidget):
    """Draws one Layer at its scale and origin (crisp pixels zoomed in, area-averaged zoomed out,
    the zoom in a corner); emits where the mouse hovers.

    `linked` panels live in source coordinates and take part in view linking and the readout's
    source coordinate; an unlinked panel (the mosaic) has coordinates of its own. Unsigned layers
    are drawn with `unsigned_map` (grey by default), signed ones with the diverging map.
    """

    hovered = Signal(float, float)  # view coordinates under the mouse
    changed = Signal()  # what it shows changed: a layer, a message, marked or no longer out of date
    exact_samples_by_default = False

    def __init__(self, name: str, *, histogram: bool = True, linked: bool = True,
                 unsigned_map: pg.ColorMap | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        self.title_name = name  # what a title made here (out of date, cleared) calls the panel
        self.linked = linked
        self._unsigned_map = _GREY if unsigned_map is None else unsigned_map
        self._layer: Layer | None = None
        self._signed: bool | None = None
        self._exact_samples = ImagePanel.exact_samples_by_default
        self._title_text = name
        self._ended = ""  # why the computation awaited ended without a result, for the tooltip
        _PANELS.add(self)

        self._title = Caption(name)
        self._tip = ""
        self._message = QLabel()
        self._message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._message.setWordWrap(True)

        self._canvas = pg.GraphicsLayoutWidget()
        self._canvas.setAcceptDrops(False)  # drops go to the main window
        self._canvas.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)  # crisp pixels
        self._canvas.ci.setContentsMargins(0, 0, 0, 0)
        # No context menu of pyqtgraph's (the panel's actions are its menu): without one the ViewBox
        # skips building its ViewBoxMenu, a third of the panel's construction time.
        self.view_box = pg.ViewBox(lockAspect=True, invertY=True, enableMenu=False, defaultPadding=0.0)
        self._canvas.addItem(self.view_box, row=0, col=0)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.view_box.addItem(self.image_item)
        self._drawing = ReducedDrawing(self._canvas, self.image_item, self._refresh_display, self)
        # The display limits and colour map in use: the histogram's once it exists. It is made when
        # first shown or asked for (`histogram`): ten hidden ones were 60% of building the Compare tab.
        self._limits = (0.0, 1.0)
        self._colour_map = self._unsigned_map
        self._histogram: pg.HistogramLUTItem | None = None
        self._setting_levels = False
        self.image_item.setLookupTable(colour_map_table(self._colour_map))
        if histogram:
            self.set_histogram_visible(True)
        self._canvas.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self._note = _badge(self._canvas, "background: rgba(255, 255, 255, 210); color: #202020; "
                                          "padding: 2px 5px;")
        self._note.move(6, 6)
        self._zoom = _badge(self._canvas, "background: rgba(0, 0, 0, 150); color: #f0f0f0; padding: 1px 4px;")
        self._overlay = StaleOverlay(self._canvas)
        self._generation = 0
        self.view_box.sigResized.connect(self._overlay.fit)
        for moved in (self.view_box.sigRangeChanged, self.view_box.sigResized):
            moved.connect(lambda *_: self._refresh_display())

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

    @property
    def histogram(self) -> pg.HistogramLUTItem:
        """The histogram beside the image, which drives the display limits and the colour map (made now,
        hidden, if it was never shown). It is fed the layer's precomputed histogram and is not linked to
        the image item, which only ever receives ready uint8 pixels."""
        if self._histogram is None:
            self._histogram = item = pg.HistogramLUTItem()
            item.setVisible(False)
            self._canvas.addItem(item, row=0, col=1)
            item.gradient.setColorMap(self._colour_map)
            item.gradient.showTicks(False)
            self._set_histogram(item)
            item.sigLevelsChanged.connect(self._on_levels_dragged)
            item.sigLookupTableChanged.connect(self._on_lookup_table_changed)
        return self._histogram

    @property
    def histogram_shown(self) -> bool:
        return self._histogram is not None and self._histogram.isVisible()

    def histogram_width(self) -> int:
        """The width the histogram takes beside the image (0 when it is not shown)."""
        if self._histogram is None or not self._histogram.isVisible():  # (histogram_shown, for mypy)
            return 0
        return int(self._histogram.effectiveSizeHint(Qt.SizeHint.PreferredSize).width())

    def lookup_table(self) -> np.ndarray:
        """The 256 uint8 colours (RGB, or RGBA for a map with alpha) one-channel codes are drawn with."""
        if self._histogram is None:
            return colour_map_table(self._colour_map)
        return self._histogram.getLookupTable(n=256)

    def _set_histogram(self, item: pg.HistogramLUTItem) -> None:
        """The layer's histogram (none without a layer) and the limits in use, into `item`."""
        self._setting_levels = True
        try:
            item.plot.setData(*(self._layer.histogram if self._layer is not None else ([], [])))
            item.setLevels(*self._limits)
        finally:
            self._setting_levels = False

    def title(self) -> str:
        """The title as shown (marked when what is drawn is out of date)."""
        return self._title.text()

    @property
    def caption(self) -> Caption:
        return self._title

    def set_tip(self, text: str) -> None:
        """More about the panel (a mode's code name), in the title's tooltip."""
        self._tip = text
        self._show_title()

    def set_title(self, text: str) -> None:
        self._title_text = text
        self._ended = ""
        self._show_title()

    @property
    def is_stale(self) -> bool:
        """True while what the panel shows does not answer the current state."""
        return self._overlay.reason is not None

    def stale_text(self) -> str:
        """What the out-of-date overlay says ('' when the panel is current)."""
        return self._overlay.reason or ""

    @property
    def generation(self) -> int:
        """How many times the state changed under this panel (`mark_stale`): a layer made for an
        earlier generation no longer answers it (the render queue drops such layers)."""
        return self._generation

    def mark_stale(self, text: str, *, clear: bool = False) -> None:
        """What is drawn no longer answers the current state: dim it under `text` (what is being
        computed), or with `clear` (another image's pixels) draw nothing and title the panel `text`."""
        self._generation += 1
        if self._ended:  # what had ended (cancelled, failed) is being computed again
            word = self._ended.partition(":")[0]
            if self._layer is not None:  # the title keeps the drawn result's numbers
                self._title_text = self._title_text.replace(word, "computing")
            else:
                self._title_text = f"{self.title_name}: {text}"
            self._ended = ""
        self._dim(text, clear=clear)

    def _dim(self, text: str, *, clear: bool = False) -> None:
        if clear:
            self.clear_image()
            self.set_note("")
            self._title_text = f"{self.title_name}: {text}"
        self._overlay.mark(text)
        self._show_title()
        self.changed.emit()

    def mark_failed(self, reason: str) -> None:
        """The computation this panel waits for failed (`reason`, one line): its title says "failed"
        where it said "computing", and an out-of-date image says why it stays out of date."""
        self.mark_ended("failed", reason)

    def mark_ended(self, word: str, why: str) -> None:
        """The computation this panel waits for ended without a result (`word`: cancelled, failed):
        "PSNR/SSIM computing..." becomes "PSNR/SSIM failed", with `why` in the tooltip."""
        self._title_text = self._title_text.replace("computing...", word).replace("computing", word)
        self._ended = f"{word}: {why}"
        if self.is_stale:  # the state did not change: what was computed for it may still be drawn
            self._dim(f"{word}: {why}")
        else:
            self._show_title()

    def _show_title(self) -> None:
        dimmed = self.is_stale and self._layer is not None
        text = f"[out of date] {self._title_text}" if dimmed else self._title_text
        self._title.set_text(text)
        self._title.setToolTip("\n".join(t for t in (text, self._ended, self._tip) if t))
        style = "color: #808080; font-style: italic;" if self.is_stale else ""
        if style != self._title.styleSheet():  # Qt restyles the caption on every call, same sheet or not
            self._title.setStyleSheet(style)

    def limits(self) -> tuple[float, float]:
        """The display limits in use (the histogram's region), in data units."""
        if self._histogram is None:
            return self._limits
        lo, hi = self._histogram.getLevels()
        return float(lo), float(hi)

    def show_layer(self, layer: Layer, title: str | None = None, *, keep_limits: bool = False) -> None:
        """Draw `layer` (unless it is already drawn) and set the title (None: keep it).

        With `keep_limits`, the display limits in use stay (if the new layer is signed the same way),
        so stepping through levels keeps one contrast; the pixels are then re-mapped here.
        """
        was_stale = self.is_stale
        self._overlay.set_current()
        self.set_title(self._title_text if title is None else title)
        self._stack.setCurrentWidget(self._canvas)
        if layer is self._layer:
            if was_stale:
                self.changed.emit()
            return
        keep = keep_limits and self._layer is not None and self._signed == layer.signed
        limits = self.limits() if keep else layer.limits
        if layer.signed != self._signed:
            self._colour_map = DIVERGING if layer.signed else self._unsigned_map
            if self._histogram is not None:  # its gradient sets the image's lookup table
                self._histogram.gradient.setColorMap(self._colour_map)
                self._histogram.gradient.showTicks(False)
            else:
                self.image_item.setLookupTable(colour_map_table(self._colour_map))
            self._signed = layer.signed
        self._layer = layer
        self._limits = limits
        self._set_codes(layer.pixels if limits == layer.limits else quantize(layer.display, limits))
        if self._histogram is not None:
            self._set_histogram(self._histogram)
        self.changed.emit()

    def show_message(self, text: str, title: str | None = None) -> None:
        """Show `text` instead of an image (nothing to draw for this selection)."""
        self.clear_image()
        self._overlay.set_current()
        self._message.setText(text)
        self._stack.setCurrentWidget(self._message)
        self.set_title(self._title_text if title is None else title)
        self.changed.emit()

    def clear_image(self) -> None:
        """Draw nothing (and histogram nothing), keeping the canvas (and so its size) on show."""
        self._layer = None
        self._drawing.clear()
        if self._histogram is not None:
            self._histogram.plot.setData([], [])
        self._refresh_display()

    def set_note(self, text: str) -> None:
        """A short note over the image's corner (empty: none), for what must not go unseen."""
        self._note.setText(text)
        self._note.adjustSize()
        self._note.setVisible(bool(text))

    def paint_now(self) -> None:
        """Paint the panel at once (pyqtgraph renders the image's QImage during the paint)."""
        self._canvas.viewport().repaint()

    @property
    def exact_samples(self) -> bool:
        return self._exact_samples

    def set_exact_samples(self, exact: bool) -> None:
        """True: draw the layer's own pixels nearest-neighbour at every zoom (may alias, as the
        screen samples them); False: area-averaged reductions when zoomed out."""
        self._exact_samples = exact
        self._refresh_display()

    @property
    def reduction_pending(self) -> bool:
        return self._drawing.pending

    @property
    def display_factor(self) -> int:
        """The reduction factor of the image drawn now: 1 for the layer's own pixels."""
        return self._drawing.factor

    def zoom(self) -> float | None:
        """Screen (device) pixels per pixel of the layer, or None with no layer or no size yet."""
        rect = self.view_box.viewRect()
        if self._layer is None or self.view_box.width() <= 1 or rect.width() <= 0:
            return None
        return self._layer.scale * self.view_box.width() / rect.width() * self._canvas.devicePixelRatioF()

    def zoom_label(self) -> str:
        """The zoom as shown in the view's corner ('' when none is shown)."""
        return self._zoom.text() if self._zoom.isVisibleTo(self) else ""

    def set_histogram_visible(self, visible: bool) -> None:
        if visible or self._histogram is not None:
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
        if self.is_stale:
            return f"{self.name} ({col}, {row}): out of date"
        return f"{self.name} ({col}, {row}): {format_values(layer.data[row, col])}"

    def _on_levels_dragged(self) -> None:
        """The user moved the histogram's limits: re-map the pixels (as pyqtgraph itself would)."""
        if self._setting_levels or self._layer is None:
            return
        self._limits = self.limits()
        self._set_codes(quantize(self._layer.display, self._limits))

    def _set_codes(self, codes: np.ndarray) -> None:
        self._drawing.set_codes(codes)
        self._refresh_display()

    def _refresh_display(self) -> None:
        """Show the zoom in the corner and draw the pixels for it."""
        zoom = self.zoom()
        if zoom is not None:
            text = zoom_text(zoom) + (" (exact samples)" if self._exact_samples and zoom < 1 else "")
            if text != self._zoom.text():
                self._zoom.setText(text)
                self._zoom.adjustSize()
            rect = self.view_box.sceneBoundingRect()  # scene and canvas coordinates coincide
            self._zoom.move(int(rect.left()) + 6, int(rect.bottom()) - self._zoom.height() - 6)
        self._zoom.setVisible(zoom is not None)
        self._drawing.draw(self._layer, None if self._exact_samples else zoom, self.isVisible())

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self._refresh_display()  # a hidden panel asks for no reduction

    def _on_lookup_table_changed(self) -> None:
        self.image_item.setLookupTable(self.lookup_table())

    def _on_mouse_moved(self, pos: QPointF) -> None:
        if self._layer is None or not self.view_box.sceneBoundingRect().contains(pos):
            return
        p = self.view_box.mapSceneToView(pos)
        self.hovered.emit(p.x(), p.y())
