"""The Pyramid coding tab: a quantisation step per band (and presets), the rebuilt image, its residual and
JPEG at the same rate, and the rate-distortion curves of both (Burt & Adelson 1983)."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QGroupBox,
    QLabel,
    QScrollArea,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import BandRows, export_button, side_column
from pyramid_explorer.core.analysis import CODING_PRESETS, RatePoint, preset_steps
from pyramid_explorer.jobs import Pyramid
from pyramid_explorer.tools.coding import DEFAULT_PRESET, CodingCurves, CodingResult

STEPS_PER_GREY_LEVEL = 4
"""Slider steps per grey level (1/255 of the value range): step = value / 4 grey levels."""
MAX_STEP = 64
PRESET_NAMES = {"uniform": "uniform (4 grey levels)",
                "coarse_fine_bands": "coarse fine bands (Burt & Adelson)",
                "near_lossless": "near lossless (1 grey level)"}


def quality_text(point: RatePoint | CodingResult) -> str:
    """'PSNR 36.33 dB, SSIM 0.942' (SSIM n/a for an image smaller than its window)."""
    psnr = "PSNR inf (exact)" if math.isinf(point.psnr) else f"PSNR {point.psnr:.2f} dB"
    ssim = "SSIM n/a" if math.isnan(point.ssim) else f"SSIM {point.ssim:.3f}"
    return f"{psnr}, {ssim}"


def _finite(points: tuple[RatePoint, ...]) -> tuple[list[float], list[float]]:
    kept = [(p.bits_per_pixel, p.psnr) for p in points if math.isfinite(p.psnr)]
    return [x for x, _ in kept], [y for _, y in kept]


class RateDistortionPlot(pg.PlotWidget):
    """PSNR against bits per pixel: the pyramid code's step sweep, JPEG's quality sweep, and the two
    points the tab shows (this code, JPEG at its rate)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(False)
        self.setMenuEnabled(False)
        self.setBackground("w")
        self.setLabel("bottom", "rate (bits per pixel)")
        self.setLabel("left", "PSNR (dB)")
        self.showGrid(x=True, y=True, alpha=0.3)
        self.addLegend(offset=(-10, -10)).setBrush(pg.mkBrush(255, 255, 255, 210))
        self.pyramid = self.plot([], [], pen=pg.mkPen("#1f77b4", width=2), symbol="o", symbolSize=6,
                                 symbolBrush="#1f77b4", name="pyramid code (steps x 0.5 .. 64)")
        self.jpeg = self.plot([], [], pen=pg.mkPen("#d62728", width=2), symbol="s", symbolSize=6,
                              symbolBrush="#d62728", name="JPEG (quality 5 .. 100, real files)")
        self.current = self.plot([], [], pen=None, symbol="star", symbolSize=16, symbolBrush="#1f77b4",
                                 name="this code")
        self.jpeg_current = self.plot([], [], pen=None, symbol="star", symbolSize=16, symbolBrush="#d62728",
                                      name="JPEG at the same rate")

    def show_curves(self, curves: CodingCurves | None) -> None:
        self.pyramid.setData(*_finite(() if curves is None else curves.pyramid))
        self.jpeg.setData(*_finite(() if curves is None else curves.jpeg))

    def show_code(self, code: CodingResult | None) -> None:
        points = () if code is None else (RatePoint(0, code.bits_per_pixel, code.psnr, code.ssim),)
        self.current.setData(*_finite(points))
        self.jpeg_current.setData(*_finite(() if code is None or code.jpeg is None else (code.jpeg,)))


