"""The Equalizer tab: one gain per Laplacian band, the image rebuilt with them, and what changed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tabs.shared import BandRows, export_button, side_column
from pyramid_explorer.jobs import Pyramid
from pyramid_explorer.tools.equalizer import EqualizerResult

STEPS_PER_UNIT = 100
"""Slider steps per unit of gain: gain = value / 100, so 100 is exactly 1 (an exact rebuild)."""
MAX_GAIN = 4


def gain_text(gain: float) -> str:
    return "drop" if gain == 0 else f"x{gain:.2f}"


class EqualizerTab(ToolTab):
    """Renders EqualizerResult results; `gains_changed` carries the sliders' gains, one per band."""


    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: EqualizerResult | None = None
        self.sliders: list[QSlider] = []
        self._value_labels: list[QLabel] = []
        self.image = ImagePanel("equalized", histogram=False)
        self.change = ImagePanel("change", histogram=False)
        self.reset_button = QPushButton("Reset (exact)")
        self.reset_button.setToolTip("Every gain back to 1: the collapse gives the source back exactly")
        self.reset_button.clicked.connect(self.reset)
        self.export_button = export_button(self)
        self.summary = QLabel()
        self.summary.setWordWrap(True)

        self._gain_box = QGroupBox("Band gains (0 drops a band, > 1 boosts it)")
        self._rows = BandRows(QGridLayout(self._gain_box))
        buttons = QHBoxLayout()
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.export_button)
        side = QVBoxLayout()
        side.addWidget(self._gain_box)
        side.addLayout(buttons)
        side.addWidget(self.summary)
        side.addStretch(1)
        self.grid = PanelGrid(self.panels)
        side_column(self, side, 330, fixed=False).addWidget(self.grid, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.image, self.change]

    @property
    def result(self) -> EqualizerResult | None:
        return self._result

    def gains(self) -> tuple[float, ...]:
        return tuple(s.value() / STEPS_PER_UNIT for s in self.sliders)

    def set_pyramid(self, pyramid: Pyramid) -> None:
        """One slider per band of `pyramid`, all at gain 1."""
        for slider in self.sliders:
            slider.valueChanged.disconnect(self._on_slider_moved)
        self.sliders, self._value_labels = [], []
        self._rows.rebuild(pyramid, self._gain_row, " low-pass")
        self._result = None
        self.export_button.setEnabled(False)

    def _gain_row(self, _band: int) -> list[QWidget]:
        """A band's slider at gain 1 and its gain."""
        slider = QSlider(Qt.Orientation.Horizontal)
        slider.setRange(0, MAX_GAIN * STEPS_PER_UNIT)
        slider.setSingleStep(5)
        slider.setPageStep(25)
        slider.setValue(STEPS_PER_UNIT)
        slider.setTickInterval(STEPS_PER_UNIT)
        slider.setTickPosition(QSlider.TickPosition.TicksBelow)
        slider.valueChanged.connect(self._on_slider_moved)
        value = QLabel(gain_text(1.0))
        value.setMinimumWidth(48)
        self.sliders.append(slider)
        self._value_labels.append(value)
        return [slider, value]

    def set_gains(self, gains: tuple[float, ...]) -> None:
        """Move the sliders to `gains` without announcing it."""
        for slider, label, gain in zip(self.sliders, self._value_labels, gains, strict=True):
            slider.blockSignals(True)
            slider.setValue(round(gain * STEPS_PER_UNIT))
            slider.blockSignals(False)
            label.setText(gain_text(gain))

    def reset(self) -> None:
        """Every gain back to exactly 1, announced once."""
        self.set_gains((1.0,) * len(self.sliders))
        self.setting_changed.emit("gains", self.gains())

    def show_result(self, result: EqualizerResult, keep_limits: bool = False) -> None:
        self._result = result
        if result.exact:
            text = "Exact: every pixel identical to the source (all gains 1)"
        else:
            text = f"{result.changed_pixels} pixels changed, largest change {result.max_abs_change:.4g}"
            if result.saturated_values:
                text += f"; {result.saturated_values} values clipped to the image's range"
        self.summary.setText(text)
        gains = ", ".join(gain_text(g) for g in result.gains)
        self._queue.show(self.image, result.image, f"Collapse with gains: {gains}")
        self._queue.show(self.change, result.change, f"Equalized - source: {text}")
        self.export_button.setEnabled(True)

    def _on_slider_moved(self, _value: int) -> None:
        gains = self.gains()
        for label, gain in zip(self._value_labels, gains, strict=True):
            label.setText(gain_text(gain))
        self.setting_changed.emit("gains", gains)

    def on_pyramid_changed(self, pyramid: Pyramid) -> None:
        self.set_pyramid(pyramid)
