"""What an export format is: a name, a file extension, what it holds, and the function that writes one file.

A format module (`core/formats/NAME.py`) defines one `FORMAT = Format(...)`; `core/formats/__init__.py`
lists them in `REGISTRY`, which every export (the pyramid export, the tools' array export, the command
line's --format, File > Export and the tool export dialog) iterates over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class WriteContext:
    """What a writer may need beyond the content: whether the data is signed (a difference, a residual),
    the source image's dtype and finite range (floats only), and the pyramid file's options (ome-tiff)."""

    signed: bool
    source_dtype: np.dtype
    source_range: tuple[float, float] | None
    pyramid_options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Written:
    """What landed on disk: the array as stored (level 0 for a pyramid file), "data" or "visualisation",
    and extra manifest fields (a visualisation's mapping, a pyramid's level shapes)."""

    array: np.ndarray
    role: str = "data"
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Format:
    """One export format.

    `write(path, content, context)` writes one file atomically and returns what it wrote; `content` is an
    array, or for a `pyramid_name` format the list of Gaussian levels (one file holds them all, named by
    `pyramid_name(tiff_layout)`). `kinds` are the export kinds it holds (None: every kind); `exact` the
    dtypes it stores as they are (None: every dtype; others become a visualisation the manifest states).
    """

    name: str
    extension: str
    write: Callable[[Path, Any, WriteContext], Written]
    description: str
    kinds: tuple[str, ...] | None = None
    exact: tuple[str, ...] | None = None
    pyramid_name: Callable[[str], str] | None = None

    @property
    def arrays(self) -> bool:
        """Whether the tools' array export offers it (pyramid files hold a pyramid, not loose arrays)."""
        return self.pyramid_name is None

