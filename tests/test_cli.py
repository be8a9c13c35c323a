"""The headless command line, run as a real process: `python -m pyramid_explorer export|info ...`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from helpers import random_image

from pyramid_explorer.commands import IMAGE_SUFFIXES, expand_inputs
from pyramid_explorer.core.io import supported_suffixes
from pyramid_explorer.core.pyramid import gaussian_pyramid, laplacian_pyramid

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONIOENCODING": "utf-8"}
    return subprocess.run([sys.executable, "-m", "pyramid_explorer", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def write_png(path: Path, image: np.ndarray) -> Path:
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR if image.shape[2] == 3 else cv2.COLOR_RGBA2BGRA)
    assert cv2.imwrite(str(path), image)
    return path


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if line.strip()]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def photo(tmp_path) -> tuple[Path, np.ndarray]:
    image = random_image((23, 17), np.uint8, 3, seed=21)
    return write_png(tmp_path / "photo.png", image), image


@pytest.mark.parametrize(("command", "options"), [
    ("export", ["--out", "--format", "--kinds", "--levels", "--modes", "--storage", "--force", "--quiet"]),
    ("info", ["--json"]),
])
def test_help_lists_options_and_examples(command, options):
    result = run(command, "--help")
    assert result.returncode == 0
    for option in options:
        assert option in result.stdout
    assert "examples:" in result.stdout and f"pyramid-explorer {command} " in result.stdout


def test_export_one_file_writes_levels_and_manifest(tmp_path, photo):
    path, image = photo
    result = run("export", path, "--out", tmp_path / "out", "--levels", "3")
    assert result.returncode == 0, result.stderr
    assert error_lines(result) == []  # stderr is not a terminal: no progress bar
    folder = tmp_path / "out" / "photo"
    assert str(folder) in result.stdout
    gauss, lap = gaussian_pyramid(image, 3), laplacian_pyramid(image, 3)
    for i in range(3):
        np.testing.assert_array_equal(tifffile.imread(folder / f"gaussian_{i:02d}.tiff"), gauss[i])
        got = tifffile.imread(folder / f"laplacian_{i:02d}.tiff")
        assert got.dtype == np.float32 and got.tobytes() == lap[i].tobytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source"]["path"] == str(path.absolute())
    assert len(manifest["files"]) == 6


def test_second_export_without_force_fails_and_changes_nothing(tmp_path, photo):
    path, _ = photo
    out = tmp_path / "out"
    assert run("export", path, "--out", out, "--kinds", "gaussian,residual").returncode == 0
    before = snapshot(out)
    write_png(path, random_image((23, 17), np.uint8, 3, seed=22))
    again = run("export", path, "--out", out, "--kinds", "gaussian,residual")
    assert again.returncode == 1
    (line,) = error_lines(again)
    assert "already" in line and "--force" in line and str(path) in line
    assert snapshot(out) == before
    forced = run("export", path, "--out", out, "--kinds", "gaussian,residual", "--force", "--quiet")
    assert forced.returncode == 0 and forced.stdout == "" and forced.stderr == ""
    assert snapshot(out) != before


def test_unwritable_output_fails_with_one_line(tmp_path, photo):
    path, _ = photo
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the output folder's parent should be")
    result = run("export", path, "--out", blocker / "out")
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "cannot create the output folder" in line


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_output_folder_fails_with_one_line(tmp_path, photo):
    path, _ = photo
    out = tmp_path / "ro"
    (out / "photo").mkdir(parents=True)
    (out / "photo").chmod(0o500)
    try:
        result = run("export", path, "--out", out)
        assert result.returncode == 1
        (line,) = error_lines(result)
        assert "ermission denied" in line
        assert list((out / "photo").iterdir()) == []
    finally:
        (out / "photo").chmod(0o700)


def test_folder_with_a_corrupt_image_exports_the_others(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    good = {name: random_image((9 + i, 12), np.uint16 if i else np.uint8, None, seed=i)
            for i, name in enumerate(["b.png", "d.png"])}
    for name, image in good.items():
        write_png(folder / name, image)
    (folder / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing sensible")
    (folder / "notes.txt").write_text("not an image, and not looked at")
    result = run("export", folder, "--out", tmp_path / "out", "--format", "npy", "--kinds", "gaussian")
    assert result.returncode == 1
    lines = error_lines(result)
    assert "1 of 3 inputs failed" in lines[0]
    assert len(lines) == 2 and "c.png" in lines[1]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["b", "d"]
    for name, image in good.items():
        np.testing.assert_array_equal(np.load(tmp_path / "out" / Path(name).stem / "gaussian_00.npy"), image)


def test_a_folder_input_takes_every_format_the_loader_reads(tmp_path):
    for name in ("scan.pgm", "render.tga", "photo.JP2", "notes.txt", "table.csv"):
        (tmp_path / name).write_bytes(b"")
    names = [item.path.name for item in expand_inputs([str(tmp_path)])]
    assert names == ["photo.JP2", "render.tga", "scan.pgm"]
    assert IMAGE_SUFFIXES == supported_suffixes()  # the open dialog's list


def test_inputs_with_the_same_name_get_separate_folders(tmp_path):
    (tmp_path / "x").mkdir()
    one = write_png(tmp_path / "x" / "same.png", random_image((5, 5)))
    two = tmp_path / "same.tif"
    tifffile.imwrite(two, random_image((6, 6)))
    result = run("export", one, two, "--out", tmp_path / "out", "--format", "ome-tiff", "--quiet")
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["same_png", "same_tif"]
    with tifffile.TiffFile(tmp_path / "out" / "same_tif" / "gaussian.ome.tif") as tif:
        assert [level.shape for level in tif.series[0].levels] == [(6, 6), (3, 3), (2, 2), (1, 1)]


@pytest.mark.parametrize("args", [
    ["--modes", "nearest,warp"],
    ["--kinds", "gaussian,edges"],
    ["--format", "jpeg"],
    ["--levels", "0"],
    ["--format", "ome-tiff", "--kinds", "laplacian"],
    [],  # --out missing
])
def test_bad_usage_exits_2_without_traceback(tmp_path, photo, args):
    path, _ = photo
    out = ["--out", str(tmp_path / "out")] if args else []
    result = run("export", path, *out, *args)
    assert result.returncode == 2
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()


def test_missing_input_is_a_failure_not_a_crash(tmp_path):
    result = run("export", tmp_path / "nowhere.png", "--out", tmp_path / "out")
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "nowhere.png" in line


def test_info_prints_sizes_and_json(tmp_path):
    path = write_png(tmp_path / "grey é.png", random_image((37, 153), np.uint16, None))
    text = run("info", path)
    assert text.returncode == 0
    assert "153 x 37" in text.stdout and "uint16" in text.stdout and "grey" in text.stdout
    assert "153x37 -> 77x19 -> 39x10 -> 20x5 -> 10x3 -> 5x2 -> 3x1 -> 2x1 -> 1x1" in text.stdout
    result = run("info", path, "--json")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert (info["width"], info["height"], info["dtype"], info["channels"]) == (153, 37, "uint16", 1)
    assert (info["format"], info["frames"]) == ("PNG", 1)
    shapes = [level.shape for level in gaussian_pyramid(np.zeros((37, 153), np.uint8))]
    assert info["levels"] == len(shapes) and info["level_sizes"] == [[w, h] for h, w in shapes]


def test_info_says_which_frame_of_a_multi_page_tiff(tmp_path):
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tif:
        for seed in (1, 2, 3):
            tif.write(random_image((6, 10), np.uint8, 3, seed=seed), photometric="rgb")
    result = run("info", path)
    assert result.returncode == 0
    assert "TIFF (first of 3 frames)" in result.stdout and "10 x 6" in result.stdout


def test_info_reads_an_ome_zarr_image_and_its_stored_levels(tmp_path):
    path = write_png(tmp_path / "rgb.png", random_image((37, 153), np.uint8, 3))
    assert run("export", path, "--format", "ome-zarr", "--levels", "3", "--out", tmp_path).returncode == 0
    store = tmp_path / "rgb.ome.zarr"
    result = run("info", store, "--json")
    assert result.returncode == 0
    info = json.loads(result.stdout)
    assert (info["format"], info["width"], info["height"], info["dtype"], info["channels"]) == \
        ("OME-Zarr", 153, 37, "uint8", 3)
    assert info["stored_levels"] == [[153, 37], [77, 19], [39, 10]]
    assert "stored:   3 levels, 153x37 -> 77x19 -> 39x10" in run("info", store).stdout
    (store / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    (store / ".zattrs").unlink(missing_ok=True)
    broken = run("info", store)
    assert broken.returncode == 1
    (line,) = error_lines(broken)
    assert "rgb.ome.zarr" in line


def test_info_on_a_broken_file_is_one_line(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"")
    result = run("info", broken)
    assert result.returncode == 1
    (line,) = error_lines(result)
    assert "broken.png" in line


def test_progress_bar_draws_on_a_terminal_and_clears(tmp_path, photo):
    """A pseudo-terminal as stderr: the bar appears (redrawn with \\r); with --quiet nothing does."""
    pty = pytest.importorskip("pty")
    path, _ = photo
    for quiet, expect_bar in (([], True), (["--quiet"], False)):
        master, slave = pty.openpty()
        try:
            subprocess.run([sys.executable, "-m", "pyramid_explorer", "export", str(path), "--out",
                            str(tmp_path / f"out{quiet}"), *quiet], cwd=ROOT, stderr=slave,
                           stdout=subprocess.DEVNULL, timeout=120, check=True)
            os.close(slave)
            chunks = []
            while True:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO once the pty is drained and its other end is closed
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            os.close(master)
        shown = b"".join(chunks).decode()
        assert bool(re.search(r"\[#{20}\] (\d+)/\1 manifest.json", shown)) == expect_bar
        assert "Traceback" not in shown


def test_first_ctrl_c_asks_to_stop_after_the_file_and_second_stops_now(capsys):
    import signal

    from pyramid_explorer.commands import _cancel_on_sigint

    with _cancel_on_sigint() as cancelled:
        signal.raise_signal(signal.SIGINT)
        assert cancelled.is_set()
        assert "stopping after the current file" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize(("levels", "written"), [
    ("2:4", [2, 3, 4]),
    ("3:3", [3]),
    ("0,3,1", [0, 1, 3]),
    ("3", [0, 1, 2]),
])
def test_levels_takes_a_count_a_range_or_a_list(tmp_path, photo, levels, written):
    path, image = photo
    result = run("export", path, "--out", tmp_path / "out", "--levels", levels,
                 "--kinds", "gaussian,laplacian")
    assert result.returncode == 0, result.stderr
    folder = tmp_path / "out" / "photo"
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["parameters"]["levels_exported"] == written
    count = int(levels) if levels.isdigit() else max(written) + 1  # a range or list ends the pyramid there
    gauss, lap = gaussian_pyramid(image, count), laplacian_pyramid(image, count)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"gaussian_{i:02d}.tiff" for i in written] + [f"laplacian_{i:02d}.tiff" for i in written]
        + ["manifest.json"])
    for i in written:
        assert np.array_equal(tifffile.imread(folder / f"gaussian_{i:02d}.tiff"), gauss[i])
        assert np.array_equal(tifffile.imread(folder / f"laplacian_{i:02d}.tiff"), lap[i])


@pytest.mark.parametrize(("levels", "message"), [
    ("2:9", "(17x23) has levels 0 to 5; give a count up to 6, or a range or list within 0 to 5"),
    ("0,7", "has levels 0 to 5"),
    ("3:1", "expected a count N (levels 0 to N-1), a range A:B (levels A to B) or a list A,B,C, got '3:1'"),
    ("a:b", "got 'a:b'"),
    ("1,,x", "got '1,,x'"),
])
def test_levels_outside_the_image_or_malformed_exit_2_with_one_line(tmp_path, photo, levels, message):
    path, _ = photo  # 17x23: six levels
    result = run("export", path, "--out", tmp_path / "out", "--levels", levels)
    assert result.returncode == 2
    (line,) = [line for line in error_lines(result) if "error:" in line]
    assert message in line and line.startswith("pyramid-explorer export: error:")
    assert not (tmp_path / "out").exists()


def test_a_pyramid_file_refuses_levels_that_do_not_start_at_0(tmp_path, photo):
    path, image = photo
    result = run("export", path, "--out", tmp_path / "out", "--format", "ome-tiff", "--levels", "1:3")
    assert result.returncode == 2
    assert "writes a pyramid from level 0" in result.stderr and not (tmp_path / "out").exists()
    result = run("export", path, "--out", tmp_path / "ok", "--format", "ome-tiff", "--levels", "0:2")
    assert result.returncode == 0, result.stderr
    with tifffile.TiffFile(tmp_path / "ok" / "photo" / "gaussian.ome.tif") as tif:
        levels = [level.asarray() for level in tif.series[0].levels]
    assert [lv.shape for lv in levels] == [g.shape for g in gaussian_pyramid(image, 3)]
