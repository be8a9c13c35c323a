"""The pyramid's levels as a Qt table model: one row per level, thumbnails in the decoration role, and
the size chain (the dstsize each expansion gets, and what pyrUp gives without it)."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QObject, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QImage, QPixmap
from PySide6.QtWidgets import QApplication, QStyle

from pyramid_explorer.core.analysis import SizeLink
from pyramid_explorer.jobs import LevelStats, Pyramid

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = ("Level", "Size", "Min", "Max", "Mean", "Energy", "|r| max", "dstsize", "pyrUp w/o", "Band w/o")
"""Short headers, so the table fits a narrow dock; the tooltips (`_TIPS`) say what and in which units."""
SIZE_COLUMN, DSTSIZE_COLUMN, NAIVE_COLUMN, BROKEN_COLUMN = 1, 7, 8, 9
NAIVE_COLUMNS = (NAIVE_COLUMN, BROKEN_COLUMN)
"""Shown only on demand: what goes wrong without dstsize."""
_BROKEN = QColor("#b3261e")
WARNING_SIZE = 16
_TIPS = (
    "Pyramid level; level i is 2^i times smaller than the source",
    "Width x height, in pixels",
    "Smallest value of the Gaussian level, in image units",
    "Largest value of the Gaussian level, in image units",
    "Mean value of the Gaussian level, in image units",
    "Band energy: mean square of the Laplacian band, in squared image units "
    "(the last band is the coarsest Gaussian level itself)",
    "Max |residual|: largest |G[i] - reconstruction from bands i..end|, after rounding to the input type, "
    "in image units; 0 means exact",
    "pyrUp dstsize: (width, height) in pixels passed to pyrUp when G[i+1] is expanded back to this "
    "level's size",
    "pyrUp without dstsize: what pyrUp(G[i+1]) returns then, twice the coarser level's size (pixels)",
    "Band without dstsize: L[i] = G[i] - pyrUp(G[i+1]) without dstsize; where a side of G[i] is odd the "
    "sizes differ and the band cannot be formed (cv2.subtract: sizes do not match)",
)


def size_text(size: tuple[int, int] | None) -> str:
    return "-" if size is None else f"{size[0]} x {size[1]}"


def broken_text(link: SizeLink) -> str:
    """What happens to band L[i] without dstsize, in a few words."""
    if link.naive_size is None:
        return "-"
    if not link.odd:
        return "fits"
    return f"L[{link.level}] breaks: {size_text(link.naive_size)} vs {size_text(link.size)}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    return f"{value:.4g}"


def to_qimage(array: np.ndarray) -> QImage:
    """A deep-copied QImage of a uint8 grey (h, w) or RGB (h, w, 3) array."""
    a = np.ascontiguousarray(array)
    h, w = a.shape[:2]
    fmt = QImage.Format.Format_Grayscale8 if a.ndim == 2 else QImage.Format.Format_RGB888
    return QImage(a.data, w, h, a.strides[0], fmt).copy()


class LevelTableModel(QAbstractTableModel):
    """Adapts a `Pyramid`'s per-level statistics and thumbnails to a QTableView."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._stats: tuple[LevelStats, ...] = ()
        self._thumbnails: tuple[np.ndarray, ...] = ()
        self._links: tuple[SizeLink, ...] = ()
        self._pixmaps: dict[int, QPixmap] = {}
        self._cells: dict[tuple[int, int, int], object] = {}  # (row, column, role) -> value
        self._warning: QPixmap | None = None
        self._thumbnail_side: int | None = None  # None: the thumbnails as made; else scaled into this box

    def set_pyramid(self, pyramid: Pyramid | None) -> None:
        if pyramid is None:
            self.set_rows((), ())
        else:
            self.set_rows(pyramid.stats, pyramid.thumbnails, pyramid.links)

    def set_rows(self, stats: tuple[LevelStats, ...], thumbnails: tuple[np.ndarray, ...],
                 links: tuple[SizeLink, ...] = ()) -> None:
        """One row per level (NaN statistics show as "-"), with a thumbnail each; without `links` the
        size-chain columns show "-"."""
        self.beginResetModel()
        self._stats, self._thumbnails, self._links = stats, thumbnails, links
        self._pixmaps.clear()
        self._cells = {}
        for row in range(len(stats)):
            self._cells.update(self._cell_roles(row))
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._stats)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(COLUMNS)

    def stats(self, row: int) -> LevelStats:
        return self._stats[row]

    def link(self, row: int) -> SizeLink | None:
        return self._links[row] if row < len(self._links) else None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        # Views ask ~8 roles of every cell on each sizing and paint pass: all but the thumbnails are
        # worked out once per set of rows (`_cell_roles`), so an answer is one lookup.
        if role == Qt.ItemDataRole.DecorationRole and index.column() == 0:
            return self._pixmap(index.row()) if index.isValid() else None
        return self._cells.get((index.row(), index.column(), int(role)))

    def _cell_roles(self, row: int) -> dict[tuple[int, int, int], object]:
        """(row, column, role) -> value for `row`'s cells: text, alignment, tooltips, warnings."""
        s, link = self._stats[row], self.link(row)
        texts = (str(s.level), size_text((s.width, s.height)), _number(s.minimum), _number(s.maximum),
                 _number(s.mean), _number(s.band_energy), _number(s.max_abs_residual),
                 *(self._chain_text(link, col) for col in range(DSTSIZE_COLUMN, len(COLUMNS))))
        right = int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        cells: dict[tuple[int, int, int], object] = {}
        for col, text in enumerate(texts):
            cells[row, col, int(Qt.ItemDataRole.DisplayRole)] = text
            cells[row, col, int(Qt.ItemDataRole.ToolTipRole)] = _TIPS[col]
            if col > 0:
                cells[row, col, int(Qt.ItemDataRole.TextAlignmentRole)] = right
        if link is not None and link.odd:
            cells[row, SIZE_COLUMN, int(Qt.ItemDataRole.DecorationRole)] = self._warning_icon()
            cells[row, SIZE_COLUMN, int(Qt.ItemDataRole.ToolTipRole)] = (
                f"Odd size: without dstsize, pyrUp(G[{s.level + 1}]) is {size_text(link.naive_size)}, one "
                f"pixel more than {size_text(link.size)} along each odd side")
            for col in NAIVE_COLUMNS:
                cells[row, col, int(Qt.ItemDataRole.ForegroundRole)] = QBrush(_BROKEN)
        return cells

    @staticmethod
    def _chain_text(link: SizeLink | None, col: int) -> str:
        if link is None or link.dstsize is None:
            return "-"
        if col == DSTSIZE_COLUMN:
            return f"({link.dstsize[0]}, {link.dstsize[1]})"
        return size_text(link.naive_size) if col == NAIVE_COLUMN else broken_text(link)

    def _warning_icon(self) -> QPixmap:
        if self._warning is None:  # smaller than the thumbnails the rows are sized for
            icon = QApplication.style().standardIcon(QStyle.StandardPixmap.SP_MessageBoxWarning)
            self._warning = icon.pixmap(WARNING_SIZE, WARNING_SIZE)
        return self._warning

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TIPS[section]
        return None

    def set_thumbnail_side(self, side: int | None) -> None:
        """Draw the thumbnails scaled into a `side`-pixel box (None: as made), e.g. in a narrow dock."""
        if side == self._thumbnail_side:
            return
        self._thumbnail_side = side
        self._pixmaps.clear()
        if self.rowCount():
            self.dataChanged.emit(self.index(0, 0), self.index(self.rowCount() - 1, 0),
                                  [Qt.ItemDataRole.DecorationRole])

    def _pixmap(self, row: int) -> QPixmap:
        pixmap = self._pixmaps.get(row)
        if pixmap is None:
            pixmap = QPixmap.fromImage(to_qimage(self._thumbnails[row]))
            side = self._thumbnail_side
            if side is not None:
                pixmap = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                       Qt.TransformationMode.SmoothTransformation)
            self._pixmaps[row] = pixmap
        return pixmap
