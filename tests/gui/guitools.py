"""Helpers shared by the GUI tests."""

from __future__ import annotations

import cv2
import numpy as np

from pyramid_explorer.app.main_window import MainWindow


def wait_idle(qtbot, window: MainWindow, timeout: int = 20_000) -> None:
    """Wait until the window has an image, a pyramid, and no computation pending."""
    qtbot.waitUntil(lambda: window.controller.pyramid is not None and window.is_settled(), timeout=timeout)


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

