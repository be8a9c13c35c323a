"""The window's first size fits the screen; the Levels dock shows all its columns (issue 15, item 4)."""

from __future__ import annotations

from types import SimpleNamespace

from guitools import make_image, wait_idle, write_png
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from pyramid_explorer.app import main_window
from pyramid_explorer.app.docks import TABS_KEEP
from pyramid_explorer.app.level_model import DSTSIZE_COLUMN, NAIVE_COLUMNS, SIZE_COLUMN
from pyramid_explorer.app.main_window import DEFAULT_SIZE, fitted_size


def columns_whole(panel) -> bool:
    """Every column shown is at least as wide as its header's and its cells' text, and the table
    needs no horizontal scrolling."""
    table, model = panel.table, panel.model
    fm = table.fontMetrics()
    for c in range(model.columnCount()):
        if table.isColumnHidden(c):
            continue
        texts = [str(model.headerData(c, Qt.Orientation.Horizontal))]
        texts += [str(model.index(r, c).data()) for r in range(model.rowCount())]
        if table.columnWidth(c) < max(fm.horizontalAdvance(t) for t in texts):
            return False
    return table.horizontalScrollBar().maximum() == 0


def test_short_headers_keep_the_dock_narrow(window):
    panel = window.level_panel
    assert panel.content_width() < 480  # it was ~604 px with the long headers
    for c in range(panel.model.columnCount()):
        tip = panel.model.headerData(c, Qt.Orientation.Horizontal, Qt.ItemDataRole.ToolTipRole)
        assert tip and len(tip) > len(panel.model.headerData(c, Qt.Orientation.Horizontal))


def test_a_first_window_fits_a_small_screen():
    assert fitted_size(None) == DEFAULT_SIZE  # no display (offscreen: screenshots, tests)
    assert fitted_size((1920, 1080)) == DEFAULT_SIZE
    assert fitted_size((1366, 768)) == (1229, 691)
    assert fitted_size((1000, 680)) == (900, 612)


def test_a_first_window_on_a_screen_takes_its_fitted_size(make_window, monkeypatch):
    """On a display (here the offscreen 800x800 screen, taken for one), the window is fitted to it."""
    displayed = SimpleNamespace(primaryScreen=QGuiApplication.primaryScreen, platformName=lambda: "xcb")
    monkeypatch.setattr(main_window, "QGuiApplication", displayed)
    window = make_window()
    area = window.screen().availableGeometry()
    assert (window.width(), window.height()) == fitted_size((area.width(), area.height())) == (720, 720)


def test_all_columns_at_the_default_size(qtbot, window, tmp_path):
    assert (window.width(), window.height()) == DEFAULT_SIZE
    window.controller.open_path(write_png(tmp_path / "big.png", make_image(3001, 4001)))  # 5-digit sizes
    wait_idle(qtbot, window, timeout=60_000)
    qtbot.waitUntil(lambda: columns_whole(window.level_panel))
    for c in NAIVE_COLUMNS:
        assert window.level_panel.table.isColumnHidden(c)


def test_a_restored_narrow_dock_is_widened(qtbot, make_window, settings_store, tmp_path):
    first = make_window()
    first.resizeDocks([first.levels_dock], [230], Qt.Orientation.Horizontal)
    qtbot.waitUntil(lambda: first.levels_dock.width() < 300)
    first.close()  # saves the narrow dock
    second = make_window(settings_store)
    second.resize(*DEFAULT_SIZE)  # room for the dock to widen into
    qtbot.waitUntil(lambda: second.width() == DEFAULT_SIZE[0] and second.levels_dock.width() < 300)
    second.controller.open_path(write_png(tmp_path / "a.png", make_image(300, 451)))
    wait_idle(qtbot, second)
    qtbot.waitUntil(lambda: columns_whole(second.level_panel))
    assert second.level_panel.width() >= second.level_panel.content_width()


def test_the_window_fits_1000_by_680(qtbot, opened):
    """Every tab's least width beside the docks' fits a 1000 px screen (it was ~1026-1070 px)."""
    window = opened
    assert window.minimumSizeHint().width() <= 1000 and window.minimumSizeHint().height() <= 680
    window.resize(1000, 680)
    window.show_view("kernels")
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: window.width() == 1000)
    table = window.tab("kernels").table  # no horizontal scroll bar: its columns must fit
    qtbot.waitUntil(lambda: table.isVisible() and table.viewport().width() > 0)
    header = table.horizontalHeader()
    needed = sum(max(table.sizeHintForColumn(c), header.sectionSizeHint(c))
                 for c in range(table.columnCount()))
    assert needed + 2 * table.frameWidth() <= table.width()


def test_a_dock_widened_for_new_rows_never_goes_compact_on_the_way(qtbot, window, tmp_path, monkeypatch):
    """The dock is widened for the 5-digit sizes and the table shown whole at once: not compact at the
    old width first and whole again at the new (a flicker, and ~80 ms of the GUI thread on a 4K image),
    and the compact table's details line is not left showing."""
    panel = window.level_panel
    seen: list[bool] = []
    switch = panel._set_compact
    monkeypatch.setattr(panel, "_set_compact", lambda compact: (seen.append(compact), switch(compact)))
    window.controller.open_path(write_png(tmp_path / "big.png", make_image(3001, 4001)))
    wait_idle(qtbot, window, timeout=60_000)
    qtbot.waitUntil(lambda: columns_whole(panel))
    assert window.levels_dock.width() > 480 and seen == []
    assert not panel.compact and not panel.details.isVisible()


