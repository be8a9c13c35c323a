"""Gaussian and Laplacian pyramids (Burt & Adelson 1983) on OpenCV's pyrDown/pyrUp, with exact collapse.

Conventions:
- Level 0 is the input; level i+1 is `cv2.pyrDown(level_i)`, of size ((w+1)//2, (h+1)//2).
- `border` is the border mode of the reduction (pyrDown: BORDER_REFLECT_101, BORDER_REFLECT,
  BORDER_REPLICATE or BORDER_WRAP). OpenCV's pyrUp only supports BORDER_REFLECT_101, so for other modes the
  expansion pads the coarse level by one pixel with that mode, expands, and crops; the Laplacian bands and
  the collapse use the same expansion, which is what makes reconstruction exact for every border.
- The expansion of level i+1 is always made at the exact size of level i (`dstsize`), so odd sizes
  (153 -> 77 -> 154) never break.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pyramid_explorer.core.arrays import check_image, to_dtype

BORDERS = {
    cv2.BORDER_REFLECT_101: "reflect101",
    cv2.BORDER_REFLECT: "reflect",
    cv2.BORDER_REPLICATE: "replicate",
    cv2.BORDER_WRAP: "wrap",
}
# Band storage -> the dtype its bands are kept in; the only table of it.
STORAGE_DTYPES: dict[str, np.dtype] = {
    "float32": np.dtype(np.float32),
    "int16": np.dtype(np.int16),
    "uint8_saturate": np.dtype(np.uint8),
}
STORAGES = tuple(STORAGE_DTYPES)
# Float32 bands of a uint8 image are exact multiples of 1/64: pyrUp of integer samples sums them with
# integer weights (1 6 1 and 4 4 per axis) whose 2-D sums are 64, exactly in float32 (< 2**24), then
# multiplies by 1/64; fine - up is then k/64 with |k| <= 255 * 64 = 16320, also exact. So band * 64 is
# an int16 holding the band losslessly (`core.omezarr`'s scaled-int16 band encoding).
UINT8_BAND_SCALE = 64
BAND_ENCODINGS = ("scaled-int16", "float32")  # how an OME-Zarr export stores float32 bands of uint8 images


def storage_allowed(storage: str, dtype: np.dtype | type) -> bool:
    """The one dtype rule of band storage: int16 and uint8_saturate bands exist for uint8 images only."""
    return storage == "float32" or np.dtype(dtype) == np.uint8


def max_levels(shape: Sequence[int]) -> int:
    """Number of levels `levels=None` builds: halving (rounding up) until the image is 1x1."""
    h, w = int(shape[0]), int(shape[1])
    if h < 1 or w < 1:
        raise ValueError(f"shape {tuple(shape)} has an empty side")
    count = 1
    while h > 1 or w > 1:
        h, w = (h + 1) // 2, (w + 1) // 2
        count += 1
    return count


def level_sizes(shape: Sequence[int], levels: int | None = None) -> list[tuple[int, int]]:
    """(height, width) of every level, without building the pyramid."""
    h, w = int(shape[0]), int(shape[1])
    sizes = [(h, w)]
    for _ in range(_check_levels(shape, levels) - 1):
        h, w = (h + 1) // 2, (w + 1) // 2
        sizes.append((h, w))
    return sizes


def _check_levels(shape: Sequence[int], levels: int | None) -> int:
    most = max_levels(shape)
    if levels is None:
        return most
    if isinstance(levels, bool) or not isinstance(levels, int | np.integer) or not 1 <= levels <= most:
        raise ValueError(f"levels must be an integer from 1 to {most} for an image of shape {tuple(shape)}, "
                         f"got {levels!r}")
    return int(levels)


def _check_border(border: int) -> int:
    if border not in BORDERS:
        allowed = ", ".join(f"cv2.BORDER_{name.upper()}" for name in BORDERS.values())
        raise ValueError(f"border {border!r} is not supported; allowed: {allowed}")
    return border


def check_options(shape: Sequence[int], dtype: np.dtype | type, levels: int | None = None,
                  border: int = cv2.BORDER_REFLECT_101, storage: str = "float32") -> int:
    """Check the arguments every pyramid builder shares (this one and `core.chunked`); returns the
    number of levels to build. ValueError naming what is allowed otherwise."""
    _check_border(border)
    if storage not in STORAGES:
        raise ValueError(f"storage {storage!r} is not supported; allowed: {', '.join(STORAGES)}")
    if not storage_allowed(storage, dtype):
        raise ValueError(f"storage {storage!r} needs a uint8 image, got {np.dtype(dtype)}")
    return _check_levels(shape, levels)


def expand(level: np.ndarray, size: tuple[int, int], border: int = cv2.BORDER_REFLECT_101) -> np.ndarray:
    """pyrUp of `level` to exactly `size` = (width, height), in `level`'s dtype, for any supported border."""
    if border == cv2.BORDER_REFLECT_101:
        return cv2.pyrUp(level, dstsize=size)
    padded = cv2.copyMakeBorder(level, 1, 1, 1, 1, border)
    up = cv2.pyrUp(padded)
    return up[2 : 2 + size[1], 2 : 2 + size[0]]


