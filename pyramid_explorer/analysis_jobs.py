"""Qt-free jobs of the analysis tools: reconstruction integrity, band equalizer, kernel inspector,
unpooling overlay, and the export of what each tool shows.

Same contract as `pyramid_explorer.jobs`: a frozen request goes in, a generator yields `Progress`
and then one immutable result that carries the image id it answers; every array the window draws
is already a `Layer` (display pixels and histogram made here, on the worker).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pyramid_explorer.core.analysis import (
    Integrity,
    equivalent_kernel,
    gaussian_round_trip,
    integrity,
    log_spectrum,
    nyquist_peaks,
    overlap_verdict,
    periodic_component,
    phase_means,
    polyphase_sums,
)
from pyramid_explorer.core.arrays import to_dtype
from pyramid_explorer.core.export import NamedArray, iter_export_arrays
from pyramid_explorer.core.pyramid import STORAGES, max_levels, reconstruct
from pyramid_explorer.core.upsampling import MODES, max_pool_with_indices, transposed_conv2d, upsample
from pyramid_explorer.jobs import (
    DeconvSettings,
    ExportDone,
    Layer,
    Progress,
    Pyramid,
    channel_mean,
    deconv_kernel,
    drive_export,
    make_layer,
)

CUSTOM = "transposed conv"
"""The kernel inspector's entry for the free transposed convolution (the Compare tab's settings)."""

KERNEL_ENTRIES = (*MODES, CUSTOM)
DEFAULT_DECONV = DeconvSettings()
PROBE_INPUTS = ("constant", "impulse", "ramp")
PROBE_SIDE = 16
"""Side of the probe inputs fed to each upsampler, in input pixels."""
SPECTRUM_SIDE = 512
"""Largest side of the (centred, even-sided) part of an upsampled level whose spectrum is shown."""
SPECTRUM_MARGIN = 8
"""Output pixels left out along each border before the spectrum: the upsampler's own border
handling (replicated or zero-padded edges) is not its periodic pattern."""
FACTOR = 2
_HISTOGRAM_BINS = 101  # odd: one bin is centred on zero
_INTEGER_BINS = 1024  # integer residuals spanning up to this many values get one bin per value


# --- integrity ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class IntegrityRequest:
    """Rebuild `image` from its Laplacian pyramid (`levels`, bands kept as `storage`) and measure it."""

    image_id: int
    image: np.ndarray
    levels: int | None = None
    storage: str = "float32"

    def __post_init__(self) -> None:
        if self.storage not in STORAGES:
            raise ValueError(f"storage {self.storage!r} is not supported; allowed: {', '.join(STORAGES)}")


@dataclass(frozen=True, eq=False)
class ErrorReport:
    """One reconstruction against its source: the core's numbers, the residual ready to draw, and its
    histogram.

    `layer.data` is the residual (source - reconstruction, float32, every channel); `layer.display`
    is, per pixel, the channel value of largest magnitude with its sign, so no error hides in a mean.
    `histogram` is (bin centres, counts) over every value of every channel (not a subsample):
    one bin per integer for integer images, else `_HISTOGRAM_BINS` bins symmetric about zero.
    """

    max_abs_error: float
    rmse: float
    psnr: float
    differing_pixels: int
    sentence: str
    layer: Layer
    histogram: tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True, eq=False)
class IntegrityView:
    """The Laplacian round trip with `storage` bands next to the Gaussian-only one, pyrUp(pyrDown(x))."""

    image_id: int
    levels: int
    storage: str
    laplacian: ErrorReport
    gaussian: ErrorReport
    clipped_levels: tuple[int, ...]


def strongest_channel(data: np.ndarray) -> np.ndarray:
    """(H, W) float32: per pixel the colour-channel value of largest magnitude, sign kept (alpha left
    out); a grey image as it is."""
    if data.ndim == 2:
        return data.astype(np.float32, copy=False)
    colour = data[..., :3] if data.shape[2] == 4 else data
    pick = np.nan_to_num(np.abs(colour), nan=np.inf).argmax(axis=2)
    return np.take_along_axis(colour, pick[..., None], axis=2)[..., 0].astype(np.float32, copy=False)


def error_histogram(values: np.ndarray, integer: bool) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) of the finite values; one bin per integer when `integer` and the span
    allows, else `_HISTOGRAM_BINS` bins over [-m, m], m the largest |value| (1 when all are zero)."""
    finite = values[np.isfinite(values)] if values.dtype.kind == "f" else values.ravel()
    if finite.size == 0:
        return np.zeros(1, np.float32), np.zeros(1, np.int64)
    lo, hi = float(finite.min()), float(finite.max())
    if integer and hi - lo < _INTEGER_BINS:
        counts = np.bincount((finite - lo).astype(np.int64).ravel(), minlength=int(hi - lo) + 1)
        return np.arange(lo, hi + 1, dtype=np.float32), counts
    m = max(abs(lo), abs(hi)) or 1.0
    counts, edges = np.histogram(finite, _HISTOGRAM_BINS, range=(-m, m))
    return ((edges[:-1] + edges[1:]) / 2).astype(np.float32), counts


