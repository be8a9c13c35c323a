"""GUI benchmark: the real window, offscreen, on a 3840x2160 RGB image.

Steps through every pyramid level (Pyramid view), then every level of the Compare view (all modes and
the transposed convolution), then a few transposed-convolution settings, and prints:
- median and 95th percentile of the time from a level/mode change to its new pixels on screen
  (results drawn and the window repainted),
- the longest stall of the GUI thread, seen by a 5 ms heartbeat QTimer,
- the time from launch to the first image on screen,
- peak memory (maximum resident set size).

Run from the project root:  python benchmarks/bench_gui.py [--size 3840x2160] [--image PATH]
Plain script, no assertions: it reports numbers; the targets are in the README.
"""

from __future__ import annotations

import time

T_LAUNCH = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before the imports, as a launch does
import os  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from pyramid_explorer.app.launch import leave_a_core_for_the_gui  # noqa: E402
from pyramid_explorer.app.main_window import MainWindow  # noqa: E402
from pyramid_explorer.core.deconv import DeconvSettings  # noqa: E402
from pyramid_explorer.core.upsampling import MODES  # noqa: E402
from pyramid_explorer.samples import DEFAULT_SAMPLE, load_sample  # noqa: E402

IMPORT_SECONDS = time.perf_counter() - T_LAUNCH  # Python modules of the app, Qt, OpenCV
HEARTBEAT_MS = 5


def peak_memory_mib() -> float | None:
    try:
        import resource
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / 2**20  # kB on Linux, bytes on macOS


