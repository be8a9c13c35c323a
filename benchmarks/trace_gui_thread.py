"""Where the GUI thread's time goes while `bench_gui.py` runs: its callbacks timed, wall clock and CPU.

Wraps the GUI-thread entry points of a delivered result (the job runner's item, the render queue's
turn, a panel's layer and paint, the title), pyqtgraph's image paint and garbage-collector check, and
the bench's own poll and window repaints; times the garbage collections by generation and counts what
each freed. Prints, for what ran after the first timed comparison began, each callback's calls and its
CPU time (total, mean, max) against its wall-clock time: a callback whose wall time far exceeds its CPU
time waited (for a core or the GIL), one with much CPU is work to cut.

Run from the project root:  python benchmarks/trace_gui_thread.py [bench_gui.py arguments]
A diagnostic, not a benchmark of record: the wrappers add a few microseconds per call.
"""

from __future__ import annotations

import collections
import functools
import gc
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gui  # first: it sets up the path and the offscreen platform
import pyqtgraph as pg
from pyqtgraph.util.garbage_collector import GarbageCollector

from pyramid_explorer.app import caption, image_panel, panel_drawing, render_queue, worker
from pyramid_explorer.app.main_window import MainWindow

CALLS: list[tuple[str, float, float, float]] = []  # name, start, wall seconds, CPU seconds
COLLECTIONS: list[tuple[int, float, float, int]] = []  # generation, start, wall seconds, objects freed
TIMED_START: list[float] = []  # when the first timed comparison began


def timed(cls: type, name: str) -> None:
    """Replace `cls.name` by a wrapper that records each call made on the GUI thread."""
    method = getattr(cls, name)
    label = f"{cls.__name__}.{name}"

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if threading.current_thread() is not threading.main_thread():
            return method(*args, **kwargs)
        start, cpu = time.perf_counter(), time.thread_time()
        try:
            return method(*args, **kwargs)
        finally:
            CALLS.append((label, start, time.perf_counter() - start, time.thread_time() - cpu))

    setattr(cls, name, wrapper)


_COLLECTION_START: list[float] = []


def on_collection(phase: str, info: dict) -> None:
    now = time.perf_counter()
    if phase == "start":
        _COLLECTION_START[:] = [now]
    elif _COLLECTION_START:
        began = _COLLECTION_START.pop()
        COLLECTIONS.append((info["generation"], began, now - began, info["collected"]))


def mark_timed_start(add):
    """Wrap `Driver.add` so the first timed step records when it began."""
    def wrapped(self, name, change, done, parts=(), timed=None):
        def change_and_mark() -> None:
            if not TIMED_START:
                TIMED_START.append(time.perf_counter())
            change()

        add(self, name, change_and_mark if timed else change, done, parts, timed)

    return wrapped


def report() -> None:
    start = TIMED_START[0] if TIMED_START else 0.0
    by_name: dict[str, list[tuple[float, float]]] = collections.defaultdict(list)
    for name, began, wall, cpu in CALLS:
        if began >= start:
            by_name[name].append((wall, cpu))
    print("GUI-thread callbacks during the timed comparisons (ms): calls, CPU total/mean/max, wall total/max")
    for name, runs in sorted(by_name.items(), key=lambda item: -sum(c for _, c in item[1])):
        cpu = [1000 * c for _, c in runs]
        wall = [1000 * w for w, _ in runs]
        print(f"  {name:<34} {len(runs):>6}  {sum(cpu):8.0f} {sum(cpu) / len(cpu):6.2f} {max(cpu):6.1f}"
              f"  {sum(wall):8.0f} {max(wall):6.1f}")
    timed_collections = [c for c in COLLECTIONS if c[1] >= start]
    for generation in sorted({c[0] for c in timed_collections}):
        runs = [c for c in timed_collections if c[0] == generation]
        longest = max(runs, key=lambda c: c[2])
        total = 1000 * sum(c[2] for c in runs)
        print(f"  garbage collections of generation {generation}: {len(runs)}, {total:.0f} ms in all,"
              f" longest {1000 * longest[2]:.1f} ms (freed {longest[3]} objects)")


def main() -> int:
    for cls, name in ((worker.JobRunner, "_on_yielded"), (render_queue.RenderQueue, "_on_timeout"),
                      (render_queue.RenderQueue, "show"), (image_panel.ImagePanel, "show_layer"),
                      (image_panel.ImagePanel, "paint_now"), (image_panel.ImagePanel, "mark_stale"),
                      (panel_drawing.ReducedDrawing, "_on_reduction_done"), (caption.Caption, "_relayout"),
                      (pg.ImageItem, "paint"), (GarbageCollector, "check"), (bench_gui.Driver, "_on_poll"),
                      (MainWindow, "repaint")):
        timed(cls, name)
    bench_gui.Driver.add = mark_timed_start(bench_gui.Driver.add)
    gc.callbacks.append(on_collection)
    try:
        return bench_gui.main()
    finally:
        report()


if __name__ == "__main__":
    sys.exit(main())
