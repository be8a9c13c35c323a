"""The Learnable tool's job: each upsampler's view against direct formulas, the checkerboards the papers
show (random transposed and sub-pixel convolutions, not resize-convolution nor ICNR), the user's kernel
read from .npy and .safetensors files, bad files as one line, and the export."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from safetensors.numpy import save_file

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.learnable import METHODS, initialise
from pyramid_explorer.core.upsampling import icnr
from pyramid_explorer.jobs import OpenRequest, Progress, Pyramid, open_image
from pyramid_explorer.samples import DEFAULT_SAMPLE
from pyramid_explorer.tools import learnable
from pyramid_explorer.tools.learnable import OwnKernel, channel_counts

RANDOM = tuple((method, "random") for method in METHODS)


@pytest.fixture(scope="module")
def photo() -> Pyramid:
    return next(i for i in open_image(OpenRequest(1, sample=DEFAULT_SAMPLE)) if isinstance(i, Pyramid))


def run(pyramid: Pyramid, level: int = 1, inits=RANDOM, seed: int = 0, own: OwnKernel | None = None):
    items = list(learnable.learnable_views(learnable.LearnableRequest(pyramid, level, inits, seed, own)))
    assert all(isinstance(item, Progress) for item in items[:-1])
    return items[-1]


def psnr_formula(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    return 10 * math.log10(peak**2 / np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))


def test_each_view_is_its_upsampler_applied_to_the_coarser_level(photo):
    result = run(photo, level=1, seed=3)
    fine, coarse = photo.gaussian[1], photo.gaussian[2]
    h, w = fine.shape[:2]
    assert [view.method for view in result.views] == list(METHODS)
    for view in result.views:
        out = initialise(view.method, "random", 2, seed=3).apply(coarse)[:h, :w]
        np.testing.assert_array_equal(view.image.data, to_dtype(out, fine.dtype))
        assert view.psnr == pytest.approx(psnr_formula(out, fine, 255), rel=1e-9)
        assert 0 < view.ssim < 1 and view.image.level == 1
        expected = initialise(view.method, "random", 2, seed=3).weights
        np.testing.assert_array_equal(view.upsampler.weights, expected)


def test_random_transposed_and_subpixel_show_checkerboards_resize_and_icnr_do_not(photo):
    random = {view.method: view for view in run(photo, level=0).views}
    icnr_view = run(photo, level=0, inits=(("subpixel", "icnr"),)).views[0]
    for view in (random["transposed"], random["subpixel"]):
        assert view.board.ratio > 1.1 and view.board.verdict.startswith("uneven")
    for view in (random["resize"], icnr_view):
        np.testing.assert_allclose(view.board.phase_sums, view.board.phase_sums.flat[0], rtol=1e-5)
        assert view.board.verdict.startswith("even")
    # the checkerboard is a Nyquist peak of the output's spectrum
    strongest = {name: max(s for *_, s in view.peaks) for name, view in
                 (("transposed", random["transposed"]), ("subpixel", random["subpixel"]),
                  ("resize", random["resize"]), ("icnr", icnr_view))}
    checkered = min(strongest["transposed"], strongest["subpixel"])
    assert checkered > max(strongest["resize"], strongest["icnr"]) + 2
    assert dict(icnr_view.distances)["ICNR"] == 0


def test_bilinear_initialisations_are_at_distance_zero_and_the_seed_changes_random_weights(photo):
    bilinear = run(photo, inits=tuple((m, "bilinear") for m in METHODS))
    assert all(dict(view.distances)["bilinear"] == pytest.approx(0, abs=1e-6) for view in bilinear.views)
    a, b = run(photo, seed=0).views[0], run(photo, seed=1).views[0]
    assert not np.array_equal(a.upsampler.weights, b.upsampler.weights)
    assert "seed 1" in b.title and "seed" not in bilinear.views[0].title


def test_the_coarsest_level_has_nothing_to_upsample(photo):
    with pytest.raises(ValueError, match="no coarser level"):
        run(photo, level=photo.levels - 1)


def test_own_kernel_from_npy_takes_the_channel_pair_or_the_mean(photo, tmp_path):
    weight = np.random.default_rng(2).random((3, 5, 4, 4)).astype(np.float32)  # ConvTranspose2d layout
    path = tmp_path / "up.npy"
    np.save(path, weight)
    result = run(photo, own=OwnKernel(str(path), "transposed", None, "ConvTranspose2d", 2, 4))
    np.testing.assert_array_equal(result.own.upsampler.weights, weight[2, 4])
    assert result.own.upsampler.padding == 1  # (k - stride) / 2, as the layer would pad
    assert result.tensors == (("", (3, 5, 4, 4)),)
    assert "ConvTranspose2d (C_in, C_out, k, k)" in result.own_note and "input channel 2" in result.own_note
    mean = run(photo, own=OwnKernel(str(path)))
    np.testing.assert_allclose(mean.own.upsampler.weights, weight.mean(axis=(0, 1)), rtol=1e-6)
    assert "input channel mean, output channel mean" in mean.own_note
    conv = run(photo, own=OwnKernel(str(path), "transposed", None, "Conv2d", 4, 2))  # (C_out, C_in, k, k)
    np.testing.assert_array_equal(conv.own.upsampler.weights, weight[2, 4])


def test_own_subpixel_kernel_from_safetensors_is_named_and_measured_against_icnr(photo, tmp_path):
    path = tmp_path / "net.safetensors"
    base = np.random.default_rng(4).random((3, 3)).astype(np.float32)
    subpixel = np.stack([icnr(base, 2)] * 2, axis=1)  # (4, C_in=2, 3, 3): every sub-kernel the same
    save_file({"decoder.up.weight": subpixel, "encoder.weight": np.ones((8, 3, 3, 3), np.float32)}, str(path))
    own = OwnKernel(str(path), "subpixel", "decoder.up.weight", "Conv2d", 1, 0)
    result = run(photo, own=own)
    assert dict(result.tensors) == {"decoder.up.weight": (4, 2, 3, 3), "encoder.weight": (8, 3, 3, 3)}
    np.testing.assert_array_equal(result.own.upsampler.weights, subpixel[:, 1])
    assert dict(result.own.distances)["ICNR"] == 0 and result.own.board.verdict.startswith("even")
    assert "'decoder.up.weight'" in result.own_note


@pytest.mark.parametrize("content, reason", [
    (None, "no such file"),
    (b"not a numpy file", "not a .npy array"),
])
def test_a_bad_kernel_file_is_one_line_and_no_view(photo, tmp_path, content, reason):
    path = tmp_path / "bad.npy"
    if content is not None:
        path.write_bytes(content)
    result = run(photo, own=OwnKernel(str(path)))
    assert result.own is None and len(result.views) == 3
    assert result.own_note.startswith("cannot load a kernel from") and reason in result.own_note
    assert "\n" not in result.own_note


def test_a_kernel_of_the_wrong_shape_or_channel_says_so(photo, tmp_path):
    path = tmp_path / "k.npy"
    np.save(path, np.ones((2, 2, 3, 3), np.float32))
    wrong_channel = run(photo, own=OwnKernel(str(path), in_channel=5))
    assert wrong_channel.own is None
    assert "in_channel" in wrong_channel.own_note and "0..1" in wrong_channel.own_note
    np.save(path, np.ones((3, 3, 3), np.float32))
    wrong_shape = run(photo, own=OwnKernel(str(path), "transposed"))
    assert wrong_shape.own is None and "4-D" in wrong_shape.own_note


def test_channel_counts_follow_the_layout():
    assert channel_counts((3, 5, 4, 4), "transposed", "ConvTranspose2d") == (3, 5)
    assert channel_counts((5, 3, 3, 3), "resize", "Conv2d") == (3, 5)
    assert channel_counts((8, 3, 3, 3), "subpixel", "Conv2d") == (3, 2)  # 8 = 2 output channels x 4
    assert channel_counts((3, 3), "resize", "plain") is None


def test_export_holds_every_view_and_json_safe_numbers(photo, tmp_path):
    path = tmp_path / "k.npy"
    np.save(path, np.ones((4, 4), np.float32) / 4)
    result = run(photo, own=OwnKernel(str(path), layout="plain"))
    arrays, parameters = learnable.learnable_arrays(result, "npy")
    names = {a.name for a in arrays}
    for stem in (*METHODS, "own"):
        assert {f"{stem}_upsampled", f"{stem}_kernel", f"{stem}_phase_sums", f"{stem}_weights"} <= names
    png_names = {a.name for a in learnable.learnable_arrays(result, "png")[0]}
    assert not any(name.endswith("_weights") for name in png_names)
    json.dumps(parameters, allow_nan=False)
    assert [v["method"] for v in parameters["views"]] == list(METHODS)
    assert parameters["own_kernel"]["read"] == result.own_note
    by_name = {a.name: a.array for a in arrays}
    sums = result.views[1].board.phase_sums
    np.testing.assert_array_equal(by_name["resize_phase_sums"], sums.astype(np.float32))


def test_an_unusable_first_tensor_still_lists_the_files_tensors(photo, tmp_path):
    path = tmp_path / "net.safetensors"
    save_file({"a.bias": np.ones(8, np.float32), "b.weight": np.ones((2, 2, 4, 4), np.float32)}, str(path))
    first = run(photo, own=OwnKernel(str(path)))
    assert first.own is None and "4-D" in first.own_note
    assert dict(first.tensors) == {"a.bias": (8,), "b.weight": (2, 2, 4, 4)}
    chosen = run(photo, own=OwnKernel(str(path), name="b.weight"))
    assert chosen.own is not None and "'b.weight'" in chosen.own_note


def test_sub_kernels_are_drawn_as_a_grid_one_per_output_phase():
    subs = np.arange(4 * 9, dtype=np.float32).reshape(4, 3, 3)
    grid = learnable.weights_mosaic(learnable.Upsampler("subpixel", 2, subs))
    assert grid.shape == (7, 7)
    np.testing.assert_array_equal(grid[:3, :3], subs[0])
    np.testing.assert_array_equal(grid[:3, 4:], subs[1])  # phase (0, 1)
    np.testing.assert_array_equal(grid[4:, :3], subs[2])
    np.testing.assert_array_equal(grid[4:, 4:], subs[3])
    assert not grid[3].any() and not grid[:, 3].any()
    kernel = np.ones((4, 4), np.float32)
    plain = learnable.weights_mosaic(learnable.Upsampler("transposed", 2, kernel))
    np.testing.assert_array_equal(plain, kernel)
