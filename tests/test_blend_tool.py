"""The Blend tool's job against formulas written here: the band-by-band blend, the alpha blends, the
level's band and mask, the tutorial's uint8 bands, fitting the second image, masks, bad files, export."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.blend import fit_to
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid, reconstruct
from pyramid_explorer.jobs import PyramidRequest, build_pyramid
from pyramid_explorer.samples import load_bundled
from pyramid_explorer.tools import blend
from pyramid_explorer.tools.blend import BlendOptions, BlendRequest


def pyramid_of(image: np.ndarray):
    return [i for i in build_pyramid(PyramidRequest(1, image)) if not hasattr(i, "done")][-1]


def make_rgb(height: int = 29, width: int = 37, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[:height, :width]
    base = np.stack([x * 6.0, y * 8.0, (x + y) * 3.0], axis=2) + rng.normal(0, 25, (height, width, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def run(pyramid, level: int = 0, **options):
    items = list(blend.blend_images(BlendRequest(pyramid, level, BlendOptions(**options))))
    return items[-1]


def write_png(path, image: np.ndarray) -> str:
    assert cv2.imwrite(str(path), image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    return str(path)


def formula_blend(a, b, mask, levels, storage="float32") -> np.ndarray:
    """B[i] = GM[i] * LA[i] + (1 - GM[i]) * LB[i], collapsed (Burt & Adelson 1983)."""
    la, lb = laplacian_pyramid(a, levels, storage=storage), laplacian_pyramid(b, levels, storage=storage)
    gm = gaussian_pyramid(mask.astype(np.float32), levels)
    bands = []
    for band_a, band_b, m in zip(la, lb, gm, strict=True):
        m3 = m[:, :, None]
        mixed = m3 * band_a.astype(np.float32) + (1 - m3) * band_b.astype(np.float32)
        bands.append(mixed if storage == "float32" else to_dtype(mixed, np.uint8))
    return reconstruct(bands)


@pytest.fixture(scope="module")
def photo():
    return pyramid_of(make_rgb())


def test_the_default_blend_is_the_bundled_coffee_cropped_under_the_left_half(photo):
    a = photo.gaussian[0]
    h, w = a.shape[:2]
    result = run(photo)
    coffee = load_bundled("coffee.png")
    top, left = (coffee.shape[0] - h) // 2, (coffee.shape[1] - w) // 2
    b = coffee[top:top + h, left:left + w]  # no scaling: coffee is larger on both sides
    np.testing.assert_array_equal(result.second.data, b)
    assert result.fit_note == f"coffee.png: centre-cropped from 600x400 to {w}x{h}"
    mask = np.zeros((h, w), np.float32)
    mask[:, : w // 2] = 1
    np.testing.assert_array_equal(result.mask.data, mask)
    expected = formula_blend(a, b, mask, photo.levels)
    shown = to_dtype(expected, np.uint8).astype(int)  # the blend overshoots [0, 255]: shown saturated
    assert np.abs(result.spline.data.astype(int) - shown).max() <= 1  # float32 rounding at .5
    hard = mask[:, :, None] * a + (1 - mask[:, :, None]) * b.astype(np.float32)
    np.testing.assert_array_equal(result.hard.data, to_dtype(hard, np.uint8))


def test_feathering_softens_only_around_the_seam(photo):
    result = run(photo, feather=8)
    w = photo.gaussian[0].shape[1]
    differs = np.any(result.feathered.data != result.hard.data, axis=(0, 2))
    columns = np.flatnonzero(differs)
    assert columns.size and columns.min() >= w // 2 - 8 and columns.max() < w // 2 + 8
    np.testing.assert_array_equal(run(photo, feather=0).feathered.data, result.hard.data)


def test_the_bands_of_every_level_add_up_to_the_blend_and_each_is_weighted_by_its_mask_level(photo):
    results = [run(photo, level) for level in range(photo.levels)]
    total = sum(r.band.data.astype(np.float64) for r in results)
    spline = reconstruct(list(results[0].bands))
    np.testing.assert_allclose(total, spline, atol=1e-3)
    mask = results[0].mask.data
    for level, r in enumerate(results):
        np.testing.assert_array_equal(r.mask_level.data, gaussian_pyramid(mask, photo.levels)[level])
        assert r.mask_level.level == level


def test_the_tutorials_uint8_bands_clip_negative_detail(photo):
    clipped = run(photo, clip=True)
    assert clipped.clip_note.startswith("uint8 bands")
    assert all(band.dtype == np.uint8 for band in clipped.bands)
    a, b = photo.gaussian[0], clipped.second.data
    expected = formula_blend(a, b, clipped.mask.data, photo.levels, storage="uint8_saturate")
    np.testing.assert_array_equal(clipped.spline.data, to_dtype(expected, np.uint8))
    assert np.abs(clipped.spline.data.astype(float) - run(photo).spline.data).mean() > 5


def test_the_uint8_clipping_does_not_apply_to_other_dtypes():
    floats = pyramid_of(make_rgb().astype(np.float32) / 255)
    result = run(floats, clip=True)
    assert "uint8 images only" in result.clip_note and "float32" in result.clip_note
    np.testing.assert_array_equal(result.spline.data, run(floats).spline.data)
    assert "uint8 values rescaled to float32" in result.fit_note


def test_a_second_image_of_another_size_and_kind_is_fitted_as_chosen(photo, tmp_path):
    grey = (np.arange(50 * 20).reshape(20, 50) % 251).astype(np.uint8)
    path = write_png(tmp_path / "grey.png", grey)
    h, w = photo.gaussian[0].shape[:2]
    resized = run(photo, second=path, fit="resize")
    assert resized.fit_note == f"grey.png: grey turned into RGB; resized from 50x20 to {w}x{h}"
    assert resized.second.shape == photo.gaussian[0].shape
    expected = fit_to(grey, photo.gaussian[0], "resize").image
    np.testing.assert_array_equal(resized.second.data, expected)
    cropped = run(photo, second=path, fit="crop")
    assert "scaled by" in cropped.fit_note and "centre-cropped from 50x20" in cropped.fit_note


def test_masks_from_an_ellipse_and_from_an_image(photo, tmp_path):
    h, w = photo.gaussian[0].shape[:2]
    ellipse = run(photo, mask="ellipse").mask.data
    assert ellipse[h // 2, w // 2] == 1 and ellipse[0, 0] == 0 and 0 < ellipse.mean() < 1
    assert ((ellipse > 0) & (ellipse < 1)).any()  # soft
    picture = np.zeros((h, w), np.uint8)
    picture[: h // 3] = 255
    path = write_png(tmp_path / "top.png", picture)
    result = run(photo, mask="image", mask_path=path)
    np.testing.assert_array_equal(result.mask.data, picture / np.float32(255))
    assert "top.png is white" in result.mask_note
    missing = run(photo, mask="image")
    assert missing.error.startswith("No mask image yet") and missing.spline is None


@pytest.mark.parametrize("content", [None, b"not an image"])
def test_a_bad_second_image_is_one_line_and_nothing_to_export(photo, tmp_path, content):
    path = tmp_path / "second.png"
    if content is not None:
        path.write_bytes(content)
    result = run(photo, second=str(path))
    assert result.error.startswith("cannot load") and "second.png" in result.error
    assert "\n" not in result.error
    assert result.first is not None and result.spline is None
    with pytest.raises(ValueError, match="nothing to export"):
        blend.blend_arrays(result, "npy")


def test_options_are_checked():
    with pytest.raises(ValueError, match="fit must be one of"):
        BlendOptions(fit="stretch")
    with pytest.raises(ValueError, match="mask one of"):
        BlendOptions(mask="circle")


def test_export_holds_the_blends_every_band_and_json_safe_parameters(photo):
    result = run(photo, feather=10)
    arrays, parameters = blend.blend_arrays(result, "npy")
    by_name = {a.name: a for a in arrays}
    assert {"multiresolution_blend", "alpha_blend_hard", "alpha_blend_feathered", "second_fitted",
            "mask"} <= set(by_name)
    for n in range(photo.levels):
        np.testing.assert_array_equal(by_name[f"blended_band_{n}"].array, result.bands[n])
        assert by_name[f"blended_band_{n}"].level == n
    json.dumps(parameters, allow_nan=False)
    assert parameters["tool"] == "blend" and parameters["feather_px"] == 10 and parameters["fit"] == "crop"
    assert parameters["second"] == "coffee.png" and parameters["fit_note"] == result.fit_note
