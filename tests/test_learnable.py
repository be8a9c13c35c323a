"""The learnable upsamplers' initialisations and checkerboards, against definitions written out here:
bilinear and box initialisations against interpolation and nearest, phase sums against what a constant
image becomes, the sub-pixel form of a transposed convolution against the transposed convolution."""

import itertools

import numpy as np
import pytest
from helpers import DTYPES, random_image

from pyramid_explorer.core.analysis import phase_means
from pyramid_explorer.core.learnable import (
    INITIALISATIONS,
    METHODS,
    Upsampler,
    bilinear_init,
    box_init,
    checkerboard,
    distance,
    icnr_distance,
    icnr_init,
    initialise,
    random_init,
    subpixel_from_transposed,
    transposed_equivalent,
)
from pyramid_explorer.core.upsampling import upsample

FACTORS = (1, 2, 3, 4)


def transposed_by_definition(x, kernel, f, padding):
    """out[y, x] = sum_mn x[m, n] * kernel[y - m*f + padding, x - n*f + padding], output (H*f, W*f)."""
    x3 = np.asarray(x, np.float64).reshape(x.shape[0], x.shape[1], -1)
    h, w, _ = x3.shape
    out = np.zeros((h * f, w * f, x3.shape[2]))
    for m, n, a, b in itertools.product(range(h), range(w), range(kernel.shape[0]), range(kernel.shape[1])):
        y, z = m * f + a - padding, n * f + b - padding
        if 0 <= y < h * f and 0 <= z < w * f:
            out[y, z] += x3[m, n] * kernel[a, b]
    return out.reshape(h * f, w * f, *x.shape[2:])


@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize("method", METHODS)
def test_bilinear_init_is_bilinear_interpolation_away_from_the_borders(method, f):
    x = random_image((9, 11), np.float32, seed=f)
    out = bilinear_init(method, f).apply(x)
    reference = upsample(x, "deconv_bilinear", f)
    assert out.shape == reference.shape and out.dtype == np.float32
    m = 2 * f
    np.testing.assert_allclose(out[m:-m, m:-m], reference[m:-m, m:-m], atol=1e-6)
    if method != "resize":  # zeros outside the input, as deconv_bilinear: equal at the borders too
        np.testing.assert_allclose(out, reference, atol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize("method", METHODS)
def test_box_init_is_nearest_neighbour(method, f, dtype, channels):
    x = random_image((3, 5), dtype, channels, seed=f)
    expected = np.repeat(np.repeat(x.astype(np.float32), f, axis=0), f, axis=1)
    np.testing.assert_array_equal(box_init(method, f).apply(x), expected)


@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize(("k", "padding"), [(1, 0), (3, 1), (4, 1), (5, 2), (5, 0), (6, 3)])
def test_transposed_upsampler_matches_the_definition(f, k, padding):
    x = random_image((4, 5), np.float32, 3, seed=k)
    kernel = np.random.default_rng(k).normal(size=(k, k))
    up = Upsampler("transposed", f, kernel, padding)
    np.testing.assert_allclose(up.apply(x), transposed_by_definition(x, kernel, f, padding), atol=1e-5)


@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize(("k", "padding"), [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2), (7, 0), (4, 3)])
def test_subpixel_from_transposed_is_the_same_operator_everywhere(f, k, padding):
    x = random_image((5, 6), np.float32, seed=f + k)
    kernel = np.random.default_rng(f * k).normal(size=(k, k))
    subs = subpixel_from_transposed(kernel, f, padding)
    assert subs.shape[0] == f * f and subs.shape[1] % 2 == 1
    transposed = Upsampler("transposed", f, kernel, padding).apply(x)
    np.testing.assert_allclose(Upsampler("subpixel", f, subs).apply(x), transposed, atol=1e-5)


@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize(("method", "init"), [(m, i) for m in METHODS for i in INITIALISATIONS[m]])
def test_phase_sums_are_what_a_constant_image_becomes(method, init, f):
    up = initialise(method, init, f, seed=7)
    board = checkerboard(up)
    measured = phase_means(up.apply(np.ones((24, 24), np.float32)), f, margin=4 * f)
    np.testing.assert_allclose(board.phase_sums, measured, rtol=1e-5)
    assert board.ratio == pytest.approx(measured.max() / measured.min(), rel=1e-5)


@pytest.mark.parametrize("f", [2, 3, 4])
def test_random_transposed_and_subpixel_show_checkerboards_resize_and_icnr_do_not(f):
    for seed in range(5):
        assert checkerboard(random_init("transposed", f, seed=seed)).ratio > 1.05
        assert checkerboard(random_init("subpixel", f, seed=seed)).ratio > 1.05
        for up in (random_init("resize", f, seed=seed), icnr_init(f, seed=seed)):
            board = checkerboard(up)
            assert board.ratio == pytest.approx(1.0, abs=1e-5)
            assert board.verdict.startswith("even")
    assert checkerboard(random_init("transposed", 2, seed=0)).verdict.startswith("uneven")


