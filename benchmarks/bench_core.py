"""Core engine benchmark: the minimum and spread of repeated runs on a 3840x2160 RGB image, with ratios
to reference implementations.

Run: python benchmarks/bench_core.py [--repeat N] [--threads N]. Every comparison runs in this one process,
and ours and its reference alternate run by run (except PyTorch, which runs last), so the ratios hold on a
noisy machine even when the absolute times do not; the spread shows how noisy it was. PyTorch rows appear
only when torch is installed (it is never a dependency); `--threads` gives OpenCV (whose thread count our
banded loops follow) and PyTorch the same number of threads.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np
from host import cpu_description

from pyramid_explorer.core import metrics, upsampling
from pyramid_explorer.core.pyramid import laplacian_pyramid, reconstruct

WIDTH, HEIGHT = 3840, 2160
BATCH = 9  # the SSIMs of a level-0 comparison: ten panels, area sharing nearest's numbers


@dataclass(frozen=True)
class Timing:
    """Wall times of the repeats of one task, in milliseconds."""

    times: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.times)

    @property
    def spread(self) -> float:
        """How far the slowest repeat ran above the fastest, as a fraction of the fastest."""
        return max(self.times) / self.best - 1


def timings(fns: list[Callable[[], object]], repeat: int) -> list[Timing]:
    """Wall times of each of `fns`, called in turn `repeat` times after one warm-up call each."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times, strict=True):
            start = time.perf_counter()
            fn()
            out.append(1000 * (time.perf_counter() - start))
    return [Timing(tuple(t)) for t in times]


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call."""
    return statistics.median(timings([fn], repeat)[0].times)


def test_image() -> np.ndarray:
    """A photograph tiled to 4K (realistic statistics, not noise)."""
    from skimage import data

    return cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def opencv_loop(image: np.ndarray, collapse: bool = True) -> np.ndarray | list[np.ndarray]:
    """The plain pyrDown/pyrUp loop a user would write by hand: build the Laplacian, then collapse it
    (or return the bands when `collapse` is False)."""
    gauss = [image]
    while gauss[-1].shape[0] > 1 or gauss[-1].shape[1] > 1:
        gauss.append(cv2.pyrDown(gauss[-1]))
    floats = [g.astype(np.float32) for g in gauss]
    bands = [f - cv2.pyrUp(c, dstsize=(f.shape[1], f.shape[0])) for f, c in itertools.pairwise(floats)]
    bands.append(floats[-1])
    if not collapse:
        return bands
    result = bands[-1]
    for band in reversed(bands[:-1]):
        result = band + cv2.pyrUp(result, dstsize=(band.shape[1], band.shape[0]))
    return result


Row = tuple[str, Timing, str, Timing | None, str]  # task, ours, reference name, reference, target


def rows(image: np.ndarray, repeat: int) -> list[Row]:
    """(task, ours, reference name, reference or None, target speed-up)."""
    out: list[Row] = []
    ours, ref = timings([lambda: reconstruct(laplacian_pyramid(image)), lambda: opencv_loop(image)], repeat)
    out.append(("Laplacian build + reconstruct", ours, "plain `cv2.pyrDown`/`pyrUp` loop", ref, ">= 0.91x"))
    ours, ref = timings([lambda: laplacian_pyramid(image), lambda: opencv_loop(image, collapse=False)],
                        repeat)
    out.append(("Laplacian build", ours, "the same loop, build only", ref, ">= 0.91x"))
    try:
        from skimage.transform import pyramid_laplacian
    except ImportError:
        pass
    else:
        (ref,) = timings([lambda: list(pyramid_laplacian(image, channel_axis=-1))], max(1, repeat // 3))
        out.append(("Laplacian build", ours, "scikit-image `pyramid_laplacian`", ref, ""))
    out.extend(metric_rows(image, repeat))

    full = image.astype(np.float32)
    half = cv2.resize(full, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
    pooled, indices = upsampling.max_pool_with_indices(full)
    kernel = upsampling.bilinear_kernel(4)
    deconv, pool, unpool, both = timings([
        lambda: upsampling.transposed_conv2d(half, kernel, 2, 1),
        lambda: upsampling.max_pool_with_indices(full),
        lambda: upsampling.max_unpool(pooled, indices, full.shape),
        lambda: upsampling.max_unpool(*upsampling.max_pool_with_indices(full), full.shape),
    ], repeat)
    plain_modes = [mode for mode in upsampling.MODES if mode != "unpool"]  # unpool needs pooling indices
    found = timings([lambda m=mode: upsampling.upsample(half, m) for mode in plain_modes], repeat)
    modes = dict(zip(plain_modes, found, strict=True))
    # PyTorch last: its idle OpenMP threads keep spinning for a while and would slow whatever runs next.
    torch_ms = torch_references(half, full, repeat)
    out.append(("`transposed_conv2d` stride 2, 4x4 bilinear (1920x1080 in)", deconv,
                "torch `conv_transpose2d`", torch_ms.get("deconv"), ""))
    out.append(("`max_pool_with_indices` 2x2", pool, "torch `max_pool2d(return_indices=True)`",
                torch_ms.get("pool"), ""))
    out.append(("`max_unpool` 2x2", unpool, "torch `max_unpool2d`", torch_ms.get("unpool"), ""))
    out.append(("`max_pool_with_indices` + `max_unpool` 2x2", both, "torch, the same two",
                torch_ms.get("both"), ">= 2.5x"))
    for mode, timing in modes.items():
        deconv = mode == "deconv_bilinear"
        reference = ("torch `conv_transpose2d`", torch_ms.get("deconv")) if deconv else ("", None)
        out.append((f"`upsample` {mode} x2 (1920x1080 in)", timing, *reference, ""))
    return out


def metric_rows(image: np.ndarray, repeat: int) -> list[Row]:
    """SSIM against scikit-image and against its floor (five float32 11x11 Gaussian blurs of the image),
    PSNR and MSE against `cv2.PSNR`; the candidate is the image's pyrUp(pyrDown) in float32, as Compare
    measures an upsampling mode against a level."""
    from skimage.metrics import structural_similarity

    candidate = cv2.pyrUp(cv2.pyrDown(image.astype(np.float32)), dstsize=(WIDTH, HEIGHT))
    candidate8 = np.clip(np.rint(candidate), 0, 255).astype(np.uint8)
    floats = image.astype(np.float32)
    # what Compare hands its batch at level 0: nine candidates (distinct arrays, as the modes' are)
    candidates = [candidate + np.float32(k / 16) for k in range(BATCH)]

    def five_blurs() -> None:
        for _ in range(5):
            cv2.GaussianBlur(floats, (11, 11), 1.5)

    ssim, floor, batch = timings([lambda: metrics.ssim(image, candidate, 255), five_blurs,
                                  lambda: metrics.SsimBatch(image, candidates, 255).run()], repeat)
    per_candidate = Timing(tuple(t / BATCH for t in batch.times))
    (skimage,) = timings([lambda: structural_similarity(
        image, candidate, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        channel_axis=-1)], max(1, repeat // 3))
    psnr, mse, opencv = timings([lambda: metrics.psnr(image, candidate8, 255),
                                 lambda: metrics.mse(image, candidate8), lambda: cv2.PSNR(image, candidate8)],
                                repeat)
    return [
        ("`ssim` (uint8 vs float32)", ssim, "scikit-image `structural_similarity`", skimage, ""),
        ("`ssim` (uint8 vs float32)", ssim, "five float32 `cv2.GaussianBlur` 11x11", floor, ">= 0.5x"),
        (f"`SsimBatch` of {BATCH} candidates, per candidate", per_candidate,
         "five float32 `cv2.GaussianBlur` 11x11", floor, ""),
        ("`psnr` (uint8)", psnr, "`cv2.PSNR`", opencv, ">= 0.67x"),
        ("`mse` (uint8)", mse, "`cv2.PSNR`", opencv, ">= 0.67x"),
    ]


def torch_references(half: np.ndarray, full: np.ndarray, repeat: int) -> dict[str, Timing]:
    """PyTorch CPU timings of the same work (NCHW tensors made beforehand), or {} without torch."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("PyTorch not installed: its rows are skipped (pip install torch==2.13.0 to compare).")
        return {}
    channels = half.shape[2]
    x = torch.from_numpy(np.ascontiguousarray(half.transpose(2, 0, 1)))[None]
    weight = torch.from_numpy(np.repeat(upsampling.bilinear_kernel(4)[None, None], channels, axis=0))
    big = torch.from_numpy(np.ascontiguousarray(full.transpose(2, 0, 1)))[None]
    pooled, indices = F.max_pool2d(big, 2, 2, return_indices=True)

    def both() -> None:
        F.max_unpool2d(*F.max_pool2d(big, 2, 2, return_indices=True), 2, 2, output_size=big.shape[2:])

    with torch.no_grad():
        found = timings([
            lambda: F.conv_transpose2d(x, weight, stride=2, padding=1, groups=channels),
            lambda: F.max_pool2d(big, 2, 2, return_indices=True),
            lambda: F.max_unpool2d(pooled, indices, 2, 2, output_size=big.shape[2:]),
            both,
        ], repeat)
    return dict(zip(("deconv", "pool", "unpool", "both"), found, strict=True))


