"""The main window: layout, menus, actions, docks and the status bar; it wires views to the controller."""

from __future__ import annotations

import os
from functools import partial

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QFont, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QStackedWidget,
    QTabWidget,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.ab_compare import level_candidates
from pyramid_explorer.analysis_jobs import tool_arrays
from pyramid_explorer.app.ab_view import ABView
from pyramid_explorer.app.compare_view import CompareView
from pyramid_explorer.app.controller import VIEWS, Controller
from pyramid_explorer.app.dialogs import ShortcutsDialog
from pyramid_explorer.app.equalizer_view import EqualizerPanel
from pyramid_explorer.app.export_dialog import ExportDialog
from pyramid_explorer.app.integrity_view import IntegrityPanel
from pyramid_explorer.app.kernel_view import KernelPanel
from pyramid_explorer.app.lazy_controller import LazyController
from pyramid_explorer.app.lazy_view import LazyView
from pyramid_explorer.app.level_panel import LevelPanel
from pyramid_explorer.app.linking import ViewLinker
from pyramid_explorer.app.probe_menu import ProbeMenu
from pyramid_explorer.app.pyramid_view import PyramidView
from pyramid_explorer.app.readout import PixelReadout
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.settings import AppSettings
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.app.unpool_view import UnpoolPanel
from pyramid_explorer.core.export import ExportResult
from pyramid_explorer.core.pyramid import max_levels
from pyramid_explorer.jobs import DeconvResult, LevelView, LoadedImage, ModeResult, Mosaic, Pyramid
from pyramid_explorer.jobs_lazy import StoredImage, stored_pyramid
from pyramid_explorer.samples import SAMPLES

OPEN_FILTERS = ";;".join((
    "Images (*.png *.jpg *.jpeg *.tif *.tiff *.bmp *.webp)",
    "PNG (*.png)",
    "JPEG (*.jpg *.jpeg)",
    "TIFF (*.tif *.tiff)",
    "BMP (*.bmp)",
    "WebP (*.webp)",
    "All files (*)",
))
DEFAULT_SIZE = (1480, 920)
VIEW_TITLES = {"pyramid": "&Pyramid", "compare": "&Compare modes", "integrity": "&Integrity",
               "equalizer": "&Equalizer", "kernels": "&Kernels", "unpool": "&Unpool"}
"""Tab (and View menu) title of each of controller.VIEWS, in tab order; Ctrl+1.. selects them."""


def configure_pyqtgraph() -> None:
    """Row-major images (numpy/OpenCV order), no antialiasing of the image views."""
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)


