"""Progress of long jobs: one line per interval (step, loss, lr, clips/s, ETA), a bar on a terminal."""

from __future__ import annotations

import sys
import time


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class ProgressMeter:
    """Rate and ETA over the steps of one run (steps done before a resume are not timed)."""

    def __init__(self, total_steps: int, start_step: int, stream=sys.stderr):
        self.total = total_steps
        self.start_step = start_step
        self.start = time.perf_counter()
        self.stream = stream
        self.tty = stream.isatty()
        self._last_step, self._last_time = start_step, self.start

    def interval_rate(self, step: int) -> float:
        """Steps per second since the previous call."""
        now = time.perf_counter()
        rate = (step - self._last_step) / max(now - self._last_time, 1e-9)
        self._last_step, self._last_time = step, now
        return rate

    def eta(self, step: int) -> float:
        done = step - self.start_step
        elapsed = time.perf_counter() - self.start
        return elapsed / done * (self.total - step) if done > 0 else float("nan")

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def line(self, step: int, text: str) -> None:
        """Print ``text`` for ``step``; on a terminal, prefixed by a bar."""
        eta = self.eta(step)
        eta_text = "?" if eta != eta else format_duration(eta)
        head = f"step {step}/{self.total}"
        if self.tty:
            filled = int(30 * step / max(self.total, 1))
            head = f"[{'#' * filled}{'.' * (30 - filled)}] {head}"
        print(f"{head} {text} eta {eta_text} elapsed {format_duration(self.elapsed())}", file=self.stream, flush=True)
