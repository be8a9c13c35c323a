"""The Compare tab: one panel per upsampling mode, and the free transposed convolution with its kernel."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import DeconvControls
from pyramid_explorer.app.wrapped_label import WrappedLabel
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.display import Layer, mode_label
from pyramid_explorer.tools.compare import DeconvResult, ModeResult
from pyramid_explorer.tools.stored import StoredImage


def metrics_text(psnr: float | None, ssim: float | None, crop: str = "") -> str:
    """'PSNR 31.3 dB, SSIM 0.841' and `crop` (' (crop)': they measure a crop), with the pending and
    undefined cases spelled out."""
    if psnr is None:
        return "PSNR/SSIM computing..."
    p = "PSNR inf (identical)" if math.isinf(psnr) else f"PSNR {psnr:.2f} dB"
    s = "SSIM n/a (< 11 px)" if ssim is None or math.isnan(ssim) else f"SSIM {ssim:.3f}"
    return f"{p}, {s}{crop}"


class CompareTab(ToolTab):
    """Renders ModeResult/DeconvResult objects; emits the user's choices."""

    difference_toggled = Signal(bool)

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self.mode_panels = {mode: ImagePanel(mode, histogram=False) for mode in MODES}
        for mode, panel in self.mode_panels.items():
            panel.title_name = mode_label(mode)
            panel.set_tip(f"mode: {mode} (its name on the command line and in exports)")
        self.deconv_panel = ImagePanel("transposed conv", histogram=False)
        self.deconv_panel.title_name = "Transposed conv"
        self.controls = DeconvControls()
        self.difference = QCheckBox("Show difference from G[i]")
        self.difference.toggled.connect(self._on_difference_toggled)
        self._modes: dict[str, ModeResult] = {}
        self._deconv: DeconvResult | None = None
        self._level_label = WrappedLabel()  # wraps rather than widen the tab (a large image's numbers)
        self._level_text = ""
        self._crop: tuple[int, ...] | None = None  # (height, width) compared when it is a crop

        self.grid = PanelGrid(self.panels)
        side = QVBoxLayout()
        side.addWidget(self.controls)
        side.addStretch(1)
        bar = QHBoxLayout()
        bar.addWidget(self._level_label, 1)
        bar.addWidget(self.difference)
        body = QHBoxLayout()
        body.addWidget(self.grid, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addLayout(body, 1)
        self._level_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.controls.settings_changed.connect(self._on_deconv_edited)
        self.set_histograms_visible(False)

    @property
    def panels(self) -> list[ImagePanel]:
        return [*self.mode_panels.values(), self.deconv_panel]

    def set_histograms_visible(self, visible: bool) -> None:
        for panel in self.panels:
            panel.set_histogram_visible(visible)
        self.grid.relayout()

    def set_level_text(self, text: str) -> None:
        self._level_text = text
        self._show_header()

    def _show_header(self) -> None:
        h, w = self._crop or (0, 0)
        crop = "" if self._crop is None else f"; compared on the centre {w} x {h} crop"
        self._level_label.setText(self._level_text + crop)
        tip = "A level too large for the memory budget is compared on a centred crop: the images and their "
        self._level_label.setToolTip(tip + "PSNR/SSIM cover that crop only" if crop else "")

    def _note_crop(self, image: Layer, cropped: bool) -> str:
        """The panel's marker of a comparison made on a crop (' (crop)'), the crop's size in the header."""
        crop = tuple(image.shape[:2]) if cropped else None
        if crop != self._crop:
            self._crop = crop
            self._show_header()
        return " (crop)" if cropped else ""

    @property
    def results(self) -> dict[str, ModeResult]:
        """The mode results drawn now, by mode."""
        return dict(self._modes)

    @property
    def deconv_result(self) -> DeconvResult | None:
        """The transposed-convolution result drawn now."""
        return self._deconv

    @property
    def showing_difference(self) -> bool:
        return self.difference.isChecked()

    def show_mode(self, result: ModeResult, *, keep_limits: bool = False) -> None:
        self._modes[result.mode] = result
        i, crop = result.level, self._note_crop(result.image, result.cropped)
        name = mode_label(result.mode) + (f" of maxpool(G[{i}])" if result.mode == "unpool" else "")
        panel = self.mode_panels[result.mode]
        self._show(panel, result.mode, name, result.image, result.difference, True, i,
                   metrics_text(result.psnr, result.ssim, crop), keep_limits)

    def show_deconv(self, result: DeconvResult, *, keep_limits: bool = False) -> None:
        self._deconv = result
        s, i = result.settings, result.level
        crop = " (crop)" if result.cropped else ""
        if s.stride != 2:
            metrics = "difference and metrics need stride 2"
        else:
            metrics = metrics_text(result.psnr, result.ssim, crop)
        self._show(self.deconv_panel, "deconv", f"Transposed conv k={s.kernel_size} s={s.stride} {s.kernel}",
                   result.image, result.difference, s.stride == 2, i, metrics, keep_limits)

    def _show(self, panel: ImagePanel, key: str, name: str, image: Layer, difference: Layer | None,
              has_difference: bool, level: int, metrics: str, keep_limits: bool) -> None:
        """Draw the image, or the difference when asked for and the panel has one: "computing" in the
        panel until it is made (never the image in its place)."""
        minus = ""
        if self.showing_difference and has_difference:
            mean = " (channel mean)" if len(image.shape) == 3 else ""
            minus = f" - G[{level}]{mean}"
        panel.name = f"{key}[{level}]{minus}"
        title = f"{name}{minus}: {metrics}"
        layer = difference if minus else image
        if layer is None:
            show_message_in(self._queue, [panel], f"computing the difference from G[{level}]...", title)
        else:
            self._queue.show(panel, layer, title, keep_limits=keep_limits)

    def show_unavailable(self, mode: str, text: str) -> None:
        """`text` instead of the panel of a mode that cannot be computed at this level."""
        self._modes.pop(mode, None)
        show_message_in(self._queue, [self.mode_panels[mode]], text, f"{mode_label(mode)}: not available")

    def show_message(self, text: str) -> None:
        self._modes.clear()
        self._deconv = None
        show_message_in(self._queue, self.panels, text, own_titles=True)

    def _on_difference_toggled(self, checked: bool) -> None:
        for result in list(self._modes.values()):
            self.show_mode(result)
        if self._deconv is not None:
            self.show_deconv(self._deconv)
        self.difference_toggled.emit(checked)

    def show_result(self, result: ModeResult | DeconvResult, keep_limits: bool) -> None:
        if isinstance(result, ModeResult):
            self.show_mode(result, keep_limits=keep_limits)
        else:
            self.show_deconv(result, keep_limits=keep_limits)

    def show_setting(self, name: str, value: object) -> None:
        if name == "deconv":
            self.controls.set_settings(value)

    def on_stored_opened(self, image: StoredImage) -> None:
        self.show_message(f"{image.name} is a stored pyramid: it is shown level by level, not built")

    def on_level_changed(self, level: int) -> None:
        self._crop = None  # said again by the new level's results
        self.set_level_text(f"Level {level}: G[{level + 1}] upsampled to the size of G[{level}]")

    def _on_deconv_edited(self, settings: object) -> None:
        self.setting_changed.emit("deconv", settings)
