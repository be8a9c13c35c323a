"""Pyramid properties against a plain OpenCV loop, and exact reconstruction on every dtype and size."""

import itertools

import cv2
import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, ODD_SHAPES, dtype_range, natural_image, random_image

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.pyramid import (
    BORDERS,
    gaussian_pyramid,
    laplacian_pyramid,
    level_sizes,
    max_levels,
    reconstruct,
    residual,
)

CASES = list(itertools.product(ODD_SHAPES, DTYPES, CHANNELS))


def reference_gaussian(image, border=cv2.BORDER_REFLECT_101):
    """The definition: pyrDown until the image is 1x1."""
    levels = [image]
    while levels[-1].shape[0] > 1 or levels[-1].shape[1] > 1:
        levels.append(cv2.pyrDown(levels[-1], borderType=border))
    return levels


@pytest.mark.parametrize(("shape", "dtype", "channels"), CASES)
def test_gaussian_matches_pyrdown_loop(shape, dtype, channels):
    image = random_image(shape, dtype, channels)
    got = gaussian_pyramid(image)
    want = reference_gaussian(image)
    assert len(got) == len(want) == max_levels(image.shape)
    for g, w in zip(got, want, strict=True):
        assert g.dtype == image.dtype
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize(("width", "sizes"),
                         [(153, [153, 77, 39, 20, 10, 5, 3, 2, 1]), (1, [1]), (2, [2, 1])])
def test_level_sizes_round_up(width, sizes):
    assert [w for _, w in level_sizes((1, width))] == sizes
    assert max_levels((1, width)) == len(sizes)
    assert [g.shape[1] for g in gaussian_pyramid(np.zeros((1, width), np.uint8))] == sizes


def test_levels_argument_counts_every_array():
    image = random_image((64, 48))
    assert len(gaussian_pyramid(image, levels=1)) == 1
    assert len(laplacian_pyramid(image, levels=3)) == 3
    for bad in (0, -1, max_levels(image.shape) + 1, 2.0, True):
        with pytest.raises(ValueError, match="levels must be an integer from 1 to 7"):
            gaussian_pyramid(image, levels=bad)


@pytest.mark.parametrize("bad", [np.zeros((4, 4), np.int32), np.zeros((4, 4, 2), np.uint8),
                                 np.zeros((0, 4), np.uint8), np.zeros((4,), np.uint8), [[1, 2]]])
def test_unsupported_images_are_refused(bad):
    with pytest.raises(ValueError, match="image"):
        gaussian_pyramid(bad)


def test_unsupported_border_and_storage_are_refused():
    image = random_image((8, 8))
    with pytest.raises(ValueError, match=r"allowed: cv2\.BORDER_REFLECT101"):
        gaussian_pyramid(image, border=cv2.BORDER_CONSTANT)
    with pytest.raises(ValueError, match="allowed: float32, int16, uint8_saturate"):
        laplacian_pyramid(image, storage="float16")
    with pytest.raises(ValueError, match="needs a uint8 image"):
        laplacian_pyramid(image.astype(np.uint16), storage="int16")


@pytest.mark.parametrize(("shape", "dtype", "channels"), CASES)
def test_laplacian_bands_follow_the_definition(shape, dtype, channels):
    image = random_image(shape, dtype, channels, seed=1)
    gauss = reference_gaussian(image)
    bands = laplacian_pyramid(image)
    assert len(bands) == len(gauss)
    for i, band in enumerate(bands[:-1]):
        fine = gauss[i].astype(np.float32)
        up = cv2.pyrUp(gauss[i + 1].astype(np.float32), dstsize=(fine.shape[1], fine.shape[0]))
        assert band.dtype == np.float32
        np.testing.assert_array_equal(band, fine - up)
    np.testing.assert_array_equal(bands[-1], gauss[-1].astype(np.float32))


@pytest.mark.parametrize(("shape", "dtype", "channels"), [*CASES, ((1023, 767), np.uint8, None),
                                                          ((1023, 767), np.uint16, 3)])
def test_reconstruction_is_exact(shape, dtype, channels):
    image = random_image(shape, dtype, channels, seed=2)
    rebuilt = reconstruct(laplacian_pyramid(image))
    assert rebuilt.dtype == np.float32 and rebuilt.shape == image.shape
    if dtype == np.float32:
        assert np.max(np.abs(rebuilt - image)) < 1e-5 * dtype_range(dtype)
    else:
        np.testing.assert_array_equal(to_dtype(rebuilt, dtype), image)
        assert not np.any(residual(image, rebuilt))


