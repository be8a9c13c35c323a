"""A network's own kernels from .npy and .safetensors files: layouts against the layers that define them
(PyTorch, when installed) and against index formulas written here, and one-line errors for bad files."""

import json
import struct

import numpy as np
import pytest
from safetensors.numpy import save_file

from pyramid_explorer.core.learnable import bilinear_init, distance
from pyramid_explorer.core.upsampling import subpixel_conv2d, transposed_conv2d
from pyramid_explorer.core.weights import (
    KernelLoadError,
    load_upsampler,
    load_weight,
    pick_kernel,
    pick_subkernels,
    tensor_names,
)

WEIGHT = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)


@pytest.fixture
def checkpoint(tmp_path):
    path = tmp_path / "decoder.safetensors"
    save_file({"up.weight": WEIGHT, "up.bias": np.zeros(3, np.float32),
               "half": WEIGHT.astype(np.float16)}, str(path))
    return path


def test_tensor_names_lists_every_tensor_with_its_shape(checkpoint, tmp_path):
    assert tensor_names(checkpoint) == {"up.weight": (2, 3, 4, 4), "up.bias": (3,), "half": (2, 3, 4, 4)}
    np.save(tmp_path / "k.npy", np.ones((3, 3)))
    assert tensor_names(tmp_path / "k.npy") == {"": (3, 3)}


def test_load_weight_reads_the_named_tensor_as_float32(checkpoint):
    for name in ("up.weight", "half"):
        data = load_weight(checkpoint, name)
        assert data.dtype == np.float32
        np.testing.assert_array_equal(data, WEIGHT)


def test_pick_kernel_follows_each_layout():
    # ConvTranspose2d (C_in, C_out, k, k): [i, o]; Conv2d (C_out, C_in, k, k): [o, i]
    assert np.array_equal(pick_kernel(WEIGHT, "ConvTranspose2d", 1, 2), WEIGHT[1, 2])
    assert np.array_equal(pick_kernel(WEIGHT, "Conv2d", 1, 0), WEIGHT[0, 1])
    np.testing.assert_allclose(pick_kernel(WEIGHT, "ConvTranspose2d", None, 2),
                               (WEIGHT[0, 2] + WEIGHT[1, 2]) / 2)
    np.testing.assert_allclose(pick_kernel(WEIGHT, "ConvTranspose2d", 0, None), WEIGHT[0].sum(axis=0) / 3)
    np.testing.assert_allclose(pick_kernel(WEIGHT, "Conv2d", None, None), WEIGHT.sum(axis=(0, 1)) / 6)
    assert np.array_equal(pick_kernel(WEIGHT[0, 0], "plain"), WEIGHT[0, 0])


@pytest.mark.parametrize(
    ("weight", "layout", "channels", "message"),
    [
        (WEIGHT, "Conv2d", (3, 0), r"in_channel must be None \(the mean\) or an integer 0..2, got 3"),
        (WEIGHT, "ConvTranspose2d", (0, 3), r"out_channel must be None \(the mean\) or an integer 0..2"),
        (WEIGHT, "NHWC", (0, 0), "unknown layout 'NHWC'; allowed: ConvTranspose2d, Conv2d, plain"),
        (WEIGHT[0], "Conv2d", (0, 0), r"4-D \(C_out, C_in, k, k\), got shape \(3, 4, 4\)"),
        (WEIGHT, "plain", (None, None), r"2-D \(k, k\)"),
    ],
)
def test_pick_kernel_errors_say_what_is_allowed(weight, layout, channels, message):
    with pytest.raises(ValueError, match=message):
        pick_kernel(weight, layout, *channels)


def test_pick_subkernels_takes_the_pixel_shuffle_group_of_an_output_channel():
    f, c, c_in, k = 2, 3, 2, 3
    weight = np.random.default_rng(0).normal(size=(c * f * f, c_in, k, k)).astype(np.float32)
    for out in range(c):
        for inp in range(c_in):
            expected = np.stack([weight[out * f * f + s, inp] for s in range(f * f)])
            np.testing.assert_array_equal(pick_subkernels(weight, f, inp, out), expected)
    mean = weight.mean(axis=1).reshape(c, f * f, k, k).mean(axis=0)
    np.testing.assert_allclose(pick_subkernels(weight, f), mean, rtol=1e-6)
    assert pick_subkernels(weight[:4, 0], f).shape == (4, k, k)
    with pytest.raises(ValueError, match=r"\(C\*9, C_in, k, k\) for factor 3"):
        pick_subkernels(weight, 3)


