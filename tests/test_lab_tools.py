"""The coding, shift and convmatrix tools (no Qt): what their jobs yield is the core's numbers, in the
order the tabs fill in, and their exports write it."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest
from helpers import natural_image, random_image

from pyramid_explorer import jobs
from pyramid_explorer.core.analysis import (
    code_pyramid,
    coding_curve,
    jpeg_at_rate,
    jpeg_curve,
    preset_steps,
)
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.convmatrix import (
    Geometry,
    conv_matrix,
    overlap_counts,
    placement_frames,
    render_frames,
    round_trip,
)
from pyramid_explorer.core.deconv import DeconvSettings, deconv_kernel
from pyramid_explorer.core.equivariance import DOWNSAMPLERS, shift_study
from pyramid_explorer.core.export import MANIFEST_NAME
from pyramid_explorer.core.pyramid import expand
from pyramid_explorer.tools import coding, convmatrix, registry, shift
from pyramid_explorer.tools.base import State


def items_of(job):
    return [item for item in job if not isinstance(item, jobs.Progress)]


def pyramid_of(img, levels=None):
    return items_of(jobs.build_pyramid(jobs.PyramidRequest(1, img, levels)))[-1]


def state(p, level=0, **settings):
    return State(None, p, level, {**registry.default_settings(), **settings}, 1 << 30)


def export(tmp_path, image, name, result):
    arrays, parameters = registry.tool_arrays(name, result, "npy")
    list(jobs.export_tool(jobs.ToolExportRequest(image, str(tmp_path), arrays, "npy", parameters)))
    return arrays, json.loads((tmp_path / MANIFEST_NAME).read_text())


@pytest.fixture(scope="module")
def photo():
    return natural_image()[:61, :47]  # odd sides


# --- coding -------------------------------------------------------------------------------------


def test_coding_shows_the_cores_code_and_jpeg_at_its_rate(photo):
    p = pyramid_of(photo, 4)
    steps = (6.0, 3.0, 1.5, 1.0)
    code, *curves = items_of(coding.code_source(coding.CodingRequest(p, steps, "uniform")))
    core = code_pyramid(photo, steps)
    assert code.steps == steps and code.band_bits == core.band_bits
    assert code.bits_per_pixel == core.bits_per_pixel and code.psnr == core.psnr and code.ssim == core.ssim
    np.testing.assert_array_equal(code.rebuilt.data, to_dtype(core.rebuilt, np.uint8))
    np.testing.assert_array_equal(code.residual.data, core.residual)
    point, decoded = jpeg_at_rate(photo, core.bits_per_pixel)
    assert code.jpeg == point and code.jpeg.bits_per_pixel <= core.bits_per_pixel
    np.testing.assert_array_equal(code.jpeg_image.data, decoded)
    # the curves fill one point at a time and are complete only at the end
    assert [len(c.pyramid) + len(c.jpeg) for c in curves] == list(range(1, len(curves) + 1))
    assert [c.complete for c in curves] == [False] * (len(curves) - 1) + [True]
    preset = preset_steps("uniform", 4, np.uint8)
    assert list(curves[-1].pyramid) == coding_curve(photo, preset, coding.SCALES)
    assert list(curves[-1].jpeg) == jpeg_curve(photo, coding.QUALITIES)


def test_bits_per_pixel_is_the_size_weighted_entropy_of_the_bands(photo):
    """A direct formula: entropies of step-rounded bands, weighted by their sample counts."""
    p = pyramid_of(photo, 3)
    steps = (4.0, 2.0, 1.0)
    code = items_of(coding.code_source(coding.CodingRequest(p, steps, "uniform", curves=False)))[0]
    total = 0.0
    for band, step in zip(p.laplacian, steps, strict=True):
        _, counts = np.unique(np.round(band / step), return_counts=True)
        freq = counts / band.size
        total += -(freq * np.log2(freq)).sum() * band.size
    assert code.bits_per_pixel == pytest.approx(total / (photo.shape[0] * photo.shape[1]), rel=1e-9)


@pytest.mark.parametrize("image", [random_image((23, 17), np.uint16, 3), random_image((23, 17), np.uint8, 4),
                                   random_image((23, 17), np.float32)], ids=["uint16", "rgba", "float32"])
def test_images_jpeg_cannot_code_are_coded_without_jpeg(image):
    p = pyramid_of(image, 3)
    steps = preset_steps("near_lossless", 3, image.dtype)
    code, *curves = items_of(coding.code_source(coding.CodingRequest(p, steps, "near_lossless")))
    assert code.jpeg is None and code.jpeg_image is None and "JPEG takes 8-bit grey or RGB" in code.jpeg_note
    assert code.rebuilt.data.dtype == image.dtype and code.rebuilt.shape == image.shape
    assert curves[-1].complete and not curves[-1].jpeg and len(curves[-1].pyramid) == len(coding.SCALES)


def test_grey_images_get_a_grey_jpeg():
    image = natural_image()[:40, :30, 1]
    p = pyramid_of(image, 3)
    code = items_of(coding.code_source(coding.CodingRequest(p, (2.0, 1.0, 1.0), "uniform", curves=False)))[0]
    assert code.jpeg_image.data.shape == image.shape and code.jpeg is not None


def test_coding_plan_uses_the_preset_until_steps_fit_the_pyramid(photo):
    p = pyramid_of(photo, 3)
    tool = coding.TOOL
    plan = tool.plan(state(p))
    steps = preset_steps(coding.DEFAULT_PRESET, 3, np.uint8)
    assert plan.wanted == (("coding", 1, 3, steps), ("coding_curves", 1, 3, coding.DEFAULT_PRESET))
    assert tool.plan(state(p, coding_steps=(1.0, 2.0))).wanted[0][3] == steps  # one per band, or the preset's
    assert tool.plan(state(p, coding_steps=(1.0, 2.0, 3.0))).wanted[0][3] == (1.0, 2.0, 3.0)
    request = plan.request(plan.wanted[1:])  # the code cached: only the curves are computed again
    assert not request.code and request.curves


def test_coding_export_writes_images_curves_and_json_safe_numbers(tmp_path):
    tiny = random_image((5, 6), np.uint8, 3)  # smaller than the SSIM window: SSIM is NaN
    p = pyramid_of(tiny, 2)
    code, *curves = items_of(coding.code_source(coding.CodingRequest(p, (2.0, 1.0), "uniform")))
    assert math.isnan(code.ssim)
    arrays, manifest = export(tmp_path, tiny, "coding", (code, curves[-1]))
    assert [a.name for a in arrays] == ["rebuilt", "residual", "jpeg_same_rate", "pyramid_rate_distortion",
                                        "jpeg_rate_distortion"]
    np.testing.assert_array_equal(np.load(tmp_path / "rebuilt.npy"), code.rebuilt.data)
    table = np.load(tmp_path / "pyramid_rate_distortion.npy")
    np.testing.assert_allclose(table[:, 1], [pt.bits_per_pixel for pt in curves[-1].pyramid], rtol=1e-6)
    parameters = manifest["parameters"]
    assert parameters["ssim"] is None and parameters["steps"] == [2.0, 1.0]
    assert [pt["quality"] for pt in parameters["jpeg_curve"]] == list(coding.QUALITIES)


# --- shift --------------------------------------------------------------------------------------


def test_shift_yields_the_cores_study_downsampler_by_downsampler(photo):
    p = pyramid_of(photo, 3)
    results = items_of(shift.study_shifts(shift.ShiftRequest(p, 1, "horizontal", 4)))
    assert [len(r.curves) for r in results] == list(range(1, len(DOWNSAMPLERS) + 1))
    assert [r.complete for r in results] == [False] * (len(DOWNSAMPLERS) - 1) + [True]
    level = p.gaussian[1]  # 31 x 24: cropped to 30 x 24
    assert results[-1].size == (level.shape[1] - level.shape[1] % 2, level.shape[0] - level.shape[0] % 2)
    for curve in results[-1].curves:
        study = shift_study(level, curve.downsampler, 4, "horizontal")
        np.testing.assert_array_equal(curve.rms, study.rms)
        np.testing.assert_array_equal(curve.psnr, study.psnr)
        assert curve.pair == study.pair and curve.pair_rms == study.pair_rms
        np.testing.assert_array_equal(curve.first.data, to_dtype(study.pair_outputs[0], np.uint8))
        np.testing.assert_array_equal(curve.difference.data, curve.second.data.astype(np.float32)
                                      - curve.first.data.astype(np.float32))
    by_name = {c.downsampler: c for c in results[-1].curves}
    assert by_name["pyrdown"].rms.max() < by_name["stride2"].rms.max()  # blur keeps outputs close


def test_shift_rms_is_the_direct_formula_for_stride_two():
    """Stride 2 by hand: keep every second pixel of the shifted image, bring back, unshift, compare."""
    image = random_image((12, 10), np.uint8, seed=3)
    p = pyramid_of(image, 2)
    curve = items_of(shift.study_shifts(shift.ShiftRequest(p, 0, "vertical", 2)))[-1].curves[0]

    def output(s):
        low = np.roll(image.astype(np.float32), s, axis=0)[::2, ::2]
        return np.roll(expand(low, (10, 12), cv2.BORDER_WRAP), -s, axis=0)

    base = output(0)
    expected = [np.sqrt(np.mean((output(s) - base) ** 2)) for s in range(3)]
    np.testing.assert_allclose(curve.rms, expected, rtol=1e-5, atol=1e-6)


def test_shift_plan_says_when_the_level_cannot_be_halved():
    p = pyramid_of(random_image((9, 3), np.uint8), 3)  # level 2 is 1 pixel wide
    assert "too small to halve" in shift.TOOL.plan(state(p, level=2)).message
    assert shift.TOOL.plan(state(p, shift_max=99)).wanted[0][-1] == shift.MAX_SHIFT


def test_shift_export_writes_every_pair_and_curve(tmp_path, photo):
    p = pyramid_of(photo, 2)
    result = items_of(shift.study_shifts(shift.ShiftRequest(p, 0, "diagonal", 3)))[-1]
    arrays, manifest = export(tmp_path, photo, "shift", result)
    assert len(arrays) == 2 * len(DOWNSAMPLERS)
    curve = result.curves[0]
    np.testing.assert_array_equal(np.load(tmp_path / f"stride2_shift{curve.pair[1]}.npy"), curve.second.data)
    saved = manifest["parameters"]["curves"]["stride2"]
    assert saved["psnr_db"][0] is None and saved["rms"] == pytest.approx(list(curve.rms))


# --- convmatrix ---------------------------------------------------------------------------------


def explained(p, geometry, weights="bilinear", level=0):
    return items_of(convmatrix.explain(convmatrix.ConvMatrixRequest(p, level, geometry, weights)))[-1]


@pytest.mark.parametrize(("n", "k", "s", "pad", "op"), [(4, 3, 2, 0, 0), (3, 4, 2, 1, 1), (5, 2, 3, 0, 2),
                                                       (1, 1, 1, 0, 0)])
def test_convmatrix_shows_the_cores_frames_overlaps_and_matrices(photo, n, k, s, pad, op):
    p = pyramid_of(photo, 2)
    g = Geometry((n, n), (k, k), s, pad, op)
    result = explained(p, g)
    side = (n - 1) * s - 2 * pad + k + op  # the formula, written out
    assert result.overlaps.shape[:2] == (side, side) and result.formula.endswith(f"= {side}")
    np.testing.assert_array_equal(result.overlaps.data, overlap_counts(g))
    pictures = render_frames(g, placement_frames(g), convmatrix.CELL)
    assert len(result.pictures) == n * n
    for mine, core in zip(result.pictures, pictures, strict=True):
        np.testing.assert_array_equal(mine, core)
    kernel = deconv_kernel(DeconvSettings(k, s, "bilinear"))
    c = conv_matrix(g, kernel)
    np.testing.assert_array_equal(result.c.data, c.astype(np.float32))
    np.testing.assert_array_equal(result.c_transposed.data, c.T.astype(np.float32))
    np.testing.assert_allclose(result.gram.data, (c.T @ c).astype(np.float32))
    assert result.max_difference < 1e-3 * max(1.0, float(np.abs(result.x).max()))
    back = round_trip(photo, kernel, s, pad)
    np.testing.assert_array_equal(result.round_trip.data, back)
    assert result.round_trip_gain == pytest.approx(back.mean() / photo.mean())


def test_the_small_input_is_the_levels_grey_mean_resized(photo):
    p = pyramid_of(photo, 2)
    result = explained(p, Geometry((4, 4), (3, 3), 2))
    expected = cv2.resize(photo.astype(np.float32).mean(axis=2), (4, 4), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(result.x, expected, rtol=1e-5)


def test_convmatrix_plan_refuses_what_pytorch_refuses(photo):
    p = pyramid_of(photo, 2)
    assert "smaller than the stride" in convmatrix.TOOL.plan(
        state(p, convmatrix_output_padding=2, convmatrix_stride=2)).message
    assert "reduce the padding" in convmatrix.TOOL.plan(state(p, convmatrix_padding=9)).message


def test_large_outputs_leave_c_transposed_c_out_and_say_when_c_t_c_cannot_run():
    image = random_image((7, 9), np.uint8, 3)
    p = pyramid_of(image, 2)
    big = explained(p, Geometry((8, 8), (16, 16), 8))
    assert big.gram is None and big.overlaps.shape[:2] == (72, 72)
    assert big.round_trip is None and "does not fit" in big.round_trip_note
    arrays, _ = registry.tool_arrays("convmatrix", big, "npy")
    assert "ct_c" not in [a.name for a in arrays] and "ct_c_image" not in [a.name for a in arrays]


def test_pytorch_shape_is_none_without_torch_and_torchs_with_it(photo):
    p = pyramid_of(photo, 2)
    result = explained(p, Geometry((3, 3), (4, 4), 2, 1, 1))
    try:
        import torch  # noqa: F401
    except ImportError:
        assert result.pytorch_shape is None
    else:  # (3 - 1)*2 - 2*1 + 4 + 1 = 7, as the Geometry itself says
        assert result.pytorch_shape == result.geometry.output_shape == (7, 7)


def test_convmatrix_export_writes_the_matrices_and_geometry(tmp_path, photo):
    p = pyramid_of(photo, 2)
    result = explained(p, Geometry((4, 4), (3, 3), 2, 1, 1), weights="box")
    _, manifest = export(tmp_path, photo, "convmatrix", result)
    np.testing.assert_array_equal(np.load(tmp_path / "conv_matrix.npy"), result.c.data)
    np.testing.assert_array_equal(np.load(tmp_path / "overlap_counts.npy"), overlap_counts(result.geometry))
    parameters = manifest["parameters"]
    assert parameters["output_shape"] == [8, 8] and parameters["weights"] == "box"
    assert parameters["formula"] == "(4 - 1)*2 - 2*1 + 3 + 1 = 8"
