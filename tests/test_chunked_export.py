"""OME-Zarr export of chunked pyramids, lazy inputs, cancellation, and a real dask.distributed cluster."""

import filecmp
import json
import os

import cv2
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from helpers import random_image
from ome_zarr_models.v04.image import Image

from pyramid_explorer.core import chunked, omezarr, scheduling
from pyramid_explorer.core.export import ExportConflictError
from pyramid_explorer.core.io import ImageLoadError, load_image, save_image
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid


def export(image, path, **kwargs):
    return chunked.export_ome_zarr(da.from_array(image, chunks=image.shape), path, **kwargs)


def computed(levels):
    return [level.compute() for level in levels]


def entries(folder):
    return sorted(os.listdir(folder))


@pytest.mark.parametrize(("shape", "dtype", "channels", "chunk"), [
    ((301, 157), np.uint16, None, 64), ((97, 130), np.uint8, 3, 32), ((45, 33), np.float32, 4, 16),
    ((1, 1), np.uint8, 3, 8), ((2, 9), np.float32, None, 3),
])
def test_round_trip_gives_the_engine_levels_and_valid_ngff(tmp_path, shape, dtype, channels, chunk):
    image = random_image(shape, dtype, channels)
    out = tmp_path / "image.ome.zarr"
    result = export(image, out, chunk=chunk)
    assert result.path == out and not result.cancelled and result.manifest == out / "manifest.json"
    gauss, bands = gaussian_pyramid(image), laplacian_pyramid(image)
    for got, want in zip(computed(chunked.stored_levels(out)), gauss, strict=True):
        assert got.dtype == want.dtype and got.tobytes() == want.tobytes()
    for got, want in zip(computed(omezarr.open_levels(out / "laplacian")), bands, strict=True):
        assert got.dtype == want.dtype == np.float32 and got.tobytes() == want.tobytes()
    for group, name in ((out, "gaussian"), (out / "laplacian", "laplacian")):
        check_ngff(zarr.open_group(str(group), mode="r"), name, [g.shape for g in gauss], chunk)
    assert entries(tmp_path) == ["image.ome.zarr"]


def check_ngff(group, name, shapes, chunk):
    """The NGFF 0.4 rules a reader relies on, checked by ome-zarr-models and field by field."""
    Image.from_zarr(group)  # raises on anything the specification forbids
    (scales,) = group.attrs["multiscales"]
    colour = len(shapes[0]) == 3
    assert scales["version"] == "0.4" and scales["name"] == name
    assert [axis["name"] for axis in scales["axes"]] == ["c", "y", "x"][not colour:]
    assert [axis["type"] for axis in scales["axes"]] == ["channel", "space", "space"][not colour:]
    assert [d["path"] for d in scales["datasets"]] == [str(i) for i in range(len(shapes))]
    for level, (dataset, shape) in enumerate(zip(scales["datasets"], shapes, strict=True)):
        scale, shift = dataset["coordinateTransformations"]
        assert scale == {"type": "scale", "scale": [1.0] * colour + [2.0**level] * 2}
        assert shift == {"type": "translation", "translation": [0.0] * len(shape)}
        array = group[dataset["path"]]
        assert array.metadata.zarr_format == 2 and array.metadata.dimension_separator == "/"
        assert array.shape == ((shape[2], *shape[:2]) if colour else shape)
        assert array.chunks[-2:] == (min(chunk, shape[0]), min(chunk, shape[1]))
    assert len(group.attrs["omero"]["channels"]) == (shapes[0][2] if colour else 1)


