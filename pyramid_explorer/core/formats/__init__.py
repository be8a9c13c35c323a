"""The export formats, one module each; `REGISTRY` lists them in the order every export offers them.

A new format is one module (`NAME.py` defining `FORMAT = Format(...)`, see `base.py`) plus one line here.
"""

from __future__ import annotations

from pyramid_explorer.core.formats import npy, ome_tiff, png, tiff
from pyramid_explorer.core.formats.base import Format, WriteContext, Written

__all__ = ["REGISTRY", "Format", "WriteContext", "Written", "format_named"]

REGISTRY: tuple[Format, ...] = (
    tiff.FORMAT,
    npy.FORMAT,
    png.FORMAT,
    ome_tiff.FORMAT,
)


def format_named(name: str) -> Format:
    """The registered format called `name`; ValueError listing the names otherwise."""
    for fmt in REGISTRY:
        if fmt.name == name:
            return fmt
    raise ValueError(f"unknown format {name!r}; allowed: {', '.join(f.name for f in REGISTRY)}")
