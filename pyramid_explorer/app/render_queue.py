"""Draws new layers one panel per event-loop turn, so the GUI thread never stalls on many at once.

pyqtgraph converts an image to a QImage when it is first painted; a 4K float image takes tens of
milliseconds, and the ten panels of the Compare view filled from the cache at once would block the
GUI thread for hundreds. The queue hands each panel its layer in a turn of its own and paints that
panel right away; a newer layer for a panel replaces one still waiting, so only the last is drawn,
and a layer queued before its panel was marked out of date (a new image, level or setting) is dropped.
Only the pixels wait: a panel's title is set when its layer is queued, so a title always tells the
panel's work as it is now, and a cancel (which renames "computing" to "cancelled" in the titles)
needs nothing from the queue.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.display import Layer


class RenderQueue(QObject):
    drained = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._pending: dict[ImagePanel, tuple[Layer, bool, int]] = {}  # layer, keep_limits, generation
        self._timer = QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._on_timeout)

    @property
    def empty(self) -> bool:
        return not self._pending

    def show(self, panel: ImagePanel, layer: Layer, title: str, *, keep_limits: bool = False) -> None:
        """Title `panel` now and show `layer` in it soon (a layer it already shows: the title only)."""
        panel.set_title(title)
        if layer is panel.layer and panel not in self._pending:
            panel.show_layer(layer)  # drawn already: current again (nothing to convert)
            return
        self._pending.pop(panel, None)  # re-queue at the end: the newest request is drawn last
        self._pending[panel] = (layer, keep_limits, panel.generation)
        if not self._timer.isActive():
            self._timer.start()

    def discard(self, panel: ImagePanel) -> None:
        self._pending.pop(panel, None)

    def _on_timeout(self) -> None:
        if not self._pending:
            self._timer.stop()
            self.drained.emit()
            return
        panel = next(iter(self._pending))
        layer, keep_limits, generation = self._pending.pop(panel)
        if generation != panel.generation:
            return  # made for a state that has changed since: the panel waits for its new layer
        panel.show_layer(layer, keep_limits=keep_limits)  # under the title it has now
        if panel.isVisible():
            panel.paint_now()
