"""Small dialogs: Help > Keyboard shortcuts lists every action that has one; the file filters of the
open dialogs and `ask_open_path`, the one-file open dialog the tabs use."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

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


@cache
def open_filters() -> str:
    """The image types File > Open offers: every suffix the loader decodes (core.io.supported_suffixes).
    Made when first asked for: listing them loads every Pillow plugin (~0.1 s, at launch otherwise)."""
    return f"Images ({' '.join('*' + suffix for suffix in supported_suffixes())});;All files (*)"


def ask_open_path(parent: QWidget, title: str, filters: str | None = None, folder: str = "") -> str | None:
    """The file the user picks in an open dialog (`filters` None: the images), or None when cancelled."""
    path, _ = QFileDialog.getOpenFileName(parent, title, folder, filters or open_filters())
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
