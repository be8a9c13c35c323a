"""Image loading and saving: round trips, colour order, orientation, and every way a file can be refused.

References are independent of the module under test: OpenCV's own imread/imwrite, tifffile, numpy and
Pillow read and write the files, and damaged files are crafted byte by byte here.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image

from pyramid_explorer.core import io as image_io
from pyramid_explorer.core.io import (
    DEFAULT_MAX_PIXELS,
    ImageInfo,
    ImageLoadError,
    ImageSaveError,
    atomic_write,
    load_image,
    probe_image,
    save_image,
)

SHAPES = [(5, 7), (1, 1), (1, 9), (8, 1)]
CHANNELS = [1, 3, 4]


def make_image(shape: tuple[int, int], channels: int, dtype: type, seed: int = 0) -> np.ndarray:
    """Random samples over the range of `dtype`; floats include negatives, huge values, inf, NaN and -0."""
    rng = np.random.default_rng(seed)
    full = shape if channels == 1 else (*shape, channels)
    if np.dtype(dtype).kind == "f":
        image = (rng.standard_normal(full) * 1e3).astype(dtype)
        flat = image.reshape(-1)
        specials = np.array([np.nan, np.inf, -np.inf, -0.0, 3.4e38, 1e-45], dtype)
        flat[: min(flat.size, specials.size)] = specials[: flat.size]
        return image
    return rng.integers(0, np.iinfo(dtype).max, full, dtype=dtype, endpoint=True)


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit-for-bit equality, so NaN payloads and -0.0 count."""
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def refused(path: Path, **kwargs: int) -> ImageLoadError:
    """Load `path` expecting an ImageLoadError; check the message is one line naming the file."""
    with pytest.raises(ImageLoadError) as caught:
        load_image(path, **kwargs)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message
    assert caught.value.path == str(path)
    return caught.value


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_file(width: int, height: int, rows: bytes = b"\0", depth: int = 8, colour: int = 0) -> bytes:
    """A structurally valid PNG whose IHDR says `width` x `height` (rows need not match)."""
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def jpeg_file(image: np.ndarray, **save_args: object) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, "JPEG", **save_args)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------ round trips


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize(
    ("extension", "dtype"),
    [
        (".png", np.uint8),
        (".png", np.uint16),
        (".tif", np.uint8),
        (".tiff", np.uint16),
        (".tif", np.float32),
        (".npy", np.uint8),
        (".npy", np.uint16),
        (".npy", np.float32),
    ],
)
def test_round_trip_is_exact(
    tmp_path: Path, shape: tuple[int, int], channels: int, extension: str, dtype: type
):
    image = make_image(shape, channels, dtype)
    path = tmp_path / f"image{extension}"
    save_image(path, image)
    assert same_bits(load_image(path), image)
    info = probe_image(path)
    assert (info.shape, info.dtype, info.frames) == (image.shape, np.dtype(dtype).name, 1)


@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_png_on_disk_matches_opencv_and_reads_back_in_rgb_order(tmp_path: Path, channels: int, dtype: type):
    image = make_image((6, 9), channels, dtype, seed=1)
    path = tmp_path / "image.png"
    save_image(path, image)
    on_disk = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if channels > 1:
        on_disk = cv2.cvtColor(on_disk, cv2.COLOR_BGR2RGB if channels == 3 else cv2.COLOR_BGRA2RGBA)
    assert same_bits(on_disk, image)
    # and the other way: a file OpenCV wrote (BGR on disk) loads in RGB order
    other = tmp_path / "other.png"
    cv2.imwrite(str(other), on_disk if channels == 1 else image[..., [2, 1, 0, 3][:channels]])
    assert same_bits(load_image(other), image)


@pytest.mark.parametrize("channels", [3, 4])
def test_tiff_and_npy_on_disk_are_what_tifffile_and_numpy_read(tmp_path: Path, channels: int):
    image = make_image((5, 7), channels, np.float32, seed=2)
    save_image(tmp_path / "a.tif", image)
    save_image(tmp_path / "a.npy", image)
    assert same_bits(tifffile.imread(tmp_path / "a.tif"), image)
    assert same_bits(np.load(tmp_path / "a.npy"), image)


