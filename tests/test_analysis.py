"""Analysis numbers against direct computations: integrity, size chain, kernels, phases, spectra."""

import math

import cv2
import numpy as np
import pytest
from helpers import natural_image, random_image

from pyramid_explorer.core.analysis import (
    band_energy,
    equivalent_kernel,
    gaussian_round_trip,
    integrity,
    log_spectrum,
    nyquist_peaks,
    overlap_verdict,
    periodic_component,
    phase_means,
    polyphase_sums,
    size_chain,
)
from pyramid_explorer.core.pyramid import level_sizes
from pyramid_explorer.core.upsampling import MODES, transposed_conv2d, upsample


@pytest.mark.parametrize("storage", ["float32", "int16"])
def test_exact_storages_report_exact(storage):
    report = integrity(natural_image(), storage=storage)
    assert report.max_abs_error == 0 and report.differing_pixels == 0 and report.psnr == math.inf
    assert report.sentence == "exact: every pixel identical"


def test_saturated_storage_reports_its_damage():
    image = natural_image()
    report = integrity(image, storage="uint8_saturate")
    assert report.differing_pixels > 0 and 0 in report.clipped_levels
    differing = np.count_nonzero(np.any(report.residual != 0, axis=2))
    assert report.differing_pixels == differing
    assert report.rmse == pytest.approx(np.sqrt(np.mean(report.residual.astype(np.float64) ** 2)))
    assert report.psnr == pytest.approx(20 * math.log10(255 / report.rmse))
    assert f"{differing} pixels differ" in report.sentence and "clipped at levels 0" in report.sentence


def test_gaussian_round_trip_is_not_exact():
    image = natural_image()
    up = cv2.pyrUp(cv2.pyrDown(image).astype(np.float32), dstsize=(image.shape[1], image.shape[0]))
    report = gaussian_round_trip(image)
    assert report.differing_pixels > 0
    assert report.max_abs_error == pytest.approx(np.abs(image - np.rint(up)).max())
    assert gaussian_round_trip(np.full((1, 1), 7, np.uint8)).max_abs_error == 0


