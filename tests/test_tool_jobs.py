"""The analysis tools' Qt-free jobs against the core and direct formulas."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from helpers import natural_image, random_image

from pyramid_explorer import display, jobs
from pyramid_explorer.core import deconv
from pyramid_explorer.core.analysis import (
    equivalent_kernel,
    gaussian_round_trip,
    integrity,
    log_spectrum,
    nyquist_peaks,
    periodic_component,
    polyphase_sums,
)
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import MANIFEST_NAME
from pyramid_explorer.core.pyramid import laplacian_pyramid, reconstruct
from pyramid_explorer.core.upsampling import max_pool_with_indices, transposed_conv2d, upsample
from pyramid_explorer.tools import equalizer, kernels, registry, unpool
from pyramid_explorer.tools import integrity as integrity_tool
from pyramid_explorer.tools.shared import spectrum_region


def last(items):
    *_, result = items
    return result


def pyramid_of(img, levels=None):
    return last(jobs.build_pyramid(jobs.PyramidRequest(1, img, levels)))


@pytest.fixture(scope="module")
def photo():
    return natural_image()[:61, :47]  # odd sides


# --- integrity ----------------------------------------------------------------------------------


@pytest.mark.parametrize("storage", ["float32", "int16", "uint8_saturate"])
def test_integrity_numbers_are_the_cores(photo, storage):
    view = last(integrity_tool.measure_integrity(integrity_tool.IntegrityRequest(1, photo, 4, storage)))
    core = integrity(photo, 4, storage=storage)
    lap = view.laplacian
    assert (lap.max_abs_error, lap.rmse, lap.psnr, lap.differing_pixels, lap.sentence) == (
        core.max_abs_error, core.rmse, core.psnr, core.differing_pixels, core.sentence)
    np.testing.assert_array_equal(lap.layer.data, core.residual)
    assert view.clipped_levels == core.clipped_levels and view.levels == 4 and view.storage == storage
    centres, counts = lap.histogram
    values, expected = np.unique(core.residual, return_counts=True)
    assert counts.sum() == core.residual.size
    np.testing.assert_array_equal(counts[np.isin(centres, values)], expected)  # one bin per integer
    rt = gaussian_round_trip(photo)
    assert (view.gaussian.max_abs_error, view.gaussian.rmse) == (rt.max_abs_error, rt.rmse)


def test_residual_heat_map_shows_the_channel_of_largest_error(photo):
    request = integrity_tool.IntegrityRequest(1, photo, None, "uint8_saturate")
    view = last(integrity_tool.measure_integrity(request))
    res = view.laplacian.layer.data
    shown = view.laplacian.layer.display
    assert shown.shape == res.shape[:2] and view.laplacian.layer.signed
    for y, x in [(0, 0), (30, 20), (60, 46)]:
        c = int(np.argmax(np.abs(res[y, x])))
        assert shown[y, x] == res[y, x, c]
    lo, hi = view.laplacian.layer.limits
    assert lo == -hi  # diverging colours centred on zero


def test_float_images_get_symmetric_bins():
    img = random_image((13, 9), np.float32, seed=5)
    view = last(integrity_tool.measure_integrity(integrity_tool.IntegrityRequest(1, img)))
    centres, counts = view.gaussian.histogram
    assert len(centres) == 101 and centres[50] == pytest.approx(0, abs=1e-6)
    assert counts.sum() == img.size
    assert centres[-1] == pytest.approx(-centres[0])


def test_integer_storages_need_uint8():
    img = random_image((8, 8), np.uint16)
    with pytest.raises(ValueError, match="needs a uint8 image"):
        last(integrity_tool.measure_integrity(integrity_tool.IntegrityRequest(1, img, None, "int16")))
    with pytest.raises(ValueError, match="storage"):
        integrity_tool.IntegrityRequest(1, img, None, "int8")


# --- equalizer ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gains", [(0.0, 1.0, 1.0, 1.0), (2.5, 1.5, 1.0, 0.5), (1.0, 1.0, 0.0, 1.0)])
def test_equalizer_is_the_cores_reconstruct_with_gains(photo, gains):
    p = pyramid_of(photo, 4)
    view = last(equalizer.equalize(equalizer.EqualizerRequest(p, gains)))
    rebuilt = reconstruct(laplacian_pyramid(photo, 4), gains=gains)
    np.testing.assert_array_equal(view.image.data, to_dtype(rebuilt, np.uint8))
    change = to_dtype(rebuilt, np.uint8).astype(np.float32) - photo
    np.testing.assert_array_equal(view.change.data, change)
    assert view.saturated_values == np.count_nonzero((rebuilt < 0) | (rebuilt > 255))
    assert view.changed_pixels == np.count_nonzero(np.any(change != 0, axis=2))
    assert not view.exact


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_unit_gains_rebuild_the_source_exactly(dtype):
    img = random_image((21, 14), dtype, channels=3, seed=9)
    p = pyramid_of(img)
    view = last(equalizer.equalize(equalizer.EqualizerRequest(p, (1.0,) * p.levels)))
    assert view.exact and view.max_abs_change == 0 and view.saturated_values == 0
    np.testing.assert_array_equal(view.image.data, img)


def test_equalizer_wants_one_finite_gain_per_band(photo):
    p = pyramid_of(photo, 3)
    with pytest.raises(ValueError, match="one per band"):
        equalizer.EqualizerRequest(p, (1.0, 1.0))
    with pytest.raises(ValueError, match="finite"):
        equalizer.EqualizerRequest(p, (1.0, math.nan, 1.0))


# --- kernel inspector ---------------------------------------------------------------------------


def test_summaries_are_the_cores_polyphase_sums(photo):
    settings = deconv.DeconvSettings(3, 2, "box")
    result = last(kernels.inspect_kernels(kernels.KernelRequest(pyramid_of(photo), 0, "pyrup", settings)))
    assert [s.entry for s in result.summaries] == list(kernels.KERNEL_ENTRIES)
    for s in result.summaries:
        if s.entry == kernels.CUSTOM:
            kernel = deconv.deconv_kernel(settings)
            np.testing.assert_allclose(s.phase_sums, polyphase_sums(kernel, 2), rtol=1e-6)
            assert not s.even and s.verdict.startswith("uneven overlap: k % s != 0")
        elif s.entry == "unpool":
            assert s.kernel is None and not s.even
            np.testing.assert_array_equal(s.phase_sums, [[1, 0], [0, 0]])  # ties: the first position
        else:
            kernel, padding = equivalent_kernel(s.entry)
            np.testing.assert_array_equal(s.kernel, kernel)
            np.testing.assert_allclose(s.phase_sums, polyphase_sums(kernel, 2, padding))
            assert s.even == (s.entry != "zero_insert"), s.entry
    assert result.selected.entry == "pyrup" and result.selected.even


@pytest.mark.parametrize("entry", kernels.KERNEL_ENTRIES)
def test_a_constant_probe_shows_the_phase_sums(photo, entry):
    """The checkerboard is the phase sums tiled: a constant input's output, read phase by phase."""
    settings = deconv.DeconvSettings(5, 3, "random")
    result = last(kernels.inspect_kernels(kernels.KernelRequest(pyramid_of(photo, 3), 1, entry, settings)))
    probes = dict(result.probes)
    assert list(probes) == list(kernels.PROBE_INPUTS)
    out = probes["constant"].data
    s = result.selected.stride
    margin = s * 8  # well inside: no border handling left
    inner = out[margin:-margin, margin:-margin]
    for r in range(s):
        for c in range(s):
            np.testing.assert_allclose(inner[r::s, c::s], result.selected.phase_sums[r, c], atol=1e-5)
    impulse = probes["impulse"].data
    if entry == kernels.CUSTOM:
        np.testing.assert_array_equal(impulse, transposed_conv2d(kernels.probe_input("impulse"),
                                                                 deconv.deconv_kernel(settings), 3))
    elif entry != "unpool":
        np.testing.assert_array_equal(impulse, upsample(kernels.probe_input("impulse"), entry))


