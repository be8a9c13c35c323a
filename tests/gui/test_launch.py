"""`pyramid-explorer IMAGE --screenshot OUT.png [--view V] [--level N]`, run in-process."""

from __future__ import annotations

import argparse

import cv2
import pytest
from guitools import make_image, write_png
from PySide6.QtCore import QSettings

from pyramid_explorer.app import launch
from pyramid_explorer.app.main_window import DEFAULT_SIZE


@pytest.fixture(autouse=True)
def private_settings(monkeypatch, tmp_path):
    """The launcher's QSettings go to a file of the test's own."""
    path = str(tmp_path / "launch-settings.ini")
    monkeypatch.setattr(launch, "QSettings", lambda *_: QSettings(path, QSettings.Format.IniFormat))


def args(**kw) -> argparse.Namespace:
    return argparse.Namespace(**{"image": None, "screenshot": None, "view": None, "level": None, **kw})


@pytest.mark.parametrize("view", ["pyramid", "compare"])
def test_screenshot_is_a_png_of_the_whole_window(qapp, tmp_path, view):
    image = write_png(tmp_path / "in.png", make_image(40, 60))
    out = tmp_path / f"{view}.png"
    assert launch.run(args(image=image, screenshot=str(out), view=view, level=1)) == 0
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE
    assert shot.std() > 10  # a rendered window, not a blank


def test_screenshot_without_image_uses_the_default_sample(qapp, tmp_path):
    out = tmp_path / "sample.png"
    assert launch.run(args(screenshot=str(out))) == 0
    assert cv2.imread(str(out)) is not None


def test_screenshot_of_an_unreadable_image_fails_with_a_message(qapp, tmp_path, capsys):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    assert launch.run(args(image=str(bad), screenshot=str(tmp_path / "x.png"))) == 1
    err = capsys.readouterr().err
    assert "bad.png" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.png").exists()


def test_bad_view_and_level_are_refused(qapp, tmp_path, capsys):
    assert launch.run(args(view="nonsense", screenshot=str(tmp_path / "a.png"))) == 2
    assert "views: pyramid, compare" in capsys.readouterr().err
    image = write_png(tmp_path / "in.png", make_image(8, 8))
    assert launch.run(args(image=image, level=99, screenshot=str(tmp_path / "b.png"))) == 2
    assert "out of range" in capsys.readouterr().err
