"""What an image file holds, read from its header without decoding pixels (the probing half of `core.io`).

Every format except TIFF and NPY is identified and its header read by Pillow (`Image.open` reads the
header only); TIFF headers are read by tifffile (`core.tiffread`), NPY headers by numpy. The result,
a `Header`, says what `load_image` will return (size, channels, dtype, frames, orientation) and which
decoder will produce it, so the size limits are checked before any pixel memory exists.

Pillow's own bomb check (`Image.MAX_IMAGE_PIXELS`, a process-wide 89-megapixel default with a warning
above it and `DecompressionBombError` above twice that) is switched off here: it would warn or refuse
below this loader's 200-megapixel limit, and the loader's own per-call limits (`max_pixels` and the
side limit) are applied to the header before any decoder runs.
"""

from __future__ import annotations

import contextlib
import re
import struct
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = None

with contextlib.suppress(ImportError):  # the optional `heif` extra: HEIC/HEIF through Pillow
    import pillow_heif

    pillow_heif.register_heif_opener()

HEIF_EXTRA = "pip install 'pyramid-explorer[heif]'"
# Formats people try to open that no decoder here reads, named in the refusal.
_UNSUPPORTED_SIGNATURES = {b"P7\n": "PAM (Netpbm)", b"v/1\x01": "OpenEXR", b"\xff\x0a": "JPEG XL",
                           b"\0\0\0\x0cJXL ": "JPEG XL", b"%PDF": "PDF"}
_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


class Refused(Exception):
    """Why a file cannot be read; `core.io` adds the path and raises `ImageLoadError`."""


@dataclass(frozen=True)
class Header:
    """A file's image as stored (sizes before orientation) and the decoder that returns it.

    `decoder` is "png" (OpenCV, single-image PNG), "jpeg" (imagecodecs' libjpeg-turbo, grey or RGB
    JPEG), "ppm16" (OpenCV, binary or plain PPM with 9-16-bit samples), "pfm" (numpy, colour PFM),
    "bitfields" (numpy, a BMP with bit-field masks, `core.bmpread`), "pillow", "tiff" (tifffile) or
    "npy".
    `grey_key` is a PNG grey + tRNS file's transparent grey value, widened to 8 bits as the decoder
    widens 1/2/4-bit samples.
    """

    format: str
    width: int
    height: int
    channels: int
    dtype: np.dtype
    decoder: str
    frames: int = 1
    orientation: int = 1
    grey_key: int | None = None


def first_line(error: BaseException) -> str:
    """A short message for an exception from a library (cv2.error carries it in `err`)."""
    text = getattr(error, "err", None) or str(error) or type(error).__name__
    return (text.strip().splitlines() or [type(error).__name__])[0]


# ------------------------------------------------------------------------------ the returned samples

_CHANNELS_RETURNED = {1: 1, 2: 4, 3: 3, 4: 4}  # grey + alpha comes back as RGBA


def channels_returned(count: int) -> int:
    """Channels returned for `count` stored ones: grey 1, grey + alpha 4 (as RGBA), RGB 3, RGBA 4."""
    if count not in _CHANNELS_RETURNED:
        raise Refused(f"unsupported channel count {count} (grey, grey + alpha, RGB and RGBA are supported)")
    return _CHANNELS_RETURNED[count]


