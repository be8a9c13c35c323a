"""The A/B view: two panels' arrays compared in one large view, at the shared camera.

Shows A, B, a swipe (A left of a draggable divider, B right of it), a flicker between A and B at a
rate the user sets (Space), or the difference A - B on its own diverging scale. It is given named
arrays of one shape and their placement in source coordinates (`set_candidates`); the comparison
itself (`ab_compare.compare_pair`) runs on the worker, and this widget only renders its result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QRectF, QSignalBlocker, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QPen
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDoubleSpinBox,
    QGraphicsItem,
    QGraphicsRectItem,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.ab_compare import ABRequest, ABResult, ab_arrays, compare_pair, level_candidates
from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_drawing import ReducedDrawing
from pyramid_explorer.app.tabs.shared import row
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.app.worker import JobRunner
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.display import Layer, quantize

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow

SHOWN = ("A", "B", "swipe", "difference")
"""What the view can show; flicker alternates "A" and "B" over any of them."""
_SHOWN_KEYS = {"A": "A", "B": "B", "swipe": "S", "difference": "D"}
_SHOWN_TEXT = {"A": "A", "B": "B", "swipe": "Swipe", "difference": "A - B"}
_CHANNEL = "ab"


def _rate_box() -> QDoubleSpinBox:
    """The flicker rate in Hz."""
    rate = QDoubleSpinBox()
    rate.setRange(0.5, 20.0)
    rate.setSingleStep(0.5)
    rate.setValue(2.0)
    rate.setSuffix(" Hz")
    rate.setToolTip("Flicker rate: how many times a second the view changes between A and B")
    return rate


def _clip_item() -> QGraphicsRectItem:
    """An invisible rectangle that clips A's image (its child) at the swipe divider."""
    clip = QGraphicsRectItem()
    clip.setPen(QPen(Qt.PenStyle.NoPen))
    clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape)
    clip.setZValue(1)
    return clip


def _divider_line() -> pg.InfiniteLine:
    """The swipe divider: a vertical line the user drags."""
    line = pg.InfiniteLine(angle=90, movable=True, pen=pg.mkPen("#ffcc00", width=2),
                           hoverPen=pg.mkPen("#ff6600", width=3))
    line.setZValue(2)
    return line


