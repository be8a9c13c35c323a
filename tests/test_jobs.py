"""The Qt-free job layer: what each job yields, checked against OpenCV and the core directly."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pyramid_explorer import display, jobs
from pyramid_explorer.core import deconv
from pyramid_explorer.core.analysis import overlap_verdict, polyphase_sums
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.deconv import DeconvSettings
from pyramid_explorer.core.metrics import psnr
from pyramid_explorer.core.upsampling import MODES, max_pool_with_indices, transposed_conv2d, upsample
from pyramid_explorer.jobs import OpenRequest, Progress, PyramidRequest
from pyramid_explorer.samples import SAMPLES
from pyramid_explorer.tools import compare as compare_tool
from pyramid_explorer.tools import pyramid as pyramid_tool
from pyramid_explorer.tools.compare import CompareRequest, DeconvResult, ModeResult
from pyramid_explorer.tools.pyramid import LevelRequest, MosaicRequest


def last(items):
    """The final item a job yields (its result)."""
    *_, result = items
    return result


def image(shape, dtype=np.uint8, seed=0):
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.random(shape, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, shape, endpoint=True).astype(dtype)


def pyramid_of(img, levels=None):
    return last(jobs.build_pyramid(PyramidRequest(1, img, levels)))


@pytest.mark.parametrize("shape", [(37, 53, 3), (1, 1), (1, 9), (5, 3, 4), (64, 64)])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_build_pyramid_stats_match_a_plain_pyrdown_loop(shape, dtype):
    img = image(shape, dtype)
    items = list(jobs.build_pyramid(PyramidRequest(1, img)))
    assert all(isinstance(i, Progress) for i in items[:-1])
    p = items[-1]
    level = img
    for i, stats in enumerate(p.stats):
        assert (stats.height, stats.width) == level.shape[:2]
        np.testing.assert_array_equal(p.gaussian[i], level)
        assert stats.minimum == level.min() and stats.maximum == level.max()
        assert stats.mean == pytest.approx(level.astype(np.float64).mean())
        assert stats.max_abs_residual == 0 or dtype == np.float32
        thumb = p.thumbnails[i]
        assert thumb.dtype == np.uint8 and max(thumb.shape[:2]) == display.THUMBNAIL_SIZE
        level = cv2.pyrDown(level)
    assert p.levels == len(p.stats)


def test_build_pyramid_honours_depth_and_values_are_read_only():
    p = pyramid_of(image((40, 40, 3)), levels=3)
    assert p.levels == 3 and len(p.laplacian) == 3
    with pytest.raises(ValueError):
        p.gaussian[1][0, 0] = 0


def test_level_view_residual_is_zero_for_integer_images_and_layers_are_placed():
    img = image((31, 45, 3))
    p = pyramid_of(img)
    view = last(pyramid_tool.level_view(LevelRequest(p, 2)))
    assert view.max_abs_residual == 0 and view.differing_pixels == 0
    assert not np.any(view.residual.data)
    assert view.residual.limits == (-1.0, 1.0)  # an all-zero image still gets a colour scale
    band = view.laplacian
    assert band.signed and band.limits[0] == -band.limits[1] and band.limits[1] > 0
    np.testing.assert_allclose(band.display, p.laplacian[2].mean(axis=2), rtol=1e-6)
    g = view.gaussian
    assert g.scale == 4 and g.origin == (-2, -2)
    # pyrDown centres pixel j of level 2 on source pixel 4j (checked on a ramp below)
    for j in range(g.shape[1]):
        assert g.pixel_at(4 * j, 1.5) == (0, j)
    assert g.pixel_at(-2.1, 0) is None and g.pixel_at(g.shape[1] * 4 - 2, 0) is None


def test_layer_placement_follows_pyrdown_on_a_ramp():
    """Independent check of the convention: on a horizontal ramp (value = source x), each level's
    interior pixel holds the source coordinate of its own centre."""
    ramp = np.tile(np.arange(256, dtype=np.float32), (64, 1))
    p = pyramid_of(ramp, levels=4)
    for level in range(4):
        layer = last(pyramid_tool.level_view(LevelRequest(p, level))).gaussian
        j = layer.shape[1] // 2
        centre_x = layer.origin[0] + (j + 0.5) * layer.scale
        assert layer.data[layer.shape[0] // 2, j] == pytest.approx(centre_x)


def test_level_view_of_the_coarsest_level_is_unsigned():
    p = pyramid_of(image((9, 9)), levels=2)
    view = last(pyramid_tool.level_view(LevelRequest(p, 1)))
    assert not view.laplacian.signed


def test_float_residual_is_tiny_but_reported():
    p = pyramid_of(image((33, 17), np.float32))
    view = last(pyramid_tool.level_view(LevelRequest(p, 0)))
    assert view.max_abs_residual < 1e-5
    assert view.residual.signed


def test_compare_matches_the_core_for_every_mode():
    img = image((29, 41, 3))
    p = pyramid_of(img)
    items = [i for i in compare_tool.compare(CompareRequest(p, 1)) if not isinstance(i, Progress)]
    first = {r.mode: r for r in items if isinstance(r, ModeResult) and r.psnr is None}
    final = {r.mode: r for r in items if isinstance(r, ModeResult) and r.psnr is not None}
    assert list(first) == list(MODES) == list(final)
    g1, g2 = p.gaussian[1], p.gaussian[2]
    for mode in MODES:
        if mode == "unpool":
            pooled, idx = max_pool_with_indices(g1)
            expected = upsample(pooled, "unpool", size=(g1.shape[1], g1.shape[0]), indices=idx)
        else:
            expected = upsample(g2, mode, size=(g1.shape[1], g1.shape[0]))
        result = final[mode]
        # kept in the level's dtype (rounded, saturated); difference and metrics from the float result
        np.testing.assert_array_equal(result.image.data, to_dtype(expected, np.uint8))
        assert result.image.scale == 2 and result.image.origin == (-1, -1)
        assert result.psnr == pytest.approx(psnr(expected, g1.astype(np.float32), 255.0))
        assert -1 <= result.ssim <= 1
        np.testing.assert_allclose(result.difference.data, (expected - g1).mean(axis=2), atol=1e-4)
    deconvs = [r for r in items if isinstance(r, DeconvResult)]  # its image, its difference, its numbers
    assert len(deconvs) == 3 and deconvs[0].difference is None and deconvs[-1].psnr is not None


def test_compare_refuses_the_coarsest_level():
    p = pyramid_of(image((8, 8)))
    with pytest.raises(ValueError, match="no coarser level"):
        list(compare_tool.compare(CompareRequest(p, p.levels - 1)))


def test_compare_crop_covers_the_centre_of_the_level_in_place():
    img = image((64, 96))
    p = pyramid_of(img)
    a = last(compare_tool.compare(CompareRequest(p, 0, ("nearest",), None)))
    b = last(compare_tool.compare(CompareRequest(p, 0, ("nearest",), None, max_pixels=32 * 48)))
    assert not a.cropped
    assert b.cropped and b.image.shape[0] * b.image.shape[1] <= 32 * 48
    x0, y0 = b.image.origin[0] + 0.5, b.image.origin[1] + 0.5
    assert x0 % 2 == 0 and y0 % 2 == 0
    h, w = b.image.shape
    # nearest has no reach across the crop border, so the crop is exactly the same pixels
    np.testing.assert_array_equal(b.image.data, a.image.data[int(y0):int(y0) + h, int(x0):int(x0) + w])


@pytest.mark.parametrize(("k", "s"), [(4, 2), (3, 2), (2, 2), (5, 3), (1, 1), (6, 4)])
def test_deconv_output_is_placed_where_its_input_pixels_are(k, s):
    """A single impulse in G[i+1] must come out centred on that pixel's source position."""
    coarse = np.zeros((9, 11), np.float32)
    coarse[4, 6] = 1
    settings = DeconvSettings(k, s, "box")
    output = deconv.deconv_output(coarse, settings)
    result = compare_tool._deconv(1, 1, settings, coarse.dtype, output, (-1, -1), False)
    out = result.image
    ys, xs = np.nonzero(out.data)
    pixel = out.scale
    centre_x = out.origin[0] + (xs.min() + xs.max() + 1) / 2 * pixel
    centre_y = out.origin[1] + (ys.min() + ys.max() + 1) / 2 * pixel
    # level 2 (scale 4) pixel (row 4, col 6) is centred on source pixel (6 * 4, 4 * 4)
    assert (centre_x, centre_y) == pytest.approx((24, 16))
    assert pixel == 4 / s