def test_spectrum_is_the_periodic_part_of_the_upsampled_level(photo):
    p = pyramid_of(photo)
    result = last(kernels.inspect_kernels(kernels.KernelRequest(p, 1, "zero_insert")))
    up = display.channel_mean(upsample(p.gaussian[2], "zero_insert"))
    region, _ = spectrum_region(up)
    assert region.shape[0] % 2 == 0 and region.shape[1] % 2 == 0
    expected = log_spectrum(periodic_component(region))
    np.testing.assert_allclose(result.spectrum.data, expected, rtol=1e-6)
    assert list(result.peaks) == nyquist_peaks(expected)
    assert all(strength > 3 for *_, strength in result.peaks)  # zero insertion: the Nyquist replica
    quiet = last(kernels.inspect_kernels(kernels.KernelRequest(p, 1, "pyrup")))
    assert max(s for *_, s in quiet.peaks) < min(s for *_, s in result.peaks)


def test_coarsest_level_has_no_spectrum(photo):
    p = pyramid_of(photo, 3)
    result = last(kernels.inspect_kernels(kernels.KernelRequest(p, 2, "bilinear")))
    assert result.spectrum is None and result.peaks == () and "coarsest" in result.spectrum_note
    assert len(result.probes) == 3


def test_unknown_entry_is_refused(photo):
    with pytest.raises(ValueError, match="entries"):
        kernels.KernelRequest(pyramid_of(photo, 2), 0, "sinc")


