"""GUI benchmark: the real window, offscreen, on a 3840x2160 RGB image.

Steps through every pyramid level (Pyramid view), then every level of the Compare view (all modes and
the transposed convolution), then a few transposed-convolution settings; then compares levels 0 and 1
again `--repeats` times from an empty cache, timing scikit-image's `structural_similarity` on one pair of
the same level 0 right after each level-0 comparison (in the same minutes: the machine may be shared).
Prints:
- median and 95th percentile of the time from a level/mode change to its new pixels on screen
  (results drawn and the window repainted),
- for Compare at levels 0 and 1: the time to the first panel, to every panel and to every number
  (minimum and spread of the repeats), and the level-0 time against scikit-image's one SSIM (the
  minima, and each comparison against the SSIM timed after it),
- the longest stall of the GUI thread, seen by a 5 ms heartbeat QTimer (overall, and while the
  repeated comparisons run; on Linux split into time on a CPU, waiting for one, and blocked),
- the time from launch to the first image on screen (this run, and `--repeats` fresh processes, which
  find the package's bytecode compiled, as every launch after an install or a first launch does),
- peak memory (maximum resident set size) and the load average (the machine may be shared).

Run from the project root:  python benchmarks/bench_gui.py [--size 3840x2160] [--image PATH] [--repeats 3]
Plain script, no assertions: it reports numbers; the targets are in the README.
"""

from __future__ import annotations

import time

T_LAUNCH = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before the imports, as a launch does
import compileall  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
from collections.abc import Callable  # noqa: E402
from functools import partial  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from host import cpu_description  # noqa: E402 - beside this script
from PySide6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

import pyramid_explorer  # noqa: E402
from pyramid_explorer.app.controller import Controller  # noqa: E402
from pyramid_explorer.app.launch import leave_a_core_for_the_gui, open_window  # noqa: E402
from pyramid_explorer.core.deconv import DeconvSettings  # noqa: E402
from pyramid_explorer.core.level_input import unavailable  # noqa: E402
from pyramid_explorer.core.upsampling import MODES  # noqa: E402
from pyramid_explorer.samples import DEFAULT_SAMPLE, load_sample  # noqa: E402

if TYPE_CHECKING:
    from pyramid_explorer.app.main_window import MainWindow

IMPORT_SECONDS = time.perf_counter() - T_LAUNCH  # Python modules of the app, Qt, OpenCV (not the window's)
HEARTBEAT_MS = 5
POLL_MS = 5  # the driver's poll: each time is up to 5 ms late; polling every 1 ms cost the GUI thread ~0.1 s
# of CPU per 4K comparison (0.35 s against 0.24 s), taken from the work it measures
SLOW_MS = 20  # stalls over this are split into their causes (Heartbeat)


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
    """Longest gap between two ticks of a 5 ms timer, minus the period: how long the GUI thread stalled.

    On Linux each stall over SLOW_MS is also split by the thread's schedstat into the time the GUI
    thread ran on a CPU, waited for one (other threads and processes ran) and neither (blocked, mostly
    on the GIL held by a worker): what to blame for it.
    """

    def __init__(self) -> None:
        self.longest = 0.0
        self.longest_during = ""  # the driver's step when the longest stall ended
        self.during = "start"  # set by the driver
        self.recent = 0.0  # longest since `reset_recent`
        self.slow: list[tuple[float, float, float]] = []  # since `reset_recent`: (stall, on CPU, waiting), s
        self._last = time.perf_counter()
        self._sched = f"/proc/self/task/{threading.get_native_id()}/schedstat"
        self._last_sched = self._schedstat()
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(HEARTBEAT_MS)
        self._timer.timeout.connect(self._on_tick)

    def start(self) -> None:
        self._last = time.perf_counter()
        self._last_sched = self._schedstat()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()

    def reset_recent(self) -> None:
        self.recent = 0.0
        self.slow = []

    def _schedstat(self) -> tuple[float, float] | None:
        """(seconds on a CPU, seconds waiting for one) of the GUI thread so far; None without schedstat."""
        try:
            with open(self._sched) as f:
                on_cpu, waiting, _slices = f.read().split()
        except (OSError, ValueError):
            return None
        return int(on_cpu) / 1e9, int(waiting) / 1e9

    def _on_tick(self) -> None:
        now = time.perf_counter()
        stall = now - self._last - HEARTBEAT_MS / 1000
        if stall > self.longest:
            self.longest, self.longest_during = stall, self.during
        self.recent = max(self.recent, stall)
        self._last = now
        sched = self._schedstat()
        if stall > SLOW_MS / 1000 and sched is not None and self._last_sched is not None:
            self.slow.append((stall, sched[0] - self._last_sched[0], sched[1] - self._last_sched[1]))
        self._last_sched = sched


