"""Headless sub-commands: `pyramid-explorer export ...` and `pyramid-explorer info ...` (no Qt).

`main(argv)` gets the sub-command name as argv[0] and returns the exit status: 0 when everything
worked, 1 when some input failed (each failure is one line on stderr, never a traceback), 2 for bad
usage, 130 when interrupted with Ctrl+C.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2

from pyramid_explorer.cli_progress import ProgressBar, plural
from pyramid_explorer.core import tiff
from pyramid_explorer.core.describe import image_info
from pyramid_explorer.core.export import (
    DEFAULT_KINDS,
    FORMATS,
    KINDS,
    ExportConflictError,
    ExportError,
    ExportOptions,
    ExportProgress,
    export_with_options,
)
from pyramid_explorer.core.formats import REGISTRY
from pyramid_explorer.core.io import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    load_image,
    probe_image,
    supported_suffixes,
)
from pyramid_explorer.core.pyramid import BAND_ENCODINGS
from pyramid_explorer.core.stores import is_zarr_folder
from pyramid_explorer.core.upsampling import MODES
from pyramid_explorer.level_choice import levels_misfit, parse_levels

PROG = "pyramid-explorer"
OME_ZARR = "ome-zarr"  # written by core.chunked (optional dependencies: pip install 'pyramid-explorer[big]')
CLI_FORMATS = (*FORMATS, OME_ZARR)
_COMPRESSIONS = {"zlib": "zlib", "zstd": "zstd", "none": None}  # --tiff-compression
IMAGE_SUFFIXES = supported_suffixes()  # the files a folder input takes: the open dialog's list
CHANNEL_NAMES = {1: "grey", 3: "RGB", 4: "RGBA"}
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_FORMAT_LINES = "\n".join(f"  {f.name}: {f.description}" for f in REGISTRY)
EXPORT_EXAMPLES = f"""\
examples:
  {PROG} export photo.png --out levels
      Gaussian levels and Laplacian bands of photo.png as TIFF in levels/photo/
      (float32 bands bit-exact), with levels/photo/manifest.json describing every file.
  {PROG} export scans/ --out out --format ome-tiff
      every image in scans/ as one pyramidal OME-TIFF each (out/NAME/gaussian.ome.tif), of any size:
      images beyond memory are read and written strip by strip.
  {PROG} export slide.tif --out out --format ome-tiff --tiff-layout pages
      a generic tiled pyramidal TIFF (out/slide/gaussian.tif, not OME) whose levels OpenSlide lists.
  {PROG} export a.png b.tif --out out --kinds all --modes nearest,bilinear,pyrup --levels 4
      every kind, four levels, upsampled files for three modes only.
  {PROG} export photo.png --out one --levels 3:3 --kinds gaussian,laplacian,upsampled
      level 3 alone (its Gaussian level, Laplacian band and upsampled comparisons); --levels 2:5 is
      levels 2 to 5, --levels 0,3,7 those three, --levels 4 levels 0 to 3; the manifest lists the
      levels exported.
  {PROG} export photo.png --out png --format png --kinds laplacian --force
      Laplacian bands as 8-bit PNG visualisations (grey 128 = zero), overwriting earlier files.
  {PROG} export BIG.tif --out out --format ome-zarr --chunk 2048 --memory-limit 2GB
      an image larger than memory, read tile by tile: out/BIG.ome.zarr holds the Gaussian levels as an
      OME-Zarr image (napari, Fiji, QuPath read it) and the float32 bands in its laplacian/ group, with
      manifest.json; add --scheduler tcp://HOST:8786 to run on a dask.distributed cluster.

kinds:   {", ".join(KINDS)} (or "all"; default: {",".join(DEFAULT_KINDS)}, or gaussian for ome-tiff)
modes:   {", ".join(MODES)} (or "all", the default)
formats:
{_FORMAT_LINES}
  ome-zarr: any size: the Gaussian levels always, the Laplacian bands unless --kinds gaussian,
            bit-identical to the other formats; inputs may also be OME-Zarr folders; Ctrl+C leaves
            no partial folder

