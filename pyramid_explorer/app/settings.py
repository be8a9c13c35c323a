"""What the window remembers between runs, as typed accessors over a QSettings store.

The store is passed in, so tests (and the screenshot mode) can use a file of their own and never
touch the user's settings.
"""

from __future__ import annotations

import os

from PySide6.QtCore import QByteArray, QSettings

MAX_RECENT = 10


class AppSettings:
    def __init__(self, store: QSettings) -> None:
        self.store = store

    def recent_files(self) -> list[str]:
        value = self.store.value("recentFiles", [])
        if isinstance(value, str):  # some backends return a one-element list as a plain string
            value = [value]
        return [str(v) for v in value if v] if isinstance(value, list | tuple) else []

    def add_recent(self, path: str) -> None:
        path = os.path.abspath(path)
        files = [path, *(p for p in self.recent_files() if p != path)][:MAX_RECENT]
        self.store.setValue("recentFiles", files)
        self.store.setValue("lastFolder", os.path.dirname(path))

    def clear_recent(self) -> None:
        self.store.setValue("recentFiles", [])

    @property
    def last_folder(self) -> str:
        return str(self.store.value("lastFolder", "") or "")

    @property
    def last_export_folder(self) -> str:
        return str(self.store.value("lastExportFolder", "") or "")

    @last_export_folder.setter
    def last_export_folder(self, folder: str) -> None:
        self.store.setValue("lastExportFolder", folder)

    @property
    def last_view(self) -> str:
        return str(self.store.value("lastView", "") or "")

    @last_view.setter
    def last_view(self, view: str) -> None:
        self.store.setValue("lastView", view)

    def window_geometry(self) -> QByteArray | None:
        value = self.store.value("geometry")
        return value if isinstance(value, QByteArray) else None

    def window_state(self) -> QByteArray | None:
        value = self.store.value("windowState")
        return value if isinstance(value, QByteArray) else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("geometry", geometry)
        self.store.setValue("windowState", state)

    def sync(self) -> None:
        self.store.sync()
