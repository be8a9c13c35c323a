"""The Integrity tab: how exactly the Laplacian pyramid gives the image back, for each band storage,
next to the Gaussian-only round trip pyrUp(pyrDown(x)), which never does."""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QButtonGroup,
    QHBoxLayout,
    QLabel,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tabs.shared import export_button
from pyramid_explorer.app.wrapped_label import SameHeight, WrappedLabel
from pyramid_explorer.core.pyramid import STORAGES, storage_allowed
from pyramid_explorer.jobs import LoadedImage
from pyramid_explorer.tools.integrity import ErrorReport, IntegrityResult

_STORAGE_TIPS = {
    "float32": "Bands kept as float32 differences: exact for every input type",
    "int16": "Bands as int16 differences of uint8 levels (OpenCV's lappyr sample): exact, half the memory",
    "uint8_saturate": "The classic mistake: cv2.subtract on uint8 levels clips every negative detail to 0",
}


_STALE = "[out of date]"
_STALE_STYLE = "color: #808080; font-style: italic;"


def numbers_text(report: ErrorReport) -> str:
    """'max |error| 3, RMSE 0.0123, PSNR 86.3 dB', with 'PSNR inf (exact)' when nothing differs."""
    psnr = "PSNR inf (exact)" if math.isinf(report.psnr) else f"PSNR {report.psnr:.2f} dB"
    return f"max |error| {report.max_abs_error:.4g}, RMSE {report.rmse:.4g}, {psnr}"


