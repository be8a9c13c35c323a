"""A grid of image panels whose rows and columns follow the space it has and the images' shape.

A fixed grid letterboxes: ten wide images in three columns of a wide window leave bands of black.
`PanelGrid` picks, on every resize and whenever the images' aspect changes, the number of columns
that draws the images largest (`best_columns`), given what each cell spends outside its image: the
panel's margins, its caption (which takes more lines when narrow) and its histogram when shown.
The panels' captions are given one height (the tallest), so every image gets the same space and,
fitted, the same zoom. The panels' cameras are not touched: a view that is fitting refits on the
resize (see `linking`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QGridLayout, QWidget

from pyramid_explorer.app.caption import even_captions
from pyramid_explorer.app.image_panel import ImagePanel

_HISTOGRAM_GAP = 10  # between the view and the histogram, in the panel's canvas layout


def image_scale(count: int, columns: int, size: tuple[float, float], aspect: float,
                chrome: tuple[float, float], spacing: float = 0.0) -> float:
    """Screen pixels per unit of an image `aspect` (width / height) units wide and one unit high,
    fitted whole in each cell of `count` cells in `columns` columns over `size` (width, height);
    each cell spends `chrome` (width, height) outside its image, and cells are `spacing` apart."""
    rows = math.ceil(count / columns)
    cell_w = (size[0] - spacing * (columns - 1)) / columns - chrome[0]
    cell_h = (size[1] - spacing * (rows - 1)) / rows - chrome[1]
    return max(0.0, min(cell_w / aspect, cell_h))


def best_columns(count: int, size: tuple[float, float], aspect: float,
                 chrome: Callable[[float], tuple[float, float]], spacing: float = 0.0) -> int:
    """The number of columns (1..count) in which `image_scale` is largest; `chrome(cell_width)` gives
    a cell's (width, height) outside its image. Ties go to the squarer grid (fewer empty cells)."""
    def scale(columns: int) -> float:
        cell_width = (size[0] - spacing * (columns - 1)) / columns
        return image_scale(count, columns, size, aspect, chrome(cell_width), spacing)
    candidates = range(1, max(count, 1) + 1)
    return max(candidates, key=lambda c: (round(scale(c), 6), -abs(c - math.ceil(count / c))))


class PanelGrid(QWidget):
    """Lays out `panels` in the rows and columns that show their images largest.

    `cells`, when given, are what is laid out: cell i holds panel i with more beside it (a heading,
    a plot), which each cell spends outside its image too.
    """

    def __init__(self, panels: list[ImagePanel], *, cells: list[QWidget] | None = None, spacing: int = 2,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._panels = list(panels)
        self._cells: list[QWidget] = list(panels) if cells is None else list(cells)
        if len(self._cells) != len(self._panels):
            raise ValueError(f"{len(self._cells)} cells for {len(self._panels)} panels")
        self._grid = QGridLayout(self)
        self._grid.setContentsMargins(0, 0, 0, 0)
        self._grid.setSpacing(spacing)
        self._columns = 0
        self._aspect = 1.0
        for panel in self._panels:
            panel.changed.connect(self._on_panel_changed)
            panel.caption.natural_height_changed.connect(self._even_captions)
        self.arrange(best_columns(len(self._panels), (4.0, 3.0), self._aspect, lambda _w: (0.0, 0.0)))

    @property
    def columns(self) -> int:
        return self._columns

    @property
    def rows(self) -> int:
        return math.ceil(len(self._panels) / self._columns)

    @property
    def aspect(self) -> float:
        """Width / height of the images the layout is chosen for (those of the first panel with one)."""
        return self._aspect

    def arrange(self, columns: int) -> None:
        """Place the panels in `columns` columns, row by row (the next resize chooses again)."""
        if columns == self._columns:
            return
        for cell in self._cells:
            self._grid.removeWidget(cell)
        for n in range(max(self._grid.rowCount(), self._grid.columnCount())):
            self._grid.setRowStretch(n, 0)
            self._grid.setColumnStretch(n, 0)
        self._columns = columns
        for n, cell in enumerate(self._cells):
            self._grid.addWidget(cell, n // columns, n % columns)
        for r in range(self.rows):
            self._grid.setRowStretch(r, 1)
        for c in range(columns):
            self._grid.setColumnStretch(c, 1)

    def relayout(self) -> None:
        """Choose the columns for the size the grid has now."""
        if self.width() <= 1 or self.height() <= 1:
            return
        size = (float(self.width()), float(self.height()))
        self.arrange(best_columns(len(self._panels), size, self._aspect, self._chrome, self._grid.spacing()))

    def _chrome(self, cell_width: float) -> tuple[float, float]:
        """What a cell `cell_width` wide spends outside its image: margins, caption, histogram, and
        what the cell holds beside its panel."""
        panel, cell = self._panels[0], self._cells[0]
        extra_w = max(0, cell.width() - panel.width()) if cell is not panel and panel.width() > 1 else 0
        extra_h = max(0, cell.height() - panel.height()) if cell is not panel and panel.height() > 1 else 0
        layout = panel.layout()
        assert layout is not None, "an ImagePanel lays out its caption and canvas"
        margins = layout.contentsMargins()
        width = margins.left() + margins.right()
        histogram = max(p.histogram_width() for p in self._panels)
        if histogram:
            width += histogram + _HISTOGRAM_GAP
        caption = max(p.caption.height_for(int(cell_width) - width - extra_w) for p in self._panels)
        return width + extra_w, margins.top() + margins.bottom() + layout.spacing() + caption + extra_h

    def _even_captions(self) -> None:
        even_captions([panel.caption for panel in self._panels])

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.relayout()

    def _on_panel_changed(self) -> None:
        layer = next((p.layer for p in self._panels if p.layer is not None), None)
        if layer is None:
            return
        height, width = layer.shape[:2]
        aspect = width / max(height, 1)
        if not math.isclose(aspect, self._aspect, rel_tol=0.02):
            self._aspect = aspect
            self.relayout()
