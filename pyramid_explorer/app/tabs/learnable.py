"""The Learnable tab: transposed convolution, resize-convolution and sub-pixel convolution side by side at
their initialisations (each with its output, PSNR/SSIM, kernel, phase sums and spectrum), and a kernel of
the user's own network loaded from a .npy or .safetensors file."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.dialogs import ask_open_path
from pyramid_explorer.app.image_panel import ImagePanel, sampled_colormap
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import NyquistMarkers, PhaseSumsTable, export_button, side_column
from pyramid_explorer.app.wrapped_label import SameHeight
from pyramid_explorer.core.learnable import INITIALISATIONS, METHODS
from pyramid_explorer.core.weights import LAYOUTS
from pyramid_explorer.tools.learnable import (
    INIT_TITLES,
    METHOD_TITLES,
    LearnableResult,
    OwnKernel,
    UpsamplerView,
    channel_counts,
    init_setting,
)

KERNEL_FILTERS = "Kernels (*.npy *.safetensors);;All files (*)"
SIDE_WIDTH = 150
"""The controls' column: with three upsamplers' columns (each as wide as its longest line of numbers) it
leaves the tab within a 1000-pixel window beside the Levels dock (docks.TABS_KEEP)."""
PANEL_HEIGHT = 70
"""Least height of a column's image panels (caption and image): they take what the fixed rows leave."""
MEAN = -1
"""The channel spin boxes' value for the mean over that axis (shown as "mean")."""
_EVEN, _UNEVEN = QColor("#17692a"), QColor("#9c1c14")


_NBSP = "\u00a0"


def numbers_text(view: UpsamplerView) -> str:
    """PSNR/SSIM against G[level], the checkerboard ratio, the distances from the initialisations and the
    transposed-convolution equivalent, one short line each. A narrow column wraps a line, never inside a
    number with its name or unit (non-breaking spaces there)."""
    ratio = "inf" if math.isinf(view.board.ratio) else f"{view.board.ratio:.3f}"
    k = view.kernel.shape
    n = _NBSP
    lines = [f"PSNR{n}{view.psnr:.2f}{n}dB, SSIM{n}{view.ssim:.3f}", f"max/min phase sum{n}{ratio}",
             *(f"distance to {name}{n}{value:.3f}" for name, value in view.distances),
             f"as transposed: {k[0]}x{k[1]}, pad{n}{view.padding}"]
    return "\n".join(lines)


def weights_title(view: UpsamplerView) -> str:
    """'weights 4x4', or for sub-pixel convolution '4 sub-kernels 3x3'."""
    shape = view.upsampler.weights.shape
    if len(shape) == 3:
        return f"{shape[0]} sub-kernels {shape[1]}x{shape[2]}"
    return f"weights {shape[0]}x{shape[1]}"


