"""Export core: every kind in every format read back and compared with the engine's arrays, the manifest
against the files on disk, and the never-destructive rules (conflicts, atomic writes, failures, cancel)."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from helpers import hand_mosaic, random_image, read_back, reference_arrays

import pyramid_explorer
from pyramid_explorer.core import export, export_files
from pyramid_explorer.core.export import (
    KINDS,
    MANIFEST_NAME,
    ExportConflictError,
    ExportError,
    ExportOptions,
    export_pyramid,
    iter_export,
    mosaic_layout,
    pyramid_mosaic,
)
from pyramid_explorer.core.pyramid import (
    gaussian_pyramid,
    laplacian_pyramid,
    max_levels,
)
from pyramid_explorer.core.upsampling import MODES, upsample

IMAGES = [(np.uint8, None), (np.uint8, 3), (np.uint16, 4), (np.float32, 3)]


def assert_bit_exact(got: np.ndarray, want: np.ndarray) -> None:
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == np.ascontiguousarray(want).tobytes()


def load_manifest(folder: Path) -> dict:
    return json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))


def result_names(result) -> list[str]:
    return [record.name for record in result.files]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


@pytest.mark.parametrize("fmt", ["tiff", "npy"])
@pytest.mark.parametrize(("dtype", "channels"), IMAGES)
def test_exact_formats_round_trip_every_kind(tmp_path, fmt, dtype, channels):
    image = random_image((13, 10), dtype, channels, seed=3)
    result = export_pyramid(image, tmp_path, kinds=KINDS, fmt=fmt)
    want = reference_arrays(image)
    records = {(r.kind, r.level, r.mode): r for r in result.files if r.kind != "mosaic"}
    assert set(records) == set(want)
    for key, record in records.items():
        assert record.role == "data"
        assert_bit_exact(read_back(tmp_path / record.name), want[key])
    mosaic = next(r for r in result.files if r.kind == "mosaic")
    assert_bit_exact(read_back(tmp_path / mosaic.name), hand_mosaic(gaussian_pyramid(image)))
    assert leftovers(tmp_path) == []


def test_int16_storage_keeps_integer_bands(tmp_path):
    image = random_image((9, 14), np.uint8, 3, seed=5)
    result = export_pyramid(image, tmp_path, kinds=["laplacian", "residual"], storage="int16")
    want = reference_arrays(image, storage="int16")
    for record in result.files:
        assert_bit_exact(read_back(tmp_path / record.name), want[record.kind, record.level, record.mode])
    assert read_back(tmp_path / "laplacian_00.tiff").dtype == np.int16
    assert not read_back(tmp_path / "residual.tiff").any()  # int16 storage is exact


def test_colour_tiff_is_rgb_for_other_readers(tmp_path):
    """OpenCV (libtiff) must see the same colours: photometric RGB, not three grey planes."""
    image = random_image((11, 7), np.uint8, 3, seed=1)
    export_pyramid(image, tmp_path, kinds=["gaussian"], levels=1)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / "gaussian_00.tiff")),
                                  cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


@pytest.mark.parametrize(("dtype", "channels"),
                         [(np.uint8, None), (np.uint8, 3), (np.uint16, 4), (np.uint16, None)])
def test_png_gaussian_and_mosaic_exact(tmp_path, dtype, channels):
    image = random_image((15, 8), dtype, channels, seed=2)
    result = export_pyramid(image, tmp_path, kinds=["gaussian", "mosaic"], fmt="png")
    gauss = gaussian_pyramid(image)
    for record in result.files:
        got = read_back(tmp_path / record.name)
        want = gauss[record.level] if record.kind == "gaussian" else hand_mosaic(gauss)
        assert record.role == "data"
        assert_bit_exact(got, want)


def test_png_signed_kinds_are_marked_visualisations(tmp_path):
    image = random_image((12, 17), np.uint8, 3, seed=4)
    result = export_pyramid(image, tmp_path, kinds=["laplacian", "residual"], fmt="png")
    lap = laplacian_pyramid(image)
    by_name = {r.name: r for r in result.files}
    for i, band in enumerate(lap[:-1]):
        record = by_name[f"laplacian_{i:02d}.png"]
        scale = float(np.abs(band).max())
        expected = np.clip(np.rint(128 + band.astype(np.float64) * 127 / scale), 0, 255).astype(np.uint8)
        got = read_back(tmp_path / record.name)
        assert record.role == "visualisation" and record.dtype == "uint8"
        assert record.details["visualisation"]["scale"] == pytest.approx(scale)
        assert np.abs(got.astype(int) - expected).max() <= 1  # float32 vs float64 rounding at .5
        assert got[band == 0].tolist() == [128] * int((band == 0).sum())
    # The coarsest band is a Gaussian level with integer values: exact data, not a visualisation.
    last = by_name[f"laplacian_{len(lap) - 1:02d}.png"]
    assert last.role == "data"
    assert_bit_exact(read_back(tmp_path / last.name), lap[-1].astype(np.uint8))
    # A zero residual (exact reconstruction) is uniform grey 128.
    assert by_name["residual.png"].role == "visualisation"
    assert (read_back(tmp_path / "residual.png") == 128).all()


def test_png_of_float_data_is_a_visualisation_of_the_source_range(tmp_path):
    image = random_image((10, 9), np.float32, None, seed=6) * 4 - 1  # values in [-1, 3)
    result = export_pyramid(image, tmp_path, kinds=["gaussian", "upsampled"], fmt="png", modes=["bilinear"])
    low, high = float(image.min()), float(image.max())
    for record in result.files:
        assert record.role == "visualisation" and record.dtype == "uint8"
        assert record.details["visualisation"]["low"] == low
    got = read_back(tmp_path / "gaussian_00.png")
    want = np.clip(np.rint((image.astype(np.float64) - low) * 255 / (high - low)), 0, 255)
    assert np.abs(got - want).max() <= 1


def test_png_upsampled_of_integer_image_rounds_to_its_dtype(tmp_path):
    image = random_image((10, 13), np.uint16, None, seed=7)
    export_pyramid(image, tmp_path, kinds=["upsampled"], fmt="png", modes=["bicubic", "nearest"])
    manifest = {f["file"]: f for f in load_manifest(tmp_path)["files"]}
    gauss = gaussian_pyramid(image)
    nearest = upsample(gauss[1], "nearest", size=(13, 10))
    assert manifest["upsampled_00_nearest.png"]["role"] == "data"  # nearest copies integer values
    assert_bit_exact(read_back(tmp_path / "upsampled_00_nearest.png"), nearest.astype(np.uint16))
    bicubic = upsample(gauss[1], "bicubic", size=(13, 10))
    assert manifest["upsampled_00_bicubic.png"]["role"] == "visualisation"  # overshoot and fractions
    assert_bit_exact(read_back(tmp_path / "upsampled_00_bicubic.png"),
                     np.clip(np.rint(bicubic), 0, 65535).astype(np.uint16))


@pytest.mark.parametrize(("shape", "dtype", "channels"),
                         [((300, 280), np.uint8, 3), ((37, 301), np.uint16, None), ((33, 20), np.float32, 4)])
def test_ome_tiff_is_one_pyramidal_series(tmp_path, shape, dtype, channels):
    image = random_image(shape, dtype, channels, seed=8)
    result = export_pyramid(image, tmp_path, fmt="ome-tiff", kinds=["gaussian"])
    gauss = gaussian_pyramid(image)
    (record,) = result.files
    assert record.name == "gaussian.ome.tif"
    assert record.details["levels"] == [list(g.shape) for g in gauss]
    with tifffile.TiffFile(tmp_path / record.name) as tif:
        assert tif.is_ome and len(tif.series) == 1
        series = tif.series[0]
        assert len(series.levels) == len(gauss) == max_levels(shape)
        for level, want in zip(series.levels, gauss, strict=True):
            assert level.shape == want.shape
            assert level.keyframe.is_tiled
            assert_bit_exact(level.asarray(), want)


def test_ome_tiff_refuses_other_kinds():
    with pytest.raises(ValueError, match="ome-tiff"):
        ExportOptions(fmt="ome-tiff", kinds=("gaussian", "laplacian"))


def test_manifest_describes_the_files_on_disk(tmp_path):
    source = tmp_path / "source é.png"
    image = random_image((21, 12), np.uint8, 4, seed=9)
    cv2.imwrite(str(source), cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA))
    out = tmp_path / "out ü"
    for fmt in ("tiff", "npy", "png"):
        export_pyramid(image, out / fmt, source_path=source, kinds=KINDS, fmt=fmt, modes=MODES, levels=4)
        manifest = load_manifest(out / fmt)
        assert manifest["status"] == "complete"
        assert manifest["source"]["path"] == str(source.absolute())
        assert manifest["source"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()
        assert manifest["program"]["version"] == pyramid_explorer.__version__
        assert manifest["program"]["numpy"] == np.__version__
        assert manifest["program"]["opencv"] == cv2.__version__
        params = manifest["parameters"]
        assert params["levels"] == 4 and params["format"] == fmt and params["modes"] == list(MODES)
        listed = {entry["file"] for entry in manifest["files"]}
        on_disk = {p.name for p in (out / fmt).iterdir()} - {MANIFEST_NAME}
        assert listed == on_disk
        for entry in manifest["files"]:
            data = read_back(out / fmt / entry["file"])
            assert list(data.shape) == entry["shape"] and str(data.dtype) == entry["dtype"]
            assert entry["range"] == [data.min().item(), data.max().item()]
            assert entry["role"] in ("data", "visualisation")
            assert entry["kind"] in KINDS and (entry["mode"] is None or entry["mode"] in MODES)


def test_mosaic_layout_in_manifest_locates_every_level(tmp_path):
    image = random_image((19, 23), np.uint8, None, seed=10)
    export_pyramid(image, tmp_path, kinds=["mosaic"])
    (entry,) = load_manifest(tmp_path)["files"]
    mosaic = read_back(tmp_path / entry["file"])
    for rect, level in zip(entry["layout"], gaussian_pyramid(image), strict=True):
        x, y, w, h = rect["x"], rect["y"], rect["width"], rect["height"]
        np.testing.assert_array_equal(mosaic[y : y + h, x : x + w], level)


def test_mosaic_height_covers_a_column_taller_than_level_zero():
    levels = gaussian_pyramid(random_image((5, 5), np.uint8, 3))  # heights 5, 3, 2, 1: column of 6
    assert pyramid_mosaic(levels).shape == (6, 8, 3)
    assert mosaic_layout([(5, 5), (3, 3)]) == [(0, 0, 5, 5), (5, 0, 3, 3)]


def test_second_export_without_force_changes_nothing(tmp_path):
    image = random_image((16, 16), np.uint8, 3, seed=11)
    export_pyramid(image, tmp_path, kinds=["gaussian", "laplacian"])
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()}
    other = random_image((16, 16), np.uint8, 3, seed=12)
    with pytest.raises(ExportConflictError) as caught:
        export_pyramid(other, tmp_path, kinds=["gaussian", "laplacian"])
    assert len(caught.value.existing) == len(before)
    assert {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.iterdir()} == before
    # One conflicting file among new ones is enough to refuse everything.
    (tmp_path / "gaussian_00.tiff").unlink()
    with pytest.raises(ExportConflictError):
        export_pyramid(other, tmp_path, kinds=["gaussian", "laplacian"])
    assert not (tmp_path / "gaussian_00.tiff").exists()
    result = export_pyramid(other, tmp_path, kinds=["gaussian", "laplacian"], force=True)
    assert_bit_exact(read_back(tmp_path / "gaussian_00.tiff"), other)
    assert len(result.paths) == len(before)


def test_folder_in_the_way_is_refused_even_with_force(tmp_path):
    (tmp_path / "gaussian_00.npy").mkdir()
    with pytest.raises(ExportError, match="folder is in the way"):
        export_pyramid(random_image((4, 4)), tmp_path, kinds=["gaussian"], fmt="npy", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gaussian_00.npy"]


def test_unwritable_output_folder_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(ExportError, match="cannot create the output folder") as caught:
        export_pyramid(random_image((4, 4)), blocker / "out", kinds=["gaussian"])
    assert caught.value.written == () and "\n" not in str(caught.value)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder_writes_nothing(tmp_path):
    out = tmp_path / "ro"
    out.mkdir()
    out.chmod(0o500)
    try:
        with pytest.raises(ExportError, match="ermission denied") as caught:
            export_pyramid(random_image((4, 4)), out, kinds=["gaussian"])
        assert caught.value.written == ()
        assert list(out.iterdir()) == []
    finally:
        out.chmod(0o700)


def test_failure_half_way_reports_written_files_and_keeps_old_ones(tmp_path, monkeypatch):
    image = random_image((16, 9), np.uint8, None, seed=13)
    export_pyramid(image, tmp_path, kinds=["gaussian"])
    old = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real_write = export_files._write_tiff
    calls = []

    def disk_full_on_third(fh, array):
        calls.append(1)
        if len(calls) == 3:
            fh.write(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_write(fh, array)

    monkeypatch.setattr(export_files, "_write_tiff", disk_full_on_third)
    other = random_image((16, 9), np.uint8, None, seed=14)
    with pytest.raises(ExportError, match="No space left on device") as caught:
        export_pyramid(other, tmp_path, kinds=["gaussian"], force=True)
    written = [p.name for p in caught.value.written]
    assert written == ["gaussian_00.tiff", "gaussian_01.tiff", MANIFEST_NAME]
    assert "2 file(s) written before the failure" in str(caught.value)
    gauss = gaussian_pyramid(other)
    assert_bit_exact(read_back(tmp_path / "gaussian_01.tiff"), gauss[1])
    for name in sorted(old)[2:]:
        if name != MANIFEST_NAME:
            assert (tmp_path / name).read_bytes() == old[name]  # untouched, not truncated
    manifest = load_manifest(tmp_path)
    assert manifest["status"] == "failed" and [f["file"] for f in manifest["files"]] == written[:2]
    assert leftovers(tmp_path) == []


def test_progress_is_reported_per_file(tmp_path):
    image = random_image((8, 8), np.uint8, None)
    steps = []
    result = export_pyramid(image, tmp_path, kinds=["gaussian", "laplacian"], progress=steps.append)
    total = len(result.files) + 1
    assert [s.done for s in steps] == list(range(total + 1))
    assert {s.total for s in steps} == {total}
    assert [s.path for s in steps[1:]] == list(result.paths)


def test_cancel_between_files_stops_and_says_so(tmp_path):
    image = random_image((8, 8), np.uint8, None)
    steps = []
    result = export_pyramid(image, tmp_path, kinds=["gaussian"], progress=steps.append,
                            cancel=lambda: len(steps) > 2)
    assert result.cancelled
    assert result_names(result) == ["gaussian_00.tiff", "gaussian_01.tiff"]
    manifest = load_manifest(tmp_path)
    assert manifest["status"] == "cancelled" and len(manifest["files"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [*result_names(result), MANIFEST_NAME]


def test_cancel_before_the_first_file_writes_nothing(tmp_path):
    out = tmp_path / "out"
    result = export_pyramid(random_image((8, 8)), out, cancel=lambda: True)
    assert result.cancelled and result.paths == () and list(out.iterdir()) == []


def test_generator_form_yields_then_returns_the_result(tmp_path):
    steps = iter_export(random_image((4, 4)), tmp_path, ExportOptions(kinds=("gaussian",), fmt="npy"))
    seen = []
    with pytest.raises(StopIteration) as stop:
        while True:
            seen.append(next(steps))
    assert seen[-1].done == seen[-1].total == 4
    assert result_names(stop.value.value) == ["gaussian_00.npy", "gaussian_01.npy", "gaussian_02.npy"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kinds": ["gaussian", "pyramids"]}, "unknown kind 'pyramids'; allowed: gaussian, laplacian"),
    ({"kinds": []}, "no kind given"),
    ({"modes": ["bilinear", "magic"]}, "unknown mode 'magic'; allowed: nearest"),
    ({"fmt": "jpeg"}, "unknown format 'jpeg'; allowed: tiff, npy, png, ome-tiff"),
    ({"storage": "int8"}, "unknown storage 'int8'"),
    ({"levels": 0}, "levels must be a positive integer"),
])
def test_bad_arguments_are_value_errors_before_any_write(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_pyramid(random_image((4, 4)), tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_engine_refusal_comes_before_any_write(tmp_path):
    with pytest.raises(ValueError, match="int16"):
        export_pyramid(random_image((6, 6), np.uint16), tmp_path / "out", storage="int16")
    assert not (tmp_path / "out").exists()


def test_levels_beyond_the_image_are_clamped_and_recorded(tmp_path):
    result = export_pyramid(random_image((5, 3)), tmp_path, kinds=["gaussian"], levels=40)
    assert len(result.files) == max_levels((5, 3)) == 4
    params = load_manifest(tmp_path)["parameters"]
    assert (params["levels"], params["levels_requested"]) == (4, 40)


def test_unpool_of_a_one_pixel_side_is_skipped_and_listed(tmp_path):
    result = export_pyramid(random_image((1, 9), np.uint8, 3), tmp_path, kinds=["upsampled"],
                            modes=["nearest", "unpool"])
    assert all(r.mode == "nearest" for r in result.files) and len(result.files) == 4
    skipped = load_manifest(tmp_path)["skipped"]
    assert [(s["level"], s["mode"]) for s in skipped] == [(i, "unpool") for i in range(4)]


def test_non_finite_floats_keep_the_manifest_valid_json(tmp_path):
    image = random_image((6, 7), np.float32, None)
    image[0, 0], image[1, 1], image[2, 2] = np.nan, np.inf, -np.inf
    export_pyramid(image, tmp_path / "tiff", kinds=["gaussian", "laplacian"], levels=2)
    export_pyramid(image, tmp_path / "png", kinds=["gaussian", "laplacian"], levels=2, fmt="png")
    for fmt in ("tiff", "png"):
        text = (tmp_path / fmt / MANIFEST_NAME).read_text()
        json.loads(text, parse_constant=lambda constant: pytest.fail(f"{constant} is not JSON"))
    entry = load_manifest(tmp_path / "tiff")["files"][0]
    finite = image[np.isfinite(image)]
    assert entry["range"] == [float(finite.min()), float(finite.max())]
    assert_bit_exact(read_back(tmp_path / "tiff" / "gaussian_00.tiff"), image)


def test_refused_first_write_reports_nothing_written(tmp_path, monkeypatch):
    """What a read-only folder does for a non-root user, simulated so it also runs as root."""

    def refuse(fh, array):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(export_files, "_write_tiff", refuse)
    with pytest.raises(ExportError, match="permission denied; 0 file") as caught:
        export_pyramid(random_image((4, 4)), tmp_path, kinds=["gaussian"])
    assert caught.value.written == () and list(tmp_path.iterdir()) == []


def test_manifest_that_cannot_be_written_is_an_export_error(tmp_path, monkeypatch):
    real = export_files.atomic_write

    def full_for_json(path):
        if path.name == MANIFEST_NAME:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(path)

    monkeypatch.setattr(export_files, "atomic_write", full_for_json)
    with pytest.raises(ExportError, match="but not the manifest") as caught:
        export_pyramid(random_image((2, 2)), tmp_path, kinds=["gaussian"])
    assert [p.name for p in caught.value.written] == ["gaussian_00.tiff", "gaussian_01.tiff"]


def test_nothing_to_write_still_leaves_a_manifest(tmp_path):
    result = export_pyramid(random_image((1, 1)), tmp_path, kinds=["upsampled"])
    assert not result.cancelled and result.files == ()
    assert load_manifest(tmp_path)["status"] == "complete"


def test_planned_files_and_existing_targets_match_the_export(tmp_path):
    image = random_image((9, 6), np.uint8, 3)
    options = ExportOptions(kinds=("gaussian", "upsampled", "mosaic"), modes=("area", "unpool"), fmt="npy")
    planned = export.planned_files(image.shape, options)
    assert export.existing_targets(tmp_path, image.shape, options) == []
    result = export_pyramid(image, tmp_path, kinds=options.kinds, modes=options.modes, fmt="npy")
    assert [p.name for p in result.paths] == planned
    assert export.existing_targets(tmp_path, image.shape, options) == [tmp_path / n for n in planned]


def test_output_folder_vanishing_mid_export_is_one_clear_error(tmp_path):
    out = tmp_path / "out"

    def remove_folder_after_first_file(step):
        if step.done == 1:
            shutil.rmtree(out)

    with pytest.raises(ExportError, match="does not exist; 1 file") as caught:
        export_pyramid(random_image((8, 8)), out, kinds=["gaussian"], progress=remove_folder_after_first_file)
    assert "\n" not in str(caught.value)
    assert not out.exists()


# ----------------------------------------------------------------------------- arrays given whole


def tool_arrays_of(image: np.ndarray) -> list[export.NamedArray]:
    signed = random_image((9, 7), np.float32, seed=4) - 0.5
    return [export.NamedArray("heat_map", signed, "integrity", signed=True, level=0, details={"rmse": 0.25}),
            export.NamedArray("kernel", np.outer([1, 2, 1], [1, 2, 1]).astype(np.float32) / 16, "kernels"),
            export.NamedArray("mask", (image > 128).astype(np.uint8) * 255, "unpool", level=1),
            export.NamedArray("indices", np.arange(12, dtype=np.int64).reshape(3, 4), "unpool")]


@pytest.mark.parametrize("fmt", ["tiff", "npy"])
def test_export_arrays_round_trips_each_array_with_a_manifest_entry(tmp_path, fmt):
    image = random_image((9, 7), np.uint8, seed=2)
    arrays = tool_arrays_of(image)
    result = export.export_arrays(image, tmp_path / "out", arrays, fmt=fmt, parameters={"tool": "test"})
    assert not result.cancelled
    for a, record in zip(arrays, result.files, strict=True):
        assert_bit_exact(read_back(tmp_path / "out" / f"{a.name}.{fmt}"), a.array)
        assert (record.kind, record.level, record.role) == (a.kind, a.level, "data")
    manifest = json.loads((tmp_path / "out" / MANIFEST_NAME).read_text())
    assert manifest["status"] == "complete" and manifest["parameters"] == {"tool": "test"}
    assert manifest["source"]["shape"] == [9, 7] and manifest["source"]["dtype"] == "uint8"
    entry = manifest["files"][0]
    assert entry["file"] == f"heat_map.{fmt}" and entry["rmse"] == 0.25 and entry["kind"] == "integrity"


def test_export_arrays_png_shows_signed_arrays_around_grey(tmp_path):
    image = random_image((9, 7), np.uint8, seed=2)
    arrays = tool_arrays_of(image)[:3]
    result = export.export_arrays(image, tmp_path, arrays, fmt="png")
    heat = read_back(tmp_path / "heat_map.png")
    scale = float(np.abs(arrays[0].array).max())
    np.testing.assert_array_equal(heat, np.clip(np.rint(128 + 127 * arrays[0].array / scale), 0, 255))
    assert result.files[0].role == "visualisation" and result.files[2].role == "data"
    assert_bit_exact(read_back(tmp_path / "mask.png"), arrays[2].array)


def test_export_arrays_never_overwrites_unasked(tmp_path):
    image = random_image((5, 5), np.uint8)
    arrays = tool_arrays_of(image)[1:2]
    (tmp_path / "kernel.npy").write_bytes(b"precious")
    assert export.existing_files(tmp_path, export.array_files(arrays, "npy")) == [tmp_path / "kernel.npy"]
    with pytest.raises(ExportConflictError):
        export.export_arrays(image, tmp_path, arrays, fmt="npy")
    assert (tmp_path / "kernel.npy").read_bytes() == b"precious"
    assert not (tmp_path / MANIFEST_NAME).exists()
    export.export_arrays(image, tmp_path, arrays, fmt="npy", force=True)
    assert_bit_exact(np.load(tmp_path / "kernel.npy"), arrays[0].array)


@pytest.mark.parametrize(("names", "fmt", "message"), [
    (["a", "a"], "npy", "repeat"),
    (["../up"], "npy", "plain file stem"),
    ([], "npy", "no arrays"),
    (["a"], "ome-tiff", "unknown format"),
])
def test_export_arrays_refuses_bad_requests_before_writing(tmp_path, names, fmt, message):
    arrays = [export.NamedArray(n, np.zeros((2, 2), np.float32), "x") for n in names]
    with pytest.raises(ValueError, match=message):
        export.export_arrays(np.zeros((2, 2), np.uint8), tmp_path / "out", arrays, fmt=fmt)
    assert not (tmp_path / "out").exists()


def test_export_arrays_cancelled_keeps_a_manifest_of_what_was_written(tmp_path):
    image = random_image((9, 7), np.uint8)
    calls = iter([False, True])
    steps = export.iter_export_arrays(image, tmp_path, tool_arrays_of(image), fmt="npy",
                                      cancel=lambda: next(calls))
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            result = stop.value
            break
    assert result.cancelled and [r.name for r in result.files] == ["heat_map.npy"]
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["status"] == "cancelled"
