"""Stored pyramids in the window: OME-Zarr folders and pyramidal TIFFs open lazily; only the view is read."""

from __future__ import annotations

import functools
import math
import re
import sys
import threading

import cv2
import numpy as np
import pytest
import tifffile
from guitools import drop, make_image, wait_idle, write_png
from PySide6.QtCore import QPointF, QThreadPool
from PySide6.QtWidgets import QFileDialog
from test_launch import explorer

from pyramid_explorer.app.image_panel import format_values
from pyramid_explorer.tools import stored
from pyramid_explorer.tools.stored import level_window

pytest.importorskip("dask")
zarr = pytest.importorskip("zarr")
from pyramid_explorer.core import chunked, omezarr  # noqa: E402 - only with the `big` extra

BIG = 4096  # level-0 side of the synthetic stored pyramid: 32 MB of uint16, 4 levels
BIG_LEVELS = 4
CHUNK = 256
LEVEL0_CHUNK = re.compile(r"^0/\d+/\d+$")  # zarr store keys of level-0 chunks (metadata keys differ)


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """As the GUI conftest's, except zarr's I/O threads ("zarr_io" and its executor's "asyncio_N"), which
    zarr starts on first use and keeps for the life of the process by design."""
    def running():
        return {t.ident for t in threading.enumerate() if not isinstance(t, threading._DummyThread)
                and t.name != "zarr_io" and not t.name.startswith("asyncio_")}

    before = running()
    yield
    assert QThreadPool.globalInstance().waitForDone(5000)
    assert running() <= before, f"threads left running: {running() - before}"


