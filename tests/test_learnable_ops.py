"""pixel_shuffle, subpixel_conv2d, icnr and resize_conv2d against definitions written out here (always) and
against PyTorch (when it is installed)."""

import itertools

import numpy as np
import pytest
from helpers import DTYPES, random_image

from pyramid_explorer.core.upsampling import icnr, pixel_shuffle, resize_conv2d, subpixel_conv2d

SHAPES = ((1, 1), (1, 4), (3, 1), (5, 7), (8, 6))


def shuffle_by_definition(x, f):
    """out[h*f + i, w*f + j, c] = x[h, w, c*f*f + i*f + j], one (c, i, j) at a time."""
    h, w, channels = x.shape
    out = np.zeros((h * f, w * f, channels // (f * f)))
    for c, i, j in itertools.product(range(channels // (f * f)), range(f), range(f)):
        out[i::f, j::f, c] = x[:, :, c * f * f + i * f + j]
    return out


def correlate_by_definition(x, kernel):
    """sum_ab x[y + a - r, x + b - r] * kernel[a, b] in float64, zeros outside, per channel of (H, W, C)."""
    r = kernel.shape[0] // 2
    padded = np.pad(np.asarray(x, np.float64), ((r, r), (r, r), (0, 0)))
    out = np.zeros(x.shape)
    for a, b in itertools.product(range(kernel.shape[0]), range(kernel.shape[1])):
        out += padded[a : a + x.shape[0], b : b + x.shape[1]] * kernel[a, b]
    return out


def as_hwc(x):
    return x.reshape(x.shape[0], x.shape[1], -1)


@pytest.mark.parametrize("f", [1, 2, 3])
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("out_channels", [1, 3, 4])
def test_pixel_shuffle_matches_the_definition(f, shape, out_channels):
    x = random_image(shape, np.float32, out_channels * f * f, seed=f)
    out = pixel_shuffle(x, f)
    expected = shuffle_by_definition(x, f)
    assert out.dtype == np.float32
    if out_channels == 1:
        assert out.shape == (shape[0] * f, shape[1] * f)
        expected = expected[:, :, 0]
    np.testing.assert_array_equal(out, expected)


def test_pixel_shuffle_2d_input_at_factor_1_is_returned_as_float32():
    x = random_image((3, 5), np.uint16)
    out = pixel_shuffle(x, 1)
    assert out.dtype == np.float32 and out.shape == (3, 5)
    np.testing.assert_array_equal(out, x)


@pytest.mark.parametrize(("shape", "f"), [((4, 5), 2), ((4, 5, 5), 2), ((4, 5, 8), 3)])
def test_pixel_shuffle_refuses_a_channel_count_that_is_not_a_multiple(shape, f):
    with pytest.raises(ValueError, match=rf"multiple of factor\*\*2 = {f * f}"):
        pixel_shuffle(np.zeros(shape, np.float32), f)


@pytest.mark.parametrize("factor", [0, -1, 1.5, True, "2"])
def test_a_bad_factor_names_what_is_allowed(factor):
    x = np.zeros((4, 4, 4), np.float32)
    for call in (lambda: pixel_shuffle(x, factor), lambda: resize_conv2d(x, np.ones((1, 1)), factor),
                 lambda: icnr(np.ones((3, 3)), factor),
                 lambda: subpixel_conv2d(x, np.ones((4, 1, 1)), factor)):
        with pytest.raises(ValueError, match="factor must be an integer >= 1"):
            call()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize(("shape", "f", "k"),
                         [((1, 1), 2, 3), ((5, 7), 2, 3), ((6, 3), 3, 5), ((4, 4), 1, 1)])
def test_subpixel_conv2d_is_correlation_then_shuffle(dtype, channels, shape, f, k):
    x = random_image(shape, dtype, channels, seed=k)
    kernels = np.random.default_rng(f).normal(size=(f * f, k, k)).astype(np.float32)
    out = subpixel_conv2d(x, kernels, f)
    x3 = as_hwc(x)
    # conv channel c*f*f + s is channel c correlated with sub-kernel s
    conv = np.concatenate([np.stack([correlate_by_definition(x3[:, :, c : c + 1], sub)[:, :, 0]
                                     for sub in kernels], axis=2) for c in range(x3.shape[2])], axis=2)
    expected = shuffle_by_definition(conv, f)
    assert out.dtype == np.float32
    assert out.shape == (shape[0] * f, shape[1] * f, *x.shape[2:])
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(as_hwc(out), expected, rtol=1e-5, atol=1e-5 * scale)


@pytest.mark.parametrize("kernels_shape", [(4, 2, 2), (4, 3, 5), (3, 3, 3), (4, 3), (1, 4, 3, 3)])
def test_subpixel_conv2d_refuses_wrong_kernels(kernels_shape):
    with pytest.raises(ValueError, match=r"k odd"):
        subpixel_conv2d(np.zeros((4, 4), np.float32), np.ones(kernels_shape), 2)


@pytest.mark.parametrize("f", [1, 2, 3])
@pytest.mark.parametrize("k", [1, 3, 5])
def test_icnr_is_nearest_upsampling_of_the_correlated_image(f, k):
    x = random_image((7, 5), np.float32, 3, seed=f + k)
    kernel = np.random.default_rng(k).normal(size=(k, k)).astype(np.float32)
    stack = icnr(kernel, f)
    assert stack.shape == (f * f, k, k) and stack.dtype == np.float32
    assert all(np.array_equal(sub, kernel) for sub in stack)
    out = subpixel_conv2d(x, stack, f)
    np.testing.assert_array_equal(out, np.repeat(np.repeat(out[::f, ::f], f, axis=0), f, axis=1))
    np.testing.assert_allclose(out[::f, ::f], correlate_by_definition(x, kernel), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kernel_shape", [(2, 2), (3, 5), (3,), (4, 4)])
def test_icnr_and_resize_conv2d_refuse_even_or_non_square_kernels(kernel_shape):
    with pytest.raises(ValueError, match=r"square k x k array with k odd"):
        icnr(np.ones(kernel_shape), 2)
    with pytest.raises(ValueError, match=r"square k x k array with k odd"):
        resize_conv2d(np.zeros((3, 3)), np.ones(kernel_shape), 2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [None, 3, 4])
@pytest.mark.parametrize(("shape", "f", "k"),
                         [((1, 1), 2, 3), ((5, 7), 2, 3), ((3, 4), 3, 5), ((2, 2), 1, 1)])
def test_resize_conv2d_is_nearest_then_correlation(dtype, channels, shape, f, k):
    x = random_image(shape, dtype, channels, seed=k)
    kernel = np.random.default_rng(k).normal(size=(k, k)).astype(np.float32)
    near = np.kron(as_hwc(x).astype(np.float64), np.ones((f, f, 1)))
    expected = correlate_by_definition(near, kernel)
    out = resize_conv2d(x, kernel, f)
    assert out.dtype == np.float32 and out.shape == (shape[0] * f, shape[1] * f, *x.shape[2:])
    scale = float(np.abs(expected).max()) or 1.0
    np.testing.assert_allclose(as_hwc(out), expected, rtol=1e-5, atol=1e-5 * scale)


def test_resize_conv2d_keeps_a_constant_constant_away_from_the_borders():
    kernel = np.random.default_rng(0).random((5, 5)).astype(np.float32)
    out = resize_conv2d(np.ones((6, 6), np.float32), kernel, 3)
    np.testing.assert_allclose(out[2:-2, 2:-2], kernel.sum(), rtol=1e-6)


# ----------------------------------------------------------------------------------------- PyTorch


def to_torch(x):
    torch = pytest.importorskip("torch")
    return torch.from_numpy(np.ascontiguousarray(as_hwc(x).astype(np.float32).transpose(2, 0, 1)))[None]


def from_torch(t, like):
    out = t[0].numpy().transpose(1, 2, 0)
    return out if np.ndim(like) == 3 else out[:, :, 0]


@pytest.mark.parametrize(("shape", "f", "c"), [((5, 7), 2, 3), ((1, 1), 3, 1), ((4, 3), 1, 4)])
def test_pixel_shuffle_matches_pytorch(shape, f, c):
    torch = pytest.importorskip("torch")
    x = random_image(shape, np.float32, c * f * f)
    expected = torch.nn.functional.pixel_shuffle(to_torch(x), f)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_array_equal(as_hwc(pixel_shuffle(x, f)), expected)


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize(("shape", "f", "k"), [((5, 7), 2, 3), ((1, 1), 3, 5), ((6, 4), 4, 1)])
def test_subpixel_conv2d_matches_pytorch(channels, shape, f, k):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = random_image(shape, np.float32, channels, seed=f)
    kernels = np.random.default_rng(k).normal(size=(f * f, k, k)).astype(np.float32)
    c = 1 if channels is None else channels
    weight = torch.from_numpy(np.tile(kernels, (c, 1, 1)))[:, None]
    expected = functional.pixel_shuffle(functional.conv2d(to_torch(x), weight, padding=k // 2, groups=c), f)
    np.testing.assert_allclose(subpixel_conv2d(x, kernels, f), from_torch(expected, x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels", [None, 3])
@pytest.mark.parametrize(("shape", "f", "k"), [((5, 7), 2, 3), ((1, 1), 3, 5), ((6, 4), 4, 1)])
def test_resize_conv2d_matches_pytorch(channels, shape, f, k):
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = random_image(shape, np.float32, channels, seed=f)
    kernel = np.random.default_rng(k).normal(size=(k, k)).astype(np.float32)
    c = 1 if channels is None else channels
    near = functional.interpolate(to_torch(x), scale_factor=f, mode="nearest")
    weight = torch.from_numpy(np.tile(kernel, (c, 1, 1, 1)))
    expected = functional.conv2d(near, weight, padding=k // 2, groups=c)
    np.testing.assert_allclose(resize_conv2d(x, kernel, f), from_torch(expected, x), rtol=1e-5, atol=1e-5)
