"""TIFF in: the first page of a TIFF file read by tifffile, as grey, RGB or RGBA samples.

tifffile handles bit depths, planar layouts, tiles and compressions (with imagecodecs); this module
turns its samples into the loader's conventions. Old-style JPEG (Compression 6, from TIFF 6.0, long
obsolete) is decoded by Pillow's libtiff instead, the reference reader of that layout. Colour models:
grey (MINISWHITE inverted), RGB, palette (looked up; a palette image's extra alpha sample kept beside
it), YCbCr JPEG (new- or old-style; decoded to RGB), CMYK (converted as R = (1 - C)(1 - K), the naive
conversion Pillow uses) and CIELAB (converted to sRGB by OpenCV, D65 white). Extra samples: the first
alpha one is kept, associated (premultiplied) alpha un-premultiplied; "unspecified" extra samples are
dropped, not taken for alpha.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

import cv2
import numpy as np
import tifffile
from PIL import Image

from pyramid_explorer.core.imageheader import (
    PILLOW_ERRORS,
    Header,
    Refused,
    first_line,
    pillow_open,
    quiet_pillow,
    returned_dtype,
    standard_dtype,
)

_MODEL_SAMPLES = {0: 1, 1: 1, 2: 3, 3: 1, 5: 4, 6: 3, 8: 3}  # colour model -> colour samples
_MODEL_NAMES = {0: "grey", 1: "grey", 2: "RGB", 3: "palette", 5: "CMYK", 6: "YCbCr", 8: "CIELAB"}
_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA = 1, 2
_OLD_JPEG, _JPEG = 6, 7


@dataclass(frozen=True)
class _Layout:
    """How a page's samples map to the returned image."""

    model: int
    colour: int  # number of colour samples, first in each pixel
    alpha: int | None  # index of the alpha sample
    premultiplied: bool


def _layout(page: tifffile.TiffPage) -> _Layout:
    model = int(page.photometric)
    name = getattr(page.photometric, "name", str(model))
    if model not in _MODEL_SAMPLES or (model == 6 and page.compression not in (_OLD_JPEG, _JPEG)):
        raise Refused(f"unsupported TIFF colour model {name} "
                      f"({', '.join(sorted(set(_MODEL_NAMES.values())))} TIFFs are supported)")
    if model == 5 and int(page.tags.valueof(332, 1)) != 1:  # InkSet 1 = CMYK
        raise Refused("unsupported TIFF: separated inks other than CMYK")
    extras = [int(kind) for kind in page.extrasamples]
    colour = page.samplesperpixel - len(extras)
    if colour != _MODEL_SAMPLES[model]:
        raise Refused(f"unsupported TIFF: {page.samplesperpixel} samples per pixel with colour model {name}")
    alphas = [i for i, kind in enumerate(extras) if kind in (_ASSOCIATED_ALPHA, _UNASSOCIATED_ALPHA)]
    alpha = colour + alphas[0] if alphas else None
    return _Layout(model, colour, alpha, alphas != [] and extras[alphas[0]] == _ASSOCIATED_ALPHA)


def _colormap(page: tifffile.TiffPage) -> np.ndarray:
    """The palette as (N, 3) RGB; 8-bit when its 16-bit entries are widened 8-bit values (v*256 or v*257)."""
    if page.colormap is None:
        raise Refused("corrupt TIFF: a palette image without a colour map")
    colormap = np.asarray(page.colormap).T
    if np.all(colormap % 256 == 0) or np.all(colormap % 257 == 0):
        return (colormap >> 8).astype(np.uint8)
    return colormap.astype(np.uint16)


def _returned_dtype(page: tifffile.TiffPage, layout: _Layout) -> np.dtype:
    if layout.model == 3:
        return _colormap(page).dtype
    if page.dtype is None:  # a sample format and bit depth tifffile has no dtype for
        bits, sample_format = page.bitspersample, page.sampleformat
        raise Refused(f"unsupported TIFF: {bits}-bit samples (sample format {sample_format})")
    if layout.model in (5, 8) and page.dtype not in (np.uint8, np.uint16):
        raise Refused(f"unsupported TIFF: {_MODEL_NAMES[layout.model]} with {page.dtype} samples")
    return returned_dtype(page.dtype)


def probe_tiff(fh: BinaryIO) -> Header:
    try:
        with tifffile.TiffFile(fh) as tif:
            page, frames = tif.pages.first, len(tif.pages)
            if page.compression not in tifffile.TIFF.DECOMPRESSORS:
                compression = getattr(page.compression, "name", page.compression)
                raise Refused(f"unsupported TIFF compression {compression}")
            if set(page.axes) - set("YXS"):
                raise Refused(f"unsupported TIFF: a page with axes {page.axes} (2-D images are supported)")
            layout = _layout(page)
            dtype = _returned_dtype(page, layout)
            orientation = int(page.tags.valueof(274, 1))
            width, height = page.imagewidth, page.imagelength
    except Refused:
        raise
    except Exception as error:  # tifffile raises many kinds on damaged files
        raise Refused(f"corrupt TIFF: {first_line(error)}") from None
    channels = 4 if layout.alpha is not None else 1 if layout.model in (0, 1) else 3
    return Header("TIFF", width, height, channels, dtype, "tiff", frames=frames,
                  orientation=orientation if 1 <= orientation <= 8 else 1)


