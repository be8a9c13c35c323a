"""The samples offered in File > Samples: a bundled photograph and generated probes (Qt-free).

A sample is named, not a path, so the window can offer generated images next to files.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources

import numpy as np

from pyramid_explorer.core.io import load_image
from pyramid_explorer.core.probes import resolution_chart, zone_plate


def _bundled(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        with resources.as_file(resources.files("pyramid_explorer.resources") / name) as path:
            return load_image(path)

    return load


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
