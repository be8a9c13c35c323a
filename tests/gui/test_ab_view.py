"""The A/B view on its own and in the window: swipe, flicker, difference and export against the arrays."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from guitools import make_image, wait_idle, write_png
from PySide6.QtCore import QPointF, Qt, QThreadPool

from pyramid_explorer.ab_compare import MODE_TITLES
from pyramid_explorer.app.ab_view import ABView
from pyramid_explorer.app.tool_export import ToolExportDialog
from pyramid_explorer.app.worker import JobRunner
from pyramid_explorer.core.export import MANIFEST_NAME, export_arrays
from pyramid_explorer.core.upsampling import MODES

H, W = 24, 32


@pytest.fixture
def runner():
    jobs = JobRunner()
    yield jobs
    assert jobs.shutdown()


@pytest.fixture
def view(qtbot, runner):
    widget = ABView(runner)
    qtbot.addWidget(widget)
    widget.resize(900, 600)
    widget.show()
    qtbot.waitExposed(widget)
    yield widget
    widget.close()


def offer(qtbot, view: ABView, candidates: dict, a: str, b: str) -> None:
    view.set_candidates(candidates, a=a, b=b)
    qtbot.waitUntil(lambda: view.result is not None and (view.result.a_name, view.result.b_name) == (a, b))


def flat_pair() -> dict[str, np.ndarray]:
    return {"dark": np.full((H, W), 40, np.uint8), "light": np.full((H, W), 200, np.uint8),
            "ramp": np.tile(np.arange(W, dtype=np.uint8) * 8, (H, 1))}


def screen_grey(view: ABView, image, x: float, y: float) -> int:
    """The grey drawn at source coordinate (x, y), read from a grab of the view's viewport."""
    box = view.panel.view_box
    graphics_view = box.scene().views()[0]
    point = graphics_view.mapFromScene(box.mapViewToScene(QPointF(x, y)))
    colour = image.pixelColor(point.x(), point.y())
    assert colour.red() == colour.green() == colour.blue()
    return colour.red()


@pytest.mark.parametrize("column", [3, 16, 27])
def test_swipe_draws_a_left_of_the_divider_and_b_right_of_it(qtbot, view, column):
    offer(qtbot, view, flat_pair(), "dark", "light")
    assert view.shown == "swipe" and view.divider.isVisible()
    assert view.divider_column() == W // 2  # a new comparison starts in the middle
    view.panel.view_box.setRange(xRange=(-0.5, W - 0.5), yRange=(-0.5, H - 0.5), padding=0)
    view.set_divider_column(column)
    assert view.divider_column() == column
    grab = view.panel.view_box.scene().views()[0].viewport().grab().toImage()
    for x in range(W):
        if abs(x + 0.5 - column) > 1:  # the divider line itself is drawn over the pixels it touches
            assert screen_grey(view, grab, x, H / 2) == (40 if x < column else 200), x
    (composite,), parameters = view.shown_arrays("tiff")
    expected = np.where(np.arange(W) < column, 40, 200).astype(np.uint8)
    np.testing.assert_array_equal(composite.array, np.tile(expected, (H, 1)))
    assert composite.details["divider_column"] == column and parameters["shown"] == "swipe"
    assert view.panel.value_text(W - 1, 0) == "B: light (31, 0): 200"  # the readout names what it reads


def test_dragging_the_divider_moves_the_swipe(qtbot, view):
    offer(qtbot, view, flat_pair(), "ramp", "light")
    view.panel.view_box.setRange(xRange=(-0.5, W - 0.5), yRange=(-0.5, H - 0.5), padding=0)
    assert view.divider.movable
    view.divider.setValue(9.5)  # what a drag does: the line's position changes
    (composite,), _ = view.shown_arrays("tiff")
    np.testing.assert_array_equal(composite.array[:, :10], flat_pair()["ramp"][:, :10])
    assert (composite.array[:, 10:] == 200).all()


def test_flicker_alternates_a_and_b_on_each_tick(qtbot, view):
    candidates = flat_pair()
    offer(qtbot, view, candidates, "dark", "light")
    view.rate.setValue(5.0)
    assert view.timer.interval() == 100  # one A and one B per period of 1/5 s
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert view.flicker.isChecked() and view.timer.isActive()
    names = {"A": "dark", "B": "light"}
    seen = []
    for _ in range(4):
        seen.append((view.shown, view.panel.layer.data is candidates[names[view.shown]]))
        view.timer.timeout.emit()
    assert seen == [("A", True), ("B", True), ("A", True), ("B", True)]
    assert not view.divider.isVisible()
    with qtbot.waitSignal(view.timer.timeout, timeout=5000):  # the real timer ticks too
        pass
    qtbot.keyClick(view, Qt.Key.Key_Space)
    assert not view.timer.isActive() and view.shown == "swipe"


