"""Widgets more than one tab uses: the transposed convolution's controls (Compare and Kernels), the
small heat map they draw kernels with, the phase-sums table and the spectrum's Nyquist markers (Kernels
and Learnable), the one-line description of an image, the Export button, the side column's layout and
the one-row-per-band grid (Equalizer and Coding), and the rows of controls the tabs are made of (a spin
box, the kernel kinds to choose from, a row of labelled widgets)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLayout,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.wrapped_label import WrappedLabel
from pyramid_explorer.core.analysis import overlap_verdict, polyphase_sums
from pyramid_explorer.core.deconv import KERNELS, DeconvSettings, deconv_kernel
from pyramid_explorer.display import Layer
from pyramid_explorer.jobs import Pyramid


def describe_image(shape: tuple[int, ...], dtype_name: str) -> str:
    """'451 x 300 RGB uint8' for an image of that shape and dtype."""
    kinds = {2: "grey+alpha", 3: "RGB", 4: "RGBA"}
    channels = "grey" if len(shape) == 2 else kinds.get(shape[2], f"{shape[2]} channels")
    return f"{shape[1]} x {shape[0]} {channels} {dtype_name}"


def export_button(tab: ToolTab, tip: str = "") -> QPushButton:
    """The tab's "Export..." button: disabled until there is a result, it asks for the tab's export."""
    button = QPushButton("Export...")
    if tip:
        button.setToolTip(tip)
    button.setEnabled(False)
    button.clicked.connect(tab.export_requested)
    return button


def spin_box(low: int, high: int, value: int, on_changed: Callable[..., object]) -> QSpinBox:
    """A spin box over `low`..`high` showing `value`, with `on_changed` (a bound method, not a lambda: see
    the style guide) connected to its valueChanged."""
    spin = QSpinBox()
    spin.setRange(low, high)
    spin.setValue(value)
    spin.valueChanged.connect(on_changed)
    return spin


def kernel_choice(tip: str) -> QComboBox:
    """The free transposed convolution's kernel kinds (core.deconv.KERNELS), each item's data its name."""
    box = QComboBox()
    for name in KERNELS:
        box.addItem("random (seed 0)" if name == "random" else name, name)
    box.setToolTip(tip)
    return box


def row(*items: QWidget | str | None, stretch: QWidget | None = None) -> QHBoxLayout:
    """`items` left to right, a str as a label and None as a gap that takes the spare room (or `stretch`,
    one of the widgets, takes it)."""
    layout = QHBoxLayout()
    for item in items:
        if item is None:
            layout.addStretch(1)
        elif isinstance(item, str):
            layout.addWidget(QLabel(item))
        else:
            layout.addWidget(item, 1 if item is stretch else 0)
    return layout


def side_column(tab: QWidget, side: QLayout, width: int, *, fixed: bool = True,
                scroll: bool = False) -> QHBoxLayout:
    """Lay `tab` out as one row: `side` in a column `width` pixels wide (at most, unless `fixed`) at the
    left; the row is returned for what goes beside it. With `scroll` the column scrolls vertically when
    the window is too low for it, so its controls do not make the tab taller than its panels need."""
    column = QWidget()
    column.setLayout(side)
    outer: QWidget = column
    if scroll:
        area = QScrollArea()
        area.setWidget(column)
        area.setWidgetResizable(True)
        area.setFrameShape(QFrame.Shape.NoFrame)
        area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        outer = area
    if fixed:
        outer.setFixedWidth(width)
    else:
        outer.setMaximumWidth(width)
    row = QHBoxLayout(tab)
    row.setContentsMargins(0, 0, 0, 0)
    row.addWidget(outer)
    return row


class BandRows:
    """One row of `grid` per band of a pyramid: the band's name (L[i], or G[i] for the coarsest level,
    with its size as tooltip), then the widgets its tab makes for it."""

    def __init__(self, grid: QGridLayout) -> None:
        self._grid = grid
        self._widgets: list[QWidget] = []

    def rebuild(self, pyramid: Pyramid, row: Callable[[int], Sequence[QWidget]], coarsest: str = "") -> None:
        """Replace the rows by one per band of `pyramid`, with `row(i)`'s widgets after band i's name
        (`coarsest` follows the coarsest level's)."""
        for w in self._widgets:
            self._grid.removeWidget(w)
            w.deleteLater()
        self._widgets = []
        for i, stats in enumerate(pyramid.stats):
            last = i == pyramid.levels - 1
            name = QLabel(f"G[{i}]{coarsest}" if last else f"L[{i}]")
            name.setToolTip(f"{'The coarsest Gaussian level' if last else 'Laplacian band'} {i}: "
                            f"{stats.width} x {stats.height}")
            widgets = [name, *row(i)]
            for column, w in enumerate(widgets):
                self._grid.addWidget(w, i, column)
            self._widgets += widgets


HEAT_MAP_SIDE = 96
"""Pixels of a heat map's side: two side by side keep Compare's column of controls narrow."""


class HeatMap(QWidget):
    """A small, non-interactive image of a kernel-sized array with a colour map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        canvas = pg.GraphicsLayoutWidget()
        canvas.setAcceptDrops(False)
        canvas.setFixedSize(HEAT_MAP_SIDE, HEAT_MAP_SIDE)
        box = canvas.addViewBox()
        box.setAspectLocked(True)
        box.invertY(True)
        box.setMouseEnabled(False, False)
        box.setMenuEnabled(False)
        self._item = pg.ImageItem(axisOrder="row-major")
        self._item.setColorMap(pg.colormap.get("viridis"))
        box.addItem(self._item)
        self._box = box
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(canvas)

    def set_array(self, values: np.ndarray) -> None:
        hi = float(values.max()) if values.size else 1.0
        self._item.setImage(values, autoLevels=False, levels=(0.0, hi if hi > 0 else 1.0))
        self._box.autoRange(padding=0)

    def array(self) -> np.ndarray | None:
        return self._item.image


class DeconvControls(QGroupBox):
    """Kernel size, stride and kernel kind of the free transposed convolution, its kernel and phases
    (the kernel inspector, which draws them itself, leaves out the maps: `maps=False`)."""

    settings_changed = Signal(object)  # DeconvSettings

    def __init__(self, parent: QWidget | None = None, *, maps: bool = True) -> None:
        super().__init__("Transposed convolution", parent)
        defaults = DeconvSettings()
        self.kernel_size = spin_box(1, 16, defaults.kernel_size, self._on_edited)
        self.stride = spin_box(1, 8, defaults.stride, self._on_edited)
        self.kernel = kernel_choice("Taps scaled to sum to stride^2: a constant image keeps its level on "
                                    "average")
        self.kernel_map = HeatMap()
        self.phase_map = HeatMap()
        self.verdict = WrappedLabel()
        self.kernel.currentIndexChanged.connect(self._on_edited)

        form = QFormLayout()
        form.addRow("Kernel size", self.kernel_size)
        form.addRow("Stride", self.stride)
        form.addRow("Kernel", self.kernel)
        grid = QGridLayout()
        grid.addWidget(QLabel("Kernel"), 0, 0)
        grid.addWidget(WrappedLabel("Phase sums (2x2 periods)"), 0, 1)  # wrapped: as narrow as its map
        grid.addWidget(self.kernel_map, 1, 0)
        grid.addWidget(self.phase_map, 1, 1)
        shown = QWidget()
        column = QVBoxLayout(shown)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(grid)
        column.addWidget(self.verdict)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(shown)
        self._show_kernel()
        if not maps:
            shown.hide()

    def settings(self) -> DeconvSettings:
        return DeconvSettings(self.kernel_size.value(), self.stride.value(), self.kernel.currentData())

    def set_settings(self, settings: object) -> None:
        """Show `settings` without announcing them (they were chosen in another view)."""
        if not isinstance(settings, DeconvSettings):  # the "deconv" setting, as a tab's show_setting got it
            raise TypeError(f"deconvolution settings expected, got {type(settings).__name__}")
        editors = (self.kernel_size, self.stride, self.kernel)
        for w in editors:
            w.blockSignals(True)
        self.kernel_size.setValue(settings.kernel_size)
        self.stride.setValue(settings.stride)
        self.kernel.setCurrentIndex(self.kernel.findData(settings.kernel))
        for w in editors:
            w.blockSignals(False)
        self._show_kernel()

    def _show_kernel(self) -> None:
        """The kernel of the settings shown, its phase sums and their verdict: they follow from the settings
        alone, so they are drawn at once (not when a result comes, which may be of earlier settings)."""
        settings = self.settings()
        kernel = deconv_kernel(settings)
        self.kernel_map.set_array(kernel)
        self.phase_map.set_array(np.tile(polyphase_sums(kernel, settings.stride), (2, 2)))
        verdict = overlap_verdict(kernel, settings.stride)
        self.verdict.setText(verdict[0].upper() + verdict[1:])

    def _on_edited(self) -> None:
        self._show_kernel()
        self.settings_changed.emit(self.settings())


class PhaseSumsTable(QTableWidget):
    """The (s, s) phase sums of a kernel as numbers, shaded by size: unequal sums are the checkerboard."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(0, 0, parent)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setToolTip("Sum of the kernel taps each output phase (row % s, column % s) receives")

    def show_sums(self, sums: np.ndarray) -> None:
        s = sums.shape[0]
        self.setRowCount(s)
        self.setColumnCount(s)
        phases = [str(n) for n in range(s)]  # output row % s, column % s
        self.setVerticalHeaderLabels(phases)
        self.setHorizontalHeaderLabels(phases)
        hi = float(np.abs(sums).max()) or 1.0
        for r in range(s):
            for c in range(s):
                item = QTableWidgetItem(f"{sums[r, c]:.4g}")
                item.setTextAlignment(Qt.AlignmentFlag.AlignCenter)
                shade = int(255 - 120 * abs(sums[r, c]) / hi)
                item.setBackground(QColor(shade, shade, 255))
                item.setForeground(QColor("black"))
                self.setItem(r, c, item)
        self.resizeColumnsToContents()
        # as large as its numbers, so the panels beside it get the room and it never scrolls
        frame = 2 * self.frameWidth() + 2
        self.setFixedSize(self.verticalHeader().width() + self.horizontalHeader().length() + frame,
                          self.horizontalHeader().height() + self.verticalHeader().length() + frame)

    def values(self) -> np.ndarray:
        """The phase sums shown, as numbers read back from the table."""
        n = self.rowCount()
        return np.array([[self._number(r, c) for c in range(n)] for r in range(n)])

    def _number(self, row: int, column: int) -> float:
        item = self.item(row, column)
        assert item is not None, "show_sums fills every cell"
        return float(item.text())


class NyquistMarkers(QObject):
    """Circles and strengths of the Nyquist peaks drawn over a spectrum panel."""

    def __init__(self, panel: ImagePanel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._panel = panel
        self._markers = pg.ScatterPlotItem(symbol="o", size=18, pen=pg.mkPen("#ff3b30", width=2),
                                           brush=None, pxMode=True)
        panel.view_box.addItem(self._markers, ignoreBounds=True)
        self._labels: list[pg.TextItem] = []

    def show(self, spectrum: Layer | None, peaks: tuple[tuple[int, int, float], ...], title: str) -> None:
        """Draw `spectrum` with its peaks circled, or `title` as the panel's message when it is None."""
        for label in self._labels:
            self._panel.view_box.removeItem(label)
        self._labels = []
        if spectrum is None:
            self._markers.setData([], [])
            self._panel.show_message(title, self._panel.name)
            return
        # the Nyquist bins are on the spectrum's edges: pad the view so their markers show whole
        self._panel.show_layer(spectrum, title)
        self._panel.view_box.autoRange(padding=0.08)
        self._markers.setData([float(c) for _, c, _ in peaks], [float(r) for r, _, _ in peaks])
        for r, c, strength in peaks:
            label = pg.TextItem(f"{strength:+.1f}", color="w", fill=(0, 0, 0, 170), anchor=(0, 0))
            label.setPos(c + 2, r + 2)
            self._panel.view_box.addItem(label, ignoreBounds=True)
            self._labels.append(label)

    def positions(self) -> list[tuple[float, float]]:
        """(x, y) view positions of the markers drawn now: (column, row) of the spectrum."""
        x, y = self._markers.getData()
        return list(zip(x.tolist(), y.tolist(), strict=True))
