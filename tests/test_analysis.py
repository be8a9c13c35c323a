"""Analysis numbers against direct computations: integrity, polyphase sums, spectra."""

import math

import cv2
import numpy as np
import pytest
from helpers import natural_image, random_image

from pyramid_explorer.core.analysis import (
    band_energy,
    gaussian_round_trip,
    integrity,
    log_spectrum,
    nyquist_peaks,
    overlap_verdict,
    polyphase_sums,
)


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
