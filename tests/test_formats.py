"""Formats and layouts the loader must decode right, each file generated here and also cut short (Netpbm
and BMP: test_netpbm_bmp.py).

Every case knows its expected pixels independently: the array written (Netpbm, BMP, TIFF written byte
by byte or by tifffile), a direct formula (un-premultiplying, CMYK, CIELAB via scikit-image), or
Pillow's own reading with `ImageOps.exif_transpose` (GIF, APNG, TGA, JPEG 2000, AVIF, HEIC). A cut file
must be refused with one line naming the file.
"""

from __future__ import annotations

import io
import re
import struct
import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import tifffile
from format_checks import assert_cuts_refused, loads_as, netpbm, pillow_upright, quiet_load
from PIL import Image, PngImagePlugin
from skimage.color import lab2rgb

from pyramid_explorer.core.io import ImageLoadError, load_image, probe_image, supported_suffixes

DATA = Path(__file__).parent / "data"
RNG = np.random.default_rng(17)
RGB8 = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
GREY8 = RNG.integers(0, 256, (5, 7), dtype=np.uint8)


# -------------------------------------------------------------------------------------------------- TIFF


def tiff_bytes(array: np.ndarray, **options: object) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    return buffer.getvalue()


def test_palette_tiff_with_an_alpha_sample(tmp_path: Path):
    colormap = RNG.integers(0, 256, (3, 256), dtype=np.uint16) * 257
    samples = RNG.integers(0, 256, (5, 7, 2), dtype=np.uint8)
    path = tmp_path / "palette-alpha.tif"
    path.write_bytes(tiff_bytes(samples, photometric="minisblack", extrasamples=["unassalpha"],
                                planarconfig="contig", extratags=[(320, 3, colormap.size, colormap.ravel())]))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags[262].overwrite(3)  # PhotometricInterpretation: palette
    expected = np.dstack([(colormap.T >> 8).astype(np.uint8)[samples[..., 0]], samples[..., 1]])
    assert probe_image(path).shape == (5, 7, 4)
    loads_as(path, expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_premultiplied_tiff_is_unpremultiplied(tmp_path: Path, dtype: type):
    top = np.iinfo(dtype).max
    straight = RNG.integers(0, top + 1, (5, 7, 3)).astype(np.int64)
    alpha = RNG.integers(0, top + 1, (5, 7)).astype(np.int64)
    alpha[0, :3] = (0, top, 1)
    stored = straight * alpha[..., None] // top  # premultiplied, as a renderer stores it
    path = tmp_path / "premultiplied.tif"
    path.write_bytes(tiff_bytes(np.dstack([stored, alpha]).astype(dtype), photometric="rgb",
                                extrasamples=["assocalpha"]))
    a = alpha[..., None]
    expected = np.where((a == 0) | (a == top), stored, np.minimum(stored * top // np.maximum(a, 1), top))
    loads_as(path, np.dstack([expected, alpha]).astype(dtype))
    if dtype == np.uint8:  # Pillow reads it as RGBa and un-premultiplies the same way
        assert np.array_equal(load_image(path), pillow_upright(path, "RGBA"))


def test_unspecified_extra_sample_is_dropped_not_taken_for_alpha(tmp_path: Path):
    samples = RNG.integers(0, 256, (2, 5, 7), dtype=np.uint8)
    path = tmp_path / "grey-extra.tif"
    path.write_bytes(tiff_bytes(samples, photometric="minisblack", extrasamples=["unspecified"],
                                planarconfig="separate"))
    loads_as(path, samples[0])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_cmyk_tiff_becomes_rgb(tmp_path: Path, dtype: type):
    top = np.iinfo(dtype).max
    cmyk = RNG.integers(0, top + 1, (5, 7, 4)).astype(dtype)
    path = tmp_path / "cmyk.tif"
    path.write_bytes(tiff_bytes(cmyk, photometric="separated"))
    wide = cmyk.astype(np.int64)
    expected = np.rint((top - wide[..., :3]) * (top - wide[..., 3:]) / top).astype(dtype)
    loads_as(path, expected)
    if dtype == np.uint8:
        assert np.array_equal(load_image(path), pillow_upright(path, "RGB"))


def test_cielab_tiff_becomes_srgb(tmp_path: Path):
    lab = np.dstack([RNG.uniform(30, 90, (5, 7)), RNG.uniform(-20, 20, (5, 7)), RNG.uniform(-20, 20, (5, 7))])
    stored = np.dstack([np.rint(lab[..., 0] * 255 / 100).astype(np.uint8),
                        np.rint(lab[..., 1:]).astype(np.int8).view(np.uint8)])
    path = tmp_path / "lab.tif"
    path.write_bytes(tiff_bytes(stored, photometric="cielab"))
    image = load_image(path).astype(np.float64)
    exact = np.dstack([stored[..., 0] / 255 * 100, stored[..., 1:].view(np.int8)])
    reference = np.rint(lab2rgb(exact) * 255)  # scikit-image, D65 like the loader
    assert np.abs(image - reference).max() <= 1
    assert_cuts_refused(path)


def test_wrong_strip_byte_count_with_all_the_data_loads(tmp_path: Path):
    path = tmp_path / "wrong-count.tif"
    path.write_bytes(tiff_bytes(GREY8, photometric="minisblack"))
    with tifffile.TiffFile(path, mode="r+b") as tif:
        tif.pages[0].tags[279].overwrite(10_000)  # StripByteCounts past the end of the file
    loads_as(path, GREY8)


def test_old_style_jpeg_tiff_loads_as_its_reference_decoding(tmp_path: Path):
    """Pillow's test file (tests/data/README.md) against every 7th pixel of Pillow's reference PNG."""
    data = (DATA / "old-style-jpeg-compression.tif").read_bytes()
    path = tmp_path / "old-jpeg.tif"
    path.write_bytes(data)
    image = load_image(path)
    with Image.open(DATA / "old-style-jpeg-compression-every-7th.png") as reference:
        expected = np.array(reference).astype(np.int64)
    assert image.shape == (870, 4160, 3) and probe_image(path).shape == image.shape
    assert np.abs(image[::7, ::7] - expected).max() <= 2  # JPEG: a few levels between IDCTs
    for orientation in (2, 6):
        turned = tmp_path / f"old-jpeg-{orientation}.tif"
        turned.write_bytes(data[:102] + bytes([orientation]) + data[103:])  # the Orientation tag's value
        assert probe_image(turned).orientation == orientation
        assert np.array_equal(load_image(turned), pillow_upright(turned, "RGB"))
    assert np.array_equal(load_image(turned), image.swapaxes(0, 1)[:, ::-1])  # 6: turned 90 degrees right
    assert_cuts_refused(path)
    assert quiet_load(path) == ""  # libtiff says nothing on stderr either


# ----------------------------------------------------------------------------------------- GIF and APNG


def test_gif_with_a_transparent_first_frame_has_alpha(tmp_path: Path):
    index = RNG.integers(0, 16, (5, 7), dtype=np.uint8)
    index[0, :2] = (3, 15)  # the transparent index and the whole 16-colour range appear
    first = Image.fromarray(index, "P")
    first.putpalette(RNG.integers(0, 256, 48, dtype=np.uint8).tobytes())
    second = Image.fromarray(RGB8).quantize(16)
    path = tmp_path / "first-transparent.gif"
    first.save(path, save_all=True, append_images=[second], transparency=3, disposal=2, optimize=False)
    image = load_image(path)
    assert image.shape == (5, 7, 4) and np.array_equal(image[..., 3] == 0, index == 3)
    assert np.array_equal(image, pillow_upright(path, "RGBA"))
    assert probe_image(path).frames == 2
    assert_cuts_refused(path)


@pytest.mark.parametrize("default_image", [False, True])
def test_apng_loads_the_default_image_as_pillow_does(tmp_path: Path, default_image: bool):
    frames = [Image.fromarray(RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)) for _ in range(3)]
    path = tmp_path / "animated.png"
    frames[0].save(path, save_all=True, append_images=frames[1:], default_image=default_image)
    expected = np.array(frames[0])  # the IDAT image, hidden from the animation or its first frame
    loads_as(path, expected)
    with Image.open(path) as reference:
        assert probe_image(path).frames == reference.n_frames


def test_apng_declaring_one_frame_follows_the_same_rule(tmp_path: Path):
    hidden, shown = (Image.fromarray(RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)) for _ in range(2))
    path = tmp_path / "one-frame.png"
    hidden.save(path, save_all=True, append_images=[shown], default_image=True)
    with Image.open(path) as reference:
        expected = np.array(reference.convert("RGB"))
    assert np.array_equal(expected, np.array(hidden))
    loads_as(path, expected)


# ---------------------------------------------------------------------------------------- other formats


@pytest.mark.parametrize(("mode", "options"), [("RGB", {}), ("RGBA", {}), ("L", {}),
                                               ("RGB", {"compression": "tga_rle"})])
def test_tga(tmp_path: Path, mode: str, options: dict):
    source = Image.fromarray(RNG.integers(0, 256, (5, 7, 4), dtype=np.uint8)).convert(mode)
    path = tmp_path / "render.tga"
    source.save(path, **options)
    loads_as(path, np.array(source), last_byte=False)  # the last bytes are the TGA 2.0 footer


@pytest.mark.parametrize(("fmt", "suffix"), [("JPEG2000", ".jp2"), ("AVIF", ".avif"), ("QOI", ".qoi"),
                                             ("SGI", ".sgi"), ("ICO", ".ico"), ("HEIF", ".heic")])
def test_formats_pillow_decodes_load_as_pillow_reads_them(tmp_path: Path, fmt: str, suffix: str):
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif")
    path = tmp_path / f"picture{suffix}"
    source = Image.fromarray(np.kron(RGB8, np.ones((4, 4, 1), np.uint8)))
    source.save(path, fmt, **({"sizes": [(28, 20)]} if fmt == "ICO" else {}))
    expected = pillow_upright(path, "RGB")
    image = load_image(path)
    assert np.array_equal(image, expected) and probe_image(path).shape == image.shape
    assert suffix in supported_suffixes()
    # QOI ends with an end marker, ICO here with its embedded PNG's IEND, neither of them pixels
    assert_cuts_refused(path, last_byte=fmt not in ("QOI", "ICO"))


def test_jpeg_with_junk_before_a_marker_loads_quietly(tmp_path: Path):
    buffer = io.BytesIO()
    Image.fromarray(RGB8).save(buffer, "JPEG", quality=95)
    data = buffer.getvalue()
    table = data.index(b"\xff\xdb")
    path = tmp_path / "junk.jpg"
    path.write_bytes(data[:table] + b"\x00\x13\x37" + data[table:])
    with Image.open(path) as reference:
        expected = np.array(reference)
    loads_as(path, expected)
    assert quiet_load(path) == ""


def test_libpng_prints_nothing_for_odd_ancillary_chunks(tmp_path: Path):
    path = tmp_path / "odd-chunks.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("bad\x01keyword", "libpng warns about invalid keywords")
    Image.fromarray(RGB8).save(path, pnginfo=info, icc_profile=b"not a real profile" * 10)
    assert quiet_load(path) == ""
    assert np.array_equal(load_image(path), RGB8)


@pytest.mark.parametrize("how", ["xmp", "imagemagick"])
def test_orientation_from_xmp_or_an_imagemagick_text_chunk(tmp_path: Path, how: str):
    info = PngImagePlugin.PngInfo()
    if how == "xmp":
        info.add_itxt("XML:com.adobe.xmp", '<x:xmpmeta><rdf:Description tiff:Orientation="6"/></x:xmpmeta>')
    else:
        exif = Image.Exif()
        exif[0x0112] = 6
        block = exif.tobytes()
        text = "\nexif\n" + f"{len(block):8d}\n" + block.hex() + "\n"
        info.add_text("Raw profile type exif", text, zip=True)
    path = tmp_path / "turned.png"
    Image.fromarray(RGB8).save(path, pnginfo=info)
    expected = pillow_upright(path, "RGB")
    assert expected.shape == (7, 5, 3)
    assert np.array_equal(load_image(path), expected)
    assert probe_image(path).orientation == 6


def test_heic_without_the_plugin_names_the_extra(tmp_path: Path):
    path = tmp_path / "phone.heic"
    path.write_bytes(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + bytes(64))
    code = ("import sys\nsys.modules['pillow_heif'] = None\n"
            "from pyramid_explorer.core.io import ImageLoadError, load_image\n"
            "try:\n    load_image(sys.argv[1])\nexcept ImageLoadError as error:\n    print(error)\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                            timeout=120, check=True)
    assert "pyramid-explorer[heif]" in result.stdout and str(path) in result.stdout


def test_messages_name_the_format_or_the_supported_list(tmp_path: Path):
    binary = tmp_path / "netpbm-named.png"
    binary.write_bytes(netpbm(b"P5", 7, 5, 255, GREY8.tobytes()))
    assert load_image(binary).shape == (5, 7)  # content decides, not the extension; never "text"
    text = tmp_path / "notes.png"
    text.write_text("hello")
    with pytest.raises(ImageLoadError, match=r"holds text\); supported formats: .*Netpbm.*TGA"):
        load_image(text)


@pytest.mark.parametrize(("head", "name"), [(b"v/1\x01", "OpenEXR"), (b"\xff\x0a", "JPEG XL"),
                                          (b"P7\nWIDTH 1\nHEIGHT 1\n", "PAM (Netpbm)")])
def test_known_unsupported_formats_are_named(tmp_path: Path, head: bytes, name: str):
    path = tmp_path / "picture"
    path.write_bytes(head + bytes(64))
    with pytest.raises(ImageLoadError, match=rf"{re.escape(name)} files are not supported; supported for"):
        load_image(path)


def test_supported_suffixes_cover_the_common_formats():
    suffixes = supported_suffixes()
    for suffix in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".gif", ".npy", ".pgm", ".ppm",
                   ".pbm", ".pfm", ".tga", ".jp2", ".j2k", ".avif", ".ico", ".psd", ".qoi", ".sgi"):
        assert suffix in suffixes, suffix
    assert all(suffix.startswith(".") and suffix == suffix.lower() for suffix in suffixes)


def test_loads_in_threads_leave_the_warning_filters_as_they_were(tmp_path: Path):
    """Pillow's warnings about damaged metadata are silenced per call; concurrent calls must not leave
    the silencing installed (filters restored out of order)."""
    buffer = io.BytesIO()
    Image.fromarray(RGB8).save(buffer, "JPEG")
    data = buffer.getvalue()
    app1 = b"Exif\0\0MM\0*\xff\xff\xff\xf0"  # an EXIF block pointing past its end: Pillow warns
    path = tmp_path / "broken-exif.jpg"
    path.write_bytes(data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:])
    before = list(warnings.filters)
    with ThreadPoolExecutor(4) as pool:
        shapes = list(pool.map(lambda _: load_image(path).shape, range(32)))
    assert shapes == [(5, 7, 3)] * 32
    assert warnings.filters == before