Existing files are never overwritten without --force; nothing is written when one is in the way.
Exit status: 0 everything written, 1 some inputs failed (the others are exported), 2 bad usage.
"""

INFO_EXAMPLES = f"""\
examples:
  {PROG} info photo.png
      size, dtype, channels, number of pyramid levels and every level's size.
  {PROG} info scan.tif --json
      the same as one JSON object, for scripts.

Exit status: 0 on success, 1 when the image cannot be read, 2 bad usage.
"""


def _name_list(allowed: Sequence[str], what: str):
    """argparse type for "a,b,c" or "all": a tuple of names from `allowed`."""

    def parse(text: str) -> tuple[str, ...]:
        if text.strip() == "all":
            return tuple(allowed)
        names = tuple(name.strip() for name in text.split(",") if name.strip())
        unknown = [name for name in names if name not in allowed]
        if unknown or not names:
            shown = f"unknown {what} {unknown[0]!r}" if unknown else f"no {what} given"
            raise argparse.ArgumentTypeError(f"{shown}; allowed: all, {', '.join(allowed)}")
        return names

    parse.__name__ = f"{what} list"
    return parse


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def build_export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} export", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export pyramid levels of images to files, without opening the window.",
        epilog=EXPORT_EXAMPLES)
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="image files or folders (every image inside a folder, sorted by name)")
    parser.add_argument("--out", required=True, metavar="DIR", type=Path,
                        help="output folder; each input gets a sub-folder named after the file")
    parser.add_argument("--levels", type=parse_levels, metavar="N|A:B|A,B,...",
                        help="a count N: levels 0 to N-1 (default: all, down to 1x1); a range A:B: levels A "
                             "to B; a list: those levels (a range or list is those files of --levels LAST+1; "
                             "ome-tiff and ome-zarr take levels from 0 only)")
    parser.add_argument("--kinds", type=_name_list(KINDS, "kind"), metavar="K1,K2,...",
                        help=f"what to export: {', '.join(KINDS)} or all "
                             f"(default: {','.join(DEFAULT_KINDS)})")
    parser.add_argument("--format", dest="fmt", choices=CLI_FORMATS, default="tiff",
                        help="file format (default: tiff)")
    parser.add_argument("--modes", type=_name_list(MODES, "mode"), default=MODES, metavar="all|M1,M2,...",
                        help="upsampling modes for the 'upsampled' kind (default: all)")
    parser.add_argument("--storage", choices=("float32", "int16"), default="float32",
                        help="Laplacian band storage; int16 needs 8-bit images (default: float32)")
    parser.add_argument("--band-encoding", choices=BAND_ENCODINGS, default="scaled-int16",
                        help="--format ome-zarr: how float32 bands of 8-bit images are stored: scaled-int16 "
                             "(the default; exact, half the bytes) as int16 through Zarr's fixedscaleoffset "
                             "filter, which numcodecs readers decode (zarr-python, dask, ome-zarr-py, "
                             "napari); float32 as they are, for readers without filters (Java ones)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    parser.add_argument("--quiet", action="store_true", help="no progress bar and no summary on success")
    parser.add_argument("--tiff-layout", choices=tiff.LAYOUTS, default=None,
                        help="--format ome-tiff: subifds (the default) writes an OME-TIFF whose levels are "
                             "SubIFDs (Bio-Formats, QuPath, Fiji, libvips); pages writes a generic tiled "
                             "TIFF, not OME, whose levels are pages, as OpenSlide reads pyramids "
                             "(gaussian.tif)")
    parser.add_argument("--tiff-compression", choices=tuple(_COMPRESSIONS), default=None,
                        help="--format ome-tiff: lossless compression of the tiles (default: zlib for images "
                             "that fit in memory, none beyond, for speed; zstd is fast but not every reader "
                             "has it)")
    big = parser.add_argument_group(f"images larger than memory (--format {OME_ZARR}, or ome-tiff)")
    big.add_argument("--chunk", type=_positive_int, metavar="PIXELS",
                     help="rows per strip read (and the tile side of the computation on a cluster) and of "
                          "the stored chunks (default: 1024)")
    big.add_argument("--memory-limit", metavar="SIZE",
                     help="memory this process may use, e.g. 2GB; bounds the strips in flight (on a "
                          "cluster's threads: their number) (default: no limit; with --scheduler the "
                          "workers' own limits apply)")
    big.add_argument("--scheduler", metavar="ADDRESS",
                     help="run on the dask.distributed scheduler at ADDRESS (e.g. tcp://10.0.0.5:8786); its "
                          "workers must see the input and --out at the same paths")
    return parser


def build_info_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{PROG} info", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print an image's size, dtype, channels and the sizes of its pyramid levels.",
        epilog=INFO_EXAMPLES)
    parser.add_argument("input", metavar="INPUT", help="image file")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the sub-command named by argv[0] with the options that follow; returns the exit status."""
    command, rest = argv[0], list(argv[1:])
    # Every failure is reported as one line of ours; OpenCV's log lines and tifffile's logged complaints
    # about damaged files (which Python would print on stderr) would only add noise.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    logging.getLogger("tifffile").setLevel(logging.CRITICAL + 1)
    parser = {"export": build_export_parser, "info": build_info_parser}[command]()
    try:
        args = parser.parse_args(rest)
        return run_export(args, parser) if command == "export" else run_info(args)
    except SystemExit as exit_:  # --help (0) or bad usage (2) from argparse, which printed the message
        return int(exit_.code or 0)
    except KeyboardInterrupt:
        print(f"{PROG} {command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


# ------------------------------------------------------------------------------------------------ info


def run_info(args: argparse.Namespace) -> int:
    try:
        info = image_info(Path(args.input))
    except (ImageLoadError, MemoryError) as exc:
        _error("info", _one_line(exc, args.input))
        return EXIT_FAILED
    if args.json:
        print(json.dumps(info))
        return EXIT_OK
    chain = " -> ".join(f"{w}x{h}" for w, h in info["level_sizes"])
    frames = f" (first of {info['frames']} frames)" if info["frames"] > 1 else ""
    print(f"{info['path']}\n"
          f"  format:   {info['format']}{frames}\n"
          f"  size:     {info['width']} x {info['height']} (width x height)\n"
          f"  dtype:    {info['dtype']}\n"
          f"  channels: {info['channels']} ({CHANNEL_NAMES.get(info['channels'], '?')})\n"
          f"  levels:   {info['levels']}\n"
          f"  sizes:    {chain}")
    if "stored_levels" in info:
        print(f"  stored:   {len(info['stored_levels'])} levels, "
              + " -> ".join(f"{w}x{h}" for w, h in info["stored_levels"]))
    return EXIT_OK


# ---------------------------------------------------------------------------------------------- export


@dataclass(frozen=True)
class _Input:
    """One image to export (or a failure found while listing inputs) and its output sub-folder name."""

    path: Path
    error: str | None = None
    folder: str = ""


def expand_inputs(paths: Sequence[str]) -> list[_Input]:
    """Files as given, folders as their images sorted by name; unique sub-folder names for all."""
    found: list[_Input] = []
    for text in paths:
        path = Path(text)
        if path.is_dir() and not is_zarr_folder(path):
            images = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".")
                            and p.suffix.lower() in IMAGE_SUFFIXES)
            if not images:
                found.append(_Input(path, f"{path}: no images in this folder ({', '.join(IMAGE_SUFFIXES)})"))
            found += [_Input(image) for image in images]
        elif path.exists():
            found.append(_Input(path))
        else:
            found.append(_Input(path, f"{path}: no such file or folder"))
    stems = [item.path.stem for item in found]
    used: set[str] = set()
    named = []
    for item, stem in zip(found, stems, strict=True):
        name = stem if stems.count(stem) == 1 else item.path.name.replace(".", "_")
        candidate, n = name, 2
        while candidate in used:
            candidate, n = f"{name}_{n}", n + 1
        used.add(candidate)
        named.append(_Input(item.path, item.error, candidate))
    return named