def test_at_1000_by_680_the_table_is_compact_and_every_number_is_shown(qtbot, window, tmp_path):
    window.resize(1000, 680)
    window.controller.open_path(write_png(tmp_path / "big.png", make_image(3001, 4001)))
    wait_idle(qtbot, window, timeout=60_000)
    panel = window.level_panel
    qtbot.waitUntil(lambda: window.width() == 1000 and panel.compact)
    qtbot.waitUntil(lambda: columns_whole(panel))  # Level and Size whole, no sideways scrolling
    shown = [c for c in range(panel.model.columnCount()) if not panel.table.isColumnHidden(c)]
    assert shown == [0, SIZE_COLUMN]
    # compact before its rows came, the dock was then narrowed to the two columns (it kept 300 px)
    table = panel.table
    qtbot.waitUntil(lambda: table.width() <= sum(table.columnWidth(c) for c in shown) + 2 * table.frameWidth()
                    + table.verticalScrollBar().sizeHint().width() + 2)
    window.controller.set_level(2)
    qtbot.waitUntil(lambda: panel.details.text().startswith("Level 2"))
    for c in range(SIZE_COLUMN + 1, DSTSIZE_COLUMN + 1):  # the other columns, for the selected level
        line = f"{panel.model.headerData(c, Qt.Orientation.Horizontal)}: {panel.model.index(2, c).data()}"
        assert line in panel.details.text().splitlines()
    fm = panel.details.fontMetrics()
    assert all(fm.horizontalAdvance(t) <= panel.details.width() for t in panel.details.text().splitlines())
    window.resize(*DEFAULT_SIZE)
    qtbot.waitUntil(lambda: window.width() == DEFAULT_SIZE[0])
    window.resizeDocks([window.levels_dock], [520], Qt.Orientation.Horizontal)  # the user widens it
    qtbot.waitUntil(lambda: not panel.compact and not panel.details.isVisible())
    qtbot.waitUntil(lambda: columns_whole(panel))


def test_the_compact_table_comes_back_whole_when_the_window_grows(qtbot, window, tmp_path):
    """Narrowed to 1000 px the dock goes compact; grown back, it widens by itself to the whole table."""
    window.controller.open_path(write_png(tmp_path / "big.png", make_image(3001, 4001)))
    wait_idle(qtbot, window, timeout=60_000)
    panel = window.level_panel
    qtbot.waitUntil(lambda: not panel.compact and columns_whole(panel))
    window.resize(1000, 680)
    qtbot.waitUntil(lambda: window.width() == 1000 and panel.compact)
    window.resize(*DEFAULT_SIZE)
    qtbot.waitUntil(lambda: window.width() == DEFAULT_SIZE[0])
    qtbot.waitUntil(lambda: not panel.compact and columns_whole(panel))
    assert window.levels_dock.width() <= DEFAULT_SIZE[0] - TABS_KEEP
    window.resize(1100, 680)  # grown, but not enough for the whole table beside the tabs' room
    qtbot.waitUntil(lambda: window.width() == 1100 and panel.compact)
    assert window.tabs.width() >= TABS_KEEP - 20


def test_the_readout_wraps_rather_than_scroll_sideways(qtbot, opened):
    opened.resize(1000, 680)
    label = opened.readout_label
    label.setText("source (1234.5, 678.9)\nnearest[0] (1234, 678): (255, 128, 64) and a long tail of words")
    qtbot.waitUntil(lambda: opened.width() == 1000)
    scroll = opened.readout_dock.widget()
    assert label.wordWrap() and scroll.horizontalScrollBar().maximum() == 0
    assert label.width() <= scroll.viewport().width()


def test_at_1000_by_680_compare_fits_beside_the_compact_dock(qtbot, window, tmp_path):
    """Tabs are built when first shown, so their least widths cannot hold the dock back: the dock gives
    way to keep the tabs' room, its table goes compact, and Compare's grid fits a 1000x680 screen."""
    window.resize(1000, 680)
    window.controller.open_path(write_png(tmp_path / "a.png", make_image(300, 451)))
    wait_idle(qtbot, window)
    window.show_view("compare")
    wait_idle(qtbot, window)
    panel = window.level_panel
    qtbot.waitUntil(lambda: panel.compact and window.levels_dock.width() <= 1000 - TABS_KEEP)
    qtbot.waitUntil(lambda: columns_whole(panel))
    assert (window.width(), window.height()) == (1000, 680)  # the grid's rows did not make it taller


def test_the_columns_are_measured_once_per_set_of_rows_and_again_in_another_font(qtbot, opened, monkeypatch):
    """Every width asked for while new rows settle reuses one measure of the cells (three measures of
    every cell's size hint took ~20 ms of the GUI thread on a 4K image); new rows and another font are
    measured anew."""
    panel = opened.level_panel
    measured: list[int] = []
    measure = panel.table.sizeHintForColumn
    monkeypatch.setattr(panel.table, "sizeHintForColumn", lambda column: (measured.append(column),
                                                                          measure(column))[1])
    width = panel.content_width()
    assert panel.content_width() == width and measured == []  # measured when the rows came
    pyramid = opened.controller.pyramid
    panel.model.set_pyramid(pyramid)
    assert measured and panel.content_width() == width
    measured.clear()
    font = panel.font()
    font.setPointSizeF(font.pointSizeF() * 1.5)
    panel.setFont(font)
    assert panel.content_width() > width and measured
