"""The window's left docks: Levels (the level table and its controls) above the Pixel readout."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QScrollArea, QWidget

from pyramid_explorer.app.level_panel import LevelPanel
from pyramid_explorer.app.readout import PixelReadout


def _left_dock(window: QMainWindow, title: str, name: str, widget: QWidget) -> QDockWidget:
    """A dock on the window's left, named for saveState."""
    dock = QDockWidget(title, window)
    dock.setObjectName(name)
    dock.setWidget(widget)
    window.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
    return dock


class LeftDocks:
    """The Levels dock (`level_panel`) and the Pixel readout dock (`readout` writes `readout_label`)."""

    def __init__(self, window: QMainWindow) -> None:
        self.level_panel = LevelPanel()
        self.levels_dock = _left_dock(window, "Levels", "levelsDock", self.level_panel)
        self.readout_label = QLabel("Hover over an image to read its pixels")
        self.readout_label.setFont(QFont("monospace", 9))
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.readout_label.setWordWrap(True)  # a narrow dock wraps the lines rather than scroll sideways
        scroll = QScrollArea()
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(self.readout_label)
        scroll.setWidgetResizable(True)
        self.readout_dock = _left_dock(window, "Pixel readout", "readoutDock", scroll)
        self.readout = PixelReadout(self.readout_label, window)
        self.level_panel.width_wanted.connect(self._on_levels_width_wanted)

    def set_initial_sizes(self, window: QMainWindow) -> None:
        """Side by side 480 pixels wide each; stacked, Levels 620 and the readout 200 pixels high. (The
        window is passed, not kept: a reference back to it would make a cycle that only the garbage
        collector frees, perhaps on a worker thread, where deleting Qt objects can deadlock.)"""
        docks = [self.levels_dock, self.readout_dock]
        window.resizeDocks(docks, [480, 480], Qt.Orientation.Horizontal)
        window.resizeDocks(docks, [620, 200], Qt.Orientation.Vertical)

    def _on_levels_width_wanted(self, width: int) -> None:
        """A Levels dock narrower than its table's columns (restored so, or made so) is widened, as far
        as the window lets it but to half its width at most: the images keep the other half (in a
        narrower window the table is compact)."""
        dock, shown = self.levels_dock, self.level_panel.width()
        window = dock.parentWidget()
        if isinstance(window, QMainWindow) and dock.isVisible() and not dock.isFloating() and shown < width:
            wanted = min(dock.width() + width - shown, window.width() // 2)
            if wanted > dock.width():
                window.resizeDocks([dock], [wanted], Qt.Orientation.Horizontal)
