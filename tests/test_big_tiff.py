"""Images beyond memory: the strip engine, pyramidal TIFF of any size (OME-TIFF and the pages layout read
by OpenSlide), channel names and pixel sizes, memory within the limit, Ctrl+C, and the command line's
progress."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import dask.array as da
import numpy as np
import pytest
import tifffile
import zarr
from helpers import CHANNELS, DTYPES, ENV, ROOT, interrupt_when, random_image

from pyramid_explorer import cli_progress, commands
from pyramid_explorer.core import bigtiff, chunked, omezarr, readers, strips, tiff
from pyramid_explorer.core.export import ExportConflictError, ExportProgress, export_pyramid
from pyramid_explorer.core.io import ImageLoadError
from pyramid_explorer.core.pyramid import BORDERS, gaussian_pyramid, laplacian_pyramid

STRIP_BORDERS = [border for border in BORDERS if border != cv2.BORDER_WRAP]


def lazy(image: np.ndarray) -> da.Array:
    return da.from_array(image, chunks=image.shape)


def tiff_levels(path: Path, layout: str) -> list[np.ndarray]:
    with tifffile.TiffFile(path) as tif:
        if layout == "subifds":
            assert len(tif.pages) == 1  # the sub-resolutions are SubIFDs, not pages
            return [level.asarray() for level in tif.series[0].levels]
        return [page.asarray() for page in tif.pages]


def same(got: list[np.ndarray], want: list[np.ndarray]) -> bool:
    return len(got) == len(want) and all(
        g.dtype == w.dtype and g.shape == w.shape and g.tobytes() == w.tobytes()
        for g, w in zip(got, want, strict=True))


# ------------------------------------------------------------------------------------------ the strip engine


class Collect:
    """A RowSink keeping what it receives, checking rows come in order, once; band rows are computed in
    column blocks of `width` columns (all at once: None)."""

    def __init__(self, width: int | None = None) -> None:
        self.width = width
        self.parts: list[np.ndarray] = []
        self.stop = 0
        self.closed = False

    def put(self, start: int, rows: np.ndarray | strips.BandRows) -> None:
        assert start == self.stop and not self.closed
        if isinstance(rows, strips.BandRows):
            step = self.width or rows.shape[1]
            rows = np.concatenate([np.array(rows.columns(x, min(x + step, rows.shape[1])))  # a view
                                   for x in range(0, rows.shape[1], step)], axis=1)
        self.parts.append(np.array(rows))
        self.stop += len(rows)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("border", STRIP_BORDERS)
@pytest.mark.parametrize(("shape", "rows"), [
    ((1, 1), 1), ((9, 1), 2), ((1, 9), 3), ((37, 23), 4), ((153, 301), 16), ((64, 700), 64), ((200, 130), 7),
])
def test_cascade_gives_the_engine_levels_and_bands(shape, rows, border):
    """Fed strips of `rows` rows (1 row too), every level and band equals the in-memory engine's."""
    for dtype, channels, storage in ((np.uint8, 3, "int16"), (np.float32, None, "float32"),
                                     (np.uint16, 4, "float32")):
        image = random_image(shape, dtype, channels, seed=shape[0] + rows)
        gauss, bands = gaussian_pyramid(image, border=border), laplacian_pyramid(image, border=border,
                                                                                 storage=storage)
        sinks = [Collect() for _ in gauss], [Collect() for _ in gauss]
        cascade = strips.Cascade([g.shape for g in gauss], border, storage, *sinks)
        for y in range(0, shape[0], rows):
            cascade.feed(image[y : y + rows])
        for got, want in zip([*sinks[0], *sinks[1]], [*gauss, *bands], strict=True):
            assert got.closed and np.concatenate(got.parts).tobytes() == want.tobytes()


@pytest.mark.parametrize("border", STRIP_BORDERS)
@pytest.mark.parametrize("width", [1, 7, 33, 64])
def test_cascade_bands_in_blocks_computed_column_block_by_column_block_are_exact(border, width):
    """Bands handed over in blocks of 8 rows and computed `width` columns at a time (the writer's chunks;
    odd widths, blocks that end inside the SIMD grid) equal the in-memory bands bit for bit."""
    for shape, dtype, channels, storage in (((101, 67), np.uint8, 3, "float32"),
                                            ((64, 90), np.uint16, None, "float32"),
                                            ((70, 131), np.float32, 3, "float32"),
                                            ((77, 45), np.uint8, 4, "int16")):
        image = random_image(shape, dtype, channels, seed=shape[1])
        gauss = gaussian_pyramid(image, border=border)
        bands = laplacian_pyramid(image, border=border, storage=storage)
        sinks = [Collect() for _ in gauss], [Collect(width) for _ in gauss]
        cascade = strips.Cascade([g.shape for g in gauss], border, storage, *sinks, band_block=8)
        for y in range(0, shape[0], 32):
            cascade.feed(image[y : y + 32])
        assert {len(part) for part in sinks[1][0].parts[:-1]} == {8}
        for got, want in zip(sinks[1], bands, strict=True):
            assert got.closed and np.concatenate(got.parts).tobytes() == want.tobytes()


