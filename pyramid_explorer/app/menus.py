"""The window's menus and their actions (File, View, Help) and every keyboard shortcut.

The View menu's tool entries come from the tool registry: Ctrl+1..9 select the first nine tabs
in tab order (the View menu lists every tab).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QFileDialog

from pyramid_explorer.app.dialogs import ShortcutsDialog, open_filters
from pyramid_explorer.app.image_panel import set_exact_samples_everywhere
from pyramid_explorer.app.probe_menu import ProbeMenu
from pyramid_explorer.samples import SAMPLES
from pyramid_explorer.tools.registry import NAMES, TOOLS

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow


class ViewActions(QObject):
    """The View menu's level, zoom and histogram actions, and Help > Keyboard shortcuts, of `window`."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def on_view_action_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self._window.show_view(action.data())

    def on_finer_requested(self) -> None:
        self._window.controller.step_level(-1)

    def on_coarser_requested(self) -> None:
        self._window.controller.step_level(+1)

    def on_one_to_one_requested(self) -> None:
        self._window.linker.one_to_one()

    def on_difference_toggled(self, shown: bool) -> None:
        self._window.compare_tab().difference.setChecked(shown)

    def on_histograms_toggled(self, visible: bool) -> None:
        for panel in self._window.tool_tabs[NAMES[self._window.tabs.currentIndex()]].panels:
            panel.set_histogram_visible(visible)

    def on_shortcuts_requested(self) -> None:
        ShortcutsDialog(self._window.actions.values(), self._window).show()


class OpenActions(QObject):
    """File > Open, Open folder, Open Recent and Samples of `window`."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window

    def on_open_requested(self) -> None:
        folder = self._window.settings.last_folder
        path, _ = QFileDialog.getOpenFileName(self._window, "Open image", folder, open_filters())
        if path:
            self._window.controller.open_path(path)

    def on_open_folder_requested(self) -> None:
        folder = self._window.settings.last_folder
        path = QFileDialog.getExistingDirectory(self._window, "Open OME-Zarr folder", folder)
        if path:
            self._window.controller.open_path(path)

    def on_recent_menu_about_to_show(self) -> None:
        menu = self._window.recent_menu
        menu.clear()
        files = self._window.settings.recent_files()
        for path in files:
            menu.addAction(path).setData(path)
        if not files:
            menu.addAction("(none)").setEnabled(False)
        else:
            menu.addSeparator()
            menu.addAction("Clear list").setData("")

    def on_recent_triggered(self, action: QAction) -> None:
        path = action.data()
        if path:
            self._window.controller.open_path(path)
        elif path == "":
            self._window.settings.clear_recent()

    def on_sample_triggered(self, action: QAction) -> None:
        self._window.controller.open_sample(action.data())


def add_action(window: MainWindow, name: str, text: str,
               shortcut: QKeySequence | QKeySequence.StandardKey | Qt.Key | str | None,
               slot: Callable[..., object], *, checkable: bool = False, checked: bool = False) -> QAction:
    """An action of the window, kept in `window.actions[name]`; its shortcut works wherever the focus is."""
    action = QAction(text, window)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.setCheckable(checkable)
    if checkable:
        action.setChecked(checked)
        action.toggled.connect(slot)
    else:
        action.triggered.connect(slot)
    window.addAction(action)
    window.actions[name] = action
    return action


def build_menus(w: MainWindow) -> None:
    """File, View and Help menus of `w`, wired to its handlers."""
    def a(name: str, text: str, shortcut: QKeySequence | QKeySequence.StandardKey | Qt.Key | str | None,
          slot: Callable[..., object], **kw: bool) -> QAction:
        return add_action(w, name, text, shortcut, slot, **kw)

    file_menu = w.menuBar().addMenu("&File")
    file_menu.addAction(a("open", "&Open...", QKeySequence.StandardKey.Open, w.opening.on_open_requested))
    file_menu.addAction(a("open_folder", "Open OME-Zarr &folder...", "Ctrl+Shift+O",
                          w.opening.on_open_folder_requested))
    w.recent_menu = file_menu.addMenu("Open &Recent")
    w.recent_menu.aboutToShow.connect(w.opening.on_recent_menu_about_to_show)
    w.recent_menu.triggered.connect(w.opening.on_recent_triggered)
    w.samples_menu = file_menu.addMenu("&Samples")
    for name in SAMPLES:
        w.samples_menu.addAction(name).setData(name)
    w.samples_menu.triggered.connect(w.opening.on_sample_triggered)
    w.samples_menu.addSeparator()
    w.probe_menu = ProbeMenu(w)
    w.samples_menu.addMenu(w.probe_menu)
    file_menu.addAction(a("export", "&Export...", "Ctrl+E", w.exports.on_export_requested))
    file_menu.addSeparator()
    file_menu.addAction(a("quit", "&Quit", "Ctrl+Q", w.close))

    view_menu = w.menuBar().addMenu("&View")
    for n, tool in enumerate(TOOLS, start=1):
        shortcut = f"Ctrl+{n}" if n <= 9 else None
        action = a(f"view_{tool.name}", tool.title, shortcut, w.viewing.on_view_action_triggered)
        action.setData(tool.name)
        view_menu.addAction(action)
    view_menu.addSeparator()
    view_menu.addAction(a("finer", "&Finer level", Qt.Key.Key_PageUp, w.viewing.on_finer_requested))
    view_menu.addAction(a("coarser", "C&oarser level", Qt.Key.Key_PageDown, w.viewing.on_coarser_requested))
    view_menu.addAction(a("ab_compare", "&A/B compare... (Compare level)", "Ctrl+B",
                          w.ab_compare.on_requested))
    view_menu.addSeparator()
    view_menu.addAction(a("fit", "&Fit", "F", w._on_fit_requested))
    view_menu.addAction(a("one_to_one", "&1:1 (one source pixel per screen pixel)", "Ctrl+0",
                          w.viewing.on_one_to_one_requested))
    view_menu.addSeparator()
    view_menu.addAction(a("difference", "Show &difference from G[i] (Compare)", "D",
                          w.viewing.on_difference_toggled, checkable=True))
    view_menu.addAction(a("lock_contrast", "&Lock contrast across levels", "L",
                          w.level_panel.lock_contrast.setChecked, checkable=True))
    view_menu.addAction(a("histograms", "&Histograms", "H", w.viewing.on_histograms_toggled, checkable=True,
                          checked=True))
    view_menu.addAction(a("exact_samples", "Display: &exact samples (may alias)", None,
                          set_exact_samples_everywhere, checkable=True))
    view_menu.addSeparator()
    view_menu.addAction(w.levels_dock.toggleViewAction())
    view_menu.addAction(w.readout_dock.toggleViewAction())
    a("cancel", "Cancel computation", "Esc", w.controller.cancel)

    help_menu = w.menuBar().addMenu("&Help")
    help_menu.addAction(a("shortcuts", "&Keyboard shortcuts", QKeySequence.StandardKey.HelpContents,
                          w.viewing.on_shortcuts_requested))