@pytest.mark.parametrize("extension", [".png", ".tif", ".jpg", ".bmp", ".webp"])
def test_pure_red_stays_red(tmp_path: Path, extension: str):
    red = np.zeros((16, 24, 3), np.uint8)
    red[..., 0] = 255
    path = tmp_path / f"red{extension}"
    if extension in (".png", ".tif"):
        save_image(path, red)
    else:
        Image.fromarray(red).save(path, **({"lossless": True} if extension == ".webp" else {}))
    reference = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    loaded = load_image(path)
    assert loaded.shape == (16, 24, 3)
    assert np.array_equal(loaded, reference)
    assert loaded[..., 0].min() >= 250 and loaded[..., 1:].max() <= 5


def test_non_ascii_path(tmp_path: Path):
    image = make_image((5, 7), 3, np.uint8)
    path = tmp_path / "ünïcødé_图像.png"
    save_image(path, image)
    assert path.exists()
    assert same_bits(load_image(path), image)
    assert probe_image(path).shape == (5, 7, 3)
    error = refused(tmp_path / "ünïcødé_缺失.png")
    assert "缺失" in str(error)


# ------------------------------------------------------------------------------- what different files give


def pillow_cases() -> list[tuple[str, str, dict[str, object]]]:
    return [
        ("png", "L", {}),
        ("png", "LA", {}),
        ("png", "P", {}),
        ("png", "1", {}),
        ("bmp", "L", {}),
        ("bmp", "P", {}),
        ("bmp", "1", {}),
        ("bmp", "RGB", {}),
        ("webp", "RGB", {"lossless": True}),
        ("webp", "RGBA", {"lossless": True}),
        ("gif", "P", {}),
        ("gif", "L", {}),
        ("gif", "P", {"transparency": 3}),
        ("tif", "1", {}),
        ("tif", "L", {}),
        ("tif", "P", {}),
        ("tif", "RGB", {"compression": "tiff_lzw"}),
        ("tif", "RGBA", {"compression": "tiff_adobe_deflate"}),
        ("tif", "I;16", {}),
        ("tif", "F", {}),
    ]


@pytest.mark.parametrize(("extension", "mode", "options"), pillow_cases())
def test_lossless_files_load_as_pillow_sees_them(tmp_path: Path, extension: str, mode: str, options: dict):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (9, 13, 4), dtype=np.uint8)
    source = Image.fromarray(rgba, "RGBA")
    if mode == "I;16":
        source = Image.fromarray(rng.integers(0, 65536, (9, 13), dtype=np.uint16))
    elif mode == "F":
        source = Image.fromarray(rng.standard_normal((9, 13)).astype(np.float32))
    else:
        source = source.convert(mode)
    path = tmp_path / f"image.{extension}"
    source.save(path, **options)

    loaded = load_image(path)
    info = probe_image(path)
    assert (info.shape, info.dtype) == (loaded.shape, loaded.dtype.name)
    assert loaded.flags.c_contiguous
    with Image.open(path) as reference:
        if loaded.dtype != np.uint8:
            assert same_bits(loaded, np.array(reference).astype(loaded.dtype))
            return
        expected = np.array(reference.convert({1: "L", 3: "RGB", 4: "RGBA"}[info.channels]))
    if extension == "gif" and info.channels == 4:
        # OpenCV leaves transparent pixels at the background colour; compare where they are opaque
        assert np.array_equal(loaded[..., 3] == 0, expected[..., 3] == 0)
        opaque = expected[..., 3] > 0
        assert np.array_equal(loaded[opaque], expected[opaque])
    else:
        assert np.array_equal(loaded, expected)


def test_grey_plus_alpha_becomes_rgba(tmp_path: Path):
    grey_alpha = make_image((5, 7), 2, np.uint16, seed=4)
    expected = grey_alpha[..., [0, 0, 0, 1]]
    tifffile.imwrite(tmp_path / "ga.tif", grey_alpha, photometric="minisblack", extrasamples=["unassalpha"])
    np.save(tmp_path / "ga.npy", grey_alpha)
    for name in ("ga.tif", "ga.npy"):
        assert same_bits(load_image(tmp_path / name), expected)
        assert probe_image(tmp_path / name).channels == 4


