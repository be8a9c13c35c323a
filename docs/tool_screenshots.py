"""Render the analysis tools' screenshots in docs/ from the real window, driven through its widgets.

    QT_QPA_PLATFORM=offscreen python docs/tool_screenshots.py resources/chelsea.png docs

`pyramid-explorer IMAGE --screenshot OUT.png --view integrity|equalizer|kernels|unpool|...` shows each
tool in its default state; this script first sets each one to a state worth a picture (saturated
band storage, boosted fine bands, a 3x3 box kernel at stride 2, a zoomed-in unpool level).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.main_window import MainWindow
from pyramid_explorer.tools.kernels import CUSTOM, KERNEL_ENTRIES


def main(image: str, out: Path) -> None:
    app = QApplication([])
    settings = QSettings(str(Path(tempfile.mkdtemp()) / "settings.ini"), QSettings.Format.IniFormat)
    window = MainWindow(settings, persist=False)
    window.show()

    def settle() -> None:
        deadline = time.monotonic() + 120
        while not (window.controller.pyramid is not None and window.is_settled()):
            if time.monotonic() > deadline:
                raise SystemExit("timed out waiting for the window")
            app.processEvents()
            time.sleep(0.005)

    def save(view: str) -> None:
        settle()
        window.grab().save(str(out / f"{view}.png"))

    window.controller.open_path(image)
    settle()
    window.show_view("integrity")
    window.tab("integrity").storage_buttons["uint8_saturate"].setChecked(True)
    save("integrity")

    window.show_view("equalizer")
    settle()
    for slider, value in zip(window.tab("equalizer").sliders, (250, 180, 100, 60), strict=False):
        slider.setValue(value)  # sharpen the two finest bands, soften the fourth
    save("equalizer")

    window.show_view("kernels")
    controls = window.tab("kernels").controls
    controls.kernel.setCurrentIndex(controls.kernel.findData("box"))
    controls.kernel_size.setValue(3)
    window.tab("kernels").table.setCurrentCell(KERNEL_ENTRIES.index(CUSTOM), 0)
    save("kernels")

    window.level_panel.level.setValue(2)
    window.show_view("unpool")
    settle()
    window.linker.set_camera((250.0, 130.0), 0.25)  # four screen pixels per source pixel
    save("unpool")

    window.level_panel.level.setValue(1)
    window.actions["fit"].trigger()  # the labs: the whole image again
    window.show_view("coding")
    save("coding")
    window.show_view("shift")
    save("shift")
    window.show_view("convmatrix")
    settle()
    window.tab("convmatrix").slider.setValue(5)  # mid-animation: the sixth kernel has just landed
    save("convmatrix")
    window.close()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
