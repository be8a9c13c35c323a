"""The Shift-equivariance tab: RMS and PSNR of each downsampler's output against the input's shift (Zhang
2019), filled in downsampler by downsampler, and one downsampler's two most different outputs."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSignalBlocker
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import export_button, row, spin_box
from pyramid_explorer.core.equivariance import DIRECTIONS, DOWNSAMPLERS
from pyramid_explorer.tools.shift import DEFAULT_MAX_SHIFT, MAX_SHIFT, NAMES, ShiftCurve, ShiftResult

COLOURS = dict(zip(DOWNSAMPLERS, ("#d62728", "#ff7f0e", "#9467bd", "#2ca02c", "#1f77b4"), strict=True))


def _plot(left: str) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    plot.setAcceptDrops(False)
    plot.setMenuEnabled(False)
    plot.setBackground("w")
    plot.setLabel("bottom", "shift (pixels)")
    plot.setLabel("left", left)
    plot.showGrid(x=True, y=True, alpha=0.3)
    return plot


def _curve(plot: pg.PlotWidget, name: str) -> pg.PlotDataItem:
    colour = COLOURS[name]
    return plot.plot([], [], pen=pg.mkPen(colour, width=2), symbol="o", symbolSize=5, symbolBrush=colour)


class ShiftTab(ToolTab):
    """Renders ShiftResult results; emits `shift_direction` and `shift_max`."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: ShiftResult | None = None
        self.direction = QComboBox()
        for name in DIRECTIONS:
            self.direction.addItem(name, name)
        self.direction.setCurrentIndex(list(DIRECTIONS).index("diagonal"))
        self.direction.currentIndexChanged.connect(self._on_direction_chosen)
        self.max_shift = spin_box(1, MAX_SHIFT, DEFAULT_MAX_SHIFT, self._on_max_shift_changed)
        self.shown = QComboBox()
        for name in DOWNSAMPLERS:
            self.shown.addItem(NAMES[name], name)
        self.shown.currentIndexChanged.connect(self._on_shown_chosen)
        self.export_button = export_button(self)
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.rms_plot = _plot("RMS vs shift 0 (image units)")
        self.psnr_plot = _plot("PSNR vs shift 0 (dB)")
        self.legend = QLabel("&nbsp;&nbsp;&nbsp;".join(
            f'<span style="color:{COLOURS[n]}">&#9632;</span>&nbsp;{NAMES[n]}' for n in DOWNSAMPLERS))
        self.legend.setWordWrap(True)
        self.rms_curves = {name: _curve(self.rms_plot, name) for name in DOWNSAMPLERS}
        self.psnr_curves = {name: _curve(self.psnr_plot, name) for name in DOWNSAMPLERS}
        self.first = ImagePanel("first", histogram=False)
        self.second = ImagePanel("second", histogram=False)
        self.difference = ImagePanel("difference", histogram=False)

        bar = row("Shift", self.direction, "by 0 ..", self.max_shift, "pixels; outputs of", self.shown, None,
                  self.export_button)
        plots = QHBoxLayout()
        plots.addWidget(self.rms_plot, 1)
        plots.addWidget(self.psnr_plot, 1)
        images = QHBoxLayout()
        for panel in self.panels:
            images.addWidget(panel, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.note)
        layout.addWidget(self.legend)
        layout.addLayout(plots, 1)
        layout.addLayout(images, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.first, self.second, self.difference]

    @property
    def result(self) -> ShiftResult | None:
        return self._result

    def curve(self, name: str) -> ShiftCurve | None:
        """The study of downsampler `name` in the result shown, if done."""
        result = self._result
        return next((c for c in result.curves if c.downsampler == name), None) if result else None

    def show_result(self, result: ShiftResult, keep_limits: bool = False) -> None:
        self._result = result
        for name in DOWNSAMPLERS:
            curve = self.curve(name)
            shifts = [] if curve is None else list(curve.shifts)
            self.rms_curves[name].setData(shifts, [] if curve is None else curve.rms)
            finite = [] if curve is None else [k for k, v in enumerate(curve.psnr) if np.isfinite(v)]
            psnr = [] if curve is None else [curve.psnr[k] for k in finite]
            self.psnr_curves[name].setData([shifts[k] for k in finite], psnr)
        for plot in (self.rms_plot, self.psnr_plot):
            plot.setXRange(0, result.max_shift, padding=0.03)
        w, h = result.size
        done = len(result.curves)
        progress = "" if result.complete else f" ({done} of {len(DOWNSAMPLERS)} downsamplers done)"
        if any(np.isinf(c.psnr[1:]).any() for c in result.curves):
            progress += "; PSNR is not drawn where an output equals the unshifted one (infinite)"
        self.note.setText(f"G[{result.level}], {w} x {h}, {result.direction} shifts with wrap-around; "
                          f"each output brought back with pyrUp and unshifted{progress}")
        self.export_button.setEnabled(True)
        self._show_pair(keep_limits)

    def _show_pair(self, keep_limits: bool = False) -> None:
        name = self.shown.currentData()
        curve = self.curve(name)
        if curve is None:
            show_message_in(self._queue, self.panels, f"{NAMES[name]}: still computing", NAMES[name])
            return
        a, b = curve.pair
        queue, keep = self._queue, keep_limits
        queue.show(self.first, curve.first, f"{NAMES[name]}, shift {a}", keep_limits=keep)
        queue.show(self.second, curve.second, f"shift {b} (the most different)", keep_limits=keep)
        queue.show(self.difference, curve.difference, f"shift {b} - shift {a}: RMS {curve.pair_rms:.3g}")

    def show_message(self, text: str) -> None:
        self._result = None
        self.export_button.setEnabled(False)
        self.note.setText(text)
        for curves in (self.rms_curves, self.psnr_curves):
            for item in curves.values():
                item.setData([], [])
        show_message_in(self._queue, self.panels, text)

    def show_setting(self, name: str, value: object) -> None:
        if name == "shift_direction" and value in DIRECTIONS:
            with QSignalBlocker(self.direction):
                self.direction.setCurrentIndex(list(DIRECTIONS).index(value))
        elif name == "shift_max" and isinstance(value, int):
            with QSignalBlocker(self.max_shift):
                self.max_shift.setValue(value)

    def _on_direction_chosen(self, _index: int) -> None:
        self.setting_changed.emit("shift_direction", self.direction.currentData())

    def _on_max_shift_changed(self, value: int) -> None:
        self.setting_changed.emit("shift_max", value)

    def _on_shown_chosen(self, _index: int) -> None:
        if self._result is not None:
            self._show_pair()
