"""Python's cyclic garbage collector runs on the GUI thread only.

Left automatic, a collection starts on whichever thread happens to allocate, a job's worker thread
included; if the garbage holds Qt objects (a closed panel, a finished job's signals), they are then
deleted on that thread, which can deadlock it against the GUI thread (seen as a test that hangs with
no CPU use: the worker deleting Qt objects, the GUI thread waiting for a lock the worker holds).
pyqtgraph's `GarbageCollector` turns automatic collection off and collects from a timer of the GUI
thread instead, generation by generation with Python's own thresholds. Its `gc.disable()` is not
enough: a library may turn collection back on (dask's `disable_gc`, around every array slice, re-enables
it when it was on at dask's import: dask imported by the first open, which now runs before the window,
or by a test module), so generation 0's threshold is set to 0 as well, which stops automatic collection
whatever `gc.enable()` says. Reference counting, which frees almost everything (image arrays included),
is unaffected.
"""

from __future__ import annotations

import gc

from pyqtgraph.util.garbage_collector import GarbageCollector

_collector: GarbageCollector | None = None


def collect_on_gui_thread() -> None:
    """Start the GUI thread's collector (once per process; call it from the GUI thread)."""
    global _collector
    if _collector is None:
        # What exists before the first window (modules, classes, functions) is not garbage: frozen, it
        # stays out of every later full collection (measured 105 -> 40 ms with the Compare tab open).
        # No collection first: after the imports it finds 4 unreachable objects among ~80,000, and
        # took 0.3-0.8 s of the launch under load (frozen, those few stay).
        gc.freeze()
        # Every 0.1 s: each check's young generation is then a few thousand objects (at 0.5 s, 22,000 during
        # a 4K comparison, and one collection of them held the GUI thread for 7-50 ms).
        _collector = GarbageCollector(interval=0.1)  # keeps Python's thresholds for its own checks
        gc.set_threshold(0, *gc.get_threshold()[1:])
