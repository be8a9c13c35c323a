"""What the window asks of a tool's tab: render results, messages and settings; emit settings.

A tab only renders. The window hands it the tool's results (`show_result`), the controller's state
changes (the `on_*` hooks, no-ops unless a tab needs them) and settings chosen elsewhere
(`show_setting`); the tab emits what the user chooses as `setting_changed(name, value)` and asks for
its export with `export_requested`. `panels` are its image panels (readout, linked cameras, histograms).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QWidget

from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.render_queue import RenderQueue
from pyramid_explorer.jobs import LoadedImage, Pyramid
from pyramid_explorer.tools.stored import StoredImage


def show_message_in(queue: RenderQueue, panels: Iterable[ImagePanel], text: str, title: str | None = None, *,
                    own_titles: bool = False) -> None:
    """Draw `text` in each of `panels` instead of an image, dropping what `queue` still had to draw
    there; titled `title`, or with `own_titles` each panel's name (neither: the titles stay)."""
    for panel in panels:
        queue.discard(panel)
        panel.show_message(text, panel.name if own_titles else title)


class ToolTab(QWidget):
    """Base of every tool's tab (see the module docstring)."""

    setting_changed = Signal(str, object)  # setting name (a key of Tool.settings), value
    export_requested = Signal()

    @property
    def panels(self) -> list[ImagePanel]:
        return []

    @property
    def served_panels(self) -> list[ImagePanel]:
        """The panels the tool's results fill: out of date after any change of the state."""
        return self.panels

    def mark_stale(self, text: str, *, clear: bool = False) -> None:
        """The state changed: every served panel is out of date until its result is drawn (`text`
        says what is being computed); with `clear` (a new image) every panel is emptied instead."""
        for panel in self.panels if clear else self.served_panels:
            panel.mark_stale(text, clear=clear)

    def on_cancelled(self) -> None:
        """The user cancelled the computation: what waits for it says "cancelled"."""
        for panel in self.panels:
            panel.mark_ended("cancelled", "out of date (change the level or a setting to compute again)")

    def on_failed(self, reason: str) -> None:
        """The computation failed (`reason`, one line): what waits for it says "failed"."""
        for panel in self.panels:
            panel.mark_failed(reason)

    def show_result(self, result: Any, keep_limits: bool) -> None:
        """Draw one of the tool's results; `keep_limits` keeps each panel's display limits."""
        raise NotImplementedError

    def show_message(self, text: str) -> None:
        """The tool has nothing to show here, and `text` says why."""

    def show_unavailable(self, panel: str, text: str) -> None:
        """Panel `panel` cannot be computed here, and `text` says why."""

    def show_setting(self, name: str, value: Any) -> None:
        """A setting changed (perhaps in another tab): show it without announcing it again."""

    def on_image_loaded(self, loaded: LoadedImage) -> None:
        """A new image is open (its pyramid follows)."""

    def on_stored_opened(self, image: StoredImage) -> None:
        """A stored pyramid is open: the tabs are hidden and should let go of their layers."""

    def on_pyramid_changed(self, pyramid: Pyramid) -> None:
        """A pyramid was built."""

    def on_level_changed(self, level: int) -> None:
        """The selected level changed."""

    def fit(self) -> None:
        """View > Fit: fit what the linked cameras do not (they are fitted by the window)."""
