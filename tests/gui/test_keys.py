"""Keys that work (issue 15, item 5): the single-key shortcuts fire wherever the focus is, except in a
text field being edited."""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QLineEdit

from pyramid_explorer.app.keys import takes_text


def test_letter_shortcuts_work_after_clicking_the_level_spin_box(qtbot, opened):
    spin = opened.level_panel.level
    qtbot.mouseClick(spin, Qt.MouseButton.LeftButton)
    spin.setFocus()
    qtbot.waitUntil(spin.hasFocus)
    for key, action in ((Qt.Key.Key_D, "difference"), (Qt.Key.Key_L, "lock_contrast"),
                        (Qt.Key.Key_H, "histograms")):
        before = opened.actions[action].isChecked()
        qtbot.keyClick(spin, key)
        assert opened.actions[action].isChecked() != before, action
    fits: list[bool] = []
    opened.actions["fit"].triggered.connect(lambda: fits.append(True))
    qtbot.keyClick(spin, Qt.Key.Key_F)
    assert fits == [True]
    assert spin.hasFocus()


def test_letter_shortcuts_work_with_the_level_table_focused(qtbot, opened):
    table = opened.level_panel.table
    table.setFocus()
    qtbot.waitUntil(table.hasFocus)
    before = opened.actions["lock_contrast"].isChecked()
    qtbot.keyClick(table, Qt.Key.Key_L)
    assert opened.actions["lock_contrast"].isChecked() != before


def test_a_text_field_being_edited_keeps_its_letters(qtbot, opened):
    field = QLineEdit(opened)
    field.show()
    field.setFocus()
    qtbot.waitUntil(field.hasFocus)
    before = opened.actions["difference"].isChecked()
    qtbot.keyClicks(field, "dlhf")
    assert field.text() == "dlhf"
    assert opened.actions["difference"].isChecked() == before
    assert takes_text(field) and not takes_text(opened.level_panel.level)


def test_the_filter_watches_the_focused_widget_and_its_ancestors_only(qtbot, opened):
    """A ShortcutOverride is refused where the focus is (and on its way up to the window); another
    widget's events are not filtered at all (an application-wide filter cost a Python call for every
    event of every widget)."""
    level, depth = opened.level_panel.level, opened.level_panel.depth

    def offered_to(widget) -> bool:
        """True if `widget` took the D key from the shortcut (accepted its ShortcutOverride)."""
        event = QKeyEvent(QEvent.Type.ShortcutOverride, Qt.Key.Key_D, Qt.KeyboardModifier.NoModifier, "d")
        QApplication.sendEvent(widget, event)
        return event.isAccepted()

    for focused, other in ((level, depth), (depth, level)):
        focused.setFocus()
        qtbot.waitUntil(focused.hasFocus)
        assert not offered_to(focused) and not offered_to(focused.parentWidget())
        assert offered_to(other)  # a spin box takes printable keys: unfiltered, it keeps this one