class UpsamplerColumn(QWidget):
    """One upsampler's view: title, numbers and verdict, output image, kernel and phase sums, spectrum.

    The tab gives the titles, headings, numbers and verdicts of its columns one height each, so the
    panels below them line up."""

    def __init__(self, name: str, queue: RenderQueue, chooser: QComboBox | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self.title = QLabel(name)
        font = self.title.font()
        font.setBold(True)
        self.title.setFont(font)
        self.title.setWordWrap(True)
        self.title.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.numbers = QLabel()
        self.numbers.setWordWrap(True)  # four columns (with the user's kernel) wrap rather than widen the tab
        self.numbers.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.numbers.setToolTip("Max/min phase sum: 1 when every output phase receives the same total "
                                "weight. Distance: |K - K_init| / |K_init| of the transposed-convolution "
                                "kernels (for ICNR: of the sub-kernels from their mean); 0 is the "
                                "initialisation")
        self.verdict = QLabel()
        self.verdict.setWordWrap(True)
        self.verdict.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.image = ImagePanel(f"{name} output", histogram=False)
        self.weights = ImagePanel("weights", histogram=False, linked=False)
        self.weights.setToolTip("The layer's weights (a sub-pixel convolution's sub-kernels as a grid, one "
                               "per output phase): red above zero, blue below, white zero")
        self.phases = PhaseSumsTable()
        self.spectrum = ImagePanel("spectrum", histogram=False, linked=False,
                                   unsigned_map=sampled_colormap("inferno"))
        self.markers = NyquistMarkers(self.spectrum, self)
        for panel in self.panels:
            panel.setMinimumHeight(PANEL_HEIGHT)
        self.heading = QWidget()  # the initialisation's chooser; the user's kernel has none, but its height
        heading = QHBoxLayout(self.heading)
        heading.setContentsMargins(0, 0, 0, 0)
        if chooser is not None:  # it elides its items rather than widen the column
            chooser.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            chooser.setMinimumContentsLength(3)
            heading.addWidget(QLabel("Initialisation"))
            heading.addWidget(chooser, 1)
        phase_label = QLabel("phase sums")
        phase_label.setWordWrap(True)
        phase_row = QHBoxLayout()  # the label beside the table, not above it: a line less of height
        phase_row.addWidget(self.phases)
        phase_row.addWidget(phase_label, 1, Qt.AlignmentFlag.AlignTop)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(1, 0, 1, 0)
        layout.setSpacing(3)
        layout.addWidget(self.title)
        layout.addWidget(self.heading)
        layout.addWidget(self.numbers)
        layout.addWidget(self.verdict)  # with the numbers: in a low window the images shrink, not it
        layout.addWidget(self.image, 3)
        layout.addWidget(self.weights, 2)
        layout.addLayout(phase_row)  # under the kernel: side by side, the kernel would be too narrow
        layout.addWidget(self.spectrum, 2)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.image, self.weights, self.spectrum]

    def show_view(self, view: UpsamplerView, level: int) -> None:
        self.title.setText(view.title)
        self.numbers.setText(numbers_text(view))
        colour = _EVEN if math.isclose(view.board.ratio, 1, rel_tol=1e-4) else _UNEVEN
        self.verdict.setText(view.board.verdict[0].upper() + view.board.verdict[1:])
        self.verdict.setStyleSheet(f"color: {colour.name()}")
        h, w = view.image.shape[:2]
        self._queue.show(self.image, view.image, f"G[{level + 1}] upsampled: {w} x {h}")
        self.weights.show_layer(view.weights, weights_title(view))
        self.weights.view_box.autoRange(padding=0.02)
        self.phases.show_sums(view.board.phase_sums)
        self.markers.show(view.spectrum, view.peaks, "spectrum")
        self.spectrum.setToolTip(f"{view.spectrum_note}; circled: the Nyquist frequencies, with their "
                                 "strength over the median (log units)")

    def show_message(self, text: str) -> None:
        self.numbers.setText("")
        self.verdict.setText("")
        show_message_in(self._queue, self.panels, text, own_titles=True)