def test_stride_two_bilinear_deconv_aligned_equals_the_core_mode():
    img = image((30, 42, 3))
    p = pyramid_of(img)
    result = last(r for r in compare_tool.compare(CompareRequest(p, 0, (), DeconvSettings(4, 2, "bilinear")))
                  if isinstance(r, DeconvResult))
    settings = result.settings
    aligned = deconv.aligned(deconv.deconv_output(p.gaussian[1], settings), settings, 30, 42)
    expected = upsample(p.gaussian[1], "deconv_bilinear", size=(42, 30))
    np.testing.assert_allclose(aligned, expected, atol=1e-4)
    assert result.psnr == pytest.approx(psnr(expected, img.astype(np.float32), 255.0), rel=1e-5)
    assert result.image.data.dtype == np.uint8


def test_only_the_fcn_bilinear_deconv_has_a_twin_mode():
    assert deconv.twin_mode(DeconvSettings(4, 2, "bilinear")) == "deconv_bilinear"
    for k, s, kind in ((4, 2, "box"), (4, 3, "bilinear"), (3, 2, "bilinear"), (6, 2, "bilinear"),
                       (4, 2, "random")):
        assert deconv.twin_mode(DeconvSettings(k, s, kind)) is None


def test_deconv_kernel_kinds_sum_to_stride_squared_and_random_is_fixed():
    for kind in deconv.KERNELS:
        k = deconv.deconv_kernel(DeconvSettings(5, 3, kind))
        assert k.shape == (5, 5) and k.sum() == pytest.approx(9)
    a = deconv.deconv_kernel(DeconvSettings(3, 2, "random"))
    np.testing.assert_array_equal(a, deconv.deconv_kernel(DeconvSettings(3, 2, "random")))


