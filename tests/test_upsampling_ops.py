"""The building blocks of the learned-style upsamplers, each against a definition written out here.

bilinear_kernel against FCN's published formula, transposed_conv2d against the scatter-add definition
of a transposed convolution, max_pool_with_indices / max_unpool against a window-by-window loop.
"""

import itertools

import numpy as np
import pytest

from pyramid_explorer.core.upsampling import (
    bilinear_kernel,
    max_pool_with_indices,
    max_unpool,
    transposed_conv2d,
)


def fcn_upsample_filt(size):
    """FCN's upsample_filt (Long et al. 2015, surgery.py): the bilinear kernel as published."""
    factor = (size + 1) // 2
    center = factor - 1 if size % 2 == 1 else factor - 0.5
    og = np.ogrid[:size, :size]
    return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)


def scatter_add_transposed_conv(x, kernel, stride, padding, output_padding):
    """out[i*s + a - p, j*s + b - p] += x[i, j] * kernel[a, b], in float64, one kernel tap at a time."""
    (sy, sx), (py, px), (oy, ox) = stride, padding, output_padding
    x = np.asarray(x, np.float64).reshape(x.shape[0], x.shape[1], -1)
    h, w, c = x.shape
    kh, kw = kernel.shape
    full = np.zeros(((h - 1) * sy + kh + oy, (w - 1) * sx + kw + ox, c))
    for a, b in itertools.product(range(kh), range(kw)):
        full[a : a + (h - 1) * sy + 1 : sy, b : b + (w - 1) * sx + 1 : sx] += x * kernel[a, b]
    out_h, out_w = (h - 1) * sy - 2 * py + kh + oy, (w - 1) * sx - 2 * px + kw + ox
    return full[py : py + out_h, px : px + out_w]


