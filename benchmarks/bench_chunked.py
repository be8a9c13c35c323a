"""Chunked-engine benchmark: a big tiled TIFF exported by our strip engine and by libvips, in the same run.

Run: python benchmarks/bench_chunked.py [--size 16000] [--input /tmp/bench-16000.tif] [--repeats 3]
[--chunk 1024] [--memory-limit 1.5GB] [--out DIR]
(the libvips rows need `pip install 'pyramid-explorer[bench]'`)

`--compressed` adds libvips' LZW and our zlib rows. The input (size x size RGB uint8, uncompressed
256-pixel tiles: a photograph tiled with a brightness ramp, so it compresses like a real one) is written
once, tile by tile, to `--input` (outside the repository) and reused. Each export runs in a fresh
process, and the exports are interleaved repeat by repeat, so the machine's load (other jobs) affects
them alike; the table gives the minimum wall time, the spread (max - min) over the repeats, the CPU time
(user + system) of that fastest run and CPU time / wall time (2.0 = both cores of a 2-core machine busy),
peak resident memory, and the ratio to libvips' uncompressed pyramidal tiffsave (the reference: a box
shrink, not an exact Gaussian), then the load average the runs started at. Then a 4000 x 4000
crop is exported and checked bit for bit against the in-memory engine. No timing asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask.array as da
import numpy as np
import tifffile
from dask.utils import format_bytes

from pyramid_explorer.core import bigtiff, chunked, omezarr
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid

CROP = 4000
TILE = 256
RUNS = {  # name: what one run does (in its own process); the reference first
    "libvips tiffsave (pyramid, SubIFDs, no compression)": "vips",
    "ours: OME-Zarr, Gaussian": "zarr-gaussian",
    "ours: OME-Zarr, Gaussian + Laplacian (bands scaled-int16)": "zarr-both",
    "ours: OME-Zarr, Gaussian + Laplacian (bands float32, --band-encoding float32)": "zarr-both-float32",
    "ours: OME-TIFF (SubIFDs, no compression)": "ome-tiff",
}
COMPRESSED_RUNS = {  # --compressed: minutes each on a loaded machine
    "libvips tiffsave, LZW": "vips-lzw",
    "ours: OME-TIFF, zlib (--tiff-compression zlib)": "ome-tiff-zlib",
}


def synthetic_tile(size: int, y: int, x: int) -> np.ndarray:
    """Tile (y, x) of the synthetic image: scikit-image's astronaut (public domain), repeated, plus a ramp."""
    from skimage import data

    photo = data.astronaut()
    ys, xs = np.arange(y, min(y + TILE, size)), np.arange(x, min(x + TILE, size))
    tile = np.zeros((TILE, TILE, 3), np.uint8)
    ramp = ((ys[:, None] + xs[None, :]) * (48 / (2 * size))).astype(np.int16)
    pixels = photo.take(ys % photo.shape[0], axis=0).take(xs % photo.shape[1], axis=1)
    tile[: len(ys), : len(xs)] = np.clip(pixels + ramp[..., None], 0, 255)
    return tile


def write_input(path: Path, size: int) -> None:
    tiles = (synthetic_tile(size, y, x) for y in range(0, size, TILE) for x in range(0, size, TILE))
    partial = path.with_name(path.name + ".partial")
    tifffile.imwrite(partial, tiles, shape=(size, size, 3), dtype=np.uint8, tile=(TILE, TILE),
                     photometric="rgb", bigtiff=size * size * 3 > 2**31)
    os.replace(partial, path)


def run_one(kind: str, source: Path, out: Path, chunk: int, memory_limit: str) -> dict:
    """One export in this process; its wall time, CPU time and peak resident memory."""
    started, cpu = time.perf_counter(), os.times()
    if kind.startswith("vips"):
        import pyvips

        image = pyvips.Image.new_from_file(str(source), access="sequential")
        image.tiffsave(str(out / "vips.tif"), tile=True, pyramid=True, subifd=True,
                       compression="lzw" if kind == "vips-lzw" else "none")
    elif kind.startswith("zarr"):
        chunked.export_ome_zarr(source, out / "out.ome.zarr", laplacian=kind != "zarr-gaussian", chunk=chunk,
                                band_encoding="float32" if kind == "zarr-both-float32" else "scaled-int16",
                                memory_limit=memory_limit, force=True)
    else:
        bigtiff.export_pyramid_tiff(source, out / "tiff", chunk=chunk, memory_limit=memory_limit,
                                    compression="zlib" if kind == "ome-tiff-zlib" else None, force=True)
    wall = time.perf_counter() - started
    end = os.times()
    return {"wall": wall, "cpu": end.user - cpu.user + end.system - cpu.system, "peak": peak_rss()}


