"""File > Export and the tools' own exports: the dialogs, their default folders, and the end report."""

from __future__ import annotations

import os
from functools import partial
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt

from pyramid_explorer.app.export_dialog import ExportDialog
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.core.export import ExportResult
from pyramid_explorer.core.pyramid import max_levels
from pyramid_explorer.jobs import LoadedImage
from pyramid_explorer.tools.registry import tool_arrays

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow


class Exports(QObject):
    """Opens the export dialogs of `window` and reports how each export ended in its status bar."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def on_export_requested(self) -> None:
        """File > Export: the pyramid of the image open, through the core's export."""
        w = self._window
        loaded, pyramid = w.controller.loaded, w.controller.pyramid
        if w.controller.stored is not None:
            w.show_status("A stored pyramid is exported from the command line, in bounded memory: "
                          "pyramid-explorer export PATH --format ome-zarr")
            return
        if loaded is None or pyramid is None:
            w.show_status("Nothing to export yet")
            return
        dialog = ExportDialog(loaded.image, loaded.path, pyramid.levels, max_levels(loaded.image.shape),
                              self.default_folder(loaded), w, current=w.controller.level)
        dialog.export_requested.connect(w.controller.export)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def on_tool_export_requested(self) -> None:
        """Export what the tool whose tab asked shows, through the core's export_arrays."""
        w = self._window
        tab, loaded = self.sender(), w.controller.loaded
        result = getattr(tab, "result", None)
        if loaded is None or result is None:
            w.show_status("Nothing to export yet")
            return
        tool = next(name for name, widget in w.tool_tabs.items() if widget is tab)
        dialog = ToolExportDialog(tool, partial(tool_arrays, tool, result), loaded.image, loaded.path,
                                  self.default_folder(loaded, tool), w)
        dialog.export_requested.connect(w.controller.export_tool)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def default_folder(self, loaded: LoadedImage, what: str = "pyramid") -> str:
        stem = os.path.splitext(loaded.name)[0] if loaded.path is not None else "sample"
        base = self._window.settings.last_export_folder or (os.path.dirname(loaded.path) if loaded.path else
                                                            os.path.expanduser("~"))
        return os.path.join(base, f"{stem}_{what}".replace(" ", "_"))

    def on_export_finished(self, result: ExportResult) -> None:
        state = "cancelled after" if result.cancelled else "wrote"
        self._window.show_status(f"Export {state} {len(result.files)} files to {result.out_dir}")
        if self._window.persist:
            self._window.settings.last_export_folder = str(result.out_dir.parent)
