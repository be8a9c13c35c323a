"""BMP in: the headers Pillow gets wrong, and the pixels of bit-field BMPs (BI_BITFIELDS,
BI_ALPHABITFIELDS); every other BMP is read by Pillow.

Pillow reads a handful of fixed mask layouts only (8-8-8, 5-6-5, 5-5-5) and refuses the others
(11-11-10, byte orders of its own choosing, BI_ALPHABITFIELDS), and OpenCV ignores the masks. So
every 16- and 32-bit bit-field BMP is read here, with one rule for all layouts: a field of n bits
holding v becomes round(v * M / (2^n - 1)), halves up, where M is 255 when no field is wider than 8
bits and 65535 otherwise (an 11-11-10 file comes back as uint16). An alpha mask gives RGBA with the
alpha as stored. The masks sit in the info header (52 bytes and longer; alpha from 56 bytes on) or
right after a 40-byte one (three masks, four for BI_ALPHABITFIELDS); all-zero colour masks mean the
uncompressed layout (5-5-5 or 8-8-8). A palette BMP whose palette-size field counts more than 256
colours is refused by name (Pillow would fail only while decoding, with "invalid palette size").
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import numpy as np

from pyramid_explorer.core.imageheader import Header, Refused, probe_with_pillow

_BITFIELDS, _ALPHABITFIELDS = 3, 6
_INFO_HEADERS = (40, 52, 56, 108, 124)  # Windows v3-v5 (the 64-byte OS/2 header's 3 is Huffman coding)
_DEFAULT_MASKS = {16: (0x7C00, 0x03E0, 0x001F), 32: (0xFF0000, 0x00FF00, 0x0000FF)}
_HEADER_BYTES = 14 + 124 + 16


def is_bmp(head: bytes) -> bool:
    return head[:2] == b"BM"


def probe_bmp(fh: BinaryIO) -> Header:
    """A BMP's header: a bit-field BMP's read here, any other's by Pillow."""
    head = fh.read(_HEADER_BYTES)
    fh.seek(0)
    if len(head) < 50 or struct.unpack_from("<I", head, 14)[0] not in _INFO_HEADERS:
        return probe_with_pillow(fh)
    bits, compression = struct.unpack_from("<HI", head, 28)
    colours = struct.unpack_from("<I", head, 46)[0]
    if bits <= 8 and colours > 256:
        raise Refused(f"corrupt BMP: the palette-size field says {colours:,} colours, more than the 256 a "
                      "palette holds")
    if bits not in (16, 32) or compression not in (_BITFIELDS, _ALPHABITFIELDS):
        return probe_with_pillow(fh)
    _, width, height, _, masks = _layout(head)
    dtype = np.dtype(np.uint16 if max(_width(mask) for mask in masks) > 8 else np.uint8)
    return Header("BMP", width, abs(height), len(masks), dtype, "bitfields")


def _layout(head: bytes) -> tuple[int, int, int, int, tuple[int, ...]]:
    """(pixel offset, width, height (negative: rows top-down), bits per pixel, masks R, G, B[, A])."""
    if len(head) < 54:
        raise Refused("truncated BMP: the file ends inside the header")
    offset, size = struct.unpack_from("<II", head, 10)
    width, height, _, bits, compression = struct.unpack_from("<iiHHI", head, 18)
    count = 4 if size >= 56 or (size == 40 and compression == _ALPHABITFIELDS) else 3
    start = 54 if size >= 52 else 14 + size
    if len(head) < start + 4 * count:
        raise Refused("truncated BMP: the file ends inside the bit-field masks")
    masks = struct.unpack_from(f"<{count}I", head, start)
    colour = masks[:3] if any(masks[:3]) else _DEFAULT_MASKS[bits]
    for mask in masks:
        run = mask >> _shift(mask)
        if mask >> bits or run & (run + 1):
            raise Refused(f"corrupt BMP: bit-field mask {mask:#x} is not one run of bits within {bits} bits")
    return offset, width, height, bits, colour + tuple(mask for mask in masks[3:] if mask)


def _shift(mask: int) -> int:
    """The position of the lowest set bit (0 for no bits)."""
    return max((mask & -mask).bit_length() - 1, 0)


def _width(mask: int) -> int:
    return (mask >> _shift(mask)).bit_length()


def decode_bitfield_bmp(fh: BinaryIO, header: Header) -> np.ndarray:
    """The (H, W, 3 or 4) samples, top row first, each field scaled as the module docstring says."""
    data = fh.read()
    offset, width, height, bits, masks = _layout(data[:_HEADER_BYTES])
    stride = (bits * width + 31) // 32 * 4  # rows are padded to 4 bytes
    needed = offset + stride * abs(height)
    if len(data) < needed:
        raise Refused(f"truncated BMP: the pixel rows end at byte {needed:,}, the file has {len(data):,}")
    words = np.frombuffer(data, f"<u{bits // 8}", count=stride * abs(height) * 8 // bits, offset=offset)
    pixels = words.reshape(abs(height), -1)[:, :width]
    if height > 0:  # stored bottom-up
        pixels = pixels[::-1]
    return np.dstack([_scaled(pixels, mask, header.dtype) for mask in masks])


def _scaled(pixels: np.ndarray, mask: int, dtype: np.dtype) -> np.ndarray:
    """The field `mask` selects, v of n bits, as round(v * top / (2^n - 1)) in `dtype` (halves up); an
    empty mask gives zeros. Fields up to 16 bits go through a table of every value."""
    field = (pixels >> _shift(mask)) & (mask >> _shift(mask))
    full, top = (1 << _width(mask)) - 1, int(np.iinfo(dtype).max)
    values = np.arange(full + 1, dtype=np.uint64) if full < 1 << 16 else field.astype(np.uint64)
    scaled = ((values * (2 * top) + full) // max(2 * full, 1)).astype(dtype)
    return scaled[field] if full < 1 << 16 else scaled
