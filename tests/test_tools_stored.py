"""The lazy view's Qt-free part: which files are stored pyramids, where levels sit, which region to read."""

import math

import numpy as np
import pytest
import tifffile
from helpers import random_image

from pyramid_explorer.display import make_layer
from pyramid_explorer.jobs import OpenRequest
from pyramid_explorer.tools.stored import (
    RegionRequest,
    RegionResult,
    StoredImage,
    StoredLevel,
    StoredState,
    contains,
    level_for_zoom,
    level_window,
    ngff_placement,
    open_any,
    plan_region,
    read_region,
    region_for,
    region_key,
    region_nbytes,
    stored_pyramid,
    tiff_placement,
)


def pyrdown_levels(shape, count):
    """StoredLevels of pyrDown sizes, placed by the jobs convention (scale 2**i, origin -2**i / 2)."""
    h, w = shape
    levels = []
    for i in range(count):
        levels.append(StoredLevel(i, (h, w), 2.0**i, (-(2.0**i) / 2, -(2.0**i) / 2)))
        h, w = (h + 1) // 2, (w + 1) // 2
    return levels


def write_pyramidal_tiff(path, levels):
    """Level 0 with the others as its sub-IFDs (how OME-TIFF and tifffile store pyramids)."""
    colour = {"photometric": "rgb", "extrasamples": ["unassalpha"] if levels[0].shape[-1] == 4 else []}
    options = colour if levels[0].ndim == 3 else {"photometric": "minisblack"}
    with tifffile.TiffWriter(path) as tif:
        tif.write(levels[0], tile=(32, 32), subifds=len(levels) - 1, **options)
        for level in levels[1:]:
            tif.write(level, tile=(32, 32), subfiletype=1, **options)


@pytest.mark.parametrize(("upp", "level"), [(0.25, 0), (1.0, 0), (1.99, 0), (2.0, 1), (5.0, 2), (1e9, 4)])
def test_level_for_zoom_is_the_coarsest_with_a_pixel_per_screen_pixel(upp, level):
    assert level_for_zoom(pyrdown_levels((100, 150), 5), upp) == level


def test_level_window_maps_source_rectangle_to_level_pixels():
    level = pyrdown_levels((101, 75), 3)[2]  # 26 x 19, pixel j centred on source 4j
    # source x in [7.9, 20.1]: pixels whose extent [4j - 2, 4j + 2) meets it are j = 2..5
    assert level_window(level, (7.9, -100, 20.1, 1000)) == (0, 26, 2, 6)
    assert level_window(level, (1000, 0, 2000, 10)) is None


@pytest.mark.parametrize("view", [(10.2, 33.3, 400.7, 250.0), (-50, -50, 20, 20), (3000, 1000, 3999, 1999),
                                  (0, 0, 4096, 4096)])
@pytest.mark.parametrize("tile", [1, 64, 256])
def test_region_holds_the_view_on_the_tile_grid_within_the_level(view, tile):
    level = StoredLevel(0, (3001, 4000), 1.0, (-0.5, -0.5))
    visible = level_window(level, view)
    region = region_for(level, view, tile=tile, max_side=10_000)
    assert contains(region, visible)
    r0, r1, c0, c1 = region
    assert 0 <= r0 < r1 <= 3001 and 0 <= c0 < c1 <= 4000
    assert r0 % tile == 0 and c0 % tile == 0
    assert r1 % tile == 0 or r1 == 3001
    assert c1 % tile == 0 or c1 == 4000
    # no more than the margin (a quarter of the span each side) and a tile beyond the view
    span_r, span_c = visible[1] - visible[0], visible[3] - visible[2]
    assert r1 - r0 <= span_r + 2 * (math.ceil(span_r / 4) + tile)
    assert c1 - c0 <= span_c + 2 * (math.ceil(span_c / 4) + tile)


def test_region_wider_than_the_cap_is_cut_around_the_view_centre():
    level = StoredLevel(0, (100_000, 100_000), 1.0, (-0.5, -0.5))
    region = region_for(level, (20_000, 30_000, 80_000, 31_000), tile=256, max_side=4096)
    r0, r1, c0, c1 = region
    assert c1 - c0 == 4096 and c0 <= 50_000 <= c1
    assert r1 - r0 <= 4096 and r0 <= 30_000 and 31_000 <= r1


def test_ngff_placement_is_relative_to_the_first_dataset():
    multiscale = {"axes": [{"name": "c"}, {"name": "y"}, {"name": "x"}], "datasets": [
        {"path": "0", "coordinateTransformations": [{"type": "scale", "scale": [1, 0.5, 0.5]},
                                                    {"type": "translation", "translation": [0, 10, 20]}]},
        {"path": "1", "coordinateTransformations": [{"type": "scale", "scale": [1, 1.0, 1.0]},
                                                    {"type": "translation",
                                                     "translation": [0, 10.25, 20.25]}]},
    ]}
    (s0, o0), (s1, o1) = ngff_placement(multiscale)
    assert (s0, o0) == (1.0, (-0.5, -0.5))
    # level-1 pixel 0 is centred at physical (20.25, 10.25): source pixel ((20.25 - 20) / 0.5) = 0.5
    assert s1 == 2.0 and o1 == pytest.approx((0.5 - 1.0, 0.5 - 1.0))


