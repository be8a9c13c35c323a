"""Hover readout: the source coordinate and, for every visible panel, its pixel and values there."""

from __future__ import annotations

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel

from pyramid_explorer.app.image_panel import ImagePanel


class PixelReadout(QObject):
    """Listens to the panels' hover signals and writes one line per visible panel into a label."""

    def __init__(self, label: QLabel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._label = label
        self._panels: list[ImagePanel] = []
        self._hover: tuple[ImagePanel, float, float] | None = None  # where the mouse last was

    def add(self, panel: ImagePanel) -> None:
        self._panels.append(panel)
        panel.hovered.connect(self._on_hovered)

    def text_at(self, source: ImagePanel, x: float, y: float) -> str:
        """The readout for view coordinate (x, y) of panel `source`."""
        if not source.linked:
            return source.value_text(x, y) or f"{source.name}: outside the image"
        here = f"source ({x:.1f}, {y:.1f})"
        lines = [text for panel in self._panels if panel.linked and panel.isVisible()
                 if (text := panel.value_text(x, y)) is not None]
        # a new image or level may leave the last hover outside every image: say so, not an empty list
        return "\n".join([here, *lines]) if lines else f"{here}: outside the image"

    def refresh(self) -> None:
        """Redo the readout where the mouse last was: a panel's content changed (image, level,
        difference), so its values there may have."""
        if self._hover is not None:
            self._label.setText(self.text_at(*self._hover))

    def _on_hovered(self, x: float, y: float) -> None:
        panel = self.sender()
        if isinstance(panel, ImagePanel):
            self._hover = (panel, x, y)
            self._label.setText(self.text_at(panel, x, y))
