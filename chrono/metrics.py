"""TAP-Vid metrics, with the semantics of the reference (google-deepmind/tapnet, ``compute_tapvid_metrics``).

Everything is in raster pixel coordinates of the evaluation resolution (256 x 256 for the published numbers):
query points (t, y, x), tracks (x, y). Metrics are computed per video, then a benchmark's figure is the plain
mean over its videos. Values lie in [0, 1] (tables print percent).
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

THRESHOLDS = (1, 2, 4, 8, 16)
QUERY_MODES = ("first", "strided")
METRIC_NAMES = (
    ("occlusion_accuracy",)
    + tuple(name for t in THRESHOLDS for name in (f"pts_within_{t}", f"jaccard_{t}"))
    + ("average_jaccard", "average_pts_within_thresh")
)

# The headline figures of every table, the one place their labels are defined:
# (metric name, label printed in tables, name in MLflow metrics and results files).
HEADLINE_METRICS = (
    ("average_jaccard", "AJ", "AJ"),
    ("average_pts_within_thresh", "<δ^x_avg", "delta_avg"),
    ("occlusion_accuracy", "OA", "OA"),
)
TABLE_LABELS = {name: label for name, label, _ in HEADLINE_METRICS}  # metric name -> printed label
RESULT_KEYS = {name: key for name, _, key in HEADLINE_METRICS}  # metric name -> MLflow / results name


def evaluation_mask(query_frames: np.ndarray, num_frames: int, query_mode: str) -> np.ndarray:
    """Which frames count for each query: bool [..., num_frames] from integer query frames [...].

    ``first``: the frames after the query frame (the frames before it are known to be occluded in that protocol).
    ``strided``: every frame except the query frame.
    """
    frames = np.arange(num_frames)
    query_frames = np.asarray(query_frames)[..., None]
    if query_mode == "first":
        return frames > query_frames
    if query_mode == "strided":
        return frames != query_frames
    raise ValueError(f"unknown query mode {query_mode!r}; expected one of {QUERY_MODES}")


def compute_tapvid_metrics(
    query_points: np.ndarray,
    gt_occluded: np.ndarray,
    gt_tracks: np.ndarray,
    pred_occluded: np.ndarray,
    pred_tracks: np.ndarray,
    query_mode: str,
    get_trackwise_metrics: bool = False,
) -> dict[str, np.ndarray]:
    """TAP-Vid metrics of a batch of videos, one value per video (or per track).

    Args:
        query_points: [B, N, 3] float, (t, y, x); t is rounded to the nearest frame.
        gt_occluded: [B, N, T] bool, True where the ground-truth point is occluded.
        gt_tracks: [B, N, T, 2] float, ground-truth (x, y) in pixels.
        pred_occluded: [B, N, T] bool, predicted occlusion.
        pred_tracks: [B, N, T, 2] float, predicted (x, y) in pixels.
        query_mode: ``first`` or ``strided`` (see :func:`evaluation_mask`).
        get_trackwise_metrics: one value per track ([B, N]) instead of per video ([B]).

    Returns:
        ``occlusion_accuracy``; ``pts_within_{d}`` (fraction of ground-truth-visible points predicted strictly
        closer than d pixels, whatever the predicted occlusion) and ``jaccard_{d}`` (true positives over true
        positives + false positives + false negatives) for d in 1, 2, 4, 8, 16; ``average_jaccard`` and
        ``average_pts_within_thresh``, the means over d. A video (track) with nothing to evaluate gives NaN,
        as 0 / 0 does in the reference.
    """
    query_points = np.asarray(query_points)
    gt_occluded = np.asarray(gt_occluded, dtype=bool)
    pred_occluded = np.asarray(pred_occluded, dtype=bool)
    gt_tracks, pred_tracks = np.asarray(gt_tracks), np.asarray(pred_tracks)
    axes = (2,) if get_trackwise_metrics else (1, 2)

    num_frames = gt_tracks.shape[2]
    query_frames = np.round(query_points[..., 0]).astype(np.int32)
    if query_frames.size and (query_frames.min() < 0 or query_frames.max() >= num_frames):
        raise ValueError(f"query frames must lie in [0, {num_frames}); got {query_frames.min()}..{query_frames.max()}")
    evaluated = evaluation_mask(query_frames, num_frames, query_mode)
    gt_visible, pred_visible = ~gt_occluded, ~pred_occluded

    def count(mask: np.ndarray) -> np.ndarray:
        return np.sum(mask & evaluated, axis=axes)

    metrics: dict[str, np.ndarray] = {}
    with np.errstate(invalid="ignore", divide="ignore"):
        metrics["occlusion_accuracy"] = count(pred_occluded == gt_occluded) / count(np.ones_like(evaluated))
        squared_error = np.sum(np.square(pred_tracks - gt_tracks), axis=-1)
        num_gt_visible = count(gt_visible)
        for thresh in THRESHOLDS:
            close = squared_error < np.square(thresh)
            correct = close & gt_visible
            metrics[f"pts_within_{thresh}"] = count(correct) / num_gt_visible
            # Jaccard: TP / (TP + FP + FN), with TP + FN = every ground-truth-visible point.
            true_pos = count(correct & pred_visible)
            false_pos = count(pred_visible & ~(close & gt_visible))
            metrics[f"jaccard_{thresh}"] = true_pos / (num_gt_visible + false_pos)
    metrics["average_jaccard"] = np.mean(np.stack([metrics[f"jaccard_{t}"] for t in THRESHOLDS], axis=1), axis=1)
    metrics["average_pts_within_thresh"] = np.mean(
        np.stack([metrics[f"pts_within_{t}"] for t in THRESHOLDS], axis=1), axis=1
    )
    return {name: metrics[name] for name in METRIC_NAMES}


def benchmark_means(per_video: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """Plain mean over videos of each metric in :data:`METRIC_NAMES` (the reference's benchmark figure)."""
    rows = list(per_video)
    if not rows:
        raise ValueError("no videos were evaluated: cannot average an empty benchmark")
    return {name: float(np.mean([float(row[name]) for row in rows])) for name in METRIC_NAMES}
