"""Memory budget: estimate what exploring an image costs from its header, and refuse what will not fit.

The estimate counts what the explorer holds once a pyramid is built: the image, its other Gaussian levels
(together about 4/3 of the image), the Laplacian bands (float32 by default: about 4/3 of the image in
float32, i.e. 16/3 of a uint8 image), the temporaries made while the bands are computed, and
the comparisons of one level (per mode: an upsampled float32 image and a one-channel float32 difference,
and the 8-bit copies of both that are drawn: 5 bytes per channel and pixel, plus 5).
Sizes come from `level_sizes`, so odd sizes are counted exactly; no pixel is decoded to estimate.

The budget defaults to `DEFAULT_FRACTION` of the memory available now (Linux: MemAvailable from
/proc/meminfo; elsewhere what the OS reports; `FALLBACK_BUDGET` when nothing can be read). Set the
environment variable `PYRAMID_EXPLORER_MEMORY_BUDGET` to a size ("6G", "512M", "2.5GB", a byte count) or
a share of the available memory ("75%") to change it.
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from pyramid_explorer.core.pyramid import STORAGE_DTYPES, STORAGES, level_sizes, max_levels
from pyramid_explorer.core.upsampling import MODES

DEFAULT_FRACTION = 0.5
FALLBACK_BUDGET = 2 << 30
ENV_VARIABLE = "PYRAMID_EXPLORER_MEMORY_BUDGET"
COMPARISONS = len(MODES) + 1
"""What the compare tool holds for one level: every upsampling mode and the transposed convolution."""
COMPARISON_BYTES = 5  # per channel and pixel of a comparison: float32 values + 8-bit display copy
_MEMINFO = "/proc/meminfo"


class MemoryBudgetError(ValueError):
    """Exploring the image would need more memory than the budget; the message gives the numbers."""

    def __init__(self, message: str, estimate: MemoryEstimate, budget: int) -> None:
        super().__init__(message)
        self.estimate = estimate
        self.budget = budget


@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes needed to explore an image of `shape` and `dtype` with `levels` levels, by part."""

    shape: tuple[int, ...]
    dtype: str
    levels: int
    image: int
    gaussian: int  # levels 1..n-1 (level 0 is the image itself)
    bands: int
    working: int  # temporaries while the bands are computed (float copies of the levels, an expansion)
    comparisons: int

    @property
    def total(self) -> int:
        return self.image + self.gaussian + self.bands + self.working + self.comparisons

    def breakdown(self) -> str:
        """The parts in words, e.g. "image 24.9 MB, Gaussian levels 8.3 MB, ..."."""
        parts = (("image", self.image), ("Gaussian levels", self.gaussian), ("bands", self.bands),
                 ("working copies", self.working), ("comparisons", self.comparisons))
        return ", ".join(f"{name} {format_bytes(size)}" for name, size in parts if size)