def peak_rss() -> int:
    """This process's peak resident memory: VmHWM on Linux (ru_maxrss survives exec there, so a process
    started by a big one would report its parent's), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)


def measure(kind: str, source: Path, out: Path, args: argparse.Namespace) -> dict:
    command = [sys.executable, __file__, "--run", kind, "--input", str(source), "--out", str(out),
               "--chunk", str(args.chunk), "--memory-limit", args.memory_limit]
    out.mkdir(exist_ok=True)
    try:
        result = subprocess.run(command, capture_output=True, text=True, check=True)
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return json.loads(result.stdout.splitlines()[-1])


def check_crop(source: Path, work: Path, chunk: int) -> bool:
    """A 4000 x 4000 crop's exported levels and bands (scaled-int16, decoded by zarr-python) equal the
    in-memory engine's bit for bit."""
    with tifffile.TiffFile(source) as tif:
        crop = np.ascontiguousarray(tif.pages[0].asarray()[:CROP, :CROP])
    chunked.export_ome_zarr(da.from_array(crop, chunks=(chunk, chunk, 3)), work / "crop.ome.zarr",
                            chunk=chunk)
    stored = [level.compute() for level in omezarr.open_levels(work / "crop.ome.zarr")]
    stored += [band.compute() for band in omezarr.open_levels(work / "crop.ome.zarr" / "laplacian")]
    wanted = [*gaussian_pyramid(crop), *laplacian_pyramid(crop)]
    return all(a.tobytes() == b.tobytes() for a, b in zip(stored, wanted, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=16000, help="side of the square image (default 16000)")
    parser.add_argument("--input", type=Path, default=None,
                        help="the input TIFF, written once if missing (default /tmp/bench-SIZE.tif)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats (default 3)")
    parser.add_argument("--chunk", type=int, default=chunked.DEFAULT_CHUNK, help="rows per strip")
    parser.add_argument("--memory-limit", default="1.5GB", help="memory limit of our exports (default 1.5GB)")
    parser.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    parser.add_argument("--compressed", action="store_true", help="add the LZW / zlib rows (slow)")
    parser.add_argument("--run", default=None, help=argparse.SUPPRESS)  # one measured export (internal)
    args = parser.parse_args()
    if args.run is not None:
        print(json.dumps(run_one(args.run, args.input, args.out, args.chunk, args.memory_limit)))
        return
    source = args.input or Path(tempfile.gettempdir()) / f"bench-{args.size}.tif"
    if not source.exists():
        print(f"writing the {args.size} x {args.size} input to {source} ...", flush=True)
        write_input(source, args.size)
    work = args.out or Path(tempfile.mkdtemp(prefix="bench-chunked-"))
    work.mkdir(parents=True, exist_ok=True)
    runs = {**RUNS, **(COMPRESSED_RUNS if args.compressed else {})}
    try:
        import pyvips  # noqa: F401
    except (ImportError, OSError):
        runs = {name: kind for name, kind in runs.items() if not kind.startswith("vips")}
        print("pyvips with its libvips binary is not installed: no libvips rows "
              "(pip install 'pyramid-explorer[bench]')")
    print(f"{os.cpu_count()} cores; input {source} ({format_bytes(source.stat().st_size)}); "
          f"chunk {args.chunk}; memory limit {args.memory_limit}; {args.repeats} interleaved repeats")
    results: dict[str, list[dict]] = {name: [] for name in runs}
    loads = []  # the 1-minute load average before each run: how busy other jobs kept the cores
    try:
        for repeat in range(args.repeats):
            for name, kind in runs.items():
                loads.append(os.getloadavg()[0])
                results[name].append(measure(kind, source, work / "run", args))
                print(f"  repeat {repeat + 1}: {name}: {results[name][-1]['wall']:.2f} s", flush=True)
        vips = results.get(next(iter(RUNS)))
        reference = min(r["wall"] for r in vips) if vips else None
        print("\n| run | wall (min) | spread | CPU time | CPU / wall | peak RSS | vs libvips |")
        print("|---|---|---|---|---|---|---|")
        for name, found in results.items():
            best = min(found, key=lambda r: r["wall"])
            spread = max(r["wall"] for r in found) - best["wall"]
            ratio = f"{best['wall'] / reference:.2f}x" if reference else "-"
            print(f"| {name} | {best['wall']:.2f} s | {spread:.2f} s | {best['cpu']:.2f} s | "
                  f"{best['cpu'] / best['wall']:.2f} | "
                  f"{best['peak'] / 1e9:.2f} GB | {ratio} |")
        print(f"\nload average (1 min) before the runs: {min(loads):.1f} to {max(loads):.1f} "
              f"({os.cpu_count()} cores)")
        print(f"\ncrop {CROP} x {CROP}: levels and bands bit-identical to the in-memory engine: "
              f"{check_crop(source, work, args.chunk)}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
