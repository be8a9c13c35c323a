"""Panel grids take their rows and columns from the window's shape (issue 15, item 3)."""

from __future__ import annotations

import math

import pytest
from guitools import make_image, wait_idle, write_png

from pyramid_explorer.app.panel_grid import best_columns, image_scale

HEIGHT, WIDTH = 150, 210


def shown_area(panels, aspect: float) -> float:
    """Screen pixels covered by the panels' images, each fitted whole in its view."""
    total = 0.0
    for panel in panels:
        w, h = panel.view_box.width(), panel.view_box.height()
        side = min(w / aspect, h)  # the image's height on screen
        total += side * side * aspect
    return total


def laid_out(grid, panels) -> bool:
    """Every panel has its cell's width and its view the panel's size less margins and caption
    (histograms hidden), i.e. the grid's last arrangement has reached the views."""
    spacing = grid.layout().spacing()
    cell = (grid.width() - spacing * (grid.columns - 1)) / grid.columns
    return all(abs(p.width() - cell) <= 1 and p.view_box.width() == p.width() - 4
               and p.view_box.height() == p.height() - 5 - p.caption.height() for p in panels)


def test_image_scale_is_the_fitted_height():
    # 10 cells in 4 columns (3 rows) over 800 x 600, each losing 10 x 20: cells 190 x 180 of image
    assert image_scale(10, 4, (800, 600), 1.5, (10, 20)) == pytest.approx(min(190 / 1.5, 180))
    assert image_scale(3, 3, (30, 100), 2.0, (20, 0)) == 0.0  # no room at all


@pytest.mark.parametrize(("size", "aspect", "expected"), [
    ((1000, 100), 1.0, 10),  # a strip: one row
    ((100, 1000), 1.0, 1),   # a column
    ((400, 300), 1.0, 4),    # 4 x 3 cells of 100 x 100
    ((400, 400), 4.0, 2),    # very wide images: 2 x 5 cells of 200 x 80 hold them 50 high
])
def test_best_columns(size, aspect, expected):
    def chrome(_cell_width: float) -> tuple[float, float]:
        return (0.0, 0.0)
    assert best_columns(10, size, aspect, chrome) == expected
    best = image_scale(10, expected, size, aspect, (0, 0))
    assert all(image_scale(10, c, size, aspect, (0, 0)) <= best + 1e-9 for c in range(1, 11))


@pytest.fixture
def compare(qtbot, window, tmp_path):
    window.controller.open_path(write_png(tmp_path / "wide.png", make_image(HEIGHT, WIDTH)))
    window.show_view("compare")
    wait_idle(qtbot, window)
    return window


def test_compare_grid_follows_the_window_shape(qtbot, compare):
    tab = compare.tab("compare")
    grid, aspect = tab.grid, WIDTH / HEIGHT
    assert grid.aspect == pytest.approx(aspect)
    shapes = {}
    for name, size in (("wide", (1900, 700)), ("tall", (1100, 1400))):
        compare.resize(*size)
        qtbot.waitUntil(lambda s=size: compare.width() == s[0] and compare.height() == s[1])
        qtbot.waitUntil(lambda: grid.columns == best_columns(len(tab.panels), (grid.width(), grid.height()),
                                                             aspect, grid._chrome, grid.layout().spacing()))
        qtbot.waitUntil(lambda: laid_out(grid, tab.panels))
        shapes[name] = (grid.rows, grid.columns)
        chosen = shown_area(tab.panels, aspect)
        for panel in tab.panels:  # every view fits its image whole: the image spans a side of the view
            rect, box = panel.view_box.viewRect(), panel.view_box
            assert math.isclose(rect.width() / box.width(), rect.height() / box.height(), rel_tol=0.02)
            assert rect.width() >= WIDTH - 1 and rect.height() >= HEIGHT - 1
            assert min(rect.width() - WIDTH, rect.height() - HEIGHT) < 2
        grid.arrange(3)  # the fixed three columns the tab had
        qtbot.waitUntil(lambda: laid_out(grid, tab.panels))
        fixed = shown_area(tab.panels, aspect)
        assert chosen > 1.15 * fixed, (name, shapes[name], chosen, fixed)
        grid.relayout()
    assert shapes["wide"][1] > shapes["tall"][1] and shapes["wide"][0] < shapes["tall"][0], shapes


def test_histograms_change_the_choice(qtbot, compare):
    tab = compare.tab("compare")
    compare.resize(1700, 700)
    qtbot.waitUntil(lambda: compare.width() == 1700)
    before = tab.grid.columns
    tab.set_histograms_visible(True)  # each cell is ~110 px narrower for its image: fewer columns
    assert tab.grid.columns < before
