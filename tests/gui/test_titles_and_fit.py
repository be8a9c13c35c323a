"""Titles that are never cut and views that fit (issue 15, items 4 and 3)."""

from __future__ import annotations

import pytest
from guitools import make_image, wait_idle, write_png
from PySide6.QtCore import QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from pyramid_explorer.app.caption import Caption, split_title
from pyramid_explorer.app.image_panel import ImagePanel
from pyramid_explorer.app.linking import MAX_MAGNIFICATION, SAME_FIT, ZOOM_OUT_LIMIT
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.display import MODE_LABELS, mode_label

HEIGHT, WIDTH = 150, 210


@pytest.fixture
def opened(open_image):
    return open_image(HEIGHT, WIDTH)


def text_fits(label) -> bool:
    """The label's whole text is drawn inside it (on one line, or wrapped when it wraps)."""
    fm, text, width = label.fontMetrics(), label.text(), label.width()
    if not label.isVisible() or not text:
        return True
    if label.wordWrap():
        box = fm.boundingRect(QRect(0, 0, width, 1000), Qt.TextFlag.TextWordWrap, text)
        return box.width() <= width and box.height() <= label.height()
    return fm.horizontalAdvance(text) <= width


def test_every_mode_has_a_human_name():
    assert set(MODE_LABELS) == set(MODES)
    assert mode_label("zero_insert") == "Zero insertion" and mode_label("pyrup") == "pyrUp"


def test_split_title():
    assert split_title("Nearest: PSNR 3 dB: x") == ("Nearest", "PSNR 3 dB: x")
    assert split_title("Mosaic of 3 levels") == ("Mosaic of 3 levels", "")


@pytest.mark.parametrize("size", [(1000, 680), (1480, 920)])
@pytest.mark.parametrize("difference", [False, True])
def test_numbers_in_titles_are_never_cut(qtbot, opened, size, difference):
    opened.resize(*size)
    opened.show_view("compare")
    if difference:
        opened.actions["difference"].trigger()
    wait_idle(qtbot, opened)
    for name in ("compare", "pyramid", "unpool", "equalizer"):
        opened.show_view(name)
        wait_idle(qtbot, opened)
        for panel in opened.tab(name).panels:
            if not panel.isVisible():
                continue
            caption = panel.caption
            qtbot.waitUntil(lambda c=caption: text_fits(c.numbers_label))  # laid out on resize
            assert text_fits(caption.numbers_label), (name, caption.text(), caption.width())
            shown = caption.name_label.text()
            assert fm_fits(caption.name_label) and (shown.endswith("…") or caption.text().startswith(shown))
    compare = opened.tab("compare")
    for mode, panel in compare.mode_panels.items():
        if panel.layer is not None:
            assert panel.title().startswith(mode_label(mode)), panel.title()
            assert f"mode: {mode}" in panel.caption.toolTip()
            if difference:
                assert "(channel mean)" in panel.title()


def fm_fits(label) -> bool:
    return label.fontMetrics().horizontalAdvance(label.text()) <= label.width()


def test_caption_keeps_numbers_whole_when_narrow(qtbot):
    caption = Caption("A long panel name that will not fit: PSNR 31.25 dB, SSIM 0.841 [centre crop]")
    qtbot.addWidget(caption)
    caption.resize(120, 20)
    caption.show()
    assert caption.height() > caption.fontMetrics().height()  # a line of its own for the numbers
    assert caption.name_label.text().endswith("…")
    assert text_fits(caption.numbers_label)
    assert "PSNR\u00a031.25\u00a0dB," in caption.numbers_label.text()  # wraps between items


LONG_NAME = "a_photograph_with_a_long_descriptive_file_name_from_the_camera.png"


