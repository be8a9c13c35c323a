"""Chunked pyramids on Dask against the in-memory engine: bit for bit, every size, chunk, dtype and border."""

import cv2
import dask
import dask.array as da
import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, random_image

from pyramid_explorer.core import chunked, graphs
from pyramid_explorer.core.pyramid import BORDERS, gaussian_pyramid, laplacian_pyramid

# (shape, chunk): odd sizes, 1-pixel sides, chunks that do not divide the image, chunks of 1 and 2 pixels
# (every tile on an image edge), and a row wide enough for blocks that start at an aligned column inside
# the image (the float32 SIMD rule; blocks start at multiples of 128 input pixels).
SHAPES_AND_CHUNKS = [((1, 1), 1), ((1, 9), 2), ((9, 1), 3), ((3, 5), 2), ((2, 2), 1), ((17, 31), 4),
                     ((153, 101), 16), ((23, 700), 61)]


@pytest.fixture(autouse=True)
def synchronous_dask():
    """One thread: the tests check values, and the graphs are small."""
    with dask.config.set(scheduler="synchronous"):
        yield


def assert_same_levels(got, want):
    assert len(got) == len(want)
    for level, (g, w) in enumerate(zip(dask.compute(*got), want, strict=True)):
        assert g.dtype == w.dtype, f"level {level}"
        assert g.shape == w.shape, f"level {level}"
        assert g.tobytes() == w.tobytes(), f"level {level}: {np.count_nonzero(g != w)} pixels differ"


def lazy(image, chunks=None):
    return da.from_array(image, chunks=chunks or image.shape)


@pytest.mark.parametrize(("shape", "chunk"), SHAPES_AND_CHUNKS)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_pyramids_are_bit_identical(shape, chunk, dtype, channels):
    image = random_image(shape, dtype, channels)
    got = [*chunked.gaussian_pyramid(lazy(image), chunk=chunk),
           *chunked.laplacian_pyramid(lazy(image), chunk=chunk)]
    assert_same_levels(got, [*gaussian_pyramid(image), *laplacian_pyramid(image)])


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "chunk"), [((37, 29), 5), ((6, 300), 40), ((2, 3), 1)])
def test_every_border_is_bit_identical(border, dtype, shape, chunk):
    """Wrap reads the far side of the image; reflect and replicate the near edge: tiles must see both."""
    image = random_image(shape, dtype, 3, seed=2)
    got = [*chunked.gaussian_pyramid(lazy(image), border=border, chunk=chunk),
           *chunked.laplacian_pyramid(lazy(image), border=border, chunk=chunk)]
    want = [*gaussian_pyramid(image, border=border), *laplacian_pyramid(image, border=border)]
    assert_same_levels(got, want)


@pytest.mark.parametrize("storage", ["int16", "uint8_saturate"])
@pytest.mark.parametrize("border", [cv2.BORDER_REFLECT_101, cv2.BORDER_WRAP])
def test_integer_storages_are_bit_identical(storage, border):
    image = random_image((41, 290), np.uint8, 4, seed=3)
    assert_same_levels(chunked.laplacian_pyramid(lazy(image), border=border, storage=storage, chunk=36),
                       laplacian_pyramid(image, border=border, storage=storage))


def test_wide_float_rows_are_exact_far_from_the_edges():
    """Several aligned block starts per row, and tiles whose block ends in the middle of the image."""
    image = random_image((9, 2100), np.float32, None, seed=4) * np.float32(1000)
    assert_same_levels(chunked.laplacian_pyramid(lazy(image), levels=4, chunk=150),
                       laplacian_pyramid(image, levels=4))


def test_input_chunking_does_not_matter():
    image = random_image((45, 77), np.float32, 3, seed=5)
    ragged = da.from_array(image, chunks=((10, 1, 34), (7, 70), (3,)))
    assert_same_levels(chunked.gaussian_pyramid(ragged, chunk=12), gaussian_pyramid(image))


def test_levels_are_tiled_by_chunk_with_channels_whole():
    pyramid = chunked.laplacian_pyramid(lazy(random_image((50, 30), np.uint8, 3)), levels=3, chunk=16)
    assert [level.chunks for level in pyramid] == [
        ((16, 16, 16, 2), (16, 14), (3,)), ((16, 9), (15,), (3,)), ((13,), (8,), (3,))]
    assert [level.dtype for level in pyramid] == [np.float32] * 3


def test_a_tile_of_a_coarse_level_computes_only_what_it_needs():
    """Viewing a corner of level 3 of a big lazy image reads a corner of level 0, not all of it."""
    calls = []

    def block(block_id=None):
        calls.append(block_id)
        return np.full((256, 256), 7, np.uint8)

    big = da.map_blocks(block, chunks=((256,) * 40, (256,) * 40), dtype=np.uint8)
    level = chunked.gaussian_pyramid(big, levels=4, chunk=256)[3]
    calls.clear()
    assert level[:8, :8].compute().tolist() == [[7] * 8] * 8
    read = [ids for ids in calls if isinstance(ids, tuple)]
    assert 0 < len(read) < 1600 // 4 and max(max(ids) for ids in read) < 16


def test_border_index_is_opencvs():
    for border in BORDERS:
        for size in range(1, 8):
            axis = np.arange(size, dtype=np.int32)[None]
            padded = cv2.copyMakeBorder(axis, 0, 0, 20, 20, border)[0]
            assert [chunked.border_index(p, size, border) for p in range(-20, size + 20)] == padded.tolist()


def test_float_tiles_need_the_aligned_blocks(monkeypatch):
    """Control: with blocks cut at the halo only, float32 tiles differ from the whole-image pyrDown (OpenCV
    rounds its SIMD and scalar paths differently), which is what the aligned geometry is for."""
    image = random_image((12, 900), np.float32, None, seed=6) * np.float32(1000)
    monkeypatch.setattr(graphs, "ALIGN_DOWN", 2)
    monkeypatch.setattr(graphs, "MARGIN_DOWN", 2)
    got = chunked.gaussian_pyramid(lazy(image), levels=2, chunk=37)[1].compute()
    if got.tobytes() == gaussian_pyramid(image, levels=2)[1].tobytes():
        pytest.skip("this OpenCV build rounds its SIMD and scalar pyrDown paths alike")
    assert np.allclose(got, gaussian_pyramid(image, levels=2)[1], rtol=1e-6)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"border": cv2.BORDER_CONSTANT}, "allowed: cv2.BORDER_REFLECT101"),
    ({"storage": "float16"}, "allowed: float32, int16, uint8_saturate"),
    ({"storage": "int16", "dtype": np.uint16}, "needs a uint8 image"),
    ({"levels": 7}, "levels must be an integer from 1 to 6"),
    ({"chunk": 0}, "chunk must be a positive number of pixels"),
])
def test_bad_arguments_are_refused(kwargs, message):
    image = lazy(random_image((32, 20), kwargs.pop("dtype", np.uint8)))
    with pytest.raises(ValueError, match=message):
        chunked.laplacian_pyramid(image, **kwargs)


@pytest.mark.parametrize(("image", "message"), [
    (np.zeros((4, 4)), "must be a dask array"),
    (da.zeros((4, 4), dtype=np.int32), "dtype int32"),
    (da.zeros((4, 4, 2), dtype=np.uint8), r"shape \(4, 4, 2\)"),
    (da.zeros((0, 4), dtype=np.uint8), "empty"),
])
def test_unsupported_images_are_refused(image, message):
    with pytest.raises(ValueError, match=message):
        chunked.gaussian_pyramid(image)
