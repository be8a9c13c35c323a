"""Draws new layers one panel per event-loop turn, so the GUI thread never stalls on many at once.

pyqtgraph converts an image to a QImage when it is first painted; a 4K float image takes tens of
milliseconds, and the ten panels of the Compare view filled from the cache at once would block the
GUI thread for hundreds. The queue hands each panel its layer in a turn of its own and paints that
panel right away; a newer layer for a panel replaces one still waiting, so only the last is drawn.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.display import Layer


class RenderQueue(QObject):
    drained = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: dict[ImagePanel, tuple[Layer, str, bool]] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_timeout)

    @property
    def empty(self) -> bool:
        return not self._pending

    def show(self, panel: ImagePanel, layer: Layer, title: str, *, keep_limits: bool = False) -> None:
        """Show `layer` in `panel` soon; a layer the panel already shows only updates the title now."""
        if layer is panel.layer and panel not in self._pending:
            panel.set_title(title)
            return
        self._pending.pop(panel, None)  # re-queue at the end: the newest request is drawn last
        self._pending[panel] = (layer, title, keep_limits)
        if not self._timer.isActive():
            self._timer.start()

    def discard(self, panel: ImagePanel) -> None:
        self._pending.pop(panel, None)

    def mark_cancelled(self, word: str = "cancelled") -> None:
        """The work behind the queued titles ended without a result (`word`: cancelled, or failed):
        what they said is "computing" is not."""
        self._pending = {panel: (layer, title.replace("computing", word), keep)
                         for panel, (layer, title, keep) in self._pending.items()}

    def _on_timeout(self) -> None:
        if not self._pending:
            self._timer.stop()
            self.drained.emit()
            return
        panel = next(iter(self._pending))
        layer, title, keep_limits = self._pending.pop(panel)
        panel.show_layer(layer, title, keep_limits=keep_limits)
        if panel.isVisible():
            panel.paint_now()
