"""Evaluation during and after training: validation on the configured benchmark and the final table.

Every rank takes part (the videos are split, :func:`chrono.eval.benchmark.evaluate_benchmark`); only rank 0
prints, writes and logs.
"""

from __future__ import annotations

from pathlib import Path
from omegaconf import DictConfig

from chrono import dist
from chrono.eval.baselines import ZeroMotionTracker
from chrono.eval.benchmark import BenchmarkResult, evaluate_benchmark, summary_row
from chrono.files import write_text_atomic
from chrono.metrics import RESULT_KEYS, TABLE_LABELS
from chrono.results import table_csv, table_markdown


def validation_benchmark(cfg: DictConfig) -> DictConfig:
    """``val.benchmark``, or ``val.davis`` (DAVIS strided) when ``paths.davis`` is set and
    ``val.davis_when_available`` (the reference validates on DAVIS)."""
    if cfg.val.davis_when_available and cfg.paths.get("davis"):
        return cfg.val.davis
    return cfg.val.benchmark


def evaluate_on(tracker, bench: DictConfig, path: Path, query_mode: str, max_videos: int | None,
                dtype=None) -> BenchmarkResult:
    """``tracker`` on the benchmark config ``bench`` (stored at ``path``) in ``query_mode``, quietly, under
    autocast to ``dtype`` (None: fp32; ``val.precision``)."""
    return evaluate_benchmark(tracker, bench.name, bench.format, path, query_mode,
                              resolution=tuple(bench.resolution), max_videos=max_videos, progress=False, dtype=dtype)


def validate(model, bench: DictConfig, path: Path, max_videos: int | None, dtype=None) -> dict[str, float]:
    """Benchmark means of the current model on the validation benchmark (all ranks share the videos), under
    autocast to ``dtype`` (None: fp32)."""
    was_training = model.training
    model.eval()
    result = evaluate_on(model, bench, path, bench.query_mode, max_videos, dtype)
    model.train(was_training)
    return result.means


def validation_line(step: int, bench: DictConfig, means: dict[str, float], improved: bool) -> str:
    figures = " ".join(f"{RESULT_KEYS[name]} {100 * means[name]:.1f}" for name in TABLE_LABELS)
    return f"step {step}: validation {bench.name}/{bench.query_mode} {figures}" + (" (best)" if improved else "")


def final_evaluation(model, cfg: DictConfig, bench: DictConfig, path: Path, run, run_dir: Path,
                     initial_model=None, say=print, dtype=None) -> dict[str, float]:
    """The trained tracker beside ``initial_model`` (the same model untrained, when given) and the
    zero-motion floor on the validation benchmark, both query modes (its first ``final_eval_videos``
    videos; all when null), under autocast to ``dtype`` (``val.precision``; None: fp32).

    Prints the table (percent), writes ``final_eval.md`` / ``.csv`` in the run folder and logs it to MLflow;
    returns its figures as ``final/<benchmark>/<query mode>/<tracker>/<AJ|delta_avg|OA>`` (percent), the
    names of both MLflow and results.json.
    """
    model.eval()
    trackers = [(cfg.name, model)]
    if initial_model is not None:
        trackers.append(("untrained", initial_model))
    trackers.append(("zero_motion", ZeroMotionTracker()))
    rows = []
    for query_mode in ("strided", "first"):
        for label, tracker in trackers:
            rows.append(summary_row(evaluate_on(tracker, bench, path, query_mode, cfg.final_eval_videos, dtype), label))
    if dist.is_main_process():
        markdown = table_markdown(rows)
        say(f"final evaluation on {bench.name} ({path}):\n{markdown}")
        write_text_atomic(run_dir / "final_eval.md", markdown)
        write_text_atomic(run_dir / "final_eval.csv", table_csv(rows))
        if run is not None:
            run.log_table(rows, "final_eval.json")
            run.log_artifact(run_dir / "final_eval.md")
    figures = {f"final/{r['benchmark']}/{r['tracker']}/{RESULT_KEYS[name]}": r[label]
               for r in rows for name, label in TABLE_LABELS.items()}
    if run is not None:
        run.log_metrics(figures)
    return figures


def log_track_picture(run, model, bench: DictConfig, path: Path, step: int, run_dir: Path) -> None:
    """Tracks of the first validation video drawn on its first frame, logged as an MLflow image artifact."""
    from chrono.eval.tapvid import decode_entry, iter_entries, sample_queries
    from chrono.visualize import draw_summary

    entry = next(iter(iter_entries(bench.format, path)))
    video = decode_entry(entry, tuple(bench.resolution))
    queries = sample_queries(video, bench.query_mode)
    was_training = model.training
    model.eval()
    out = model.predict(video.video[None], queries.query_points[None][:, :64], resolution=video.video.shape[1:3])
    model.train(was_training)
    picture = run_dir / "pictures" / f"tracks_step{step:07d}.png"
    draw_summary(video.video, out["tracks"][0].cpu().numpy(), out["occluded"][0].cpu().numpy(), picture)
    run.log_artifact(picture, "pictures")
