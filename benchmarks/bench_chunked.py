"""Chunked-engine benchmark: a synthetic image larger than the memory limit exported to OME-Zarr.

Run: python benchmarks/bench_chunked.py [--size 20000] [--chunk 2048] [--memory-limit 1.5GB]
[--scheduler ADDRESS] [--out DIR --keep].

The image (size x size, RGB uint8: a photograph tiled with a brightness ramp, so it compresses like a
real one) is generated chunk by chunk inside the Dask graph and never exists whole in memory. The script
prints the export's wall time, throughput and peak resident memory (which must stay under the limit),
then the same numbers for a 4000 x 4000 crop through the chunked export and through the in-memory
engine (`laplacian_pyramid`, which also builds the Gaussian levels), and checks that the crop's exported
levels equal the engine's bit for bit. No timing asserts.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
from dask.utils import format_bytes, parse_bytes

from pyramid_explorer.core import chunked, omezarr
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid

CROP = 4000


def synthetic_block(size: int, block_info: dict | None = None) -> np.ndarray:
    """The pixels of one chunk of the synthetic image, from its position alone (self-contained, so that
    cluster workers can run it: this script is not importable there)."""
    from skimage import data

    (y0, y1), (x0, x1), _ = block_info[None]["array-location"]
    photo = data.astronaut()  # 512 x 512 RGB, public domain
    ys, xs = np.arange(y0, y1), np.arange(x0, x1)
    tile = photo.take(ys % photo.shape[0], axis=0).take(xs % photo.shape[1], axis=1)
    ramp = ((ys[:, None] + xs[None, :]) * (48 / (2 * size))).astype(np.int16)
    return np.clip(tile + ramp[..., None], 0, 255).astype(np.uint8)


def synthetic_image(size: int, chunk: int) -> da.Array:
    rows = tuple(min(chunk, size - y) for y in range(0, size, chunk))
    return da.map_blocks(synthetic_block, size, chunks=(rows, rows, (3,)), dtype=np.uint8,
                         meta=np.empty((0, 0, 0), np.uint8))


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def timed_export(image: da.Array, out: Path, args: argparse.Namespace, memory_limit: str | None) -> float:
    tiles = [0]

    def progress(step) -> None:
        tiles[0] = step.total
        if step.done % max(1, step.total // 20) == 0:
            print(f"  {step.done}/{step.total} tiles", flush=True)

    start = time.perf_counter()
    chunked.export_ome_zarr(image, out, chunk=args.chunk, memory_limit=memory_limit,
                            scheduler=args.scheduler, progress=progress, force=True)
    seconds = time.perf_counter() - start
    print(f"  {tiles[0]} tiles in {seconds:.1f} s; written {format_bytes(folder_bytes(out))}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=20000, help="side of the square image (default 20000)")
    parser.add_argument("--chunk", type=int, default=2048, help="tile side (default 2048)")
    parser.add_argument("--memory-limit", default="1.5GB", help="memory limit (default 1.5GB)")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the exported OME-Zarr folders")
    args = parser.parse_args()
    limit = parse_bytes(args.memory_limit)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-chunked-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} cores; process before the export: {format_bytes(peak_rss())}")
    try:
        image = synthetic_image(args.size, args.chunk)
        megabytes = image.nbytes / 1e6
        where = f"scheduler {args.scheduler}" if args.scheduler else "local threads"
        print(f"export {args.size} x {args.size} RGB uint8 ({format_bytes(image.nbytes)}), "
              f"chunk {args.chunk}, memory limit {format_bytes(limit)}, {where}")
        seconds = timed_export(image, work / "big.ome.zarr", args, args.memory_limit)
        peak = peak_rss()
        print(f"  -> {megabytes / seconds:.1f} MB/s of input; peak RSS {format_bytes(peak)} "
              f"({'under' if peak < limit else 'OVER'} the {format_bytes(limit)} limit)")

        crop = image[:CROP, :CROP].compute()
        print(f"crop {CROP} x {CROP} ({format_bytes(crop.nbytes)})")
        # no memory limit here: this process still holds the allocator's pages from the big export
        crop_seconds = timed_export(da.from_array(crop, chunks=(args.chunk, args.chunk, 3)),
                                    work / "crop.ome.zarr", args, None)
        bands = laplacian_pyramid(crop)  # warm-up: the first call also pays for fresh memory pages
        engine_seconds = statistics.median(timed(lambda: laplacian_pyramid(crop)) for _ in range(3))
        crop_mb = crop.nbytes / 1e6
        print(f"  chunked export: {crop_mb / crop_seconds:.1f} MB/s; in-memory engine "
              f"(Gaussian + Laplacian, no writing, median of 3): {crop_mb / engine_seconds:.1f} MB/s "
              f"({engine_seconds:.2f} s)")
        stored = [level.compute() for level in omezarr.open_levels(work / "crop.ome.zarr")]
        stored += [band.compute() for band in omezarr.open_levels(work / "crop.ome.zarr" / "laplacian")]
        exact = all(a.tobytes() == b.tobytes()
                    for a, b in zip(stored, [*gaussian_pyramid(crop), *bands], strict=True))
        print(f"  crop levels bit-identical to the in-memory engine: {exact}")
    finally:
        if not args.keep:
            shutil.rmtree(work if args.out is None else work / "big.ome.zarr", ignore_errors=True)
            shutil.rmtree(work / "crop.ome.zarr", ignore_errors=True)


if __name__ == "__main__":
    main()
