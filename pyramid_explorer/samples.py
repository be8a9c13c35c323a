"""The samples offered in File > Samples: a bundled photograph and generated probes (Qt-free).

A sample is named, not a path, so the window can offer generated images next to files. Probes
(`PROBES`) are generated at any size the user asks for; `PROBE_SIZES` are the ones offered in the
menu, odd sizes among them because that is where pyramids go wrong.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np

from pyramid_explorer.core.io import load_image
from pyramid_explorer.core.probes import (
    checkerboard,
    impulse_grid,
    ramp,
    resolution_chart,
    slanted_edge,
    zone_plate,
)


def load_bundled(name: str) -> np.ndarray:
    """The bundled image file `name` of `pyramid_explorer.resources` (resources/README.md credits them)."""
    with resources.as_file(resources.files("pyramid_explorer.resources") / name) as path:
        return load_image(path)


def _bundled(name: str) -> Callable[[], np.ndarray]:
    return lambda: load_bundled(name)


SAMPLES: dict[str, Callable[[], np.ndarray]] = {
    "Photograph: Chelsea the cat (451x300)": _bundled("chelsea.png"),
    "Zone plate (513x385)": zone_plate,
    "Resolution chart (641x481)": resolution_chart,
}
"""Display name -> function returning the image. The first entry opens when no image is given."""

DEFAULT_SAMPLE = next(iter(SAMPLES))


def load_sample(name: str) -> np.ndarray:
    """Return the sample called `name`; ValueError listing the names when it is unknown."""
    try:
        make = SAMPLES[name]
    except KeyError:
        raise ValueError(f"unknown sample {name!r}; samples: {', '.join(SAMPLES)}") from None
    return make()


PROBES: dict[str, Callable[[int, int], np.ndarray]] = {
    "Zone plate": zone_plate,
    "Checkerboard": checkerboard,
    "Impulse grid": impulse_grid,
    "Slanted edge": slanted_edge,
    "Ramp": ramp,
}
"""Probe name -> function of (width, height) returning the image."""

PROBE_SIZES = ((64, 64), (65, 65), (127, 97), (256, 256), (257, 193), (512, 512), (513, 385), (1023, 767))
"""(width, height) offered in the menu; any other size can be asked for."""

MAX_PROBE_SIDE = 8192


def make_probe(name: str, width: int, height: int) -> np.ndarray:
    """The probe `name` at width x height; ValueError for an unknown name or an unusable size."""
    try:
        make = PROBES[name]
    except KeyError:
        raise ValueError(f"unknown probe {name!r}; probes: {', '.join(PROBES)}") from None
    if not (1 <= width <= MAX_PROBE_SIDE and 1 <= height <= MAX_PROBE_SIDE):
        raise ValueError(f"probe size must be 1..{MAX_PROBE_SIDE} per side, got {width}x{height}")
    return make(width, height)


def probe_title(name: str, width: int, height: int) -> str:
    """How a generated probe is named in the window: 'Zone plate (257x193)'."""
    return f"{name} ({width}x{height})"


COMMAND_LINE_PROBE_SIZE = (257, 193)
"""(width, height) of a probe opened with `--sample NAME`: odd, where pyramids go wrong."""

_NAMED_SAMPLES = {"chelsea": DEFAULT_SAMPLE, "zone-plate": "Zone plate (513x385)",
                  "chart": "Resolution chart (641x481)"}

COMMAND_LINE_SAMPLES: dict[str, tuple[str, str]] = {
    **{short: ("sample", name) for short, name in _NAMED_SAMPLES.items()},
    **{short: ("probe", name) for name in PROBES
       if (short := name.lower().replace(" ", "-")) not in _NAMED_SAMPLES},
}
"""`--sample NAME` -> ("sample", a SAMPLES name) or ("probe", a PROBES name at COMMAND_LINE_PROBE_SIZE).

The zone plate is both; its sample is the probe at 513x385, so the name opens the sample."""