def estimate_memory(shape: Sequence[int], dtype: np.dtype | type | str, levels: int | None = None,
                    storage: str = "float32", comparisons: int = COMPARISONS,
                    comparison_pixels: int | None = None) -> MemoryEstimate:
    """Memory to explore an image of `shape` ((H, W) or (H, W, C)) and `dtype` (see the module docstring).

    `levels` as in `gaussian_pyramid` (None: all; more than the image has are clamped). `comparisons`
    upsampled images of the finest compared level are counted, each of at most `comparison_pixels`
    pixels (None: the whole of level 0; the window crops large levels to a pixel budget).
    """
    if storage not in STORAGES:
        raise ValueError(f"storage {storage!r} is not supported; allowed: {', '.join(STORAGES)}")
    if comparisons < 0 or (comparison_pixels is not None and comparison_pixels < 0):
        raise ValueError("comparisons and comparison_pixels must not be negative")
    channels = int(shape[2]) if len(shape) == 3 else 1
    itemsize = np.dtype(dtype).itemsize
    count = max_levels(shape) if levels is None else max(1, min(int(levels), max_levels(shape)))
    pixels = [h * w for h, w in level_sizes(shape, count)]
    all_pixels = sum(pixels)
    # While the bands are computed (a float32 band is made in its expansion's buffer): for float32 storage,
    # float copies of the two levels in hand (at most levels 0 and 1) unless the image is float32 already;
    # for integer storage, one uint8 expansion at a time.
    float_copies = storage == "float32" and np.dtype(dtype) != np.float32
    in_hand = sum(pixels[:2])
    working = channels * (4 * in_hand * float_copies if storage == "float32" else pixels[0])
    compared = pixels[0] if comparison_pixels is None else min(comparison_pixels, pixels[0])
    return MemoryEstimate(
        shape=tuple(int(n) for n in shape),
        dtype=np.dtype(dtype).name,
        levels=count,
        image=pixels[0] * channels * itemsize,
        gaussian=(all_pixels - pixels[0]) * channels * itemsize,
        bands=all_pixels * channels * STORAGE_DTYPES[storage].itemsize,
        working=working,
        comparisons=comparisons * compared * COMPARISON_BYTES * (channels + 1),
    )


# ------------------------------------------------------------------------------------------- the budget


