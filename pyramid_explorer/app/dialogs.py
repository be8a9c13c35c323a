"""Small dialogs: Help > Keyboard shortcuts lists every action that has one; the file filters of the
open dialogs and `ask_open_path`, the one-file open dialog the tabs use."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QHeaderView,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.core.io import supported_suffixes

OPEN_FILTERS = f"Images ({' '.join('*' + suffix for suffix in supported_suffixes())});;All files (*)"
"""The open dialog's filter: every suffix the loader decodes (core.io.supported_suffixes)."""
"""The image types File > Open offers."""


def ask_open_path(parent: QWidget, title: str, filters: str = OPEN_FILTERS, folder: str = "") -> str | None:
    """The file the user picks in an open dialog, or None when it is cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, filters)
    return path or None


class ShortcutsDialog(QDialog):
    """A table of the window's actions and their shortcuts, built from the actions themselves."""

    def __init__(self, actions: Iterable[QAction], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        rows = [(a.text().replace("&", ""), a.shortcut().toString(QKeySequence.SequenceFormat.NativeText))
                for a in actions if not a.shortcut().isEmpty()]
        rows.append(("Pan / zoom any image (all views follow)", "Drag / mouse wheel"))
        self.table = QTableWidget(len(rows), 2)
        self.table.setHorizontalHeaderLabels(["Action", "Shortcut"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        for r, (text, keys) in enumerate(rows):
            self.table.setItem(r, 0, QTableWidgetItem(text))
            self.table.setItem(r, 1, QTableWidgetItem(keys))
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(buttons)
        self.resize(460, 420)
