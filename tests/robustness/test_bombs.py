"""Decompression bombs: small files whose headers claim huge images are refused before any pixel memory.

tests/test_io.py has one bomb per format with the pixel decoders disabled. Here the same rule is proven
across every format and both limits (a 40000 x 40000 image, above the pixel limit; a (2^20 + 1)-pixel
wide one, above the side limit, in every format whose header can say so), with the allocator watched
(tracemalloc sees numpy's and OpenCV's output allocations), and through the paths a user takes: the
command line's `info` (header only, so it answers) and `export` (one line, exit status 1), and the
memory budget computed from the header.
"""

from __future__ import annotations

import io
import struct
import tracemalloc
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pyramid_explorer import commands, jobs
from pyramid_explorer.core.budget import MemoryBudgetError, check_memory, estimate_memory
from pyramid_explorer.core.io import DEFAULT_MAX_PIXELS, MAX_SIDE, ImageLoadError, load_image, probe_image
from pyramid_explorer.jobs import OpenRequest, TooLarge

HUGE = (40_000, 40_000)
WIDE = (MAX_SIDE + 1, 1)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _png_chunk(b"IEND", b""))


def jpeg_bomb(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 20, 30)).save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def tiff_bomb(width: int, height: int) -> bytes:
    entries = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, 1), (262, 3, 1), (273, 4, 8),
               (277, 3, 1), (278, 4, height), (279, 4, 16)]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        packed = struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        ifd += struct.pack("<HHI", tag, kind, 1) + packed
    return b"II*\0" + struct.pack("<I", 24) + bytes(16) + ifd + bytes(4)


def bmp_bomb(width: int, height: int) -> bytes:
    return (b"BM" + struct.pack("<IIII", 100, 0, 54, 40)
            + struct.pack("<iiHHIIiiII", width, -height, 1, 24, 0, 0, 0, 0, 0, 0) + bytes(64))


def webp_bomb(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") + (
        height - 1).to_bytes(3, "little")
    vp8l = b"VP8L" + struct.pack("<I", 6) + b"\x2f" + bytes(5)
    body = b"WEBP" + vp8x + vp8l
    return b"RIFF" + struct.pack("<I", len(body)) + body


def gif_bomb(width: int, height: int) -> bytes:
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b",\0\0\0\0" + struct.pack("<HH", width, height) + b"\0\x02\x02\x4c\x01\0;")


def npy_bomb(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": "<u2", "fortran_order": False,
                                                  "shape": (height, width, 3)})
    return buffer.getvalue() + bytes(64)


def pgm_bomb(width: int, height: int) -> bytes:
    return f"P5\n{width} {height}\n255\n".encode() + bytes(64)


def tga_bomb(width: int, height: int) -> bytes:  # 16-bit sizes
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 24, 0x20) + bytes(64)


BOMBS = {"png": png_bomb, "jpg": jpeg_bomb, "tif": tiff_bomb, "bmp": bmp_bomb, "webp": webp_bomb,
         "gif": gif_bomb, "npy": npy_bomb, "pgm": pgm_bomb, "tga": tga_bomb}
SIDE_LIMITED = ("jpg", "gif", "tga")  # 16-bit sizes: these headers cannot claim more than 65535 pixels a side
CASES = [(ext, HUGE) for ext in BOMBS] + [(ext, WIDE) for ext in BOMBS if ext not in SIDE_LIMITED]


def write_bomb(folder: Path, ext: str, size: tuple[int, int]) -> Path:
    path = folder / f"bomb {size[0]}x{size[1]}.{ext}"
    path.write_bytes(BOMBS[ext](*size))
    assert path.stat().st_size < 1000
    return path


@pytest.mark.usefixtures("no_decoding")
@pytest.mark.parametrize(("ext", "size"), CASES, ids=[f"{ext}-{w}x{h}" for ext, (w, h) in CASES])
def test_bomb_is_refused_from_its_header_with_the_size_and_the_limit(tmp_path: Path, ext: str,
                                                                     size: tuple[int, int]):
    path = write_bomb(tmp_path, ext, size)
    info = probe_image(path)  # the header itself is readable: the size is reported, not refused
    assert (info.width, info.height) == size
    tracemalloc.start()
    try:
        with pytest.raises(ImageLoadError) as caught:
            load_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, f"{peak:,} bytes allocated while refusing"
    reason = caught.value.reason
    assert f"{size[0]} x {size[1]}" in reason
    if size == HUGE:
        assert f"{size[0] * size[1]:,}" in reason and f"above the limit of {DEFAULT_MAX_PIXELS:,}" in reason
    else:
        assert f"sides above {MAX_SIDE:,} pixels are not supported" in reason
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.usefixtures("no_decoding")
def test_a_raised_pixel_limit_still_keeps_the_side_limit(tmp_path: Path):
    path = write_bomb(tmp_path, "png", WIDE)
    with pytest.raises(ImageLoadError, match="sides above"):
        load_image(path, max_pixels=10**12)


@pytest.mark.usefixtures("no_decoding")
def test_memory_budget_refuses_from_the_header(tmp_path: Path):
    """Below the pixel limit but above the memory budget: the numbers come from the header alone."""
    path = write_bomb(tmp_path, "png", (14_000, 14_000))
    info = probe_image(path)
    with pytest.raises(MemoryBudgetError, match="14000 x 14000 x 3 uint8"):
        check_memory(estimate_memory(info.shape, info.dtype), 4 << 30)


@pytest.mark.usefixtures("no_decoding")
def test_window_open_job_refuses_from_the_header_and_offers_a_preview(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch):
    """The window's open job (Qt-free) checks the budget before loading: no pixel is decoded."""
    monkeypatch.setenv("PYRAMID_EXPLORER_MEMORY_BUDGET", "1G")
    path = write_bomb(tmp_path, "png", (12_000, 9_000))
    items = list(jobs.open_image(OpenRequest(7, path=str(path), view_budget=256 << 20)))
    refusal = items[-1]
    assert isinstance(refusal, TooLarge) and refusal.image_id == 7 and refusal.path == str(path)
    assert refusal.message.startswith(f"{path.name}: exploring 12000 x 9000 x 3 uint8")
    assert "above the memory budget of 1.0 GB" in refusal.message and "\n" not in refusal.message
    assert refusal.preview_steps is not None and refusal.preview_steps > 0
    assert f"downscaled {2 ** refusal.preview_steps}x" in refusal.message


@pytest.mark.usefixtures("no_decoding")
def test_command_line_info_reads_the_header_and_export_refuses_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = write_bomb(tmp_path, "tif", HUGE)
    assert commands.main(["info", str(path), "--json"]) == commands.EXIT_OK
    assert '"width": 40000' in capsys.readouterr().out
    out = tmp_path / "out"
    assert commands.main(["export", str(path), "--out", str(out), "--quiet"]) == commands.EXIT_FAILED
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and "40000 x 40000" in lines[0] and str(path) in lines[0]
    assert not out.exists() or not any(out.rglob("*.*"))