def returned_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype samples of `dtype` are returned in: uint8, uint16 or float32."""
    if dtype.kind == "b":
        return np.dtype(np.uint8)
    if (dtype.kind, dtype.itemsize) in (("u", 1), ("u", 2), ("f", 4)):
        return np.dtype(f"{dtype.kind}{dtype.itemsize}")
    if dtype.kind in "iuf":
        return np.dtype(np.float32)
    raise Refused(f"unsupported sample type {dtype} (integer and floating-point samples are supported)")


def standard_dtype(samples: np.ndarray) -> np.ndarray:
    """Samples in the returned dtype: bool to 0/255, other numbers by value (overflow gives inf)."""
    if samples.dtype.kind == "b":
        return samples.view(np.uint8) * np.uint8(255)
    with np.errstate(over="ignore"):
        return samples.astype(returned_dtype(samples.dtype), copy=False)


# ------------------------------------------------------------------------------------- Pillow formats

# Pillow mode -> (channels, dtype) returned. Premultiplied modes (La, RGBa) are un-premultiplied, the
# colour spaces CMYK, YCbCr and HSV converted to RGB; "I" (32-bit integer) becomes float32.
_PILLOW_MODES: dict[str, tuple[int, str]] = {
    "1": (1, "uint8"), "L": (1, "uint8"), "P": (3, "uint8"), "PA": (4, "uint8"), "LA": (4, "uint8"),
    "La": (4, "uint8"), "RGB": (3, "uint8"), "RGBA": (4, "uint8"), "RGBa": (4, "uint8"),
    "RGBX": (3, "uint8"), "CMYK": (3, "uint8"), "YCbCr": (3, "uint8"), "HSV": (3, "uint8"),
    "I;16": (1, "uint16"), "I;16L": (1, "uint16"), "I;16B": (1, "uint16"),
    "I;16N": (1, "uint16"), "I": (1, "float32"), "F": (1, "float32"),
}  # fmt: skip
_HEAD_BYTES = 32
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}  # colour type -> channels (palette as RGB)


def probe_with_pillow(fh: BinaryIO) -> Header:
    """The header of any format Pillow reads; PNG and JPEG are then decoded by faster libraries."""
    head = fh.read(_HEAD_BYTES)
    fh.seek(0)
    with _open_with_pillow(fh, head) as image:
        mode, fmt = image.mode, _format_name(image.format or "")
        if fmt in _NOT_RASTER_IMAGES:
            raise Refused(f"unsupported format {fmt}; supported formats: {', '.join(supported_formats())}")
        if mode not in _PILLOW_MODES:
            raise Refused(f"unsupported {fmt}: pixel mode {mode}")
        channels, dtype = _PILLOW_MODES[mode]
        transparent = "transparency" in image.info or (
            mode == "P" and image.palette is not None and image.palette.mode == "RGBA"
        )
        if transparent and mode in ("L", "P", "RGB", "I;16"):
            channels = 4
        if fmt == "Netpbm" and mode == "I":  # Pillow scales 9-16-bit PGM samples to 0..65535
            dtype = "uint16"
        header = Header(fmt, image.width, image.height, channels, np.dtype(dtype), "pillow",
                        frames=_frames(image, fmt), orientation=_orientation(image))
        if fmt == "PNG" and "default_image" not in image.info:  # not an APNG (Pillow decodes those)
            depth, colour = head[24], head[25]
            channels = 4 if transparent else _PNG_CHANNELS[colour]
            key = image.info.get("transparency") if colour == 0 else None
            widen = 255 // ((1 << depth) - 1) if depth < 8 else 1
            return replace(header, decoder="png", channels=channels,
                           dtype=np.dtype(np.uint16 if depth == 16 else np.uint8),
                           grey_key=None if key is None else key * widen)
        if fmt in ("JPEG", "MPO") and mode in ("L", "RGB"):
            return replace(header, decoder="jpeg")
        if fmt == "Netpbm" and mode == "RGB" and ppm_maxval(image) > 255:  # Pillow would reduce to 8 bits
            return replace(header, decoder="ppm16", dtype=np.dtype(np.uint16))
        return header


def ppm_maxval(image: ImageFile.ImageFile) -> int:
    """The maximum sample value of a Netpbm file Pillow opened (255 when Pillow does not say)."""
    tile = image.tile[0] if image.tile else None
    if (tile is not None and tile.codec_name in ("ppm", "ppm_plain") and isinstance(tile.args, tuple)
            and len(tile.args) == 2):
        return int(tile.args[1])
    return 255


PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError, struct.error)
"""What Pillow's plugins raise on damaged files (Image.open wraps most of them in UnidentifiedImageError)."""


_QUIET = threading.RLock()


@contextlib.contextmanager
def quiet_pillow() -> Iterator[None]:
    """Pillow warns about damaged metadata it then ignores (EXIF blocks, text chunks); so does the loader.

    Python's warning filters are process-wide, and `catch_warnings` blocks that overlap in two threads
    restore each other's filters out of order (leaving "ignore" installed for good); the lock keeps the
    loader's own blocks from overlapping, at the price of one Pillow call at a time.
    """
    with _QUIET, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _frames(image: Image.Image, fmt: str) -> int:
    """Pillow's frame count (for a GIF it walks every frame's blocks, so a cut file shows here)."""
    try:
        with quiet_pillow():
            return getattr(image, "n_frames", 1)
    except PILLOW_ERRORS as error:
        reason = first_line(error)
        raise Refused(f"truncated or corrupt {fmt}: the frames cannot be counted ({reason})") from None


def pillow_open(fh: BinaryIO) -> ImageFile.ImageFile:
    """Pillow's image of `fh`, header read (the one place the loader calls `Image.open`, for reading)."""
    with quiet_pillow():
        return Image.open(fh, mode="r")


def _open_with_pillow(fh: BinaryIO, head: bytes) -> ImageFile.ImageFile:
    try:
        return pillow_open(fh)
    except UnidentifiedImageError:
        pass
    except PILLOW_ERRORS as error:
        raise Refused(_damaged(_format_name(_recognising_format(head) or "image"), error, head)) from None
    raise Refused(_unrecognised(fh, head))


