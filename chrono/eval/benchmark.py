"""The benchmark loop: a tracker over every video of a TAP-Vid benchmark, metrics per video and their means.

Used by ``python -m chrono.evaluate`` and by training (validation, the final table). Videos are read one at
a time and evaluated at the benchmark's resolution (256 x 256) with the reference protocol (queries
``first`` or ``strided``; :mod:`chrono.metrics`). Under torchrun the videos are split across ranks and
every rank gets the whole result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch

from chrono import dist
from chrono.errors import ConfigError
from chrono.eval.predictions import write_queries
from chrono.eval.tapvid import EVAL_RESOLUTION, Queries, decode_entry, iter_entries, sample_queries
from chrono.files import file_lock, write_json_atomic, write_text_atomic
from chrono.interfaces import VideoAware
from chrono.metrics import METRIC_NAMES, TABLE_LABELS, benchmark_means, compute_tapvid_metrics
from chrono.precision import autocast
from chrono.progress import Progress
from chrono.results import table_csv


@dataclass
class BenchmarkResult:
    """Metrics of one benchmark in one query mode: ``rows`` per video (in benchmark order), ``means`` over them."""

    benchmark: str
    query_mode: str
    rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.benchmark}/{self.query_mode}"

    @property
    def means(self) -> dict[str, float]:
        """Benchmark means of every metric plus ``num_videos``."""
        return {**benchmark_means(self.rows), "num_videos": len(self.rows)}


def tracker_device(tracker: Any) -> torch.device:
    """Where a tracker computes: its ``device`` (ChronoTracker, OnnxTracker), else the CPU (zero motion, stored
    predictions)."""
    return torch.device(getattr(tracker, "device", "cpu"))


def predict_video(tracker: Any, video, queries: Queries,
                  dtype: torch.dtype | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The tracker's answer for ``queries`` of one :class:`~chrono.eval.tapvid.TapVidVideo`: tracks float64
    [Q, T, 2] (x, y) and occluded bool [Q, T], in the video's pixels.

    ``tracker`` follows :class:`chrono.interfaces.PointTracker` (``predict`` in the video's pixels); one that is
    also :class:`chrono.interfaces.VideoAware` is told the video's name first. ``dtype``: autocast it to bf16
    (``precision``; None: fp32).
    """
    if isinstance(tracker, VideoAware):
        tracker.begin_video(video.name, int(video.video.shape[0]))
    with torch.inference_mode(), autocast(tracker_device(tracker), dtype):
        out = tracker.predict(
            torch.from_numpy(video.video[None]),
            torch.from_numpy(queries.query_points[None]).float(),
            resolution=video.video.shape[1:3],
        )
    tracks = out["tracks"].detach().to("cpu", torch.float64).numpy()[0]
    return tracks, out["occluded"].detach().cpu().numpy().astype(bool)[0]


def evaluate_video(tracker: Any, video, query_mode: str, export_queries: Path | None = None,
                   dtype: torch.dtype | None = None) -> dict[str, Any]:
    """Track the reference queries of one :class:`~chrono.eval.tapvid.TapVidVideo`; its metrics as floats.

    ``export_queries``: also write the queries to ``<export_queries>/<video>.npz``
    (:func:`chrono.eval.predictions.write_queries`; videos without a query write nothing). ``dtype``: autocast
    the tracker to it (None: fp32).
    """
    queries = sample_queries(video, query_mode)
    if export_queries is not None and len(queries.query_points):
        write_queries(export_queries, video.name, queries.query_points, video.video.shape[0], query_mode,
                      video.video.shape[1:3])
    pred_tracks, pred_occluded = predict_video(tracker, video, queries, dtype)
    metrics = compute_tapvid_metrics(
        queries.query_points[None], queries.occluded[None], queries.target_points[None],
        pred_occluded[None], pred_tracks[None], query_mode,
    )
    return {"num_queries": len(queries.query_points), **{k: float(v[0]) for k, v in metrics.items()}}


