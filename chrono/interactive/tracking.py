"""One press of Track: ``chrono.track``'s own job on the page's points, reusing window features.

The page writes its points as ``queries.csv`` (``t,x,y`` rows in the file's frame numbers and pixels: the
file ``python -m chrono.track queries=`` takes) and runs :func:`chrono.inference.job.track` on that file,
the opened video and the loaded tracker, so ``tracks.npz``, ``tracks.csv``, ``overlay.mp4`` and
``summary.png`` are exactly the command's. A :class:`chrono.inference.windowed.FeatureStore` shared by the
page keeps every window's features: pressing Track again after adding or removing points computes no
window twice (the store's ``computed`` / ``reused`` counters say so).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from chrono.coords import rescale_tyx, rescale_xy
from chrono.inference.job import track
from chrono.inference.queries import write_query_csv
from chrono.inference.windowed import FeatureStore
from chrono.interactive.settings import AppSettings
from chrono.progress import Progress, format_duration
from chrono.video_io import FrameSource

_RUN_NUMBER = itertools.count()


def file_queries(queries: np.ndarray, source: FrameSource) -> np.ndarray:
    """Queries [N, 3] (t, y, x) of the page (frame index among the opened frames, decoded pixels) -> the
    file's frame numbers and pixels (the inverse of :func:`chrono.inference.queries.to_selection`)."""
    out = rescale_tyx(np.asarray(queries, np.float32), source.hw, source.original_hw)
    out[:, 0] = source.frame_ids[np.round(queries[:, 0]).astype(np.int64)]
    return out


@dataclass
class TrackResult:
    """The outcome of one Track press.

    ``tracks`` [N, T, 2] (x, y) and ``queries`` [N, 3] (t, y, x) in decoded pixels of ``source`` (t the
    frame index), ``occluded`` [N, T] bool; ``files``: npz, csv, summary, overlay, queries (paths);
    ``frame_ids`` [T] the file's frame numbers; ``computed`` / ``reused``: window passes through the
    backbone and windows served from the feature store during this run.
    """

    source: FrameSource
    tracks: np.ndarray
    occluded: np.ndarray
    queries: np.ndarray
    frame_ids: np.ndarray
    files: dict[str, Path]
    seconds: float
    computed: int
    reused: int

    def describe(self) -> str:
        N, T = self.occluded.shape
        return (f"Tracked {N} point{'s' * (N != 1)} over {T} frames in {self.seconds:.1f} s "
                f"(window features: {self.computed} computed, {self.reused} reused).")


class WindowProgress:
    """Counts window passes for a progress bar: ``report(fraction, text)`` gets ``windows k/n, ETA ...``
    and the suite's own line for the step (``tracking: window 3/6 (frames ...)``)."""

    def __init__(self, report: Callable[[float, str], None]):
        self.report, self.last = report, ""
        self.meter = Progress("chrono.app", unit="window", enabled=False)  # timed from here: the ETA's rate

    def say(self, message: str) -> None:
        self.last = message
        if message.startswith("overlay"):
            self.report(1.0, f"writing overlay.mp4: {message}")

    def on_window(self, done: int, total: int) -> None:
        self.meter.total = total
        eta = format_duration(self.meter.eta(done))
        self.report(done / total, f"windows {done}/{total}, ETA {eta} | {self.last}")


def run_track(source: FrameSource, queries: np.ndarray, tracker, store: FeatureStore, settings: AppSettings,
              report: Callable[[float, str], None] = lambda fraction, text: None) -> TrackResult:
    """Track ``queries`` [N, 3] (t, y, x; the page's frame indices and decoded pixels) through ``source`` and
    write the files into a new folder ``settings.out/<time>-<n>/`` (``queries.csv`` beside chrono.track's)."""
    out = Path(settings.out) / f"{time.strftime('%Y-%m-%d_%H-%M-%S')}-{next(_RUN_NUMBER)}"
    csv = write_query_csv(out / "queries.csv", file_queries(queries, source))
    progress = WindowProgress(report)
    before = store.computed, store.reused
    t0 = time.perf_counter()
    files = track(source, tracker, queries=csv, out=out, window=settings.window, overlap=settings.overlap,
                  resolution=settings.resolution, trail=settings.trail, progress=progress.say,
                  feature_store=store, on_window=progress.on_window)
    seconds = time.perf_counter() - t0
    with np.load(files["npz"]) as npz:
        tracks = rescale_xy(npz["tracks"], source.original_hw, source.hw)
        occluded, q_file = npz["occluded"], npz["query_points"]
    q = rescale_tyx(q_file, source.original_hw, source.hw)
    q[:, 0] = np.searchsorted(source.frame_ids, np.round(q_file[:, 0]))
    return TrackResult(source, tracks, occluded, q, source.frame_ids.copy(), dict(files, queries=csv), seconds,
                       store.computed - before[0], store.reused - before[1])