def _damaged(fmt: str, error: BaseException, head: bytes) -> str:
    """A damaged header's reason; a file that ends within the bytes every header needs is truncated."""
    truncated = _sounds_truncated(error) or len(head) < _HEAD_BYTES
    return f"{'truncated' if truncated else 'corrupt'} {fmt}: {first_line(error)}"


def _unrecognised(fh: BinaryIO, head: bytes) -> str:
    """Why no decoder took the file: a damaged header of a format Pillow knows, HEIC without the extra,
    or not an image at all."""
    fmt = _recognising_format(head)
    if fmt is not None:  # Pillow wraps the plugin's reason away: ask the plugin itself
        factory = Image.OPEN[fmt][0]
        fh.seek(0)
        try:
            with quiet_pillow():
                factory(fh, "").close()
        except PILLOW_ERRORS as error:
            return _damaged(_format_name(fmt), error, head)
        return f"unreadable {_format_name(fmt)} header"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return f"a HEIC/HEIF image; HEIC support is an optional extra: {HEIF_EXTRA}"
    for signature, name in _UNSUPPORTED_SIGNATURES.items():
        if head.startswith(signature):
            return f"{name} files are not supported; supported formats: {', '.join(supported_formats())}"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "an AVIF image this Pillow build cannot decode"
    text = all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head)
    what = "the file holds text" if text else f"unknown file signature {head[:8].hex(' ')}"
    return f"not an image ({what}); supported formats: {', '.join(supported_formats())}"


def _recognising_format(head: bytes) -> str | None:
    """The Pillow format whose signature test accepts `head`, if any."""
    Image.init()
    for fmt in Image.ID:
        accept = Image.OPEN[fmt][1]
        with contextlib.suppress(*PILLOW_ERRORS):  # some tests read past a very short file's end
            if accept is not None and accept(head) is True:
                return fmt
    return None


def _sounds_truncated(error: BaseException) -> bool:
    text = str(error).lower()
    words = ("truncated", "premature", "short", "incomplete", "chunk b''")  # chunk b'': PNG ends in a header
    return isinstance(error, EOFError) or any(word in text for word in words)


def _format_name(pillow_format: str) -> str:
    return {"WEBP": "WebP", "JPEG2000": "JPEG 2000", "PPM": "Netpbm"}.get(pillow_format, pillow_format)


