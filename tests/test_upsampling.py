"""upsample(): every mode's shape and dtype, its values against an independent reference, and its errors."""

import cv2
import numpy as np
import pytest

from pyramid_explorer.core.upsampling import (
    MODES,
    bilinear_kernel,
    max_pool_with_indices,
    max_unpool,
    same_result,
    transposed_conv2d,
    upsample,
)

SHAPES = [(1, 1), (1, 6), (5, 1), (3, 5), (7, 4), (3, 5, 3), (1, 1, 3), (4, 7, 4), (1, 2, 4)]
DTYPES = [np.uint8, np.uint16, np.float32]


def random_image(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def mode_input(image, mode, factor, size=None):
    """``(input, indices)`` for ``upsample``; unpool starts from the pooled original of the output size."""
    if mode != "unpool":
        return image, None
    width, height = size or (image.shape[1] * factor, image.shape[0] * factor)
    if (height // factor, width // factor) != image.shape[:2]:
        pytest.skip("no original of this size pools to the image's size")
    return max_pool_with_indices(random_image((height, width, *image.shape[2:]), image.dtype, seed=1), factor)


def bilinear_zero_border(x, factor, out_h, out_w):
    """Bilinear interpolation with half-pixel centres and zeros outside the image, as a matrix product.

    Output position y samples input coordinate (y + 0.5)/f - 0.5 and weighs input i by max(0, 1 - |c - i|).
    """

    def weights(n_out, n_in):
        c = (np.arange(n_out) + 0.5) / factor - 0.5
        return np.maximum(0, 1 - np.abs(c[:, None] - np.arange(n_in)[None, :]))

    x3 = x.astype(np.float64).reshape(x.shape[0], x.shape[1], -1)
    out = np.einsum("yi,ijc,xj->yxc", weights(out_h, x.shape[0]), x3, weights(out_w, x.shape[1]))
    return out.reshape((out_h, out_w, *x.shape[2:]))


def test_modes_are_the_agreed_tuple():
    assert MODES == (
        "nearest",
        "bilinear",
        "bicubic",
        "area",
        "lanczos",
        "pyrup",
        "zero_insert",
        "deconv_bilinear",
        "unpool",
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_every_mode_shape_and_dtype(mode, dtype, shape):
    image, indices = mode_input(random_image(shape, dtype), mode, 2)
    out = upsample(image, mode, indices=indices)
    assert out.dtype == np.float32
    assert out.shape == (2 * shape[0], 2 * shape[1], *shape[2:])
    assert np.isfinite(out).all()


@pytest.mark.parametrize("mode", [m for m in MODES if m != "pyrup"])
@pytest.mark.parametrize("factor", [1, 3, 4])
def test_every_mode_other_factors(mode, factor):
    image, indices = mode_input(random_image((3, 5, 3), np.float32), mode, factor)
    out = upsample(image, mode, factor, indices=indices)
    assert out.shape == (3 * factor, 5 * factor, 3) and out.dtype == np.float32


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("delta", [(-1, -1), (1, 1), (-1, 1), (0, 1)])
@pytest.mark.parametrize("shape", [(3, 5), (1, 1, 3), (4, 7, 4)])
def test_every_mode_honours_size_one_pixel_off(mode, delta, shape):
    size = (2 * shape[1] + delta[0], 2 * shape[0] + delta[1])
    image, indices = mode_input(random_image(shape, np.uint8), mode, 2, size)
    out = upsample(image, mode, size=size, indices=indices)
    assert out.shape == (size[1], size[0], *shape[2:]) and out.dtype == np.float32


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bicubic", "area", "lanczos"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_opencv_modes_resize_the_float32_values(mode, dtype):
    """cv2.resize on the float32 conversion (not on uint8, which rounds to integers)."""
    flags = {
        "nearest": cv2.INTER_NEAREST,
        "bilinear": cv2.INTER_LINEAR,
        "bicubic": cv2.INTER_CUBIC,
        "area": cv2.INTER_AREA,
        "lanczos": cv2.INTER_LANCZOS4,
    }
    image = random_image((7, 5, 3), dtype)
    out = upsample(image, mode, 3)
    ref = cv2.resize(image.astype(np.float32), (15, 21), interpolation=flags[mode])
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("shape", [(1, 1), (3, 7), (6, 5, 3)])
def test_nearest_repeats_pixels(factor, shape):
    image = random_image(shape, np.uint16)
    expected = np.repeat(np.repeat(image, factor, 0), factor, 1).astype(np.float32)
    np.testing.assert_array_equal(upsample(image, "nearest", factor), expected)


@pytest.mark.parametrize("factor", [1, 2, 3, 5])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [*SHAPES, (541, 961, 3)])
def test_area_at_a_whole_factor_is_nearest(factor, dtype, shape):
    """What lets a comparison share nearest's numbers with area: the same values, for every finite input."""
    image = random_image(shape, dtype) - (0.5 if dtype == np.float32 else 0)
    assert same_result("area", shape, (shape[1] * factor, shape[0] * factor)) == "nearest"
    np.testing.assert_array_equal(upsample(image, "area", factor), upsample(image, "nearest", factor))


@pytest.mark.parametrize(("mode", "shape", "size"), [
    ("area", (3, 5), (9, 7)), ("area", (4, 4, 3), (8, 7)), ("area", (5, 5), (9, 10)),  # not whole factors
    ("nearest", (3, 5), (10, 6)), ("bilinear", (3, 5), (10, 6)), ("deconv_bilinear", (3, 5), (10, 6)),
])
def test_no_other_mode_is_said_to_repeat_another(mode, shape, size):
    assert same_result(mode, shape, size) is None
    image = random_image(shape, np.float32)
    if mode == "area":  # and indeed the values differ
        assert not np.array_equal(upsample(image, "area", size=size), upsample(image, "nearest", size=size))


def test_area_is_not_nearest_next_to_a_nan():
    image = random_image((6, 6), np.float32)
    image[2, 2] = np.nan
    assert np.isnan(upsample(image, "area")).sum() > np.isnan(upsample(image, "nearest")).sum() == 4


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (5, 3), (8, 6, 3), (7, 9, 4)])
@pytest.mark.parametrize("delta", [(0, 0), (-1, -1), (1, 1), (-1, 0), (1, -1)])
def test_pyrup_is_cv2_pyrup_with_dstsize(shape, delta):
    image = random_image(shape, np.uint8)
    size = (2 * shape[1] + delta[0], 2 * shape[0] + delta[1])
    if min(size) < 1 or (shape[1], size[0]) == (1, 3):
        pytest.skip("no such size, or one where cv2.pyrUp reads out of bounds (tested below)")
    ref = cv2.pyrUp(image.astype(np.float32), dstsize=size).reshape(size[1], size[0], *shape[2:])
    np.testing.assert_array_equal(upsample(image, "pyrup", size=size), ref)


