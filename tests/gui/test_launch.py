"""`pyramid-explorer IMAGE --screenshot OUT.png [--view V] [--level N]`, as a user runs it.

The screenshot runs go through a subprocess (`python -m pyramid_explorer`): the mode runs the
application's own event loop to the end and quits the application, which a test process that
goes on cannot do to its shared QApplication.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from guitools import make_image, write_png

from pyramid_explorer.app import launch
from pyramid_explorer.app.main_window import DEFAULT_SIZE

ROOT = Path(__file__).resolve().parents[2]


def explorer(*args: str, home: Path) -> subprocess.CompletedProcess:
    """Run the command line offscreen with a throwaway home (no user settings read or written)."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(home), "XDG_CONFIG_HOME": str(home),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.run([sys.executable, "-m", "pyramid_explorer", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


def test_screenshot_is_a_png_of_the_whole_window(tmp_path):
    image = write_png(tmp_path / "in.png", make_image(40, 60))
    out = tmp_path / "compare.png"
    run = explorer(image, "--screenshot", str(out), "--view", "compare", "--level", "1", home=tmp_path)
    assert run.returncode == 0, run.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE
    assert shot.std() > 10  # a rendered window, not a blank
    assert not (tmp_path / "pyramid-explorer").exists()  # no settings written


def test_screenshot_of_an_analysis_tool(tmp_path):
    image = write_png(tmp_path / "in.png", make_image(33, 47))
    out = tmp_path / "kernels.png"
    run = explorer(image, "--screenshot", str(out), "--view", "kernels", "--level", "1", home=tmp_path)
    assert run.returncode == 0, run.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE and shot.std() > 10


def test_screenshot_without_image_shows_the_default_sample(tmp_path):
    out = tmp_path / "sample.png"
    run = explorer("--screenshot", str(out), home=tmp_path)
    assert run.returncode == 0, run.stderr
    assert cv2.imread(str(out)) is not None


@pytest.mark.parametrize(("content", "extra", "status", "says"), [
    (b"nope", (), 1, "bad.png"),
    (None, ("--level", "99"), 2, "out of range"),
])
def test_screenshot_failures_give_one_line_and_no_file(tmp_path, content, extra, status, says):
    image = tmp_path / "bad.png"
    if content is None:
        write_png(image, make_image(8, 8))
    else:
        image.write_bytes(content)
    out = tmp_path / "x.png"
    run = explorer(str(image), "--screenshot", str(out), *extra, home=tmp_path)
    assert run.returncode == status
    lines = [line for line in run.stderr.splitlines() if line.startswith("pyramid-explorer")]
    assert len(lines) == 1 and says in lines[0]
    assert not out.exists()


def test_unknown_view_is_refused_before_any_window(capsys):
    args = argparse.Namespace(image=None, screenshot="x.png", view="nonsense", level=None)
    assert launch.run(args) == 2
    assert "views: pyramid, compare, integrity, equalizer, kernels, unpool" in capsys.readouterr().err


def test_help_lists_every_view(capsys):
    from pyramid_explorer.cli import build_gui_parser
    from pyramid_explorer.tools.registry import NAMES as VIEWS

    assert ", ".join(VIEWS) in " ".join(build_gui_parser().format_help().split())
