"""Multiresolution blending against Burt & Adelson's spline written out here on OpenCV's pyrDown/pyrUp,
the plain blends and masks against their formulas, and fitting a second image."""

import math

import cv2
import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, ODD_SHAPES, dtype_range, random_image

from pyramid_explorer.core.blend import (
    alpha_blend,
    blended_bands,
    contributions,
    ellipse_mask,
    feather,
    fit_to,
    half_mask,
    laplacian_blend,
    mask_from_image,
)
from pyramid_explorer.core.pyramid import max_levels


def spline_by_definition(a, b, mask, levels):
    """Burt & Adelson 1983: LS[i] = GM[i] LA[i] + (1 - GM[i]) LB[i], collapsed. The Gaussian levels are
    made in the image's dtype (as the project's pyramids are), the bands from them in float32."""

    def gauss(x):
        out = [x]
        for _ in range(levels - 1):
            out.append(cv2.pyrDown(out[-1]))
        return [level.astype(np.float32) for level in out]

    def up(x, like):
        return cv2.pyrUp(x, dstsize=(like.shape[1], like.shape[0])).reshape(like.shape)

    ga, gb, gm = gauss(a), gauss(b), gauss(mask)
    la = [ga[i] - up(ga[i + 1], ga[i]) for i in range(levels - 1)] + [ga[-1]]
    lb = [gb[i] - up(gb[i + 1], gb[i]) for i in range(levels - 1)] + [gb[-1]]
    ls = [(m if x.ndim == 2 else m[:, :, None]) * x + (1 - (m if x.ndim == 2 else m[:, :, None])) * y
          for m, x, y in zip(gm, la, lb, strict=True)]
    out = ls[-1]
    for band in reversed(ls[:-1]):
        out = up(out.astype(np.float32), band) + band
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("shape", [(1, 1), (3, 5), (17, 31), (64, 48)])
def test_laplacian_blend_is_the_multiresolution_spline(dtype, channels, shape):
    a, b = random_image(shape, dtype, channels, seed=1), random_image(shape, dtype, channels, seed=2)
    mask = ellipse_mask(shape, 0.7, 0.3)
    levels = max_levels(shape)
    out = laplacian_blend(a, b, mask)
    assert out.dtype == np.float32 and out.shape == a.shape
    expected = spline_by_definition(a, b, mask, levels)
    np.testing.assert_allclose(out, expected, atol=2e-5 * dtype_range(dtype))
    few = min(2, levels)
    np.testing.assert_allclose(laplacian_blend(a, b, mask, levels=few), spline_by_definition(a, b, mask, few),
                               atol=2e-5 * dtype_range(dtype))


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_a_mask_of_ones_gives_a_and_of_zeros_gives_b(shape):
    a, b = random_image(shape, np.uint8, 3, seed=3), random_image(shape, np.uint8, 3, seed=4)
    ones = np.ones(shape, np.float32)
    np.testing.assert_allclose(laplacian_blend(a, b, ones), a, atol=1e-3)
    np.testing.assert_allclose(laplacian_blend(a, b, 0 * ones), b, atol=1e-3)
    np.testing.assert_allclose(laplacian_blend(a, a, half_mask(shape)), a, atol=1e-3)


@pytest.mark.parametrize("border", [cv2.BORDER_REFLECT, cv2.BORDER_REPLICATE, cv2.BORDER_WRAP])
def test_every_border_keeps_the_blend_exact_where_the_images_agree(border):
    a = random_image((21, 18), np.float32, 4, seed=5)
    np.testing.assert_allclose(laplacian_blend(a, a, half_mask((21, 18), "top"), border=border), a, atol=1e-5)


def test_contributions_are_the_bands_collapsed_alone_and_sum_to_the_blend():
    a, b = random_image((33, 40), np.uint16, seed=6), random_image((33, 40), np.uint16, seed=7)
    mask = half_mask((33, 40))
    bands = blended_bands(a, b, mask, levels=4)
    parts = contributions(bands)
    assert len(parts) == 4 and all(p.shape == a.shape for p in parts)
    np.testing.assert_allclose(sum(parts), laplacian_blend(a, b, mask, levels=4), atol=0.05)
    # the coarsest contribution is the blended coarsest level expanded three times
    coarse = bands[-1]
    for size in ((10, 9), (20, 17), (40, 33)):
        coarse = cv2.pyrUp(coarse, dstsize=size)
    np.testing.assert_allclose(parts[-1], coarse, atol=1e-3)