class ABView(QWidget):
    """Renders an `ABResult`; combos choose A and B among the candidates it is given.

    The panel (`panel`, an ImagePanel in source coordinates) draws B, or A, or the difference; for
    the swipe an image item of A above it is clipped at the divider (`divider`, a movable line).
    """

    export_requested = Signal(object)  # ToolExportRequest, from the Export dialog

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("A/B compare")
        self._runner = runner
        runner.busy_changed.connect(self._on_runner_busy_changed)
        self._candidates: dict[str, np.ndarray] = {}
        self._placement = (0, 1.0, (-0.5, -0.5))  # level, scale, origin
        self._source: tuple[np.ndarray, str | None, str] | None = None  # image, path, export folder
        self._result: ABResult | None = None
        self._shown = "swipe"
        self._centre_divider = True  # on the next result: a new placement starts the swipe in the middle
        self._flicker_shows_a = True

        self.a_combo, self.b_combo = QComboBox(), QComboBox()
        for combo in (self.a_combo, self.b_combo):
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
            combo.currentIndexChanged.connect(self._on_pair_chosen)
        self.shown_buttons: dict[str, QPushButton] = {}
        group = QButtonGroup(self)
        for shown in SHOWN:
            button = QPushButton(_SHOWN_TEXT[shown])
            button.setCheckable(True)
            button.setToolTip(f"Show {_SHOWN_TEXT[shown]} ({_SHOWN_KEYS[shown]})")
            group.addButton(button)
            self.shown_buttons[shown] = button
            button.toggled.connect(self._on_shown_toggled)
            self._key_action(_SHOWN_KEYS[shown], button.click)
        self.flicker = QPushButton("Flicker")
        self.flicker.setCheckable(True)
        self.flicker.setToolTip("Alternate A and B at the rate set (Space)")
        self.flicker.toggled.connect(self._on_flicker_toggled)
        self._key_action("Space", self.flicker.toggle)
        self.rate = _rate_box()
        self.rate.valueChanged.connect(self._on_rate_changed)
        self.export_button = QPushButton("Export...")
        self.export_button.setToolTip("Export what is shown: A, B or A - B as data, the swipe as a picture")
        self.export_button.clicked.connect(self._on_export_clicked)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self._on_flicker_tick)
        self._on_rate_changed(self.rate.value())

        self.panel = ImagePanel("A/B")
        self._clip = _clip_item()
        self.a_item = pg.ImageItem(axisOrder="row-major")
        self.a_item.setParentItem(self._clip)
        self.panel.view_box.addItem(self._clip)
        # A is drawn as the panel draws B: area-averaged zoomed out, crisp zoomed in
        canvas = self.panel.view_box.scene().views()[0]
        self._a_drawing = ReducedDrawing(canvas, self.a_item, self._redraw_overlay, self)
        self._a_layer: Layer | None = None
        self.panel.view_box.sigRangeChanged.connect(self._redraw_overlay)
        self.panel.view_box.sigResized.connect(self._redraw_overlay)
        self.divider = _divider_line()
        self.divider.sigPositionChanged.connect(self._on_divider_moved)
        self.panel.view_box.addItem(self.divider)
        self.panel.histogram.sigLevelsChanged.connect(self._on_panel_levels_changed)
        self.panel.histogram.sigLookupTableChanged.connect(self._on_panel_levels_changed)
        self.caption = QLabel("Choose A and B")
        self.caption.setWordWrap(True)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        bar = row("A", self.a_combo, "B", self.b_combo, *self.shown_buttons.values(), self.flicker, self.rate,
                  None, self.export_button)
        for index in (4, 5 + len(SHOWN)):  # a gap before the shown buttons and before Flicker
            bar.insertSpacing(index, 12)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(bar)
        layout.addWidget(self.panel, 1)
        layout.addWidget(self.caption)
        self.shown_buttons[self._shown].setChecked(True)

    def _key_action(self, key: str, slot) -> None:
        action = QAction(self)
        action.setShortcut(QKeySequence(key))
        action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        action.triggered.connect(slot)
        self.addAction(action)

    # --- what it is given ------------------------------------------------------------------------

    def set_candidates(self, candidates: Mapping[str, np.ndarray], *, level: int = 0,
                       scale: float | None = None, origin: tuple[float, float] | None = None,
                       a: str | None = None, b: str | None = None) -> None:
        """Offer `candidates` (name -> array, all of one shape) of pyramid `level` for A and B.

        `scale` (default 2**level) and `origin` (default minus half a pixel) place them in source
        coordinates as every panel does; `a`/`b` choose the pair (default: the first two, or the
        pair chosen before if both are still offered).
        """
        shapes = {np.shape(v) for v in candidates.values()}
        if len(shapes) > 1:
            raise ValueError(f"A/B candidates differ in shape: {sorted(shapes)}")
        scale = float(2**level if scale is None else scale)
        placement = (level, scale, (-scale / 2, -scale / 2) if origin is None else origin)
        self._centre_divider |= placement != self._placement or shapes != {self._shape()}
        self._placement = placement
        names = list(candidates)
        previous = self.a_combo.currentText(), self.b_combo.currentText()
        a = a if a is not None else previous[0] if previous[0] in names else names[0] if names else None
        b = b if b is not None else previous[1] if previous[1] in names else names[min(1, len(names) - 1)] \
            if names else None
        self._candidates = dict(candidates)
        for combo, choice in ((self.a_combo, a), (self.b_combo, b)):
            with QSignalBlocker(combo):
                combo.clear()
                combo.addItems(names)
                combo.setCurrentIndex(names.index(choice) if choice in names else -1)
        self._on_pair_chosen()

    def set_export_source(self, image: np.ndarray, source_path: str | None, folder: str) -> None:
        """The image the candidates were made from (for the export's manifest) and the default folder."""
        self._source = (image, source_path, folder)

    def on_source_changed(self, _change: object) -> None:
        """A new image or level: the candidates no longer answer what the window shows, so let them go."""
        self.set_candidates({})
        self.caption.setText("The image or level changed: choose A/B compare (Ctrl+B) again to compare it")
        self._render()

    def choose(self, a: str, b: str) -> None:
        """Compare candidate `a` with candidate `b`."""
        self.a_combo.setCurrentText(a)
        self.b_combo.setCurrentText(b)

    def show_state(self, shown: str) -> None:
        """Show one of SHOWN."""
        self.shown_buttons[shown].setChecked(True)

    # --- what it shows ---------------------------------------------------------------------------

    @property
    def result(self) -> ABResult | None:
        """The comparison drawn now (None while it is computed)."""
        return self._result

    @property
    def shown(self) -> str:
        """What is drawn: "A", "B", "swipe" or "difference" (during a flicker, "A" or "B")."""
        if self.flicker.isChecked():
            return "A" if self._flicker_shows_a else "B"
        return self._shown

    def divider_column(self) -> int:
        """How many columns of the image the swipe takes from A: those whose centre is left of the divider."""
        layer = self._result.a if self._result is not None else None
        if layer is None:
            return 0
        u = (self.divider.value() - layer.origin[0]) / layer.scale
        return min(max(math.ceil(u - 0.5), 0), layer.shape[1])

    def set_divider_column(self, column: float) -> None:
        """Put the divider at the left edge of image column `column` (fractions allowed)."""
        _, scale, origin = self._placement
        self.divider.setValue(origin[0] + column * scale)

    def shown_arrays(self, fmt: str) -> tuple[tuple[NamedArray, ...], dict]:
        """What is shown as named arrays for the export, and the manifest's parameters (see `ab_arrays`)."""
        if self._result is None:
            raise ValueError("nothing to export yet")
        return ab_arrays(self._result, self._placement[0], self.shown, self.flicker.isChecked(),
                         self.divider_column())

    # --- handlers --------------------------------------------------------------------------------

    def _on_pair_chosen(self) -> None:
        a, b = self.a_combo.currentText(), self.b_combo.currentText()
        self._result = None
        if not self._pair_offered():
            self._runner.cancel(_CHANNEL)
            self._render()
            return
        level, scale, origin = self._placement
        request = ABRequest(self._candidates, a, b, level, origin, scale)
        self.caption.setText(f"Computing {a} - {b}...")
        self._render()
        self._runner.submit(_CHANNEL, compare_pair, request, self._on_result, self._on_error)

    def _on_result(self, result: object) -> None:
        if not isinstance(result, ABResult):
            return
        self._result = result
        if self._centre_divider:
            self._centre_divider = False
            self.set_divider_column(result.a.shape[1] / 2)
        self.caption.setText(f"A = {result.a_name}, B = {result.b_name}: {result.stats.text()}; "
                             f"A - B drawn as the channel mean between ±{result.difference.limits[1]:.6g}")
        self._render()

    def _on_error(self, message: str) -> None:
        self.caption.setText(f"A/B comparison failed: {message}")

    def _on_runner_busy_changed(self, busy: bool) -> None:
        """The worker went idle without our result: the comparison was cancelled (Esc), so say so."""
        if not busy and self._result is None and self._pair_offered():
            self.caption.setText("A/B comparison cancelled: choose A or B again to compute it")
            self._render()

    def _pair_offered(self) -> bool:
        return all(combo.currentText() in self._candidates for combo in (self.a_combo, self.b_combo))

    def _on_shown_toggled(self, checked: bool) -> None:
        button = self.sender()
        if checked:
            self._shown = next(s for s, b in self.shown_buttons.items() if b is button)
            self._render()

    def _on_flicker_toggled(self, on: bool) -> None:
        self._flicker_shows_a = True
        self.timer.start() if on else self.timer.stop()
        self._render()

    def _on_flicker_tick(self) -> None:
        self._flicker_shows_a = not self._flicker_shows_a
        self._render()

    def _on_rate_changed(self, hz: float) -> None:
        self.timer.setInterval(round(1000 / (2 * hz)))  # one A and one B per period

    def _on_divider_moved(self) -> None:
        self._update_clip()

    def _on_panel_levels_changed(self) -> None:
        if self.a_item.isVisible() and self._result is not None:
            self._draw_overlay(self._result.a)

    def _on_export_clicked(self) -> None:
        if self._result is None or self._source is None:
            self.caption.setText("Nothing to export yet")
            return
        image, path, folder = self._source
        dialog = ToolExportDialog("A/B", self.shown_arrays, image, path, folder, self)
        dialog.export_requested.connect(self.export_requested)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.open()

    # --- drawing ---------------------------------------------------------------------------------

    def _shape(self) -> tuple[int, ...] | None:
        return next((np.shape(v) for v in self._candidates.values()), None)

    def _render(self) -> None:
        r = self._result
        if r is None:
            self.a_item.hide()
            self._a_layer = None
            self._a_drawing.clear()
            self.divider.hide()
            self.panel.show_message(self.caption.text(), title="A/B")
            return
        shown = self.shown
        layer = {"A": r.a, "B": r.b, "swipe": r.b, "difference": r.difference}[shown]
        title = {"A": f"A: {r.a_name}", "B": f"B: {r.b_name}", "swipe": f"A: {r.a_name} | B: {r.b_name}",
                 "difference": f"A - B: {r.a_name} - {r.b_name}"}[shown]
        self.panel.name = f"B: {r.b_name}" if shown == "swipe" else title  # the readout reads the layer
        self.panel.show_layer(layer, title, keep_limits=shown != "difference")
        swiping = shown == "swipe"
        self.divider.setVisible(swiping)
        self.a_item.setVisible(swiping)
        if swiping:
            self._draw_overlay(r.a)

    def _draw_overlay(self, layer: Layer) -> None:
        """A drawn with the panel's limits and colour map, above B, clipped at the divider."""
        limits = self.panel.limits()
        self._a_layer = layer
        self._a_drawing.set_codes(layer.pixels if limits == layer.limits else quantize(layer.display, limits))
        self.a_item.setLookupTable(self.panel.histogram.getLookupTable(n=256))
        self._redraw_overlay()
        self._update_clip()

    def _redraw_overlay(self, *_args: object) -> None:
        """Draw A for the panel's zoom now (its reduction, once made, redraws it too)."""
        if self._a_layer is None or not self.a_item.isVisible():
            return
        zoom = None if self.panel.exact_samples else self.panel.zoom()
        self._a_drawing.draw(self._a_layer, zoom, self.isVisible())

    def _update_clip(self) -> None:
        r = self._result
        if r is None:
            return
        (x0, y0), s = r.a.origin, r.a.scale
        h = r.a.shape[0] * s
        self._clip.setRect(QRectF(x0, y0, max(self.divider.value() - x0, 0.0), h))

    def closeEvent(self, event: QCloseEvent) -> None:
        self.flicker.setChecked(False)
        super().closeEvent(event)