def reference_phase_sums(kernel, stride, padding):
    """Scatter a constant input through the transposed convolution and read one period in the middle."""
    n, k = 8, kernel.shape[0]
    out = np.zeros(((n - 1) * stride + k,) * 2)
    for i in range(n):
        for j in range(n):
            out[i * stride : i * stride + k, j * stride : j * stride + k] += kernel
    out = out[padding:, padding:]
    start = stride * -(-k // stride)  # a whole period, far enough from the borders
    return out[start : start + stride, start : start + stride]


@pytest.mark.parametrize(("size", "stride", "padding"),
                         [(3, 2, 0), (4, 2, 1), (5, 2, 0), (3, 3, 1), (7, 4, 2)])
def test_polyphase_sums_match_a_constant_input(size, stride, padding):
    kernel = np.random.default_rng(size).random((size, size))
    np.testing.assert_allclose(polyphase_sums(kernel, stride, padding),
                               reference_phase_sums(kernel, stride, padding))


def test_verdicts():
    box3 = np.ones((3, 3))
    assert overlap_verdict(box3, 2).startswith("uneven overlap: k % s != 0")
    assert overlap_verdict(np.ones((4, 4)), 2).startswith("even")
    tent = np.outer([0.5, 1, 0.5], [0.5, 1, 0.5])  # 3 is not a multiple of 2, yet the phases balance
    assert "but its phases balance" in overlap_verdict(tent, 2)


def test_checkerboard_shows_at_nyquist():
    flat = np.full((64, 64), 0.5, np.float32)
    checker = flat + 0.1 * ((np.indices((64, 64)).sum(axis=0) % 2) * 2 - 1)
    peak = {(r, c): s for r, c, s in nyquist_peaks(log_spectrum(checker))}[(0, 0)]
    quiet = {(r, c): s for r, c, s in nyquist_peaks(log_spectrum(flat + 0 * checker))}[(0, 0)]
    assert peak > 5 and peak > quiet + 5
    assert nyquist_peaks(log_spectrum(np.zeros((5, 7)))) == []  # odd sides have no Nyquist bin


def test_band_energy_ignores_non_finite():
    assert band_energy(np.array([[1.0, -3.0, np.nan]])) == pytest.approx(5.0)
    assert band_energy(random_image((4, 4), np.float32)) > 0


@pytest.mark.parametrize("shape", [(1, 1), (1, 9), (7, 2), (51, 153), (300, 451, 3)])
def test_size_chain_follows_level_sizes_and_pyrup(shape):
    links = size_chain(shape)
    sizes = level_sizes(shape)
    assert [link.size for link in links] == [(w, h) for h, w in sizes]
    assert links[-1].dstsize is None and links[-1].naive_size is None and not links[-1].odd
    for link, (h, w), (hc, wc) in zip(links, sizes, sizes[1:], strict=False):
        assert link.dstsize == (w, h)
        coarse = np.zeros((hc, wc), np.float32)
        assert link.naive_size == cv2.pyrUp(coarse).shape[::-1]  # what pyrUp gives without dstsize
        assert link.odd == (w % 2 == 1 or h % 2 == 1)


def test_size_chain_honours_levels():
    assert len(size_chain((40, 40), 3)) == 3 and size_chain((40, 40), 3)[-1].dstsize is None


@pytest.mark.parametrize(("h", "w"), [(7, 9), (5, 10), (12, 7), (33, 65)])
def test_pyrup_with_dstsize_is_the_naive_output_cropped(h, w):
    """Why cropping pyrUp's extra row or column is harmless (and what dstsize does)."""
    coarse = cv2.pyrDown(random_image((h, w), np.float32, seed=h * w))
    np.testing.assert_array_equal(cv2.pyrUp(coarse, dstsize=(w, h)), cv2.pyrUp(coarse)[:h, :w])


LINEAR_MODES = [m for m in MODES if m != "unpool"]


@pytest.mark.parametrize("mode", LINEAR_MODES)
def test_equivalent_kernel_reproduces_the_mode_away_from_borders(mode):
    kernel, padding = equivalent_kernel(mode)
    x = random_image((23, 19), np.float32, seed=3)
    out = upsample(x, mode)
    ref = transposed_conv2d(x, kernel.astype(np.float32), 2, padding)
    m = 2 * kernel.shape[0]  # away from the border handling of each method
    h, w = min(out.shape[0], ref.shape[0]), min(out.shape[1], ref.shape[1])
    np.testing.assert_allclose(out[m:h - m, m:w - m], ref[m:h - m, m:w - m], atol=2e-6)


def test_pyrup_is_a_5x5_stride_2_transposed_convolution_with_even_phases():
    kernel, padding = equivalent_kernel("pyrup")
    w = np.array([1, 4, 6, 4, 1]) / 16
    np.testing.assert_allclose(kernel, 4 * np.outer(w, w), atol=1e-7)
    assert padding == 2
    np.testing.assert_allclose(polyphase_sums(kernel, 2, padding), np.ones((2, 2)), atol=1e-6)
    assert overlap_verdict(kernel, 2, padding).startswith("even")


def test_equivalent_kernels_of_simple_modes():
    zero, pad = equivalent_kernel("zero_insert")
    np.testing.assert_array_equal(zero, [[1.0]])
    assert pad == 0
    np.testing.assert_array_equal(polyphase_sums(zero, 2, pad), [[1, 0], [0, 0]])
    near, pad = equivalent_kernel("nearest")
    np.testing.assert_array_equal(near, np.ones((2, 2)))
    assert pad == 0
    bilinear, pad = equivalent_kernel("bilinear")
    np.testing.assert_allclose(bilinear, np.outer([0.25, 0.75, 0.75, 0.25], [0.25, 0.75, 0.75, 0.25]))
    assert pad == 1
    with pytest.raises(ValueError, match="not a convolution"):
        equivalent_kernel("unpool")


@pytest.mark.parametrize(("size", "stride"), [(3, 2), (4, 2), (5, 3), (1, 2)])
def test_phase_means_of_a_constant_are_the_polyphase_sums(size, stride):
    kernel = np.random.default_rng(size).random((size, size)).astype(np.float32)
    out = transposed_conv2d(np.ones((12, 12), np.float32), kernel, stride)
    margin = stride * size  # past the ramp-up at the borders, and a multiple of the stride
    np.testing.assert_allclose(phase_means(out, stride, margin), polyphase_sums(kernel, stride), rtol=1e-6)
    with pytest.raises(ValueError, match="inside the margin"):
        phase_means(np.ones((3, 3)), 2, 1)


def periodic_laplacian(s):
    return (np.roll(s, 1, 0) + np.roll(s, -1, 0) + np.roll(s, 1, 1) + np.roll(s, -1, 1) - 4 * s)


@pytest.mark.parametrize("shape", [(16, 16), (9, 14), (1, 6), (31, 20)])
def test_periodic_component_removes_the_border_jump(shape):
    u = random_image(shape, np.float32, seed=1).astype(np.float64) + np.arange(shape[1]) * 0.3
    p = periodic_component(u)
    smooth = u - p
    v = np.zeros(shape)  # Moisan's border image: the jumps between opposite sides
    v[0] += u[-1] - u[0]
    v[-1] += u[0] - u[-1]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    np.testing.assert_allclose(periodic_laplacian(smooth), v, atol=1e-9)
    assert smooth.mean() == pytest.approx(0, abs=1e-12)


def test_periodic_component_removes_the_cross_from_the_spectrum():
    """A smooth image that does not wrap around (a tilted plane) puts its energy on the frequency axes;
    its periodic component does not."""
    y, x = np.mgrid[:40, :64]
    plane = 0.7 * x + 0.4 * y
    before = np.abs(np.fft.fft2(plane))[0, 1:]  # the horizontal frequency axis, DC left out
    after = np.abs(np.fft.fft2(periodic_component(plane)))[0, 1:]
    assert np.all(after < before / 50)