# --- unpool -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "channels"), [((11, 9), 3), ((8, 6), None), ((5, 7), 4)])
def test_unpool_marks_the_recorded_maxima(shape, channels):
    img = random_image(shape, np.uint8, channels=channels, seed=11)
    view = last(unpool.locate_maxima(unpool.UnpoolRequest(pyramid_of(img, 2), 0)))
    pooled, indices = max_pool_with_indices(img)
    np.testing.assert_array_equal(view.pooled.data, pooled)
    np.testing.assert_array_equal(view.indices, indices)
    idx = indices.reshape(*indices.shape[:2], -1)
    np.testing.assert_array_equal(view.argmax_rows, idx // shape[1])
    np.testing.assert_array_equal(view.argmax_cols, idx % shape[1])
    out = upsample(pooled, "unpool", size=(shape[1], shape[0]), indices=indices)
    np.testing.assert_array_equal(view.unpooled.data, to_dtype(out, np.uint8))
    mask3 = view.mask.reshape(*shape, -1)
    for c in range(mask3.shape[2]):
        marked = np.zeros(shape, bool)
        marked[view.argmax_rows[..., c], view.argmax_cols[..., c]] = True
        np.testing.assert_array_equal(mask3[..., c] == 255, marked)
    assert view.dropped == (shape[0] % 2, shape[1] % 2)
    assert view.pooled.scale == 2 and view.unpooled.scale == 1


def test_unpool_needs_a_window_sized_level():
    p = pyramid_of(random_image((3, 6), np.uint8))
    with pytest.raises(ValueError, match="pooling window"):
        last(unpool.locate_maxima(unpool.UnpoolRequest(p, 2)))  # 3 x 1


# --- export -------------------------------------------------------------------------------------


def test_tool_export_writes_what_the_tool_shows(tmp_path, photo):
    request = integrity_tool.IntegrityRequest(1, photo, None, "uint8_saturate")
    view = last(integrity_tool.measure_integrity(request))
    arrays, parameters = registry.tool_arrays("integrity", view, "npy")
    items = list(jobs.export_tool(jobs.ToolExportRequest(photo, str(tmp_path), arrays, "npy", parameters)))
    assert isinstance(items[-1], jobs.ExportDone)
    np.testing.assert_array_equal(np.load(tmp_path / "integrity_residual.npy"), view.laplacian.layer.data)
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["parameters"]["storage"] == "uint8_saturate"
    entry = manifest["files"][0]
    assert entry["differing_pixels"] == view.laplacian.differing_pixels
    assert entry["psnr_db"] == pytest.approx(view.laplacian.psnr)
    exact = last(integrity_tool.measure_integrity(integrity_tool.IntegrityRequest(1, photo)))
    arrays = registry.tool_arrays("integrity", exact, "npy")[0]
    assert arrays[0].details["psnr_db"] == "inf"  # JSON has no infinity


def test_unpool_export_leaves_int64_indices_out_of_png(photo):
    view = last(unpool.locate_maxima(unpool.UnpoolRequest(pyramid_of(photo, 2), 0)))
    png = registry.tool_arrays("unpool", view, "png")[0]
    assert [a.name for a in png] == ["pooled", "unpooled", "argmax_mask"]
    assert [a.name for a in registry.tool_arrays("unpool", view, "tiff")[0]][-1] == "indices"


def test_every_tool_result_exports(photo):
    p = pyramid_of(photo, 3)
    results = [last(equalizer.equalize(equalizer.EqualizerRequest(p, (1.0, 2.0, 1.0)))),
               last(kernels.inspect_kernels(kernels.KernelRequest(p, 0, kernels.CUSTOM))),
               last(kernels.inspect_kernels(kernels.KernelRequest(p, 2, "unpool")))]
    for name, result in zip(("equalizer", "kernels", "kernels"), results, strict=True):
        arrays, parameters = registry.tool_arrays(name, result, "tiff")
        assert arrays and parameters["tool"] in ("equalizer", "kernels")
    with pytest.raises(TypeError):
        registry.tool_arrays("pyramid", p, "tiff")