def test_wrap_is_left_to_the_tile_engine():
    with pytest.raises(ValueError, match="tile engine"):
        strips.Cascade([(4, 4), (2, 2)], cv2.BORDER_WRAP, "float32", [Collect()] * 2, None)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_strips_read_the_file_as_it_is(tmp_path, dtype, channels, compression):
    image = random_image((203, 157), dtype, channels, seed=2)
    path = tmp_path / "in.tif"
    colour = tiff.colour_options(image.shape)
    tifffile.imwrite(path, image, tile=(32, 48), compression=compression, **colour)
    tifffile.imwrite(tmp_path / "strips.tif", image, rowsperstrip=9, **colour)
    for source, rows in ((path, 100), (tmp_path / "strips.tif", 50)):
        parts = list(readers.tiff_strips(source, rows))
        assert np.concatenate(parts).tobytes() == image.tobytes() and len(parts) > 1


def rewrite_tiles(path, edit) -> None:
    """Let `edit(tif, offsets, counts)` change a tiled TIFF's bytes and its tile offsets and byte counts
    (lists, edited in place), then write both tags back."""
    with tifffile.TiffFile(path, mode="r+b") as tif:
        page = tif.pages.first
        offsets, counts = list(page.dataoffsets), list(page.databytecounts)
        edit(tif, offsets, counts)
        page.tags[324].overwrite(offsets)
        page.tags[325].overwrite(counts)


def test_tiff_strips_read_an_empty_tile_as_zeros(tmp_path):
    """A sparse TIFF leaves a tile out (offset and byte count 0); tifffile reads it as zeros."""
    image = random_image((64, 48), np.uint8, None, seed=4)
    path = tmp_path / "sparse.tif"
    tifffile.imwrite(path, image, tile=(16, 16), compression="zlib")
    def leave_out(_tif, offsets: list[int], counts: list[int]) -> None:
        offsets[4] = counts[4] = 0  # the second tile row's second tile: rows 16..31, columns 16..31

    rewrite_tiles(path, leave_out)
    expected = image.copy()
    expected[16:32, 16:32] = 0
    assert np.array_equal(tifffile.imread(path), expected)
    assert np.array_equal(np.concatenate(list(readers.tiff_strips(path, 16))), expected)


def test_tiff_strips_read_tiles_stored_out_of_order(tmp_path):
    """Tiles that do not lie end to end in the file (here the first two swapped) are read one by one."""
    image = random_image((64, 64), np.uint16, 3, seed=5)
    path = tmp_path / "swapped.tif"
    tifffile.imwrite(path, image, tile=(32, 32), photometric="rgb")
    def swap_first_two(tif, offsets: list[int], counts: list[int]) -> None:
        data = [tif.filehandle.read_array(np.uint8, counts[i], offsets[i]) for i in (0, 1)]
        tif.filehandle.seek(offsets[0])
        tif.filehandle.write(data[1].tobytes() + data[0].tobytes())
        offsets[0], offsets[1] = offsets[0] + counts[1], offsets[0]

    rewrite_tiles(path, swap_first_two)
    assert np.array_equal(tifffile.imread(path), image)
    assert np.array_equal(np.concatenate(list(readers.tiff_strips(path, 32))), image)


def test_tiff_strips_of_a_cut_file_are_a_one_line_error(tmp_path):
    image = random_image((64, 64), np.uint8, 3, seed=6)
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, image, tile=(32, 32), photometric="rgb")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages.first
        end = max(o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True))
    with open(path, "r+b") as fh:
        fh.truncate(end - 100)
    with pytest.raises(ImageLoadError, match=r"cut\.tif': the file ends inside its image data"):
        list(readers.tiff_strips(path, 64))


# ------------------------------------------------------------------------------- pyramidal TIFF, any size