def test_the_tutorial_uint8_mistake_clips_negative_detail():
    a, b = random_image((32, 32), np.uint8, 3, seed=8), random_image((32, 32), np.uint8, 3, seed=9)
    mask = half_mask((32, 32))
    wrong = laplacian_blend(a, b, mask, levels=3, storage="uint8_saturate")
    # by hand: bands by cv2.subtract on uint8, blended and rounded to uint8, collapsed with cv2.add
    ga = [a, cv2.pyrDown(a)]
    ga.append(cv2.pyrDown(ga[1]))
    gb = [b, cv2.pyrDown(b)]
    gb.append(cv2.pyrDown(gb[1]))
    gm = [mask, cv2.pyrDown(mask)]
    gm.append(cv2.pyrDown(gm[1]))

    def bands(g):
        return [cv2.subtract(g[i], cv2.pyrUp(g[i + 1], dstsize=g[i].shape[1::-1])) for i in range(2)] + [g[2]]

    blended = [np.clip(np.rint(m[:, :, None] * x + (1 - m[:, :, None]) * y.astype(np.float32)), 0, 255)
               .astype(np.uint8) for m, x, y in zip(gm, bands(ga), bands(gb), strict=True)]
    out = blended[2]
    for band in (blended[1], blended[0]):
        out = cv2.add(cv2.pyrUp(out, dstsize=band.shape[1::-1]), band)
    # reconstruct saturates the running image before each expansion, not the final sum
    np.testing.assert_allclose(np.clip(wrong, 0, 255), out, atol=1)
    right = laplacian_blend(a, b, mask, levels=3)
    assert np.abs(wrong - right).mean() > 5  # the clipping costs visibly
    with pytest.raises(ValueError, match="needs a uint8 image"):
        laplacian_blend(a.astype(np.uint16), b.astype(np.uint16), mask, storage="uint8_saturate")


@pytest.mark.parametrize("channels", CHANNELS)
def test_alpha_blend_is_the_weighted_sum(channels):
    a, b = random_image((5, 7), np.uint8, channels, seed=1), random_image((5, 7), np.uint8, channels, seed=2)
    mask = np.random.default_rng(0).random((5, 7)).astype(np.float32)
    m = mask if channels is None else mask[:, :, None]
    np.testing.assert_allclose(alpha_blend(a, b, mask), m * a + (1 - m) * b.astype(np.float64), atol=1e-4)
    hard = half_mask((5, 7), "right")
    where = hard > 0 if channels is None else hard[:, :, None] > 0
    np.testing.assert_array_equal(alpha_blend(a, b, hard), np.where(where, a, b))


@pytest.mark.parametrize(
    ("a_shape", "b_shape", "mask", "message"),
    [
        ((4, 4), (4, 5), np.ones((4, 4)), "same shape"),
        ((4, 4), (4, 4), np.ones((4, 5)), r"mask must be a float \(H, W\)"),
        ((4, 4), (4, 4), np.ones((4, 4), np.uint8), r"mask must be a float \(H, W\)"),
        ((4, 4), (4, 4), np.full((4, 4), 1.5), r"lie in \[0, 1\]"),
        ((4, 4), (4, 4), np.full((4, 4), np.nan), r"lie in \[0, 1\]"),
    ],
)
def test_bad_blend_inputs_say_what_is_allowed(a_shape, b_shape, mask, message):
    a, b = np.zeros(a_shape, np.uint8), np.zeros(b_shape, np.uint8)
    for blend in (laplacian_blend, alpha_blend):
        with pytest.raises(ValueError, match=message):
            blend(a, b, mask)


def gaussian_step(distance, sigma):
    """A hard 0/1 edge blurred by a Gaussian, at ``distance`` inside the 1 side."""
    return 0.5 * (1 + math.erf(distance / (sigma * math.sqrt(2))))


def test_feather_spreads_a_hard_edge_over_its_width():
    hard = half_mask((9, 400))
    soft = feather(hard, 40)
    row = soft[4]
    # the edge lies at x = 199.5 (between columns 199 and 200); sigma 10 puts +-2 sigma 20 px either side
    assert row[179] == pytest.approx(0.977, abs=0.005) and row[220] == pytest.approx(0.023, abs=0.005)
    for col in (185, 195, 199, 200, 210):
        assert row[col] == pytest.approx(gaussian_step(199.5 - col, 10), abs=0.005)
    np.testing.assert_array_equal(feather(hard, 0), hard)
    wide = feather(half_mask((5, 3000)), 800)[2]  # sigma 200, blurred on a shrunk mask
    for col in (1000, 1300, 1499, 1600, 2000):
        assert wide[col] == pytest.approx(gaussian_step(1499.5 - col, 200), abs=0.005)
    with pytest.raises(ValueError, match="width must be a number of pixels >= 0"):
        feather(hard, -1)


