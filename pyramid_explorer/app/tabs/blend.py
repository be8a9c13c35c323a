"""The Blend tab: the open image and a second one joined under a mask, band by band (Burt & Adelson's
multiresolution spline) next to the plain alpha blends, with the selected level's band and mask."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pyramid_explorer.app.dialogs import ask_open_path
from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.panel_grid import PanelGrid
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.app.tabs.base import ToolTab, show_message_in
from pyramid_explorer.app.tabs.shared import export_button, side_column
from pyramid_explorer.app.wrapped_label import WrappedLabel
from pyramid_explorer.core.blend import FITS
from pyramid_explorer.jobs import LoadedImage
from pyramid_explorer.tools.blend import (
    BUNDLED_SECOND,
    FIT_TIPS,
    FIT_TITLES,
    MASKS,
    BlendOptions,
    BlendResult,
    clip_applies,
)

DEFAULTS = BlendOptions()
PANELS = ("first", "second", "spline", "feathered", "hard", "mask", "band", "mask_level")
"""The panels in grid order, two a row (the images are wide): the inputs, the blends and the mask, and the
selected level's band and mask."""
PANEL_NAMES = {"first": "A (the open image)", "second": "B (the second image)",
               "spline": "multiresolution blend", "feathered": "feathered alpha blend",
               "hard": "unfeathered alpha blend", "mask": "mask (white takes A)", "band": "band of the blend",
               "mask_level": "mask at the level"}
"""What the panels' titles call them while they have no result (cleared, computing); the code names stay
the panels' names (exports, the readout)."""


def panel_titles(result: BlendResult) -> dict[str, str]:
    i, o = result.level, result.options
    spline = "multiresolution blend" + (" (uint8 bands)" if result.clip_note.startswith("uint8") else "")
    return {"first": "A: the open image", "second": "B: second image, fitted",
            "mask": "mask (white takes A)", "band": f"band {i} of the blend, alone", "spline": spline,
            "hard": "alpha blend, unfeathered mask", "feathered": f"alpha blend, feathered {o.feather} px",
            "mask_level": f"GM[{i}]: mask at level {i}"}