def test_pytorch_layers_use_the_stated_layouts(tmp_path):
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x = np.random.default_rng(1).random((2, 5, 6)).astype(np.float32)  # (C_in, H, W)
    deconv = torch.nn.ConvTranspose2d(2, 3, 4, stride=2, padding=1, bias=False)
    f = 2
    conv = torch.nn.Conv2d(2, 3 * f * f, 3, padding=1, bias=False)
    path = tmp_path / "net.safetensors"
    save_file({"deconv.weight": deconv.weight.detach().numpy(),
               "conv.weight": conv.weight.detach().numpy()}, str(path))
    with torch.no_grad():
        deconv_out = deconv(torch.from_numpy(x)[None])[0].numpy()
        shuffled = torch.nn.functional.pixel_shuffle(conv(torch.from_numpy(x)[None]), f)[0].numpy()
    weight = load_weight(path, "deconv.weight")
    for out in range(3):
        ours = sum(transposed_conv2d(x[i], pick_kernel(weight, "ConvTranspose2d", i, out), 2, 1)
                   for i in range(2))
        np.testing.assert_allclose(ours, deconv_out[out], atol=1e-5)
    weight = load_weight(path, "conv.weight")
    for out in range(3):
        ours = sum(subpixel_conv2d(x[i], pick_subkernels(weight, f, i, out), f) for i in range(2))
        np.testing.assert_allclose(ours, shuffled[out], atol=1e-5)


def test_load_upsampler_measures_a_trained_kernel_against_bilinear(tmp_path):
    kernel = bilinear_init("transposed", 2).weights
    np.save(tmp_path / "k.npy", kernel[None, None] * 1.1)
    up = load_upsampler(tmp_path / "k.npy", "transposed", 2, padding=1)
    assert distance(up, bilinear_init("transposed", 2)) == pytest.approx(0.1, rel=1e-5)
    subs = bilinear_init("subpixel", 2).weights
    save_file({"w": subs[:, None]}, str(tmp_path / "s.safetensors"))
    up = load_upsampler(tmp_path / "s.safetensors", "subpixel", 2, in_channel=0)
    assert distance(up, bilinear_init("transposed", 2)) == pytest.approx(0.0, abs=1e-6)


def write_header(path, header, payload=b""):
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + payload)


@pytest.mark.parametrize(
    ("name", "setup", "reason"),
    [
        ("missing.safetensors", None, "no such file"),
        ("missing.npy", None, "no such file"),
        ("k.pt", b"x", r"unsupported file type '.pt'; allowed: .npy, .safetensors"),
        ("garbage.safetensors", b"not a checkpoint at all", "not a safetensors file"),
        ("garbage.npy", b"not an array", r"not a \.npy array"),
        ("bf16.safetensors", "bf16", "tensor 'w' cannot be read without PyTorch"),
        ("object.npy", np.array([{}, 1], dtype=object), r"not a \.npy array"),
        ("flags.npy", np.ones((3, 3), bool), "the weights are bool, not numbers"),
        ("nan.npy", np.full((3, 3), np.nan), "hold NaN/inf"),
    ],
)
def test_bad_files_give_one_line_naming_the_file_and_the_reason(tmp_path, name, setup, reason):
    path = tmp_path / name
    if isinstance(setup, bytes):
        path.write_bytes(setup)
    elif isinstance(setup, np.ndarray):
        np.save(path, setup, allow_pickle=True)
    elif setup == "bf16":
        write_header(path, {"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}}, b"\0" * 4)
    with pytest.raises(KernelLoadError, match=reason) as caught:
        load_weight(path)
    message = str(caught.value)
    assert message.startswith(f"cannot load a kernel from '{path}': ") and "\n" not in message


def test_a_missing_tensor_name_lists_the_available_names(checkpoint):
    listed = r"the file holds: half, up\.bias, up\.weight$"
    with pytest.raises(KernelLoadError, match=r"no tensor named 'up\.w'; " + listed):
        load_weight(checkpoint, "up.w")
    with pytest.raises(KernelLoadError, match="name the tensor to load; " + listed):
        load_weight(checkpoint)


def test_a_weight_of_the_wrong_shape_for_the_method_names_the_file(checkpoint):
    with pytest.raises(KernelLoadError, match=r"decoder\.safetensors': .*k odd"):
        load_upsampler(checkpoint, "resize", 2, "up.weight", "Conv2d", 0, 0)
    with pytest.raises(KernelLoadError, match=r"a sub-pixel weight is \(C\*4, C_in, k, k\)"):
        load_upsampler(checkpoint, "subpixel", 2, "up.weight")
    with pytest.raises(KernelLoadError, match=r"ConvTranspose2d weight is 4-D .*got shape \(3,\)"):
        load_upsampler(checkpoint, "transposed", 2, "up.bias")
