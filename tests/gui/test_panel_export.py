"""A panel's context menu exports that panel: its data exactly, or in PNG the picture as drawn."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import tifffile
from guitools import wait_idle
from PySide6.QtCore import QPoint, Qt, QTimer
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.core.export import MANIFEST_NAME


def export_panel(qtbot, window, panel, out, fmt):
    (action,) = [a for a in panel.actions() if a.text() == "Export this panel..."]
    assert panel.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    action.trigger()
    dialog = window.findChildren(ToolExportDialog)[-1]
    dialog.folder.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData(fmt))
    with qtbot.waitSignal(window.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    wait_idle(qtbot, window)
    return json.loads((out / MANIFEST_NAME).read_text())


@pytest.mark.parametrize("fmt", ["npy", "tiff"])
def test_the_data_of_a_panel_is_written_exactly(qtbot, opened, tmp_path, fmt):
    opened.controller.set_level(1)
    wait_idle(qtbot, opened)
    panel = opened.tab("pyramid").laplacian
    data = panel.layer.data
    out = tmp_path / fmt
    manifest = export_panel(qtbot, opened, panel, out, fmt)
    (record,) = manifest["files"]
    path = out / record["file"]
    got = np.load(path) if fmt == "npy" else tifffile.imread(path)
    assert got.dtype == data.dtype and got.shape == data.shape and got.tobytes() == data.tobytes()
    expected = opened.controller.pyramid.laplacian[1]
    assert np.array_equal(got, expected)
    assert record["role"] == "data" and record["level"] == 1 and record["panel"] == panel.name == "L[1]"
    assert manifest["parameters"]["shown"] == "data"


def test_png_writes_the_picture_as_drawn_and_says_so(qtbot, opened, tmp_path):
    panel = opened.tab("pyramid").laplacian  # signed: a diverging colour map on the channel mean
    layer = panel.layer
    low, high = panel.limits()
    manifest = export_panel(qtbot, opened, panel, tmp_path / "png", "png")
    (record,) = manifest["files"]
    assert record["role"] == "visualisation" and record["visualisation"]["low"] == low
    codes = np.clip(np.rint(255 * (layer.display.astype(np.float64) - low) / (high - low)), 0, 255)
    want = panel.histogram.getLookupTable(n=256)[codes.astype(np.uint8), :3]
    got = cv2.cvtColor(cv2.imread(str(tmp_path / "png" / record["file"]), cv2.IMREAD_UNCHANGED),
                       cv2.COLOR_BGR2RGB)
    assert got.shape == (*layer.display.shape[:2], 3)
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1  # rounding of exact halves may differ


def test_an_empty_panel_says_there_is_nothing_to_export(qtbot, window):
    panel = window.tab("pyramid").laplacian
    (action,) = [a for a in panel.actions() if a.text() == "Export this panel..."]
    action.trigger()
    assert not window.findChildren(ToolExportDialog)
    assert window.status_message() == f"Nothing to export in {panel.name} yet"


# What the offscreen platform says when a popup menu opens (it cannot raise windows or grab the keyboard)
OFFSCREEN_POPUP = ("This plugin does not support raise()",
                   "This plugin does not support grabbing the keyboard")


def test_a_right_click_on_the_image_offers_the_export(qtbot, opened, qt_warnings_fail):
    panel = opened.tab("pyramid").laplacian
    offered = []

    def read_menu():
        menu = QApplication.activePopupWidget()
        offered.append([a.text() for a in menu.actions()] if menu is not None else None)
        if menu is not None:
            menu.close()

    QTimer.singleShot(200, read_menu)
    canvas = panel.view_box.getViewWidget().viewport()  # where the mouse is: the image's canvas
    QApplication.sendEvent(canvas, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, QPoint(20, 20),
                                                     canvas.mapToGlobal(QPoint(20, 20))))
    qtbot.waitUntil(lambda: bool(offered))
    assert offered == [["Export this panel..."]]
    qt_warnings_fail[:] = [m for m in qt_warnings_fail if m not in OFFSCREEN_POPUP]
