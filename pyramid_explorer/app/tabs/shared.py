"""Widgets more than one tab uses: the transposed convolution's controls (Compare and Kernels), the
small heat map they draw kernels with, and the one-line description of an image."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.core.deconv import KERNELS, DeconvSettings
from pyramid_explorer.tools.compare import DeconvResult


def describe_image(shape: tuple[int, ...], dtype_name: str) -> str:
    """'451 x 300 RGB uint8' for an image of that shape and dtype."""
    kinds = {2: "grey+alpha", 3: "RGB", 4: "RGBA"}
    channels = "grey" if len(shape) == 2 else kinds.get(shape[2], f"{shape[2]} channels")
    return f"{shape[1]} x {shape[0]} {channels} {dtype_name}"


class HeatMap(QWidget):
    """A small, non-interactive image of a kernel-sized array with a colour map."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        canvas = pg.GraphicsLayoutWidget()
        canvas.setAcceptDrops(False)
        canvas.setFixedSize(120, 120)
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
        self.kernel_size = QSpinBox()
        self.kernel_size.setRange(1, 16)
        self.kernel_size.setValue(defaults.kernel_size)
        self.stride = QSpinBox()
        self.stride.setRange(1, 8)
        self.stride.setValue(defaults.stride)
        self.kernel = QComboBox()
        for name in KERNELS:
            self.kernel.addItem("random (seed 0)" if name == "random" else name, name)
        self.kernel.setToolTip("Taps scaled to sum to stride^2: a constant image keeps its level on average")
        self.kernel_map = HeatMap()
        self.phase_map = HeatMap()
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        for w in (self.kernel_size, self.stride):
            w.valueChanged.connect(self._on_edited)
        self.kernel.currentIndexChanged.connect(self._on_edited)

        form = QFormLayout()
        form.addRow("Kernel size", self.kernel_size)
        form.addRow("Stride", self.stride)
        form.addRow("Kernel", self.kernel)
        grid = QGridLayout()
        grid.addWidget(QLabel("Kernel"), 0, 0)
        grid.addWidget(QLabel("Phase sums (2x2 periods)"), 0, 1)
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

    def show_result(self, result: DeconvResult) -> None:
        self.kernel_map.set_array(result.kernel)
        self.phase_map.set_array(np.tile(result.phase_sums, (2, 2)))
        self.verdict.setText(result.verdict[0].upper() + result.verdict[1:])

    def _on_edited(self) -> None:
        self.settings_changed.emit(self.settings())