class ABCompareOpener(QObject):
    """View > A/B compare (Ctrl+B) of `window`: opens the A/B view on the Compare level shown, with
    G[i] and each mode's result as candidates, linked to the window's camera and readout."""

    def __init__(self, window: MainWindow) -> None:
        super().__init__(window)
        self._window = window
        self.view: ABView | None = None  # made on first use

    def offer_on(self, panels: Iterable[QWidget]) -> None:
        """Offer the action in the context menu of `panels` (the Compare tab's)."""
        for panel in panels:
            panel.addAction(self._window.actions["ab_compare"])
            panel.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)

    def on_requested(self) -> None:
        w = self._window
        loaded, pyramid, level = w.controller.loaded, w.controller.pyramid, w.controller.level
        layers = {m: r.image for m, r in w.compare_tab().results.items()
                  if loaded is not None and r.image_id == loaded.image_id and r.level == level}
        if loaded is None or pyramid is None or not layers:
            w.show_status("Nothing to compare yet: open an image and let the Compare tab fill")
            return
        view = self.view if self.view is not None else self._make_view()
        first = next(iter(layers.values()))
        view.set_candidates(level_candidates(pyramid.gaussian[level], layers), level=level, scale=first.scale,
                            origin=first.origin)
        view.set_export_source(loaded.image, loaded.path, w.exports.default_folder(loaded, "ab"))
        view.show()

    def _make_view(self) -> ABView:
        w = self._window
        self.view = ABView(w.controller.runner, w)
        self.view.setWindowFlag(Qt.WindowType.Window)
        self.view.resize(1100, 800)
        w.linker.add(self.view.panel.view_box)
        w.readout.add(self.view.panel)
        self.view.export_requested.connect(w.controller.export_tool)
        w.controller.image_loaded.connect(self.view.on_source_changed)
        w.controller.level_changed.connect(self.view.on_source_changed)
        return self.view