def torch_threads() -> str:
    """PyTorch's version and CPU thread count (its default, one per core), for the table's heading."""
    try:
        import torch
    except ImportError:
        return "no PyTorch"
    return f"PyTorch {torch.__version__} with {torch.get_num_threads()} threads"


def set_threads(n: int) -> None:
    """The same number of threads for OpenCV (hence our banded loops) and for PyTorch."""
    cv2.setNumThreads(n)
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per row (minimum reported)")
    parser.add_argument("--threads", type=int, help="OpenCV's and PyTorch's thread count (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        set_threads(args.threads)
    start_load = os.getloadavg()[0]
    found = rows(test_image(), args.repeat)
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, {cv2.getNumThreads()} OpenCV threads, "
          f"{torch_threads()}, {WIDTH}x{HEIGHT} RGB, minimum of {args.repeat} (spread: slowest repeat above "
          f"the fastest), load average {start_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
          f"{cpu_description()}")
    print("| task | ours min (ms) | spread | reference | reference min (ms) | spread | speed-up | target |\n"
          "|---|---:|---:|---|---:|---:|---:|---|")
    for task, ours, ref_name, ref, target in found:
        ref_cells = f"{ref.best:.1f} | +{ref.spread:.0%} | {ref.best / ours.best:.2f}x" if ref else " | | "
        print(f"| {task} | {ours.best:.1f} | +{ours.spread:.0%} | {ref_name} | {ref_cells} | {target} |")
    print_loading_rows(test_image(), args.repeat)