def _size_of(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def gaussian_pyramid(image: np.ndarray, levels: int | None = None,
                     border: int = cv2.BORDER_REFLECT_101) -> list[np.ndarray]:
    """Gaussian pyramid: `levels` arrays (all down to 1x1 when None), level 0 the input, same dtype."""
    check_image(image)
    count = check_options(image.shape, image.dtype, levels, border)
    pyramid = [image]
    for _ in range(count - 1):
        pyramid.append(cv2.pyrDown(pyramid[-1], borderType=border))
    return pyramid


def laplacian_pyramid(image: np.ndarray, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
                      storage: str = "float32") -> list[np.ndarray]:
    """Laplacian pyramid: band i = G[i] - expand(G[i+1]); the last band is the coarsest Gaussian level.

    storage:
      "float32": bands computed and kept in float32 (default; exact for every input dtype).
      "int16": uint8 input only; bands are int16 differences of uint8 levels and their uint8 expansion,
        as OpenCV's lappyr sample does (exact, half the memory of float32).
      "uint8_saturate": the classic mistake, bands made with cv2.subtract on uint8 levels, so every
        negative detail is clipped to 0 (kept to show its damage; not invertible).
    """
    check_image(image)
    check_options(image.shape, image.dtype, levels, border, storage)
    gauss = gaussian_pyramid(image, levels, border)
    floating = storage == "float32"
    # Each level is converted to float32 as the walk reaches it and dropped once its band is made, and a
    # band takes over its expansion's buffer: no more fresh whole-image arrays than a hand-written loop.
    fine = gauss[0].astype(np.float32, copy=False) if floating else gauss[0]
    bands = []
    for level in gauss[1:]:
        coarse = level.astype(np.float32, copy=False) if floating else level
        up = expand(coarse, _size_of(fine), border)
        if floating:
            with np.errstate(invalid="ignore"):  # inf - inf in a float image is NaN, by design
                bands.append(np.subtract(fine, up, out=up) if up.flags.owndata else fine - up)
        elif storage == "int16":
            bands.append(cv2.subtract(fine, up, dtype=cv2.CV_16S))
        else:
            bands.append(cv2.subtract(fine, up))
        fine = coarse
    bands.append(fine.astype(STORAGE_DTYPES[storage]))
    return bands


def reconstruct(laplacian: Sequence[np.ndarray], border: int = cv2.BORDER_REFLECT_101,
                gains: Sequence[float] | None = None) -> np.ndarray:
    """Collapse a Laplacian pyramid back into an image (float32): R = gain_i * L[i] + expand(R_{i+1}).

    `gains` has one factor per band (default all 1): 0 drops a band, >1 boosts it. Float bands are
    collapsed in float32. Integer bands (int16, uint8_saturate) are collapsed as they were built: the
    running image is rounded and saturated to uint8 before each expansion, which makes int16 storage exact.
    `border` must be the one the pyramid was built with.
    """
    if len(laplacian) == 0:
        raise ValueError("laplacian is empty: it needs at least one band")
    _check_border(border)
    dtypes = {band.dtype for band in laplacian}
    if len(dtypes) != 1 or next(iter(dtypes)) not in (np.float32, np.int16, np.uint8):
        raise ValueError(f"bands must all be float32, int16 or uint8; got {sorted(map(str, dtypes))}")
    if gains is None:
        gains = [1.0] * len(laplacian)
    if len(gains) != len(laplacian):
        raise ValueError(f"gains has {len(gains)} factors for {len(laplacian)} bands; give one per band")
    integer = laplacian[0].dtype != np.float32

    def weighted(i: int) -> np.ndarray:
        band = laplacian[i].astype(np.float32, copy=False)
        return band if gains[i] == 1 else band * np.float32(gains[i])

    result = weighted(len(laplacian) - 1).copy()
    for i in range(len(laplacian) - 2, -1, -1):
        size = _size_of(laplacian[i])
        if integer:
            result = expand(to_dtype(result, np.uint8), size, border).astype(np.float32)
        else:
            result = expand(result, size, border)
        with np.errstate(invalid="ignore"):  # inf + -inf from a float image is NaN, by design
            result += weighted(i)
    return result


def residual(image: np.ndarray, reconstruction: np.ndarray) -> np.ndarray:
    """What reconstruction lost: image - reconstruction, float32.

    For integer images the reconstruction is first rounded and saturated to the image's dtype (the image
    one would actually rebuild), so an exact pyramid gives all zeros.
    """
    check_image(image)
    if reconstruction.shape != image.shape:
        raise ValueError(f"reconstruction has shape {reconstruction.shape}, image has {image.shape}")
    rebuilt = to_dtype(reconstruction, image.dtype) if image.dtype != np.float32 else reconstruction
    with np.errstate(invalid="ignore"):  # non-finite values in float images give NaN, by design
        return image.astype(np.float32) - rebuilt.astype(np.float32)