class Banner(QFrame):
    """A non-modal one-line error strip above the views; the app keeps working under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #fde2e1; border: 1px solid #e0a09c; }"
                           "QLabel { color: #7a1712; }")
        self.label = QLabel()
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("x")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        self.action = QPushButton()  # an offer to act on the error (e.g. open a preview); hidden if none
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(close)
        self.action.hide()
        self.hide()

    def show_error(self, text: str) -> None:
        self.label.setText(text)
        self.action.hide()
        self.show()

    def offer(self, text: str) -> None:
        """Show the action button with `text` under the current error."""
        self.action.setText(text)
        self.action.show()


class MainWindow(QMainWindow):
    """Pyramid Explorer's window. `persist=False` neither restores nor saves settings."""

    def __init__(self, store: QSettings, *, persist: bool = True,
                 controller: Controller | None = None) -> None:
        super().__init__()
        configure_pyqtgraph()
        self.setWindowTitle("Pyramid Explorer")
        self.resize(*DEFAULT_SIZE)
        self.setAcceptDrops(True)
        self.settings = AppSettings(store)
        self._persist = persist
        self.controller = controller if controller is not None else Controller(parent=self)
        self.render_queue = RenderQueue(self)
        self.pyramid_view = PyramidView(self.render_queue)
        self.compare_view = CompareView(self.render_queue)
        self.integrity_view = IntegrityPanel(self.render_queue)
        self.equalizer_view = EqualizerPanel(self.render_queue)
        self.kernel_view = KernelPanel()
        self.unpool_view = UnpoolPanel(self.render_queue)
        self.views: dict[str, QWidget] = {
            "pyramid": self.pyramid_view, "compare": self.compare_view, "integrity": self.integrity_view,
            "equalizer": self.equalizer_view, "kernels": self.kernel_view, "unpool": self.unpool_view}
        self.lazy_view = LazyView(self.render_queue)  # stored pyramids, in place of the tabs
        self.lazy = LazyController(self.controller, self)
        self.linker = ViewLinker(self)
        self.ab_view: ABView | None = None  # made on first use (View > A/B compare)
        self._source_shape: tuple[int, ...] | None = None
        self._lazy_fit_pending = False
        self._preview: tuple[str, int] | None = None  # the preview the banner offers: path, steps

        self.tabs = QTabWidget()
        for name in VIEWS:  # tab index = position in VIEWS
            self.tabs.addTab(self.views[name], VIEW_TITLES[name].replace("&", ""))
        self.banner = Banner()
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(2, 2, 2, 2)
        column.addWidget(self.banner)
        self.central_stack = QStackedWidget()
        self.central_stack.addWidget(self.tabs)
        self.central_stack.addWidget(self.lazy_view)
        column.addWidget(self.central_stack, 1)
        self.setCentralWidget(central)

        self.level_panel = LevelPanel()
        self.levels_dock = self._dock("Levels", "levelsDock", self.level_panel)
        self.readout_label = QLabel("Hover over an image to read its pixels")
        self.readout_label.setFont(QFont("monospace", 9))
        self.readout_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.readout_label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        scroll = QScrollArea()
        scroll.setWidget(self.readout_label)
        scroll.setWidgetResizable(True)
        self.readout_dock = self._dock("Pixel readout", "readoutDock", scroll)
        self.readout = PixelReadout(self.readout_label, self)
        for panel in [*(p for view in self.views.values() for p in view.panels), self.lazy_view.panel]:
            self.readout.add(panel)
            if panel.linked:
                self.linker.add(panel.view_box)

        self._status_text = QLabel()
        self._status_is_progress = False
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running computation (Esc)")
        self.statusBar().addWidget(self._status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.cancel_button)
        self._on_busy_changed(False)

        self.actions: dict[str, QAction] = {}
        self._build_menus()
        for panel in self.compare_view.panels:  # right-click on a Compare panel offers the A/B view
            panel.addAction(self.actions["ab_compare"])
            panel.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        self._connect()
        self.compare_view.set_histograms_visible(False)
        self.resizeDocks([self.levels_dock, self.readout_dock], [480, 480], Qt.Orientation.Horizontal)
        self.resizeDocks([self.levels_dock, self.readout_dock], [620, 200], Qt.Orientation.Vertical)
        if persist:
            self._restore()

    # --- construction ----------------------------------------------------------------------------

    def _dock(self, title: str, name: str, widget: QWidget) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        return dock

    def _action(self, name: str, text: str, shortcut: QKeySequence | str | None, slot,
                *, checkable: bool = False, checked: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.setCheckable(checkable)
        if checkable:
            action.setChecked(checked)
            action.toggled.connect(slot)
        else:
            action.triggered.connect(slot)
        self.addAction(action)  # shortcuts work wherever the focus is
        self.actions[name] = action
        return action

    def _build_menus(self) -> None:
        a = self._action
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction(a("open", "&Open...", QKeySequence.StandardKey.Open, self._on_open_requested))
        file_menu.addAction(a("open_folder", "Open OME-Zarr &folder...", "Ctrl+Shift+O",
                              self._on_open_folder_requested))
        self.recent_menu = file_menu.addMenu("Open &Recent")
        self.recent_menu.aboutToShow.connect(self._on_recent_menu_about_to_show)
        self.recent_menu.triggered.connect(self._on_recent_triggered)
        self.samples_menu = file_menu.addMenu("&Samples")
        for name in SAMPLES:
            self.samples_menu.addAction(name).setData(name)
        self.samples_menu.triggered.connect(self._on_sample_triggered)
        self.samples_menu.addSeparator()
        self.probe_menu = ProbeMenu(self)
        self.samples_menu.addMenu(self.probe_menu)
        file_menu.addAction(a("export", "&Export...", "Ctrl+E", self._on_export_requested))
        file_menu.addSeparator()
        file_menu.addAction(a("quit", "&Quit", "Ctrl+Q", self.close))

        view_menu = self.menuBar().addMenu("&View")
        for n, name in enumerate(VIEWS, start=1):
            action = a(f"view_{name}", VIEW_TITLES[name], f"Ctrl+{n}", self._on_view_action_triggered)
            action.setData(name)
            view_menu.addAction(action)
        view_menu.addSeparator()
        view_menu.addAction(a("finer", "&Finer level", Qt.Key.Key_PageUp, self._on_finer_requested))
        view_menu.addAction(a("coarser", "C&oarser level", Qt.Key.Key_PageDown, self._on_coarser_requested))
        view_menu.addAction(a("ab_compare", "&A/B compare... (Compare level)", "Ctrl+B",
                              self._on_ab_compare_requested))
        view_menu.addSeparator()
        view_menu.addAction(a("fit", "&Fit", "F", self._on_fit_requested))
        view_menu.addAction(a("one_to_one", "&1:1 (one source pixel per screen pixel)", "Ctrl+0",
                              self._on_one_to_one_requested))
        view_menu.addSeparator()
        view_menu.addAction(a("difference", "Show &difference from G[i] (Compare)", "D",
                              self.compare_view.difference.setChecked, checkable=True))
        view_menu.addAction(a("lock_contrast", "&Lock contrast across levels", "L",
                              self.level_panel.lock_contrast.setChecked, checkable=True))
        view_menu.addAction(a("histograms", "&Histograms", "H", self._on_histograms_toggled, checkable=True,
                              checked=True))
        view_menu.addSeparator()
        view_menu.addAction(self.levels_dock.toggleViewAction())
        view_menu.addAction(self.readout_dock.toggleViewAction())
        a("cancel", "Cancel computation", "Esc", self.controller.cancel)

        help_menu = self.menuBar().addMenu("&Help")
        help_menu.addAction(a("shortcuts", "&Keyboard shortcuts", QKeySequence.StandardKey.HelpContents,
                              self._on_shortcuts_requested))

    def _connect(self) -> None:
        c = self.controller
        c.image_loaded.connect(self._on_image_loaded)
        c.stored_opened.connect(self._on_stored_opened)
        self.lazy.region_ready.connect(self.lazy_view.show_region)
        self.lazy.auto_changed.connect(self.lazy_view.set_auto)
        self.lazy.error.connect(self._on_error)
        self.lazy_view.auto_toggled.connect(self.lazy.set_auto)
        self.lazy_view.view_changed.connect(self.lazy.set_view)
        self.lazy_view.panel.view_box.sigResized.connect(self._on_lazy_view_resized)
        self.lazy_view.panel.view_box.sigRangeChangedManually.connect(self._on_lazy_view_settled)
        self.lazy.region_ready.connect(self._on_lazy_view_settled)
        c.pyramid_changed.connect(self._on_pyramid_changed)
        c.level_changed.connect(self._on_level_changed)
        c.level_view_ready.connect(self._on_level_view_ready)
        c.mosaic_ready.connect(self._on_mosaic_ready)
        c.mode_ready.connect(self._on_mode_ready)
        c.deconv_ready.connect(self._on_deconv_ready)
        c.compare_unavailable.connect(self.compare_view.show_message)
        c.mode_unavailable.connect(self.compare_view.show_unavailable)
        c.error.connect(self._on_error)
        c.preview_offered.connect(self._on_preview_offered)
        self.banner.action.clicked.connect(self._on_preview_requested)
        c.export_finished.connect(self._on_export_finished)
        c.status.connect(self.show_status)
        c.runner.progress.connect(self._on_progress)
        c.runner.busy_changed.connect(self._on_busy_changed)
        self.cancel_button.clicked.connect(c.cancel)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.level_panel.level_selected.connect(c.set_level)
        self.level_panel.depth_changed.connect(c.set_depth)
        self.level_panel.lock_contrast.toggled.connect(self.actions["lock_contrast"].setChecked)
        self.pyramid_view.layout_changed.connect(c.set_layout_kind)
        self.compare_view.controls.settings_changed.connect(c.set_deconv)
        self.compare_view.difference.toggled.connect(self.actions["difference"].setChecked)
        c.integrity_ready.connect(self.integrity_view.show_result)
        c.equalizer_ready.connect(self.equalizer_view.show_result)
        c.kernels_ready.connect(self.kernel_view.show_result)
        c.unpool_ready.connect(self.unpool_view.show_result)
        c.unpool_unavailable.connect(self.unpool_view.show_message)
        self.integrity_view.storage_changed.connect(c.set_storage)
        self.equalizer_view.gains_changed.connect(c.set_gains)
        self.kernel_view.entry_selected.connect(c.set_kernel_entry)
        # one set of transposed-convolution settings, edited in the Compare or the Kernels tab
        self.kernel_view.controls.settings_changed.connect(c.set_deconv)
        self.kernel_view.controls.settings_changed.connect(self.compare_view.controls.set_settings)
        self.compare_view.controls.settings_changed.connect(self.kernel_view.controls.set_settings)
        self.probe_menu.probe_requested.connect(c.open_probe)
        for view in (self.integrity_view, self.equalizer_view, self.kernel_view, self.unpool_view):
            view.export_requested.connect(self._on_tool_export_requested)

    def _restore(self) -> None:
        geometry, state = self.settings.window_geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)
        if self.settings.last_view in VIEWS:
            self.show_view(self.settings.last_view)

    # --- public API (launch, tests) --------------------------------------------------------------

    def show_view(self, view: str) -> None:
        """Bring up the tab of `view` (one of controller.VIEWS)."""
        if view not in VIEWS:
            raise ValueError(f"unknown view {view!r}; views: {', '.join(VIEWS)}")
        self.tabs.setCurrentIndex(VIEWS.index(view))

    def show_status(self, text: str) -> None:
        """A message in the status bar that stays until the next one (progress does not)."""
        self._status_is_progress = False
        self._status_text.setText(text)

    def status_message(self) -> str:
        return self._status_text.text()

    def is_settled(self) -> bool:
        """Nothing computing, nothing waiting to be computed or drawn: what is shown is final."""
        return self.controller.is_idle() and self.lazy.is_idle() and self.render_queue.empty

    @property
    def lock_contrast(self) -> bool:
        return self.level_panel.lock_contrast.isChecked()

    # --- handlers: user ---------------------------------------------------------------------------

    def _on_open_requested(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open image", self.settings.last_folder, OPEN_FILTERS)
        if path:
            self.controller.open_path(path)

    def _on_open_folder_requested(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open OME-Zarr folder", self.settings.last_folder)
        if path:
            self.controller.open_path(path)

    def _on_recent_menu_about_to_show(self) -> None:
        self.recent_menu.clear()
        files = self.settings.recent_files()
        for path in files:
            self.recent_menu.addAction(path).setData(path)
        if not files:
            self.recent_menu.addAction("(none)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list").setData("")

    def _on_recent_triggered(self, action: QAction) -> None:
        path = action.data()
        if path:
            self.controller.open_path(path)
        elif path == "":
            self.settings.clear_recent()

    def _on_sample_triggered(self, action: QAction) -> None:
        self.controller.open_sample(action.data())

    def _on_export_requested(self) -> None:
        loaded, pyramid = self.controller.loaded, self.controller.pyramid
        if self.controller.stored is not None:
            self.show_status("A stored pyramid is exported from the command line, in bounded memory: "
                             "pyramid-explorer export PATH --format ome-zarr")
            return
        if loaded is None or pyramid is None:
            self.show_status("Nothing to export yet")
            return
        dialog = ExportDialog(loaded.image, loaded.path, pyramid.levels, max_levels(loaded.image.shape),
                              self._default_export_folder(loaded), self)
        dialog.export_requested.connect(self.controller.export)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_tool_export_requested(self) -> None:
        """Export what the analysis tool that asked shows, through the core's export_arrays."""
        view, loaded = self.sender(), self.controller.loaded
        result = getattr(view, "result", None)
        if loaded is None or result is None:
            self.show_status("Nothing to export yet")
            return
        tool = next(name for name, widget in self.views.items() if widget is view)
        dialog = ToolExportDialog(tool, partial(tool_arrays, result), loaded.image, loaded.path,
                                  self._default_export_folder(loaded, tool), self)
        dialog.export_requested.connect(self.controller.export_tool)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    def _on_ab_compare_requested(self) -> None:
        """Open the A/B view on the Compare level shown: G[i] and each mode's result as candidates."""
        loaded, pyramid, level = self.controller.loaded, self.controller.pyramid, self.controller.level
        layers = {m: r.image for m, r in self.compare_view.results.items()
                  if loaded is not None and r.image_id == loaded.image_id and r.level == level}
        if pyramid is None or not layers:
            self.show_status("Nothing to compare yet: open an image and let the Compare tab fill")
            return
        if self.ab_view is None:
            self.ab_view = ABView(self.controller.runner, self)
            self.ab_view.setWindowFlag(Qt.WindowType.Window)
            self.ab_view.resize(1100, 800)
            self.linker.add(self.ab_view.panel.view_box)
            self.readout.add(self.ab_view.panel)
            self.ab_view.export_requested.connect(self.controller.export_tool)
            self.controller.image_loaded.connect(self.ab_view.on_source_changed)
            self.controller.level_changed.connect(self.ab_view.on_source_changed)
        first = next(iter(layers.values()))
        self.ab_view.set_candidates(level_candidates(pyramid.gaussian[level], layers), level=level,
                                    scale=first.scale, origin=first.origin)
        self.ab_view.set_export_source(loaded.image, loaded.path, self._default_export_folder(loaded, "ab"))
        self.ab_view.show()

    def _default_export_folder(self, loaded: LoadedImage, what: str = "pyramid") -> str:
        stem = os.path.splitext(loaded.name)[0] if loaded.path is not None else "sample"
        base = self.settings.last_export_folder or (os.path.dirname(loaded.path) if loaded.path else
                                                     os.path.expanduser("~"))
        return os.path.join(base, f"{stem}_{what}".replace(" ", "_"))

    def _on_view_action_triggered(self) -> None:
        action = self.sender()
        if isinstance(action, QAction):
            self.show_view(action.data())

    def _on_finer_requested(self) -> None:
        self.controller.step_level(-1)

    def _on_coarser_requested(self) -> None:
        self.controller.step_level(+1)

    def _on_fit_requested(self) -> None:
        if self._source_shape is not None:
            h, w = self._source_shape[:2]
            self.linker.fit(-0.5, -0.5, w, h)
        if self.tabs.currentWidget() is self.pyramid_view and self.pyramid_view.layout_kind != "panels":
            self.pyramid_view.mosaic.view_box.autoRange(padding=0.02)

    def _on_one_to_one_requested(self) -> None:
        self.linker.one_to_one()

    def _on_histograms_toggled(self, visible: bool) -> None:
        for panel in self.tabs.currentWidget().panels:
            panel.set_histogram_visible(visible)

    def _on_tab_changed(self, index: int) -> None:
        view = VIEWS[index]
        self.controller.set_view(view)
        self.actions["histograms"].blockSignals(True)
        panels = self.tabs.widget(index).panels
        self.actions["histograms"].setChecked(any(p.histogram.isVisible() for p in panels))
        self.actions["histograms"].blockSignals(False)

    def _on_shortcuts_requested(self) -> None:
        ShortcutsDialog(self.actions.values(), self).show()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if _first_local_file(event) is not None:
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        path = _first_local_file(event)
        if path is not None:
            event.acceptProposedAction()
            self.controller.open_path(path)

    def closeEvent(self, event: QCloseEvent) -> None:
        self.controller.shutdown()
        if self._persist:
            self.settings.last_view = VIEWS[self.tabs.currentIndex()]
            self.settings.save_window(self.saveGeometry(), self.saveState())
            self.settings.sync()
        super().closeEvent(event)

    # --- handlers: controller ---------------------------------------------------------------------

    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        self.banner.hide()
        self.setWindowTitle(f"{loaded.name} - Pyramid Explorer")
        self.central_stack.setCurrentWidget(self.tabs)
        self.pyramid_view.show_source(loaded)
        if loaded.path is not None and self._persist:
            self.settings.add_recent(loaded.path)
        self._source_shape = loaded.image.shape
        self.integrity_view.set_integer_storages_allowed(
            loaded.image.dtype == np.uint8, f"int16 and uint8_saturate bands need a uint8 image, this one is "
                                            f"{loaded.image.dtype}")
        h, w = loaded.image.shape[:2]
        self.linker.fit(-0.5, -0.5, w, h)

    def _on_stored_opened(self, image: StoredImage) -> None:
        self.banner.hide()
        self.setWindowTitle(f"{image.name} - Pyramid Explorer")
        self.central_stack.setCurrentWidget(self.lazy_view)
        for view in (self.pyramid_view, self.compare_view, self.unpool_view):  # let the last layers go
            view.show_message(f"{image.name} is a stored pyramid: it is shown level by level, not built")
        self.level_panel.set_stored(image)
        self._on_level_changed(self.controller.level)
        self.lazy_view.set_image(image)
        if self._persist:
            self.settings.add_recent(image.path)
        self._source_shape = image.shape
        self._lazy_fit_pending = True  # the view is laid out only now: fit again as it settles
        self._on_fit_requested()

    def _on_lazy_view_resized(self) -> None:
        if self._lazy_fit_pending:
            self._on_fit_requested()

    def _on_lazy_view_settled(self) -> None:
        """The user moved the view or its first region is drawn: resizes keep the camera from now on."""
        self._lazy_fit_pending = False

    def _on_pyramid_changed(self, pyramid: Pyramid) -> None:
        self.level_panel.set_pyramid(pyramid, max_levels(pyramid.gaussian[0].shape))
        self.equalizer_view.set_pyramid(pyramid)

    def _on_level_changed(self, level: int) -> None:
        self.level_panel.show_level(level)
        self.pyramid_view.select_mosaic_level(level)
        self.compare_view.set_level_text(f"Level {level}: G[{level + 1}] upsampled to the size of G[{level}]")

    def _on_level_view_ready(self, view: LevelView) -> None:
        self.pyramid_view.show_level(view, keep_limits=self.lock_contrast)

    def _on_mosaic_ready(self, mosaic: Mosaic) -> None:
        self.pyramid_view.show_mosaic(mosaic, self.controller.level)

    def _on_mode_ready(self, result: ModeResult) -> None:
        self.compare_view.show_mode(result, keep_limits=self.lock_contrast)

    def _on_deconv_ready(self, result: DeconvResult) -> None:
        self.compare_view.show_deconv(result, keep_limits=self.lock_contrast)

    def _on_export_finished(self, result: ExportResult) -> None:
        state = "cancelled after" if result.cancelled else "wrote"
        self.show_status(f"Export {state} {len(result.files)} files to {result.out_dir}")
        if self._persist:
            self.settings.last_export_folder = str(result.out_dir.parent)

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

    def _on_progress(self, text: str, done: int, total: int) -> None:
        self._status_is_progress = True
        self._status_text.setText(text)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def _on_busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy and self._status_is_progress:
            self.show_status("Ready")


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