def test_manifest_describes_both_pyramids(tmp_path):
    image = random_image((40, 70), np.uint8, 3)
    out = tmp_path / "m.ome.zarr"
    export(image, out, chunk=16, border=cv2.BORDER_REPLICATE)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "complete" and manifest["format"]["ngff_version"] == "0.4"
    assert manifest["parameters"] | {"levels": 8, "border": "replicate", "storage": "float32", "chunk": 16} \
        == manifest["parameters"]
    assert manifest["source"] | {"shape": [40, 70, 3], "dtype": "uint8"} == manifest["source"]
    gauss = gaussian_pyramid(image, border=cv2.BORDER_REPLICATE)
    bands = laplacian_pyramid(image, border=cv2.BORDER_REPLICATE)
    expected = [("gaussian", str(i), g) for i, g in enumerate(gauss)]
    expected += [("laplacian", f"laplacian/{i}", b) for i, b in enumerate(bands)]
    assert len(manifest["datasets"]) == len(expected)
    for record, (kind, path, array) in zip(manifest["datasets"], expected, strict=True):
        assert (record["kind"], record["path"], record["shape"], record["dtype"]) == \
            (kind, path, list(array.shape), str(array.dtype))
        assert record["range"] == [array.min().item(), array.max().item()]


def test_int16_bands_and_gaussian_only(tmp_path):
    image = random_image((33, 50), np.uint8, 4, seed=3)
    export(image, tmp_path / "a.zarr", chunk=16, storage="int16")
    bands = computed(omezarr.open_levels(tmp_path / "a.zarr" / "laplacian"))
    for got, want in zip(bands, laplacian_pyramid(image, storage="int16"), strict=True):
        assert got.dtype == np.int16 and got.tobytes() == want.tobytes()
    export(image, tmp_path / "b.zarr", chunk=16, laplacian=False, levels=3)
    assert "laplacian" not in entries(tmp_path / "b.zarr")
    assert len(chunked.stored_levels(tmp_path / "b.zarr")) == 3


# ------------------------------------------------------------------------------------------ lazy inputs


@pytest.mark.parametrize(("dtype", "channels", "layout"), [
    (np.uint8, 3, {"tile": (32, 32)}), (np.uint16, None, {"rowsperstrip": 7}),
    (np.float32, None, {"tile": (16, 48)}), (np.uint8, 4, {"tile": (32, 32)}),
    (np.uint16, 3, {"planarconfig": "separate", "rowsperstrip": 5}),
])
def test_tiff_is_read_lazily_as_load_image_reads_it(tmp_path, dtype, channels, layout):
    image = random_image((75, 101), dtype, channels, seed=4)
    path = tmp_path / "in.tif"
    colour = {"photometric": "rgb"} if channels else {"photometric": "minisblack"}
    extra = {"extrasamples": ("unassalpha",)} if channels == 4 else {}
    tifffile.imwrite(path, np.moveaxis(image, -1, 0) if "planarconfig" in layout else image,
                     compression="zlib", **colour, **extra, **layout)
    lazy = chunked.lazy_image(path)
    assert lazy.shape == image.shape and lazy.dtype == dtype and lazy.npartitions > 1
    assert lazy.compute().tobytes() == load_image(path).tobytes() == image.tobytes()
    assert chunked.lazy_image(path, chunk=20).chunks[0] == (20, 20, 20, 15)


def test_pyramidal_tiff_levels_are_its_sub_resolutions(tmp_path):
    levels = gaussian_pyramid(random_image((130, 90), np.uint8, 3, seed=5), levels=3)
    path = tmp_path / "pyramid.tif"
    with tifffile.TiffWriter(path) as tiff:
        tiff.write(levels[0], subifds=2, tile=(32, 32), photometric="rgb")
        for level in levels[1:]:
            tiff.write(level, subfiletype=1, tile=(32, 32), photometric="rgb")
    stored = chunked.stored_levels(path)
    assert [level.tobytes() for level in computed(stored)] == [level.tobytes() for level in levels]


def test_an_image_above_the_pixel_limit_opens_lazily(tmp_path):
    """15360 x 14336 pixels: load_image refuses it, the lazy reader decodes only the tiles asked for."""
    path = tmp_path / "big.tif"
    tile = np.zeros((1024, 1024), np.uint8)
    tifffile.imwrite(path, (tile for _ in range(15 * 14)), shape=(15 * 1024, 14 * 1024), dtype=np.uint8,
                     tile=(1024, 1024), compression="zstd")
    with pytest.raises(ImageLoadError, match="above the limit"):
        load_image(path)
    lazy = chunked.lazy_image(path)
    assert lazy.shape == (15360, 14336)
    assert lazy[9000:9100, 5000:5300].compute().shape == (100, 300)


