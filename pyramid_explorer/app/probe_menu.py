"""File > Samples > Probes: each synthetic probe at a choice of sizes (odd ones included) or any size."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QFormLayout, QMenu, QSpinBox, QWidget

from pyramid_explorer.samples import MAX_PROBE_SIDE, PROBE_SIZES, PROBES

OTHER_SIZE = "Other size..."


class ProbeSizeDialog(QDialog):
    """Width and height of a probe to generate."""

    def __init__(self, probe: str, size: tuple[int, int], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{probe}: size")
        self.width_box, self.height_box = QSpinBox(), QSpinBox()
        for box, value in ((self.width_box, size[0]), (self.height_box, size[1])):
            box.setRange(1, MAX_PROBE_SIDE)
            box.setValue(value)
        choice = QDialogButtonBox.StandardButton
        buttons = QDialogButtonBox(choice.Ok | choice.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Width", self.width_box)
        form.addRow("Height", self.height_box)
        form.addRow(buttons)

    def chosen_size(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()


class ProbeMenu(QMenu):
    """One submenu per probe with the sizes of `PROBE_SIZES` and "Other size..."; emits the choice."""

    probe_requested = Signal(str, int, int)  # probe name, width, height

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("&Probes (generated)", parent)
        self._last_size = PROBE_SIZES[0]
        for name in PROBES:
            sub = self.addMenu(name)
            for w, h in PROBE_SIZES:
                odd = " (odd)" if w % 2 or h % 2 else ""
                sub.addAction(f"{w} x {h}{odd}").setData((name, w, h))
            sub.addSeparator()
            sub.addAction(OTHER_SIZE).setData((name, None, None))
        self.triggered.connect(self._on_triggered)

    def ask_size(self, probe: str) -> tuple[int, int] | None:
        """The size the user enters for `probe`, None when cancelled."""
        dialog = ProbeSizeDialog(probe, self._last_size, self.parentWidget())
        return dialog.chosen_size() if dialog.exec() == QDialog.DialogCode.Accepted else None

    def _on_triggered(self, action: QAction) -> None:
        name, w, h = action.data()
        if w is None:
            size = self.ask_size(name)
            if size is None:
                return
            w, h = size
        self._last_size = (w, h)
        self.probe_requested.emit(name, w, h)