def _report(measured: Integrity, integer: bool) -> ErrorReport:
    lost = measured.residual
    return ErrorReport(max_abs_error=measured.max_abs_error, rmse=measured.rmse, psnr=measured.psnr,
                       differing_pixels=measured.differing_pixels, sentence=measured.sentence,
                       layer=make_layer(lost, 0, signed=True, display=strongest_channel(lost)),
                       histogram=error_histogram(lost, integer))


def integrity_view(req: IntegrityRequest) -> Iterator[Progress | IntegrityView]:
    """The core's `integrity` with the chosen storage, and its `gaussian_round_trip`, ready to draw."""
    image = req.image
    integer = image.dtype.kind in "ui"
    yield Progress(0, 2, f"Reconstruction from {req.storage} bands")
    laplacian = integrity(image, req.levels, storage=req.storage)
    lap = _report(laplacian, integer)
    yield Progress(1, 2, "Gaussian round trip pyrUp(pyrDown(x))")
    gauss = _report(gaussian_round_trip(image), integer)
    levels = req.levels if req.levels is not None else max_levels(image.shape)
    yield IntegrityView(image_id=req.image_id, levels=levels, storage=req.storage, laplacian=lap,
                        gaussian=gauss, clipped_levels=laplacian.clipped_levels)


# --- equalizer ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class EqualizerRequest:
    """Collapse the pyramid's bands with one gain per band (0 drops a band, > 1 boosts it)."""

    pyramid: Pyramid
    gains: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.gains) != self.pyramid.levels:
            raise ValueError(f"{len(self.gains)} gains for {self.pyramid.levels} bands; give one per band")
        if not all(math.isfinite(g) for g in self.gains):
            raise ValueError(f"gains must be finite numbers, got {self.gains}")


@dataclass(frozen=True, eq=False)
class EqualizerView:
    """The equalized reconstruction (rounded and saturated to the source's dtype, as it would be saved)
    and its change from the source."""

    image_id: int
    levels: int
    gains: tuple[float, ...]
    image: Layer
    change: Layer
    """Reconstruction minus source, float32; drawn as the mean over colour channels."""
    max_abs_change: float
    changed_pixels: int
    saturated_values: int
    """Values of the float reconstruction outside the dtype's range (clipped when rounding)."""

    @property
    def exact(self) -> bool:
        return self.changed_pixels == 0


def equalize(req: EqualizerRequest) -> Iterator[Progress | EqualizerView]:
    """`core.pyramid.reconstruct(bands, gains=...)`, rounded to the source dtype, and its change."""
    p = req.pyramid
    source = p.gaussian[0]
    yield Progress(0, 2, "Reconstruction with band gains")
    rebuilt = reconstruct(p.laplacian, gains=req.gains)
    saturated = 0
    if source.dtype.kind in "ui":
        info = np.iinfo(source.dtype)
        saturated = int(np.count_nonzero((rebuilt < info.min) | (rebuilt > info.max)))
    image = to_dtype(rebuilt, source.dtype)
    del rebuilt
    yield Progress(1, 2, "Change from the source")
    change = image.astype(np.float32) - source.astype(np.float32)
    moved = np.abs(change)
    per_pixel = moved.max(axis=2) if moved.ndim == 3 else moved
    yield EqualizerView(image_id=p.image_id, levels=p.levels, gains=req.gains, image=make_layer(image, 0),
                        change=make_layer(change, 0, signed=True),
                        max_abs_change=float(np.nanmax(moved)) if moved.size else 0.0,
                        changed_pixels=int(np.count_nonzero(per_pixel)), saturated_values=saturated)


