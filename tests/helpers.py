"""Test images (random and structured, every supported dtype and channel count, odd sizes), and what the
engine says each exported file holds, with an independent reader for written files; the command line run
as a fresh process and interrupted."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import tifffile
from PIL import Image, ImageOps

from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid, reconstruct, residual
from pyramid_explorer.core.upsampling import MODES, max_pool_with_indices, upsample

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONIOENCODING": "utf-8"}
"""Where, and with what environment, the command line runs as a fresh process."""
DTYPES = (np.uint8, np.uint16, np.float32)
CHANNELS = (None, 3, 4)  # None: grey (H, W)
ODD_SHAPES = ((1, 1), (1, 9), (9, 1), (3, 5), (2, 2), (17, 31), (153, 101))


def random_image(shape: tuple[int, int], dtype: type = np.uint8, channels: int | None = None,
                 seed: int = 0) -> np.ndarray:
    """Uniform noise over the dtype's full range (floats in [0, 1]): the hardest case for exactness."""
    rng = np.random.default_rng(seed)
    full = shape if channels is None else (*shape, channels)
    if np.dtype(dtype).kind == "f":
        return rng.random(full, dtype=np.float32)
    return rng.integers(0, np.iinfo(dtype).max, full, endpoint=True).astype(dtype)


def natural_image(dtype: type = np.uint8) -> np.ndarray:
    """A real photograph (scikit-image's astronaut, public domain), cropped to an odd size."""
    from skimage import data

    image = data.astronaut()[:301, :257]
    if dtype == np.uint16:
        return image.astype(np.uint16) * 257
    if dtype == np.float32:
        return image.astype(np.float32) / 255
    return image


def dtype_range(dtype: type) -> float:
    return 1.0 if np.dtype(dtype).kind == "f" else float(np.iinfo(dtype).max)


def read_back(path: Path) -> np.ndarray:
    """A written file as an RGB(A) array, through an independent reader for each format."""
    if path.suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if path.suffix == ".png":
        data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if data.ndim == 3:
            data = cv2.cvtColor(data, cv2.COLOR_BGR2RGB if data.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)
        return data
    return tifffile.imread(path)


def reference_arrays(image: np.ndarray, storage: str = "float32") -> dict[tuple, np.ndarray]:
    """What the engine says each (kind, level, mode) is, built here from the public engine API."""
    gauss = gaussian_pyramid(image)
    lap = laplacian_pyramid(image, storage=storage)
    want: dict[tuple, np.ndarray] = {}
    for i, level in enumerate(gauss):
        want["gaussian", i, None] = level
        want["laplacian", i, None] = lap[i]
    want["residual", 0, None] = residual(image, reconstruct(lap))
    for i, mode in itertools.product(range(len(gauss) - 1), MODES):
        size = (gauss[i].shape[1], gauss[i].shape[0])
        if mode == "unpool":
            if min(gauss[i].shape[:2]) >= 2:
                pooled, indices = max_pool_with_indices(gauss[i], 2)
                want["upsampled", i, mode] = upsample(pooled, mode, 2, size=size, indices=indices)
        else:
            want["upsampled", i, mode] = upsample(gauss[i + 1], mode, 2, size=size)
    return want


def hand_mosaic(levels: list[np.ndarray]) -> np.ndarray:
    """The classic layout written out directly: level 0 left, the rest stacked on its right."""
    h0, w0 = levels[0].shape[:2]
    height = max(h0, sum(level.shape[0] for level in levels[1:]))
    width = w0 + (levels[1].shape[1] if len(levels) > 1 else 0)
    out = np.zeros((height, width, *levels[0].shape[2:]), levels[0].dtype)
    out[:h0, :w0] = levels[0]
    y = 0
    for level in levels[1:]:
        out[y : y + level.shape[0], w0 : w0 + level.shape[1]] = level
        y += level.shape[0]
    return out


def turned_png(folder: Path, orientation: int) -> tuple[Path, np.ndarray]:
    """A PNG whose stored pixels are not upright, with the EXIF orientation that says how to turn them;
    returns the path and the upright pixels as Pillow sees them."""
    stored = np.random.default_rng(orientation).integers(0, 256, (5, 8, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = folder / f"turned-{orientation}.png"
    Image.fromarray(stored).save(path, exif=exif)
    with Image.open(path) as image:
        upright = np.array(ImageOps.exif_transpose(image))
    return path, upright


def interrupt_when(command: list[str], started: Callable[[], bool]) -> None:
    """Run `python -m pyramid_explorer *command`, press Ctrl+C (SIGINT) as soon as `started()` is true, and
    check that it stops as an interrupted command should: exit code 130, "interrupted", no traceback."""
    process = subprocess.Popen([sys.executable, "-m", "pyramid_explorer", *command], cwd=ROOT, env=ENV,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not started():
        assert process.poll() is None and time.monotonic() < deadline, "the export never started"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