def print_loading_rows(image: np.ndarray, repeat: int) -> None:
    """`load_image` against `cv2.imread` + `cvtColor` to RGB on the same 4K PNG and JPEG files.

    The two are timed alternately, so a busy machine slows both alike; min and spread (max - min) of the
    repeats are printed, and the ratio of the minima (target: at most 1.1).
    """
    import tempfile
    from pathlib import Path

    from pyramid_explorer.core.io import load_image

    def reference(path: str) -> np.ndarray:
        return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_UNCHANGED), cv2.COLOR_BGR2RGB)

    print("\n| load 4K RGB | ours min (ms) | spread | cv2.imread + cvtColor min (ms) | spread | ratio |")
    print("|---|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name in ("png", "jpg"):
            path = str(Path(folder) / f"photo.{name}")
            cv2.imwrite(path, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            assert np.array_equal(load_image(path), reference(path))
            times: dict[str, list[float]] = {"ours": [], "cv2": []}
            for _ in range(repeat):
                for label, load in (("ours", load_image), ("cv2", reference)):
                    start = time.perf_counter()
                    load(path)
                    times[label].append(1000 * (time.perf_counter() - start))
            ours, ref = times["ours"], times["cv2"]
            print(f"| {name.upper()} | {min(ours):.1f} | {max(ours) - min(ours):.1f} | {min(ref):.1f} | "
                  f"{max(ref) - min(ref):.1f} | {min(ours) / min(ref):.2f} |")


if __name__ == "__main__":
    main()