def test_difference_is_a_minus_b_on_a_symmetric_scale(qtbot, view):
    top = np.iinfo(np.uint16).max
    a = np.zeros((5, 7, 3), np.uint16)
    b = np.full((5, 7, 3), 1000, np.uint16)
    a[0, 0], b[0, 0] = top, 0
    offer(qtbot, view, {"a": a, "b": b}, "a", "b")
    qtbot.keyClick(view, Qt.Key.Key_D)
    assert view.shown == "difference" and view.panel.layer is view.result.difference
    np.testing.assert_array_equal(view.result.difference.data, a.astype(np.float32) - b.astype(np.float32))
    lo, hi = view.panel.limits()
    assert lo == pytest.approx(-hi) and hi == pytest.approx(top)
    assert view.result.stats.max_abs == top
    assert f"max |A - B| {top}" in view.caption.text()


def test_a_against_itself_has_a_zero_difference(qtbot, view):
    image = make_image(H, W)
    offer(qtbot, view, {"x": image, "y": image + 1}, "x", "x")
    view.show_state("difference")
    assert not view.result.difference.data.any()
    assert view.result.stats.max_abs == 0 and "identical" in view.caption.text()
    assert view.panel.limits() == (-1.0, 1.0)


def test_keys_choose_what_is_shown(qtbot, view):
    candidates = flat_pair()
    offer(qtbot, view, candidates, "dark", "light")
    dark, light = candidates["dark"], candidates["light"]
    for key, shown, data in ((Qt.Key.Key_A, "A", dark), (Qt.Key.Key_B, "B", light),
                             (Qt.Key.Key_S, "swipe", light)):
        qtbot.keyClick(view, key)
        assert view.shown == shown and view.panel.layer.data is data


def test_a_cancelled_comparison_says_so(qtbot, view, runner):
    def slow(_request):  # keeps the worker busy until cancelled
        for _ in range(500):
            time.sleep(0.01)
            yield None

    runner.submit("slow", slow, None, lambda _: None, lambda _: None)
    view.set_candidates(flat_pair(), a="dark", b="light")
    runner.cancel()  # what Esc does
    qtbot.waitUntil(lambda: not runner.busy)
    assert view.result is None and "cancelled" in view.caption.text()


def test_candidates_of_other_shapes_are_refused(view):
    with pytest.raises(ValueError, match="differ in shape"):
        view.set_candidates({"a": np.zeros((2, 2)), "b": np.zeros((3, 3))})


def export_through_dialog(qtbot, view: ABView, out, fmt: str):
    view.export_button.click()
    dialog = view.findChildren(ToolExportDialog)[-1]
    dialog.folder.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData(fmt))
    with qtbot.waitSignal(view.export_requested) as blocker:
        dialog.export_button.click()
    request = blocker.args[0]
    export_arrays(request.image, request.out_dir, request.arrays, fmt=request.fmt,
                  parameters=request.parameters, source_path=request.source_path, force=request.force)
    return request


def test_export_writes_exactly_what_is_shown_and_asks_before_replacing(qtbot, view, tmp_path, monkeypatch):
    a, b = make_image(H, W), make_image(H, W)[::-1].copy()
    offer(qtbot, view, {"G[0]": a, "Bilinear": b}, "G[0]", "Bilinear")
    view.set_export_source(a, None, str(tmp_path / "unused"))
    out = tmp_path / "out"
    view.show_state("difference")
    export_through_dialog(qtbot, view, out, "npy")
    np.testing.assert_array_equal(np.load(out / "G_0_minus_Bilinear.npy"), a.astype(np.float32) - b)
    manifest = json.loads((out / MANIFEST_NAME).read_text())
    assert manifest["parameters"]["shown"] == "difference" and manifest["parameters"]["b"] == "Bilinear"
    view.show_state("B")
    export_through_dialog(qtbot, view, tmp_path / "b", "npy")
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "B_Bilinear.npy"), b)

    before = (out / "G_0_minus_Bilinear.npy").read_bytes()
    view.show_state("difference")
    monkeypatch.setattr(ToolExportDialog, "confirm_overwrite", lambda self, existing: False)
    view.export_button.click()
    dialog = view.findChildren(ToolExportDialog)[-1]
    dialog.folder.setText(str(out))
    dialog.format.setCurrentIndex(dialog.format.findData("npy"))
    with qtbot.assertNotEmitted(view.export_requested):
        dialog.export_button.click()
    assert "Nothing exported" in dialog.summary.text()
    assert (out / "G_0_minus_Bilinear.npy").read_bytes() == before
    dialog.close()


