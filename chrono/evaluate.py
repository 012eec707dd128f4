"""Evaluate a tracker on a TAP-Vid benchmark: ``python -m chrono.evaluate``.

    python -m chrono.evaluate benchmark=davis benchmark.path=/data/tapvid_davis.pkl benchmark.query_mode=first \\
        tracker=chrono checkpoint=/ckpt/chrono_base.ckpt results_file=davis_first.json
    torchrun --nproc_per_node=4 -m chrono.evaluate ...   # videos split across ranks, each counted once
    python -m chrono.evaluate -m benchmark=davis,kinetics benchmark.query_mode=first,strided ...   # sweep

The loop is :func:`chrono.eval.benchmark.evaluate_benchmark`. Rank 0 writes the per-video metrics (CSV) and
the benchmark means (JSON: "<benchmark>/<query_mode>" -> means and ``num_videos``) into the run folder and
``results_file``, and logs params, metrics and tables to MLflow (:mod:`chrono.mlflow_runs`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from chrono import dist, mlflow_runs
from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError
from chrono.eval.benchmark import BenchmarkResult, benchmark_path, evaluate_benchmark, summary_row, write_results
from chrono.eval.trackers import make_tracker
from chrono.metrics import QUERY_MODES
from chrono.precision import EVAL_PRECISIONS, autocast_dtype
from chrono.progress import Progress
from chrono.results import table_markdown

register()


def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def log_to_mlflow(cfg, result: BenchmarkResult, files: Mapping[str, Path], run_dir: Path) -> str:
    """One MLflow run (a child of the sweep's parent run inside a multirun): params, means, tables; its id."""
    tracker = str(cfg.tracker.name)
    run = mlflow_runs.start_run(
        cfg.mlflow.experiment,
        run_name=f"{tracker} {result.key}",
        tags={"tracker": tracker, "benchmark": cfg.benchmark.name, "query_mode": result.query_mode},
        parent_run_id=mlflow_runs.parent_run_id(mlflow_runs.hydra_sweep_dir()),
    )
    with run:
        run.log_params(mlflow_runs.flatten_config(cfg))
        run.log_metrics({f"{result.key}/{k}": v for k, v in result.means.items()})
        run.log_table(result.rows, f"{result.key.replace('/', '_')}_videos.json")
        for path in files.values():
            run.log_artifact(path)
        config_file = run_dir / ".hydra" / "config.yaml"
        if config_file.is_file():
            run.log_artifact(config_file, "hydra")
    return run.run_id


def run(cfg) -> dict[str, Any]:
    """The body of ``python -m chrono.evaluate`` (after Hydra composed ``cfg``); the means on every rank."""
    from hydra.utils import to_absolute_path

    if cfg.max_videos is not None and (not isinstance(cfg.max_videos, int) or isinstance(cfg.max_videos, bool)
                                       or cfg.max_videos < 1):
        raise ConfigError(f"max_videos={cfg.max_videos}: expected an integer >= 1 or null")
    if cfg.benchmark.query_mode not in QUERY_MODES:
        raise ConfigError(f"benchmark.query_mode={cfg.benchmark.query_mode}: expected one of {', '.join(QUERY_MODES)}")
    where = dist.info()
    device = dist.resolve_device(cfg.device)
    dtype = autocast_dtype(cfg.precision, device, EVAL_PRECISIONS)  # auto: bf16 on CUDA (the reference), else fp32
    path = benchmark_path(cfg.benchmark, to_absolute_path)
    checkpoint = to_absolute_path(cfg.checkpoint) if cfg.checkpoint else None
    tracker = make_tracker(cfg.tracker, checkpoint, device, cfg.trust_checkpoint)
    if where.is_main:
        Progress("chrono.evaluate", enabled=cfg.progress).say(
            f"evaluating {cfg.tracker.name} on {cfg.benchmark.name} ({path}), queries {cfg.benchmark.query_mode}, "
            f"precision {'fp32' if dtype is None else 'bf16 autocast'}")
    result = evaluate_benchmark(
        tracker, cfg.benchmark.name, cfg.benchmark.format, path, cfg.benchmark.query_mode,
        resolution=tuple(cfg.benchmark.resolution), max_videos=cfg.max_videos, progress=cfg.progress, dtype=dtype,
    )
    del tracker
    if where.is_main:
        run_dir = _run_dir()
        results_file = Path(to_absolute_path(cfg.results_file)) if cfg.results_file else None
        files = write_results(result, run_dir, results_file)
        print(table_markdown([summary_row(result, str(cfg.tracker.name))]), end="")
        print(f"per-video metrics: {files['csv']}\nmeans: {files.get('results_file', files['json'])}")
        if cfg.mlflow.enabled:
            run_id = log_to_mlflow(cfg, result, files, run_dir)
            print(f"MLflow run {run_id} (experiment {cfg.mlflow.experiment})")
    return {result.key: result.means}


@hydra_command("evaluate", prog="chrono.evaluate")
def main(cfg) -> dict[str, Any]:
    """Evaluate one tracker on one benchmark in one query mode (see the module docstring)."""
    with dist.distributed():
        return run(cfg)


if __name__ == "__main__":
    main()