def test_tiff_placement_follows_pyrdown_for_halved_sizes_and_aligns_edges_otherwise():
    places = tiff_placement([(301, 400, 3), (151, 200, 3), (76, 100, 3), (30, 40, 3)])
    assert places[:3] == [(1.0, (-0.5, -0.5)), (2.0, (-1.0, -1.0)), (4.0, (-2.0, -2.0))]
    assert places[3] == (10.0, (-0.5, -0.5))


def test_stored_pyramid_recognises_zarr_folders_and_pyramidal_tiffs_only(tmp_path):
    image = random_image((40, 30), np.uint8, seed=1)
    tifffile.imwrite(tmp_path / "flat.tif", image)
    write_pyramidal_tiff(tmp_path / "pyr.tif", [image, image[::2, ::2]])
    (tmp_path / "x.zarr").mkdir()
    (tmp_path / "x.zarr" / ".zgroup").write_text('{"zarr_format": 2}')
    (tmp_path / "plain").mkdir()
    (tmp_path / "a.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "bad.tif").write_bytes(b"II*\0garbage")
    assert stored_pyramid(tmp_path / "pyr.tif") == ("tiff", tmp_path / "pyr.tif")
    assert stored_pyramid(tmp_path / "x.zarr") == ("ome-zarr", tmp_path / "x.zarr")
    assert stored_pyramid(tmp_path / "x.zarr" / ".zgroup") == ("ome-zarr", tmp_path / "x.zarr")
    for name in ("flat.tif", "plain", "a.png", "bad.tif", "missing.tif"):
        assert stored_pyramid(tmp_path / name) is None, name


@pytest.mark.parametrize(("dtype", "channels"), [(np.uint8, 3), (np.uint16, None), (np.float32, 4)])
def test_open_and_read_a_region_of_a_pyramidal_tiff(tmp_path, dtype, channels):
    pytest.importorskip("dask")
    levels = [random_image((97, 131), dtype, channels, seed=2)]
    levels += [levels[0][::2, ::2].copy(), levels[0][::4, ::4].copy()]
    path = tmp_path / "pyr.tif"
    write_pyramidal_tiff(path, levels)
    items = list(open_any(OpenRequest(5, path=str(path))))
    image = items[-1]
    assert isinstance(image, StoredImage) and image.image_id == 5 and image.kind == "tiff"
    assert [lv.shape for lv in image.levels] == [lv.shape for lv in levels]
    assert [lv.scale for lv in image.levels] == [1.0, 2.0, 4.0]
    for stats, level in zip(image.stats, levels, strict=True):  # small levels are read whole
        assert (stats.height, stats.width) == level.shape[:2]
        assert stats.minimum == pytest.approx(float(level.min()))
        assert stats.maximum == pytest.approx(float(level.max()))
    region = list(read_region(RegionRequest(image, 1, (3, 40), (17, 60))))[-1]
    np.testing.assert_array_equal(region.layer.data, levels[1][3:40, 17:60])
    assert region.layer.scale == 2.0
    assert region.layer.origin == (-1.0 + 17 * 2, -1.0 + 3 * 2)  # level-1 pixel (3, 17) on source (6, 34)


def test_the_plan_wants_the_region_over_the_view_and_its_job_yields_that_key(tmp_path):
    pytest.importorskip("dask")
    levels = [random_image((600, 700), np.uint16, None, seed=3)]
    levels.append(levels[0][::2, ::2].copy())
    path = tmp_path / "pyr.tif"
    write_pyramidal_tiff(path, levels)
    image = list(open_any(OpenRequest(9, path=str(path))))[-1]
    view = (300.2, 260.5, 420.7, 330.1)
    plan = plan_region(StoredState(image, 0, view, shown=None))
    (r0, r1, c0, c1) = region_for(image.levels[0], view)
    assert plan.wanted == ((9, 0, (r0, r1, c0, c1)),) and (r1 - r0, c1 - c0) != (600, 700)
    region = list(plan.job(plan.request(plan.wanted)))[-1]
    assert region_key(region) == plan.wanted[0]  # the key the plan asks for is the one the result has
    np.testing.assert_array_equal(region.layer.data, levels[0][r0:r1, c0:c1])
    # the region on screen covers a small pan: nothing to read; another level or a far pan reads again
    assert plan_region(StoredState(image, 0, (305.0, 262.0, 425.0, 333.0), region)).wanted == ()
    assert plan_region(StoredState(image, 1, view, region)).wanted[0][1] == 1
    far = plan_region(StoredState(image, 0, (10.0, 10.0, 60.0, 60.0), region))
    assert far.wanted[0][2] == region_for(image.levels[0], (10.0, 10.0, 60.0, 60.0))
    # a view beside the image wants nothing
    assert plan_region(StoredState(image, 0, (5000.0, 5000.0, 5100.0, 5100.0), None)).wanted == ()


@pytest.mark.parametrize(("channels", "expected"), [
    (None, 4000 + 2000),  # uint16 values, one uint8 code each
    (3, 12000 + 6000),  # a code per channel
    (2, 8000 + 2000 + 4000),  # grey + alpha: the grey channel drawn, one code per pixel
])
def test_a_region_counts_its_values_codes_and_drawn_array_not_its_histogram(channels, expected):
    data = random_image((40, 50), np.uint16, channels, seed=4)
    display = data[..., 0] if channels == 2 else data  # as read_region draws grey + alpha
    layer = make_layer(data, 0, display=display)
    region = RegionResult(image_id=1, level=0, rows=(0, 40), cols=(0, 50), layer=layer)
    assert region_nbytes(region) == expected
