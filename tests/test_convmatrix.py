"""Transposed convolution explained: the size formula against transposed_conv2d and PyTorch, the matrix
C against convolution written out here, C^T against transposed_conv2d, frames and animations."""

import itertools
import sys

import numpy as np
import pytest
from PIL import Image

from pyramid_explorer.core.convmatrix import (
    Geometry,
    conv_matrix,
    conv_output_size,
    overlap_counts,
    placement_frames,
    placements,
    pytorch_output_shape,
    render_frames,
    round_trip,
    save_animation,
    size_formula,
    strided_conv2d,
    transposed_output_size,
)
from pyramid_explorer.core.io import ImageSaveError
from pyramid_explorer.core.upsampling import transposed_conv2d

# (n, k, s, p, op): kernels multiple of the stride or not, smaller than it, padded, output-padded
CASES = [(1, 1, 1, 0, 0), (3, 3, 2, 1, 1), (4, 4, 2, 1, 0), (5, 3, 3, 0, 2), (2, 1, 3, 0, 0), (4, 5, 2, 2, 1),
         (3, 2, 2, 0, 1), (6, 7, 4, 3, 3)]


def geometry_of(n, k, s, p, op, rows=None):
    return Geometry((rows or n, n), (k, k), s, p, op)


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_output_size_is_what_transposed_conv2d_makes(n, k, s, p, op):
    size = transposed_output_size(n, k, s, p, op)
    assert size == (n - 1) * s - 2 * p + k + op
    out = transposed_conv2d(np.ones((n, n + 1), np.float32), np.ones((k, k)), s, p, op)
    assert out.shape == (size, transposed_output_size(n + 1, k, s, p, op))
    assert size_formula(n, k, s, p, op) == f"({n} - 1)*{s} - 2*{p} + {k} + {op} = {size}"


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_output_size_is_what_pytorch_makes(n, k, s, p, op):
    torch = pytest.importorskip("torch")
    layer = torch.nn.ConvTranspose2d(1, 1, k, stride=s, padding=p, output_padding=op, bias=False)
    with torch.no_grad():
        out = layer(torch.zeros(1, 1, n, n + 2))
    expected = (transposed_output_size(n, k, s, p, op), transposed_output_size(n + 2, k, s, p, op))
    assert tuple(out.shape[2:]) == expected


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_pytorch_output_shape_agrees_with_the_formula(n, k, s, p, op):
    pytest.importorskip("torch")
    geometry = Geometry((n, n + 1), (k, k + 1), s, p, op)
    assert pytorch_output_shape(geometry) == geometry.output_shape


def test_pytorch_output_shape_is_none_without_pytorch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    assert pytorch_output_shape(Geometry((3, 3), (3, 3), 2)) is None


def test_output_size_refusals():
    with pytest.raises(ValueError, match="output_padding must be smaller than the stride: 2 >= 2"):
        transposed_output_size(4, 3, 2, 0, 2)
    with pytest.raises(ValueError, match="the output would have -1 pixels"):
        transposed_output_size(1, 1, 1, 1)
    with pytest.raises(ValueError, match="stride must be an integer >= 1"):
        transposed_output_size(4, 3, 0)
    with pytest.raises(ValueError, match="pairs"):
        Geometry((3,), (3, 3), 2)


def correlate_by_definition(x, kernel, s, p):
    """y[i, j] = sum_ab X[i*s - p + a, j*s - p + b] * kernel[a, b], zeros outside X."""
    h, w = x.shape
    kh, kw = kernel.shape
    rows, cols = (h + 2 * p - kh) // s + 1, (w + 2 * p - kw) // s + 1
    y = np.zeros((rows, cols))
    for i, j, a, b in itertools.product(range(rows), range(cols), range(kh), range(kw)):
        r, c = i * s - p + a, j * s - p + b
        if 0 <= r < h and 0 <= c < w:
            y[i, j] += x[r, c] * kernel[a, b]
    return y


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_strided_conv2d_is_correlation_by_definition(n, k, s, p, op):
    big = transposed_output_size(n, k, s, p, op)
    x = np.random.default_rng(k).random((big, big + 1)).astype(np.float32)
    kernel = np.random.default_rng(s).normal(size=(k, k))
    out = strided_conv2d(x, kernel, s, p)
    assert out.shape[0] == conv_output_size(big, k, s, p) == n
    np.testing.assert_allclose(out, correlate_by_definition(x, kernel, s, p), atol=1e-5)


def test_strided_conv2d_matches_pytorch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).random((11, 9, 3)).astype(np.float32)
    kernel = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    weight = torch.from_numpy(np.tile(kernel, (3, 1, 1, 1)))
    expected = torch.nn.functional.conv2d(torch.from_numpy(x.transpose(2, 0, 1).copy())[None], weight,
                                          stride=2, padding=1, groups=3)[0].numpy().transpose(1, 2, 0)
    np.testing.assert_allclose(strided_conv2d(x, kernel, 2, 1), expected, atol=1e-5)


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_c_is_the_convolution_and_c_transposed_the_transposed_convolution(n, k, s, p, op):
    geometry = geometry_of(n, k, s, p, op, rows=n + 1)
    kernel = np.random.default_rng(n * k).normal(size=(k, k))
    matrix = conv_matrix(geometry, kernel)
    big_h, big_w = geometry.output_shape
    assert matrix.shape == ((n + 1) * n, big_h * big_w)
    x = np.random.default_rng(1).random(geometry.input_shape).astype(np.float32)
    np.testing.assert_allclose((matrix.T @ x.ravel()).reshape(big_h, big_w),
                               transposed_conv2d(x, kernel, s, p, op), atol=1e-5)
    big = np.random.default_rng(2).random((big_h, big_w))
    np.testing.assert_allclose(matrix @ big.ravel(), correlate_by_definition(big, kernel, s, p).ravel(),
                               atol=1e-9)