def make_test_image(width: int, height: int) -> np.ndarray:
    """The bundled photograph enlarged to the size, with seeded noise for detail at every level."""
    photo = cv2.resize(load_sample(DEFAULT_SAMPLE), (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.random.default_rng(0).normal(0, 6, photo.shape)
    return np.clip(photo + noise, 0, 255).astype(np.uint8)


class Heartbeat:
    """Longest gap between two ticks of a 5 ms timer, minus the period: how long the GUI thread stalled."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._last = time.perf_counter()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(HEARTBEAT_MS)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def _on_tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last - HEARTBEAT_MS / 1000)
        self._last = now


class Driver:
    """Runs steps one after another from the event loop: each step makes a change, then waits (polling
    every millisecond, never blocking) for its panels to show the new pixels; the window is then
    repainted and the time recorded."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        self.updates: list[tuple[str, float]] = []
        self.completions: list[tuple[str, float]] = []  # steps with parts: until metrics are in too
        self.first_image: float | None = None
        self.pyramid_ready: float | None = None
        self._steps: list[tuple[str, Callable[[], None], Callable[[], bool], list]] = []
        self._current = None
        self._started = 0.0
        self._seen: set[str] = set()
        self._poll = QTimer()
        self._poll.setInterval(1)
        self._poll.timeout.connect(self._on_poll)

    def add(self, name, change, done, parts=()) -> None:
        """`parts`: (label, predicate) pairs timed separately within the step (e.g. each mode's panel)."""
        self._steps.append((name, change, done, list(parts)))

    def start(self) -> None:
        self._poll.start()

    def _on_poll(self) -> None:
        w = self.window
        if self.first_image is None and w.tab("pyramid").source.layer is not None:
            w.repaint()
            self.first_image = time.perf_counter() - T_LAUNCH
        if self.pyramid_ready is None and w.controller.pyramid is not None:
            self.pyramid_ready = time.perf_counter() - T_LAUNCH
        if self._current is None:
            if not w.is_settled() or w.controller.pyramid is None:
                return
            if not self._steps:
                self._poll.stop()
                QApplication.instance().quit()
                return
            self._current = self._steps.pop(0)
            self._seen = set()
            self._started = time.perf_counter()
            self._current[1]()
            return
        name, _, done, parts = self._current
        for label, ready in parts:
            if label not in self._seen and ready():
                w.repaint()
                self._seen.add(label)
                self.updates.append((f"{name} {label}", time.perf_counter() - self._started))
        if done() and w.is_settled():
            w.repaint()
            elapsed = time.perf_counter() - self._started
            (self.completions if parts else self.updates).append((name, elapsed))
            self._current = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT of the generated test image")
    parser.add_argument("--image", help="use this image file instead of a generated one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.image
        if path is None:
            width, height = (int(v) for v in args.size.lower().split("x"))
            path = os.path.join(tmp, "bench.png")
            cv2.imwrite(path, cv2.cvtColor(make_test_image(width, height), cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_PNG_COMPRESSION, 1])
        # a launch is the imports plus everything from here on (the test image is made in between)
        global T_LAUNCH
        T_LAUNCH = time.perf_counter() - IMPORT_SECONDS
        return run(path, os.path.join(tmp, "settings.ini"))


def run(path: str, settings_path: str) -> int:
    app = QApplication.instance() or QApplication(sys.argv[:1])
    leave_a_core_for_the_gui()  # as the application does
    window = MainWindow(QSettings(settings_path, QSettings.Format.IniFormat), persist=False)
    heartbeat = Heartbeat()
    driver = Driver(window)
    c = window.controller
    window.show()
    c.open_path(path)
    app.processEvents()  # the window's first layout and paint belong to the launch, not to a stall
    heartbeat.start()
    driver.start()
    levels_holder: dict[str, int] = {}

    def plan() -> None:
        """Planned once the pyramid exists (its depth decides the steps)."""
        n = c.pyramid.levels
        levels_holder["n"] = n
        pv, cv = window.tab("pyramid"), window.tab("compare")
        for level in [*range(n), *range(n - 2, -1, -1)]:
            driver.add(f"pyramid level {level}", _setter(c.set_level, level), _pyramid_at(pv, level))
        def parts(level):
            return [*((mode, _panel_at(cv.mode_panels[mode], level)) for mode in MODES),
                    ("transposed conv", _panel_at(cv.deconv_panel, level))]

        driver.add("compare level 0 (tab switch)", _setter(window.show_view, "compare"), _compare_at(cv, 0),
                   parts(0))
        for level in [*range(1, n - 1), 0]:
            driver.add(f"compare level {level}", _setter(c.set_level, level), _compare_at(cv, level),
                       parts(level))
        for k, s, kind in ((3, 2, "box"), (5, 2, "random"), (4, 3, "bilinear"), (4, 2, "bilinear")):
            settings = DeconvSettings(k, s, kind)
            driver.add(f"transposed conv {k}/{s}/{kind}", _setter(c.set_deconv, settings),
                       _deconv_is(cv, settings), [("image", _deconv_drawn(cv, settings))])

    c.pyramid_changed.connect(_once(plan))
    app.exec()
    heartbeat.stop()
    window.close()
    report(driver, heartbeat, window, levels_holder.get("n", 0))
    window.deleteLater()
    return 0


def _setter(fn, value):
    def change() -> None:
        fn(value)

    return change


def _once(fn):
    done = []

    def call(*_args) -> None:
        if not done:
            done.append(True)
            fn()

    return call


def _pyramid_at(view, level):
    def done() -> bool:
        return all(p.layer is not None and p.layer.level == level
                   for p in (view.gaussian, view.laplacian, view.residual))

    return done


def _panel_at(panel, level):
    def ready() -> bool:
        return panel.layer is not None and panel.layer.level == level

    return ready


def _compare_at(view, level):
    def done() -> bool:
        results = view.results
        return len(results) == len(MODES) and all(r.level == level and r.psnr is not None
                                                  for r in results.values())

    return done


def _deconv_is(view, settings):
    def done() -> bool:
        d = view.deconv_result
        return d is not None and d.settings == settings and (d.difference is None or d.psnr is not None)

    return done


def _deconv_drawn(view, settings):
    def ready() -> bool:
        d = view.deconv_result
        return d is not None and d.settings == settings and view.deconv_panel.layer is d.image

    return ready


def report(driver: Driver, heartbeat: Heartbeat, window: MainWindow, levels: int) -> None:
    times = [t for _, t in driver.updates]
    image = window.controller.loaded.image if window.controller.loaded is not None else None
    shape = "x".join(map(str, image.shape[1::-1])) if image is not None else "?"
    print(f"Pyramid Explorer GUI benchmark: {shape} RGB, {levels} levels, {len(times)} updates measured")
    if not times:
        print("no update measured")
        return
    ms = sorted(1000 * t for t in times)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    peak = peak_memory_mib()
    rows = [
        ("median update (change -> new pixels)", f"{statistics.median(ms):.0f} ms", "< 150 ms"),
        ("95th percentile update", f"{p95:.0f} ms", ""),
        ("slowest update", f"{ms[-1]:.0f} ms ({max(driver.updates, key=lambda u: u[1])[0]})", ""),
        ("longest GUI-thread stall (5 ms heartbeat)", f"{1000 * heartbeat.longest:.0f} ms", "< 100 ms"),
        ("launch -> first image on screen", f"{driver.first_image:.2f} s (imports {IMPORT_SECONDS:.2f} s)",
         "< 2 s"),
        ("launch -> pyramid built", f"{driver.pyramid_ready:.2f} s", ""),
        ("peak memory (max RSS)", "n/a" if peak is None else f"{peak / 1024:.2f} GiB", "< 3 GB"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, target in rows:
        print(f"  {name:<{width}}  {value:<28} {target}")
    for name, t in driver.completions:
        if t > 1:
            print(f"  {name}: every panel and its PSNR/SSIM in {t:.1f} s")
    slow = [(n, t) for n, t in driver.updates if t > 0.15]
    if slow:
        listed = ", ".join(f"{n} {1000 * t:.0f} ms" for n, t in slow[:12])
        listed += " ..." if len(slow) > 12 else ""
        print(f"  updates over 150 ms: {len(slow)} of {len(times)}: {listed}")


if __name__ == "__main__":
    sys.exit(main())
