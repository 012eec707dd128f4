"""The one progress printer of the suite: lines on stderr with a count, a rate and an ETA.

Every long job (training steps, videos of a benchmark, windows of a video, clips being generated or
converted, benchmark cases) reports through a :class:`Progress`::

    [train] step 40/5000 loss 0.41 lr 5.0e-04 | 2.61 step/s, eta 31:40, elapsed 00:15
    [davis/first] video 3/30 bear: AJ 61.2 | 0.84 video/s, eta 00:32, elapsed 00:04
    [chrono.track] window 2/5 (frames 32-79) | 1.90 window/s, eta 00:02, elapsed 00:01

``progress=false`` (every command has it) makes it silent; free-form notes (``progress.say(...)``) go
through the same switch. On a terminal the count gets a bar.
"""

from __future__ import annotations

import sys
import time
from typing import Callable, TextIO


def format_duration(seconds: float) -> str:
    """``H:MM:SS`` (or ``MM:SS`` under an hour); ``?`` when unknown (NaN)."""
    if seconds != seconds:
        return "?"
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class Progress:
    """Counted progress of one job: ``update(done, text)`` prints the count, the rate since the previous
    line and the ETA from the average rate since ``start``.

    Args:
      label: printed in brackets at the start of every line (e.g. ``train``, ``davis/first``).
      total: units of the whole job (None: unknown, no ETA).
      unit: what is counted (``step``, ``video``, ``clip``, ``window``).
      start: units already done before this process began (a resumed run): not timed.
      enabled: False silences every line.
      stream: where lines go (stderr).
      min_interval: seconds between two lines of :meth:`update` (the last unit always prints).
    """

    def __init__(self, label: str, total: int | None = None, unit: str = "", start: int = 0,
                 enabled: bool = True, stream: TextIO | None = None, min_interval: float = 0.0):
        self.label, self.total, self.unit, self.start_count = label, total, unit, start
        self.min_interval, self._last_line = min_interval, float("-inf")
        self.enabled = bool(enabled)
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.t0 = time.perf_counter()
        self._last_done, self._last_time = start, self.t0

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def eta(self, done: int) -> float:
        """Seconds left at the average rate since the start; NaN before the first unit or without a total."""
        counted = done - self.start_count
        if self.total is None or counted <= 0:
            return float("nan")
        return self.elapsed() / counted * (self.total - done)

    def interval_rate(self, done: int) -> float:
        """Units per second since the previous call (or the start)."""
        now = time.perf_counter()
        rate = (done - self._last_done) / max(now - self._last_time, 1e-9)
        self._last_done, self._last_time = done, now
        return rate

    def update(self, done: int, text: str = "") -> float:
        """Print one line for ``done`` units (with ``text``); the interval rate in units per second."""
        now = time.perf_counter()
        if now - self._last_line < self.min_interval and done != self.total:
            return (done - self._last_done) / max(now - self._last_time, 1e-9)
        self._last_line = now
        rate = self.interval_rate(done)
        if self.enabled:
            count = f"{done}/{self.total}" if self.total is not None else str(done)
            head = f"{self.unit} {count}".strip()
            if self.tty and self.total:
                filled = int(20 * min(done / self.total, 1.0))
                head = f"[{'#' * filled}{'.' * (20 - filled)}] {head}"
            unit = self.unit or "unit"
            tail = (f"{rate:.2f} {unit}/s, eta {format_duration(self.eta(done))}, "
                    f"elapsed {format_duration(self.elapsed())}")
            self._print(f"[{self.label}] {head}{' ' + text if text else ''} | {tail}")
        return rate

    def say(self, message: str) -> None:
        """A free-form note: ``[label  12.3s] message``."""
        if self.enabled:
            self._print(f"[{self.label} {self.elapsed():6.1f}s] {message}")

    __call__ = say  # a Progress is also a plain ``message -> None`` callback

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)


def quiet(message: str) -> None:
    """A ``message -> None`` callback that prints nothing."""


def as_callback(progress: bool | Callable[[str], None] | None, label: str) -> Callable[[str], None]:
    """``True`` -> a :class:`Progress` labelled ``label``; ``False``/None -> silent; a callable as it is."""
    if callable(progress):
        return progress
    return Progress(label, enabled=bool(progress))
