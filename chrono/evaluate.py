"""Evaluate a tracker on a TAP-Vid benchmark: ``python -m chrono.evaluate``.

    python -m chrono.evaluate benchmark=davis benchmark.path=/data/tapvid_davis.pkl benchmark.query_mode=first \\
        tracker=chrono checkpoint=/ckpt/chrono_base.ckpt results_file=davis_first.json
    torchrun --nproc_per_node=4 -m chrono.evaluate ...   # videos split across ranks, each counted once
    python -m chrono.evaluate -m benchmark=davis,kinetics benchmark.query_mode=first,strided ...   # sweep
    python -m chrono.evaluate benchmark=davis ... export_queries=queries/davis_first   # the protocol's queries
    python -m chrono.evaluate benchmark=davis ... tracker=predictions predictions=cotracker/davis_first
    python -m chrono.evaluate ... visualize=3   # the 3 lowest- and 3 highest-AJ videos drawn
    python -m chrono.evaluate tracker=chrono runtime=onnx onnx_model=chrono.onnx   # in ONNX Runtime (docs/deploy.md)

The loop is :func:`chrono.eval.benchmark.evaluate_benchmark`. Rank 0 writes the per-video metrics (CSV) and
the benchmark means (JSON: "<benchmark>/<query_mode>" -> means and ``num_videos``) into the run folder and
``results_file``, draws the worst and best videos when asked (:mod:`chrono.eval.gallery`), and logs params,
metrics, tables and pictures to MLflow (:mod:`chrono.mlflow_runs`). Another tracker's outputs are scored through
the same loop (:mod:`chrono.eval.predictions`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from chrono import dist, mlflow_runs
from chrono.cli import hydra_command
from chrono.config import register
from chrono.errors import ConfigError
from chrono.eval.benchmark import BenchmarkResult, benchmark_path, evaluate_benchmark, summary_row, write_results
from chrono.eval.gallery import GALLERY_DIR, INDEX, write_gallery
from chrono.eval.trackers import make_tracker
from chrono.metrics import QUERY_MODES
from chrono.precision import eval_precision
from chrono.progress import Progress
from chrono.results import table_markdown

register()


def _run_dir() -> Path:
    from hydra.core.hydra_config import HydraConfig

    return Path(HydraConfig.get().runtime.output_dir)


def log_to_mlflow(cfg, result: BenchmarkResult, files: Mapping[str, Path], run_dir: Path,
                  gallery: Path | None = None) -> str:
    """One MLflow run (a child of the sweep's parent run inside a multirun): params, means, tables and the
    gallery's pictures (``visualize/``); its id. Tagged with what the paper-tables report matches on."""
    tracker = str(cfg.tracker.name)
    tags = {"tracker": tracker, "benchmark": cfg.benchmark.name, "query_mode": result.query_mode,
            "run_dir": str(run_dir.resolve())}
    if cfg.get("label"):
        tags["label"] = cfg.label
    run = mlflow_runs.start_run(
        cfg.mlflow.experiment,
        run_name=f"{cfg.get('label') or tracker} {result.key}",
        tags=tags,
        parent_run_id=mlflow_runs.parent_run_id(mlflow_runs.hydra_sweep_dir()),
    )
    with run:
        run.log_params(mlflow_runs.flatten_config(cfg))
        run.log_metrics({f"{result.key}/{k}": v for k, v in result.means.items()})
        run.log_table(result.rows, f"{result.key.replace('/', '_')}_videos.json")
        for path in files.values():
            run.log_artifact(path)
        if gallery is not None:
            run.log_artifacts(gallery, GALLERY_DIR)
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
    if int(cfg.visualize) < 0 or int(cfg.visualize_points) < 1:
        raise ConfigError(f"visualize={cfg.visualize} visualize_points={cfg.visualize_points}: expected "
                          "visualize >= 0 videos (0: none) and visualize_points >= 1")
    device = dist.resolve_device(cfg.device)
    path = benchmark_path(cfg.benchmark, to_absolute_path)
    checkpoint = to_absolute_path(cfg.checkpoint) if cfg.checkpoint else None
    predictions = to_absolute_path(cfg.predictions) if cfg.predictions else None
    export = Path(to_absolute_path(cfg.export_queries)) if cfg.export_queries else None
    onnx_model = to_absolute_path(cfg.onnx_model) if cfg.onnx_model else None
    # auto: bf16 autocast on CUDA (the reference), else fp32; int8: the ONNX model's int8 version
    dtype, runtime_precision = eval_precision(cfg.precision, cfg.runtime, device)
    runtime = {"runtime": cfg.runtime, "onnx_model": onnx_model, "precision": runtime_precision, "device": cfg.device}
    tracker = make_tracker(cfg.tracker, checkpoint, device, predictions, cfg.trust_checkpoint, runtime)
    say = Progress("chrono.evaluate", enabled=cfg.progress and where.is_main).say
    say(f"evaluating {cfg.tracker.name} on {cfg.benchmark.name} ({path}), queries {cfg.benchmark.query_mode}, "
        f"precision {runtime_precision if dtype is None else 'bf16 autocast'}")
    result = evaluate_benchmark(
        tracker, cfg.benchmark.name, cfg.benchmark.format, path, cfg.benchmark.query_mode,
        resolution=tuple(cfg.benchmark.resolution), max_videos=cfg.max_videos, progress=cfg.progress,
        export_queries=export, dtype=dtype,
    )
    if where.is_main:
        run_dir = _run_dir()
        results_file = Path(to_absolute_path(cfg.results_file)) if cfg.results_file else None
        files = write_results(result, run_dir, results_file)
        gallery = None
        if cfg.visualize:
            say(f"drawing the {cfg.visualize} lowest- and highest-AJ videos into {run_dir / GALLERY_DIR}")
            gallery = run_dir / GALLERY_DIR
            write_gallery(tracker, result, cfg.benchmark.format, path, gallery, int(cfg.visualize),
                          tuple(cfg.benchmark.resolution), int(cfg.visualize_points))
        print(table_markdown([summary_row(result, str(cfg.tracker.name))]), end="")
        print(f"per-video metrics: {files['csv']}\nmeans: {files.get('results_file', files['json'])}")
        if export is not None:
            print(f"queries: {export}/<video>.npz")
        if gallery is not None:
            print(f"worst and best videos: {gallery / INDEX}")
        if cfg.mlflow.enabled:
            run_id = log_to_mlflow(cfg, result, files, run_dir, gallery)
            print(f"MLflow run {run_id} (experiment {cfg.mlflow.experiment})")
    del tracker
    return {result.key: result.means}


@hydra_command("evaluate", prog="chrono.evaluate")
def main(cfg) -> dict[str, Any]:
    """Evaluate one tracker on one benchmark in one query mode (see the module docstring)."""
    with dist.distributed():
        return run(cfg)


if __name__ == "__main__":
    main()
