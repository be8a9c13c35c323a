"""Mutated image files never crash the loader: each either loads as a valid image or is refused in one line.

A bounded, deterministic hypothesis run over byte flips, cuts and insertions in small valid files of
every loadable format; the pixel limit is lowered so a mutated header cannot make a test slow.
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image


def _saved(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, **options)
    return buffer.getvalue()


def seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(11)
    rgb = Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8))
    turned = Image.Exif()
    turned[0x0112] = 6
    files = {}
    for name, options in {
        "png": {"format": "PNG"},
        "jpeg": {"format": "JPEG", "exif": turned},
        "bmp": {"format": "BMP"},
        "webp": {"format": "WEBP", "lossless": True},
        "gif": {"format": "GIF"},
    }.items():
        files[name] = _saved(rgb, **options)
    files["webp-lossy"] = _saved(rgb, format="WEBP", quality=50)
    files["tga"] = _saved(rgb, format="TGA", compression="tga_rle")
    files["apng"] = _saved(rgb, format="PNG", save_all=True, append_images=[rgb.transpose(0)],
                           default_image=True)
    files["pfm"] = b"PF\n3 2\n-1.0\n" + rng.random(18, dtype=np.float32).tobytes()
    files["pgm16"] = b"P5\n6 5\n65535\n" + rng.integers(0, 65536, 30, dtype=np.uint16).astype(">u2").tobytes()
    files["ppm16"] = b"P6\n3 2\n1000\n" + rng.integers(0, 1001, 18, dtype=np.uint16).astype(">u2").tobytes()
    files["png-grey-key"] = _saved(rgb.convert("L"), format="PNG", transparency=7)
    files["tiff-palette"] = _saved(rgb.convert("P"), format="TIFF")
    files["png16"] = cv2.imencode(".png", rng.integers(0, 65536, (5, 6, 4), dtype=np.uint16))[1].tobytes()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rng.random((7, 5, 3), dtype=np.float32), photometric="rgb", compression="zlib")
    files["tiff"] = buffer.getvalue()
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, rng.integers(0, 256, (4, 5, 4), dtype=np.uint8), photometric="rgb",
                     extrasamples=["assocalpha"])
    files["tiff-premultiplied"] = buffer.getvalue()
    buffer = io.BytesIO()
    np.save(buffer, rng.integers(0, 65536, (6, 4), dtype=np.uint16))
    files["npy"] = buffer.getvalue()
    return files


SEEDS = seeds()


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "set", "cut", "insert"]))
        at = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "set" and data:
            data[at] = draw(st.sampled_from([0x00, 0xFF, 0x7F, 0x80]))
        elif kind == "cut":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
    return bytes(data)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzzed.img"


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=mutated())
def test_mutated_files_load_or_are_refused(scratch: Path, data: bytes):
    scratch.write_bytes(data)
    try:
        image = load_image(scratch, max_pixels=100_000)
    except ImageLoadError as error:
        assert "\n" not in str(error) and str(scratch) in str(error)
    else:
        assert image.dtype in (np.uint8, np.uint16, np.float32)
        assert image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))
        assert image.flags.c_contiguous and image.size > 0
        info = probe_image(scratch)
        assert (info.height, info.width) == image.shape[:2]
