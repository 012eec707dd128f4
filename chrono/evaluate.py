"""Evaluate a tracker on a TAP-Vid benchmark: ``python -m chrono.evaluate``.

    python -m chrono.evaluate benchmark=davis benchmark.path=/data/tapvid_davis.pkl benchmark.query_mode=first \\
        tracker=chrono checkpoint=/ckpt/chrono_base.ckpt results_file=davis_first.json
    torchrun --nproc_per_node=4 -m chrono.evaluate ...   # videos split across ranks, each counted once
    python -m chrono.evaluate -m benchmark=davis,kinetics benchmark.query_mode=first,strided ...   # sweep

Videos are read one at a time and evaluated at 256 x 256 with the reference protocol (queries ``first`` or
``strided``; :mod:`chrono.metrics`). Rank 0 writes the per-video metrics (CSV) and the benchmark means (JSON:
"<benchmark>/<query_mode>" -> means and ``num_videos``) into the run folder and ``results_file``, and logs
params, metrics and tables to MLflow (:mod:`chrono.tracking`). Progress goes to stderr, one line per video.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import hydra
import torch

from chrono import dist
from chrono.data.tapvid import EVAL_RESOLUTION, decode_entry, iter_entries, sample_queries
from chrono.metrics import METRIC_NAMES, benchmark_means, compute_tapvid_metrics

SUMMARY_COLUMNS = {"average_jaccard": "AJ", "average_pts_within_thresh": "<δ^x_avg", "occlusion_accuracy": "OA"}


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


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def evaluate_video(tracker: Any, video, query_mode: str) -> dict[str, Any]:
    """Track the reference queries of one :class:`~chrono.data.tapvid.TapVidVideo`; its metrics as floats."""
    queries = sample_queries(video, query_mode)
    with torch.inference_mode():
        out = tracker.predict(
            torch.from_numpy(video.video[None]),
            torch.from_numpy(queries.query_points[None]).float(),
            resolution=video.video.shape[1:3],
        )
    pred_tracks = out["tracks"].detach().to("cpu", torch.float64).numpy()
    pred_occluded = out["occluded"].detach().cpu().numpy().astype(bool)
    metrics = compute_tapvid_metrics(
        queries.query_points[None], queries.occluded[None], queries.target_points[None],
        pred_occluded, pred_tracks, query_mode,
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
    progress: Callable[[str], None] | None = _progress,
) -> BenchmarkResult:
    """Evaluate ``tracker`` (anything with the ``predict`` contract of DESIGN.md) on one benchmark.

    Under torchrun every rank takes every world_size-th video and the per-video rows are gathered, so every
    rank returns the same complete result and each video counts exactly once. A video with no query (nothing
    visible) is skipped with a message, as it has no metric.
    """
    where = dist.info()
    label = f"{benchmark}/{query_mode}" + (f" rank {where.rank}" if where.world_size > 1 else "")

    rows = []
    for entry in iter_entries(fmt, path):
        if max_videos is not None and entry.index >= max_videos:
            break
        if not dist.owns(entry.index, where):
            continue
        start = time.perf_counter()
        video = decode_entry(entry, resolution)
        row = {"index": video.index, "name": video.name, "num_frames": int(video.video.shape[0])}
        metrics = evaluate_video(tracker, video, query_mode)
        if metrics["num_queries"] == 0:
            if progress:
                progress(f"[{label}] video {video.index} {video.name}: no visible point to query, skipped")
            continue
        rows.append({**row, **metrics})
        if progress:
            progress(
                f"[{label}] video {video.index} {video.name}: {metrics['num_queries']} queries, "
                f"AJ {100 * metrics['average_jaccard']:.1f} <δ {100 * metrics['average_pts_within_thresh']:.1f} "
                f"OA {100 * metrics['occlusion_accuracy']:.1f} ({time.perf_counter() - start:.1f} s)"
            )
    gathered = [row for part in dist.all_gather_objects(rows) for row in part]
    gathered.sort(key=lambda r: r["index"])
    return BenchmarkResult(benchmark, query_mode, gathered)


# ------------------------------------------------------------------------------------------------ command line


def resolve_device(device: str) -> str:
    """``auto`` -> this rank's CUDA device when there is one, else ``cpu``."""
    if device != "auto":
        return device
    return f"cuda:{dist.info().local_rank}" if torch.cuda.is_available() else "cpu"


def build_tracker(tracker_cfg: Mapping[str, Any], checkpoint: str | None, device: str) -> Any:
    """The tracker named by ``tracker_cfg.name``: ``zero_motion``, or ``chrono`` from ``checkpoint`` (the
    other non-null entries of ``tracker_cfg`` are passed to :func:`chrono.load_tracker` as overrides)."""
    name = tracker_cfg["name"]
    if name == "zero_motion":
        from chrono.baselines import ZeroMotionTracker

        return ZeroMotionTracker()
    if name == "chrono":
        import chrono

        if not checkpoint:
            raise ValueError(
                "tracker=chrono needs a checkpoint: give checkpoint=/path/to/model.ckpt "
                "(an official Chrono .ckpt, a DINOv2 *_pretrain.pth or a chrono.train checkpoint)"
            )
        if not Path(checkpoint).is_file():
            raise FileNotFoundError(f"{checkpoint}: no such checkpoint file (checkpoint=...)")
        overrides = {k: v for k, v in tracker_cfg.items() if k not in ("name", "checkpoint") and v is not None}
        return chrono.load_tracker(checkpoint, device=device, **overrides)
    raise ValueError(f"unknown tracker {name!r}: expected chrono or zero_motion")