_ORIENTATION_TAG = 0x0112


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation (1-8) as `ImageOps.exif_transpose` finds it: EXIF, an ImageMagick raw-profile
    text chunk, or XMP, as far as the header holds them (`Image.getexif` of the base class: PNG's own
    override would decode the pixels to look for chunks after them)."""
    return _orientation_of(lambda: Image.Image.getexif(image))


def _exif_orientation(exif: bytes) -> int:
    """The orientation in an EXIF block."""

    def read() -> Image.Exif:
        block = Image.Exif()
        block.load(exif[6:] if exif.startswith(b"Exif\0\0") else exif)
        return block

    return _orientation_of(read)


def _orientation_of(read_exif: Callable[[], Image.Exif]) -> int:
    """The orientation tag of the EXIF block `read_exif` gives; 1 if absent or unreadable."""
    try:
        with quiet_pillow():
            value = read_exif().get(_ORIENTATION_TAG, 1)
    except PILLOW_ERRORS:
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


# ----------------------------------------------------------------------------------------------- WebP


def probe_webp(fh: BinaryIO) -> Header:
    """A WebP file's canvas from its RIFF chunks. Not from Pillow: its WebP plugin makes libwebp's
    animation decoder on open, which allocates the whole canvas, so a bomb must be refused before."""
    riff = fh.read(12)
    if len(riff) < 12:
        raise Refused("truncated WebP: the file ends inside the header")
    end = struct.unpack_from("<I", riff, 4)[0] + 8
    header: Header | None = None
    frames, position = 0, 12
    while position + 8 <= end:
        fh.seek(position)
        chunk = fh.read(8)
        if len(chunk) < 8:
            break
        kind, size = struct.unpack("<4sI", chunk)
        if header is None:
            header = _webp_canvas(kind, fh.read(min(size, 30)))
        elif kind == b"EXIF":
            header = replace(header, orientation=_exif_orientation(fh.read(size)))
        elif kind == b"ANMF":
            frames += 1
        position += 8 + size + (size & 1)  # chunks are padded to even sizes
    if header is None:
        raise Refused("corrupt WebP: no image chunk")
    if fh.seek(0, 2) < end:
        raise Refused(f"truncated WebP: the header says {end:,} bytes, the file has {fh.tell():,}")
    return replace(header, frames=max(frames, 1))


def _webp_canvas(kind: bytes, body: bytes) -> Header:
    with contextlib.suppress(IndexError, struct.error):
        if kind == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", body, 6)
            return Header("WebP", width & 0x3FFF, height & 0x3FFF, 3, np.dtype(np.uint8), "pillow")
        if kind == b"VP8L" and body[0] == 0x2F:
            bits = struct.unpack_from("<I", body, 1)[0]
            return Header("WebP", (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, 4 if bits >> 28 & 1 else 3,
                          np.dtype(np.uint8), "pillow")
        if kind == b"VP8X":
            width = int.from_bytes(body[4:7], "little") + 1
            height = int.from_bytes(body[7:10], "little") + 1
            return Header("WebP", width, height, 4 if body[0] & 0x10 else 3, np.dtype(np.uint8), "pillow")
    raise Refused(f"corrupt WebP: unreadable first chunk {kind!r}")


def is_webp(head: bytes) -> bool:
    return head.startswith(b"RIFF") and head[8:12] == b"WEBP"


# ---------------------------------------------------------------------------------------- colour PFM


def is_colour_pfm(head: bytes) -> bool:
    return head[:2] == b"PF" and head[2:3].isspace()


def colour_pfm_layout(head: bytes) -> tuple[int, int, str, int]:
    """(width, height, sample dtype, offset of the samples) from a colour PFM's text header: "PF", width,
    height, scale (negative: little-endian), each followed by whitespace. Pillow reads grey PFM only."""
    match = re.match(rb"PF\s+(\d+)\s+(\d+)\s+(\S+)\s", head)
    try:
        scale = float(match[3]) if match is not None else 0.0
    except ValueError:
        scale = 0.0
    if match is None or scale == 0 or not np.isfinite(scale):
        raise Refused("corrupt colour PFM header")
    return int(match[1]), int(match[2]), "<f4" if scale < 0 else ">f4", match.end()


def probe_colour_pfm(fh: BinaryIO) -> Header:
    width, height, _, _ = colour_pfm_layout(fh.read(64))
    return Header("Netpbm", width, height, 3, np.dtype(np.float32), "pfm")


# ------------------------------------------------------------------------------------------------ NPY

_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def probe_npy(fh: BinaryIO) -> Header:
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError as error:
        raise Refused(f"corrupt NPY header: {first_line(error)}") from None
    if version not in _NPY_HEADERS:
        raise Refused(f"unsupported NPY version {version[0]}.{version[1]}")
    try:
        shape, _, dtype = _NPY_HEADERS[version](fh)
    except Exception as error:  # numpy parses the header as Python literals: many error types
        raise Refused(f"corrupt NPY header: {first_line(error)}") from None
    if len(shape) not in (2, 3):
        raise Refused(f"unsupported NPY: array of shape {shape} (an image is (H, W) or (H, W, C))")
    channels = channels_returned(shape[2] if len(shape) == 3 else 1)
    return Header("NPY", shape[1], shape[0], channels, returned_dtype(dtype), "npy")


# ---------------------------------------------------------------------------------- supported formats


def supported_formats() -> tuple[str, ...]:
    """Names of the formats that load: every raster format this Pillow opens, plus TIFF and NPY."""
    Image.init()
    names = {_format_name(fmt) for fmt in Image.OPEN} | {"TIFF", "NPY"}
    return tuple(sorted(names - _NOT_RASTER_IMAGES, key=str.lower))


# Formats Pillow opens that are not pictures to explore, or that need outside programs (EPS: Ghostscript).
# BUFR, GRIB and HDF5 are stubs without a decoder, MPEG and IPTC are read for their headers only.
_NOT_RASTER_IMAGES = {"EPS", "FONT", "WMF", "PCD", "MIC", "FPX", "XVTHUMB", "IMT", "MCIDAS", "BUFR", "GRIB",
                      "HDF5", "MPEG", "IPTC", "GBR"}


def supported_suffixes() -> tuple[str, ...]:
    """File-name suffixes of the formats that load (lower case, with the dot), for open dialogs.

    Content decides the format when loading; this list only helps a file dialog offer the right files.
    """
    Image.init()
    names = {_format_name(fmt) for fmt in supported_formats()}
    suffixes = {suffix for suffix, fmt in Image.registered_extensions().items()
                if _format_name(fmt) in names}
    return tuple(sorted(suffixes | {".tif", ".tiff", ".npy"}))


def is_npy(head: bytes) -> bool:
    return head.startswith(b"\x93NUMPY")


def is_tiff(head: bytes) -> bool:
    return head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")
