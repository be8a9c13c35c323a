"""What `pyramid-explorer info` reports about an image: its header, or an OME-Zarr image's metadata."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pyramid_explorer.core.io import ImageLoadError, probe_image
from pyramid_explorer.core.pyramid import level_sizes
from pyramid_explorer.core.stores import is_zarr_folder


def image_info(path: Path) -> dict[str, Any]:
    """What `info` reports about one image, from its header alone (raises ImageLoadError); for an
    OME-Zarr image, from its metadata, with the sizes of the levels it stores."""
    if is_zarr_folder(path):
        return _stored_info(path)
    header = probe_image(path)
    sizes = level_sizes(header.shape)
    return {"path": str(path), "format": header.format, "width": header.width, "height": header.height,
            "dtype": header.dtype, "channels": header.channels, "frames": header.frames,
            "levels": len(sizes), "level_sizes": [[w, h] for h, w in sizes]}


def _stored_info(path: Path) -> dict[str, Any]:
    try:
        from pyramid_explorer.core.readers import stored_levels
    except ImportError as exc:
        raise ImageLoadError(path, f"reading OME-Zarr needs the optional dependencies ({exc.name} is "
                                   "missing): pip install 'pyramid-explorer[big]'") from None
    stored = stored_levels(path)
    shape = stored[0].shape
    sizes = level_sizes(shape)
    return {"path": str(path), "format": "OME-Zarr", "width": shape[1], "height": shape[0],
            "dtype": str(stored[0].dtype), "channels": shape[2] if len(shape) == 3 else 1, "frames": 1,
            "levels": len(sizes), "level_sizes": [[w, h] for h, w in sizes],
            "stored_levels": [[level.shape[1], level.shape[0]] for level in stored]}
