"""Worker threads running job generators, with cooperative cancel and stale-result dropping.

A job is a generator function from `pyramid_explorer.jobs` and its frozen request. The worker runs
it on a private single-thread `QThreadPool` (one shared by most channels, in submission order, and
one of their own for the channels named `own_threads`, such as exports, so a long export never
holds up the views) and checks an abort flag between two `yield`s; every
yielded item travels to the GUI thread by a queued signal that carries the job's generation, and
`JobRunner` hands it on only while that generation is still the current one of its channel. A new
job on a channel supersedes the old one: the old one is told to stop and whatever it still sends is
dropped. A job's `Progress` items travel one at a time (a newer one is held while the last waits in the
GUI's queue), so a job reporting progress in a tight loop cannot flood the GUI thread. Every job's thread
(and the threads it starts) runs nicer than the GUI thread (`run_in_background`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any

import cv2
import shiboken6
from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal, SignalInstance

from pyramid_explorer.jobs import Progress

JobFunction = Callable[[Any], Iterator[object]]  # each job takes its own request type
log = logging.getLogger(__name__)
BACKGROUND_NICENESS = 10
"""How much nicer than the GUI thread the worker threads run (Linux): 10 gives them about a tenth of its
share of a contended core, so the GUI thread no longer waits for a core its workers hold."""


def run_in_background() -> None:
    """Make the calling thread (and the threads it starts, which inherit it) yield the CPU to the GUI thread.

    Linux gives every thread a nice value of its own; the comparison's threads keep both cores busy, and at
    equal priority the woken GUI thread waited up to 35 ms for one of them to be descheduled. Elsewhere
    (priorities are per process there) and when the thread is already that nice, nothing changes.
    """
    if sys.platform != "linux":
        return
    thread = threading.get_native_id()
    wanted = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + BACKGROUND_NICENESS)
    if os.getpriority(os.PRIO_PROCESS, thread) < wanted:
        os.setpriority(os.PRIO_PROCESS, thread, wanted)


class WorkerSignals(QObject):
    """Signals of one job; a QObject of its own because a QRunnable cannot emit."""

    yielded = Signal(int, object)  # generation, item
    errored = Signal(int, str)  # generation, one-line message
    finished = Signal(int)  # generation


class GeneratorWorker(QRunnable):
    """Runs `fn(request)` to the end or until aborted, emitting each item."""

    def __init__(self, fn: JobFunction, request: object, generation: int) -> None:
        super().__init__()
        self.signals = WorkerSignals()
        self._fn = fn
        self._request = request
        self._generation = generation
        self._abort = threading.Event()
        self._progress_landed = threading.Event()  # no Progress of this job waits in the GUI's queue
        self._progress_landed.set()

    def abort(self) -> None:
        """Ask the job to stop at its next step (thread-safe)."""
        self._abort.set()

    def progress_landed(self) -> None:
        """The GUI thread took the Progress sent last: the next one may be sent (thread-safe)."""
        self._progress_landed.set()

    def run(self) -> None:
        gen = self._generation
        try:
            run_in_background()
            if self._abort.is_set():
                return
            items = self._fn(self._request)
            held: Progress | None = None  # the newest Progress not sent while another was on its way
            try:
                for item in items:
                    if self._abort.is_set() or _program_ending():
                        break
                    if isinstance(item, Progress):
                        held = None if self._send_progress(item) else item
                        continue
                    if held is not None:  # the status says how far the job got before its result
                        self._send_progress(held, force=True)
                        held = None
                    self._emit(self.signals.yielded, gen, item)
                    if self._abort.is_set():
                        break
            finally:
                if isinstance(items, Generator):  # stop the job where it is, running its cleanup
                    items.close()
        except Exception as exc:  # every failure reaches the window, never only a console
            if _program_ending():  # a failure of Python's shutdown (no new threads), with no one to tell
                return
            if not _expected(exc):  # a bug or a resource failure: keep its traceback in the log
                log.error("job %s failed", getattr(self._fn, "__name__", self._fn), exc_info=exc)
            self._emit(self.signals.errored, gen, _one_line(exc))
        finally:
            self._emit(self.signals.finished, gen)

    def _emit(self, signal: SignalInstance, *args: object) -> None:
        """Emit `signal` (one of `self.signals`); if that object is gone (a script that ends without
        closing its window: Qt's objects are deleted while the job still runs), stop the job quietly
        instead, as there is no one to tell."""
        try:
            signal.emit(*args)
        except RuntimeError:
            if shiboken6.isValid(self.signals):
                raise
            self._abort.set()

    def _send_progress(self, item: Progress, *, force: bool = False) -> bool:
        """Emit `item` unless an earlier Progress still waits in the GUI's queue (then False).

        A job may report progress far faster than the GUI thread can take it (a tight loop of
        `yield Progress(...)`); unthrottled, the queued signals grow without bound and starve the
        GUI's timers and painting. With one Progress on its way at a time the queue stays short.
        """
        if not force and not self._progress_landed.is_set():
            return False
        self._progress_landed.clear()
        self._emit(self.signals.yielded, self._generation, item)
        return True


def _program_ending() -> bool:
    """Python is shutting down (its main thread has ended: a script that did not close its window)."""
    return not threading.main_thread().is_alive()


def _expected(exc: BaseException) -> bool:
    """The project's own errors, bad input and OS errors: their message says what and where."""
    return type(exc).__module__.startswith("pyramid_explorer") or isinstance(exc, ValueError | OSError)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, MemoryError):
        return f"out of memory{': ' + text if text else ''}"
    if isinstance(exc, cv2.error) and exc.err:  # cv2.error's text names C++ files
        return f"OpenCV error in {exc.func}: {exc.err}"
    if _expected(exc):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@dataclass
