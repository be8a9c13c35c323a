"""The scaled-int16 band encoding: float32 bands of uint8 images are k/64 exactly, stored as int16 k
through Zarr v2's `fixedscaleoffset` filter, and decoded by zarr-python to the in-memory bands bit for bit."""

import json

import cv2
import dask.array as da
import numcodecs
import numpy as np
import pytest
import zarr
from helpers import ODD_SHAPES, random_image

from pyramid_explorer.core import chunked, omezarr
from pyramid_explorer.core.pyramid import UINT8_BAND_SCALE, laplacian_pyramid

BORDERS = (cv2.BORDER_REFLECT_101, cv2.BORDER_REFLECT, cv2.BORDER_REPLICATE, cv2.BORDER_WRAP)


def checkerboard(shape, channels=None):
    """0/255 in alternating pixels: the largest band values a uint8 image can have."""
    board = ((np.indices(shape).sum(axis=0) % 2) * 255).astype(np.uint8)
    return board if channels is None else np.repeat(board[..., None], channels, axis=2)


def test_float32_bands_of_uint8_images_are_sixty_fourths():
    images = [random_image(shape, np.uint8, channels, seed=i)
              for i, shape in enumerate(ODD_SHAPES) for channels in (None, 3, 4)]
    images += [checkerboard((64, 64)), checkerboard((33, 17), 3), 255 - checkerboard((9, 14)),
               np.full((5, 8, 3), 255, np.uint8), np.zeros((7, 3), np.uint8)]
    for image in images:
        for border in BORDERS:
            for band in laplacian_pyramid(image, border=border):
                k = band.astype(np.float64) * UINT8_BAND_SCALE  # exact: a power of two
                assert np.array_equal(k, np.round(k)) and np.abs(k).max() <= 255 * 64
                back = (k.astype(np.int16) / UINT8_BAND_SCALE).astype(np.float32)
                assert back.tobytes() == band.tobytes()


def test_every_sixty_fourth_is_needed():
    """A smaller scale would not be exact: odd multiples of 1/64 occur (and values past int8's range)."""
    k = laplacian_pyramid(random_image((64, 64), np.uint8, 3, seed=1))[0] * UINT8_BAND_SCALE
    assert np.any(k % 2 == 1) and np.abs(k).max() > 127


def export(image, path, **kwargs):
    return chunked.export_ome_zarr(da.from_array(image, chunks=image.shape), path, **kwargs)


@pytest.mark.parametrize("border", BORDERS)  # BORDER_WRAP: the tile engine, which zarr's filter encodes
@pytest.mark.parametrize(("shape", "channels", "chunk"), [((157, 301), 3, 64), ((1, 1), None, 8),
                                                          ((45, 33), 4, 16), ((64, 64), None, 16)])
def test_zarr_python_decodes_the_exported_bands_bit_for_bit(tmp_path, border, shape, channels, chunk):
    image = checkerboard(shape, channels) if shape == (64, 64) else random_image(shape, np.uint8, channels)
    out = tmp_path / "x.ome.zarr"
    export(image, out, chunk=chunk, border=border)
    for level, want in enumerate(laplacian_pyramid(image, border=border)):
        meta = json.loads((out / "laplacian" / str(level) / ".zarray").read_text())
        assert meta["dtype"] == "<f4" and meta["filters"] == [
            {"id": "fixedscaleoffset", "scale": 64, "offset": 0, "dtype": "<f4", "astype": "<i2"}]
        stored = zarr.open_array(str(out / "laplacian" / str(level)), mode="r")[...]
        got = stored if want.ndim == 2 else np.moveaxis(stored, 0, -1)
        assert got.dtype == np.float32 and got.tobytes() == want.tobytes()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"]["band_encoding"] == "scaled-int16"
    assert manifest["format"]["band_compressor"] == meta["compressor"]
    assert meta["compressor"] == omezarr.SCALED_COMPRESSOR.get_config()
    (scales,) = zarr.open_group(str(out / "laplacian"), mode="r").attrs["multiscales"]
    assert [d["path"] for d in scales["datasets"]] == [str(i) for i in range(len(scales["datasets"]))]


def test_chunks_are_the_bytes_zarr_writes_through_the_filter(tmp_path):
    """Our encoder (int16 computed in the band step, compressed ourselves) against zarr-python's own
    write path (float32 band -> FixedScaleOffset -> Blosc) on an array of the same metadata."""
    image = random_image((150, 211), np.uint8, 3, seed=5)
    export(image, tmp_path / "ours.ome.zarr", chunk=64)
    band = laplacian_pyramid(image)[0]
    theirs = zarr.create_array(str(tmp_path / "theirs"), shape=(3, 150, 211), chunks=(3, 64, 64),
                               dtype="<f4", filters=[numcodecs.FixedScaleOffset(0, 64, "<f4", "<i2")],
                               compressors=omezarr.SCALED_COMPRESSOR, fill_value=0, zarr_format=2,
                               chunk_key_encoding={"name": "v2", "separator": "/"})
    theirs[...] = np.moveaxis(band, -1, 0)
    ours = tmp_path / "ours.ome.zarr" / "laplacian" / "0"
    names = sorted(p.relative_to(ours) for p in ours.rglob("*") if p.is_file() and p.name[0] != ".")
    assert len(names) == 3 * 4
    for name in names:
        assert (ours / name).read_bytes() == (tmp_path / "theirs" / name).read_bytes(), name


def test_float32_encoding_and_other_dtypes_store_bands_as_they_are(tmp_path):
    image = random_image((40, 27), np.uint8, 3, seed=2)
    export(image, tmp_path / "plain.zarr", chunk=16, band_encoding="float32")
    export(random_image((40, 27), np.uint16, seed=2), tmp_path / "u16.zarr", chunk=16)
    export(image, tmp_path / "i16.zarr", chunk=16, storage="int16")
    for name, dtype in (("plain.zarr", "<f4"), ("u16.zarr", "<f4"), ("i16.zarr", "<i2")):
        meta = json.loads((tmp_path / name / "laplacian" / "0" / ".zarray").read_text())
        assert meta["filters"] is None and meta["dtype"] == dtype
        assert json.loads((tmp_path / name / "manifest.json").read_text())["format"]["band_encoding"] is None
    bands = [level.compute() for level in omezarr.open_levels(tmp_path / "plain.zarr" / "laplacian")]
    assert all(a.tobytes() == b.tobytes() for a, b in zip(bands, laplacian_pyramid(image), strict=True))
    with pytest.raises(ValueError, match="band encoding 'int8' is not supported; allowed: scaled-int16"):
        export(image, tmp_path / "bad.zarr", band_encoding="int8")


def test_the_contrast_window_is_in_band_values(tmp_path):
    image = checkerboard((40, 40), 3)
    export(image, tmp_path / "w.zarr", chunk=16)
    reach = max(np.abs(band).max() for band in laplacian_pyramid(image))
    group = zarr.open_group(str(tmp_path / "w.zarr" / "laplacian"), mode="r")
    (channel, *_) = group.attrs["omero"]["channels"]
    assert channel["window"]["min"] == -reach and channel["window"]["max"] == reach
    manifest = json.loads((tmp_path / "w.zarr" / "manifest.json").read_text())
    ranges = [d["range"] for d in manifest["datasets"] if d["kind"] == "laplacian"]
    assert ranges == [[b.min().item(), b.max().item()] for b in laplacian_pyramid(image)]
