"""JobRunner without a window: a job reporting progress faster than the GUI thread takes it cannot
flood the GUI's event queue (the cause of the Esc test's hang), and its results all arrive in order; jobs
and the threads they start run nicer than the GUI thread."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from pyramid_explorer.app.worker import BACKGROUND_NICENESS, JobRunner
from pyramid_explorer.jobs import Progress


@pytest.fixture
def runner():
    jobs = JobRunner()
    yield jobs
    assert jobs.shutdown()


def test_progress_in_a_tight_loop_sends_one_at_a_time_and_the_last_before_a_result(qtbot, runner):
    texts: list[str] = []
    items: list[object] = []
    runner.progress.connect(lambda text, _done, _total: texts.append(text))
    ended = threading.Event()

    def job(_request):
        for n in range(20_000):
            yield Progress(n, 20_000, f"step {n}")
        yield "first"
        yield Progress(0, 1, "after")
        yield "second"
        ended.set()

    runner.submit("view", job, None, items.append, pytest.fail)
    assert ended.wait(30)  # the GUI thread took nothing while the job ran
    qtbot.waitUntil(lambda: not runner.busy)
    # one Progress was on its way when the loop began; of the others only the newest is sent, just
    # before the result it precedes; nothing landed before "after", so it is held and sent the same way
    assert texts == ["step 0", "step 19999", "after"]
    assert items == ["first", "second"]


def test_progress_flows_again_once_the_gui_took_the_last_one(qtbot, runner):
    texts: list[str] = []
    runner.progress.connect(lambda text, _done, _total: texts.append(text))

    def job(_request):
        for n in range(3):
            yield Progress(n, 3, f"step {n}")
            while len(texts) <= n:  # a slow step: the GUI thread takes the Progress meanwhile
                time.sleep(0.01)

    runner.submit("view", job, None, pytest.fail, pytest.fail)
    qtbot.waitUntil(lambda: not runner.busy, timeout=20_000)
    assert texts == ["step 0", "step 1", "step 2"]


def _niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread nice values are Linux's")
def test_a_job_and_the_threads_it_starts_run_nicer_than_the_gui_thread(qtbot, runner):
    gui = _niceness()
    seen: list[int] = []

    def job(_request):
        seen.append(_niceness())
        with ThreadPoolExecutor(1) as pool:  # as parallel_steps starts its threads
            seen.append(pool.submit(_niceness).result())
        yield "done"

    items: list[object] = []
    runner.submit("view", job, None, items.append, pytest.fail)
    qtbot.waitUntil(lambda: not runner.busy)
    wanted = min(19, gui + BACKGROUND_NICENESS)
    assert items == ["done"] and seen == [wanted, wanted]
    assert _niceness() == gui  # the GUI thread itself is untouched
