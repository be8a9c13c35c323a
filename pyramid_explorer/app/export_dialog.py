"""File > Export (Ctrl+E): choose what to export; the core's export code writes it on the worker."""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.core.export import FORMATS, KINDS, ExportOptions, existing_targets, planned_files
from pyramid_explorer.core.formats import REGISTRY
from pyramid_explorer.core.pyramid import STORAGES
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.jobs import ExportRequest

_KIND_TEXT = {
    "gaussian": "Gaussian levels",
    "laplacian": "Laplacian bands",
    "residual": "Reconstruction residual",
    "upsampled": "Upsampled comparisons (per level and mode)",
    "mosaic": "Gaussian mosaic",
}


def ask_to_replace(parent: QWidget, folder: str, existing: list[Path]) -> bool:
    """Ask whether the files `existing` in `folder` may be replaced; True only for an explicit Yes."""
    shown = "\n".join(p.name for p in existing[:8]) + ("\n..." if len(existing) > 8 else "")
    answer = QMessageBox.question(parent, "Replace files?",
                                  f"{len(existing)} file(s) already exist in {folder}:\n{shown}\n\n"
                                  "Replace them?")
    return answer == QMessageBox.StandardButton.Yes


class FolderExportDialog(QDialog):
    """What every export dialog shares: a target folder with Browse..., a summary line, Export and
    Cancel, and asking before any file is replaced. Subclasses add their options and implement
    `_on_options_edited` (refresh the summary) and `_on_export_clicked`."""

    def __init__(self, title: str, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.folder = QLineEdit(folder)
        self._browse = QPushButton("Browse...")
        self._browse.clicked.connect(self._on_browse_clicked)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.export_button = self.buttons.addButton("Export", QDialogButtonBox.ButtonRole.AcceptRole)
        self.buttons.accepted.connect(self._on_export_clicked)
        self.buttons.rejected.connect(self.reject)

    def folder_row(self) -> QHBoxLayout:
        """The folder field and its Browse... button, for the subclass's form."""
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(self._browse)
        return row

    def target_folder(self) -> str:
        return os.path.abspath(self.folder.text().strip())

    def confirm_overwrite(self, existing: list[Path]) -> bool:
        """Ask before replacing files (never without asking)."""
        return ask_to_replace(self, self.folder.text(), existing)

    def may_write(self, folder: str, existing: list[Path]) -> bool:
        """True when nothing would be replaced or the user agreed; otherwise the summary says why not."""
        if existing and not self.confirm_overwrite(existing):
            self.summary.setText(f"Nothing exported: {len(existing)} file(s) already exist in {folder}.")
            return False
        return True

    def _on_browse_clicked(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Export into", self.folder.text())
        if folder:
            self.folder.setText(folder)

    def _on_options_edited(self) -> None:
        raise NotImplementedError

    def _on_export_clicked(self) -> None:
        raise NotImplementedError


class ExportDialog(FolderExportDialog):
    """Collects ExportOptions and a folder; asks before overwriting; emits `export_requested`.

    The dialog only decides what to export: the files are written by `core.export` in a worker job,
    the same code the command line runs.
    """

    export_requested = Signal(object)  # ExportRequest

    def __init__(self, image, source_path: str | None, levels: int, max_depth: int, folder: str,
                 parent: QWidget | None = None, *, current: int = 0) -> None:
        super().__init__("Export pyramid", folder, parent)
        self._image = image
        self._source_path = source_path
        self.kinds = {kind: QCheckBox(_KIND_TEXT[kind]) for kind in KINDS}
        for kind in ("gaussian", "laplacian"):
            self.kinds[kind].setChecked(True)
        self.modes = QListWidget()
        for mode in MODES:
            item = QListWidgetItem(mode)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked)
            self.modes.addItem(item)
        self.modes.setMaximumHeight(120)
        self.format = QComboBox()
        for fmt in FORMATS:
            self.format.addItem(fmt, fmt)
        self.format.setToolTip("\n".join(f"{f.name}: {f.description}" for f in REGISTRY)
                               + "\n(the manifest says which files are visualisations)")
        self.levels = QSpinBox()
        self.levels.setRange(1, max_depth)
        self.levels.setValue(levels)
        self.levels.setToolTip("The pyramid's number of levels: levels 0 .. N-1 (its last Laplacian band "
                               "is its coarsest Gaussian level)")
        self.which = QComboBox()
        self.which.addItem("All levels", "all")
        self.which.addItem(f"Current level ({current})", "current")
        self.which.addItem("Levels from .. to", "range")
        self.which.setToolTip("Which of the pyramid's levels are written; the manifest lists them")
        self._current = current
        self.first, self.last = QSpinBox(), QSpinBox()
        for spin, value in ((self.first, 0), (self.last, levels - 1)):
            spin.setRange(0, max_depth - 1)
            spin.setValue(value)
        self.storage = QComboBox()
        for storage in STORAGES:
            self.storage.addItem(storage, storage)

        kinds_box = QGroupBox("What")
        kinds_grid = QGridLayout(kinds_box)
        for n, box in enumerate(self.kinds.values()):
            kinds_grid.addWidget(box, n, 0)
        kinds_grid.addWidget(QLabel("Modes (upsampled):"), 0, 1)
        kinds_grid.addWidget(self.modes, 1, 1, len(KINDS) - 1, 1)
        form = QFormLayout()
        form.addRow("Folder", self.folder_row())
        form.addRow("Format", self.format)
        form.addRow("Levels", self.levels)
        which_row = QHBoxLayout()
        which_row.addWidget(self.which, 1)
        which_row.addWidget(self.first)
        which_row.addWidget(QLabel("to"))
        which_row.addWidget(self.last)
        form.addRow("Export", which_row)
        form.addRow("Laplacian storage", self.storage)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(kinds_box)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)

        for box in self.kinds.values():
            box.toggled.connect(self._on_options_edited)
        self.modes.itemChanged.connect(self._on_options_edited)
        self.format.currentIndexChanged.connect(self._on_options_edited)
        self.levels.valueChanged.connect(self._on_options_edited)
        self.which.currentIndexChanged.connect(self._on_options_edited)
        self.first.valueChanged.connect(self._on_options_edited)
        self.last.valueChanged.connect(self._on_options_edited)
        self.storage.currentIndexChanged.connect(self._on_options_edited)
        self.folder.textChanged.connect(self._on_options_edited)
        self._on_options_edited()

    def options(self, force: bool = False) -> ExportOptions:
        """The options as chosen; ValueError (from the core) when they do not go together."""
        kinds = tuple(k for k, box in self.kinds.items() if box.isChecked())
        modes = tuple(self.modes.item(r).text() for r in range(self.modes.count())
                      if self.modes.item(r).checkState() == Qt.CheckState.Checked)
        if "upsampled" not in kinds:
            modes = MODES  # unused; the core still wants a valid list
        return ExportOptions(levels=self.levels.value(), selected_levels=self.selected_levels(), kinds=kinds,
                             fmt=self.format.currentData(), modes=modes, storage=self.storage.currentData(),
                             force=force)

    def selected_levels(self) -> tuple[int, ...] | None:
        """The levels chosen under Export (None: all); ValueError for an empty range."""
        which = self.which.currentData()
        if which == "current":
            return (self._current,)
        if which == "range":
            if self.first.value() > self.last.value():
                raise ValueError(f"the range {self.first.value()} to {self.last.value()} holds no level")
            return tuple(range(self.first.value(), self.last.value() + 1))
        return None

    def _on_options_edited(self) -> None:
        ranged = self.which.currentData() == "range"
        self.first.setEnabled(ranged)
        self.last.setEnabled(ranged)
        try:
            files = planned_files(self._image.shape, self.options())
        except ValueError as exc:
            self.summary.setText(str(exc))
            self.export_button.setEnabled(False)
            return
        self.summary.setText(f"{len(files)} files (manifest.json included) into {self.folder.text()}")
        self.export_button.setEnabled(bool(self.folder.text().strip()))

    def _on_export_clicked(self) -> None:
        folder = self.target_folder()
        options = self.options()
        existing = existing_targets(folder, self._image.shape, options)
        if not self.may_write(folder, existing):
            return
        self.export_requested.emit(ExportRequest(self._image, folder, self.options(force=bool(existing)),
                                                 self._source_path))
        self.accept()