@pytest.mark.parametrize("depth", [2, 8, 16])
def test_grey_png_with_transparent_colour_gets_alpha(tmp_path: Path, depth: int):
    # tRNS on a grey PNG names one grey value (at the file's bit depth) as transparent
    top = (1 << depth) - 1
    values = np.array([[0, top, 1, top], [1, 1, 0, top]], np.uint16)
    key = 1
    if depth == 16:
        rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in values)
    elif depth == 8:
        rows = b"".join(b"\0" + row.astype(np.uint8).tobytes() for row in values)
    else:  # four 2-bit pixels per byte
        rows = b"".join(
            b"\0" + bytes([int(row[0]) << 6 | int(row[1]) << 4 | int(row[2]) << 2 | int(row[3])])
            for row in values
        )
    ihdr = struct.pack(">IIBBBBB", 4, 2, depth, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"tRNS", struct.pack(">H", key))
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )
    path = tmp_path / "key.png"
    path.write_bytes(data)
    loaded = load_image(path)
    dtype = np.uint16 if depth == 16 else np.uint8
    grey = (values * (65535 // top if depth == 16 else 255 // top)).astype(dtype)
    opaque = np.iinfo(dtype).max
    expected = np.dstack([grey, grey, grey, np.where(values == key, 0, opaque).astype(dtype)])
    assert same_bits(loaded, expected)
    assert probe_image(path).shape == (2, 4, 4)


def test_other_sample_types_are_converted(tmp_path: Path):
    cases = {
        "f64": np.array([[1.5, -2.25, 1e300]], np.float64),
        "f16": np.array([[1.5, -2.25, 65504]], np.float16),
        "i16": np.array([[-32768, 0, 32767]], np.int16),
        "bool": np.array([[True, False, True]]),
    }
    for name, array in cases.items():
        tifffile.imwrite(tmp_path / f"{name}.tif", array, photometric="minisblack")
        np.save(tmp_path / f"{name}.npy", array)
        for extension in (".tif", ".npy"):
            loaded = load_image(tmp_path / f"{name}{extension}")
            if array.dtype == bool:
                assert same_bits(loaded, np.where(array, 255, 0).astype(np.uint8))
            else:
                with np.errstate(over="ignore"):
                    assert same_bits(loaded, array.astype(np.float32))  # 1e300 becomes inf, documented


@pytest.mark.parametrize("dtype", [bool, np.uint8, np.uint16])
def test_tiff_with_min_is_white_is_inverted(tmp_path: Path, dtype: type):
    stored = make_image((3, 5), 1, np.uint8, seed=5) > 127 if dtype is bool else make_image((3, 5), 1, dtype)
    tifffile.imwrite(tmp_path / "negative.tif", stored, photometric="miniswhite")
    top = 255 if dtype is bool else np.iinfo(dtype).max
    expected = (top - stored.astype(np.int64) * (255 if dtype is bool else 1)).astype(
        np.uint8 if dtype is bool else dtype
    )
    assert same_bits(load_image(tmp_path / "negative.tif"), expected)


def test_multi_frame_files_load_the_first_frame_and_say_how_many(tmp_path: Path):
    frames = [make_image((5, 7), 3, np.uint8, seed=seed) for seed in range(3)]
    with tifffile.TiffWriter(tmp_path / "pages.tif") as writer:
        for frame in frames:
            writer.write(frame, photometric="rgb")
    pillow_frames = [Image.fromarray(frame) for frame in frames]
    pillow_frames[0].save(tmp_path / "anim.png", save_all=True, append_images=pillow_frames[1:])
    pillow_frames[0].save(
        tmp_path / "anim.webp", save_all=True, append_images=pillow_frames[1:], lossless=True
    )
    grey = [frame.convert("L") for frame in pillow_frames]
    grey[0].save(tmp_path / "anim.gif", save_all=True, append_images=grey[1:])

    for name in ("pages.tif", "anim.png", "anim.webp"):
        assert probe_image(tmp_path / name).frames == 3
        assert same_bits(load_image(tmp_path / name), frames[0])
    gif = load_image(tmp_path / "anim.gif")
    assert probe_image(tmp_path / "anim.gif").frames == 3
    assert np.array_equal(gif[..., 0], np.array(grey[0]))


# ------------------------------------------------------------------------------------------- orientation

PILLOW_TRANSPOSE = {  # what each EXIF orientation asks a viewer to do (EXIF 2.3, table of tag 274)
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
UNDO = {2: 2, 3: 3, 4: 4, 5: 5, 6: 8, 7: 7, 8: 6}


def stored_for(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores so that a viewer applying `orientation` shows `upright`."""
    return np.array(Image.fromarray(upright).transpose(PILLOW_TRANSPOSE[UNDO[orientation]]))


def exif_with(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.mark.parametrize("orientation", range(2, 9))
@pytest.mark.parametrize("extension", ["png", "webp", "tif"])
def test_exif_orientation_is_applied_in_lossless_formats(tmp_path: Path, orientation: int, extension: str):
    upright = make_image((5, 8), 3, np.uint8, seed=orientation)
    path = tmp_path / f"turned.{extension}"
    stored = stored_for(upright, orientation)
    if extension == "tif":
        tifffile.imwrite(path, stored, photometric="rgb", extratags=[(274, 3, 1, orientation, False)])
    else:
        Image.fromarray(stored).save(
            path, exif=exif_with(orientation), **({"lossless": True} if extension == "webp" else {})
        )
    info = probe_image(path)
    assert (info.orientation, info.width, info.height) == (orientation, 8, 5)
    assert same_bits(load_image(path), upright)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_in_jpeg(tmp_path: Path, orientation: int):
    upright = np.zeros((32, 48, 3), np.uint8)  # four flat quadrants survive JPEG well
    upright[:16, :24] = (250, 0, 0)
    upright[:16, 24:] = (0, 250, 0)
    upright[16:, :24] = (0, 0, 250)
    upright[16:, 24:] = (250, 250, 250)
    stored = upright if orientation == 1 else stored_for(upright, orientation)
    path = tmp_path / "photo.jpg"
    path.write_bytes(jpeg_file(stored, quality=95, exif=exif_with(orientation)))
    loaded = load_image(path)
    assert loaded.shape == upright.shape
    assert np.abs(loaded.astype(int) - upright).mean() < 8
    # the same pixels, turned by Pillow's reading of the tag
    reference = Image.fromarray(cv2.cvtColor(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB))
    if orientation != 1:
        reference = reference.transpose(PILLOW_TRANSPOSE[orientation])
    assert np.array_equal(loaded, np.array(reference))


def test_broken_exif_block_is_ignored(tmp_path: Path):
    image = np.full((8, 8, 3), 100, np.uint8)
    path = tmp_path / "odd.jpg"
    data = jpeg_file(image)
    # an APP1 "Exif" segment whose IFD offset points past its end
    app1 = b"Exif\0\0MM\0*\xff\xff\xff\xf0"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    assert load_image(path).shape == (8, 8, 3)
    assert probe_image(path).orientation == 1


# ------------------------------------------------------------------------------------------- refusals


def test_missing_file(tmp_path: Path):
    assert "no such file" in refused(tmp_path / "missing.png").reason


def test_folder(tmp_path: Path):
    assert "folder" in refused(tmp_path).reason


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read anything")
def test_no_permission(tmp_path: Path):
    path = tmp_path / "secret.png"
    save_image(path, np.zeros((2, 2), np.uint8))
    path.chmod(0)
    try:
        assert "permission denied" in refused(path).reason
    finally:
        path.chmod(0o644)


def test_permission_errors_are_reported_as_such(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The same cases as above and below for any user, root included: the OS refuses the open()."""
    path = tmp_path / "secret.png"
    save_image(path, np.zeros((2, 2), np.uint8))

    def denied(name: str, mode: str = "r") -> None:
        raise PermissionError(13, "Permission denied", name)

    monkeypatch.setattr(image_io, "open", denied, raising=False)
    assert "permission denied" in refused(path).reason
    with pytest.raises(ImageSaveError, match=r"cannot write in .*permission denied"):
        save_image(path, np.ones((2, 2), np.uint8))
    monkeypatch.undo()
    assert np.array_equal(load_image(path), np.zeros((2, 2), np.uint8))
    assert [p.name for p in tmp_path.iterdir()] == ["secret.png"]


def test_empty_file(tmp_path: Path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert "empty" in refused(path).reason


def test_text_renamed_png(tmp_path: Path):
    path = tmp_path / "notes.png"
    path.write_text("This is a shopping list, not a picture.\n")
    assert "not an image" in refused(path).reason


def test_unknown_binary(tmp_path: Path):
    path = tmp_path / "blob.png"
    path.write_bytes(bytes(range(200, 256)) * 4)
    reason = refused(path).reason
    assert "not an image" in reason and "c8 c9 ca" in reason


def test_truncated_png(tmp_path: Path):
    save_image(tmp_path / "whole.png", make_image((40, 50), 3, np.uint8))
    data = (tmp_path / "whole.png").read_bytes()
    for cut in (len(data) // 2, len(data) - 6, 30, 12):
        path = tmp_path / f"cut{cut}.png"
        path.write_bytes(data[:cut])
        assert "truncated PNG" in refused(path).reason


def test_png_with_damaged_data(tmp_path: Path):
    save_image(tmp_path / "whole.png", make_image((40, 50), 3, np.uint8))
    data = bytearray((tmp_path / "whole.png").read_bytes())
    data[len(data) // 2] ^= 0xFF
    path = tmp_path / "damaged.png"
    path.write_bytes(bytes(data))
    assert "CRC mismatch in chunk IDAT" in refused(path).reason


def test_truncated_jpeg(tmp_path: Path):
    data = jpeg_file(make_image((64, 64), 3, np.uint8))
    for cut in (len(data) * 2 // 3, len(data) - 2, 100, 3):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        assert "truncated JPEG" in refused(path).reason


@pytest.mark.parametrize("extension", ["bmp", "webp", "gif", "tif"])
def test_truncated_other_formats(tmp_path: Path, extension: str):
    whole = tmp_path / f"whole.{extension}"
    Image.fromarray(make_image((40, 50), 3, np.uint8)).save(whole)
    data = whole.read_bytes()
    path = tmp_path / f"cut.{extension}"
    path.write_bytes(data[: len(data) // 2])
    assert "truncated" in refused(path).reason


def test_unsupported_channel_count_and_dtype(tmp_path: Path):
    np.save(tmp_path / "five.npy", np.zeros((3, 4, 5), np.uint8))
    assert "unsupported channel count 5" in refused(tmp_path / "five.npy").reason
    np.save(tmp_path / "complex.npy", np.zeros((3, 4), np.complex64))
    assert "unsupported sample type complex64" in refused(tmp_path / "complex.npy").reason
    np.save(tmp_path / "cube.npy", np.zeros((2, 3, 4, 1), np.uint8))
    assert "shape" in refused(tmp_path / "cube.npy").reason
    tifffile.imwrite(tmp_path / "inks.tif", np.zeros((3, 4, 4), np.uint8), photometric="separated",
                     extratags=[(332, 3, 1, 2, False)])  # InkSet 2: inks named elsewhere, not CMYK
    assert "separated inks other than CMYK" in refused(tmp_path / "inks.tif").reason
    tifffile.imwrite(tmp_path / "odd.tif", np.zeros((3, 4), np.uint8))
    with tifffile.TiffFile(tmp_path / "odd.tif", mode="r+b") as tif:
        tif.pages[0].tags[259].overwrite(34999)  # a compression nobody implements
    assert "unsupported TIFF compression 34999" in refused(tmp_path / "odd.tif").reason
    tifffile.imwrite(tmp_path / "wide.tif", np.zeros((3, 4), np.uint16))
    with tifffile.TiffFile(tmp_path / "wide.tif", mode="r+b") as tif:
        tif.pages[0].tags[258].overwrite(48)  # 48-bit samples: a bit depth tifffile has no dtype for
    assert "unsupported TIFF: 48-bit samples" in refused(tmp_path / "wide.tif").reason
    (tmp_path / "header.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<u2'[\n")
    assert "corrupt NPY header" in refused(tmp_path / "header.npy").reason


def test_decoder_failures_never_leak_cv2_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    path = tmp_path / "fine.png"
    save_image(path, make_image((5, 7), 3, np.uint8))

    def raising(*args: object) -> None:
        raise cv2.error("OpenCV(5.0.0) loadsave.cpp:1: error: (-2:Unspecified error) boom in function 'x'\n")

    monkeypatch.setattr(cv2, "imdecode", raising)
    assert "corrupt PNG data" in refused(path).reason
    monkeypatch.setattr(cv2, "imdecode", lambda *args: None)
    assert "could not read it" in refused(path).reason


# ----------------------------------------------------------------------------------------------- bombs


@pytest.mark.usefixtures("no_decoding")
def test_png_bomb_is_refused_from_its_header(tmp_path: Path):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_file(100_000, 100_000))
    reason = refused(path).reason
    assert "100000 x 100000" in reason and "10,000,000,000" in reason and f"{DEFAULT_MAX_PIXELS:,}" in reason
    assert probe_image(path) == ImageInfo("PNG", 100_000, 100_000, 1, "uint8")


@pytest.mark.usefixtures("no_decoding")
def test_side_limit(tmp_path: Path):
    path = tmp_path / "wide.png"
    path.write_bytes(png_file(image_io.MAX_SIDE + 1, 1))
    assert "sides above" in refused(path).reason


def test_pixel_limit_is_inclusive(tmp_path: Path):
    path = tmp_path / "small.png"
    save_image(path, make_image((5, 7), 1, np.uint8))
    assert load_image(path, max_pixels=35).shape == (5, 7)
    assert "35 pixels, above the limit of 34" in refused(path, max_pixels=34).reason


@pytest.mark.usefixtures("no_decoding")
def test_jpeg_bomb_is_refused_from_its_header(tmp_path: Path):
    data = bytearray(jpeg_file(make_image((16, 16), 3, np.uint8)))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", 60_000, 60_000)
    path = tmp_path / "bomb.jpg"
    path.write_bytes(bytes(data))
    assert "60000 x 60000" in refused(path).reason


@pytest.mark.usefixtures("no_decoding")
def test_tiff_bomb_is_refused_from_its_header(tmp_path: Path):
    entries = [  # tag, type (3 SHORT, 4 LONG), value
        (256, 4, 100_000),
        (257, 4, 100_000),
        (258, 3, 8),
        (259, 3, 1),
        (262, 3, 1),
        (273, 4, 8),
        (277, 3, 1),
        (278, 4, 100_000),
        (279, 4, 16),
    ]
    ifd = struct.pack("<H", len(entries))
    for tag, kind, value in entries:
        ifd += struct.pack("<HHI", tag, kind, 1) + (
            struct.pack("<HH", value, 0) if kind == 3 else struct.pack("<I", value)
        )
    path = tmp_path / "bomb.tif"
    path.write_bytes(b"II*\0" + struct.pack("<I", 24) + bytes(16) + ifd + bytes(4))
    assert "100000 x 100000" in refused(path).reason


@pytest.mark.usefixtures("no_decoding")
def test_webp_bmp_gif_npy_bombs_are_refused_from_their_headers(tmp_path: Path):
    vp8x = b"VP8X" + struct.pack("<I", 10) + bytes([0, 0, 0, 0]) + (16383).to_bytes(3, "little") * 2
    vp8l = b"VP8L" + struct.pack("<I", 6) + b"\x2f" + bytes(5)
    body = b"WEBP" + vp8x + vp8l
    bombs = {
        "bomb.webp": (b"RIFF" + struct.pack("<I", len(body)) + body, "16384 x 16384"),
        "bomb.bmp": (
            b"BM"
            + struct.pack("<IIII", 100, 0, 54, 40)
            + struct.pack("<iiHHIIiiII", 40_000, -40_000, 1, 24, 0, 0, 0, 0, 0, 0),
            "40000 x 40000",
        ),
        "bomb-bit-fields.bmp": (
            b"BM"
            + struct.pack("<IIII", 100, 0, 66, 40)
            + struct.pack("<iiHHIIiiII", 40_000, 40_000, 1, 32, 3, 0, 0, 0, 0, 0)
            + struct.pack("<III", 0xFFE00000, 0x001FFC00, 0x3FF),
            "40000 x 40000",
        ),
        "bomb.gif": (
            b"GIF89a"
            + struct.pack("<HHBBB", 65535, 65535, 0, 0, 0)
            + b",\0\0\0\0\xff\xff\xff\xff\0\x02\x02\x4c\x01\0;",
            "65535 x 65535",
        ),
    }
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": (30_000, 30_000, 3)}
    )
    bombs["bomb.npy"] = (buffer.getvalue(), "30000 x 30000")
    for name, (data, size) in bombs.items():
        (tmp_path / name).write_bytes(data)
        assert size in refused(tmp_path / name).reason, name


# ------------------------------------------------------------------------------------------- errors


def test_errors_are_value_errors_and_pickle():
    error = ImageLoadError("a.png", "no such file")
    assert isinstance(error, ValueError)
    assert str(error) == "cannot load 'a.png': no such file"
    again = pickle.loads(pickle.dumps(error))
    assert (type(again), again.path, again.reason, str(again)) == (
        ImageLoadError,
        "a.png",
        "no such file",
        str(error),
    )
    saved = pickle.loads(pickle.dumps(ImageSaveError("b.png", "disk full")))
    assert str(saved) == "cannot save 'b.png': disk full"
    assert str(ImageLoadError("odd\nname.png", "reason")).count("\n") == 0


# ----------------------------------------------------------------------------------------------- saving


@pytest.mark.parametrize(
    ("name", "image", "words"),
    [
        ("f.png", np.zeros((3, 3), np.float32), "cannot hold float32"),
        ("s.png", np.zeros((3, 3), np.int16), "cannot hold int16"),
        ("f64.tif", np.zeros((3, 3), np.float64), "cannot hold float64"),
        ("two.png", np.zeros((3, 3, 2), np.uint8), "shape (3, 3, 2)"),
        ("empty.tif", np.zeros((0, 3), np.uint8), "empty"),
        ("objects.npy", np.array([[None]], object), "numbers only"),
        ("picture.jpg", np.zeros((3, 3), np.uint8), "unsupported file extension '.jpg'"),
        ("noext", np.zeros((3, 3), np.uint8), "unsupported file extension ''"),
    ],
)
def test_save_refusals_write_nothing(tmp_path: Path, name: str, image: np.ndarray, words: str):
    with pytest.raises(ImageSaveError) as caught:
        save_image(tmp_path / name, image)
    assert words in str(caught.value) and "\n" not in str(caught.value)
    assert list(tmp_path.iterdir()) == []


def test_save_into_missing_folder_or_onto_a_folder(tmp_path: Path):
    image = np.zeros((3, 3), np.uint8)
    with pytest.raises(ImageSaveError, match="does not exist"):
        save_image(tmp_path / "nowhere" / "a.png", image)
    (tmp_path / "taken.png").mkdir()
    with pytest.raises(ImageSaveError, match="it is a folder"):
        save_image(tmp_path / "taken.png", image)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken.png"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can write anywhere")
def test_save_into_read_only_folder(tmp_path: Path):
    folder = tmp_path / "locked"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        with pytest.raises(ImageSaveError, match="permission denied"):
            save_image(folder / "a.png", np.zeros((3, 3), np.uint8))
    finally:
        folder.chmod(0o755)


def failing_after_partial_write(fail_with: BaseException):
    def encoder(fh, *args: object, **kwargs: object) -> None:
        fh.write(b"partial data")
        raise fail_with

    return encoder


@pytest.mark.parametrize(
    ("extension", "target", "failure"),
    [
        (".tif", (tifffile, "imwrite"), RuntimeError("encoder exploded")),
        (".tif", (tifffile, "imwrite"), OSError(28, "No space left on device")),
        (".npy", (np, "save"), OSError(28, "No space left on device")),
        (".png", (cv2, "imencode"), cv2.error("encoder exploded")),
        (".png", (os, "replace"), PermissionError(13, "Permission denied")),
        (".png", (os, "fsync"), OSError(5, "Input/output error")),
    ],
)
def test_failed_save_leaves_existing_file_untouched_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extension: str, target: tuple, failure: BaseException
):
    path = tmp_path / f"precious{extension}"
    save_image(path, make_image((5, 7), 3, np.uint8, seed=9))
    before = path.read_bytes()
    module, attribute = target
    if attribute in ("imwrite", "save"):
        monkeypatch.setattr(module, attribute, failing_after_partial_write(failure))
    else:

        def fail(*args: object, **kwargs: object) -> None:
            raise failure

        monkeypatch.setattr(module, attribute, fail)
    with pytest.raises(ImageSaveError) as caught:
        save_image(path, make_image((5, 7), 3, np.uint8, seed=10))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_interrupted_save_cleans_up_and_propagates(tmp_path: Path):
    path = tmp_path / "a.bin"
    path.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_write(path) as fh:
        fh.write(b"new, half")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_atomic_write_replaces_and_keeps_permissions(tmp_path: Path):
    path = tmp_path / "settings.json"
    with atomic_write(path) as fh:
        fh.write(b"{}")
    assert path.read_bytes() == b"{}"
    posix = os.name == "posix"
    if posix:  # a new file gets the usual permissions, not tempfile's 0600
        umask = os.umask(0)
        os.umask(umask)
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask
        path.chmod(0o640)
    with atomic_write(path) as fh:
        fh.write(b'{"a": 1}')
    assert path.read_bytes() == b'{"a": 1}'
    assert not posix or path.stat().st_mode & 0o777 == 0o640  # a replaced file keeps its permissions
    assert [p.name for p in tmp_path.iterdir()] == ["settings.json"]
