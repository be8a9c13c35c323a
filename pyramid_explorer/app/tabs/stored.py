"""The stored view: one stored level of an OME-Zarr or pyramidal TIFF, drawn region by region.

It renders the `RegionResult`s the stored controller sends and reports what it shows (the source rectangle and
the zoom); it never reads pixels itself.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pyramid_explorer.app.image_panel import ImagePanel, format_values
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.shared import describe_image
from pyramid_explorer.tools.stored import RegionResult, StoredImage


class RegionPanel(ImagePanel):
    """An image panel whose layer is a region of a level: the readout gives the level's own pixel."""

    def __init__(self, name: str, parent: QWidget | None = None) -> None:
        super().__init__(name, parent=parent)
        self.region: RegionResult | None = None

    def show_region(self, region: RegionResult) -> None:
        self.region = region

    def value_text(self, x: float, y: float) -> str | None:
        layer, region = self.layer, self.region
        if layer is None or region is None or layer is not region.layer:
            return None
        pixel = layer.pixel_at(x, y)
        if pixel is None:
            return None
        row, col = pixel
        return (f"{self.name} ({col + region.cols[0]}, {row + region.rows[0]}): "
                f"{format_values(layer.data[row, col])}")


class StoredTab(QWidget):
    """A stored level in source coordinates; `view_changed` says what part of the source is on screen."""

    view_changed = Signal(float, float, float, float, float)  # x0, y0, x1, y1, source px per screen px
    auto_toggled = Signal(bool)

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._image: StoredImage | None = None
        self.panel = RegionPanel("stored")
        self.auto = QCheckBox("Level follows the zoom")
        self.auto.setChecked(True)
        self.auto.setToolTip("Show the coarsest stored level that still has a pixel per screen pixel; "
                             "choosing a level in the Levels dock turns this off")
        self.auto.toggled.connect(self.auto_toggled)
        self.info = QLabel()
        bar = QHBoxLayout()
        bar.addWidget(self.auto)
        bar.addWidget(self.info, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.panel, 1)
        self.panel.view_box.sigRangeChanged.connect(self._on_range_changed)

    def set_image(self, image: StoredImage) -> None:
        self._image = image
        self._queue.discard(self.panel)
        self.panel.region = None
        what = describe_image(image.shape, image.dtype.name)
        self.info.setText(f"{what}, {len(image.levels)} stored levels ({image.kind}): only the part in view "
                          "is read")
        self.panel.clear_image()  # not a message page: the canvas must keep its size for the fit
        self.panel.set_title(f"Reading {image.name}...")

    def on_outdated(self, level: int) -> None:
        """Level `level` is selected: the region drawn, of another level, is out of date until it is read."""
        if self.panel.layer is not None:
            self.panel.mark_stale(f"reading stored level {level}...")

    def set_auto(self, auto: bool) -> None:
        self.auto.blockSignals(True)
        self.auto.setChecked(auto)
        self.auto.blockSignals(False)

    def show_region(self, region: RegionResult) -> None:
        image = self._image
        if image is None or region.image_id != image.image_id:
            return
        level = image.levels[region.level]
        h, w = level.shape[:2]
        (r0, r1), (c0, c1) = region.rows, region.cols
        title = (f"Stored level {region.level}: {w} x {h} (scale {level.scale:g}); showing columns "
                 f"{c0}-{c1}, rows {r0}-{r1} - {image.name}")
        self.panel.show_region(region)
        self._queue.show(self.panel, region.layer, title)
        whole = (r0, r1, c0, c1) == (0, h, 0, w)
        self.panel.set_note("" if whole else f"read {c1 - c0} x {r1 - r0} of {w} x {h} pixels")

    def _on_range_changed(self, *_args: object) -> None:
        box = self.panel.view_box
        if self._image is None or box.width() <= 1:
            return
        (x0, x1), (y0, y1) = (sorted(r) for r in box.viewRange())
        self.view_changed.emit(x0, y0, x1, y1, (x1 - x0) / box.width())
