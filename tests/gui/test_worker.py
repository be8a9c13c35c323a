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
import shiboken6
from PySide6.QtCore import Qt

from pyramid_explorer.app import worker as worker_module
from pyramid_explorer.app.worker import BACKGROUND_NICENESS, GeneratorWorker, JobRunner
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


def _run_in_a_thread(worker: GeneratorWorker) -> None:
    """`worker.run()` on a thread of its own (it makes its thread nicer), re-raising what escaped it."""
    escaped: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as exc:  # handed to the test
            escaped.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and escaped == []


def test_a_job_whose_window_is_gone_stops_quietly(caplog, capfd):
    """A script that ends without closing its window deletes Qt's objects while a job runs: the job stops
    at its next item, with no traceback ("Signal source has been deleted") and nothing logged."""
    made: list[int] = []
    closed = threading.Event()

    def job(_request):
        try:
            for n in range(100):
                made.append(n)
                yield n
        finally:
            closed.set()

    worker = GeneratorWorker(job, None, 1)
    shiboken6.delete(worker.signals)
    _run_in_a_thread(worker)
    assert made == [0] and closed.is_set()
    assert caplog.records == [] and "Traceback" not in capfd.readouterr().err


def test_a_job_failing_as_python_shuts_down_is_not_reported(caplog, monkeypatch):
    """Once the main thread has ended, a job's failure is the shutdown's (no new threads, say): nothing is
    logged or sent."""
    monkeypatch.setattr(worker_module, "_program_ending", lambda: True)
    sent: list[object] = []

    def job(_request):
        raise RuntimeError("cannot schedule new futures after interpreter shutdown")
        yield  # a generator

    worker = GeneratorWorker(job, None, 1)
    worker.signals.errored.connect(lambda *args: sent.append(args), Qt.ConnectionType.DirectConnection)
    _run_in_a_thread(worker)
    assert sent == [] and caplog.records == []
