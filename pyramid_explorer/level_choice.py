"""`export --levels`: a count, a range A:B or a list A,B,C of levels, and the check against each input."""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyramid_explorer.core.io import ImageLoadError, probe_image
from pyramid_explorer.core.pyramid import max_levels


@dataclass(frozen=True)
class LevelChoice:
    """What --levels asked for: the pyramid's number of levels and the levels written (None: all of them).

    A count N is levels 0 to N-1 of an N-level pyramid, as before; a range A:B (B included) or a list
    A,B,C is those levels of a pyramid that ends at the last one asked for, that is the files --levels
    LAST+1 writes, restricted to those levels (so 0:K is the count K+1)."""

    text: str
    count: int
    selected: tuple[int, ...] | None = None

    @property
    def from_zero(self) -> bool:
        """Levels 0 to K with no gap: what a pyramid file (ome-tiff, ome-zarr) can hold."""
        return self.selected is None or self.selected == tuple(range(len(self.selected)))


_LEVELS_FORMS = "a count N (levels 0 to N-1), a range A:B (levels A to B) or a list A,B,C"


def parse_levels(text: str) -> LevelChoice:
    """argparse type for --levels: a count, a range A:B or a list A,B,C of level numbers."""
    try:
        if ":" in text:
            first, last = (int(part) for part in text.split(":"))
            selected = tuple(range(first, last + 1))
        elif "," in text:
            selected = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
        else:
            count = int(text)
            if count < 1:
                raise ValueError(text)
            return LevelChoice(text, count)
        if not selected or selected[0] < 0:
            raise ValueError(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {_LEVELS_FORMS}, got {text!r}") from None
    return LevelChoice(text, selected[-1] + 1, selected)


def levels_misfit(choice: LevelChoice | None, paths: Iterable[Path]) -> str | None:
    """The first input that lacks a level --levels names, as one line saying what it has; None if all fit.

    Inputs whose header cannot be read are left to the export, which reports them."""
    if choice is None or choice.selected is None:
        return None
    for path in paths:
        try:
            shape = probe_image(path).shape
        except ImageLoadError:
            continue
        most = max_levels(shape)
        if choice.selected[-1] >= most:
            return (f"--levels {choice.text}: {path} ({shape[1]}x{shape[0]}) has levels 0 to "
                    f"{most - 1}; give a count up to {most}, or a range or list within 0 to {most - 1}")
    return None
