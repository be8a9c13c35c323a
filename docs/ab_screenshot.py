"""Render docs/ab.png: the A/B view of the bundled photograph, Compare level 0, pyrUp | Bilinear.

    QT_QPA_PLATFORM=offscreen python docs/ab_screenshot.py docs/ab.png [WIDTH HEIGHT]

The real window opens the sample, fills the Compare tab, and opens View > A/B compare (Ctrl+B); the
picture is a grab of the A/B view with the shared camera fitted to it.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.samples import SAMPLES

SAMPLE = next(name for name in SAMPLES if "Chelsea" in name)


def main(out: Path, width: int = 1200, height: int = 760) -> None:
    app = QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, persist=False)
    window.show()

    def wait(done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 120
        while not done():
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the window")
            app.processEvents()
            time.sleep(0.005)

    window.controller.open_sample(SAMPLE)
    window.show_view("compare")
    wait(lambda: window.controller.pyramid is not None and window.is_settled())
    window.actions["ab_compare"].trigger()
    view = window.ab_compare.view
    view.resize(width, height)
    pair = ("pyrUp", "Bilinear")
    view.choose(*pair)
    wait(lambda: view.result is not None and (view.result.a_name, view.result.b_name) == pair)
    box, (h, w) = view.panel.view_box, view.result.a.shape[:2]
    window.linker.set_camera((w / 2 - 0.5, h / 2 - 0.5), max(w / box.width(), h / box.height()))
    view.set_divider_column(w / 2)
    app.processEvents()
    view.grab().save(str(out))
    window.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), *(int(v) for v in sys.argv[2:4]))
