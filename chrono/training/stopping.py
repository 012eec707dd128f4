"""Stopping a training run cleanly when the machine asks: SIGTERM, SIGUSR1/SIGUSR2 (schedulers) and Ctrl-C.

SLURM and other schedulers send SIGTERM (and, with ``--signal``, SIGUSR1 or SIGUSR2) some time before they
kill a job. Inside :class:`GracefulStop` such a signal only raises a flag: the training loop finishes the
step it is in, writes ``last.ckpt``, and raises :class:`Stopped`; the command then marks the MLflow run
KILLED, prints how to resume and exits with 128 + the signal's number (143 for SIGTERM, 130 for Ctrl-C).
A second Ctrl-C interrupts at once.

Under the SLURM launcher (hydra-submitit-launcher), submitit has installed its own handler for its
preemption signal; :meth:`GracefulStop.hand_over` calls it after the checkpoint is written, so submitit's
checkpoint/requeue protocol requeues the job, which continues with ``resume=auto``.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGUSR1", "SIGUSR2")
                     if hasattr(signal, name))


class Stopped(KeyboardInterrupt):
    """Training stopped on a signal after writing its checkpoint (a KeyboardInterrupt: every ``finally`` and
    MLflow run context treats it as an interruption, not a failure)."""

    def __init__(self, signum: int, step: int, checkpoint: Any):
        super().__init__(f"stopped by {signal.Signals(signum).name} at step {step}")
        self.signum, self.step, self.checkpoint = signum, step, checkpoint

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class GracefulStop:
    """Within ``with GracefulStop() as stop:``, :attr:`signum` is the first stop signal received (None
    before); the previous handlers come back on exit. Installs nothing outside the main thread."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS):
        self.signals = signals
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def _handle(self, signum: int, frame) -> None:
        if signum == signal.SIGINT and self.signum == signal.SIGINT:
            raise KeyboardInterrupt  # Ctrl-C twice: stop now
        if self.signum is None:
            self.signum = signum

    def __enter__(self) -> "GracefulStop":
        import threading

        if threading.current_thread() is threading.main_thread():
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous = {}

    def hand_over(self) -> None:
        """Give the signal received to the handler that was there before (e.g. submitit's requeue), if that
        handler is a Python function; the defaults (terminate, ignore) are left to :class:`Stopped`."""
        previous: Callable | Any = self._previous.get(self.signum) if self.signum is not None else None
        if callable(previous) and previous not in (signal.default_int_handler,):
            previous(self.signum, None)
