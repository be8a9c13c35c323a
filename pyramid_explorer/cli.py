"""Command-line entry point: `pyramid-explorer [IMAGE]` opens the window; `export` and `info` run headless.

The GUI is imported lazily so the headless sub-commands work without a display or Qt.
"""

from __future__ import annotations

import argparse
import sys

from pyramid_explorer.samples import COMMAND_LINE_SAMPLES
from pyramid_explorer.tools.registry import NAMES

SUBCOMMANDS = ("export", "info")


def build_gui_parser() -> argparse.ArgumentParser:
    """Parser for the window: `pyramid-explorer [IMAGE | --sample NAME] [--screenshot OUT.png ...]`."""
    parser = argparse.ArgumentParser(
        prog="pyramid-explorer",
        description="Explore an image's Gaussian and Laplacian pyramids and compare upsampling methods. "
        f"Sub-commands for headless work: {', '.join(SUBCOMMANDS)} (see `pyramid-explorer export --help`).",
    )
    parser.add_argument("image", nargs="?", help="image to open (a bundled sample when omitted)")
    parser.add_argument("--sample", metavar="NAME",
                        help="open a bundled or generated sample instead of IMAGE: "
                        f"{', '.join(COMMAND_LINE_SAMPLES)}")
    parser.add_argument("--screenshot", metavar="OUT.png",
                        help="render the window once every computation is done, save a PNG of it, exit")
    parser.add_argument("--view", default=None, help=f"view to show: {', '.join(NAMES)}")
    parser.add_argument("--level", type=int, default=None, help="pyramid level to select")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a headless sub-command or start the window; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] in SUBCOMMANDS:
        from pyramid_explorer import commands

        return commands.main(argv)
    args = build_gui_parser().parse_args(argv)
    problem = sample_problem(args)
    if problem is not None:
        print(f"pyramid-explorer: {problem}", file=sys.stderr)
        return 2
    try:
        from pyramid_explorer.app.launch import run
    except ImportError as error:
        if "shared object" not in str(error):
            raise
        print(f"pyramid-explorer: Qt cannot load ({error}); the README's Quick start lists the packages",
              file=sys.stderr)
        return 2
    return run(args)


def sample_problem(args: argparse.Namespace) -> str | None:
    """Why `--sample` cannot be used as given (unknown name, or an IMAGE as well), or None."""
    if args.sample is None:
        return None
    if args.image is not None:
        return f"give an IMAGE or --sample, not both (got {args.image!r} and --sample {args.sample})"
    if args.sample not in COMMAND_LINE_SAMPLES:
        return f"unknown sample {args.sample!r}; samples: {', '.join(COMMAND_LINE_SAMPLES)}"
    return None
