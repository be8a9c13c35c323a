"""Every registered export format is usable end to end, so a format cannot be half-registered."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import random_image

from pyramid_explorer.core.export import (
    ARRAY_FORMATS,
    EXTENSIONS,
    FORMATS,
    MANIFEST_NAME,
    ExportOptions,
    NamedArray,
    export_arrays,
    export_pyramid,
)
from pyramid_explorer.core.formats import REGISTRY, format_named


def test_the_export_tuples_are_the_registry():
    assert FORMATS == tuple(f.name for f in REGISTRY) == ("tiff", "npy", "png", "ome-tiff")
    assert ARRAY_FORMATS == ("tiff", "npy", "png")
    assert all(EXTENSIONS[f.name] == f.extension and f.extension.startswith(".") for f in REGISTRY)
    assert len(set(FORMATS)) == len(FORMATS) and all(f.description for f in REGISTRY)
    with pytest.raises(ValueError, match="unknown format 'jpeg'; allowed: tiff, npy, png, ome-tiff"):
        format_named("jpeg")


@pytest.mark.parametrize("fmt", [f for f in REGISTRY if f.arrays], ids=lambda f: f.name)
def test_each_array_format_writes_a_file_the_manifest_describes(tmp_path, fmt):
    image = random_image((9, 7), np.uint8, 3, seed=3)
    result = export_arrays(image, tmp_path, [NamedArray("a", image, "test")], fmt=fmt.name)
    (record,) = result.files
    assert record.name == f"a{fmt.extension}" and (tmp_path / record.name).stat().st_size > 0
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["files"][0]["role"] == "data" and manifest["files"][0]["shape"] == [9, 7, 3]


@pytest.mark.parametrize("fmt", REGISTRY, ids=lambda f: f.name)
def test_each_format_exports_a_pyramid_with_the_kinds_it_holds(tmp_path, fmt):
    image = random_image((12, 10), np.uint8, None, seed=4)
    kinds = fmt.kinds or ("gaussian", "laplacian")
    result = export_pyramid(image, tmp_path, fmt=fmt.name, kinds=kinds, levels=2)
    names = {r.name for r in result.files}
    if fmt.pyramid_name is None:
        assert names == {f"{k}_{i:02d}{fmt.extension}" for k in kinds for i in range(2)}
    else:
        assert names == {fmt.pyramid_name(ExportOptions().tiff_layout)}
