"""A panel's title that never cuts its numbers: "name: numbers" with the name elided when space is
short and the numbers on a line of their own, wrapped, when they do not fit beside it.

A new text may make the caption taller but never shorter (only a change of width may): titles
change as results and their numbers arrive, and a caption going from one line to two and back
would resize the image below it, and with it every panel of its grid row, each time.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

_GAP = 4
_MIN_NAME = 60  # below this, the name goes to a line of its own rather than shrink to "..."


def split_title(text: str) -> tuple[str, str]:
    """('name', 'numbers') of 'name: numbers'; ('text', '') when there is no ': '."""
    name, sep, numbers = text.partition(": ")
    return (name, numbers) if sep else (text, "")


class Caption(QWidget):
    """Two labels laid out by hand: `name_label` (elided) and `numbers_label` (never cut)."""

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.name_label = QLabel(self)
        self.numbers_label = QLabel(self)
        for label in (self.name_label, self.numbers_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self._text = ""
        self._width = -1  # the width the caption was last laid out for
        self.set_text(text)

    def text(self) -> str:
        return self._text

    def set_text(self, text: str) -> None:
        self._text = text
        self._relayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._relayout()

    def height_for(self, width: int) -> int:
        """The height the caption takes at `width` pixels (more lines when its numbers wrap)."""
        _numbers, rows = self._rows(width)
        return max(rect.bottom() + 1 for _label, rect in rows)

    def _rows(self, width: int) -> tuple[str, list[tuple[QLabel, QRect]]]:
        """The numbers' text as shown and where each label goes, at `width` pixels."""
        name, numbers = split_title(self._text)
        width = max(width, 1)
        fm = self.fontMetrics()
        line = fm.height()
        numbers_width = fm.horizontalAdvance(numbers)
        name_text = name + ":" if numbers else name
        if not numbers:
            return numbers, [(self.name_label, QRect(0, 0, width, line))]
        if numbers_width + _GAP + min(fm.horizontalAdvance(name_text), _MIN_NAME) <= width:
            name_width = width - numbers_width - _GAP
            return numbers, [(self.name_label, QRect(0, 0, name_width, line)),
                             (self.numbers_label, QRect(name_width + _GAP, 0, numbers_width + 1, line))]
        # the numbers wrap on lines of their own, between items ("PSNR 31 dB" stays whole)
        numbers = ", ".join(item.replace(" ", "\u00a0") if fm.horizontalAdvance(item + ",") < width
                            else item for item in numbers.split(", "))
        wrapped = fm.boundingRect(QRect(0, 0, width, 10 * line), Qt.TextFlag.TextWordWrap, numbers)
        return numbers, [(self.name_label, QRect(0, 0, width, line)),
                         (self.numbers_label, QRect(0, line, width, wrapped.height()))]

    def _relayout(self) -> None:
        name, _numbers = split_title(self._text)
        width = self.width()
        numbers, rows = self._rows(width)
        if len(rows) == 1:
            self.numbers_label.hide()
        name_text = name + ":" if numbers else name
        self.numbers_label.setWordWrap(len(rows) == 2 and rows[1][1].top() > 0)
        self.numbers_label.setText(numbers)
        name_rect = rows[0][1]
        fm = self.fontMetrics()
        self.name_label.setText(fm.elidedText(name_text, Qt.TextElideMode.ElideRight, name_rect.width()))
        for label, rect in rows:
            label.setGeometry(rect)
            label.show()
        height = max(rect.bottom() + 1 for _label, rect in rows)
        if width == self._width:  # the same width, another text: grow only
            height = max(height, self.height())
        self._width = width
        if self.height() != height:
            self.setFixedHeight(height)