def test_c_by_hand_for_a_one_row_input():
    # a 1x2 input, kernel [[1, 2, 3]], stride 2: output 1x5; each row is the kernel at 2*j
    matrix = conv_matrix(Geometry((1, 2), (1, 3), 2), np.array([[1.0, 2, 3]]))
    np.testing.assert_array_equal(matrix, [[1, 2, 3, 0, 0], [0, 0, 1, 2, 3]])
    # C^T C is not the identity: it restores the size, not the values
    np.testing.assert_array_equal(matrix.T @ matrix, np.array([[1, 2, 3, 0, 0], [2, 4, 6, 0, 0],
                                                               [3, 6, 10, 2, 3], [0, 0, 2, 4, 6],
                                                               [0, 0, 3, 6, 9]]))


def test_round_trip_is_c_transposed_c():
    geometry = Geometry((4, 5), (3, 3), 2, 1, 1)
    kernel = np.random.default_rng(3).random((3, 3))
    matrix = conv_matrix(geometry, kernel)
    x = np.random.default_rng(4).random(geometry.output_shape).astype(np.float32)
    out = round_trip(x, kernel, 2, 1)
    assert out.shape == x.shape
    np.testing.assert_allclose(out.ravel(), matrix.T @ matrix @ x.ravel(), atol=1e-5)
    assert not np.allclose(out, x, atol=0.1)
    rgb = np.random.default_rng(5).random((9, 12, 3)).astype(np.float32)
    np.testing.assert_allclose(round_trip(rgb, kernel, 2, 1)[:, :, 1], round_trip(rgb[:, :, 1], kernel, 2, 1),
                               atol=1e-6)


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_overlap_counts_count_the_taps_on_each_output_pixel(n, k, s, p, op):
    geometry = geometry_of(n, k, s, p, op)
    size = geometry.output_shape[0]
    # along one axis: how many (input i, tap a) give i*s + a - p == y; the 2-D count is the product
    line = np.zeros(size, int)
    for i, a in itertools.product(range(n), range(k)):
        if 0 <= i * s + a - p < size:
            line[i * s + a - p] += 1
    counts = overlap_counts(geometry)
    assert counts.dtype == np.int32
    np.testing.assert_array_equal(counts, np.outer(line, line))


@pytest.mark.parametrize(("n", "k", "s", "p", "op"), CASES)
def test_frames_add_one_kernel_per_input_pixel_in_row_major_order(n, k, s, p, op):
    geometry = geometry_of(n, k, s, p, op, rows=n + 1)
    kernel = np.random.default_rng(k).random((k, k))
    frames = placement_frames(geometry, kernel)
    assert frames.shape == ((n + 1) * n, *geometry.output_shape)
    steps = np.diff(frames, axis=0, prepend=0)
    for step, placed in zip(steps, placements(geometry), strict=True):
        i, j = placed.source
        one = np.zeros(geometry.input_shape, np.float32)
        one[i, j] = 1
        np.testing.assert_allclose(step, transposed_conv2d(one, kernel, s, p, op), atol=1e-5)
        (r0, r1), (c0, c1) = placed.rows, placed.cols
        assert placed.corner == (i * s - p, j * s - p)
        outside = step.copy()
        outside[r0:r1, c0:c1] = 0
        assert not outside.any()
    np.testing.assert_array_equal(placement_frames(geometry)[-1], overlap_counts(geometry))


def test_too_many_frames_or_a_wrong_kernel_are_refused():
    with pytest.raises(ValueError, match="at most 1024"):
        placement_frames(Geometry((40, 40), (3, 3), 2))
    with pytest.raises(ValueError, match=r"kernel has shape \(2, 2\), the geometry says \(3, 3\)"):
        placement_frames(Geometry((4, 4), (3, 3), 2), np.ones((2, 2)))


@pytest.mark.parametrize("suffix", [".gif", ".png", ".apng"])
def test_animation_is_written_with_every_frame(tmp_path, suffix):
    geometry = Geometry((2, 3), (3, 3), 2, 1, 1)
    pictures = render_frames(geometry, placement_frames(geometry), cell=8)
    assert len(pictures) == 6 and pictures[0].shape == (4 * 8, 6 * 8, 3) and pictures[0].dtype == np.uint8
    red = (pictures[0][:, :, 0] == 255) & (pictures[0][:, :, 1] == 0)
    assert red.any()  # the current kernel is outlined
    path = tmp_path / f"frames{suffix}"
    save_animation(path, pictures, frame_ms=250)
    with Image.open(path) as image:
        assert image.n_frames == 6 and image.size == (48, 32)
        assert image.info.get("duration") == 250
        image.seek(5)
        last = np.asarray(image.convert("RGB"))
    np.testing.assert_array_equal(last, pictures[5])


def test_a_failed_animation_save_leaves_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "frames.gif"
    path.write_bytes(b"old")
    pictures = [np.zeros((4, 4, 3), np.uint8)] * 2

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", broken)
    with pytest.raises(ImageSaveError, match="disk full"):
        save_animation(path, pictures)
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["frames.gif"]
    with pytest.raises(ImageSaveError, match=r"animations are saved as \.gif, \.png, \.apng"):
        save_animation(tmp_path / "frames.mp4", pictures)