def test_a_word_longer_than_the_line_is_elided_in_its_middle_not_cut(qtbot):
    """A file name in a title or an overlay cannot wrap: it is shortened in its middle (start and end
    stay readable), never cut at an edge."""
    caption = Caption(f"Nearest: computing for {LONG_NAME}...")
    qtbot.addWidget(caption)
    caption.resize(180, 20)
    caption.show()
    shown = caption.numbers_label.text()
    assert text_fits(caption.numbers_label) and "…" in shown
    assert shown.startswith("computing for a_photo") and shown.endswith("mera.png...")
    panel = ImagePanel("Nearest")
    qtbot.addWidget(panel)
    panel.resize(200, 200)
    panel.show()
    panel.mark_stale(f"computing for {LONG_NAME}...")
    overlay = panel._overlay
    qtbot.waitUntil(lambda: "…" in overlay.text())
    fm = overlay.fontMetrics()
    assert all(fm.horizontalAdvance(word) <= overlay.width() for word in overlay.text().split())
    assert panel.stale_text() == f"computing for {LONG_NAME}..."  # the reason itself is whole


def test_a_new_text_never_makes_a_caption_shorter_a_new_width_may(qtbot):
    caption = Caption("Nearest: PSNR/SSIM computing...")
    qtbot.addWidget(caption)
    caption.resize(120, 20)
    caption.show()
    line = caption.fontMetrics().height()
    assert caption.height() > line  # two lines at this width
    caption.set_text("Nearest")  # one line would do: the image below does not move for it
    assert caption.height() > line
    caption.resize(400, caption.height())
    qtbot.waitUntil(lambda: caption.height() == line)  # wider: laid out anew, one line
    caption.set_text("Nearest: PSNR 31.25 dB, SSIM 0.841")
    assert caption.height() == line  # fits beside the name
    caption.resize(120, caption.height())
    qtbot.waitUntil(lambda: caption.height() > line)
    assert text_fits(caption.numbers_label)


def shows_whole_image(panel) -> bool:
    """The view shows the whole source and touches it on one side (a fit, not a smaller image), or
    nearly: views of nearly the same size share the smallest of their fits (linking.SAME_FIT)."""
    rect = panel.view_box.viewRect()
    inside = (rect.left() <= -0.5 + 0.01 and rect.top() <= -0.5 + 0.01
              and rect.right() >= WIDTH - 0.5 - 0.01 and rect.bottom() >= HEIGHT - 0.5 - 0.01)
    tight = rect.width() < WIDTH * (1 + 2 * SAME_FIT) or rect.height() < HEIGHT * (1 + 2 * SAME_FIT)
    return inside and tight


@pytest.mark.parametrize("view", ["compare", "equalizer", "pyramid", "unpool"])
def test_each_tab_fits_when_first_shown_and_on_resize(qtbot, opened, view):
    opened.show_view(view)
    wait_idle(qtbot, opened)
    panels = [p for p in opened.tab(view).panels if p.linked and p.isVisible() and p.layer is not None]
    assert panels
    qtbot.waitUntil(lambda: all(shows_whole_image(p) for p in panels))
    opened.resize(1000, 680)
    qtbot.waitUntil(lambda: all(shows_whole_image(p) for p in panels))
    opened.resize(1480, 920)
    qtbot.waitUntil(lambda: all(shows_whole_image(p) for p in panels))


def test_a_zoom_stops_the_fit_and_carries_over_to_other_tabs(qtbot, opened):
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    assert opened.linker.fitting
    opened.linker.set_camera((40.0, 30.0), 0.25)  # zoomed in on a region, as a wheel zoom does
    assert not opened.linker.fitting
    opened.resize(1000, 680)
    panel = opened.tab("compare").mode_panels["nearest"]
    qtbot.waitUntil(lambda: abs(panel.view_box.viewRect().width() - 0.25 * panel.view_box.width()) < 0.5)
    opened.show_view("pyramid")
    g = opened.tab("pyramid").gaussian
    qtbot.waitUntil(lambda: abs(g.view_box.viewRect().center().x() - 40.0) < 0.5)
    assert abs(g.view_box.viewRect().width() - 0.25 * g.view_box.width()) < 0.5
    opened.actions["fit"].trigger()
    assert opened.linker.fitting
    qtbot.waitUntil(lambda: shows_whole_image(g))


