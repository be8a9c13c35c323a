"""A panel's title that never cuts its numbers: "name: numbers" with the name elided when space is
short and the numbers, each item whole ("PSNR 31.25 dB" never breaks), beside it or wrapped on the
lines below.

A new text may make the caption taller but never shorter (only a change of width, or `fit_text` once
the work is done, may): titles change as results and their numbers arrive, and a caption going from one
line to two and back would resize the image below it, and with it every panel of its grid row, each
time.
"""

from __future__ import annotations

from PySide6.QtCore import QRect, Qt, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

_GAP = 4
_MIN_NAME = 60  # below this, the name goes to a line of its own rather than shrink to "..."
_NBSP = "\u00a0"


def split_title(text: str) -> tuple[str, str]:
    """('name', 'numbers') of 'name: numbers'; ('text', '') when there is no ': '."""
    name, sep, numbers = text.partition(": ")
    return (name, numbers) if sep else (text, "")


def elide_long_words(text: str, fm: QFontMetrics, width: int) -> str:
    """`text` with each word wider than `width` elided in its middle ("a_photo...camera.png"): word
    wrap breaks only between words, so a longer one (a file name) would be cut at the edge."""
    return " ".join(word if fm.horizontalAdvance(word) <= width
                    else fm.elidedText(word, Qt.TextElideMode.ElideMiddle, width) for word in text.split(" "))


def _whole_items(numbers: str, fm: QFontMetrics, width: int) -> list[str]:
    """The numbers' items ("PSNR 31 dB", "SSIM 0.8") with non-breaking spaces inside each item
    that fits the width on a line (a longer one may still break between its words, rather than be
    cut, and a word longer than the line is elided in its middle)."""
    items = numbers.split(", ")
    ends = [item + ("," if n < len(items) - 1 else "") for n, item in enumerate(items)]
    return [end.replace(" ", _NBSP) if fm.horizontalAdvance(end) <= width
            else elide_long_words(end, fm, width) for end in ends]


class Caption(QWidget):
    """Three labels laid out by hand: `name_label` (elided), and the numbers (never cut): those that
    fit beside the name in `lead_label`, the rest in `numbers_label` on the lines below.

    `set_floor` makes it at least as tall as another (a grid gives its captions one height, so its
    images get one size and one zoom); `natural_height_changed` says when its own height changed."""

    natural_height_changed = Signal()

    def __init__(self, text: str = "", parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.name_label = QLabel(self)
        self.lead_label = QLabel(self)
        self.numbers_label = QLabel(self)
        for label in (self.name_label, self.lead_label, self.numbers_label):
            label.setTextFormat(Qt.TextFormat.PlainText)
        self._text = ""
        self._width = -1  # the width the caption was last laid out for
        self._natural = 0  # the height its own text takes (grow-only at one width)
        self._floor = 0
        self.set_text(text)

    def text(self) -> str:
        return self._text

    def shown_numbers(self) -> str:
        """The numbers as drawn (beside the name and below it), with plain spaces."""
        parts = [label.text() for label in (self.lead_label, self.numbers_label) if label.isVisibleTo(self)]
        return " ".join(p for p in parts if p).replace(_NBSP, " ")

    @property
    def natural_height(self) -> int:
        """The height its own text takes, without the floor."""
        return self._natural

    def set_floor(self, height: int) -> None:
        """Be at least `height` pixels tall (the text stays at the top)."""
        if height != self._floor:
            self._floor = height
            self._relayout()

    def set_text(self, text: str) -> None:
        self._text = text
        self._relayout()

    def fit_text(self) -> None:
        """Take the height of the text shown now, shorter too: for when the panel's work is done, so
        the lines a longer, earlier text ("computing for <name>...") needed go in one relayout."""
        self._width = -1
        self._relayout()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._relayout()

    def height_for(self, width: int) -> int:
        """The height the caption takes at `width` pixels (more lines when its numbers wrap)."""
        return max(rect.bottom() + 1 for _label, _text, rect in self._rows(width))

    def _rows(self, width: int) -> list[tuple[QLabel, str, QRect]]:
        """Each label shown, its text and where it goes, at `width` pixels."""
        name, numbers = split_title(self._text)
        width = max(width, 1)
        fm = self.fontMetrics()
        line = fm.height()
        if not numbers:
            return [(self.name_label, name, QRect(0, 0, width, line))]
        name_text = name + ":"
        numbers_width = fm.horizontalAdvance(numbers)
        if numbers_width + _GAP + min(fm.horizontalAdvance(name_text), _MIN_NAME) <= width:
            name_width = width - numbers_width - 1 - _GAP
            return [(self.name_label, name_text, QRect(0, 0, name_width, line)),
                    (self.numbers_label, numbers, QRect(name_width + _GAP, 0, numbers_width + 1, line))]
        items = _whole_items(numbers, fm, width)
        name_width = fm.horizontalAdvance(name_text) + 1  # + 1: drawn at exactly its advance, it elides
        lead = 0  # the leading items that fit beside the whole name, on the first line
        while lead < len(items) and (name_width + _GAP + fm.horizontalAdvance(" ".join(items[:lead + 1]))
                                     < width):
            lead += 1
        rest = " ".join(items[lead:])
        wrapped = fm.boundingRect(QRect(0, 0, width, 10 * line), Qt.TextFlag.TextWordWrap, rest)
        rows = [(self.name_label, name_text, QRect(0, 0, min(name_width, width), line))]
        if lead:
            beside = " ".join(items[:lead])
            rows.append((self.lead_label, beside,
                         QRect(name_width + _GAP, 0, fm.horizontalAdvance(beside) + 1, line)))
        rows.append((self.numbers_label, rest, QRect(0, line, width, wrapped.height())))
        return rows

    def _relayout(self) -> None:
        width = self.width()
        rows = self._rows(width)
        fm = self.fontMetrics()
        shown = {label for label, _text, _rect in rows}
        for label in (self.name_label, self.lead_label, self.numbers_label):
            if label not in shown:
                label.hide()
                label.clear()
        for label, text, rect in rows:
            label.setWordWrap(label is self.numbers_label and rect.top() > 0)
            if label is self.name_label:
                text = fm.elidedText(text, Qt.TextElideMode.ElideRight, rect.width())
            label.setText(text)
            label.setGeometry(rect)
            label.show()
        height = max(rect.bottom() + 1 for _label, _text, rect in rows)
        if width == self._width:  # the same width, another text: grow only
            height = max(height, self._natural)
        self._width = width
        changed = height != self._natural
        self._natural = height
        if self.height() != max(height, self._floor):
            self.setFixedHeight(max(height, self._floor))
        if changed:
            self.natural_height_changed.emit()


def even_captions(captions: list[Caption]) -> None:
    """Every caption as tall as the tallest's own text, so the images below a row of them get one height."""
    tallest = max(caption.natural_height for caption in captions)
    for caption in captions:
        caption.set_floor(tallest)