class LearnableTab(ToolTab):
    """Renders LearnableResult; emits each method's initialisation, the seed and the user's kernel."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: LearnableResult | None = None
        self._seed = 0
        self._own: OwnKernel | None = None
        self.init_boxes: dict[str, QComboBox] = {}
        self.columns: dict[str, UpsamplerColumn] = {}
        for method in METHODS:
            box = QComboBox()
            for init in INITIALISATIONS[method]:
                box.addItem(INIT_TITLES[init], init)
            box.setCurrentIndex(box.findData("random"))
            box.setToolTip(f"Initialisation of the {METHOD_TITLES[method].lower()}")
            box.currentIndexChanged.connect(self._on_init_chosen)  # a bound method: no cycle through Qt
            self.init_boxes[method] = box
            self.columns[method] = UpsamplerColumn(METHOD_TITLES[method], queue, box)
        self.own_column = UpsamplerColumn("Your kernel", queue)
        self.own_column.hide()
        columns = self._all_columns()
        self._rows = tuple(SameHeight([getattr(c, row) for c in columns], self)
                           for row in ("title", "heading", "numbers", "verdict"))

        self.seed_label = QLabel("Seed of the random and ICNR weights: 0")
        self.seed_label.setWordWrap(True)
        self.reseed_button = QPushButton("Reseed")
        self.reseed_button.setToolTip("Draw new random weights (the next seed)")
        self.reseed_button.clicked.connect(self._on_reseed)
        self.export_button = export_button(self)
        self.note = QLabel("Each upsampler enlarges G[i + 1] by 2; PSNR and SSIM are against G[i]. "
                           "Spectra: the Nyquist frequencies are circled, with their strength over the "
                           "median; a checkerboard makes them bright.")
        self.note.setWordWrap(True)

        self.open_button = QPushButton("Open kernel...")
        self.open_button.clicked.connect(self._on_open_clicked)
        self.own_method = QComboBox()
        for method in METHODS:
            self.own_method.addItem(METHOD_TITLES[method], method)
        self.tensor = QComboBox()
        self.tensor.setToolTip("The tensor of the file to read (a .npy file holds one)")
        self.layout_box = QComboBox()
        for name, axes in LAYOUTS.items():
            self.layout_box.addItem(name, name)
            self.layout_box.setItemData(self.layout_box.count() - 1, f"axes {axes}",
                                        Qt.ItemDataRole.ToolTipRole)
        self.layout_box.setToolTip("How the weight's axes are ordered: ConvTranspose2d (C_in, C_out, k, k), "
                                   "Conv2d (C_out, C_in, k, k); sub-pixel weights are always a Conv2d's")
        self.in_channel, self.out_channel = QSpinBox(), QSpinBox()
        for spin in (self.in_channel, self.out_channel):
            spin.setRange(MEAN, 65535)
            spin.setSpecialValueText("mean")
            spin.setValue(MEAN)
        self.own_note = QLabel("Load a kernel of your network: a .npy array or a tensor of a .safetensors "
                               "file.")
        self.own_note.setWordWrap(True)
        for box in (self.own_method, self.tensor, self.layout_box):
            box.currentIndexChanged.connect(self._on_own_edited)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(4)  # elided in the narrow side column
        for spin in (self.in_channel, self.out_channel):
            spin.valueChanged.connect(self._on_own_edited)
        self._own_editors = (self.own_method, self.tensor, self.layout_box, self.in_channel, self.out_channel)
        for editor in self._own_editors:
            editor.setEnabled(False)  # until a kernel is open
        own_group = QGroupBox("Your kernel")
        own_layout = QVBoxLayout(own_group)
        own_layout.addWidget(self.open_button)
        # each label above its editor (a QFormLayout's least width would be label + editor even so)
        for text, editor in (("Used as", self.own_method), ("Tensor", self.tensor),
                             ("Layout", self.layout_box), ("Input channel", self.in_channel),
                             ("Output channel", self.out_channel)):
            own_layout.addWidget(QLabel(text))
            own_layout.addWidget(editor)
        own_layout.addWidget(self.own_note)

        side = QVBoxLayout()
        side.setContentsMargins(4, 4, 4, 4)
        side.addWidget(self.note)
        side.addWidget(self.seed_label)
        side.addWidget(self.reseed_button)
        side.addWidget(self.export_button)  # above the kernel's controls: in a low window those scroll
        side.addWidget(own_group)
        side.addStretch(1)
        layout = side_column(self, side, SIDE_WIDTH, scroll=True)  # the panels stay fitted in a low window
        layout.setSpacing(4)
        for column in self._all_columns():
            layout.addWidget(column, 1)

    def _all_columns(self) -> list[UpsamplerColumn]:
        return [*self.columns.values(), self.own_column]

    @property
    def panels(self) -> list[ImagePanel]:
        return [panel for column in self._all_columns() for panel in column.panels]

    @property
    def result(self) -> LearnableResult | None:
        return self._result

    def open_kernel(self, path: str) -> None:
        """Use the kernel file at `path` (its first tensor, channel means) as the user's kernel."""
        self._own = OwnKernel(path, self.own_method.currentData(), None, self.layout_box.currentData())
        self._set_channels(MEAN, MEAN)
        for editor in self._own_editors:
            editor.setEnabled(True)
        self.setting_changed.emit("learnable_own", self._own)

    def show_result(self, result: LearnableResult, keep_limits: bool = False) -> None:
        self._result = result
        for view in result.views:
            self.columns[view.method].show_view(view, result.level)
        self.own_column.setVisible(result.own is not None)
        if result.own is not None:
            self.own_column.show_view(result.own, result.level)
        self._align_rows()
        if result.own_kernel is not None:
            self._show_tensors(result, result.own_kernel)
            self.own_note.setText(result.own_note)
        self.export_button.setEnabled(True)

    def show_message(self, text: str) -> None:
        self._result = None
        self.export_button.setEnabled(False)
        for column in self._all_columns():
            column.show_message(text)
        self._align_rows()

    def show_setting(self, name: str, value: object) -> None:
        for method, box in self.init_boxes.items():
            if name == init_setting(method):
                box.blockSignals(True)
                box.setCurrentIndex(box.findData(value))
                box.blockSignals(False)
        if name == "learnable_seed" and isinstance(value, int):
            self._seed = value
            self.seed_label.setText(f"Seed of the random and ICNR weights: {self._seed}")
        if name == "learnable_own" and (value is None or isinstance(value, OwnKernel)):
            self._own = value

    def _show_tensors(self, result: LearnableResult, own: OwnKernel) -> None:
        """The file's tensors in the chooser, and the channel ranges of the chosen one (of `own`, the
        result's kernel)."""
        self.tensor.blockSignals(True)
        self.tensor.clear()
        for name, shape in result.tensors:
            self.tensor.addItem(f"{name or 'the array'} {shape}", name)
        index = self.tensor.findData(own.name)
        self.tensor.setCurrentIndex(max(0, index))
        self.tensor.blockSignals(False)
        shape = dict(result.tensors).get(self.tensor.currentData(), ())
        counts = channel_counts(shape, own.method, own.layout)
        for spin, count in zip((self.in_channel, self.out_channel), counts or (0, 0), strict=True):
            spin.blockSignals(True)
            spin.setMaximum(max(MEAN, count - 1))
            spin.blockSignals(False)

    def _set_channels(self, in_channel: int, out_channel: int) -> None:
        for spin, value in ((self.in_channel, in_channel), (self.out_channel, out_channel)):
            spin.blockSignals(True)
            spin.setValue(value)
            spin.blockSignals(False)

    def _align_rows(self) -> None:
        for same in self._rows:
            same.update()

    def _on_init_chosen(self) -> None:
        method = next(m for m, box in self.init_boxes.items() if box is self.sender())
        self.setting_changed.emit(init_setting(method), self.init_boxes[method].currentData())

    def _on_reseed(self) -> None:
        self.setting_changed.emit("learnable_seed", self._seed + 1)

    def _on_open_clicked(self) -> None:
        path = ask_open_path(self, "Open a kernel", KERNEL_FILTERS)
        if path is not None:
            self.open_kernel(path)

    def _on_own_edited(self) -> None:
        if self._own is None:
            return
        channel = {spin: None if spin.value() == MEAN else spin.value()
                   for spin in (self.in_channel, self.out_channel)}
        self._own = OwnKernel(self._own.path, self.own_method.currentData(), self.tensor.currentData(),
                              self.layout_box.currentData(), channel[self.in_channel],
                              channel[self.out_channel])
        self.setting_changed.emit("learnable_own", self._own)
