"""The Compare tab: one panel per upsampling mode, and the free transposed convolution with its kernel."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.jobs import KERNELS, DeconvResult, DeconvSettings, Layer, ModeResult

_COLUMNS = 3


def metrics_text(psnr: float | None, ssim: float | None) -> str:
    """'PSNR 31.3 dB, SSIM 0.841', with the pending and undefined cases spelled out."""
    if psnr is None:
        return "PSNR/SSIM computing..."
    p = "PSNR inf (identical)" if math.isinf(psnr) else f"PSNR {psnr:.2f} dB"
    s = "SSIM n/a (< 11 px)" if ssim is None or math.isnan(ssim) else f"SSIM {ssim:.3f}"
    return f"{p}, {s}"


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

    def set_settings(self, settings: DeconvSettings) -> None:
        """Show `settings` without announcing them (they were chosen in another view)."""
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


class CompareView(QWidget):
    """Renders ModeResult/DeconvResult objects; emits the user's choices."""

    difference_toggled = Signal(bool)

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self.mode_panels = {mode: ImagePanel(mode, histogram=False) for mode in MODES}
        self.deconv_panel = ImagePanel("transposed conv", histogram=False)
        self.controls = DeconvControls()
        self.difference = QCheckBox("Show difference from G[i]")
        self.difference.toggled.connect(self._on_difference_toggled)
        self._modes: dict[str, ModeResult] = {}
        self._deconv: DeconvResult | None = None
        self._level_label = QLabel()

        grid = QGridLayout()
        grid.setSpacing(2)
        for n, panel in enumerate(self.mode_panels.values()):
            grid.addWidget(panel, n // _COLUMNS, n % _COLUMNS)
        side = QVBoxLayout()
        side.addWidget(self.controls)
        side.addWidget(self.deconv_panel, 1)
        bar = QHBoxLayout()
        bar.addWidget(self._level_label)
        bar.addStretch(1)
        bar.addWidget(self.difference)
        body = QHBoxLayout()
        body.addLayout(grid, 3)
        body.addLayout(side, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(body, 1)
        self._level_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)

    @property
    def panels(self) -> list[ImagePanel]:
        return [*self.mode_panels.values(), self.deconv_panel]

    def set_histograms_visible(self, visible: bool) -> None:
        for panel in self.panels:
            panel.set_histogram_visible(visible)

    def set_level_text(self, text: str) -> None:
        self._level_label.setText(text)

    @property
    def results(self) -> dict[str, ModeResult]:
        """The mode results drawn now, by mode."""
        return dict(self._modes)

    @property
    def deconv_result(self) -> DeconvResult | None:
        """The transposed-convolution result drawn now."""
        return self._deconv

    @property
    def showing_difference(self) -> bool:
        return self.difference.isChecked()

    def show_mode(self, result: ModeResult, *, keep_limits: bool = False) -> None:
        self._modes[result.mode] = result
        i, crop = result.level, " [centre crop]" if result.cropped else ""
        name = f"unpool(maxpool G[{i}])" if result.mode == "unpool" else result.mode
        layer, minus = self._pick(result.image, result.difference, i)
        panel = self.mode_panels[result.mode]
        panel.name = f"{result.mode}{minus}[{i}]"
        title = f"{name}{minus}: {metrics_text(result.psnr, result.ssim)}{crop}"
        self._queue.show(panel, layer, title, keep_limits=keep_limits)

    def show_deconv(self, result: DeconvResult, *, keep_limits: bool = False) -> None:
        self._deconv = result
        self.controls.show_result(result)
        s, i = result.settings, result.level
        crop = " [centre crop]" if result.cropped else ""
        layer, minus = self._pick(result.image, result.difference, i)
        if result.difference is None:
            metrics = "difference and metrics need stride 2"
        else:
            metrics = metrics_text(result.psnr, result.ssim)
        self.deconv_panel.name = f"deconv{minus}[{i}]"
        title = f"transposed conv k={s.kernel_size} s={s.stride} {s.kernel}{minus}: {metrics}{crop}"
        self._queue.show(self.deconv_panel, layer, title, keep_limits=keep_limits)

    def _pick(self, image: Layer, difference: Layer | None, level: int) -> tuple[Layer, str]:
        """The layer to draw (difference when asked and available) and the title's ' - G[i]' part."""
        if self.showing_difference and difference is not None:
            return difference, f" - G[{level}]"
        return image, ""

    def show_unavailable(self, mode: str, text: str) -> None:
        """`text` instead of the panel of a mode that cannot be computed at this level."""
        self._modes.pop(mode, None)
        panel = self.mode_panels[mode]
        self._queue.discard(panel)
        panel.show_message(text, title=f"{mode}: not available")

    def show_message(self, text: str) -> None:
        self._modes.clear()
        self._deconv = None
        for panel in self.panels:
            self._queue.discard(panel)
            panel.show_message(text, title=panel.name)

    def _on_difference_toggled(self, checked: bool) -> None:
        for result in list(self._modes.values()):
            self.show_mode(result)
        if self._deconv is not None:
            self.show_deconv(self._deconv)
        self.difference_toggled.emit(checked)