class Driver:
    """Runs steps one after another from the event loop: each step makes a change, then waits (polling
    every POLL_MS, never blocking) for its panels to show the new pixels; the window is then
    repainted and the time recorded."""

    def __init__(self, window: MainWindow, heartbeat: Heartbeat) -> None:
        self.window = window
        self.heartbeat = heartbeat
        self.updates: list[tuple[str, float]] = []
        self.completions: list[tuple[str, float]] = []  # steps with parts: until metrics are in too
        self.timed: dict[str, list[dict[str, float]]] = {}  # repeated steps: first/every panel, numbers
        self.first_image: float | None = None
        self.pyramid_ready: float | None = None
        self._steps: list[tuple[str, Callable[[], None], Callable[[], bool] | None, list, str | None]] = []
        self._current = None
        self._started = 0.0
        self._cpu_started = (0.0, 0.0)
        self._seen: set[str] = set()
        self._poll = QTimer()
        self._poll.setInterval(POLL_MS)
        self._poll.timeout.connect(self._on_poll)

    def add(self, name, change, done, parts=(), timed: str | None = None) -> None:
        """`parts`: (label, predicate) pairs timed separately within the step (e.g. each mode's panel).
        A `timed` step is not an update: its first/last part, completion and stall go to `timed[name]`."""
        self._steps.append((name, change, done, list(parts), timed))

    def add_pause(self, name: str, work: Callable[[], None]) -> None:
        """A step that runs `work` on the GUI thread once the window is settled, with the heartbeat
        stopped (its time is neither a stall nor an update)."""
        self._steps.append((name, work, None, [], None))

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
            self.heartbeat.during = self._current[0]
            if self._current[2] is None:  # a pause
                self.heartbeat.stop()
                self._current[1]()
                self.heartbeat.start()
                self._current = None
                return
            self._seen = {}
            self.heartbeat.reset_recent()
            self._started = time.perf_counter()
            self._cpu_started = time.process_time(), time.thread_time()  # this is the GUI thread
            self._current[1]()
            return
        name, _, done, parts, timed = self._current
        arrived = [label for label, ready in parts if label not in self._seen and ready()]
        if arrived:
            w.repaint()  # once for all the panels that arrived since the last poll: one repaint shows them
            for label in arrived:
                self._seen[label] = time.perf_counter() - self._started
                if timed is None:
                    self.updates.append((f"{name} {label}", self._seen[label]))
        if done() and w.is_settled():
            w.repaint()
            elapsed = time.perf_counter() - self._started
            if timed is not None:
                self.timed.setdefault(timed, []).append({
                    "first panel": min(self._seen.values()), "every panel": max(self._seen.values()),
                    "every number": elapsed, "stall": self.heartbeat.recent,
                    "slow": self.heartbeat.slow, "cpu": time.process_time() - self._cpu_started[0],
                    "gui cpu": time.thread_time() - self._cpu_started[1]})
            else:
                (self.completions if parts else self.updates).append((name, elapsed))
            self._current = None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="3840x2160", help="WIDTHxHEIGHT of the generated test image")
    parser.add_argument("--image", help="use this image file instead of a generated one")
    parser.add_argument("--repeats", type=int, default=3,
                        help="repeats of the timed comparisons, scikit-image's SSIM and the launches")
    parser.add_argument("--timed-only", action="store_true",
                        help="only the repeated comparisons and scikit-image (quicker, for A/B runs)")
    parser.add_argument("--launch-only", action="store_true", help=argparse.SUPPRESS)  # one timed launch
    args = parser.parse_args()
    if args.launch_only:
        return launch_only(args.image)
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
        load_before = os.getloadavg()
        status = run(path, os.path.join(tmp, "settings.ini"), args.repeats, args.timed_only)
        compile_package()
        launches = [fresh_launch(path) for _ in range(args.repeats)]
        print(f"  launch -> first image, {len(launches)} fresh processes: {spread(launches)}"
              f"   target < 1.5 s")
        print(f"  load average (1 min) at the start {load_before[0]:.1f}, at the end {os.getloadavg()[0]:.1f}"
              f" ({os.cpu_count()} cores)")
        print(f"  processor: {cpu_description()}")
        return status


def spread(seconds: list[float]) -> str:
    """'min 1.23 s (+0.45 s over 3)': the minimum of the repeats and how far the slowest was above it."""
    if not seconds:
        return "n/a"
    return f"min {min(seconds):.2f} s (+{max(seconds) - min(seconds):.2f} s over {len(seconds)})"


def compile_package() -> None:
    """Write the package's bytecode (`__pycache__`, git-ignored), as `pip install` and a first launch do.

    Where PYTHONDONTWRITEBYTECODE is set (this machine sets it), nothing writes it, and every
    fresh process compiled the ~35 modules a launch imports from source: 0.6-0.9 s of its launch, which
    no user's launch after the first pays.
    """
    compileall.compile_dir(str(Path(pyramid_explorer.__file__).parent), quiet=1)


