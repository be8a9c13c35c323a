"""The status bar's contents: one message, the running job's progress, and its Cancel button."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from PySide6.QtWidgets import QLabel, QProgressBar, QPushButton, QStatusBar

if TYPE_CHECKING:
    from pyramid_explorer.app.controller import Controller
    from pyramid_explorer.app.render_queue import RenderQueue

UPDATING = "Updating..."


class StatusLine:
    """A message that stays until the next one, or the running job's progress (shown while busy).

    When the job ends, a progress text gives way to "Ready" once the current check (every visible panel
    is current) holds, and to "Updating..." until then; a message does not.
    """

    def __init__(self, bar: QStatusBar) -> None:
        self._text = QLabel()
        self._is_progress = False
        self._busy = False
        self._current: Callable[[], bool] = lambda: True
        self.progress = QProgressBar()
        self.progress.setMaximumWidth(220)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the running computation (Esc)")
        bar.addWidget(self._text, 1)
        bar.addPermanentWidget(self.progress)
        bar.addPermanentWidget(self.cancel_button)
        self.on_busy_changed(False)

    def follow(self, controller: Controller, queue: RenderQueue, current: Callable[[], bool]) -> None:
        """Show `controller`'s messages and its jobs' progress, settle when it has served or `queue`
        has drawn everything (Ready once `current()` holds), and cancel its jobs with the button."""
        controller.status.connect(self.show)
        controller.runner.progress.connect(self.on_progress)
        controller.runner.busy_changed.connect(self.on_busy_changed)
        self.set_current_check(current)
        queue.drained.connect(self.settle)
        controller.served.connect(self.settle)
        self.cancel_button.clicked.connect(controller.cancel)

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

    def set_current_check(self, check: Callable[[], bool]) -> None:
        """`check()` is True when everything on screen is current: only then does the line say Ready."""
        self._current = check

    def mark_updating(self) -> None:
        """What is shown went out of date: "Ready" no longer holds."""
        if not self._busy and self._text.text() == "Ready":
            self._is_progress = True
            self._text.setText(UPDATING)

    def settle(self) -> None:
        """Say "Ready" if the last progress is over and everything shown is current."""
        if not self._busy and self._is_progress:
            if self._current():
                self.show("Ready")
            else:
                self._text.setText(UPDATING)

    def on_busy_changed(self, busy: bool) -> None:
        self._busy = busy
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        self.settle()