@pytest.mark.parametrize("layout", tiff.LAYOUTS)
@pytest.mark.parametrize(("shape", "dtype", "channels", "border"), [
    ((700, 1100), np.uint8, 3, cv2.BORDER_REFLECT_101), ((513, 301), np.uint16, None, cv2.BORDER_REPLICATE),
    ((299, 517), np.float32, 4, cv2.BORDER_REFLECT), ((1, 1), np.uint8, None, cv2.BORDER_REFLECT_101),
    ((333, 270), np.float32, 3, cv2.BORDER_WRAP),
])
def test_big_tiff_levels_equal_the_engine(tmp_path, layout, shape, dtype, channels, border):
    """Many 256-pixel tiles, strips of 64 rows: every level bit-identical to gaussian_pyramid."""
    image = random_image(shape, dtype, channels, seed=11)
    result = bigtiff.export_pyramid_tiff(lazy(image), tmp_path / "out", layout=layout, chunk=64,
                                         border=border)
    assert result.path == tmp_path / "out" / tiff.TIFF_NAMES[layout] and not result.cancelled
    want = gaussian_pyramid(image, border=border)
    assert same(tiff_levels(result.path, layout), want)
    manifest = json.loads(result.manifest.read_text())
    (record,) = manifest["files"]
    assert record["levels"] == [list(level.shape) for level in want]
    assert record["level_ranges"] == [[level.min().item(), level.max().item()] for level in want]
    assert sorted(os.listdir(tmp_path / "out")) == sorted([result.path.name, "manifest.json"])


def test_big_tiff_from_a_file_is_the_in_memory_export(tmp_path):
    """The same pixels as core.export's ome-tiff of the image loaded whole, from a tiled TIFF input."""
    image = random_image((600, 389), np.uint8, 3, seed=12)
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, image, tile=(64, 64), photometric="rgb")
    big = bigtiff.export_pyramid_tiff(source, tmp_path / "big", chunk=128, levels=5)
    small = export_pyramid(image, tmp_path / "small", fmt="ome-tiff", kinds=["gaussian"], levels=5)
    assert same(tiff_levels(big.path, "subifds"), tiff_levels(small.paths[0], "subifds"))


def test_big_tiff_is_never_destructive(tmp_path):
    image = random_image((50, 40), np.uint8)
    out = tmp_path / "out"
    bigtiff.export_pyramid_tiff(lazy(image), out)
    before = (out / "gaussian.ome.tif").read_bytes()
    with pytest.raises(ExportConflictError, match="already exist"):
        bigtiff.export_pyramid_tiff(lazy(image + 1), out)
    assert (out / "gaussian.ome.tif").read_bytes() == before
    seen: list[ExportProgress] = []
    cancelled = bigtiff.export_pyramid_tiff(lazy(random_image((700, 300), np.uint8)), out, chunk=64,
                                            force=True, progress=seen.append, cancel=lambda: len(seen) >= 3)
    assert cancelled.cancelled and seen[-1].unit == "bytes" and seen[-1].done < seen[-1].total
    assert sorted(os.listdir(out)) == ["gaussian.ome.tif", "manifest.json"]  # the earlier export, kept
    assert (out / "gaussian.ome.tif").read_bytes() == before


def test_a_failing_write_leaves_nothing(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tiff, "write_pyramid", full)
    with pytest.raises(chunked.ExportError, match="No space left on device; nothing was written"):
        bigtiff.export_pyramid_tiff(lazy(random_image((300, 300), np.uint8)), tmp_path / "out", chunk=64)
    assert os.listdir(tmp_path / "out") == []


def test_pages_layout_is_read_level_by_level_by_openslide(tmp_path):
    openslide = pytest.importorskip("openslide")
    for channels in (3, None):
        image = random_image((900, 611), np.uint8, channels, seed=13)
        out = tmp_path / f"out{channels}"
        result = bigtiff.export_pyramid_tiff(lazy(image), out, layout="pages", chunk=128)
        want = gaussian_pyramid(image)
        with openslide.OpenSlide(result.path) as slide:
            assert slide.level_dimensions == tuple((w.shape[1], w.shape[0]) for w in want)
            assert slide.level_downsamples[1] == pytest.approx(2, rel=0.01)
            for level, expected in enumerate(want):
                size = (expected.shape[1], expected.shape[0])
                rgba = np.asarray(slide.read_region((0, 0), level, size))
                rgb = expected if channels else np.repeat(expected[..., None], 3, axis=2)
                assert np.array_equal(rgba[..., :3], rgb) and (rgba[..., 3] == 255).all()
        with openslide.OpenSlide(export_pyramid(image, tmp_path / f"ome{channels}", fmt="ome-tiff",
                                                kinds=["gaussian"]).paths[0]) as slide:
            assert slide.level_count == 1  # why the pages layout exists: OpenSlide ignores SubIFDs