def test_images_that_need_conversion_are_loaded_whole(tmp_path):
    palette = tmp_path / "palette.tif"
    tifffile.imwrite(palette, np.arange(48, dtype=np.uint8).reshape(6, 8), photometric="palette",
                     colormap=np.tile(np.arange(256, dtype=np.uint16) * 257, (3, 1)))
    png = tmp_path / "grey.png"
    save_image(png, random_image((9, 7), np.uint16))
    for path in (palette, png):
        lazy = chunked.lazy_image(path)
        assert lazy.npartitions == 1 and lazy.compute().tobytes() == load_image(path).tobytes()


def test_exported_file_inputs_match_the_engine(tmp_path):
    image = random_image((66, 91), np.uint8, 3, seed=6)
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, image, tile=(16, 16), photometric="rgb")
    chunked.export_ome_zarr(source, tmp_path / "a.ome.zarr", chunk=24)
    chunked.export_ome_zarr(tmp_path / "a.ome.zarr", tmp_path / "b.ome.zarr", chunk=40)
    for out in ("a.ome.zarr", "b.ome.zarr"):
        got = computed(omezarr.open_levels(tmp_path / out / "laplacian"))
        assert [b.tobytes() for b in got] == [b.tobytes() for b in laplacian_pyramid(image)]


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: None, "no such file"),
    (lambda p: p.mkdir(), "it is a folder"),
    (lambda p: zarr.open_group(str(p), mode="w"), "no OME-NGFF multiscales"),
    (lambda p: p.write_bytes(b"II*\0garbage"), "corrupt TIFF"),
])
def test_unreadable_inputs_are_one_line_errors(tmp_path, make, reason):
    path = tmp_path / "input"
    make(path)
    with pytest.raises(ImageLoadError, match=reason) as caught:
        chunked.lazy_image(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


# ------------------------------------------------------------------------------- safety and limits


def test_cancel_leaves_nothing(tmp_path):
    image = random_image((80, 80), np.uint8, 3)
    seen = []
    result = export(image, tmp_path / "out.ome.zarr", chunk=16, progress=seen.append,
                    cancel=lambda: len(seen) >= 5)
    assert result.cancelled and result.manifest is None
    assert len(seen) == 5 and seen[-1].total > 5
    assert entries(tmp_path) == []


@pytest.mark.parametrize("error", [KeyboardInterrupt, OSError])
def test_interrupt_or_failure_half_way_leaves_nothing(tmp_path, monkeypatch, error):
    """Ctrl+C arrives as KeyboardInterrupt in the exporting thread; a full disk as OSError in a task."""
    image = random_image((80, 80), np.uint8, 3)
    seen = []

    def progress(step):
        seen.append(step)
        if len(seen) == 30:
            raise error("stop")

    with pytest.raises(error if error is KeyboardInterrupt else chunked.ExportError):
        export(image, tmp_path / "out.ome.zarr", chunk=16, progress=progress)
    assert entries(tmp_path) == []


def test_existing_output_is_kept_unless_forced(tmp_path):
    out = tmp_path / "out.ome.zarr"
    out.mkdir()
    (out / "old.txt").write_text("keep")
    image = random_image((20, 20), np.uint8)
    with pytest.raises(ExportConflictError, match="already exists"):
        export(image, out, chunk=8)
    assert entries(out) == ["old.txt"]
    export(image, out, chunk=8, force=True)
    assert "old.txt" not in entries(out) and entries(tmp_path) == ["out.ome.zarr"]


def test_memory_limit_sets_the_threads_or_refuses(tmp_path):
    image = random_image((64, 64), np.uint8, 3)
    with pytest.raises(chunked.MemoryLimitError, match="use a smaller chunk"):
        export(image, tmp_path / "out.ome.zarr", chunk=4096, memory_limit="300MB")
    assert entries(tmp_path) == []
    runner = scheduling.Runner(None, None)
    runner.memory_limit = runner.baseline + scheduling.RESERVE + 10 * 2**20
    assert runner.workers(4 * 2**20) == min(os.cpu_count(), 2)
    assert runner.workers(10 * 2**20) == 1
    assert export(image, tmp_path / "ok.ome.zarr", chunk=16, memory_limit="2GB").manifest is not None


@pytest.mark.cluster
def test_a_local_cluster_writes_the_same_bytes(tmp_path):
    """Two worker processes on loopback, connected by address as the command line does; cancelling there
    leaves nothing either."""
    distributed = pytest.importorskip("distributed")
    image = random_image((150, 211), np.float32, 3, seed=7)
    export(image, tmp_path / "local.ome.zarr", chunk=32)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        address = cluster.scheduler_address
        export(image, tmp_path / "cluster.ome.zarr", chunk=32, scheduler=address)
        seen = []
        cancelled = export(image, tmp_path / "cancelled.ome.zarr", chunk=32, scheduler=address,
                           progress=seen.append, cancel=lambda: len(seen) >= 3)
        assert cancelled.cancelled and entries(tmp_path) == ["cluster.ome.zarr", "local.ome.zarr"]
    differ = []

    def compare(diff):
        names = diff.diff_files + diff.left_only + diff.right_only
        differ.extend(os.path.join(diff.left, name) for name in names)
        for sub in diff.subdirs.values():
            compare(sub)

    compare(filecmp.dircmp(tmp_path / "local.ome.zarr", tmp_path / "cluster.ome.zarr", ignore=[]))
    assert differ == [str(tmp_path / "local.ome.zarr" / "manifest.json")]  # its time stamps differ


def test_unreachable_scheduler_is_a_clear_error(tmp_path, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(scheduling, "_CONNECT_TIMEOUT", "1s")
    with pytest.raises(ValueError, match=r"cannot connect to the Dask scheduler at tcp://127\.0\.0\.1:9"):
        export(random_image((8, 8), np.uint8), tmp_path / "x.zarr", scheduler="tcp://127.0.0.1:9")
    assert entries(tmp_path) == []


def test_ngff_05_images_on_zarr_3_are_read_too(tmp_path):
    image = random_image((21, 34), np.uint16, 3, seed=8)
    group = zarr.open_group(str(tmp_path / "v3.ome.zarr"), mode="w", zarr_format=3)
    group.create_array("s0", data=np.moveaxis(image, -1, 0)[None], chunks=(1, 3, 8, 8))
    axes = [{"name": "t", "type": "time"}, {"name": "c", "type": "channel"},
            {"name": "y", "type": "space"}, {"name": "x", "type": "space"}]
    transforms = [{"type": "scale", "scale": [1.0, 1.0, 1.0, 1.0]}]
    group.attrs["ome"] = {"version": "0.5", "multiscales": [
        {"axes": axes, "datasets": [{"path": "s0", "coordinateTransformations": transforms}]}]}
    (level,) = chunked.stored_levels(tmp_path / "v3.ome.zarr")
    assert level.shape == image.shape and level.compute().tobytes() == image.tobytes()


def test_level_pixels_sit_where_the_coordinate_transformations_put_them(tmp_path):
    """On a ramp image (value = x), level i's pixel j holds the x of the level-0 pixel it is centred on,
    and the metadata must say the same: x = scale * j + translation (pyrDown's kernel is symmetric about
    2j, so the translation is 0, not the (2**i - 1) / 2 of 2x2 averaging)."""
    ramp = np.tile(np.arange(256, dtype=np.float32), (8, 1))
    export(ramp, tmp_path / "ramp.ome.zarr", chunk=64, levels=4, laplacian=False)
    (scales,) = zarr.open_group(str(tmp_path / "ramp.ome.zarr"), mode="r").attrs["multiscales"]
    levels = chunked.stored_levels(tmp_path / "ramp.ome.zarr")
    for level, dataset in zip(levels, scales["datasets"], strict=True):
        scale, shift = (t[t["type"]][-1] for t in dataset["coordinateTransformations"])
        row = level[0].compute()
        inside = np.arange(4, len(row) - 4)  # away from the reflected border
        np.testing.assert_allclose(row[inside], scale * inside + shift, atol=1e-4)