def test_uneven_box_kernel_gives_a_checkerboard_on_a_constant_image():
    settings = DeconvSettings(3, 2, "box")
    kernel = deconv.deconv_kernel(settings)
    sums = polyphase_sums(kernel, settings.stride)  # what the Compare tab's phase map shows
    interior = transposed_conv2d(np.ones((8, 8), np.float32), kernel, 2)[4:8, 4:8]
    np.testing.assert_allclose(np.tile(sums, (2, 2)), interior, rtol=1e-6)
    assert overlap_verdict(kernel, settings.stride).startswith("uneven overlap")
    assert np.ptp(sums) > 1


@pytest.mark.parametrize("bad", [{"kernel_size": 0}, {"stride": 9}, {"kernel": "gauss"}])
def test_deconv_settings_are_checked(bad):
    with pytest.raises(ValueError):
        DeconvSettings(**bad)


def test_mosaic_packs_levels_in_the_classic_layout():
    img = image((37, 53, 3))
    p = pyramid_of(img)
    g = last(pyramid_tool.mosaic(MosaicRequest(p, "gaussian")))
    for level, (x, y, w, h) in zip(p.gaussian, g.boxes, strict=True):
        np.testing.assert_array_equal(g.layer.data[y:y + h, x:x + w], level)
    assert g.boxes[0] == (0, 0, 53, 37) and g.boxes[1] == (53, 0, 27, 19) and g.boxes[2] == (53, 19, 14, 10)
    lap = last(pyramid_tool.mosaic(MosaicRequest(p, "laplacian")))
    assert lap.layer.signed and lap.layer.data.min() >= -1 and lap.layer.data.max() <= 1
    with pytest.raises(ValueError, match="kinds"):
        list(pyramid_tool.mosaic(MosaicRequest(p, "wavelet")))


def test_open_image_yields_the_loaded_image_then_its_pyramid(tmp_path):
    img = image((12, 20, 3))
    path = tmp_path / "x.png"
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    items = [i for i in jobs.open_image(OpenRequest(5, path=str(path))) if not isinstance(i, Progress)]
    loaded, p = items
    assert loaded.name == "x.png" and loaded.path == str(path) and loaded.image_id == p.image_id == 5
    np.testing.assert_array_equal(loaded.image, img)


def test_open_request_needs_exactly_one_source():
    with pytest.raises(ValueError):
        OpenRequest(1)
    with pytest.raises(ValueError):
        OpenRequest(1, path="a.png", sample=next(iter(SAMPLES)))


def test_display_limits():
    assert display.display_limits(np.zeros((4, 4), np.uint8), signed=False) == (0.0, 255.0)
    assert display.display_limits(np.full((4, 4), 7, np.uint16), signed=False) == (7.0, 8.0)
    data = np.array([[np.nan, -3.0], [2.0, np.inf]], np.float32)
    assert display.display_limits(data, signed=False) == (-3.0, 2.0)
    spike = np.zeros((100, 100), np.float32)
    spike[5, 5] = -9
    assert display.display_limits(spike, signed=True) == (-9.0, 9.0)


def test_quantize_maps_limits_to_codes():
    data = np.array([[-2.0, -1.0, 0.0, np.inf], [1.0, 3.0, np.nan, -np.inf]], np.float32)
    codes = display.quantize(data, (-1.0, 1.0))
    np.testing.assert_array_equal(codes, [[0, 0, 128, 0], [255, 255, 0, 0]])
    rgba = np.full((2, 2, 4), 0.5, np.float32)
    rgba[0, 0] = np.nan
    rgba[1, 1, 3] = -np.inf
    codes = display.quantize(rgba, (0.0, 1.0))
    np.testing.assert_array_equal(codes[0, 0], 0)
    np.testing.assert_array_equal(codes[1, 1], [128, 128, 128, 0])
    img = image((4, 5, 3))
    assert display.quantize(img, (0.0, 255.0)) is img
    rgba = image((3, 3, 4), np.uint16)
    out = display.quantize(rgba, (0.0, 65535.0))
    assert out.shape == (3, 3, 4)
    np.testing.assert_array_equal(out[..., 3], np.round(rgba[..., 3].astype(float) * 255 / 65535))


