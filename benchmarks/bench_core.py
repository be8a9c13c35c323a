"""Core engine benchmark: medians on a 3840x2160 RGB image, with ratios to reference implementations.

Run: python benchmarks/bench_core.py [--repeat N]. Every comparison runs in this one process, so the
ratios hold on a noisy machine even when the absolute times do not. PyTorch rows appear only when torch
is installed (it is never a dependency).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections.abc import Callable

import cv2
import numpy as np

from pyramid_explorer.core import upsampling
from pyramid_explorer.core.pyramid import laplacian_pyramid, reconstruct

WIDTH, HEIGHT = 3840, 2160


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of `fn` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def test_image() -> np.ndarray:
    """A photograph tiled to 4K (realistic statistics, not noise)."""
    from skimage import data

    return cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)


def opencv_loop(image: np.ndarray) -> np.ndarray:
    """The plain pyrDown/pyrUp loop a user would write by hand: build the Laplacian, then collapse it."""
    gauss = [image]
    while gauss[-1].shape[0] > 1 or gauss[-1].shape[1] > 1:
        gauss.append(cv2.pyrDown(gauss[-1]))
    floats = [g.astype(np.float32) for g in gauss]
    bands = [f - cv2.pyrUp(c, dstsize=(f.shape[1], f.shape[0])) for f, c in itertools.pairwise(floats)]
    bands.append(floats[-1])
    result = bands[-1]
    for band in reversed(bands[:-1]):
        result = band + cv2.pyrUp(result, dstsize=(band.shape[1], band.shape[0]))
    return result


def rows(image: np.ndarray, repeat: int) -> list[tuple[str, float, str, float | None]]:
    """(task, ours in ms, reference name, reference in ms or None)."""
    out = []
    ours = median_ms(lambda: reconstruct(laplacian_pyramid(image)), repeat)
    out.append(("laplacian build + reconstruct", ours, "plain cv2 loop", median_ms(lambda: opencv_loop(image),
                                                                                  repeat)))
    try:
        from skimage.transform import pyramid_laplacian
    except ImportError:
        pass
    else:
        build = median_ms(lambda: laplacian_pyramid(image), repeat)
        ref = median_ms(lambda: list(pyramid_laplacian(image, channel_axis=-1)), max(1, repeat // 3))
        out.append(("laplacian build", build, "skimage pyramid_laplacian", ref))

    full = image.astype(np.float32)
    half = cv2.resize(full, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA)
    pooled, indices = upsampling.max_pool_with_indices(full)
    kernel = upsampling.bilinear_kernel(4)
    ours = {
        "deconv": median_ms(lambda: upsampling.transposed_conv2d(half, kernel, 2, 1), repeat),
        "pool": median_ms(lambda: upsampling.max_pool_with_indices(full), repeat),
        "unpool": median_ms(lambda: upsampling.max_unpool(pooled, indices, full.shape), repeat),
    }
    modes = {mode: median_ms(lambda m=mode: upsampling.upsample(half, m), repeat)
             for mode in upsampling.MODES if mode != "unpool"}
    # PyTorch last: its idle OpenMP threads keep spinning for a while and would slow whatever runs next.
    torch_ms = torch_references(half, full, repeat)
    out.append(("transposed_conv2d s2 k4 (1920x1080 in)", ours["deconv"], "torch conv_transpose2d",
                torch_ms.get("deconv")))
    out.append(("max_pool_with_indices 2x2", ours["pool"], "torch max_pool2d", torch_ms.get("pool")))
    out.append(("max_unpool 2x2", ours["unpool"], "torch max_unpool2d", torch_ms.get("unpool")))
    for mode, ms in modes.items():
        deconv = mode == "deconv_bilinear"
        out.append((f"upsample {mode} x2 (1920x1080 in)", ms, "torch conv_transpose2d" if deconv else "",
                    torch_ms.get("deconv") if deconv else None))
    return out


def torch_references(half: np.ndarray, full: np.ndarray, repeat: int) -> dict[str, float]:
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
    with torch.no_grad():
        return {
            "deconv": median_ms(lambda: F.conv_transpose2d(x, weight, stride=2, padding=1, groups=channels),
                                repeat),
            "pool": median_ms(lambda: F.max_pool2d(big, 2, 2, return_indices=True), repeat),
            "unpool": median_ms(lambda: F.max_unpool2d(pooled, indices, 2, 2, output_size=big.shape[2:]),
                                repeat),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per row (median reported)")
    args = parser.parse_args()
    print(f"OpenCV {cv2.__version__}, numpy {np.__version__}, {cv2.getNumThreads()} OpenCV threads, "
          f"{WIDTH}x{HEIGHT} RGB, median of {args.repeat}")
    print("| task | ours (ms) | reference | reference (ms) | speed-up |\n|---|---:|---|---:|---:|")
    for task, ours, ref_name, ref in rows(test_image(), args.repeat):
        ratio = f"{ref / ours:.2f}x" if ref else ""
        ref_text = f"{ref:.1f}" if ref else ""
        print(f"| {task} | {ours:.1f} | {ref_name} | {ref_text} | {ratio} |")
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