def benchmark_path(benchmark_cfg: Mapping[str, Any], absolute: Callable[[str], str] = str) -> Path:
    """The benchmark's file or folder; the built-in synthetic benchmark is generated when it has no path."""
    name, path = benchmark_cfg["name"], benchmark_cfg.get("path")
    if name == "synthetic":
        try:
            from chrono.data.synthetic import ensure_benchmark
        except ImportError as e:
            raise RuntimeError(
                f"benchmark=synthetic needs its generator chrono.data.synthetic ({e}); "
                "give a TAP-Vid file instead with benchmark=<davis|...> benchmark.path=..."
            ) from e

        # one rank generates it, the others wait and then find it there
        if dist.is_main_process():
            found = ensure_benchmark(absolute(path) if path else None)
        dist.barrier()
        if not dist.is_main_process():
            found = ensure_benchmark(absolute(path) if path else None)
        return Path(found)
    if not path:
        raise ValueError(
            f"benchmark={name} has no path: give benchmark.path=/path/to/it "
            f"(or paths.{name}=...; the README's Evaluation section shows each benchmark's layout)"
        )
    return Path(absolute(str(path)))


def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def _tracker_label(cfg) -> str:
    return str(cfg.tracker.name)


def write_results(result: BenchmarkResult, run_dir: Path, results_file: Path | None) -> dict[str, Path]:
    """Per-video CSV and the means JSON in ``run_dir`` (and the JSON at ``results_file``); their paths."""
    from chrono.results import table_csv, write_json_atomic, write_text_atomic

    stem = result.key.replace("/", "_")
    columns = ["index", "name", "num_frames", "num_queries", *METRIC_NAMES]
    means = {result.key: result.means}
    paths = {
        "csv": write_text_atomic(run_dir / f"{stem}_videos.csv", table_csv(result.rows, columns)),
        "json": write_json_atomic(run_dir / "results.json", means),
    }
    if results_file is not None:
        paths["results_file"] = write_json_atomic(results_file, means)
    return paths


def summary_row(result: BenchmarkResult, tracker: str) -> dict[str, Any]:
    """The table row (percent) printed at the end: tracker, benchmark/mode, AJ, <δ^x_avg, OA, videos."""
    means = result.means
    row: dict[str, Any] = {"tracker": tracker, "benchmark": result.key}
    row.update({label: 100 * means[name] for name, label in SUMMARY_COLUMNS.items()})
    row["videos"] = means["num_videos"]
    return row


def log_to_mlflow(cfg, result: BenchmarkResult, files: Mapping[str, Path], run_dir: Path) -> str:
    """One MLflow run (a child of the sweep's parent run inside a multirun): params, means, tables; its id."""
    from chrono import tracking

    run = tracking.start_run(
        cfg.mlflow.experiment,
        run_name=f"{_tracker_label(cfg)} {result.key}",
        tags={"tracker": _tracker_label(cfg), "benchmark": cfg.benchmark.name, "query_mode": result.query_mode},
        parent_run_id=tracking.parent_run_id(tracking.hydra_sweep_dir()),
    )
    try:
        run.log_params(tracking.flatten_config(cfg))
        run.log_metrics({f"{result.key}/{k}": v for k, v in result.means.items()})
        run.log_table(result.rows, f"{result.key.replace('/', '_')}_videos.json")
        for path in files.values():
            run.log_artifact(path)
        config_file = run_dir / ".hydra" / "config.yaml"
        if config_file.is_file():
            run.log_artifact(config_file, "hydra")
    except BaseException:
        run.end("FAILED")
        raise
    run.end()
    return run.run_id


def run(cfg) -> dict[str, Any]:
    """The body of ``python -m chrono.evaluate`` (after Hydra composed ``cfg``); the means on every rank."""
    from hydra.utils import to_absolute_path

    from chrono.results import table_markdown

    where = dist.info()
    device = resolve_device(cfg.device)
    path = benchmark_path(cfg.benchmark, to_absolute_path)
    checkpoint = to_absolute_path(cfg.checkpoint) if cfg.checkpoint else None
    tracker = build_tracker(cfg.tracker, checkpoint, device)
    if where.is_main:
        _progress(f"evaluating {_tracker_label(cfg)} on {cfg.benchmark.name} ({path}), queries {cfg.benchmark.query_mode}")
    result = evaluate_benchmark(
        tracker, cfg.benchmark.name, cfg.benchmark.format, path, cfg.benchmark.query_mode,
        resolution=tuple(cfg.benchmark.resolution), max_videos=cfg.max_videos,
        progress=_progress if cfg.progress else None,
    )
    del tracker
    if where.is_main:
        run_dir = _run_dir()
        results_file = Path(to_absolute_path(cfg.results_file)) if cfg.results_file else None
        files = write_results(result, run_dir, results_file)
        print(table_markdown([summary_row(result, _tracker_label(cfg))]), end="")
        print(f"per-video metrics: {files['csv']}\nmeans: {files.get('results_file', files['json'])}")
        if cfg.mlflow.enabled:
            run_id = log_to_mlflow(cfg, result, files, run_dir)
            print(f"MLflow run {run_id} (experiment {cfg.mlflow.experiment})")
    return {result.key: result.means}


dist.register_resolvers()


@hydra.main(version_base="1.3", config_path="../conf", config_name="evaluate")
def main(cfg) -> dict[str, Any]:
    with dist.distributed():
        return run(cfg)


if __name__ == "__main__":
    main()
