"""Exporting some levels of a pyramid (`ExportOptions.selected_levels`): exactly those levels of it."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from helpers import hand_mosaic, random_image, read_back

from pyramid_explorer.core.export import (
    MANIFEST_NAME,
    ExportOptions,
    export_levels,
    export_pyramid,
    planned_files,
)
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid, max_levels


def manifest(folder):
    return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))


@pytest.mark.parametrize(("shape", "dtype", "channels"),
                         [((37, 29), np.uint8, 3), ((21, 40), np.float32, None), ((33, 33), np.uint16, 4)])
def test_selected_levels_are_those_of_the_whole_pyramid(tmp_path, shape, dtype, channels):
    image = random_image(shape, dtype, channels, seed=5)
    gauss, lap = gaussian_pyramid(image), laplacian_pyramid(image)
    result = export_pyramid(image, tmp_path, selected_levels=[3, 1], kinds=["gaussian", "laplacian"])
    assert [r.name for r in result.files] == ["gaussian_01.tiff", "gaussian_03.tiff",
                                              "laplacian_01.tiff", "laplacian_03.tiff"]
    for i in (1, 3):
        for kind, want in (("gaussian", gauss[i]), ("laplacian", lap[i])):
            got = read_back(tmp_path / f"{kind}_{i:02d}.tiff")
            assert got.dtype == want.dtype and got.tobytes() == np.ascontiguousarray(want).tobytes()
    params = manifest(tmp_path)["parameters"]
    assert params["levels_exported"] == [1, 3] and params["levels"] == len(gauss)
    on_disk = sorted(p.name for p in tmp_path.iterdir())
    assert on_disk == sorted([r.name for r in result.files] + [MANIFEST_NAME])


def test_the_last_level_of_a_counted_pyramid_is_its_coarsest_gaussian(tmp_path):
    image = random_image((40, 30), np.uint8, None, seed=6)
    export_pyramid(image, tmp_path, levels=3, selected_levels=[2], kinds=["laplacian"])
    band = read_back(tmp_path / "laplacian_02.tiff")
    assert np.array_equal(band, laplacian_pyramid(image, 3)[2])
    assert np.array_equal(band, gaussian_pyramid(image, 3)[2].astype(np.float32))


def test_a_count_alone_exports_levels_0_to_n_minus_1_as_before(tmp_path):
    image = random_image((30, 30), np.uint8, 3, seed=7)
    options = ExportOptions(levels=3, kinds=("gaussian",))
    assert export_levels(image.shape, options) == (3, (0, 1, 2))
    assert planned_files(image.shape, options) == ["gaussian_00.tiff", "gaussian_01.tiff", "gaussian_02.tiff",
                                                   MANIFEST_NAME]
    export_pyramid(image, tmp_path, levels=3, kinds=["gaussian"])
    assert manifest(tmp_path)["parameters"]["levels_exported"] == [0, 1, 2]


def test_upsampled_residual_and_mosaic_follow_the_selection(tmp_path):
    image = random_image((24, 18), np.uint8, None, seed=8)
    count = max_levels(image.shape)
    last = count - 1
    result = export_pyramid(image, tmp_path, selected_levels=[2, last],
                            kinds=["upsampled", "residual", "mosaic"], modes=["nearest"])
    assert [r.name for r in result.files] == ["upsampled_02_nearest.tiff", "mosaic.tiff"]
    skipped = manifest(tmp_path)["skipped"]
    assert [(s["kind"], s["level"]) for s in skipped] == [("residual", 0)]
    gauss = gaussian_pyramid(image)
    assert np.array_equal(read_back(tmp_path / "mosaic.tiff"), hand_mosaic([gauss[2], gauss[last]]))
    layout = next(f for f in manifest(tmp_path)["files"] if f["kind"] == "mosaic")["layout"]
    assert [entry["level"] for entry in layout] == [2, last]


def test_levels_the_pyramid_lacks_are_refused_naming_what_it_has(tmp_path):
    image = random_image((16, 16), np.uint8, None, seed=9)  # 5 levels: 16, 8, 4, 2, 1
    with pytest.raises(ValueError, match=r"level 7 is not in this pyramid: it has levels 0 to 4"):
        export_pyramid(image, tmp_path, selected_levels=[1, 7])
    with pytest.raises(ValueError, match=r"level 3 .* 3 were asked for, of its levels 0 to 4"):
        planned_files(image.shape, ExportOptions(levels=3, selected_levels=(3,)))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", [(), (-1,), (1.5,), (True,)])
def test_a_selection_must_be_level_numbers(bad):
    with pytest.raises(ValueError, match="selected levels must be level numbers"):
        ExportOptions(selected_levels=bad)


def test_a_pyramid_file_takes_levels_from_0_only(tmp_path):
    image = random_image((32, 20), np.uint8, 3, seed=10)
    with pytest.raises(ValueError, match="ome-tiff format writes a pyramid from level 0"):
        ExportOptions(fmt="ome-tiff", kinds=("gaussian",), selected_levels=(1, 2))
    export_pyramid(image, tmp_path, fmt="ome-tiff", kinds=["gaussian"], selected_levels=[0, 1, 2])
    with tifffile.TiffFile(tmp_path / "gaussian.ome.tif") as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    want = gaussian_pyramid(image)[:3]
    assert [lv.shape for lv in levels] == [w.shape for w in want]
    assert all(np.array_equal(got, w) for got, w in zip(levels, want, strict=True))
    assert manifest(tmp_path)["parameters"]["levels_exported"] == [0, 1, 2]
