"""Image files in and out: any common raster format in as RGB(A) arrays; PNG, TIFF or NPY out.

This module is the public face of the loader (`load_image`, `probe_image`, `supported_suffixes`) and
holds the writers. Loading reads the file's header first (`core.imageheader`), without decoding pixels,
so an image above the pixel limit (a decompression bomb) is refused before any pixel memory is
allocated; `probe_image` returns that header information (size, channels, dtype, frame count) for the
command line and memory-budget checks. Pixels are then decoded (`core.imagedecode`, `core.tiffread`,
`core.bmpread`) by the library that does it best: OpenCV for PNG, imagecodecs' libjpeg-turbo for JPEG,
tifffile for TIFF (Pillow's libtiff for old-style JPEG TIFFs), numpy for NPY and for BMPs with bit-field
masks (Pillow knows a few mask layouts only, OpenCV ignores the masks) and Pillow for everything else
(BMP, GIF, WebP, Netpbm, TGA, ICO, PSD, SGI, QOI, JPEG 2000, AVIF, and HEIC with the `heif` extra).

Decoding rules, whichever library decodes:
- Samples come back as uint8 (8 bits and fewer; 1-bit as 0/255, 2-7-bit widened to 0..255), uint16 or
  float32; other sample types are converted by value (float32 holds integers exactly up to 2**24).
- BMP bit fields (16 and 32 bits per pixel, any masks): a field of n bits holding v becomes
  round(v * M / (2^n - 1)), M = 255 when no field is wider than 8 bits, else 65535 (uint16: an
  11-11-10 BMP keeps its precision); an alpha mask gives RGBA.
- Grey + alpha becomes RGBA; palettes are looked up, to RGBA when the palette (or a TIFF's extra alpha
  sample beside the index) has transparency; a PNG's transparent grey or RGB value becomes an alpha channel.
- Premultiplied alpha (TIFF ExtraSamples = 1, Pillow's La/RGBa) is un-premultiplied, c * max // alpha
  as Pillow does; extra samples of unspecified meaning are dropped, never taken for alpha.
- CMYK becomes RGB as R = (1 - C)(1 - K) (Pillow's conversion); CIELAB TIFFs become sRGB (OpenCV, D65);
  YCbCr and HSV become RGB.
- Orientation (1-8) comes from EXIF (JPEG, PNG eXIf, WebP, TIFF tag 274), an ImageMagick "Raw profile
  type exif" text chunk or XMP's tiff:Orientation, as `PIL.ImageOps.exif_transpose` reads them, as far
  as they precede the pixel data; it is applied, so arrays are upright.
- Multi-frame files load their first frame: a TIFF's first page, a GIF's or WebP's first frame, and of
  an animated PNG the default image (the IDAT image, Pillow's frame 0, as libpng, OpenCV and every
  non-animating decoder return it), whether or not the animation shows it: one rule, whatever acTL
  declares. (Browsers differ when the default image is hidden from the animation: they show the first
  animation frame.) `ImageInfo.frames` counts the frames as Pillow does, a hidden default image included.
- Netpbm samples with a maximum value other than 255 or 65535 are scaled to the full range, as Pillow
  scales them (9-16-bit PGM and PPM, binary or plain, come back as uint16); PFM (grey or colour) floats
  keep their stored values, bottom-up rows turned, the scale's magnitude not applied (OpenCV divides
  by it).

Every failure to load is an `ImageLoadError` and every failure to save an `ImageSaveError`, each one line
naming the file and the reason. Saving is atomic (`atomic_write`): a failed save never leaves a partial file
and never damages the file it would have replaced.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np

from pyramid_explorer.core import imageheader
from pyramid_explorer.core.bmpread import is_bmp, probe_bmp
from pyramid_explorer.core.imagedecode import decode
from pyramid_explorer.core.imageheader import Header, first_line, supported_formats, supported_suffixes
from pyramid_explorer.core.imageheader import Refused as _Refused
from pyramid_explorer.core.tiff import write_tiff
from pyramid_explorer.core.tiffread import probe_tiff

__all__ = [
    "DEFAULT_MAX_PIXELS", "MAX_SIDE", "SAVE_EXTENSIONS", "ImageInfo", "ImageLoadError", "ImageSaveError",
    "atomic_write", "load_image", "probe_image", "save_image", "supported_formats", "supported_suffixes",
]  # fmt: skip

DEFAULT_MAX_PIXELS = 200_000_000
# One limit for every format keeps the rule simple (OpenCV's decoders refuse larger sides anyway).
MAX_SIDE = 1 << 20
SAVE_EXTENSIONS = (".png", ".tif", ".tiff", ".npy")


class _FileError(Exception):
    """A one-line error about one file; `path` and `reason` are also kept apart for callers."""

    verb = "use"

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fsdecode(path)
        self.reason = reason
        super().__init__(" ".join(f"cannot {self.verb} '{self.path}': {reason}".splitlines()))

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        return type(self), (self.path, self.reason)


class ImageLoadError(_FileError, ValueError):
    """An image file cannot be loaded: missing, unreadable, not an image, corrupt, unsupported or too big."""

    verb = "load"


class ImageSaveError(_FileError):
    """An image could not be saved; the target file, if it existed, is unchanged."""

    verb = "save"


@dataclass(frozen=True)
class ImageInfo:
    """What `load_image` returns for a file, read from its header without decoding pixels.

    `width`, `height`, `channels` (1, 3 or 4) and `dtype` ("uint8", "uint16" or "float32") describe the
    returned array, with the EXIF `orientation` (1-8, 1 = as stored) already applied. `frames` counts the
    pages of a TIFF or the frames of an animated GIF, PNG or WebP; only the first is loaded.
    """

    format: str
    width: int
    height: int
    channels: int
    dtype: str
    frames: int = 1
    orientation: int = 1

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the loaded array: (height, width) for grey, else (height, width, channels)."""
        return (self.height, self.width) if self.channels == 1 else (self.height, self.width, self.channels)

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def nbytes(self) -> int:
        """Memory the loaded array takes."""
        return self.pixels * self.channels * np.dtype(self.dtype).itemsize


