"""A panel's own export, from its context menu: the layer's data exactly (tiff, npy) or the picture as
drawn (png: the display limits and colour map in use), through the tools' export dialog and the core's
`export_arrays`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction

from pyramid_explorer.ab_compare import file_stem
from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.display import quantize

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow

PICTURE_FORMAT = "png"  # the format that gets the picture as drawn; the others get the data


def drawn_picture(panel: ImagePanel) -> np.ndarray:
    """The panel's layer as it is drawn, at the layer's own resolution: uint8 codes between the display
    limits in use, through the colour map for one-channel layers (colour layers are drawn as they are)."""
    layer = panel.layer
    if layer is None:
        raise ValueError(f"{panel.name}: nothing is drawn")
    codes = quantize(layer.display, panel.limits())
    if codes.ndim == 3:
        return codes
    return np.ascontiguousarray(panel.lookup_table()[codes, :3])


def panel_arrays(panel: ImagePanel, fmt: str) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """What exporting `panel` in `fmt` writes (its data, or in png its picture) and the manifest's
    parameters."""
    layer = panel.layer
    if layer is None:
        raise ValueError(f"{panel.name}: nothing to export yet")
    low, high = panel.limits()
    stem, title = file_stem(panel.name), panel.title()
    details = {"panel": panel.name, "title": title, "scale": layer.scale, "origin": list(layer.origin)}
    if fmt == PICTURE_FORMAT:
        how = {"mapping": "as drawn: code = round(255 * (value - low) / (high - low)), clipped to 0..255, "
                          + ("through the panel's colour map" if layer.display.ndim == 2 else
                             "per channel (alpha by its dtype's range)")
                          + ("; the channel mean of signed colour data" if layer.display.shape != layer.shape
                             else ""),
               "low": low, "high": high, "data_dtype": str(layer.data.dtype)}
        array = NamedArray(f"{stem}_drawn", drawn_picture(panel), "panel", level=layer.level, details=details,
                           drawn=how)
    else:
        array = NamedArray(stem, layer.data, "panel", signed=layer.signed, level=layer.level, details=details)
    return (array,), {"tool": "panel", "panel": panel.name, "title": title, "level": layer.level,
                      "shown": "picture" if fmt == PICTURE_FORMAT else "data", "limits": [low, high]}


class PanelExport(QObject):
    """Offers "Export this panel..." in the context menu of image panels and runs it."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def offer_on(self, panels: Iterable[ImagePanel]) -> None:
        for panel in panels:
            action = QAction("Export this panel...", panel)
            action.setToolTip("tiff or npy: the panel's data exactly; png: the picture as drawn")
            action.triggered.connect(partial(self.export, panel))
            panel.addAction(action)
            panel.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def export(self, panel: ImagePanel) -> None:
        """Open the export dialog for what `panel` shows (nothing shown: say so in the status bar)."""
        w = self._window
        loaded = w.controller.loaded
        if loaded is None or panel.layer is None:
            w.show_status(f"Nothing to export in {panel.name} yet")
            return
        dialog = ToolExportDialog(panel.name, partial(panel_arrays, panel), loaded.image, loaded.path,
                                  w.exports.default_folder(loaded, file_stem(panel.name)), w)
        dialog.export_requested.connect(w.controller.export_tool)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()
