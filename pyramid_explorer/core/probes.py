"""Synthetic probe images, generated at any size: where resampling methods differ most.

Pure functions returning uint8 arrays; no files, so every size (odd ones included) is available.
"""

from __future__ import annotations

import cv2
import numpy as np


def _check_size(width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"probe size must be at least 1x1, got {width}x{height}")


def zone_plate(width: int = 513, height: int = 385) -> np.ndarray:
    """Circular zone plate, grey uint8 (height, width): 0.5 + 0.5 cos(pi r^2 / R).

    The local frequency r / R cycles per pixel grows linearly from the centre; R is twice the
    centre-to-corner distance so the corners reach exactly the Nyquist frequency (0.5 cycles/pixel)
    and the probe itself is free of aliasing. Every pyramid level then folds the upper half of its
    frequencies back as rings (moire) unless its filter removed them first.
    """
    _check_size(width, height)
    y, x = np.ogrid[:height, :width]
    cy, cx = (height - 1) / 2, (width - 1) / 2
    r2 = (x - cx) ** 2 + (y - cy) ** 2
    corner = max(np.hypot(cx, cy), 0.5)
    phase = np.pi * r2 / (2 * corner)
    return np.round(127.5 + 127.5 * np.cos(phase)).astype(np.uint8)


def resolution_chart(width: int = 641, height: int = 481) -> np.ndarray:
    """Resolution test chart, RGB uint8 (height, width, 3): fine text, sharp and slanted edges, a star.

    Contents, laid out relative to the size: lines of text from large to the smallest OpenCV font
    scale, a Siemens star (converging spokes: every frequency up to the pixel grid), a slanted
    black/white edge (the classic edge-spread target), one-pixel line pairs, and colour bars.
    """
    _check_size(width, height)
    img = np.full((height, width, 3), 255, np.uint8)
    unit = min(width, height)

    # Colour bars along the bottom eighth: primaries, secondaries, greys.
    bars = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (0, 255, 255), (255, 0, 255), (255, 255, 0),
            (0, 0, 0), (128, 128, 128)]
    top = height - max(1, height // 8)
    for i, colour in enumerate(bars):
        x0, x1 = i * width // len(bars), (i + 1) * width // len(bars)
        img[top:, x0:x1] = colour

    # Siemens star on the right half.
    cx, cy, radius = 3 * width // 4, height // 3, max(1, int(unit * 0.28))
    spokes = 36
    for k in range(0, 2 * spokes, 2):
        a0, a1 = np.pi * k / spokes, np.pi * (k + 1) / spokes
        pts = np.array([[cx, cy],
                        [cx + radius * np.cos(a0), cy + radius * np.sin(a0)],
                        [cx + radius * np.cos(a1), cy + radius * np.sin(a1)]], np.float64)
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], (0, 0, 0), cv2.LINE_AA, shift=4)

    # Slanted edge (about 5 degrees) under the star.
    ex0, ey0, ey1 = width // 2 + unit // 20, 2 * height // 3, top - max(1, height // 40)
    ex1 = width - unit // 20
    if ex1 > ex0 and ey1 > ey0:
        yy, xx = np.mgrid[ey0:ey1, ex0:ex1]
        inside = (xx - (ex0 + ex1) / 2) - np.tan(np.radians(5)) * (yy - ey0) < 0
        img[ey0:ey1, ex0:ex1][inside] = 0

    # One-pixel line pairs (vertical and horizontal), the finest detail a grid can hold.
    lx0, ly0, size = unit // 40, 2 * height // 3, max(2, unit // 6)
    block = img[ly0:ly0 + size, lx0:lx0 + size]
    block[:, ::2] = 0
    block = img[ly0:ly0 + size, lx0 + size + unit // 40:lx0 + 2 * size + unit // 40]
    block[::2, :] = 0

    # Text from large to the smallest OpenCV scale, down the left half.
    y = max(1, unit // 12)
    for scale in (1.0, 0.7, 0.5, 0.4, 0.3):
        cv2.putText(img, "Pyramid Explorer 0123456789", (unit // 40, y), cv2.FONT_HERSHEY_SIMPLEX,
                    scale * unit / 480, (0, 0, 0), 1, cv2.LINE_AA)
        y += max(1, int(unit * scale / 480 * 40))
    return img


def checkerboard(width: int = 256, height: int = 256, cell: int = 8) -> np.ndarray:
    """Black and white squares of `cell` pixels, grey uint8 (height, width); pixel (0, 0) is white.

    A cell of 1 is the finest pattern the grid holds (the Nyquist frequency on both axes), which a
    pyramid's low-pass removes completely; larger cells show how each method treats sharp edges.
    """
    _check_size(width, height)
    if cell < 1:
        raise ValueError(f"checkerboard cell must be at least 1 pixel, got {cell}")
    y, x = np.ogrid[:height, :width]
    return np.where((y // cell + x // cell) % 2 == 0, 255, 0).astype(np.uint8)


def impulse_grid(width: int = 256, height: int = 256, spacing: int = 16) -> np.ndarray:
    """Single white pixels on black every `spacing` pixels, grey uint8; the first at (spacing // 2,
    spacing // 2).

    Each impulse comes back from a down/up-sampling chain as that chain's point-spread function, so
    the grid shows the kernel of every method, and its variation with the impulse's phase.
    """
    _check_size(width, height)
    if spacing < 1:
        raise ValueError(f"impulse spacing must be at least 1 pixel, got {spacing}")
    out = np.zeros((height, width), np.uint8)
    out[spacing // 2::spacing, spacing // 2::spacing] = 255
    return out


def slanted_edge(width: int = 256, height: int = 256, degrees: float = 5.0) -> np.ndarray:
    """A dark/bright edge through the centre, `degrees` off vertical, grey uint8 (ISO 12233 style).

    Each pixel takes the fraction of its area on the bright (right) side, clip(0.5 + e, 0, 1) with e
    the horizontal distance from the edge to the pixel's centre: exact wherever the edge crosses the
    pixel's top and bottom sides, so the edge is free of aliasing. Dark is 32 and bright 224, so the
    overshoot (ringing) of an interpolator stays visible instead of clipping.
    """
    _check_size(width, height)
    y, x = np.ogrid[:height, :width]
    e = (x - (width - 1) / 2) - np.tan(np.radians(degrees)) * (y - (height - 1) / 2)
    return np.round(32 + 192 * np.clip(0.5 + e, 0, 1)).astype(np.uint8)


def ramp(width: int = 256, height: int = 256) -> np.ndarray:
    """A horizontal grey ramp from 0 (left) to 255 (right), uint8 (height, width).

    Every interpolator that reproduces linear functions gives it back unchanged away from the
    borders; a checkerboard method leaves ripples on it.
    """
    _check_size(width, height)
    row = np.round(np.linspace(0, 255, width)) if width > 1 else np.zeros(1)
    return np.broadcast_to(row.astype(np.uint8), (height, width)).copy()
