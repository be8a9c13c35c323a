"""Image files in and out: PNG, JPEG, TIFF, BMP, WebP, GIF or NPY in as RGB(A) arrays; PNG, TIFF or NPY out.

Loading reads the file's header first, without decoding pixels, so an image above the pixel limit (a
decompression bomb) is refused before any pixel memory is allocated; `probe_image` returns that header
information (size, channels, dtype, frame count) for the command line and memory-budget checks. Pixels are
decoded by OpenCV from bytes read by Python (`cv2.imdecode`, so non-ASCII paths work on every platform),
except TIFF (tifffile: float32 kept exactly, first page of a multi-page file) and NPY (numpy). OpenCV's
`IMREAD_UNCHANGED` ignores the EXIF orientation tag, so it is read from the header and applied here.

Every failure to load is an `ImageLoadError` and every failure to save an `ImageSaveError`, each one line
naming the file and the reason. Saving is atomic (`atomic_write`): a failed save never leaves a partial file
and never damages the file it would have replaced.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import stat
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

import cv2
import numpy as np
import tifffile

DEFAULT_MAX_PIXELS = 200_000_000
# OpenCV's decoders refuse wider or taller images anyway; one limit for every format keeps the rule simple.
MAX_SIDE = 1 << 20
LOAD_FORMATS = ("PNG", "JPEG", "TIFF", "BMP", "WebP", "GIF", "NPY")
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


class _Refused(Exception):
    """Internal: why a file cannot be read; the public functions add the path."""


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


@dataclass(frozen=True)
class _Header:
    """Internal probe result: sizes as stored (before orientation) plus hints the decoder needs."""

    format: str
    width: int
    height: int
    channels: int
    dtype: np.dtype
    frames: int = 1
    orientation: int = 1
    grey_key: int | None = None  # PNG grey + tRNS: pixels of this (8/16-bit) value are transparent
    scan_start: int = 0  # JPEG: offset of the first scan; the end-of-image marker must follow it
    min_size: int = 0  # the file is truncated if shorter than this (BMP pixel rows, WebP RIFF size)

    def info(self) -> ImageInfo:
        turned = self.orientation >= 5
        return ImageInfo(
            format=self.format,
            width=self.height if turned else self.width,
            height=self.width if turned else self.height,
            channels=self.channels,
            dtype=self.dtype.name,
            frames=self.frames,
            orientation=self.orientation,
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
    header: _Header | None = None
    try:
        with _open_for_reading(name) as fh:
            header = _probe(fh)
            _check_size(header, max_pixels)
            fh.seek(0)
            image = _DECODERS.get(header.format, _decode_with_opencv)(fh, header)
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
            return _probe(fh).info()
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


def _read(fh: BinaryIO, n: int, fmt: str, where: str) -> bytes:
    """Read exactly `n` bytes, or refuse the file as truncated."""
    if n > 4096:  # a corrupt length must not make Python allocate gigabytes before the short read
        here = fh.tell()
        if here + n > fh.seek(0, os.SEEK_END):
            raise _Refused(f"truncated {fmt}: the file ends inside {where}")
        fh.seek(here)
    data = fh.read(n)
    if len(data) < n:
        raise _Refused(f"truncated {fmt}: the file ends inside {where}")
    return data


def _check_size(header: _Header, max_pixels: int) -> None:
    w, h = header.width, header.height
    if max(w, h) > MAX_SIDE:
        raise _Refused(f"image is {w} x {h} pixels; sides above {MAX_SIDE:,} pixels are not supported")
    if w * h > max_pixels:
        raise _Refused(f"image is {w} x {h} = {w * h:,} pixels, above the limit of {max_pixels:,} pixels")


def _probe(fh: BinaryIO) -> _Header:
    head = fh.read(16)
    fh.seek(0)
    fmt = _sniff(head)
    header = _PROBES[fmt](fh)
    if header.width < 1 or header.height < 1:
        raise _Refused(f"corrupt {fmt} header: image size {header.width} x {header.height}")
    return header


def _sniff(head: bytes) -> str:
    """The format named by the file's first bytes."""
    if head[1:4] == b"PNG":
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] in (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+"):
        return "TIFF"
    if head.startswith(b"BM"):
        return "BMP"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "WebP"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head.startswith(b"\x93NUMPY"):
        return "NPY"
    text = all(32 <= byte < 127 or byte in b"\t\n\r" for byte in head)
    what = "the file holds text" if text else f"unknown file signature {head[:8].hex(' ')}"
    raise _Refused(f"not an image ({what}); supported formats: {', '.join(LOAD_FORMATS)}")


def _exif_orientation(exif: bytes) -> int:
    """The Orientation tag (274) of an EXIF block (a small TIFF structure); 1 if absent or unreadable."""
    if exif.startswith(b"Exif\0\0"):
        exif = exif[6:]
    order = {b"II": "<", b"MM": ">"}.get(exif[:2])
    if order is None:
        return 1
    with contextlib.suppress(struct.error):
        (ifd,) = struct.unpack_from(order + "I", exif, 4)
        (count,) = struct.unpack_from(order + "H", exif, ifd)
        for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
            tag, kind, n, value = struct.unpack_from(order + "HHIH", exif, entry)
            if tag == 274 and kind == 3 and n >= 1:  # SHORT
                return value if 1 <= value <= 8 else 1
    return 1


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


_CHANNELS_RETURNED = {1: 1, 2: 4, 3: 3, 4: 4}  # grey + alpha comes back as RGBA


def _channels_returned(count: int) -> int:
    if count not in _CHANNELS_RETURNED:
        raise _Refused(f"unsupported channel count {count} (grey, grey + alpha, RGB and RGBA are supported)")
    return _CHANNELS_RETURNED[count]


def _standard_channels(image: np.ndarray, bgr: bool) -> np.ndarray:
    """(H, W), RGB or RGBA from an array of 1-4 channels; `bgr` for OpenCV's channel order."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image
    channels = image.shape[2] if image.ndim == 3 else 0
    _channels_returned(channels)
    if channels == 2:
        return image[:, :, [0, 0, 0, 1]]
    if bgr:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    return image


def _returned_dtype(dtype: np.dtype) -> np.dtype:
    """The dtype samples of `dtype` are returned in: uint8, uint16 or float32."""
    if dtype.kind == "b":
        return np.dtype(np.uint8)
    if (dtype.kind, dtype.itemsize) in (("u", 1), ("u", 2), ("f", 4)):
        return np.dtype(f"{dtype.kind}{dtype.itemsize}")
    if dtype.kind in "iuf":
        return np.dtype(np.float32)
    raise _Refused(f"unsupported sample type {dtype} (integer and floating-point samples are supported)")


def _standard_dtype(image: np.ndarray) -> np.ndarray:
    """Convert samples to the returned dtype: bool to 0/255, other numbers by value (overflow gives inf)."""
    if image.dtype.kind == "b":
        return image.view(np.uint8) * np.uint8(255)
    with np.errstate(over="ignore"):
        return image.astype(_returned_dtype(image.dtype), copy=False)


# PNG ---------------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 4, 6: 4}  # palette becomes RGB, grey + alpha RGBA (as OpenCV does)


def _png_chunks(fh: BinaryIO, read: Callable[[bytes], bool]) -> Iterator[tuple[bytes, memoryview]]:
    """Yield (type, data) for the chunks from the current position to the end of the file.

    A chunk's data is read and its CRC checked only when `read(type)` is true; other chunks are skipped
    (empty data), which keeps probing cheap.
    """
    while head := fh.read(8):
        if len(head) < 8:
            raise _Refused("truncated PNG: the file ends inside a chunk header")
        length, kind = struct.unpack(">I4s", head)
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise _Refused(f"corrupt PNG: invalid chunk header at byte {fh.tell() - 8}")
        name = kind.decode("ascii")
        if not read(kind):
            fh.seek(length + 4, os.SEEK_CUR)
            yield kind, memoryview(b"")
            continue
        body = _read(fh, length + 4, "PNG", f"chunk {name}")
        data = memoryview(body)[:length]
        if zlib.crc32(data, zlib.crc32(kind)) != int.from_bytes(body[length:], "big"):
            raise _Refused(f"corrupt PNG: CRC mismatch in chunk {name}")
        yield kind, data


def _probe_png(fh: BinaryIO) -> _Header:
    if _read(fh, 8, "PNG", "the signature") != _PNG_SIGNATURE:
        raise _Refused("corrupt PNG signature (a damaged file, or one changed by a text-mode transfer)")
    chunks = _png_chunks(fh, lambda kind: kind in (b"IHDR", b"tRNS", b"eXIf", b"acTL"))
    kind, ihdr = next(chunks, (b"", b""))
    if kind != b"IHDR" or len(ihdr) != 13:
        raise _Refused("corrupt PNG: the first chunk is not a valid IHDR")
    width, height, depth, colour, compression, filtering, interlace = struct.unpack(">IIBBBBB", ihdr)
    if colour not in _PNG_DEPTHS:
        raise _Refused(f"corrupt PNG: invalid colour type {colour}")
    if depth not in _PNG_DEPTHS[colour]:
        raise _Refused(f"corrupt PNG: invalid bit depth {depth} for colour type {colour}")
    if compression or filtering or interlace > 1:
        raise _Refused("corrupt PNG: invalid compression, filter or interlace method")
    header = _Header(
        "PNG", width, height, _PNG_CHANNELS[colour], np.dtype(np.uint16 if depth == 16 else np.uint8)
    )
    for kind, data in chunks:
        if kind == b"IDAT":
            return header
        if kind == b"IEND":
            raise _Refused("corrupt PNG: no image data (IDAT chunk)")
        if kind == b"tRNS" and colour in (2, 3):
            header = replace(header, channels=4)
        elif kind == b"tRNS" and colour == 0 and len(data) == 2:
            # OpenCV drops a grey image's transparent colour; keep it as the key of an alpha channel, scaled
            # the way libpng widens 1/2/4-bit grey to 8 bits.
            key = int.from_bytes(data, "big") & ((1 << depth) - 1)
            widen = 255 // ((1 << depth) - 1) if depth < 8 else 1
            header = replace(header, channels=4, grey_key=key * widen)
        elif kind == b"eXIf":
            header = replace(header, orientation=_exif_orientation(bytes(data)))
        elif kind == b"acTL" and len(data) == 8:
            header = replace(header, frames=max(1, int.from_bytes(data[:4], "big")))
    raise _Refused("truncated PNG: the file ends before the image data")


def _verify_png(data: bytes, header: _Header) -> None:
    """Walk every chunk, checking its CRC, up to IEND: catches truncation and damage before decoding."""
    fh = io.BytesIO(data)
    fh.seek(8)
    for kind, _ in _png_chunks(fh, lambda kind: True):
        if kind == b"IEND":
            return
    raise _Refused("truncated PNG: no IEND chunk (the file ends early)")


def _add_grey_key_alpha(image: np.ndarray, header: _Header) -> np.ndarray:
    if header.grey_key is None or image.ndim != 2:
        return image
    opaque = np.iinfo(image.dtype).max
    alpha = np.where(image == header.grey_key, 0, opaque).astype(image.dtype)
    return cv2.merge([image, image, image, alpha])


# JPEG --------------------------------------------------------------------------------------------------

_JPEG_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_CHANNELS = {1: 1, 3: 3, 4: 3}  # OpenCV turns CMYK/YCCK into RGB


def _probe_jpeg(fh: BinaryIO) -> _Header:
    fh.seek(2)
    frame: tuple[int, int, int, int] | None = None
    orientation: int | None = None
    while True:
        if _read(fh, 1, "JPEG", "the header") != b"\xff":
            raise _Refused(f"corrupt JPEG header: no marker at byte {fh.tell() - 1}")
        marker = 0xFF
        while marker == 0xFF:  # fill bytes
            marker = _read(fh, 1, "JPEG", "the header")[0]
        if marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker == 0xD9:
            raise _Refused("corrupt JPEG: no image data before the end-of-image marker")
        (length,) = struct.unpack(">H", _read(fh, 2, "JPEG", "the header"))
        if length < 2:
            raise _Refused(f"corrupt JPEG header: segment length {length}")
        if marker == 0xDA:
            break
        if marker in _JPEG_FRAMES and frame is None:
            body = _read(fh, length - 2, "JPEG", "the frame header")
            if len(body) < 6:
                raise _Refused("corrupt JPEG: frame header too short")
            frame = struct.unpack(">BHHB", body[:6])
        elif marker == 0xE1 and orientation is None:
            body = _read(fh, length - 2, "JPEG", "the EXIF block")
            if body.startswith(b"Exif\0\0"):
                orientation = _exif_orientation(body)
        else:
            fh.seek(length - 2, os.SEEK_CUR)
    if frame is None:
        raise _Refused("corrupt JPEG: image data before the frame header")
    precision, height, width, components = frame
    if precision != 8:
        raise _Refused(f"unsupported JPEG: {precision}-bit samples (8-bit JPEG is supported)")
    if height == 0:
        raise _Refused("unsupported JPEG: the height is given after the image data (DNL marker)")
    if components not in _JPEG_CHANNELS:
        raise _Refused(f"unsupported JPEG: {components} colour components")
    return _Header(
        "JPEG",
        width,
        height,
        _JPEG_CHANNELS[components],
        np.dtype(np.uint8),
        orientation=orientation or 1,
        scan_start=fh.tell(),
    )


def _verify_jpeg(data: bytes, header: _Header) -> None:
    # Entropy-coded data cannot hold 0xFF 0xD9 (0xFF is stuffed with 0x00), so its first occurrence after
    # the first scan is the end-of-image marker. OpenCV would otherwise grey-fill a truncated image.
    if data.find(b"\xff\xd9", header.scan_start) < 0:
        raise _Refused("truncated JPEG: no end-of-image marker (the file ends early)")


# BMP ---------------------------------------------------------------------------------------------------


def _probe_bmp(fh: BinaryIO) -> _Header:
    head = _read(fh, 18, "BMP", "the header")
    (pixel_offset,) = struct.unpack_from("<I", head, 10)
    (info_size,) = struct.unpack_from("<I", head, 14)
    if info_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height, _, bits = struct.unpack("<HHHH", _read(fh, 8, "BMP", "the header"))
        compression, palette_size, entry_size = 0, 0, 3
    elif 40 <= info_size <= 124:
        width, height, _, bits, compression, _, _, _, palette_size = struct.unpack(
            "<iiHHIIiiI", _read(fh, 32, "BMP", "the header")
        )
        entry_size = 4
    else:
        raise _Refused(f"corrupt BMP header: info header size {info_size}")
    if bits not in (1, 4, 8, 16, 24, 32) or compression not in (0, 1, 2, 3) or palette_size > 256:
        raise _Refused(f"unsupported BMP: {bits} bits per pixel, compression {compression}")
    height = abs(height)  # negative: stored top-down
    channels = 4 if bits == 32 and compression == 3 else 3  # OpenCV keeps alpha only with bit fields
    if bits <= 8:
        # OpenCV returns grey when every palette entry is grey (unlisted entries count as black).
        fh.seek(14 + info_size)
        entries = palette_size or 1 << bits
        palette = np.frombuffer(_read(fh, entries * entry_size, "BMP", "the palette"), np.uint8)
        palette = palette.reshape(entries, entry_size)[:, :3]
        channels = 3 if np.any(palette != palette[:, :1]) else 1
    stride = (width * bits + 31) // 32 * 4
    min_size = pixel_offset + stride * height if compression in (0, 3) else 0  # RLE rows vary in length
    return _Header("BMP", width, height, channels, np.dtype(np.uint8), min_size=min_size)


# WebP --------------------------------------------------------------------------------------------------


def _probe_webp(fh: BinaryIO) -> _Header:
    (riff_size,) = struct.unpack("<I", _read(fh, 12, "WebP", "the header")[4:8])
    end = riff_size + 8
    header: _Header | None = None
    frames = 0
    position = 12
    while position + 8 <= end:
        fh.seek(position)
        chunk = fh.read(8)
        if len(chunk) < 8:
            break
        kind, size = struct.unpack("<4sI", chunk)
        if header is None:
            header = _webp_first_chunk(kind, fh.read(min(size, 30)))
        elif kind == b"EXIF":
            header = replace(header, orientation=_exif_orientation(_read(fh, size, "WebP", "the EXIF chunk")))
        elif kind == b"ANMF":
            frames += 1
        position += 8 + size + (size & 1)  # chunks are padded to even sizes
    if header is None:
        raise _Refused("corrupt WebP: no image chunk")
    return replace(header, frames=max(frames, 1), min_size=end)


def _webp_first_chunk(kind: bytes, body: bytes) -> _Header:
    try:
        if kind == b"VP8 " and body[3:6] == b"\x9d\x01\x2a":
            width, height = struct.unpack_from("<HH", body, 6)
            return _Header("WebP", width & 0x3FFF, height & 0x3FFF, 3, np.dtype(np.uint8))
        if kind == b"VP8L" and body[0] == 0x2F:
            (bits,) = struct.unpack_from("<I", body, 1)
            channels = 4 if bits >> 28 & 1 else 3
            return _Header(
                "WebP", (bits & 0x3FFF) + 1, (bits >> 14 & 0x3FFF) + 1, channels, np.dtype(np.uint8)
            )
        if kind == b"VP8X":
            flags = body[0]
            width = int.from_bytes(body[4:7], "little") + 1
            height = int.from_bytes(body[7:10], "little") + 1
            return _Header("WebP", width, height, 4 if flags & 0x10 else 3, np.dtype(np.uint8))
    except (IndexError, struct.error):
        pass
    raise _Refused(f"corrupt WebP: unreadable first chunk {kind!r}")


# GIF ---------------------------------------------------------------------------------------------------


def _skip_gif_blocks(fh: BinaryIO) -> None:
    while size := _read(fh, 1, "GIF", "a data block")[0]:
        fh.seek(size, os.SEEK_CUR)


def _probe_gif(fh: BinaryIO) -> _Header:
    width, height, flags = struct.unpack_from("<HHB", _read(fh, 13, "GIF", "the header"), 6)
    if flags & 0x80:
        fh.seek(3 << ((flags & 7) + 1), os.SEEK_CUR)  # global colour table
    frames, channels = 0, 3
    while (block := fh.read(1)) not in (b"", b";"):
        if block == b"!":  # extension: label, then data blocks
            if _read(fh, 1, "GIF", "an extension") == b"\xf9":
                # Graphic control: OpenCV returns RGBA when the last one in the file has a transparent colour.
                control = _read(fh, _read(fh, 1, "GIF", "an extension")[0], "GIF", "an extension")
                channels = 4 if control and control[0] & 1 else 3
        elif block == b",":  # image: descriptor, optional colour table, LZW code size, data blocks
            local = _read(fh, 9, "GIF", "an image descriptor")[8]
            if local & 0x80:
                fh.seek(3 << ((local & 7) + 1), os.SEEK_CUR)
            _read(fh, 1, "GIF", "an image")
            frames += 1
        else:
            raise _Refused(f"corrupt GIF: unknown block {block.hex()} at byte {fh.tell() - 1}")
        _skip_gif_blocks(fh)
    if frames == 0:
        raise _Refused("corrupt GIF: no image in the file")
    return _Header("GIF", width, height, channels, np.dtype(np.uint8), frames=frames)


# TIFF --------------------------------------------------------------------------------------------------

_TIFF_COLOUR_MODELS = (2, 6)  # RGB, and YCbCr, which tifffile turns into RGB when decoding JPEG tiles


def _tiff_colormap(page: tifffile.TiffPage) -> np.ndarray:
    """The palette as (N, 3) RGB; 8-bit when its 16-bit entries are widened 8-bit values (v*256 or v*257)."""
    if page.colormap is None:
        raise _Refused("corrupt TIFF: a palette image without a colour map")
    colormap = np.asarray(page.colormap).T
    if np.all(colormap % 256 == 0) or np.all(colormap % 257 == 0):
        return (colormap >> 8).astype(np.uint8)
    return colormap.astype(np.uint16)


def _tiff_header(page: tifffile.TiffPage, frames: int) -> _Header:
    model, samples = int(page.photometric), page.samplesperpixel
    model_name = getattr(page.photometric, "name", str(model))
    if model not in (0, 1, 2, 3) and not (model == 6 and page.compression == 7):
        raise _Refused(
            f"unsupported TIFF colour model {model_name} (grey, RGB and palette TIFFs are supported)"
        )
    if page.compression not in tifffile.TIFF.DECOMPRESSORS:
        raise _Refused(f"unsupported TIFF compression {getattr(page.compression, 'name', page.compression)}")
    if set(page.axes) - set("YXS"):
        raise _Refused(f"unsupported TIFF: a page with axes {page.axes} (2-D images are supported)")
    if model == 3:
        channels, dtype = 3, _tiff_colormap(page).dtype
    elif (model in _TIFF_COLOUR_MODELS) != (samples in (3, 4)):
        raise _Refused(f"unsupported TIFF: {samples} samples per pixel with colour model {model_name}")
    else:
        channels, dtype = _channels_returned(samples), _returned_dtype(page.dtype)
    orientation = int(page.tags.valueof(274, 1))
    return _Header(
        "TIFF",
        page.imagewidth,
        page.imagelength,
        channels,
        dtype,
        frames=frames,
        orientation=orientation if 1 <= orientation <= 8 else 1,
    )


def _probe_tiff(fh: BinaryIO) -> _Header:
    try:
        with tifffile.TiffFile(fh) as tif:
            return _tiff_header(tif.pages[0], len(tif.pages))
    except _Refused:
        raise
    except Exception as error:  # tifffile raises many kinds on damaged files
        raise _Refused(f"corrupt TIFF: {_first_line(error)}") from None


def _check_tiff_extent(page: tifffile.TiffPage, size: int) -> None:
    """Refuse a page whose strips or tiles run past the end of the file: some codecs (JPEG) would decode
    the cut data into a plausible but wrong image without a word."""
    ends = [offset + count for offset, count in zip(page.dataoffsets, page.databytecounts, strict=False)
            if count]
    if ends and max(ends) > size:
        raise _Refused(f"truncated TIFF: the image data ends at byte {max(ends):,}, the file has {size:,}")


def _decode_tiff(fh: BinaryIO, header: _Header) -> np.ndarray:
    try:
        with tifffile.TiffFile(fh) as tif:
            page = tif.pages[0]
            _check_tiff_extent(page, tif.filehandle.size)
            image = page.asarray()
            axes, model, bits = page.axes, int(page.photometric), page.bitspersample
            colormap = _tiff_colormap(page) if model == 3 else None
    except (_Refused, MemoryError):
        raise
    except Exception as error:
        raise _Refused(f"truncated or corrupt TIFF data: {_first_line(error)}") from None
    image = image.transpose([axes.index(axis) for axis in "YXS" if axis in axes])
    if colormap is not None:
        return np.take(colormap, image, axis=0, mode="clip")
    if image.dtype.kind in "ub" and model == 0:  # MINISWHITE: 0 is white
        image = ~image if image.dtype.kind == "b" else np.asarray((1 << bits) - 1 - image, image.dtype)
    if image.dtype.kind == "u" and bits < 8:  # widen 2..7-bit samples to 0..255, as PNG decoders do
        top = (1 << bits) - 1
        image = ((image.astype(np.uint16) * 255 + top // 2) // top).astype(np.uint8)
    return _standard_channels(_standard_dtype(image), bgr=False)


# NPY ---------------------------------------------------------------------------------------------------


_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


def _probe_npy(fh: BinaryIO) -> _Header:
    try:
        version = np.lib.format.read_magic(fh)
    except ValueError as error:
        raise _Refused(f"corrupt NPY header: {_first_line(error)}") from None
    if version not in _NPY_HEADERS:
        raise _Refused(f"unsupported NPY version {version[0]}.{version[1]}")
    try:
        shape, _, dtype = _NPY_HEADERS[version](fh)
    except Exception as error:  # numpy parses the header as Python literals: many error types
        raise _Refused(f"corrupt NPY header: {_first_line(error)}") from None
    if len(shape) not in (2, 3):
        raise _Refused(f"unsupported NPY: array of shape {shape} (an image is (H, W) or (H, W, C))")
    channels = _channels_returned(shape[2] if len(shape) == 3 else 1)
    return _Header("NPY", shape[1], shape[0], channels, _returned_dtype(dtype))


def _decode_npy(fh: BinaryIO, header: _Header) -> np.ndarray:
    try:
        image = np.load(fh, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise _Refused(f"truncated or corrupt NPY data: {_first_line(error)}") from None
    return _standard_channels(_standard_dtype(image), bgr=False)


# OpenCV ------------------------------------------------------------------------------------------------

_VERIFY: dict[str, Callable[[bytes, _Header], None]] = {"PNG": _verify_png, "JPEG": _verify_jpeg}


def _decode_with_opencv(fh: BinaryIO, header: _Header) -> np.ndarray:
    data = fh.read()
    if len(data) < header.min_size:
        raise _Refused(
            f"truncated {header.format}: {len(data):,} bytes, the header needs {header.min_size:,}"
        )
    if header.format in _VERIFY:
        _VERIFY[header.format](data, header)
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise _Refused(f"corrupt {header.format} data: {_first_line(error)}") from None
    if image is None:
        raise _Refused(f"corrupt {header.format} data: the decoder could not read it")
    return _add_grey_key_alpha(_standard_channels(image, bgr=True), header)


def _first_line(error: BaseException) -> str:
    """A short message for an exception from a library (cv2.error carries it in `err`)."""
    text = getattr(error, "err", None) or str(error) or type(error).__name__
    return (text.strip().splitlines() or [type(error).__name__])[0]


_PROBES: dict[str, Callable[[BinaryIO], _Header]] = {
    "PNG": _probe_png,
    "JPEG": _probe_jpeg,
    "TIFF": _probe_tiff,
    "BMP": _probe_bmp,
    "WebP": _probe_webp,
    "GIF": _probe_gif,
    "NPY": _probe_npy,
}
_DECODERS: dict[str, Callable[[BinaryIO, _Header], np.ndarray]] = {"TIFF": _decode_tiff, "NPY": _decode_npy}


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
            raise _Refused(f"the PNG encoder failed: {_first_line(error)}") from None
        if not ok:
            raise _Refused("the PNG encoder failed")
        fh.write(encoded.tobytes())

    return write


def _tiff_writer(image: np.ndarray) -> _Writer:
    image = _savable_image(image, "TIFF", (np.uint8, np.uint16, np.float32))
    rgb = image.ndim == 3
    alpha = ("unassalpha",) if rgb and image.shape[2] == 4 else None

    def write(fh: BinaryIO) -> None:
        try:
            tifffile.imwrite(
                fh, image, photometric="rgb" if rgb else "minisblack", extrasamples=alpha, metadata=None
            )
        except OSError:
            raise
        except Exception as error:  # any failure inside the encoder library
            raise _Refused(f"the TIFF writer failed: {_first_line(error)}") from None

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
