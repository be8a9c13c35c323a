"""Pixels of a probed file (the decoding half of `core.io`), in the loader's conventions, as stored.

Which library decodes what: single-image PNG by OpenCV and grey or RGB JPEG by imagecodecs'
libjpeg-turbo (both faster than Pillow at 4K for identical pixels), TIFF by tifffile (`core.tiffread`),
NPY by numpy, everything else by Pillow. Before OpenCV sees a PNG every chunk's CRC is checked up to
IEND, and only the chunks that define pixels are passed on, so libpng has nothing to warn about on
stderr; a JPEG must have its end-of-image marker after its last scan (libjpeg-turbo would grey-fill a
cut file without a word). The orientation is applied by the caller.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import BinaryIO

import cv2
import imagecodecs
import numpy as np
from PIL import Image, ImageFile

from pyramid_explorer.core.bmpread import decode_bitfield_bmp
from pyramid_explorer.core.imageheader import (
    PILLOW_ERRORS,
    Header,
    Refused,
    colour_pfm_layout,
    first_line,
    pillow_open,
    ppm_maxval,
    quiet_pillow,
    returned_dtype,
    standard_dtype,
)
from pyramid_explorer.core.tiffread import decode_tiff


def decode(fh: BinaryIO, header: Header) -> np.ndarray:
    """The (H, W), RGB or RGBA samples `header` describes, before orientation."""
    return _DECODERS[header.decoder](fh, header)


# PNG ---------------------------------------------------------------------------------------------------

_PIXEL_CHUNKS = frozenset({b"IHDR", b"PLTE", b"tRNS", b"IDAT", b"IEND"})


def _png_pixel_chunks(data: bytes) -> bytes:
    """The PNG with only the chunks that define its pixels, after checking every chunk's CRC up to IEND.

    Ancillary chunks (colour profiles, text, histograms) change nothing OpenCV returns, and libpng prints
    warnings about odd ones straight to stderr; leaving them out keeps a load quiet.
    """
    view, position, spans, other = memoryview(data), 8, [], False
    while True:
        if position + 8 > len(data):
            where = "a chunk header" if position < len(data) else "the image (no IEND chunk)"
            raise Refused(f"truncated PNG: the file ends inside {where}")
        length, kind = struct.unpack_from(">I4s", data, position)
        if length > 0x7FFFFFFF or not kind.isalpha():
            raise Refused(f"corrupt PNG: invalid chunk header at byte {position}")
        name, end = kind.decode("ascii"), position + 12 + length
        if end > len(data):
            raise Refused(f"truncated PNG: the file ends inside chunk {name}")
        if zlib.crc32(view[position + 4 : end - 4]) != int.from_bytes(view[end - 4 : end], "big"):
            raise Refused(f"corrupt PNG: CRC mismatch in chunk {name}")
        if kind in _PIXEL_CHUNKS:
            spans.append((position, end))
        else:
            other = True
        position = end
        if kind == b"IEND":
            break
    if not any(data[start + 4 : start + 8] == b"IDAT" for start, _ in spans):
        raise Refused("corrupt PNG: no image data (IDAT chunk)")
    if not other:
        return data
    return b"".join([view[:8], *(view[start:end] for start, end in spans)])


def _decode_png(fh: BinaryIO, header: Header) -> np.ndarray:
    data = _png_pixel_chunks(fh.read())
    try:
        decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        raise Refused(f"corrupt PNG data: {first_line(error)}") from None
    if decoded is None:
        raise Refused("corrupt PNG data: the decoder could not read it")
    image = _from_opencv(decoded)
    if header.grey_key is None or image.ndim != 2:
        return image
    opaque = np.iinfo(image.dtype).max
    return cv2.merge([image, image, image, np.where(image == header.grey_key, 0, opaque).astype(image.dtype)])


def _from_opencv(image: np.ndarray) -> np.ndarray:
    """(H, W), RGB or RGBA from OpenCV's grey, BGR or BGRA."""
    if image.ndim == 3 and image.shape[2] == 1:
        return image[:, :, 0]
    if image.ndim == 2:
        return image
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB if image.shape[2] == 3 else cv2.COLOR_BGRA2RGBA)