def loop_max_pool(x, s):
    """PyTorch's CPU max_pool2d with indices, window by window: later positions win only if greater or NaN."""
    x3 = x.reshape(x.shape[0], x.shape[1], -1)
    h, w, c = x3.shape
    pooled = np.zeros((h // s, w // s, c), x.dtype)
    indices = np.zeros((h // s, w // s, c), np.int64)
    for i, j, ch in itertools.product(range(h // s), range(w // s), range(c)):
        best, where = x3[i * s, j * s, ch], i * s * w + j * s
        for dy, dx in itertools.product(range(s), range(s)):
            v = x3[i * s + dy, j * s + dx, ch]
            if v > best or np.isnan(v):
                best, where = v, (i * s + dy) * w + j * s + dx
        pooled[i, j, ch], indices[i, j, ch] = best, where
    if x.ndim == 2:
        return pooled[:, :, 0], indices[:, :, 0]
    return pooled, indices


def loop_max_unpool(pooled, indices, shape):
    out = np.zeros(shape, pooled.dtype).reshape(shape[0], shape[1], -1)
    p3 = pooled.reshape(pooled.shape[0], pooled.shape[1], -1)
    i3 = indices.reshape(p3.shape)
    for i, j, ch in itertools.product(*(range(n) for n in p3.shape)):
        out[i3[i, j, ch] // shape[1], i3[i, j, ch] % shape[1], ch] = p3[i, j, ch]
    return out.reshape(shape)


# ---------------------------------------------------------------- bilinear_kernel


@pytest.mark.parametrize("size", range(1, 17))
def test_bilinear_kernel_is_fcn_upsample_filt(size):
    k = bilinear_kernel(size)
    assert k.dtype == np.float32 and k.shape == (size, size)
    np.testing.assert_allclose(k, fcn_upsample_filt(size), rtol=1e-7, atol=0)


@pytest.mark.parametrize(
    ("size", "profile"),
    [(1, [1]), (3, [0.5, 1, 0.5]), (4, [0.25, 0.75, 0.75, 0.25]), (5, [1 / 3, 2 / 3, 1, 2 / 3, 1 / 3])],
)
def test_bilinear_kernel_known_values(size, profile):
    np.testing.assert_allclose(bilinear_kernel(size), np.outer(profile, profile), rtol=1e-6)


# ---------------------------------------------------------------- transposed_conv2d


def _random_case(rng):
    """A random transposed-convolution configuration whose output is at least one pixel."""
    while True:
        h, w = (int(v) for v in rng.integers(1, 9, 2))
        stride = (
            (int(rng.integers(1, 9)),) * 2
            if rng.random() < 0.6
            else tuple(int(v) for v in rng.integers(1, 9, 2))
        )
        kernel_shape = (
            (int(rng.integers(1, 10)),) * 2
            if rng.random() < 0.6
            else tuple(int(v) for v in rng.integers(1, 10, 2))
        )
        padding = tuple(int(rng.integers(0, k + 1)) for k in kernel_shape)
        output_padding = tuple(int(rng.integers(0, s)) for s in stride)
        out = [
            (n - 1) * s - 2 * p + k + op
            for n, s, p, k, op in zip((h, w), stride, padding, kernel_shape, output_padding, strict=True)
        ]
        if min(out) >= 1:
            channels = [(), (1,), (3,), (4,)][int(rng.integers(0, 4))]
            return (h, w, *channels), kernel_shape, stride, padding, output_padding


@pytest.mark.parametrize("seed", range(40))
def test_transposed_conv2d_matches_scatter_add(seed):
    rng = np.random.default_rng(seed)
    for _ in range(10):
        shape, kernel_shape, stride, padding, output_padding = _random_case(rng)
        x = rng.standard_normal(shape).astype(np.float32)
        kernel = rng.standard_normal(kernel_shape).astype(np.float32)
        out = transposed_conv2d(x, kernel, stride, padding, output_padding)
        ref = scatter_add_transposed_conv(x, kernel, stride, padding, output_padding).reshape(out.shape)
        assert out.dtype == np.float32
        assert out.shape[:2] == ref.shape[:2] and out.ndim == x.ndim
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shape", "k", "stride", "padding", "output_padding"),
    [
        ((1, 1), 1, 1, 0, 0),  # identity
        ((1, 1, 3), 3, 2, 0, 1),  # one pixel, k % s != 0, output padding
        ((1, 1), 4, 2, 1, 0),
        ((5, 7, 3), 3, 2, 1, 1),  # the checkerboard case
        ((5, 7, 4), 2, 4, 0, 3),  # kernel smaller than the stride: holes stay 0
        ((3, 2), 16, 8, 4, 7),  # bilinear x8 shape, largest stride
        ((4, 6, 3), 5, 3, 6, 2),  # padding larger than the kernel
        ((2, 3), 11, 1, 0, 0),  # large kernel, stride 1
    ],
)
def test_transposed_conv2d_edge_cases(shape, k, stride, padding, output_padding):
    rng = np.random.default_rng(k * 31 + stride)
    x = rng.random(shape, dtype=np.float32)
    kernel = rng.random((k, k), dtype=np.float32)
    out = transposed_conv2d(x, kernel, stride, padding, output_padding)
    ref = scatter_add_transposed_conv(x, kernel, (stride,) * 2, (padding,) * 2, (output_padding,) * 2)
    np.testing.assert_allclose(out, ref.reshape(out.shape), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_transposed_conv2d_converts_integer_input(dtype):
    x = np.arange(35, dtype=dtype).reshape(5, 7)
    out = transposed_conv2d(x, bilinear_kernel(4), 2, 1)
    assert out.dtype == np.float32 and out.shape == (10, 14)
    np.testing.assert_allclose(
        out, scatter_add_transposed_conv(x, bilinear_kernel(4), (2, 2), (1, 1), (0, 0))[..., 0]
    )


def test_transposed_conv2d_larger_image_bilinear_x2():
    """A size where the polyphase slicing runs over many rows: the FCN x2 layer on a 67x93 RGB image."""
    x = np.random.default_rng(1).random((67, 93, 3), dtype=np.float32)
    out = transposed_conv2d(x, bilinear_kernel(4), 2, 1)
    ref = scatter_add_transposed_conv(x, bilinear_kernel(4), (2, 2), (1, 1), (0, 0))
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, "stride"),
        ({"stride": 2, "padding": -1}, "padding"),
        ({"stride": 2, "output_padding": 2}, "output_padding must be smaller than the stride"),
        ({"stride": (2, 3), "output_padding": (1, 3)}, "output_padding must be smaller than the stride"),
        ({"stride": 1, "padding": 3}, "too small"),
        ({"stride": 1.5}, "stride"),
        ({"stride": (1, 2, 3)}, "pair"),
    ],
)
def test_transposed_conv2d_rejects_bad_parameters(kwargs, message):
    with pytest.raises(ValueError, match=message):
        transposed_conv2d(np.ones((2, 2), np.float32), np.ones((3, 3), np.float32), **kwargs)


@pytest.mark.parametrize(
    ("x", "kernel"),
    [(np.ones(4), np.ones((2, 2))), (np.ones((2, 2)), np.ones(2)), (np.ones((0, 3)), np.ones((2, 2)))],
)
def test_transposed_conv2d_rejects_bad_shapes(x, kernel):
    with pytest.raises(ValueError, match="must be a non-empty"):
        transposed_conv2d(x, kernel, 2)


# ---------------------------------------------------------------- max pooling and unpooling


def _pool_inputs():
    rng = np.random.default_rng(7)
    for shape, s in [
        ((1, 1), 1),
        ((2, 2, 3), 2),
        ((5, 7), 2),
        ((7, 5, 3), 3),
        ((9, 11, 4), 2),
        ((6, 9, 3), 4),
        ((11, 13, 1), 2),
        ((301, 257, 3), 2),
    ]:
        for kind in ("ties", "float", "nan", "uint8", "uint16", "int16", "float64", "int32"):
            if kind == "ties":
                x = rng.integers(0, 3, shape).astype(np.float32)
            elif kind == "uint8":
                x = rng.integers(0, 4, shape).astype(np.uint8)
            elif kind == "uint16":
                x = rng.integers(0, 60000, shape).astype(np.uint16)
            elif kind in ("int16", "int32"):  # OpenCV picks the window positions of int16, numpy of int32
                x = rng.integers(-3, 3, shape).astype(kind)
            elif kind == "float64":
                x = rng.integers(0, 3, shape).astype(np.float64)
            else:
                x = rng.standard_normal(shape).astype(np.float32)
                if kind == "nan":
                    x[rng.random(shape) < 0.3] = np.nan
            yield pytest.param(x, s, id=f"{kind}-{'x'.join(map(str, shape))}-s{s}")


@pytest.mark.parametrize(("x", "s"), list(_pool_inputs()))
def test_max_pool_and_unpool_match_window_loop(x, s):
    pooled, indices = max_pool_with_indices(x, s)
    ref_pooled, ref_indices = loop_max_pool(x, s)
    assert pooled.dtype == x.dtype and indices.dtype == np.int64
    assert pooled.shape == indices.shape == ref_pooled.shape
    np.testing.assert_array_equal(pooled, ref_pooled)
    np.testing.assert_array_equal(indices, ref_indices)
    restored = max_unpool(pooled, indices, x.shape)
    assert restored.shape == x.shape and restored.dtype == x.dtype
    np.testing.assert_array_equal(restored, loop_max_unpool(pooled, indices, x.shape))


def torch_pool_unpool(x, s):
    """PyTorch's max_pool2d / max_unpool2d on the channels of `x` (as float32), back in channels-last."""
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x3 = x.reshape(x.shape[0], x.shape[1], -1).astype(np.float32)
    t = torch.from_numpy(np.ascontiguousarray(x3.transpose(2, 0, 1)))[None]
    pooled, indices = F.max_pool2d(t, s, s, return_indices=True)
    restored = F.max_unpool2d(pooled, indices, s, s, output_size=t.shape[2:])
    back = [a[0].numpy().transpose(1, 2, 0).reshape(a.shape[2], a.shape[3], *x.shape[2:])
            for a in (pooled, indices, restored)]
    return back


@pytest.mark.parametrize(("x", "s"), [*_pool_inputs(), pytest.param(
    np.random.default_rng(5).integers(0, 3, (301, 1203, 3)).astype(np.float32), 2, id="ties-in-strips")])
def test_max_pool_and_unpool_match_pytorch(x, s):
    """Ties, NaN and odd sizes: the same values and the same int64 indices as PyTorch's CPU kernels."""
    want_pooled, want_indices, want_restored = torch_pool_unpool(x, s)
    pooled, indices = max_pool_with_indices(x, s)
    np.testing.assert_array_equal(pooled.astype(np.float32), want_pooled)
    np.testing.assert_array_equal(indices, want_indices)
    np.testing.assert_array_equal(max_unpool(pooled, indices, x.shape).astype(np.float32), want_restored)


def test_max_pool_ties_first_in_row_major_order():
    # Row-major order visits (0,1) before (1,0): the first maximum of the window is at flat index 1.
    x = np.array([[0, 5], [5, 5]], np.float32)
    pooled, indices = max_pool_with_indices(x)
    assert pooled.tolist() == [[5]] and indices.tolist() == [[1]]


def test_max_pool_nan_like_pytorch_last_nan_wins():
    x = np.array([[1, np.nan, 3, np.nan], [np.nan, 0, 5, 2]], np.float32)
    pooled, indices = max_pool_with_indices(x)
    assert np.isnan(pooled).all() and indices.tolist() == [[4, 3]]


def window_formula(x, s):
    """Max pooling with PyTorch's indices by whole-array numpy: each window's values in row-major order;
    its first maximum (argmax), or its last NaN when it has one."""
    x3 = x.reshape(x.shape[0], x.shape[1], -1)
    h, w, c = x3.shape[0] // s, x3.shape[1] // s, x3.shape[2]
    windows = x3[: s * h, : s * w].reshape(h, s, w, s, c).transpose(0, 2, 4, 1, 3).reshape(h, w, c, s * s)
    k = windows.argmax(axis=-1)
    if windows.dtype.kind == "f":
        nan = np.isnan(windows)
        k = np.where(nan.any(axis=-1), s * s - 1 - nan[..., ::-1].argmax(axis=-1), k)
    rows = s * np.arange(h)[:, None, None] + k // s
    cols = s * np.arange(w)[None, :, None] + k % s
    pooled = np.take_along_axis(windows, k[..., None], axis=-1)[..., 0]
    return pooled.reshape(h, w, *x.shape[2:]), (rows * x3.shape[1] + cols).reshape(h, w, *x.shape[2:])


@pytest.mark.parametrize("shape", [(75, 2001, 3), (601, 803, 3), (600, 900), (303, 1001, 4), (41, 57, 2),
                                   (41, 57, 6)])
def test_max_pool_large_arrays_in_strips_and_bands(shape):
    """Sizes that span several cache strips and, on a multi-core machine, several threads (and 2 or 6
    channels)."""
    x = np.random.default_rng(3).random(shape, dtype=np.float32)
    x3 = x.reshape(shape[0], shape[1], -1)
    c = x3.shape[2]
    want_pooled, want_indices = window_formula(x, 2)
    pooled, indices = max_pool_with_indices(x)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(indices, want_indices)
    restored = max_unpool(pooled, indices, x.shape).reshape(x3.shape)
    kept = np.zeros(x3.shape, bool)
    np.put_along_axis(kept.reshape(-1, c), indices.reshape(-1, c), True, axis=0)
    np.testing.assert_array_equal(restored, np.where(kept, x3, 0))


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64, np.int32])
@pytest.mark.parametrize("s", [2, 3])
def test_max_pool_nan_in_some_strips_ties_and_infinities(dtype, s):
    """A large image whose few NaN windows sit in some strips only, with ties and (for floats) -inf/inf."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 3, (2 * 167 + 1, 2 * 601 + 1, 3)).astype(dtype)
    if x.dtype.kind == "f":
        x[rng.random(x.shape) < 0.05] = -np.inf
        x[rng.random(x.shape) < 0.01] = np.inf
        x[[7, 8, 200], [5, 6, 900]] = np.nan
    want_pooled, want_indices = window_formula(x, s)
    pooled, indices = max_pool_with_indices(x, s)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(indices, want_indices)


@pytest.mark.parametrize("width", [255, 256, 65534, 65535, 70001])
def test_max_pool_indices_of_wide_rows(width):
    """Rows wide enough that a window's offsets (up to W + 1) outgrow one and two bytes."""
    x = np.random.default_rng(width).integers(0, 4, (3, width, 3)).astype(np.float32)
    want_pooled, want_indices = window_formula(x, 2)
    pooled, indices = max_pool_with_indices(x)
    np.testing.assert_array_equal(pooled, want_pooled)
    np.testing.assert_array_equal(indices, want_indices)
    restored = max_unpool(pooled, indices, x.shape)
    np.testing.assert_array_equal(restored, loop_max_unpool(pooled, indices, x.shape))


def test_max_pool_rejects_bad_input():
    with pytest.raises(ValueError, match="smaller than the 2x2 pooling window"):
        max_pool_with_indices(np.ones((1, 5)))
    with pytest.raises(ValueError, match="size must be an integer >= 1"):
        max_pool_with_indices(np.ones((4, 4)), 0)
    with pytest.raises(ValueError, match="non-empty"):
        max_pool_with_indices(np.ones((2, 2, 2, 2)))


def test_max_unpool_rejects_bad_input():
    pooled, indices = max_pool_with_indices(np.arange(16, dtype=np.float32).reshape(4, 4))
    with pytest.raises(ValueError, match=r"outside \[0, 16\)"):
        max_unpool(pooled, indices + 11, (4, 4))
    negative = indices.copy()
    negative[1, 0] = -1
    with pytest.raises(ValueError, match=r"index -1 is outside"):
        max_unpool(pooled, negative, (4, 4))
    with pytest.raises(ValueError, match="pooled shape"):
        max_unpool(pooled, indices[:1], (4, 4))
    with pytest.raises(ValueError, match="pooled shape"):
        max_unpool(pooled, indices.astype(np.float64), (4, 4))
    with pytest.raises(ValueError, match="does not fit"):
        max_unpool(pooled, indices, (4, 4, 3))
