"""Wrapped texts that are never cut: a word-wrapped label never shorter than its text, and one height for
a row of texts in several columns."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QEvent, QObject
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QWidget


class WrappedLabel(QLabel):
    """A word-wrapped QLabel whose least height is what its text takes at its width, kept so as the text
    or the width changes. A layout gives a wrapped label the height of its text at one width (its size
    hint's), so in a narrower window the last lines were cut; with this the tab's least height grows
    instead (and a window too low for it shows it)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(text, parent)
        self.setWordWrap(True)
        self._laid_out = False  # before its first resize its width is not the layout's: no fitting yet


    def setText(self, text: str) -> None:
        super().setText(text)
        self._fit()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._laid_out = True
        self._fit()

    def _fit(self) -> None:
        if self._laid_out:
            self.setMinimumHeight(max(0, self.heightForWidth(self.width())) if self.text() else 0)


class SameHeight(QObject):
    """Keeps `widgets` (one row's texts, one in each column) as tall as the tallest of them needs at its
    width, so whatever comes below them starts at one height in every column. Recomputed when one is
    resized; call `update` after changing their texts."""

    def __init__(self, widgets: Sequence[QWidget], parent: QWidget) -> None:
        super().__init__(parent)
        self._widgets = list(widgets)
        self._top = parent
        for widget in self._widgets:
            widget.installEventFilter(self)

    def update(self) -> None:
        shown = [w for w in self._widgets if w.isVisibleTo(self._top)]
        if not shown:
            return
        height = max(w.heightForWidth(w.width()) if w.hasHeightForWidth() else w.sizeHint().height()
                     for w in shown)
        for widget in shown:
            if widget.minimumHeight() != height or widget.maximumHeight() != height:
                widget.setFixedHeight(max(height, 0))

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() == QEvent.Type.Resize:
            self.update()
        return False
