"""Shift-equivariance of downsamplers (Zhang 2019): every downsampler against its formula written here
(and PyTorch's pooling when installed), and the shift curves against the paper's finding."""

import itertools

import cv2
import numpy as np
import pytest
from helpers import CHANNELS, DTYPES, dtype_range, natural_image, random_image

from pyramid_explorer.core.equivariance import (
    DIRECTIONS,
    DOWNSAMPLERS,
    downsample,
    shift_study,
    shifted_output,
)

BINOMIAL5 = np.array([1, 4, 6, 4, 1]) / 16
BINOMIAL3 = np.array([1, 2, 1]) / 4


def by_definition(x, name):
    """Each downsampler pixel by pixel in float64, indices wrapping around."""
    x = np.asarray(x, np.float64).reshape(x.shape[0], x.shape[1], -1)
    h, w, c = x.shape
    out = np.zeros((h // 2, w // 2, c))
    if name == "maxblurpool":
        peak = np.zeros_like(x)
        for i, j in itertools.product(range(h), range(w)):
            peak[i, j] = np.max([x[(i + a) % h, (j + b) % w] for a in (0, 1) for b in (0, 1)], axis=0)
    for i, j in itertools.product(range(h // 2), range(w // 2)):
        block = x[2 * i : 2 * i + 2, 2 * j : 2 * j + 2].reshape(4, c)
        if name == "stride2":
            out[i, j] = x[2 * i, 2 * j]
        elif name == "average":
            out[i, j] = block.mean(axis=0)
        elif name == "maxpool":
            out[i, j] = block.max(axis=0)
        elif name == "pyrdown":
            out[i, j] = sum(BINOMIAL5[a] * BINOMIAL5[b] * x[(2 * i + a - 2) % h, (2 * j + b - 2) % w]
                            for a in range(5) for b in range(5))
        else:
            out[i, j] = sum(BINOMIAL3[a] * BINOMIAL3[b] * peak[(2 * i + a - 1) % h, (2 * j + b - 1) % w]
                            for a in range(3) for b in range(3))
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("shape", [(2, 2), (6, 10), (12, 8)])
@pytest.mark.parametrize("name", DOWNSAMPLERS)
def test_each_downsampler_matches_its_formula(name, shape, channels, dtype):
    x = random_image(shape, dtype, channels, seed=len(name))
    out = downsample(x, name)
    assert out.dtype == np.float32 and out.shape == (shape[0] // 2, shape[1] // 2, *x.shape[2:])
    expected = by_definition(x, name)
    scale = dtype_range(dtype)
    np.testing.assert_allclose(out.reshape(expected.shape), expected, rtol=1e-6, atol=1e-6 * scale)


def test_downsample_refuses_odd_sides_and_unknown_names():
    with pytest.raises(ValueError, match="even sides, got 5x4"):
        downsample(np.zeros((4, 5), np.uint8), "average")
    with pytest.raises(ValueError, match="allowed: stride2, average, maxpool, pyrdown, maxblurpool"):
        downsample(np.zeros((4, 4), np.uint8), "bilinear")


def test_pooling_matches_pytorch():
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x = random_image((10, 14), np.float32, 3, seed=1)
    t = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]
    expected = {
        "stride2": t[:, :, ::2, ::2],
        "average": functional.avg_pool2d(t, 2),
        "maxpool": functional.max_pool2d(t, 2),
    }
    # MaxBlurPool as in Zhang's antialiased-cnns, with circular padding: max_pool2d(2, stride 1), then
    # a depthwise [1 2 1]/4 blur with stride 2
    peak = functional.max_pool2d(functional.pad(t, (0, 1, 0, 1), mode="circular"), 2, stride=1)
    blur = torch.from_numpy(np.outer(BINOMIAL3, BINOMIAL3).astype(np.float32)).expand(3, 1, 3, 3)
    expected["maxblurpool"] = functional.conv2d(functional.pad(peak, (1, 1, 1, 1), mode="circular"), blur,
                                                stride=2, groups=3)
    for name, result in expected.items():
        np.testing.assert_allclose(downsample(x, name), result[0].numpy().transpose(1, 2, 0), atol=1e-6)


@pytest.mark.parametrize("direction", list(DIRECTIONS))
@pytest.mark.parametrize("name", DOWNSAMPLERS)
def test_shift_study_measures_each_shift_against_the_unshifted_output(name, direction):
    image = random_image((17, 22), np.uint8, 3, seed=5)  # odd height: one row is cropped
    study = shift_study(image, name, 5, direction)
    dy, dx = DIRECTIONS[direction]
    x = image[:16].astype(np.float32)

    def round_trip(s):
        low = downsample(np.roll(x, (dy * s, dx * s), axis=(0, 1)), name)
        padded = np.pad(low, ((2, 2), (2, 2), (0, 0)), mode="wrap")  # pyrUp with wrap-around borders
        return np.roll(cv2.pyrUp(padded)[4:-4, 4:-4], (-dy * s, -dx * s), axis=(0, 1))

    outputs = [round_trip(s) for s in range(6)]
    rms = [np.sqrt(np.mean((o.astype(np.float64) - outputs[0]) ** 2)) for o in outputs]
    assert study.shifts == tuple(range(6))
    np.testing.assert_allclose(study.rms, rms, rtol=1e-4, atol=1e-6)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(study.psnr, 20 * np.log10(255 / np.array(rms)), rtol=1e-4)
    pairs = {(i, j): np.sqrt(np.mean((outputs[i].astype(np.float64) - outputs[j]) ** 2))
             for i, j in itertools.combinations(range(6), 2)}
    assert study.pair_rms == pytest.approx(max(pairs.values()), rel=1e-4)
    assert pairs[study.pair] == pytest.approx(max(pairs.values()), rel=1e-4)
    for out, shift in zip(study.pair_outputs, study.pair, strict=True):
        np.testing.assert_allclose(out, outputs[shift], atol=1e-3)
        np.testing.assert_array_equal(out, shifted_output(image, name, shift, direction))


@pytest.mark.parametrize("name", DOWNSAMPLERS)
def test_even_shifts_commute_with_halving(name):
    """With wrap-around, a shift by 2 is a shift by 1 of the half-size grid: no difference at all."""
    study = shift_study(random_image((16, 16), np.float32, seed=2), name, 4, "horizontal")
    assert study.rms[0] == 0 and study.psnr[0] == np.inf
    np.testing.assert_allclose(study.rms[[2, 4]], 0, atol=1e-6)


def test_blurring_before_subsampling_keeps_outputs_close_for_every_shift():
    """Zhang 2019, Fig. 1 and 5: stride-2 subsampling and max pooling change with the input's phase;
    anti-aliased versions (pyrDown's blur, MaxBlurPool) change several times less."""
    image = natural_image()
    worst = {name: shift_study(image, name).rms.max() for name in DOWNSAMPLERS}
    assert max(worst["pyrdown"], worst["maxblurpool"]) < min(worst["stride2"], worst["maxpool"]) / 2
    assert worst["maxblurpool"] < worst["maxpool"] / 3
    assert worst["average"] < worst["stride2"]


def test_shift_study_arguments():
    image = np.zeros((8, 8), np.uint8)
    with pytest.raises(ValueError, match="max_shift must be an integer >= 1"):
        shift_study(image, "average", 0)
    with pytest.raises(ValueError, match="allowed: horizontal, vertical, diagonal"):
        shift_study(image, "average", 2, "sideways")
    with pytest.raises(ValueError, match="at least 2x2"):
        shift_study(np.zeros((1, 8), np.uint8), "average")
    assert shift_study(np.full((2, 2), 7, np.uint16), "maxblurpool", 3).rms.max() == 0