class ErrorHistogram(pg.PlotWidget):
    """Bars of how many values have each error; log scale, so a few clipped values still show."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(False)
        self.setMenuEnabled(False)
        self.setMouseEnabled(False, False)
        self.setLabel("bottom", "error (source - reconstruction)")
        self.setLabel("left", "log10(1 + values)")
        self.setMaximumHeight(170)
        self._bars: pg.BarGraphItem | None = None
        self._data: tuple[np.ndarray, np.ndarray] = (np.zeros(0), np.zeros(0))
        self.stale = False

    def set_histogram(self, centres: np.ndarray, counts: np.ndarray) -> None:
        self.clear_bars()
        self.set_stale(False)
        self._data = (centres, counts)
        width = float(centres[1] - centres[0]) if len(centres) > 1 else 1.0
        self._bars = pg.BarGraphItem(x=centres, height=np.log10(1.0 + counts), width=width,
                                     brush="#4a7ab8", pen=None)
        self.addItem(self._bars)
        # symmetric about zero and never narrower than +/-5 bins: an exact result is one thin bar at 0
        reach = max(float(np.abs(centres).max()) + width, 5 * width)
        self.setXRange(-reach, reach, padding=0)
        self.setYRange(0, max(1.0, float(np.log10(1.0 + counts.max()))), padding=0.05)

    def histogram(self) -> tuple[np.ndarray, np.ndarray]:
        """(bin centres, counts) drawn now."""
        return self._data

    def clear_bars(self) -> None:
        if self._bars is not None:
            self.removeItem(self._bars)
            self._bars = None
        self._data = (np.zeros(0), np.zeros(0))

    def set_stale(self, stale: bool) -> None:
        """Grey bars under an "out of date" title while they answer an earlier state."""
        self.stale = stale
        if self._bars is not None:
            self._bars.setOpts(brush="#a0a0a0" if stale else "#4a7ab8")
        self.setTitle("out of date" if stale else None)


class _ErrorColumn(QWidget):
    """One reconstruction: its heading, numbers and sentence (`texts`), residual heat map and histogram."""

    def __init__(self, heading: str, panel_name: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.heading = QLabel(heading)
        self.heading.setStyleSheet("font-weight: bold")
        self.numbers = QLabel()
        self.numbers.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.sentence = QLabel()
        self.panel = ImagePanel(panel_name, histogram=False)
        self.histogram = ErrorHistogram()
        self.texts = QWidget()  # the tab gives both columns' texts one height: their panels line up
        texts = QVBoxLayout(self.texts)
        texts.setContentsMargins(0, 0, 0, 0)
        for w in (self.heading, self.numbers, self.sentence):
            w.setWordWrap(True)  # a long line wraps rather than widen its column beyond the other's
            w.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            texts.addWidget(w)
        texts.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addWidget(self.texts)
        layout.addWidget(self.panel, 1)
        layout.addWidget(self.histogram)

    def mark_stale(self, *, clear: bool) -> None:
        """The numbers and the histogram answer an earlier state: marked, or with `clear` (another
        image's) removed."""
        if clear:
            for label in (self.numbers, self.sentence):
                label.setText("")
            self.histogram.clear_bars()
            self.histogram.set_stale(False)
            return
        if self.numbers.text() and not self.numbers.text().startswith(_STALE):
            self.numbers.setText(f"{_STALE} {self.numbers.text()}")
        self.numbers.setStyleSheet(_STALE_STYLE)
        self.sentence.setStyleSheet(_STALE_STYLE)
        self.histogram.set_stale(True)

    def show_report(self, queue: RenderQueue, report: ErrorReport, title: str) -> None:
        self.numbers.setStyleSheet("")
        self.numbers.setText(numbers_text(report))
        self.sentence.setText(report.sentence[0].upper() + report.sentence[1:])
        exact = report.differing_pixels == 0
        self.sentence.setStyleSheet(f"color: {'#17692a' if exact else '#9c1c14'}")
        queue.show(self.panel, report.layer, title)
        self.panel.set_note("residual 0 everywhere" if exact else
                            f"{report.differing_pixels} pixels differ (colour: channel of largest |error|)")
        self.histogram.set_histogram(*report.histogram)


class IntegrityTab(ToolTab):
    """Renders IntegrityResult results; `storage_changed` and `export_requested` carry the user's choices."""


    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: IntegrityResult | None = None
        self.storage_buttons: dict[str, QRadioButton] = {}
        self._group = QButtonGroup(self)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Laplacian band storage:"))
        for storage in STORAGES:
            button = QRadioButton(storage)
            button.setToolTip(_STORAGE_TIPS[storage])
            self._group.addButton(button)
            self.storage_buttons[storage] = button
            bar.addWidget(button)
        self.storage_buttons["float32"].setChecked(True)
        self._group.buttonToggled.connect(self._on_storage_toggled)
        bar.addStretch(1)
        self.export_button = export_button(self, "Write both residuals (and their numbers in the manifest)")
        bar.addWidget(self.export_button)

        self.verdict = WrappedLabel()
        self.verdict.setStyleSheet("font-size: 13pt")
        self.laplacian = _ErrorColumn("Laplacian pyramid: collapse(bands) vs source", "residual")
        self.gaussian = _ErrorColumn("Gaussian only: pyrUp(pyrDown(x)) vs x", "pyrUp(pyrDown) error")
        columns = (self.laplacian, self.gaussian)
        self._texts = SameHeight([c.texts for c in columns], self)
        self.grid = PanelGrid([c.panel for c in columns], cells=list(columns))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.verdict)
        layout.addWidget(self.grid, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return [self.laplacian.panel, self.gaussian.panel]

    @property
    def result(self) -> IntegrityResult | None:
        return self._result

    @property
    def storage(self) -> str:
        return next(s for s, b in self.storage_buttons.items() if b.isChecked())

    def set_storage(self, storage: str) -> None:
        """Check `storage` without announcing it (the controller's state is the source)."""
        self._group.blockSignals(True)
        self.storage_buttons[storage].setChecked(True)
        self._group.blockSignals(False)

    def set_integer_storages_allowed(self, allowed: bool, reason: str = "") -> None:
        """int16 and uint8_saturate bands exist for uint8 images only."""
        for storage in ("int16", "uint8_saturate"):
            button = self.storage_buttons[storage]
            button.setEnabled(allowed)
            button.setToolTip(_STORAGE_TIPS[storage] if allowed else reason)

    def mark_stale(self, text: str, *, clear: bool = False) -> None:
        super().mark_stale(text, clear=clear)
        for column in (self.laplacian, self.gaussian):
            column.mark_stale(clear=clear)
        self._texts.update()
        if clear:
            self.verdict.setText("")
        elif self.verdict.text() and not self.verdict.text().startswith(_STALE):
            self.verdict.setText(f"{_STALE} {self.verdict.text()}")
        self.verdict.setStyleSheet(f"font-size: 13pt; {_STALE_STYLE}")

    @property
    def is_stale(self) -> bool:
        """True while the numbers, verdict or histograms shown answer an earlier state."""
        return self.laplacian.histogram.stale or self.verdict.text().startswith(_STALE)

    def show_result(self, result: IntegrityResult, keep_limits: bool = False) -> None:
        self._result = result
        self.verdict.setStyleSheet("font-size: 13pt")
        self.set_storage(result.storage)
        lap = result.laplacian
        self.verdict.setText(f"{result.storage} bands, {result.levels} levels: {lap.sentence}. "
                             f"The Gaussian level alone: {result.gaussian.sentence}.")
        self.laplacian.show_report(self._queue, lap, f"Source - collapse of {result.storage} bands")
        self.gaussian.show_report(self._queue, result.gaussian, "Source - pyrUp(pyrDown(source))")
        self._texts.update()
        self.export_button.setEnabled(True)

    def _on_storage_toggled(self, button: QRadioButton, checked: bool) -> None:
        if checked:
            self.setting_changed.emit("storage", button.text())

    def on_image_loaded(self, loaded: LoadedImage) -> None:
        dtype = loaded.image.dtype
        why = f"int16 and uint8_saturate bands need a uint8 image, this one is {dtype}"
        self.set_integer_storages_allowed(storage_allowed("int16", dtype), why)
