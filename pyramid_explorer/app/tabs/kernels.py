"""The Kernels tab: every upsampler as a transposed convolution, where its checkerboard comes from.

For the selected upsampler: its kernel as a heat map, its output for a constant, an impulse and a
ramp, the polyphase sums (unequal sums are the checkerboard), and the spectrum of the upsampled
level with the Nyquist frequencies marked.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.caption import even_captions
from pyramid_explorer.app.image_panel import ImagePanel, sampled_colormap
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tabs.shared import (
    DeconvControls,
    NyquistMarkers,
    PhaseSumsTable,
    export_button,
    side_column,
)
from pyramid_explorer.app.wrapped_label import WrappedLabel
from pyramid_explorer.display import mode_label
from pyramid_explorer.tools.kernels import (
    CUSTOM,
    KERNEL_ENTRIES,
    PROBE_INPUTS,
    PROBE_SIDE,
    KernelResult,
    KernelSummary,
)

SPECTRUM_AXES = ("Spectrum axes: horizontal (x) and vertical (y) frequency in cycles per output pixel, "
                 "0 at the centre and the Nyquist frequency 0.5 at the edges; colour: log(1 + |FFT|).")

NOTES = {
    "pyrup": "pyrUp is itself a 5x5 stride-2 transposed convolution: kernel 4 w w^T, w = [1 4 6 4 1] / 16, "
             "padding 2. 5 is not a multiple of 2, yet its phases sum evenly (6 + 1 + 1 = 4 + 4): no "
             "checkerboard.",
    "zero_insert": "Zero insertion is pyrUp's first step alone: a 1x1 kernel at stride 2 feeds one phase in "
                   "four, the strongest checkerboard there is.",
    "unpool": "Unpooling is not a convolution: each value goes back where its window's maximum was. "
              "A constant (ties: the first position wins) fills one phase in four, like zero insertion.",
    CUSTOM: "The free transposed convolution of the Compare tab (taps scaled to sum to stride^2).",
}
_EVEN, _UNEVEN = QColor("#17692a"), QColor("#9c1c14")
KERNEL_COLUMN, OVERLAP_COLUMN, PHASES_COLUMN = 1, 2, 3


def phase_text(sums: np.ndarray) -> str:
    """The phase sums in one cell: every value for 2x2, the range for larger strides."""
    if sums.size <= 4:
        return ", ".join(f"{v:.3g}" for v in sums.ravel())
    return f"{sums.min():.3g} .. {sums.max():.3g}"


def kernel_text(summary: KernelSummary) -> str:
    if summary.kernel is None:
        return "data-dependent"
    h, w = summary.kernel.shape
    stride = "" if summary.stride == 2 else f", stride {summary.stride}"
    return f"{h}x{w}{stride}, pad {summary.padding}"


class KernelsTab(ToolTab):
    """Renders KernelResult results; emits the selected entry and the transposed-conv settings."""


    def __init__(self, queue: RenderQueue | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._result: KernelResult | None = None
        self.table = QTableWidget(len(KERNEL_ENTRIES), 4)
        self.table.setHorizontalHeaderLabels(["Upsampler", "Kernel", "Overlap", "Phase sums"])
        self.table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        for row, entry in enumerate(KERNEL_ENTRIES):
            item = QTableWidgetItem(mode_label(entry))
            item.setToolTip(f"mode: {entry}")
            self.table.setItem(row, 0, item)
        self.table.setCurrentCell(KERNEL_ENTRIES.index("pyrup"), 0)
        self.table.currentCellChanged.connect(self._on_current_cell_changed)
        self.controls = DeconvControls(maps=False)
        self.controls.settings_changed.connect(self._on_deconv_edited)
        self.export_button = export_button(self)

        self.verdict = WrappedLabel()
        self.verdict.setStyleSheet("font-size: 12pt; font-weight: bold")
        self.note = WrappedLabel()
        self.kernel_panel = ImagePanel("kernel", histogram=False, linked=False)
        self.kernel_panel.setToolTip("The kernel's taps: red above zero, blue below, white zero")
        self.phase_table = PhaseSumsTable()
        self.probe_panels = {name: ImagePanel(f"{name} probe", histogram=False, linked=False)
                             for name in PROBE_INPUTS}
        for name, panel in self.probe_panels.items():
            panel.caption.natural_height_changed.connect(self._on_probe_caption_changed)
            panel.setToolTip(f"The upsampler's output for a {PROBE_SIDE} x {PROBE_SIDE} {name} input, "
                             "drawn from min(0, lowest) black to max(1, highest) white")
        self.spectrum_panel = ImagePanel("spectrum", histogram=False, linked=False,
                                         unsigned_map=sampled_colormap("inferno"))
        self.peak_markers = NyquistMarkers(self.spectrum_panel, self)
        self.spectrum_axes = WrappedLabel(SPECTRUM_AXES)
        self.kernel_axes = WrappedLabel("Kernel: taps by offset in output pixels (x right, y down), red "
                                        "above zero, blue below. Probes: the output for each input, 0 black "
                                        "to 1 white.")

        side = QVBoxLayout()
        side.addWidget(self.table, 1)
        side.addWidget(self.controls)
        side.addWidget(self.export_button)
        phase_box = QVBoxLayout()
        phase_box.addWidget(QLabel("Phase sums"))
        phase_box.addWidget(self.phase_table)
        phase_box.addStretch(1)
        # the kernel and its phase sums above the probes: five in one row would not fit beside the table
        # in the room the tabs keep (docks.TABS_KEEP)
        kernel_row = QHBoxLayout()
        kernel_row.addWidget(self.kernel_panel, 1)
        kernel_row.addLayout(phase_box)
        grid = QGridLayout()
        grid.addLayout(kernel_row, 0, 0, 1, 3)
        for column, panel in enumerate(self.probe_panels.values()):
            grid.addWidget(panel, 1, column)
        grid.addWidget(self.kernel_axes, 2, 0, 1, 3)
        grid.addWidget(self.spectrum_panel, 3, 0, 1, 3)
        grid.addWidget(self.spectrum_axes, 4, 0, 1, 3)
        grid.setRowStretch(0, 1)
        grid.setRowStretch(1, 1)
        grid.setRowStretch(3, 2)
        detail = QVBoxLayout()
        detail.addWidget(self.verdict)
        detail.addWidget(self.note)
        detail.addLayout(grid, 1)
        side_column(self, side, 396).addLayout(detail, 1)  # the table's columns whole (~377 px)

    def _on_probe_caption_changed(self) -> None:
        """The probes side by side: one caption height, so their images line up."""
        even_captions([panel.caption for panel in self.probe_panels.values()])

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.kernel_panel, *self.probe_panels.values(), self.spectrum_panel]

    @property
    def result(self) -> KernelResult | None:
        return self._result

    @property
    def entry(self) -> str:
        return KERNEL_ENTRIES[max(0, self.table.currentRow())]

    def set_entry(self, entry: str) -> None:
        """Select `entry`'s row without announcing it."""
        self.table.blockSignals(True)
        self.table.setCurrentCell(KERNEL_ENTRIES.index(entry), 0)
        self.table.blockSignals(False)

    def peaks(self) -> list[tuple[float, float]]:
        """(x, y) view positions of the Nyquist markers drawn now: (column, row) of the spectrum."""
        return self.peak_markers.positions()

    def show_result(self, result: KernelResult, keep_limits: bool = False) -> None:
        self._result = result
        self.set_entry(result.entry)
        for row, summary in enumerate(result.summaries):
            colour = _EVEN if summary.even else _UNEVEN
            cells = {KERNEL_COLUMN: kernel_text(summary),
                     OVERLAP_COLUMN: "even" if summary.even else "uneven",
                     PHASES_COLUMN: phase_text(summary.phase_sums)}
            for column, text in cells.items():
                item = QTableWidgetItem(text)
                item.setToolTip(summary.verdict)
                if column == OVERLAP_COLUMN:
                    item.setForeground(colour)
                self.table.setItem(row, column, item)
        selected = result.selected
        self.verdict.setText(f"{mode_label(result.entry)}: {selected.verdict}")
        self.verdict.setStyleSheet(f"font-size: 12pt; font-weight: bold; color: "
                                   f"{(_EVEN if selected.even else _UNEVEN).name()}")
        self.note.setText(NOTES.get(result.entry, ""))
        self.phase_table.show_sums(selected.phase_sums)
        if result.kernel is None:
            self.kernel_panel.show_message("Not a convolution: no kernel", "kernel")
        else:
            k = result.kernel.shape
            self._draw(self.kernel_panel, result.kernel, f"Kernel {k[0]}x{k[1]}")
        for name, layer in result.probes:
            self._draw(self.probe_panels[name], layer, f"{name}: {layer.shape[1]} x {layer.shape[0]}")
        self._show_spectrum(result)
        self.export_button.setEnabled(True)

    def _draw(self, panel: ImagePanel, layer, title: str, padding: float = 0.02) -> None:
        panel.show_layer(layer, title)
        panel.view_box.autoRange(padding=padding)

    def phase_values(self) -> np.ndarray:
        """The phase sums shown, as numbers read back from the table."""
        return self.phase_table.values()

    def _show_spectrum(self, result: KernelResult) -> None:
        if result.spectrum is None:
            self.peak_markers.show(None, (), result.spectrum_note)
            return
        strengths = ", ".join(f"{v:+.1f}" for *_, v in result.peaks) or "none (odd sides)"
        self.peak_markers.show(result.spectrum, result.peaks,
                               f"{result.spectrum_note}; Nyquist (circled) over the median: {strengths}")

    def _on_current_cell_changed(self, row: int, *_args: int) -> None:
        if 0 <= row < len(KERNEL_ENTRIES):
            self.setting_changed.emit("kernel_entry", KERNEL_ENTRIES[row])

    def show_setting(self, name: str, value: object) -> None:
        if name == "deconv":
            self.controls.set_settings(value)

    def _on_deconv_edited(self, settings: object) -> None:
        self.setting_changed.emit("deconv", settings)