# --------------------------------------------------------------------------- channel names and pixel size


def test_channel_names_alpha_and_pixel_size_reach_ome_xml_and_omero(tmp_path):
    image = random_image((64, 48), np.uint16, 4, seed=14)
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, image, photometric="rgb", extrasamples=("unassalpha",), tile=(16, 16),
                     resolution=(1e4 / 0.25, 1e4 / 0.5), resolutionunit="CENTIMETER")  # 0.25 um x, 0.5 um y
    result = bigtiff.export_pyramid_tiff(source, tmp_path / "tiff", chunk=32)
    with tifffile.TiffFile(result.path) as tif:
        pixels = tifffile.xml2dict(tif.ome_metadata)["OME"]["Image"]["Pixels"]
        assert pixels["Channel"]["Name"] == "Red, Green, Blue, Alpha"
        size = (pixels["PhysicalSizeX"], pixels["PhysicalSizeY"], pixels["PhysicalSizeXUnit"])
        assert size == (0.25, 0.5, "µm")
        assert tif.pages[0].extrasamples == (2,)  # unassociated alpha
        level2 = tif.pages[0].pages[1]  # the second SubIFD: 4x coarser
        assert level2.get_resolution(tifffile.RESUNIT.CENTIMETER) == pytest.approx((1e4, 5e3))
    chunked.export_ome_zarr(source, tmp_path / "z.ome.zarr", chunk=32, laplacian=False)
    attrs = zarr.open_group(str(tmp_path / "z.ome.zarr"), mode="r").attrs
    assert [c["label"] for c in attrs["omero"]["channels"]] == ["Red", "Green", "Blue", "Alpha"]
    assert [c["active"] for c in attrs["omero"]["channels"]] == [True, True, True, False]
    (scales,) = attrs["multiscales"]
    assert [axis.get("unit") for axis in scales["axes"]] == [None, "micrometer", "micrometer"]
    assert scales["datasets"][2]["coordinateTransformations"][0]["scale"] == [1.0, 2.0, 1.0]
    grey = random_image((20, 20), np.uint8)
    chunked.export_ome_zarr(lazy(grey), tmp_path / "g.ome.zarr", laplacian=False)
    grey_attrs = zarr.open_group(str(tmp_path / "g.ome.zarr"), mode="r").attrs
    assert [c["label"] for c in grey_attrs["omero"]["channels"]] == ["Grey"]


def test_tiff_writer_for_save_image_is_bit_exact():
    """`tiff.write_tiff` (what core.io's save_image can call): colours, alpha and every dtype as given."""
    for dtype in DTYPES:
        for channels in CHANNELS:
            image = random_image((17, 9), dtype, channels, seed=15)
            buffer = io.BytesIO()
            tiff.write_tiff(buffer, image)
            buffer.seek(0)
            with tifffile.TiffFile(buffer) as tif:
                page = tif.pages[0]
                assert page.asarray().tobytes() == image.tobytes() and page.compression == 1
                assert page.photometric == (2 if channels else 1)
                assert page.extrasamples == ((2,) if channels == 4 else ())


# ---------------------------------------------------------------------- memory, Ctrl+C, the command line


