"""What the format tests check for every generated file: it loads as expected, as its probe promised, and
each cut of it is refused with one line; and the references they compare with."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image


def loads_as(path: Path, expected: np.ndarray, last_byte: bool = True) -> None:
    """`path` loads bit-exactly as `expected`, as its probe promised, and every cut of it is refused
    (without `last_byte` when the last byte is not pixel data: a footer, an end marker, a newline)."""
    image = load_image(path)
    assert image.dtype == expected.dtype and image.shape == expected.shape
    assert np.array_equal(image, expected, equal_nan=True)
    info = probe_image(path)
    assert (info.shape, info.dtype) == (image.shape, image.dtype.name)
    assert_cuts_refused(path, last_byte)


def assert_cuts_refused(path: Path, last_byte: bool = True) -> None:
    data = path.read_bytes()
    for cut in sorted({len(data) // 2, 9} | ({len(data) - 1} if last_byte else set())):
        short = path.with_name(f"cut{cut}-{path.name}")
        short.write_bytes(data[:cut])
        with pytest.raises(ImageLoadError) as caught:
            load_image(short)
        message = str(caught.value)
        assert "\n" not in message and str(short) in message


def pillow_upright(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(ImageOps.exif_transpose(image).convert(mode))


def quiet_load(*paths: Path) -> str:
    """What a fresh process prints on stderr (file descriptor 2, C libraries included) while loading."""
    code = ("import sys\nfrom pyramid_explorer.core.io import load_image\n"
            "for name in sys.argv[1:]: load_image(name)\n")
    result = subprocess.run([sys.executable, "-c", code, *map(str, paths)], capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stderr


def netpbm(magic: bytes, width: int, height: int, maxval: int | None, body: bytes) -> bytes:
    header = magic + b"\n# a comment\n" + f"{width} {height}\n".encode()
    return header + (f"{maxval}\n".encode() if maxval is not None else b"") + body
