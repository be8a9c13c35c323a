"""What more than one tool computes (Qt-free; tools never import each other, they import this): the
spectrum of an upsampled level as the Kernels tab shows it, with its Nyquist peaks."""

from __future__ import annotations

import numpy as np

from pyramid_explorer.core.analysis import log_spectrum, nyquist_peaks, periodic_component
from pyramid_explorer.display import Layer, channel_mean, make_layer

SPECTRUM_SIDE = 512
"""Largest side of the (centred, even-sided) part of an upsampled level whose spectrum is shown."""
SPECTRUM_MARGIN = 8
"""Output pixels left out along each border before the spectrum: the upsampler's own border
handling (replicated or zero-padded edges) is not its periodic pattern."""


def spectrum_region(a: np.ndarray) -> tuple[np.ndarray, str]:
    """The part of an upsampled image whose spectrum is shown, and what it is: SPECTRUM_MARGIN pixels
    off every border (when the image is large enough), then a centred crop of at most SPECTRUM_SIDE
    with even sides (where they allow), so the Nyquist frequency is one of the FFT's bins."""
    h, w = a.shape[:2]
    m = SPECTRUM_MARGIN if min(h, w) > 4 * SPECTRUM_MARGIN else 0
    ch, cw = min(h - 2 * m, SPECTRUM_SIDE), min(w - 2 * m, SPECTRUM_SIDE)
    ch, cw = ch - (ch % 2 if ch > 1 else 0), cw - (cw % 2 if cw > 1 else 0)
    top, left = (h - ch) // 2, (w - cw) // 2
    return a[top:top + ch, left:left + cw], f"centred {cw} x {ch} of {w} x {h}"


def level_spectrum(up: np.ndarray) -> tuple[Layer, tuple[tuple[int, int, float], ...], str]:
    """log(1 + |FFT|) of the periodic part of an upsampled level's `spectrum_region` (channel mean), as a
    layer; its `nyquist_peaks` (row, col, strength over the median); and which region it is."""
    crop, where = spectrum_region(channel_mean(up))
    values = log_spectrum(periodic_component(crop))
    return make_layer(values, 0, scale=1.0), tuple(nyquist_peaks(values)), where