# --- kernel inspector ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class KernelSummary:
    """What one upsampler does to a constant, as a transposed convolution.

    `kernel` is None for unpooling, which is not a convolution; its `phase_sums` are then measured
    on a constant input (`core.analysis.phase_means`) instead of summed from taps.
    """

    entry: str
    kernel: np.ndarray | None
    stride: int
    padding: int
    phase_sums: np.ndarray
    verdict: str

    @property
    def even(self) -> bool:
        return self.verdict.startswith("even")


@dataclass(frozen=True, eq=False)
class KernelRequest:
    """Inspect `entry` (a mode or CUSTOM with `deconv`'s settings); spectrum of G[level + 1] upsampled."""

    pyramid: Pyramid
    level: int
    entry: str
    deconv: DeconvSettings = DEFAULT_DECONV

    def __post_init__(self) -> None:
        if self.entry not in KERNEL_ENTRIES:
            raise ValueError(f"unknown entry {self.entry!r}; entries: {', '.join(KERNEL_ENTRIES)}")


@dataclass(frozen=True, eq=False)
class KernelInspection:
    """Every upsampler's summary, and for the selected one its kernel, probe outputs and spectrum.

    `probes` pairs each of PROBE_INPUTS with the upsampler's output for it. `spectrum` is log|FFT| of
    the periodic part (`core.analysis.periodic_component`) of `spectrum_region` of the upsampled level,
    None at the coarsest level; `peaks` are the core's `nyquist_peaks` of it, as (row, col, strength
    over the median).
    """

    image_id: int
    level: int
    entry: str
    deconv: DeconvSettings
    summaries: tuple[KernelSummary, ...]
    kernel: Layer | None
    probes: tuple[tuple[str, Layer], ...]
    spectrum: Layer | None
    peaks: tuple[tuple[int, int, float], ...]
    spectrum_note: str

    @property
    def selected(self) -> KernelSummary:
        return next(s for s in self.summaries if s.entry == self.entry)


def _unpool(fine: np.ndarray) -> np.ndarray:
    """max_unpool of the 2x2 max pool of `fine`, at `fine`'s size (float32)."""
    pooled, indices = max_pool_with_indices(fine, FACTOR)
    return upsample(pooled, "unpool", FACTOR, size=(fine.shape[1], fine.shape[0]), indices=indices)


def _unpool_verdict(sums: np.ndarray) -> str:
    if np.allclose(sums, sums.flat[0]):
        return f"even: every output phase keeps {sums.flat[0]:.4g} of a constant (not a convolution)"
    return (f"uneven: not a convolution; a constant keeps only phases {_phase_list(sums)} of each "
            f"{FACTOR}x{FACTOR} window (phase sums {sums.min():.4g}..{sums.max():.4g}), like zero insertion")


def _phase_list(sums: np.ndarray) -> str:
    return ", ".join(f"({r},{c})" for r, c in zip(*np.nonzero(sums), strict=True))


def summarize(entry: str, deconv: DeconvSettings = DEFAULT_DECONV) -> KernelSummary:
    """The summary of one upsampler: kernel, padding and phase sums, and the core's overlap verdict."""
    if entry == CUSTOM:
        kernel = deconv_kernel(deconv).astype(np.float64)
        return KernelSummary(entry, kernel, deconv.stride, 0, polyphase_sums(kernel, deconv.stride),
                             overlap_verdict(kernel, deconv.stride))
    if entry == "unpool":
        constant = _unpool(np.ones((2 * PROBE_SIDE, 2 * PROBE_SIDE), np.float32))
        sums = phase_means(constant, FACTOR)
        return KernelSummary(entry, None, FACTOR, 0, sums, _unpool_verdict(sums))
    kernel, padding = equivalent_kernel(entry, FACTOR)
    return KernelSummary(entry, kernel, FACTOR, padding, polyphase_sums(kernel, FACTOR, padding),
                         overlap_verdict(kernel, FACTOR, padding))


