"""The image corpora of the robustness suite, and the check that a loader answered a file properly.

Three corpora:
- PngSuite (../shared/corpus/pngsuite, absent in a fresh clone: its tests skip);
- the files in scikit-image's `data` folder (real photographs, a multi-page TIFF, an animated GIF and a
  few files that are not images), always present because scikit-image is a test dependency;
- `GENERATED`: small files made here for what the other two lack (JPEG variants, TIFF compressions and
  layouts, float TIFFs with NaN/Inf, multi-page files, BMP depths, WebP, GIF, unusual NPY arrays), each
  also cut in half and cut by three bytes.
"""

from __future__ import annotations

import faulthandler
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import skimage
import tifffile
from PIL import Image

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image

ROOT = Path(__file__).resolve().parents[2]
PNGSUITE = ROOT / ".." / "shared" / "corpus" / "pngsuite" / "png"
PNGSUITE_FILES = sorted(PNGSUITE.glob("*.png")) if PNGSUITE.is_dir() else []
SKIMAGE_FILES = sorted(p for p in (Path(skimage.__file__).parent / "data").iterdir()
                       if p.is_file() and p.suffix not in (".py", ".pyi", ".pyc"))

HANG_SECONDS = 20
"""A file whose load takes longer than this is a hang: the run is stopped with every thread's traceback."""


def load_or_refusal(path: Path, max_pixels: int | None = None) -> np.ndarray | ImageLoadError:
    """Load `path` as the app does; return the image or the refusal, after checking either is proper.

    A loaded image is a C-contiguous uint8/uint16/float32 (H, W), RGB or RGBA array matching what
    `probe_image` promised; a refusal is one line naming the file. Any other exception propagates.
    """
    faulthandler.dump_traceback_later(HANG_SECONDS, exit=True)
    try:
        try:
            image = load_image(path) if max_pixels is None else load_image(path, max_pixels=max_pixels)
        except ImageLoadError as error:
            assert "\n" not in str(error) and error.path == str(path) and str(path) in str(error)
            return error
        info = probe_image(path)
    finally:
        faulthandler.cancel_dump_traceback_later()
    assert image.dtype in (np.uint8, np.uint16, np.float32)
    assert image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))
    assert image.flags.c_contiguous and image.size > 0
    assert (info.shape, info.dtype) == (image.shape, image.dtype.name)
    return image


def assert_quiet(stderr: str) -> None:
    """Nothing on stderr: no libpng or libjpeg warning, no cv2.error, no OpenCV log, no traceback."""
    for line in stderr.splitlines():
        assert not line.strip(), f"unexpected stderr: {line!r}"


# --------------------------------------------------------------------------------------- generated files