def wheel(panel, steps: int, at: tuple[float, float] = (0.5, 0.5)) -> None:
    """Turn the mouse wheel over `panel`'s view (positive: zoom in), as a user does, at the fractions `at`
    of its width and height (the middle by default)."""
    viewport = panel._canvas.viewport()
    centre = QPointF(viewport.width() * at[0], viewport.height() * at[1])
    for _ in range(abs(steps)):
        QApplication.sendEvent(viewport, QWheelEvent(
            centre, viewport.mapToGlobal(centre), QPoint(0, 0), QPoint(0, 120 if steps > 0 else -120),
            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False))


def test_a_zoom_out_past_the_fit_leaves_other_tabs_fitted(qtbot, opened):
    g = opened.tab("pyramid").gaussian
    wait_idle(qtbot, opened)
    wheel(g, -6)
    assert not opened.linker.fitting and g.view_box.viewRect().width() > 2 * WIDTH  # this tab follows it
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    assert opened.linker.fitting
    panel = opened.tab("compare").mode_panels["nearest"]
    qtbot.waitUntil(lambda: shows_whole_image(panel))
    wheel(panel, 3)  # zoomed in on a region: that carries over
    _centre, units = opened.linker.camera
    opened.show_view("pyramid")
    qtbot.waitUntil(lambda: abs(g.view_box.viewRect().width() - units * g.view_box.width()) < 0.5)
    assert not opened.linker.fitting



@pytest.mark.parametrize("size", [(1000, 680), (1480, 920)])
@pytest.mark.parametrize("view", ["compare", "coding", "blend", "integrity"])
def test_fitted_panels_of_a_grid_say_one_zoom(qtbot, opened, size, view):
    opened.resize(*size)
    opened.show_view(view)
    wait_idle(qtbot, opened)
    panels = [p for p in opened.tab(view).panels if p.linked and p.isVisible() and p.layer is not None]
    assert len(panels) > 1
    qtbot.waitUntil(lambda: len({p.zoom_label() for p in panels}) == 1)
    zooms = [p.zoom() for p in panels]
    assert max(zooms) / min(zooms) < 1.002  # the same zoom, not two that round alike
    heights = {p.caption.height() for p in panels}
    assert len(heights) == 1, heights  # one caption height: one image height


def test_a_first_show_refits_each_view_a_few_times_not_once_per_resize_of_any(qtbot, opened, monkeypatch):
    """While fitting, a view's resize used to refit every linked view at once: the Compare tab's first
    layout resized 66 views, each refitting all 15 (quadratic). Now the resized view is fitted and the
    rest once after the layout pass, and the panels still end with one zoom."""
    linker = type(opened.linker)
    resizes, fits = [], []
    on_resized, apply = linker._on_resized, linker._apply
    monkeypatch.setattr(linker, "_on_resized", lambda self, box: (resizes.append(box), on_resized(self, box)))
    monkeypatch.setattr(linker, "_apply", lambda self, box, *a: (fits.append(box), apply(self, box, *a)))
    opened.show_view("compare")
    wait_idle(qtbot, opened)
    panels = [p for p in opened.tab("compare").panels if p.isVisible() and p.layer is not None]
    qtbot.waitUntil(lambda: len({p.zoom_label() for p in panels}) == 1)
    assert len(resizes) > 15 and len(fits) < len(resizes) + 4 * len(opened.linker._boxes)


