"""Netpbm (PBM, PGM, PPM binary and plain, 8 and 16 bits, PFM) and BMP (bit-field masks, OS/2 palettes),
each file generated here and also cut short; the expected pixels come from the array written, a direct
parser or formula, and OpenCV.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
from format_checks import assert_cuts_refused, loads_as, netpbm, pillow_upright

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image

RNG = np.random.default_rng(19)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
GREY8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)
GREY16 = RNG.integers(0, 65536, (5, 7), dtype=np.uint16)
RGB16 = RNG.integers(0, 65536, (5, 7, 3), dtype=np.uint16)


# ------------------------------------------------------------------------------------------------ Netpbm


def plain(values: np.ndarray) -> bytes:
    rows = values.astype(int).reshape(values.shape[0], -1)
    return "\n".join(" ".join(map(str, row)) for row in rows).encode() + b"\n"


NETPBM: dict[str, tuple[Callable[[], bytes], np.ndarray]] = {
    "plain.pbm": (lambda: netpbm(b"P1", 7, 5, None, plain(GREY8 > 127)), np.where(GREY8 > 127, 0, 255)),
    "binary.pbm": (lambda: netpbm(b"P4", 7, 5, None, np.packbits(GREY8 > 127, axis=1).tobytes()),
                   np.where(GREY8 > 127, 0, 255)),
    "plain.pgm": (lambda: netpbm(b"P2", 7, 5, 255, plain(GREY8)), GREY8),
    "binary.pgm": (lambda: netpbm(b"P5", 7, 5, 255, GREY8.tobytes()), GREY8),
    "binary16.pgm": (lambda: netpbm(b"P5", 7, 5, 65535, GREY16.astype(">u2").tobytes()), GREY16),
    "plain16.pgm": (lambda: netpbm(b"P2", 7, 5, 65535, plain(GREY16)), GREY16),
    "plain.ppm": (lambda: netpbm(b"P3", 7, 5, 255, plain(RGB8)), RGB8),
    "binary.ppm": (lambda: netpbm(b"P6", 7, 5, 255, RGB8.tobytes()), RGB8),
    "binary16.ppm": (lambda: netpbm(b"P6", 7, 5, 65535, RGB16.astype(">u2").tobytes()), RGB16),
    "plain16.ppm": (lambda: netpbm(b"P3", 7, 5, 65535, plain(RGB16)), RGB16),
}


@pytest.mark.parametrize("name", NETPBM)
def test_netpbm(tmp_path: Path, name: str):
    make, expected = NETPBM[name]
    path = tmp_path / name
    path.write_bytes(make())
    loads_as(path, np.asarray(expected).astype(np.uint16 if "16" in name else np.uint8),
             last_byte=name.startswith("binary"))  # a plain file cut in its last number still parses


def test_netpbm_maxval_scales_to_the_full_range(tmp_path: Path):
    values = np.array([[0, 50, 100]], np.uint8)
    path = tmp_path / "max100.pgm"
    path.write_bytes(netpbm(b"P5", 3, 1, 100, values.tobytes()))
    assert np.array_equal(load_image(path), np.rint(values / 100 * 255).astype(np.uint8))
    wide = np.array([[0, 500, 1000]], np.uint16)
    path = tmp_path / "max1000.pgm"
    path.write_bytes(netpbm(b"P5", 3, 1, 1000, wide.astype(">u2").tobytes()))
    assert np.array_equal(load_image(path), np.rint(wide / 1000 * 65535).astype(np.uint16))
    path = tmp_path / "max1000.ppm"
    path.write_bytes(netpbm(b"P6", 1, 1, 1000, wide.astype(">u2").tobytes()))
    assert np.array_equal(load_image(path), np.rint(wide / 1000 * 65535).astype(np.uint16)[None])


def parse_netpbm(data: bytes) -> np.ndarray:
    """A direct reading of PBM, PGM and PPM (netpbm.sourceforge.net/doc): header numbers after the magic,
    comments skipped, one whitespace, the raster; samples scaled from 0..maxval to the full range."""
    magic, position, numbers = data[:2], 2, []
    while len(numbers) < (2 if magic in (b"P1", b"P4") else 3):
        match = re.compile(rb"(?:\s|#[^\n]*\n)*(\d+)").match(data, position)
        assert match is not None
        numbers.append(int(match[1]))
        position = match.end()
    width, height, maxval = (*numbers, 1)[:3]
    shape = (height, width, 3) if magic in (b"P3", b"P6") else (height, width)
    raster = data[position + 1 :]
    if magic == b"P1":
        values = np.array([char - ord("0") for char in raster if char in b"01"])
    elif magic == b"P4":
        values = np.unpackbits(np.frombuffer(raster, np.uint8).reshape(height, -1), axis=1)[:, :width]
    elif magic in (b"P2", b"P3"):
        values = np.array(raster.split(), np.int64)
    else:
        values = np.frombuffer(raster, ">u2" if maxval > 255 else np.uint8)
    values = values.astype(np.int64).reshape(shape)
    if magic in (b"P1", b"P4"):  # 1 is black
        return np.where(values == 1, 0, 255).astype(np.uint8)
    top = 65535 if maxval > 255 else 255
    return np.rint(values / maxval * top).astype(np.uint16 if top > 255 else np.uint8)


NETPBM_MAXVALS: dict[str, tuple[Callable[[], bytes], int]] = {  # name: (file, maxval)
    "plain1000.ppm": (lambda: netpbm(b"P3", 7, 5, 1000, plain(RGB16 % 1001)), 1000),
    "binary1000.ppm": (lambda: netpbm(b"P6", 7, 5, 1000, (RGB16 % 1001).astype(">u2").tobytes()), 1000),
    "plain1000.pgm": (lambda: netpbm(b"P2", 7, 5, 1000, plain(GREY16 % 1001)), 1000),
    "binary100.pgm": (lambda: netpbm(b"P5", 7, 5, 100, (GREY8 % 101).tobytes()), 100),
}


@pytest.mark.parametrize("name", [*NETPBM, *NETPBM_MAXVALS])
def test_netpbm_as_opencv_and_a_direct_parser_read_it(tmp_path: Path, name: str):
    make, maxval = NETPBM_MAXVALS[name] if name in NETPBM_MAXVALS else (NETPBM[name][0], 0)
    path = tmp_path / name
    path.write_bytes(make())
    image = load_image(path)
    assert np.array_equal(image, parse_netpbm(path.read_bytes()))
    top = np.iinfo(image.dtype).max
    reference = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)  # BGR, samples as stored (0..maxval)
    reference = np.rint(reference / (maxval or top) * top).astype(image.dtype)
    assert np.array_equal(image, reference if reference.ndim == 2 else reference[..., ::-1])
    if name in NETPBM_MAXVALS:
        assert_cuts_refused(path, last_byte=name.startswith("binary"))


@pytest.mark.parametrize(("scale", "order"), [(-1.0, "<f4"), (1.0, ">f4")])
def test_pfm_byte_order_from_the_scale_sign_and_rows_bottom_up(tmp_path: Path, scale: float, order: str):
    floats = RNG.standard_normal((5, 7)).astype(np.float32)
    path = tmp_path / "depth.pfm"
    path.write_bytes(f"Pf\n7 5\n{scale}\n".encode() + floats[::-1].astype(order).tobytes())
    loads_as(path, floats)


@pytest.mark.parametrize(("scale", "order", "size"), [("-1.0", "<f4", (5, 7)), ("2.5", ">f4", (5, 7)),
                                                     ("1", ">f4", (1, 1))])
def test_colour_pfm(tmp_path: Path, scale: str, order: str, size: tuple[int, int]):
    floats = RNG.standard_normal((*size, 3)).astype(np.float32)
    path = tmp_path / "radiance.pfm"
    header = f"PF\n{size[1]} {size[0]}\n{scale}\n".encode()
    path.write_bytes(header + floats[::-1].astype(order).tobytes())
    loads_as(path, floats)


@pytest.mark.parametrize("magic", ["Pf", "PF"])
@pytest.mark.parametrize("scale", [-1.0, 2.0, -0.5])
def test_pfm_as_opencv_reads_it_times_the_scale(tmp_path: Path, magic: str, scale: float):
    floats = RNG.standard_normal((5, 7, 3) if magic == "PF" else (5, 7)).astype(np.float32)
    path = tmp_path / "depth.pfm"
    order = "<f4" if scale < 0 else ">f4"
    path.write_bytes(f"{magic}\n7 5\n{scale}\n".encode() + floats[::-1].astype(order).tobytes())
    reference = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) * np.float32(abs(scale))  # OpenCV divides by it
    image = load_image(path)
    assert np.array_equal(image, floats)
    assert np.array_equal(image, reference if magic == "Pf" else reference[..., ::-1])


# --------------------------------------------------------------------------------------------------- BMP


def bmp(info: bytes, palette: bytes, rows: bytes) -> bytes:
    offset = 14 + len(info) + len(palette)
    return b"BM" + struct.pack("<IHHI", offset + len(rows), 0, 0, offset) + info + palette + rows


def test_bmp_bit_field_masks_are_applied(tmp_path: Path):
    rgba = RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)
    # BITMAPV4HEADER-style BI_BITFIELDS: alpha in the low byte, then blue, green, red
    masks = (0xFF000000, 0x00FF0000, 0x0000FF00, 0x000000FF)  # red, green, blue, alpha
    pixels = (rgba[..., 0].astype(np.uint32) << 24 | rgba[..., 1].astype(np.uint32) << 16
              | rgba[..., 2].astype(np.uint32) << 8 | rgba[..., 3])
    info = struct.pack("<IiiHHIIiiII", 108, 7, -5, 1, 32, 3, pixels.nbytes, 2835, 2835, 0, 0)
    info += struct.pack("<IIII", *masks) + bytes(108 - 56)
    path = tmp_path / "masks.bmp"
    path.write_bytes(bmp(info, b"", pixels.astype("<u4").tobytes()))
    loads_as(path, rgba)


# name: (bits per pixel, info header size, compression (3: BI_BITFIELDS, 6: BI_ALPHABITFIELDS),
#        masks R, G, B[, A])
BIT_FIELDS = {
    "rgb32-111110": (32, 40, 3, (0xFFE00000, 0x001FFC00, 0x000003FF)),
    "rgb32-20-6-6": (32, 40, 3, (0xFFFFF000, 0x00000FC0, 0x0000003F)),  # a field over 16 bits
    "rgb32-unusual-order": (32, 52, 3, (0xFF000000, 0x00000FF0, 0x00FF0000)),
    "rgba32-1010102-v5": (32, 124, 3, (0x3FF00000, 0x000FFC00, 0x000003FF, 0xC0000000)),
    "rgb16-565": (16, 40, 3, (0xF800, 0x07E0, 0x001F)),
    "rgba16-4444-alphabitfields": (16, 40, 6, (0x0F00, 0x00F0, 0x000F, 0xF000)),
}


@pytest.mark.parametrize("size", [(5, 7), (1, 1)])
@pytest.mark.parametrize("top_down", [False, True])
@pytest.mark.parametrize("name", BIT_FIELDS)
def test_bmp_bit_fields_scale_each_field_to_the_full_range(tmp_path: Path, name: str, top_down: bool,
                                                            size: tuple[int, int]):
    bits, header_size, compression, masks = BIT_FIELDS[name]
    shifts = [(mask & -mask).bit_length() - 1 for mask in masks]
    widths = [(mask >> shift).bit_length() for mask, shift in zip(masks, shifts, strict=True)]
    fields = [RNG.integers(0, 1 << width, size, dtype=np.uint64) for width in widths]
    pixels = np.bitwise_or.reduce([field << np.uint64(at) for field, at in zip(fields, shifts, strict=True)])
    rows = np.zeros((size[0], (bits * size[1] + 31) // 32 * 4), np.uint8)  # rows padded to 4 bytes
    rows[:, : size[1] * bits // 8] = pixels.astype(f"<u{bits // 8}").view(np.uint8).reshape(size[0], -1)
    height = -size[0] if top_down else size[0]
    info = struct.pack("<IiiHHIIiiII", header_size, size[1], height, 1, bits, compression, rows.nbytes,
                       0, 0, 0, 0)
    stored_masks = struct.pack(f"<{len(masks)}I", *masks)
    if header_size > 40:  # the masks are part of the header
        info = (info + stored_masks).ljust(header_size, b"\0")
        stored_masks = b""
    path = tmp_path / f"{name}.bmp"
    path.write_bytes(bmp(info, stored_masks, (rows if top_down else rows[::-1]).tobytes()))
    top = 65535 if max(widths) > 8 else 255
    # the documented rule: an n-bit field v becomes round(v * top / (2^n - 1)), halves up
    expected = np.dstack([np.floor(field * top / ((1 << width) - 1) + 0.5)
                          for field, width in zip(fields, widths, strict=True)])
    loads_as(path, expected.astype(np.uint16 if top > 255 else np.uint8))
    if name == "rgb16-565":  # Pillow widens 5 and 6 bits by repeating them: at most 1 level away
        assert np.abs(pillow_upright(path, "RGB").astype(int) - load_image(path)).max() <= 1


def test_bmp_bit_field_mask_with_a_gap_is_refused(tmp_path: Path):
    info = struct.pack("<IiiHHIIiiII", 40, 1, 1, 1, 32, 3, 4, 0, 0, 0, 0)
    path = tmp_path / "gap.bmp"
    path.write_bytes(bmp(info, struct.pack("<III", 0xFF00FF00, 0x00FF0000, 0x000000FF), bytes(4)))
    with pytest.raises(ImageLoadError, match=r"gap.bmp': corrupt BMP: bit-field mask 0xff00ff00 is not one"):
        load_image(path)


def test_os2_palette_bmp_keeps_its_colours(tmp_path: Path):
    palette = RNG.integers(0, 256, (256, 3), dtype=np.uint8)
    index = RNG.integers(0, 256, (5, 8), dtype=np.uint8)
    info = struct.pack("<IHHHH", 12, 8, 5, 1, 8)  # BITMAPCOREHEADER: 3-byte BGR palette entries
    path = tmp_path / "os2.bmp"
    path.write_bytes(bmp(info, palette[:, ::-1].tobytes(), index[::-1].tobytes()))
    loads_as(path, palette[index])


def test_bmp_palette_size_field_above_256_is_refused_by_name(tmp_path: Path):
    info = struct.pack("<IiiHHIIiiII", 40, 2, 1, 1, 8, 0, 4, 0, 0, 300, 0)  # biClrUsed 300
    path = tmp_path / "oversized-palette.bmp"
    path.write_bytes(bmp(info, bytes(4 * 300), bytes(4)))
    for read in (load_image, probe_image):
        with pytest.raises(ImageLoadError, match=r"corrupt BMP: the palette-size field says 300 colours"):
            read(path)
