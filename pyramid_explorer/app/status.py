"""The status bar's contents: one message, the running job's progress, and its Cancel button."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar


class StatusLine:
    """A message that stays until the next one, or the running job's progress (shown while busy).

    When the job ends, a progress text gives way to "Ready"; a message does not.
    """

    def __init__(self, bar: QStatusBar) -> None:
        self._text = QLabel()
        self._is_progress = False
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running computation (Esc)")
        bar.addWidget(self._text, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.on_busy_changed(False)

    def show(self, text: str) -> None:
        self._is_progress = False
        self._text.setText(text)

    def text(self) -> str:
        return self._text.text()

    def on_progress(self, text: str, done: int, total: int) -> None:
        self._is_progress = True
        self._text.setText(text)
        self.progress.setRange(0, max(total, 1))
        self.progress.setValue(done)

    def on_busy_changed(self, busy: bool) -> None:
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        if not busy and self._is_progress:
            self.show("Ready")
