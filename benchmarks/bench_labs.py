"""Labs benchmark: what each lab recomputes on a slider change, at a 1920x1080 RGB output.

Run: python benchmarks/bench_labs.py [--repeat N]. Each row gives the minimum and the spread (max - min)
of N runs, and the ratio of the minimum to a reference run in this same process (PyTorch's equivalent
when torch is installed, else an OpenCV operation of similar size), so ratios hold on a noisy machine
when absolute times do not. No timing asserts.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import cv2
import numpy as np

from pyramid_explorer.core import analysis, blend, equivariance, learnable, upsampling
from pyramid_explorer.core.pyramid import laplacian_pyramid

WIDTH, HEIGHT = 1920, 1080


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(min, max - min) wall time of ``fn`` in ms over ``repeat`` runs, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - start))
    return min(times), max(times) - min(times)


def torch_references(half: np.ndarray) -> dict[str, Callable[[], object]]:
    """PyTorch's sub-pixel and resize-convolution on the same numbers (empty without torch)."""
    try:
        import torch
    except ImportError:
        return {}
    functional = torch.nn.functional
    x = torch.from_numpy(half.transpose(2, 0, 1).copy())[None]
    sub = torch.from_numpy(np.ones((12, 1, 3, 3), np.float32))
    resize = torch.from_numpy(np.ones((3, 1, 3, 3), np.float32))
    return {
        "subpixel": lambda: functional.pixel_shuffle(functional.conv2d(x, sub, padding=1, groups=3), 2),
        "resize": lambda: functional.conv2d(functional.interpolate(x, scale_factor=2, mode="nearest"), resize,
                                            padding=1, groups=3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    repeat = parser.parse_args().repeat
    from skimage import data

    image = cv2.resize(data.astronaut(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    other = cv2.resize(data.chelsea(), (WIDTH, HEIGHT), interpolation=cv2.INTER_CUBIC)
    half = cv2.resize(image, (WIDTH // 2, HEIGHT // 2), interpolation=cv2.INTER_AREA).astype(np.float32)
    bilinear = lambda: cv2.resize(half, (WIDTH, HEIGHT), interpolation=cv2.INTER_LINEAR)  # noqa: E731
    references = torch_references(half)
    mask = blend.feather(blend.half_mask(image.shape), 60)
    steps = analysis.preset_steps("uniform", 8, image.dtype)
    rows: list[tuple[str, Callable[[], object], str, Callable[[], object]]] = []
    for method in learnable.METHODS:
        up = learnable.random_init(method, 2)
        ref_name = f"torch {method}" if method in references else "cv2.resize bilinear"
        rows.append((f"{method} (random init)", lambda up=up: up.apply(half), ref_name,
                     references.get(method, bilinear)))
    pyramid = lambda: laplacian_pyramid(image)  # noqa: E731
    stacked = np.tile(half, (1, 1, 4))
    rows += [
        ("pixel_shuffle", lambda: upsampling.pixel_shuffle(stacked, 2), "cv2.resize bilinear", bilinear),
        ("laplacian_blend", lambda: blend.laplacian_blend(image, other, mask), "laplacian_pyramid", pyramid),
        ("feather width 60", lambda: blend.feather(blend.half_mask(image.shape), 60), "cv2.resize bilinear",
         bilinear),
        ("code_pyramid 8 bands", lambda: analysis.code_pyramid(image, steps), "laplacian_pyramid", pyramid),
        ("jpeg q50", lambda: analysis.jpeg_round_trip(image, 50), "laplacian_pyramid", pyramid),
        ("shift_study maxblurpool", lambda: equivariance.shift_study(image, "maxblurpool"),
         "laplacian_pyramid", pyramid),
    ]
    print(f"{WIDTH}x{HEIGHT} RGB, {repeat} runs: min ms (spread)  reference min ms  ratio")
    for name, fn, ref_name, ref in rows:
        (ours, spread), (theirs, _) = timed(fn, repeat), timed(ref, repeat)
        print(f"{name:26s} {ours:8.1f} ({spread:6.1f})   {ref_name:20s} {theirs:8.1f}   {ours / theirs:6.2f}")


if __name__ == "__main__":
    main()