# JPEG --------------------------------------------------------------------------------------------------


def _decode_jpeg(fh: BinaryIO, header: Header) -> np.ndarray:
    data = fh.read()
    # Entropy-coded data cannot hold 0xFF followed by a marker code (0xFF is stuffed with 0x00), so the
    # last start-of-scan marker belongs to the image's last scan, and the end-of-image marker follows it.
    last_scan = data.rfind(b"\xff\xda")
    if last_scan < 0:
        raise Refused(f"corrupt {header.format}: no image data (start-of-scan marker)")
    if data.rfind(b"\xff\xd9") < last_scan:
        raise Refused(f"truncated {header.format}: no end-of-image marker (the file ends early)")
    try:
        return imagecodecs.jpeg8_decode(data)
    except imagecodecs.Jpeg8Error as error:
        raise Refused(f"corrupt {header.format} data: {first_line(error)}") from None


# PPM ---------------------------------------------------------------------------------------------------


def _decode_16_bit_ppm(fh: BinaryIO, header: Header) -> np.ndarray:
    """A binary (P6) or plain (P3) PPM with more than 8 bits per sample, by OpenCV (Pillow reduces those to
    8 bits), scaled from 0..maxval to 0..65535 as Pillow scales 16-bit PGM."""
    with pillow_open(fh) as image:
        tile, maxval = image.tile[0], ppm_maxval(image)
    fh.seek(0)
    data = fh.read()
    samples = header.width * header.height * 3
    # checked here: OpenCV would log its complaint on stderr
    if tile.codec_name == "ppm_plain":
        _check_plain_samples(data, tile.offset, samples)
    elif len(data) < (needed := tile.offset + samples * 2):
        raise Refused(f"truncated Netpbm: {len(data):,} bytes, the header needs {needed:,}")
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None or decoded.dtype != np.uint16:
        raise Refused("corrupt Netpbm data: the decoder could not read it")
    rgb = _from_opencv(decoded)
    if maxval == 65535:
        return rgb
    return np.rint(np.minimum(rgb, maxval) / maxval * 65535).astype(np.uint16)


_NETPBM_SPACE = np.frombuffer(b" \t\n\v\f\r", np.uint8)


def _check_plain_samples(data: bytes, offset: int, needed: int) -> None:
    """Refuse a plain Netpbm raster that holds other characters than digits and whitespace, or fewer
    numbers than `needed`."""
    raster = np.frombuffer(data, np.uint8, offset=offset)
    digit = (raster >= ord("0")) & (raster <= ord("9"))
    if not np.all(digit | np.isin(raster, _NETPBM_SPACE)):
        raise Refused("corrupt Netpbm data: the samples hold characters other than digits and spaces")
    count = np.count_nonzero(digit[1:] & ~digit[:-1]) + int(digit[:1].sum())
    if count < needed:
        raise Refused(f"truncated Netpbm: {count:,} samples, the header needs {needed:,}")


def _decode_colour_pfm(fh: BinaryIO, header: Header) -> np.ndarray:
    """Colour PFM: float32 RGB samples, rows stored bottom-up, values as stored (the scale's magnitude is
    not applied, as Pillow leaves it for grey PFM)."""
    data = fh.read()
    width, height, dtype, start = colour_pfm_layout(data[:64])
    needed = start + width * height * 12
    if len(data) < needed:
        raise Refused(f"truncated colour PFM: {len(data):,} bytes, the header needs {needed:,}")
    rows = np.frombuffer(data, dtype, count=width * height * 3, offset=start).reshape(height, width, 3)
    return rows[::-1].astype(np.float32)


# Pillow ------------------------------------------------------------------------------------------------