def evaluate_benchmark(
    tracker: Any,
    benchmark: str,
    fmt: str,
    path: str | Path,
    query_mode: str,
    resolution: Sequence[int] = EVAL_RESOLUTION,
    max_videos: int | None = None,
    progress: bool = True,
    export_queries: str | Path | None = None,
    dtype: torch.dtype | None = None,
) -> BenchmarkResult:
    """Evaluate ``tracker`` (a :class:`chrono.interfaces.PointTracker`) on one benchmark, under autocast to
    ``dtype`` (:func:`chrono.precision.autocast_dtype` of the ``precision`` setting; None: fp32).

    Under torchrun every rank takes every world_size-th video and the per-video rows are gathered, so every
    rank returns the same complete result and each video counts exactly once. A video with no query (nothing
    visible) is skipped with a message, as it has no metric. ``progress``: one line per video on stderr.
    ``export_queries``: a folder receiving each video's queries (:mod:`chrono.eval.predictions`).
    """
    where = dist.info()
    label = f"{benchmark}/{query_mode}" + (f" rank {where.rank}" if where.world_size > 1 else "")
    meter = Progress(label, total=max_videos, unit="video", enabled=progress)

    rows, done = [], 0
    for entry in iter_entries(fmt, path):
        if max_videos is not None and entry.index >= max_videos:
            break
        if not dist.owns(entry.index, where):
            continue
        start = time.perf_counter()
        video = decode_entry(entry, resolution)
        row = {"index": video.index, "name": video.name, "num_frames": int(video.video.shape[0])}
        metrics = evaluate_video(tracker, video, query_mode, Path(export_queries) if export_queries else None,
                                 dtype)
        done += 1
        if metrics["num_queries"] == 0:
            meter.say(f"video {video.index} {video.name}: no visible point to query, skipped")
            continue
        rows.append({**row, **metrics})
        meter.update(done, f"(#{video.index}) {video.name}: {metrics['num_queries']} queries, "
                           + " ".join(f"{label} {100 * metrics[name]:.1f}" for name, label in TABLE_LABELS.items())
                           + f" ({time.perf_counter() - start:.1f} s)")
    gathered = [row for part in dist.all_gather_objects(rows) for row in part]
    gathered.sort(key=lambda r: r["index"])
    return BenchmarkResult(benchmark, query_mode, gathered)


def benchmark_path(benchmark_cfg: Mapping[str, Any], absolute: Callable[[str], str] = str) -> Path:
    """The benchmark's file or folder; the built-in synthetic benchmark is generated when it has no path."""
    name, path = benchmark_cfg["name"], benchmark_cfg.get("path")
    if name == "synthetic":
        from chrono.data.synthetic.store import ensure_benchmark

        # one rank generates it, the others wait and then find it there
        if dist.is_main_process():
            found = ensure_benchmark(absolute(path) if path else None)
        dist.barrier()
        if not dist.is_main_process():
            found = ensure_benchmark(absolute(path) if path else None)
        return Path(found)
    if not path:
        raise ConfigError(
            f"benchmark={name} has no path: give benchmark.path=/path/to/it "
            f"(or paths.{name}=...; docs/evaluation.md shows each benchmark's layout)"
        )
    return Path(absolute(str(path)))


def write_results(result: BenchmarkResult, run_dir: Path, results_file: Path | None) -> dict[str, Path]:
    """Per-video CSV and the means JSON in ``run_dir`` (and the JSON at ``results_file``); their paths."""
    stem = result.key.replace("/", "_")
    columns = ["index", "name", "num_frames", "num_queries", *METRIC_NAMES]
    means = {result.key: result.means}
    paths = {
        "csv": write_text_atomic(run_dir / f"{stem}_videos.csv", table_csv(result.rows, columns)),
        "json": write_json_atomic(run_dir / "results.json", means),
    }
    if results_file is not None:
        paths["results_file"] = merge_results_file(results_file, means)
    return paths


def merge_results_file(path: Path, means: Mapping[str, Any]) -> Path:
    """Add ``means`` ("<benchmark>/<query_mode>" -> figures) to the JSON at ``path``, keeping its other entries
    (``first`` then ``strided`` into one file keeps both), under a lock; a file that is not such a JSON
    mapping is refused rather than overwritten."""
    import json

    path = Path(path)
    with file_lock(path.parent / f".{path.name}.lock"):
        merged: dict[str, Any] = {}
        if path.is_file():
            try:
                merged = json.loads(path.read_text())
            except (json.JSONDecodeError, UnicodeDecodeError):
                merged = None
            if not isinstance(merged, dict):
                raise ConfigError(f"{path}: results_file exists and is not a JSON results file; give another path")
        merged.update(means)
        return write_json_atomic(path, merged)


def summary_row(result: BenchmarkResult, tracker: str) -> dict[str, Any]:
    """The table row (percent) printed at the end: tracker, benchmark/mode, AJ, <δ^x_avg, OA, videos."""
    means = result.means
    row: dict[str, Any] = {"tracker": tracker, "benchmark": result.key}
    row.update({label: 100 * means[name] for name, label in TABLE_LABELS.items()})
    row["videos"] = means["num_videos"]
    return row