def fresh_launch(path: str) -> float:
    """Launch to first image of `path` in a new Python process (imports included), in seconds."""
    done = subprocess.run([sys.executable, __file__, "--launch-only", "--image", path],
                          capture_output=True, text=True, check=True)
    return float(done.stdout.split()[-1])


def launch_only(path: str) -> int:
    """Open `path` in the window as the application does (`launch.open_window`: the open is asked
    before the window is built) and print the seconds from launch to its first image on screen."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    leave_a_core_for_the_gui()
    with tempfile.TemporaryDirectory() as tmp:
        store = QSettings(os.path.join(tmp, "s.ini"), QSettings.Format.IniFormat)
        window = open_window(store, False, partial(Controller.open_path, path=path))
        window.show()
        source = window.tab("pyramid").source
        while source.layer is None:
            app.processEvents()
            time.sleep(0.001)
        window.repaint()
        print(f"{time.perf_counter() - T_LAUNCH:.3f}")
        window.controller.shutdown()
        window.close()
        window.deleteLater()
    return 0


def run(path: str, settings_path: str, repeats: int, timed_only: bool = False) -> int:
    from pyramid_explorer.app.main_window import MainWindow  # here: launch_only imports it as the app does

    app = QApplication.instance() or QApplication(sys.argv[:1])
    leave_a_core_for_the_gui()  # as the application does
    window = MainWindow(QSettings(settings_path, QSettings.Format.IniFormat), persist=False)
    heartbeat = Heartbeat()
    driver = Driver(window, heartbeat)
    c = window.controller
    window.show()
    c.open_path(path)
    app.processEvents()  # the window's first layout and paint belong to the launch, not to a stall
    heartbeat.start()
    driver.start()
    levels_holder: dict[str, int] = {}
    skimage_times: list[tuple[float, float]] = []  # (wall, CPU) seconds of each scikit-image SSIM

    def plan() -> None:
        """Planned once the pyramid exists (its depth decides the steps)."""
        n = c.pyramid.levels
        levels_holder["n"] = n
        pv = window.tab("pyramid")
        cv = partial(window.tab, "compare")  # looked up once a step has run: showing it builds it

        def parts(level):
            return [*((mode, _panel_at(lambda m=mode: cv().mode_panels[m], level)) for mode in MODES),
                    ("transposed conv", _panel_at(lambda: cv().deconv_panel, level))]

        def compared(level):
            return _compare_at(cv, level, c.pyramid)

        stepped = [] if timed_only else [*range(n), *range(n - 2, -1, -1)]
        for level in stepped:
            driver.add(f"pyramid level {level}", _setter(c.set_level, level), _pyramid_at(pv, level))
        driver.add("compare level 0 (tab switch)", _setter(window.show_view, "compare"), compared(0),
                   parts(0))
        for level in [] if timed_only else [*range(1, n - 1), 0]:
            driver.add(f"compare level {level}", _setter(c.set_level, level), compared(level),
                       parts(level))
        for k, s, kind in [] if timed_only else ((3, 2, "box"), (5, 2, "random"), (4, 3, "bilinear"),
                                                 (4, 2, "bilinear")):
            settings = DeconvSettings(k, s, kind)
            driver.add(f"transposed conv {k}/{s}/{kind}", _setter(c.set_deconv, settings),
                       _deconv_is(cv, settings), [("image", _deconv_drawn(cv, settings))])
        for _ in range(repeats):  # from an empty cache, alternating, so each is a new level's comparison
            for level in (1, 0) if n > 2 else (0,):
                driver.add(f"compare level {level} (timed)", _uncached(c, level), compared(level),
                           parts(level), timed=f"level {level}")
            # scikit-image right after each level 0, so the two see the same minutes of a shared machine
            driver.add_pause("scikit-image SSIM", partial(time_skimage_ssim, c.pyramid, skimage_times))

    start_steps = _once(plan)
    c.pyramid_changed.connect(start_steps)
    if c.pyramid is not None:  # a small image's pyramid may already be there
        start_steps()
    app.exec()
    heartbeat.stop()
    window.close()
    report(driver, heartbeat, window, levels_holder.get("n", 0))
    report_comparisons(driver, skimage_times)
    window.deleteLater()
    return 0


def _uncached(controller, level):
    """Empty the result cache, then select `level`: the comparison is computed anew."""
    def change() -> None:
        controller.cache.clear()
        controller.set_level(level)

    return change


def time_skimage_ssim(pyramid, times: list[tuple[float, float]]) -> None:
    """Append the wall and CPU seconds of scikit-image's SSIM (the core's definition) of G[0] against
    bilinear-upsampled G[1] to `times` (nothing without scikit-image)."""
    try:
        from skimage.metrics import structural_similarity
    except ImportError:
        return
    fine = pyramid.gaussian[0]
    candidate = cv2.resize(pyramid.gaussian[1], fine.shape[1::-1], interpolation=cv2.INTER_LINEAR)
    start, cpu_start = time.perf_counter(), time.process_time()
    structural_similarity(fine, candidate, channel_axis=2 if fine.ndim == 3 else None,
                          gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                          data_range=pyramid.data_range)
    times.append((time.perf_counter() - start, time.process_time() - cpu_start))


def report_comparisons(driver: Driver, skimage_times: list[tuple[float, float]]) -> None:
    """The repeated Compare timings (min and spread) against scikit-image's one SSIM, each timed right
    after a level-0 comparison: the ratio of the minima, and each comparison's against its own."""
    repeats = len(driver.timed.get("level 0", []))
    targets = {"first panel": "< 0.3 s", "every panel": "< 1 s", "every number": ""}
    print(f"  Compare from an empty cache, {repeats} repeats each (min, +spread):")
    for level, runs in sorted(driver.timed.items()):
        for what, target in targets.items():
            print(f"    {level}: {what:<13} {spread([r[what] for r in runs]):<30} {target}")
        print(f"    {level}: CPU time, whole process {spread([r['cpu'] for r in runs])}, "
              f"GUI thread {spread([r['gui cpu'] for r in runs])}")
        stall = 1000 * max(r["stall"] for r in runs)
        print(f"    {level}: longest GUI-thread stall while it ran {stall:.0f} ms   target < 50 ms")
        slow = [s for r in runs for s in r["slow"]]
        if slow:
            print(f"    {level}: {stall_causes(slow)}")
    reference = [wall for wall, _ in skimage_times]
    print(f"  scikit-image structural_similarity, one 4K pair, after each level 0: {spread(reference)}, "
          f"CPU {spread([cpu for _, cpu in skimage_times])}")
    level0 = [r["every number"] for r in driver.timed.get("level 0", [])]
    if reference and level0:
        paired = ", ".join(f"{ours / theirs:.2f}x" for ours, theirs in zip(level0, reference, strict=True))
        print(f"  level 0, every number / one scikit-image SSIM: {min(level0) / min(reference):.2f}x "
              f"(minima; each against its own: {paired})   target < 0.5x")