def _decode_with_pillow(fh: BinaryIO, header: Header) -> np.ndarray:
    try:
        with pillow_open(fh) as image, quiet_pillow():
            _check_raw_extent(image, fh.seek(0, 2), header.format)
            if header.format == "GIF":
                _check_gif_trailer(fh)
            if header.format == "PNG":  # an animated PNG: every frame's chunks must be whole
                fh.seek(0)
                _png_pixel_chunks(fh.read())
            image.load()
            return _pillow_samples(image, header.channels)
    except PILLOW_ERRORS as error:
        text = first_line(error)
        kind = "truncated" if "truncated" in text.lower() else "corrupt"
        raise Refused(f"{kind} {header.format} data: {text}") from None


def _check_raw_extent(image: ImageFile.ImageFile, size: int, fmt: str) -> None:
    """Refuse uncompressed pixel rows that run past the end of the file, padding included: Pillow's raw
    decoder would accept a file cut inside the last row's padding."""
    for tile in image.tile:
        args = tile.args if isinstance(tile.args, tuple) else ()
        if (tile.codec_name == "raw" and tile.extents is not None and len(args) >= 2
                and isinstance(args[1], int) and args[1] > 0):
            end = tile.offset + args[1] * (tile.extents[3] - tile.extents[1])
            if end > size:
                raise Refused(f"truncated {fmt}: the pixel rows end at byte {end:,}, the file has {size:,}")


def _check_gif_trailer(fh: BinaryIO) -> None:
    """Refuse a GIF without its trailer byte: Pillow would load the first frame of a file whose later
    frames are cut off."""
    fh.seek(-min(fh.seek(0, 2), 64), 2)
    if not fh.read().rstrip(b"\0").endswith(b";"):
        raise Refused("truncated GIF: no trailer (the file ends early)")


def _pillow_samples(image: Image.Image, channels: int) -> np.ndarray:
    """Pillow's frame as returned: palettes looked up, premultiplied alpha un-premultiplied (Pillow's
    La/RGBa -> LA/RGBA), CMYK, YCbCr and HSV converted to RGB by Pillow, 16-bit and float kept."""
    mode = image.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        samples = np.array(image)
        samples = samples.astype(samples.dtype.newbyteorder("="))
        if mode == "I" and image.format == "PPM":  # 9-16-bit PGM, scaled by Pillow to 0..65535
            return samples.astype(np.uint16)
        samples = samples.astype(returned_dtype(samples.dtype), copy=False)
        if channels == 4:  # 16-bit grey with a transparent grey value
            key = image.info["transparency"]
            alpha = np.where(samples == key, 0, 65535).astype(samples.dtype)
            return np.dstack([samples, samples, samples, alpha])
        return samples
    if mode == "La":
        image = image.convert("LA")
    if channels == 1:
        return np.array(image.convert("L") if mode == "1" else image)
    wanted = "RGBA" if channels == 4 else "RGB"
    return np.array(image if image.mode == wanted else image.convert(wanted))


# NPY ---------------------------------------------------------------------------------------------------


def _decode_npy(fh: BinaryIO, header: Header) -> np.ndarray:
    try:
        image = np.load(fh, allow_pickle=False)
    except (ValueError, EOFError) as error:
        raise Refused(f"truncated or corrupt NPY data: {first_line(error)}") from None
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3 and image.shape[2] == 2:
        image = image[:, :, [0, 0, 0, 1]]
    return standard_dtype(image)


_DECODERS: dict[str, Callable[[BinaryIO, Header], np.ndarray]] = {
    "png": _decode_png,
    "jpeg": _decode_jpeg,
    "ppm16": _decode_16_bit_ppm,
    "bitfields": decode_bitfield_bmp,
    "pfm": _decode_colour_pfm,
    "pillow": _decode_with_pillow,
    "tiff": decode_tiff,
    "npy": _decode_npy,
}
