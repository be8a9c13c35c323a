"""The main window: layout, docks and the status bar; it wires the tools' tabs to the controller.

Menus and shortcuts are built in `menus`; the tabs come from the tool registry, so the window knows
no tool by name except where a menu entry acts on one (View > Show difference, for Compare).
"""

from __future__ import annotations

import os

import pyqtgraph as pg
from PySide6.QtCore import QSettings
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QGuiApplication, QResizeEvent
from PySide6.QtWidgets import QMainWindow, QMenu, QStackedWidget, QTabWidget, QVBoxLayout, QWidget

from pyramid_explorer.app.ab_view import ABCompareOpener
from pyramid_explorer.app.banner import Banner
from pyramid_explorer.app.controller import Controller
from pyramid_explorer.app.docks import LeftDocks
from pyramid_explorer.app.exports import Exports
from pyramid_explorer.app.gui_gc import collect_on_gui_thread
from pyramid_explorer.app.image_panel import reductions_pending
from pyramid_explorer.app.keys import SingleKeyShortcuts
from pyramid_explorer.app.linking import ViewLinker
from pyramid_explorer.app.menus import OpenActions, ViewActions, build_menus
from pyramid_explorer.app.panel_drawing import REDUCTION_NEWS
from pyramid_explorer.app.panel_export import PanelExport
from pyramid_explorer.app.probe_menu import ProbeMenu
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.settings import AppSettings
from pyramid_explorer.app.status import StatusLine
from pyramid_explorer.app.stored_controller import StoredController
from pyramid_explorer.app.tab_building import TabPrebuild, add_panels, build_tab
from pyramid_explorer.app.tabs.base import ToolTab
from pyramid_explorer.app.tabs.compare import CompareTab
from pyramid_explorer.app.tabs.stored import StoredTab
from pyramid_explorer.core.pyramid import max_levels
from pyramid_explorer.jobs import LoadedImage, Pyramid
from pyramid_explorer.tools.registry import NAMES, TOOLS, tool_named
from pyramid_explorer.tools.stored import StoredImage, stored_pyramid

DEFAULT_SIZE = (1480, 920)
SCREEN_SHARE = 0.9
"""At most this share of the screen's free area (width and height) is taken by a window opened for the
first time, leaving room for its frame: the whole window shows on a small screen (1366x768, 1000x680)."""


def fitted_size(available: tuple[int, int] | None) -> tuple[int, int]:
    """DEFAULT_SIZE, shrunk to SCREEN_SHARE of the `available` (width, height) of a screen smaller than
    it; DEFAULT_SIZE when there is no screen to fit."""
    if available is None:
        return DEFAULT_SIZE
    return (min(DEFAULT_SIZE[0], int(available[0] * SCREEN_SHARE)),
            min(DEFAULT_SIZE[1], int(available[1] * SCREEN_SHARE)))


def _available_area() -> tuple[int, int] | None:
    """The primary screen's free area, or None off screen: the offscreen platform's 800x800 screen is not
    a display, and screenshots and tests render the window at the size it is designed for."""
    screen = QGuiApplication.primaryScreen()
    if screen is None or QGuiApplication.platformName() == "offscreen":
        return None
    area = screen.availableGeometry()
    return area.width(), area.height()


