"""Single-key shortcuts (D, L, H, F, ...) that work wherever the focus is, except in a text field.

Before a shortcut fires, Qt offers the key to the focused widget (a ShortcutOverride event), and a
spin box or a table takes every printable key: after a click on the level spin box, D did nothing.
This filter refuses that offer for the window's single-key shortcuts unless the focus is in a
field where the key is text being typed (a line edit of its own, a text edit). It watches the focused
widget and its ancestors only (the offer goes to the focus widget, then up to its window): watching the
whole application cost a Python call for every event of every widget (building the Compare tab took
33-41 ms without it, 52-69 ms with it).
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QEvent, QKeyCombination, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import QAbstractSpinBox, QApplication, QLineEdit, QPlainTextEdit, QTextEdit, QWidget


def takes_text(widget: QWidget | None) -> bool:
    """True if `widget` is a field in which a plain key is typed as text (not a spin box's digits)."""
    if isinstance(widget, (QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    if isinstance(widget, QLineEdit):
        return not widget.isReadOnly() and not isinstance(widget.parentWidget(), QAbstractSpinBox)
    return False


class SingleKeyShortcuts(QObject):
    """Keeps the single-key shortcuts of `actions` working while another widget has the focus."""

    def __init__(self, actions: list[QAction], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._keys = {_first_key(action.shortcut()).toCombined() for action in actions
                      if action.shortcut().count() == 1 and _is_single_key(action.shortcut())}
        self._watched: list[QWidget] = []
        app = QApplication.instance()
        if isinstance(app, QApplication):
            app.focusChanged.connect(self._watch)
            self._watch(None, QApplication.focusWidget())

    def _watch(self, _old: QWidget | None, focused: QWidget | None) -> None:
        """Filter the events of `focused` and of its ancestors up to its window, no others."""
        for watched in self._watched:
            if shiboken6.isValid(watched):
                watched.removeEventFilter(self)
        self._watched = []
        widget = focused
        while widget is not None:
            widget.installEventFilter(self)
            self._watched.append(widget)
            widget = None if widget.isWindow() else widget.parentWidget()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.keyCombination().toCombined() in self._keys
                and not takes_text(QApplication.focusWidget())):
            event.ignore()  # not the widget's: let the shortcut have it
            return True
        return False


_MOD = Qt.KeyboardModifier
_CHORD = _MOD.ControlModifier | _MOD.AltModifier | _MOD.MetaModifier


def _is_single_key(sequence: QKeySequence) -> bool:
    """A key without Ctrl, Alt or Meta (a letter, Esc, PgUp): what a focused widget may take."""
    return not _first_key(sequence).keyboardModifiers() & _CHORD


def _first_key(sequence: QKeySequence) -> QKeyCombination:
    """The first key of `sequence` (its operator[]: PySide6 has it at run time, its stubs omit it)."""
    return sequence[0]  # type: ignore[index]  # QKeySequence.__getitem__ is missing from PySide6's stubs