class _Job:
    channel: str
    worker: GeneratorWorker
    on_item: Callable[[object], None]
    on_error: Callable[[str], None]


class JobRunner(QObject):
    """Schedules jobs on worker threads; a channel holds at most one current job.

    Channels share one worker thread, so their jobs run one after another in submission order,
    except those in `own_threads`, which each get a thread of their own and run alongside.

    `progress` reports the current job's `Progress` items; `busy_changed` tells when the runner
    starts or stops having unfinished jobs (including superseded ones still winding down).
    """

    progress = Signal(str, int, int)  # text, done, total
    busy_changed = Signal(bool)
    job_failed = Signal(str, str)  # channel, message

    def __init__(self, parent: QObject | None = None, own_threads: tuple[str, ...] = ()) -> None:
        super().__init__(parent)
        self._shared = self._single_thread_pool()
        self._own = {channel: self._single_thread_pool() for channel in own_threads}
        self._generation = 0
        self._jobs: dict[int, _Job] = {}  # every job not yet finished, by generation
        self._current: dict[str, int] = {}  # channel -> its current generation

    def submit(self, channel: str, fn: JobFunction, request: object,
               on_item: Callable[[object], None], on_error: Callable[[str], None]) -> int:
        """Start `fn(request)`, superseding the channel's current job; returns the generation.

        `on_item`/`on_error` are called on the GUI thread for items of this job while it is current.
        """
        self.cancel(channel)
        self._generation += 1
        gen = self._generation
        worker = GeneratorWorker(fn, request, gen)
        worker.signals.yielded.connect(self._on_yielded)
        worker.signals.errored.connect(self._on_errored)
        worker.signals.finished.connect(self._on_finished)
        was_busy = self.busy
        self._jobs[gen] = _Job(channel, worker, on_item, on_error)
        self._current[channel] = gen
        self._own.get(channel, self._shared).start(worker)
        if not was_busy:
            self.busy_changed.emit(True)
        return gen

    def cancel(self, channel: str | None = None) -> None:
        """Stop the channel's current job (all jobs when None); its late results are dropped."""
        channels = list(self._current) if channel is None else [channel]
        for ch in channels:
            gen = self._current.pop(ch, None)
            if gen is not None and gen in self._jobs:
                self._jobs[gen].worker.abort()

    def is_current(self, channel: str) -> bool:
        """True while the channel has a job that has not finished."""
        return channel in self._current

    @property
    def busy(self) -> bool:
        return bool(self._jobs)

    def shutdown(self, timeout_ms: int = 30_000) -> bool:
        """Cancel everything and wait for every worker thread to be idle; False on timeout."""
        self.cancel()
        for job in self._jobs.values():
            job.worker.abort()
        finished = [pool.waitForDone(timeout_ms) for pool in self._pools()]  # every pool, no short cut
        return all(finished)

    def active_threads(self) -> int:
        """Worker threads running a job now, over every pool."""
        return sum(pool.activeThreadCount() for pool in self._pools())

    def _single_thread_pool(self) -> QThreadPool:
        pool = QThreadPool(self)
        pool.setMaxThreadCount(1)
        return pool

    def _pools(self) -> list[QThreadPool]:
        return [self._shared, *self._own.values()]

    def _current_job(self, gen: int) -> _Job | None:
        job = self._jobs.get(gen)
        if job is None or self._current.get(job.channel) != gen:
            return None
        return job

    def _on_yielded(self, gen: int, item: object) -> None:
        if isinstance(item, Progress) and gen in self._jobs:
            self._jobs[gen].worker.progress_landed()
        job = self._current_job(gen)
        if job is None:
            return
        if isinstance(item, Progress):
            self.progress.emit(item.text, item.done, item.total)
        else:
            job.on_item(item)

    def _on_errored(self, gen: int, message: str) -> None:
        job = self._current_job(gen)
        if job is not None:
            self.job_failed.emit(job.channel, message)
            job.on_error(message)

    def _on_finished(self, gen: int) -> None:
        job = self._jobs.pop(gen, None)
        if job is not None and self._current.get(job.channel) == gen:
            del self._current[job.channel]
        if job is not None:
            signals = job.worker.signals
            for signal in (signals.yielded, signals.errored, signals.finished):
                signal.disconnect()
        if not self._jobs:
            self.busy_changed.emit(False)
