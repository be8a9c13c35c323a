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


TABS_KEEP = 700
"""Pixels of the window's width the tabs keep beside the docks: Compare's side column and three images."""


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

    def keep_room_for_tabs(self, window: QMainWindow) -> None:
        """After a window resize: a Levels dock wider than the window leaves the tabs `TABS_KEEP` gives way
        (its table goes compact). Tabs are built when first shown, so their least widths cannot do it.
        A compact table in a window grown wide enough for the whole table is widened back to it."""
        dock, panel = self.levels_dock, self.level_panel
        room = window.width() - TABS_KEEP
        if not dock.isVisible() or dock.isFloating():
            return
        if dock.width() > max(room, dock.minimumWidth()):
            window.resizeDocks([dock], [room], Qt.Orientation.Horizontal)
        elif panel.compact and panel.model.rowCount():
            whole = dock.width() + panel.full_width() - panel.width()
            if whole <= room:
                window.resizeDocks([dock], [whole], Qt.Orientation.Horizontal)

    def _on_levels_width_wanted(self, width: int) -> None:
        """A Levels dock narrower than its table's columns (restored so, or made so) is widened, as far
        as the window lets it while the tabs keep `TABS_KEEP` pixels. A compact table (in a narrower
        window) gets the dock narrowed to its two columns, the images the rest."""
        dock, shown = self.levels_dock, self.level_panel.width()
        window = dock.parentWidget()
        if isinstance(window, QMainWindow) and dock.isVisible() and not dock.isFloating() and shown != width:
            wanted = min(dock.width() + width - shown, window.width() - TABS_KEEP)
            if wanted > dock.width() or self.level_panel.compact:
                window.resizeDocks([dock], [wanted], Qt.Orientation.Horizontal)
                # now, not at the next layout pass: the panel then decides compact or whole on the width
                # it gets (else it went compact at the old width, and whole again at the new, ~80 ms)
                layout = window.layout()
                if layout is not None:  # a QMainWindow always has its layout
                    layout.activate()