def _info(header: Header) -> ImageInfo:
    turned = header.orientation >= 5
    return ImageInfo(
        format=header.format,
        width=header.height if turned else header.width,
        height=header.width if turned else header.height,
        channels=header.channels,
        dtype=header.dtype.name,
        frames=header.frames,
        orientation=header.orientation,
    )


# --------------------------------------------------------------------------------------------- loading


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as a C-contiguous (H, W), (H, W, 3) RGB or (H, W, 4) RGBA array, upright.

    Formats are recognised by content, not by extension. Samples come back as uint8 (8-bit and lower),
    uint16 (16-bit) or float32 (float TIFF/NPY; float64 and float16 are converted, as are signed and 32-bit
    integer samples, exact up to 2**24); 1-bit images become 0/255. Grey + alpha becomes RGBA, and so does
    a grey PNG with a transparent colour; palette images become RGB(A). Images with more than `max_pixels`
    pixels, or a side above `MAX_SIDE`, are refused from their header. Raises `ImageLoadError` for any
    failure.
    """
    if max_pixels < 1:
        raise ValueError(f"max_pixels must be positive, got {max_pixels}")
    name = os.fsdecode(path)
    header: Header | None = None
    try:
        with _open_for_reading(name) as fh:
            header = _probe(fh)
            _check_size(header, max_pixels)
            fh.seek(0)
            image = decode(fh, header)
        if image.shape[:2] != (header.height, header.width):
            raise _Refused(
                f"corrupt {header.format}: the header says {header.width} x {header.height} pixels but the "
                f"data holds {image.shape[1]} x {image.shape[0]}"
            )
        return np.ascontiguousarray(_apply_orientation(image, header.orientation))
    except _Refused as refusal:
        raise ImageLoadError(name, str(refusal)) from None
    except MemoryError:
        size = f" {header.width} x {header.height} pixels" if header else ""
        raise ImageLoadError(name, f"not enough memory to decode{size}") from None
    except OSError as error:
        raise ImageLoadError(name, _os_reason(error)) from None


def probe_image(path: str | os.PathLike[str]) -> ImageInfo:
    """Describe the array `load_image` would return, from the file's header only (fast, no pixel decoding).

    Raises `ImageLoadError` for the same file and header problems as `load_image`; damage in the pixel data
    and the pixel limit are only checked when loading.
    """
    name = os.fsdecode(path)
    try:
        with _open_for_reading(name) as fh:
            return _info(_probe(fh))
    except _Refused as refusal:
        raise ImageLoadError(name, str(refusal)) from None
    except OSError as error:
        raise ImageLoadError(name, _os_reason(error)) from None


def _os_reason(error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return "no such file"
    if isinstance(error, PermissionError):
        return "permission denied"
    if isinstance(error, IsADirectoryError):
        return "it is a folder"
    return error.strerror or str(error)


def _open_for_reading(name: str) -> BinaryIO:
    """Open a regular, non-empty file (checked first: opening a FIFO would block)."""
    status = os.stat(name)
    if stat.S_ISDIR(status.st_mode):
        raise _Refused("it is a folder, not an image file")
    if not stat.S_ISREG(status.st_mode):
        raise _Refused("not a regular file")
    if status.st_size == 0:
        raise _Refused("the file is empty (0 bytes)")
    return open(name, "rb")


def _probe(fh: BinaryIO) -> Header:
    head = fh.read(16)
    fh.seek(0)
    if imageheader.is_npy(head):
        header = imageheader.probe_npy(fh)
    elif imageheader.is_tiff(head):
        header = probe_tiff(fh)
    elif imageheader.is_webp(head):
        header = imageheader.probe_webp(fh)
    elif imageheader.is_colour_pfm(head):
        header = imageheader.probe_colour_pfm(fh)
    elif is_bmp(head):
        header = probe_bmp(fh)
    else:
        header = imageheader.probe_with_pillow(fh)
    if header.width < 1 or header.height < 1:
        raise _Refused(f"corrupt {header.format} header: image size {header.width} x {header.height}")
    return header


def _check_size(header: Header, max_pixels: int) -> None:
    w, h = header.width, header.height
    if max(w, h) > MAX_SIDE:
        raise _Refused(f"image is {w} x {h} pixels; sides above {MAX_SIDE:,} pixels are not supported")
    if w * h > max_pixels:
        raise _Refused(f"image is {w} x {h} = {w * h:,} pixels, above the limit of {max_pixels:,} pixels")


def _apply_orientation(image: np.ndarray, orientation: int) -> np.ndarray:
    """Turn pixels stored with an EXIF/TIFF orientation upright (1 = stored upright); returns views."""
    transpose, flip_rows, flip_cols = {
        1: (False, False, False),
        2: (False, False, True),
        3: (False, True, True),
        4: (False, True, False),
        5: (True, False, False),
        6: (True, False, True),
        7: (True, True, True),
        8: (True, True, False),
    }[orientation]
    if transpose:
        image = image.swapaxes(0, 1)
    if flip_rows:
        image = image[::-1]
    if flip_cols:
        image = image[:, ::-1]
    return image


# --------------------------------------------------------------------------------------------- saving


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str]) -> Iterator[BinaryIO]:
    """Write a file all-or-nothing: yields a binary file beside `path`, renamed over `path` on success.

    The temporary file is flushed to disk before the rename. On any error (in the with-block too) it is
    removed and an existing file at `path` is left untouched; OSErrors are re-raised as `ImageSaveError`.
    Whether an existing file may be replaced is the caller's decision. The new file gets the permissions
    of the file it replaces, or the usual ones (0666 less the umask).
    """
    name = os.fsdecode(path)
    folder = os.path.dirname(os.path.abspath(name))
    if os.path.isdir(name):
        raise ImageSaveError(name, "it is a folder")
    if not os.path.isdir(folder):
        raise ImageSaveError(name, f"the folder '{folder}' does not exist")
    try:
        temporary, fh = _create_temporary(folder, os.path.basename(name))
    except OSError as error:
        raise ImageSaveError(name, f"cannot write in '{folder}': {_os_reason(error)}") from None
    try:
        with fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(temporary, stat.S_IMODE(os.stat(name).st_mode))
        os.replace(temporary, name)
    except BaseException as error:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(error, OSError):
            raise ImageSaveError(name, _os_reason(error)) from error
        raise
    _sync_folder(folder)


def _create_temporary(folder: str, basename: str) -> tuple[str, BinaryIO]:
    """A new hidden file in `folder`, with the default permissions (unlike tempfile's 0600)."""
    while True:
        temporary = os.path.join(folder, f".{basename[:100]}.{secrets.token_hex(4)}.tmp")
        with contextlib.suppress(FileExistsError):
            return temporary, open(temporary, "xb")


def _sync_folder(folder: str) -> None:
    """Make the rename durable (POSIX); best effort, the file itself is already complete."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def save_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an (H, W), RGB or RGBA array to a file chosen by extension, atomically.

    `.png`: uint8 or uint16 (floats and signed samples are refused rather than silently clipped).
    `.tif`/`.tiff`: uint8, uint16 or float32, bit-exact (uncompressed, via tifffile).
    `.npy`: any numeric array, bit-exact. Raises `ImageSaveError` with a one-line reason on any failure;
    an existing file is only replaced by a complete new one.
    """
    name = os.fsdecode(path)
    extension = os.path.splitext(name)[1].lower()
    if extension not in _WRITERS:
        raise ImageSaveError(
            name, f"unsupported file extension '{extension}' (use {', '.join(SAVE_EXTENSIONS)})"
        )
    if not isinstance(image, np.ndarray):
        raise TypeError(f"save_image needs a numpy array, got {type(image).__name__}")
    try:
        write = _WRITERS[extension](image)
        with atomic_write(name) as fh:
            write(fh)
    except _Refused as refusal:
        raise ImageSaveError(name, str(refusal)) from None


_Writer = Callable[[BinaryIO], None]


def _savable_image(image: np.ndarray, fmt: str, dtypes: tuple[type, ...]) -> np.ndarray:
    """Check an image for a raster format: (H, W) or (H, W, 1/3/4), non-empty, one of `dtypes`."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if not image.dtype.isnative:
        image = image.astype(image.dtype.newbyteorder("="))
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (3, 4))):
        raise _Refused(f"{fmt} needs an (H, W), RGB or RGBA image, got shape {image.shape}")
    if image.size == 0:
        raise _Refused(f"the image is empty (shape {image.shape})")
    if not any(image.dtype == dtype for dtype in dtypes):
        names = ", ".join(np.dtype(dtype).name for dtype in dtypes)
        raise _Refused(f"{fmt} cannot hold {image.dtype} samples exactly (it takes {names})")
    return image


def _png_writer(image: np.ndarray) -> _Writer:
    image = _savable_image(image, "PNG", (np.uint8, np.uint16))
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)

    def write(fh: BinaryIO) -> None:
        try:
            ok, encoded = cv2.imencode(".png", image)
        except cv2.error as error:
            raise _Refused(f"the PNG encoder failed: {first_line(error)}") from None
        if not ok:
            raise _Refused("the PNG encoder failed")
        fh.write(encoded.tobytes())

    return write


def _tiff_writer(image: np.ndarray) -> _Writer:
    image = _savable_image(image, "TIFF", (np.uint8, np.uint16, np.float32))

    def write(fh: BinaryIO) -> None:
        try:
            write_tiff(fh, image)
        except OSError:
            raise
        except Exception as error:  # any failure inside the encoder library
            raise _Refused(f"the TIFF writer failed: {first_line(error)}") from None

    return write


def _npy_writer(image: np.ndarray) -> _Writer:
    if image.dtype.hasobject:
        raise _Refused("NPY files here hold numbers only, not Python objects")

    def write(fh: BinaryIO) -> None:
        np.save(fh, image, allow_pickle=False)

    return write


_WRITERS: dict[str, Callable[[np.ndarray], _Writer]] = {
    ".png": _png_writer,
    ".tif": _tiff_writer,
    ".tiff": _tiff_writer,
    ".npy": _npy_writer,
}