@contextmanager
def _cancel_on_sigint() -> Iterator[threading.Event]:
    """First Ctrl+C: finish the current file, then stop (the event is set). Second Ctrl+C: stop now."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return

    def on_sigint(signum: int, frame: Any) -> None:
        event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        print(f"\n{PROG} export: stopping after the current file (Ctrl+C again to stop now)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _one_line(exc: BaseException, subject: str | Path) -> str:
    """The first line of an error, naming `subject` once."""
    if isinstance(exc, ImageLoadError) and exc.path == str(subject):
        text = exc.reason
    elif isinstance(exc, MemoryError):
        text = "not enough memory"
    elif isinstance(exc, OSError) and exc.strerror:
        text = exc.strerror
    else:
        text = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return text if text.startswith(str(subject)) else f"{subject}: {text}"


def _error(command: str, line: str) -> None:
    print(f"{PROG} {command}: error: {line}", file=sys.stderr)


# An export of one input by the chunked engine: (input, progress, cancel) -> (result, output path)
_BigExport = Callable[["_Input", Callable[[ExportProgress], object], Callable[[], bool]], tuple[Any, Path]]
BIG_FORMATS = (OME_ZARR, "ome-tiff")  # the formats the chunked engine writes, for images of any size


def beyond_memory(path: Path) -> bool:
    """An input `load_image` would refuse for its size (or an OME-Zarr folder): the chunked engine's."""
    if is_zarr_folder(path):
        return True
    try:
        header = probe_image(path)
    except ImageLoadError:
        return False  # the in-memory path reports it
    return header.width * header.height > DEFAULT_MAX_PIXELS


