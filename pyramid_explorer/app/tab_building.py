"""Tabs built when first shown (`MainWindow.tab`), so that launching builds only the visible one, and
the Compare tab built ahead once the window has an image and is idle (`TabPrebuild`).

A tab built late takes its page's place in the window's QTabWidget, is wired as every tab is
(readout, shared camera, context menus, settings, exports), and is handed what it missed: every
setting, then the image, pyramid and level on screen; its results then come like any tab's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QTabWidget

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.tabs import make_tab
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tabs.compare import CompareTab
from pyramid_explorer.tools.registry import NAMES, tool_named

if TYPE_CHECKING:
    from pyramid_explorer.app.controller import Controller
    from pyramid_explorer.app.main_window import MainWindow


def add_panels(window: MainWindow, panels: list[ImagePanel]) -> None:
    """`panels` join the window's readout and, if linked, its shared camera."""
    for panel in panels:
        window.readout.add(panel)
        if panel.linked:
            window.linker.add(panel.view_box)


def build_tab(window: MainWindow, name: str) -> ToolTab:
    """Build the tab of the tool `name` in its place in `window`, wired and brought up to date."""
    tab = make_tab(tool_named(name), window.render_queue)
    window.tool_tabs[name] = tab
    _put_in_place(window.tabs, NAMES.index(name), tab)
    add_panels(window, tab.panels)
    if isinstance(tab, CompareTab):
        window.ab_compare.offer_on(tab.panels)
        tab.difference.toggled.connect(window.actions["difference"].setChecked)
    window.panel_export.offer_on(tab.panels)
    for panel in tab.panels:
        panel.changed.connect(window.readout.refresh)
        panel.changed.connect(window.status_line.settle)
    tab.setting_changed.connect(window.controller.set_setting)
    tab.export_requested.connect(window.exports.on_tool_export_requested)
    _catch_up(tab, window.controller)
    return tab


PREBUILT_TAB = "compare"
"""The tab built ahead: comparing the modes is the main use, and building its ten panels on the click
held the GUI thread 50-90 ms on a 2-core machine, before the tab's first layout and paint."""
PREBUILD_CHECK_MS = 200
"""How often the window is checked for the idle moment to build `PREBUILT_TAB` in."""


class TabPrebuild(QObject):
    """Builds `PREBUILT_TAB`, hidden, at the first check that finds the window settled and no mouse
    button held (not while the user drags or anything is computed or drawn). Hidden, it computes
    nothing (the controller computes for the tab on screen) and is not laid out or painted."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(PREBUILD_CHECK_MS)
        self._timer.timeout.connect(self._check)

    def start(self) -> None:
        """An image is on its way: look for the moment once it is shown."""
        if PREBUILT_TAB not in self._window.tool_tabs:
            self._timer.start()

    def stop(self) -> None:
        """The window is closing: build nothing more."""
        self._timer.stop()

    def _check(self) -> None:
        w = self._window
        if PREBUILT_TAB in w.tool_tabs:
            return
        if not w.is_settled() or QGuiApplication.mouseButtons() != Qt.MouseButton.NoButton:
            self._timer.start()
            return
        build_tab(w, PREBUILT_TAB)


def _put_in_place(tabs: QTabWidget, index: int, tab: ToolTab) -> None:
    """`tab` replaces the empty page at `index` of `tabs`; the current tab stays current, unannounced."""
    page, current, title = tabs.widget(index), tabs.currentIndex(), tabs.tabText(index)
    tabs.blockSignals(True)
    try:
        tabs.removeTab(index)
        tabs.insertTab(index, tab, title)
        tabs.setCurrentIndex(current)
    finally:
        tabs.blockSignals(False)
    if page is not None:
        page.deleteLater()


def _catch_up(tab: ToolTab, c: Controller) -> None:
    """Hand a tab built late what it missed: every setting, the stored pyramid or the image (cleared
    and out of date, as on a new image) with its pyramid, and the level."""
    for setting, value in c.settings.items():
        tab.show_setting(setting, value)
    if c.stored is not None:
        tab.on_stored_opened(c.stored)
    elif c.loaded is not None:
        tab.mark_stale(f"computing for {c.loaded.name}...", clear=True)
        tab.on_image_loaded(c.loaded)
        if c.pyramid is not None:
            tab.on_pyramid_changed(c.pyramid)
    tab.on_level_changed(c.level)
