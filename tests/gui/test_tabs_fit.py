"""Every tab fits the window it is shown in (issue 15, items 3 and 4): at 1000x680 and 1920x1080 showing a
tab does not make the window grow, its least size fits the room it has beside the Levels dock, and no
label of it is cut (a text either fits its label's width, or wraps within its label's height)."""

from __future__ import annotations

from dataclasses import replace
from pprint import pformat

import numpy as np
import pytest
from guitools import make_image, wait_idle, write_png
from PySide6.QtCore import QPoint, QRect
from PySide6.QtWidgets import QAbstractScrollArea, QLabel, QWidget

from pyramid_explorer.app.caption import Caption
from pyramid_explorer.app.docks import TABS_KEEP
from pyramid_explorer.tools.registry import NAMES

SIZES = [(1000, 680), (1920, 1080)]


def cut_labels(tab: QWidget) -> list[str]:
    """The texts of the tab's visible labels that their labels do not hold whole (by the label's own
    measure of its text), or that the tab's edges cut. Left out: a caption's name (it elides by design;
    its numbers are checked) and what is inside a scroll area (it scrolls)."""
    cut = []
    for label in tab.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue
        parent = label.parentWidget()
        if isinstance(parent, Caption) and label is parent.name_label:
            continue
        if any(isinstance(w, QAbstractScrollArea) for w in _ancestors(label, tab)):
            continue
        if label.wordWrap():  # 2 pixels of slack: a layout may round a wrapped label's height down by one
            whole = label.heightForWidth(label.width()) <= label.height() + 2
        else:
            need = label.minimumSizeHint()
            whole = need.width() <= label.width() and need.height() <= label.height() + 2
        place = QRect(label.mapTo(tab, QPoint(0, 0)), label.size())
        if not whole or not tab.rect().contains(place):
            cut.append(label.text())
    return cut


def _ancestors(widget: QWidget, top: QWidget) -> list[QWidget]:
    found = []
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        found.append(parent)
        parent = parent.parentWidget()
    return found


@pytest.mark.parametrize(("size", "image"), [(size, (300, 451)) for size in SIZES]
                         + [((1000, 680), (1501, 2001))])  # four-digit sizes in the titles
def test_every_tab_keeps_the_window_size_and_fits_it(qtbot, window, tmp_path, size, image):
    window.resize(*size)
    qtbot.waitUntil(lambda: (window.width(), window.height()) == size)
    window.controller.open_path(write_png(tmp_path / "a.png", make_image(*image)))
    wait_idle(qtbot, window, timeout=60_000)
    problems = {}
    for name in NAMES:
        window.show_view(name)
        wait_idle(qtbot, window, timeout=60_000)
        tab = window.tab(name)
        qtbot.waitUntil(lambda tab=tab: tab.isVisible() and tab.width() > 0)
        hint = tab.minimumSizeHint()
        # the room the tabs keep beside the widest Levels dock the window allows
        room = TABS_KEEP - (window.width() - tab.width() - window.levels_dock.width())
        found = {"window": (window.width(), window.height()) != size, "width": hint.width() > room,
                 "height": hint.height() > tab.height(), "cut": cut_labels(tab)}
        if any(found.values()):
            problems[name] = (found, hint.toTuple(), tab.size().toTuple(), room)
    assert not problems, pformat(problems)


def test_integrity_panels_line_up_when_the_texts_above_differ_in_lines(qtbot, opened):
    """A sentence that wraps to more lines in one column than the other no longer pushes that column's
    residual panel down: both columns' texts take the taller one's height."""
    opened.resize(1000, 680)
    opened.show_view("integrity")
    wait_idle(qtbot, opened)
    tab = opened.tab("integrity")
    result = tab.result
    longer = replace(result.gaussian, sentence=" ".join([result.gaussian.sentence] * 6))
    tab.show_result(replace(result, gaussian=longer))
    lap, gauss = tab.laplacian, tab.gaussian
    qtbot.waitUntil(lambda: tab.grid.columns == 2)
    fm = gauss.sentence.fontMetrics()
    qtbot.waitUntil(lambda: gauss.sentence.height() >= 3 * fm.lineSpacing())  # it wraps to several lines
    assert lap.sentence.heightForWidth(lap.sentence.width()) < 2 * fm.lineSpacing() + 2  # this one does not
    top = [c.panel.mapTo(tab, QPoint(0, 0)).y() for c in (lap, gauss)]
    assert top[0] == top[1]
    assert lap.panel.height() == gauss.panel.height()
    assert cut_labels(tab) == []


def test_the_equalizers_gains_are_never_cut(qtbot, opened):
    """At 1000x680 the collapse's title holds ten gains: they wrap under its name, none is elided."""
    opened.resize(1000, 680)
    opened.show_view("equalizer")
    wait_idle(qtbot, opened)
    caption = opened.tab("equalizer").image.caption
    gains = ", ".join("x1.00" for _ in range(opened.controller.pyramid.levels))
    qtbot.waitUntil(lambda: caption.shown_numbers() == gains)
    assert all(label.width() >= label.minimumSizeHint().width()
               for label in (caption.lead_label, caption.numbers_label) if label.isVisible())


def test_learnable_with_the_users_kernel_fits_1000_by_680_and_lines_up(qtbot, opened, tmp_path):
    """A fourth column (the user's kernel, with longer numbers) still fits beside the compact dock, and
    the four columns' panels start at one height."""
    opened.resize(1000, 680)
    opened.show_view("learnable")
    wait_idle(qtbot, opened)
    tab = opened.tab("learnable")
    path = tmp_path / "k.npy"
    np.save(path, np.random.default_rng(1).normal(size=(1, 1, 4, 4)).astype(np.float32))
    tab.open_kernel(str(path))
    qtbot.waitUntil(lambda: tab.own_column.isVisible())
    wait_idle(qtbot, opened)
    assert (opened.width(), opened.height()) == (1000, 680)
    assert tab.minimumSizeHint().width() <= tab.width() and tab.minimumSizeHint().height() <= tab.height()
    columns = [*tab.columns.values(), tab.own_column]
    for panel in ("image", "weights", "spectrum"):
        tops = {getattr(c, panel).mapTo(tab, QPoint(0, 0)).y() for c in columns}
        assert len(tops) == 1, (panel, tops)
    assert cut_labels(tab) == []


def test_the_kernel_probes_images_line_up_when_one_caption_wraps(qtbot, opened):
    """In a narrow window 'constant: 32 x 32' wraps and 'ramp: 32 x 32' does not: the three captions
    take one height, so the probes' images start at one height."""
    opened.resize(900, 680)
    opened.show_view("kernels")
    wait_idle(qtbot, opened)
    tab = opened.tab("kernels")
    probes = list(tab.probe_panels.values())
    qtbot.waitUntil(lambda: max(p.caption.natural_height for p in probes)
                    > min(p.caption.natural_height for p in probes))  # the case this is about
    qtbot.waitUntil(lambda: len({p.caption.height() for p in probes}) == 1)
    assert len({p.view_box.mapRectToScene(p.view_box.boundingRect()).top() + p.mapTo(tab, QPoint(0, 0)).y()
                for p in probes}) == 1