def test_nothing_to_export_is_said_in_the_caption(view):
    view.export_button.click()
    assert view.caption.text() == "Nothing to export yet"


def test_the_window_opens_it_on_the_compare_level_at_the_shared_camera(qtbot, window, tmp_path):
    image = make_image(37, 53)
    window.controller.open_path(write_png(tmp_path / "src.png", image))
    window.show_view("compare")
    wait_idle(qtbot, window)
    qtbot.keyClick(window, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)
    view = window.ab_compare.view
    assert view is not None and view.isVisible()
    for panel in window.tab("compare").panels:  # and from a Compare panel's context menu
        assert window.actions["ab_compare"] in panel.actions()
        assert panel.contextMenuPolicy() == Qt.ContextMenuPolicy.ActionsContextMenu
    names = [view.a_combo.itemText(n) for n in range(view.a_combo.count())]
    assert names == ["G[0]", *(MODE_TITLES[m] for m in MODES)]
    view.choose("pyrUp", "G[0]")
    qtbot.waitUntil(lambda: view.result is not None and view.result.a_name == "pyrUp")
    np.testing.assert_array_equal(view.result.b.data, image)
    np.testing.assert_array_equal(view.result.a.data, window.tab("compare").results["pyrup"].image.data)
    window.linker.set_camera((20.0, 10.0), 0.25)
    centre = view.panel.view_box.viewRect().center()
    assert (centre.x(), centre.y()) == pytest.approx((20.0, 10.0))

    window.controller.set_level(1)  # the Compare tab moves on: the A/B view lets the old level go
    assert view.result is None and view.a_combo.count() == 0
    assert "changed" in view.caption.text()
    wait_idle(qtbot, window)
    view.close()


def show_at_zoom(qtbot, view: ABView, zoom: float, side: int) -> None:
    """`zoom` screen pixels per source pixel around the image's centre, every reduction drawn."""
    box = view.panel.view_box
    half_w, half_h = box.width() / zoom / 2, box.height() / zoom / 2
    centre = side / 2 - 0.5 + 0.3  # off the half-pixel phase at which bilinear sampling looks grey too
    box.setRange(xRange=(centre - half_w, centre + half_w), yRange=(centre - half_h, centre + half_h),
                 padding=0)
    want = 1 if zoom >= 1 else round(1 / zoom)
    QThreadPool.globalInstance().waitForDone()
    qtbot.waitUntil(lambda: view.panel.display_factor == want and view._a_drawing.factor == want)
    qtbot.waitUntil(lambda: not view.panel.reduction_pending and not view._a_drawing.pending)


def test_both_sides_of_the_swipe_are_area_averaged_zoomed_out_and_crisp_zoomed_in(qtbot, view):
    side = 256
    board = (np.indices((side, side)).sum(axis=0) % 2 * 255).astype(np.uint8)
    offer(qtbot, view, {"board": board, "inverse": 255 - board}, "board", "inverse")
    view.set_divider_column(side // 2)
    points = [(x, y) for x in range(8, side - 8, 9) for y in range(8, side - 8, 9)
              if abs(x - side / 2) > 8]  # off the divider line, on both sides of it
    show_at_zoom(qtbot, view, 0.25, side)
    view.panel.paint_now()
    grab = view.panel.view_box.scene().views()[0].viewport().grab().toImage()
    greys = [screen_grey(view, grab, x, y) for x, y in points]
    assert min(greys) >= 120 and max(greys) <= 135, (min(greys), max(greys))  # flat grey, not aliased
    show_at_zoom(qtbot, view, 4.0, side)
    view.panel.paint_now()
    grab = view.panel.view_box.scene().views()[0].viewport().grab().toImage()
    box = view.panel.view_box.viewRect()
    shown = [(x, y) for x in range(int(box.left()) + 1, int(box.right()) - 1)
             for y in range(int(box.top()) + 1, int(box.bottom()) - 1) if abs(x + 0.5 - side / 2) > 1]
    assert shown and {screen_grey(view, grab, x, y) for x, y in shown} == {0, 255}
    for x, y in shown[::max(1, len(shown) // 200)]:  # A left of the divider, B right: each its own value
        expected = board[y, x] if x < side // 2 else 255 - board[y, x]
        assert screen_grey(view, grab, x, y) == expected