def compare_pixel_budget(shape: tuple[int, ...], view_budget: int) -> int:
    """Largest level area compared whole: every panel's float image (for an integer level: its float
    result, held until its numbers are done, and its image in the level's dtype) and uint8 pixels, and its
    one-channel float difference and pixels, must fit in `view_budget` bytes (2 GiB: 4K fits)."""
    channels = shape[2] if len(shape) == 3 else 1
    bytes_per_pixel = COMPARISONS * (5 * channels + 5)
    return max(1, math.floor(view_budget / bytes_per_pixel))


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation now, or None when the OS does not say."""
    try:
        with open(_MEMINFO, "rb") as fh:
            for line in fh:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if sys.platform == "win32":
        return _windows_available_memory()
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        pass
    try:  # macOS has no "available pages": half of physical memory is a fair guess of what is free
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
    except (AttributeError, ValueError, OSError):
        return None


def _windows_available_memory() -> int | None:
    if sys.platform != "win32":  # ctypes.windll exists only there (and type checkers know it)
        return None
    import ctypes

    class MemoryStatus(ctypes.Structure):
        _fields_ = [("length", ctypes.c_ulong), ("load", ctypes.c_ulong),
                    ("total_physical", ctypes.c_ulonglong), ("available_physical", ctypes.c_ulonglong),
                    ("total_page_file", ctypes.c_ulonglong), ("available_page_file", ctypes.c_ulonglong),
                    ("total_virtual", ctypes.c_ulonglong), ("available_virtual", ctypes.c_ulonglong),
                    ("available_extended_virtual", ctypes.c_ulonglong)]

    status = MemoryStatus(length=ctypes.sizeof(MemoryStatus))
    if not ctypes.windll.kernel32.GlobalMemoryStatusEx(ctypes.byref(status)):
        return None
    return int(status.available_physical)


_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_budget(text: str, available: int | None) -> int:
    """Bytes from "6G", "512M", "2.5GB", "1048576" (binary units) or "75%" of `available`; ValueError else."""
    text = text.strip()
    if text.endswith("%"):
        try:
            share = float(text[:-1]) / 100
        except ValueError:
            share = -1.0
        if not 0 < share <= 1:
            raise ValueError(f"memory budget {text!r}: a percentage must be above 0 and at most 100")
        return int(share * (available if available is not None else FALLBACK_BUDGET / DEFAULT_FRACTION))
    match = _SIZE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"memory budget {text!r} is not a size (e.g. 6G, 512M, 2.5GB or 75%)")
    return int(float(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " "))


def memory_budget(environ: Mapping[str, str] | None = None) -> int:
    """The budget in bytes: `$PYRAMID_EXPLORER_MEMORY_BUDGET` if set, else DEFAULT_FRACTION of what is
    available (FALLBACK_BUDGET when the OS does not say). ValueError for a malformed setting."""
    environ = os.environ if environ is None else environ
    available = available_memory()
    setting = environ.get(ENV_VARIABLE, "").strip()
    if setting:
        try:
            return parse_budget(setting, available)
        except ValueError as error:
            raise ValueError(f"{ENV_VARIABLE}: {error}") from None
    return FALLBACK_BUDGET if available is None else int(available * DEFAULT_FRACTION)


# -------------------------------------------------------------------------------------------- the check


@dataclass(frozen=True)
class Suggestion:
    """Ways to fit a budget: the most levels that fit at full size (None: none does), and the number of
    halvings (`preview_steps`, each pyrDown) after which the whole pyramid fits (None: never)."""

    levels: int | None
    preview_steps: int | None


def suggest(estimate: MemoryEstimate, budget: int, storage: str = "float32",
            comparisons: int = COMPARISONS) -> Suggestion:
    """What would fit `budget` for the image of `estimate`: fewer levels, or a downscaled preview."""
    def cost(shape: Sequence[int], levels: int | None) -> int:
        return estimate_memory(shape, estimate.dtype, levels, storage, comparisons).total

    fitting_levels = None
    if cost(estimate.shape, 1) <= budget:
        low, high = 1, estimate.levels  # the largest level count that fits: cost grows with levels
        while low < high:
            middle = (low + high + 1) // 2
            low, high = (middle, high) if cost(estimate.shape, middle) <= budget else (low, middle - 1)
        fitting_levels = low
    shape, steps = list(estimate.shape), 0
    while cost(shape, None) > budget:
        if shape[0] == 1 and shape[1] == 1:
            return Suggestion(fitting_levels, None)
        shape[0], shape[1] = (shape[0] + 1) // 2, (shape[1] + 1) // 2
        steps += 1
    return Suggestion(fitting_levels, steps)


def check_memory(estimate: MemoryEstimate, budget: int, storage: str = "float32",
                 comparisons: int = COMPARISONS) -> None:
    """Raise `MemoryBudgetError` when `estimate` exceeds `budget`, with the numbers and what would fit."""
    if estimate.total <= budget:
        return
    shape = estimate.shape
    channels = shape[2] if len(shape) == 3 else 1
    what = f"{shape[1]} x {shape[0]} x {channels} {estimate.dtype}"
    hint = suggest(estimate, budget, storage, comparisons)
    options = []
    if hint.levels is not None and hint.levels > 1:
        options.append(f"build at most {hint.levels} levels")
    if hint.preview_steps is not None:
        factor = 1 << hint.preview_steps
        h, w = shape[0], shape[1]
        for _ in range(hint.preview_steps):
            h, w = (h + 1) // 2, (w + 1) // 2
        options.append(f"open a preview downscaled {factor}x ({w} x {h})")
    advice = f"; {' or '.join(options)}" if options else ""
    raise MemoryBudgetError(
        f"exploring {what} with {estimate.levels} levels needs about {format_bytes(estimate.total)} "
        f"({estimate.breakdown()}), above the memory budget of {format_bytes(budget)} "
        f"(set {ENV_VARIABLE} to change it){advice}",
        estimate, budget,
    )


def preview(image: np.ndarray, steps: int) -> np.ndarray:
    """The image downscaled `steps` times by pyrDown (Gaussian level `steps`), keeping one level at a time."""
    if steps < 0:
        raise ValueError(f"steps must not be negative, got {steps}")
    for _ in range(min(steps, max_levels(image.shape) - 1)):
        image = cv2.pyrDown(image)
    return image


def format_bytes(size: float) -> str:
    """Human-readable size in binary units: 512 B, 1.5 KB, 23.4 GB."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