def _pillow(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _tiff(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def _tiff_pages(pages: list[np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tiff:
        for page in pages:
            tiff.write(page)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


_RNG = np.random.default_rng(5)
_RGB = _RNG.integers(0, 256, (21, 34, 3), dtype=np.uint8)
_RGBA = _RNG.integers(0, 256, (21, 34, 4), dtype=np.uint8)
_PHOTO = Image.fromarray(_RGB)
_FRAMES = [Image.fromarray(_RNG.integers(0, 256, (9, 11, 3), dtype=np.uint8)) for _ in range(3)]
SPECIAL_FLOATS = _RNG.random((13, 17, 3), dtype=np.float32)
SPECIAL_FLOATS[0, 0, 0], SPECIAL_FLOATS[1, 1, 1], SPECIAL_FLOATS[2, 2, 2] = np.nan, np.inf, -np.inf


@dataclass(frozen=True)
class Generated:
    """A generated file: how to make its bytes and what loading it must give (shape, dtype, frames)."""

    make: Callable[[], bytes]
    shape: tuple[int, ...]
    dtype: str = "uint8"
    frames: int = 1


GENERATED: dict[str, Generated] = {
    "grey.jpg": Generated(lambda: _pillow(_PHOTO.convert("L"), "JPEG"), (21, 34)),
    "progressive.jpg": Generated(lambda: _pillow(_PHOTO, "JPEG", progressive=True), (21, 34, 3)),
    "cmyk.jpg": Generated(lambda: _pillow(_PHOTO.convert("CMYK"), "JPEG"), (21, 34, 3)),
    "one-pixel.jpg": Generated(lambda: _pillow(Image.new("RGB", (1, 1), (200, 10, 10)), "JPEG"), (1, 1, 3)),
    "rgb16-lzw.tif": Generated(
        lambda: _tiff(_RNG.integers(0, 65536, (21, 34, 3), dtype=np.uint16), photometric="rgb",
                      compression="lzw"), (21, 34, 3), "uint16"),
    "float-nan-inf.tif": Generated(lambda: _tiff(SPECIAL_FLOATS, photometric="rgb", compression="zlib"),
                                   (13, 17, 3), "float32"),
    "tiled.tif": Generated(lambda: _tiff(_RGB[:, :, 0].copy(), tile=(16, 16)), (21, 34)),
    "planar.tif": Generated(
        lambda: _tiff(np.ascontiguousarray(_RGB.transpose(2, 0, 1)), photometric="rgb",
                      planarconfig="separate"), (21, 34, 3)),
    "jpeg-compressed.tif": Generated(lambda: _tiff(_RGB, photometric="rgb", compression="jpeg"), (21, 34, 3)),
    "three-pages.tif": Generated(
        lambda: _tiff_pages([_RNG.integers(0, 256, (7, 8), dtype=np.uint8) for _ in range(3)]), (7, 8),
        frames=3),
    "float64.tif": Generated(lambda: _tiff(_RNG.random((5, 6))), (5, 6), "float32"),
    "int16.tif": Generated(lambda: _tiff(_RNG.integers(-3000, 3000, (5, 6), dtype=np.int16)), (5, 6),
                           "float32"),
    "bilevel.tif": Generated(lambda: _pillow(_PHOTO.convert("1"), "TIFF"), (21, 34)),
    "palette.tif": Generated(lambda: _pillow(_PHOTO.convert("P"), "TIFF"), (21, 34, 3)),
    "grey-alpha.tif": Generated(
        lambda: _tiff(_RNG.integers(0, 256, (5, 6, 2), dtype=np.uint8), photometric="minisblack",
                      extrasamples=("unassalpha",), planarconfig="contig"), (5, 6, 4)),
    "1-bit.bmp": Generated(lambda: _pillow(_PHOTO.convert("1"), "BMP"), (21, 34)),
    "4-bit.bmp": Generated(lambda: _pillow(_PHOTO.quantize(16), "BMP"), (21, 34, 3)),
    "8-bit.bmp": Generated(lambda: _pillow(_PHOTO.convert("P"), "BMP"), (21, 34, 3)),
    "24-bit.bmp": Generated(lambda: _pillow(_PHOTO, "BMP"), (21, 34, 3)),
    "32-bit.bmp": Generated(lambda: _pillow(Image.fromarray(_RGBA), "BMP"), (21, 34, 3)),
    "lossy.webp": Generated(lambda: _pillow(_PHOTO, "WEBP", quality=60), (21, 34, 3)),
    "alpha.webp": Generated(lambda: _pillow(Image.fromarray(_RGBA), "WEBP", lossless=True), (21, 34, 4)),
    "animated.webp": Generated(
        lambda: _pillow(_FRAMES[0], "WEBP", save_all=True, append_images=_FRAMES[1:], lossless=True),
        (9, 11, 3), frames=3),
    "transparent.gif": Generated(lambda: _pillow(_PHOTO.convert("P"), "GIF", transparency=3), (21, 34, 3)),
    "animated.gif": Generated(  # RGB: the first frame, the one loaded, has no transparent colour
        lambda: _pillow(_FRAMES[0], "GIF", save_all=True, append_images=_FRAMES[1:]), (9, 11, 3), frames=3),
    "float64.npy": Generated(lambda: _npy(_RNG.random((4, 5))), (4, 5), "float32"),
    "bool.npy": Generated(lambda: _npy(_RNG.random((4, 5)) > 0.5), (4, 5)),
    "int32.npy": Generated(lambda: _npy(_RNG.integers(-9, 9, (4, 5), dtype=np.int32)), (4, 5), "float32"),
    "one-channel.npy": Generated(lambda: _npy(_RNG.integers(0, 9, (4, 5, 1), dtype=np.uint8)), (4, 5)),
    "two-channel.npy": Generated(lambda: _npy(_RNG.integers(0, 9, (4, 5, 2), dtype=np.uint8)), (4, 5, 4)),
    "big-endian.npy": Generated(lambda: _npy(_RNG.integers(0, 9, (4, 5), dtype=np.uint16).astype(">u2")),
                                (4, 5), "uint16"),
    "fortran-order.npy": Generated(lambda: _npy(np.asfortranarray(_RNG.integers(0, 9, (4, 5, 3), np.uint8))),
                                   (4, 5, 3)),
}

CUTS: dict[str, Callable[[bytes], bytes]] = {
    "half": lambda data: data[: len(data) // 2],
    "short": lambda data: data[:-3],
}
"""Ways a download or a copy is cut short; every cut file must be refused, except where noted."""

FIRST_FRAME_INTACT = {"three-pages.tif"}
"""Multi-page files whose cuts leave the first page whole: they load (the first page) instead."""


def write_generated(folder: Path) -> None:
    """Write every generated file, and its cut variants (`half-NAME`, `short-NAME`), into `folder`."""
    for name, generated in GENERATED.items():
        data = generated.make()
        (folder / name).write_bytes(data)
        for cut, make_cut in CUTS.items():
            (folder / f"{cut}-{name}").write_bytes(make_cut(data))
