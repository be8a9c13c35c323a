"""What the loader guarantees holds on every path a file takes into the program, not only `load_image`.

tests/test_io.py proves EXIF orientations 1-8 in PNG, WebP, TIFF and JPEG and the first-frame rule
for multi-frame files through `load_image`/`probe_image`. Here the same files go through the command
line (`export` writes the upright pixels, `info` reports the upright size and the frame count), with
Pillow's `exif_transpose` as the independent reference for "upright".
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import turned_png
from PIL import Image

from pyramid_explorer import commands


@pytest.mark.parametrize("orientation", range(2, 9))
def test_command_line_exports_and_reports_upright(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 orientation: int):
    path, upright = turned_png(tmp_path, orientation)
    assert commands.main(["info", str(path), "--json"]) == commands.EXIT_OK
    info = json.loads(capsys.readouterr().out)
    assert (info["height"], info["width"]) == upright.shape[:2]
    out = tmp_path / "out"
    status = commands.main(["export", str(path), "--out", str(out), "--format", "npy", "--kinds", "gaussian",
                            "--quiet"])
    assert status == commands.EXIT_OK
    assert np.array_equal(np.load(out / path.stem / "gaussian_00.npy"), upright)


def test_command_line_says_which_frame_of_an_animation(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    frames = [Image.new("RGB", (6, 4), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    path = tmp_path / "blink.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100)
    assert commands.main(["info", str(path)]) == commands.EXIT_OK
    assert "GIF (first of 3 frames)" in capsys.readouterr().out
    out = tmp_path / "out"
    assert commands.main(["export", str(path), "--out", str(out), "--format", "npy", "--quiet"]) == 0
    first = np.load(out / "blink" / "gaussian_00.npy")
    assert (first[..., :3] == (255, 0, 0)).all()
