"""The overlay that dims a panel's out-of-date image and says what is being computed."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from pyramid_explorer.app.caption import elide_long_words


class StaleOverlay(QLabel):
    """Covers its parent (the panel's canvas) while `reason` is set: why what is drawn is out of date."""

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self.reason: str | None = None  # None: what is drawn is current
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setStyleSheet("background: rgba(20, 20, 20, 170); color: #ffffff; font-weight: bold;")
        self.hide()

    def mark(self, reason: str) -> None:
        """Dim the image under `reason`."""
        self.reason = reason
        self.fit()
        self.show()

    def set_current(self) -> None:
        """What is drawn is current again."""
        if self.reason is not None:
            self.reason = None
            self.hide()

    def fit(self, *_args: object) -> None:
        """Cover the whole parent (called when it is resized), the reason's words that are wider than
        it (a long file name) elided in their middle rather than cut at both edges."""
        parent = self.parentWidget()
        if parent is not None:
            self.setGeometry(parent.rect())
        if self.reason is not None:
            self.setText(elide_long_words(self.reason, self.fontMetrics(), max(1, self.width() - 8)))