def probe_input(name: str, side: int = PROBE_SIDE) -> np.ndarray:
    """A float32 side x side probe: a constant 1, a single 1 at (side // 2, side // 2) on 0, or the
    diagonal ramp (x + y) / (2 side - 2)."""
    if name == "constant":
        return np.ones((side, side), np.float32)
    if name == "impulse":
        out = np.zeros((side, side), np.float32)
        out[side // 2, side // 2] = 1.0
        return out
    if name == "ramp":
        y, x = np.mgrid[:side, :side]
        return ((x + y) / max(2 * side - 2, 1)).astype(np.float32)
    raise ValueError(f"unknown probe input {name!r}; inputs: {', '.join(PROBE_INPUTS)}")


def upsample_probe(entry: str, probe: np.ndarray, deconv: DeconvSettings = DEFAULT_DECONV) -> np.ndarray:
    """The upsampler's float32 output for `probe`.

    Modes upsample by 2; unpooling pools the probe enlarged 2x (nearest), so each window holds one
    probe value, and unpools it; CUSTOM is the unpadded transposed convolution ((n - 1) s + k).
    """
    if entry == CUSTOM:
        return transposed_conv2d(probe, deconv_kernel(deconv), deconv.stride)
    if entry == "unpool":
        return _unpool(np.repeat(np.repeat(probe, FACTOR, axis=0), FACTOR, axis=1))
    return upsample(probe, entry, FACTOR)


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


def inspect_kernels(req: KernelRequest) -> Iterator[Progress | KernelInspection]:
    """Summaries of every upsampler, then the selected one's kernel, probe outputs and spectrum."""
    p, i = req.pyramid, req.level
    total = len(KERNEL_ENTRIES) + len(PROBE_INPUTS) + 1
    summaries = []
    for n, entry in enumerate(KERNEL_ENTRIES):
        yield Progress(n, total, f"Kernel of {entry}")
        summaries.append(summarize(entry, req.deconv))
    selected = next(s for s in summaries if s.entry == req.entry)
    kernel = None if selected.kernel is None else make_layer(selected.kernel, 0, signed=True, scale=1.0)
    probes = []
    for n, name in enumerate(PROBE_INPUTS):
        yield Progress(len(KERNEL_ENTRIES) + n, total, f"{req.entry}: {name} probe")
        out = upsample_probe(req.entry, probe_input(name), req.deconv)
        # the inputs span 0..1: on that scale a flat output is mid-grey to white, not a black void
        limits = (min(0.0, float(out.min())), max(1.0, float(out.max())))
        probes.append((name, make_layer(out, 0, scale=1.0, limits=limits)))
    yield Progress(total - 1, total, f"{req.entry}: spectrum")
    spectrum, peaks, note = None, (), f"level {i} is the coarsest: there is no G[{i + 1}] to upsample"
    if 0 <= i < p.levels - 1:
        fine, coarse = p.gaussian[i], p.gaussian[i + 1]
        if req.entry == CUSTOM:
            up = transposed_conv2d(coarse.astype(np.float32), deconv_kernel(req.deconv), req.deconv.stride)
        elif req.entry == "unpool":
            up = _unpool(fine) if min(fine.shape[:2]) >= FACTOR else None
        else:  # exactly twice the size: a fitted odd size would break the period-2 structure
            up = upsample(coarse, req.entry, FACTOR)
        if up is None:
            note = f"level {i} is smaller than the {FACTOR}x{FACTOR} pooling window"
        else:
            crop, where = spectrum_region(channel_mean(up))
            values = log_spectrum(periodic_component(crop))
            spectrum = make_layer(values, 0, scale=1.0)
            peaks = tuple(nyquist_peaks(values))
            what = (f"unpool(maxpool G[{i}])" if req.entry == "unpool"
                    else f"G[{i + 1}] upsampled by {req.entry}")
            note = f"log(1 + |FFT|) of {what} ({where}, periodic part)"
    yield KernelInspection(image_id=p.image_id, level=i, entry=req.entry, deconv=req.deconv,
                           summaries=tuple(summaries), kernel=kernel, probes=tuple(probes), spectrum=spectrum,
                           peaks=peaks, spectrum_note=note)


# --- unpooling ----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class UnpoolRequest:
    pyramid: Pyramid
    level: int


@dataclass(frozen=True, eq=False)
class UnpoolView:
    """G[level], its 2x2 max pool, the unpooled result, and where every maximum was recorded.

    `indices` are `max_pool_with_indices`'s flat positions (int64, the pooled shape);
    `argmax_rows`/`argmax_cols` are int32 (H // 2, W // 2, C): the row and column in G[level] of the
    maximum of window (i, j) in channel c, i.e. divmod(indices, W); the unpooled output holds the
    pooled values there and zeros everywhere else, and `mask` (uint8, G[level]'s shape) is 255 there.
    """

    image_id: int
    level: int
    source: Layer
    pooled: Layer
    unpooled: Layer
    indices: np.ndarray
    argmax_rows: np.ndarray
    argmax_cols: np.ndarray
    mask: np.ndarray

    @property
    def dropped(self) -> tuple[int, int]:
        """Rows and columns at the bottom and right that pooling's floor mode leaves out (0 or 1)."""
        h, w = self.source.shape[:2]
        return h % FACTOR, w % FACTOR


def unpool_view(req: UnpoolRequest) -> Iterator[Progress | UnpoolView]:
    """Max-pool G[level] 2x2 with indices, unpool it back to G[level]'s size, and locate each maximum."""
    p, i = req.pyramid, req.level
    if not 0 <= i < p.levels:
        raise ValueError(f"level {i} is out of range 0..{p.levels - 1}")
    fine = p.gaussian[i]
    h, w = fine.shape[:2]
    if min(h, w) < FACTOR:
        raise ValueError(f"level {i} ({w} x {h}) is smaller than the {FACTOR}x{FACTOR} pooling window")
    yield Progress(0, 2, f"Level {i}: max pool with indices")
    pooled, indices = max_pool_with_indices(fine, FACTOR)
    yield Progress(1, 2, f"Level {i}: unpool")
    out = upsample(pooled, "unpool", FACTOR, size=(w, h), indices=indices)
    rows, cols = np.divmod(indices.reshape(*indices.shape[:2], -1), w)
    mask = np.zeros((h, w, rows.shape[2]), np.uint8)
    for c in range(rows.shape[2]):
        mask[rows[..., c], cols[..., c], c] = 255
    source = make_layer(fine, i)
    # a pooled pixel covers a 2x2 window of G[i]: twice its pixel, from the same outer corner (not
    # G[i + 1]'s placement, whose pixels are centred on every other pixel of G[i])
    yield UnpoolView(image_id=p.image_id, level=i, source=source,
                     pooled=make_layer(pooled, i + 1, origin=source.origin),
                     unpooled=make_layer(to_dtype(out, fine.dtype), i),
                     indices=indices, argmax_rows=rows.astype(np.int32), argmax_cols=cols.astype(np.int32),
                     mask=mask.reshape(fine.shape))


# --- export -------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class ToolExportRequest:
    """Write a tool's arrays (made from `image`, read from `source_path` if any) through the core."""

    image: np.ndarray
    out_dir: str
    arrays: tuple[NamedArray, ...]
    fmt: str = "tiff"
    parameters: dict[str, Any] = field(default_factory=dict)
    source_path: str | None = None
    force: bool = False


def export_tool(req: ToolExportRequest) -> Iterator[Progress | ExportDone]:
    """The core's `iter_export_arrays`, one file per step; stopped, it cancels like `jobs.export`."""
    stop = threading.Event()
    files = iter_export_arrays(req.image, req.out_dir, req.arrays, fmt=req.fmt, parameters=req.parameters,
                               source_path=req.source_path, force=req.force, cancel=stop.is_set)
    yield from drive_export(files, stop)


def _json_number(x: float) -> float | str:
    """A float for JSON: infinities and NaN as the strings "inf", "-inf", "nan" (JSON has none)."""
    return x if math.isfinite(x) else str(x)


def _report_details(report: ErrorReport) -> dict[str, Any]:
    return {"max_abs_error": report.max_abs_error, "rmse": report.rmse, "psnr_db": _json_number(report.psnr),
            "differing_pixels": report.differing_pixels, "sentence": report.sentence}


def integrity_arrays(view: IntegrityView) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """The integrity tool's residuals as named arrays, and the manifest's parameters."""
    arrays = (
        NamedArray("integrity_residual", view.laplacian.layer.data, "integrity", signed=True, level=0,
                   details={"what": f"source - reconstruction from {view.storage} Laplacian bands",
                            **_report_details(view.laplacian)}),
        NamedArray("gaussian_round_trip_residual", view.gaussian.layer.data, "integrity", signed=True,
                   level=0,
                   details={"what": "source - pyrUp(pyrDown(source))", **_report_details(view.gaussian)}),
    )
    return arrays, {"tool": "integrity", "storage": view.storage, "levels": view.levels,
                    "clipped_levels": list(view.clipped_levels)}


def equalizer_arrays(view: EqualizerView) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """The equalized image and its change from the source, and the gains as parameters."""
    details = {"max_abs_change": view.max_abs_change, "changed_pixels": view.changed_pixels,
               "saturated_values": view.saturated_values}
    arrays = (
        NamedArray("equalized", view.image.data, "equalizer", level=0, details=details),
        NamedArray("equalized_change", view.change.data, "equalizer", signed=True, level=0,
                   details={"what": "equalized - source", **details}),
    )
    return arrays, {"tool": "equalizer", "levels": view.levels, "gains": list(view.gains),
                    "reconstruction": "core.pyramid.reconstruct(laplacian float32, gains), rounded to the "
                                      "source dtype"}


def kernel_arrays(view: KernelInspection) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """The selected upsampler's kernel, phase sums, probe outputs and spectrum, and its settings."""
    s = view.selected
    arrays = []
    if s.kernel is not None:
        arrays.append(NamedArray("kernel", s.kernel.astype(np.float32), "kernels", signed=True,
                                 details={"padding": s.padding, "stride": s.stride}))
    arrays.append(NamedArray("phase_sums", s.phase_sums.astype(np.float32), "kernels",
                             details={"verdict": s.verdict}))
    arrays += [NamedArray(f"probe_{name}", layer.data, "kernels", details={"input": name})
               for name, layer in view.probes]
    if view.spectrum is not None:
        arrays.append(NamedArray("spectrum", view.spectrum.data, "kernels", level=view.level,
                                 details={"what": view.spectrum_note,
                                          "nyquist_peaks": [{"row": r, "col": c, "strength": v}
                                                            for r, c, v in view.peaks]}))
    settings = {"kernel_size": view.deconv.kernel_size, "stride": view.deconv.stride,
                "kernel": view.deconv.kernel} if view.entry == CUSTOM else None
    return tuple(arrays), {"tool": "kernels", "entry": view.entry, "transposed_conv": settings,
                           "probe_side": PROBE_SIDE, "verdict": s.verdict}


def unpool_arrays(view: UnpoolView, fmt: str) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """Pooled and unpooled images and a uint8 mask of the recorded maxima (255 there, per channel);
    the flat indices too, except in PNG, which cannot hold int64."""
    i = view.level
    arrays = [NamedArray("pooled", view.pooled.data, "unpool", level=i + 1),
              NamedArray("unpooled", view.unpooled.data, "unpool", level=i),
              NamedArray("argmax_mask", view.mask, "unpool", level=i,
                         details={"what": "255 where a window's maximum was recorded, per channel"})]
    if fmt != "png":
        arrays.append(NamedArray("indices", view.indices, "unpool", level=i + 1,
                                 details={"what": "flat index row * W + col in G[level] of each maximum "
                                                  "(max_pool_with_indices)"}))
    return tuple(arrays), {"tool": "unpool", "level": i, "window": FACTOR}


def tool_arrays(result: IntegrityView | EqualizerView | KernelInspection | UnpoolView,
                fmt: str) -> tuple[tuple[NamedArray, ...], dict[str, Any]]:
    """The arrays a tool's result exports in `fmt`, and the manifest's parameters (with "tool")."""
    if isinstance(result, IntegrityView):
        return integrity_arrays(result)
    if isinstance(result, EqualizerView):
        return equalizer_arrays(result)
    if isinstance(result, KernelInspection):
        return kernel_arrays(result)
    if isinstance(result, UnpoolView):
        return unpool_arrays(result, fmt)
    raise TypeError(f"no export for {type(result).__name__}")