@pytest.mark.parametrize("shape", [(1, 1), (4, 1), (5, 1, 3)])
def test_pyrup_one_pixel_wide_to_three_columns(shape):
    """cv2.pyrUp reads out of bounds here; along a 1-pixel side pyrUp is constant, so all columns agree."""
    image = random_image(shape, np.uint8)
    height = 2 * shape[0] + 1
    out = upsample(image, "pyrup", size=(3, height))
    two = cv2.pyrUp(image.astype(np.float32), dstsize=(2, height)).reshape(height, 2, *shape[2:])
    for column in range(3):
        np.testing.assert_array_equal(out[:, column], two[:, 0])
    np.testing.assert_allclose(two[:, 1], two[:, 0], rtol=1e-6)


@pytest.mark.parametrize("factor", [1, 2, 3, 5])
@pytest.mark.parametrize("delta", [(0, 0), (-1, -1), (1, 1)])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (2, 5, 3)])
def test_zero_insert_places_pixels_at_multiples_of_the_factor(factor, delta, shape):
    image = random_image(shape, np.uint16) + 1  # no zero pixels, so every zero below is an inserted one
    width, height = shape[1] * factor + delta[0], shape[0] * factor + delta[1]
    if min(width, height) < 1:
        pytest.skip("no such size")
    out = upsample(image, "zero_insert", factor, size=(width, height))
    for y in range(height):
        for x in range(width):
            on_grid = (
                y % factor == 0 and x % factor == 0 and y // factor < shape[0] and x // factor < shape[1]
            )
            expected = image[y // factor, x // factor] if on_grid else 0
            np.testing.assert_array_equal(out[y, x], expected)


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("shape", [(1, 1), (2, 9), (5, 3, 3), (4, 6, 4)])
def test_deconv_bilinear_is_bilinear_with_zero_border(factor, shape):
    image = random_image(shape, np.float32, seed=factor)
    out = upsample(image, "deconv_bilinear", factor)
    np.testing.assert_allclose(out, bilinear_zero_border(image, factor, *out.shape[:2]), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("shape", [(3, 4), (7, 5, 3), (9, 8, 4)])
def test_deconv_bilinear_interior_equals_half_pixel_bilinear_resize(factor, shape):
    """Away from the border (where the deconvolution fades to zero) it is cv2.resize INTER_LINEAR."""
    image = random_image(shape, np.float32, seed=factor + 10)
    out = upsample(image, "deconv_bilinear", factor)
    ref = cv2.resize(image, (shape[1] * factor, shape[0] * factor), interpolation=cv2.INTER_LINEAR)
    m = factor // 2  # outputs whose sample position (y + 0.5)/f - 0.5 lies inside [0, n - 1]
    inner = (slice(m, out.shape[0] - m), slice(m, out.shape[1] - m))
    np.testing.assert_allclose(out[inner], ref.reshape(out.shape)[inner], rtol=1e-5, atol=1e-6)
    assert m == 0 or not np.allclose(out[0], ref.reshape(out.shape)[0])  # the border really differs


@pytest.mark.parametrize("factor", range(1, 9))
@pytest.mark.parametrize("delta", [(0, 0), (-1, -1), (1, 1), (1, -1)])
@pytest.mark.parametrize("shape", [(1, 1), (3, 4), (5, 2, 3)])
def test_deconv_bilinear_agrees_with_transposed_conv2d(factor, delta, shape):
    """The resize fast path and the sized path both equal the transposed convolution they stand for."""
    image = random_image(shape, np.uint8, seed=factor)
    width, height = shape[1] * factor + delta[0], shape[0] * factor + delta[1]
    if min(width, height) < 1:
        pytest.skip("no such size")
    out = upsample(image, "deconv_bilinear", factor, size=(width, height))
    pad = -(-(factor - 1) // 2)
    extra = [min(1, max(0, d), factor - 1) for d in (delta[1], delta[0])]
    conv = transposed_conv2d(image, bilinear_kernel(2 * factor - factor % 2), factor, pad, extra)
    expected = np.zeros((height, width, *shape[2:]), np.float32)
    rows, cols = min(height, conv.shape[0]), min(width, conv.shape[1])
    expected[:rows, :cols] = conv[:rows, :cols]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=255e-6)
    np.testing.assert_allclose(
        out, bilinear_zero_border(image, factor, height, width), rtol=1e-5, atol=255e-6
    )


@pytest.mark.parametrize("factor", [1, 2, 3])
@pytest.mark.parametrize("shape", [(5, 7), (8, 6, 3), (7, 9, 4), (6, 4, 3)])
def test_unpool_puts_maxima_back(factor, shape):
    original = random_image(shape, np.uint16)
    pooled, indices = max_pool_with_indices(original, factor)
    size = (shape[1], shape[0])
    if abs(size[0] - pooled.shape[1] * factor) > 1 or abs(size[1] - pooled.shape[0] * factor) > 1:
        pytest.skip("the original is more than one pixel larger than factor x pooled")
    out = upsample(pooled, "unpool", factor, size=size, indices=indices)
    assert out.shape == shape and out.dtype == np.float32
    np.testing.assert_array_equal(out, max_unpool(pooled, indices, shape).astype(np.float32))
    kept = out != 0
    np.testing.assert_array_equal(out[kept], original[kept])  # each value sits where it came from
    assert (
        kept.sum()
        >= (original[: pooled.shape[0] * factor, : pooled.shape[1] * factor] != 0).sum() / factor**2
    )


def test_unpool_restores_odd_sizes_whole():
    original = random_image((7, 5, 3), np.float32)
    pooled, indices = max_pool_with_indices(original)
    out = upsample(pooled, "unpool", indices=indices, size=(5, 7))
    assert out.shape == (7, 5, 3)
    assert (out[6] == 0).all() and (out[:, 4] == 0).all()


@pytest.mark.parametrize(("shape", "size"), [((7, 9, 3), None), ((6, 9), None), ((8, 8), (7, 8))])
def test_unpool_refuses_a_size_that_does_not_fit_the_indices(shape, size):
    """The default size (factor x pooled) is wrong for an original with an odd width: not silently."""
    pooled, indices = max_pool_with_indices(random_image(shape, np.float32))
    with pytest.raises(ValueError, match="mode 'unpool'"):
        upsample(pooled, "unpool", size=size, indices=indices)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mode": "bilinaer"}, "unknown upsampling mode 'bilinaer'; allowed: nearest, bilinear, bicubic"),
        ({"mode": "bilinear", "factor": 0}, "factor must be an integer >= 1"),
        ({"mode": "bilinear", "factor": -2}, "factor must be an integer >= 1"),
        ({"mode": "bilinear", "factor": 1.5}, "factor must be an integer >= 1"),
        ({"mode": "bilinear", "size": (12, 8)}, r"allowed widths 9\.\.11, heights 5\.\.7"),
        ({"mode": "nearest", "size": (10, 4)}, "more than one pixel per side"),
        ({"mode": "nearest", "size": (10,)}, "pair"),
        ({"mode": "nearest", "size": (10, 0)}, "size must be an integer >= 1"),
        ({"mode": "pyrup", "factor": 3}, "'pyrup' supports factor 2 only"),
        ({"mode": "pyrup", "factor": 1}, "'pyrup' supports factor 2 only"),
        ({"mode": "unpool"}, "'unpool' needs indices"),
    ],
)
def test_upsample_rejects_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        upsample(np.zeros((3, 5), np.uint8), **kwargs)


