"""`pyramid-explorer export --format ome-zarr`, run as a real process: options, Ctrl+C, missing extras."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
import zarr
from helpers import ENV, ROOT, interrupt_when, random_image

from pyramid_explorer.core import omezarr
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pyramid_explorer", *map(str, args)], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def tiff(tmp_path) -> tuple[Path, np.ndarray]:
    image = random_image((70, 45), np.uint8, 3, seed=31)
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, image, tile=(16, 16), photometric="rgb")
    return path, image


def test_export_ome_zarr_writes_both_pyramids(tmp_path, tiff):
    path, image = tiff
    result = run("export", path, "--out", tmp_path / "out", "--format", "ome-zarr", "--chunk", "32",
                 "--memory-limit", "1GB", "--storage", "int16", "--levels", "4")
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out" / "scan.ome.zarr"
    assert f"-> {out} (OME-Zarr, 4 levels)" in result.stdout and "Traceback" not in result.stderr
    gauss = [level.compute() for level in omezarr.open_levels(out)]
    bands = [band.compute() for band in omezarr.open_levels(out / "laplacian")]
    assert [g.tobytes() for g in gauss] == [g.tobytes() for g in gaussian_pyramid(image, 4)]
    assert [b.tobytes() for b in bands] == [b.tobytes() for b in laplacian_pyramid(image, 4, storage="int16")]
    again = run("export", path, "--out", tmp_path / "out", "--format", "ome-zarr", "--kinds", "gaussian")
    assert again.returncode == 1 and "already exists" in again.stderr and "--force" in again.stderr
    forced = run("export", out, "--out", tmp_path / "out", "--format", "ome-zarr", "--kinds", "gaussian",
                 "--force")  # an OME-Zarr input, exported over itself
    assert forced.returncode == 0, forced.stderr
    assert not (out / "laplacian").exists() and len(omezarr.open_levels(out)) == 8


@pytest.mark.parametrize("encoding", ["float32", "scaled-int16"])
def test_band_encoding_option(tmp_path, tiff, encoding):
    path, image = tiff
    result = run("export", path, "--out", tmp_path / "out", "--format", "ome-zarr", "--chunk", "32",
                 "--band-encoding", encoding)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "out" / "scan.ome.zarr"
    band = zarr.open_array(str(out / "laplacian" / "0"), mode="r")
    assert band.dtype == np.float32 and len(band.metadata.filters or ()) == (encoding == "scaled-int16")
    bands = [band.compute() for band in omezarr.open_levels(out / "laplacian")]
    assert [b.tobytes() for b in bands] == [b.tobytes() for b in laplacian_pyramid(image)]
    info = run("info", out)
    assert info.returncode == 0 and "Traceback" not in info.stderr, info.stderr


def test_help_names_the_band_encodings():
    text = " ".join(run("export", "--help").stdout.split())
    assert "--band-encoding {scaled-int16,float32}" in text and "readers without filters" in text


@pytest.mark.parametrize(("options", "message"), [
    (["--chunk", "64"], "--chunk applies to --format ome-zarr and ome-tiff only"),
    (["--format", "ome-zarr", "--kinds", "gaussian,mosaic"], "gaussian and laplacian kinds only, not mosaic"),
    (["--format", "ome-zarr", "--memory-limit", "lots"], "cannot read 'lots' as a size"),
    (["--format", "ome-zarr", "--chunk", "0"], "expected a positive integer"),
])
def test_bad_options_are_usage_errors(tmp_path, tiff, options, message):
    result = run("export", tiff[0], "--out", tmp_path / "out", *options)
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "out").exists()


def test_ctrl_c_leaves_no_partial_folder(tmp_path):
    """The first Ctrl+C cancels the export between two tiles; the hidden work folder is removed."""
    path = tmp_path / "big.tif"
    image = random_image((2500, 2500), np.uint8, 3, seed=32)
    tifffile.imwrite(path, image, tile=(256, 256), photometric="rgb")
    out = tmp_path / "out"
    out.mkdir()
    command = ["export", str(path), "--out", str(out), "--format", "ome-zarr", "--chunk", "128"]
    interrupt_when(command, lambda: any(n.startswith(".big.ome.zarr.partial-") for n in os.listdir(out)))
    assert os.listdir(out) == []


def test_without_the_big_extra_the_rest_still_works(tmp_path, tiff):
    """dask and zarr made unimportable: other formats export, ome-zarr says what to install."""
    script = (
        "import sys\n"
        "sys.modules.update(dask=None, zarr=None)\n"
        "from pyramid_explorer.cli import main\n"
        f"source = {str(tiff[0])!r}\n"
        f"assert main(['export', source, '--out', {str(tmp_path / 'a')!r}]) == 0\n"
        f"sys.exit(main(['export', source, '--out', {str(tmp_path / 'b')!r}, '--format', 'ome-zarr']))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 1, result.stderr
    assert "needs the optional dependencies" in result.stderr and "pyramid-explorer[big]" in result.stderr
    assert (tmp_path / "a" / "scan" / "manifest.json").is_file() and not (tmp_path / "b").exists()
