"""The first run on a machine without a usable display, and `--sample NAME`.

Qt aborts the process (status 134) when its platform plugin cannot start; the launcher must answer
with one line and status 2 instead, and a screenshot must render offscreen by itself. These runs go
through a subprocess with the environment a user would have.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import pytest

from pyramid_explorer import cli
from pyramid_explorer.app import launch
from pyramid_explorer.app.main_window import DEFAULT_SIZE
from pyramid_explorer.samples import (
    COMMAND_LINE_PROBE_SIZE,
    COMMAND_LINE_SAMPLES,
    DEFAULT_SAMPLE,
    PROBES,
    SAMPLES,
)

ROOT = Path(__file__).resolve().parents[2]
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11/Wayland checks are Linux's")


def explorer(*args: str, home: Path, **display: str) -> subprocess.CompletedProcess:
    """Run the command line with no display variables except those given, and a throwaway home."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update(display, HOME=str(home), XDG_CONFIG_HOME=str(home),
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))
    return subprocess.run([sys.executable, "-m", "pyramid_explorer", *args], capture_output=True, text=True,
                          timeout=120, env=env, cwd=ROOT)


def only_line(run: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in run.stderr
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, run.stderr
    assert lines[0].startswith("pyramid-explorer: ")
    return lines[0]


@linux_only
@pytest.mark.parametrize("platform", [{"QT_QPA_PLATFORM": "xcb"}, {}], ids=["xcb", "default"])
def test_no_display_is_one_line_and_status_2(tmp_path, platform):
    run = explorer(home=tmp_path, **platform)
    assert run.returncode == 2
    line = only_line(run)
    assert "QT_QPA_PLATFORM=offscreen" in line
    assert "DISPLAY is not set" in line or "sudo apt-get install" in line


@linux_only
def test_a_display_that_cannot_be_reached_is_one_line_and_status_2(tmp_path):
    display = next(f":{n}" for n in range(917, 999) if not Path(f"/tmp/.X11-unix/X{n}").exists())
    run = explorer(home=tmp_path, QT_QPA_PLATFORM="xcb", DISPLAY=display)
    assert run.returncode == 2  # not Qt's abort (134)
    assert "QT_QPA_PLATFORM=offscreen" in only_line(run)


@linux_only
@pytest.mark.parametrize("platform", [{"QT_QPA_PLATFORM": "xcb"}, {}], ids=["xcb", "default"])
def test_screenshot_without_display_renders_offscreen(tmp_path, platform):
    out = tmp_path / "shot.png"
    run = explorer("--screenshot", str(out), home=tmp_path, **platform)
    assert run.returncode == 0, run.stderr
    assert not run.stderr.strip()  # not even the offscreen platform's note on every window shown
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE and shot.std() > 10


@linux_only
def test_missing_xcb_libraries_name_their_packages(monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    monkeypatch.setenv("DISPLAY", ":0")
    monkeypatch.setattr(launch, "missing_libraries",
                        lambda _plugin: ["libxcb-icccm.so.4", "libxcb-keysyms.so.1", "libodd.so.3"])
    problem = launch.display_problem()
    assert problem is not None and "libxcb-icccm.so.4, libxcb-keysyms.so.1, libodd.so.3" in problem
    assert problem.endswith("sudo apt-get install libxcb-icccm4 libxcb-keysyms1 libodd.so.3")


@linux_only
@pytest.mark.parametrize(("env", "expected"), [
    ({"QT_QPA_PLATFORM": "offscreen"}, None),
    ({"QT_QPA_PLATFORM": "wayland"}, "WAYLAND_DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "wayland", "WAYLAND_DISPLAY": "wayland-0"}, None),
    ({"WAYLAND_DISPLAY": "wayland-0"}, None),
    ({"QT_QPA_PLATFORM": "xcb"}, "DISPLAY is not set"),
    ({"QT_QPA_PLATFORM": "xcb", "DISPLAY": ":0"}, None),
])
def test_display_problem_follows_the_platform(monkeypatch, env, expected):
    for key in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(launch, "missing_libraries", lambda _plugin: [])
    problem = launch.display_problem()
    assert (problem is None) if expected is None else (expected in problem)


def test_missing_libraries_reads_ldd(monkeypatch, tmp_path):
    listing = ("\tlibQt6Gui.so.6 => /x/libQt6Gui.so.6 (0x1)\n\tlibxcb-keysyms.so.1 => not found\n"
               "\tlibxcb-icccm.so.4 => not found\n\tlibxcb-keysyms.so.1 => not found\n")
    calls = []

    def fake_run(command, **_kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, stdout=listing, stderr="")

    monkeypatch.setattr(launch.subprocess, "run", fake_run)
    assert launch.missing_libraries(tmp_path / "libqxcb.so") == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert calls == [["ldd", str(tmp_path / "libqxcb.so")]]


def test_missing_libraries_without_ldd_finds_none(monkeypatch, tmp_path):
    def no_ldd(*_args, **_kwargs):
        raise FileNotFoundError("ldd")

    monkeypatch.setattr(launch.subprocess, "run", no_ldd)
    assert launch.missing_libraries(tmp_path / "libqxcb.so") == []


def test_readme_installs_every_package_the_xcb_plugin_needs():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    commands = re.findall(r"sudo apt-get install (?:-y )?([a-z0-9.+\- ]+?) &&", readme)
    assert commands, "the Quick start installs the system packages"
    assert set(commands[0].split()) == set(launch.XCB_PACKAGES.values())


# --- --sample NAME ---------------------------------------------------------------------------------

def test_every_sample_name_opens_a_sample_or_a_probe():
    assert list(COMMAND_LINE_SAMPLES)[:3] == ["chelsea", "zone-plate", "chart"]
    for kind, name in COMMAND_LINE_SAMPLES.values():
        assert name in (SAMPLES if kind == "sample" else PROBES)
    probes = {name for kind, name in COMMAND_LINE_SAMPLES.values() if kind == "probe"}
    assert probes == set(PROBES) - {"Zone plate"}  # the zone plate sample is that probe at 513x385


class _Recorder:
    """Stands in for the window's controller: records which open_* call the launcher makes."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def __getattr__(self, method: str):
        return lambda *args: self.calls.append((method, *args))


@pytest.mark.parametrize(("image", "sample", "expected"), [
    ("in.png", None, ("open_path", "in.png")),
    (None, "chart", ("open_sample", "Resolution chart (641x481)")),
    (None, "checkerboard", ("open_probe", "Checkerboard", *COMMAND_LINE_PROBE_SIZE)),
    (None, None, ("open_sample", DEFAULT_SAMPLE)),
])
def test_open_first_image(image, sample, expected):
    controller = _Recorder()
    launch.open_first_image(controller, argparse.Namespace(image=image, sample=sample))
    assert controller.calls == [expected]


@pytest.mark.parametrize(("argv", "says"), [
    (["--sample", "nope"], "unknown sample 'nope'; samples: " + ", ".join(COMMAND_LINE_SAMPLES)),
    (["in.png", "--sample", "chart"], "not both"),
])
def test_bad_sample_is_one_line_and_status_2_before_any_window(capsys, argv, says):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pyramid-explorer: ") and says in err[0]


class _QtWithoutItsLibraries:
    """An import hook that fails the launcher's import the way a missing system library does."""

    def find_spec(self, name, _path=None, _target=None):
        if name == "pyramid_explorer.app.launch":
            raise ImportError("libdbus-1.so.3: cannot open shared object file: No such file or directory")
        return None


def test_qt_that_cannot_load_its_libraries_is_one_line_and_status_2(monkeypatch, capsys):
    monkeypatch.delitem(sys.modules, "pyramid_explorer.app.launch")
    monkeypatch.setattr(sys, "meta_path", [_QtWithoutItsLibraries(), *sys.meta_path])
    assert cli.main(["--screenshot", "x.png"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "libdbus-1.so.3" in err[0] and "Quick start" in err[0]


def test_screenshot_of_a_named_sample(tmp_path):
    out = tmp_path / "chart.png"
    run = explorer("--sample", "chart", "--screenshot", str(out), "--view", "compare", "--level", "0",
                   home=tmp_path, QT_QPA_PLATFORM="offscreen")
    assert run.returncode == 0, run.stderr
    shot = cv2.imread(str(out))
    assert shot is not None and (shot.shape[1], shot.shape[0]) == DEFAULT_SIZE and shot.std() > 10
