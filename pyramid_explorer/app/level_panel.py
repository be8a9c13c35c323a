"""The Levels dock: the level table, the level and depth spin boxes, the contrast lock, and the switch
that shows what goes wrong without pyrUp's dstsize.

A dock too narrow for the table's columns (a small window) shows the table compact: Level and Size
with small thumbnails, and the selected level's other columns as lines under it, so no number is
cut and nothing scrolls sideways.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QItemSelectionModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QFormLayout,
    QHeaderView,
    QLabel,
    QSpinBox,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.level_model import DSTSIZE_COLUMN, NAIVE_COLUMNS, SIZE_COLUMN, LevelTableModel
from pyramid_explorer.display import THUMBNAIL_SIZE
from pyramid_explorer.jobs import Pyramid
from pyramid_explorer.tools.stored import StoredImage

_DETAIL_COLUMNS = tuple(range(SIZE_COLUMN + 1, DSTSIZE_COLUMN + 1))
"""The columns a compact table leaves out and shows under it for the selected level."""


class LevelPanel(QWidget):
    """Shows the levels and reports the user's choices; `show_level` reflects the controller's state."""

    level_selected = Signal(int)
    depth_changed = Signal(int)
    # the panel's width that shows the table's columns whole, on new rows; when compact, the width of
    # its two columns (the images get the rest)
    width_wanted = Signal(int)
    # The "Levels built" box; it shadows QPaintDevice.depth() (colour depth), which nothing here calls.
    depth: QSpinBox  # type: ignore[assignment]

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LevelTableModel(self)
        self.table = QTableView()
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setIconSize(QSize(THUMBNAIL_SIZE, THUMBNAIL_SIZE))
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.selectionModel().currentRowChanged.connect(self._on_current_row_changed)
        self._cells_width: dict[int, int] = {}  # by thumbnail side: the columns' width (`content_width`)
        self.model.modelReset.connect(self._cells_width.clear)  # first: the slots below measure the rows
        self.model.dataChanged.connect(self._cells_width.clear)
        self.model.modelReset.connect(self._on_rows_reset)
        self.model.modelReset.connect(self._show_details)
        self.model.dataChanged.connect(self._show_details)
        self.details = QLabel()  # the selected level's columns, when the table is compact
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details.hide()
        self._compact = False
        self._switching = False  # inside _set_compact (a resize then waits for the switch to finish)
        self._resized_while_switching = False

        self.level = QSpinBox()
        self.level.setRange(0, 0)
        self.level.setToolTip("Selected level (PgUp: finer, PgDn: coarser)")
        self.level.setKeyboardTracking(False)
        self.level.valueChanged.connect(self.level_selected)
        self.depth = QSpinBox()
        self.depth.setRange(1, 1)
        self.depth.setToolTip("How many levels are built, the source included")
        self.depth.setKeyboardTracking(False)
        self.depth.valueChanged.connect(self.depth_changed)
        self.lock_contrast = QCheckBox("Lock contrast")
        self.lock_contrast.setToolTip("Lock contrast across levels: keep the display limits in use while "
                                      "stepping through levels (L)")
        self.without_dstsize = QCheckBox("pyrUp without dstsize")
        self.without_dstsize.setToolTip("Show what pyrUp would give without dstsize, and the band it "
                                        "would break")
        self.without_dstsize.toggled.connect(self._on_without_dstsize_toggled)
        self.dstsize_note = QLabel(
            "Without dstsize, pyrUp doubles the coarser level: along every odd side (marked) it is one pixel "
            "larger than the finer level, so L[i] = G[i] - pyrUp(G[i+1]) subtracts arrays of different "
            "sizes: cv2.subtract refuses, and resizing the expansion to fit would shift the whole band "
            "(cropping its extra row or column is what dstsize does).")
        self.dstsize_note.setWordWrap(True)
        self._on_without_dstsize_toggled(False)

        form = QFormLayout()
        form.addRow("Level", self.level)
        form.addRow("Levels built", self.depth)
        layout = self._layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.lock_contrast)
        layout.addWidget(self.without_dstsize)
        layout.addWidget(self.dstsize_note)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.details)

    @property
    def compact(self) -> bool:
        """True while the table shows Level and Size only (the rest under it, for the selected level)."""
        return self._compact

    def changeEvent(self, event: QEvent) -> None:
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._cells_width.clear()  # other text widths
        super().changeEvent(event)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._update_compact()

    def _update_compact(self) -> None:
        if self._switching:  # a resize delivered while the table switches: decided once it has switched
            self._resized_while_switching = True
            return
        if self._compact and self._room() >= self.content_width():
            self._set_compact(False)
            if self._room() < self.content_width():  # the columns shown need more than estimated
                self._fit_width()  # widen the dock if the window lets it
                self._set_compact(self._room() < self.content_width())
        elif not self._compact and self._room() < self.content_width():  # the dock was made narrower
            self._set_compact(True)
            self._want_shown()

    def _want_shown(self) -> None:
        """Ask for the width of the columns shown (the compact table's two)."""
        if self.model.rowCount():  # (an empty table's headers alone would widen it again)
            shown = [c for c in range(self.model.columnCount()) if not self.table.isColumnHidden(c)]
            self._want(self._table_width(sum(self.table.columnWidth(c) for c in shown)))

    def _on_rows_reset(self) -> None:
        """New rows: the whole table's width is asked for; if the window cannot give it, the table stays
        (or goes) compact and the dock is narrowed to its two columns (it went compact before the rows
        came, in a window narrowed while the image was opening, and kept the width it had)."""
        self._fit_width()
        self._update_compact()
        if self._compact:
            self._want_shown()

    def _room(self) -> int:
        margins = self._layout.contentsMargins()
        return self.width() - margins.left() - margins.right()

    def _set_compact(self, compact: bool) -> None:
        if compact == self._compact:
            return
        self._compact, self._switching, self._resized_while_switching = compact, True, False
        try:
            for column in _DETAIL_COLUMNS:
                self.table.setColumnHidden(column, compact)
            side = THUMBNAIL_SIZE // 2 if compact else THUMBNAIL_SIZE
            self.model.set_thumbnail_side(side if compact else None)
            self.table.setIconSize(QSize(side, side))
            self.table.resizeColumnsToContents()
            self.details.setVisible(compact)
            self._show_details()
        finally:
            self._switching = False
        if self._resized_while_switching:
            self._update_compact()

    def _show_details(self) -> None:
        """The selected level's columns that the compact table leaves out, one "header: value" a line."""
        row = self.table.currentIndex().row()
        if not self._compact or not 0 <= row < self.model.rowCount():
            self.details.setText("")
            return
        def header(column: int, role: Qt.ItemDataRole = Qt.ItemDataRole.DisplayRole) -> object:
            return self.model.headerData(column, Qt.Orientation.Horizontal, role)

        lines = [f"{header(c)}: {self.model.index(row, c).data()}" for c in _DETAIL_COLUMNS]
        self.details.setText(f"Level {row}\n" + "\n".join(lines))
        tips = (f"{header(c)}: {header(c, Qt.ItemDataRole.ToolTipRole)}" for c in _DETAIL_COLUMNS)
        self.details.setToolTip("\n".join(tips))

    def show_building(self) -> None:
        """A pyramid is being built again (another depth): the rows shown are out of date (greyed)."""
        self.table.setEnabled(False)

    def show_new_image(self, max_depth: int, depth: int | None) -> None:
        """A new image's pyramid is being built: the previous image's rows go, and the depth box shows
        the levels asked for (`depth`, None: all) within the new image's range, not the previous count."""
        self.model.set_pyramid(None)
        self.table.setEnabled(False)
        self._set_depth_box(max_depth, max_depth if depth is None else min(depth, max_depth))

    def set_pyramid(self, pyramid: Pyramid, max_depth: int) -> None:
        self.depth.setEnabled(True)
        self.table.setEnabled(True)
        self.model.set_pyramid(pyramid)
        self.level.blockSignals(True)
        self.level.setRange(0, pyramid.levels - 1)
        self.level.blockSignals(False)
        self._set_depth_box(max_depth, pyramid.levels)

    def _set_depth_box(self, max_depth: int, value: int) -> None:
        self.depth.blockSignals(True)
        self.depth.setRange(1, max_depth)
        self.depth.setValue(value)
        self.depth.blockSignals(False)

    def set_stored(self, image: StoredImage) -> None:
        """The levels a file holds: they are read, not built, so the depth is theirs."""
        self.model.set_rows(image.stats, image.thumbnails)
        count = len(image.levels)
        self.level.blockSignals(True)
        self.level.setRange(0, count - 1)
        self.level.blockSignals(False)
        self._set_depth_box(count, count)
        self.depth.setEnabled(False)
        self.table.setEnabled(True)

    def show_level(self, level: int) -> None:
        """Reflect the selected level without echoing it back as a user choice."""
        self.level.blockSignals(True)
        self.level.setValue(level)
        self.level.blockSignals(False)
        if 0 <= level < self.model.rowCount():
            selection = self.table.selectionModel()
            selection.blockSignals(True)
            index = self.model.index(level, 0)
            selection.setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect
                                      | QItemSelectionModel.SelectionFlag.Rows)
            selection.blockSignals(False)
            self.table.viewport().update()
            self.table.scrollTo(index)
            self._show_details()

    def content_width(self) -> int:
        """The table's width that shows its columns whole (those shown on demand left out) beside a
        vertical scroll bar, with full-size thumbnails."""
        side = self.table.iconSize().width()
        if side not in self._cells_width:  # measured once per set of rows: every cell's size hint
            table, header = self.table, self.table.horizontalHeader()
            columns = [c for c in range(self.model.columnCount()) if c not in NAIVE_COLUMNS]
            self._cells_width[side] = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
                                          for c in columns)
        shrunk = THUMBNAIL_SIZE - side  # the Level column's thumbnails, while compact
        return self._table_width(self._cells_width[side] + shrunk)

    def _table_width(self, cells: int) -> int:
        """The table's width for columns `cells` pixels wide in all, beside a vertical scroll bar."""
        return cells + 2 * self.table.frameWidth() + self.table.verticalScrollBar().sizeHint().width()

    def full_width(self) -> int:
        """The panel's width that shows the whole table (`content_width` and the margins)."""
        return self._panel_width(self.content_width())

    def _panel_width(self, table_width: int) -> int:
        margins = self._layout.contentsMargins()
        return table_width + margins.left() + margins.right()

    def _want(self, table_width: int) -> None:
        self.width_wanted.emit(self._panel_width(table_width))

    def _fit_width(self) -> None:
        self._want(self.content_width())

    def _on_without_dstsize_toggled(self, shown: bool) -> None:
        for column in NAIVE_COLUMNS:
            self.table.setColumnHidden(column, not shown)
        self.dstsize_note.setVisible(shown)
        if shown and self.model.rowCount():  # bring the size chain into view
            row = max(0, self.table.currentIndex().row())
            self.table.scrollTo(self.model.index(row, NAIVE_COLUMNS[-1]))

    def _on_current_row_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        self._show_details()
        if current.isValid():
            self.level_selected.emit(current.row())
