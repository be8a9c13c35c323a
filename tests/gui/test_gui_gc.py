"""Garbage in reference cycles is collected on the GUI thread, never on a job's worker thread."""

from __future__ import annotations

import gc
import threading

import pytest


@pytest.mark.parametrize("re_enabled", [False, True], ids=["gc off", "gc turned on again by a library"])
def test_cycles_made_on_a_worker_thread_are_collected_on_the_gui_thread(qtbot, window, re_enabled):
    assert gc.get_threshold()[0] == 0  # automatic collection would start on whichever thread allocates
    if re_enabled:  # as dask's disable_gc does after every slice when gc was on at dask's import
        gc.enable()
    collected_on: list[str] = []

    class Cycle:
        def __init__(self) -> None:
            self.me = self

        def __del__(self) -> None:
            collected_on.append(threading.current_thread().name)

    def make_garbage() -> None:
        for _ in range(3000):  # far past generation 0's threshold: automatic gc would collect here
            Cycle()

    worker = threading.Thread(target=make_garbage, name="worker")
    worker.start()
    worker.join()
    assert collected_on == []
    qtbot.waitUntil(lambda: len(collected_on) == 3000, timeout=10000)
    assert set(collected_on) == {threading.main_thread().name}
    gc.disable()
