"""The Transposed convolution tab: where each input pixel's kernel lands (frame by frame, playable, saved as
an animated GIF or APNG), the overlap counts and output-size formula, and the matrix view: C, C^T and
C^T C as heat maps, C^T @ x checked against transposed_conv2d, and C^T C applied to G[level]."""

from __future__ import annotations

import os

from PySide6.QtCore import QSignalBlocker, Qt, QTimer
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import (
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel, sampled_colormap
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import export_button, kernel_choice, row, side_column, spin_box
from pyramid_explorer.core.convmatrix import save_animation
from pyramid_explorer.core.deconv import KERNELS
from pyramid_explorer.core.io import ImageSaveError
from pyramid_explorer.display import Layer
from pyramid_explorer.tools.convmatrix import DEFAULTS, MAX_INPUT, ConvMatrixResult

FRAME_MS = 300
"""Time per frame when playing and in the saved animation."""
SPINS = {  # setting: (label, lowest, highest)
    "convmatrix_input": ("Input side (pixels)", 1, MAX_INPUT),
    "convmatrix_kernel_size": ("Kernel size k", 1, 16),
    "convmatrix_stride": ("Stride s", 1, 8),
    "convmatrix_padding": ("Padding p", 0, 15),
    "convmatrix_output_padding": ("Output padding op", 0, 7),
}


class ConvMatrixTab(ToolTab):
    """Renders ConvMatrixResult results; emits the geometry's settings and `convmatrix_weights`."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: ConvMatrixResult | None = None
        heat = sampled_colormap("viridis")
        self.frame = ImagePanel("placement", histogram=False, linked=False)
        self.overlaps = ImagePanel("overlaps", histogram=False, linked=False, unsigned_map=heat)
        self.c = ImagePanel("C", histogram=False, linked=False, unsigned_map=heat)
        self.c_transposed = ImagePanel("C^T", histogram=False, linked=False, unsigned_map=heat)
        self.gram = ImagePanel("C^T C", histogram=False, linked=False, unsigned_map=heat)
        self.source = ImagePanel("G", histogram=False)
        self.round_trip = ImagePanel("C^T C x", histogram=False)
        self.spins: dict[str, QSpinBox] = {}
        form = QFormLayout()
        for name, (label, low, high) in SPINS.items():
            value = DEFAULTS[name]
            assert isinstance(value, int)  # the spin boxes' settings are the integer ones
            self.spins[name] = spin_box(low, high, value, self._on_spin_changed)
            form.addRow(label, self.spins[name])
        self.weights = kernel_choice("Taps scaled to sum to s^2, as the Compare tab's transposed convolution")
        self.weights.currentIndexChanged.connect(self._on_weights_chosen)
        form.addRow("Kernel", self.weights)
        self.formula = QLabel()
        self.formula.setWordWrap(True)
        self.formula.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.check = QLabel()
        self.check.setWordWrap(True)
        self.frame_label = QLabel()
        self.frame_label.setWordWrap(True)
        self.saved = QLabel()
        self.saved.setWordWrap(True)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._on_frame_chosen)
        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._on_play_toggled)
        self.player = QTimer(self)
        self.player.setInterval(FRAME_MS)
        self.player.timeout.connect(self._on_tick)
        self.save_button = QPushButton("Save animation...")
        self.save_button.setToolTip("The frames as a looping animated GIF (.gif) or APNG (.png)")
        self.save_button.clicked.connect(self._on_save_clicked)
        self.export_button = export_button(self)
        for button in (self.save_button, self.export_button, self.play_button):
            button.setEnabled(False)

        side = QVBoxLayout()
        side.addLayout(form)
        side.addLayout(row(self.play_button, self.slider, stretch=self.slider))
        side.addWidget(self.frame_label)
        side.addWidget(self.formula)
        side.addWidget(self.check)
        side.addLayout(row(self.save_button, self.export_button))
        side.addWidget(self.saved)
        side.addStretch(1)
        grid = QGridLayout()
        for index, panel in enumerate(self.panels):
            grid.addWidget(panel, index // 4, index % 4)
        side_column(self, side, 270).addLayout(grid, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.frame, self.overlaps, self.source, self.round_trip, self.c, self.c_transposed, self.gram]

    @property
    def result(self) -> ConvMatrixResult | None:
        return self._result

    def show_result(self, result: ConvMatrixResult, keep_limits: bool = False) -> None:
        self._result = result
        g = result.geometry
        (h, w), (big_h, big_w) = g.input_shape, g.output_shape
        torch = ("PyTorch not installed" if result.pytorch_shape is None
                 else f"PyTorch ConvTranspose2d gives {result.pytorch_shape[1]} x {result.pytorch_shape[0]}")
        self.formula.setText(f"Output side = (n - 1)*s - 2*p + k + op\n= {result.formula}\n{torch}")
        self.check.setText(f"C is {h * w} x {big_h * big_w}: a row per input pixel.\n"
                           f"C^T @ x against transposed_conv2d(x), x = G[{result.level}] as {w} x {h}: "
                           f"max difference {result.max_difference:.2g}.\n"
                           "C^T restores the size, not the values: C^T C is not the identity.")
        with QSignalBlocker(self.slider):
            self.slider.setRange(0, len(result.frames) - 1)
            self.slider.setValue(len(result.frames) - 1)
        self._show_frame()
        counts = result.overlaps.data
        self._draw(self.overlaps, result.overlaps, f"Overlaps {int(counts.min())}..{int(counts.max())}")
        self._draw(self.c, result.c, f"C: {h * w} x {big_h * big_w}")
        self._draw(self.c_transposed, result.c_transposed, f"C^T: {big_h * big_w} x {h * w}")
        if result.gram is None:
            side = big_h * big_w
            self.gram.show_message(f"C^T C would be {side} x {side}: too large to draw", "C^T C")
        else:
            self._draw(self.gram, result.gram, f"C^T C: {big_h * big_w} x {big_h * big_w}")
        i = result.level
        self._queue.show(self.source, result.source, f"x = G[{i}]", keep_limits=keep_limits)
        if result.round_trip is None:
            show_message_in(self._queue, [self.round_trip], result.round_trip_note, "C^T C x")
        else:
            title = f"C^T C x: mean x{result.round_trip_gain:.2f}"
            self._queue.show(self.round_trip, result.round_trip, title)
        for button in (self.save_button, self.export_button, self.play_button):
            button.setEnabled(True)

    def _draw(self, panel: ImagePanel, layer: Layer, title: str) -> None:
        panel.show_layer(layer, title)
        panel.view_box.autoRange(padding=0.02)

    def _show_frame(self) -> None:
        result = self._result
        if result is None:
            return
        t = self.slider.value()
        row, col = divmod(t, result.geometry.input_shape[1])
        self.frame_label.setText(f"Frame {t + 1} of {len(result.frames)}: the kernel of input pixel "
                                 f"(row {row}, column {col}), in red")
        self._draw(self.frame, result.frames[t], f"Frame {t + 1}/{len(result.frames)}")

    def show_message(self, text: str) -> None:
        self._result = None
        self.play_button.setChecked(False)
        for button in (self.save_button, self.export_button, self.play_button):
            button.setEnabled(False)
        self.formula.setText(text)
        self.check.setText("")
        self.frame_label.setText("")
        show_message_in(self._queue, self.panels, text)

    def show_setting(self, name: str, value: object) -> None:
        if name in self.spins and isinstance(value, int):
            with QSignalBlocker(self.spins[name]):
                self.spins[name].setValue(value)
        elif name == "convmatrix_weights" and value in KERNELS:
            with QSignalBlocker(self.weights):
                self.weights.setCurrentIndex(KERNELS.index(value))

    def save_animation_to(self, path: str) -> str:
        """Save the frames shown as an animation at `path`; what happened, as a sentence."""
        if self._result is None:
            return "Nothing to save yet"
        try:
            save_animation(path, self._result.pictures, FRAME_MS)
        except ImageSaveError as error:
            return f"Could not save the animation: {error}"
        return f"Saved {len(self._result.pictures)} frames to {os.path.basename(path)}"

    def _on_save_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save animation", "transposed_conv.gif",
                                              "Animated GIF (*.gif);;Animated PNG (*.png *.apng)")
        if path:
            self.saved.setText(self.save_animation_to(path))

    def _on_spin_changed(self, value: int) -> None:
        name = next(n for n, spin in self.spins.items() if spin is self.sender())
        self.setting_changed.emit(name, value)

    def _on_weights_chosen(self, _index: int) -> None:
        self.setting_changed.emit("convmatrix_weights", self.weights.currentData())

    def _on_frame_chosen(self, _value: int) -> None:
        self._show_frame()

    def _on_play_toggled(self, playing: bool) -> None:
        self.play_button.setText("Pause" if playing else "Play")
        if playing:
            self.player.start()
        else:
            self.player.stop()

    def hideEvent(self, event: QHideEvent) -> None:
        self.play_button.setChecked(False)  # no animation runs where nobody sees it
        super().hideEvent(event)

    def _on_tick(self) -> None:
        self.slider.setValue((self.slider.value() + 1) % (self.slider.maximum() + 1))