def stall_causes(slow: list[tuple[float, float, float]]) -> str:
    """What the stalls over SLOW_MS were made of: the longest, and all of them together (ms)."""
    def parts(stall: float, on_cpu: float, waiting: float) -> tuple[float, float, float, float]:
        blocked = max(0.0, stall + HEARTBEAT_MS / 1000 - on_cpu - waiting)  # the gap is stall + period
        return stall, on_cpu, waiting, blocked

    def text(stall: float, on_cpu: float, waiting: float, blocked: float) -> str:
        return (f"{1000 * stall:.0f} ms = on a CPU {1000 * on_cpu:.0f},"
                f" waiting for a CPU {1000 * waiting:.0f}, blocked (GIL) {1000 * blocked:.0f}")

    each = [parts(*s) for s in slow]
    together = tuple(sum(p[i] for p in each) for i in range(4))
    return f"stalls over {SLOW_MS} ms: {len(slow)}; longest {text(*max(each))}; together {text(*together)}"


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


def _panel_at(panel_of, level):
    def ready() -> bool:
        panel = panel_of()
        return panel.layer is not None and panel.layer.level == level

    return ready


def _compare_at(view_of, level, pyramid):
    """Every mode available at `level` shown with its numbers in the view `view_of()` (the coarsest
    levels are too small to max-pool, so unpool is not computed there)."""
    shape = pyramid.gaussian[level].shape
    available = [mode for mode in MODES if unavailable(mode, shape, level) is None]

    def done() -> bool:
        results = view_of().results
        return len(results) == len(available) and all(r.level == level and r.psnr is not None
                                                      for r in results.values())

    return done


def _deconv_is(view_of, settings):
    def done() -> bool:
        d = view_of().deconv_result
        return d is not None and d.settings == settings and (d.difference is None or d.psnr is not None)

    return done


def _deconv_drawn(view_of, settings):
    def ready() -> bool:
        view = view_of()
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
        ("longest GUI-thread stall (5 ms heartbeat)",
         f"{1000 * heartbeat.longest:.0f} ms ({heartbeat.longest_during})", "< 100 ms"),
        ("launch -> first image on screen (this run)",
         f"{driver.first_image:.2f} s (imports before the window's {IMPORT_SECONDS:.2f} s)", "< 1.5 s"),
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