def _check_extent(page: tifffile.TiffPage, size: int) -> None:
    """Refuse a page whose strips or tiles need bytes past the end of the file: some codecs (JPEG) would
    decode the cut data into a plausible but wrong image without a word. Uncompressed strips need only
    their rows, whatever a wrong StripByteCounts says."""
    if page.compression == 1 and not page.is_tiled:
        stride = (page.imagewidth * page.bitspersample * (page.samplesperpixel if page.planarconfig == 1
                                                          else 1) + 7) // 8
        needed = [min(count, stride * page.rowsperstrip) for count in page.databytecounts]
    else:
        needed = list(page.databytecounts)
    ends = [offset + count for offset, count in zip(page.dataoffsets, needed, strict=False) if count]
    if ends and max(ends) > size:
        raise Refused(f"truncated TIFF: the image data ends at byte {max(ends):,}, the file has {size:,}")


def decode_tiff(fh: BinaryIO, header: Header) -> np.ndarray:
    try:
        with tifffile.TiffFile(fh) as tif:
            page = tif.pages.first
            _check_extent(page, tif.filehandle.size)
            layout = _layout(page)
            if page.compression == _OLD_JPEG:
                return _decode_old_jpeg(fh, header)
            colormap = _colormap(page) if layout.model == 3 else None
            image, axes, bits = page.asarray(), page.axes, page.bitspersample
    except (Refused, MemoryError):
        raise
    except Exception as error:
        raise Refused(f"truncated or corrupt TIFF data: {first_line(error)}") from None
    image = image.transpose([axes.index(axis) for axis in "YXS" if axis in axes])
    if image.ndim == 2:
        image = image[:, :, None]
    colour = _colour(image[:, :, : layout.colour], layout.model, bits, colormap)
    if layout.alpha is None:
        return colour
    alpha = _standard_samples(image[:, :, layout.alpha], bits)
    if alpha.dtype != colour.dtype:  # 8-bit alpha beside a 16-bit palette
        alpha = alpha.astype(colour.dtype) * np.uint16(257)
    if layout.premultiplied:
        colour = unpremultiply(colour, alpha)
    if colour.ndim == 2:
        colour = np.dstack([colour, colour, colour])
    return np.dstack([colour, alpha])


# Pillow (10.1 on) turns a TIFF page upright as it loads it, as `ImageOps.exif_transpose` does; this
# turns it back, since the loader applies the orientation itself: the inverse of each of its turns.
_UNDO_UPRIGHT = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                 4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
                 6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270}


def _decode_old_jpeg(fh: BinaryIO, header: Header) -> np.ndarray:
    """The first page of an old-style JPEG TIFF, as stored, by libtiff (through Pillow): tifffile's own
    decoding of Pillow's test file differs from libtiff's, and from the PNG Pillow checks it against, by
    up to 44 levels."""
    fh.seek(0)
    try:
        with pillow_open(fh) as image, quiet_pillow():
            image.load()
            stored = image.transpose(_UNDO_UPRIGHT[header.orientation]) if header.orientation > 1 else image
            return np.array(stored.convert("L" if header.channels == 1 else "RGB"))
    except PILLOW_ERRORS as error:
        raise Refused(f"corrupt TIFF data: {first_line(error)}") from None


def _colour(samples: np.ndarray, model: int, bits: int, colormap: np.ndarray | None) -> np.ndarray:
    """(H, W) grey or (H, W, 3) RGB from a page's colour samples."""
    if colormap is not None:
        return np.take(colormap, samples[:, :, 0], axis=0, mode="clip")
    if model == 5:
        return cmyk_to_rgb(samples)
    if model == 8:
        return _lab_to_rgb(samples)
    if model in (0, 1):
        samples = samples[:, :, 0]
        if model == 0:  # MINISWHITE: 0 is white
            samples = ~samples if samples.dtype.kind == "b" else np.asarray((1 << bits) - 1 - samples,
                                                                             samples.dtype)
    return _standard_samples(samples, bits)


def _standard_samples(samples: np.ndarray, bits: int) -> np.ndarray:
    """Samples in the returned dtype; 2..7-bit ones widened to 0..255, as PNG decoders do."""
    if samples.dtype.kind == "u" and bits < 8:
        top = (1 << bits) - 1
        return ((samples.astype(np.uint16) * 255 + top // 2) // top).astype(np.uint8)
    return standard_dtype(samples)


def unpremultiply(colour: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight colour from premultiplied: floor(c * max / alpha) for integers, as Pillow's RGBa -> RGBA
    does; where alpha is 0 (or full) the samples are kept as stored."""
    a = alpha if colour.ndim == 2 else alpha[:, :, None]
    if colour.dtype.kind == "f":
        return np.where(a > 0, colour / np.where(a > 0, a, 1), colour).astype(colour.dtype)
    top = np.iinfo(colour.dtype).max
    straight = np.minimum(colour.astype(np.uint32) * top // np.maximum(a, 1), top)
    return np.where((a == 0) | (a == top), colour, straight).astype(colour.dtype)


def cmyk_to_rgb(cmyk: np.ndarray) -> np.ndarray:
    """R = (max - C)(max - K) / max rounded, likewise G from M and B from Y (Pillow's conversion)."""
    top = np.iinfo(cmyk.dtype).max
    wide = cmyk.astype(np.uint32)
    ink = top - wide[:, :, :3]
    white = top - wide[:, :, 3:]
    return ((ink * white + top // 2) // top).astype(cmyk.dtype)


def _lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """CIELAB as TIFF stores it (L* scaled to the sample range, a* and b* signed) to sRGB, D65."""
    top = float(np.iinfo(lab.dtype).max)
    signed = lab.view(np.int8 if lab.dtype == np.uint8 else np.int16).astype(np.float32)
    scale = 1.0 if lab.dtype == np.uint8 else 256.0
    lightness = lab[:, :, 0] * np.float32(100 / top)
    floats = np.dstack([lightness, signed[:, :, 1] / scale, signed[:, :, 2] / scale])
    rgb = cv2.cvtColor(floats.astype(np.float32), cv2.COLOR_Lab2RGB)
    return np.clip(np.rint(rgb * top), 0, top).astype(lab.dtype)