class BlendTab(ToolTab):
    """Renders BlendResult; emits the second image, fit, mask, feather width and the tutorial's clipping."""

    def __init__(self, queue: RenderQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._queue = queue
        self._result: BlendResult | None = None
        self.image_panels = {name: ImagePanel(name, histogram=False) for name in PANELS}
        for name, panel in self.image_panels.items():
            panel.title_name = PANEL_NAMES[name]
            panel.set_title(PANEL_NAMES[name])
        for name in ("band", "mask_level"):  # the panel's title is its tooltip once drawn: say it here too
            self.image_panels[name].setToolTip("Choose the level in the Levels panel to see each band")
        self.level_hint = WrappedLabel("Level i (the Levels panel): what band i adds to the multiresolution "
                                 "blend, collapsed alone, and the mask's Gaussian level GM[i] that "
                                 "weighted it.")

        self.second_label = WrappedLabel(f"Second image: {BUNDLED_SECOND} (bundled)")
        self.open_second_button = QPushButton("Open second image...")
        self.open_second_button.clicked.connect(self._on_open_second)
        self.bundled_button = QPushButton(f"Use the bundled {BUNDLED_SECOND}")
        self.bundled_button.clicked.connect(self._on_bundled_clicked)
        self.fit_buttons: dict[str, QRadioButton] = {}
        self._fit_group = QButtonGroup(self)
        for index, fit in enumerate(FITS):
            button = QRadioButton(FIT_TITLES[fit])
            button.setToolTip(FIT_TIPS[fit])
            self._fit_group.addButton(button, index)
            self.fit_buttons[fit] = button
        self.fit_buttons[DEFAULTS.fit].setChecked(True)
        # bound methods only (no lambdas): a lambda holding the tab makes a cycle the garbage collector
        # may free on a worker thread, deleting Qt objects there
        self._fit_group.idToggled.connect(self._on_fit_toggled)
        self.fit_note = WrappedLabel()
        second_group = QGroupBox("Second image (B)")
        second_layout = QVBoxLayout(second_group)
        for w in (self.second_label, self.open_second_button, self.bundled_button, *self.fit_buttons.values(),
                  self.fit_note):
            second_layout.addWidget(w)

        self.mask_box = QComboBox()
        for name, title in MASKS.items():
            self.mask_box.addItem(title, name)
        self.mask_box.currentIndexChanged.connect(self._on_mask_chosen)
        self.open_mask_button = QPushButton("Open mask image...")
        self.open_mask_button.clicked.connect(self._on_open_mask)
        self.feather = QSpinBox()
        self.feather.setRange(0, 512)
        self.feather.setValue(DEFAULTS.feather)
        self.feather.setSuffix(" px")
        self.feather.setToolTip("Width over which the feathered alpha blend's mask rises from 2% to 98%")
        self.feather.valueChanged.connect(self._on_feather_changed)
        self.mask_note = WrappedLabel()
        feather_row = QHBoxLayout()
        feather_row.addWidget(QLabel("Feather width"))
        feather_row.addWidget(self.feather)
        mask_group = QGroupBox("Mask: where A shows")
        mask_layout = QVBoxLayout(mask_group)
        mask_layout.addWidget(self.mask_box)
        mask_layout.addWidget(self.open_mask_button)
        mask_layout.addLayout(feather_row)
        mask_layout.addWidget(self.mask_note)

        self.clip = QCheckBox("The tutorial's uint8 bands")
        self.clip.setToolTip("Laplacian bands made with cv2.subtract on uint8 levels, as a popular OpenCV "
                             "tutorial does: every negative value becomes 0")
        clip_explained = WrappedLabel("A popular OpenCV tutorial subtracts uint8 levels: every negative "
                                      "detail is clipped to 0.")
        self.clip.toggled.connect(self._on_clip_toggled)
        self.clip_note = WrappedLabel()
        self.error = WrappedLabel()
        self.error.setStyleSheet("color: #9c1c14")
        self.export_button = export_button(self)

        side = QVBoxLayout()
        side.addWidget(second_group)
        side.addWidget(mask_group)
        side.addWidget(self.clip)
        side.addWidget(clip_explained)
        side.addWidget(self.clip_note)
        side.addWidget(self.error)
        side.addWidget(self.level_hint)
        side.addStretch(1)
        side.addWidget(self.export_button)
        self.grid = PanelGrid([self.image_panels[name] for name in PANELS])
        side_column(self, side, 235, scroll=True).addWidget(self.grid, 1)

    @property
    def panels(self) -> list[ImagePanel]:
        return list(self.image_panels.values())

    @property
    def result(self) -> BlendResult | None:
        return None if self._result is None or self._result.error else self._result

    def open_second(self, path: str) -> None:
        self.setting_changed.emit("blend_second", path)

    def open_mask(self, path: str) -> None:
        """Use the image at `path` as the mask (and choose the mask image)."""
        self.setting_changed.emit("blend_mask_path", path)
        self.mask_box.setCurrentIndex(self.mask_box.findData("image"))

    def show_result(self, result: BlendResult, keep_limits: bool = False) -> None:
        self._result = result
        self.error.setText(result.error)
        self.export_button.setEnabled(not result.error)
        if self.clip.isEnabled():
            self.clip_note.setText(result.clip_note)
        if result.error:
            show_message_in(self._queue, self.image_panels.values(), result.error, own_titles=True)
            self._queue.show(self.image_panels["first"], result.first, "A: the open image")
            return
        self.fit_note.setText(result.fit_note)
        self.mask_note.setText(result.mask_note)
        titles = panel_titles(result)
        for name, panel in self.image_panels.items():
            self._queue.show(panel, getattr(result, name), titles[name], keep_limits=keep_limits)

    def show_setting(self, name: str, value: object) -> None:
        if name == "blend_second":
            where = f"{BUNDLED_SECOND} (bundled)" if value is None else str(value)
            self.second_label.setText(f"Second image: {where}")
        elif name == "blend_fit" and isinstance(value, str):
            self._quietly(self.fit_buttons[value], lambda: self.fit_buttons[value].setChecked(True))
        elif name == "blend_mask":
            self._quietly(self.mask_box, lambda: self.mask_box.setCurrentIndex(self.mask_box.findData(value)))
        elif name == "blend_feather" and isinstance(value, int):
            self._quietly(self.feather, lambda: self.feather.setValue(value))
        elif name == "blend_clip" and isinstance(value, bool):
            self._quietly(self.clip, lambda: self.clip.setChecked(value))

    def on_image_loaded(self, loaded: LoadedImage) -> None:
        uint8 = clip_applies(loaded.image.dtype)
        self.clip.setEnabled(uint8)
        self.clip_note.setText("" if uint8 else "The tutorial's uint8 clipping applies to uint8 images "
                                                f"only; this one is {loaded.image.dtype}.")

    @staticmethod
    def _quietly(widget: QWidget, change) -> None:
        widget.blockSignals(True)
        change()
        widget.blockSignals(False)

    def _on_bundled_clicked(self) -> None:
        self.setting_changed.emit("blend_second", None)

    def _on_fit_toggled(self, index: int, checked: bool) -> None:
        if checked:
            self.setting_changed.emit("blend_fit", FITS[index])

    def _on_mask_chosen(self) -> None:
        self.setting_changed.emit("blend_mask", self.mask_box.currentData())

    def _on_feather_changed(self, value: int) -> None:
        self.setting_changed.emit("blend_feather", value)

    def _on_clip_toggled(self, checked: bool) -> None:
        self.setting_changed.emit("blend_clip", checked)

    def _on_open_second(self) -> None:
        path = ask_open_path(self, "Open the second image")
        if path is not None:
            self.open_second(path)

    def _on_open_mask(self) -> None:
        path = ask_open_path(self, "Open a mask image")
        if path is not None:
            self.open_mask(path)
