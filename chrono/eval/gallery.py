"""Where a tracker fails: its K lowest- and K highest-AJ videos drawn beside the ground truth
(``python -m chrono.evaluate ... visualize=K``).

Videos stream through the benchmark loop one at a time, so the worst and best are picked from the per-video
metrics after the pass; only those videos are then read again (by index) and tracked again. For each,
``<label>_<video>.png`` (:func:`chrono.visualize.draw_comparison_summary`) and ``<label>_<video>.mp4``
(:func:`chrono.visualize.write_comparison_video`) are written, ``label`` being ``worst1``, ``worst2``, ...,
``best1``, ...; ``index.md`` and ``index.json`` list them with their metrics. Drawn at the evaluation resolution
enlarged twice: the ground truth a ring, the prediction a disc of the same colour, a line joining them when
they are more than 8 px apart at 256 x 256. At most ``max_points`` tracks per video are drawn (one query per
track: its first).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from chrono.eval.benchmark import BenchmarkResult, predict_video
from chrono.eval.tapvid import Queries, read_benchmark, sample_queries
from chrono.files import write_json_atomic, write_text_atomic
from chrono.metrics import RESULT_KEYS, TABLE_LABELS
from chrono.results import table_markdown

GALLERY_DIR = "visualize"  # inside the run folder, and the MLflow artifact folder
INDEX = "index.md"
JOIN_BEYOND = 8.0  # px at the evaluation resolution: farther apart, a line joins prediction and truth
FPS = 10.0


def pick_videos(rows: Sequence[Mapping[str, Any]], k: int) -> list[tuple[str, Mapping[str, Any]]]:
    """(label, row) of the ``k`` lowest-AJ videos (``worst1`` the lowest) and the ``k`` highest (``best1`` the
    highest), a video appearing once; videos whose AJ is NaN are left out. Ties: benchmark order."""
    ranked = sorted((r for r in rows if math.isfinite(r["average_jaccard"])),
                    key=lambda r: (r["average_jaccard"], r["index"]))
    worst = ranked[:k]
    taken = {r["index"] for r in worst}
    best = [r for r in sorted(ranked, key=lambda r: (-r["average_jaccard"], r["index"])) if r["index"] not in taken][:k]
    return [(f"worst{i + 1}", r) for i, r in enumerate(worst)] + [(f"best{i + 1}", r) for i, r in enumerate(best)]


def drawn_queries(queries: Queries, max_points: int) -> np.ndarray:
    """Indices of the queries to draw: each track's first query, at most ``max_points`` spread evenly."""
    _, first = np.unique(queries.track_index, return_index=True)
    first = np.sort(first)
    if len(first) > max_points:
        first = first[np.linspace(0, len(first) - 1, max_points).round().astype(int)]
    return first


def _file_stem(label: str, name: str) -> str:
    return f"{label}_{re.sub(r'[^A-Za-z0-9._-]+', '_', name)}"


def write_gallery(
    tracker: Any,
    result: BenchmarkResult,
    fmt: str,
    path: str | Path,
    out_dir: str | Path,
    k: int,
    resolution: Sequence[int],
    max_points: int = 64,
) -> list[dict[str, Any]]:
    """Draw the ``k`` worst and ``k`` best videos of ``result`` (tracked again by ``tracker``) into ``out_dir``;
    the index entries (label, video, metrics, picture and video file names), also written as index.md/json."""
    from chrono.visualize import draw_comparison_summary, write_comparison_video
    from chrono.video_io import write_png

    out_dir = Path(out_dir)
    chosen = {row["index"]: (label, row) for label, row in pick_videos(result.rows, k)}
    entries = []
    for video in read_benchmark(fmt, path, resolution, select=lambda i: i in chosen):
        label, row = chosen[video.index]
        queries = sample_queries(video, result.query_mode)
        tracks, occluded = predict_video(tracker, video, queries)
        keep = drawn_queries(queries, max_points)
        pred, pred_occ = tracks[keep], occluded[keep]
        gt, gt_occ = queries.target_points[keep], queries.occluded[keep]
        figures = ", ".join(f"{key} {100 * row[name]:.1f}" for name, key in RESULT_KEYS.items())
        caption = (f"{label}: {video.name} ({result.key}) {figures}; {len(keep)} of {len(queries.query_points)} "
                   "queries; ring = ground truth, disc = prediction")
        picture, _ = draw_comparison_summary(video.video, pred, pred_occ, gt, gt_occ, caption,
                                             queries.query_points[keep], join_beyond=JOIN_BEYOND)
        stem = _file_stem(label, video.name)
        write_png(out_dir / f"{stem}.png", picture)
        write_comparison_video(out_dir / f"{stem}.mp4", video.video, pred, pred_occ, gt, gt_occ, fps=FPS,
                               join_beyond=JOIN_BEYOND)
        entries.append({"label": label, "video": video.name, "index": video.index,
                         **{lab: 100 * row[name] for name, lab in TABLE_LABELS.items()},
                         "picture": f"{stem}.png", "overlay": f"{stem}.mp4"})
        if len(entries) == len(chosen):
            break
    order = {label: i for i, (label, _) in enumerate(chosen.values())}
    entries.sort(key=lambda e: order[e["label"]])
    write_json_atomic(out_dir / "index.json", {"benchmark": result.key, "videos": entries})
    rows = [{**e, "picture": f"[{e['picture']}]({e['picture']})", "overlay": f"[{e['overlay']}]({e['overlay']})"}
            for e in entries]
    write_text_atomic(out_dir / INDEX, f"# {result.key}: the {k} lowest- and highest-AJ videos\n\n"
                      "Ring: ground truth; disc: prediction (same colour per point); a line joins them when they are "
                      f"more than {JOIN_BEYOND:g} px apart at the evaluation resolution.\n\n" + table_markdown(rows))
    return entries