def _check_big_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int | None:
    """Refuse options that do not apply to the format; the memory limit in bytes."""
    given = [name for name in ("chunk", "memory_limit", "scheduler") if getattr(args, name) is not None]
    if args.fmt not in BIG_FORMATS and given:
        parser.error(f"--{given[0].replace('_', '-')} applies to --format {OME_ZARR} and ome-tiff only")
    if args.fmt == "ome-tiff" and args.scheduler is not None:
        parser.error(f"--scheduler applies to --format {OME_ZARR} only")
    tiff_given = [name for name in ("tiff_layout", "tiff_compression") if getattr(args, name) is not None]
    if args.fmt != "ome-tiff" and tiff_given:
        parser.error(f"--{tiff_given[0].replace('_', '-')} applies to --format ome-tiff only")
    if args.memory_limit is None:
        return None
    try:
        from dask.utils import parse_bytes
    except ImportError:
        return None  # refused with the other missing dependencies when a big export runs
    try:
        return parse_bytes(args.memory_limit)
    except ValueError:
        parser.error(f"--memory-limit: cannot read {args.memory_limit!r} as a size (e.g. 1.5GB, 800MiB)")


def _big_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> _BigExport | None:
    """For --format ome-zarr (every input) and ome-tiff (inputs beyond memory, or when --chunk or
    --memory-limit is given), the export of one input by the chunked engine, once the options are
    checked; it raises ExportError when the optional dependencies are missing. None for other formats."""
    limit = _check_big_options(args, parser)
    if args.fmt not in BIG_FORMATS:
        return None
    kinds = set(args.kinds or DEFAULT_KINDS)
    if args.levels is not None and not args.levels.from_zero:
        parser.error(f"--levels {args.levels.text}: --format {args.fmt} writes a pyramid from level 0; "
                     "give a count or a range 0:K, or export those levels alone as "
                     + ", ".join(f.name for f in REGISTRY if f.arrays))
    levels = None if args.levels is None else args.levels.count
    if args.fmt == OME_ZARR and kinds - {"gaussian", "laplacian"}:
        parser.error(f"the {OME_ZARR} format holds the gaussian and laplacian kinds only, "
                     f"not {sorted(kinds - {'gaussian', 'laplacian'})[0]}")

    def export(item: _Input, progress: Callable[[ExportProgress], object],
               cancel: Callable[[], bool]) -> tuple[Any, Path]:
        try:
            from pyramid_explorer.core import bigtiff, chunked
        except ImportError as exc:
            raise ExportError(f"--format {args.fmt} of images beyond memory needs the optional dependencies "
                              f"({exc.name} is missing): pip install 'pyramid-explorer[big]'") from None
        chunk = args.chunk or chunked.DEFAULT_CHUNK
        if args.fmt == "ome-tiff":
            out_dir = args.out / item.folder
            compression = bigtiff.DEFAULT_COMPRESSION if args.tiff_compression is None else \
                _COMPRESSIONS[args.tiff_compression]
            result = bigtiff.export_pyramid_tiff(item.path, out_dir, levels=levels,
                                                 layout=args.tiff_layout or "subifds", chunk=chunk,
                                                 memory_limit=limit, compression=compression,
                                                 force=args.force, progress=progress, cancel=cancel)
            return result, result.path
        out = args.out / f"{item.folder.removesuffix('.ome')}.ome.zarr"
        stored = chunked.export_ome_zarr(item.path, out, levels=levels, storage=args.storage,
                                         laplacian="laplacian" in kinds, band_encoding=args.band_encoding,
                                         chunk=chunk, memory_limit=limit,
                                         scheduler=args.scheduler, force=args.force, progress=progress,
                                         cancel=cancel)
        return stored, out

    if args.fmt == OME_ZARR:
        try:
            import dask  # noqa: F401  (refuse at once, before listing the inputs)
            import zarr  # noqa: F401
        except ImportError as exc:
            raise ExportError(f"--format {OME_ZARR} needs the optional dependencies ({exc.name} is "
                              "missing): pip install 'pyramid-explorer[big]'") from None
    return export