def test_the_wheel_zooms_neither_out_nor_in_without_limit(qtbot, opened):
    """Zoomed far out the image would be a few screen pixels (black panels); far in, one pixel many
    times a panel: the wheel stops at ZOOM_OUT_LIMIT times below the fit and at MAX_MAGNIFICATION."""
    g = opened.tab("pyramid").gaussian
    wait_idle(qtbot, opened)
    box = g.view_box
    fit_units = max(WIDTH / box.width(), HEIGHT / box.height())
    wheel(g, -40)  # 1.35 per step: 1e5 times out
    units = box.viewRect().width() / box.width()
    assert units == pytest.approx(ZOOM_OUT_LIMIT * fit_units, rel=1e-3)
    assert opened.linker.camera[1] == pytest.approx(units, rel=1e-6)
    wheel(g, 80)
    units = box.viewRect().width() / box.width()
    assert units == pytest.approx(1 / MAX_MAGNIFICATION, rel=1e-3)
    assert g.zoom_label() == "25600%"


@pytest.mark.parametrize("size", [(1000, 680), (1920, 1080)])
def test_captions_keep_no_blank_line_once_their_work_is_done(qtbot, window, tmp_path, size):
    """A title grows its caption while results come (no relayout storm), but once the window is settled
    every caption is the height of the text it shows: a long "computing for <name>..." that wrapped
    leaves no blank line under the numbers (it left two at 1920x1080)."""
    window.resize(*size)
    window.show_view("compare")
    window.controller.open_path(write_png(tmp_path / "first.png", make_image(HEIGHT, WIDTH)))
    wait_idle(qtbot, window)  # laid out at the window's size: a new text may now only grow a caption
    name = "a_photograph_with_a_long_descriptive_file_name_from_the_camera.png"
    window.controller.open_path(write_png(tmp_path / name, make_image(HEIGHT, WIDTH)))
    wait_idle(qtbot, window)
    qtbot.waitUntil(lambda: all(p.layer is not None for p in window.tab("compare").mode_panels.values()))
    captions = [p.caption for p in window.tab("compare").panels if p.isVisible()]
    qtbot.waitUntil(lambda: all(c.natural_height == c.height_for(c.width()) for c in captions))
    tallest = max(c.height_for(c.width()) for c in captions)
    assert all(c.height() == tallest for c in captions)  # one height in the grid, and no more


def test_a_wheel_zoom_cut_short_by_a_limit_keeps_the_point_under_the_mouse(qtbot, opened):
    """Past a limit each wheel step moved the image away from the mouse (seen under Xvfb: zoomed out to the
    limit over a panel's corner, the image ended in another corner, and zooming in there showed black)."""
    g = opened.tab("pyramid").gaussian
    wait_idle(qtbot, opened)
    box, viewport = g.view_box, g._canvas.viewport()
    at = (0.3, 0.25)
    mouse = g._canvas.mapToScene(round(viewport.width() * at[0]), round(viewport.height() * at[1]))

    def under_mouse() -> tuple[float, float]:
        point = box.mapSceneToView(mouse)
        return point.x(), point.y()

    start = under_mouse()
    for steps in (-40, 80):  # far past each limit
        wheel(g, steps, at)
        units = box.viewRect().width() / box.width()
        assert under_mouse() == pytest.approx(start, abs=2 * units)


def test_a_reduction_arriving_last_still_fits_the_captions(qtbot, opened):
    """When a panel's display reduction is the last work to end, its arrival is what settles the window:
    the captions must fit then too (nothing else would tell the window, and a caption kept the lines a
    longer, earlier title needed; seen once in CI under load)."""
    from pyramid_explorer.app.panel_drawing import REDUCTION_NEWS

    opened.show_view("compare")
    wait_idle(qtbot, opened)
    caption = next(p.caption for p in opened.tab("compare").panels if p.isVisible())
    final = caption.text()
    caption.set_text("nearest: " + "computing for a long file name " * 6 + "...")
    caption.set_text(final)  # at one width a caption only grows: the long title's lines stay
    assert caption.natural_height > caption.height_for(caption.width())
    REDUCTION_NEWS.arrived.emit()
    assert caption.natural_height == caption.height_for(caption.width())