def configure_pyqtgraph() -> None:
    """Row-major images (numpy/OpenCV order), no antialiasing of the image views."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class MainWindow(QMainWindow):
    """Pyramid Explorer's window. `persist=False` neither restores nor saves settings."""

    recent_menu: QMenu  # built by menus.build_menus, as are the two below
    samples_menu: QMenu
    probe_menu: ProbeMenu
    # The window's actions by name; it shadows QWidget.actions(), which nothing here calls.
    actions: dict[str, QAction]  # type: ignore[assignment]

    def __init__(self, store: QSettings, *, persist: bool = True,
                 controller: Controller | None = None) -> None:
        super().__init__()
        configure_pyqtgraph()
        collect_on_gui_thread()  # a window has worker threads: no collection may start on one of them
        self.setWindowTitle("Pyramid Explorer")
        self.resize(*fitted_size(_available_area()))  # a saved geometry replaces it (`_restore`)
        self.setAcceptDrops(True)
        self.settings = AppSettings(store)
        self.persist = persist
        self.controller = controller if controller is not None else Controller(parent=self)
        self.render_queue = RenderQueue(self)
        self.tool_tabs: dict[str, ToolTab] = {}  # the tabs built so far: each is built when first shown
        self.stored_view = StoredTab(self.render_queue)  # stored pyramids, in place of the tabs
        self.stored = StoredController(self.controller, self)
        self.linker = ViewLinker(self)
        self.prebuild = TabPrebuild(self)
        self._source_shape: tuple[int, ...] | None = None
        self._stored_fit_pending = False
        self._preview: tuple[str, int] | None = None  # the preview the banner offers: path, steps

        self.tabs = QTabWidget()
        for tool in TOOLS:  # tab index = position in TOOLS; an empty page until the tab is built
            self.tabs.addTab(QWidget(), tool.title.replace("&", ""))
        self.banner = Banner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(2, 2, 2, 2)
        column.addWidget(self.banner)
        self.central_stack = QStackedWidget()
        self.central_stack.addWidget(self.tabs)
        self.central_stack.addWidget(self.stored_view)
        column.addWidget(self.central_stack, 1)
        self.setCentralWidget(central)

        self.docks = LeftDocks(self)
        self.level_panel, self.readout_label = self.docks.level_panel, self.docks.readout_label
        self.levels_dock, self.readout_dock = self.docks.levels_dock, self.docks.readout_dock
        self.readout = self.docks.readout
        add_panels(self, [self.stored_view.panel])

        self.status_line = StatusLine(self.statusBar())
        self.cancel_button = self.status_line.cancel_button

        self.exports = Exports(self)
        self.opening = OpenActions(self)
        self.viewing = ViewActions(self)
        self.ab_compare = ABCompareOpener(self)
        self.actions: dict[str, QAction] = {}
        build_menus(self)
        self.panel_export = PanelExport(self)
        self.single_keys = SingleKeyShortcuts(list(self.actions.values()), self)
        self._connect()
        self.docks.set_initial_sizes(self)
        if persist:
            self._restore()
        self.tab(NAMES[self.tabs.currentIndex()])  # the visible tab; the others when first shown

    # --- construction ----------------------------------------------------------------------------

    def _connect(self) -> None:
        c = self.controller
        c.image_loaded.connect(self._on_image_loaded)
        c.stored_opened.connect(self._on_stored_opened)
        self.stored.region_ready.connect(self.stored_view.show_region)
        self.stored.auto_changed.connect(self.stored_view.set_auto)
        self.stored.error.connect(self._on_error)
        self.stored.error.connect(self.stored_view.panel.mark_failed)
        self.stored.outdated.connect(self.stored_view.on_outdated)
        self.stored_view.auto_toggled.connect(self.stored.set_auto)
        self.stored_view.view_changed.connect(self.stored.set_view)
        self.stored_view.panel.view_box.sigResized.connect(self._on_stored_view_resized)
        self.stored_view.panel.view_box.sigRangeChangedManually.connect(self._on_stored_view_settled)
        self.stored.region_ready.connect(self._on_stored_view_settled)
        c.pyramid_changed.connect(self._on_pyramid_changed)
        c.level_changed.connect(self._on_level_changed)
        c.result_ready.connect(self._on_result_ready)
        c.tool_message.connect(self._on_tool_message)
        c.panel_unavailable.connect(self._on_panel_unavailable)
        c.setting_changed.connect(self._on_setting_changed)
        c.outdated.connect(self._on_outdated)
        c.cancelled.connect(self._on_cancelled)
        c.failed.connect(self._on_failed)
        c.error.connect(self._on_error)
        c.preview_offered.connect(self._on_preview_offered)
        self.banner.action.clicked.connect(self._on_preview_requested)
        c.export_finished.connect(self.exports.on_export_finished)
        self.status_line.follow(c, self.render_queue, self.all_current)
        self.render_queue.drained.connect(self._fit_captions)
        REDUCTION_NEWS.arrived.connect(self._fit_captions)
        c.served.connect(self._fit_captions)
        c.runner.busy_changed.connect(self._fit_captions)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.level_panel.level_selected.connect(c.set_level)
        self.level_panel.depth_changed.connect(c.set_depth)
        self.level_panel.depth_changed.connect(self._on_depth_changed)
        self.level_panel.lock_contrast.toggled.connect(self.actions["lock_contrast"].setChecked)
        self.probe_menu.probe_requested.connect(c.open_probe)

    def _restore(self) -> None:
        geometry, state = self.settings.window_geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if self.settings.last_view in NAMES:
            self.show_view(self.settings.last_view)

    # --- public API (launch, tests) --------------------------------------------------------------

    def show_view(self, view: str) -> None:
        """Bring up the tab of `view` (one of `tools.registry.NAMES`)."""
        tool_named(view)
        self.tabs.setCurrentIndex(NAMES.index(view))

    def tab(self, name: str) -> ToolTab:
        """The tab of the tool `name`, built now if it has not been shown yet."""
        name = tool_named(name).name
        built = self.tool_tabs.get(name)
        return built if built is not None else build_tab(self, name)

    def compare_tab(self) -> CompareTab:
        """The Compare tab, whose difference switch View > Show difference mirrors."""
        tab = self.tab("compare")
        if not isinstance(tab, CompareTab):
            raise TypeError(f"the compare tool's tab is a {type(tab).__name__}, not a CompareTab")
        return tab

    def show_status(self, text: str) -> None:
        """A message in the status bar that stays until the next one (progress does not)."""
        self.status_line.show(text)

    def status_message(self) -> str:
        return self.status_line.text()

    def is_settled(self) -> bool:
        """Nothing computing, nothing waiting to be computed or drawn: what is shown is final."""
        return (self.controller.is_idle() and self.stored.is_idle() and self.render_queue.empty
                and not reductions_pending())

    def all_current(self) -> bool:
        """Every visible panel answers the current state (none out of date, none waiting to be drawn)."""
        current = self.tabs.currentWidget()
        panels = [*(current.panels if isinstance(current, ToolTab) else []), self.stored_view.panel]
        return (self.controller.is_idle() and self.stored.is_idle() and self.render_queue.empty
                and not any(p.is_stale and p.isVisible() for p in panels))

    @property
    def lock_contrast(self) -> bool:
        return self.level_panel.lock_contrast.isChecked()

    # --- handlers: user ---------------------------------------------------------------------------

    def _on_fit_requested(self) -> None:
        if self._source_shape is not None:
            h, w = self._source_shape[:2]
            self.linker.fit(-0.5, -0.5, w, h)
        current = self.tabs.currentWidget()
        if isinstance(current, ToolTab):
            current.fit()

    def _on_tab_changed(self, index: int) -> None:
        panels = self.tab(NAMES[index]).panels
        self.linker.refresh()  # a fit refits the tab's views; a zoomed-in camera carries over
        self.controller.set_view(NAMES[index])
        self.actions["histograms"].blockSignals(True)
        self.actions["histograms"].setChecked(any(p.histogram_shown for p in panels))
        self.actions["histograms"].blockSignals(False)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _first_local_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _first_local_file(event)
        if path is not None:
            event.acceptProposedAction()
            self.controller.open_path(path)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.docks.keep_room_for_tabs(self)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.prebuild.stop()
        self.controller.shutdown()
        if self.persist:
            self.settings.last_view = NAMES[self.tabs.currentIndex()]
            self.settings.save_window(self.saveGeometry(), self.saveState())
            self.settings.sync()
        super().closeEvent(event)

    # --- handlers: controller ---------------------------------------------------------------------

    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        self.banner.hide()
        self.setWindowTitle(f"{loaded.name} - Pyramid Explorer")
        self.central_stack.setCurrentWidget(self.tabs)
        if loaded.path is not None and self.persist:
            self.settings.add_recent(loaded.path)
        self._source_shape = loaded.image.shape
        self.level_panel.show_new_image(max_levels(loaded.image.shape), self.controller.depth)
        for tab in self.tool_tabs.values():  # nothing of the previous image stays on screen
            tab.mark_stale(f"computing for {loaded.name}...", clear=True)
            tab.on_image_loaded(loaded)
        h, w = loaded.image.shape[:2]
        self.linker.fit(-0.5, -0.5, w, h)
        self.prebuild.start()

    def _on_stored_opened(self, image: StoredImage) -> None:
        self.banner.hide()
        self.setWindowTitle(f"{image.name} - Pyramid Explorer")
        self.central_stack.setCurrentWidget(self.stored_view)
        for tab in self.tool_tabs.values():  # let the last layers go
            tab.on_stored_opened(image)
        self.level_panel.set_stored(image)
        self._on_level_changed(self.controller.level)
        self.stored_view.set_image(image)
        if self.persist:
            self.settings.add_recent(image.path)
        self._source_shape = image.shape
        self._stored_fit_pending = True  # the view is laid out only now: fit again as it settles
        self._on_fit_requested()
        self.prebuild.start()

    def _on_stored_view_resized(self) -> None:
        if self._stored_fit_pending:
            self._on_fit_requested()

    def _on_stored_view_settled(self) -> None:
        """The user moved the view or its first region is drawn: resizes keep the camera from now on."""
        self._stored_fit_pending = False

    def _on_depth_changed(self) -> None:
        self.level_panel.show_building()

    def _on_pyramid_changed(self, pyramid: Pyramid) -> None:
        self.level_panel.set_pyramid(pyramid, max_levels(pyramid.gaussian[0].shape))
        for tab in self.tool_tabs.values():
            tab.on_pyramid_changed(pyramid)

    def _on_level_changed(self, level: int) -> None:
        self.level_panel.show_level(level)
        for tab in self.tool_tabs.values():
            tab.on_level_changed(level)

    def _on_outdated(self, tool: str) -> None:
        loaded, level = self.controller.loaded, self.controller.level
        name = "" if loaded is None else f" of {loaded.name}"
        self.tab(tool).mark_stale(f"computing level {level}{name}...")
        self.status_line.mark_updating()

    def _fit_captions(self) -> None:
        """Once everything shown is final, the visible tab's captions drop the lines only an earlier
        title needed (they grow, never shrink, while results come)."""
        current = self.tabs.currentWidget()
        if isinstance(current, ToolTab) and self.is_settled():
            for panel in current.panels:
                panel.caption.fit_text()

    def _on_cancelled(self) -> None:
        for tab in self.tool_tabs.values():
            tab.on_cancelled()

    def _on_failed(self, reason: str) -> None:
        for tab in self.tool_tabs.values():
            tab.on_failed(reason)

    def _on_result_ready(self, tool: str, result: object) -> None:
        self.tab(tool).show_result(result, self.lock_contrast)

    def _on_tool_message(self, tool: str, text: str) -> None:
        self.tab(tool).show_message(text)

    def _on_panel_unavailable(self, tool: str, panel: str, text: str) -> None:
        self.tab(tool).show_unavailable(panel, text)

    def _on_setting_changed(self, name: str, value: object) -> None:
        for tab in self.tool_tabs.values():
            tab.show_setting(name, value)

    def _on_preview_offered(self, path: str, steps: int) -> None:
        self._preview = (path, steps)
        self.banner.offer(f"Open a preview downscaled {2 ** steps}x")

    def _on_preview_requested(self) -> None:
        if self._preview is not None:
            self.banner.hide()
            self.controller.open_preview(*self._preview)
            self._preview = None

    def _on_error(self, message: str) -> None:
        self.banner.show_error(message)
        self.show_status(message)


def _first_local_file(event: QDragEnterEvent | QDropEvent) -> str | None:
    """The first dropped local file, or Zarr folder (an OME-Zarr image is a folder)."""
    mime = event.mimeData()
    if not mime.hasUrls():
        return None
    for url in mime.urls():
        path = url.toLocalFile() if url.isLocalFile() else ""
        if os.path.isfile(path) or (os.path.isdir(path) and stored_pyramid(path) is not None):
            return path
    return None