def test_value_histogram_counts_every_sampled_value():
    img = image((40, 30, 3))
    edges, counts = display.value_histogram(img)
    assert counts.sum() == img.size and edges[0] == img.min() - 0.5
    assert len(counts) == int(img.max()) - int(img.min()) + 1  # one bin per value


@pytest.mark.parametrize(("shape", "factor"), [((512, 6, 3), 2), ((264, 1032), 8), ((1000, 512, 4), 4),
                                               ((257, 3), 2), ((256, 256), 1), ((1, 1), 1)])
def test_a_large_layer_carries_its_screen_sized_preview(shape, factor):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 256, shape).astype(np.uint8)
    if len(shape) == 3 and shape[2] == 4:
        data[..., 3] = 255  # opaque: the preview is the plain area mean
    layer = display.make_layer(data, 0)
    if factor == 1:
        assert layer.preview is None
        return
    assert layer.preview is not None and layer.preview.factor == factor
    rows, cols = -(-shape[0] // factor), -(-shape[1] // factor)
    assert layer.preview.pixels.shape == (rows, cols, *shape[2:])
    half = factor // 2  # the next smaller factor would not fit
    assert max(rows, cols) <= display.PREVIEW_SIDE < max(-(-shape[0] // half), -(-shape[1] // half))
    if shape[0] % factor == 0 and shape[1] % factor == 0:  # whole blocks: their mean, rounded
        blocks = layer.pixels.reshape(rows, factor, cols, factor, *shape[2:]).mean(axis=(1, 3))
        np.testing.assert_allclose(layer.preview.pixels, blocks, atol=0.5 + 1e-9, rtol=0)


@pytest.mark.parametrize(("dtype", "lo", "hi"), [
    *((t, lo, hi) for t in (np.uint8, np.uint16, np.int16) for lo, hi in ((0, 255), (17, 18), (40, 40))),
    (np.uint16, 1000, 1200), (np.int16, -300, -100)])
def test_integer_histograms_are_numpys_one_bin_per_value(dtype, lo, hi):
    img = np.random.default_rng(abs(lo)).integers(lo, hi, (33, 45, 3), endpoint=True).astype(dtype)
    edges, counts = display.value_histogram(img)
    want_counts, want_edges = np.histogram(img, int(img.max() - img.min()) + 1,
                                           range=(img.min() - 0.5, img.max() + 0.5))
    np.testing.assert_array_equal(counts, want_counts)
    np.testing.assert_array_equal(edges, want_edges[:-1].astype(np.float32))


def test_export_job_stopped_between_files_leaves_a_cancelled_manifest(tmp_path):
    import json

    from pyramid_explorer.core.export import MANIFEST_NAME, ExportOptions

    img = image((33, 47, 3))
    job = jobs.export(jobs.ExportRequest(img, str(tmp_path), ExportOptions(kinds=("gaussian",), fmt="npy")))
    steps = [next(job), next(job)]  # before the first file, after the first file
    assert steps[1].done == 1
    job.close()  # what the worker does when the job is cancelled
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["status"] == "cancelled"
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == ["gaussian_00.npy", MANIFEST_NAME]


def test_export_job_ends_with_the_result(tmp_path):
    from pyramid_explorer.core.export import ExportOptions

    items = list(jobs.export(jobs.ExportRequest(image((9, 9)), str(tmp_path), ExportOptions(fmt="npy"))))
    assert isinstance(items[-1], jobs.ExportDone) and not items[-1].result.cancelled
    assert all(isinstance(i, Progress) for i in items[:-1])


@pytest.mark.parametrize(("top", "left", "height", "width"), [(1, 1, 5, 6), (-2, 3, 6, 4), (4, -1, 5, 9)])
def test_a_window_holds_the_array_inside_it_and_zeros_outside(top, left, height, width):
    a = np.arange(7 * 8 * 3, dtype=np.float32).reshape(7, 8, 3) + 1
    got = deconv.window(a, top, left, height, width)
    assert got.shape == (height, width, 3)
    padded = np.zeros((7 + 20, 8 + 20, 3), np.float32)  # the array with 10 zero pixels all round
    padded[10:17, 10:18] = a
    np.testing.assert_array_equal(got, padded[10 + top:10 + top + height, 10 + left:10 + left + width])
