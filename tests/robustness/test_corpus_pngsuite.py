"""The loader over PngSuite (../shared/corpus/pngsuite): every PNG colour type, bit depth, size and defect.

Skipped when ../shared is absent (a fresh clone). File names encode the content: characters 5-8 are
the colour type and bit depth (0g16 = grey 16-bit), `sNN` files are N x N, and `x*` files are corrupt.
Pixel values are compared with Pillow, an independent decoder. `test_corpus.py` also runs every file
through the loader checking it answers quietly (no OpenCV error text on stderr) and without hanging.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from robust_corpus import PNGSUITE_FILES

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image

FILES = PNGSUITE_FILES
GOOD = [path for path in FILES if not path.name.startswith("x")]
BROKEN = [path for path in FILES if path.name.startswith("x")]

pytestmark = pytest.mark.skipif(not FILES, reason="PngSuite corpus (../shared/corpus/pngsuite) is absent")


def expected_channels(colour_type: int, has_transparent_colour: bool) -> int:
    """Grey, RGB, RGB from a palette, grey + alpha as RGBA, RGBA; a tRNS chunk adds alpha."""
    return {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}[colour_type] if not has_transparent_colour else 4


@pytest.mark.parametrize("path", GOOD, ids=lambda path: path.name)
def test_valid_file_loads_with_the_right_size_channels_depth_and_pixels(path: Path):
    image = load_image(path)
    colour_type, depth = int(path.name[4]), int(path.name[6:8])
    with Image.open(path) as reference:
        width, height = reference.size
        transparent = reference.info.get("transparency")
        pillow_raw = np.array(reference)
        pillow_8bit = (
            None
            if reference.mode in ("I", "I;16")
            else reference.convert(
                {1: "L", 3: "RGB", 4: "RGBA"}[expected_channels(colour_type, transparent is not None)]
            )
        )
        pillow_8bit = None if pillow_8bit is None else np.array(pillow_8bit)
    if path.name.startswith("s") and path.name[1:3].isdigit():
        assert (width, height) == (int(path.name[1:3]),) * 2
    channels = expected_channels(colour_type, transparent is not None)
    assert image.shape == ((height, width) if channels == 1 else (height, width, channels))
    assert image.dtype == (np.uint16 if depth == 16 else np.uint8)
    info = probe_image(path)
    assert (info.shape, info.dtype, info.format) == (image.shape, image.dtype.name, "PNG")

    if colour_type == 0 and transparent is not None:
        # grey + transparent colour: Pillow compares its widened 8-bit values with the raw key, so build the
        # reference alpha from the raw samples
        widen = 255 // ((1 << depth) - 1) if depth < 8 else 1
        raw = pillow_raw.astype(np.int64) // widen
        top = np.iinfo(image.dtype).max
        assert np.array_equal(image[..., 3], np.where(raw == transparent, 0, top))
        assert np.array_equal(image[..., 0], pillow_raw.astype(image.dtype))
    elif pillow_8bit is None:  # 16-bit grey, which Pillow keeps at 16 bits
        assert np.array_equal(image, pillow_raw.astype(np.uint16))
    else:  # Pillow reduces 16-bit colour to its high byte
        assert np.array_equal(image if depth != 16 else (image >> 8).astype(np.uint8), pillow_8bit)


@pytest.mark.parametrize("path", BROKEN, ids=lambda path: path.name)
def test_corrupt_file_is_refused(path: Path):
    with pytest.raises(ImageLoadError) as caught:
        load_image(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_corpus_is_complete():
    assert len(FILES) == 175 and len(BROKEN) == 14