class CodingTab(ToolTab):
    """Renders CodingResult and CodingCurves; emits `coding_steps` and `coding_preset`."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._code: CodingResult | None = None
        self._curves: CodingCurves | None = None
        self._unit = 1 / 255
        self._levels = 0
        self._dtype = np.dtype(np.uint8)
        self.sliders: list[QSlider] = []
        self._step_labels: list[QLabel] = []
        self.bits_labels: list[QLabel] = []
        self.rebuilt = ImagePanel("rebuilt", histogram=False)
        self.residual = ImagePanel("residual", histogram=False)
        self.jpeg = ImagePanel("JPEG", histogram=False)
        self.plot = RateDistortionPlot()
        self.plot.setMinimumHeight(150)
        self.preset = QComboBox()
        for name in CODING_PRESETS:
            self.preset.addItem(PRESET_NAMES[name], name)
        self.preset.setCurrentIndex(CODING_PRESETS.index(DEFAULT_PRESET))
        self.preset.currentIndexChanged.connect(self._on_preset_chosen)
        self.source_label = QLabel()
        self.source_label.setWordWrap(True)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.export_button = export_button(self)

        steps_box = QGroupBox("Step per band (grey levels of 255)")
        grid = QGridLayout(steps_box)
        grid.setColumnStretch(1, 1)
        self._rows = BandRows(grid)
        scroll = QScrollArea()
        scroll.setWidget(steps_box)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        side = QVBoxLayout()
        side.addWidget(self.source_label)
        side.addWidget(QLabel("Preset"))
        side.addWidget(self.preset)
        side.addWidget(scroll, 1)
        side.addWidget(self.summary)
        side.addWidget(self.export_button)
        self.grid = PanelGrid(self.panels)
        right = QVBoxLayout()
        right.addWidget(self.grid, 3)
        right.addWidget(self.plot, 2)
        side_column(self, side, 290).addLayout(right, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.rebuilt, self.residual, self.jpeg]

    @property
    def result(self) -> tuple[CodingResult | CodingCurves, ...] | None:
        """The code shown (and the curves, once computed): what Export writes."""
        if self._code is None:
            return None
        return (self._code,) if self._curves is None else (self._code, self._curves)

    def steps(self) -> tuple[float, ...]:
        """The sliders' steps, in the image's units."""
        return tuple(s.value() / STEPS_PER_GREY_LEVEL * self._unit for s in self.sliders)

    def on_pyramid_changed(self, pyramid: Pyramid) -> None:
        """One slider per band of `pyramid`, at the preset's steps."""
        for slider in self.sliders:
            slider.valueChanged.disconnect(self._on_slider_moved)
        self.sliders, self._step_labels, self.bits_labels = [], [], []
        self._unit, self._levels = pyramid.data_range / 255, pyramid.levels
        self._dtype = pyramid.gaussian[0].dtype
        h, w = pyramid.gaussian[0].shape[:2]
        self.source_label.setText(f"Coding the whole {w} x {h} image in {pyramid.levels} bands")
        self._rows.rebuild(pyramid, self._step_row)
        self._set_steps(preset_steps(self.preset.currentData(), self._levels, self._dtype))
        self._code = self._curves = None
        self.export_button.setEnabled(False)

    def _step_row(self, _band: int) -> list[QWidget]:
        """A band's step slider, its step and its entropy."""
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(1, MAX_STEP * STEPS_PER_GREY_LEVEL)
        slider.setPageStep(STEPS_PER_GREY_LEVEL * 4)
        slider.valueChanged.connect(self._on_slider_moved)
        step, bits = QLabel(), QLabel()
        step.setMinimumWidth(40)
        bits.setMinimumWidth(64)
        bits.setToolTip("Entropy of the quantised band, bits per sample")
        self.sliders.append(slider)
        self._step_labels.append(step)
        self.bits_labels.append(bits)
        return [slider, step, bits]

    def _set_steps(self, steps: tuple[float, ...]) -> None:
        """Move the sliders to `steps` (image units) without announcing it."""
        for slider, label, step in zip(self.sliders, self._step_labels, steps, strict=True):
            slider.blockSignals(True)
            slider.setValue(round(step / self._unit * STEPS_PER_GREY_LEVEL))
            slider.blockSignals(False)
            label.setText(f"{slider.value() / STEPS_PER_GREY_LEVEL:g}")

    def show_setting(self, name: str, value: object) -> None:
        if name == "coding_preset" and value in CODING_PRESETS:
            self.preset.blockSignals(True)
            self.preset.setCurrentIndex(CODING_PRESETS.index(value))
            self.preset.blockSignals(False)
        elif name == "coding_steps" and isinstance(value, tuple) and len(value) == len(self.sliders):
            self._set_steps(value)

    def show_result(self, result: CodingResult | CodingCurves, keep_limits: bool = False) -> None:
        if isinstance(result, CodingCurves):
            self._curves = result
            self.plot.show_curves(result)
            return
        self._code = result
        for label, bits in zip(self.bits_labels, result.band_bits, strict=False):
            label.setText(f"{bits:.2f} bits")
        text = f"{result.bits_per_pixel:.3f} bits per pixel (entropy of the bands), {quality_text(result)}"
        if result.jpeg is None or result.jpeg_image is None:
            text += f"\n{result.jpeg_note}"
            self.jpeg.show_message(result.jpeg_note, "JPEG: not available")
        else:
            jpeg = result.jpeg
            text += (f"\nJPEG quality {jpeg.setting:g} at {jpeg.bits_per_pixel:.3f} bits per pixel "
                     f"(real file): {quality_text(jpeg)}")
            self._queue.show(self.jpeg, result.jpeg_image,
                             f"JPEG q{jpeg.setting:g}: {jpeg.bits_per_pixel:.2f} bpp")
        self.summary.setText(text)
        self._queue.show(self.rebuilt, result.rebuilt, f"Rebuilt: {result.bits_per_pixel:.2f} bpp",
                         keep_limits=keep_limits)
        self._queue.show(self.residual, result.residual, "Residual")
        self.plot.show_code(result)
        self.export_button.setEnabled(True)

    def show_message(self, text: str) -> None:
        self._code = self._curves = None
        self.export_button.setEnabled(False)
        self.summary.setText(text)
        self.plot.show_curves(None)
        self.plot.show_code(None)
        show_message_in(self._queue, self.panels, text)

    def _on_slider_moved(self, _value: int) -> None:
        for slider, label in zip(self.sliders, self._step_labels, strict=True):
            label.setText(f"{slider.value() / STEPS_PER_GREY_LEVEL:g}")
        self.setting_changed.emit("coding_steps", self.steps())

    def _on_preset_chosen(self, _index: int) -> None:
        preset = self.preset.currentData()
        if self.sliders:
            self._set_steps(preset_steps(preset, self._levels, self._dtype))
        self.setting_changed.emit("coding_preset", preset)
        self.setting_changed.emit("coding_steps", None)