def _big_summary(result: Any) -> str:
    if hasattr(result, "path") and getattr(result, "manifest", None) is not None and \
            result.path.suffix == ".tif":
        return f"{plural(result.levels, 'level')} and {result.manifest.name}"
    return f"OME-Zarr, {plural(result.levels, 'level')}"


def run_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    try:
        big_export = _big_export(args, parser)
    except ExportError as exc:
        _error("export", str(exc))
        return EXIT_FAILED
    options = None
    if args.fmt != OME_ZARR:
        kinds = args.kinds or (("gaussian",) if args.fmt == "ome-tiff" else DEFAULT_KINDS)
        tiff: dict[str, Any] = {"tiff_layout": args.tiff_layout or "subifds"}
        if args.tiff_compression is not None:
            tiff["tiff_compression"] = _COMPRESSIONS[args.tiff_compression]
        try:
            options = ExportOptions(levels=None if args.levels is None else args.levels.count,
                                    selected_levels=None if args.levels is None else args.levels.selected,
                                    kinds=kinds, fmt=args.fmt, modes=args.modes, storage=args.storage,
                                    force=args.force, **tiff)
        except ValueError as exc:
            parser.error(str(exc))
    chunked_always = args.fmt == OME_ZARR or args.chunk is not None or args.memory_limit is not None
    inputs = expand_inputs(args.inputs)
    misfit = levels_misfit(args.levels, [item.path for item in inputs if item.error is None])
    if misfit is not None:
        _error("export", misfit)
        return EXIT_USAGE
    bar = ProgressBar(sys.stderr, enabled=not args.quiet, terminal=sys.stderr.isatty())
    failures: list[str] = []
    interrupted = False
    with _cancel_on_sigint() as cancelled:
        for number, item in enumerate(inputs, 1):
            if cancelled.is_set():
                interrupted = True
                break
            if item.error is not None:
                failures.append(item.error)
                continue
            bar.start(f"{number}/{len(inputs)} {item.path.name}")
            out_dir = args.out / item.folder
            big = big_export is not None and (chunked_always or beyond_memory(item.path))
            try:
                if big and big_export is not None:
                    result, out_dir = big_export(item, bar.update, cancelled.is_set)
                else:
                    assert options is not None  # set for every format but OME-Zarr, which always goes big
                    image = load_image(item.path)
                    result = export_with_options(image, out_dir, options, source_path=item.path,
                                                 progress=bar.update, cancel=cancelled.is_set)
            except ExportConflictError as exc:
                bar.clear()
                failures.append(f"{item.path}: {exc}; use --force to overwrite")
                continue
            except (ImageLoadError, ExportError, ValueError, OSError, MemoryError) as exc:
                bar.clear()
                failures.append(_one_line(exc, item.path))
                continue
            bar.clear()
            if result.cancelled:
                interrupted = True
                break
            if not args.quiet:
                what = (_big_summary(result) if big else
                        f"{plural(len(result.files), 'file')} and {result.manifest.name}")
                print(f"{item.path} -> {out_dir} ({what})")
    bar.clear()
    if len(failures) == 1 and len(inputs) == 1:
        _error("export", failures[0])
    elif failures:
        print(f"{PROG} export: {len(failures)} of {len(inputs)} inputs failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    if interrupted:
        print(f"{PROG} export: interrupted; files written so far are complete and listed in their "
              "manifest", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failures else EXIT_OK
