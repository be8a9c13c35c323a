"""Export of what an analysis tool shows: a folder and a format; the core's `export_arrays` writes it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.export_dialog import FolderExportDialog
from pyramid_explorer.core.export import ARRAY_FORMATS, NamedArray, array_files, existing_files
from pyramid_explorer.core.formats import REGISTRY
from pyramid_explorer.jobs import ToolExportRequest

ArrayMaker = Callable[[str], tuple[tuple[NamedArray, ...], dict[str, Any]]]
"""fmt -> (the tool's arrays for that format, the manifest's parameters)."""


class ToolExportDialog(FolderExportDialog):
    """Collects a folder and a format, asks before replacing files, emits `export_requested`.

    The arrays were computed on the worker already; the files are written by the core in a worker job.
    """

    export_requested = Signal(object)  # ToolExportRequest

    def __init__(self, tool: str, make_arrays: ArrayMaker, image: np.ndarray, source_path: str | None,
                 folder: str, parent: QWidget | None = None) -> None:
        super().__init__(f"Export {tool}", folder, parent)
        self._make_arrays = make_arrays
        self._image = image
        self._source_path = source_path
        self.format = QComboBox()
        for fmt in ARRAY_FORMATS:
            self.format.addItem(fmt, fmt)
        self.format.setToolTip("\n".join(f"{f.name}: {f.description}" for f in REGISTRY if f.arrays)
                               + "\n(the manifest says which files are visualisations)")
        form = QFormLayout()
        form.addRow("Folder", self.folder_row())
        form.addRow("Format", self.format)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)
        self.format.currentIndexChanged.connect(self._on_options_edited)
        self.folder.textChanged.connect(self._on_options_edited)
        self._on_options_edited()

    def _on_options_edited(self) -> None:
        arrays, _ = self._make_arrays(self.format.currentData())
        names = array_files(arrays, self.format.currentData())
        self.summary.setText(f"{len(names)} files into {self.folder.text()}: {', '.join(names)}")
        self.export_button.setEnabled(bool(self.folder.text().strip()))

    def _on_export_clicked(self) -> None:
        folder = self.target_folder()
        fmt = self.format.currentData()
        arrays, parameters = self._make_arrays(fmt)
        existing = existing_files(folder, array_files(arrays, fmt))
        if not self.may_write(folder, existing):
            return
        self.export_requested.emit(ToolExportRequest(self._image, folder, arrays, fmt, parameters,
                                                     self._source_path, force=bool(existing)))
        self.accept()
