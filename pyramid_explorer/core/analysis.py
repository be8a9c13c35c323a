"""Numbers behind the analysis tools: reconstruction integrity, the size chain of a pyramid, polyphase
overlap of transposed convolutions (the checkerboard) and the kernel each upsampling mode amounts to,
and spectra with their Nyquist peaks. Qt-free, arrays in, values out."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pyramid_explorer.core.arrays import check_image, to_dtype
from pyramid_explorer.core.metrics import psnr, ssim
from pyramid_explorer.core.pyramid import (
    expand,
    gaussian_pyramid,
    laplacian_pyramid,
    level_sizes,
    max_levels,
    reconstruct,
    residual,
)
from pyramid_explorer.core.upsampling import upsample


def dtype_span(dtype: np.dtype | type) -> float:
    """Nominal value range of a dtype: its integer maximum, or 1.0 for floats."""
    dtype = np.dtype(dtype)
    return 1.0 if dtype.kind == "f" else float(np.iinfo(dtype).max)




@dataclass(frozen=True)
class Integrity:
    """How far a reconstruction is from its source, and why."""

    max_abs_error: float
    rmse: float
    psnr: float
    differing_pixels: int
    clipped_levels: tuple[int, ...]  # levels whose negative detail was clipped (uint8_saturate storage)
    residual: np.ndarray

    @property
    def sentence(self) -> str:
        """What the user sees, in one plain sentence."""
        if self.differing_pixels == 0:
            return "exact: every pixel identical"
        text = f"{self.differing_pixels} pixels differ (largest error {self.max_abs_error:.4g})"
        if self.clipped_levels:
            text += "; negative detail was clipped at levels " + ", ".join(map(str, self.clipped_levels))
        return text


def integrity(image: np.ndarray, levels: int | None = None, border: int = cv2.BORDER_REFLECT_101,
              storage: str = "float32") -> Integrity:
    """Build the Laplacian pyramid with `storage`, collapse it, and measure what came back."""
    check_image(image)
    bands = laplacian_pyramid(image, levels, border, storage)
    lost = residual(image, reconstruct(bands, border))
    clipped: tuple[int, ...] = ()
    if storage == "uint8_saturate":
        signed = laplacian_pyramid(image, levels, border, "int16")
        clipped = tuple(i for i, band in enumerate(signed[:-1]) if np.any(band < 0))
    return _measure(image, lost, clipped)


def gaussian_round_trip(image: np.ndarray, border: int = cv2.BORDER_REFLECT_101) -> Integrity:
    """pyrUp(pyrDown(x)) against x: what the Gaussian level alone cannot give back (never exact)."""
    check_image(image)
    coarse = gaussian_pyramid(image, min(2, max_levels(image.shape)), border)[-1]
    up = expand(coarse.astype(np.float32), (image.shape[1], image.shape[0]), border)
    return _measure(image, residual(image, up), ())


def _measure(image: np.ndarray, lost: np.ndarray, clipped: tuple[int, ...]) -> Integrity:
    finite = np.isfinite(lost)
    errors = np.abs(lost[finite])
    max_error = float(errors.max()) if errors.size else 0.0
    rmse = float(np.sqrt(np.mean(np.square(errors, dtype=np.float64)))) if errors.size else 0.0
    differing = lost != 0
    per_pixel = differing if differing.ndim == 2 else differing.any(axis=2)
    return Integrity(max_error, rmse,
                     math.inf if rmse == 0 else 20 * math.log10(dtype_span(image.dtype) / rmse),
                     int(np.count_nonzero(per_pixel)), clipped, lost)


@dataclass(frozen=True)
class SizeLink:
    """One level of the size chain: its size, and how the next level is expanded back to it.

    Sizes are (width, height), OpenCV's order for `dstsize`. `dstsize` is what the collapse passes to
    `pyrUp` when expanding level + 1 into this level (None for the coarsest level: nothing is expanded
    into it); `naive_size` is what `pyrUp` returns without `dstsize`: twice the coarser level's size,
    one pixel larger along every odd side of this level.
    """

    level: int
    size: tuple[int, int]
    dstsize: tuple[int, int] | None
    naive_size: tuple[int, int] | None

    @property
    def odd(self) -> bool:
        """A side of this level is odd and a coarser level is expanded into it (naive pyrUp misfits)."""
        return self.naive_size is not None and self.naive_size != self.dstsize


def size_chain(shape: tuple[int, ...], levels: int | None = None) -> list[SizeLink]:
    """The size chain of a pyramid of an image of `shape`: one `SizeLink` per level, no pixels needed.

    Without `dstsize`, the band of every odd link, L[i] = G[i] - pyrUp(G[i + 1]), would subtract
    arrays of different sizes.
    """
    sizes = [(w, h) for h, w in level_sizes(shape, levels)]
    links = []
    for i, size in enumerate(sizes):
        coarser = sizes[i + 1] if i + 1 < len(sizes) else None
        links.append(SizeLink(i, size, None if coarser is None else size,
                              None if coarser is None else (2 * coarser[0], 2 * coarser[1])))
    return links


def equivalent_kernel(mode: str, factor: int = 2) -> tuple[np.ndarray, int]:
    """(kernel, padding) of the transposed convolution that upsampling `mode` performs away from the
    image borders, measured as the mode's response to a single impulse.

    Every mode of `core.upsampling` but "unpool" is linear and shift-invariant with period `factor`:
    the output is sum_i x[i] * kernel[o - i * factor + padding], so an impulse comes back as the kernel
    itself, `padding` output pixels before `factor` times the impulse's position. Measuring it (rather
    than writing it down) shows what the code really does, e.g. that pyrUp is a 5x5 stride-2 transposed
    convolution by 4 * w w^T, w = [1 4 6 4 1] / 16. Zero rows and columns around the kernel are
    dropped. ValueError for "unpool", whose output depends on where each window's maximum was.
    """
    if mode == "unpool":
        raise ValueError("mode 'unpool' is not a convolution: where each value goes depends on the data")
    # 8 input pixels around the impulse: more than the widest kernel (Lanczos4: 4) reaches
    return impulse_kernel(lambda x: upsample(x, mode, factor), factor, radius=8)


def impulse_kernel(upsampler: Callable[[np.ndarray], np.ndarray], factor: int,
                   radius: int = 8) -> tuple[np.ndarray, int]:
    """(kernel, padding) of the transposed convolution a linear, `factor`-periodic `upsampler` performs,
    read from its response to one impulse `radius` input pixels from every border (float64).

    `radius` must exceed the number of input pixels the kernel reaches. The kernel is the smallest
    square holding every non-zero tap, so one padding serves rows and columns; ValueError if there is
    none (an all-zero upsampler has no kernel).
    """
    n = 2 * radius + 1
    impulse = np.zeros((n, n), np.float32)
    impulse[radius, radius] = 1.0
    response = np.asarray(upsampler(impulse), dtype=np.float64)
    rows, cols = np.flatnonzero(response.any(axis=1)), np.flatnonzero(response.any(axis=0))
    if rows.size == 0:
        raise ValueError("the upsampler turns an impulse into zeros everywhere: it has no kernel")
    first, last = min(rows[0], cols[0]), max(rows[-1], cols[-1])
    return response[first:last + 1, first:last + 1], radius * factor - int(first)


def phase_means(output: np.ndarray, stride: int, margin: int = 0) -> np.ndarray:
    """(stride, stride) means of each output phase (rows o % stride, columns p % stride) of a 2-D
    array, `margin` pixels from every border left out.

    For a constant input of 1 through a transposed convolution these are its `polyphase_sums`; for a
    data-dependent method (unpooling) they are what it does to a constant, measured.
    """
    inner = np.asarray(output, dtype=np.float64)
    if margin:
        inner = inner[margin:-margin, margin:-margin]
    h, w = inner.shape
    if h < stride or w < stride:
        raise ValueError(f"need at least {stride}x{stride} pixels inside the margin, got {w}x{h}")
    return np.array([[inner[r::stride, c::stride].mean() for c in range(stride)] for r in range(stride)])


def polyphase_sums(kernel: np.ndarray, stride: int, padding: int = 0) -> np.ndarray:
    """(stride, stride) array: the sum of the kernel taps that land on each output phase.

    In a transposed convolution, output pixel o receives tap a from input i when o = i*stride + a - padding,
    so the taps of phase (o mod stride) are those with a ≡ o + padding (mod stride). A constant input comes
    out as these sums tiled over the image: unequal sums are exactly the checkerboard artifact.
    """
    kernel = np.asarray(kernel, dtype=np.float64)
    if kernel.ndim != 2 or stride < 1:
        raise ValueError(f"need a 2-D kernel and a stride >= 1, got shape {kernel.shape} and stride {stride}")
    rows = (np.arange(kernel.shape[0]) - padding) % stride
    cols = (np.arange(kernel.shape[1]) - padding) % stride
    sums = np.zeros((stride, stride))
    np.add.at(sums, (rows[:, None], cols[None, :]), kernel)
    return sums


def overlap_verdict(kernel: np.ndarray, stride: int, padding: int = 0, rtol: float = 1e-6) -> str:
    """One line: whether every output phase receives the same total weight."""
    sums = polyphase_sums(kernel, stride, padding)
    size = "x".join(map(str, np.shape(kernel)))
    divisible = all(side % stride == 0 for side in np.shape(kernel))
    if np.allclose(sums, sums.flat[0], rtol=rtol, atol=rtol * max(1.0, float(np.abs(sums).max()))):
        note = "" if divisible else f" ({size} is not a multiple of stride {stride}, but its phases balance)"
        return f"even: every output phase sums to {sums.flat[0]:.4g}{note}"
    ratio = sums.max() / sums.min() if sums.min() > 0 else math.inf
    cause = f"k % s != 0 ({size} vs stride {stride})" if not divisible else "taps unbalanced across phases"
    return f"uneven overlap: {cause}; phase sums range {sums.min():.4g}..{sums.max():.4g} (ratio {ratio:.3g})"


def log_spectrum(image: np.ndarray) -> np.ndarray:
    """log(1 + |FFT|) of the image (mean over colour channels, alpha ignored), zero frequency centred."""
    data = np.asarray(image, dtype=np.float64)
    if data.ndim == 3:
        data = data[..., :3].mean(axis=2)
    data = np.nan_to_num(data - np.nanmean(data))
    return np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(data)))).astype(np.float32)


def periodic_component(image: np.ndarray) -> np.ndarray:
    """The periodic part p of a 2-D image u = p + s (Moisan 2011, "Periodic plus smooth image
    decomposition"), float64.

    The FFT treats an image as periodic, so the jump between opposite borders spreads energy along
    both frequency axes (a bright cross) and onto the Nyquist points on them. s is the smooth image
    whose periodic 4-neighbour Laplacian is the border jump image v (v[0] gets u[-1] - u[0], v[-1]
    gets u[0] - u[-1], likewise for the columns), solved in the Fourier domain with zero mean; so p,
    seen as periodic, has the Laplacian u has inside its borders, without the jump, and u's mean.
    """
    u = np.asarray(image, dtype=np.float64)
    if u.ndim != 2:
        raise ValueError(f"need a 2-D image, got shape {u.shape}")
    h, w = u.shape
    v = np.zeros_like(u)
    v[0] += u[-1] - u[0]
    v[-1] += u[0] - u[-1]
    v[:, 0] += u[:, -1] - u[:, 0]
    v[:, -1] += u[:, 0] - u[:, -1]
    denominator = (2 * np.cos(2 * np.pi * np.arange(h) / h)[:, None]
                   + 2 * np.cos(2 * np.pi * np.arange(w) / w)[None, :] - 4)
    denominator[0, 0] = 1.0  # the mean of s, set to 0 below
    smooth = np.fft.fft2(v) / denominator
    smooth[0, 0] = 0.0
    return u - np.real(np.fft.ifft2(smooth))


def nyquist_peaks(spectrum: np.ndarray) -> list[tuple[int, int, float]]:
    """(row, col, strength) at the Nyquist frequencies of a centred spectrum from `log_spectrum`.

    Strength is the spectrum there minus its median (in log units): a clear positive value is the
    periodic period-2 pattern a checkerboard leaves. Positions are the corners and edge mid-points, which
    exist only along axes of even length.
    """
    h, w = spectrum.shape
    cy, cx = h // 2, w // 2
    rows = [0] if h % 2 == 0 and h > 1 else []
    cols = [0] if w % 2 == 0 and w > 1 else []
    points = [(r, cx) for r in rows] + [(cy, c) for c in cols] + [(r, c) for r in rows for c in cols]
    baseline = float(np.median(spectrum))
    return [(r, c, float(spectrum[r, c]) - baseline) for r, c in points]


def band_energy(band: np.ndarray) -> float:
    """Mean squared value of a band (its energy per pixel), ignoring non-finite values."""
    data = np.asarray(band, dtype=np.float64)
    finite = data[np.isfinite(data)]
    return float(np.mean(np.square(finite))) if finite.size else 0.0



# ---------------------------------------------------------------------------------- pyramid coding
# Burt & Adelson 1983, "The Laplacian pyramid as a compact image code": each band quantised with its
# own step; the zeroth-order entropy of the quantised values bounds the bits an entropy coder needs.


def _bins(band: np.ndarray, step: float) -> np.ndarray:
    """round(band / step), in float64 so that steps far below the values still round correctly."""
    if isinstance(step, bool) or not isinstance(step, int | float | np.number) or not 0 < step < math.inf:
        raise ValueError(f"step must be a finite number > 0, got {step!r}")
    return np.rint(np.asarray(band, dtype=np.float64) / step)


def quantize(band: np.ndarray, step: float) -> np.ndarray:
    """``step * round(band / step)`` (float32): every value moved to the nearest multiple of ``step``
    (halves to even, as numpy rounds); ``step`` > 0."""
    return (_bins(band, step) * step).astype(np.float32)


def entropy_bits(values: np.ndarray) -> float:
    """Shannon entropy, in bits per sample, of the distinct values of an integer or quantised array:
    ``-sum p log2 p`` over their frequencies ``p`` (0 for a constant array)."""
    data = np.asarray(values).ravel()
    if data.size == 0:
        raise ValueError("values is empty: entropy needs at least one sample")
    if data.dtype.kind in "iub" and int(data.max()) - int(data.min()) < max(1 << 16, 4 * data.size):
        low = data.min()
        counts = np.bincount((data - low).astype(np.intp))  # linear time; the range is small
        counts = counts[counts > 0]
    else:
        counts = np.unique(data, return_counts=True)[1]
    p = counts / data.size
    return float(max(0.0, -np.sum(p * np.log2(p))))


CODING_PRESETS = ("uniform", "coarse_fine_bands", "near_lossless")


def preset_steps(name: str, levels: int, dtype: np.dtype | type) -> tuple[float, ...]:
    """One quantisation step per band (finest first) for a preset, in the units of ``dtype``.

    - ``uniform``: 4/255 of the value range on every band;
    - ``coarse_fine_bands``: Burt & Adelson's choice, coarse bins where the eye forgives them: 16/255
      of the range on the finest band, halving per level down to 1/255 (the low-pass stays fine);
    - ``near_lossless``: 1/255 of the range on every band (below one grey level of an 8-bit image).
    """
    if name not in CODING_PRESETS:
        raise ValueError(f"unknown preset {name!r}; allowed: {', '.join(CODING_PRESETS)}")
    unit = dtype_span(dtype) / 255
    if name == "uniform":
        return (4 * unit,) * levels
    if name == "near_lossless":
        return (unit,) * levels
    return tuple(max(1.0, 16 / 2**i) * unit for i in range(levels))


@dataclass(frozen=True, eq=False)
class PyramidCode:
    """A Laplacian pyramid with every band quantised by its own step, and what it costs and keeps."""

    steps: tuple[float, ...]
    bands: list[np.ndarray]  # the quantised bands (float32), finest first
    band_bits: tuple[float, ...]  # entropy of each quantised band, bits per sample
    bits_per_pixel: float  # sum of band_bits weighted by band sizes (all channels), per source pixel
    rebuilt: np.ndarray  # the collapse of the quantised bands (float32)
    residual: np.ndarray  # image - rebuilt rounded to the image's dtype, float32 (as core.pyramid.residual)
    psnr: float
    ssim: float  # NaN when a side is shorter than the SSIM window


def _finite_image(image: np.ndarray) -> None:
    check_image(image)
    if image.dtype.kind == "f" and not np.isfinite(image).all():
        raise ValueError("image has NaN or infinite values; coding needs finite values")


def _quality(image: np.ndarray, stored: np.ndarray) -> tuple[float, float]:
    """PSNR and SSIM of a decoded image, in the source's value range."""
    span = dtype_span(image.dtype)
    return psnr(image, stored, span), ssim(image, stored, span)


def code_pyramid(image: np.ndarray, steps: tuple[float, ...],
                 border: int = cv2.BORDER_REFLECT_101) -> PyramidCode:
    """Quantise band ``i`` of the float32 Laplacian pyramid of ``image`` with ``steps[i]`` (so
    ``len(steps)`` levels), measure its entropy and collapse the quantised pyramid."""
    _finite_image(image)
    if len(steps) < 1:
        raise ValueError("steps is empty: give one step per band")
    bands = laplacian_pyramid(image, len(steps), border)
    quantised, bits = [], []
    total = 0.0
    for band, step in zip(bands, steps, strict=True):
        index = _bins(band, step)
        quantised.append((index * step).astype(np.float32))
        bits.append(entropy_bits(index.astype(np.int64)))
        total += bits[-1] * index.size
    rebuilt = reconstruct(quantised, border)
    stored = to_dtype(rebuilt, image.dtype)  # what a decoder would write; residual() rounds the same way
    h, w = image.shape[:2]
    return PyramidCode(tuple(float(s) for s in steps), quantised, tuple(bits), total / (h * w), rebuilt,
                       image.astype(np.float32) - stored.astype(np.float32), *_quality(image, stored))


@dataclass(frozen=True)
class RatePoint:
    """One point of a rate-distortion curve: the setting that made it (a step scale or a JPEG quality),
    its bits per pixel, and the PSNR (dB) and SSIM of the decoded image."""

    setting: float
    bits_per_pixel: float
    psnr: float
    ssim: float


def coding_curve(image: np.ndarray, steps: tuple[float, ...],
                 scales: tuple[float, ...] = (0.5, 1, 2, 4, 8, 16, 32, 64),
                 border: int = cv2.BORDER_REFLECT_101) -> list[RatePoint]:
    """The rate-distortion curve of pyramid coding: ``code_pyramid`` with every step times each scale.

    The entropies are zeroth-order: what an ideal coder of independent samples needs, a lower bound for
    real coders of these bands (an estimate beside JPEG's real file sizes, not a file).
    """
    points = []
    for scale in scales:
        code = code_pyramid(image, tuple(s * scale for s in steps), border)
        points.append(RatePoint(float(scale), code.bits_per_pixel, code.psnr, code.ssim))
    return points


def jpeg_round_trip(image: np.ndarray, quality: int) -> tuple[np.ndarray, int]:
    """``image`` (uint8 grey or RGB) through OpenCV's JPEG encoder at ``quality`` 0..100: the decoded
    image and the real file size in bytes."""
    check_image(image)
    if image.dtype != np.uint8 or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"JPEG takes 8-bit grey or RGB images, got {image.dtype} {image.shape}")
    if isinstance(quality, bool) or not isinstance(quality, int | np.integer) or not 0 <= quality <= 100:
        raise ValueError(f"JPEG quality must be an integer 0..100, got {quality!r}")
    colour = image.ndim == 3
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR) if colour else image,
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the image as JPEG")
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR if colour else cv2.IMREAD_GRAYSCALE)
    if decoded is None:
        raise ValueError("OpenCV could not decode the JPEG it had just encoded")
    return (cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB) if colour else decoded), int(data.size)