@pytest.mark.parametrize("f", FACTORS)
@pytest.mark.parametrize("method", METHODS)
def test_random_init_is_seeded_and_keeps_the_mean_brightness(method, f):
    a, b = random_init(method, f, seed=3), random_init(method, f, seed=3)
    assert np.array_equal(a.weights, b.weights)
    other = random_init(method, f, 3, seed=4)
    assert not np.array_equal(random_init(method, f, 3, seed=3).weights, other.weights)
    assert float(checkerboard(a).phase_sums.mean()) == pytest.approx(1.0, rel=1e-5)
    assert random_init(method, f, size=5).weights.shape[-1] == 5


def test_transposed_equivalent_of_resize_conv_is_box_times_kernel():
    kernel = np.random.default_rng(0).random((3, 3))
    equivalent, _ = transposed_equivalent(Upsampler("resize", 2, kernel))
    # nearest is zero insertion then a 2x2 box, and correlating is convolving with the flipped kernel:
    # a transposed convolution by the full convolution of the box with the flipped kernel
    box_then_kernel = np.zeros((4, 4))
    for a, b in itertools.product(range(2), range(2)):
        box_then_kernel[a : a + 3, b : b + 3] += kernel[::-1, ::-1]
    np.testing.assert_allclose(equivalent, box_then_kernel, rtol=1e-5)


@pytest.mark.parametrize("f", FACTORS)
def test_distance_is_zero_between_equal_operators_and_positive_otherwise(f):
    reference = bilinear_init("transposed", f)
    for method in METHODS:
        assert distance(bilinear_init(method, f), reference) == pytest.approx(0.0, abs=1e-6)
    if f > 1:
        assert distance(box_init("transposed", f), reference) > 0.1
    with pytest.raises(ValueError, match="factors differ"):
        distance(reference, bilinear_init("transposed", f + 1))


def test_distance_aligns_kernels_by_their_padding():
    kernel = np.random.default_rng(1).random((4, 4))
    shifted = np.pad(kernel, ((1, 0), (1, 0)))  # one more padding, one leading zero row/col: same operator
    assert distance(Upsampler("transposed", 2, shifted, 2), Upsampler("transposed", 2, kernel, 1)) < 1e-6


def test_icnr_distance():
    assert icnr_distance(icnr_init(3, seed=2)) == 0.0
    subs = random_init("subpixel", 2, seed=2).weights.astype(np.float64)
    expected = np.linalg.norm(subs - subs.mean(axis=0)) / np.linalg.norm(subs)
    assert icnr_distance(random_init("subpixel", 2, seed=2)) == pytest.approx(expected)
    with pytest.raises(ValueError, match="sub-pixel convolution only"):
        icnr_distance(bilinear_init("transposed", 2))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", 2, np.ones((3, 3))), "method 'nope'; allowed: transposed, resize, subpixel"),
        (("resize", 0, np.ones((3, 3))), "factor must be an integer >= 1"),
        (("resize", 2, np.ones((2, 2))), "k odd"),
        (("subpixel", 2, np.ones((3, 3, 3))), r"\(4, k, k\)"),
        (("transposed", 2, np.ones(3)), "2-D kernel"),
        (("transposed", 2, np.ones((3, 3)), -1), "padding must be an integer >= 0"),
        (("resize", 2, np.ones((3, 3)), 1), "padding applies to transposed convolution only"),
    ],
)
def test_upsampler_refuses_bad_weights(args, message):
    with pytest.raises(ValueError, match=message):
        Upsampler(*args)


def test_initialise_names_what_is_allowed():
    with pytest.raises(ValueError, match=r"allowed: bilinear, box, random$"):
        initialise("transposed", "icnr", 2)
    with pytest.raises(ValueError, match="unknown upsampler method"):
        initialise("deconv", "box", 2)


def test_weights_are_read_only_float32_copies():
    kernel = np.ones((3, 3))
    up = Upsampler("resize", 2, kernel)
    kernel[0, 0] = 5
    assert up.weights.dtype == np.float32 and up.weights[0, 0] == 1
    with pytest.raises(ValueError, match="read-only"):
        up.weights[0, 0] = 2


def test_an_all_zero_upsampler_has_no_checkerboard_to_measure():
    with pytest.raises(ValueError, match="has no kernel"):
        checkerboard(Upsampler("resize", 2, np.zeros((3, 3))))


def test_apply_crops_to_an_odd_finer_level_and_takes_numpy_integers():
    up = bilinear_init("subpixel", np.int64(2))
    assert up.factor == 2 and type(up.factor) is int
    x = random_image((4, 5), np.float32, 3)
    full = up.apply(x)
    np.testing.assert_array_equal(up.apply(x, size=(9, 7)), full[:7, :9])
    with pytest.raises(ValueError, match="within the upsampled 10x8"):
        up.apply(x, size=(11, 8))


@pytest.mark.parametrize("padding", [0, 1, 2])
def test_transposed_equivalent_of_a_transposed_convolution_is_its_own_kernel(padding):
    kernel = np.zeros((4, 3))
    kernel[1:, :2] = np.random.default_rng(padding).random((3, 2)) + 0.1  # zero first row, last column
    equivalent, measured_padding = transposed_equivalent(Upsampler("transposed", 2, kernel, padding))
    # the smallest square holding every tap: rows 1..3, cols 0..1 -> start at 0, side 4
    np.testing.assert_allclose(equivalent, np.pad(kernel, ((0, 0), (0, 1))), rtol=1e-6)
    assert measured_padding == padding