@pytest.mark.parametrize("shape", ODD_SHAPES)
def test_half_masks_split_at_half_the_side(shape):
    h, w = shape
    left, right = half_mask(shape, "left"), half_mask(shape, "right")
    assert left.sum() == h * (w // 2) and np.array_equal(left + right, np.ones(shape))
    assert half_mask(shape, "top").sum() == (h // 2) * w
    with pytest.raises(ValueError, match="side must be one of left, right, top, bottom"):
        half_mask(shape, "middle")


def test_ellipse_mask():
    mask = ellipse_mask((101, 201), scale=0.5)
    assert mask[50, 100] == 1 and mask[0, 0] == 0 and mask[50, 151] == 0 and mask[50, 149] == 1
    soft = ellipse_mask((101, 201), scale=0.5, softness=0.2)
    # radius along the middle row: |x + 0.5 - 100.5| / 50.25; the ramp is (1 - r) / 0.2 + 0.5
    for col in (140, 150, 155, 160):
        r = abs(col + 0.5 - 100.5) / 50.25
        assert soft[50, col] == pytest.approx(np.clip((1 - r) / 0.2 + 0.5, 0, 1), abs=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
def test_mask_from_image_spans_the_dtype_range(dtype):
    image = random_image((6, 5), dtype, 4, seed=1)
    expected = image[:, :, :3].astype(np.float64).mean(axis=2) / dtype_range(dtype)
    np.testing.assert_allclose(mask_from_image(image), np.clip(expected, 0, 1), atol=1e-6)


def test_fit_to_resize_stretches_to_the_exact_size():
    b, like = random_image((30, 40), np.uint8, 3), np.zeros((15, 25, 3), np.uint8)
    fitted = fit_to(b, like, "resize")
    assert fitted.image.shape == like.shape and fitted.image.dtype == np.uint8
    assert fitted.note == "resized from 40x30 to 25x15"


def test_fit_to_crop_cuts_the_centre_out_without_resampling_when_b_is_larger():
    b, like = random_image((31, 40), np.uint16, 4), np.zeros((15, 25, 4), np.uint16)
    fitted = fit_to(b, like, "crop")
    np.testing.assert_array_equal(fitted.image, b[8:23, 7:32])
    assert fitted.note == "centre-cropped from 40x31 to 25x15"


def test_fit_to_crop_scales_a_smaller_image_up_keeping_its_aspect_ratio():
    b = np.tile(np.arange(10, dtype=np.float32), (20, 1)) / 10  # 10 wide, 20 high
    fitted = fit_to(b, np.zeros((30, 30), np.float32), "crop")
    assert fitted.image.shape == (30, 30) and fitted.note.startswith("scaled by 3 and centre-cropped")
    # horizontally scaled by 3, not stretched: the ramp spans the whole width
    assert fitted.image[15, 0] < 0.05 and fitted.image[15, -1] > 0.85


def test_fit_to_converts_channels_and_dtype():
    grey = random_image((4, 4), np.uint16, seed=3)
    fitted = fit_to(grey, np.zeros((4, 4, 4), np.uint8))
    assert fitted.image.shape == (4, 4, 4) and fitted.image.dtype == np.uint8
    np.testing.assert_array_equal(fitted.image[:, :, 0], np.rint(grey / 257).astype(np.uint8))
    assert (fitted.image[:, :, 3] == 255).all()
    assert fitted.note == "grey turned into RGBA; uint16 values rescaled to uint8"
    same = fit_to(grey, grey)
    assert same.note == "same size and type: used as it is" and np.array_equal(same.image, grey)
    with pytest.raises(ValueError, match="how must be one of resize, crop"):
        fit_to(grey, grey, "pad")


@pytest.mark.parametrize("shape, width, side", [((1, 9), 40, "bottom"), ((64, 31), 17, "left"),
                                                ((5, 3000), 800, "right")])
def test_feather_never_leaves_the_masks_range(shape, width, side):
    # A blend weight above 1 (or below 0) would overshoot the blended images; float32 rounding in the
    # blur made (1, 9) at width 40 reach 1 + 1.2e-7 before the result was clipped to the mask's range.
    soft = feather(half_mask(shape, side), width)
    assert soft.min() >= 0 and soft.max() <= 1
    noise = np.random.default_rng(3).uniform(0.2, 0.7, (37, 23)).astype(np.float32)
    soft = feather(noise, width)
    assert soft.min() >= noise.min() and soft.max() <= noise.max()
