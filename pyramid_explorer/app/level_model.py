"""The pyramid's levels as a Qt table model: one row per level, thumbnails in the decoration role."""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage, QPixmap

from pyramid_explorer.jobs import LevelStats, Pyramid

_Index = QModelIndex | QPersistentModelIndex

COLUMNS = ("Level", "Size", "Min", "Max", "Mean", "Band energy", "Max |residual|")
_TIPS = (
    "Pyramid level; level i is 2^i times smaller than the source",
    "Width x height in pixels",
    "Smallest value of the Gaussian level",
    "Largest value of the Gaussian level",
    "Mean value of the Gaussian level",
    "Mean square of the Laplacian band (the last band is the coarsest Gaussian level itself)",
    "Largest |G[i] - reconstruction from bands i..end|, after rounding to the input type: 0 means exact",
)


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

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._stats: tuple[LevelStats, ...] = ()
        self._thumbnails: tuple[np.ndarray, ...] = ()
        self._pixmaps: dict[int, QPixmap] = {}

    def set_pyramid(self, pyramid: Pyramid | None) -> None:
        self.beginResetModel()
        self._stats = () if pyramid is None else pyramid.stats
        self._thumbnails = () if pyramid is None else pyramid.thumbnails
        self._pixmaps.clear()
        self.endResetModel()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(self._stats)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        return 0 if parent.isValid() else len(COLUMNS)

    def stats(self, row: int) -> LevelStats:
        return self._stats[row]

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        s, col = self._stats[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return (str(s.level), f"{s.width} x {s.height}", _number(s.minimum), _number(s.maximum),
                    _number(s.mean), _number(s.band_energy), _number(s.max_abs_residual))[col]
        if role == Qt.ItemDataRole.DecorationRole and col == 0:
            return self._pixmap(index.row())
        if role == Qt.ItemDataRole.TextAlignmentRole and col > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TIPS[col]
        return None

    def headerData(self, section: int, orientation: Qt.Orientation,
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if orientation != Qt.Orientation.Horizontal:
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section]
        if role == Qt.ItemDataRole.ToolTipRole:
            return _TIPS[section]
        return None

    def _pixmap(self, row: int) -> QPixmap:
        pixmap = self._pixmaps.get(row)
        if pixmap is None:
            pixmap = self._pixmaps[row] = QPixmap.fromImage(to_qimage(self._thumbnails[row]))
        return pixmap
