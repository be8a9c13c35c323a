"""Helpers shared by the GUI tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.core.export import MANIFEST_NAME


def wait_idle(qtbot, window: MainWindow, timeout: int = 20_000) -> None:
    """Wait until the window has an image, a pyramid, and no computation pending."""
    qtbot.waitUntil(lambda: window.controller.pyramid is not None and window.is_settled(), timeout=timeout)


def open_and_wait(qtbot, window: MainWindow, path: str) -> MainWindow:
    """Open `path` in `window` and wait until what it shows is computed."""
    window.controller.open_path(path)
    wait_idle(qtbot, window)
    return window


def show(qtbot, window: MainWindow, view: str) -> None:
    """Bring up the tab of `view` and wait until it is computed."""
    window.show_view(view)
    wait_idle(qtbot, window)


def open_tab(qtbot, window: MainWindow, path: str, view: str) -> ToolTab:
    """Open `path`, bring up the tab of `view`, and return the tab once it is computed."""
    show(qtbot, open_and_wait(qtbot, window, path), view)
    return window.tab(view)


def export_through_dialog(qtbot, window: MainWindow, tab: ToolTab, out) -> dict:
    """Click the tab's Export button, export as .npy into `out`, and return the manifest."""
    qtbot.mouseClick(tab.export_button, Qt.MouseButton.LeftButton)
    dialog = window.findChildren(ToolExportDialog)[-1]
    dialog.folder.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData("npy"))
    with qtbot.waitSignal(window.controller.export_finished, timeout=20_000):
        dialog.export_button.click()
    wait_idle(qtbot, window)
    return json.loads((out / MANIFEST_NAME).read_text())


def drop(window: MainWindow, path) -> None:
    """Drag `path` onto the window and drop it there."""
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                       Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, event)


def write_png(path, image: np.ndarray) -> str:
    """Write an RGB(A) or grey array as PNG (OpenCV wants BGR) and return the path as str."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)
    return str(path)


def make_image(height: int = 37, width: int = 53) -> np.ndarray:
    """A small RGB image with structure at every scale (a smooth ramp plus seeded noise)."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:height, :width]
    base = np.stack([x * 255 / max(width - 1, 1), y * 255 / max(height - 1, 1), (x + y) % 64 * 4], axis=2)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)