def big_value(level: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """The synthetic pyramid's pixels: a formula of level, row and column, so any region has a reference."""
    return ((rows[:, None] * 3 + cols[None, :] * 5 + 1000 * level) % 65536).astype(np.uint16)


@pytest.fixture(scope="module")
def big_zarr(tmp_path_factory):
    """A 4096 x 4096 grey uint16 OME-Zarr of 4 levels at scale 2**i, written tile by tile."""
    path = tmp_path_factory.mktemp("big") / "big.zarr"
    root = zarr.open_group(str(path), mode="w", zarr_format=2)
    shapes = [(BIG >> i, BIG >> i) for i in range(BIG_LEVELS)]
    arrays = omezarr.create_image(root, shapes, np.dtype(np.uint16), CHUNK)
    for level, (array, (h, w)) in enumerate(zip(arrays, shapes, strict=True)):
        for y in range(0, h, 1024):
            for x in range(0, w, 1024):
                tile = big_value(level, np.arange(y, min(h, y + 1024)), np.arange(x, min(x + 1024, w)))
                omezarr.write_tile(array, y, x, tile)
    root.attrs["multiscales"] = omezarr.multiscales("big", BIG_LEVELS, 1, "gaussian", {})
    return path


@pytest.fixture
def chunk_reads(monkeypatch):
    """Keys of every chunk zarr reads from a local store during the test."""
    from zarr.storage import LocalStore

    keys: list[str] = []
    original = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    return keys


def wait_lazy(qtbot, window, timeout: int = 20_000) -> None:
    """Wait until a stored pyramid is open, a region of it is shown and nothing is pending."""
    qtbot.waitUntil(lambda: window.stored.image is not None and window.stored.shown is not None
                    and window.is_settled() and window.stored_view.panel.layer is window.stored.shown.layer,
                    timeout=timeout)


def visible_window(window):
    """(row0, row1, col0, col1) of the shown level that the lazy view's box covers now."""
    box = window.stored_view.panel.view_box
    (x0, x1), (y0, y1) = box.viewRange()
    return level_window(window.stored.image.levels[window.stored.level], (x0, y0, x1, y1))


def assert_table_shows(window, shapes):
    model = window.level_panel.model
    assert model.rowCount() == len(shapes)
    for row, shape in enumerate(shapes):
        assert (model.stats(row).height, model.stats(row).width) == shape[:2]
        assert model.index(row, 1).data() == f"{shape[1]} x {shape[0]}"


def test_ome_zarr_export_opens_with_its_stored_levels(qtbot, window, tmp_path):
    image = make_image(75, 101)
    out = tmp_path / "small.zarr"
    chunked.export_ome_zarr(chunked.da.from_array(image, chunks=(32, 32, 3)), out, chunk=32)
    window.controller.open_path(str(out))
    wait_lazy(qtbot, window)
    stored = [tuple(a.shape) for a in chunked.stored_levels(out)]
    assert_table_shows(window, stored)
    assert window.central_stack.currentWidget() is window.stored_view
    assert not window.level_panel.depth.isEnabled()
    assert window.windowTitle().startswith("small.zarr")
    # fitted: level 0 shown whole, in source coordinates, with the stored values
    region = window.stored.shown
    assert region.level == 0 and region.rows == (0, 75) and region.cols == (0, 101)
    np.testing.assert_array_equal(region.layer.data, image)  # level 0 of the export is the image itself
    # choosing level 2 in the table shows it at the pyrDown placement: pixel j centred on source 4j
    window.level_panel.table.setCurrentIndex(window.level_panel.model.index(2, 0))
    wait_lazy(qtbot, window)
    assert window.stored.shown.level == 2 and not window.stored_view.auto.isChecked()
    levels = chunked.stored_levels(out)
    np.testing.assert_array_equal(window.stored.shown.layer.data, levels[2].compute(scheduler="synchronous"))
    item = window.stored_view.panel.image_item
    for j in (0, 5, 25):
        centre = item.mapToParent(QPointF(j + 0.5, 0.5))
        assert (centre.x(), centre.y()) == pytest.approx((4 * j, 0))


def test_pyramidal_tiff_opens_with_its_stored_levels_by_drop(qtbot, window, tmp_path):
    levels = [make_image(83, 120)]
    levels += [levels[0][::2, ::2].copy(), levels[0][::4, ::4].copy()]
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(levels[0], tile=(16, 16), subifds=2, photometric="rgb")
        for level in levels[1:]:
            tif.write(level, tile=(16, 16), subfiletype=1, photometric="rgb")
    drop(window, path)
    wait_lazy(qtbot, window)
    assert_table_shows(window, [level.shape for level in levels])
    window.controller.set_level(1)  # as PgDn does
    wait_lazy(qtbot, window)
    np.testing.assert_array_equal(window.stored.shown.layer.data, levels[1])
    # the readout names the level's own pixel: level-1 pixel (row 3, column 7) is centred on source (14, 6)
    text = window.stored_view.panel.value_text(14.4, 6.3)
    assert text == f"stored (7, 3): {format_values(levels[1][3, 7])}"


def test_only_the_region_in_view_is_read_and_a_pan_reads_the_next(qtbot, window, big_zarr, chunk_reads,
                                                                   monkeypatch):
    monkeypatch.setattr(window.stored.cache, "budget", 1)  # keep only the region on screen
    window.controller.open_path(str(big_zarr))
    wait_lazy(qtbot, window)
    assert_table_shows(window, [(BIG >> i, BIG >> i) for i in range(BIG_LEVELS)])
    # fitted, the level follows the zoom: a coarse level is shown, level 0 has not been touched
    assert window.stored.level > 0 and window.stored_view.auto.isChecked()
    assert window.level_panel.table.currentIndex().row() == window.stored.level
    assert not [key for key in chunk_reads if LEVEL0_CHUNK.match(key)]

    for centre in ((1000.3, 2100.7), (3000.2, 900.5)):  # zoom to 1:1 there, then pan
        window.linker.set_camera(centre, 1.0)
        wait_lazy(qtbot, window)
        region = window.stored.shown
        assert region.level == 0 and window.level_panel.table.currentIndex().row() == 0
        (r0, r1), (c0, c1) = region.rows, region.cols
        visible = visible_window(window)
        assert r0 <= visible[0] and visible[1] <= r1 and c0 <= visible[2] and visible[3] <= c1
        assert (r1 - r0) * (c1 - c0) < BIG * BIG / 4  # a few screens, not the level
        np.testing.assert_array_equal(region.layer.data, big_value(0, np.arange(r0, r1), np.arange(c0, c1)))
        # zarr read the chunks of that region and no others of level 0
        read = {tuple(int(n) for n in key.split("/")[1:]) for key in chunk_reads if LEVEL0_CHUNK.match(key)}
        inside = {(i, j) for i in range(r0 // CHUNK, -(-r1 // CHUNK))
                  for j in range(c0 // CHUNK, -(-c1 // CHUNK))}
        assert read == inside
        chunk_reads.clear()
        assert window.stored.cached() == (1, region.layer.data.nbytes + region.layer.pixels.nbytes)
        # placed in source coordinates: the pixel under the centre holds the stored value there
        col, row = (math.floor(v + 0.5) for v in centre)
        value = big_value(0, np.array([row]), np.array([col]))[0, 0]
        assert window.stored_view.panel.value_text(*centre) == f"stored ({col}, {row}): {value}"

    # a small pan inside the margin reads nothing
    shown = window.stored.shown
    window.linker.set_camera((3010.0, 905.0), 1.0)
    wait_lazy(qtbot, window)
    assert window.stored.shown is shown and not chunk_reads


def test_going_back_to_a_region_read_before_is_served_from_the_cache(qtbot, window, big_zarr, chunk_reads):
    window.controller.open_path(str(big_zarr))
    wait_lazy(qtbot, window)
    window.linker.set_camera((1000.3, 2100.7), 1.0)
    wait_lazy(qtbot, window)
    first = window.stored.shown
    window.linker.set_camera((3000.2, 900.5), 1.0)  # far away: another region is read
    wait_lazy(qtbot, window)
    assert window.stored.shown is not first and window.stored.cached()[0] >= 2
    chunk_reads.clear()
    window.linker.set_camera((1000.3, 2100.7), 1.0)
    wait_lazy(qtbot, window)
    assert window.stored.shown is first and not [key for key in chunk_reads if LEVEL0_CHUNK.match(key)]


def test_a_fine_level_chosen_at_a_coarse_zoom_is_read_in_bounded_pieces(qtbot, window, big_zarr, monkeypatch):
    monkeypatch.setattr(stored, "region_for", functools.partial(stored.region_for, max_side=1024))
    window.controller.open_path(str(big_zarr))
    wait_lazy(qtbot, window)
    window.controller.set_level(0)  # whole image in view, level 0 chosen: only a centred piece is read
    wait_lazy(qtbot, window)
    region = window.stored.shown
    assert region.level == 0
    assert (region.rows[1] - region.rows[0], region.cols[1] - region.cols[0]) == (1024, 1024)
    assert "read 1024 x 1024 of 4096 x 4096" in window.stored_view.panel._note.text()


def test_open_folder_action_and_back_to_an_ordinary_image(qtbot, window, big_zarr, tmp_path, monkeypatch):
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *args: str(big_zarr))
    window.actions["open_folder"].trigger()
    wait_lazy(qtbot, window)
    assert window.central_stack.currentWidget() is window.stored_view
    window.actions["export"].trigger()
    assert "pyramid-explorer export" in window.status_message()
    window.controller.open_path(write_png(tmp_path / "plain.png", make_image(30, 40)))
    wait_idle(qtbot, window)
    assert window.central_stack.currentWidget() is window.tabs
    assert window.stored.image is None and window.level_panel.depth.isEnabled()
    assert window.level_panel.model.rowCount() == window.controller.pyramid.levels


def test_without_the_big_extra_an_ome_zarr_folder_is_refused_in_one_line(qtbot, window, big_zarr,
                                                                         monkeypatch):
    import pyramid_explorer.core

    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.delitem(sys.modules, "pyramid_explorer.core.chunked")
    monkeypatch.delattr(pyramid_explorer.core, "chunked")
    window.controller.open_path(str(big_zarr))
    qtbot.waitUntil(lambda: window.banner.isVisible() and window.is_settled())
    message = window.banner.label.text()
    assert "big.zarr" in message and "pip install 'pyramid-explorer[big]'" in message and "\n" not in message
    assert window.stored.image is None



def test_without_the_big_extra_a_pyramidal_tiff_opens_as_an_ordinary_image(qtbot, window, tmp_path,
                                                                           monkeypatch):
    import pyramid_explorer.core

    image = make_image(40, 56)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, tile=(16, 16), subifds=1, photometric="rgb")
        tif.write(image[::2, ::2].copy(), tile=(16, 16), subfiletype=1, photometric="rgb")
    monkeypatch.setitem(sys.modules, "dask", None)
    monkeypatch.delitem(sys.modules, "pyramid_explorer.core.chunked")
    monkeypatch.delattr(pyramid_explorer.core, "chunked")
    window.controller.open_path(str(path))
    wait_idle(qtbot, window)
    np.testing.assert_array_equal(window.controller.loaded.image, image)
    assert window.central_stack.currentWidget() is window.tabs and window.stored.image is None


def test_screenshot_of_a_stored_pyramid_at_a_chosen_level(tmp_path):
    image = make_image(90, 120)
    folder = tmp_path / "shot.zarr"
    chunked.export_ome_zarr(chunked.da.from_array(image, chunks=(32, 32, 3)), folder, chunk=32,
                            laplacian=False)
    out = tmp_path / "shot.png"
    run = explorer(str(folder), "--screenshot", str(out), "--level", "1", home=tmp_path)
    assert run.returncode == 0, run.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and shot.std() > 10


def test_the_stored_view_is_marked_out_of_date_while_another_level_is_read(qtbot, window, tmp_path):
    out = tmp_path / "small.zarr"
    chunked.export_ome_zarr(chunked.da.from_array(make_image(75, 101), chunks=(32, 32, 3)), out, chunk=32)
    window.controller.open_path(str(out))
    wait_lazy(qtbot, window)
    panel = window.stored_view.panel
    assert window.stored.shown.level == 0 and not panel.is_stale and window.all_current()
    window.controller.set_level(2)  # as PgDn twice does: level 0's pixels stay until level 2 is read
    assert panel.is_stale and panel.stale_text() == "reading stored level 2..."
    assert panel.title().startswith("[out of date] Stored level 0") and not window.all_current()
    wait_lazy(qtbot, window)
    assert window.stored.shown.level == 2 and not panel.is_stale
    assert panel.title().startswith("Stored level 2")
