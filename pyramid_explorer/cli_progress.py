"""The command line's progress: a bar on a terminal, a line every few seconds in a log, by files or bytes."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import TextIO

from pyramid_explorer.core.export import ExportProgress


def _size(count: float) -> str:
    """A byte count for people: 1.2 GB, 850 MB, 12 kB."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{int(count)} B"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def plural(count: int, noun: str) -> str:
    """ "1 file", "2 files"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


class ProgressBar:
    """Progress on a stream (nothing when disabled): on a terminal a one-line bar redrawn in place with
    \\r, otherwise (logs, CI) a plain line every `interval` seconds, and the last one once some were
    printed, so a short export stays silent. It counts files, or bytes with the rate so far and an ETA
    when the export reports bytes (the images beyond memory)."""

    def __init__(self, stream: TextIO, enabled: bool, terminal: bool, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.stream, self.enabled, self.terminal = stream, enabled, terminal
        self.interval, self.clock = interval, clock
        self.label = ""
        self.started = self.shown = clock()
        self.printed = False

    def start(self, label: str) -> None:
        self.label = label
        self.started = self.shown = self.clock()
        self.printed = False

    def line(self, step: ExportProgress) -> str:
        filled = 20 * step.done // max(step.total, 1)
        bar = f"[{'#' * filled}{'.' * (20 - filled)}]"
        elapsed = self.clock() - self.started
        eta = ""
        if 0 < step.done < step.total and elapsed > 0:
            eta = f" ETA {_duration(elapsed * (step.total - step.done) / step.done)}"
        if step.unit == "bytes":
            rate = f", {_size(step.done / elapsed)}/s" if elapsed > 0 else ""
            return (f"{self.label} {bar} {100 * step.done // max(step.total, 1)}% {_size(step.done)} of "
                    f"{_size(step.total)}{rate}{eta}")
        name = step.path.name if step.path is not None else ""
        return f"{self.label} {bar} {step.done}/{step.total} {name}{eta}"

    def update(self, step: ExportProgress) -> None:
        if not self.enabled:
            return
        if self.terminal:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + self.line(step)[: width - 1].ljust(width - 1))
        else:
            now = self.clock()
            last = step.done >= step.total and self.printed
            if now - self.shown < self.interval and not last:
                return
            self.shown, self.printed = now, True
            self.stream.write(self.line(step) + "\n")
        self.stream.flush()

    def clear(self) -> None:
        if self.enabled and self.terminal:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write("\r" + " " * (width - 1) + "\r")
            self.stream.flush()