def big_input(path: Path, side: int) -> None:
    """A side x side RGB uint8 tiled TIFF written tile by tile (never whole in this process)."""
    tile = random_image((256, 256), np.uint8, 3, seed=16)
    count = (-(-side // 256)) ** 2
    tifffile.imwrite(path, (tile for _ in range(count)), shape=(side, side, 3), dtype=np.uint8,
                     tile=(256, 256), photometric="rgb")


@pytest.mark.parametrize(("fmt", "kinds"), [("ome-tiff", "gaussian"), ("ome-zarr", "gaussian"),
                                           ("ome-zarr", "gaussian,laplacian")])
def test_memory_stays_under_the_limit(tmp_path, fmt, kinds):
    """A 7000 x 7000 RGB image (147 MB; with bands 588 MB more of float32) exported with a 450 MB limit
    by a fresh process: its peak resident memory (imports included) stays under the limit."""
    source = tmp_path / "big.tif"
    big_input(source, 7000)
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc to read the peak of a fresh process")
    script = (  # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would start at pytest's
        "import sys\n"
        "from pyramid_explorer.cli import main\n"
        f"code = main(['export', {str(source)!r}, '--out', {str(tmp_path / 'out')!r}, '--format', {fmt!r},"
        f" '--memory-limit', '450MB', '--chunk', '512', '--kinds', {kinds!r}, '--quiet'])\n"
        "peak = [line for line in open('/proc/self/status') if line.startswith('VmHWM:')][0]\n"
        "print(int(peak.split()[1]) * 1024)\n"
        "sys.exit(code)\n")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=ENV, capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    peak = int(result.stdout.split()[-1])
    assert peak < 450e6, f"peak RSS {peak / 1e6:.0f} MB"


def test_ctrl_c_leaves_neither_partial_nor_temporary_file(tmp_path):
    source = tmp_path / "big.tif"
    big_input(source, 3000)
    out = tmp_path / "out"
    command = ["export", str(source), "--out", str(out), "--format", "ome-tiff", "--chunk", "256",
               "--memory-limit", "2GB", "--tiff-compression", "zlib"]
    folder = out / "big"
    interrupt_when(command, lambda: folder.is_dir() and any(".scratch-" in n for n in os.listdir(folder)))
    assert os.listdir(folder) == []


def test_inputs_beyond_memory_take_the_chunked_path(tmp_path, monkeypatch, capsys):
    image = random_image((90, 70), np.uint8, 3, seed=17)
    source = tmp_path / "in.tif"
    tifffile.imwrite(source, image, tile=(32, 32), photometric="rgb")
    monkeypatch.setattr(commands, "DEFAULT_MAX_PIXELS", 90 * 70 - 1)
    assert commands.main(["export", str(source), "--out", str(tmp_path / "out"), "--format", "ome-tiff",
                          "--tiff-layout", "pages"]) == 0
    manifest = json.loads((tmp_path / "out" / "in" / "manifest.json").read_text())
    assert manifest["format"]["layout"] == "pages"  # the chunked export's manifest
    assert same(tiff_levels(tmp_path / "out" / "in" / "gaussian.tif", "pages"), gaussian_pyramid(image))
    assert "-> " in capsys.readouterr().out


def test_progress_counts_bytes_with_an_eta_and_files_in_words():
    now = [0.0]
    stream = io.StringIO()
    bar = cli_progress.ProgressBar(stream, enabled=True, terminal=False, interval=5.0, clock=lambda: now[0])
    bar.start("1/1 big.tif")
    for done, at in ((100e6, 1.0), (250e6, 5.5), (400e6, 8.0), (1e9, 20.0)):
        now[0] = at
        bar.update(ExportProgress(int(done), int(1e9), None, unit="bytes"))
    lines = stream.getvalue().splitlines()
    assert lines == ["1/1 big.tif [#####...............] 25% 250.0 MB of 1.0 GB, 45.5 MB/s ETA 0:16",
                     "1/1 big.tif [####################] 100% 1.0 GB of 1.0 GB, 50.0 MB/s"]
    assert cli_progress.plural(1, "file") == "1 file" and cli_progress.plural(2, "level") == "2 levels"


def test_band_and_level_ranges_use_the_finite_values():
    values = np.array([[1.0, np.nan], [np.inf, -2.0]], np.float32)
    assert strips.finite_span(values) == (-2.0, 1.0)
    assert strips.finite_span(np.full((2, 2), np.nan, np.float32)) is None
    assert strips.finite_span(np.arange(6, dtype=np.uint16)) == (0, 5)


def test_the_strip_export_writes_what_zarr_reads(tmp_path):
    """Chunk files written directly (`omezarr.write_rows`) read back through zarr as written, with the
    edge chunks padded; the bands too."""
    image = random_image((130, 75), np.float32, 3, seed=18)
    chunked.export_ome_zarr(lazy(image), tmp_path / "x.ome.zarr", chunk=32)
    gauss = [level.compute() for level in omezarr.open_levels(tmp_path / "x.ome.zarr")]
    bands = [b.compute() for b in omezarr.open_levels(tmp_path / "x.ome.zarr" / "laplacian")]
    assert same(gauss, gaussian_pyramid(image)) and same(bands, laplacian_pyramid(image))
    manifest = json.loads((tmp_path / "x.ome.zarr" / "manifest.json").read_text())
    assert manifest["parameters"]["engine"] == "strips"