@pytest.mark.parametrize(("shape", "channels"), list(itertools.product([*ODD_SHAPES, (1023, 767)], CHANNELS)))
def test_int16_storage_is_exact_and_integer(shape, channels):
    image = random_image(shape, np.uint8, channels, seed=3)
    bands = laplacian_pyramid(image, storage="int16")
    assert all(band.dtype == np.int16 for band in bands)
    gauss = reference_gaussian(image)
    for i, band in enumerate(bands[:-1]):
        up = cv2.pyrUp(gauss[i + 1], dstsize=(gauss[i].shape[1], gauss[i].shape[0]))
        np.testing.assert_array_equal(band, gauss[i].astype(np.int16) - up.astype(np.int16))
    np.testing.assert_array_equal(to_dtype(reconstruct(bands), np.uint8), image)


@pytest.mark.parametrize("border", list(BORDERS))
@pytest.mark.parametrize("dtype", DTYPES)
def test_every_border_reconstructs_exactly(border, dtype):
    image = random_image((37, 20), dtype, 3, seed=4)
    gauss = gaussian_pyramid(image, border=border)
    np.testing.assert_array_equal(gauss[1], cv2.pyrDown(image, borderType=border))
    rebuilt = reconstruct(laplacian_pyramid(image, border=border), border=border)
    if dtype == np.float32:
        assert np.max(np.abs(rebuilt - image)) < 1e-5
    else:
        np.testing.assert_array_equal(to_dtype(rebuilt, dtype), image)


def test_uint8_saturate_loses_negative_detail_on_a_natural_image():
    image = natural_image()
    bands = laplacian_pyramid(image, storage="uint8_saturate")
    assert bands[0].dtype == np.uint8 and bands[0].min() == 0
    exact = laplacian_pyramid(image, storage="int16")
    # Exactly the negative part of every band is gone.
    for clipped, signed in zip(bands, exact, strict=True):
        np.testing.assert_array_equal(clipped, np.clip(signed, 0, None).astype(np.uint8))
    lost = residual(image, reconstruct(bands))
    assert np.count_nonzero(lost) > image.size // 10
    assert np.abs(lost).max() > 20


def test_gains_drop_and_boost_bands():
    image = natural_image(np.float32)
    bands = laplacian_pyramid(image, levels=4)
    only_coarse = reconstruct(bands, gains=[0, 0, 0, 1])
    np.testing.assert_allclose(only_coarse, reconstruct([np.zeros_like(b) for b in bands[:-1]] + [bands[-1]]))
    boosted = reconstruct(bands, gains=[2, 1, 1, 1])
    np.testing.assert_allclose(boosted - reconstruct(bands), bands[0], atol=1e-5)
    with pytest.raises(ValueError, match="one per band"):
        reconstruct(bands, gains=[1, 1])


def test_reconstruct_refuses_mixed_or_empty_bands():
    with pytest.raises(ValueError, match="at least one band"):
        reconstruct([])
    bands = laplacian_pyramid(random_image((8, 8)), levels=2)
    with pytest.raises(ValueError, match="float32, int16 or uint8"):
        reconstruct([bands[0], bands[1].astype(np.int16)])


def test_residual_rounds_integer_reconstructions_only():
    image = np.array([[10, 20]], np.uint8)
    np.testing.assert_array_equal(residual(image, np.array([[10.2, 19.6]], np.float32)), [[0, 0]])
    np.testing.assert_allclose(residual(image.astype(np.float32), np.array([[10.25, 19.5]], np.float32)),
                               [[-0.25, 0.5]])
    with pytest.raises(ValueError, match="shape"):
        residual(image, np.zeros((2, 1), np.float32))


@pytest.mark.parametrize("shape", [(9, 1), (1, 9), (1, 1), (2, 3), (5, 2)])
def test_constant_image_has_zero_detail_bands(shape):
    """A direct property (no OpenCV reference): expanding a constant gives the constant back exactly,
    so every band but the last is zero. Guards against out-of-bounds reads on 1-pixel sides."""
    image = np.full((*shape, 3), 100, np.uint8)
    bands = laplacian_pyramid(image)
    assert all(not band.any() for band in bands[:-1])
    np.testing.assert_array_equal(bands[-1], np.full((1, 1, 3), 100, np.float32))