@pytest.mark.parametrize(
    "image",
    [np.zeros(5), np.zeros((2, 2, 2, 2)), np.zeros((0, 4)), np.zeros((3, 3, 2)), np.zeros((3, 3), bool)],
)
def test_upsample_rejects_bad_images(image):
    with pytest.raises(ValueError, match="image must"):
        upsample(image, "nearest")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(("shape", "delta"), [((3, 5), (0, 0)), ((7, 4, 3), (-1, -1)), ((4, 7, 4), (1, 0)),
                                              ((5, 6, 1), (0, -1)), ((1, 1), (1, 1)), ((4, 1, 3), (1, -1))])
def test_out_receives_exactly_the_result(mode, dtype, shape, delta):
    """Every path (exact-size fast paths, odd sizes, 1-pixel sides) fills all of `out`, leaving nothing of
    what it held, and returns `out` itself."""
    size = (2 * shape[1] + delta[0], 2 * shape[0] + delta[1])
    image, indices = mode_input(random_image(shape, dtype), mode, 2, size)
    want = upsample(image, mode, size=size, indices=indices)
    out = np.full(want.shape, np.nan, np.float32)
    got = upsample(image, mode, size=size, indices=indices, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("out", [np.zeros((6, 10), np.float32), np.zeros((6, 10, 3), np.float64),
                                 np.zeros((6, 20, 3), np.float32)[:, ::2]])
def test_out_of_another_shape_dtype_or_layout_is_refused(out):
    with pytest.raises(ValueError, match="out must be"):
        upsample(np.zeros((3, 5, 3), np.uint8), "bilinear", out=out)


def test_max_unpool_into_out_overwrites_all_of_it():
    x = random_image((7, 9, 3), np.float32)
    pooled, indices = max_pool_with_indices(x, 2)
    out = np.full(x.shape, np.nan, np.float32)
    assert max_unpool(pooled, indices, x.shape, out=out).base is out
    np.testing.assert_array_equal(out, max_unpool(pooled, indices, x.shape))
    with pytest.raises(ValueError, match="out must be"):
        max_unpool(pooled, indices, x.shape, out=np.zeros(x.shape, np.float64))
