"""The error strip above the views: one line, selectable, dismissable, with an optional offer to act."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QToolButton, QWidget


class Banner(QFrame):
    """A non-modal one-line error strip above the views; the app keeps working under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.setStyleSheet("#errorBanner { background: #fde2e1; border: 1px solid #e0a09c; }"
                           "QLabel { color: #7a1712; }")
        self.label = QLabel()
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("x")
        close.setAutoRaise(True)
        close.setToolTip("Dismiss")
        close.clicked.connect(self.hide)
        self.action = QPushButton()  # an offer to act on the error (e.g. open a preview); hidden if none
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 2, 2, 2)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action)
        layout.addWidget(close)
        self.action.hide()
        self.hide()

    def show_error(self, text: str) -> None:
        self.label.setText(text)
        self.action.hide()
        self.show()

    def offer(self, text: str) -> None:
        """Show the action button with `text` under the current error."""
        self.action.setText(text)
        self.action.show()
