"""The Kernels tool: every upsampler as a transposed convolution (kernel, phase sums, overlap verdict),
and for the selected one its probe outputs and the spectrum of an upsampled level; and their export."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from pyramid_explorer.core.analysis import equivalent_kernel, overlap_verdict, phase_means, polyphase_sums
from pyramid_explorer.core.deconv import DEFAULT_DECONV, DeconvSettings, deconv_kernel, deconv_output
from pyramid_explorer.core.export import NamedArray
from pyramid_explorer.core.level_input import POOL as FACTOR
from pyramid_explorer.core.level_input import unavailable, unpool_level, upsample_level
from pyramid_explorer.core.upsampling import MODES, upsample
from pyramid_explorer.display import Layer, make_layer, mode_label
from pyramid_explorer.jobs import Progress, Pyramid
from pyramid_explorer.tools.base import Arrays, Key, Plan, State, Tool
from pyramid_explorer.tools.shared import level_spectrum

CUSTOM = "transposed conv"
"""The kernel inspector's entry for the free transposed convolution (the Compare tab's settings)."""

KERNEL_ENTRIES = (*MODES, CUSTOM)
PROBE_INPUTS = ("constant", "impulse", "ramp")
PROBE_SIDE = 16
"""Side of the probe inputs fed to each upsampler, in input pixels."""
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
class KernelResult:
    """Every upsampler's summary, and for the selected one its kernel, probe outputs and spectrum.

    `probes` pairs each of PROBE_INPUTS with the upsampler's output for it. `spectrum` is log|FFT| of
    the periodic part (`core.analysis.periodic_component`) of `spectrum_region` of the upsampled level,
    None at the coarsest level; `peaks` are the core's `nyquist_peaks` of it, as (row, col, strength
    over the median).
    """

    image_id: int
    levels: int
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
        constant = unpool_level(np.ones((2 * PROBE_SIDE, 2 * PROBE_SIDE), np.float32))
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
        return deconv_output(probe, deconv)
    if entry == "unpool":
        return unpool_level(np.repeat(np.repeat(probe, FACTOR, axis=0), FACTOR, axis=1))
    return upsample(probe, entry, FACTOR)


def inspect_kernels(req: KernelRequest) -> Iterator[Progress | KernelResult]:
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
    peaks: tuple[tuple[int, int, float], ...] = ()
    spectrum, note = None, f"level {i} is the coarsest: there is no G[{i + 1}] to upsample"
    if 0 <= i < p.levels - 1:
        fine, coarse = p.gaussian[i], p.gaussian[i + 1]
        if unavailable(req.entry, fine.shape, i) is not None:
            note = f"level {i} is smaller than the {FACTOR}x{FACTOR} pooling window"
        else:
            # exactly twice the size: a fitted odd size would break the period-2 structure
            up = (deconv_output(coarse, req.deconv) if req.entry == CUSTOM
                  else upsample_level(fine, coarse, req.entry))
            spectrum, peaks, where = level_spectrum(up)
            what = (f"unpool(maxpool G[{i}])" if req.entry == "unpool"
                    else f"G[{i + 1}] upsampled by {mode_label(req.entry)}")
            note = f"log(1 + |FFT|) of {what} ({where}, periodic part)"
    yield KernelResult(image_id=p.image_id, levels=p.levels, level=i, entry=req.entry, deconv=req.deconv,
                       summaries=tuple(summaries), kernel=kernel, probes=tuple(probes), spectrum=spectrum,
                       peaks=peaks, spectrum_note=note)



def kernel_arrays(result: KernelResult) -> Arrays:
    """The selected upsampler's kernel, phase sums, probe outputs and spectrum, and its settings."""
    s = result.selected
    arrays = []
    if s.kernel is not None:
        arrays.append(NamedArray("kernel", s.kernel.astype(np.float32), "kernels", signed=True,
                                 details={"padding": s.padding, "stride": s.stride}))
    arrays.append(NamedArray("phase_sums", s.phase_sums.astype(np.float32), "kernels",
                             details={"verdict": s.verdict}))
    arrays += [NamedArray(f"probe_{name}", layer.data, "kernels", details={"input": name})
               for name, layer in result.probes]
    if result.spectrum is not None:
        arrays.append(NamedArray("spectrum", result.spectrum.data, "kernels", level=result.level,
                                 details={"what": result.spectrum_note,
                                          "nyquist_peaks": [{"row": r, "col": c, "strength": v}
                                                            for r, c, v in result.peaks]}))
    settings = {"kernel_size": result.deconv.kernel_size, "stride": result.deconv.stride,
                "kernel": result.deconv.kernel} if result.entry == CUSTOM else None
    return tuple(arrays), {"tool": "kernels", "entry": result.entry, "transposed_conv": settings,
                           "probe_side": PROBE_SIDE, "verdict": s.verdict}




def _key(result: KernelResult) -> Key:
    return ("kernels", result.image_id, result.levels, result.level, result.entry, result.deconv)


def _plan(state: State) -> Plan:
    p, level = state.pyramid, state.level
    entry, deconv = state.settings["kernel_entry"], state.settings["deconv"]
    return Plan((("kernels", p.image_id, p.levels, level, entry, deconv),), inspect_kernels,
                lambda _: KernelRequest(p, level, entry, deconv))


TOOL = Tool("kernels", "&Kernels", "pyramid_explorer.app.tabs.kernels:KernelsTab", _plan, _key,
            settings={"kernel_entry": "pyrup", "deconv": DEFAULT_DECONV},
            export=lambda result, _fmt: kernel_arrays(result))