def jpeg_curve(image: np.ndarray,
               qualities: tuple[int, ...] = (5, 10, 20, 30, 50, 70, 85, 95)) -> list[RatePoint]:
    """The rate-distortion curve of JPEG on ``image`` (uint8 grey or RGB): real file sizes in bits per
    pixel, and the PSNR and SSIM of the decoded images, one point per quality."""
    h, w = image.shape[:2]
    points = []
    for quality in qualities:
        decoded, size = jpeg_round_trip(image, quality)
        points.append(RatePoint(float(quality), 8 * size / (h * w), *_quality(image, decoded)))
    return points


def jpeg_at_rate(image: np.ndarray, bits_per_pixel: float) -> tuple[RatePoint, np.ndarray]:
    """JPEG at (at most) the given rate: the highest quality whose real file takes no more than
    ``bits_per_pixel``, found by bisection over qualities 1..100 (quality 1 when even that is larger),
    with its decoded image: the picture to show beside a pyramid code of that rate."""
    h, w = image.shape[:2]
    budget = bits_per_pixel * h * w / 8
    low, high = 1, 100
    while low < high:  # file size grows with quality: find the last quality within the budget
        middle = (low + high + 1) // 2
        if jpeg_round_trip(image, middle)[1] <= budget:
            low = middle
        else:
            high = middle - 1
    decoded, size = jpeg_round_trip(image, low)
    return RatePoint(float(low), 8 * size / (h * w), *_quality(image, decoded)), decoded
