"""The Pyramid tab: source, Gaussian level, Laplacian band and reconstruction residual side by side,
or all levels of one kind in the classic mosaic layout."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QRectF
from PySide6.QtGui import QPen
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsRectItem,
    QHBoxLayout,
    QLabel,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import describe_image
from pyramid_explorer.jobs import LoadedImage
from pyramid_explorer.tools.pyramid import LevelResult, MosaicResult
from pyramid_explorer.tools.stored import StoredImage

LAYOUTS = {"panels": "Level panels", "gaussian": "Gaussian mosaic", "laplacian": "Laplacian mosaic"}


def residual_title(view: LevelResult) -> str:
    head = f"Residual: G[{view.level}] - rebuilt from L[{view.level}..{view.levels - 1}]"
    if view.max_abs_residual == 0:
        return f"{head}: max |r| = 0, exact (every pixel identical)"
    return f"{head}: max |r| = {view.max_abs_residual:.3g}, {view.differing_pixels} pixels differ"


class PyramidTab(ToolTab):
    """Renders LevelResult and MosaicResult results; emits the layout ("layout_kind": panels or a mosaic)."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self.source = ImagePanel("source")
        self.gaussian = ImagePanel("G")
        self.laplacian = ImagePanel("L")
        self.residual = ImagePanel("residual")
        self.mosaic = ImagePanel("mosaic", linked=False)
        self._mosaic_box = QGraphicsRectItem()
        pen = QPen(pg.mkColor("#ffb000"))
        pen.setCosmetic(True)
        pen.setWidth(2)
        self._mosaic_box.setPen(pen)
        self.mosaic.view_box.addItem(self._mosaic_box, ignoreBounds=True)
        self._mosaic: MosaicResult | None = None
        self._level = 0

        self.layout_combo = QComboBox()
        for key, text in LAYOUTS.items():
            self.layout_combo.addItem(text, key)
        self.layout_combo.currentIndexChanged.connect(self._on_layout_index_changed)

        self.grid = PanelGrid(self.level_panels, spacing=6)
        self._stack = QStackedWidget()
        self._stack.addWidget(self.grid)
        self._stack.addWidget(self.mosaic)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Layout:"))
        bar.addWidget(self.layout_combo)
        bar.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self._stack, 1)

    @property
    def level_panels(self) -> list[ImagePanel]:
        return [self.source, self.gaussian, self.laplacian, self.residual]

    @property
    def panels(self) -> list[ImagePanel]:
        return [*self.level_panels, self.mosaic]

    @property
    def served_panels(self) -> list[ImagePanel]:
        return [self.gaussian, self.laplacian, self.residual, self.mosaic]  # the source shows the image

    @property
    def layout_kind(self) -> str:
        return self.layout_combo.currentData()

    def set_layout_kind(self, kind: str) -> None:
        self.layout_combo.setCurrentIndex(list(LAYOUTS).index(kind))

    def set_histograms_visible(self, visible: bool) -> None:
        for panel in self.panels:
            panel.set_histogram_visible(visible)
        self.grid.relayout()

    def show_source(self, loaded: LoadedImage) -> None:
        what = describe_image(loaded.image.shape, loaded.image.dtype.name)
        frames = f" (frame 1 of {loaded.frames})" if loaded.frames > 1 else ""
        self._queue.show(self.source, loaded.source, f"Source: {what} - {loaded.name}{frames}")

    def show_level(self, view: LevelResult, *, keep_limits: bool = False) -> None:
        i, g = view.level, view.gaussian
        self.gaussian.name, self.laplacian.name, self.residual.name = f"G[{i}]", f"L[{i}]", f"residual[{i}]"
        self._queue.show(self.gaussian, g, f"Gaussian G[{i}]: {g.shape[1]} x {g.shape[0]} (1/{2**i} scale)",
                         keep_limits=keep_limits)
        if i == view.levels - 1:
            band_title = f"Laplacian L[{i}] = G[{i}], the coarsest level"
        else:
            limit = view.laplacian.limits[1]
            band_title = f"Laplacian L[{i}] = G[{i}] - pyrUp(G[{i + 1}]), limits +/-{limit:.3g}"
        self._queue.show(self.laplacian, view.laplacian, band_title, keep_limits=keep_limits)
        self._queue.show(self.residual, view.residual, residual_title(view), keep_limits=keep_limits)
        h, w = view.residual.shape[:2]
        if view.max_abs_residual == 0:
            self.residual.set_note(f"all {w * h} pixels exact: residual 0 everywhere")
        else:
            self.residual.set_note(f"max |residual| = {view.max_abs_residual:.3g} "
                                   f"({view.differing_pixels} pixels differ)")

    def show_mosaic(self, mosaic: MosaicResult, level: int) -> None:
        what = ("Gaussian levels" if mosaic.kind == "gaussian"
                else "Laplacian bands, each scaled to its own range")
        self._mosaic = mosaic
        self.mosaic.show_layer(mosaic.layer, f"Mosaic of {mosaic.levels} {what}")
        self.mosaic.view_box.autoRange(padding=0.02)
        self.select_mosaic_level(level)

    def select_mosaic_level(self, level: int) -> None:
        """Outline the selected level in the mosaic."""
        if self._mosaic is None or not 0 <= level < len(self._mosaic.boxes):
            self._mosaic_box.setVisible(False)
            return
        x, y, w, h = self._mosaic.boxes[level]
        self._mosaic_box.setRect(QRectF(x - 0.5, y - 0.5, w, h))
        self._mosaic_box.setVisible(True)

    def show_message(self, text: str) -> None:
        show_message_in(self._queue, self.panels, text)

    def _on_layout_index_changed(self, index: int) -> None:
        kind = self.layout_combo.itemData(index)
        self._stack.setCurrentIndex(0 if kind == "panels" else 1)
        self.setting_changed.emit("layout_kind", kind)

    def show_result(self, result: LevelResult | MosaicResult, keep_limits: bool) -> None:
        if isinstance(result, LevelResult):
            self.show_level(result, keep_limits=keep_limits)
        else:
            self.show_mosaic(result, self._level)

    def on_image_loaded(self, loaded: LoadedImage) -> None:
        self.show_source(loaded)

    def on_stored_opened(self, image: StoredImage) -> None:
        self.show_message(f"{image.name} is a stored pyramid: it is shown level by level, not built")

    def on_level_changed(self, level: int) -> None:
        self._level = level
        self.select_mosaic_level(level)

    def fit(self) -> None:
        if self.layout_kind != "panels":
            self.mosaic.view_box.autoRange(padding=0.02)
