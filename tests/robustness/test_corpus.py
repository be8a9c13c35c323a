"""Every file of every corpus gets a proper answer: an image or a one-line refusal, quietly, in bounded time.

"Quietly": nothing reaches the process's stderr (checked at the file-descriptor level, so C libraries
count): no libpng or libjpeg warning, no `cv2.error`, no OpenCV log line, no traceback. "Bounded": a
file that takes longer than `HANG_SECONDS` stops the run with a traceback of every thread
(`faulthandler`), rather than hanging CI. All in-process, no subprocess per file.
Pixel-exactness per format is tested in tests/test_io.py and test_corpus_pngsuite.py; here it is the
contract over many files, plus the real-world photographs against Pillow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps
from robust_corpus import (
    CUTS,
    FIRST_FRAME_INTACT,
    GENERATED,
    PNGSUITE_FILES,
    SKIMAGE_FILES,
    assert_quiet,
    load_or_refusal,
    write_generated,
)

from pyramid_explorer.core.io import ImageLoadError, probe_image

NOT_IMAGES = {
    "README.txt": "holds text",
    "lbpcascade_frontalface_opencv.xml": "holds text",
    "motorcycle_disp.npz": "unknown file signature",
    "lfw_subset.npy": "unsupported channel count 25",
}


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("generated corpus")
    write_generated(folder)
    return folder


@pytest.mark.skipif(not PNGSUITE_FILES, reason="PngSuite corpus (../shared/corpus/pngsuite) is absent")
@pytest.mark.parametrize("path", PNGSUITE_FILES, ids=lambda path: path.name)
def test_pngsuite_file_is_answered_quietly(path: Path, capfd: pytest.CaptureFixture[str]):
    outcome = load_or_refusal(path)
    assert isinstance(outcome, ImageLoadError) == path.name.startswith("x")
    assert_quiet(capfd.readouterr().err)


@pytest.mark.parametrize("path", SKIMAGE_FILES, ids=lambda path: path.name)
def test_real_world_file_is_answered_quietly_and_as_pillow_sees_it(path: Path,
                                                                  capfd: pytest.CaptureFixture[str]):
    outcome = load_or_refusal(path)
    assert_quiet(capfd.readouterr().err)
    if path.name in NOT_IMAGES:
        assert isinstance(outcome, ImageLoadError) and NOT_IMAGES[path.name] in outcome.reason
        return
    assert isinstance(outcome, np.ndarray), outcome
    if path.suffix == ".tif":  # first page, as tifffile reads it (Pillow cannot read the float one)
        with tifffile.TiffFile(path) as tiff:
            page, pages = tiff.pages[0], len(tiff.pages)
            order = [page.axes.index(axis) for axis in "YXS" if axis in page.axes]
            reference = page.asarray().transpose(order)
        assert np.array_equal(outcome, reference.astype(outcome.dtype))
        assert probe_image(path).frames == pages > 1
        return
    with Image.open(path) as image:
        frames = getattr(image, "n_frames", 1)
        channels = 1 if outcome.ndim == 2 else outcome.shape[2]
        upright = ImageOps.exif_transpose(image)
        reference = np.array(upright.convert({1: "L", 3: "RGB", 4: "RGBA"}[channels]))
    assert probe_image(path).frames == frames
    pixels = outcome if outcome.dtype == np.uint8 else (outcome >> 8).astype(np.uint8)  # Pillow: 8 bits
    assert np.array_equal(pixels, reference)


@pytest.mark.parametrize("name", GENERATED)
def test_generated_file_loads_as_described(name: str, generated: Path, capfd: pytest.CaptureFixture[str]):
    outcome = load_or_refusal(generated / name)
    assert_quiet(capfd.readouterr().err)
    assert isinstance(outcome, np.ndarray), outcome
    expected = GENERATED[name]
    assert (outcome.shape, outcome.dtype.name) == (expected.shape, expected.dtype)
    assert probe_image(generated / name).frames == expected.frames


@pytest.mark.parametrize("cut", CUTS)
@pytest.mark.parametrize("name", GENERATED)
def test_cut_file_is_refused(name: str, cut: str, generated: Path, capfd: pytest.CaptureFixture[str]):
    outcome = load_or_refusal(generated / f"{cut}-{name}")
    assert_quiet(capfd.readouterr().err)
    if name in FIRST_FRAME_INTACT:
        assert isinstance(outcome, np.ndarray) and outcome.shape == GENERATED[name].shape
    else:
        assert isinstance(outcome, ImageLoadError), f"a cut {name} loaded"
        assert any(word in outcome.reason for word in ("truncated", "corrupt", "ends")), outcome.reason


def test_cut_jpeg_compressed_tiff_is_refused_not_decoded_into_garbage(generated: Path):
    """The JPEG codec fills a cut strip with plausible pixels; the loader checks the strips' extent."""
    error = load_or_refusal(generated / "half-jpeg-compressed.tif")
    assert isinstance(error, ImageLoadError)
    assert error.reason.startswith("truncated TIFF: the image data ends at byte")
